//! Property tests: normalization is idempotent; a name compared with itself is all Exact on
//! its non-empty parts and never swapped; comparison is symmetric in its agreement levels;
//! nothing panics on arbitrary input, including unnormalized parts built by hand.

use proptest::prelude::*;
use verity_model::PersonName;
use verity_names::{
    blocking_keys, compare, compare_fast, compare_levels, normalize, parse, NameAgreement,
    ParsedName,
};

fn name_strategy() -> impl Strategy<Value = PersonName> {
    // Realistic-looking words plus particles, hyphens, diacritics and other scripts.
    let word = prop_oneof![
        "[A-Z]{1,9}",
        Just("DE".to_string()),
        Just("LA".to_string()),
        Just("AL".to_string()),
        Just("Y".to_string()),
        Just("ABDUL".to_string()),
        Just("José".to_string()),
        Just("Нгуен".to_string()),
        Just("张".to_string()),
        Just("O'NEIL".to_string()),
        Just("SMITH-JONES".to_string()),
    ];
    let part = prop::collection::vec(word, 0..4).prop_map(|ws| ws.join(" "));
    (part.clone(), part.clone(), part).prop_map(|(g, m, f)| PersonName::new(&g, &m, &f))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn normalize_is_idempotent(s in "\\PC{0,40}") {
        let once = normalize(&s);
        prop_assert_eq!(normalize(&once), once);
    }

    #[test]
    fn self_comparison_is_exact(n in name_strategy()) {
        let p = parse(&n);
        let c = compare(&p, &p);
        prop_assert!(!c.swapped);
        for (part, level) in [(&p.given, c.given), (&p.middle, c.middle), (&p.family, c.family)] {
            let want = if part.is_empty() { NameAgreement::Missing } else { NameAgreement::Exact };
            prop_assert_eq!(level, want);
        }
    }

    #[test]
    fn comparison_is_symmetric(a in name_strategy(), b in name_strategy()) {
        let (pa, pb) = (parse(&a), parse(&b));
        let x = compare(&pa, &pb);
        let y = compare(&pb, &pa);
        prop_assert_eq!((x.given, x.middle, x.family, x.swapped), (y.given, y.middle, y.family, y.swapped));
        prop_assert!((0.0..=1.0).contains(&x.similarity));
        let fast = compare_fast(&pa, &pb);
        prop_assert_eq!((fast.given, fast.middle, fast.family, fast.swapped), (x.given, x.middle, x.family, x.swapped));
        prop_assert!((fast.similarity - x.similarity).abs() < 1e-6);
        prop_assert!(fast.notes.is_empty());
        // The levels-only hot path decides exactly as the full comparison.
        prop_assert_eq!(compare_levels(&pa, &pb), (x.given, x.middle, x.family, x.swapped));
        // An order swap is never reported as an exact match.
        if x.swapped {
            prop_assert!(x.given != NameAgreement::Exact && x.family != NameAgreement::Exact);
        }
    }

    #[test]
    fn arbitrary_parts_never_panic(g in prop::collection::vec("\\PC{0,8}", 0..3), f in prop::collection::vec("\\PC{0,8}", 0..3)) {
        let raw = ParsedName { given: g.clone(), middle: vec![], family: f.clone(), original: String::new() };
        let other = ParsedName { given: f, middle: g, family: vec!["ALRASHID".into()], original: String::new() };
        let c = compare(&raw, &other);
        prop_assert_eq!(compare_levels(&raw, &other), (c.given, c.middle, c.family, c.swapped));
        let _ = blocking_keys(&raw);
    }
}
