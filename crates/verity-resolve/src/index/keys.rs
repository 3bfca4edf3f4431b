//! What the candidate index knows about one identity, and how that becomes dictionary terms.
//!
//! Every term carries a namespace so that one dictionary holds all kinds without collisions:
//! `n:` normalized name token (typo-expandable), `b:` blocking key from `verity-names`
//! (`fp:`, `gc:`, `fc:`, `fi:`), `y:` a blocking key compounded with the birth year, and `i:`
//! an identifier. Compounding a phonetic family key with the birth year turns two very common
//! keys into one selective key (a precomputed intersection), which keeps search fast on
//! common names.

use verity_model::Identity;

/// Namespace of name tokens.
pub const NAME_NS: &str = "n:";
/// Namespace of blocking keys indexed alone.
pub const BLOCK_NS: &str = "b:";
/// Namespace of blocking keys compounded with a birth year.
pub const YEAR_NS: &str = "y:";
/// Namespace of identifiers.
pub const ID_NS: &str = "i:";

/// Initials key (given initial + family initial): indexed only with the birth year, because
/// alone it matches a large share of the population.
pub const INITIALS_KIND: &str = "in:";
/// Blocking kinds that are also indexed compounded with the birth year.
const YEAR_COMPOUND_KINDS: [&str; 2] = ["fp:", INITIALS_KIND];

/// Keys of one identity (or one query).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexKeys {
    /// Normalized name tokens (uppercase ASCII) of the name and its aliases.
    pub tokens: Vec<String>,
    /// Blocking keys, each prefixed by its kind (`fp:`, `gc:`, `fc:`, `fi:`, `in:`).
    pub blocking: Vec<String>,
    pub birth_year: Option<u16>,
    /// Identifiers prefixed by kind: `a:`, `fin:`, `fbi:`, `sid:`, `ssn:`, `pp:` (passport
    /// document number without its country, which is often miskeyed).
    pub ids: Vec<String>,
}

impl IndexKeys {
    /// Keys of an identity: its name and every alias.
    pub fn from_identity(id: &Identity) -> Self {
        let mut keys = IndexKeys {
            birth_year: id.dob.map(|d| d.year),
            ..IndexKeys::default()
        };
        for name in std::iter::once(&id.name).chain(id.aliases.iter()) {
            let parsed = verity_names::parse(name);
            let parts = parsed
                .given
                .iter()
                .chain(parsed.middle.iter())
                .chain(parsed.family.iter());
            for part in parts {
                // A parsed part may still hold spaces (compound surnames); index each word.
                keys.tokens
                    .extend(part.split_whitespace().map(str::to_string));
            }
            keys.blocking.extend(verity_names::blocking_keys(&parsed));
            let initial = |v: &[String]| v.first().and_then(|s| s.chars().next());
            if let (Some(g), Some(f)) = (initial(&parsed.given), initial(&parsed.family)) {
                keys.blocking.push(format!("{INITIALS_KIND}{g}{f}"));
            }
        }
        let ids = &id.ids;
        let mut push_id = |kind: &str, value: Option<&str>| {
            if let Some(v) = value {
                keys.ids.push(format!("{kind}{v}"));
            }
        };
        push_id("a:", ids.a_number.as_ref().map(|v| v.as_str()));
        push_id("fin:", ids.fin.as_ref().map(|v| v.as_str()));
        push_id("fbi:", ids.fbi_number.as_ref().map(|v| v.as_str()));
        push_id("sid:", ids.state_id.as_ref().map(|v| v.as_str()));
        push_id("ssn:", ids.ssn.as_ref().map(|v| v.as_str()));
        push_id("pp:", ids.passport.as_ref().map(|v| v.number.as_str()));
        keys.tokens.retain(|t| !t.is_empty());
        sort_dedup(&mut keys.tokens);
        sort_dedup(&mut keys.blocking);
        sort_dedup(&mut keys.ids);
        keys
    }

