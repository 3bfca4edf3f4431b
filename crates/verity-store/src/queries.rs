//! LESC queries: intake rows, engine results, issued IARs, deliveries per recipient, review
//! events and NCIC hit confirmation requests (tables of migration 0002).
//!
//! [`QueryRow`] and [`QUERY_COLUMNS`]/[`query_from_row`] are shared by the intake/processing
//! functions (this file) and the review functions (`review.rs`).

use crate::audit::{append_audit_in_tx, PreparedAudit};
use crate::backend::{with_pool, Backend, BackendKind, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use verity_model::AuditEvent;

/// Serialises this process's SQLite write transactions *before* they ask SQLite for its write
/// lock. SQLite has one writer; a second `BEGIN IMMEDIATE` waits in SQLite's busy handler, which
/// polls with sleeps of up to 100 ms, so under concurrent load most of a request's time went to
/// sleeping. Waiting here instead is a queue with no sleeps (FIFO). One gate for the process:
/// there is normally one store per process, and a shared gate is merely conservative.
static SQLITE_WRITE_GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every column of `queries`, in the order [`query_from_row`] reads them.
pub(crate) const QUERY_COLUMNS: &str = "query_id, ori, message_id, channel, received_micros, \
     in_custody, aor, iaq_json, raw_text, state, automatic, citizenship_review, status, \
     person_key, result_json, iar_json, answered_micros, answered_by, assigned_to, \
     updated_micros, version";

/// One query as stored. JSON columns stay text here: the store does not interpret them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRow {
    pub query_id: String,
    pub ori: String,
    pub message_id: String,
    /// `json`, `nlets` or `booking`.
    pub channel: String,
    pub received_micros: i64,
    pub in_custody: bool,
    pub aor: Option<String>,
    pub iaq_json: String,
    pub raw_text: Option<String>,
    /// `received`, `in_review` or `answered`.
    pub state: String,
    pub automatic: Option<bool>,
    pub citizenship_review: bool,
    pub status: Option<String>,
    pub person_key: Option<String>,
    pub result_json: Option<String>,
    pub iar_json: Option<String>,
    pub answered_micros: Option<i64>,
    pub answered_by: Option<String>,
    pub assigned_to: Option<String>,
    pub updated_micros: i64,
    pub version: i64,
}

pub(crate) fn query_from_row(row: &impl StoreRow) -> Result<QueryRow, StoreError> {
    let op = "read a query row";
    Ok(QueryRow {
        query_id: row.text("query_id").ctx(op)?,
        ori: row.text("ori").ctx(op)?,
        message_id: row.text("message_id").ctx(op)?,
        channel: row.text("channel").ctx(op)?,
        received_micros: row.int("received_micros").ctx(op)?,
        in_custody: row.flag("in_custody").ctx(op)?,
        aor: row.opt_text("aor").ctx(op)?,
        iaq_json: row.text("iaq_json").ctx(op)?,
        raw_text: row.opt_text("raw_text").ctx(op)?,
        state: row.text("state").ctx(op)?,
        automatic: row.opt_flag("automatic").ctx(op)?,
        citizenship_review: row.flag("citizenship_review").ctx(op)?,
        status: row.opt_text("status").ctx(op)?,
        person_key: row.opt_text("person_key").ctx(op)?,
        result_json: row.opt_text("result_json").ctx(op)?,
        iar_json: row.opt_text("iar_json").ctx(op)?,
        answered_micros: row.opt_int("answered_micros").ctx(op)?,
        answered_by: row.opt_text("answered_by").ctx(op)?,
        assigned_to: row.opt_text("assigned_to").ctx(op)?,
        updated_micros: row.int("updated_micros").ctx(op)?,
        version: row.int("version").ctx(op)?,
    })
}

/// What `insert_*` did: stored the new row, or found the one an earlier request with the same
/// (ORI, message id) stored (idempotency).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome<T> {
    Inserted(T),
    Duplicate(T),
}

impl<T> InsertOutcome<T> {
    pub fn row(&self) -> &T {
        match self {
            InsertOutcome::Inserted(r) | InsertOutcome::Duplicate(r) => r,
        }
    }
    pub fn into_row(self) -> T {
        match self {
            InsertOutcome::Inserted(r) | InsertOutcome::Duplicate(r) => r,
        }
    }
    pub fn is_duplicate(&self) -> bool {
        matches!(self, InsertOutcome::Duplicate(_))
    }
}

/// What a compare-and-set update did: applied (the row after it), or refused because the row
/// moved on (another writer got there first, or the state forbids it): the current row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    Applied(QueryRow),
    Stale(QueryRow),
}

/// A query to store at intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuery {
    pub query_id: String,
    pub ori: String,
    pub message_id: String,
    pub channel: String,
    pub received_micros: i64,
    pub in_custody: bool,
    pub aor: Option<String>,
    pub iaq_json: String,
    pub raw_text: Option<String>,
}

/// The engine's result for a query (moves it out of `received`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processing {
    /// `in_review` or `answered` (normally `in_review`: answering goes through [`Store::issue_iar`]).
    pub state: String,
    pub automatic: bool,
    pub citizenship_review: bool,
    pub status: Option<String>,
    pub person_key: Option<String>,
    pub result_json: String,
    pub at_micros: i64,
    /// Who processed it (`engine`), recorded as a `processed` query event.
    pub actor: String,
}

/// One recipient's copy of an IAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// `agency` or `field_office`.
    pub recipient_kind: String,
    pub recipient: String,
    pub view_json: String,
    pub nlets_text: Option<String>,
}

/// Issuing an IAR: the full answer, who issued it, and one delivery per recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueIar {
    pub iar_json: String,
    pub answered_by: String,
    pub answered_micros: i64,
    /// Status code of the issued answer (replaces the proposed one).
    pub status: Option<String>,
    pub person_key: Option<String>,
    pub deliveries: Vec<NewDelivery>,
    /// Recorded as the `issue` query event.
    pub event_detail_json: String,
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: i64,
    pub query_id: String,
    pub recipient_kind: String,
    pub recipient: String,
    pub view_json: String,
    pub nlets_text: Option<String>,
    pub created_micros: i64,
    pub fetched_micros: Option<i64>,
}

