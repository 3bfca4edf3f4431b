//! LESC agency API: POST /v1/iaq (JSON) and /v1/nlets (text), answers and deliveries, NCIC hit
//! confirmation, and the processing of accepted queries (inline, recovered at start).
//!
//! Order of work for a query, and why: parse and authorise (nothing stored for a bad query) ->
//! run the engine and compose the answer -> store everything in ONE write transaction (the
//! query, the receipt's audit entry, the result, and for an automatic decision the IAR, one
//! delivery per recipient and the issue's audit entry) -> respond. The response is the
//! acknowledgement and is sent only after that commit, so a query is durable before it is
//! acknowledged; a crash before the commit acknowledged nothing (the agency resends the same
//! message id). One transaction per query instead of seven, and on SQLite one transaction for
//! every query waiting to be written (group commit), is what lets SQLite's single writer keep
//! up with the load (see `Store::insert_decided_query`). Each intake's phases are timed
//! (`IntakeClock`): histogram `verity_iaq_phase_seconds{phase}`, and a log line (target
//! `verity::slow_iaq`) for every intake slower than 50 ms. When the engine or the answer
//! fails, the query is stored first and processed as a stored query (compare-and-set, so a
//! recovery pass and the inline path cannot both record); a failure after that commit leaves
//! it `received` and the recovery task (woken at start and on every such failure) processes
//! it later, so an acknowledged query is never lost.

use crate::console::NavItem;
use crate::error::AppError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, RwLock};
use verity_formats::nlets;
use verity_model::{
    AorTable, AuditAction, AuditEvent, FieldError, Fin, Identity, OffenseTable, Ori, Purpose,
    SourceRecord, States,
};
use verity_store::queries::{
    CasOutcome, DecidedIntake, HitRow, InsertOutcome, IssueIar, NewDelivery, NewHit, NewQuery,
    Processing, QueryRow,
};
use verity_store::{Store, StoreError};
use verity_workflow::lesc::engine::{Engine, QueryInput, RecordLookup};
use verity_workflow::lesc::hits::{HitAnswer, HitClock, HitPriority, HitRequest};
use verity_workflow::lesc::iar::IarInput;
use verity_workflow::lesc::intake::{self, Iaq, QueryPurpose};
use verity_workflow::lesc::snapshot::{
    lookup_identifiers, RecordSnapshot, SnapshotBuilder, SnapshotLookup,
};
use verity_workflow::lesc::{Iar, LescPolicy};
use verity_workflow::{Permission, Principal};

/// The OpenAPI document (a file of this area; `lib.rs` is shared, so it is declared here).
#[path = "openapi.rs"]
pub(crate) mod openapi;

/// How a query came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Json,
    Nlets,
    Booking,
}

impl Channel {
    pub fn code(self) -> &'static str {
        match self {
            Channel::Json => "json",
            Channel::Nlets => "nlets",
            Channel::Booking => "booking",
        }
    }
}

/// A validated query to accept.
#[derive(Debug, Clone)]
pub struct Submission {
    pub iaq: Iaq,
    pub channel: Channel,
    /// The Nlets text exactly as received.
    pub raw_text: Option<String>,
    /// A FIN confirmed by fingerprints (bookings).
    pub biometric_fin: Option<Fin>,
}

/// What `submit` did.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub query_id: String,
    /// A repeat of an earlier message id: nothing new was stored.
    pub duplicate: bool,
    /// The query after processing (still `received` when processing failed and waits for
    /// recovery).
    pub row: QueryRow,
    /// The requesting agency's view of the IAR when it was issued together with the query's
    /// storage (its delivery is already marked fetched: the acknowledgement carries it).
    pub agency_iar: Option<Value>,
}

/// The LESC engine and the tables answers are composed with.
pub struct LescRuntime {
    pub engine: RwLock<Engine>,
    pub policy: LescPolicy,
    pub offenses: OffenseTable,
    pub aors: AorTable,
    /// Wakes the recovery task (queries left `received`).
    pub recovery: Notify,
    /// Every record up to one revision, in memory, built with the engine at start: the
    /// engine's reads come from here instead of about ten store statements per query. `None`:
    /// the engine reads from the store.
    pub snapshot: Option<RecordSnapshot>,
    /// Records stored after the snapshot (read from the store when its head moves).
    pub newer: RwLock<NewerRecords>,
    /// Engine runs over the snapshot at once: one per core.
    pub engine_slots: tokio::sync::Semaphore,
}

/// Records stored after the snapshot was built, in rev order, up to `upto_rev`.
#[derive(Debug, Default)]
pub struct NewerRecords {
    upto_rev: i64,
    records: Vec<SourceRecord>,
    /// More than [`NEWER_RECORDS_MAX`] were stored: the store answers until a restart.
    too_many: bool,
}

/// Past this many records stored since start, queries read from the store again (each query
/// would otherwise scan them all); a restart builds a new snapshot.
const NEWER_RECORDS_MAX: usize = 20_000;

impl LescRuntime {
    /// A runtime around `engine`, with the embedded offense and field-office tables.
    pub fn new(engine: Engine) -> Result<LescRuntime, String> {
        let states = States::embedded().map_err(|e| e.to_string())?;
        Ok(LescRuntime {
            policy: engine.policy().clone(),
            engine: RwLock::new(engine),
            offenses: OffenseTable::embedded().map_err(|e| e.to_string())?,
            aors: AorTable::embedded(&states).map_err(|e| e.to_string())?,
            recovery: Notify::new(),
            snapshot: None,
            newer: RwLock::new(NewerRecords::default()),
            engine_slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            ),
        })
    }

    /// The same runtime reading records from `snapshot` (built from the same records as the
    /// engine's index) and, for records stored since, from the store.
    pub fn with_snapshot(mut self, snapshot: RecordSnapshot) -> LescRuntime {
        self.newer = RwLock::new(NewerRecords {
            upto_rev: snapshot.upto_rev(),
            ..NewerRecords::default()
        });
        self.snapshot = Some(snapshot);
        self
    }

    /// An engine that knows no records yet, with the embedded rules and policy.
    pub fn embedded() -> Result<LescRuntime, String> {
        let rules = verity_policy::StatusRules::embedded().map_err(|e| e.to_string())?;
        let policy = LescPolicy::embedded().map_err(|e| e.to_string())?;
        LescRuntime::new(Engine::empty(rules, policy))
    }
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn micros_text(m: i64) -> String {
    DateTime::from_timestamp_micros(m)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn to_json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|e| json!({ "error": format!("not serializable: {e}") }).to_string())
}

fn purpose_of(iaq: &Iaq) -> Purpose {
    match iaq.purpose {
        QueryPurpose::C => Purpose::CriminalJustice,
        QueryPurpose::F => Purpose::Firearms,
    }
}

// ---------------------------------------------------------------------------------------------
// Record lookup over the store.
// ---------------------------------------------------------------------------------------------

/// The engine's view of the store: whole records by id or by shared identifier.
pub struct StoreLookup<'a>(pub &'a Store);

impl RecordLookup for StoreLookup<'_> {
    type Error = StoreError;

    async fn records(&self, record_ids: &[String]) -> Result<Vec<SourceRecord>, StoreError> {
        self.0.get_records(record_ids).await
    }

    async fn records_sharing_identifiers(
        &self,
        identity: &Identity,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        // One statement for all of them.
        self.0
            .records_by_any_identifier(&lookup_identifiers(identity))
            .await
    }
}

/// Reads every stored record once, in rev order: the (record id, identity) pairs the engine's
/// index is built from, and the snapshot the engine then reads whole records from (the same
/// records). `progress` is told how many records were read after each page.
pub async fn read_records_for_engine(
    store: &Store,
    page: u32,
    mut progress: impl FnMut(usize),
) -> Result<(Vec<(String, Identity)>, RecordSnapshot), StoreError> {
    // Every record up to this revision is committed, so the scan reads all of them.
    let head = store.max_record_rev().await?;
    let total = store.count_records().await?;
    let mut identities: Vec<(String, Identity)> =
        Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut snapshot = SnapshotBuilder::new();
    let mut after = 0i64;
    loop {
        let raws = store.scan_record_json(after, i64::MAX, page).await?;
        let Some(last) = raws.last() else { break };
        after = last.rev;
        for raw in raws {
            let record = raw.decode()?;
            snapshot.push(raw.rev, &record, &raw.json);
            identities.push((record.record_id, record.identity));
        }
        progress(identities.len());
    }
    snapshot.covers_up_to(head);
    Ok((identities, snapshot.finish()))
}

