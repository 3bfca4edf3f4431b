//! NCATC: lead runs over the whole store, deconfliction, routing to field offices and
//! lead-quality metrics from field dispositions.
//!
//! A run is a batch job over records by `rev`:
//! - **full** (the first run, or when asked): the record digests that every insert stores
//!   (identifiers and sweep keys, hashed; `verity_store::scan::RecordDigest`) are read up to the
//!   store's head, records without a digest through a borrowed view of their JSON
//!   (`ncatc_scan.rs`, which then stores their keys and digests), linked into persons in
//!   memory, and the persons a lead rule could apply to are read again and evaluated;
//! - **incremental** (otherwise): only records newer than the last finished run's head, plus the
//!   records linked to them by identifiers (followed until no new record turns up, so the
//!   persons are the full run's), are read; only their persons are evaluated, and the sweep
//!   keys are looked up in the store.
//!
//! Persons are evaluated in person-key order and written in batches; each batch commits with
//! the run's cursor (the last person key written), so a run that stops is resumed by the next
//! `run_leads` call, which skips what is already committed. Per person the outcome is a new
//! lead, a refresh of its open lead, a withdrawal of an open lead that is no longer supported,
//! a park with the reason, a citizenship review, or nothing.

#[path = "ncatc_person.rs"]
pub mod person;
#[cfg(test)]
#[path = "ncatc_tests.rs"]
mod tests;

#[path = "ncatc_scan.rs"]
mod scan;

#[path = "ncatc_mapped.rs"]
mod mapped;

#[cfg(test)]
use scan::may_lead;
pub use scan::LeadScreen;
use scan::{system_may_lead, FullScan, SweepIndex, SweepRows};

pub use person::{evaluate_person, group_persons, LeadContext, PersonContext, PersonResult};

use crate::lesc::engine::SUBJECT_KEY_PREFIX;
use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use verity_model::{RecordSystem, SourceRecord};
use verity_policy::{LeadOutcome, Ongoing};
use verity_store::leads::{
    sweep_key_hash, LeadBatch, LeadRun, NewLead, NewLeadRun, RecordLinks, RefreshedLead,
};
use verity_store::scan::{encode_record_pack, LeadFacets, RawRecord, RecordDigest};
use verity_store::{IdKind, Store, StoreError};

/// Counters of a run, stored with it (and updated with each batch, so a resumed run continues
/// counting).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStats {
    pub records_scanned: u64,
    pub persons: u64,
    pub persons_evaluated: u64,
    pub leads_created: u64,
    pub leads_refreshed: u64,
    pub leads_withdrawn: u64,
    pub citizenship_reviews: u64,
    pub no_rule: u64,
    /// Parked persons by reason.
    pub parked: BTreeMap<String, u64>,
    /// Leads created by AOR (`analyst_queue` for unknown places).
    pub leads_by_aor: BTreeMap<String, u64>,
    /// Times the run was resumed after a stop.
    pub resumed: u64,
    /// Records read whole from the store (scan pages, identifier expansion, re-reads by rev,
    /// records unpacked from their insert's record pack): the run's main cost. An incremental run's grows with the changed persons' records, not with
    /// the store.
    #[serde(default)]
    pub records_read: u64,
    /// How the run found its persons when it could use the last full run's person map (a
    /// full run: where it wrote the map; an incremental run: that it used it, or why not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_map: Option<String>,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Who started the run (username, or `cli`).
    pub actor: String,
    /// Evaluate everyone even when an earlier run finished.
    pub force_full: bool,
    /// Records per scan page.
    pub page_size: u32,
    /// Persons per committed batch.
    pub batch_size: usize,
    /// The date facts are judged on.
    pub today: NaiveDate,
    /// Stop (as if interrupted) after this many batches: for resumability tests.
    pub stop_after_batches: Option<usize>,
    /// Evaluate only persons a lead rule of the policy could apply to ([`LeadScreen`]); when
    /// false, every person with a record of a may-lead system (the test before the screen:
    /// for comparisons; outcomes are the same, more persons are evaluated to "no rule").
    pub screen_by_policy: bool,
    /// Where a full run leaves its person map and incremental runs read it (`ncatc_map.rs`);
    /// `None`: no map, incremental runs follow identifiers through the store.
    pub map_dir: Option<std::path::PathBuf>,
}

impl RunOptions {
    pub fn new(actor: &str, today: NaiveDate) -> RunOptions {
        RunOptions {
            actor: actor.to_string(),
            force_full: false,
            page_size: 5_000,
            batch_size: 2_000,
            today,
            stop_after_batches: None,
            screen_by_policy: true,
            map_dir: None,
        }
    }
}

/// Where a run is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The run is known: a new or resumed one, incremental or full (before any record is
    /// read, so a caller can set up the process for it).
    Started { incremental: bool },
    /// Reading records: done so far, total expected.
    Scanning { done: u64, total: u64 },
    /// Evaluating persons: done so far, total.
    Evaluating { done: u64, total: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "lead run {run_id} was started with lead policy {started}, but policy {given} is loaded: \
         resume it with the same policy file, or mark it failed first"
    )]
    PolicyChanged {
        run_id: String,
        started: String,
        given: String,
    },
    #[error("lead run {run_id} stopped after {batches} batches as asked; run again to resume")]
    Stopped { run_id: String, batches: usize },
}

