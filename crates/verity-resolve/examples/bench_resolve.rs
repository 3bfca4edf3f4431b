//! Runs the resolution benchmark without the full `verity` binary (same code path as
//! `verity bench resolve`). With VERITY_BENCH_OUT=DIR it also writes the gallery/probes CSV
//! files there, runs the end-to-end link on them as `verity link --top 1` does (read CSV,
//! prepare, block, train, score + select, write pairs) and writes `verity_results.json`, so
//! that `bench/splink/run.sh DIR` prints both tools side by side. Usage:
//! `cargo run --release -p verity-resolve --example bench_resolve -- [identities] [probes] [seed]
//! [--generator synth|census]` (default synth: the `verity-synth` world; census: the stand-in
//! generator of sessions 1–3, for comparable figures). The files carry the FIN and state id
//! columns of the record systems; `VERITY_BENCH_COLUMNS=16` leaves them out (sessions 1–4).
use std::time::Instant;
use verity_resolve::bench::{self, failures, generate_with, run_with, BenchConfig, Generator};
use verity_resolve::link::{candidate_pairs, prepare_all, score_and_select, LinkOptions};
use verity_resolve::model::{Model, TrainOptions};
use verity_resolve::schema::{read_records, Schema};

/// The end-to-end link of `probes.csv` against `gallery.csv` in `dir`; returns seconds.
fn link_files(dir: &std::path::Path, seed: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let schema = Schema::parse(&std::fs::read_to_string(dir.join("schema.toml"))?)?;
    let read = |name: &str| -> Result<_, Box<dyn std::error::Error>> {
        let bytes = std::fs::read(dir.join(name))?;
        Ok(read_records(&bytes, name, &schema, false)?.0)
    };
    let (left, right) = (read("probes.csv")?, read("gallery.csv")?);
    let (lp, rp) = (prepare_all(&left), prepare_all(&right));
    let opts = LinkOptions::default();
    let pairs = candidate_pairs(&lp, Some(&rp), opts.max_bucket);
    let train = TrainOptions {
        seed,
        ..TrainOptions::default()
    };
    let model = Model::train(&lp, Some(&rp), &pairs, &train);
    let kept = score_and_select(&model, &lp, Some(&rp), &pairs, 0.5, Some(1));
    let mut out = String::from("left_id,right_id,score\n");
    for p in &kept {
        out.push_str(&format!(
            "{},{},{:.6}\n",
            left[p.left as usize].id, right[p.right as usize].id, p.probability
        ));
    }
    std::fs::write(dir.join("verity_links.csv"), out)?;
    Ok(t.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut generator = Generator::default();
    let mut args: Vec<usize> = Vec::new();
    let mut it = raw.iter();
    while let Some(a) = it.next() {
        if a == "--generator" {
            let name = it.next().map(String::as_str).unwrap_or("");
            generator = Generator::parse(name)
                .ok_or_else(|| format!("--generator must be synth or census, not {name:?}"))?;
        } else if let Some(name) = a.strip_prefix("--generator=") {
            generator = Generator::parse(name)
                .ok_or_else(|| format!("--generator must be synth or census, not {name:?}"))?;
        } else {
            args.push(a.parse().map_err(|_| format!("not a number: {a:?}"))?);
        }
    }
    let cfg = BenchConfig {
        identities: args.first().copied().unwrap_or(20_000),
        probes: args.get(1).copied().unwrap_or(4_000),
        seed: args.get(2).copied().unwrap_or(1) as u64,
        ..BenchConfig::default()
    };
    let t = std::time::Instant::now();
    let (world, info) = generate_with(generator, &cfg);
    let gen_seconds = t.elapsed().as_secs_f64();
    let (report, model, evaluation) = run_with(generator, &cfg, &world);
    let analysis = failures::analyse(&world, info.as_ref(), &model, &evaluation, 3);
    let mut json = serde_json::to_value(&report)?;
    json["seed"] = serde_json::json!(cfg.seed);
    json["generate_seconds"] = serde_json::json!(gen_seconds);
    json["machine"] = serde_json::json!(bench::machine_line());
    if let Some(i) = &info {
        json["synth"] = serde_json::to_value(&i.stats)?;
    }
    let ids = bench::synth::files_carry_fin_and_state_id();
    json["fin_and_state_id_columns"] = serde_json::json!(ids);
    if let Ok(dir) = std::env::var("VERITY_BENCH_OUT") {
        let d = std::path::Path::new(&dir);
        std::fs::create_dir_all(d)?;
        std::fs::write(
            d.join("gallery.csv"),
            bench::write_csv_with(&world.gallery, ids),
        )?;
        std::fs::write(
            d.join("probes.csv"),
            bench::write_csv_with(&world.probes, ids),
        )?;
        std::fs::write(
            d.join("truth.csv"),
            verity_resolve::bench::truth_csv(&world),
        )?;
        std::fs::write(d.join("schema.toml"), bench::schema_toml(ids))?;
        let e2e = link_files(d, cfg.seed)?;
        json["end_to_end_link_seconds"] = serde_json::json!(e2e);
        std::fs::write(
            d.join("verity_results.json"),
            serde_json::to_string_pretty(&json)?,
        )?;
        std::fs::write(d.join("failures.txt"), analysis.render())?;
    }
    println!("{}", serde_json::to_string_pretty(&json)?);
    println!(
        "prior_log2_odds {:.2}; training {:?}",
        model.prior_log2_odds, model.training
    );
    println!(
        "bench_resolve (seed {}; {} columns; machine: {})",
        cfg.seed,
        if ids { "18 (FIN, state id)" } else { "16" },
        bench::machine_line()
    );
    println!("{}", bench::summary(&report, info.as_ref()));
    println!("generated in {gen_seconds:.2}s");
    if let Some(e2e) = json.get("end_to_end_link_seconds").and_then(|v| v.as_f64()) {
        println!("end-to-end link of the CSV files (as `verity link --top 1`): {e2e:.2}s");
    }
    print!("{}", analysis.render());
    Ok(())
}
