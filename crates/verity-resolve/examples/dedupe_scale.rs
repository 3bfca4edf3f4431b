//! Dedupe at scale: N generated records (gallery + 20% re-encounters) through the batch
//! pipeline (prepare, block, train, score + select, cluster), each part timed.
//! Usage: `dedupe_scale [records] [seed] [max_pairs_per_record]`.
use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::{clusters, prepare_all, LinkOptions, RunIndex};

fn lap(label: &str, t: &mut Instant, extra: &str) {
    println!("{label:<14} {:>8.2}s {extra}", t.elapsed().as_secs_f64());
    *t = Instant::now();
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let seed = args.get(1).copied().unwrap_or(1) as u64;
    let probes = n / 5;
    let mut t = Instant::now();
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
    lap("generate", &mut t, &format!("({} records)", records.len()));
    let start = Instant::now();
    let defaults = LinkOptions::default();
    let opts = LinkOptions {
        max_pairs_per_record: args
            .get(2)
            .copied()
            .unwrap_or(defaults.max_pairs_per_record),
        ..defaults
    };
    let prepared = prepare_all(&records);
    lap("prepare", &mut t, "");
    // blocking, name interning and cheap-field packing at once; names and cheap fields are
    // then shared by training and scoring
    let index = RunIndex::build(&prepared, None, opts.max_bucket, opts.max_pairs_per_record);
    lap(
        "block+intern",
        &mut t,
        &format!("({} candidate pairs)", index.pairs.len()),
    );
    let model = index.train(&prepared, None, &opts.train);
    lap("train", &mut t, "");
    let kept = index.score_and_select(&model, &prepared, None, opts.threshold, opts.top);
    lap(
        "score+select",
        &mut t,
        &format!("({} pairs kept)", kept.len()),
    );
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let edges: Vec<(u32, u32)> = kept
        .iter()
        .filter(|p| p.probability >= 0.5)
        .map(|p| (p.left, p.right))
        .collect();
    let c = clusters(&ids, &edges);
    lap("cluster", &mut t, "");
    let dedupe_s = start.elapsed().as_secs_f64();
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
        "dedupe {} records: {} candidate pairs, {} pairs >= 0.5, {} clusters; dedupe (prepare to clusters) {:.2}s",
        records.len(),
        index.pairs.len(),
        edges.len(),
        distinct.len(),
        dedupe_s
    );
}