/// The outcome of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: String,
    pub kind: String,
    pub resumed: bool,
    pub stats: RunStats,
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Starts a lead run, or resumes the one left running, and takes it to the end.
pub async fn run_leads(
    store: &Store,
    ctx: &LeadContext,
    opts: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RunSummary, RunError> {
    let (run, resumed) = match store.latest_lead_run("running").await? {
        Some(run) => (run, true),
        None => {
            let head = store.max_record_rev().await?;
            let base = if opts.force_full {
                None
            } else {
                store.latest_lead_run("finished").await?
            };
            let (kind, from_rev) = match &base {
                Some(b) => ("incremental", b.to_rev),
                None => ("full", 0),
            };
            let new = NewLeadRun {
                kind: kind.into(),
                policy_version: ctx.policy.version.clone(),
                rules_version: ctx.rules.version.clone(),
                started_by: opts.actor.clone(),
                from_rev,
                to_rev: head,
            };
            (store.start_lead_run(&new, now_micros()).await?, false)
        }
    };
    if run.policy_version != ctx.policy.version {
        return Err(RunError::PolicyChanged {
            run_id: run.run_id,
            started: run.policy_version,
            given: ctx.policy.version.clone(),
        });
    }
    let mut stats: RunStats = if resumed {
        serde_json::from_str(&run.stats_json).unwrap_or_default()
    } else {
        RunStats::default()
    };
    if resumed {
        stats.resumed += 1;
    }
    progress(Progress::Started {
        incremental: run.kind != "full",
    });
    audit_run(
        store,
        opts,
        &run.run_id,
        if resumed { "resumed" } else { "started" },
        &run.kind,
    )
    .await?;
    match execute(store, ctx, opts, progress, &run, &mut stats).await {
        Ok(()) => {
            let json = serde_json::to_string(&stats).unwrap_or_else(|_| "{}".into());
            store
                .finish_lead_run(&run.run_id, "finished", &json, now_micros())
                .await?;
            audit_run(store, opts, &run.run_id, "finished", &json).await?;
            Ok(RunSummary {
                run_id: run.run_id,
                kind: run.kind,
                resumed,
                stats,
            })
        }
        // Left running on purpose: the next call resumes it.
        Err(e) => Err(e),
    }
}

/// Every run start, resumption and end is in the audit log, with the actor and purpose.
async fn audit_run(
    store: &Store,
    opts: &RunOptions,
    run_id: &str,
    what: &str,
    detail: &str,
) -> Result<(), RunError> {
    store
        .append_audit(verity_model::AuditEvent {
            actor: opts.actor.clone(),
            agency: None,
            purpose: verity_model::Purpose::LeadGeneration,
            action: verity_model::AuditAction::Decision {
                subject: run_id.to_string(),
                decision: format!("lead run {what}"),
                reason: detail.to_string(),
            },
        })
        .await?;
    Ok(())
}

/// A person's records: already read (incremental runs) or to be read by rev (full runs,
/// which keep only identifiers in memory while scanning).
enum Members {
    /// Read whole by an incremental run, with the person map's groups it is made of (none
    /// without a map).
    Loaded {
        records: Vec<SourceRecord>,
        groups: Vec<u32>,
    },
    /// The person's group number in the full scan, and the revs of its records.
    Revs { group: u32, revs: Vec<i64> },
}

impl Members {
    /// The groups the person is made of: its group in the full scan, or the map's.
    fn groups(&self) -> &[u32] {
        match self {
            Members::Revs { group, .. } => std::slice::from_ref(group),
            Members::Loaded { groups, .. } => groups.as_slice(),
        }
    }
}

/// The persons a run evaluates, with what it knows about the rest of the store.
struct Population {
    /// Persons sorted by key (loaded records are sorted by record id).
    persons: Vec<(String, Members)>,
    records_scanned: u64,
    /// Records read from the store to build the population.
    records_read: u64,
    /// Persons in the store (a full run evaluates only those a lead rule could apply to).
    persons_total: u64,
    /// Where the sweep looks.
    sweep: SweepSource,
    /// The records of the persons to evaluate, by rev, taken from the digest chunks' record
    /// packs (a full run); records not found here or in `previous` are read from the store.
    unpacked: HashMap<i64, RawRecord>,
    /// The last full run's candidates, by rev (a full run with a map directory): the records
    /// to evaluate that it has are read from there.
    previous: Option<scan::map::CandidatesByRev>,
    /// What the run did with the person map (see [`RunStats::person_map`]).
    person_map: Option<String>,
    /// A full run's candidates file, written as its batches are read.
    candidates: Option<scan::map::CandidateWriter>,
    /// An incremental run's records since the person map being kept for the next run
    /// ([`scan::map::overlay`]): what became of them, once written.
    overlay: Option<mapped::KeptWriter>,
}

/// Where a run's sweep looks: a full run's index in memory, a person map's index with the
/// records added since, or the store's sweep tables.
enum SweepSource {
    Full(SweepIndex),
    Map(Box<mapped::MapSweep>),
    Store,
}

/// The person map's validity key: the store it describes (a map left in a data dir whose
/// database was replaced is not used), and the lead policy, the priority policy and the kind
/// of screen (the screen values it keeps depend on them).
async fn map_key(store: &Store, run: &LeadRun, opts: &RunOptions) -> Result<String, RunError> {
    const STORE_ID: &str = "ncatc_map_store_id";
    let store_id = match store.get_meta(STORE_ID).await? {
        Some(id) => id,
        None => {
            let id = hex::encode(rand::random::<[u8; 16]>());
            store.set_meta(STORE_ID, &id).await?;
            id
        }
    };
    Ok(format!(
        "{store_id}|{}|{}|{}",
        run.policy_version,
        run.rules_version,
        if opts.screen_by_policy {
            "policy"
        } else {
            "system"
        }
    ))
}

/// The last full run's candidates file, for the next full run: its head read at once (chunks
/// up to it need not have their packs read), the file checked and indexed by rev on another
/// thread while the digests are read.
struct PreviousCandidates {
    /// `i64::MIN` when there are none to use.
    head_rev: i64,
    job: Option<
        std::thread::JoinHandle<Result<Option<scan::map::CandidatesByRev>, scan::map::MapError>>,
    >,
    /// Why there are none to use, when that is worth saying.
    note: Option<String>,
}

impl PreviousCandidates {
    fn start(dir: Option<&std::path::Path>, key: &str, to_rev: i64) -> PreviousCandidates {
        let none = |note: Option<String>| PreviousCandidates {
            head_rev: i64::MIN,
            job: None,
            note,
        };
        let Some(dir) = dir else {
            return none(None);
        };
        match scan::map::read_candidates_head(dir) {
            Ok(Some((head, k))) if k == key && head <= to_rev => {
                let (dir, key) = (dir.to_path_buf(), key.to_string());
                let job = std::thread::spawn(move || match scan::map::read_candidates(&dir)? {
                    // Checked again whole: the file could have been replaced since its head
                    // was read.
                    Some(c) if c.key == key && c.head_rev == head => {
                        scan::map::CandidatesByRev::index(c).map(Some)
                    }
                    _ => Ok(None),
                });
                PreviousCandidates {
                    head_rev: head,
                    job: Some(job),
                    note: None,
                }
            }
            Ok(Some((head, _))) => none(Some(format!(
                "last candidates (rev {head}) not used: another store, policy or screen, \
                 or a head past this run's"
            ))),
            Ok(None) => none(None),
            Err(e) => none(Some(format!("last candidates not used: {e}"))),
        }
    }

    fn head_rev(&self) -> i64 {
        self.head_rev
    }

    /// The candidates by rev, or why not. Without them, the records their head covers are
    /// read by rev from the store: slower, the same outcome.
    fn finish(self) -> (Option<scan::map::CandidatesByRev>, Option<String>) {
        let Some(job) = self.job else {
            return (None, self.note);
        };
        match job.join() {
            Ok(Ok(Some(c))) => (Some(c), None),
            Ok(Ok(None)) => (
                None,
                Some("last candidates replaced while read: records read by rev".into()),
            ),
            Ok(Err(e)) => (
                None,
                Some(format!(
                    "last candidates not used ({e}): records read by rev"
                )),
            ),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// A digest chunk's record pack, kept by a full run's scan until it knows which records the
/// persons it evaluates hold.
struct HeldPack {
    first_rev: i64,
    last_rev: i64,
    bytes: Vec<u8>,
}

/// Wall and CPU time per phase of a run, summed over its batches, on stderr at the end when
/// `VERITY_NCATC_TIMING` is set (for benchmarks: tests never set it, and nothing depends on
/// it). CPU time is the whole process's (every thread, the database's included), so phases that
/// overlap share it.
struct RunTimes {
    on: bool,
    started: std::time::Instant,
    phases: Vec<(&'static str, std::time::Duration, f64)>,
}

/// When a timed phase began: its wall clock and the process's CPU seconds.
type PhaseStart = Option<(std::time::Instant, Option<f64>)>;

impl RunTimes {
    fn new() -> RunTimes {
        RunTimes {
            on: std::env::var_os("VERITY_NCATC_TIMING").is_some(),
            started: std::time::Instant::now(),
            phases: Vec::new(),
        }
    }

    fn begin(&self) -> PhaseStart {
        self.on
            .then(|| (std::time::Instant::now(), process_cpu_seconds()))
    }

    fn end(&mut self, phase: &'static str, begun: PhaseStart) {
        let Some((at, cpu)) = begun else {
            return;
        };
        let wall = at.elapsed();
        let cpu = match (process_cpu_seconds(), cpu) {
            (Some(now), Some(then)) => now - then,
            _ => 0.0,
        };
        match self.phases.iter_mut().find(|(p, _, _)| *p == phase) {
            Some(entry) => {
                entry.1 += wall;
                entry.2 += cpu;
            }
            None => self.phases.push((phase, wall, cpu)),
        }
    }

    fn report(&self, kind: &str) {
        if !self.on {
            return;
        }
        let parts: Vec<String> = self
            .phases
            .iter()
            .map(|(p, wall, cpu)| format!("{p} {:.3} s ({cpu:.2} CPU-s)", wall.as_secs_f64()))
            .collect();
        eprintln!(
            "ncatc {kind} run phases: {:.3} s in all ({:.2} CPU-s of the process so far); {}",
            self.started.elapsed().as_secs_f64(),
            process_cpu_seconds().unwrap_or(0.0),
            parts.join(", ")
        );
    }
}

async fn execute(
    store: &Store,
    ctx: &LeadContext,
    opts: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
    run: &LeadRun,
    stats: &mut RunStats,
) -> Result<(), RunError> {
    let mut times = RunTimes::new();
    let begun = times.begin();
    // Every open lead by person key: small (one per open lead), and one read instead of a
    // query per record of every evaluated person.
    let open: HashMap<String, String> = store.open_lead_keys().await?.into_iter().collect();
    times.end("open leads", begun);
    let begun = times.begin();
    // Which persons a lead rule could apply to, read from the run's policy (both kinds of run).
    let screen = if opts.screen_by_policy {
        LeadScreen::new(ctx)
    } else {
        LeadScreen::by_system(ctx)
    };
    times.end("screen", begun);
    let begun = times.begin();
    let mut population = if run.kind == "full" {
        full_population(store, opts, progress, run, &open, &screen).await?
    } else {
        incremental_population(store, opts, progress, run, &open, &screen).await?
    };
    times.end("population", begun);
    // Persons read whole (an incremental run's) pass the same screen as a full run's.
    population.persons.retain(|(_, m)| match m {
        Members::Loaded { records, .. } => worth_evaluating_records(&screen, records, &open),
        Members::Revs { .. } => true,
    });
    if stats.resumed == 0 || population.person_map.is_some() {
        stats.person_map = population.person_map.take();
    }
    stats.records_read += population.records_read;
    if stats.resumed == 0 {
        stats.records_scanned = population.records_scanned;
        stats.persons = population.persons_total;
    }
    let detainer_keys = store.active_detainer_person_keys().await?;
    let detainers = ActiveDetainers::new(&detainer_keys);
    let candidates = population.candidates.take();
    let overlay = population.overlay.take();
    let mut sources = RecordSources {
        unpacked: std::mem::take(&mut population.unpacked),
        previous: population.previous.take(),
        candidates: candidates.as_ref(),
        from_previous: std::collections::VecDeque::new(),
        unreadable: None,
    };
    let start = match &run.cursor_key {
        Some(c) => population.persons.partition_point(|(k, _)| k <= c),
        None => 0,
    };
    let total = population.persons.len() as u64;
    progress(Progress::Evaluating {
        done: start as u64,
        total,
    });
    // A pipeline over batches: while batch k is evaluated on worker threads, batch k + 1 is
    // read and swept, then batch k is saved while k + 1 is evaluated. Batches are saved in
    // order, each with its cursor, as before.
    let shared = Arc::new(ctx.clone());
    let open = Arc::new(open);
    let mut chunks: Vec<&mut [(String, Members)]> = population.persons[start..]
        .chunks_mut(opts.batch_size.max(1))
        .collect();
    let sweep = &population.sweep;
    let mut evaluating: Option<BatchJob> = match chunks.first_mut() {
        Some(first) => {
            let prepared =
                prepare_batch(store, first, sweep, &detainers, &mut sources, &mut times).await?;
            Some(spawn_batch(&shared, &open, prepared, opts.today))
        }
        None => None,
    };
    let mut freeing: Option<std::thread::JoinHandle<()>> = None;
    for done_batches in 0..chunks.len() {
        let next = match chunks.get_mut(done_batches + 1) {
            Some(next) => {
                Some(prepare_batch(store, next, sweep, &detainers, &mut sources, &mut times).await?)
            }
            None => None,
        };
        let begun = times.begin();
        let Some(job) = evaluating.take() else {
            break;
        };
        let (mut results, mut evaluated) = match job.join() {
            Ok(done) => done,
            Err(p) => std::panic::resume_unwind(p),
        };
        times.end("wait for evaluation", begun);
        evaluating = next.map(|prepared| spawn_batch(&shared, &open, prepared, opts.today));
        let chunk: &[(String, Members)] = chunks.get(done_batches).map_or(&[], |c| &**c);
        let begun = times.begin();
        sweep_leads(
            store,
            ctx,
            sweep,
            chunk,
            &mut evaluated,
            &mut results,
            opts.today,
        )
        .await?;
        // One batch is freed at a time: a full run's memory then holds at most one more.
        if let Some(previous) = freeing.take() {
            let _ = previous.join();
        }
        freeing = drop_elsewhere(evaluated);
        times.end("sweep", begun);
        let begun = times.begin();
        // Records taken from the last full run's candidates were not read from the store.
        let from_previous = sources.from_previous.pop_front().unwrap_or(0);
        stats.records_read += chunk
            .iter()
            .map(|(_, m)| match m {
                Members::Revs { revs, .. } => revs.len() as u64,
                Members::Loaded { .. } => 0,
            })
            .sum::<u64>()
            .saturating_sub(from_previous);
        let mut batch = LeadBatch::default();
        for (result, existing) in results {
            apply_outcome(ctx, result, existing, &mut batch, stats);
        }
        stats.persons_evaluated += chunk.len() as u64;
        let cursor = chunk.last().map(|(k, _)| k.as_str()).unwrap_or("");
        let json = serde_json::to_string(stats).unwrap_or_else(|_| "{}".into());
        store
            .save_lead_batch(&run.run_id, &batch, cursor, &json, now_micros())
            .await?;
        times.end("save", begun);
        let batches = done_batches + 1;
        progress(Progress::Evaluating {
            done: stats.persons_evaluated.min(total),
            total,
        });
        if opts.stop_after_batches.is_some_and(|n| batches >= n) {
            // The next batch's evaluation is dropped unsaved (a resumed run repeats it).
            if let Some(job) = evaluating.take() {
                let _ = job.join();
            }
            return Err(RunError::Stopped {
                run_id: run.run_id.clone(),
                batches,
            });
        }
    }
    if let (Some(problem), Some(p)) = (sources.unreadable.take(), &mut stats.person_map) {
        p.push_str(&format!(
            "; last candidates partly unreadable, their records read by rev: {problem}"
        ));
    }
    if let Some(writer) = candidates {
        let begun = times.begin();
        let note = match writer.finish() {
            Ok(bytes) => format!("; candidates: {bytes} bytes"),
            Err(e) => format!("; candidates not written: {e}"),
        };
        if let Some(p) = &mut stats.person_map {
            p.push_str(&note);
        }
        times.end("candidates", begun);
    }
    if let Some(writer) = overlay {
        let begun = times.begin();
        let note = writer.finish();
        if let Some(p) = &mut stats.person_map {
            p.push_str("; ");
            p.push_str(&note);
        }
        times.end("keep records since the map", begun);
    }
    times.report(&run.kind);
    Ok(())
}

/// Drops `value` on a thread of its own: freeing an evaluated batch (hundreds of thousands of
/// records, each a dozen allocations) took 4% of an incremental run's CPU on the thread that
/// saves the batch next. If no thread can be started it is dropped here (and `None`).
fn drop_elsewhere<T: Send + 'static>(value: T) -> Option<std::thread::JoinHandle<()>> {
    // A failed spawn drops its closure, and with it the value, on this thread.
    std::thread::Builder::new()
        .name("ncatc-drop".into())
        .spawn(move || drop(value))
        .ok()
}

/// A batch of persons read and swept, ready to evaluate: each with its records and context.
struct PreparedBatch {
    people: Vec<(String, Vec<SourceRecord>)>,
    contexts: Vec<PersonContext>,
}

/// A batch being evaluated on worker threads: per person its result and the id of its open
/// lead, if any; and the batch itself, for [`sweep_leads`].
type BatchJob = std::thread::JoinHandle<(Vec<(PersonResult, Option<String>)>, PreparedBatch)>;

/// The status sweep of a batch's leads: a lead with a status-bearing record of its full name
/// and birth date outside the person is evaluated again with that known, which parks it
/// ([`person::evaluate_person`]). Asked of leads only, as no other outcome depends on it: a
/// few hundred persons of a batch instead of all of them (each has dozens of name keys).
async fn sweep_leads(
    store: &Store,
    ctx: &LeadContext,
    sweep: &SweepSource,
    chunk: &[(String, Members)],
    prepared: &mut PreparedBatch,
    results: &mut [(PersonResult, Option<String>)],
    today: NaiveDate,
) -> Result<(), RunError> {
    let leads: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| matches!(r.outcome, LeadOutcome::Lead { .. }))
        .map(|(i, _)| i)
        .collect();
    if leads.is_empty() {
        return Ok(());
    }
    let asked: Vec<(String, Vec<SourceRecord>)> = leads
        .iter()
        .map(|&i| std::mem::take(&mut prepared.people[i]))
        .collect();
    let groups: Vec<&[u32]> = leads
        .iter()
        .map(|&i| chunk.get(i).map_or(&[][..], |(_, m)| m.groups()))
        .collect();
    let outside = sweep_matches(store, sweep, &asked, &groups, SweepPart::Status).await?;
    for ((&i, (_, records)), outside) in leads.iter().zip(&asked).zip(outside) {
        if let (true, Some(context), Some(result)) =
            (outside, prepared.contexts.get_mut(i), results.get_mut(i))
        {
            context.unlinked_status_record = true;
            result.0 = person::evaluate_person(ctx, records, context, today);
        }
    }
    Ok(())
}

/// The active detainers' person keys, and the record ids named by those opened from a LESC
/// answer (keyed by the answer's subject, [`SUBJECT_KEY_PREFIX`] and a record id: a person
/// holding that record is that subject), gathered once per run so a batch looks a record up
/// by its id.
struct ActiveDetainers<'a> {
    keys: &'a BTreeSet<String>,
    records: HashSet<&'a str>,
}

impl<'a> ActiveDetainers<'a> {
    fn new(keys: &'a BTreeSet<String>) -> Self {
        let records = keys
            .range::<str, _>((
                std::ops::Bound::Included(SUBJECT_KEY_PREFIX),
                std::ops::Bound::Unbounded,
            ))
            .map_while(|k| k.strip_prefix(SUBJECT_KEY_PREFIX))
            .collect();
        ActiveDetainers { keys, records }
    }

    /// Whether a detainer is active on the person `key` or on one of its records.
    fn on(&self, key: &str, records: &[SourceRecord]) -> bool {
        self.keys.contains(key)
            || records
                .iter()
                .any(|r| self.records.contains(r.record_id.as_str()))
    }
}

/// Reads a batch's persons and finds their sweep matches and active detainers.
async fn prepare_batch(
    store: &Store,
    chunk: &mut [(String, Members)],
    sweep: &SweepSource,
    detainers: &ActiveDetainers<'_>,
    sources: &mut RecordSources<'_>,
    times: &mut RunTimes,
) -> Result<PreparedBatch, RunError> {
    let begun = times.begin();
    let people = load_members(store, chunk, sources).await?;
    times.end("read persons", begun);
    let begun = times.begin();
    let groups: Vec<&[u32]> = chunk.iter().map(|(_, m)| m.groups()).collect();
    // The status sweep waits for the evaluation: only leads need it (`sweep_leads`).
    let citizen = sweep_matches(store, sweep, &people, &groups, SweepPart::Citizen).await?;
    let contexts: Vec<PersonContext> = people
        .iter()
        .zip(citizen)
        .map(|((key, records), citizen)| PersonContext {
            ongoing: Ongoing {
                open_lead: false,
                active_detainer: detainers.on(key, records),
                open_citizenship_claim: false,
            },
            citizen_key_match: citizen,
            unlinked_status_record: false,
        })
        .collect();
    times.end("sweep", begun);
    Ok(PreparedBatch { people, contexts })
}

/// Evaluates a prepared batch on worker threads (the caller reads the next one meanwhile).
fn spawn_batch(
    ctx: &Arc<LeadContext>,
    open: &Arc<HashMap<String, String>>,
    prepared: PreparedBatch,
    today: NaiveDate,
) -> BatchJob {
    let (ctx, open) = (Arc::clone(ctx), Arc::clone(open));
    std::thread::spawn(move || {
        let results = evaluate_parallel(&ctx, &prepared.people, &prepared.contexts, today);
        let results = prepared
            .people
            .iter()
            .zip(results)
            .map(|((_, records), result)| {
                // Every key the person may have had in earlier runs (`NP-` and one of its record
                // ids), formatted in one buffer.
                let mut key = String::from("NP-");
                let existing = records.iter().find_map(|r| {
                    key.truncate(3);
                    key.push_str(&r.record_id);
                    open.get(&key).cloned()
                });
                (result, existing)
            })
            .collect();
        (results, prepared)
    })
}

/// Where a full run's batches find their records besides the store, and where it writes them.
struct RecordSources<'a> {
    /// Records unpacked from the digest chunks' packs, by rev (removed as read).
    unpacked: HashMap<i64, RawRecord>,
    /// The last full run's candidates.
    previous: Option<scan::map::CandidatesByRev>,
    /// This run's candidates file.
    candidates: Option<&'a scan::map::CandidateWriter>,
    /// Per batch read and not yet saved, in order: how many of its records came from
    /// `previous`.
    from_previous: std::collections::VecDeque<u64>,
    /// The first problem met reading `previous`, if any (those records were read by rev).
    unreadable: Option<String>,
}

/// The records of a batch of persons: taken from the full run's record packs, from the last
/// full run's candidates or else read by rev in one go; decoded on the machine's cores, each
/// person's sorted by record id.
async fn load_members(
    store: &Store,
    chunk: &mut [(String, Members)],
    sources: &mut RecordSources<'_>,
) -> Result<Vec<(String, Vec<SourceRecord>)>, RunError> {
    let (previous, candidates) = (sources.previous.as_ref(), sources.candidates);
    let mut raw = Vec::new();
    let mut missing = Vec::new();
    // (block, rev) of the records the last full run's candidates hold.
    let mut kept: Vec<(u32, i64)> = Vec::new();
    for (_, m) in chunk.iter() {
        if let Members::Revs { revs, .. } = m {
            for rev in revs {
                match sources.unpacked.remove(rev) {
                    Some(r) => raw.push(r),
                    None => match previous.and_then(|p| p.block_of(*rev)) {
                        Some(b) => kept.push((b, *rev)),
                        None => missing.push(*rev),
                    },
                }
            }
        }
    }
    // From the last full run's candidates, whole blocks to each core (a block is unpacked
    // once). The file's checksum held when it was opened, so a block that cannot be read is a
    // bug rather than damage: its records are read by rev instead, and the run says so.
    let mut from_previous: Vec<scan::map::CandidateRecord> = Vec::new();
    if let Some(previous) = previous.filter(|_| !kept.is_empty()) {
        kept.sort_unstable();
        let per = kept.len().div_ceil(worker_threads()).max(1);
        let mut parts: Vec<&[(u32, i64)]> = Vec::new();
        let mut rest = kept.as_slice();
        while !rest.is_empty() {
            let mut end = per.min(rest.len());
            while end < rest.len() && rest[end].0 == rest[end - 1].0 {
                end += 1;
            }
            let (part, tail) = rest.split_at(end);
            parts.push(part);
            rest = tail;
        }
        for (part, read) in parts
            .iter()
            .zip(par_map(&parts, |_, part| previous.read(part)))
        {
            match read {
                Ok(records) => from_previous.extend(records),
                Err(e) => {
                    sources.unreadable.get_or_insert_with(|| e.to_string());
                    missing.extend(part.iter().map(|&(_, rev)| rev));
                }
            }
        }
    }
    sources.from_previous.push_back(from_previous.len() as u64);
    if !missing.is_empty() {
        let read = store.records_by_revs(&missing).await?;
        // Every rev came from a digest: one without its row is damage, and a person must not
        // be evaluated without one of its records (it may be the citizenship evidence).
        if read.len() != missing.len() {
            missing.sort_unstable();
            let lost = missing
                .iter()
                .find(|&&rev| read.binary_search_by_key(&rev, |r| r.rev).is_err())
                .copied()
                .unwrap_or_default();
            return Err(StoreError::Corrupt {
                table: "records",
                key: format!("rev {lost}"),
                problem: "in a digest chunk but not stored".into(),
            }
            .into());
        }
        raw.extend(read);
    }
    // Decoded: per record its rev, the record and (for a candidates file) its entry.
    let mut decoded: Vec<(i64, SourceRecord, Option<Vec<u8>>)> =
        Vec::with_capacity(raw.len() + kept.len());
    match candidates {
        None => decoded.extend(
            raw.iter()
                .map(|r| r.rev)
                .zip(decode_parallel(&raw)?)
                .map(|(rev, record)| (rev, record, None)),
        ),
        Some(_) => {
            // A full run's candidates file gets each record's compact form, made on the
            // decoding threads.
            let parts = par_map(&raw, |_, r| {
                let record = r.decode()?;
                let mut entry = Vec::new();
                scan::map::push_candidate_record(&mut entry, r.rev, &record).map_err(|e| {
                    StoreError::Corrupt {
                        table: "records",
                        key: r.record_id.clone(),
                        problem: e.to_string(),
                    }
                })?;
                Ok::<_, StoreError>((r.rev, record, Some(entry)))
            });
            for d in parts {
                decoded.push(d?);
            }
        }
    }
    decoded.extend(
        from_previous
            .into_iter()
            .map(|c| (c.rev, c.record, candidates.map(|_| c.entry))),
    );
    let mut by_rev: HashMap<i64, SourceRecord> = HashMap::with_capacity(decoded.len());
    let mut entries: HashMap<i64, Vec<u8>> = HashMap::new();
    for (rev, record, entry) in decoded {
        by_rev.insert(rev, record);
        if let Some(entry) = entry {
            entries.insert(rev, entry);
        }
    }
    if let Some(writer) = candidates {
        let persons: Vec<scan::map::CandidatePerson> = chunk
            .iter()
            .filter_map(|(_, m)| match m {
                Members::Revs { group, revs } => {
                    let mut person = scan::map::CandidatePerson {
                        group: *group,
                        entries: Vec::new(),
                    };
                    for rev in revs {
                        person.entries.extend(entries.remove(rev)?);
                    }
                    Some(person)
                }
                _ => None,
            })
            .collect();
        writer.send(persons);
    }
    chunk
        .iter_mut()
        .map(|(key, m)| {
            let records = match m {
                // Taken, not copied: a batch is loaded once.
                Members::Loaded { records, .. } => std::mem::take(records),
                Members::Revs { revs, .. } => {
                    // Each rev was found above or the read failed: a person is never
                    // evaluated without one of its records.
                    let mut rs = revs
                        .iter()
                        .map(|r| {
                            by_rev.remove(r).ok_or_else(|| StoreError::Corrupt {
                                table: "records",
                                key: format!("rev {r}"),
                                problem: format!("a record of {key} was not read"),
                            })
                        })
                        .collect::<Result<Vec<SourceRecord>, StoreError>>()?;
                    rs.sort_by(|a, b| a.record_id.cmp(&b.record_id));
                    rs
                }
            };
            Ok((key.clone(), records))
        })
        .collect()
}

/// Decodes records on the machine's cores, keeping their order.
fn decode_parallel(raw: &[RawRecord]) -> Result<Vec<SourceRecord>, StoreError> {
    par_map(raw, |_, r| r.decode()).into_iter().collect()
}

/// `f(index, item)` for every item, on the machine's cores; results keep the input order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    par_map_on(worker_threads(), items, f)
}