/// [`StoreLookup`] that also adds up the wall time of its store reads, so an intake can tell
/// the engine's own work from waiting on the store (connection pool, SQLite).
struct TimedLookup<L> {
    inner: L,
    spent: std::sync::Mutex<(Duration, u32)>,
}

impl<L: RecordLookup<Error = StoreError>> TimedLookup<L> {
    fn new(inner: L) -> Self {
        TimedLookup {
            inner,
            spent: std::sync::Mutex::new((Duration::ZERO, 0)),
        }
    }

    fn add(&self, d: Duration) {
        // A poisoned lock only loses a timing figure.
        if let Ok(mut s) = self.spent.lock() {
            s.0 += d;
            s.1 += 1;
        }
    }

    /// Total time in store reads and how many reads.
    fn spent(&self) -> (Duration, u32) {
        self.spent.lock().map(|s| *s).unwrap_or_default()
    }
}

impl<L: RecordLookup<Error = StoreError>> RecordLookup for TimedLookup<L> {
    type Error = StoreError;

    async fn records(&self, record_ids: &[String]) -> Result<Vec<SourceRecord>, StoreError> {
        let t = Instant::now();
        let r = self.inner.records(record_ids).await;
        self.add(t.elapsed());
        r
    }

    async fn records_sharing_identifiers(
        &self,
        identity: &Identity,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        let t = Instant::now();
        let r = self.inner.records_sharing_identifiers(identity).await;
        self.add(t.elapsed());
        r
    }
}

// ---------------------------------------------------------------------------------------------
// Per-phase timing of an intake.
// ---------------------------------------------------------------------------------------------

/// Intakes (`submit`) running now, to tell queueing inside the server from slow work.
static INTAKES_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// An answer slower than this (receipt to committed answer) is logged with its phases: the
/// target for automatic answers.
const SLOW_INTAKE: Duration = Duration::from_millis(50);

/// Wall time per phase of one intake. Each phase goes to the histogram
/// `verity_iaq_phase_seconds{phase}`; an intake slower than [`SLOW_INTAKE`] is also logged
/// (target `verity::slow_iaq`) with every phase, the intakes in flight and the pool's idle
/// connections when it started, so a slow request shows what it waited on. Under CPU load
/// every phase stretches; the phase that grows out of proportion is the one waited on.
struct IntakeClock {
    started: Instant,
    lap: Instant,
    phases: Vec<(&'static str, Duration)>,
    in_flight_at_start: usize,
    pool_at_start: verity_store::queries::PoolLoad,
    /// Intakes that shared this one's commit.
    group: usize,
}

impl IntakeClock {
    fn start(store: &Store) -> IntakeClock {
        let now = Instant::now();
        IntakeClock {
            started: now,
            lap: now,
            phases: Vec::with_capacity(16),
            in_flight_at_start: INTAKES_IN_FLIGHT.fetch_add(1, Ordering::Relaxed),
            pool_at_start: store.pool_load(),
            group: 0,
        }
    }

    /// Ends the phase running since the last mark.
    fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases.push((phase, now - self.lap));
        self.lap = now;
    }

    /// Records a phase measured elsewhere (inside another phase: not added to the lap).
    fn record(&mut self, phase: &'static str, d: Duration) {
        self.phases.push((phase, d));
    }

    /// The store write's phases.
    fn record_write(&mut self, w: &verity_store::queries::WriteTimings) {
        self.record("write_prepare", w.prepare);
        self.record("write_gate_wait", w.gate_wait);
        self.record("write_begin", w.begin);
        self.record("write_statements", w.statements);
        self.record("write_commit", w.commit);
        self.record("write_reread", w.reread);
        self.group = w.group;
    }

