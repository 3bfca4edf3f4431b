//! `verity bench lesc`: LESC answers against ground truth on a generated query set.
use clap::Args;

#[derive(Args)]
pub struct LescBenchArgs {
    /// People in the generated world.
    #[arg(long, default_value_t = 20_000)]
    pub people: u64,
}

pub fn run(args: LescBenchArgs) -> anyhow::Result<()> {
    let _ = args.people;
    anyhow::bail!("the LESC benchmark is not built yet")
}