/// Threads for work that looks things up in the mapped person map or candidates. After a
/// change those files are mostly on disk and a look-up waits for its page to be read; with
/// more threads than cores several reads are in flight at once (measured on the first run
/// after a change: see BENCHMARKS.md, session 19). In the page cache, the extra threads only
/// split the work finer.
pub(super) const MAPPED_LOOKUP_THREADS: usize = 8;

/// Threads for the map's status look-ups: a few thousand, each reading one or two pages the
/// run has not read before (the status index is mapped `MADV_RANDOM` and checked by blocks,
/// not read whole), so almost all of them wait on the disk; 32 keep that many reads in flight.
const STATUS_LOOKUP_THREADS: usize = 32;

/// [`par_map`] on `threads` threads.
fn par_map_on<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    let per = items.len().div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .enumerate()
            .map(|(part, chunk)| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, item)| f(part * per + i, item))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        join_all(handles).into_iter().flatten().collect()
    })
}

/// The results of scoped worker threads, in order. A panic on a worker is a bug: it is raised
/// again here, where it can be seen.
fn join_all<R>(handles: Vec<std::thread::ScopedJoinHandle<'_, R>>) -> Vec<R> {
    handles
        .into_iter()
        .map(|h| match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
        .collect()
}

/// `f(item)` for every item, taken by value, on the machine's cores; results keep the input
/// order.
fn par_map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let per = items.len().div_ceil(worker_threads()).max(1);
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut rest = items;
    while rest.len() > per {
        let tail = rest.split_off(per);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || part.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        join_all(handles).into_iter().flatten().collect()
    })
}

fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Which sweep a look-up asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SweepPart {
    /// Whether a record with citizenship evidence shares a name-and-birth-date key with the
    /// person: asked of every person evaluated (it can send one to citizenship review).
    Citizen,
    /// Whether a status-bearing record outside the person has its full name and birth date:
    /// asked only of the persons evaluated as leads (it only ever parks a lead).
    Status,
}