/// One thing that happened to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryEvent {
    pub event_id: i64,
    pub query_id: String,
    pub at_micros: i64,
    pub actor: String,
    pub kind: String,
    pub detail_json: String,
}

/// An NCIC hit confirmation request to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHit {
    pub hit_id: String,
    pub ori: String,
    pub message_id: String,
    /// `U` or `R`.
    pub priority: String,
    pub received_micros: i64,
    pub deadline_micros: i64,
    pub request_json: String,
}

/// A stored hit confirmation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitRow {
    pub hit_id: String,
    pub ori: String,
    pub message_id: String,
    pub priority: String,
    pub received_micros: i64,
    pub deadline_micros: i64,
    pub request_json: String,
    /// `open`, `escalated` or `answered`.
    pub state: String,
    pub escalated_micros: Option<i64>,
    pub answered_micros: Option<i64>,
    pub answered_by: Option<String>,
    pub answer_json: Option<String>,
}

/// Hit answers measured against their deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HitCompliance {
    pub answered: i64,
    pub answered_in_time: i64,
    /// Unanswered and past the deadline at the time asked.
    pub overdue_open: i64,
}

const DELIVERY_COLUMNS: &str = "delivery_id, query_id, recipient_kind, recipient, view_json, \
     nlets_text, created_micros, fetched_micros";
const EVENT_COLUMNS: &str = "event_id, query_id, at_micros, actor, kind, detail_json";
const HIT_COLUMNS: &str = "hit_id, ori, message_id, priority, received_micros, deadline_micros, \
     request_json, state, escalated_micros, answered_micros, answered_by, answer_json";

fn delivery_from_row(row: &impl StoreRow) -> Result<Delivery, StoreError> {
    let op = "read a delivery row";
    Ok(Delivery {
        delivery_id: row.int("delivery_id").ctx(op)?,
        query_id: row.text("query_id").ctx(op)?,
        recipient_kind: row.text("recipient_kind").ctx(op)?,
        recipient: row.text("recipient").ctx(op)?,
        view_json: row.text("view_json").ctx(op)?,
        nlets_text: row.opt_text("nlets_text").ctx(op)?,
        created_micros: row.int("created_micros").ctx(op)?,
        fetched_micros: row.opt_int("fetched_micros").ctx(op)?,
    })
}

fn event_from_row(row: &impl StoreRow) -> Result<QueryEvent, StoreError> {
    let op = "read a query event row";
    Ok(QueryEvent {
        event_id: row.int("event_id").ctx(op)?,
        query_id: row.text("query_id").ctx(op)?,
        at_micros: row.int("at_micros").ctx(op)?,
        actor: row.text("actor").ctx(op)?,
        kind: row.text("kind").ctx(op)?,
        detail_json: row.text("detail_json").ctx(op)?,
    })
}

fn hit_from_row(row: &impl StoreRow) -> Result<HitRow, StoreError> {
    let op = "read a hit request row";
    Ok(HitRow {
        hit_id: row.text("hit_id").ctx(op)?,
        ori: row.text("ori").ctx(op)?,
        message_id: row.text("message_id").ctx(op)?,
        priority: row.text("priority").ctx(op)?,
        received_micros: row.int("received_micros").ctx(op)?,
        deadline_micros: row.int("deadline_micros").ctx(op)?,
        request_json: row.text("request_json").ctx(op)?,
        state: row.text("state").ctx(op)?,
        escalated_micros: row.opt_int("escalated_micros").ctx(op)?,
        answered_micros: row.opt_int("answered_micros").ctx(op)?,
        answered_by: row.opt_text("answered_by").ctx(op)?,
        answer_json: row.opt_text("answer_json").ctx(op)?,
    })
}

fn invalid(field: &str, problem: &str) -> StoreError {
    StoreError::Invalid(verity_model::FieldError::new(field, problem))
}

