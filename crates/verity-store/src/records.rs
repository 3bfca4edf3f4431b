//! Source records: idempotent batch insert, lookups by id and identifier, rev-ordered scans.
//!
//! A record is stored as its serde JSON (the source of truth when read back) plus the columns
//! lookups filter on. Every inserted row gets a `rev` from the single-row `record_rev_head`,
//! updated in the same transaction: the head row lock serialises writers, so revs become
//! visible in increasing order and `scan_records(after_rev)` never skips a late commit.

use crate::backend::{with_pool, Backend, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use crate::scan::{strong_identifiers, LeadFacets, RecordDigest, SweepKeys};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use verity_model::ids::{ANumber, FbiNumber, Fin, Passport, Ssn, StateId};
use verity_model::{FieldError, RecordSystem, SourceRecord};

/// Columns written per record, in insert order.
const INSERT_COLUMNS: &[&str] = &[
    "rev",
    "record_id",
    "system",
    "family_name",
    "given_name",
    "dob",
    "a_number",
    "fin",
    "fbi_number",
    "ssn",
    "passport",
    "state_id",
    "region",
    "county",
    "record_json",
];

/// Rows per INSERT statement. Full chunks reuse one prepared statement; the size keeps the
/// parameter count (rows x 15) under SQLite's 32766 limit.
const ROWS_PER_STATEMENT: usize = 500;

/// An identifier kind that records can be looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    ANumber,
    Fin,
    FbiNumber,
    Ssn,
    Passport,
    StateId,
}

impl IdKind {
    pub const ALL: &'static [IdKind] = &[
        IdKind::ANumber,
        IdKind::Fin,
        IdKind::FbiNumber,
        IdKind::Ssn,
        IdKind::Passport,
        IdKind::StateId,
    ];

    /// The column name, also the identifier's name in CSV files and APIs.
    pub fn code(self) -> &'static str {
        match self {
            IdKind::ANumber => "a_number",
            IdKind::Fin => "fin",
            IdKind::FbiNumber => "fbi_number",
            IdKind::Ssn => "ssn",
            IdKind::Passport => "passport",
            IdKind::StateId => "state_id",
        }
    }

    pub fn parse(raw: &str) -> Result<IdKind, FieldError> {
        let t = raw.trim();
        IdKind::ALL
            .iter()
            .copied()
            .find(|k| k.code().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                FieldError::new(
                    "id_kind",
                    format!(
                        "'{t}' is not one of: a_number, fin, fbi_number, ssn, passport, state_id"
                    ),
                )
            })
    }

    /// The value of this identifier a record with `identity` is stored (and looked up) under.
    pub fn stored_value(self, identity: &verity_model::Identity) -> Option<String> {
        let ids = &identity.ids;
        match self {
            IdKind::ANumber => ids.a_number.as_ref().map(ToString::to_string),
            IdKind::Fin => ids.fin.as_ref().map(ToString::to_string),
            IdKind::FbiNumber => ids.fbi_number.as_ref().map(ToString::to_string),
            IdKind::Ssn => ids.ssn.as_ref().map(ToString::to_string),
            IdKind::Passport => ids.passport.as_ref().map(ToString::to_string),
            IdKind::StateId => ids.state_id.as_ref().map(ToString::to_string),
        }
    }

    /// The stored (canonical) form of `raw`, validated by the model's identifier parser, so
    /// that `A12-345-678` finds `012345678`.
    pub fn canonical(self, raw: &str) -> Result<String, FieldError> {
        Ok(match self {
            IdKind::ANumber => ANumber::parse(raw)?.to_string(),
            IdKind::Fin => Fin::parse(raw)?.to_string(),
            IdKind::FbiNumber => FbiNumber::parse(raw)?.to_string(),
            IdKind::Ssn => Ssn::parse(raw)?.to_string(),
            IdKind::Passport => Passport::parse(raw)?.to_string(),
            IdKind::StateId => StateId::parse(raw)?.to_string(),
        })
    }
}

impl std::fmt::Display for IdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// The values of [`INSERT_COLUMNS`] after `rev` for one record.
pub(crate) struct RecordRow {
    record_id: String,
    system: &'static str,
    family_name: String,
    given_name: String,
    dob: Option<String>,
    a_number: Option<String>,
    fin: Option<String>,
    fbi_number: Option<String>,
    ssn: Option<String>,
    passport: Option<String>,
    state_id: Option<String>,
    region: Option<String>,
    county: Option<String>,
    json: String,
    /// The record's digest, with its hashed sweep keys (its rev is set on insert).
    digest: RecordDigest,
}

