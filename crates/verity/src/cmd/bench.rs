//! `verity bench`: benchmarks that print figures with the machine and the data size.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::time::Instant;
use verity_resolve::bench::{self, failures, BenchConfig, Generator};

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
        /// Data generator: `synth` (people and records of the `verity synth` world) or `census`
        /// (the stand-in generator of earlier sessions, for comparable figures).
        #[arg(long, default_value = "synth", value_parser = ["synth", "census"])]
        generator: String,
        /// Examples per failure kind in the failure analysis.
        #[arg(long, default_value_t = 3)]
        failure_examples: usize,
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

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    match c {
        BenchCommand::Lesc(args) => crate::cmd::bench_lesc::run(args),
        BenchCommand::Resolve {
            identities,
            probes,
            seed,
            hard_negative_share,
            generator,
            failure_examples,
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
            let generator = Generator::parse(&generator)
                .with_context(|| format!("--generator must be synth or census, not {generator}"))?;
            let cfg = BenchConfig {
                identities,
                probes,
                seed,
                hard_negative_share,
            };
            let t = Instant::now();
            let (world, info) = bench::generate_with(generator, &cfg);
            let gen_s = t.elapsed().as_secs_f64();
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let w = |name: &str, text: &str| {
                std::fs::write(out.join(name), text).with_context(|| format!("writing {name}"))
            };
            // FIN and state id columns unless VERITY_BENCH_COLUMNS=16 (as the data were made)
            let ids = bench::synth::files_carry_fin_and_state_id();
            w("gallery.csv", &bench::write_csv_with(&world.gallery, ids))?;
            w("probes.csv", &bench::write_csv_with(&world.probes, ids))?;
            w("schema.toml", bench::schema_toml(ids))?;
            w("truth.csv", &bench::truth_csv(&world))?;

            let (report, model, evaluation) = bench::run_with(generator, &cfg, &world);
            model.save(&out.join("model.json"))?;
            let analysis =
                failures::analyse(&world, info.as_ref(), &model, &evaluation, failure_examples);
            w("failures.txt", &analysis.render())?;

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

            let machine = bench::machine_line();
            let mut json = serde_json::to_value(&report)?;
            json["end_to_end_link_seconds"] = serde_json::json!(e2e);
            json["generate_seconds"] = serde_json::json!(gen_s);
            json["machine"] = serde_json::json!(machine);
            json["nproc"] = serde_json::json!(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            );
            json["cpu"] = serde_json::json!(verity_model::machine::cpu_model(
                &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()
            ));
            json["seed"] = serde_json::json!(seed);
            if let Some(i) = &info {
                json["synth"] = serde_json::to_value(&i.stats)?;
            }
            json["failures"] = serde_json::to_value(&analysis)?;
            std::fs::write(
                out.join("verity_results.json"),
                serde_json::to_string_pretty(&json)?,
            )?;

            println!("verity bench resolve (seed {seed}; machine: {machine})");
            println!("{}", bench::summary(&report, info.as_ref()));
            println!(
                "generated in {gen_s:.2}s; files in {}; end-to-end `verity link --top 1` on the CSV files {e2e:.2}s",
                out.display()
            );
            print!("{}", analysis.render());

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
