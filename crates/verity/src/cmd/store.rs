//! `verity import` and `verity audit`: load a synthetic world into the store, check the audit
//! chain. The work lives in `verity-store`; this module parses flags and prints results.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use verity_store::import::{import_world_with, ImportMode};
use verity_store::{ImportOptions, Store};

/// Which store to open: the embedded SQLite data dir, or a database URL.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Data directory of the embedded SQLite store (holds verity.db)
    #[arg(long, env = "VERITY_DATA", default_value = "./verity-data")]
    data: PathBuf,
    /// Store URL (postgres://user@host/db, or sqlite:///path/verity.db); overrides --data
    #[arg(long, env = "VERITY_DATABASE_URL")]
    database_url: Option<String>,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<Store> {
        match &self.database_url {
            Some(url) => Store::open(url)
                .await
                .context("opening the store named by --database-url"),
            None => Store::open_data_dir(&self.data)
                .await
                .with_context(|| format!("opening the data dir {}", self.data.display())),
        }
    }
}

#[derive(Args)]
pub struct ImportArgs {
    /// Synthetic world directory (the <system>.csv files and agencies.csv; truth/ is never read)
    dir: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
    /// Records per batch: one transaction each (a bulk load into an empty store commits 20
    /// batches per transaction and writes one digest chunk per batch)
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Do not draw a progress bar
    #[arg(long)]
    quiet: bool,
    /// Insert batch by batch with indexes kept up to date, even into an empty store (by
    /// default an empty store is bulk loaded: indexes dropped, then built once at the end)
    #[arg(long)]
    no_bulk: bool,
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain and head; exits non-zero at the first broken entry.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// A bulk load that stopped part-way (an interrupted `verity import` into an empty store)
/// leaves the store without its secondary indexes and its sweep keys staged: finish it before
/// the store is served or swept. `verity import` itself resumes such a load instead.
pub(crate) async fn finish_pending_bulk_load(store: &Store) -> anyhow::Result<()> {
    if store
        .finish_interrupted_bulk_load()
        .await
        .context("finishing an interrupted bulk load")?
    {
        eprintln!(
            "Finished a bulk load that had stopped part-way (indexes re-created); import the world again to complete it"
        );
    }
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn import(a: ImportArgs) -> anyhow::Result<()> {
    let opts = ImportOptions {
        batch_size: usize::try_from(a.batch).unwrap_or(10_000),
        progress: !a.quiet,
    };
    runtime()?.block_on(async {
        let store = a.store.open().await?;
        let mode = if a.no_bulk {
            ImportMode::Incremental
        } else {
            ImportMode::Auto
        };
        let result = import_world_with(&store, &a.dir, &opts, mode).await;
        if result.is_err() {
            if let Ok(Some(flag)) = store.bulk_load_pending().await {
                eprintln!(
                    "note: the store holds part of a bulk load ({flag}) and lacks its record \
                     indexes until the same import is run again (it resumes and re-creates them)"
                );
            }
        }
        store.close().await;
        let summary = result.with_context(|| {
            format!(
                "importing {} (batches already stored are kept; fix the problem and run the same \
                 command again to finish without duplicates)",
                a.dir.display()
            )
        })?;
        for f in &summary.files {
            println!("{}: {} rows, {} new", f.file, f.rows, f.inserted);
        }
        for m in &summary.missing_files {
            eprintln!("note: {m} not found, skipped");
        }
        println!(
            "imported {} records ({} new) and {} agencies in {:.2} s: {:.0} records/s",
            summary.records,
            summary.records_inserted,
            summary.agencies,
            summary.elapsed.as_secs_f64(),
            summary.records_per_second()
        );
        if summary.bulk {
            println!(
                "bulk load: indexes dropped while loading; sweep keys placed and indexes built \
                 in {:.2} s of that",
                summary.finish_elapsed.as_secs_f64()
            );
        }
        Ok(())
    })
}

pub fn audit(c: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Verify { store } = c;
    runtime()?.block_on(async {
        let store = store.open().await?;
        let result = store.verify_audit().await;
        store.close().await;
        match result {
            Ok(n) => {
                println!("audit chain OK: {n} entries");
                Ok(())
            }
            Err(e) => match e.seq() {
                Some(seq) => anyhow::bail!("audit chain BROKEN at entry {seq}: {e}"),
                None => anyhow::bail!("audit chain could not be checked: {e}"),
            },
        }
    })
}