/// A lookup-column copy of a text field. PostgreSQL text cannot hold NUL, so NULs are
/// dropped here; the JSON copy (which escapes them) keeps the field exactly.
fn column_text(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_string()
    }
}

fn non_empty(s: &str) -> Option<String> {
    if s.is_empty() {
        None
    } else {
        Some(column_text(s))
    }
}

impl RecordRow {
    pub(crate) fn from_record(r: &SourceRecord) -> Result<RecordRow, StoreError> {
        let i = &r.identity;
        if r.record_id.is_empty() || r.record_id.contains('\0') {
            return Err(StoreError::Invalid(FieldError::new(
                "record_id",
                format!(
                    "'{}' must be non-empty and free of NUL characters",
                    r.record_id.escape_debug()
                ),
            )));
        }
        let json = serde_json::to_string(r).map_err(|e| StoreError::Corrupt {
            table: "records",
            key: r.record_id.clone(),
            problem: format!("cannot serialise: {e}"),
        })?;
        let digest = RecordDigest::new(
            0,
            &r.record_id,
            r.system(),
            &strong_identifiers(r),
            &SweepKeys::of(r),
        )
        .with_facets(LeadFacets::of(r));
        Ok(RecordRow {
            digest,
            record_id: r.record_id.clone(),
            system: r.system().code(),
            family_name: column_text(&i.name.family),
            given_name: column_text(&i.name.given),
            dob: i.dob.map(|d| d.to_string()),
            a_number: i.ids.a_number.as_ref().map(ToString::to_string),
            fin: i.ids.fin.as_ref().map(ToString::to_string),
            fbi_number: i.ids.fbi_number.as_ref().map(ToString::to_string),
            ssn: i.ids.ssn.as_ref().map(ToString::to_string),
            passport: i.ids.passport.as_ref().map(ToString::to_string),
            state_id: i.ids.state_id.as_ref().map(ToString::to_string),
            region: non_empty(&i.address.region),
            county: non_empty(&i.address.county),
            json,
        })
    }
}

/// How a statement numbers its parameters.
#[derive(Clone, Copy)]
pub(crate) enum Placeholders {
    /// `$1, $2, ...` (PostgreSQL).
    Numbered,
    /// `?, ?, ...` in order (SQLite). SQLite also accepts `$N`, but looking up a named
    /// parameter walks the whole parameter list, which makes binding a 7,500-parameter
    /// statement quadratic (measured: three quarters of import time went there).
    Positional,
}

/// `INSERT ... VALUES (...), (...) ON CONFLICT (record_id) DO NOTHING` for `rows` rows.
fn insert_sql(rows: usize, style: Placeholders) -> String {
    let n = INSERT_COLUMNS.len();
    let mut sql = format!(
        "INSERT INTO records ({}) VALUES ",
        INSERT_COLUMNS.join(", ")
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..n {
            if c > 0 {
                sql.push_str(", ");
            }
            match style {
                // Writing to a String cannot fail.
                Placeholders::Numbered => {
                    let _ = write!(sql, "${}", r * n + c + 1);
                }
                Placeholders::Positional => sql.push('?'),
            }
        }
        sql.push(')');
    }
    // The revs of the rows inserted (not skipped): their sweep keys and digests follow.
    sql.push_str(" ON CONFLICT (record_id) DO NOTHING RETURNING rev");
    sql
}

fn decode_record(id_for_errors: &str, json: &str) -> Result<SourceRecord, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "records",
        key: id_for_errors.to_string(),
        problem: e.to_string(),
    })
}

/// Ids per `IN (...)` statement: well under both backends' parameter limits.
const IDS_PER_STATEMENT: usize = 500;

fn record_from_row(row: &impl StoreRow) -> Result<SourceRecord, StoreError> {
    let id = row.text("record_id").ctx("read a record row")?;
    let json = row.text("record_json").ctx("read a record row")?;
    decode_record(&id, &json)
}

/// What an insert adds beside the records: the sweep-key hashes and the digest chunk of the
/// rows actually inserted. The normal insert and the bulk load both derive them here, so both
/// store the same rows.
pub(crate) struct DerivedRows {
    /// Citizenship sweep-key hashes, sorted, without duplicates.
    pub(crate) citizen: Vec<i64>,
    /// Status sweep rows (key hash, record id), sorted, without duplicates.
    pub(crate) status: Vec<(i64, String)>,
    /// One digest per inserted record, in rev order (the batch's chunk).
    pub(crate) digests: Vec<RecordDigest>,
    /// The inserted records as stored, packed (`scan::encode_record_pack`), stored with the
    /// chunk.
    pub(crate) pack: Vec<u8>,
}

