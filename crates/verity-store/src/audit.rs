//! The audit log: serialised appends to a hash chain, and its verification.
//!
//! An append runs in one write transaction: lock and read `audit_head`, build the next entry
//! with [`AuditEntry::next`], insert it, move the head. Concurrent appends therefore form one
//! unbroken chain. Verification reads one consistent snapshot in bounded chunks, checks every
//! link and hash as it goes, and finally checks that the last entry is the one the head names
//! (which catches a removed tail, the one edit a chain alone cannot see).
//!
//! There is deliberately no update or delete here; the schema's triggers refuse them too.

use crate::backend::{with_pool, Backend, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use verity_model::audit::{entry_hash, ChainError, GENESIS_HASH};
use verity_model::{AuditAction, AuditEntry, AuditEvent};

/// Entries read per query while verifying (bounds memory for any log size).
const VERIFY_CHUNK: i64 = 2000;

/// Why an audit log failed verification.
#[derive(Debug, thiserror::Error)]
pub enum AuditVerifyError {
    #[error("audit chain broken: {0}")]
    Chain(#[from] ChainError),
    #[error("audit entry {seq} is unreadable (edited): {problem}")]
    Unreadable { seq: u64, problem: String },
    #[error(
        "audit entry {seq}: column '{column}' disagrees with the entry's hashed content (edited)"
    )]
    Column { seq: u64, column: &'static str },
    #[error("audit head names entry {head_seq}, but the log ends at entry {last_seq} (entries removed or added without the head)")]
    Head { head_seq: u64, last_seq: u64 },
    #[error("audit head hash does not match entry {seq}'s hash (head or entry edited)")]
    HeadHash { seq: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuditVerifyError {
    /// The seq of the first bad entry, when one can be named.
    pub fn seq(&self) -> Option<u64> {
        match self {
            AuditVerifyError::Chain(ChainError::Sequence { position, .. }) => Some(*position),
            AuditVerifyError::Chain(ChainError::Link { seq })
            | AuditVerifyError::Chain(ChainError::Content { seq })
            | AuditVerifyError::Unreadable { seq, .. }
            | AuditVerifyError::Column { seq, .. }
            | AuditVerifyError::HeadHash { seq } => Some(*seq),
            AuditVerifyError::Head { last_seq, .. } => Some(last_seq + 1),
            AuditVerifyError::Store(_) => None,
        }
    }
}

/// The `kind` tag of an action, as stored in the `action` column.
pub(crate) fn action_kind(action: &AuditAction) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt {
        table: "audit_head",
        key: seq.to_string(),
        problem: "sequence number out of range".into(),
    })
}

pub(crate) fn seq_u64(table: &'static str, seq: i64) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        table,
        key: seq.to_string(),
        problem: "negative sequence number".into(),
    })
}

/// A stored row, before its JSON is trusted.
struct RawEntry {
    seq: u64,
    at: String,
    actor: String,
    agency: Option<String>,
    purpose: String,
    action: String,
    event_json: String,
    prev_hash: String,
    hash: String,
}

fn raw_from_row(row: &impl StoreRow) -> Result<RawEntry, StoreError> {
    let op = "read an audit row";
    Ok(RawEntry {
        seq: seq_u64("audit_log", row.int("seq").ctx(op)?)?,
        at: row.text("at").ctx(op)?,
        actor: row.text("actor").ctx(op)?,
        agency: row.opt_text("agency").ctx(op)?,
        purpose: row.text("purpose").ctx(op)?,
        action: row.text("action").ctx(op)?,
        event_json: row.text("event_json").ctx(op)?,
        prev_hash: row.text("prev_hash").ctx(op)?,
        hash: row.text("hash").ctx(op)?,
    })
}