/// Per person, the answer to `part` of the sweep. Full runs look in memory (`groups` gives
/// each person's group number in the scan), incremental runs with a person map in the map's
/// index (`groups`: the map groups each person is made of), and the others ask the store once
/// per batch.
async fn sweep_matches(
    store: &Store,
    sweep: &SweepSource,
    people: &[(String, Vec<SourceRecord>)],
    groups: &[&[u32]],
    part: SweepPart,
) -> Result<Vec<bool>, RunError> {
    match sweep {
        SweepSource::Full(index) => {
            // In memory: each person on the machine's cores.
            Ok(par_map(people, |i, (_, rs)| match part {
                SweepPart::Citizen => index.citizen_match(&person::person_citizen_key_hashes(rs)),
                // A person without a group number was not in the scan: every holder is
                // outside it.
                SweepPart::Status => index.status_outside(
                    &person::person_status_key_hashes(rs),
                    groups
                        .get(i)
                        .and_then(|g| g.first())
                        .copied()
                        .unwrap_or(u32::MAX),
                ),
            }))
        }
        SweepSource::Map(map) if part == SweepPart::Citizen => {
            Ok(par_map_on(MAPPED_LOOKUP_THREADS, people, |_, (_, rs)| {
                map.citizen_match(rs)
            }))
        }
        SweepSource::Map(map) => {
            let matched = par_map_on(STATUS_LOOKUP_THREADS, people, |i, (_, rs)| {
                map.status_outside(rs, groups.get(i).copied().unwrap_or(&[]))
            });
            // The few the map cannot tell are asked of the store, exactly.
            let unsure: Vec<usize> = (0..matched.len())
                .filter(|&i| matched[i].is_none())
                .collect();
            let mut exact: HashMap<usize, bool> = HashMap::new();
            if !unsure.is_empty() {
                let asked: Vec<(String, Vec<SourceRecord>)> =
                    unsure.iter().map(|&i| people[i].clone()).collect();
                let answers = store_sweep(store, &asked, part).await?;
                exact.extend(unsure.into_iter().zip(answers));
            }
            Ok(matched
                .into_iter()
                .enumerate()
                .map(|(i, outside)| {
                    outside.unwrap_or_else(|| exact.get(&i).copied().unwrap_or(true))
                })
                .collect())
        }
        SweepSource::Store => store_sweep(store, people, part).await,
    }
}

/// [`sweep_matches`] from the store's sweep tables.
async fn store_sweep(
    store: &Store,
    people: &[(String, Vec<SourceRecord>)],
    part: SweepPart,
) -> Result<Vec<bool>, RunError> {
    // The store keeps the keys hashed (migration 0007, the same hash as the digests'): look
    // up hashes, one query per few thousand.
    let stored = |h: u64| i64::from_ne_bytes(h.to_ne_bytes());
    let keys: Vec<Vec<i64>> = people
        .iter()
        .map(|(_, rs)| {
            let hashes = match part {
                SweepPart::Citizen => person::person_citizen_key_hashes(rs),
                SweepPart::Status => person::person_status_key_hashes(rs),
            };
            hashes.into_iter().map(stored).collect()
        })
        .collect();
    let clock = std::time::Instant::now();
    let all: Vec<i64> = keys.iter().flatten().copied().collect();
    let matched = match part {
        SweepPart::Citizen => {
            let citizen = store.citizen_hashes_among(&all).await?;
            keys.iter()
                .map(|k| k.iter().any(|k| citizen.contains(k)))
                .collect()
        }
        SweepPart::Status => {
            // Status key hash -> record ids holding it.
            let mut holders: HashMap<i64, Vec<String>> = HashMap::new();
            for (key, id) in store.status_hash_holders(&all).await? {
                holders.entry(key).or_default().push(id);
            }
            people
                .iter()
                .zip(&keys)
                .map(|((_, rs), k)| {
                    let own: HashSet<&str> = rs.iter().map(|r| r.record_id.as_str()).collect();
                    k.iter().any(|k| {
                        holders
                            .get(k)
                            .is_some_and(|ids| ids.iter().any(|id| !own.contains(id.as_str())))
                    })
                })
                .collect()
        }
    };
    if std::env::var_os("VERITY_NCATC_TIMING").is_some() {
        eprintln!(
            "ncatc incremental sweep look-ups ({part:?}): {:.3} s ({} keys)",
            clock.elapsed().as_secs_f64(),
            all.len()
        );
    }
    Ok(matched)
}

/// Evaluates a batch on two threads (the machine's cores); results keep the input order.
fn evaluate_parallel(
    ctx: &LeadContext,
    chunk: &[(String, Vec<SourceRecord>)],
    contexts: &[PersonContext],
    today: NaiveDate,
) -> Vec<PersonResult> {
    par_map(chunk, |i, (_, records)| match contexts.get(i) {
        Some(pc) => evaluate_person(ctx, records, pc, today),
        // One context per person by construction (`prepare_batch`).
        None => unreachable!("a person without its context"),
    })
}

fn outcome_words(o: &LeadOutcome) -> String {
    match o {
        LeadOutcome::None => "no lead rule applies any more".into(),
        LeadOutcome::CitizenshipReview => "citizenship indicia: sent to citizenship review".into(),
        LeadOutcome::Parked { detail, .. } => detail.clone(),
        LeadOutcome::Lead { .. } => "still a lead".into(),
    }
}

