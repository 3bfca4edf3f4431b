use clap::Args;

#[derive(Args)]
pub struct LinkArgs {}

pub fn run(_args: LinkArgs) -> anyhow::Result<()> {
    anyhow::bail!("'verity link' is not built yet")
}
