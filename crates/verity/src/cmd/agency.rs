//! `verity agency`: list agencies and issue their API keys.

use super::serve::{open_store_with, ServerFlags};
use clap::Subcommand;
use verity_model::{AuditAction, AuditEvent, Ori, Purpose};
use verity_workflow::credentials::{generate_secret, token_digest};

#[derive(Subcommand)]
pub enum AgencyCommand {
    /// Issue a new API key for an agency (replaces the old one); prints it once.
    Key {
        #[command(flatten)]
        server: ServerFlags,
        /// The agency's 9-character ORI
        #[arg(long)]
        ori: String,
    },
    /// List agencies with their field office and whether they hold a key.
    List {
        #[command(flatten)]
        server: ServerFlags,
    },
}

pub fn run(c: AgencyCommand) -> anyhow::Result<()> {
    match c {
        AgencyCommand::Key { server, ori } => {
            let ori = Ori::parse(&ori).map_err(|e| anyhow::anyhow!("--ori: {}", e.problem))?;
            open_store_with(&server, |store| async move {
                let mut agency = store.get_agency(&ori).await?.ok_or_else(|| {
                    anyhow::anyhow!(
                        "--ori: no agency {ori} in the store (import a world or add it first)"
                    )
                })?;
                let key = generate_secret(32);
                agency.api_key_hash = Some(token_digest(&key));
                agency.active = true;
                store.upsert_agency(&agency).await?;
                store
                    .append_audit(AuditEvent {
                        actor: "cli".into(),
                        agency: Some(ori.clone()),
                        purpose: Purpose::Administration,
                        action: AuditAction::AgencyCreated {
                            ori: ori.to_string(),
                        },
                    })
                    .await?;
                println!("API key for {ori} (shown once; HTTP Basic user {ori}, password the key): {key}");
                Ok(())
            })
        }
        AgencyCommand::List { server } => open_store_with(&server, |store| async move {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for a in store.list_agencies().await? {
                let written = writeln!(
                    out,
                    "{}  {:<12} {:<2} {:<20} {:<16} key:{} {}",
                    a.ori,
                    a.kind,
                    a.state,
                    a.county,
                    a.field_office,
                    if a.api_key_hash.is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                    a.name
                );
                match written {
                    // `verity agency list | head` closes the pipe early: that is not a failure.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    other => other?,
                }
            }
            Ok(())
        }),
    }
}
