//! `verity leads …`: NCATC lead runs (batch, resumable, incremental) and their reports.
//!
//! The work lives in `verity_workflow::ncatc`; this module parses flags, draws the progress
//! bar and prints results.

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Mutex;
use verity_store::leads::LeadFilter;
use verity_store::Store;
use verity_workflow::ncatc::{self, LeadContext, Progress, RunOptions, Truth};

/// Which store to open.
#[derive(Args, Clone)]
pub struct LeadStoreArgs {
    /// Data directory of the embedded SQLite store (holds verity.db)
    #[arg(long, env = "VERITY_DATA", default_value = "./verity-data")]
    data: PathBuf,
    /// Store URL (postgres://user@host/db, or sqlite:///path/verity.db); overrides --data
    #[arg(long, env = "VERITY_DATABASE_URL")]
    database_url: Option<String>,
}

impl LeadStoreArgs {
    async fn open(&self) -> anyhow::Result<Store> {
        let store = match &self.database_url {
            Some(url) => Store::open(url)
                .await
                .context("opening the store named by --database-url")?,
            None => Store::open_data_dir(&self.data)
                .await
                .with_context(|| format!("opening the data dir {}", self.data.display()))?,
        };
        super::store::finish_pending_bulk_load(&store).await?;
        Ok(store)
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    store: LeadStoreArgs,
    /// Lead rules file (TOML, like data/policy/leads.toml); the embedded rules when absent
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Evaluate every person even when an earlier run finished (default: only changed persons)
    #[arg(long)]
    full: bool,
    /// Judge facts as of this date (YYYY-MM-DD); default today (UTC)
    #[arg(long)]
    today: Option<chrono::NaiveDate>,
    /// Persons per committed batch
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Stop after this many batches, leaving the run to be resumed (for testing resumption)
    #[arg(long, hide = true)]
    stop_after_batches: Option<usize>,
    /// Do not draw a progress bar
    #[arg(long)]
    quiet: bool,
    /// Print when each phase (scanning records, evaluating persons) started, for benchmarks
    #[arg(long, hide = true)]
    timing: bool,
    /// Evaluate every person with a record of a system that may lead, not only those a lead
    /// rule of the policy could apply to (same outcomes, slower: for comparisons)
    #[arg(long, hide = true)]
    no_screen: bool,
    /// Where a full run leaves its person map and incremental runs read it (default: DATA/ncatc
    /// for the embedded store; none with --database-url unless given)
    #[arg(long)]
    map_dir: Option<PathBuf>,
    /// Do not use or write a person map: incremental runs follow identifiers through the store
    #[arg(long, conflicts_with = "map_dir")]
    no_map: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    store: LeadStoreArgs,
    /// Synthetic world directory: score lead precision against its truth/ files
    #[arg(long)]
    world: Option<PathBuf>,
}

#[derive(Args)]
pub struct TouchArgs {
    #[command(flatten)]
    store: LeadStoreArgs,
    /// Every record whose rev is a multiple of N gets a new version (100 = 1% of records)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Suffix of the new versions' record ids (use a new one for each round)
    #[arg(long, default_value = "U1")]
    suffix: String,
    /// Take the records whose rev leaves this remainder divided by N instead (0 = multiples
    /// of N): a new offset for each round changes other records, not the same ones again
    #[arg(long, default_value_t = 0)]
    offset: u64,
}

#[derive(Subcommand)]
pub enum LeadsCommand {
    /// Run lead generation over the store (resumes a stopped run; incremental after the first).
    Run(RunArgs),
    /// Runs, lead quality per rule and AOR, and precision against ground truth (--world).
    Report(ReportArgs),
    /// Benchmark helper: store a new version of every Nth record (same person, new record id),
    /// as when records change, so that an incremental run has work.
    #[command(hide = true)]
    Touch(TouchArgs),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(c: LeadsCommand) -> anyhow::Result<()> {
    match c {
        LeadsCommand::Run(a) => run_leads(a),
        LeadsCommand::Report(a) => report(a),
        LeadsCommand::Touch(a) => touch(a),
    }
}

fn load_context(policy: Option<&PathBuf>) -> anyhow::Result<LeadContext> {
    let text = match policy {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading lead policy {}", p.display()))?,
        ),
        None => None,
    };
    LeadContext::load(text.as_deref()).map_err(|e| match policy {
        Some(p) => anyhow::anyhow!("lead policy {} rejected: {e}", p.display()),
        None => anyhow::anyhow!("embedded policies rejected: {e}"),
    })
}

/// Keeps glibc from handing memory back to the kernel between a lead run's large reads.
///
/// SQLite (C, so glibc's malloc, not the Rust allocator) allocates each digest chunk and record
/// pack it reads, 0.5-2 MB apiece, thousands of times in a run. Above glibc's mmap threshold,
/// or once the freed top of the heap passes the trim threshold, that memory goes back to the
/// kernel, and the next allocation takes freshly zeroed pages: at 1M people, 2.4 s of a 9 s
/// run was kernel time, most of it zeroing pages (perf: `clear_page_erms`). With a 32 MB mmap
/// threshold and a 1 GB trim threshold the run took 7.2 s and 0.6 s of kernel time
/// (BENCHMARKS.md, session 10). A batch job may keep that memory; the server does not call this.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_large_allocations() {
    // SAFETY: `mallopt` only sets allocator tunables, under glibc's own arena locks (safe
    // from any thread), and the values are within glibc's documented ranges (the mmap
    // threshold at most 32 MB on 64-bit). A refused value (return 0) leaves glibc's defaults, which are
    // correct, only slower.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_allocations() {}

/// Turns transparent huge pages off for this process, once the run is known to be incremental
/// (`Progress::Started`).
///
/// mimalloc asks for huge pages on its arenas, and with the kernel's `defrag=madvise` each
/// first touch of a 2 MB page may compact memory and always zeroes 2 MB. An incremental run
/// allocates and frees a few GB once: at 10M people it spent 3.0–3.6 s of 5.4–6.1 s in the
/// kernel, and 1.7–2.3 s of 3.9–4.9 s with huge pages off (BENCHMARKS.md, session 12). A full
/// run sorts arrays of gigabytes and keeps them: its grouping took 19.0–20.5 s with them and
/// 25.4 s without (session 12, one run each).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn no_huge_pages() {
    // SAFETY: `PR_SET_THP_DISABLE` only sets a flag of this process that the kernel reads when
    // it backs new memory; the other arguments must be 0. A refusal (an old kernel) leaves
    // huge pages on, which is correct, only slower.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages() {}

fn run_leads(a: RunArgs) -> anyhow::Result<()> {
    keep_large_allocations();
    let ctx = load_context(a.policy.as_ref())?;
    let today = a.today.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut opts = RunOptions::new("cli", today);
    opts.force_full = a.full;
    opts.batch_size = usize::try_from(a.batch).unwrap_or(2_000);
    opts.stop_after_batches = a.stop_after_batches;
    opts.screen_by_policy = !a.no_screen;
    opts.map_dir = match (&a.map_dir, a.no_map, &a.store.database_url) {
        (_, true, _) => None,
        (Some(dir), _, _) => Some(dir.clone()),
        (None, false, None) => Some(a.store.data.join("ncatc")),
        (None, false, Some(_)) => None,
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg:>10} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    };
    let phase = Mutex::new("");
    let started = std::time::Instant::now();
    let on_progress = |p: Progress| {
        let (name, done, total) = match p {
            Progress::Started { incremental } => {
                // By the run's kind, not by `--full`: a run without it is full when there is
                // no finished run to continue from.
                if incremental {
                    no_huge_pages();
                }
                return;
            }
            Progress::Scanning { done, total } => ("records", done, total),
            Progress::Evaluating { done, total } => ("persons", done, total),
        };
        if let Ok(mut current) = phase.lock() {
            if *current != name {
                if a.timing {
                    eprintln!(
                        "timing: {name} phase from {:.2} s",
                        started.elapsed().as_secs_f64()
                    );
                }
                *current = name;
                bar.set_message(name);
                bar.reset();
            }
        }
        bar.set_length(total.max(done));
        bar.set_position(done);
    };
    runtime()?.block_on(async {
        let store = a.store.open().await?;
        let result = ncatc::run_leads(&store, &ctx, &opts, &on_progress).await;
        store.close().await;
        bar.finish_and_clear();
        let s = result.context("lead run (run the same command again to resume it)")?;
        let st = &s.stats;
        println!(
            "lead run {} ({}{}, policy {}) finished in {:.2} s",
            s.run_id,
            s.kind,
            if s.resumed { ", resumed" } else { "" },
            ctx.policy.version,
            started.elapsed().as_secs_f64()
        );
        println!(
            "records scanned {}, persons {}, evaluated {}: leads created {}, refreshed {}, \
             withdrawn {}, citizenship reviews {}, no rule {}",
            st.records_scanned,
            st.persons,
            st.persons_evaluated,
            st.leads_created,
            st.leads_refreshed,
            st.leads_withdrawn,
            st.citizenship_reviews,
            st.no_rule
        );
        println!("records read from the store {}", st.records_read);
        if let Some(note) = &st.person_map {
            println!("person map {note}");
        }
        for (reason, n) in &st.parked {
            println!("parked {reason}: {n}");
        }
        for (aor, n) in &st.leads_by_aor {
            println!("new leads to {aor}: {n}");
        }
        Ok(())
    })
}