    /// Emits the histograms and, when `answer_time` (receipt to committed answer, the figure of
    /// `verity_iaq_response_seconds`) exceeds [`SLOW_INTAKE`], the log line.
    fn finish(self, query_id: &str, mode: &str, answer_time: Option<Duration>) {
        for (phase, d) in &self.phases {
            metrics::histogram!("verity_iaq_phase_seconds", "phase" => *phase)
                .record(d.as_secs_f64());
        }
        if self.group > 0 {
            metrics::histogram!("verity_iaq_commit_group_size").record(self.group as f64);
        }
        let total = self.started.elapsed();
        if answer_time.is_some_and(|t| t > SLOW_INTAKE) || total > SLOW_INTAKE {
            metrics::counter!("verity_iaq_slow_total", "mode" => mode.to_string()).increment(1);
            let phases = self
                .phases
                .iter()
                .map(|(p, d)| format!("{p}={:.1}", d.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(" ");
            tracing::info!(
                target: "verity::slow_iaq",
                query_id,
                mode,
                total_ms = format!("{:.1}", total.as_secs_f64() * 1e3),
                answer_ms = answer_time.map(|t| format!("{:.1}", t.as_secs_f64() * 1e3)).unwrap_or_default(),
                in_flight = self.in_flight_at_start,
                pool_open = self.pool_at_start.open,
                pool_idle = self.pool_at_start.idle,
                commit_group = self.group,
                phases_ms = %phases,
                "slow IAQ intake"
            );
        }
    }
}

impl Drop for IntakeClock {
    fn drop(&mut self) {
        INTAKES_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// Submit, process, issue.
// ---------------------------------------------------------------------------------------------

/// The field office for a query: the AOR of the encounter's place, else the agency's own.
async fn route_to_aor(state: &AppState, iaq: &Iaq) -> Result<Option<String>, AppError> {
    if !iaq.encounter_state.is_empty() {
        if let Some(o) = state
            .lesc
            .aors
            .office_for(&iaq.encounter_state, &iaq.encounter_county)
        {
            return Ok(Some(o.0));
        }
    }
    Ok(state
        .store
        .get_agency(&iaq.ori)
        .await?
        .map(|a| a.field_office)
        .filter(|f| !f.is_empty()))
}

/// A stored-query shape for a query not stored yet (version 0, `received`), so that answers
/// are composed the same way before and after storage.
fn unstored_row(q: &NewQuery) -> QueryRow {
    QueryRow {
        query_id: q.query_id.clone(),
        ori: q.ori.clone(),
        message_id: q.message_id.clone(),
        channel: q.channel.clone(),
        received_micros: q.received_micros,
        in_custody: q.in_custody,
        aor: q.aor.clone(),
        iaq_json: q.iaq_json.clone(),
        raw_text: q.raw_text.clone(),
        state: "received".into(),
        automatic: None,
        citizenship_review: false,
        status: None,
        person_key: None,
        result_json: None,
        iar_json: None,
        answered_micros: None,
        answered_by: None,
        assigned_to: None,
        updated_micros: q.received_micros,
        version: 0,
    }
}

fn duplicate_of(row: QueryRow, channel: &'static str) -> Submitted {
    metrics::counter!("verity_iaq_total", "outcome" => "duplicate", "channel" => channel)
        .increment(1);
    Submitted {
        query_id: row.query_id.clone(),
        duplicate: true,
        row,
        agency_iar: None,
    }
}

/// Accept -> process -> answer automatically or queue for review. Idempotent by (ORI, message
/// id): a repeat returns the first query as it stands now.
///
/// The usual path decides first and then stores everything in ONE write transaction (query,
/// receipt audit, result, IAR, deliveries, issue audit): the acknowledgement is the response,
/// sent only after that commit, so the query is durable before it is acknowledged, and a
/// crash before the commit leaves nothing acknowledged (the agency resends the same message
/// id). When the engine or the answer cannot be produced, the query is stored first (durable)
/// and processed as a stored query, with recovery as the backstop.
pub async fn submit(state: &AppState, s: Submission) -> Result<Submitted, AppError> {
    let channel = s.channel.code();
    let mut clock = IntakeClock::start(&state.store);
    // No read for repeats first: the write below stores nothing for a repeated (ORI, message
    // id) and returns the first query, so a repeat costs an engine run but every new query
    // (nearly all) saves a round trip to the store's connection pool, which is the scarce
    // resource under load (see the phase histograms).
    let aor = route_to_aor(state, &s.iaq).await?;
    clock.mark("route");
    let received_at = Instant::now();
    let new = NewQuery {
        query_id: format!("Q-{}", uuid::Uuid::new_v4().simple()),
        ori: s.iaq.ori.to_string(),
        message_id: s.iaq.message_id.clone(),
        channel: channel.to_string(),
        received_micros: now_micros(),
        in_custody: s.iaq.in_custody,
        aor,
        iaq_json: to_json_text(&s.iaq),
        raw_text: s.raw_text.clone(),
    };
    let received = AuditEvent {
        actor: format!("agency:{}", s.iaq.ori),
        agency: Some(s.iaq.ori.clone()),
        purpose: purpose_of(&s.iaq),
        action: AuditAction::Decision {
            subject: format!("query:{}", new.query_id),
            decision: "query received".into(),
            reason: format!("IAQ by {channel}, message id {}", s.iaq.message_id),
        },
    };
    let unstored = unstored_row(&new);
    match decide(
        state,
        &unstored,
        &s.iaq,
        s.biometric_fin.clone(),
        Some(&mut clock),
    )
    .await
    {
        Ok((processing, iar)) => {
            let answer = match iar {
                Some(iar) => match issue_parts(&unstored, &iar, None) {
                    Ok(parts) => Some((iar, parts)),
                    Err(e) => {
                        tracing::warn!(query_id = %new.query_id, error = %e, "answer not composable before storage; storing first");
                        return submit_stored_first(state, new, received, &s).await;
                    }
                },
                None => None,
            };
            let agency_view = answer.as_ref().map(|(iar, _)| iar.agency_view());
            clock.mark("compose");
            let intake = DecidedIntake {
                query: new,
                received,
                processing,
                issue: answer
                    .as_ref()
                    .map(|(_, (issue, audit))| (issue.clone(), audit.clone())),
            };
            let (outcome, write) = state.store.insert_decided_query_timed(&intake).await?;
            clock.mark("write");
            clock.record_write(&write);
            let answer_time = received_at.elapsed();
            let row = match outcome {
                InsertOutcome::Duplicate(row) => return Ok(duplicate_of(row, channel)),
                InsertOutcome::Inserted(row) => row,
            };
            let agency_iar = match &answer {
                Some(_) if row.state == "answered" => {
                    metrics::counter!("verity_iaq_total", "outcome" => "automatic", "channel" => channel)
                        .increment(1);
                    after_issue(state, &row, false).await;
                    clock.mark("after_issue");
                    clock.finish(&row.query_id, "automatic", Some(answer_time));
                    agency_view.map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
                }
                _ => {
                    metrics::counter!("verity_iaq_total", "outcome" => "review", "channel" => channel)
                        .increment(1);
                    clock.finish(&row.query_id, "review", None);
                    None
                }
            };
            Ok(Submitted {
                query_id: row.query_id.clone(),
                duplicate: false,
                row,
                agency_iar,
            })
        }
        Err(e) => {
            tracing::warn!(query_id = %new.query_id, error = %e, "engine failed before storage; storing first");
            submit_stored_first(state, new, received, &s).await
        }
    }
}

/// The durable-first path: store and commit the query, audit its receipt, then process it as
/// a stored query; a failure after the commit leaves it `received` for recovery.
async fn submit_stored_first(
    state: &AppState,
    new: NewQuery,
    received: AuditEvent,
    s: &Submission,
) -> Result<Submitted, AppError> {
    let channel = s.channel.code();
    let row = match state.store.insert_query(&new).await? {
        InsertOutcome::Duplicate(row) => return Ok(duplicate_of(row, channel)),
        InsertOutcome::Inserted(row) => row,
    };
    state.store.append_audit(received).await?;
    let query_id = row.query_id.clone();
    let processed = match process_row(state, &row, s.biometric_fin.clone()).await {
        Ok(r) => r,
        Err(e) => {
            // Durable and acknowledged: recovery finishes it.
            tracing::error!(query_id = %query_id, error = %e, "processing failed; left for recovery");
            metrics::counter!("verity_iaq_total", "outcome" => "deferred", "channel" => channel)
                .increment(1);
            state.lesc.recovery.notify_one();
            row
        }
    };
    Ok(Submitted {
        query_id,
        duplicate: false,
        row: processed,
        agency_iar: None,
    })
}

/// Brings the records stored after the snapshot up to the store's head (one statement when
/// nothing new was stored), so an answer from the snapshot is as fresh as one read from the
/// store. False when too many were stored since start: read from the store.
async fn refresh_newer(state: &AppState, snapshot: &RecordSnapshot) -> Result<bool, AppError> {
    let head = state.store.max_record_rev().await?;
    {
        let newer = state.lesc.newer.read().await;
        if newer.too_many {
            return Ok(false);
        }
        if newer.upto_rev >= head {
            return Ok(true);
        }
    }
    let mut newer = state.lesc.newer.write().await;
    let mut after = newer.upto_rev.max(snapshot.upto_rev());
    while after < head && !newer.too_many {
        let page = state.store.scan_records(after, 1_000).await?;
        let Some(&(last, _)) = page.last() else {
            // Every record up to the head is read (the last revisions were skipped duplicates).
            after = head;
            break;
        };
        after = last;
        newer.records.extend(page.into_iter().map(|(_, r)| r));
        newer.too_many = newer.records.len() > NEWER_RECORDS_MAX;
    }
    newer.upto_rev = after;
    if newer.too_many {
        tracing::warn!(
            records = newer.records.len(),
            "over {NEWER_RECORDS_MAX} records stored since start: LESC queries read records from the store until a restart"
        );
        newer.records = Vec::new();
        return Ok(false);
    }
    Ok(true)
}

/// Runs the engine for query `row` (stored or not yet): the result to record and, when the
/// decision is automatic, the IAR to issue. With a clock, the phase `decide` is marked and its
/// parts (engine lock wait, store reads, the rest) recorded.
async fn decide(
    state: &AppState,
    row: &QueryRow,
    iaq: &Iaq,
    biometric_fin: Option<Fin>,
    clock: Option<&mut IntakeClock>,
) -> Result<(Processing, Option<Iar>), AppError> {
    let today = Utc::now().date_naive();
    let started = Instant::now();
    let from_snapshot = match &state.lesc.snapshot {
        Some(snapshot) => refresh_newer(state, snapshot).await?,
        None => false,
    };
    let mut from_snapshot_run = None;
    if from_snapshot {
        // The run never waits on the store, so it is pure CPU: on a blocking thread, one per
        // core at a time (an async worker running it would hold up every other intake's
        // writes and responses until it ends).
        let _slot = state
            .lesc
            .engine_slots
            .acquire()
            .await
            .map_err(|e| AppError::Internal(format!("LESC engine slots: {e}")))?;
        let lock_wait = started.elapsed();
        let lesc = std::sync::Arc::clone(&state.lesc);
        let iaq = iaq.clone();
        let fin = biometric_fin.clone();
        let handle = tokio::runtime::Handle::current();
        let run = tokio::task::spawn_blocking(move || {
            let engine = lesc.engine.blocking_read();
            let newer = lesc.newer.blocking_read();
            // Too many records were stored meanwhile: the caller reads from the store.
            let snapshot = lesc.snapshot.as_ref().filter(|_| !newer.too_many)?;
            let input = QueryInput {
                iaq: &iaq,
                biometric_fin: fin,
                today,
            };
            let lookup = TimedLookup::new(SnapshotLookup {
                snapshot,
                newer: &newer.records,
            });
            // The snapshot's reads are ready at once: `block_on` never parks.
            let processed = handle.block_on(engine.process(&input, &lookup));
            Some(processed.map(|p| (p, lookup.spent().0)))
        })
        .await
        .map_err(|e| AppError::Internal(format!("LESC engine run: {e}")))?;
        if let Some(result) = run {
            let (p, reads) = result?;
            from_snapshot_run = Some((p, lock_wait, reads));
        }
    }
    let (processed, lock_wait, reads) = match from_snapshot_run {
        Some(run) => run,
        None => {
            let engine = state.lesc.engine.read().await;
            let lock_wait = started.elapsed();
            let input = QueryInput {
                iaq,
                biometric_fin,
                today,
            };
            let lookup = TimedLookup::new(StoreLookup(&state.store));
            let p = engine.process(&input, &lookup).await?;
            (p, lock_wait, lookup.spent().0)
        }
    };
    if let Some(clock) = clock {
        let engine_time = started.elapsed().saturating_sub(lock_wait + reads);
        clock.record("decide_lock_wait", lock_wait);
        clock.record("decide_store_reads", reads);
        clock.record("decide_engine", engine_time);
        clock.mark("decide");
    }
    let stored = processed.to_stored();
    let d = &processed.decision;
    let chosen_key = d
        .chosen
        .and_then(|i| processed.candidates.get(i))
        .map(|c| c.person_key.clone());
    let p = Processing {
        state: "in_review".into(),
        automatic: d.automatic,
        citizenship_review: d.citizenship_review,
        status: Some(d.determination.status.code().to_string()),
        person_key: chosen_key,
        result_json: to_json_text(&stored),
        at_micros: now_micros(),
        actor: "engine".into(),
    };
    let iar = d.automatic.then(|| {
        Iar::compose(
            IarInput {
                query_id: &row.query_id,
                requesting_ori: &row.ori,
                issued_at: &Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                decided_by: "automatic",
                field_office: row.aor.clone(),
            },
            d,
            &processed.candidates,
            &state.lesc.policy,
            &state.lesc.offenses,
        )
    });
    Ok((p, iar))
}

/// Runs the engine on a stored `received` query, records the result and, when the decision
/// is automatic, issues the IAR. Returns the query as it stands after.
pub(crate) async fn process_row(
    state: &AppState,
    row: &QueryRow,
    biometric_fin: Option<Fin>,
) -> Result<QueryRow, AppError> {
    let iaq: Iaq = serde_json::from_str(&row.iaq_json).map_err(|e| {
        AppError::Store(StoreError::Corrupt {
            table: "queries",
            key: row.query_id.clone(),
            problem: format!("iaq_json: {e}"),
        })
    })?;
    // A booking's FIN came from a fingerprint match; recovery has only the stored query.
    let biometric_fin = biometric_fin.or_else(|| {
        (row.channel == Channel::Booking.code())
            .then(|| iaq.ids.fin.clone())
            .flatten()
    });
    let (p, iar) = decide(state, row, &iaq, biometric_fin, None).await?;
    let channel = row.channel.as_str();
    let after = match state
        .store
        .record_processing(&row.query_id, row.version, &p)
        .await?
    {
        CasOutcome::Applied(r) => r,
        // Someone else processed it first (recovery and the inline path): theirs stands.
        CasOutcome::Stale(r) => return Ok(r),
    };
    let Some(iar) = iar else {
        metrics::counter!("verity_iaq_total", "outcome" => "review", "channel" => channel.to_string())
            .increment(1);
        return Ok(after);
    };
    metrics::counter!("verity_iaq_total", "outcome" => "automatic", "channel" => channel.to_string())
        .increment(1);
    Ok(
        match issue_iar(state, &row.query_id, iar, None, after.version).await? {
            Ok(r) | Err(r) => r,
        },
    )
}

/// The Nlets text of an answer for the requesting agency.
fn iar_nlets_text(row: &QueryRow, iar: &Iar) -> Result<String, String> {
    let destination = Ori::parse(&row.ori).map_err(|e| e.problem)?;
    let view = iar.agency_view();
    // The IAQ's control field is echoed when the query came as Nlets text.
    let original = row
        .raw_text
        .as_deref()
        .and_then(|t| nlets::parse_iaq(t, Utc::now().date_naive()).ok());
    let mut text = match &original {
        Some(q) => nlets::IarText::reply_to(q),
        None => nlets::IarText {
            destination,
            control: None,
            lines: Vec::new(),
        },
    };
    text.push("QID", row.query_id.clone());
    if let Some(n) = &view.name {
        text.push("SUB", n.clone());
    }
    if let Some(d) = &view.dob {
        text.push("SDB", d.clone());
    }
    if let Some(a) = &view.a_number {
        text.push("ARN", a.clone());
    }
    if let Some(c) = view.identity_confidence {
        text.push("CNF", format!("{:.3}", c));
    }
    if view.identified_by_fingerprints {
        text.push("BIO", "IDENTIFIED BY FINGERPRINTS");
    }
    text.push("STS", view.status_text.clone());
    for (date, offense, disposition) in &view.criminal_history {
        text.push("CRH", format!("{date} {offense} {disposition}"));
    }
    text.push("ACT", view.intended_action_text.clone());
    text.push("CTC", view.lesc_contact.clone());
    text.push("RUL", view.rules_version.clone());
    Ok(nlets::write_iar(&text))
}

/// Issues the IAR for a query (automatic when `actor` is `None`, else by that specialist):
/// stores it with one delivery per recipient (the agency's view for the requesting ORI, the
/// full answer for the field office), audits, counts, then hands it to PERC.
/// `Ok(Err(current))` when the query moved on since `expected_version` (another specialist,
/// or already answered): nothing was issued.
pub async fn issue_iar(
    state: &AppState,
    query_id: &str,
    iar: Iar,
    actor: Option<&Principal>,
    expected_version: i64,
) -> Result<Result<QueryRow, QueryRow>, AppError> {
    let row = state
        .store
        .get_query(query_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let (issue, audit) = issue_parts(&row, &iar, actor)?;
    let issued = match state
        .store
        .issue_iar(query_id, expected_version, &issue)
        .await?
    {
        CasOutcome::Applied(r) => r,
        CasOutcome::Stale(r) => return Ok(Err(r)),
    };
    state.store.append_audit(audit).await?;
    after_issue(state, &issued, actor.is_some()).await;
    Ok(Ok(issued))
}

/// What issuing `iar` for query `row` stores: the answer with one delivery per recipient (the
/// agency's view for the requesting ORI, the full answer for the field office), and the audit
/// entry for the decision. Automatic when `actor` is `None`.
fn issue_parts(
    row: &QueryRow,
    iar: &Iar,
    actor: Option<&Principal>,
) -> Result<(IssueIar, AuditEvent), AppError> {
    let by = actor
        .map(|p| p.username.clone())
        .unwrap_or_else(|| "automatic".into());
    let nlets_text = iar_nlets_text(row, iar).map_err(|e| {
        AppError::BadRequest(format!("requesting ORI '{}' is unusable: {e}", row.ori))
    })?;
    let full = to_json_text(iar);
    let mut deliveries = vec![NewDelivery {
        recipient_kind: "agency".into(),
        recipient: row.ori.clone(),
        view_json: to_json_text(&iar.agency_view()),
        nlets_text: Some(nlets_text),
    }];
    if let Some(aor) = row.aor.clone().or_else(|| iar.field_office.clone()) {
        deliveries.push(NewDelivery {
            recipient_kind: "field_office".into(),
            recipient: aor,
            view_json: full.clone(),
            nlets_text: None,
        });
    }
    let issue = IssueIar {
        iar_json: full,
        answered_by: by.clone(),
        answered_micros: now_micros(),
        status: Some(iar.status.code().to_string()),
        person_key: iar.identity.as_ref().map(|i| i.person_key.clone()),
        deliveries,
        event_detail_json: json!({
            "status": iar.status.code(),
            "intended_action": iar.intended_action,
            "by": by,
            "automatic": actor.is_none(),
        })
        .to_string(),
    };
    let audit = AuditEvent {
        actor: by,
        agency: Ori::parse(&row.ori).ok(),
        purpose: Purpose::StatusDetermination,
        action: AuditAction::Decision {
            subject: format!("query:{}", row.query_id),
            decision: format!("IAR issued: {}", iar.status.code()),
            reason: if actor.is_none() {
                "automatic answer under LESC policy".into()
            } else {
                "issued by a specialist after review".into()
            },
        },
    };
    Ok((issue, audit))
}

/// After an IAR is stored: metrics (issued, response time from receipt to the answer's commit,
/// SLA breach) and the PERC hand-over.
async fn after_issue(state: &AppState, issued: &QueryRow, reviewed: bool) {
    let mode = if reviewed { "reviewed" } else { "automatic" };
    metrics::counter!("verity_iar_issued_total", "mode" => mode).increment(1);
    let seconds = (now_micros() - issued.received_micros).max(0) as f64 / 1e6;
    metrics::histogram!("verity_iaq_response_seconds", "mode" => mode).record(seconds);
    let policy = &state.lesc.policy;
    let sla_minutes = if issued.in_custody {
        policy.sla_minutes_in_custody
    } else {
        policy.sla_minutes_not_in_custody
    };
    if seconds > (sla_minutes * 60) as f64 {
        metrics::counter!("verity_lesc_sla_breaches_total", "mode" => mode).increment(1);
    }
    if let Err(e) = crate::perc::on_iar_issued(state, issued).await {
        // The answer stands; PERC triage can be rerun from the stored IAR.
        tracing::error!(query_id = %issued.query_id, error = %e, "PERC hand-over failed");
    }
}

/// Processes every query still `received` (a crash between acknowledgement and processing,
/// or a failed inline run). Returns how many were processed.
pub async fn recover(state: &AppState) -> Result<usize, AppError> {
    let mut done = 0;
    let mut failed = std::collections::HashSet::new();
    loop {
        let batch = state.store.list_queries_in_state("received", 200).await?;
        let todo: Vec<QueryRow> = batch
            .into_iter()
            .filter(|q| !failed.contains(&q.query_id))
            .collect();
        if todo.is_empty() {
            return Ok(done);
        }
        for q in todo {
            match process_row(state, &q, None).await {
                Ok(_) => done += 1,
                Err(e) => {
                    tracing::error!(query_id = %q.query_id, error = %e, "recovery could not process a query");
                    failed.insert(q.query_id.clone());
                }
            }
        }
    }
}

/// Starts the recovery task (runs now, then whenever woken) and the monitor (queue depth,
/// SLA breaches, hit escalation and compliance gauges).
pub fn start_background(state: &AppState) {
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            match recover(&st).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queries = n, "recovered queries left received"),
                Err(e) => tracing::error!(error = %e, "recovery pass failed"),
            }
            st.lesc.recovery.notified().await;
        }
    });
    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Err(e) = monitor_once(&st).await {
                tracing::warn!(error = %e, "LESC monitor pass failed");
            }
        }
    });
    // SQLite's WAL is checkpointed here, a few times a second, rather than by whichever
    // intake's commit finds it grown (with an fsync, while the intakes of that commit group
    // wait for their answers).
    let st = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match st.store.checkpoint_wal().await {
                Ok(None) => return,
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            }
        }
    });
}