/// Text columns cannot hold NUL on PostgreSQL; refuse it on both backends alike.
fn check_text(field: &str, value: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Records the engine's result on `$query_id` inside transaction `$tx`, compare-and-set on
/// `$expected`, with a `processed` event; evaluates to whether it applied.
macro_rules! record_processing_in_tx {
    ($tx:ident, $query_id:expr, $expected:expr, $p:expr) => {{
        let p: &Processing = $p;
        let n = sqlx::query(
            "UPDATE queries SET state = $1, automatic = $2, citizenship_review = $3, status = $4, \
             person_key = $5, result_json = $6, updated_micros = $7, version = version + 1 \
             WHERE query_id = $8 AND version = $9 AND state <> 'answered'",
        )
        .bind(p.state.as_str())
        .bind(p.automatic)
        .bind(p.citizenship_review)
        .bind(p.status.as_deref())
        .bind(p.person_key.as_deref())
        .bind(p.result_json.as_str())
        .bind(p.at_micros)
        .bind($query_id)
        .bind($expected)
        .execute(&mut *$tx)
        .await
        .ctx("record a query result")?
        .rows_affected();
        if n == 1 {
            let detail = serde_json::json!({
                "state": p.state, "automatic": p.automatic,
                "citizenship_review": p.citizenship_review, "status": p.status,
            })
            .to_string();
            sqlx::query(
                "INSERT INTO query_events (query_id, at_micros, actor, kind, detail_json) \
                 VALUES ($1, $2, $3, 'processed', $4)",
            )
            .bind($query_id)
            .bind(p.at_micros)
            .bind(p.actor.as_str())
            .bind(detail)
            .execute(&mut *$tx)
            .await
            .ctx("record a processed event")?;
        }
        n == 1
    }};
}

/// Issues an IAR on `$query_id` inside transaction `$tx`, compare-and-set on `$expected`: the
/// answer, one delivery per recipient (the requesting agency's marked fetched at
/// `$agency_fetched`, when given, because the response that acknowledges the query carries it)
/// and an `issue` event; evaluates to whether it applied.
macro_rules! issue_iar_in_tx {
    ($tx:ident, $query_id:expr, $expected:expr, $issue:expr, $agency_fetched:expr) => {{
        let issue: &IssueIar = $issue;
        let agency_fetched: Option<(&str, i64)> = $agency_fetched;
        let n = sqlx::query(
            "UPDATE queries SET state = 'answered', iar_json = $1, answered_by = $2, \
             answered_micros = $3, status = COALESCE($4, status), \
             person_key = COALESCE($5, person_key), updated_micros = $3, version = version + 1 \
             WHERE query_id = $6 AND version = $7 AND state <> 'answered'",
        )
        .bind(issue.iar_json.as_str())
        .bind(issue.answered_by.as_str())
        .bind(issue.answered_micros)
        .bind(issue.status.as_deref())
        .bind(issue.person_key.as_deref())
        .bind($query_id)
        .bind($expected)
        .execute(&mut *$tx)
        .await
        .ctx("mark a query answered")?
        .rows_affected();
        if n == 1 {
            for d in &issue.deliveries {
                let fetched = agency_fetched
                    .filter(|(ori, _)| d.recipient_kind == "agency" && d.recipient == *ori)
                    .map(|(_, at)| at);
                sqlx::query(
                    "INSERT INTO iar_deliveries (query_id, recipient_kind, recipient, view_json, \
                     nlets_text, created_micros, fetched_micros) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind($query_id)
                .bind(d.recipient_kind.as_str())
                .bind(d.recipient.as_str())
                .bind(d.view_json.as_str())
                .bind(d.nlets_text.as_deref())
                .bind(issue.answered_micros)
                .bind(fetched)
                .execute(&mut *$tx)
                .await
                .ctx("store an IAR delivery")?;
            }
            sqlx::query(
                "INSERT INTO query_events (query_id, at_micros, actor, kind, detail_json) \
                 VALUES ($1, $2, $3, 'issue', $4)",
            )
            .bind($query_id)
            .bind(issue.answered_micros)
            .bind(issue.answered_by.as_str())
            .bind(issue.event_detail_json.as_str())
            .execute(&mut *$tx)
            .await
            .ctx("record an issue event")?;
        }
        n == 1
    }};
}

/// A query received and decided in one step (the inline path of intake): stored, its receipt
/// audited, the engine's result recorded and, for an automatic decision, its IAR issued and
/// audited. [`Store::insert_decided_query`] writes all of it in ONE transaction.
#[derive(Debug, Clone)]
pub struct DecidedIntake {
    pub query: NewQuery,
    /// The audit entry for the receipt.
    pub received: AuditEvent,
    /// The engine's result (state `in_review`; the issue below answers it).
    pub processing: Processing,
    /// For an automatic decision: the IAR and the audit entry for its issue.
    pub issue: Option<(IssueIar, AuditEvent)>,
}

fn check_query_text(q: &NewQuery) -> Result<(), StoreError> {
    for (field, v) in [
        ("query_id", q.query_id.as_str()),
        ("ori", q.ori.as_str()),
        ("message_id", q.message_id.as_str()),
        ("channel", q.channel.as_str()),
        ("iaq_json", q.iaq_json.as_str()),
        ("raw_text", q.raw_text.as_deref().unwrap_or("")),
        ("aor", q.aor.as_deref().unwrap_or("")),
    ] {
        check_text(field, v)?;
    }
    if q.query_id.is_empty() || q.message_id.is_empty() {
        return Err(invalid("query_id/message_id", "must be non-empty"));
    }
    Ok(())
}

fn check_processing(p: &Processing) -> Result<(), StoreError> {
    if !QUERY_STATES.contains(&p.state.as_str()) || p.state == "received" {
        return Err(invalid("state", "must be in_review or answered"));
    }
    check_text("result_json", &p.result_json)
}

fn check_issue(issue: &IssueIar) -> Result<(), StoreError> {
    check_text("iar_json", &issue.iar_json)?;
    for d in &issue.deliveries {
        check_text("view_json", &d.view_json)?;
        check_text("nlets_text", d.nlets_text.as_deref().unwrap_or(""))?;
        if !matches!(d.recipient_kind.as_str(), "agency" | "field_office") {
            return Err(invalid("recipient_kind", "must be agency or field_office"));
        }
    }
    Ok(())
}

const QUERY_STATES: &[&str] = &["received", "in_review", "answered"];

/// Where the time of one [`Store::insert_decided_query_timed`] went, phase by phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteTimings {
    /// Checking and serialising the rows (no lock held).
    pub prepare: std::time::Duration,
    /// Waiting for this process's SQLite write gate (other writers ahead; zero on PostgreSQL).
    pub gate_wait: std::time::Duration,
    /// Starting the write transaction (a pool connection, SQLite's write lock).
    pub begin: std::time::Duration,
    /// The INSERT/UPDATE statements inside the transaction.
    pub statements: std::time::Duration,
    /// The commit (on SQLite also any WAL checkpoint it triggers).
    pub commit: std::time::Duration,
    /// Reading the stored row back (only for a repeat: a new row is known without reading).
    pub reread: std::time::Duration,
    /// How many intakes shared the transaction (group commit; 1 when alone).
    pub group: usize,
}

/// How busy the store's connection pool is: connections open and idle now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolLoad {
    pub open: u32,
    pub idle: usize,
}

/// A [`DecidedIntake`] checked and with its audit events serialised, ready to write.
pub(crate) struct PreparedIntake {
    intake: DecidedIntake,
    received: PreparedAudit,
    issue_audit: Option<PreparedAudit>,
}

impl PreparedIntake {
    fn new(d: &DecidedIntake) -> Result<PreparedIntake, StoreError> {
        check_query_text(&d.query)?;
        check_processing(&d.processing)?;
        let issue_audit = match &d.issue {
            Some((issue, event)) => {
                check_issue(issue)?;
                Some(PreparedAudit::new(event.clone())?)
            }
            None => None,
        };
        Ok(PreparedIntake {
            received: PreparedAudit::new(d.received.clone())?,
            issue_audit,
            intake: d.clone(),
        })
    }