impl DerivedRows {
    /// Row `i` of `rows` got rev `base + 1 + i`; only those in `inserted_revs` count.
    pub(crate) fn of(rows: &[RecordRow], base: i64, mut inserted_revs: Vec<i64>) -> DerivedRows {
        inserted_revs.sort_unstable();
        let as_i64 = |h: u64| i64::from_ne_bytes(h.to_ne_bytes());
        let mut citizen: Vec<i64> = Vec::new();
        let mut status: Vec<(i64, String)> = Vec::new();
        let mut digests: Vec<RecordDigest> = Vec::with_capacity(inserted_revs.len());
        let mut packed: Vec<(i64, &str, &str)> = Vec::with_capacity(inserted_revs.len());
        for (rev, row) in (base + 1..).zip(rows) {
            if inserted_revs.binary_search(&rev).is_err() {
                continue;
            }
            packed.push((rev, row.record_id.as_str(), row.json.as_str()));
            // The digest's key hashes are the sweep tables' (`leads::sweep_key_hash`).
            citizen.extend(row.digest.citizen_keys.iter().map(|&h| as_i64(h)));
            status.extend(
                row.digest
                    .status_keys
                    .iter()
                    .map(|&h| (as_i64(h), row.record_id.clone())),
            );
            let mut d = row.digest.clone();
            d.rev = rev;
            digests.push(d);
        }
        citizen.sort_unstable();
        citizen.dedup();
        status.sort_unstable();
        status.dedup();
        DerivedRows {
            citizen,
            status,
            digests,
            pack: crate::scan::encode_record_pack(packed),
        }
    }
}

/// The record-insert statements, run on a connection (or transaction) of either backend: the
/// normal insert and the bulk load share them, so both hand out the same revs.
pub(crate) trait RecordWriter {
    /// Locks the single-row revision head and returns the last rev handed out.
    async fn lock_rev_head(&mut self) -> Result<i64, StoreError>;
    /// Sets the revision head (after the rows of an insert took their revs).
    async fn set_rev_head(&mut self, rev: i64) -> Result<(), StoreError>;
    /// Inserts `rows` with revs `base + 1 ..` in multi-row statements, skipping record ids
    /// already stored; returns the revs of the rows inserted. Revs of skipped rows stay unused:
    /// revs are increasing, not dense.
    async fn insert_record_rows(
        &mut self,
        rows: &[RecordRow],
        base: i64,
        style: Placeholders,
    ) -> Result<Vec<i64>, StoreError>;
}

macro_rules! impl_record_writer {
    ($($conn:ty),*) => {$(
        impl RecordWriter for $conn {
            async fn lock_rev_head(&mut self) -> Result<i64, StoreError> {
                sqlx::query_scalar(
                    "UPDATE record_rev_head SET rev = rev WHERE id = 1 RETURNING rev",
                )
                .fetch_one(&mut *self)
                .await
                .ctx("lock the record revision head")
            }

            async fn set_rev_head(&mut self, rev: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE record_rev_head SET rev = $1 WHERE id = 1")
                    .bind(rev)
                    .execute(&mut *self)
                    .await
                    .ctx("advance the record revision head")?;
                Ok(())
            }

            async fn insert_record_rows(
                &mut self,
                rows: &[RecordRow],
                base: i64,
                style: Placeholders,
            ) -> Result<Vec<i64>, StoreError> {
                let full_sql = insert_sql(ROWS_PER_STATEMENT, style);
                let mut inserted_revs: Vec<i64> = Vec::with_capacity(rows.len());
                let mut rev = base;
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let partial_sql;
                    let sql = if chunk.len() == ROWS_PER_STATEMENT {
                        full_sql.as_str()
                    } else {
                        partial_sql = insert_sql(chunk.len(), style);
                        partial_sql.as_str()
                    };
                    let mut q = sqlx::query(sql);
                    for r in chunk {
                        rev += 1;
                        q = q
                            .bind(rev)
                            .bind(r.record_id.as_str())
                            .bind(r.system)
                            .bind(r.family_name.as_str())
                            .bind(r.given_name.as_str())
                            .bind(r.dob.as_deref())
                            .bind(r.a_number.as_deref())
                            .bind(r.fin.as_deref())
                            .bind(r.fbi_number.as_deref())
                            .bind(r.ssn.as_deref())
                            .bind(r.passport.as_deref())
                            .bind(r.state_id.as_deref())
                            .bind(r.region.as_deref())
                            .bind(r.county.as_deref())
                            .bind(r.json.as_str());
                    }
                    let rows = q.fetch_all(&mut *self).await.ctx("insert records")?;
                    for r in &rows {
                        inserted_revs.push(r.int("rev").ctx("read inserted revs")?);
                    }
                }
                Ok(inserted_revs)
            }
        }
    )*};
}
impl_record_writer!(sqlx::SqliteConnection, sqlx::PgConnection);

