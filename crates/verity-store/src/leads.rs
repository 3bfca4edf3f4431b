//! NCATC: lead runs, leads, parked persons, field dispositions and the read-only aggregates of
//! the analytics dashboard (tables of migration 0004, plus reads of 0002 and 0003).
//!
//! The store does not decide anything about leads: the workflow hands it batches of outcomes
//! ([`LeadBatch`]) and each batch commits together with the run's resume cursor, so an
//! interrupted run restarts exactly after the last committed person.
//!
//! **Sweep keys** (the citizenship and status sweeps of lead runs) are stored as 64-bit hashes
//! since migration 0007 ([`sweep_key_hash`]; tables `lead_citizen_hashes`,
//! `lead_status_hashes`). What a lead run should call:
//! - a full run writing every record's keys: [`Store::add_citizen_key_hashes`] and
//!   [`Store::add_status_key_hashes`] with keys hashed by [`sweep_key_hash`] on its own worker
//!   threads, rows sorted (the text-key [`Store::add_citizen_keys`] and
//!   [`Store::add_status_keys`] still work and hash inside, on the calling task);
//! - an incremental run: the same to add the changed records' keys, then
//!   [`Store::citizen_hashes_among`] and [`Store::status_hash_holders`] to look keys up (the
//!   text-key [`Store::citizen_keys_among`] and [`Store::status_key_holders`] still work);
//!   [`Store::revs_by_identifiers`] and [`Store::record_heads_by_revs`] follow identifiers
//!   without reading whole records;
//! - before either relies on the tables: [`Store::move_text_sweep_keys`] (hashes rows a store
//!   written before 0007 left in the text tables; instant when there are none).

use crate::backend::{with_pool, Backend, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use crate::records::IdKind;
use crate::scan::{placeholders, value_rows, LeadFacets, RawRecord, VALUES_PER_QUERY};
use sqlx::Row;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use verity_model::record::RecordBody;
use verity_model::{FieldError, Identity, RecordSystem, SourceRecord};

/// The stored 64-bit hash of a sweep key (migration 0007): FNV-1a over the key's bytes, then
/// MurmurHash3's 64-bit finalizer (FNV alone mixes the last bytes poorly). Stored on disk: it
/// must never change. Two keys sharing a hash (about one pair in 10^19 per look-up) can only
/// make a sweep match that is not there, which parks a lead or sends it to citizenship
/// review: never a lead that should not be.
pub fn sweep_key_hash(key: &str) -> i64 {
    let mut h = SweepKeyHasher::new();
    h.piece(key);
    h.finish()
}

/// [`sweep_key_hash`] of a key given in pieces: the hash of their concatenation, without
/// building it (FNV-1a reads the bytes in order, so pieces hash as their concatenation does).
pub(crate) struct SweepKeyHasher(u64);

impl SweepKeyHasher {
    pub(crate) fn new() -> SweepKeyHasher {
        SweepKeyHasher(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn piece(&mut self, piece: &str) {
        for &b in piece.as_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(self) -> i64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        i64::from_ne_bytes(h.to_ne_bytes())
    }
}

/// What an incremental lead run needs of a record to link it into its person without reading
/// the whole record: its identifier columns (canonical text, as stored), and its JSON only
/// when it is a fingerprint enrollment, whose body FIN links too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHead {
    pub rev: i64,
    pub record_id: String,
    /// The record system's code (`verity_model::RecordSystem::code`).
    pub system: String,
    pub a_number: Option<String>,
    pub fin: Option<String>,
    pub fbi_number: Option<String>,
    pub ssn: Option<String>,
    pub passport: Option<String>,
    pub state_id: Option<String>,
    /// The whole record's JSON, for biometrics records only.
    pub biometrics_json: Option<String>,
}

/// What links a record into its person, read without the record's JSON
/// ([`Store::record_links_by_revs`]): its identifier columns (canonical text, as stored) and,
/// for a fingerprint enrollment, the FIN in its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLinks {
    pub rev: i64,
    pub record_id: String,
    /// The record system's code (`verity_model::RecordSystem::code`).
    pub system: String,
    pub a_number: Option<String>,
    pub fin: Option<String>,
    pub fbi_number: Option<String>,
    pub ssn: Option<String>,
    pub passport: Option<String>,
    pub state_id: Option<String>,
    /// A fingerprint enrollment's body FIN (None for other systems).
    pub body_fin: Option<String>,
    /// What a lead rule may rest on in the record: [`LeadFacets::of`] the stored record, as
    /// its digest holds them.
    pub facets: LeadFacets,
}

/// The systems whose records' lead facets may be set ([`LeadFacets::of`]): only their bodies
/// are read for [`RecordLinks::facets`].
const FACETED_SYSTEMS: [RecordSystem; 4] = [
    RecordSystem::Enforcement,
    RecordSystem::Court,
    RecordSystem::Travel,
    RecordSystem::Criminal,
];

/// Revs per statement of the reads that return their rows packed in one value: the list is
/// one JSON parameter, so only the size of the returned value bounds it (some 20 MB of record
/// JSON at 20,000 records).
pub(crate) const REVS_PER_PACKED_READ: usize = 20_000;

/// Sweep key hashes per look-up statement (one JSON parameter; the answer is one row).
const HASHES_PER_LOOK_UP: usize = 50_000;

/// A subquery listing the values of the JSON array bound as parameter `$n`, as integers or
/// text: one parameter for any number of values (no limit on bound parameters, one statement).
pub(crate) fn json_list(backend: crate::BackendKind, n: usize, integers: bool) -> String {
    match (backend, integers) {
        (crate::BackendKind::Sqlite, _) => format!("SELECT value FROM json_each(${n})"),
        (crate::BackendKind::Postgres, false) => {
            format!("SELECT json_array_elements_text(${n}::json)")
        }
        (crate::BackendKind::Postgres, true) => {
            format!("SELECT (json_array_elements_text(${n}::json))::bigint")
        }
    }
}

/// An aggregate of an integer column into one comma-separated text (NULL over no rows).
fn int_list_agg(backend: crate::BackendKind, column: &str) -> String {
    match backend {
        crate::BackendKind::Sqlite => format!("group_concat({column}, ',')"),
        crate::BackendKind::Postgres => format!("string_agg(({column})::text, ',')"),
    }
}

/// An aggregate of a JSON expression per row into one JSON array text (NULL over no rows).
fn json_rows_agg(backend: crate::BackendKind, expr: &str) -> String {
    match backend {
        crate::BackendKind::Sqlite => format!("json_group_array({expr})"),
        crate::BackendKind::Postgres => format!("(json_agg({expr}))::text"),
    }
}

/// A JSON array of the given SQL expressions, per row (for [`json_rows_agg`]).
fn json_row(backend: crate::BackendKind, expressions: &str) -> String {
    match backend {
        crate::BackendKind::Sqlite => format!("json_array({expressions})"),
        crate::BackendKind::Postgres => format!("json_build_array({expressions})"),
    }
}

/// The FIN in a fingerprint enrollment's body: the expression migration 0007 indexes
/// (`records_body_fin`), so a statement comparing it reads that index.
fn body_fin(backend: crate::BackendKind) -> &'static str {
    match backend {
        crate::BackendKind::Sqlite => "json_extract(record_json, '$.body.fin')",
        crate::BackendKind::Postgres => "((record_json::jsonb) -> 'body' ->> 'fin')",
    }
}

/// The start of a statement reading fingerprint enrollments by body FIN: `FROM` this, then
/// `IN (...)`. SQLite is told to use the body-FIN index: left to itself it chose the index on
/// `system` and read every enrollment (seconds at 1,000,000 people).
fn enrollments_by_body_fin(backend: crate::BackendKind) -> String {
    let indexed = match backend {
        crate::BackendKind::Sqlite => " INDEXED BY records_body_fin",
        crate::BackendKind::Postgres => "",
    };
    format!(
        "records{indexed} WHERE system = 'biometrics' AND {}",
        body_fin(backend)
    )
}