    /// The `queries` row [`write_intakes`] leaves for this intake when it inserts it: the
    /// receipt (version 0), the engine's result (version 1) and, when issued, the answer
    /// (version 2), as the three UPDATE/INSERT statements write them.
    fn stored_row(&self) -> QueryRow {
        let d = &self.intake;
        let q = &d.query;
        let p = &d.processing;
        let issue = d.issue.as_ref().map(|(i, _)| i);
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
            state: if issue.is_some() {
                "answered".into()
            } else {
                p.state.clone()
            },
            automatic: Some(p.automatic),
            citizenship_review: p.citizenship_review,
            status: issue
                .and_then(|i| i.status.clone())
                .or_else(|| p.status.clone()),
            person_key: issue
                .and_then(|i| i.person_key.clone())
                .or_else(|| p.person_key.clone()),
            result_json: Some(p.result_json.clone()),
            iar_json: issue.map(|i| i.iar_json.clone()),
            answered_micros: issue.map(|i| i.answered_micros),
            answered_by: issue.map(|i| i.answered_by.clone()),
            assigned_to: None,
            updated_micros: issue.map_or(p.at_micros, |i| i.answered_micros),
            version: if issue.is_some() { 2 } else { 1 },
        }
    }
}

/// Writes `intakes` in ONE write transaction, in order, and commits; for each, whether it was
/// inserted (false: a repeat of a stored (ORI, message id), nothing written for it). Adds the
/// begin, statement and commit times to `timings`. The caller holds the SQLite write gate.
async fn write_intakes(
    store: &Store,
    intakes: &[&PreparedIntake],
    timings: &mut WriteTimings,
) -> Result<Vec<bool>, StoreError> {
    let mut lap = std::time::Instant::now();
    let mut mark = |slot: &mut std::time::Duration| {
        let now = std::time::Instant::now();
        *slot += now - lap;
        lap = now;
    };
    let mut inserted = Vec::with_capacity(intakes.len());
    with_pool!(store, pool => {
        let mut tx = pool.begin_write().await.ctx("start storing a decided query")?;
        mark(&mut timings.begin);
        for p in intakes {
            let q = &p.intake.query;
            let n = sqlx::query(INSERT_QUERY_SQL)
                .bind(q.query_id.as_str())
                .bind(q.ori.as_str())
                .bind(q.message_id.as_str())
                .bind(q.channel.as_str())
                .bind(q.received_micros)
                .bind(q.in_custody)
                .bind(q.aor.as_deref())
                .bind(q.iaq_json.as_str())
                .bind(q.raw_text.as_deref())
                .bind(false)
                .bind(q.received_micros)
                .execute(&mut *tx)
                .await
                .ctx("store a query")?
                .rows_affected();
            if n == 1 {
                append_audit_in_tx!(tx, &p.received);
                let query_id = q.query_id.as_str();
                let processed = record_processing_in_tx!(tx, query_id, 0i64, &p.intake.processing);
                if let (true, Some((issue, _)), Some(audit)) =
                    (processed, &p.intake.issue, &p.issue_audit)
                {
                    let fetched = Some((q.ori.as_str(), issue.answered_micros));
                    if issue_iar_in_tx!(tx, query_id, 1i64, issue, fetched) {
                        append_audit_in_tx!(tx, audit);
                    }
                }
            }
            inserted.push(n == 1);
        }
        mark(&mut timings.statements);
        tx.commit().await.ctx("commit decided queries")?;
        mark(&mut timings.commit);
    });
    Ok(inserted)
}

/// Most intakes one group commit writes.
const MAX_GROUP: usize = 64;

/// A decided intake waiting for the SQLite write gate. Whoever gets the gate next takes every
/// waiting intake of the same store (up to [`MAX_GROUP`]) and writes them in one transaction,
/// in a task of its own (a caller that goes away cannot cut a commit short), then tells each
/// its result: under load, one begin/commit and one wait for a pool connection serve many
/// intakes instead of each queueing for its own.
struct IntakeJob {
    /// The store's pool (see [`pool_key`]).
    pool: usize,
    queued_at: std::time::Instant,
    intake: std::sync::Arc<PreparedIntake>,
    done: tokio::sync::oneshot::Sender<Result<(bool, WriteTimings), StoreError>>,
}

/// Intakes waiting for a group commit, of every store in the process.
static WAITING_INTAKES: std::sync::Mutex<Vec<IntakeJob>> = std::sync::Mutex::new(Vec::new());

/// Which SQLite database a pool writes to: clones of a pool share its options.
fn pool_key(pool: &sqlx::SqlitePool) -> usize {
    std::sync::Arc::as_ptr(&pool.connect_options()) as usize
}

fn waiting_intakes() -> std::sync::MutexGuard<'static, Vec<IntakeJob>> {
    // The list stays consistent even if a holder panicked: pushes and drains are single calls.
    WAITING_INTAKES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Stores `intake` through a group commit (see [`IntakeJob`]): whether it was inserted, and the
/// timings (gate wait = from joining the queue to the start of its transaction).
async fn group_write(
    store: &Store,
    pool: &sqlx::SqlitePool,
    intake: std::sync::Arc<PreparedIntake>,
) -> Result<(bool, WriteTimings), StoreError> {
    let key = pool_key(pool);
    let (done, mut result) = tokio::sync::oneshot::channel();
    waiting_intakes().push(IntakeJob {
        pool: key,
        queued_at: std::time::Instant::now(),
        intake,
        done,
    });
    loop {
        tokio::select! {
            biased;
            r = &mut result => {
                return r.map_err(|_| StoreError::Database {
                    op: "store a decided query (the group commit stopped)",
                    source: sqlx::Error::WorkerCrashed,
                })?;
            }
            gate = SQLITE_WRITE_GATE.lock() => {
                let jobs: Vec<IntakeJob> = {
                    let mut waiting = waiting_intakes();
                    let mut taken = Vec::new();
                    let mut i = 0;
                    while i < waiting.len() && taken.len() < MAX_GROUP {
                        if waiting[i].pool == key {
                            taken.push(waiting.remove(i));
                        } else {
                            i += 1;
                        }
                    }
                    taken
                };
                if !jobs.is_empty() {
                    let store = store.clone();
                    tokio::spawn(async move {
                        commit_group(&store, jobs).await;
                        drop(gate);
                    });
                }
                // Else a group that included ours finished before we got the gate: its result
                // is waiting in `result`.
            }
        }
    }
}