/// One monitor pass: gauges, and escalation of hit requests past their escalation point.
pub async fn monitor_once(state: &AppState) -> Result<(), AppError> {
    let now = Utc::now();
    for (st, n) in state.store.count_queries_by_state().await? {
        metrics::gauge!("verity_lesc_queue_depth", "state" => st).set(n as f64);
    }
    let policy = &state.lesc.policy;
    let minute = 60_000_000i64;
    let breached = state
        .store
        .count_review_breaches(
            now.timestamp_micros() - policy.sla_minutes_in_custody * minute,
            now.timestamp_micros() - policy.sla_minutes_not_in_custody * minute,
        )
        .await?;
    metrics::gauge!("verity_lesc_sla_breached").set(breached as f64);
    for h in state.store.list_open_hits(10_000).await? {
        let due = h.state == "open" && hit_clock(&h, now, policy) != HitClock::Waiting;
        if due
            && state
                .store
                .escalate_hit(&h.hit_id, now.timestamp_micros())
                .await?
        {
            metrics::counter!("verity_hit_escalations_total").increment(1);
            state
                .store
                .append_audit(AuditEvent {
                    actor: "system".into(),
                    agency: Ori::parse(&h.ori).ok(),
                    purpose: Purpose::System,
                    action: AuditAction::Decision {
                        subject: format!("hit:{}", h.hit_id),
                        decision: "escalated to a supervisor".into(),
                        reason: "unanswered past the escalation point".into(),
                    },
                })
                .await?;
        }
    }
    let c = state.store.hit_compliance(now.timestamp_micros()).await?;
    metrics::gauge!("verity_hits_answered").set(c.answered as f64);
    metrics::gauge!("verity_hits_answered_in_time").set(c.answered_in_time as f64);
    metrics::gauge!("verity_hits_overdue_open").set(c.overdue_open as f64);
    if c.answered > 0 {
        metrics::gauge!("verity_hits_compliance_ratio")
            .set(c.answered_in_time as f64 / c.answered as f64);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Agency handlers.
// ---------------------------------------------------------------------------------------------

fn problems_response(problems: &[FieldError]) -> Response {
    let list: Vec<Value> = problems
        .iter()
        .map(|p| json!({ "field": p.field, "problem": p.problem }))
        .collect();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": "the query is invalid", "problems": list })),
    )
        .into_response()
}

fn agency_of(who: &Principal) -> Result<Ori, AppError> {
    who.agency.clone().ok_or(AppError::NotFound)
}

/// Refuses a body that names another agency than the authenticated one, with an audit entry.
async fn refuse_other_ori(
    state: &AppState,
    who: &Ori,
    claimed: &str,
    resource: &str,
) -> Result<Response, AppError> {
    metrics::counter!("verity_access_denied_total").increment(1);
    state
        .store
        .append_audit(AuditEvent {
            actor: format!("agency:{who}"),
            agency: Some(who.clone()),
            purpose: Purpose::CriminalJustice,
            action: AuditAction::AccessDenied {
                resource: resource.into(),
                reason: format!("body names ORI '{claimed}', credentials are for {who}"),
            },
        })
        .await?;
    Ok((
        StatusCode::FORBIDDEN,
        Json(json!({ "error": format!("ori: '{claimed}' is not the authenticated agency {who}") })),
    )
        .into_response())
}

async fn deny_read(state: &AppState, who: &Ori, resource: &str) -> Result<Response, AppError> {
    state
        .store
        .append_audit(AuditEvent {
            actor: format!("agency:{who}"),
            agency: Some(who.clone()),
            purpose: Purpose::CriminalJustice,
            action: AuditAction::AccessDenied {
                resource: resource.into(),
                reason: "not a query of this agency".into(),
            },
        })
        .await?;
    Ok((
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "no such query" })),
    )
        .into_response())
}

