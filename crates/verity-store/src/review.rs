//! LESC review work on stored queries: the specialist queue in urgency order, assignment,
//! notes, confirmations, corrections and overrides (as query events), and the reads behind the
//! subject view.
//!
//! Every review action is a compare-and-set on the query's `version`: two specialists working
//! the same query cannot silently overwrite each other; the second one is told to reload.
//! An action and its event row commit together or not at all.

use crate::backend::{with_pool, Backend, Store};
use crate::error::{DbContext, StoreError};
use crate::queries::{query_from_row, QueryRow, QUERY_COLUMNS};
use serde::{Deserialize, Serialize};
use verity_model::FieldError;

/// The state of a query waiting for a specialist.
pub const IN_REVIEW: &str = "in_review";

/// Why a review action was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("query '{query_id}' does not exist")]
    NotFound { query_id: String },
    /// Someone else changed the query since the caller read it.
    #[error("query '{query_id}' changed since it was read (expected version {expected}, now {actual}): reload it and try again")]
    Stale {
        query_id: String,
        expected: i64,
        actual: i64,
    },
    #[error("query '{query_id}' is {state}, not in review")]
    NotInReview { query_id: String, state: String },
    #[error("invalid review action: {0}")]
    Invalid(#[from] FieldError),
    /// The action does not apply to this query as it stands.
    #[error("query '{query_id}': {problem}")]
    Refused { query_id: String, problem: String },
}

/// The event kind that closes the citizenship review of an answered query.
pub const CITIZENSHIP_CLOSED: &str = "citizenship_closed";

/// What a LESC deportation officer found on a citizenship question.
pub const CITIZENSHIP_FINDINGS: &[&str] = &[
    "citizen_confirmed",
    "potential_citizen_legal_consultation",
    "claim_not_substantiated",
];

/// What a specialist did to a query. Stored as the event's `kind` and `detail_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewAction {
    /// Take the query (sets `assigned_to`).
    Assign,
    /// A free-text note for the file.
    Note { text: String },
    /// The query is about this candidate (index into the stored result), or about none of them.
    /// Sets the query's subject and proposed status.
    Confirm {
        candidate: Option<usize>,
        person_key: Option<String>,
        status: String,
    },
    /// A field of the answer's identity corrected by hand.
    Correct {
        field: String,
        value: String,
        reason: String,
    },
    /// The proposed status replaced by the specialist's; the reason is required.
    Override { status: String, reason: String },
}