/// Writes a group in one transaction and tells each intake its result. When the group's
/// transaction fails, each intake is retried alone, so one bad intake fails only itself.
async fn commit_group(store: &Store, jobs: Vec<IntakeJob>) {
    let began = std::time::Instant::now();
    let mut timings = WriteTimings {
        group: jobs.len(),
        ..WriteTimings::default()
    };
    let intakes: Vec<&PreparedIntake> = jobs.iter().map(|j| j.intake.as_ref()).collect();
    let group = write_intakes(store, &intakes, &mut timings).await;
    let waited = |job: &IntakeJob, t: WriteTimings| WriteTimings {
        gate_wait: began.saturating_duration_since(job.queued_at),
        ..t
    };
    match group {
        Ok(inserted) => {
            for (job, inserted) in jobs.into_iter().zip(inserted) {
                let t = waited(&job, timings);
                // A receiver that went away (its request was dropped) needs no answer.
                let _ = job.done.send(Ok((inserted, t)));
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.done.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(intakes = jobs.len(), error = %e, "group commit failed; writing its intakes one by one");
            for job in jobs {
                let mut t = WriteTimings {
                    group: 1,
                    ..WriteTimings::default()
                };
                let r = write_intakes(store, &[job.intake.as_ref()], &mut t)
                    .await
                    .map(|v| (v.first().copied().unwrap_or(false), waited(&job, t)));
                let _ = job.done.send(r);
            }
        }
    }
}

/// Stores a received query, or nothing when (ori, message id) is already stored: one text for
/// the step-by-step intake and the single-transaction one.
const INSERT_QUERY_SQL: &str = "INSERT INTO queries (query_id, ori, message_id, channel, \
     received_micros, in_custody, aor, iaq_json, raw_text, state, citizenship_review, \
     updated_micros, version) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received', $10, $11, 0) \
     ON CONFLICT (ori, message_id) DO NOTHING";

impl Store {
    /// Connections open and idle in the pool now (for the intake's slow-request log).
    pub fn pool_load(&self) -> PoolLoad {
        with_pool!(self, pool => PoolLoad { open: pool.size(), idle: pool.num_idle() })
    }

    /// Holds this process's SQLite write gate (see [`SQLITE_WRITE_GATE`]) until dropped;
    /// nothing on PostgreSQL, whose writers wait on row locks without polling.
    pub(crate) async fn write_gate(&self) -> Option<tokio::sync::MutexGuard<'static, ()>> {
        match self.kind() {
            BackendKind::Sqlite => Some(SQLITE_WRITE_GATE.lock().await),
            BackendKind::Postgres => None,
        }
    }

    /// Stores a query that was decided before it was stored, in ONE write transaction: the
    /// query, the audit entry for its receipt, the engine's result with its `processed` event
    /// and, when `d.issue` is given, the IAR with one delivery per recipient (the requesting
    /// agency's marked fetched: the acknowledgement carries it), its `issue` event and its
    /// audit entry. Durable when this returns, so the caller may acknowledge. A repeat of an
    /// (ORI, message id) stores nothing and returns the first query as
    /// [`InsertOutcome::Duplicate`].
    ///
    /// On SQLite, intakes that arrive while another write holds the write gate are committed
    /// together (group commit, see [`IntakeJob`]): each is still durable before this returns,
    /// and each keeps its own all-or-nothing result.
    pub async fn insert_decided_query(
        &self,
        d: &DecidedIntake,
    ) -> Result<InsertOutcome<QueryRow>, StoreError> {
        self.insert_decided_query_timed(d).await.map(|(o, _)| o)
    }

    /// [`Store::insert_decided_query`], also saying where its time went (waiting for the write
    /// gate, the statements, the commit, reading the row back), for the intake's slow-request
    /// log and phase histograms.
    pub async fn insert_decided_query_timed(
        &self,
        d: &DecidedIntake,
    ) -> Result<(InsertOutcome<QueryRow>, WriteTimings), StoreError> {
        let started = std::time::Instant::now();
        let prepared = std::sync::Arc::new(PreparedIntake::new(d)?);
        let prepare = started.elapsed();
        let (inserted, mut timings) = match &self.pools {
            crate::backend::Pools::Sqlite(pool) => {
                group_write(self, pool, std::sync::Arc::clone(&prepared)).await?
            }
            crate::backend::Pools::Postgres(_) => {
                // No process-wide writer to queue for: PostgreSQL's writers wait on row locks.
                let mut timings = WriteTimings {
                    group: 1,
                    ..WriteTimings::default()
                };
                let done = write_intakes(self, &[prepared.as_ref()], &mut timings).await?;
                (done.first().copied().unwrap_or(false), timings)
            }
        };
        timings.prepare = prepare;
        let reread = std::time::Instant::now();
        let outcome = if inserted {
            // Exactly what the transaction stored (a unit test compares it with the row read
            // back), so the acknowledgement needs no second read.
            InsertOutcome::Inserted(prepared.stored_row())
        } else {
            let q = &d.query;
            let existing = self
                .get_query_by_message(&q.ori, &q.message_id)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    what: "query",
                    key: format!("{}/{}", q.ori, q.message_id),
                })?;
            InsertOutcome::Duplicate(existing)
        };
        timings.reread = reread.elapsed();
        Ok((outcome, timings))
    }

    /// Stores a query and commits before returning (durable before the caller acknowledges
    /// it). A second query with the same (ORI, message id) stores nothing and returns the
    /// first one as [`InsertOutcome::Duplicate`].
    pub async fn insert_query(&self, q: &NewQuery) -> Result<InsertOutcome<QueryRow>, StoreError> {
        check_query_text(q)?;
        let gate = self.write_gate().await;
        let inserted = with_pool!(self, pool => {
            sqlx::query(
                INSERT_QUERY_SQL,
            )
            .bind(q.query_id.as_str())
            .bind(q.ori.as_str())
            .bind(q.message_id.as_str())
            .bind(q.channel.as_str())
            .bind(q.received_micros)
            .bind(q.in_custody)
            .bind(q.aor.as_deref())
            .bind(q.iaq_json.as_str())
            .bind(q.raw_text.as_deref())
            .bind(false)
            .bind(q.received_micros)
            .execute(pool)
            .await
            .ctx("store a query")?
            .rows_affected()
        });
        drop(gate);
        let existing = self
            .get_query_by_message(&q.ori, &q.message_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "query",
                key: format!("{}/{}", q.ori, q.message_id),
            })?;
        Ok(if inserted == 1 {
            InsertOutcome::Inserted(existing)
        } else {
            InsertOutcome::Duplicate(existing)
        })
    }

    pub async fn get_query(&self, query_id: &str) -> Result<Option<QueryRow>, StoreError> {
        let sql = format!("SELECT {QUERY_COLUMNS} FROM queries WHERE query_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(query_id)
                .fetch_optional(pool)
                .await
                .ctx("read a query")?;
            row.as_ref().map(query_from_row).transpose()
        })
    }

    /// The query an agency sent with this message id.
    pub async fn get_query_by_message(
        &self,
        ori: &str,
        message_id: &str,
    ) -> Result<Option<QueryRow>, StoreError> {
        let sql = format!("SELECT {QUERY_COLUMNS} FROM queries WHERE ori = $1 AND message_id = $2");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(ori)
                .bind(message_id)
                .fetch_optional(pool)
                .await
                .ctx("read a query by message id")?;
            row.as_ref().map(query_from_row).transpose()
        })
    }

    /// Records the engine's result, compare-and-set on `expected_version`, and a `processed`
    /// event, in one transaction. An answered query is never reprocessed (Stale).
    pub async fn record_processing(
        &self,
        query_id: &str,
        expected_version: i64,
        p: &Processing,
    ) -> Result<CasOutcome, StoreError> {
        check_processing(p)?;
        let gate = self.write_gate().await;
        let applied = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start recording a result")?;
            let applied = record_processing_in_tx!(tx, query_id, expected_version, p);
            tx.commit().await.ctx("commit a query result")?;
            applied
        });
        drop(gate);
        self.cas_result(query_id, applied).await
    }

    async fn cas_result(&self, query_id: &str, applied: bool) -> Result<CasOutcome, StoreError> {
        let row = self
            .get_query(query_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "query",
                key: query_id.to_string(),
            })?;
        Ok(if applied {
            CasOutcome::Applied(row)
        } else {
            CasOutcome::Stale(row)
        })
    }

    /// Issues the IAR: stores it, marks the query answered, writes one delivery per recipient
    /// and an `issue` event, all in one transaction, compare-and-set on `expected_version`.
    /// Of two concurrent issuers exactly one succeeds; the other gets Stale. An answered query
    /// is never issued again.
    pub async fn issue_iar(
        &self,
        query_id: &str,
        expected_version: i64,
        issue: &IssueIar,
    ) -> Result<CasOutcome, StoreError> {
        check_issue(issue)?;
        let gate = self.write_gate().await;
        let applied = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start issuing an IAR")?;
            let applied = issue_iar_in_tx!(tx, query_id, expected_version, issue, None);
            tx.commit().await.ctx("commit an IAR issue")?;
            applied
        });
        drop(gate);
        self.cas_result(query_id, applied).await
    }

    /// Deliveries for one recipient with `delivery_id > after_id`, oldest first.
    pub async fn deliveries_for(
        &self,
        recipient_kind: &str,
        recipient: &str,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM iar_deliveries WHERE recipient_kind = $1 \
             AND recipient = $2 AND delivery_id > $3 ORDER BY delivery_id LIMIT $4"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(recipient_kind)
                .bind(recipient)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("list deliveries")?;
            rows.iter().map(delivery_from_row).collect()
        })
    }

    /// Every delivery of one query (agency and field office), in delivery order.
    pub async fn deliveries_of_query(&self, query_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM iar_deliveries WHERE query_id = $1 ORDER BY delivery_id"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(query_id)
                .fetch_all(pool)
                .await
                .ctx("list a query's deliveries")?;
            rows.iter().map(delivery_from_row).collect()
        })
    }

    /// Marks a delivery fetched (the first fetch time stays). Returns whether it exists.
    pub async fn mark_delivery_fetched(
        &self,
        delivery_id: i64,
        at_micros: i64,
    ) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        with_pool!(self, pool => {
            let n = sqlx::query(
                "UPDATE iar_deliveries SET fetched_micros = COALESCE(fetched_micros, $1) \
                 WHERE delivery_id = $2",
            )
            .bind(at_micros)
            .bind(delivery_id)
            .execute(pool)
            .await
            .ctx("mark a delivery fetched")?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Appends an event to a query's history; returns its id.
    pub async fn append_query_event(
        &self,
        query_id: &str,
        actor: &str,
        kind: &str,
        detail_json: &str,
        at_micros: i64,
    ) -> Result<i64, StoreError> {
        check_text("detail_json", detail_json)?;
        let _gate = self.write_gate().await;
        with_pool!(self, pool => {
            let r = sqlx::query_scalar::<_, i64>(
                "INSERT INTO query_events (query_id, at_micros, actor, kind, detail_json) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING event_id",
            )
            .bind(query_id)
            .bind(at_micros)
            .bind(actor)
            .bind(kind)
            .bind(detail_json)
            .fetch_one(pool)
            .await;
            match r {
                Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
                    Err(StoreError::NotFound { what: "query", key: query_id.to_string() })
                }
                other => other.ctx("append a query event"),
            }
        })
    }

    /// A query's events in order.
    pub async fn query_events(&self, query_id: &str) -> Result<Vec<QueryEvent>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM query_events WHERE query_id = $1 ORDER BY event_id"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(query_id)
                .fetch_all(pool)
                .await
                .ctx("list query events")?;
            rows.iter().map(event_from_row).collect()
        })
    }

    /// Queries in `state`, oldest first (recovery processes every `received` one).
    pub async fn list_queries_in_state(
        &self,
        state: &str,
        limit: u32,
    ) -> Result<Vec<QueryRow>, StoreError> {
        let sql = format!(
            "SELECT {QUERY_COLUMNS} FROM queries WHERE state = $1 \
             ORDER BY received_micros, query_id LIMIT $2"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(state)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("list queries by state")?;
            rows.iter().map(query_from_row).collect()
        })
    }

    /// Number of queries per state (for the queue depth gauge).
    pub async fn count_queries_by_state(&self) -> Result<Vec<(String, i64)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM queries GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await
                .ctx("count queries by state")?;
            rows.iter()
                .map(|r| Ok((r.text("state").ctx("read query counts")?, r.int("n").ctx("read query counts")?)))
                .collect()
        })
    }

    /// Queries waiting for review past their SLA: in custody received before
    /// `custody_cutoff_micros`, others before `other_cutoff_micros`.
    pub async fn count_review_breaches(
        &self,
        custody_cutoff_micros: i64,
        other_cutoff_micros: i64,
    ) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM queries WHERE state = 'in_review' AND \
                 ((in_custody = $1 AND received_micros < $2) OR (in_custody = $3 AND received_micros < $4))",
            )
            .bind(true)
            .bind(custody_cutoff_micros)
            .bind(false)
            .bind(other_cutoff_micros)
            .fetch_one(pool)
            .await
            .ctx("count review SLA breaches")
        })
    }

    /// Stores a hit confirmation request; idempotent by (ORI, message id) like queries.
    pub async fn insert_hit(&self, h: &NewHit) -> Result<InsertOutcome<HitRow>, StoreError> {
        for (field, v) in [
            ("hit_id", h.hit_id.as_str()),
            ("ori", h.ori.as_str()),
            ("message_id", h.message_id.as_str()),
            ("request_json", h.request_json.as_str()),
        ] {
            check_text(field, v)?;
        }
        if !matches!(h.priority.as_str(), "U" | "R") {
            return Err(invalid("priority", "must be U or R"));
        }
        let gate = self.write_gate().await;
        let inserted = with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO hit_requests (hit_id, ori, message_id, priority, received_micros, \
                 deadline_micros, request_json, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open') \
                 ON CONFLICT (ori, message_id) DO NOTHING",
            )
            .bind(h.hit_id.as_str())
            .bind(h.ori.as_str())
            .bind(h.message_id.as_str())
            .bind(h.priority.as_str())
            .bind(h.received_micros)
            .bind(h.deadline_micros)
            .bind(h.request_json.as_str())
            .execute(pool)
            .await
            .ctx("store a hit request")?
            .rows_affected()
        });
        drop(gate);
        let sql =
            format!("SELECT {HIT_COLUMNS} FROM hit_requests WHERE ori = $1 AND message_id = $2");
        let row = with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(h.ori.as_str())
                .bind(h.message_id.as_str())
                .fetch_one(pool)
                .await
                .ctx("read a hit request by message id")?;
            hit_from_row(&row)?
        });
        Ok(if inserted == 1 {
            InsertOutcome::Inserted(row)
        } else {
            InsertOutcome::Duplicate(row)
        })
    }

    pub async fn get_hit(&self, hit_id: &str) -> Result<Option<HitRow>, StoreError> {
        let sql = format!("SELECT {HIT_COLUMNS} FROM hit_requests WHERE hit_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(hit_id)
                .fetch_optional(pool)
                .await
                .ctx("read a hit request")?;
            row.as_ref().map(hit_from_row).transpose()
        })
    }

    /// Unanswered hit requests (open or escalated), nearest deadline first.
    pub async fn list_open_hits(&self, limit: u32) -> Result<Vec<HitRow>, StoreError> {
        let sql = format!(
            "SELECT {HIT_COLUMNS} FROM hit_requests WHERE state <> 'answered' \
             ORDER BY deadline_micros, hit_id LIMIT $1"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("list open hit requests")?;
            rows.iter().map(hit_from_row).collect()
        })
    }

    /// Marks an open request escalated. Returns false when it was not open (already
    /// escalated, answered, or unknown).
    pub async fn escalate_hit(&self, hit_id: &str, at_micros: i64) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        with_pool!(self, pool => {
            let n = sqlx::query(
                "UPDATE hit_requests SET state = 'escalated', escalated_micros = $1 \
                 WHERE hit_id = $2 AND state = 'open'",
            )
            .bind(at_micros)
            .bind(hit_id)
            .execute(pool)
            .await
            .ctx("escalate a hit request")?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Answers a request once. Returns the row after, or `Err(current)` when it was already
    /// answered; [`StoreError::NotFound`] when unknown.
    pub async fn answer_hit(
        &self,
        hit_id: &str,
        answered_by: &str,
        at_micros: i64,
        answer_json: &str,
    ) -> Result<Result<HitRow, HitRow>, StoreError> {
        check_text("answer_json", answer_json)?;
        let gate = self.write_gate().await;
        let n = with_pool!(self, pool => {
            sqlx::query(
                "UPDATE hit_requests SET state = 'answered', answered_by = $1, answered_micros = $2, \
                 answer_json = $3 WHERE hit_id = $4 AND state <> 'answered'",
            )
            .bind(answered_by)
            .bind(at_micros)
            .bind(answer_json)
            .bind(hit_id)
            .execute(pool)
            .await
            .ctx("answer a hit request")?
            .rows_affected()
        });
        drop(gate);
        let row = self
            .get_hit(hit_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "hit request",
                key: hit_id.to_string(),
            })?;
        Ok(if n == 1 { Ok(row) } else { Err(row) })
    }

    /// Answers in time, answers, and open requests past their deadline at `now_micros`.
    pub async fn hit_compliance(&self, now_micros: i64) -> Result<HitCompliance, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT \
                 COALESCE(SUM(CASE WHEN state = 'answered' THEN 1 ELSE 0 END), 0) AS answered, \
                 COALESCE(SUM(CASE WHEN state = 'answered' AND answered_micros <= deadline_micros THEN 1 ELSE 0 END), 0) AS in_time, \
                 COALESCE(SUM(CASE WHEN state <> 'answered' AND deadline_micros < $1 THEN 1 ELSE 0 END), 0) AS overdue \
                 FROM hit_requests",
            )
            .bind(now_micros)
            .fetch_one(pool)
            .await
            .ctx("measure hit compliance")?;
            let op = "read hit compliance";
            Ok(HitCompliance {
                answered: row.int("answered").ctx(op)?,
                answered_in_time: row.int("in_time").ctx(op)?,
                overdue_open: row.int("overdue").ctx(op)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use verity_model::{AuditAction, Purpose};

    fn event(decision: &str) -> AuditEvent {
        AuditEvent {
            actor: "agency:MD0030000".into(),
            agency: None,
            purpose: Purpose::StatusDetermination,
            action: AuditAction::Decision {
                subject: "query".into(),
                decision: decision.into(),
                reason: "test".into(),
            },
        }
    }

    fn intake(id: &str, msg: &str, automatic: bool) -> DecidedIntake {
        DecidedIntake {
            query: NewQuery {
                query_id: id.into(),
                ori: "MD0030000".into(),
                message_id: msg.into(),
                channel: "json".into(),
                received_micros: 1_000,
                in_custody: true,
                aor: Some("Baltimore".into()),
                iaq_json: "{}".into(),
                raw_text: Some("IAQ.".into()),
            },
            received: event("query received"),
            processing: Processing {
                state: "in_review".into(),
                automatic,
                citizenship_review: !automatic,
                status: Some("undetermined".into()),
                person_key: None,
                result_json: "{\"candidates\":[]}".into(),
                at_micros: 2_000,
                actor: "engine".into(),
            },
            issue: automatic.then(|| {
                (
                    IssueIar {
                        iar_json: "{}".into(),
                        answered_by: "automatic".into(),
                        answered_micros: 3_000,
                        status: Some("lpr".into()),
                        person_key: Some("P1".into()),
                        deliveries: vec![NewDelivery {
                            recipient_kind: "agency".into(),
                            recipient: "MD0030000".into(),
                            view_json: "{}".into(),
                            nlets_text: None,
                        }],
                        event_detail_json: "{}".into(),
                    },
                    event("IAR issued: lpr"),
                )
            }),
        }
    }

    async fn file_store(name: &str) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "verity-queries-{name}-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        let store = Store::open_data_dir(&dir).await.unwrap();
        (store, dir)
    }

    fn uuid_like() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    /// The acknowledgement's row is built without reading it back: it must be the stored row.
    #[tokio::test]
    async fn inserted_row_is_the_stored_row() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for (id, automatic) in [("Q1", true), ("Q2", false)] {
            let d = intake(id, &format!("m-{id}"), automatic);
            let InsertOutcome::Inserted(row) = store.insert_decided_query(&d).await.unwrap() else {
                panic!("a new message id inserts")
            };
            assert_eq!(Some(row), store.get_query(id).await.unwrap(), "{id}");
        }
        // A repeat is read back from the store.
        let again = store
            .insert_decided_query(&intake("Q3", "m-Q1", false))
            .await
            .unwrap();
        assert!(again.is_duplicate());
        assert_eq!(again.row().query_id, "Q1");
    }

    /// Concurrent intakes on SQLite share transactions, and each gets its own outcome.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_intakes_commit_in_groups_with_their_own_outcomes() {
        let (store, dir) = file_store("group").await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                // Pairs share a message id: one stores, the other is a repeat.
                let d = intake(&format!("Q{i}"), &format!("m-{}", i / 2), i % 3 == 0);
                store.insert_decided_query_timed(&d).await.unwrap()
            }));
        }
        let mut inserted = 0;
        for t in tasks {
            let (outcome, timings) = t.await.unwrap();
            assert!(timings.group >= 1);
            if let InsertOutcome::Inserted(row) = outcome {
                inserted += 1;
                assert_eq!(
                    Some(row.clone()),
                    store.get_query(&row.query_id).await.unwrap()
                );
            }
        }
        assert_eq!(inserted, 20);
        assert_eq!(
            store.verify_audit().await.unwrap(),
            store.audit_head().await.unwrap().0
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// One intake the database refuses fails alone: the rest of its group is stored.
    #[tokio::test]
    async fn a_failing_intake_does_not_fail_its_group() {
        let (store, dir) = file_store("fail").await;
        store
            .insert_decided_query(&intake("Q1", "m-1", true))
            .await
            .unwrap();
        let key = match &store.pools {
            crate::backend::Pools::Sqlite(pool) => pool_key(pool),
            crate::backend::Pools::Postgres(_) => unreachable!("a SQLite store"),
        };
        // The same query id under a new message id breaks the primary key.
        let batch = [
            intake("Q2", "m-2", true),
            intake("Q1", "m-other", false),
            intake("Q3", "m-3", false),
        ];
        let mut jobs = Vec::new();
        let mut results = Vec::new();
        for d in &batch {
            let (done, rx) = tokio::sync::oneshot::channel();
            jobs.push(IntakeJob {
                pool: key,
                queued_at: std::time::Instant::now(),
                intake: std::sync::Arc::new(PreparedIntake::new(d).unwrap()),
                done,
            });
            results.push(rx);
        }
        commit_group(&store, jobs).await;
        let mut outcomes = Vec::new();
        for rx in results {
            outcomes.push(rx.await.unwrap().map(|(inserted, _)| inserted).ok());
        }
        assert_eq!(outcomes, [Some(true), None, Some(true)]);
        assert!(store.get_query("Q2").await.unwrap().is_some());
        assert!(store.get_query("Q3").await.unwrap().is_some());
        assert!(store
            .get_query_by_message("MD0030000", "m-other")
            .await
            .unwrap()
            .is_none());
        assert_eq!(
            store.verify_audit().await.unwrap(),
            store.audit_head().await.unwrap().0
        );
        store.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