fn apply_outcome(
    ctx: &LeadContext,
    result: PersonResult,
    existing: Option<String>,
    batch: &mut LeadBatch,
    stats: &mut RunStats,
) {
    let key = result.person_key.clone();
    match (&result.outcome, existing) {
        (LeadOutcome::Lead { rules, .. }, Some(lead_id)) => {
            let evidence = result.evidence.map(|e| e.to_string()).unwrap_or_default();
            batch.refreshed.push(RefreshedLead {
                lead_id,
                evidence_json: evidence,
                subject_keys: result.subject_keys.clone(),
            });
            batch.parks.push((
                key,
                rules.clone(),
                "open_lead".into(),
                "a lead on this person is open (refreshed, not duplicated)".into(),
            ));
            stats.leads_refreshed += 1;
            *stats.parked.entry("open_lead".into()).or_default() += 1;
        }
        (LeadOutcome::Lead { rules, .. }, None) => {
            *stats
                .leads_by_aor
                .entry(result.aor.clone().unwrap_or_else(|| "analyst_queue".into()))
                .or_default() += 1;
            stats.leads_created += 1;
            batch.new_leads.push(NewLead {
                person_key: key,
                primary_rule: rules.first().cloned().unwrap_or_default(),
                rules: rules.clone(),
                status: result.status.code().to_string(),
                policy_version: ctx.policy.version.clone(),
                aor: result.aor,
                identity_probability: result.identity_probability,
                subject_name: result.subject_name,
                evidence_json: result.evidence.map(|e| e.to_string()).unwrap_or_default(),
                subject_keys: result.subject_keys,
            });
        }
        (other, existing) => {
            if let Some(lead_id) = existing {
                batch.withdrawn.push((lead_id, outcome_words(other)));
                stats.leads_withdrawn += 1;
            }
            match other {
                LeadOutcome::Parked {
                    rules,
                    reason,
                    detail,
                } => {
                    let code = serde_json::to_value(reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_else(|| "parked".into());
                    *stats.parked.entry(code.clone()).or_default() += 1;
                    batch.parks.push((key, rules.clone(), code, detail.clone()));
                }
                LeadOutcome::CitizenshipReview => {
                    stats.citizenship_reviews += 1;
                    batch.parks.push((
                        key,
                        Vec::new(),
                        "citizenship_review".into(),
                        "citizenship indicia or a same-name-and-birth-date citizenship record: \
                         a deportation officer must review before any lead"
                            .into(),
                    ));
                }
                _ => stats.no_rule += 1,
            }
        }
    }
}

/// Digest chunks read per statement by a full run (each holds up to one import batch: some
/// 10,000 records): few, so that reading the next ones overlaps the workers adding these.
const DIGEST_CHUNKS_PER_READ: u32 = 4;

/// A digest chunk being added to a scan part on a worker thread.
type ScanPart = std::thread::JoinHandle<Result<FullScan, StoreError>>;

/// Appends the oldest parts to the scan until at most `keep` are still running (so they are
/// appended in rev order); after the first, makes room for `total` records at once.
fn join_parts(
    scanned: &mut FullScan,
    parts: &mut std::collections::VecDeque<ScanPart>,
    keep: usize,
    total: u64,
) -> Result<(), StoreError> {
    while parts.len() > keep {
        let Some(handle) = parts.pop_front() else {
            break;
        };
        let part = match handle.join() {
            Ok(part) => part?,
            Err(p) => std::panic::resume_unwind(p),
        };
        let first = scanned.records() == 0;
        scanned.append(part)?;
        if first {
            scanned.reserve_for(usize::try_from(total).unwrap_or(usize::MAX));
        }
    }
    Ok(())
}

/// Reads what the first pass needs of every record up to the run's head, links records by
/// identifiers in memory, and keeps the persons a lead rule could apply to (or who have an
/// open lead to re-check), with the sweep keys of all records.
///
/// Records come as digests (`verity_store::scan`: rev, id, system, hashed identifiers and
/// sweep keys), kept by every insert in a few large rows, whose sweep keys the insert also
/// stored. Records without a digest (stored before migration 0008, or by an insert that
/// stopped part-way) are read from their JSON instead, in pages (the next page is read while
/// a worker thread digests this one), and their sweep keys and digests are written, so the
/// next full run reads digests only.
async fn full_population(
    store: &Store,
    opts: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
    run: &LeadRun,
    open: &HashMap<String, String>,
    screen: &LeadScreen,
) -> Result<Population, RunError> {
    let timing = std::env::var_os("VERITY_NCATC_TIMING").is_some();
    let started = std::time::Instant::now();
    let (mut read_time, mut add_time, mut json_time) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    let mut upgraded = 0u64;
    let total = store.count_records().await?;
    let mut scanned = FullScan::default();
    // Chunks being turned into scan parts on worker threads, oldest first (appended in rev
    // order), while the next chunks are read.
    let mut parts: std::collections::VecDeque<ScanPart> = std::collections::VecDeque::new();
    let in_flight = worker_threads() + 1;
    // Every record with a rev up to `covered` is in `scanned` or in `parts`.
    let mut covered = 0i64;
    let mut json_read = 0u64;
    let mut after_chunk = 0i64;
    // The chunks' record packs, in rev order, and how many records had to be packed now
    // (chunks written before packs were kept).
    let mut packs: Vec<HeldPack> = Vec::new();
    let mut packed_now = 0u64;
    // The map's validity key, which the last full run's candidates must also carry to be used.
    let key = match &opts.map_dir {
        Some(_) => map_key(store, run, opts).await?,
        None => String::new(),
    };
    let previous = PreviousCandidates::start(opts.map_dir.as_deref(), &key, run.to_rev);
    // Chunks whose records all precede the last full run's candidates need no pack: the
    // records of theirs to evaluate are in those candidates (or, for persons that run did
    // not evaluate, read by rev).
    let packs_after = previous.head_rev();
    loop {
        let clock = std::time::Instant::now();
        let chunks = store
            .record_digest_chunks_packs_after(
                after_chunk,
                run.to_rev,
                DIGEST_CHUNKS_PER_READ,
                packs_after,
            )
            .await?;
        read_time += clock.elapsed();
        let Some(last) = chunks.last() else {
            break;
        };
        after_chunk = last.first_rev;
        for mut chunk in chunks {
            if chunk.lacks_facets() {
                // Written before lead facets were kept: dropped, and its records digested
                // again from their JSON below (once; the next run reads the new chunks).
                store.delete_record_digest_chunk(chunk.first_rev).await?;
                upgraded += u64::try_from(chunk.records).unwrap_or(0);
                continue;
            }
            if chunk.first_rev > covered + 1 {
                let clock = std::time::Instant::now();
                join_parts(&mut scanned, &mut parts, 0, total)?;
                add_time += clock.elapsed();
                let upto = (chunk.first_rev - 1).min(run.to_rev);
                let clock = std::time::Instant::now();
                json_read += scan_json_range(
                    store,
                    opts,
                    progress,
                    total,
                    &mut scanned,
                    covered,
                    upto,
                    screen,
                    &mut packs,
                )
                .await?;
                json_time += clock.elapsed();
                covered = upto;
            }
            let pack = match (chunk.pack.take(), chunk.pack_stored) {
                (Some(bytes), _) => Some(bytes),
                (None, true) => None,
                (None, false) => {
                    // Written before packs were kept: packed once from the records' JSON.
                    let limit = u32::try_from(chunk.records.max(1)).unwrap_or(u32::MAX);
                    let raw = store
                        .scan_record_json(chunk.first_rev - 1, chunk.last_rev, limit)
                        .await?;
                    let bytes = encode_record_pack(
                        raw.iter()
                            .map(|r| (r.rev, r.record_id.as_str(), r.json.as_str())),
                    );
                    store.set_record_pack(chunk.first_rev, &bytes).await?;
                    packed_now += raw.len() as u64;
                    (chunk.last_rev > packs_after).then_some(bytes)
                }
            };
            if let Some(bytes) = pack {
                packs.push(HeldPack {
                    first_rev: chunk.first_rev,
                    last_rev: chunk.last_rev,
                    bytes,
                });
            }
            let clock = std::time::Instant::now();
            join_parts(&mut scanned, &mut parts, in_flight - 1, total)?;
            let (after, to_rev, screen) = (covered, run.to_rev, screen.clone());
            covered = covered.max(chunk.last_rev.min(run.to_rev));
            parts.push_back(std::thread::spawn(move || {
                let mut part = FullScan::default();
                scan::add_chunk(&mut part, &chunk, after, to_rev, &screen)?;
                Ok(part)
            }));
            add_time += clock.elapsed();
            progress(Progress::Scanning {
                done: scanned.records() as u64,
                total,
            });
        }
    }
    let clock = std::time::Instant::now();
    join_parts(&mut scanned, &mut parts, 0, total)?;
    add_time += clock.elapsed();
    if covered < run.to_rev {
        let clock = std::time::Instant::now();
        json_read += scan_json_range(
            store,
            opts,
            progress,
            total,
            &mut scanned,
            covered,
            run.to_rev,
            screen,
            &mut packs,
        )
        .await?;
        json_time += clock.elapsed();
    }
    let records_scanned = scanned.records() as u64;
    let clock = std::time::Instant::now();
    // The record ids whose person key has an open lead: asked about every record of a person
    // the screen turns away, so without a string built per record.
    let open_ids: HashSet<&str> = open.keys().filter_map(|k| k.strip_prefix("NP-")).collect();
    let mut grouped = scanned.group(|id| open_ids.contains(id), screen, opts.map_dir.is_some());
    if timing {
        eprintln!(
            "ncatc full scan: {:.3} s in all; digest reads {:.3} s, digests added {:.3} s, \
             record JSON {:.3} s ({json_read} records, {upgraded} of them in chunks without \
             facets; {packed_now} packed now), grouping {:.3} s ({} persons, {} to evaluate; screen reads rules: {}; \
             {} citizenship and {} status keys distinct)",
            started.elapsed().as_secs_f64(),
            read_time.as_secs_f64(),
            add_time.as_secs_f64(),
            json_time.as_secs_f64(),
            clock.elapsed().as_secs_f64(),
            grouped.persons_total,
            grouped.persons.len(),
            screen.reads_rules(),
            grouped.sweep.sizes().0,
            grouped.sweep.sizes().1
        );
    }
    // The person map for the incremental runs after this one. Not writing it costs only
    // speed (they follow identifiers through the store instead), so a failure is reported in
    // the run's stats, not raised.
    let mut map_written = false;
    let mut person_map = match (&opts.map_dir, grouped.links.take()) {
        (Some(dir), Some(links)) => {
            let clock = std::time::Instant::now();
            let written = scan::map::write_map(dir, run.to_rev, &key, &links, &grouped.sweep);
            map_written = written.is_ok();
            if timing {
                eprintln!(
                    "ncatc full person map: {:.3} s ({} groups, {} records)",
                    clock.elapsed().as_secs_f64(),
                    links.groups(),
                    links.slots()
                );
            }
            Some(match written {
                Ok(bytes) => format!(
                    "written: {} groups, {} records up to rev {}, {bytes} bytes",
                    links.groups(),
                    links.slots(),
                    run.to_rev
                ),
                Err(e) => format!("not written: {e}"),
            })
        }
        _ => None,
    };
    let persons: Vec<(String, Members)> = grouped
        .persons
        .into_iter()
        .map(|p| {
            (
                p.key,
                Members::Revs {
                    group: p.group,
                    revs: p.revs,
                },
            )
        })
        .collect();
    let clock = std::time::Instant::now();
    let mut needed: Vec<i64> = persons
        .iter()
        .flat_map(|(_, m)| match m {
            Members::Revs { revs, .. } => revs.as_slice(),
            Members::Loaded { .. } => &[],
        })
        .copied()
        .collect();
    needed.sort_unstable();
    needed.dedup();
    let (previous, previous_note) = previous.finish();
    // Records the last full run's candidates hold are read from there.
    let needed_count = needed.len();
    if let Some(c) = &previous {
        needed.retain(|&rev| c.block_of(rev).is_none());
    }
    let note = match (&previous, previous_note) {
        (Some(c), _) => Some(format!(
            "{} of {needed_count} records to evaluate from the last candidates (rev {})",
            needed_count - needed.len(),
            c.head_rev()
        )),
        (None, note) => note,
    };
    if let (Some(p), Some(note)) = (&mut person_map, note) {
        p.push_str(&format!("; {note}"));
    }
    let unpacked = unpack_needed(packs, &needed)?;
    if timing {
        eprintln!(
            "ncatc full unpack: {:.3} s; {} of {} records to evaluate found in record packs, \
             {} records in the last full run's candidates",
            clock.elapsed().as_secs_f64(),
            unpacked.len(),
            needed.len(),
            previous.as_ref().map_or(0, |c| c.len())
        );
    }
    // Beside the map, the records of the persons evaluated here, for the incremental runs:
    // written by a thread as the batches are read for evaluation.
    let candidates = match (&opts.map_dir, map_written) {
        (Some(dir), true) => match scan::map::CandidateWriter::start(dir, run.to_rev, &key) {
            Ok(w) => Some(w),
            Err(e) => {
                if let Some(p) = &mut person_map {
                    p.push_str(&format!("; candidates not written: {e}"));
                }
                None
            }
        },
        _ => None,
    };
    Ok(Population {
        persons,
        records_scanned,
        records_read: json_read,
        persons_total: grouped.persons_total,
        sweep: SweepSource::Full(grouped.sweep),
        unpacked,
        previous,
        person_map,
        candidates,
        overlay: None,
    })
}

/// The records with these revs (sorted) found in `packs` (sorted by first rev, not
/// overlapping), unpacked on the machine's cores; each pack is dropped once read.
fn unpack_needed(
    packs: Vec<HeldPack>,
    needed: &[i64],
) -> Result<HashMap<i64, RawRecord>, StoreError> {
    let threads = worker_threads();
    let total_bytes: usize = packs.iter().map(|p| p.bytes.len()).sum();
    // Contiguous runs of packs of about equal size, one per thread.
    let mut parts: Vec<Vec<HeldPack>> = (0..threads).map(|_| Vec::new()).collect();
    let mut filled = 0usize;
    for pack in packs {
        let part = (filled * threads / total_bytes.max(1)).min(threads - 1);
        filled += pack.bytes.len();
        parts[part].push(pack);
    }
    let found: Vec<Result<Vec<RawRecord>, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for pack in part {
                        let from = needed.partition_point(|&r| r < pack.first_rev);
                        let to = needed.partition_point(|&r| r <= pack.last_rev);
                        let wanted = &needed[from..to];
                        if wanted.is_empty() {
                            continue;
                        }
                        verity_store::scan::for_each_packed_record(
                            pack.first_rev,
                            &pack.bytes,
                            |rev, id, json| {
                                if wanted.binary_search(&rev).is_ok() {
                                    out.push(RawRecord {
                                        rev,
                                        record_id: id.to_string(),
                                        json: json.to_string(),
                                    });
                                }
                            },
                        )?;
                    }
                    Ok(out)
                })
            })
            .collect();
        join_all(handles)
    });
    let mut out = HashMap::with_capacity(needed.len());
    for part in found {
        out.extend(part?.into_iter().map(|r| (r.rev, r)));
    }
    Ok(out)
}

/// Reads the records with `after < rev <= upto` from their JSON (records without a digest),
/// adds them to the scan, and stores their sweep keys and then their digests, page by page.
/// Returns how many records it read.
#[allow(clippy::too_many_arguments)]
async fn scan_json_range(
    store: &Store,
    opts: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
    total: u64,
    scanned: &mut FullScan,
    mut after: i64,
    upto: i64,
    screen: &LeadScreen,
    packs: &mut Vec<HeldPack>,
) -> Result<u64, RunError> {
    type Part = Result<(FullScan, SweepRows, Vec<RecordDigest>, Vec<u8>), StoreError>;
    let mut pending: Option<std::thread::JoinHandle<Part>> = None;
    let mut read = 0u64;
    loop {
        let page = store
            .scan_record_json(after, upto, opts.page_size.max(1))
            .await?;
        let part = match pending.take() {
            Some(h) => match h.join() {
                Ok(part) => Some(part?),
                Err(p) => std::panic::resume_unwind(p),
            },
            None => None,
        };
        let last = page.last().map(|r| r.rev);
        if let Some(last) = last {
            after = last;
            read += page.len() as u64;
            let screen = screen.clone();
            pending = Some(std::thread::spawn(move || {
                let (part, rows, digests) = scan::scan_page(&page, &screen)?;
                let pack = encode_record_pack(
                    page.iter()
                        .map(|r| (r.rev, r.record_id.as_str(), r.json.as_str())),
                );
                Ok((part, rows, digests, pack))
            }));
        }
        // While the worker scans the next page: keep this one and store its sweep keys, then
        // its digests (a digest means its record's sweep keys are stored).
        if let Some((part, rows, digests, pack)) = part {
            scanned.append(part)?;
            store.add_citizen_key_hashes(&rows.citizen).await?;
            store.add_status_key_hashes(&rows.status).await?;
            store.add_record_digests(&digests, Some(&pack)).await?;
            let revs = digests.iter().map(|d| d.rev);
            if let (Some(first_rev), Some(last_rev)) = (revs.clone().min(), revs.max()) {
                packs.push(HeldPack {
                    first_rev,
                    last_rev,
                    bytes: pack,
                });
            }
            progress(Progress::Scanning {
                done: scanned.records() as u64,
                total,
            });
        }
        if last.is_none() {
            break;
        }
    }
    Ok(read)
}

/// Identifier hops an incremental run follows from a changed record at most: it follows them
/// until no new record turns up (so its persons are the full run's), and this only bounds a
/// pathological chain.
const MAX_EXPANSION_ROUNDS: usize = 64;

fn id_kind(tag: u8) -> IdKind {
    match tag {
        0 => IdKind::ANumber,
        1 => IdKind::Fin,
        2 => IdKind::FbiNumber,
        3 => IdKind::Passport,
        4 => IdKind::Ssn,
        _ => IdKind::StateId,
    }
}

/// Whether a run evaluates a person, from its records' (may lead, record id): a lead rule
/// could apply (see [`may_lead`]), or an open lead on one of the person's records must be
/// re-checked. Full and incremental runs use the same test, so both reach the same outcomes.
fn worth_evaluating<'a>(
    records: impl Iterator<Item = (bool, &'a str)> + Clone,
    open: &HashMap<String, String>,
) -> bool {
    records.clone().any(|(may, _)| may)
        || records
            .into_iter()
            .any(|(_, id)| open.contains_key(&format!("NP-{id}")))
}

/// Whether a run evaluates a person with these records: a lead rule of the run's policy could
/// apply to them ([`LeadScreen`], from the records' lead facets), or an open lead on one of
/// their records must be re-checked. A full run decides the same from the stored digests
/// (`FullScan::group`); both kinds of run apply this to the persons they read whole, so they
/// evaluate the same persons. Implies [`worth_evaluating`] (the screen includes its system
/// test).
pub(crate) fn worth_evaluating_records(
    screen: &LeadScreen,
    records: &[SourceRecord],
    open: &HashMap<String, String>,
) -> bool {
    screen.could_lead_records(records)
        || records
            .iter()
            .any(|r| open.contains_key(&format!("NP-{}", r.record_id)))
}

