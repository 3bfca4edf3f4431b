//! Streaming scans over the whole record store for batch jobs (NCATC lead runs).
//!
//! A batch job over every record cannot hold every decoded record in memory (10,000,000 people
//! are some 37,000,000 records). These reads let it work in two passes instead:
//! - [`Store::scan_record_json`]: pages of raw record JSON in `rev` order, so the caller decodes
//!   on its own worker threads and keeps only what it needs (identifiers, a few keys);
//! - [`Store::records_by_revs`]: the whole records of chosen revs (one person group at a time);
//! - [`Store::records_by_identifiers`]: every record holding any of many identifier values, in
//!   one query per page of values (an incremental run's expansion by shared identifiers).

use crate::backend::{with_pool, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use crate::records::IdKind;
use verity_model::SourceRecord;

/// Parameters per `IN (...)` list: well under SQLite's and PostgreSQL's limits.
const VALUES_PER_QUERY: usize = 900;

/// One stored record, not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub rev: i64,
    pub record_id: String,
    pub json: String,
}

impl RawRecord {
    /// Decodes the record; a row that does not decode is reported as corrupt, with its id.
    pub fn decode(&self) -> Result<SourceRecord, StoreError> {
        decode(&self.record_id, &self.json)
    }
}

fn decode(record_id: &str, json: &str) -> Result<SourceRecord, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "records",
        key: record_id.to_string(),
        problem: e.to_string(),
    })
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Up to `limit` records with `after_rev < rev <= to_rev`, in rev order, undecoded.
    pub async fn scan_record_json(
        &self,
        after_rev: i64,
        to_rev: i64,
        limit: u32,
    ) -> Result<Vec<RawRecord>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT rev, record_id, record_json FROM records WHERE rev > $1 AND rev <= $2 \
                 ORDER BY rev LIMIT $3",
            )
            .bind(after_rev)
            .bind(to_rev)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .ctx("scan record json")?;
            rows.iter()
                .map(|r| {
                    Ok(RawRecord {
                        rev: r.int("rev").ctx("read a record row")?,
                        record_id: r.text("record_id").ctx("read a record row")?,
                        json: r.text("record_json").ctx("read a record row")?,
                    })
                })
                .collect()
        })
    }

    /// The records with these revs (absent revs are skipped), in rev order, undecoded.
    pub async fn records_by_revs(&self, revs: &[i64]) -> Result<Vec<RawRecord>, StoreError> {
        let mut out = Vec::with_capacity(revs.len());
        with_pool!(self, pool => {
            for chunk in revs.chunks(VALUES_PER_QUERY) {
                let sql = format!(
                    "SELECT rev, record_id, record_json FROM records WHERE rev IN ({})",
                    placeholders(chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for rev in chunk {
                    q = q.bind(*rev);
                }
                for r in q.fetch_all(pool).await.ctx("read records by rev")? {
                    out.push(RawRecord {
                        rev: r.int("rev").ctx("read a record row")?,
                        record_id: r.text("record_id").ctx("read a record row")?,
                        json: r.text("record_json").ctx("read a record row")?,
                    });
                }
            }
        });
        out.sort_by_key(|r| r.rev);
        Ok(out)
    }

    /// Every record holding one of `values` as its `kind` identifier, in rev order, each once.
    /// Values that are not valid identifiers of that kind match nothing.
    pub async fn records_by_identifiers(
        &self,
        kind: IdKind,
        values: &[String],
    ) -> Result<Vec<RawRecord>, StoreError> {
        let canonical: Vec<String> = values
            .iter()
            .filter_map(|v| kind.canonical(v).ok())
            .collect();
        let mut out = Vec::new();
        with_pool!(self, pool => {
            for chunk in canonical.chunks(VALUES_PER_QUERY) {
                // The column name comes from a closed enum, never from input.
                let sql = format!(
                    "SELECT rev, record_id, record_json FROM records WHERE {} IN ({})",
                    kind.code(),
                    placeholders(chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for v in chunk {
                    q = q.bind(v.as_str());
                }
                for r in q.fetch_all(pool).await.ctx("look up records by identifiers")? {
                    out.push(RawRecord {
                        rev: r.int("rev").ctx("read a record row")?,
                        record_id: r.text("record_id").ctx("read a record row")?,
                        json: r.text("record_json").ctx("read a record row")?,
                    });
                }
            }
        });
        out.sort_by_key(|r| r.rev);
        out.dedup_by_key(|r| r.rev);
        Ok(out)
    }
}

impl Store {
    /// Rows of the lead sweep key table (`lead_citizen_keys`) that start with any of
    /// `prefixes`, in key order. Each prefix must end with `|`: rows are `prefix` + record id,
    /// so one index range per prefix finds them.
    pub async fn sweep_keys_with_prefixes(
        &self,
        prefixes: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        with_pool!(self, pool => {
            // Two parameters per prefix; 400 ranges per statement.
            for chunk in prefixes.chunks(400) {
                let ranges: Vec<String> = (0..chunk.len())
                    .map(|i| format!("(citizen_key >= ${} AND citizen_key < ${})", 2 * i + 1, 2 * i + 2))
                    .collect();
                // No ORDER BY: with one, SQLite scans the whole index in key order testing
                // every range on every row (minutes at 100k people); without it, each range is
                // one index search. The result is sorted below.
                let sql = format!(
                    "SELECT citizen_key FROM lead_citizen_keys WHERE {}",
                    ranges.join(" OR ")
                );
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for p in chunk {
                    q = q.bind(p.as_str()).bind(range_end(p));
                }
                out.extend(q.fetch_all(pool).await.ctx("look up sweep keys by prefix")?);
            }
        });
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// The smallest string greater than every string starting with `prefix` (its last character
/// raised by one; `|` becomes `}`).
fn range_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    match chars.pop() {
        Some(c) => {
            let next = char::from_u32(u32::from(c) + 1).unwrap_or(char::MAX);
            chars.push(next);
            chars.into_iter().collect()
        }
        None => String::from(char::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_just_after_the_prefix() {
        assert_eq!(range_end("S|A|B|19800102|"), "S|A|B|19800102}");
        assert!("S|A|B|19800102|R-1" < range_end("S|A|B|19800102|").as_str());
        assert!("S|A|B|19800102|R-1" >= "S|A|B|19800102|");
        assert!("S|A|B|198001020" < "S|A|B|19800102|");
    }

    #[test]
    fn placeholders_are_numbered_from_one() {
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(placeholders(0), "");
    }

    #[test]
    fn a_bad_row_is_reported_with_its_id() {
        let raw = RawRecord {
            rev: 1,
            record_id: "R-1".into(),
            json: "{".into(),
        };
        match raw.decode() {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "R-1"),
            other => panic!("expected a corrupt-row error, got {other:?}"),
        }
    }
}