impl RawEntry {
    /// The entry, or which part of the row is inconsistent with its hashed content.
    fn into_entry(self) -> Result<AuditEntry, AuditVerifyError> {
        let event: AuditEvent =
            serde_json::from_str(&self.event_json).map_err(|e| AuditVerifyError::Unreadable {
                seq: self.seq,
                problem: e.to_string(),
            })?;
        let column = if event.actor != self.actor {
            Some("actor")
        } else if event.agency.as_ref().map(|o| o.as_str()) != self.agency.as_deref() {
            Some("agency")
        } else if event.purpose.code() != self.purpose {
            Some("purpose")
        } else if action_kind(&event.action) != self.action {
            Some("action")
        } else {
            None
        };
        if let Some(column) = column {
            return Err(AuditVerifyError::Column {
                seq: self.seq,
                column,
            });
        }
        Ok(AuditEntry {
            seq: self.seq,
            at: self.at,
            event,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

const ENTRY_COLUMNS: &str = "seq, at, actor, agency, purpose, action, event_json, prev_hash, hash";

/// An event ready to append: its JSON and action kind computed outside any transaction.
pub(crate) struct PreparedAudit {
    pub(crate) event: AuditEvent,
    pub(crate) event_json: String,
    pub(crate) kind: String,
}

impl PreparedAudit {
    pub(crate) fn new(event: AuditEvent) -> Result<PreparedAudit, StoreError> {
        let event_json = serde_json::to_string(&event).map_err(|e| StoreError::Corrupt {
            table: "audit_log",
            key: "(new entry)".into(),
            problem: format!("cannot serialise event: {e}"),
        })?;
        let kind = action_kind(&event.action);
        Ok(PreparedAudit {
            event,
            event_json,
            kind,
        })
    }
}

/// Appends a [`PreparedAudit`] to the chain inside the write transaction `$tx` (either
/// backend) and evaluates to the new [`AuditEntry`]; `?` returns a [`StoreError`] from the
/// enclosing function. Lock and read the head, insert, move the head: the caller's commit makes
/// the entry durable together with whatever else the transaction wrote.
macro_rules! append_audit_in_tx {
    ($tx:ident, $prepared:expr) => {{
        let prepared: &$crate::audit::PreparedAudit = $prepared;
        // Locks the head row (PostgreSQL) / already holds the write lock (SQLite).
        let head = sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *$tx)
            .await
            .ctx("lock the audit head")?;
        let head_seq =
            $crate::audit::seq_u64("audit_head", head.int("seq").ctx("read the audit head")?)?;
        let head_hash = head.text("hash").ctx("read the audit head")?;
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let prev = if head_seq == 0 {
            None
        } else {
            Some((&head_seq, head_hash.as_str()))
        };
        let entry = verity_model::AuditEntry::next(prev, at, prepared.event.clone());
        let seq = $crate::audit::seq_i64(entry.seq)?;
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, agency, purpose, action, event_json, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(seq)
        .bind(entry.at.as_str())
        .bind(entry.event.actor.as_str())
        .bind(entry.event.agency.as_ref().map(|o| o.as_str()))
        .bind(entry.event.purpose.code())
        .bind(prepared.kind.as_str())
        .bind(prepared.event_json.as_str())
        .bind(entry.prev_hash.as_str())
        .bind(entry.hash.as_str())
        .execute(&mut *$tx)
        .await
        .ctx("insert an audit entry")?;
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(entry.hash.as_str())
            .execute(&mut *$tx)
            .await
            .ctx("advance the audit head")?;
        entry
    }};
}
pub(crate) use append_audit_in_tx;

impl Store {
    /// Appends an event to the audit chain and returns the stored entry. Durable when this
    /// returns. Safe to call from many tasks at once: appends are serialised on the chain head.
    pub async fn append_audit(&self, event: AuditEvent) -> Result<AuditEntry, StoreError> {
        let prepared = PreparedAudit::new(event)?;
        let _gate = self.write_gate().await;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start an audit append")?;
            let entry = append_audit_in_tx!(tx, &prepared);
            tx.commit().await.ctx("commit an audit append")?;
            Ok(entry)
        })
    }

    /// The head of the chain: (seq, hash) of the newest entry, or (0, genesis) when empty.
    pub async fn audit_head(&self) -> Result<(u64, String), StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await
                .ctx("read the audit head")?;
            Ok((
                seq_u64("audit_head", row.int("seq").ctx("read the audit head")?)?,
                row.text("hash").ctx("read the audit head")?,
            ))
        })
    }

    /// Up to `limit` entries with `seq > after_seq`, oldest first (for the auditor console).
    pub async fn list_audit(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let after = seq_i64(after_seq)?;
        let raws = with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("list audit entries")?;
            rows.iter().map(raw_from_row).collect::<Result<Vec<_>, _>>()?
        });
        raws.into_iter()
            .map(|r| {
                let seq = r.seq;
                r.into_entry().map_err(|e| StoreError::Corrupt {
                    table: "audit_log",
                    key: seq.to_string(),
                    problem: e.to_string(),
                })
            })
            .collect()
    }

    /// Verifies the whole audit chain and its head. Returns the number of entries.
    pub async fn verify_audit(&self) -> Result<u64, AuditVerifyError> {
        let sql =
            format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        with_pool!(self, pool => {
            let mut tx = pool.begin_snapshot().await.ctx("start an audit verification")?;
            let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&mut *tx)
                .await
                .ctx("read the audit head")?;
            let head_seq = seq_u64("audit_head", head.int("seq").ctx("read the audit head")?)?;
            let head_hash = head.text("hash").ctx("read the audit head")?;
            let mut checker = ChainChecker::new();
            let mut after: i64 = 0;
            loop {
                let rows = sqlx::query(&sql)
                    .bind(after)
                    .bind(VERIFY_CHUNK)
                    .fetch_all(&mut *tx)
                    .await
                    .ctx("read audit entries")?;
                let Some(last) = rows.last() else { break };
                after = last.int("seq").ctx("read an audit row")?;
                for row in &rows {
                    let entry = raw_from_row(row)?.into_entry()?;
                    checker.check(&entry)?;
                }
                if i64::try_from(rows.len()).unwrap_or(i64::MAX) < VERIFY_CHUNK {
                    break;
                }
            }
            tx.rollback().await.ctx("end an audit verification")?;
            checker.finish(head_seq, &head_hash)
        })
    }
}

