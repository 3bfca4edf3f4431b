use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Identity resolution accuracy and speed against ground truth.
    Resolve {},
}

pub fn run(_c: BenchCommand) -> anyhow::Result<()> {
    anyhow::bail!("'verity bench' is not built yet")
}
