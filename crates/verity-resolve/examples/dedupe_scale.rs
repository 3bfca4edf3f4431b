//! Dedupe at scale: N generated records (gallery + 20% re-encounters) through the batch
//! pipeline (block, train, score, select, cluster). Usage: `dedupe_scale [records] [seed] [max_pairs_per_record]`.
use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::{clusters, link, LinkOptions};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let seed = args.get(1).copied().unwrap_or(1) as u64;
    let probes = n / 5;
    let w = generate(&BenchConfig {
        identities: n - probes,
        probes,
        seed,
        hard_negative_share: 0.35,
    });
    let n_gallery = w.gallery.len() as u32;
    let mate = w.mate.clone();
    let mut records = w.gallery;
    records.extend(w.probes);
    let t = Instant::now();
    let defaults = LinkOptions::default();
    let opts = LinkOptions {
        max_pairs_per_record: args
            .get(2)
            .copied()
            .unwrap_or(defaults.max_pairs_per_record),
        ..defaults
    };
    let r = link(&records, None, &opts);
    let link_s = t.elapsed().as_secs_f64();
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let edges: Vec<(u32, u32)> = r
        .pairs
        .iter()
        .filter(|p| p.probability >= 0.5)
        .map(|p| (p.left, p.right))
        .collect();
    let c = clusters(&ids, &edges);
    let mut distinct = c.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // accuracy guard: a probe's pair with its own gallery mate is true; every other pair is false
    let is_true = |a: u32, b: u32| {
        let (g, p) = if a < b { (a, b) } else { (b, a) };
        g < n_gallery && p >= n_gallery && mate[(p - n_gallery) as usize] == Some(g)
    };
    let mated = mate.iter().filter(|m| m.is_some()).count();
    let found = edges.iter().filter(|e| is_true(e.0, e.1)).count();
    println!(
        "true pairs found {found} of {mated} mated ({:.4}); false pairs >= 0.5: {}",
        found as f64 / mated.max(1) as f64,
        edges.len() - found
    );
    println!(
        "dedupe {} records: {} candidate pairs, {} pairs >= 0.5, {} clusters; link {:.2}s, total {:.2}s",
        records.len(), r.candidate_pairs, edges.len(), distinct.len(), link_s, t.elapsed().as_secs_f64()
    );
}