/// Keeps the persons (groups of `reached`) whose lead facets pass the run's screen, or who
/// hold an open lead, or any of whose records has no facets to judge by: the same test
/// `execute` applies to the records read whole ([`worth_evaluating_records`]), taken before
/// reading them (an incremental run reached ~5× more persons than pass it). The facets of a
/// record not read whole came with its links (`Store::record_links_by_revs`), from the stored
/// record by the same function as its digest's and as `execute`'s (`LeadFacets::of`), so a
/// person dropped here is one `execute` would drop.
fn screen_by_facets(
    screen: &LeadScreen,
    reached: &[Reached],
    worth: Vec<Vec<usize>>,
    open: &HashMap<String, String>,
) -> Vec<Vec<usize>> {
    if !screen.reads_rules() {
        return worth;
    }
    worth
        .into_iter()
        .filter(|group| {
            let mut profile = scan::LeadProfile::default();
            for &i in group {
                let r = &reached[i];
                if open.contains_key(&format!("NP-{}", r.record_id)) {
                    return true;
                }
                match (&r.record, &r.facets) {
                    (Some(record), _) => profile.add(screen.decoded(record)),
                    (None, Some(facets)) => {
                        profile.add(screen.record(r.system, Some(facets.as_facets_ref())))
                    }
                    // Nothing to judge this record by: read the person whole.
                    (None, None) => return true,
                }
            }
            screen.could_lead(&profile)
        })
        .collect()
}

/// Records an incremental run reads whole and decodes at a time.
const WHOLE_READ_PART: usize = 20_000;

/// Whether `rev` is in one of `spans` ((first, last) revs, sorted by first, not overlapping).
/// Were two to overlap, a rev could be missed: its sweep keys are then added again, which is
/// harmless (adding is idempotent).
fn in_spans(spans: &[(i64, i64)], rev: i64) -> bool {
    let i = spans.partition_point(|(first, _)| *first <= rev);
    i > 0 && spans[i - 1].1 >= rev
}

/// Phase times of an incremental run, on stderr when `VERITY_NCATC_TIMING` is set (for
/// benchmarks: tests never set it, and nothing depends on it).
struct PhaseClock {
    on: bool,
    last: std::time::Instant,
    /// The process's CPU seconds (all threads, the database's included) at the last lap:
    /// under load, wall time inflates, CPU time much less.
    last_cpu: Option<f64>,
}

impl PhaseClock {
    fn start() -> PhaseClock {
        let on = std::env::var_os("VERITY_NCATC_TIMING").is_some();
        PhaseClock {
            on,
            last: std::time::Instant::now(),
            last_cpu: if on { process_cpu_seconds() } else { None },
        }
    }

    fn lap(&mut self, phase: &str, detail: impl FnOnce() -> String) {
        if self.on {
            let now = std::time::Instant::now();
            let cpu = process_cpu_seconds();
            let cpu_text = match (cpu, self.last_cpu) {
                (Some(c), Some(l)) => format!(", {:.2} CPU-s", c - l),
                _ => String::new(),
            };
            eprintln!(
                "ncatc incremental {phase}: {:.3} s{cpu_text} ({})",
                now.duration_since(self.last).as_secs_f64(),
                detail()
            );
            self.last = now;
            self.last_cpu = cpu;
        }
    }
}

/// User plus system CPU seconds of this process so far, from `/proc/self/stat` (Linux; None
/// elsewhere). Fields 14 and 15 count clock ticks of 1/100 s (USER_HZ, fixed at 100 in the
/// Linux ABI).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis,
    // which start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

/// A record an incremental run reached: what links it, and the record itself once read.
struct Reached {
    record_id: String,
    system: RecordSystem,
    /// The rev, when read by rev or identifier (a record read by id has none until then).
    rev: Option<i64>,
    keys: Vec<(u8, String)>,
    record: Option<SourceRecord>,
    /// Its lead facets, read with its links (a record read whole has its `record` instead).
    facets: Option<LeadFacets>,
}

impl Reached {
    fn from_record(rev: Option<i64>, record: SourceRecord) -> Reached {
        Reached {
            record_id: record.record_id.clone(),
            system: record.system(),
            rev,
            keys: person::strong_keys(&record),
            record: Some(record),
            facets: None,
        }
    }

    /// From the record's links: its identifier columns and, for a fingerprint enrollment, the
    /// FIN in its body, which links too (`person::strong_keys`), and its lead facets; the
    /// record is not decoded.
    fn from_links(links: RecordLinks) -> Result<Reached, StoreError> {
        let system = RecordSystem::parse(&links.system).map_err(|e| StoreError::Corrupt {
            table: "records",
            key: links.record_id.clone(),
            problem: format!("system: {}", e.problem),
        })?;
        // The kinds and order of `person::strong_keys`; the columns and the body hold the
        // identifiers' display form, which is what it keys on.
        let mut keys: Vec<(u8, String)> = [
            (0u8, links.a_number),
            (1, links.fin),
            (2, links.fbi_number),
            (3, links.passport),
            (4, links.ssn),
            (5, links.state_id),
        ]
        .into_iter()
        .filter_map(|(tag, v)| v.map(|v| (tag, v)))
        .collect();
        if let Some(fin) = links.body_fin {
            if !keys.iter().any(|(tag, v)| *tag == 1 && *v == fin) {
                keys.push((1, fin));
            }
        }
        Ok(Reached {
            record_id: links.record_id,
            system,
            rev: Some(links.rev),
            keys,
            record: None,
            facets: Some(links.facets),
        })
    }
}

/// The records linked to `start` by identifiers, followed until no new record turns up (so
/// the persons are the full run's): each hop asks the identifier indexes for the revs holding
/// any of the new identifiers (one statement for all kinds), then reads only what links the
/// records not reached yet (identifier columns and an enrollment's body FIN; one statement per
/// 20,000 records, answered in one row). Returns every record reached, `start` first, how many
/// records' links were read, and the hops taken.
async fn follow_identifiers(
    store: &Store,
    start: Vec<Reached>,
) -> Result<(Vec<Reached>, u64, usize), RunError> {
    let mut reached = start;
    let mut index_of: HashMap<String, usize> = HashMap::new();
    let mut known_revs: HashSet<i64> = HashSet::new();
    let mut kept = Vec::with_capacity(reached.len());
    for r in reached.drain(..) {
        if index_of.contains_key(&r.record_id) {
            continue;
        }
        if let Some(rev) = r.rev {
            known_revs.insert(rev);
        }
        index_of.insert(r.record_id.clone(), kept.len());
        kept.push(r);
    }
    reached = kept;
    let mut frontier: Vec<usize> = (0..reached.len()).collect();
    let mut asked: HashSet<(u8, String)> = HashSet::new();
    let mut heads_read = 0u64;
    let mut hops = 0usize;
    for _ in 0..MAX_EXPANSION_ROUNDS {
        let mut by_kind: BTreeMap<u8, Vec<String>> = BTreeMap::new();
        for &i in &frontier {
            for key in &reached[i].keys {
                if asked.insert(key.clone()) {
                    by_kind.entry(key.0).or_default().push(key.1.clone());
                }
            }
        }
        if by_kind.is_empty() {
            break;
        }
        hops += 1;
        let sets: Vec<(IdKind, Vec<String>)> = by_kind
            .into_iter()
            .map(|(tag, values)| (id_kind(tag), values))
            .collect();
        let new_revs: Vec<i64> = store
            .revs_by_identifier_sets(&sets)
            .await?
            .into_iter()
            .filter(|rev| known_revs.insert(*rev))
            .collect();
        if new_revs.is_empty() {
            break;
        }
        let links = store.record_links_by_revs(&new_revs).await?;
        heads_read += links.len() as u64;
        frontier = Vec::new();
        for l in links {
            // A record read by id (an open lead's) turns up again by identifier: known.
            if let Some(&i) = index_of.get(&l.record_id) {
                reached[i].rev.get_or_insert(l.rev);
                continue;
            }
            index_of.insert(l.record_id.clone(), reached.len());
            frontier.push(reached.len());
            reached.push(Reached::from_links(l)?);
        }
    }
    Ok((reached, heads_read, hops))
}

/// The open leads that new records bear on: their subjects are evaluated again, linked by
/// identifiers or not. A new record bears on a lead when the lead's sweep would now match it:
/// new citizenship evidence by the lead's stored name-and-birth-date keys (the citizenship
/// sweep's); a new status-bearing record (an executed removal, a grant) by the full-name keys
/// the subject may hold (the status sweep's, derived from the same keys:
/// `any_status_key_hash_of_name_dob_keys`, a superset of the subject's own). Both sides are
/// hashed as the digests hold them, so a change is matched from its digest without decoding
/// it.
///
/// `rows` are (lead id, person key, subject key) as `Store::open_lead_subject_keys` gives them;
/// `new_citizen` and `new_status` the new records' key hashes. Returns (lead id, person key),
/// sorted, each once.
fn open_leads_bearing(
    rows: Vec<(String, String, String)>,
    new_citizen: impl Iterator<Item = u64>,
    new_status: impl Iterator<Item = u64>,
) -> Vec<(String, String)> {
    let mut by_lead: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (lead, person, key) in rows {
        by_lead.entry((lead, person)).or_default().push(key);
    }
    let leads: Vec<((String, String), Vec<String>)> = by_lead.into_iter().collect();
    // The leads' key hashes, each with the leads it stands for: a few per lead, where the new
    // records' keys may be millions, so those are only looked up, each once.
    let mut citizen_of: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
    let mut status_of: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
    let add = |map: &mut FxHashMap<u64, Vec<usize>>, h: u64, lead: usize| {
        let holders = map.entry(h).or_default();
        if holders.last() != Some(&lead) {
            holders.push(lead);
        }
    };
    for (i, (_, keys)) in leads.iter().enumerate() {
        for k in keys {
            add(&mut citizen_of, verity_store::scan::digest_key_hash(k), i);
        }
        verity_store::scan::any_status_key_hash_of_name_dob_keys(
            keys.iter().map(String::as_str),
            |h| {
                add(&mut status_of, h, i);
                false
            },
        );
    }
    let mut bears = vec![false; leads.len()];
    let hits = new_citizen
        .filter_map(|h| citizen_of.get(&h))
        .chain(new_status.filter_map(|h| status_of.get(&h)));
    for holders in hits {
        for &lead in holders {
            bears[lead] = true;
        }
    }
    leads
        .into_iter()
        .zip(bears)
        .filter_map(|(lead, bears)| bears.then_some(lead.0))
        .collect()
}

/// The records an incremental run reads since its start (or since the person map's head).
enum Since {
    /// Decoded from their JSON, by rev (no map to use).
    Json(Vec<(i64, SourceRecord)>),
    /// As digests, decoded only where needed (a map to use), with the map being read.
    Digests {
        new: Vec<mapped::NewRecord>,
        packs: mapped::NewPacks,
        /// The records after the map up to the run's start, as the last run kept them (then
        /// `new` holds only the records since); empty when there were none to use.
        kept: Box<scan::map::overlay::MapOverlay>,
        /// The map's stamp, when it could be read: the run keeps its records for it.
        stamp: Option<scan::map::overlay::MapStamp>,
        /// Taken when the map is joined.
        map_job: Option<MapJob>,
    },
}

/// The person map and its candidates, opened on another thread, which then checks the
/// candidates' checksum and the map's.
struct MapJob {
    /// The map directory.
    dir: std::path::PathBuf,
    /// The map, its checksum not yet checked.
    opened: std::sync::mpsc::Receiver<MapOpened>,
    /// The candidates, checked: sent once they are, while the run links and screens with
    /// the map (they are first used to read persons). Read from disk after a change, the
    /// 0.3 GB took that long before the map could be used.
    candidates: std::sync::mpsc::Receiver<mapped::CandidatesOpened>,
    /// The map's checksum check (`None`: no map was opened).
    verified: std::thread::JoinHandle<Option<Result<(), scan::map::MapError>>>,
}

