use clap::{Args, Subcommand};

#[derive(Args)]
pub struct ImportArgs {}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain.
    Verify {},
}

pub fn import(_a: ImportArgs) -> anyhow::Result<()> {
    anyhow::bail!("'verity import' is not built yet")
}

pub fn audit(_c: AuditCommand) -> anyhow::Result<()> {
    anyhow::bail!("'verity audit' is not built yet")
}
