//! Bookings: ANSI/NIST ten-print transactions as received and their identification results
//! (tables of migration 0005), and the enrolled fingerprint population read from the
//! biometrics records.
//!
//! A booking row is committed before the agency is answered, with the transaction bytes
//! exactly as received, so a crash between receipt and processing loses nothing: the rows
//! still in `received` or `identified` are the work to resume. (ORI, TCN) is unique, which
//! makes a repeated submission the same booking.

use crate::backend::{with_pool, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use sqlx::Row;
use verity_model::{RecordBody, RecordSystem, SourceRecord};

/// Where a booking is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookingState {
    /// Stored, not yet searched.
    Received,
    /// The 1:N search ran; its result (FIN or none) is stored; the query is not started yet.
    Identified,
    /// The query was started (or the booking needed none) and the result is stored.
    Done,
    /// Processing stopped with a recorded error.
    Failed,
}

impl BookingState {
    pub const ALL: &'static [BookingState] = &[
        BookingState::Received,
        BookingState::Identified,
        BookingState::Done,
        BookingState::Failed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            BookingState::Received => "received",
            BookingState::Identified => "identified",
            BookingState::Done => "done",
            BookingState::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<BookingState> {
        Self::ALL.iter().copied().find(|s| s.code() == raw)
    }
}

/// A booking to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBooking {
    pub booking_id: String,
    pub ori: String,
    pub tcn: String,
    pub received_micros: i64,
    /// The ANSI/NIST-ITL transaction exactly as received.
    pub transaction: Vec<u8>,
}

/// One booking as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRow {
    pub booking_id: String,
    pub ori: String,
    pub tcn: String,
    pub received_micros: i64,
    pub transaction: Vec<u8>,
    pub state: BookingState,
    /// The identified FIN; `None` before identification and when nothing matched.
    pub fin: Option<String>,
    /// Calibrated same-person probability of the best candidate.
    pub score: Option<f64>,
    pub query_id: Option<String>,
    /// The submission result answered to the agency (JSON text, not interpreted here).
    pub result_json: Option<String>,
    pub error: Option<String>,
    pub updated_micros: i64,
}

/// One enrolment of the biometric repository: which FIN holds prints, and how many fingers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub record_id: String,
    pub fin: String,
    /// Fingers captured, 1-10.
    pub fingers: u8,
}

const BOOKING_COLUMNS: &str = "booking_id, ori, tcn, received_micros, transaction_bytes, state, \
     fin, score, query_id, result_json, error, updated_micros";

fn booking_from_row<R>(row: &R) -> Result<BookingRow, StoreError>
where
    R: StoreRow + Row,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<f64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let op = "read a booking row";
    let booking_id = row.text("booking_id").ctx(op)?;
    let state_text = row.text("state").ctx(op)?;
    let state = BookingState::parse(&state_text).ok_or_else(|| StoreError::Corrupt {
        table: "bookings",
        key: booking_id.clone(),
        problem: format!("state '{state_text}' is not one of received, identified, done, failed"),
    })?;
    Ok(BookingRow {
        ori: row.text("ori").ctx(op)?,
        tcn: row.text("tcn").ctx(op)?,
        received_micros: row.int("received_micros").ctx(op)?,
        transaction: row.try_get("transaction_bytes").ctx(op)?,
        state,
        fin: row.opt_text("fin").ctx(op)?,
        score: row.try_get("score").ctx(op)?,
        query_id: row.opt_text("query_id").ctx(op)?,
        result_json: row.opt_text("result_json").ctx(op)?,
        error: row.opt_text("error").ctx(op)?,
        updated_micros: row.int("updated_micros").ctx(op)?,
        booking_id,
    })
}

fn not_found(booking_id: &str) -> StoreError {
    StoreError::NotFound {
        what: "booking",
        key: booking_id.to_string(),
    }
}

