//! End-to-end properties: impressions of one finger match, other fingers do not, ten-print
//! fusion separates mates from strangers, and nothing panics on arbitrary input.

use proptest::prelude::*;
use verity_biometrics::calibration::{same_person_probability, Calibration};
use verity_biometrics::index::{GalleryIndex, SearchOptions, SearchScratch, SubjectPrints};
use verity_biometrics::synth::{impression, master, ten_print, ImpressionParams};
use verity_biometrics::{Matcher, Minutia, MinutiaType, Template};

#[test]
fn impressions_of_one_finger_match_and_others_do_not() {
    let mut matcher = Matcher::new();
    let rolled = ImpressionParams::rolled();
    let mut worst_genuine = f32::MAX;
    let mut best_impostor = 0f32;
    for i in 0..12 {
        let finger = (i % 10 + 1) as u8;
        let fin = format!("{:010}", 4_000_000_000u64 + i);
        let m = master(5, &fin, finger);
        let a = Template::new(&impression(&m, &rolled, 0));
        let b = Template::new(&impression(&m, &rolled, 1));
        worst_genuine = worst_genuine.min(matcher.compare(&a, &b).score);
        let other = master(5, &format!("{:010}", 5_000_000_000u64 + i), finger);
        let c = Template::new(&impression(&other, &rolled, 1));
        best_impostor = best_impostor.max(matcher.compare(&a, &c).score);
    }
    assert!(
        worst_genuine > best_impostor,
        "genuine {worst_genuine} vs impostor {best_impostor}"
    );
}

#[test]
fn plain_partial_impression_still_matches_its_rolled_print() {
    let mut matcher = Matcher::new();
    let m = master(9, "1234509876", 2);
    let rolled = Template::new(&impression(&m, &ImpressionParams::rolled(), 0));
    let plain = Template::new(&impression(&m, &ImpressionParams::plain(), 3));
    let score = matcher.compare(&plain, &rolled).score;
    assert!(
        Calibration::builtin().finger_llr(score) > 2.0,
        "score {score}"
    );
}

#[test]
fn ten_print_fusion_separates_mates_from_strangers() {
    let cal = Calibration::builtin();
    let rolled = ImpressionParams::rolled();
    let mut matcher = Matcher::new();
    let fuse = |a: &[(u8, Vec<Minutia>)], b: &[(u8, Vec<Minutia>)], m: &mut Matcher| -> f64 {
        a.iter()
            .zip(b)
            .map(|((_, x), (_, y))| {
                cal.finger_llr(m.compare(&Template::new(x), &Template::new(y)).score)
            })
            .sum()
    };
    let a0 = ten_print(2, "1111111111", 0, &rolled);
    let a1 = ten_print(2, "1111111111", 1, &rolled);
    let b1 = ten_print(2, "2222222222", 1, &rolled);
    let mate = fuse(&a0, &a1, &mut matcher);
    let stranger = fuse(&a0, &b1, &mut matcher);
    assert!(same_person_probability(mate, 0.5) > 0.999, "{mate}");
    assert!(same_person_probability(stranger, 0.5) < 0.001, "{stranger}");
}

#[test]
fn index_shortlist_contains_the_mate() {
    let rolled = ImpressionParams::rolled();
    let mut g = GalleryIndex::new();
    for i in 0..60 {
        let fin = format!("{:010}", 3_000_000_000u64 + i);
        let prints = SubjectPrints {
            fingers: ten_print(4, &fin, 0, &rolled),
        };
        g.insert(&fin, &prints).expect("small gallery");
    }
    // A shortlist of 2 out of 60 means the pre-filter alone must rank the mate near the top.
    let options = SearchOptions {
        shortlist: 2,
        top: 1,
    };
    let mut scratch = SearchScratch::default();
    for i in [3u64, 31, 59] {
        let fin = format!("{:010}", 3_000_000_000u64 + i);
        let probe = SubjectPrints {
            fingers: ten_print(4, &fin, 7, &rolled),
        };
        let found = g.search(&probe, &options, Calibration::builtin(), &mut scratch);
        assert_eq!(g.name(found[0].subject), Some(fin.as_str()));
    }
}

fn arb_minutiae() -> impl Strategy<Value = Vec<Minutia>> {
    prop::collection::vec(
        (any::<i16>(), any::<i16>(), any::<u8>(), 0u8..3).prop_map(|(x, y, angle, k)| Minutia {
            x,
            y,
            angle,
            kind: MinutiaType::from_code(k),
        }),
        0..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scores_are_bounded_and_never_panic(a in arb_minutiae(), b in arb_minutiae()) {
        let ta = Template::new(&a);
        let tb = Template::new(&b);
        let s = Matcher::new().compare(&ta, &tb);
        prop_assert!((0.0..=1.0).contains(&s.score));
        prop_assert!(usize::from(s.matched) <= ta.len().min(tb.len()));
    }

    #[test]
    fn index_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = GalleryIndex::read(&bytes);
        let mut with_magic = b"VRTYBIX1".to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = GalleryIndex::read(&with_magic);
    }

    #[test]
    fn rigid_motion_keeps_a_finger_matching(deg in -20.0f32..20.0, dx in -60.0f32..60.0, dy in -60.0f32..60.0) {
        let m = master(12, "7777777777", 6);
        let base = impression(&m, &ImpressionParams { miss_rate: 0.0, spurious_rate: 0.0, ..ImpressionParams::rolled() }, 0);
        let (s, c) = deg.to_radians().sin_cos();
        let moved: Vec<Minutia> = base
            .iter()
            .map(|p| {
                let x = f32::from(p.x) - 250.0;
                let y = f32::from(p.y) - 280.0;
                Minutia::from_degrees(c * x + s * y + 250.0 + dx, -s * x + c * y + 280.0 + dy, p.degrees() + deg, p.kind, 197)
            })
            .collect();
        let score = Matcher::new().compare(&Template::new(&base), &Template::new(&moved)).score;
        prop_assert!(score > 0.7, "score {}", score);
    }
}