/// A parameter of a statement answered in one packed value ([`Store::packed_value`]).
pub(crate) enum Param<'a> {
    Int(i64),
    Text(&'a str),
}

/// A JSON array of strings.
fn json_text_list<'a>(values: impl Iterator<Item = &'a String>) -> String {
    let values: Vec<&String> = values.collect();
    // Serializing strings cannot fail.
    serde_json::to_string(&values).unwrap_or_else(|_| "[]".into())
}

/// A JSON array of integers.
pub(crate) fn json_int_list(values: impl Iterator<Item = i64>) -> String {
    let mut out = String::from("[");
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v.to_string());
    }
    out.push(']');
    out
}

/// Reads [`int_list_agg`]'s text back.
fn parse_int_list(
    text: Option<&str>,
    table: &'static str,
    what: &str,
) -> Result<Vec<i64>, StoreError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim().parse::<i64>().map_err(|e| StoreError::Corrupt {
                table,
                key: what.to_string(),
                problem: format!("'{s}' is not an integer: {e}"),
            })
        })
        .collect()
}

/// A statement returning the rows of `select` (columns rev, record_id, record_json) packed in
/// one text value: per record its rev, the byte lengths of its id and JSON (each followed by a
/// space), then the id and the JSON. A row per record costs a hand-over between the database
/// thread and the caller; one value per statement does not (read by [`unpack_records`]).
pub(crate) fn packed_records_sql(backend: crate::BackendKind, select: &str) -> String {
    match backend {
        crate::BackendKind::Sqlite => format!(
            "SELECT group_concat(rev || ' ' || octet_length(record_id) || ' ' || \
             octet_length(record_json) || ' ' || record_id || record_json, '') AS packed \
             FROM ({select}) AS picked"
        ),
        crate::BackendKind::Postgres => format!(
            "SELECT string_agg(rev::text || ' ' || octet_length(record_id)::text || ' ' || \
             octet_length(record_json)::text || ' ' || record_id || record_json, '' ORDER BY rev) \
             AS packed FROM ({select}) AS picked"
        ),
    }
}

/// Reads the records packed by [`packed_records_sql`]: per record `rev`, the byte lengths of
/// its id and JSON (each followed by a space), then the id and the JSON.
pub(crate) fn unpack_records(text: &str, out: &mut Vec<RawRecord>) -> Result<(), StoreError> {
    let corrupt = |at: usize, problem: &str| StoreError::Corrupt {
        table: "records",
        key: format!("packed read, byte {at}"),
        problem: problem.to_string(),
    };
    let mut at = 0usize;
    let number = |at: &mut usize| -> Result<i64, StoreError> {
        let rest = &text[*at..];
        let end = rest
            .find(' ')
            .ok_or_else(|| corrupt(*at, "a number without its space"))?;
        let n = rest[..end]
            .parse::<i64>()
            .map_err(|e| corrupt(*at, &format!("not a number: {e}")))?;
        *at += end + 1;
        Ok(n)
    };
    let slice = |at: &mut usize, len: i64| -> Result<&str, StoreError> {
        let len = usize::try_from(len).map_err(|_| corrupt(*at, "a negative length"))?;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= text.len() && text.is_char_boundary(e))
            .ok_or_else(|| corrupt(*at, "a length past the end"))?;
        let part = &text[*at..end];
        *at = end;
        Ok(part)
    };
    while at < text.len() {
        let rev = number(&mut at)?;
        let id_len = number(&mut at)?;
        let json_len = number(&mut at)?;
        let record_id = slice(&mut at, id_len)?.to_string();
        let json = slice(&mut at, json_len)?.to_string();
        out.push(RawRecord {
            rev,
            record_id,
            json,
        });
    }
    Ok(())
}

/// Rows per transaction when moving text sweep keys to the hashed tables.
const MOVE_PAGE: i64 = 20_000;

verity_model::code_enum! {
    /// What a field officer found when working a lead.
    LeadDisposition {
        Arrested = "arrested",
        NotLocated = "not_located",
        NotAmenable = "not_amenable",
        UsCitizen = "us_citizen",
        AlreadyInCustody = "already_in_custody",
        Referred = "referred",
    }
}

impl LeadDisposition {
    /// Words for the console.
    pub fn label(self) -> &'static str {
        match self {
            LeadDisposition::Arrested => "Arrested",
            LeadDisposition::NotLocated => "Not located",
            LeadDisposition::NotAmenable => "Not amenable to removal",
            LeadDisposition::UsCitizen => "U.S. citizen",
            LeadDisposition::AlreadyInCustody => "Already in custody",
            LeadDisposition::Referred => "Referred",
        }
    }
}

/// One lead run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRun {
    pub run_id: String,
    /// `full` or `incremental`.
    pub kind: String,
    pub policy_version: String,
    pub rules_version: String,
    pub started_by: String,
    pub started_micros: i64,
    pub finished_micros: Option<i64>,
    /// `running`, `finished` or `failed`.
    pub state: String,
    pub from_rev: i64,
    pub to_rev: i64,
    pub cursor_key: Option<String>,
    pub stats_json: String,
}

/// What a new run is.
#[derive(Debug, Clone)]
pub struct NewLeadRun {
    pub kind: String,
    pub policy_version: String,
    pub rules_version: String,
    pub started_by: String,
    pub from_rev: i64,
    pub to_rev: i64,
}

/// One lead as stored. The evidence package stays JSON text: the store does not interpret it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    pub lead_id: String,
    pub person_key: String,
    pub run_id: String,
    pub checked_run_id: String,
    pub primary_rule: String,
    /// All matched rules, comma-separated.
    pub rules: String,
    pub status: String,
    pub policy_version: String,
    pub aor: Option<String>,
    /// `open`, `closed` or `withdrawn`.
    pub state: String,
    pub identity_probability: f64,
    pub subject_name: String,
    pub evidence_json: String,
    pub created_micros: i64,
    pub updated_micros: i64,
    pub disposition: Option<String>,
    pub disposition_by: Option<String>,
    pub disposition_micros: Option<i64>,
    pub disposition_note: Option<String>,
    pub withdrawn_reason: Option<String>,
}

/// A lead to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLead {
    pub person_key: String,
    pub primary_rule: String,
    pub rules: Vec<String>,
    pub status: String,
    pub policy_version: String,
    pub aor: Option<String>,
    pub identity_probability: f64,
    pub subject_name: String,
    pub evidence_json: String,
    /// Name-and-birth-date keys of the subject (see `lead_subject_keys`).
    pub subject_keys: Vec<String>,
}

/// A person parked (or sent to citizenship review) by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkRow {
    pub run_id: String,
    pub person_key: String,
    pub rules: String,
    pub reason: String,
    pub detail: String,
    pub created_micros: i64,
}

/// What one batch of a run changes, committed in one transaction with the run's cursor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadBatch {
    pub new_leads: Vec<NewLead>,
    /// Open leads re-confirmed by this run.
    pub refreshed: Vec<RefreshedLead>,
    /// Open leads no longer supported: (lead_id, reason).
    pub withdrawn: Vec<(String, String)>,
    /// (person_key, rules, reason, detail).
    pub parks: Vec<(String, Vec<String>, String, String)>,
}

/// An open lead a run re-confirmed: its fresh evidence, and its subject's name-and-birth-date
/// keys now (added to its `lead_subject_keys`: a name the subject's records gained since the
/// lead was created must find the lead too).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshedLead {
    pub lead_id: String,
    pub evidence_json: String,
    pub subject_keys: Vec<String>,
}

/// Which leads to list.
#[derive(Debug, Clone, Default)]
pub struct LeadFilter {
    /// `Some(Some(aor))`: that field office; `Some(None)`: the analyst queue (no AOR).
    pub aor: Option<Option<String>>,
    pub state: Option<String>,
    pub run_id: Option<String>,
    pub limit: u32,
}

/// Leads and dispositions for one (rule, AOR) pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QualityRow {
    pub rule: String,
    /// None: the analyst queue.
    pub aor: Option<String>,
    pub leads: u64,
    pub open: u64,
    pub withdrawn: u64,
    /// Count per disposition code.
    pub dispositions: Vec<(String, u64)>,
}