/// The placeholder style of a backend's statements.
pub(crate) fn placeholder_style(kind: crate::BackendKind) -> Placeholders {
    match kind {
        crate::BackendKind::Sqlite => Placeholders::Positional,
        crate::BackendKind::Postgres => Placeholders::Numbered,
    }
}

impl Store {
    /// Inserts records in one transaction; records whose `record_id` is already stored are
    /// skipped (so re-running an interrupted import adds no duplicates). Returns how many
    /// were inserted.
    pub async fn insert_records(&self, records: &[SourceRecord]) -> Result<u64, StoreError> {
        let rows = records
            .iter()
            .map(RecordRow::from_record)
            .collect::<Result<Vec<_>, _>>()?;
        self.insert_rows(&rows).await
    }

    /// [`Store::insert_records`] for rows already flattened (the import does that work on its
    /// parsing thread).
    pub(crate) async fn insert_rows(&self, rows: &[RecordRow]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let style = placeholder_style(self.kind());
        let (inserted, base, inserted_revs) = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a record insert")?;
            let base = tx.lock_rev_head().await?;
            let inserted_revs = tx.insert_record_rows(rows, base, style).await?;
            tx.set_rev_head(base + rows.len() as i64).await?;
            tx.commit().await.ctx("commit a record insert")?;
            (inserted_revs.len() as u64, base, inserted_revs)
        });
        self.add_derived_rows(rows, base, inserted_revs).await?;
        Ok(inserted)
    }

    /// After an insert commits: the inserted records' sweep keys (for incremental lead runs),
    /// then their digest chunk (for full lead runs), in that order, so a chunk means its
    /// records' keys are stored. Should this stop part-way, the records have no chunk and the
    /// next full lead run reads their JSON and writes both (`verity_workflow::ncatc`). Row `i`
    /// of `rows` got rev `base + 1 + i`.
    async fn add_derived_rows(
        &self,
        rows: &[RecordRow],
        base: i64,
        inserted_revs: Vec<i64>,
    ) -> Result<(), StoreError> {
        let d = DerivedRows::of(rows, base, inserted_revs);
        self.add_citizen_key_hashes(&d.citizen).await?;
        self.add_status_key_hashes(&d.status).await?;
        self.add_record_digests(&d.digests, Some(&d.pack)).await
    }

    pub async fn get_record(&self, record_id: &str) -> Result<Option<SourceRecord>, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT record_id, record_json FROM records WHERE record_id = $1")
                .bind(record_id)
                .fetch_optional(pool)
                .await
                .ctx("read a record")?;
            row.as_ref().map(record_from_row).transpose()
        })
    }

    /// The records with these ids, each once, in no particular order; absent ids are skipped.
    /// One statement per [`IDS_PER_STATEMENT`] ids: a query's candidate records in one round
    /// trip instead of one each (each statement costs thread hand-offs in the SQLite driver).
    pub async fn get_records(
        &self,
        record_ids: &[String],
    ) -> Result<Vec<SourceRecord>, StoreError> {
        let mut ids: Vec<&str> = record_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT record_id, record_json FROM records WHERE record_id IN ({})",
                crate::scan::placeholders(self.kind(), chunk.len())
            );
            with_pool!(self, pool => {
                let mut q = sqlx::query(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                for row in q.fetch_all(pool).await.ctx("read records by id")? {
                    out.push(record_from_row(&row)?);
                }
            });
        }
        Ok(out)
    }

    /// Every record carrying any of `wanted` (identifier kind and value), each once, oldest
    /// first, in one statement. Values that are not valid identifiers of their kind match
    /// nothing (unlike [`Store::records_by_identifier`], which says why a value is invalid).
    pub async fn records_by_any_identifier(
        &self,
        wanted: &[(IdKind, String)],
    ) -> Result<Vec<SourceRecord>, StoreError> {
        let canonical: Vec<(IdKind, String)> = wanted
            .iter()
            .filter_map(|(kind, value)| kind.canonical(value).ok().map(|c| (*kind, c)))
            .collect();
        if canonical.is_empty() {
            return Ok(Vec::new());
        }
        // Column names come from a closed enum, never from input.
        let condition = canonical
            .iter()
            .enumerate()
            .map(|(i, (kind, _))| format!("{} = ${}", kind.code(), i + 1))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql =
            format!("SELECT record_id, record_json FROM records WHERE {condition} ORDER BY rev");
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql);
            for (_, value) in &canonical {
                q = q.bind(value.as_str());
            }
            let rows = q.fetch_all(pool).await.ctx("look up records by identifiers")?;
            rows.iter().map(record_from_row).collect()
        })
    }

    /// Records carrying identifier `value` of `kind`, oldest first. `value` is validated and
    /// canonicalised first (an invalid value is an error, not an empty result).
    pub async fn records_by_identifier(
        &self,
        kind: IdKind,
        value: &str,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        let canonical = kind.canonical(value)?;
        // The column name comes from a closed enum, never from input.
        let sql = format!(
            "SELECT record_id, record_json FROM records WHERE {} = $1 ORDER BY rev",
            kind.code()
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(canonical.as_str())
                .fetch_all(pool)
                .await
                .ctx("look up records by identifier")?;
            rows.iter().map(record_from_row).collect()
        })
    }

    /// Up to `limit` records with `rev > after_rev`, in rev order, with their revs. Pass the
    /// last rev returned to get the next page; revs only grow, so this also finds what changed
    /// since an earlier scan.
    pub async fn scan_records(
        &self,
        after_rev: i64,
        limit: u32,
    ) -> Result<Vec<(i64, SourceRecord)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT rev, record_id, record_json FROM records WHERE rev > $1 ORDER BY rev LIMIT $2",
            )
            .bind(after_rev)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .ctx("scan records")?;
            rows.iter()
                .map(|r| Ok((r.int("rev").ctx("read a record row")?, record_from_row(r)?)))
                .collect()
        })
    }

    /// The highest rev handed out so far (0 for an empty store).
    pub async fn max_record_rev(&self) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>("SELECT rev FROM record_rev_head WHERE id = 1")
                .fetch_one(pool)
                .await
                .ctx("read the record revision head")
        })
    }

    pub async fn count_records(&self) -> Result<u64, StoreError> {
        with_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
                .fetch_one(pool)
                .await
                .ctx("count records")?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Record counts per system; systems without records are absent.
    pub async fn count_records_by_system(&self) -> Result<BTreeMap<RecordSystem, u64>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT system, COUNT(*) AS n FROM records GROUP BY system")
                .fetch_all(pool)
                .await
                .ctx("count records by system")?;
            let mut out = BTreeMap::new();
            for r in &rows {
                let code = r.text("system").ctx("read record counts")?;
                let system = RecordSystem::parse(&code).map_err(|e| StoreError::Corrupt {
                    table: "records",
                    key: format!("system={code}"),
                    problem: e.problem,
                })?;
                let n = r.int("n").ctx("read record counts")?;
                out.insert(system, u64::try_from(n).unwrap_or(0));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sql_numbers_every_parameter_once() {
        let sql = insert_sql(2, Placeholders::Numbered);
        assert!(sql.contains("($1, $2,"));
        let positional = insert_sql(2, Placeholders::Positional);
        assert_eq!(positional.matches('?').count(), 2 * INSERT_COLUMNS.len());
        assert!(!positional.contains('$'));
        assert!(sql.contains(&format!("${})", 2 * INSERT_COLUMNS.len())));
        assert!(!sql.contains(&format!("${}", 2 * INSERT_COLUMNS.len() + 1)));
        assert!(ROWS_PER_STATEMENT * INSERT_COLUMNS.len() < 32766);
    }

    #[test]
    fn identifiers_are_canonicalised_before_lookup() {
        assert_eq!(
            IdKind::ANumber.canonical("A12-345-678"),
            Ok("012345678".to_string())
        );
        assert_eq!(
            IdKind::Passport.canonical("mx:g123"),
            Ok("MX:G123".to_string())
        );
        assert!(IdKind::Ssn.canonical("12").is_err());
        for k in IdKind::ALL {
            assert_eq!(IdKind::parse(k.code()), Ok(*k));
        }
        assert!(IdKind::parse("dob").is_err());
    }
}