fn report(a: ReportArgs) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = a.store.open().await?;
        let runs = store.lead_runs(5).await?;
        for r in &runs {
            println!(
                "run {} {} {} policy {} revs {}..{}",
                r.run_id, r.kind, r.state, r.policy_version, r.from_rev, r.to_rev
            );
        }
        println!("rule,aor,leads,open,withdrawn,disposed,bad_share");
        for q in store.lead_quality().await? {
            println!(
                "{},{},{},{},{},{},{}",
                q.rule,
                q.aor.as_deref().unwrap_or("analyst_queue"),
                q.leads,
                q.open,
                q.withdrawn,
                q.disposed(),
                q.bad_share().map(|b| format!("{b:.3}")).unwrap_or_default()
            );
        }
        if let Some(world) = &a.world {
            let truth = Truth::load(world)?;
            let leads = store
                .list_leads(&LeadFilter {
                    limit: u32::MAX,
                    ..LeadFilter::default()
                })
                .await?;
            let live: Vec<_> = leads.iter().filter(|l| l.state != "withdrawn").collect();
            let rep = ncatc::score_leads(
                &truth,
                live.iter().map(|l| {
                    (
                        l.lead_id.as_str(),
                        l.status.as_str(),
                        l.evidence_json.as_str(),
                    )
                }),
            );
            println!(
                "precision: {} of {} leads correct = {} (mixed identity {}, wrong status {}); \
                 leads on U.S. citizens: {}",
                rep.correct,
                rep.leads,
                rep.precision()
                    .map(|p| format!("{:.4}", p))
                    .unwrap_or_else(|| "n/a".into()),
                rep.mixed_identity,
                rep.wrong_status,
                rep.on_us_citizens
            );
            for e in &rep.examples {
                println!("  failed: {e}");
            }
        }
        store.close().await;
        Ok(())
    })
}

