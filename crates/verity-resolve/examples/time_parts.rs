//! Times the parts of a link run (prepare, block, train, score + select top 1) on generated
//! data, as `verity link --top 1` runs them. Usage: `time_parts [identities] [probes] [seed]`.
use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::{candidate_pairs, prepare_all, score_and_select};
use verity_resolve::model::{Model, TrainOptions};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let w = generate(&BenchConfig {
        identities: args.first().copied().unwrap_or(20_000),
        probes: args.get(1).copied().unwrap_or(4_000),
        seed: args.get(2).copied().unwrap_or(1) as u64,
        ..BenchConfig::default()
    });
    let t0 = Instant::now();
    let t = Instant::now();
    let gp = prepare_all(&w.gallery);
    let pp = prepare_all(&w.probes);
    println!("prepare {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    println!(
        "block {:.3}s ({} pairs)",
        t.elapsed().as_secs_f64(),
        pairs.len()
    );
    let t = Instant::now();
    let m = Model::train(&pp, Some(&gp), &pairs, &TrainOptions::default());
    println!("train {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let kept = score_and_select(&m, &pp, Some(&gp), &pairs, 0.5, Some(1));
    println!(
        "score+select {:.3}s ({} kept)",
        t.elapsed().as_secs_f64(),
        kept.len()
    );
    println!("total {:.3}s", t0.elapsed().as_secs_f64());
}