/// What an agency sees of its query.
async fn agency_query_view(state: &AppState, row: &QueryRow) -> Result<Value, AppError> {
    let mut iar = Value::Null;
    if row.state == "answered" {
        for d in state.store.deliveries_of_query(&row.query_id).await? {
            if d.recipient_kind == "agency" && d.recipient == row.ori {
                iar = serde_json::from_str(&d.view_json).unwrap_or(Value::Null);
                state
                    .store
                    .mark_delivery_fetched(d.delivery_id, now_micros())
                    .await?;
            }
        }
    }
    Ok(query_view(row, iar))
}

fn query_view(row: &QueryRow, iar: Value) -> Value {
    json!({
        "query_id": row.query_id,
        "message_id": row.message_id,
        "channel": row.channel,
        "state": row.state,
        "received_at": micros_text(row.received_micros),
        "answered_at": row.answered_micros.map(micros_text),
        "iar": iar,
    })
}

fn submitted_status(row: &QueryRow) -> StatusCode {
    if row.state == "answered" {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    }
}

/// POST /v1/iaq
async fn post_iaq(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    // The body may name its ORI; it must be the authenticated one. The parser knows no `ori`
    // field, so it is checked and removed here.
    let mut body = body.to_vec();
    if let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&body) {
        if let Some(claimed) = obj.remove("ori") {
            let claimed = claimed.as_str().unwrap_or_default().trim().to_string();
            if !claimed.eq_ignore_ascii_case(ori.as_str()) {
                return refuse_other_ori(&state, &ori, &claimed, "/v1/iaq").await;
            }
            body = serde_json::to_vec(&Value::Object(obj)).unwrap_or_default();
        }
    }
    let iaq = match intake::parse_json(&body, &ori, Utc::now().date_naive()) {
        Ok(q) => q,
        Err(problems) => {
            metrics::counter!("verity_iaq_total", "outcome" => "rejected", "channel" => "json")
                .increment(1);
            return Ok(problems_response(&problems));
        }
    };
    let s = submit(
        &state,
        Submission {
            iaq,
            channel: Channel::Json,
            raw_text: None,
            biometric_fin: None,
        },
    )
    .await?;
    let mut view = match s.agency_iar {
        // Issued with the query's storage: the view is at hand and its delivery marked fetched.
        Some(iar) => query_view(&s.row, iar),
        None => agency_query_view(&state, &s.row).await?,
    };
    view["duplicate"] = Value::Bool(s.duplicate);
    Ok((submitted_status(&s.row), Json(view)).into_response())
}

