use clap::Subcommand;

#[derive(Subcommand)]
pub enum BioCommand {
    /// Identify each probe against a gallery (1:N).
    Identify {},
}

pub fn run(_c: BioCommand) -> anyhow::Result<()> {
    anyhow::bail!("'verity bio' is not built yet")
}
