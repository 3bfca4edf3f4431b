//! verity-names: name normalization, transliteration, name-part parsing, variant families,
//! nicknames, phonetic keys, and name-part alignment for identity resolution.
//!
//! A wrong match can mean a wrong arrest, so comparison reports a graded agreement per part
//! (never one boolean), keeps "sounds alike" apart from "is the same name", treats nicknames as
//! a one-hop relation (BETO~ROBERTO and BETO~ALBERTO do not make ROBERTO~ALBERTO), and flags
//! order swaps explicitly instead of reporting them as exact.

pub mod compare;
mod normalize;
mod parse;
pub mod phonetic;
pub mod prepared;
pub mod similarity;
pub mod tables;

pub use compare::{
    compare_fast, compare_levels, compare_part, token_agreement, unit_agreement, PartKind,
    PartResult,
};
pub use prepared::{
    compare_levels_parts, compare_levels_prepared, NameLevels, PreparedName, SharedTokenTable,
    TokenId, TokenTable,
};
pub use tables::{validate_embedded, TableError};

/// A name split into normalized parts; family particles and compound surnames resolved,
/// East-Asian order handled, original script kept.
///
/// Each element is one name unit: a word, or a particle phrase such as "DE LA ROSA".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedName {
    pub given: Vec<String>,
    pub middle: Vec<String>,
    pub family: Vec<String>,
    /// The name in its original script when the record had one, else the name as recorded.
    pub original: String,
}

/// How well one name part agrees, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameAgreement {
    Exact,
    Equivalent,
    Phonetic,
    Fuzzy,
    Initial,
    Partial,
    Disagree,
    Missing,
}

/// Equivalent = same variant family / nickname / transliteration / gendered form.
#[derive(Debug, Clone, PartialEq)]
pub struct NameComparison {
    pub given: NameAgreement,
    pub middle: NameAgreement,
    pub family: NameAgreement,
    /// given and family were matched across each other (order swap)
    pub swapped: bool,
    /// 0..1 overall string similarity of the best alignment
    pub similarity: f32,
    /// one short human-readable line per decision, e.g. "given: JOSE ~ PEPE (nickname)"
    pub notes: Vec<String>,
}

/// Uppercase ASCII Latin form of one token or phrase: NFKD, diacritics dropped, other scripts
/// transliterated (deunicode), punctuation removed, apostrophes dropped, hyphens -> space,
/// spaces collapsed.
pub fn normalize(s: &str) -> String {
    normalize::normalize(s)
}

/// A name split into normalized parts; family particles and compound surnames resolved,
/// East-Asian order handled, original script kept.
pub fn parse(name: &verity_model::PersonName) -> ParsedName {
    parse::parse(name)
}

/// Compares two parsed names part by part (see [`compare`](mod@compare) for the rules).
pub fn compare(a: &ParsedName, b: &ParsedName) -> NameComparison {
    compare::compare(a, b)
}

