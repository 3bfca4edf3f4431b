//! Candidate search: typo expansion rules, exact identifiers, ranking, limits, common keys.

use verity_model::{ANumber, Identity, PartialDate, PersonName, Ssn};
use verity_resolve::index::{CandidateIndex, IndexConfig, IndexKeys};

fn tokens(words: &[&str]) -> IndexKeys {
    IndexKeys {
        tokens: words.iter().map(|w| w.to_string()).collect(),
        ..IndexKeys::default()
    }
}

fn docs(found: &[(u32, u32)]) -> Vec<u32> {
    let mut d: Vec<u32> = found.iter().map(|&(doc, _)| doc).collect();
    d.sort_unstable();
    d
}

fn typo_index() -> CandidateIndex {
    let words = [
        (1, "JOSE"),
        (2, "JOSA"),
        (3, "ROSE"),
        (4, "JSOE"),
        (5, "JOE"),
        (6, "JOSEFINA"),
        (10, "ALEXANDER"),
        (11, "ALEKSANDER"),
        (12, "ELEXANDER"),
        (13, "OLEXANDAR"),
        (14, "ALEXANDRA"),
        (15, "ALXNDR"),
    ];
    CandidateIndex::build(words.iter().map(|&(d, w)| (d, tokens(&[w]))))
}

#[test]
fn one_typo_for_tokens_of_four_letters_or_more() {
    let idx = typo_index();
    // JOSA (substitution), ROSE (substitution of the first letter), JSOE (transposition),
    // JOE (deletion); not JOSEFINA.
    assert_eq!(
        docs(&idx.candidates(&tokens(&["JOSE"]), 100)),
        vec![1, 2, 3, 4, 5]
    );
    // A three-letter token matches exactly only.
    assert_eq!(docs(&idx.candidates(&tokens(&["JOE"]), 100)), vec![5]);
    assert_eq!(
        docs(&idx.candidates(&tokens(&["JOS"]), 100)),
        Vec::<u32>::new()
    );
}

#[test]
fn two_typos_only_from_eight_letters_and_with_the_first_letter_kept() {
    let idx = typo_index();
    // ALEKSANDER (2 edits, A kept), ELEXANDER (1 edit), ALEXANDRA (2 edits, A kept);
    // not OLEXANDAR (2 edits, first letter changed) nor ALXNDR (3 edits).
    assert_eq!(
        docs(&idx.candidates(&tokens(&["ALEXANDER"]), 100)),
        vec![10, 11, 12, 14]
    );
    // Below eight letters one edit only: JOSFINA -> JOSEFINA (1 edit), JSFINA does not (2).
    assert_eq!(docs(&idx.candidates(&tokens(&["JOSFINA"]), 100)), vec![6]);
    assert!(idx.candidates(&tokens(&["JSFINA"]), 100).is_empty());
}

#[test]
fn identifiers_match_exactly_and_dominate_the_ranking() {
    let name_heavy = IndexKeys {
        tokens: vec!["MARIA".into(), "GARCIA".into()],
        blocking: vec!["fc:GARCIA".into(), "gc:MARIA".into(), "fp:G620".into()],
        birth_year: Some(1980),
        ids: vec!["ssn:123456780".into()],
    };
    let id_only = IndexKeys {
        tokens: vec!["PEDRO".into()],
        ids: vec!["ssn:123456789".into()],
        ..IndexKeys::default()
    };
    let idx = CandidateIndex::build(vec![(1, name_heavy.clone()), (2, id_only)]);
    let query = IndexKeys {
        ids: vec!["ssn:123456789".into()],
        ..name_heavy
    };
    let found = idx.candidates(&query, 10);
    assert_eq!(found.first().map(|&(d, _)| d), Some(2), "{found:?}");
    assert!(
        found.iter().any(|&(d, hits)| d == 1 && hits >= 5),
        "{found:?}"
    );
    // One digit off is not a hit: identifiers are never typo-expanded.
    let off = IndexKeys {
        ids: vec!["ssn:123456788".into()],
        ..IndexKeys::default()
    };
    assert!(idx.candidates(&off, 10).is_empty());
}

#[test]
fn limit_is_respected_and_ties_break_by_doc_id() {
    let idx = CandidateIndex::build((0..50).map(|d| (d, tokens(&["SMITH"]))));
    let found = idx.candidates(&tokens(&["SMITH"]), 7);
    assert_eq!(found, (0..7).map(|d| (d, 1)).collect::<Vec<_>>());
    assert!(idx.candidates(&tokens(&["SMITH"]), 0).is_empty());
}

