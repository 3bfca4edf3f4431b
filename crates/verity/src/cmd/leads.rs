//! `verity leads …`: NCATC lead runs (batch, resumable, incremental) and their reports.
use clap::Subcommand;

#[derive(Subcommand)]
pub enum LeadsCommand {
    /// Run lead generation over the whole store.
    Run,
}

pub fn run(c: LeadsCommand) -> anyhow::Result<()> {
    match c {
        LeadsCommand::Run => anyhow::bail!("lead runs are not built yet"),
    }
}
