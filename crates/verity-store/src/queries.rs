//! LESC queries: intake rows, engine results, issued IARs, deliveries per recipient, review
//! events and NCIC hit confirmation requests (tables of migration 0002).
//!
//! [`QueryRow`] and [`QUERY_COLUMNS`]/[`query_from_row`] are shared by the intake/processing
//! functions (this file) and the review functions (`review.rs`).

use crate::backend::StoreRow;
use crate::error::{DbContext, StoreError};

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
    let opt_int = |col: &str| -> Result<Option<i64>, StoreError> {
        Ok(row.opt_int(col).ctx(op)?)
    };
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
        answered_micros: opt_int("answered_micros")?,
        answered_by: row.opt_text("answered_by").ctx(op)?,
        assigned_to: row.opt_text("assigned_to").ctx(op)?,
        updated_micros: row.int("updated_micros").ctx(op)?,
        version: row.int("version").ctx(op)?,
    })
}