type MapOpened = Result<Option<scan::map::PersonMap>, scan::map::MapError>;

impl MapJob {
    fn start(dir: std::path::PathBuf) -> MapJob {
        let (send_map, opened) = std::sync::mpsc::sync_channel(1);
        let (send_candidates, candidates) = std::sync::mpsc::sync_channel(1);
        let map_dir = dir.clone();
        let verified = std::thread::spawn(move || {
            let map = scan::map::read_map_unverified(&dir);
            let unverified = match &map {
                Ok(Some((_, file))) => Some(file.clone()),
                _ => None,
            };
            // A receiver is gone only when the run stopped: nothing to check for.
            let _ = send_map.send(map.map(|m| m.map(|(map, _)| map)));
            // The candidates are checked before use: their blocks are decoded as read.
            let _ = send_candidates.send(scan::map::read_candidates(&dir));
            unverified.map(|file| file.verify())
        });
        MapJob {
            dir: map_dir,
            opened,
            candidates,
            verified,
        }
    }

    /// The opened map.
    fn opened(&self) -> MapOpened {
        // Only a panic on the thread drops the sender unsent; `verified` then carries it.
        self.opened.recv().unwrap_or_else(|_| {
            Err(scan::map::MapError::Invalid {
                path: scan::map::MAP_FILE.into(),
                problem: "the thread opening it stopped".into(),
            })
        })
    }

    /// The candidates of `map`, to be waited for once needed.
    fn candidates(&mut self, map: &scan::map::PersonMap) -> mapped::PendingCandidates {
        // Replaced by a receiver whose sender is gone: taken once.
        let (_, gone) = std::sync::mpsc::sync_channel(1);
        mapped::PendingCandidates {
            opened: std::mem::replace(&mut self.candidates, gone),
            head_rev: map.head_rev,
            key: map.policy_version.clone(),
        }
    }

    /// Whether the map's checksum held (`Ok` when no map was opened).
    fn verified(self) -> Result<(), scan::map::MapError> {
        match self.verified.join() {
            Ok(checked) => checked.unwrap_or(Ok(())),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Since {
    fn count(&self) -> usize {
        match self {
            Since::Json(r) => r.len(),
            Since::Digests { new, .. } => new.len(),
        }
    }

    /// Records since the map the last run kept (not read again).
    fn kept_count(&self) -> usize {
        match self {
            Since::Json(_) => 0,
            Since::Digests { kept, .. } => kept.len(),
        }
    }

    /// Records changed since the run's start (after `from_rev`).
    fn changed_count(&self, from_rev: i64) -> u64 {
        let n = match self {
            Since::Json(r) => r.iter().filter(|(rev, _)| *rev > from_rev).count(),
            Since::Digests { new, .. } => new.iter().filter(|n| n.rev > from_rev).count(),
        };
        n as u64
    }

    /// Records read whole so far (from their JSON or their insert's record pack): see
    /// [`RunStats::records_read`].
    fn records_read(&self) -> u64 {
        match self {
            Since::Json(r) => r.len() as u64,
            Since::Digests { new, .. } => new.iter().filter(|n| n.record.is_some()).count() as u64,
        }
    }
}

/// Records added since the person map, as a share of its records (percent), past which an
/// incremental run says a full run is due: at 10M people the first incremental run after a
/// 1% change took 3.6–4.5 s one such change behind the map, 4.1–4.4 s two behind and
/// 4.9–5.6 s three or four behind (BENCHMARKS.md, session 26); a full run took 84–96 s.
const MAP_BEHIND_PERCENT: usize = 2;

/// What an incremental run reads since the person map (whose head is `map_head`): the records
/// since the map as digests, with their packs, where the last run kept those up to this run's
/// start ([`scan::map::overlay`]) only the records since; the kept ones; and the map's stamp.
/// The kept records are read on another thread beside the store's reads; if they cannot be
/// used (damaged, of another map), the records they would have given are read after all.
async fn read_since_map(
    store: &Store,
    dir: &std::path::Path,
    map_head: i64,
    run: &LeadRun,
    page_size: u32,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<
    (
        Vec<mapped::NewRecord>,
        mapped::NewPacks,
        scan::map::overlay::MapOverlay,
        Option<scan::map::overlay::MapStamp>,
    ),
    RunError,
> {
    use scan::map::overlay;
    let stamp = match overlay::map_stamp(&dir.join(scan::map::MAP_FILE), map_head) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{e}; the records since the map are read and not kept");
            None
        }
    };
    let from = run.from_rev;
    let reading = stamp
        .filter(|_| from > map_head && overlay::overlay_path(dir, from).exists())
        .map(|stamp| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || overlay::read_overlay(&dir, stamp, from))
        });
    let after = if reading.is_some() { from } else { map_head };
    let (mut new, mut packs) =
        mapped::read_new_records(store, after, run.to_rev, page_size, progress).await?;
    let Some(reading) = reading else {
        return Ok((new, packs, Default::default(), stamp));
    };
    match reading.join() {
        Ok(Ok(Some(kept))) => return Ok((new, packs, kept, stamp)),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::warn!("{e}; the records since the map are read instead"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    let (older, older_packs) =
        mapped::read_new_records(store, map_head, from, page_size, progress).await?;
    new.splice(0..0, older);
    packs.append(older_packs);
    Ok((new, packs, Default::default(), stamp))
}

/// Reads the records changed since the last finished run and every record linked to them by
/// identifiers (identifier columns only), groups them into persons, and keeps the persons
/// holding a changed record that are worth evaluating, read whole.
async fn incremental_population(
    store: &Store,
    opts: &RunOptions,
    progress: &(dyn Fn(Progress) + Sync),
    run: &LeadRun,
    open: &HashMap<String, String>,
    screen: &LeadScreen,
) -> Result<Population, RunError> {
    let mut clock = PhaseClock::start();
    // The last full run's person map, when there is one this run can use: its header first
    // (where to start reading), the rest on another thread once the records are read.
    let key = match &opts.map_dir {
        Some(_) => map_key(store, run, opts).await?,
        None => String::new(),
    };
    let usable = opts
        .map_dir
        .as_ref()
        .map(|dir| match scan::map::read_map_head(dir) {
            Ok(Some((head, k))) if k == key && head <= run.from_rev => Ok(head),
            Ok(Some((head, k))) if k != key => Err(format!(
                "not used: written at rev {head} under {k}, this run is {key}"
            )),
            Ok(Some((head, _))) => Err(format!(
                "not used: written at rev {head}, after this run's start ({})",
                run.from_rev
            )),
            Ok(None) => Err("none yet (a full run writes it)".to_string()),
            Err(e) => Err(format!("not used: {e}")),
        });
    let mut map_note = usable.as_ref().and_then(|u| u.as_ref().err().cloned());
    let map_head = usable.and_then(Result::ok);
    // Read on another thread once the records since the map are: after a change, both are
    // mostly on disk, and the map's 2 GB of sequential reads would starve the store's small
    // ones, which come first on the run's path (measured: 2.8 s to read the changes beside the
    // map, against 0.5 s alone).
    let map_dir: Option<&std::path::PathBuf> = match (map_head, &opts.map_dir) {
        (Some(_), Some(dir)) => Some(dir),
        _ => None,
    };
    // Sweep keys a store written before migration 0007 keep as text: hashed once, here.
    let moved = store.move_text_sweep_keys().await?;
    clock.lap("move text sweep keys", || format!("{moved} rows"));
    let read_from = map_head.unwrap_or(run.from_rev);
    // With a map to use, the records since it are read as digests (decoded only where the run
    // needs them); without one, as JSON. The open leads' subject keys are read meanwhile:
    // both are store reads, and after a change mostly from disk.
    let subject_keys = async {
        if open.is_empty() {
            Ok(Vec::new())
        } else {
            store.open_lead_subject_keys().await
        }
    };
    let read_since = async {
        Ok::<Since, RunError>(match map_dir {
            Some(dir) => {
                let (new, packs, kept, stamp) =
                    read_since_map(store, dir, read_from, run, opts.page_size, progress).await?;
                Since::Digests {
                    new,
                    packs,
                    kept: Box::new(kept),
                    stamp,
                    map_job: Some(MapJob::start(dir.clone())),
                }
            }
            None => {
                let mut raw: Vec<RawRecord> = Vec::new();
                let mut after = read_from;
                loop {
                    let page = store
                        .scan_record_json(after, run.to_rev, opts.page_size.max(1))
                        .await?;
                    let Some(last) = page.last() else {
                        break;
                    };
                    after = last.rev;
                    raw.extend(page);
                    progress(Progress::Scanning {
                        done: raw.len() as u64,
                        total: u64::try_from(run.to_rev - read_from).unwrap_or(0),
                    });
                }
                let records = decode_parallel(&raw)?;
                Since::Json(raw.iter().map(|r| r.rev).zip(records).collect())
            }
        })
    };
    let (since, subject_keys) = tokio::join!(read_since, subject_keys);
    let (since, subject_keys) = (since?, subject_keys?);
    let mut records_read = since.records_read();
    let records_scanned = since.changed_count(run.from_rev);
    clock.lap("read changed records", || {
        format!(
            "{records_scanned} records, {} more since the person map, {records_read} decoded",
            since.count() - records_scanned as usize + since.kept_count()
        )
    });
    // A record stored with a digest chunk had its sweep keys stored by the same insert
    // (migration 0008): only the other changed records' keys are added here.
    let unkeyed: Vec<&SourceRecord> = match &since {
        Since::Json(records) => {
            let spans = store.digest_spans(run.from_rev, run.to_rev).await?;
            records
                .iter()
                .filter(|(rev, _)| *rev > run.from_rev && !in_spans(&spans, *rev))
                .map(|(_, r)| r)
                .collect()
        }
        Since::Digests { new, .. } => new
            .iter()
            .filter(|n| n.rev > run.from_rev && !n.keyed)
            .filter_map(|n| n.record.as_deref())
            .collect(),
    };
    // (A record without a digest chunk was read as JSON, so `unkeyed` holds all of them.)
    let citizen_hashes: Vec<i64> = unkeyed
        .iter()
        .filter(|r| person::indicates_citizenship(r))
        .flat_map(|r| person::name_dob_keys(r))
        .map(|k| sweep_key_hash(&k))
        .collect();
    let status_hashes: Vec<(i64, String)> = unkeyed
        .iter()
        .filter(|r| person::bears_on_status(r))
        .flat_map(|r| {
            person::full_name_dob_keys(r)
                .into_iter()
                .map(|k| (sweep_key_hash(&k), r.record_id.clone()))
        })
        .collect();
    store.add_citizen_key_hashes(&citizen_hashes).await?;
    store.add_status_key_hashes(&status_hashes).await?;
    clock.lap("add sweep keys", || {
        format!(
            "{} citizen, {} status rows of {} records without a digest",
            citizen_hashes.len(),
            status_hashes.len(),
            unkeyed.len()
        )
    });
    drop(unkeyed);
    // The open leads the changed records bear on (see `open_leads_bearing`): from the digests'
    // key hashes, or the decoded records' (the same hashes).
    let matched: Vec<(String, String)> = if open.is_empty() {
        Vec::new()
    } else {
        // The changed records' digests: as read, or made here from the decoded records.
        let made: Vec<RecordDigest>;
        let changed: Vec<&RecordDigest> = match &since {
            Since::Digests { new, .. } => new
                .iter()
                .filter(|n| n.rev > run.from_rev)
                .map(|n| &n.digest)
                .collect(),
            Since::Json(records) => {
                made = records
                    .iter()
                    .filter(|(rev, _)| *rev > run.from_rev)
                    .map(|(rev, r)| RecordDigest::of(*rev, r))
                    .collect();
                made.iter().collect()
            }
        };
        open_leads_bearing(
            subject_keys,
            changed.iter().flat_map(|d| d.citizen_keys.iter().copied()),
            changed.iter().flat_map(|d| d.status_keys.iter().copied()),
        )
    };
    let bearing_ids: Vec<String> = matched
        .into_iter()
        .filter_map(|(_, key)| key.strip_prefix("NP-").map(str::to_string))
        .collect();
    // One statement per few thousand ids, not one per lead.
    let mut bearing_records = store.get_records(&bearing_ids).await?;
    records_read += bearing_records.len() as u64;
    bearing_records.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    let bearing_count = bearing_records.len();
    clock.lap("open leads the changes bear on", || {
        format!("{bearing_count} records")
    });
    // The person map, when it was read and is the one this run started from, finds the
    // persons; otherwise the store path below does.
    let since = match since {
        Since::Digests {
            new,
            packs,
            kept,
            stamp,
            map_job: Some(mut job),
        } => {
            let map = job.opened();
            clock.lap("read the person map", String::new);
            match map {
                // The map this run started from (a full run at the same head writes another
                // checksum, and the kept records name the map by it).
                Ok(Some(map))
                    if map.head_rev == read_from
                        && map.policy_version == key
                        && stamp.is_none_or(|s| s.checksum == map.checksum) =>
                {
                    let mut note = format!(
                        "used: {} groups, {} records up to rev {}, {} records since it kept by \
                         the last run",
                        map.links.groups(),
                        map.links.slots(),
                        map.head_rev,
                        kept.len()
                    );
                    // An incremental run's work still grows, slowly, with the records since
                    // the map (BENCHMARKS.md, session 26): say when a full run is due.
                    let since = kept.len() + new.len();
                    if since.saturating_mul(100)
                        > map.links.slots().saturating_mul(MAP_BEHIND_PERCENT)
                    {
                        note.push_str(&format!(
                            " ({since} records since the map, over {MAP_BEHIND_PERCENT}% of its \
                             records: a full run, `verity leads run --full`, would refresh it)"
                        ));
                    }
                    let candidates = job.candidates(&map);
                    let keep = stamp.map(|stamp| mapped::KeepFor {
                        dir: job.dir.clone(),
                        stamp,
                        head_rev: run.to_rev,
                    });
                    let changes = mapped::Changes {
                        new,
                        kept: *kept,
                        changed_from: run.from_rev,
                        packs,
                        bearing: bearing_records,
                        records_scanned,
                        records_read,
                        keep,
                    };
                    let (mut population, candidates_note) = mapped::population(
                        store, map, candidates, screen, open, changes, &mut clock,
                    )
                    .await?;
                    // Nothing is saved before the map's checksum holds; a damaged map's
                    // persons are dropped, and the store path finds them again.
                    if let Err(e) = job.verified() {
                        let without_map = RunOptions {
                            map_dir: None,
                            ..opts.clone()
                        };
                        let mut population = Box::pin(incremental_population(
                            store,
                            &without_map,
                            progress,
                            run,
                            open,
                            screen,
                        ))
                        .await?;
                        population.person_map = Some(format!("not used: {e}"));
                        return Ok(population);
                    }
                    clock.lap("check the person map", String::new);
                    if let Some(writer) = &mut population.overlay {
                        writer.start();
                    }
                    population.person_map = Some(format!("{note}, {candidates_note}"));
                    return Ok(population);
                }
                Ok(Some(map)) => {
                    map_note = Some(format!(
                        "not used: rewritten at rev {} while this run read from rev {read_from}",
                        map.head_rev
                    ))
                }
                Ok(None) => map_note = Some("not used: removed while this run started".into()),
                Err(e) => map_note = Some(format!("not used: {e}")),
            }
            Since::Digests {
                new,
                packs,
                kept: Default::default(),
                stamp,
                map_job: None,
            }
        }
        since => since,
    };
    // The store path: every changed record read whole.
    let changed: Vec<(i64, SourceRecord)> = match since {
        Since::Json(records) => records,
        Since::Digests { new, packs, .. } => {
            let need: HashSet<i64> = new
                .iter()
                .filter(|n| n.rev > run.from_rev && n.record.is_none())
                .map(|n| n.rev)
                .collect();
            records_read += need.len() as u64;
            let (mut decoded, _) = packs.decode(store, &need).await?;
            new.into_iter()
                .filter(|n| n.rev > run.from_rev)
                .map(
                    |n| match n.record.map(|b| *b).or_else(|| decoded.remove(&n.rev)) {
                        Some(r) => Ok((n.rev, r)),
                        None => Err(StoreError::Corrupt {
                            table: "records",
                            key: format!("rev {}", n.rev),
                            problem: "in a digest chunk but not stored".into(),
                        }),
                    },
                )
                .collect::<Result<Vec<_>, StoreError>>()?
        }
    }
    .into_iter()
    .filter(|(rev, _)| *rev > run.from_rev)
    .collect();
    // Their subjects count as changed: the persons holding them are evaluated.
    let mut wanted_ids: HashSet<String> =
        changed.iter().map(|(_, r)| r.record_id.clone()).collect();
    wanted_ids.extend(bearing_records.iter().map(|r| r.record_id.clone()));
    let start: Vec<Reached> = changed
        .into_iter()
        .map(|(rev, r)| (Some(rev), r))
        .chain(bearing_records.into_iter().map(|r| (None, r)))
        .map(|(rev, r)| Reached::from_record(rev, r))
        .collect();
    let (mut reached, heads_read, hops) = follow_identifiers(store, start).await?;
    records_read += heads_read;
    clock.lap("follow identifiers", || {
        format!(
            "{} records reached, {heads_read} records' links read, {hops} hops",
            reached.len()
        )
    });

    let keys: Vec<Vec<(u8, String)>> = reached
        .iter_mut()
        .map(|r| std::mem::take(&mut r.keys))
        .collect();
    let mut persons_total = 0u64;
    let mut worth: Vec<Vec<usize>> = Vec::new();
    for group in person::group_key_lists(&keys) {
        if !group
            .iter()
            .any(|&i| wanted_ids.contains(&reached[i].record_id))
        {
            continue;
        }
        persons_total += 1;
        let members = group.iter().map(|&i| {
            (
                system_may_lead(reached[i].system),
                reached[i].record_id.as_str(),
            )
        });
        if worth_evaluating(members, open) {
            worth.push(group);
        }
    }
    drop(keys);
    let before_screen = worth.len();
    let worth = screen_by_facets(screen, &reached, worth, open);
    clock.lap("screen by facets", || {
        format!(
            "{before_screen} persons of may-lead systems, {} pass",
            worth.len()
        )
    });
    // Only the persons worth evaluating are read whole.
    let to_read: Vec<i64> = worth
        .iter()
        .flatten()
        .filter(|&&i| reached[i].record.is_none())
        .filter_map(|&i| reached[i].rev)
        .collect();
    // Read and decoded a part at a time, so the JSON of all of them is never held at once.
    let mut by_rev: HashMap<i64, SourceRecord> = HashMap::with_capacity(to_read.len());
    for part in to_read.chunks(WHOLE_READ_PART) {
        let raw = store.records_by_revs(part).await?;
        records_read += raw.len() as u64;
        let decoded = decode_parallel(&raw)?;
        by_rev.extend(raw.iter().map(|r| r.rev).zip(decoded));
    }
    let mut persons: Vec<(String, Members)> = Vec::with_capacity(worth.len());
    for group in worth {
        let mut records: Vec<SourceRecord> = group
            .iter()
            .filter_map(|&i| {
                let r = &mut reached[i];
                r.record
                    .take()
                    .or_else(|| r.rev.and_then(|rev| by_rev.remove(&rev)))
            })
            .collect();
        records.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        persons.push((
            person::person_key(&records),
            Members::Loaded {
                records,
                groups: Vec::new(),
            },
        ));
    }
    persons.sort_by(|a, b| a.0.cmp(&b.0));
    clock.lap("group and read persons", || {
        format!(
            "{persons_total} persons touched, {} worth evaluating, {} records read whole",
            persons.len(),
            to_read.len()
        )
    });
    Ok(Population {
        persons_total,
        persons,
        records_scanned,
        records_read,
        sweep: SweepSource::Store,
        unpacked: HashMap::new(),
        previous: None,
        person_map: map_note,
        candidates: None,
        overlay: None,
    })
}

/// Lead precision against a synthetic world's ground truth.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PrecisionReport {
    pub leads: u64,
    /// All records of the lead belong to one true person with the lead's status.
    pub correct: u64,
    /// The lead's records belong to more than one true person.
    pub mixed_identity: u64,
    /// One true person, but their true status differs from the lead's.
    pub wrong_status: u64,
    /// Leads whose subject (any of its records) is truly a U.S. citizen. Must be 0.
    pub on_us_citizens: u64,
    /// Lead ids of the failures (up to 20), for inspection.
    pub examples: Vec<String>,
}

impl PrecisionReport {
    pub fn precision(&self) -> Option<f64> {
        (self.leads > 0).then(|| self.correct as f64 / self.leads as f64)
    }
}

/// Ground truth of a synthetic world: record -> person, person -> (status, citizen).
#[derive(Debug, Default)]
pub struct Truth {
    pub person_of_record: HashMap<String, String>,
    pub person_status: HashMap<String, (String, bool)>,
}

#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("{file}: {problem}")]
    Read { file: String, problem: String },
}

