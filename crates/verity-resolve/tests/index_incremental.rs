//! Incremental updates: inserts after a build, removals, merges, and equality with a batch
//! build of the same live records.

use proptest::prelude::*;
use verity_resolve::index::{CandidateIndex, IndexConfig, IndexKeys};

fn keys(tokens: &[&str], year: Option<u16>, ids: &[&str]) -> IndexKeys {
    IndexKeys {
        tokens: tokens.iter().map(|t| t.to_string()).collect(),
        blocking: tokens
            .iter()
            .take(1)
            .map(|t| format!("fp:{}", &t[..1]))
            .collect(),
        birth_year: year,
        ids: ids.iter().map(|i| i.to_string()).collect(),
    }
}

#[test]
fn insert_after_build_is_found_and_remove_hides() {
    let mut idx = CandidateIndex::build(vec![
        (1, keys(&["MARIA", "LOPEZ"], Some(1980), &[])),
        (2, keys(&["JUAN", "PEREZ"], Some(1975), &["a:012345678"])),
    ]);
    let late = keys(&["KATERYNA", "SHEVCHENKO"], Some(1991), &["fin:1234567890"]);
    idx.insert(3, &late);
    assert_eq!(idx.candidates(&late, 5).first().map(|x| x.0), Some(3));
    // Typo expansion reaches tokens that exist only in the delta.
    let typo = keys(&["KATERINA"], None, &[]);
    assert_eq!(idx.candidates(&typo, 5), vec![(3, 2)]); // token + fp:K

    let juan = keys(&["JUAN", "PEREZ"], Some(1975), &["a:012345678"]);
    idx.remove(2, &juan);
    assert!(idx.candidates(&juan, 5).is_empty());
    idx.remove(3, &late);
    assert!(idx.candidates(&late, 5).is_empty());
    idx.merge();
    assert!(idx.candidates(&juan, 5).is_empty());
    assert!(idx.candidates(&late, 5).is_empty());
    assert_eq!(
        idx.candidates(&keys(&["MARIA"], None, &[]), 5),
        vec![(1, 2)]
    );
}

#[test]
fn reinserted_doc_shows_only_its_new_keys() {
    let mut idx =
        CandidateIndex::build(vec![(7, keys(&["OLD", "NAME"], None, &["ssn:111111111"]))]);
    let old = keys(&["OLD", "NAME"], None, &["ssn:111111111"]);
    let new = keys(&["NEW", "PERSON"], None, &["ssn:222222222"]);
    idx.remove(7, &old);
    idx.insert(7, &new);
    assert!(idx.candidates(&old, 5).is_empty());
    assert_eq!(idx.candidates(&new, 5).first().map(|x| x.0), Some(7));
    idx.merge();
    assert!(idx.candidates(&old, 5).is_empty());
    assert_eq!(idx.docs_for_term("i:ssn:222222222"), vec![7]);
}

#[test]
fn merge_threshold_triggers_merge_without_changing_results() {
    let config = IndexConfig {
        merge_threshold: 10,
        ..IndexConfig::default()
    };
    let mut idx = CandidateIndex::with_config(config);
    for d in 0..40u32 {
        idx.insert(d, &keys(&["SAME", &format!("T{d:03}X")], Some(1970), &[]));
    }
    let stats = idx.stats();
    assert!(stats.terms > 0, "merges happened: {stats:?}");
    assert!(stats.delta_changes < 10);
    let found = idx.candidates(&keys(&["SAME"], None, &[]), 100);
    assert_eq!(found.len(), 40);
}

const VOCAB: &[&str] = &[
    "ANA",
    "ANNA",
    "JOSE",
    "JOSA",
    "MARIA",
    "MARIO",
    "GARCIA",
    "GARZIA",
    "LOPEZ",
    "LOPES",
    "NGUYEN",
    "NGUYENN",
    "ALEXANDER",
    "ALEKSANDER",
    "OLEKSANDR",
    "SMITH",
    "SMYTH",
    "WEI",
];