/// Converts a parsed Nlets IAQ to the query Verity holds. The message id is the control field
/// when there is one, else a digest of the text (a resend of the same text is a repeat).
fn iaq_from_nlets(
    q: &nlets::Iaq,
    raw: &str,
    agency: Option<&verity_store::Agency>,
) -> Result<Iaq, Vec<FieldError>> {
    let country_of_birth = match intake::country_of_pob(&q.pob) {
        Some(c) => c.to_string(),
        None => {
            return Err(vec![FieldError::new(
                "POB",
                format!("'{}' is not a known NCIC place-of-birth code", q.pob),
            )])
        }
    };
    let message_id = match &q.control {
        Some(c) => format!("NLETS-{c}"),
        None => {
            let digest = verity_workflow::credentials::token_digest(raw.trim());
            format!("NLETS-{}", &digest[..32.min(digest.len())])
        }
    };
    let remarks = q
        .other
        .iter()
        .map(|(t, v)| format!("{t}/{v}"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Iaq {
        message_id,
        ori: q.sender.clone(),
        purpose: if q.purpose == Purpose::Firearms {
            QueryPurpose::F
        } else {
            QueryPurpose::C
        },
        attention: q.attention.clone(),
        phone: q.phone.clone(),
        name: q.name.clone(),
        dob: Some(q.dob),
        sex: q.sex,
        pob_code: q.pob.clone(),
        country_of_birth,
        in_custody: q.in_custody,
        offense_code: q.offense.clone(),
        ids: verity_model::Identifiers {
            a_number: q.a_number.clone(),
            fbi_number: q.fbi.clone(),
            state_id: q.sid.clone(),
            ..Default::default()
        },
        driver_license: q.oln.clone().unwrap_or_default(),
        encounter_state: agency
            .map(|a| a.state.clone())
            .unwrap_or_else(|| q.sender.as_str().chars().take(2).collect()),
        encounter_county: agency.map(|a| a.county.clone()).unwrap_or_default(),
        citizenship_claimed: intake::mentions_citizenship(&remarks),
        remarks,
    })
}

fn nlets_reply(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn nlets_ack(row: &QueryRow) -> String {
    format!(
        "ACK.{ori}.{lesc}.\nTXT\nQID/{id}.\nSTS/IAQ RECEIVED; IAR TO FOLLOW.\nRTV/GET /v1/nlets/{id}.\n",
        ori = row.ori,
        lesc = nlets::LESC_ORI,
        id = row.query_id
    )
}

fn nlets_reject(ori: &str, problems: &[FieldError]) -> String {
    let mut s = format!("REJ.{ori}.{}.\nTXT\n", nlets::LESC_ORI);
    for p in problems {
        s.push_str(&format!(
            "ERR/{}: {}.\n",
            p.field,
            p.problem.replace('\n', " ")
        ));
    }
    s
}

/// The stored Nlets IAR text of an answered query, if any.
async fn agency_nlets_text(state: &AppState, row: &QueryRow) -> Result<Option<String>, AppError> {
    for d in state.store.deliveries_of_query(&row.query_id).await? {
        if d.recipient_kind == "agency" && d.recipient == row.ori {
            state
                .store
                .mark_delivery_fetched(d.delivery_id, now_micros())
                .await?;
            return Ok(d.nlets_text);
        }
    }
    Ok(None)
}

/// POST /v1/nlets: Nlets text in; the IAR text when answered at once, else an acknowledgement
/// carrying the query id (the IAR follows at GET /v1/nlets/{query_id}).
async fn post_nlets(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    let Ok(text) = std::str::from_utf8(&body) else {
        let p = [FieldError::new("body", "is not UTF-8 text")];
        return Ok(nlets_reply(
            StatusCode::BAD_REQUEST,
            nlets_reject(ori.as_str(), &p),
        ));
    };
    let parsed = match nlets::parse_iaq(text, Utc::now().date_naive()) {
        Ok(q) => q,
        Err(errors) => {
            metrics::counter!("verity_iaq_total", "outcome" => "rejected", "channel" => "nlets")
                .increment(1);
            let p: Vec<FieldError> = errors
                .0
                .iter()
                .map(|e| FieldError::new(e.field.as_str(), e.problem.as_str()))
                .collect();
            return Ok(nlets_reply(
                StatusCode::BAD_REQUEST,
                nlets_reject(ori.as_str(), &p),
            ));
        }
    };
    if parsed.sender != ori {
        return refuse_other_ori(&state, &ori, parsed.sender.as_str(), "/v1/nlets").await;
    }
    let agency = state.store.get_agency(&ori).await?;
    let iaq = match iaq_from_nlets(&parsed, text, agency.as_ref()) {
        Ok(q) => q,
        Err(p) => {
            return Ok(nlets_reply(
                StatusCode::BAD_REQUEST,
                nlets_reject(ori.as_str(), &p),
            ));
        }
    };
    let s = submit(
        &state,
        Submission {
            iaq,
            channel: Channel::Nlets,
            raw_text: Some(text.to_string()),
            biometric_fin: None,
        },
    )
    .await?;
    if s.row.state == "answered" {
        if let Some(t) = agency_nlets_text(&state, &s.row).await? {
            return Ok(nlets_reply(StatusCode::OK, t));
        }
    }
    Ok(nlets_reply(StatusCode::ACCEPTED, nlets_ack(&s.row)))
}

/// GET /v1/nlets/{query_id}: the IAR text once answered, else the acknowledgement again.
async fn get_nlets(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(query_id): Path<String>,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    let resource = format!("/v1/nlets/{query_id}");
    let Some(row) = state.store.get_query(&query_id).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such query" })),
        )
            .into_response());
    };
    if row.ori != ori.as_str() {
        return deny_read(&state, &ori, &resource).await;
    }
    if row.state == "answered" {
        if let Some(t) = agency_nlets_text(&state, &row).await? {
            return Ok(nlets_reply(StatusCode::OK, t));
        }
    }
    Ok(nlets_reply(StatusCode::ACCEPTED, nlets_ack(&row)))
}

/// GET /v1/iaq/{query_id}: the agency's view of its own query.
async fn get_iaq(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(query_id): Path<String>,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    let resource = format!("/v1/iaq/{query_id}");
    let Some(row) = state.store.get_query(&query_id).await? else {
        return Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such query" })),
        )
            .into_response());
    };
    if row.ori != ori.as_str() {
        return deny_read(&state, &ori, &resource).await;
    }
    let view = agency_query_view(&state, &row).await?;
    Ok((StatusCode::OK, Json(view)).into_response())
}

#[derive(Deserialize)]
struct InboxParams {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<u32>,
}