/// Blocking keys, each prefixed by its kind: "fp:" phonetic family, "gc:" canonical given,
/// "fc:" canonical family, "fi:" family + given initial. Used by the candidate index.
///
/// Keys are built so that Equivalent agreements share a key: family keys use the particle-free
/// core, its canonical variant and its gendered-ending stems; given keys add the canonical
/// forms of nickname neighbours. Keys serve candidate recall only (ROBERTO and ALBERTO meet
/// through gc:BETO); match decisions come from `compare`.
pub fn blocking_keys(p: &ParsedName) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let initial = p.given.first().and_then(|g| g.chars().next());
    for unit in &p.family {
        let core: String = unit
            .split(' ')
            .filter(|w| {
                !matches!(
                    tables::tables().particles.get(*w),
                    Some(tables::ParticleKind::Article | tables::ParticleKind::Patronymic)
                )
            })
            .collect();
        let core = if core.is_empty() {
            unit.replace(' ', "")
        } else {
            core
        };
        for stem in compare::surname_stems(&core) {
            let canon = canonical(&stem);
            keys.push(format!("fc:{canon}"));
            if let Some(i) = initial {
                keys.push(format!("fi:{canon}|{i}"));
            }
        }
        for code in phonetic::metaphone_codes(&core) {
            keys.push(format!("fp:{code}"));
        }
    }
    let t = tables::tables();
    for unit in &p.given {
        let token = unit.replace(' ', "");
        keys.push(format!("gc:{}", canonical(&token)));
        if let Some(others) = t
            .nicknames
            .get(&token)
            .or_else(|| t.nicknames.get(&canonical(&token)))
        {
            for other in others {
                keys.push(format!("gc:{}", canonical(other)));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Canonical (variant-family) form of a normalized given-name or surname token.
pub fn canonical(token: &str) -> String {
    match tables::tables().variants.get(token) {
        Some(v) => v.canonical.clone(),
        None => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_model::PersonName;

    fn p(g: &str, m: &str, f: &str) -> ParsedName {
        parse(&PersonName::new(g, m, f))
    }

    #[test]
    fn nickname_relation_is_not_transitive() {
        let given = |a: &str, b: &str| compare(&p(a, "", "X"), &p(b, "", "X")).given;
        assert_eq!(given("BETO", "ROBERTO"), NameAgreement::Equivalent);
        assert_eq!(given("BETO", "ALBERTO"), NameAgreement::Equivalent);
        assert!(given("ROBERTO", "ALBERTO") > NameAgreement::Equivalent);
        assert_eq!(given("PEPE", "JOSE"), NameAgreement::Equivalent);
        assert_eq!(given("ALEX", "ALEJANDRO"), NameAgreement::Equivalent);
        assert_eq!(given("ALEX", "ALEXANDER"), NameAgreement::Equivalent);
        assert!(given("ALEJANDRO", "ALEXANDER") > NameAgreement::Equivalent);
    }

    #[test]
    fn notes_explain_each_decision() {
        let c = compare(&p("Jose", "", "Garcia"), &p("Pepe", "", "Garcia"));
        assert!(
            c.notes.iter().any(|n| n == "given: JOSE ~ PEPE (nickname)"),
            "{:?}",
            c.notes
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n == "family: GARCIA = GARCIA (same)"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn swap_is_weaker_than_exact() {
        let exact = compare(&p("Jose", "", "Garcia"), &p("Jose", "", "Garcia"));
        let swapped = compare(&p("Jose", "", "Garcia"), &p("Garcia", "", "Jose"));
        assert!(!exact.swapped && swapped.swapped);
        assert!(swapped.similarity < exact.similarity);
        assert!(swapped.given > NameAgreement::Exact && swapped.family > NameAgreement::Exact);
        // A swap is only taken when both crossed parts match.
        let half = compare(&p("Jose", "", "Garcia"), &p("Garcia", "", "Martinez"));
        assert!(!half.swapped);
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical("MUHAMMAD"), "MOHAMMED");
        assert_eq!(canonical("OLEKSANDR"), "ALEXANDER");
        assert_eq!(canonical("CHEUNG"), "ZHANG");
        assert_eq!(canonical("MAHMOUD"), "MAHMOUD");
        assert_eq!(canonical("UNLISTED"), "UNLISTED");
    }

    #[test]
    fn blocking_keys_connect_equivalent_names() {
        let shares = |a: &ParsedName, b: &ParsedName, prefix: &str| {
            let kb = blocking_keys(b);
            blocking_keys(a)
                .iter()
                .any(|k| k.starts_with(prefix) && kb.contains(k))
        };
        assert!(shares(
            &p("Anna", "", "Petrova"),
            &p("Anna", "", "Petrov"),
            "fc:"
        ));
        assert!(shares(
            &p("Anna", "", "Novakova"),
            &p("Anna", "", "Novak"),
            "fc:"
        ));
        assert!(shares(
            &p("Wei", "", "Cheung"),
            &p("Wei", "", "Zhang"),
            "fc:"
        ));
        assert!(shares(
            &p("Ana", "", "de la Rosa"),
            &p("Ana", "", "Rosa"),
            "fc:"
        ));
        assert!(shares(
            &p("Jose", "", "Garcia"),
            &p("Pepe", "", "Lopez"),
            "gc:"
        ));
        assert!(shares(
            &p("Mohammed", "", "Ali"),
            &p("Muhammad", "", "Aly"),
            "gc:"
        ));
        assert!(shares(
            &p("Jose", "", "Garcia"),
            &p("J", "", "Garcia"),
            "fi:"
        ));
        assert!(shares(
            &p("Steven", "", "Tchaikovsky"),
            &p("S", "", "Chaykovskiy"),
            "fp:"
        ));
        // Different names with no shared nickname do not share a given key.
        assert!(!shares(&p("Maria", "", "X"), &p("Mario", "", "Y"), "gc:"));
        let keys = blocking_keys(&p("Jose", "", "Garcia"));
        assert!(keys.iter().all(|k| ["fp:", "gc:", "fc:", "fi:"]
            .iter()
            .any(|pre| k.starts_with(pre))));
        assert!(blocking_keys(&ParsedName::default()).is_empty());
    }
}