impl QualityRow {
    pub fn disposed(&self) -> u64 {
        self.dispositions.iter().map(|(_, n)| n).sum()
    }
    pub fn count(&self, d: LeadDisposition) -> u64 {
        self.dispositions
            .iter()
            .filter(|(c, _)| c == d.code())
            .map(|(_, n)| *n)
            .sum()
    }
    /// Share of disposed leads that proved bad (not amenable or U.S. citizen): the figure that
    /// shows a bad rule. None before any disposition.
    pub fn bad_share(&self) -> Option<f64> {
        let d = self.disposed();
        (d > 0).then(|| {
            (self.count(LeadDisposition::NotAmenable) + self.count(LeadDisposition::UsCitizen))
                as f64
                / d as f64
        })
    }
}

/// Query volume and answers for one day (UTC).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryDay {
    /// Days since 1970-01-01.
    pub day: i64,
    pub received: u64,
    pub answered_automatic: u64,
    pub answered_reviewed: u64,
    /// Mean receive-to-answer time of the day's answered queries, in seconds.
    pub mean_response_seconds: Option<f64>,
}

/// Everything the dashboard reads from other areas' tables. Absent tables give empty parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DashboardData {
    pub query_days: Vec<QueryDay>,
    /// Answered queries by response-time bucket label, in bucket order.
    pub response_buckets: Vec<(String, u64)>,
    /// Queries not yet answered, by state.
    pub queue_depth: Vec<(String, u64)>,
    /// Detainers and requests for notification by state; None when PERC's tables are absent.
    pub detainer_outcomes: Option<Vec<(String, u64)>>,
}

/// (primary rule, AOR, state, disposition, count): one group of the lead-quality query.
type QualityCell = (String, Option<String>, String, Option<String>, i64);

const LEAD_COLUMNS: &str = "lead_id, person_key, run_id, checked_run_id, primary_rule, rules, \
     status, policy_version, aor, state, identity_probability, subject_name, evidence_json, \
     created_micros, updated_micros, disposition, disposition_by, disposition_micros, \
     disposition_note, withdrawn_reason";

const RUN_COLUMNS: &str = "run_id, kind, policy_version, rules_version, started_by, \
     started_micros, finished_micros, state, from_rev, to_rev, cursor_key, stats_json";

fn run_from_row(row: &impl StoreRow) -> Result<LeadRun, StoreError> {
    let op = "read a lead run row";
    Ok(LeadRun {
        run_id: row.text("run_id").ctx(op)?,
        kind: row.text("kind").ctx(op)?,
        policy_version: row.text("policy_version").ctx(op)?,
        rules_version: row.text("rules_version").ctx(op)?,
        started_by: row.text("started_by").ctx(op)?,
        started_micros: row.int("started_micros").ctx(op)?,
        finished_micros: row.opt_int("finished_micros").ctx(op)?,
        state: row.text("state").ctx(op)?,
        from_rev: row.int("from_rev").ctx(op)?,
        to_rev: row.int("to_rev").ctx(op)?,
        cursor_key: row.opt_text("cursor_key").ctx(op)?,
        stats_json: row.text("stats_json").ctx(op)?,
    })
}