    /// Calls `f` with every dictionary term of a document (duplicates possible when the
    /// keys hold duplicates). `buf` is reused to avoid one allocation per term.
    pub(crate) fn for_each_doc_term(&self, buf: &mut String, mut f: impl FnMut(&str)) {
        for t in self.tokens.iter().filter(|t| !t.is_empty()) {
            namespaced(buf, NAME_NS, t);
            f(buf);
        }
        for b in self.blocking.iter().filter(|b| !b.is_empty()) {
            if !b.starts_with(INITIALS_KIND) {
                namespaced(buf, BLOCK_NS, b);
                f(buf);
            }
            if let Some(year) = self.birth_year {
                if is_year_compound(b) {
                    year_term(buf, b, year);
                    f(buf);
                }
            }
        }
        for i in self.ids.iter().filter(|i| !i.is_empty()) {
            namespaced(buf, ID_NS, i);
            f(buf);
        }
    }
}

fn sort_dedup(v: &mut Vec<String>) {
    v.sort();
    v.dedup();
}

pub(crate) fn is_year_compound(blocking_key: &str) -> bool {
    YEAR_COMPOUND_KINDS
        .iter()
        .any(|k| blocking_key.starts_with(k))
}

pub(crate) fn namespaced(buf: &mut String, ns: &str, key: &str) {
    buf.clear();
    buf.push_str(ns);
    buf.push_str(key);
}

pub(crate) fn year_term(buf: &mut String, key: &str, year: u16) {
    use std::fmt::Write;
    buf.clear();
    buf.push_str(YEAR_NS);
    buf.push_str(key);
    // Writing to a String cannot fail.
    let _ = write!(buf, "|{year:04}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_model::{ANumber, PartialDate, Passport, PersonName, Ssn};

    fn identity() -> Identity {
        let mut id = Identity {
            name: PersonName::new("Jose Luis", "", "Garcia Lopez"),
            aliases: vec![PersonName::new("Pepe", "", "Garcia")],
            dob: PartialDate::full(1985, 3, 12).ok(),
            ..Identity::default()
        };
        id.ids.a_number = ANumber::parse("A12345678").ok();
        id.ids.ssn = Ssn::parse("123-45-6789").ok();
        id.ids.passport = Passport::parse("MX:G1234567").ok();
        id
    }

    #[test]
    fn keys_from_identity_cover_names_aliases_year_and_ids() {
        let k = IndexKeys::from_identity(&identity());
        for t in ["JOSE", "LUIS", "GARCIA", "LOPEZ", "PEPE"] {
            assert!(
                k.tokens.iter().any(|x| x == t),
                "token {t} in {:?}",
                k.tokens
            );
        }
        assert_eq!(k.birth_year, Some(1985));
        assert_eq!(
            k.ids,
            vec![
                "a:012345678".to_string(),
                "pp:G1234567".into(),
                "ssn:123456789".into()
            ]
        );
        assert!(k.blocking.iter().any(|b| b == "in:JG"));
        assert!(k.blocking.iter().any(|b| b == "in:PG"));
    }

    #[test]
    fn doc_terms_are_namespaced_and_initials_only_with_year() {
        let k = IndexKeys {
            tokens: vec!["ANA".into()],
            blocking: vec!["fp:S530".into(), "in:AS".into(), "gc:ANNA".into()],
            birth_year: Some(1990),
            ids: vec!["fin:1234567890".into()],
        };
        let mut terms = Vec::new();
        k.for_each_doc_term(&mut String::new(), |t| terms.push(t.to_string()));
        terms.sort();
        assert_eq!(
            terms,
            vec![
                "b:fp:S530",
                "b:gc:ANNA",
                "i:fin:1234567890",
                "n:ANA",
                "y:fp:S530|1990",
                "y:in:AS|1990"
            ]
        );
        let no_year = IndexKeys {
            birth_year: None,
            ..k
        };
        let mut n = 0;
        no_year.for_each_doc_term(&mut String::new(), |t| {
            assert!(!t.starts_with("y:"));
            n += 1;
        });
        assert_eq!(n, 4);
    }
}