#[test]
fn more_keys_hit_rank_higher() {
    let idx = CandidateIndex::build(vec![
        (1, tokens(&["ANA", "LOPEZ"])),
        (2, tokens(&["ANA", "LOPEZ", "RUIZ"])),
        (3, tokens(&["ANA"])),
    ]);
    let found = idx.candidates(&tokens(&["ANA", "LOPEZ", "RUIZ"]), 10);
    assert_eq!(found, vec![(2, 3), (1, 2), (3, 1)]);
}

#[test]
fn typo_variants_of_one_token_count_once() {
    // Doc 1 holds both JOSE and JOSA: one query token, so one key hit.
    let idx = CandidateIndex::build(vec![(1, tokens(&["JOSE", "JOSA"]))]);
    assert_eq!(idx.candidates(&tokens(&["JOSE"]), 10), vec![(1, 1)]);
}

#[test]
fn common_keys_only_count_for_docs_reached_otherwise() {
    let config = IndexConfig {
        common_key_docs: 3,
        ..IndexConfig::default()
    };
    let mut records: Vec<(u32, IndexKeys)> = (0..10).map(|d| (d, tokens(&["SMITH"]))).collect();
    records.push((20, tokens(&["SMITH", "ZYGMUNT"])));
    records.push((21, tokens(&["ZYGMUNT"])));
    let idx = CandidateIndex::build_with_config(records, config);
    // SMITH (11 docs) is common: only docs reached by ZYGMUNT are candidates.
    let found = idx.candidates(&tokens(&["SMITH", "ZYGMUNT"]), 100);
    assert_eq!(found, vec![(20, 2), (21, 1)]);
    // Every key common: candidates come from the intersection, bounded.
    let only_common = idx.candidates(&tokens(&["SMITH"]), 100);
    assert_eq!(only_common.len(), 11);
}

#[test]
fn birth_year_compound_keys_tolerate_one_year_off() {
    let rec = |year| IndexKeys {
        blocking: vec!["fp:S530".into(), "in:JS".into()],
        birth_year: Some(year),
        ..IndexKeys::default()
    };
    let idx = CandidateIndex::build(vec![(1, rec(1980)), (2, rec(1981)), (3, rec(1983))]);
    let found = idx.candidates(&rec(1980), 10);
    // Doc 1: fp, fp+year, in+year; doc 2: fp and both compounds via ±1; doc 3: fp only.
    assert_eq!(found, vec![(1, 3), (2, 3), (3, 1)]);
}

#[test]
fn identities_are_found_through_aliases_typos_and_ids() {
    let person = |given: &str, family: &str, year: u16| Identity {
        name: PersonName::new(given, "", family),
        dob: PartialDate::full(year, 6, 1).ok(),
        ..Identity::default()
    };
    let mut a = person("Fernando", "Castellanos", 1975);
    a.aliases.push(PersonName::new("Nando", "", "Castel"));
    let mut b = person("Wei", "Zhang", 1990);
    b.ids.a_number = ANumber::parse("A87654321").ok();
    let c = person("Olga", "Petrova", 1962);
    let mut c2 = c.clone();
    c2.ids.ssn = Ssn::parse("987-65-4321").ok();
    let idx = CandidateIndex::build(
        [a, b, c2]
            .iter()
            .enumerate()
            .map(|(i, p)| (i as u32, IndexKeys::from_identity(p))),
    );
    // Typo in the family name (one edit on a long token).
    let q = IndexKeys::from_identity(&person("Fernando", "Castelanos", 1975));
    assert_eq!(idx.candidates(&q, 1).first().map(|x| x.0), Some(0));
    // Alias.
    let q = IndexKeys::from_identity(&person("Nando", "Castel", 1976));
    assert_eq!(idx.candidates(&q, 1).first().map(|x| x.0), Some(0));
    // A-number alone.
    let mut q = Identity::default();
    q.ids.a_number = ANumber::parse("87654321").ok();
    assert_eq!(
        idx.candidates(&IndexKeys::from_identity(&q), 5),
        vec![(1, 1)]
    );
    // Unknown person: nothing shared.
    let q = IndexKeys::from_identity(&person("Quentin", "Yarborough", 2001));
    assert!(idx.candidates(&q, 5).is_empty());
}