/// GET /v1/iar?after=N&limit=M: the agency's IAR deliveries after delivery id N.
async fn get_inbox(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(p): Query<InboxParams>,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    let limit = p.limit.unwrap_or(100).clamp(1, 500);
    let list = state
        .store
        .deliveries_for("agency", ori.as_str(), p.after, limit)
        .await?;
    let now = now_micros();
    let mut items = Vec::with_capacity(list.len());
    for d in &list {
        state
            .store
            .mark_delivery_fetched(d.delivery_id, now)
            .await?;
        items.push(json!({
            "delivery_id": d.delivery_id,
            "query_id": d.query_id,
            "issued_at": micros_text(d.created_micros),
            "iar": serde_json::from_str::<Value>(&d.view_json).unwrap_or(Value::Null),
            "nlets_text": d.nlets_text,
        }));
    }
    let next = list.last().map(|d| d.delivery_id).unwrap_or(p.after);
    Ok(Json(json!({ "deliveries": items, "next_after": next })).into_response())
}

// ---------------------------------------------------------------------------------------------
// NCIC hit confirmation.
// ---------------------------------------------------------------------------------------------

const HIT_FIELDS: &[&str] = &[
    "message_id",
    "priority",
    "ori",
    "ncic_number",
    "name",
    "dob",
    "attention",
    "phone",
    "remarks",
];

fn hit_request_of(h: &HitRow) -> HitRequest {
    let at = |m: i64| DateTime::from_timestamp_micros(m).unwrap_or_default();
    HitRequest {
        id: h.hit_id.clone(),
        priority: if h.priority == "U" {
            HitPriority::U
        } else {
            HitPriority::R
        },
        received_at: at(h.received_micros),
        answered_at: h.answered_micros.map(at),
        answer: h
            .answer_json
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok()),
    }
}

fn hit_clock(h: &HitRow, now: DateTime<Utc>, policy: &LescPolicy) -> HitClock {
    hit_request_of(h).clock(now, policy)
}

fn hit_view(h: &HitRow, policy: &LescPolicy) -> Value {
    json!({
        "hit_id": h.hit_id,
        "message_id": h.message_id,
        "priority": h.priority,
        "received_at": micros_text(h.received_micros),
        "deadline": micros_text(h.deadline_micros),
        "state": h.state,
        "clock": hit_clock(h, Utc::now(), policy),
        "answered_at": h.answered_micros.map(micros_text),
        "answer": h.answer_json.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
    })
}

/// Validates a YQ body; every problem named.
fn parse_hit(body: &[u8], ori: &Ori) -> Result<(String, HitPriority, Value), Vec<FieldError>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![FieldError::new("body", format!("not valid JSON: {e}"))])?;
    let Value::Object(obj) = value else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    for k in obj.keys() {
        if !HIT_FIELDS.contains(&k.as_str()) {
            errors.push(FieldError::new(k.as_str(), "unknown field"));
        }
    }
    let text = |k: &str, errors: &mut Vec<FieldError>, required: bool, max: usize| -> String {
        match obj.get(k) {
            None | Some(Value::Null) => {
                if required {
                    errors.push(FieldError::new(k, "is required"));
                }
                String::new()
            }
            Some(Value::String(s)) => {
                let t = s.trim().to_string();
                if required && t.is_empty() {
                    errors.push(FieldError::new(k, "is required"));
                }
                if t.chars().count() > max {
                    errors.push(FieldError::new(
                        k,
                        format!("is longer than {max} characters"),
                    ));
                }
                t
            }
            Some(_) => {
                errors.push(FieldError::new(k, "must be a string"));
                String::new()
            }
        }
    };
    let message_id = text("message_id", &mut errors, true, 64);
    let priority = match text("priority", &mut errors, true, 1).as_str() {
        "U" => HitPriority::U,
        "R" | "" => HitPriority::R,
        other => {
            errors.push(FieldError::new(
                "priority",
                format!("'{other}' is not U or R"),
            ));
            HitPriority::R
        }
    };
    let claimed = text("ori", &mut errors, false, 9);
    if !claimed.is_empty() && !claimed.eq_ignore_ascii_case(ori.as_str()) {
        errors.push(FieldError::new(
            "ori",
            format!("'{claimed}' is not the authenticated agency {ori}"),
        ));
    }
    text("ncic_number", &mut errors, true, 20);
    text("name", &mut errors, false, 30);
    let dob = text("dob", &mut errors, false, 10);
    if !dob.is_empty() && verity_model::PartialDate::parse_iso(&dob).is_err() {
        errors.push(FieldError::new(
            "dob",
            format!("'{dob}' is not a date (YYYY-MM-DD)"),
        ));
    }
    text("attention", &mut errors, false, 30);
    text("phone", &mut errors, false, 20);
    text("remarks", &mut errors, false, 500);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((message_id, priority, Value::Object(obj)))
}

/// POST /v1/hits: an NCIC hit confirmation request (YQ).
async fn post_hit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Bytes,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    let (message_id, priority, request) = match parse_hit(&body, &ori) {
        Ok(v) => v,
        Err(p) => return Ok(problems_response(&p)),
    };
    let policy = &state.lesc.policy;
    let received = Utc::now();
    let probe = HitRequest {
        id: String::new(),
        priority,
        received_at: received,
        answered_at: None,
        answer: None,
    };
    let deadline = probe.deadline(policy);
    let outcome = state
        .store
        .insert_hit(&NewHit {
            hit_id: format!("H-{}", uuid::Uuid::new_v4().simple()),
            ori: ori.to_string(),
            message_id,
            priority: if priority == HitPriority::U { "U" } else { "R" }.into(),
            received_micros: received.timestamp_micros(),
            deadline_micros: deadline.timestamp_micros(),
            request_json: request.to_string(),
        })
        .await?;
    let duplicate = outcome.is_duplicate();
    let row = outcome.into_row();
    if !duplicate {
        metrics::counter!("verity_hits_total", "priority" => row.priority.clone()).increment(1);
        state
            .store
            .append_audit(AuditEvent {
                actor: format!("agency:{ori}"),
                agency: Some(ori.clone()),
                purpose: Purpose::CriminalJustice,
                action: AuditAction::Decision {
                    subject: format!("hit:{}", row.hit_id),
                    decision: "hit confirmation requested".into(),
                    reason: format!("priority {}", row.priority),
                },
            })
            .await?;
    }
    let mut v = hit_view(&row, policy);
    v["duplicate"] = Value::Bool(duplicate);
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

/// GET /v1/hits/{hit_id}
async fn get_hit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(hit_id): Path<String>,
) -> Result<Response, AppError> {
    let ori = agency_of(&who)?;
    match state.store.get_hit(&hit_id).await? {
        Some(h) if h.ori == ori.as_str() => {
            Ok(Json(hit_view(&h, &state.lesc.policy)).into_response())
        }
        Some(_) => deny_read(&state, &ori, &format!("/v1/hits/{hit_id}")).await,
        None => Ok((
            StatusCode::NOT_FOUND,
            Json(json!({ "error": "no such hit request" })),
        )
            .into_response()),
    }
}

// ---------------------------------------------------------------------------------------------
// Staff page: open hit confirmations.
// ---------------------------------------------------------------------------------------------

pub struct HitLine {
    pub hit_id: String,
    pub ori: String,
    pub priority: String,
    pub received: String,
    pub deadline: String,
    pub clock: String,
    pub minutes_left: i64,
    pub escalated: bool,
    pub ncic_number: String,
    pub name: String,
}

#[derive(askama::Template)]
#[template(path = "lesc_hits.html")]
struct HitsPage {
    nav: Vec<NavItem>,
    username: String,
    hits: Vec<HitLine>,
    answered: i64,
    answered_in_time: i64,
    overdue_open: i64,
    compliance: String,
    message: Option<String>,
    error: Option<String>,
}

use crate::console::nav_for;

