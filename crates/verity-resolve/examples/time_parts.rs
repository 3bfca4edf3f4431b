//! Times the parts of a link run (prepare, block, train, score) on generated data.
use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::{candidate_pairs, weigh_pairs};
use verity_resolve::model::{Model, TrainOptions};
use verity_resolve::Prepared;

fn main() {
    let w = generate(&BenchConfig::default());
    let t = Instant::now();
    let gp: Vec<Prepared> = w.gallery.iter().map(Prepared::from_record).collect();
    let pp: Vec<Prepared> = w.probes.iter().map(Prepared::from_record).collect();
    println!("prepare {:.3}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    println!(
        "block {:.3}s ({} pairs)",
        t.elapsed().as_secs_f64(),
        pairs.len()
    );
    for n in [0usize, 100_000, 300_000] {
        let t = Instant::now();
        let m = Model::train(
            &pp,
            Some(&gp),
            &pairs,
            &TrainOptions {
                u_sample_pairs: n,
                ..TrainOptions::default()
            },
        );
        println!("train u={n} {:.3}s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        let s = weigh_pairs(&m, &pp, Some(&gp), &pairs);
        println!("score {:.3}s {}", t.elapsed().as_secs_f64(), s.len());
    }
}
