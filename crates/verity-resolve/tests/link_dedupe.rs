//! Batch dedupe end to end on one generated file: pairs found, precision, stable clusters.

use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::{clusters, link, LinkOptions};
use verity_resolve::model::TrainOptions;
use verity_resolve::Record;

#[test]
fn dedupe_finds_re_encounters_and_clusters_them() {
    let w = generate(&BenchConfig {
        identities: 500,
        probes: 160,
        seed: 21,
        hard_negative_share: 0.35,
    });
    let mut records: Vec<Record> = w.gallery.clone();
    records.extend(w.probes.iter().cloned());
    let n_gallery = w.gallery.len() as u32;
    let opts = LinkOptions {
        train: TrainOptions {
            seed: 3,
            u_sample_pairs: 20_000,
            u_name_sample_pairs: 20_000,
            max_em_iterations: 30,
            max_em_pairs: 400_000,
        },
        ..LinkOptions::default()
    };
    let result = link(&records, None, &opts);
    let truth = |a: u32, b: u32| -> bool {
        let (g, p) = if a < n_gallery { (a, b) } else { (b, a) };
        p >= n_gallery && g < n_gallery && w.mate[(p - n_gallery) as usize] == Some(g)
    };
    let kept: Vec<_> = result
        .pairs
        .iter()
        .filter(|p| p.probability >= 0.5)
        .collect();
    let correct = kept.iter().filter(|p| truth(p.left, p.right)).count();
    let mated = w.mate.iter().filter(|m| m.is_some()).count();
    assert!(
        kept.iter().all(|p| p.left < p.right),
        "dedupe pairs are written once, smaller index first"
    );
    assert!(correct * 2 >= mated, "found {correct} of {mated}");
    assert!(
        correct * 100 >= kept.len() * 95,
        "precision {correct}/{}",
        kept.len()
    );

    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let edges: Vec<(u32, u32)> = kept.iter().map(|p| (p.left, p.right)).collect();
    let before = clusters(&ids, &edges);
    // adding an unrelated record changes no existing cluster id
    let mut ids2 = ids.clone();
    ids2.push("a_new_record".into());
    let after = clusters(&ids2, &edges);
    assert_eq!(&after[..before.len()], &before[..]);
}
