//! `verity synth`: writes a synthetic world (one CSV per record system, agencies, ground truth
//! and a manifest). The same seed gives the same bytes. With `--queries N` it also writes N
//! generated IAQ bodies with their ground truth under `queries/` (the other files do not change).
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct SynthArgs {
    /// Number of people to generate.
    #[arg(long)]
    pub people: u64,
    /// World seed; the same seed gives identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if missing; files in it are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write this many generated IAQ JSON bodies (`queries/iaq.jsonl`) and their ground
    /// truth (`queries/truth.csv`).
    #[arg(long, default_value_t = 0)]
    pub queries: usize,
    /// Seed of the query set (default: the world seed + 1).
    #[arg(long)]
    pub query_seed: Option<u64>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let cfg = verity_synth::SynthConfig {
        people: args.people,
        seed: args.seed,
        out: args.out.clone(),
        progress: !args.quiet,
    };
    let summary = verity_synth::generate_world(&cfg)
        .with_context(|| format!("writing the synthetic world to {}", args.out.display()))?;
    if args.queries > 0 {
        let query_seed = args.query_seed.unwrap_or(args.seed.wrapping_add(1));
        let queries = verity_synth::queries::generate_queries(
            args.seed,
            args.people,
            args.queries,
            query_seed,
        );
        verity_synth::queries::write_queries(&args.out, &queries)
            .with_context(|| format!("writing queries to {}", args.out.display()))?;
        if !args.quiet {
            eprintln!(
                "wrote {} queries (seed {query_seed}) to {}",
                queries.len(),
                args.out.join("queries").display()
            );
        }
    }
    if !args.quiet {
        let records: u64 = summary
            .files
            .iter()
            .filter(|(name, _)| !name.contains('/') && name.as_str() != "agencies.csv")
            .map(|(_, rows)| rows)
            .sum();
        eprintln!(
            "wrote {} people and {records} records (seed {}) to {}",
            summary.people,
            summary.seed,
            args.out.display()
        );
    }
    Ok(())
}