impl Store {
    /// Stores a booking (committed when this returns). When (ORI, TCN) is already stored,
    /// nothing is written and the stored booking comes back with `false`: a repeat is the same
    /// booking, not a new one.
    pub async fn insert_booking(&self, b: &NewBooking) -> Result<(BookingRow, bool), StoreError> {
        let inserted = with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO bookings (booking_id, ori, tcn, received_micros, transaction_bytes, \
                 state, updated_micros) VALUES ($1, $2, $3, $4, $5, 'received', $4) \
                 ON CONFLICT (ori, tcn) DO NOTHING",
            )
            .bind(&b.booking_id)
            .bind(&b.ori)
            .bind(&b.tcn)
            .bind(b.received_micros)
            .bind(&b.transaction)
            .execute(pool)
            .await
            .ctx("insert a booking")?
            .rows_affected()
        });
        let row = self
            .booking_by_tcn(&b.ori, &b.tcn)
            .await?
            .ok_or_else(|| not_found(&b.booking_id))?;
        Ok((row, inserted == 1))
    }

    pub async fn get_booking(&self, booking_id: &str) -> Result<Option<BookingRow>, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query(&format!(
                "SELECT {BOOKING_COLUMNS} FROM bookings WHERE booking_id = $1"
            ))
            .bind(booking_id)
            .fetch_optional(pool)
            .await
            .ctx("read a booking")?;
            row.as_ref().map(booking_from_row).transpose()
        })
    }

    /// The booking an agency sent under a transaction control number.
    pub async fn booking_by_tcn(
        &self,
        ori: &str,
        tcn: &str,
    ) -> Result<Option<BookingRow>, StoreError> {
        with_pool!(self, pool => {
            let row = sqlx::query(&format!(
                "SELECT {BOOKING_COLUMNS} FROM bookings WHERE ori = $1 AND tcn = $2"
            ))
            .bind(ori)
            .bind(tcn)
            .fetch_optional(pool)
            .await
            .ctx("read a booking by TCN")?;
            row.as_ref().map(booking_from_row).transpose()
        })
    }

    /// Records the 1:N result (`fin` None = no biometric match) and moves the booking from
    /// `received` to `identified`. A booking already past `received` keeps its first result
    /// (a redelivered work item must not change an answer), and that stored row is returned.
    pub async fn record_booking_identification(
        &self,
        booking_id: &str,
        fin: Option<&str>,
        score: Option<f64>,
        now_micros: i64,
    ) -> Result<BookingRow, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE bookings SET state = 'identified', fin = $2, score = $3, updated_micros = $4 \
                 WHERE booking_id = $1 AND state = 'received'",
            )
            .bind(booking_id)
            .bind(fin)
            .bind(score)
            .bind(now_micros)
            .execute(pool)
            .await
            .ctx("record a booking identification")?;
        });
        self.get_booking(booking_id)
            .await?
            .ok_or_else(|| not_found(booking_id))
    }

    /// Stores the query started from the booking and the answer, and marks it `done`. Only an
    /// `identified` booking moves; otherwise the stored row is returned unchanged.
    pub async fn finish_booking(
        &self,
        booking_id: &str,
        query_id: Option<&str>,
        result_json: &str,
        now_micros: i64,
    ) -> Result<BookingRow, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE bookings SET state = 'done', query_id = $2, result_json = $3, \
                 updated_micros = $4 WHERE booking_id = $1 AND state = 'identified'",
            )
            .bind(booking_id)
            .bind(query_id)
            .bind(result_json)
            .bind(now_micros)
            .execute(pool)
            .await
            .ctx("finish a booking")?;
        });
        self.get_booking(booking_id)
            .await?
            .ok_or_else(|| not_found(booking_id))
    }

    /// Marks a booking that is not yet `done` as `failed`, with the reason.
    pub async fn fail_booking(
        &self,
        booking_id: &str,
        problem: &str,
        now_micros: i64,
    ) -> Result<BookingRow, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE bookings SET state = 'failed', error = $2, updated_micros = $3 \
                 WHERE booking_id = $1 AND state IN ('received', 'identified')",
            )
            .bind(booking_id)
            .bind(problem)
            .bind(now_micros)
            .execute(pool)
            .await
            .ctx("fail a booking")?;
        });
        self.get_booking(booking_id)
            .await?
            .ok_or_else(|| not_found(booking_id))
    }

    /// Bookings still to process (`received` or `identified`), oldest first: the work to
    /// resume after a restart.
    pub async fn unfinished_bookings(&self, limit: u32) -> Result<Vec<BookingRow>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(&format!(
                "SELECT {BOOKING_COLUMNS} FROM bookings WHERE state IN ('received', 'identified') \
                 ORDER BY received_micros, booking_id LIMIT $1"
            ))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .ctx("list unfinished bookings")?;
            rows.iter().map(booking_from_row).collect()
        })
    }

    /// Number of bookings in each state (every state listed, zero included).
    pub async fn count_bookings_by_state(&self) -> Result<Vec<(BookingState, u64)>, StoreError> {
        let counted: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT state, COUNT(*) FROM bookings GROUP BY state")
                .fetch_all(pool)
                .await
                .ctx("count bookings")?
        });
        Ok(BookingState::ALL
            .iter()
            .map(|s| {
                let n = counted
                    .iter()
                    .find(|(code, _)| code == s.code())
                    .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
                (*s, n)
            })
            .collect())
    }

    /// Up to `limit` biometrics records with `rev > after_rev`, in rev order, as enrolments
    /// with their revs. Pass the last rev returned to page on, or later to catch up on new ones.
    pub async fn enrolments_since(
        &self,
        after_rev: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Enrolment)>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT rev, record_id, record_json FROM records WHERE system = $1 AND rev > $2 \
                 ORDER BY rev LIMIT $3",
            )
            .bind(RecordSystem::Biometrics.code())
            .bind(after_rev)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .ctx("scan biometrics records")?;
            let op = "read a biometrics record row";
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let rev = r.int("rev").ctx(op)?;
                let record_id = r.text("record_id").ctx(op)?;
                let json = r.text("record_json").ctx(op)?;
                let record: SourceRecord =
                    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                        table: "records",
                        key: record_id.clone(),
                        problem: e.to_string(),
                    })?;
                if let RecordBody::Biometrics(b) = &record.body {
                    out.push((
                        rev,
                        Enrolment {
                            record_id,
                            fin: b.fin.as_str().to_string(),
                            fingers: b.fingers.clamp(1, 10),
                        },
                    ));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_round_trip() {
        for s in BookingState::ALL {
            assert_eq!(BookingState::parse(s.code()), Some(*s));
        }
        assert_eq!(BookingState::parse("Done"), None);
    }
}