impl ReviewAction {
    /// The event kind as stored in `query_events.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReviewAction::Assign => "assign",
            ReviewAction::Note { .. } => "note",
            ReviewAction::Confirm { .. } => "confirm",
            ReviewAction::Correct { .. } => "correct",
            ReviewAction::Override { .. } => "override",
        }
    }

    /// Refuses actions that lack what they need, naming the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let required = |field: &str, v: &str| {
            if v.trim().is_empty() {
                Err(FieldError::new(field, "is required"))
            } else {
                Ok(())
            }
        };
        match self {
            ReviewAction::Assign => Ok(()),
            ReviewAction::Note { text } => required("text", text),
            ReviewAction::Confirm { status, .. } => required("status", status),
            ReviewAction::Correct {
                field,
                value,
                reason,
            } => {
                required("field", field)?;
                required("value", value)?;
                required("reason", reason)
            }
            ReviewAction::Override { status, reason } => {
                required("status", status)?;
                required("reason", reason)
            }
        }
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `text` as a LIKE pattern that matches it literally (escape character `\`).
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    /// Queries waiting for a specialist, in working order: citizenship questions first (they
    /// have the highest priority), then people in custody, then the oldest; ties by id.
    pub async fn review_queue(&self, limit: u32) -> Result<Vec<QueryRow>, StoreError> {
        let sql = format!(
            "SELECT {QUERY_COLUMNS} FROM queries WHERE state = $1 \
             ORDER BY citizenship_review DESC, in_custody DESC, received_micros ASC, query_id ASC \
             LIMIT $2"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(IN_REVIEW)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("read the review queue")?;
            rows.iter().map(query_from_row).collect()
        })
    }

    /// Takes a query in review for `username` (compare-and-set on `expected_version`).
    pub async fn assign(
        &self,
        query_id: &str,
        username: &str,
        expected_version: i64,
    ) -> Result<QueryRow, ReviewError> {
        self.record_review_action(query_id, username, &ReviewAction::Assign, expected_version)
            .await
    }

    /// Applies one review action to a query in review and records it as a query event, both
    /// or neither. Compare-and-set: fails with [`ReviewError::Stale`] when the query's version
    /// is no longer `expected_version`. Returns the query as it is now.
    ///
    /// Effects on the row: `Assign` sets `assigned_to`; `Confirm` sets `person_key` and
    /// `status`; `Override` sets `status`; `Note` and `Correct` only bump the version. Every
    /// action assigns the query to its actor if nobody holds it yet.
    pub async fn record_review_action(
        &self,
        query_id: &str,
        actor: &str,
        action: &ReviewAction,
        expected_version: i64,
    ) -> Result<QueryRow, ReviewError> {
        action.validate()?;
        if actor.trim().is_empty() {
            return Err(FieldError::new("actor", "is required").into());
        }
        let detail =
            serde_json::to_string(action).map_err(|e| FieldError::new("detail", e.to_string()))?;
        let now = now_micros();
        let (set_person, person_key, set_status, status, force_assign) = match action {
            ReviewAction::Assign => (false, None, false, None, true),
            ReviewAction::Confirm {
                person_key, status, ..
            } => (true, person_key.clone(), true, Some(status.clone()), false),
            ReviewAction::Override { status, .. } => {
                (false, None, true, Some(status.clone()), false)
            }
            ReviewAction::Note { .. } | ReviewAction::Correct { .. } => {
                (false, None, false, None, false)
            }
        };
        let sql = format!(
            "UPDATE queries SET version = version + 1, updated_micros = $1, \
             assigned_to = CASE WHEN $2 OR assigned_to IS NULL THEN $3 ELSE assigned_to END, \
             person_key = CASE WHEN $4 THEN $5 ELSE person_key END, \
             status = CASE WHEN $6 THEN $7 ELSE status END \
             WHERE query_id = $8 AND version = $9 AND state = $10 \
             RETURNING {QUERY_COLUMNS}"
        );
        let updated = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a review action")?;
            let row = sqlx::query(&sql)
                .bind(now)
                .bind(force_assign)
                .bind(actor)
                .bind(set_person)
                .bind(person_key.as_deref())
                .bind(set_status)
                .bind(status.as_deref())
                .bind(query_id)
                .bind(expected_version)
                .bind(IN_REVIEW)
                .fetch_optional(&mut *tx)
                .await
                .ctx("apply a review action")?;
            match row {
                Some(row) => {
                    let updated = query_from_row(&row)?;
                    sqlx::query(
                        "INSERT INTO query_events (query_id, at_micros, actor, kind, detail_json) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(query_id)
                    .bind(now)
                    .bind(actor)
                    .bind(action.kind())
                    .bind(detail.as_str())
                    .execute(&mut *tx)
                    .await
                    .ctx("record a review event")?;
                    tx.commit().await.ctx("commit a review action")?;
                    Some(updated)
                }
                None => {
                    tx.rollback().await.ctx("end a refused review action")?;
                    None
                }
            }
        });
        match updated {
            Some(row) => Ok(row),
            None => Err(self.why_refused(query_id, expected_version).await),
        }
    }

    /// Explains a compare-and-set that matched no row.
    async fn why_refused(&self, query_id: &str, expected_version: i64) -> ReviewError {
        match self.get_query(query_id).await {
            Err(e) => e.into(),
            Ok(None) => ReviewError::NotFound {
                query_id: query_id.into(),
            },
            Ok(Some(q)) if q.version != expected_version => ReviewError::Stale {
                query_id: query_id.into(),
                expected: expected_version,
                actual: q.version,
            },
            Ok(Some(q)) => ReviewError::NotInReview {
                query_id: query_id.into(),
                state: q.state,
            },
        }
    }

    /// Answered queries whose citizenship question still waits for a deportation officer (the
    /// safe answer went out automatically; an answer issued after review closed it), in
    /// custody first, then the oldest.
    pub async fn pending_citizenship_reviews(
        &self,
        limit: u32,
    ) -> Result<Vec<QueryRow>, StoreError> {
        let sql = format!(
            "SELECT {QUERY_COLUMNS} FROM queries q WHERE citizenship_review = $1 AND automatic = $1 AND state = 'answered' \
             AND NOT EXISTS (SELECT 1 FROM query_events e WHERE e.query_id = q.query_id AND e.kind = $2) \
             ORDER BY in_custody DESC, received_micros ASC, query_id ASC LIMIT $3"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(true)
                .bind(CITIZENSHIP_CLOSED)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("read the pending citizenship reviews")?;
            rows.iter().map(query_from_row).collect()
        })
    }

    /// Closes the citizenship review of an answered query with the officer's finding and
    /// reason (both required), once: an event, and a version bump (compare-and-set).
    pub async fn close_citizenship_review(
        &self,
        query_id: &str,
        actor: &str,
        finding: &str,
        reason: &str,
        expected_version: i64,
    ) -> Result<QueryRow, ReviewError> {
        if !CITIZENSHIP_FINDINGS.contains(&finding) {
            return Err(FieldError::new(
                "finding",
                format!(
                    "'{finding}' is not one of {}",
                    CITIZENSHIP_FINDINGS.join(", ")
                ),
            )
            .into());
        }
        if reason.trim().is_empty() {
            return Err(FieldError::new("reason", "is required").into());
        }
        let Some(row) = self.get_query(query_id).await? else {
            return Err(ReviewError::NotFound {
                query_id: query_id.into(),
            });
        };
        let refused = |problem: &str| ReviewError::Refused {
            query_id: query_id.into(),
            problem: problem.into(),
        };
        if !row.citizenship_review {
            return Err(refused("it has no citizenship question"));
        }
        if row.state != "answered" {
            return Err(refused(
                "it is not answered yet: the officer closes it by issuing the answer",
            ));
        }
        if row.automatic != Some(true) {
            return Err(refused(
                "its answer was issued after a review, which closed the citizenship question",
            ));
        }
        let detail = serde_json::json!({ "finding": finding, "reason": reason.trim() }).to_string();
        let now = now_micros();
        let sql = format!(
            "UPDATE queries SET version = version + 1, updated_micros = $1 \
             WHERE query_id = $2 AND version = $3 AND NOT EXISTS \
             (SELECT 1 FROM query_events e WHERE e.query_id = $2 AND e.kind = $4) \
             RETURNING {QUERY_COLUMNS}"
        );
        let updated = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start closing a citizenship review")?;
            let row = sqlx::query(&sql)
                .bind(now)
                .bind(query_id)
                .bind(expected_version)
                .bind(CITIZENSHIP_CLOSED)
                .fetch_optional(&mut *tx)
                .await
                .ctx("close a citizenship review")?;
            match row {
                Some(row) => {
                    let updated = query_from_row(&row)?;
                    sqlx::query(
                        "INSERT INTO query_events (query_id, at_micros, actor, kind, detail_json) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(query_id)
                    .bind(now)
                    .bind(actor)
                    .bind(CITIZENSHIP_CLOSED)
                    .bind(detail.as_str())
                    .execute(&mut *tx)
                    .await
                    .ctx("record a citizenship finding")?;
                    tx.commit().await.ctx("commit a citizenship finding")?;
                    Some(updated)
                }
                None => {
                    tx.rollback().await.ctx("end a refused citizenship finding")?;
                    None
                }
            }
        });
        match updated {
            Some(r) => Ok(r),
            None if row.version != expected_version => Err(ReviewError::Stale {
                query_id: query_id.into(),
                expected: expected_version,
                actual: row.version,
            }),
            None => match self.get_query(query_id).await? {
                Some(now) if now.version != expected_version => Err(ReviewError::Stale {
                    query_id: query_id.into(),
                    expected: expected_version,
                    actual: now.version,
                }),
                _ => Err(refused("its citizenship review is already closed")),
            },
        }
    }

    /// Queries about a person, newest first: those whose subject is `person_key` and those whose
    /// stored result names it among the candidates. For the subject view.
    pub async fn queries_about_person(
        &self,
        person_key: &str,
        limit: u32,
    ) -> Result<Vec<QueryRow>, StoreError> {
        // The engine's result is compact serde JSON, so a candidate appears as this literal.
        let key_json = serde_json::to_string(person_key)
            .map_err(|e| StoreError::Invalid(FieldError::new("person_key", e.to_string())))?;
        let pattern = format!("%{}%", like_literal(&format!("\"person_key\":{key_json}")));
        let sql = format!(
            "SELECT {QUERY_COLUMNS} FROM queries \
             WHERE person_key = $1 OR result_json LIKE $2 ESCAPE '\\' \
             ORDER BY received_micros DESC, query_id DESC LIMIT $3"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(person_key)
                .bind(pattern.as_str())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .ctx("find queries about a person")?;
            rows.iter().map(query_from_row).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_literal_escapes_wildcards() {
        assert_eq!(like_literal("P_1%\\"), "P\\_1\\%\\\\");
        assert_eq!(like_literal("plain"), "plain");
    }

    #[test]
    fn actions_name_their_missing_field() {
        let e = ReviewAction::Override {
            status: "lpr".into(),
            reason: "  ".into(),
        }
        .validate()
        .expect_err("no reason");
        assert_eq!(e.field, "reason");
        let e = ReviewAction::Note { text: "".into() }
            .validate()
            .expect_err("empty note");
        assert_eq!(e.field, "text");
        assert!(ReviewAction::Assign.validate().is_ok());
    }

    #[test]
    fn actions_serialize_with_their_kind() {
        let a = ReviewAction::Confirm {
            candidate: Some(1),
            person_key: Some("P1".into()),
            status: "lpr".into(),
        };
        let json = serde_json::to_string(&a).expect("serialize");
        assert!(json.contains("\"kind\":\"confirm\""), "{json}");
        let back: ReviewAction = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, a);
    }
}
