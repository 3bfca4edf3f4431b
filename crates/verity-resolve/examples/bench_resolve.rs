//! Runs the resolution benchmark without the full `verity` binary (same code path as
//! `verity bench resolve`, minus the end-to-end CSV run; VERITY_BENCH_OUT=DIR also writes
//! the gallery/probes CSV files there). Usage:
//! `cargo run --release -p verity-resolve --example bench_resolve -- [identities] [probes] [seed]`
use verity_resolve::bench::{generate, run, BenchConfig};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let cfg = BenchConfig {
        identities: args.first().copied().unwrap_or(20_000),
        probes: args.get(1).copied().unwrap_or(4_000),
        seed: args.get(2).copied().unwrap_or(1) as u64,
        ..BenchConfig::default()
    };
    let t = std::time::Instant::now();
    let world = generate(&cfg);
    eprintln!("generated in {:.2}s", t.elapsed().as_secs_f64());
    if let Ok(dir) = std::env::var("VERITY_BENCH_OUT") {
        let d = std::path::Path::new(&dir);
        let _ = std::fs::create_dir_all(d);
        let _ = std::fs::write(
            d.join("gallery.csv"),
            verity_resolve::bench::write_csv(&world.gallery),
        );
        let _ = std::fs::write(
            d.join("probes.csv"),
            verity_resolve::bench::write_csv(&world.probes),
        );
        let _ = std::fs::write(
            d.join("truth.csv"),
            verity_resolve::bench::truth_csv(&world),
        );
        let _ = std::fs::write(d.join("schema.toml"), verity_resolve::bench::SCHEMA_TOML);
    }
    let (report, model) = run(&cfg, &world);
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    println!(
        "prior_log2_odds {:.2}; training {:?}",
        model.prior_log2_odds, model.training
    );
}
