//! Real-time `search()` latency (index candidates + model scoring), one query at a time.
//! `cargo run --release -p verity-resolve --example search_latency -- [records] [train] [queries]`

use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::model::TrainOptions;
use verity_resolve::{Prepared, Searcher};

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (records, train, queries) = (arg(1, 200_000), arg(2, 20_000), arg(3, 2_000));
    let t = Instant::now();
    let world = generate(&BenchConfig {
        identities: records,
        probes: queries,
        seed: 1,
        hard_negative_share: 0.35,
    });
    println!(
        "generated {records} records and {queries} probes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Train on a sample (EM needs no more), then index everything under that model.
    let t = Instant::now();
    let sample: Vec<Prepared> = world.gallery[..train.min(records)]
        .iter()
        .map(Prepared::from_record)
        .collect();
    let pairs = verity_resolve::link::candidate_pairs(&sample, None, 2_000);
    let model = verity_resolve::Model::train(&sample, None, &pairs, &TrainOptions::default());
    println!(
        "trained on {} records in {:.1} s",
        sample.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let searcher = Searcher::with_model(
        model,
        world
            .gallery
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, &r.identity)),
    );
    println!(
        "indexed {records} records in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut times = Vec::with_capacity(queries);
    let mut rank1 = 0;
    let mut mated = 0;
    for (i, p) in world.probes.iter().enumerate() {
        let t = Instant::now();
        let hits = searcher.search(&p.identity, 5);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if let Some(m) = world.mate[i] {
            mated += 1;
            if hits.first().is_some_and(|h| h.doc == m) {
                rank1 += 1;
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let cpu = verity_model::machine::cpu_model(
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
    );
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "search over {records} records, {queries} queries: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; rank-1 {rank1}/{mated}",
        times[queries / 2],
        times[queries * 99 / 100],
        times[queries - 1]
    );
}