/// Incremental form of `verity_model::audit::verify_chain`, one entry at a time.
struct ChainChecker {
    count: u64,
    prev_hash: String,
}

impl ChainChecker {
    fn new() -> Self {
        ChainChecker {
            count: 0,
            prev_hash: GENESIS_HASH.to_string(),
        }
    }

    fn check(&mut self, e: &AuditEntry) -> Result<(), ChainError> {
        let position = self.count + 1;
        if e.seq != position {
            return Err(ChainError::Sequence {
                position,
                expected: position,
                found: e.seq,
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(ChainError::Link { seq: e.seq });
        }
        if entry_hash(e.seq, &e.at, &e.event, &e.prev_hash) != e.hash {
            return Err(ChainError::Content { seq: e.seq });
        }
        self.count = position;
        self.prev_hash.clone_from(&e.hash);
        Ok(())
    }

    fn finish(self, head_seq: u64, head_hash: &str) -> Result<u64, AuditVerifyError> {
        if head_seq != self.count {
            return Err(AuditVerifyError::Head {
                head_seq,
                last_seq: self.count,
            });
        }
        if head_hash != self.prev_hash {
            return Err(AuditVerifyError::HeadHash { seq: self.count });
        }
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_model::Purpose;

    fn event(i: u64) -> AuditEvent {
        AuditEvent {
            actor: format!("user{i}"),
            agency: None,
            purpose: Purpose::Oversight,
            action: AuditAction::RecordRead {
                record_id: format!("R{i}"),
            },
        }
    }

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut v: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let prev = v.last().map(|e| (&e.seq, e.hash.as_str()));
            v.push(AuditEntry::next(
                prev,
                format!("2026-01-01T00:00:{i:02}.000000Z"),
                event(i),
            ));
        }
        v
    }

    #[test]
    fn checker_agrees_with_the_model_verifier() {
        let c = chain(6);
        let mut k = ChainChecker::new();
        for e in &c {
            k.check(e).expect("intact");
        }
        let last = c.last().expect("non-empty");
        assert_eq!(k.finish(last.seq, &last.hash).expect("head matches"), 6);
        assert_eq!(verity_model::audit::verify_chain(&c), Ok(6));
    }

    #[test]
    fn checker_reports_a_removed_tail_through_the_head() {
        let c = chain(4);
        let mut k = ChainChecker::new();
        for e in &c[..3] {
            k.check(e).expect("intact prefix");
        }
        assert!(matches!(
            k.finish(4, &c[3].hash),
            Err(AuditVerifyError::Head {
                head_seq: 4,
                last_seq: 3
            })
        ));
    }

    #[test]
    fn action_kind_is_the_serde_tag() {
        assert_eq!(action_kind(&AuditAction::Logout), "logout");
        assert_eq!(
            action_kind(&AuditAction::ImportStarted { source: "x".into() }),
            "import_started"
        );
    }
}
