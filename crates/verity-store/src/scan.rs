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
use crate::BackendKind;
use verity_model::SourceRecord;

/// Parameters per statement: under SQLite's (32,766) and PostgreSQL's (65,535) limits, and
/// large, because every statement is a round trip to the database thread or server (which
/// dominates an incremental run's time on a busy machine).
pub(crate) const VALUES_PER_QUERY: usize = 4_000;

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

/// Decodes a record's JSON: the fast path ([`FastRecord`]) first, the derived decoder when the
/// fast path cannot read it (it then also gives the error message).
fn decode(record_id: &str, json: &str) -> Result<SourceRecord, StoreError> {
    if let Ok(fast) = serde_json::from_str::<FastRecord>(json) {
        return Ok(SourceRecord {
            record_id: fast.record_id,
            identity: fast.identity,
            body: fast.body.0,
        });
    }
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "records",
        key: record_id.to_string(),
        problem: e.to_string(),
    })
}

/// A [`SourceRecord`] decoded without serde's buffering of internally tagged enums: the
/// derived decoder of `RecordBody` (tagged by `system`) first copies the whole body into an
/// intermediate tree to find the tag, then decodes from that tree. Stored bodies are written
/// by the same derive, which puts the tag first, so this decoder reads the tag and then the
/// system's fields straight from the text. A body whose tag is not first is refused here and
/// decoded by the derived decoder instead, so both give the same records.
#[derive(serde::Deserialize)]
struct FastRecord {
    record_id: String,
    identity: verity_model::Identity,
    body: FastBody,
}

struct FastBody(verity_model::RecordBody);

impl<'de> serde::Deserialize<'de> for FastBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FastBodyVisitor)
    }
}

struct FastBodyVisitor;

impl<'de> serde::de::Visitor<'de> for FastBodyVisitor {
    type Value = FastBody;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record body with its system tag first")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FastBody, A::Error> {
        use serde::de::{value::MapAccessDeserializer, Error};
        use serde::Deserialize;
        use verity_model::record::*;
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some("system") {
            return Err(A::Error::custom("the body's system tag is not first"));
        }
        let system: String = map.next_value()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(FastBody(match system.as_str() {
            "benefits" => RecordBody::Benefits(BenefitsRecord::deserialize(rest)?),
            "travel" => RecordBody::Travel(TravelRecord::deserialize(rest)?),
            "enforcement" => RecordBody::Enforcement(EnforcementRecord::deserialize(rest)?),
            "court" => RecordBody::Court(CourtRecord::deserialize(rest)?),
            "criminal" => RecordBody::Criminal(CriminalRecord::deserialize(rest)?),
            "custody" => RecordBody::Custody(CustodyRecord::deserialize(rest)?),
            "citizenship" => RecordBody::Citizenship(CitizenshipRecord::deserialize(rest)?),
            "biometrics" => RecordBody::Biometrics(BiometricsRecord::deserialize(rest)?),
            other => return Err(A::Error::custom(format!("unknown system '{other}'"))),
        }))
    }
}

/// `n` parameter marks for an `IN (...)` list or a `VALUES` row: `?, ?, ...` on SQLite (which
/// binds numbered `$N` marks by walking the whole parameter list: quadratic in long lists),
/// `$1, $2, ...` on PostgreSQL.
pub(crate) fn placeholders(kind: BackendKind, n: usize) -> String {
    match kind {
        BackendKind::Sqlite => vec!["?"; n].join(", "),
        BackendKind::Postgres => (1..=n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `rows` rows of `width` parameter marks each, `(..), (..)`, numbered across rows on
/// PostgreSQL.
pub(crate) fn value_rows(kind: BackendKind, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| match kind {
            BackendKind::Sqlite => format!("({})", vec!["?"; width].join(", ")),
            BackendKind::Postgres => format!(
                "({})",
                (1..=width)
                    .map(|c| format!("${}", r * width + c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
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
                    placeholders(self.kind(), chunk.len())
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
                    placeholders(self.kind(), chunk.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_positional_on_sqlite_and_numbered_on_postgres() {
        assert_eq!(placeholders(BackendKind::Postgres, 3), "$1, $2, $3");
        assert_eq!(placeholders(BackendKind::Sqlite, 3), "?, ?, ?");
        assert_eq!(placeholders(BackendKind::Sqlite, 0), "");
        assert_eq!(
            value_rows(BackendKind::Postgres, 2, 2),
            "($1, $2), ($3, $4)"
        );
        assert_eq!(value_rows(BackendKind::Sqlite, 2, 2), "(?, ?), (?, ?)");
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

    #[test]
    fn the_fast_decoder_reads_what_the_derived_one_reads() {
        use verity_model::record::*;
        use verity_model::{ANumber, Identity, PartialDate, PersonName};
        let mut identity = Identity {
            name: PersonName::new("ANA", "", "LOPEZ"),
            dob: PartialDate::full(1980, 1, 2).ok(),
            country_of_birth: "MX".into(),
            ..Identity::default()
        };
        identity.ids.a_number = ANumber::parse("A12345678").ok();
        let bodies = vec![
            RecordBody::Enforcement(EnforcementRecord {
                event: EnforcementEvent::RemovalOrder,
                date: PartialDate::full(2020, 1, 2).unwrap(),
                order: Some(OrderKind::Final),
                entry: None,
                office: "BAL".into(),
                detail: "with \"quotes\" and \u{e9}".into(),
            }),
            RecordBody::Citizenship(CitizenshipRecord {
                evidence: CitizenshipEvidence::UsPassport,
                document_number: "X1".into(),
                issued: None,
            }),
            RecordBody::Court(CourtRecord {
                case_number: "C-1".into(),
                filed: PartialDate::full(2019, 5, 6).unwrap(),
                outcome: CourtOutcome::InAbsentiaOrder,
                decided: None,
                relief: String::new(),
                appeal_pending: false,
            }),
        ];
        for body in bodies {
            let r = SourceRecord {
                record_id: "R-1".into(),
                identity: identity.clone(),
                body,
            };
            let json = serde_json::to_string(&r).unwrap();
            let fast: FastRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(fast.body.0, r.body);
            assert_eq!(decode("R-1", &json).unwrap(), r);
        }
        // The tag not first: the derived decoder still reads it.
        let moved = r#"{"record_id":"R-2","identity":IDENT,"body":{"evidence":"us_passport","document_number":"X","issued":null,"system":"citizenship"}}"#
            .replace("IDENT", &serde_json::to_string(&identity).unwrap());
        assert!(serde_json::from_str::<FastRecord>(&moved).is_err());
        assert_eq!(decode("R-2", &moved).unwrap().record_id, "R-2");
    }
}