fn arb_keys() -> impl Strategy<Value = IndexKeys> {
    (
        proptest::collection::vec(0..VOCAB.len(), 1..4),
        proptest::option::of(1960u16..1966),
        proptest::option::of(0u32..12),
    )
        .prop_map(|(toks, year, id)| {
            let tokens: Vec<&str> = toks.iter().map(|&i| VOCAB[i]).collect();
            let id = id.map(|i| format!("a:{i:09}"));
            let ids: Vec<&str> = id.iter().map(String::as_str).collect();
            keys(&tokens, year, &ids)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Built at once vs inserted one by one (merging at random points, removing some docs):
    /// every query returns the same ranked candidates.
    #[test]
    fn incremental_equals_batch(
        records in proptest::collection::vec(arb_keys(), 1..40),
        removed in proptest::collection::vec(any::<bool>(), 40),
        merge_every in 1usize..30,
        common in 2u64..12,
        budget in 1u64..40,
        forward_min_docs in 0u64..8,
        queries in proptest::collection::vec(arb_keys(), 1..8),
    ) {
        // forward_min_docs 0 disables the forward index; small values make most terms
        // frequent, so inserts and removals after a build patch terms the forward index knows.
        let config = IndexConfig {
            common_key_docs: common,
            enumerate_budget: budget,
            merge_threshold: merge_every * 4,
            max_expansions: 3,
            max_fallback_candidates: 1000,
            forward_min_docs,
            ..IndexConfig::default()
        };
        let mut inc = CandidateIndex::with_config(config.clone());
        for (d, k) in records.iter().enumerate() {
            inc.insert(d as u32, k);
            if d % merge_every == 0 {
                inc.merge();
            }
        }
        for (d, k) in records.iter().enumerate() {
            if removed[d] {
                inc.remove(d as u32, k);
            }
        }
        let live = records
            .iter()
            .enumerate()
            .filter(|(d, _)| !removed[*d])
            .map(|(d, k)| (d as u32, k.clone()));
        let batch = CandidateIndex::build_with_config(live, config);
        for q in &queries {
            prop_assert_eq!(inc.candidates(q, 1000), batch.candidates(q, 1000));
            prop_assert_eq!(inc.candidates(q, 3), batch.candidates(q, 3));
        }
        inc.merge();
        for q in &queries {
            prop_assert_eq!(inc.candidates(q, 1000), batch.candidates(q, 1000));
        }
    }
}

#[test]
fn typo_expansion_reaches_many_delta_only_tokens() {
    // More novel tokens than one linear batch: early ones are folded into the novel fst set.
    let letters = |n: u32| -> String {
        (0..4)
            .map(|i| char::from(b'A' + ((n / 26u32.pow(i)) % 26) as u8))
            .collect()
    };
    let only = |t: &str| IndexKeys {
        tokens: vec![t.to_string()],
        ..IndexKeys::default()
    };
    let mut idx = CandidateIndex::build(vec![(0, only("BASE"))]);
    for d in 1..=1500u32 {
        idx.insert(d, &only(&format!("ZQ{}", letters(d))));
    }
    for d in [3u32, 1499] {
        let token = format!("ZQ{}", letters(d));
        let typo = format!("{}X", token); // one insertion
        let found = idx.candidates(&only(&typo), 2000);
        assert!(found.iter().any(|&(doc, _)| doc == d), "{token}: {found:?}");
        assert!(found.len() < 20, "{found:?}");
        let before = found.len();
        idx.merge();
        assert_eq!(idx.candidates(&only(&typo), 2000).len(), before);
    }
}

#[test]
fn forward_index_stays_exact_after_inserts_removals_and_merges() {
    // Every term with 2+ docs is frequent, so the forward index answers for most query terms;
    // changes after the build patch those terms through the delta until the next merge.
    let config = IndexConfig {
        common_key_docs: 3,
        enumerate_budget: 4,
        forward_min_docs: 2,
        ..IndexConfig::default()
    };
    let people = |d: u32| {
        let t = VOCAB[d as usize % VOCAB.len()];
        let u = VOCAB[(d as usize * 7 + 3) % VOCAB.len()];
        keys(&[t, u], Some(1960 + (d % 4) as u16), &[])
    };
    let mut idx = CandidateIndex::build_with_config((0..60).map(|d| (d, people(d))), config);
    assert!(idx.stats().memory.frequent_terms > 0);
    let queries: Vec<IndexKeys> = (0..20).map(|d| people(d * 3)).collect();
    let check = |idx: &CandidateIndex| {
        for q in &queries {
            assert_eq!(idx.candidates(q, 10), idx.candidates_reference(q, 10));
            assert_eq!(idx.candidates(q, 100), idx.candidates_reference(q, 100));
        }
    };
    check(&idx);
    for d in (0..60).step_by(5) {
        idx.remove(d, &people(d));
    }
    for d in 60..90 {
        idx.insert(d, &people(d));
    }
    // a removed doc comes back under other keys
    idx.insert(5, &people(11));
    check(&idx);
    let removed = idx.candidates(&people(10), 100);
    assert!(removed.iter().all(|&(d, _)| d != 10), "removed doc found");
    idx.merge();
    check(&idx);
    assert!(idx.stats().memory.forward > 0);
}