impl Truth {
    /// Reads `truth/persons.csv` and `truth/record_person.csv` of a world directory.
    pub fn load(world: &std::path::Path) -> Result<Truth, TruthError> {
        let mut t = Truth::default();
        // Streams a truth file, calling `each` with the named columns of every row (a 10M
        // world's files hold 39M and 10M rows: no row is kept beyond its call).
        let read = |name: &str,
                    columns: &[&str],
                    each: &mut dyn FnMut(&[&str])|
         -> Result<(), TruthError> {
            let path = world.join("truth").join(name);
            let bad = |problem: String| TruthError::Read {
                file: path.display().to_string(),
                problem,
            };
            let mut rdr = csv::Reader::from_path(&path).map_err(|e| bad(e.to_string()))?;
            let headers = rdr.headers().map_err(|e| bad(e.to_string()))?.clone();
            let at: Vec<Option<usize>> = columns
                .iter()
                .map(|c| headers.iter().position(|h| h == *c))
                .collect();
            let mut row = csv::StringRecord::new();
            let mut line = 1usize;
            while rdr
                .read_record(&mut row)
                .map_err(|e| bad(format!("line {}: {e}", line + 1)))?
            {
                line += 1;
                let values: Vec<&str> = at
                    .iter()
                    .map(|i| i.and_then(|i| row.get(i)).unwrap_or(""))
                    .collect();
                each(&values);
            }
            Ok(())
        };
        read("record_person.csv", &["record_id", "person_id"], &mut |v| {
            if let [r, p] = v {
                if !r.is_empty() && !p.is_empty() {
                    t.person_of_record.insert(r.to_string(), p.to_string());
                }
            }
        })?;
        read(
            "persons.csv",
            &["person_id", "status", "citizen"],
            &mut |v| {
                if let [p, s, c] = v {
                    if !p.is_empty() && !s.is_empty() {
                        t.person_status
                            .insert(p.to_string(), (s.to_string(), *c == "Y"));
                    }
                }
            },
        )?;
        Ok(t)
    }
}

/// Scores leads (id, status code, evidence JSON) against the truth.
pub fn score_leads<'a>(
    truth: &Truth,
    leads: impl Iterator<Item = (&'a str, &'a str, &'a str)>,
) -> PrecisionReport {
    let mut rep = PrecisionReport::default();
    for (lead_id, status, evidence) in leads {
        rep.leads += 1;
        let record_ids: Vec<String> = serde_json::from_str::<serde_json::Value>(evidence)
            .ok()
            .and_then(|v| {
                v["records"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|r| r["record_id"].as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default();
        let persons: BTreeSet<&String> = record_ids
            .iter()
            .filter_map(|r| truth.person_of_record.get(r))
            .collect();
        let citizen = persons
            .iter()
            .any(|p| truth.person_status.get(*p).is_some_and(|(_, c)| *c));
        if citizen {
            rep.on_us_citizens += 1;
        }
        let ok = if persons.len() != 1 {
            rep.mixed_identity += 1;
            false
        } else {
            let p = persons.iter().next().copied();
            let right = p
                .and_then(|p| truth.person_status.get(p))
                .is_some_and(|(s, c)| s == status && !c);
            if !right {
                rep.wrong_status += 1;
            }
            right
        };
        if ok {
            rep.correct += 1;
        } else if rep.examples.len() < 20 {
            rep.examples.push(lead_id.to_string());
        }
    }
    rep
}
