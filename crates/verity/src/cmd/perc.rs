//! `verity perc …`: PERC tools (triage and detainer checks against ground truth).
use clap::Subcommand;

#[derive(Subcommand)]
pub enum PercCommand {
    /// Check every allowed detainer against the generator's ground truth.
    Check,
}

pub fn run(c: PercCommand) -> anyhow::Result<()> {
    match c {
        PercCommand::Check => anyhow::bail!("the PERC check is not built yet"),
    }
}