/// The revs `leads touch` takes: those up to `head` that leave `offset` divided by `every`
/// (`offset < every`), from 1. Revs are dense from 1 in a store that was only ever inserted
/// into, so this is every Nth record without reading the others (reading them all took 400 s
/// for 0.14% of a 10M-person store).
fn touch_revs(head: i64, every: u64, offset: u64) -> Vec<i64> {
    let every = i64::try_from(every.max(1)).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(0);
    let mut wanted = Vec::new();
    let mut rev = if offset == 0 { every } else { offset };
    while rev <= head {
        wanted.push(rev);
        rev = match rev.checked_add(every) {
            Some(next) => next,
            None => break,
        };
    }
    wanted
}

fn touch(a: TouchArgs) -> anyhow::Result<()> {
    // Checked before the store is opened (which may create or migrate it).
    if a.offset >= a.every {
        anyhow::bail!(
            "--offset {} must be less than --every {} (it is a remainder)",
            a.offset,
            a.every
        );
    }
    runtime()?.block_on(async {
        let store = a.store.open().await?;
        let head = store.max_record_rev().await?;
        let wanted = touch_revs(head, a.every, a.offset);
        let mut added = 0u64;
        for part in wanted.chunks(10_000) {
            let mut batch = Vec::with_capacity(part.len());
            for raw in store.records_by_revs(part).await? {
                let mut r = raw.decode()?;
                r.record_id = format!("{}-{}", r.record_id, a.suffix);
                batch.push(r);
            }
            added += store.insert_records(&batch).await?;
        }
        store.close().await;
        println!(
            "stored {added} new record versions (revs leaving {} divided by {}, up to {head})",
            a.offset, a.every
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::touch_revs;

    #[test]
    fn touch_takes_every_nth_rev_and_an_offset_takes_others() {
        assert_eq!(touch_revs(10, 3, 0), vec![3, 6, 9]);
        assert_eq!(touch_revs(10, 3, 1), vec![1, 4, 7, 10]);
        assert_eq!(touch_revs(10, 3, 2), vec![2, 5, 8]);
        assert!(touch_revs(0, 3, 0).is_empty());
        // Near the largest rev the steps stop rather than wrap.
        assert_eq!(touch_revs(i64::MAX, i64::MAX as u64, 0), vec![i64::MAX]);
    }
}
