use clap::Args;

#[derive(Args)]
pub struct SynthArgs {}

pub fn run(_args: SynthArgs) -> anyhow::Result<()> {
    anyhow::bail!("'verity synth' is not built yet")
}
