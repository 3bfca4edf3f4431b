//! `verity synth`: writes a synthetic world (one CSV per record system, agencies, ground truth
//! and a manifest). The same seed gives the same bytes.
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
