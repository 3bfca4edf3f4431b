//! A second, wider look before "no record found" goes out without a specialist.
//!
//! An officer's description differs from the records in a few common ways: the birth year off
//! by one, day and month transposed, given and family names swapped, one name part badly
//! misspelt (ESRGIU for SERGIO). A first search that finds nobody plausible
//! may simply have been asked the wrong question, and an automatic "no record found" for a
//! person the records do know is a wrong answer (session 3: 16 of seed 1's 17 wrong automatic
//! statuses). So before it goes out, the engine asks again with each variant of the query;
//! anything plausible under a variant sends the query to a specialist, with the records found
//! among the candidates. "No record found" stays exactly that: the status never changes here,
//! only whether a person checks it first.

use verity_model::{Identity, PartialDate, PersonName};

/// One way the query may differ from the records, and the query rewritten that way.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryVariant {
    /// What was changed, in words (shown to the specialist).
    pub change: &'static str,
    pub identity: Identity,
}

/// The variants of `query` worth a second search, in a fixed order (the answer must not depend
/// on anything else). The query itself is not among them.
pub fn query_variants(query: &Identity) -> Vec<QueryVariant> {
    let mut out = Vec::new();
    let mut push = |change: &'static str, identity: Identity| {
        if identity != *query && !out.iter().any(|v: &QueryVariant| v.identity == identity) {
            out.push(QueryVariant { change, identity });
        }
    };
    if let Some(dob) = query.dob {
        for (change, delta) in [
            ("birth year one earlier", -1i32),
            ("birth year one later", 1),
        ] {
            if let Some(d) = shifted_year(dob, delta) {
                push(
                    change,
                    Identity {
                        dob: Some(d),
                        ..query.clone()
                    },
                );
            }
        }
        if let (Some(m), Some(d)) = (dob.month, dob.day) {
            if d <= 12 && d != m {
                if let Ok(t) = PartialDate::full(dob.year, d, m) {
                    push(
                        "day and month transposed",
                        Identity {
                            dob: Some(t),
                            ..query.clone()
                        },
                    );
                }
            }
        }
    }
    let name = &query.name;
    if !name.given.is_empty() && !name.family.is_empty() {
        let swapped = Identity {
            name: PersonName {
                given: name.family.clone(),
                family: name.given.clone(),
                middle: name.middle.clone(),
                original: String::new(),
            },
            ..query.clone()
        };
        // Swapped names and a birth year off by one come together often enough (both are
        // clerical slips of the same hand) to ask for the pair.
        if let Some(dob) = query.dob {
            for (change, delta) in [
                ("names swapped and birth year one earlier", -1i32),
                ("names swapped and birth year one later", 1),
            ] {
                if let Some(d) = shifted_year(dob, delta) {
                    push(
                        change,
                        Identity {
                            dob: Some(d),
                            ..swapped.clone()
                        },
                    );
                }
            }
        }
        push("given and family names swapped", swapped);
        // One name part badly misspelt: the other part and the birth date alone.
        if query.dob.is_some() {
            push(
                "family name and birth date only",
                Identity {
                    name: PersonName {
                        family: name.family.clone(),
                        ..PersonName::default()
                    },
                    aliases: Vec::new(),
                    ..query.clone()
                },
            );
            push(
                "given name and birth date only",
                Identity {
                    name: PersonName {
                        given: name.given.clone(),
                        middle: name.middle.clone(),
                        ..PersonName::default()
                    },
                    aliases: Vec::new(),
                    ..query.clone()
                },
            );
        }
    }
    out
}

/// The same day `delta` years away (28 February for a 29 February that does not exist).
fn shifted_year(d: PartialDate, delta: i32) -> Option<PartialDate> {
    let year = u16::try_from(i32::from(d.year) + delta).ok()?;
    PartialDate::new(year, d.month, d.day)
        .or_else(|_| PartialDate::new(year, d.month, d.day.map(|_| 28)))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> Identity {
        Identity {
            name: PersonName::new("MARIA", "", "LOPEZ"),
            dob: Some(PartialDate::full(1990, 3, 7).expect("date")),
            ..Default::default()
        }
    }

    #[test]
    fn variants_cover_year_transposition_and_swapped_names() {
        let v = query_variants(&query());
        let changes: Vec<&str> = v.iter().map(|v| v.change).collect();
        assert_eq!(
            changes,
            [
                "birth year one earlier",
                "birth year one later",
                "day and month transposed",
                "names swapped and birth year one earlier",
                "names swapped and birth year one later",
                "given and family names swapped",
                "family name and birth date only",
                "given name and birth date only",
            ]
        );
        assert_eq!(v[0].identity.dob, PartialDate::full(1989, 3, 7).ok());
        assert_eq!(v[1].identity.dob, PartialDate::full(1991, 3, 7).ok());
        assert_eq!(v[2].identity.dob, PartialDate::full(1990, 7, 3).ok());
        assert_eq!(v[3].identity.name.family, "MARIA");
        assert_eq!(v[3].identity.dob, PartialDate::full(1989, 3, 7).ok());
        assert_eq!(v[5].identity.name.given, "LOPEZ");
        assert_eq!(v[5].identity.name.family, "MARIA");
        assert_eq!(v[5].identity.dob, query().dob);
        assert_eq!(v[6].identity.name.given, "");
        assert_eq!(v[6].identity.name.family, "LOPEZ");
        assert_eq!(v[7].identity.name.given, "MARIA");
        assert_eq!(v[7].identity.name.family, "");
        assert!(v.iter().all(|x| x.identity != query()));
    }

    #[test]
    fn impossible_or_pointless_variants_are_left_out() {
        let mut q = query();
        // 29 February moved a year: 28 February, not an error.
        q.dob = PartialDate::full(2000, 2, 29).ok();
        let v = query_variants(&q);
        assert_eq!(v[0].identity.dob, PartialDate::full(1999, 2, 28).ok());
        // Day above 12, or equal to the month: no transposition.
        q.dob = PartialDate::full(1990, 5, 5).ok();
        assert!(!query_variants(&q)
            .iter()
            .any(|v| v.change == "day and month transposed"));
        // No birth date, no family name: nothing to vary.
        q.dob = None;
        q.name.family.clear();
        assert!(query_variants(&q).is_empty());
    }
}