async fn hits_page(
    state: &AppState,
    who: &Principal,
    message: Option<String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let now = Utc::now();
    let policy = &state.lesc.policy;
    let hits = state
        .store
        .list_open_hits(500)
        .await?
        .into_iter()
        .map(|h| {
            let req: Value = serde_json::from_str(&h.request_json).unwrap_or(Value::Null);
            let field = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            HitLine {
                clock: format!("{:?}", hit_clock(&h, now, policy)).to_lowercase(),
                minutes_left: (h.deadline_micros - now.timestamp_micros()) / 60_000_000,
                escalated: h.state == "escalated",
                received: micros_text(h.received_micros),
                deadline: micros_text(h.deadline_micros),
                ncic_number: field("ncic_number"),
                name: field("name"),
                hit_id: h.hit_id,
                ori: h.ori,
                priority: h.priority,
            }
        })
        .collect();
    let c = state.store.hit_compliance(now.timestamp_micros()).await?;
    let page = HitsPage {
        nav: nav_for(state, who),
        username: who.username.clone(),
        hits,
        answered: c.answered,
        answered_in_time: c.answered_in_time,
        overdue_open: c.overdue_open,
        compliance: if c.answered == 0 {
            "no answers yet".into()
        } else {
            format!(
                "{:.1}% answered in time",
                100.0 * c.answered_in_time as f64 / c.answered as f64
            )
        },
        message,
        error,
    };
    Ok(Html(askama::Template::render(&page)?).into_response())
}

/// GET /lesc/hits
async fn staff_hits(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, AppError> {
    hits_page(&state, &who, None, None).await
}

#[derive(Deserialize)]
struct HitAnswerForm {
    /// `confirmed`, `not_confirmed` or `will_confirm_by`.
    answer: String,
    #[serde(default)]
    reason: String,
    /// For `will_confirm_by`: minutes from now.
    #[serde(default)]
    minutes: String,
}

/// POST /lesc/hits/{hit_id}: a confirmation, a refusal with its reason, or a YR with a time.
async fn staff_answer_hit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(hit_id): Path<String>,
    Form(form): Form<HitAnswerForm>,
) -> Result<Response, AppError> {
    let now = Utc::now();
    let by = who.username.clone();
    let answer = match form.answer.as_str() {
        "confirmed" => HitAnswer::Confirmed { by },
        "not_confirmed" => {
            if form.reason.trim().is_empty() {
                return hits_page(
                    &state,
                    &who,
                    None,
                    Some("reason: a refusal needs a reason".into()),
                )
                .await;
            }
            HitAnswer::NotConfirmed {
                by,
                reason: form.reason.trim().to_string(),
            }
        }
        "will_confirm_by" => match form.minutes.trim().parse::<i64>() {
            Ok(m) if (1..=24 * 60).contains(&m) => HitAnswer::WillConfirmBy {
                by,
                until: now + chrono::Duration::minutes(m),
            },
            _ => {
                return hits_page(
                    &state,
                    &who,
                    None,
                    Some("minutes: a whole number of minutes from 1 to 1440".into()),
                )
                .await
            }
        },
        other => {
            return hits_page(
                &state,
                &who,
                None,
                Some(format!("answer: '{other}' is not known")),
            )
            .await
        }
    };
    let Some(row) = state.store.get_hit(&hit_id).await? else {
        return Err(AppError::NotFound);
    };
    let mut req = hit_request_of(&row);
    if let Err(e) = req.answer(answer.clone(), now) {
        return hits_page(&state, &who, None, Some(e)).await;
    }
    let answer_json = to_json_text(&answer);
    match state
        .store
        .answer_hit(&hit_id, &who.username, now.timestamp_micros(), &answer_json)
        .await?
    {
        Ok(done) => {
            let clock = hit_clock(&done, now, &state.lesc.policy);
            metrics::counter!("verity_hit_answers_total", "priority" => done.priority.clone(),
                "in_time" => (clock == HitClock::AnsweredInTime).to_string())
            .increment(1);
            state
                .store
                .append_audit(AuditEvent {
                    actor: who.username.clone(),
                    agency: Ori::parse(&done.ori).ok(),
                    purpose: Purpose::CriminalJustice,
                    action: AuditAction::Decision {
                        subject: format!("hit:{hit_id}"),
                        decision: format!("hit answered: {}", form.answer),
                        reason: form.reason.trim().to_string(),
                    },
                })
                .await?;
            hits_page(
                &state,
                &who,
                Some(format!("Hit {hit_id} answered ({})", form.answer)),
                None,
            )
            .await
        }
        Err(_) => {
            hits_page(
                &state,
                &who,
                None,
                Some(format!("hit {hit_id} was already answered")),
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes.
// ---------------------------------------------------------------------------------------------

/// Console pages of this area: (path, permission, handler).
pub fn staff_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    vec![
        ("/lesc/hits", Permission::ConfirmHits, get(staff_hits)),
        (
            "/lesc/hits/{hit_id}",
            Permission::ConfirmHits,
            post(staff_answer_hit),
        ),
    ]
}

/// Agency API routes of this area: (path, permission, handler).
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    vec![
        ("/v1/iaq", Permission::SubmitQuery, post(post_iaq)),
        ("/v1/iaq/{query_id}", Permission::SubmitQuery, get(get_iaq)),
        ("/v1/nlets", Permission::SubmitQuery, post(post_nlets)),
        (
            "/v1/nlets/{query_id}",
            Permission::SubmitQuery,
            get(get_nlets),
        ),
        ("/v1/iar", Permission::ViewOwnAgencyAnswers, get(get_inbox)),
        ("/v1/hits", Permission::SubmitQuery, post(post_hit)),
        ("/v1/hits/{hit_id}", Permission::SubmitQuery, get(get_hit)),
    ]
}

/// Routes anyone may read (no credentials): the API description. `routes.rs` (shared) merges
/// them into the public part of the router.
#[allow(dead_code)] // until the one-line merge in routes.rs lands (asked of the lead)
pub fn public_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/openapi.json", get(openapi::openapi_json))]
}

/// Navigation entries of this area: (href, label, permission).
pub const NAV: &[(&str, &str, Permission)] =
    &[("/lesc/hits", "Hit confirmation", Permission::ConfirmHits)];

/// For the demo and load tools: submits a JSON IAQ body as agency `ori` (as POST /v1/iaq
/// would). Returns the query id and state, or the problems.
pub async fn submit_json(
    state: &AppState,
    ori: &Ori,
    body: &[u8],
) -> Result<(String, String), String> {
    let iaq = intake::parse_json(body, ori, Utc::now().date_naive()).map_err(|p| {
        p.iter()
            .map(|e| format!("{}: {}", e.field, e.problem))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let s = submit(
        state,
        Submission {
            iaq,
            channel: Channel::Json,
            raw_text: None,
            biometric_fin: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((s.query_id, s.row.state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_bodies_name_every_problem() {
        let ori = Ori::parse("MD0030000").expect("ori");
        let errors = parse_hit(
            br#"{"priority":"Z","dob":"1990-13-01","colour":1,"ori":"VA0010000"}"#,
            &ori,
        )
        .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "colour",
            "message_id",
            "priority",
            "ncic_number",
            "dob",
            "ori",
        ] {
            assert!(fields.contains(&f), "{f} not named: {errors:?}");
        }
        let ok = parse_hit(
            br#"{"message_id":"y1","priority":"U","ncic_number":"V123456789"}"#,
            &ori,
        )
        .expect("valid");
        assert_eq!(ok.1, HitPriority::U);
    }

    #[test]
    fn nlets_conversion_keeps_identifiers_and_reads_claims() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date");
        let text = "IAQ.MD0030000.AX.C123.TXT PUR/C.ATN/SGT J DOE.PHN/4105550100.NAM/GARCIA LOPEZ, JOSE LUIS.DOB/19850312.SEX/M.POB/MX.CUS/Y.OFF/1313.ARN/012345678.MIS/SUBJECT CLAIMS US CITIZEN";
        let q = nlets::parse_iaq(text, today).expect("valid");
        let iaq = iaq_from_nlets(&q, text, None).expect("converts");
        assert_eq!(iaq.message_id, "NLETS-C123");
        assert_eq!(iaq.country_of_birth, "MX");
        assert!(iaq.citizenship_claimed);
        assert_eq!(iaq.encounter_state, "MD");
        assert!(iaq.ids.a_number.is_some());
        let no_control = text.replace(".C123.", ".");
        let q2 = nlets::parse_iaq(&no_control, today).expect("valid");
        let a = iaq_from_nlets(&q2, &no_control, None).expect("converts");
        let b = iaq_from_nlets(&q2, &no_control, None).expect("converts");
        assert_eq!(a.message_id, b.message_id, "a resend is the same message");
    }
}