fn lead_from_row(row: &impl StoreRow, probability: f64) -> Result<LeadRow, StoreError> {
    let op = "read a lead row";
    Ok(LeadRow {
        lead_id: row.text("lead_id").ctx(op)?,
        person_key: row.text("person_key").ctx(op)?,
        run_id: row.text("run_id").ctx(op)?,
        checked_run_id: row.text("checked_run_id").ctx(op)?,
        primary_rule: row.text("primary_rule").ctx(op)?,
        rules: row.text("rules").ctx(op)?,
        status: row.text("status").ctx(op)?,
        policy_version: row.text("policy_version").ctx(op)?,
        aor: row.opt_text("aor").ctx(op)?,
        state: row.text("state").ctx(op)?,
        identity_probability: probability,
        subject_name: row.text("subject_name").ctx(op)?,
        evidence_json: row.text("evidence_json").ctx(op)?,
        created_micros: row.int("created_micros").ctx(op)?,
        updated_micros: row.int("updated_micros").ctx(op)?,
        disposition: row.opt_text("disposition").ctx(op)?,
        disposition_by: row.opt_text("disposition_by").ctx(op)?,
        disposition_micros: row.opt_int("disposition_micros").ctx(op)?,
        disposition_note: row.opt_text("disposition_note").ctx(op)?,
        withdrawn_reason: row.opt_text("withdrawn_reason").ctx(op)?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The lead id of a person's lead created by a run: deterministic, so both backends and a
/// resumed run produce the same ids.
pub fn lead_id_for(run_id: &str, person_key: &str) -> String {
    format!("{run_id}-{person_key}")
}

/// Response-time buckets of the dashboard: (label, upper bound in microseconds).
pub const RESPONSE_BUCKETS: &[(&str, i64)] = &[
    ("< 1 s", 1_000_000),
    ("1-10 s", 10_000_000),
    ("10-60 s", 60_000_000),
    ("1-10 min", 600_000_000),
    ("10-60 min", 3_600_000_000),
    ("> 1 h", i64::MAX),
];

impl Store {
    /// The one value of a statement answered in one row: a packed list of rows (NULL over no
    /// rows). A row per item costs a hand-over between the database thread and the caller;
    /// one value per statement does not.
    pub(crate) async fn packed_value(
        &self,
        sql: &str,
        params: &[Param<'_>],
        op: &'static str,
    ) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
            let mut q = sqlx::query_scalar::<_, Option<String>>(sql);
            for p in params {
                q = match p {
                    Param::Int(v) => q.bind(*v),
                    Param::Text(t) => q.bind(*t),
                };
            }
            Ok(q.fetch_one(pool).await.ctx(op)?)
        })
    }

    /// [`Store::packed_value`] of `sql` for each `per` of `values` in turn, bound as one JSON
    /// array (parameter `$1`): the values answered (statements over no rows give none).
    pub(crate) async fn packed_values_by_ints(
        &self,
        sql: &str,
        values: &[i64],
        per: usize,
        op: &'static str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in values.chunks(per.max(1)) {
            let param = json_int_list(chunk.iter().copied());
            if let Some(text) = self.packed_value(sql, &[Param::Text(&param)], op).await? {
                out.push(text);
            }
        }
        Ok(out)
    }

    /// Starts a run; its id is `LR` + a sequence number (zero-padded, so ids sort by age).
    pub async fn start_lead_run(
        &self,
        new: &NewLeadRun,
        now_micros: i64,
    ) -> Result<LeadRun, StoreError> {
        if !matches!(new.kind.as_str(), "full" | "incremental") {
            return Err(StoreError::Invalid(FieldError::new(
                "kind",
                format!("'{}' is not full or incremental", new.kind),
            )));
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a lead run")?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lead_runs")
                .fetch_one(&mut *tx)
                .await
                .ctx("count lead runs")?;
            let run_id = format!("LR{:06}", n + 1);
            sqlx::query(
                "INSERT INTO lead_runs (run_id, kind, policy_version, rules_version, started_by, \
                 started_micros, state, from_rev, to_rev, stats_json) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8, '{}')",
            )
            .bind(&run_id)
            .bind(&new.kind)
            .bind(&new.policy_version)
            .bind(&new.rules_version)
            .bind(&new.started_by)
            .bind(now_micros)
            .bind(new.from_rev)
            .bind(new.to_rev)
            .execute(&mut *tx)
            .await
            .ctx("insert a lead run")?;
            tx.commit().await.ctx("commit a lead run start")?;
            Ok(LeadRun {
                run_id,
                kind: new.kind.clone(),
                policy_version: new.policy_version.clone(),
                rules_version: new.rules_version.clone(),
                started_by: new.started_by.clone(),
                started_micros: now_micros,
                finished_micros: None,
                state: "running".into(),
                from_rev: new.from_rev,
                to_rev: new.to_rev,
                cursor_key: None,
                stats_json: "{}".into(),
            })
        })
    }

    pub async fn get_lead_run(&self, run_id: &str) -> Result<Option<LeadRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM lead_runs WHERE run_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(run_id).fetch_optional(pool).await.ctx("read a lead run")?;
            row.as_ref().map(run_from_row).transpose()
        })
    }

    /// Runs, newest first.
    pub async fn lead_runs(&self, limit: u32) -> Result<Vec<LeadRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM lead_runs ORDER BY run_id DESC LIMIT $1");
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(i64::from(limit)).fetch_all(pool).await.ctx("list lead runs")?;
            rows.iter().map(run_from_row).collect()
        })
    }

    /// The newest run in `state` (`running` to resume, `finished` for the incremental base).
    pub async fn latest_lead_run(&self, state: &str) -> Result<Option<LeadRun>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM lead_runs WHERE state = $1 ORDER BY run_id DESC LIMIT 1"
        );
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(state).fetch_optional(pool).await.ctx("read the latest lead run")?;
            row.as_ref().map(run_from_row).transpose()
        })
    }

    /// Commits one batch of a run's outcomes and advances its cursor to `cursor_key`.
    pub async fn save_lead_batch(
        &self,
        run_id: &str,
        batch: &LeadBatch,
        cursor_key: &str,
        stats_json: &str,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        let kind = self.kind();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a lead batch")?;
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM lead_runs WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await
                .ctx("read a lead run state")?;
            match state.as_deref() {
                Some("running") => {}
                Some(other) => {
                    return Err(StoreError::Invalid(FieldError::new(
                        "run_id",
                        format!("lead run '{run_id}' is {other}, not running"),
                    )))
                }
                None => return Err(StoreError::NotFound { what: "lead run", key: run_id.into() }),
            }
            for (lead_id, reason) in &batch.withdrawn {
                sqlx::query(
                    "UPDATE leads SET state = 'withdrawn', withdrawn_reason = $1, checked_run_id = $2, \
                     updated_micros = $3 WHERE lead_id = $4 AND state = 'open'",
                )
                .bind(reason)
                .bind(run_id)
                .bind(now_micros)
                .bind(lead_id)
                .execute(&mut *tx)
                .await
                .ctx("withdraw a lead")?;
            }
            // (subject key, lead id) of the leads created or refreshed, written below.
            let mut subject_keys: Vec<(&str, String)> = Vec::new();
            for r in &batch.refreshed {
                let updated = sqlx::query(
                    "UPDATE leads SET evidence_json = $1, checked_run_id = $2, updated_micros = $3 \
                     WHERE lead_id = $4 AND state = 'open'",
                )
                .bind(&r.evidence_json)
                .bind(run_id)
                .bind(now_micros)
                .bind(&r.lead_id)
                .execute(&mut *tx)
                .await
                .ctx("refresh a lead")?
                .rows_affected();
                if updated > 0 {
                    subject_keys.extend(r.subject_keys.iter().map(|k| (k.as_str(), r.lead_id.clone())));
                }
            }
            for l in &batch.new_leads {
                // A resumed run may repeat the batch it was writing when it stopped.
                let inserted = sqlx::query(
                    "INSERT INTO leads (lead_id, person_key, run_id, checked_run_id, primary_rule, rules, \
                     status, policy_version, aor, state, identity_probability, subject_name, evidence_json, \
                     created_micros, updated_micros) \
                     VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, 'open', $9, $10, $11, $12, $12) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(lead_id_for(run_id, &l.person_key))
                .bind(&l.person_key)
                .bind(run_id)
                .bind(&l.primary_rule)
                .bind(l.rules.join(","))
                .bind(&l.status)
                .bind(&l.policy_version)
                .bind(l.aor.as_deref())
                .bind(l.identity_probability)
                .bind(&l.subject_name)
                .bind(&l.evidence_json)
                .bind(now_micros)
                .execute(&mut *tx)
                .await
                .ctx("insert a lead")?
                .rows_affected();
                // A lead not inserted (the person has an open lead) gets no keys.
                if inserted > 0 {
                    let lead_id = lead_id_for(run_id, &l.person_key);
                    subject_keys.extend(l.subject_keys.iter().map(|k| (k.as_str(), lead_id.clone())));
                }
            }
            // Many rows per statement: a full run refreshes every open lead.
            for chunk in subject_keys.chunks(200) {
                let sql = format!(
                    "INSERT INTO lead_subject_keys (citizen_key, lead_id) VALUES {} ON CONFLICT DO NOTHING",
                    value_rows(kind, chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for (key, lead_id) in chunk {
                    q = q.bind(*key).bind(lead_id.as_str());
                }
                q.execute(&mut *tx).await.ctx("insert lead subject keys")?;
            }
            // Many rows per statement: a full run parks thousands of persons.
            for chunk in batch.parks.chunks(150) {
                let sql = format!(
                    "INSERT INTO lead_parks (run_id, person_key, rules, reason, detail, created_micros) \
                     VALUES {} ON CONFLICT DO NOTHING",
                    value_rows(kind, chunk.len(), 6)
                );
                let mut q = sqlx::query(&sql);
                for (person_key, rules, reason, detail) in chunk {
                    q = q
                        .bind(run_id)
                        .bind(person_key)
                        .bind(rules.join(","))
                        .bind(reason)
                        .bind(detail)
                        .bind(now_micros);
                }
                q.execute(&mut *tx).await.ctx("insert parked persons")?;
            }
            sqlx::query("UPDATE lead_runs SET cursor_key = $1, stats_json = $2 WHERE run_id = $3")
                .bind(cursor_key)
                .bind(stats_json)
                .bind(run_id)
                .execute(&mut *tx)
                .await
                .ctx("advance a lead run cursor")?;
            tx.commit().await.ctx("commit a lead batch")?;
            Ok(())
        })
    }

    /// Ends a run (`finished` or `failed`) with its final counters.
    pub async fn finish_lead_run(
        &self,
        run_id: &str,
        state: &str,
        stats_json: &str,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        if !matches!(state, "finished" | "failed") {
            return Err(StoreError::Invalid(FieldError::new(
                "state",
                format!("'{state}' is not finished or failed"),
            )));
        }
        with_pool!(self, pool => {
            let r = sqlx::query(
                "UPDATE lead_runs SET state = $1, stats_json = $2, finished_micros = $3 \
                 WHERE run_id = $4 AND state = 'running'",
            )
            .bind(state)
            .bind(stats_json)
            .bind(now_micros)
            .bind(run_id)
            .execute(pool)
            .await
            .ctx("finish a lead run")?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound { what: "running lead run", key: run_id.into() });
            }
            Ok(())
        })
    }

    /// Open leads on any of these person keys.
    pub async fn open_leads_for(&self, person_keys: &[String]) -> Result<Vec<LeadRow>, StoreError> {
        let mut out = Vec::new();
        let sql =
            format!("SELECT {LEAD_COLUMNS} FROM leads WHERE state = 'open' AND person_key = $1");
        with_pool!(self, pool => {
            for key in person_keys {
                let rows = sqlx::query(&sql).bind(key).fetch_all(pool).await.ctx("read open leads")?;
                for r in &rows {
                    let p: f64 = r.try_get("identity_probability").ctx("read a lead row")?;
                    out.push(lead_from_row(r, p)?);
                }
            }
        });
        Ok(out)
    }

    /// Every open lead's (person_key, lead_id): a full run loads this once.
    pub async fn open_lead_keys(&self) -> Result<Vec<(String, String)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT person_key, lead_id FROM leads WHERE state = 'open' ORDER BY person_key")
                .fetch_all(pool)
                .await
                .ctx("list open leads")?;
            rows.iter()
                .map(|r| Ok((r.text("person_key").ctx("read open leads")?, r.text("lead_id").ctx("read open leads")?)))
                .collect()
        })
    }

    pub async fn get_lead(&self, lead_id: &str) -> Result<Option<LeadRow>, StoreError> {
        let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(lead_id).fetch_optional(pool).await.ctx("read a lead")?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let p: f64 = r.try_get("identity_probability").ctx("read a lead row")?;
                    Ok(Some(lead_from_row(&r, p)?))
                }
            }
        })
    }

    /// Leads matching `filter`, oldest first (a queue is worked in order).
    pub async fn list_leads(&self, filter: &LeadFilter) -> Result<Vec<LeadRow>, StoreError> {
        let mut sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        match &filter.aor {
            Some(Some(aor)) => {
                binds.push(aor.clone());
                sql.push_str(&format!(" AND aor = ${}", binds.len()));
            }
            Some(None) => sql.push_str(" AND aor IS NULL"),
            None => {}
        }
        if let Some(s) = &filter.state {
            binds.push(s.clone());
            sql.push_str(&format!(" AND state = ${}", binds.len()));
        }
        if let Some(r) = &filter.run_id {
            binds.push(r.clone());
            sql.push_str(&format!(" AND run_id = ${}", binds.len()));
        }
        sql.push_str(&format!(
            " ORDER BY created_micros, lead_id LIMIT {}",
            filter.limit.max(1)
        ));
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql);
            for b in &binds {
                q = q.bind(b.as_str());
            }
            let rows = q.fetch_all(pool).await.ctx("list leads")?;
            rows.iter()
                .map(|r| {
                    let p: f64 = r.try_get("identity_probability").ctx("read a lead row")?;
                    lead_from_row(r, p)
                })
                .collect()
        })
    }

    /// Open leads per queue: (AOR or None for the analyst queue, count).
    pub async fn open_lead_queues(&self) -> Result<Vec<(Option<String>, u64)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT aor, COUNT(*) AS n FROM leads WHERE state = 'open' GROUP BY aor ORDER BY aor",
            )
            .fetch_all(pool)
            .await
            .ctx("count open leads per queue")?;
            rows.iter()
                .map(|r| Ok((r.opt_text("aor").ctx("read queues")?, count(r.int("n").ctx("read queues")?))))
                .collect()
        })
    }

    /// Records a field disposition and closes the lead. Only an open lead takes one.
    pub async fn record_lead_disposition(
        &self,
        lead_id: &str,
        disposition: LeadDisposition,
        actor: &str,
        note: &str,
        now_micros: i64,
    ) -> Result<LeadRow, StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a disposition")?;
            let r = sqlx::query(
                "UPDATE leads SET state = 'closed', disposition = $1, disposition_by = $2, \
                 disposition_micros = $3, disposition_note = $4, updated_micros = $3 \
                 WHERE lead_id = $5 AND state = 'open'",
            )
            .bind(disposition.code())
            .bind(actor)
            .bind(now_micros)
            .bind(note)
            .bind(lead_id)
            .execute(&mut *tx)
            .await
            .ctx("record a disposition")?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound { what: "open lead", key: lead_id.into() });
            }
            sqlx::query(
                "INSERT INTO lead_dispositions (lead_id, disposition, actor, at_micros, note) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(lead_id)
            .bind(disposition.code())
            .bind(actor)
            .bind(now_micros)
            .bind(note)
            .execute(&mut *tx)
            .await
            .ctx("log a disposition")?;
            tx.commit().await.ctx("commit a disposition")?;
            Ok::<(), StoreError>(())
        })?;
        self.get_lead(lead_id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "lead",
                key: lead_id.into(),
            })
    }

    /// Parked persons of a run, by person key.
    pub async fn lead_parks(&self, run_id: &str, limit: u32) -> Result<Vec<ParkRow>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT run_id, person_key, rules, reason, detail, created_micros FROM lead_parks \
                 WHERE run_id = $1 ORDER BY person_key LIMIT $2",
            )
            .bind(run_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .ctx("list parked persons")?;
            let op = "read a parked person";
            rows.iter()
                .map(|r| {
                    Ok(ParkRow {
                        run_id: r.text("run_id").ctx(op)?,
                        person_key: r.text("person_key").ctx(op)?,
                        rules: r.text("rules").ctx(op)?,
                        reason: r.text("reason").ctx(op)?,
                        detail: r.text("detail").ctx(op)?,
                        created_micros: r.int("created_micros").ctx(op)?,
                    })
                })
                .collect()
        })
    }

    /// Parked persons per reason, over all runs.
    pub async fn park_reason_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT reason, COUNT(*) AS n FROM lead_parks GROUP BY reason ORDER BY reason")
                .fetch_all(pool)
                .await
                .ctx("count parked persons")?;
            rows.iter()
                .map(|r| Ok((r.text("reason").ctx("read park counts")?, count(r.int("n").ctx("read park counts")?))))
                .collect()
        })
    }

    /// Lead-quality figures per (primary rule, AOR), sorted by rule then AOR.
    pub async fn lead_quality(&self) -> Result<Vec<QualityRow>, StoreError> {
        let rows: Vec<QualityCell> = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT primary_rule, aor, state, disposition, COUNT(*) AS n FROM leads \
                 GROUP BY primary_rule, aor, state, disposition",
            )
            .fetch_all(pool)
            .await
            .ctx("aggregate lead quality")?;
            let op = "read lead quality";
            rows.iter()
                .map(|r| {
                    Ok((
                        r.text("primary_rule").ctx(op)?,
                        r.opt_text("aor").ctx(op)?,
                        r.text("state").ctx(op)?,
                        r.opt_text("disposition").ctx(op)?,
                        r.int("n").ctx(op)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?
        });
        let mut out: std::collections::BTreeMap<(String, Option<String>), QualityRow> =
            std::collections::BTreeMap::new();
        for (rule, aor, state, disposition, n) in rows {
            let n = count(n);
            let q = out
                .entry((rule.clone(), aor.clone()))
                .or_insert_with(|| QualityRow {
                    rule,
                    aor,
                    ..QualityRow::default()
                });
            q.leads += n;
            match state.as_str() {
                "open" => q.open += n,
                "withdrawn" => q.withdrawn += n,
                _ => {}
            }
            if let Some(d) = disposition {
                match q.dispositions.iter_mut().find(|(c, _)| *c == d) {
                    Some(slot) => slot.1 += n,
                    None => q.dispositions.push((d, n)),
                }
            }
        }
        let mut rows: Vec<QualityRow> = out.into_values().collect();
        for r in &mut rows {
            r.dispositions.sort();
        }
        Ok(rows)
    }

    /// Which of these person keys have an active detainer or request for notification
    /// (PERC's tables). Empty when those tables do not exist yet.
    pub async fn persons_with_active_detainer(
        &self,
        person_keys: &[String],
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut out = BTreeSet::new();
        if person_keys.is_empty() || !self.table_exists("detainers").await? {
            return Ok(out);
        }
        with_pool!(self, pool => {
            for chunk in person_keys.chunks(200) {
                let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let sql = format!(
                    "SELECT DISTINCT c.person_key AS person_key FROM detainers d \
                     JOIN perc_cases c ON c.case_id = d.case_id \
                     WHERE d.state IN ('prepared', 'approved', 'lodged') AND c.person_key IN ({})",
                    marks.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for k in chunk {
                    q = q.bind(k.as_str());
                }
                let rows = q.fetch_all(pool).await.ctx("find active detainers")?;
                for r in &rows {
                    if let Some(k) = r.opt_text("person_key").ctx("read active detainers")? {
                        out.insert(k);
                    }
                }
            }
        });
        Ok(out)
    }

    /// Adds name-and-birth-date keys of records with citizenship indicia (idempotent), hashed
    /// ([`sweep_key_hash`]).
    pub async fn add_citizen_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        let hashes: Vec<i64> = keys.iter().map(|k| sweep_key_hash(k)).collect();
        self.add_citizen_key_hashes(&hashes).await
    }

    /// Adds hashed citizenship sweep keys (idempotent; any order, sorted here so the inserts
    /// walk the b-tree in order).
    pub async fn add_citizen_key_hashes(&self, hashes: &[i64]) -> Result<(), StoreError> {
        if hashes.is_empty() {
            return Ok(());
        }
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let kind = self.kind();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a citizen key insert")?;
            for chunk in sorted.chunks(VALUES_PER_QUERY) {
                let sql = format!(
                    "INSERT INTO lead_citizen_hashes (key_hash) VALUES {} ON CONFLICT DO NOTHING",
                    value_rows(kind, chunk.len(), 1)
                );
                let mut q = sqlx::query(&sql);
                for h in chunk {
                    q = q.bind(*h);
                }
                q.execute(&mut *tx).await.ctx("insert citizen keys")?;
            }
            tx.commit().await.ctx("commit citizen keys")?;
            Ok(())
        })
    }

    /// Which of `keys` are citizen keys (by hash: see [`sweep_key_hash`]).
    pub async fn citizen_keys_among(
        &self,
        keys: &[String],
    ) -> Result<BTreeSet<String>, StoreError> {
        let hashes: Vec<i64> = keys.iter().map(|k| sweep_key_hash(k)).collect();
        let found = self.citizen_hashes_among(&hashes).await?;
        Ok(keys
            .iter()
            .zip(&hashes)
            .filter(|(_, h)| found.contains(h))
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Which of `hashes` are hashed citizenship sweep keys. One statement per
    /// [`HASHES_PER_LOOK_UP`] hashes (passed as one JSON parameter), answered in one row.
    pub async fn citizen_hashes_among(&self, hashes: &[i64]) -> Result<BTreeSet<i64>, StoreError> {
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let backend = self.kind();
        let sql = format!(
            "SELECT {} AS found FROM lead_citizen_hashes WHERE key_hash IN ({})",
            int_list_agg(backend, "key_hash"),
            json_list(backend, 1, true)
        );
        let mut out = BTreeSet::new();
        for text in self
            .packed_values_by_ints(&sql, &sorted, HASHES_PER_LOOK_UP, "look up citizen keys")
            .await?
        {
            out.extend(parse_int_list(
                Some(&text),
                "lead_citizen_hashes",
                "citizen key look-up",
            )?);
        }
        Ok(out)
    }

    /// Adds rows of the status sweep: (full-name-and-birth-date key, id of the status-bearing
    /// record holding it), the key hashed ([`sweep_key_hash`]). Idempotent.
    pub async fn add_status_keys(&self, rows: &[(String, String)]) -> Result<(), StoreError> {
        let hashed: Vec<(i64, String)> = rows
            .iter()
            .map(|(k, id)| (sweep_key_hash(k), id.clone()))
            .collect();
        self.add_status_key_hashes(&hashed).await
    }

    /// Adds status sweep rows: (key hash, record id). Idempotent; any order.
    pub async fn add_status_key_hashes(&self, rows: &[(i64, String)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&(i64, String)> = rows.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let kind = self.kind();
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a status key insert")?;
            for chunk in sorted.chunks(VALUES_PER_QUERY / 2) {
                let sql = format!(
                    "INSERT INTO lead_status_hashes (key_hash, record_id) VALUES {} \
                     ON CONFLICT DO NOTHING",
                    value_rows(kind, chunk.len(), 2)
                );
                let mut q = sqlx::query(&sql);
                for (h, id) in chunk {
                    q = q.bind(*h).bind(id.as_str());
                }
                q.execute(&mut *tx).await.ctx("insert status keys")?;
            }
            tx.commit().await.ctx("commit status keys")?;
            Ok(())
        })
    }

    /// The status sweep rows whose key is one of `keys`: (key, record id), sorted (by hash:
    /// see [`sweep_key_hash`]).
    pub async fn status_key_holders(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut by_hash: HashMap<i64, Vec<&String>> = HashMap::new();
        for k in keys {
            by_hash.entry(sweep_key_hash(k)).or_default().push(k);
        }
        let hashes: Vec<i64> = by_hash.keys().copied().collect();
        let mut out = BTreeSet::new();
        for (h, id) in self.status_hash_holders(&hashes).await? {
            for k in by_hash.get(&h).into_iter().flatten() {
                out.insert(((*k).clone(), id.clone()));
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The status sweep rows whose key hash is one of `hashes`: (key hash, record id), sorted.
    /// One statement per [`HASHES_PER_LOOK_UP`] hashes (passed as one JSON parameter),
    /// answered in one row.
    pub async fn status_hash_holders(
        &self,
        hashes: &[i64],
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut sorted = hashes.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let backend = self.kind();
        let sql = format!(
            "SELECT {} AS holders FROM lead_status_hashes WHERE key_hash IN ({})",
            json_rows_agg(backend, &json_row(backend, "key_hash, record_id")),
            json_list(backend, 1, true)
        );
        let mut out = BTreeSet::new();
        for text in self
            .packed_values_by_ints(&sql, &sorted, HASHES_PER_LOOK_UP, "look up status keys")
            .await?
        {
            let rows: Vec<(i64, String)> =
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    table: "lead_status_hashes",
                    key: "status key look-up".into(),
                    problem: e.to_string(),
                })?;
            out.extend(rows);
        }
        Ok(out.into_iter().collect())
    }

    /// Hashes the sweep keys that a store written before migration 0007 holds in the text
    /// tables (`lead_citizen_keys`, `lead_status_keys`) into the hashed ones and empties the
    /// text tables, a page per transaction (so a stop loses nothing). Returns the rows moved;
    /// one cheap query each when nothing is left.
    pub async fn move_text_sweep_keys(&self) -> Result<u64, StoreError> {
        let mut moved = 0u64;
        loop {
            let keys: Vec<String> = with_pool!(self, pool => {
                sqlx::query_scalar(
                    "SELECT citizen_key FROM lead_citizen_keys ORDER BY citizen_key LIMIT $1",
                )
                .bind(MOVE_PAGE)
                .fetch_all(pool)
                .await
                .ctx("read text citizen keys")?
            });
            let Some(last) = keys.last() else { break };
            let hashes: Vec<i64> = keys.iter().map(|k| sweep_key_hash(k)).collect();
            // Inserting is idempotent, so the hashes are stored first and the text rows
            // deleted after: a stop in between only moves the same page again.
            self.add_citizen_key_hashes(&hashes).await?;
            with_pool!(self, pool => {
                sqlx::query("DELETE FROM lead_citizen_keys WHERE citizen_key <= $1")
                    .bind(last.as_str())
                    .execute(pool)
                    .await
                    .ctx("delete moved citizen keys")?;
            });
            moved += keys.len() as u64;
        }
        loop {
            let rows: Vec<(String, String)> = with_pool!(self, pool => {
                let rows = sqlx::query(
                    "SELECT status_key, record_id FROM lead_status_keys \
                     ORDER BY status_key, record_id LIMIT $1",
                )
                .bind(MOVE_PAGE)
                .fetch_all(pool)
                .await
                .ctx("read text status keys")?;
                let op = "read text status keys";
                rows.iter()
                    .map(|r| Ok((r.text("status_key").ctx(op)?, r.text("record_id").ctx(op)?)))
                    .collect::<Result<Vec<_>, StoreError>>()?
            });
            let Some((last_key, last_id)) = rows.last() else {
                break;
            };
            let hashed: Vec<(i64, String)> = rows
                .iter()
                .map(|(k, id)| (sweep_key_hash(k), id.clone()))
                .collect();
            // As above: store the hashes, then delete the text rows they came from.
            self.add_status_key_hashes(&hashed).await?;
            with_pool!(self, pool => {
                sqlx::query(
                    "DELETE FROM lead_status_keys WHERE status_key < $1 \
                     OR (status_key = $2 AND record_id <= $3)",
                )
                .bind(last_key.as_str())
                .bind(last_key.as_str())
                .bind(last_id.as_str())
                .execute(pool)
                .await
                .ctx("delete moved status keys")?;
            });
            moved += rows.len() as u64;
        }
        Ok(moved)
    }

    /// The revs of every record holding one of `values` as its `kind` identifier (for a FIN,
    /// also the fingerprint enrollments with that FIN in their body), each once, sorted. Read
    /// from the identifier indexes alone, not the records. Values that are not valid
    /// identifiers of that kind match nothing.
    pub async fn revs_by_identifiers(
        &self,
        kind: IdKind,
        values: &[String],
    ) -> Result<Vec<i64>, StoreError> {
        let mut canonical: Vec<String> = values
            .iter()
            .filter_map(|v| kind.canonical(v).ok())
            .collect();
        canonical.sort_unstable();
        canonical.dedup();
        let enrollments = enrollments_by_body_fin(self.kind());
        let mut out = Vec::new();
        with_pool!(self, pool => {
            for chunk in canonical.chunks(VALUES_PER_QUERY) {
                let marks = placeholders(self.kind(), chunk.len());
                // The column name comes from a closed enum, never from input.
                let mut sqls = vec![format!(
                    "SELECT rev FROM records WHERE {} IN ({marks})",
                    kind.code()
                )];
                if kind == IdKind::Fin {
                    sqls.push(format!("SELECT rev FROM {enrollments} IN ({marks})"));
                }
                for sql in &sqls {
                    let mut q = sqlx::query_scalar::<_, i64>(sql);
                    for v in chunk {
                        q = q.bind(v.as_str());
                    }
                    out.extend(q.fetch_all(pool).await.ctx("look up revs by identifiers")?);
                }
            }
        });
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// The heads of the records with these revs (absent revs are skipped), in rev order.
    pub async fn record_heads_by_revs(&self, revs: &[i64]) -> Result<Vec<RecordHead>, StoreError> {
        let mut out = Vec::with_capacity(revs.len());
        let op = "read a record head";
        with_pool!(self, pool => {
            for chunk in revs.chunks(VALUES_PER_QUERY) {
                let sql = format!(
                    "SELECT rev, record_id, system, a_number, fin, fbi_number, ssn, passport, \
                     state_id, CASE WHEN system = 'biometrics' THEN record_json END AS bio_json \
                     FROM records WHERE rev IN ({})",
                    placeholders(self.kind(), chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for rev in chunk {
                    q = q.bind(*rev);
                }
                for r in q.fetch_all(pool).await.ctx("read record heads by rev")? {
                    out.push(RecordHead {
                        rev: r.int("rev").ctx(op)?,
                        record_id: r.text("record_id").ctx(op)?,
                        system: r.text("system").ctx(op)?,
                        a_number: r.opt_text("a_number").ctx(op)?,
                        fin: r.opt_text("fin").ctx(op)?,
                        fbi_number: r.opt_text("fbi_number").ctx(op)?,
                        ssn: r.opt_text("ssn").ctx(op)?,
                        passport: r.opt_text("passport").ctx(op)?,
                        state_id: r.opt_text("state_id").ctx(op)?,
                        biometrics_json: r.opt_text("bio_json").ctx(op)?,
                    });
                }
            }
        });
        out.sort_by_key(|h| h.rev);
        Ok(out)
    }

    /// The revs of every record holding one of the given identifiers (per kind; for a FIN,
    /// also the fingerprint enrollments with that FIN in their body), each once, sorted: one
    /// statement for all kinds, the values passed as one JSON array per kind and the revs
    /// returned in one row (a row per rev costs a hand-over between the database thread and
    /// the caller, which dominated an incremental lead run). The same revs as
    /// [`Store::revs_by_identifiers`] per kind; values that are not valid identifiers of
    /// their kind match nothing.
    pub async fn revs_by_identifier_sets(
        &self,
        sets: &[(IdKind, Vec<String>)],
    ) -> Result<Vec<i64>, StoreError> {
        let mut by_kind: BTreeMap<&'static str, (IdKind, BTreeSet<String>)> = BTreeMap::new();
        for (kind, values) in sets {
            let entry = by_kind
                .entry(kind.code())
                .or_insert_with(|| (*kind, BTreeSet::new()));
            entry
                .1
                .extend(values.iter().filter_map(|v| kind.canonical(v).ok()));
        }
        let backend = self.kind();
        let mut parts: Vec<String> = Vec::new();
        let mut params: Vec<String> = Vec::new();
        for (kind, values) in by_kind.values() {
            if values.is_empty() {
                continue;
            }
            params.push(json_text_list(values.iter()));
            let list = json_list(backend, params.len(), false);
            // The column name comes from a closed enum, never from input.
            parts.push(format!(
                "SELECT rev FROM records WHERE {} IN ({list})",
                kind.code()
            ));
            if *kind == IdKind::Fin {
                parts.push(format!(
                    "SELECT rev FROM {} IN ({list})",
                    enrollments_by_body_fin(backend)
                ));
            }
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} AS revs FROM ({}) AS found",
            int_list_agg(backend, "rev"),
            parts.join(" UNION ALL ")
        );
        let params: Vec<Param<'_>> = params.iter().map(|p| Param::Text(p)).collect();
        let text = self
            .packed_value(&sql, &params, "look up revs by identifier sets")
            .await?;
        let mut out = parse_int_list(text.as_deref(), "records", "revs by identifiers")?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// What links the records with these revs into persons ([`RecordLinks`]), in rev order
    /// (absent revs are skipped): the identifier columns, for a fingerprint enrollment the FIN
    /// in its body, and the record's lead facets (from its body, for the systems they rest
    /// on). A few statements of one row each, whatever the number of revs.
    pub async fn record_links_by_revs(&self, revs: &[i64]) -> Result<Vec<RecordLinks>, StoreError> {
        let backend = self.kind();
        // Only the body of a record whose system a facet rests on is read: the others' facets
        // are empty whatever their body (`LeadFacets::of`).
        let body = match backend {
            crate::BackendKind::Sqlite => "json_extract(record_json, '$.body')",
            crate::BackendKind::Postgres => "((record_json::json) -> 'body')",
        };
        let faceted = FACETED_SYSTEMS
            .iter()
            .map(|s| format!("'{}'", s.code()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {} AS links FROM records WHERE rev IN ({})",
            json_rows_agg(
                backend,
                &json_row(
                    backend,
                    &format!(
                        "rev, record_id, system, a_number, fin, fbi_number, ssn, passport, \
                         state_id, CASE WHEN system = 'biometrics' THEN {} END, \
                         CASE WHEN system IN ({faceted}) THEN {body} END",
                        body_fin(backend)
                    )
                )
            ),
            json_list(backend, 1, true)
        );
        type LinkRow = (
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<RecordBody>,
        );
        let mut out = Vec::with_capacity(revs.len());
        for text in self
            .packed_values_by_ints(&sql, revs, REVS_PER_PACKED_READ, "read record links by rev")
            .await?
        {
            let rows: Vec<LinkRow> =
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    table: "records",
                    key: format!("revs {}..", revs.first().copied().unwrap_or_default()),
                    problem: format!("record links: {e}"),
                })?;
            for (
                rev,
                record_id,
                system,
                a_number,
                fin,
                fbi_number,
                ssn,
                passport,
                state_id,
                body_fin,
                body,
            ) in rows
            {
                let facets = match body {
                    Some(body) => LeadFacets::of(&SourceRecord {
                        record_id: String::new(),
                        identity: Identity::default(),
                        body,
                    }),
                    None if FACETED_SYSTEMS.iter().any(|s| s.code() == system) => {
                        return Err(StoreError::Corrupt {
                            table: "records",
                            key: record_id,
                            problem: "record links: no body".into(),
                        })
                    }
                    None => LeadFacets::default(),
                };
                out.push(RecordLinks {
                    rev,
                    record_id,
                    system,
                    a_number,
                    fin,
                    fbi_number,
                    ssn,
                    passport,
                    state_id,
                    body_fin,
                    facets,
                });
            }
        }
        out.sort_by_key(|l| l.rev);
        Ok(out)
    }

    /// The (first rev, last rev) of the stored record digest chunks that hold a rev in
    /// `after_rev < rev <= to_rev`, by first rev. A chunk means its records' sweep keys are
    /// stored (migration 0008), so a lead run need not add them again.
    pub async fn digest_spans(
        &self,
        after_rev: i64,
        to_rev: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                // Chunks do not overlap: none before the last one starting at or before
                // `after_rev` can reach past it. Bounding the key range from below lets the
                // primary key skip the older chunks (reading every chunk row's page took
                // 1.2 s at 10M people). Were chunks to overlap (concurrent inserts), one
                // missed here only has its records' sweep keys added again: harmless.
                "SELECT first_rev, last_rev FROM record_digests \
                 WHERE first_rev <= $1 AND last_rev > $2 \
                 AND first_rev >= COALESCE((SELECT MAX(first_rev) FROM record_digests \
                 WHERE first_rev <= $2), 0) ORDER BY first_rev",
            )
            .bind(to_rev)
            .bind(after_rev)
            .fetch_all(pool)
            .await
            .ctx("read record digest spans")?;
            let op = "read a record digest span";
            rows.iter()
                .map(|r| Ok((r.int("first_rev").ctx(op)?, r.int("last_rev").ctx(op)?)))
                .collect()
        })
    }

    /// Person keys with an active detainer or request for notification (PERC's tables);
    /// empty when those tables do not exist yet.
    pub async fn active_detainer_person_keys(&self) -> Result<BTreeSet<String>, StoreError> {
        let mut out = BTreeSet::new();
        if !self.table_exists("detainers").await? {
            return Ok(out);
        }
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT DISTINCT c.person_key AS person_key FROM detainers d \
                 JOIN perc_cases c ON c.case_id = d.case_id \
                 WHERE d.state IN ('prepared', 'approved', 'lodged') AND c.person_key IS NOT NULL",
            )
            .fetch_all(pool)
            .await
            .ctx("list active detainers")?;
            for r in &rows {
                if let Some(k) = r.opt_text("person_key").ctx("read active detainers")? {
                    out.insert(k);
                }
            }
        });
        Ok(out)
    }

    /// The field office a user belongs to (`users.aor`, migration 0002), if set.
    pub async fn user_aor(&self, username: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, pool => {
            let v: Option<Option<String>> = sqlx::query_scalar("SELECT aor FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await
                .ctx("read a user's field office")?;
            Ok(v.flatten())
        })
    }

    /// Every subject key of every open lead, as (lead id, person key, key), ordered by lead id
    /// and key: for a caller with more keys to look up than open leads have, which then
    /// matches in memory (at 10M people, looking up an incremental run's 1.1 million keys in
    /// the store took 4.9 s).
    pub async fn open_lead_subject_keys(
        &self,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let op = "read the open leads' subject keys";
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT l.lead_id AS lead_id, l.person_key AS person_key, \
                 k.citizen_key AS citizen_key \
                 FROM leads l JOIN lead_subject_keys k ON k.lead_id = l.lead_id \
                 WHERE l.state = 'open' ORDER BY l.lead_id, k.citizen_key",
            )
            .fetch_all(pool)
            .await
            .ctx(op)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.text("lead_id").ctx(op)?,
                        r.text("person_key").ctx(op)?,
                        r.text("citizen_key").ctx(op)?,
                    ))
                })
                .collect()
        })
    }

    /// Whether a table exists (the dashboard reads other areas' tables only when present).
    async fn table_exists(&self, table: &str) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let sql = match self.kind() {
                crate::BackendKind::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                crate::BackendKind::Postgres => "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
            };
            let n: i64 = sqlx::query_scalar(sql).bind(table).fetch_one(pool).await.ctx("look up a table")?;
            Ok(n > 0)
        })
    }

    /// The dashboard's figures over LESC queries (0002) and PERC detainers (0003), for the
    /// `days` most recent days that have queries.
    pub async fn dashboard_data(&self, days: u32) -> Result<DashboardData, StoreError> {
        let mut data = DashboardData::default();
        if self.table_exists("queries").await? {
            with_pool!(self, pool => {
                let rows = sqlx::query(
                    "SELECT received_micros / 86400000000 AS day, COUNT(*) AS received, \
                     SUM(CASE WHEN state = 'answered' AND automatic = $1 THEN 1 ELSE 0 END) AS auto_n, \
                     SUM(CASE WHEN state = 'answered' AND (automatic IS NULL OR automatic = $2) THEN 1 ELSE 0 END) AS reviewed_n, \
                     CAST(AVG(CASE WHEN answered_micros IS NOT NULL THEN answered_micros - received_micros END) AS DOUBLE PRECISION) AS mean_micros \
                     FROM queries GROUP BY received_micros / 86400000000 ORDER BY day DESC LIMIT $3",
                )
                .bind(true)
                .bind(false)
                .bind(i64::from(days))
                .fetch_all(pool)
                .await
                .ctx("aggregate query volumes")?;
                let op = "read query volumes";
                for r in &rows {
                    let mean: Option<f64> = r.try_get("mean_micros").ctx(op)?;
                    data.query_days.push(QueryDay {
                        day: r.int("day").ctx(op)?,
                        received: count(r.int("received").ctx(op)?),
                        answered_automatic: count(r.opt_int("auto_n").ctx(op)?.unwrap_or(0)),
                        answered_reviewed: count(r.opt_int("reviewed_n").ctx(op)?.unwrap_or(0)),
                        mean_response_seconds: mean.map(|m| m / 1e6),
                    });
                }
                data.query_days.reverse();
                let mut lower = 0i64;
                for (label, upper) in RESPONSE_BUCKETS {
                    let n: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM queries WHERE answered_micros IS NOT NULL \
                         AND answered_micros - received_micros >= $1 AND answered_micros - received_micros < $2",
                    )
                    .bind(lower)
                    .bind(*upper)
                    .fetch_one(pool)
                    .await
                    .ctx("bucket response times")?;
                    data.response_buckets.push(((*label).to_string(), count(n)));
                    lower = *upper;
                }
                let rows = sqlx::query(
                    "SELECT state, COUNT(*) AS n FROM queries WHERE state <> 'answered' GROUP BY state ORDER BY state",
                )
                .fetch_all(pool)
                .await
                .ctx("count queued queries")?;
                for r in &rows {
                    data.queue_depth.push((r.text("state").ctx("read queue depth")?, count(r.int("n").ctx("read queue depth")?)));
                }
            });
        }
        if self.table_exists("detainers").await? {
            let outcomes = with_pool!(self, pool => {
                let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM detainers GROUP BY state ORDER BY state")
                    .fetch_all(pool)
                    .await
                    .ctx("count detainer outcomes")?;
                rows.iter()
                    .map(|r| Ok((r.text("state").ctx("read detainer outcomes")?, count(r.int("n").ctx("read detainer outcomes")?))))
                    .collect::<Result<Vec<_>, StoreError>>()?
            });
            data.detainer_outcomes = Some(outcomes);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_key_hashes_are_the_stored_ones() {
        // Stored on disk (migration 0007): these values must never change.
        assert_eq!(sweep_key_hash(""), -1_166_397_803_181_037_274);
        assert_eq!(
            sweep_key_hash("F|LOPEZ|19800102"),
            -4_691_001_231_645_872_774
        );
        assert_eq!(
            sweep_key_hash("S|ANA|LOPEZ|19800102|"),
            376_951_610_658_446_303
        );
        assert_ne!(
            sweep_key_hash("F|LOPEZ|19800102"),
            sweep_key_hash("F|LOPEZ|19800201")
        );
    }

    #[test]
    fn dispositions_parse_their_codes() {
        for d in LeadDisposition::ALL {
            assert_eq!(LeadDisposition::parse(d.code()), Ok(*d));
            assert!(!d.label().is_empty());
        }
        assert!(LeadDisposition::parse("shot").is_err());
    }

    #[test]
    fn bad_share_counts_not_amenable_and_citizens() {
        let q = QualityRow {
            dispositions: vec![
                ("arrested".into(), 6),
                ("not_amenable".into(), 1),
                ("us_citizen".into(), 1),
            ],
            ..QualityRow::default()
        };
        assert_eq!(q.disposed(), 8);
        assert_eq!(q.bad_share(), Some(0.25));
        assert_eq!(QualityRow::default().bad_share(), None);
    }
}
