use clap::Args;

#[derive(Args)]
pub struct UpArgs {}

#[derive(Args)]
pub struct ServeArgs {}

pub fn up(_a: UpArgs) -> anyhow::Result<()> {
    anyhow::bail!("'verity up' is not built yet")
}

pub fn serve(_a: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("'verity serve' is not built yet")
}
