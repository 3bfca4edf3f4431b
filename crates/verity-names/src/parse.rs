//! Splitting a recorded name into normalized parts.
//!
//! Each element of `ParsedName::{given, middle, family}` is one name *unit*: usually one word,
//! but particles bind to the word they introduce (DE LA ROSA, VAN DER BERG, AL RASHID,
//! BIN LADEN) and Arabic ABD- compounds stay together (ABDUL RAHMAN, ABD AL AZIZ), so that
//! "GARCIA DE LA ROSA" is the two surnames [GARCIA, DE LA ROSA]. Conjunctions between
//! surnames (GARCIA Y LOPEZ) are dropped. Family-first order is corrected only on evidence:
//! an original in Han/Hangul script, or a single-field name starting with a known East-Asian
//! surname; everything else is left to the order-tolerant alignment in `compare`.

use crate::normalize::{has_east_asian_script, normalize};
use crate::tables::{tables, ParticleKind};
use crate::ParsedName;
use verity_model::PersonName;

/// Word-forms that open an Arabic "servant of" compound and bind to the following name.
const ABD_PREFIXES: &[&str] = &[
    "ABD", "ABDUL", "ABDEL", "ABDOUL", "ABDAL", "ABDOL", "ABDU", "ABDUR", "ABDUS",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Forename,
    Family,
}

fn words(s: &str) -> Vec<String> {
    normalize(s)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

fn particle(word: &str) -> Option<ParticleKind> {
    tables().particles.get(word).copied()
}

/// Groups normalized words into name units (see module doc).
fn units(words: &[String], field: Field) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prefix: Vec<&str> = Vec::new();
    let n = words.len();
    let mut i = 0;
    while i < n {
        let w = words[i].as_str();
        let has_next = i + 1 < n;
        if has_next && ABD_PREFIXES.contains(&w) {
            // ABD [AL|EL|UL|...] NAME
            let mut unit = vec![w];
            let mut j = i + 1;
            if j + 1 < n && particle(&words[j]) == Some(ParticleKind::Article) {
                unit.push(&words[j]);
                j += 1;
            }
            unit.push(&words[j]);
            prefix.extend(unit);
            out.push(prefix.join(" "));
            prefix.clear();
            i = j + 1;
            continue;
        }
        let kind = particle(w);
        let binds = match (field, kind) {
            (Field::Family, Some(ParticleKind::Article | ParticleKind::Patronymic)) => has_next,
            // In forenames only medial articles bind (MARIA DE LOS ANGELES); a leading or
            // trailing one is a name in its own right (BEN, AL, VAN as a Vietnamese middle name).
            (Field::Forename, Some(ParticleKind::Article)) => has_next && !out.is_empty(),
            _ => false,
        };
        if binds {
            prefix.push(w);
        } else if kind == Some(ParticleKind::Conjunction)
            && field == Field::Family
            && !out.is_empty()
            && has_next
            && prefix.is_empty()
        {
            // GARCIA Y LOPEZ: the conjunction only joins two surnames.
        } else {
            prefix.push(w);
            out.push(prefix.join(" "));
            prefix.clear();
        }
        i += 1;
    }
    if !prefix.is_empty() {
        out.push(prefix.join(" "));
    }
    out
}

fn compact(ws: &[String]) -> String {
    ws.concat().replace(' ', "")
}

