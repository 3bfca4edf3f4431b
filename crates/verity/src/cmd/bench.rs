//! `verity bench`: benchmarks that print figures with the machine and the data size.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Instant;
use verity_resolve::bench::{self, BenchConfig};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// LESC answers (identity, status, automatic share) against ground truth.
    Lesc(crate::cmd::bench_lesc::LescBenchArgs),
    /// Identity resolution accuracy and speed against ground truth.
    Resolve {
        /// Gallery size (identities, one record each).
        #[arg(long, default_value_t = 20_000)]
        identities: usize,
        /// Probes: half mated, the rest non-mated (hard negatives included).
        #[arg(long, default_value_t = 4_000)]
        probes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of probes that are hard negatives (same common name, birth date within a year).
        #[arg(long, default_value_t = 0.35)]
        hard_negative_share: f64,
        /// Where gallery/probes CSV, schema, truth and results go.
        #[arg(long, default_value = "bench-out/resolve")]
        out: PathBuf,
        /// Also run Splink on the same files (bench/splink/run.sh) and print both side by side.
        #[arg(long)]
        with_splink: bool,
        /// Path of the Splink comparison script.
        #[arg(long, default_value = "bench/splink/run.sh")]
        splink_script: PathBuf,
    },
}

fn cpu_model() -> String {
    verity_model::machine::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Lesc(args) => crate::cmd::bench_lesc::run(args),
        BenchCommand::Resolve {
            identities,
            probes,
            seed,
            hard_negative_share,
            out,
            with_splink,
            splink_script,
        } => {
            if identities == 0 || probes < 2 {
                anyhow::bail!("--identities must be > 0 and --probes >= 2");
            }
            if !(0.0..=0.5).contains(&hard_negative_share) {
                anyhow::bail!("--hard-negative-share must be within 0 and 0.5");
            }
            let cfg = BenchConfig {
                identities,
                probes,
                seed,
                hard_negative_share,
            };
            let t = Instant::now();
            let world = bench::generate(&cfg);
            let gen_s = t.elapsed().as_secs_f64();
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let w = |name: &str, text: &str| {
                std::fs::write(out.join(name), text).with_context(|| format!("writing {name}"))
            };
            w("gallery.csv", &bench::write_csv(&world.gallery))?;
            w("probes.csv", &bench::write_csv(&world.probes))?;
            w("schema.toml", bench::SCHEMA_TOML)?;
            w("truth.csv", &bench::truth_csv(&world))?;

            let (report, model) = bench::run(&cfg, &world);
            model.save(&out.join("model.json"))?;

            // end to end, as a user runs it: read both CSVs, train, score, write pairs
            let t = Instant::now();
            super::link::run(super::link::LinkArgs {
                left: out.join("probes.csv"),
                right: Some(out.join("gallery.csv")),
                schema: out.join("schema.toml"),
                out: out.join("verity_links.csv"),
                top: Some(1),
                threshold: 0.5,
                skip_bad_rows: false,
                skipped_report: None,
                explain: false,
                explain_limit: 0,
                model: None,
                model_out: None,
                clusters: None,
                seed,
            })?;
            let e2e = t.elapsed().as_secs_f64();

            let nproc = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            let mut json = serde_json::to_value(&report)?;
            json["end_to_end_link_seconds"] = serde_json::json!(e2e);
            json["nproc"] = serde_json::json!(nproc);
            json["cpu"] = serde_json::json!(cpu_model());
            json["seed"] = serde_json::json!(seed);
            std::fs::write(
                out.join("verity_results.json"),
                serde_json::to_string_pretty(&json)?,
            )?;

            println!(
                "verity bench resolve (seed {seed}; machine: {nproc} threads, {})",
                cpu_model()
            );
            println!("data: gallery {} identities, {} probes ({} mated, {} non-mated of which {} hard negatives = {:.1}% of probes); generated in {gen_s:.2}s; files in {}",
                report.gallery, report.probes, report.mated, report.probes - report.mated, report.hard_negatives,
                100.0 * report.hard_negatives as f64 / report.probes as f64, out.display());
            println!(
                "blocking: {} candidate pairs, mate among candidates for {:.2}% of mated probes",
                report.candidate_pairs,
                100.0 * report.blocking_recall
            );
            println!(
                "pairwise at threshold 0.5: precision {:.4}  recall {:.4}  F1 {:.4}",
                report.precision, report.recall, report.f1
            );
            println!("FNIR at FPIR <= 1%:   {:.4}", report.fnir_at_fpir_1pct);
            println!("FNIR at FPIR <= 0.1%: {:.4}", report.fnir_at_fpir_01pct);
            println!(
                "hard negatives scoring >= 0.5: {} of {} ({:.2} per 1000)",
                report.hard_negatives_above_half,
                report.hard_negatives,
                1000.0 * report.hard_negatives_above_half as f64
                    / report.hard_negatives.max(1) as f64
            );
            println!(
                "calibration: {}; ECE over candidate pairs: prior+clip {:.4}, calibrated {:.4}",
                report.calibration, report.ece_prior_clip, report.ece_platt
            );
            println!("time: train (prepare + block + u sample + EM, {} iterations) {:.2}s, score {:.2}s; end-to-end `verity link` on the CSV files {:.2}s",
                report.em_iterations, report.train_seconds, report.score_seconds, e2e);

            if with_splink {
                let status = std::process::Command::new("bash")
                    .arg(&splink_script)
                    .arg(&out)
                    .status()
                    .with_context(|| format!("running {}", splink_script.display()))?;
                if !status.success() {
                    anyhow::bail!("{} failed ({status})", splink_script.display());
                }
            }
            Ok(())
        }
    }
}