/// Splits a recorded name into normalized parts (see module doc).
pub fn parse(name: &PersonName) -> ParsedName {
    let mut given = words(&name.given);
    let mut middle = words(&name.middle);
    let mut family = words(&name.family);
    let eastern_original = has_east_asian_script(&name.original);
    let ea = &tables().east_asian_surnames;

    if given.is_empty() && middle.is_empty() && family.is_empty() && !name.original.is_empty() {
        // Only a full name in the original field: split it ourselves.
        let mut all = words(&name.original);
        if eastern_original && all.len() >= 2 {
            family = vec![all.remove(0)];
            given = all;
        } else if let Some(last) = all.pop() {
            family = vec![last];
            if !all.is_empty() {
                given = vec![all.remove(0)];
            }
            middle = all;
        }
    } else if given.is_empty() && middle.is_empty() && family.len() >= 2 {
        // A single-field full name written family-first: ZHANG WEI, NGUYEN VAN AN.
        let common = &tables().common_surnames;
        let western_surname_follows = family[1..]
            .iter()
            .any(|w| common.contains(w) && !ea.contains(w));
        if ea.contains(&family[0]) && !western_surname_follows {
            let rest = family.split_off(1);
            given = rest;
        }
    } else if eastern_original && !given.is_empty() && !family.is_empty() {
        // The original script is family-first; if the Latin fields were filled in the
        // original's order, the given field holds the family name.
        let orig = compact(&words(&name.original));
        let (g, f) = (compact(&given), compact(&family));
        if g != f && orig.starts_with(&g) && orig.ends_with(&f) && !orig.starts_with(&f) {
            std::mem::swap(&mut given, &mut family);
        }
    }

    ParsedName {
        given: units(&given, Field::Forename),
        middle: units(&middle, Field::Forename),
        family: units(&family, Field::Family),
        original: if name.original.is_empty() {
            name.to_string()
        } else {
            name.original.clone()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(g: &str, m: &str, f: &str) -> ParsedName {
        parse(&PersonName::new(g, m, f))
    }

    #[test]
    fn compound_surnames_and_particles() {
        assert_eq!(p("José", "", "García López").family, ["GARCIA", "LOPEZ"]);
        assert_eq!(
            p("Ana", "", "García de la Rosa").family,
            ["GARCIA", "DE LA ROSA"]
        );
        assert_eq!(p("Ana", "", "García y López").family, ["GARCIA", "LOPEZ"]);
        assert_eq!(p("Jan", "", "van der Berg").family, ["VAN DER BERG"]);
        assert_eq!(p("Mohammed", "", "al-Rashid").family, ["AL RASHID"]);
        assert_eq!(p("Osama", "", "bin Laden").family, ["BIN LADEN"]);
        assert_eq!(p("Anne", "", "Smith-Jones").family, ["SMITH", "JONES"]);
        assert_eq!(p("Thi", "", "Le").family, ["LE"]);
        assert_eq!(
            p("Maria", "de los Angeles", "Cruz").middle,
            ["DE", "LOS ANGELES"]
        );
    }

    #[test]
    fn forename_units() {
        assert_eq!(
            p("Maria de los Angeles", "", "Cruz").given,
            ["MARIA", "DE LOS ANGELES"]
        );
        assert_eq!(p("Abdul Rahman", "", "Khan").given, ["ABDUL RAHMAN"]);
        assert_eq!(p("Abd al-Aziz", "", "Saleh").given, ["ABD AL AZIZ"]);
        assert_eq!(p("Ben", "", "Smith").given, ["BEN"]);
        assert_eq!(p("Jean-Pierre", "", "Louis").given, ["JEAN", "PIERRE"]);
        assert_eq!(p("Van", "", "Nguyen").given, ["VAN"]);
        assert_eq!(p("Thanh Van", "", "Nguyen").given, ["THANH", "VAN"]);
    }

    #[test]
    fn east_asian_order() {
        let n = p("", "", "Zhang Wei");
        assert_eq!(
            (n.given, n.family),
            (vec!["WEI".to_string()], vec!["ZHANG".to_string()])
        );
        let mut name = PersonName::new("Zhang", "", "Wei");
        name.original = "张伟".into();
        let n = parse(&name);
        assert_eq!(
            (n.given, n.family),
            (vec!["WEI".to_string()], vec!["ZHANG".to_string()])
        );
        assert_eq!(n.original, "张伟");
        // Correct order with the original: unchanged.
        let mut name = PersonName::new("Wei", "", "Zhang");
        name.original = "张伟".into();
        assert_eq!(parse(&name).family, ["ZHANG"]);
        // A compound surname that is not East-Asian stays a compound surname.
        assert_eq!(p("", "", "Garcia Lopez").family, ["GARCIA", "LOPEZ"]);
        assert_eq!(p("", "", "Lee Smith").family, ["LEE", "SMITH"]);
    }

    #[test]
    fn original_only() {
        let name = PersonName {
            original: "Иван Петров".into(),
            ..Default::default()
        };
        let n = parse(&name);
        assert_eq!(
            (n.given.clone(), n.family.clone()),
            (vec!["IVAN".to_string()], vec!["PETROV".to_string()])
        );
        assert_eq!(n.original, "Иван Петров");
    }

    #[test]
    fn empty_and_punctuation_only() {
        assert_eq!(
            p("", "", ""),
            ParsedName {
                original: String::new(),
                ..Default::default()
            }
        );
        assert!(p("--", ".", "'").family.is_empty());
    }
}
