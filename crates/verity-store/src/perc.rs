//! PERC: triage cases, detainers and requests for notification, their events and service
//! records (tables of migration 0003).
//!
//! The store keeps the enforcement action as JSON (the workflow's `EnforcementAction`) plus the
//! columns that index it; it never interprets the JSON. Every change to an action is a
//! compare-and-set on its `version` in one transaction with the event that explains it, so two
//! concurrent approvals of the same detainer cannot both succeed.

use crate::backend::{with_pool, Backend, Store, StoreRow};
use crate::error::{DbContext, StoreError};

/// Inserts one event row inside the caller's transaction (expanded per backend).
macro_rules! insert_event {
    ($tx:expr, $action_id:expr, $e:expr) => {{
        let e: &ActionEvent = $e;
        sqlx::query(
            "INSERT INTO detainer_events (action_id, at_micros, actor, kind, from_state, to_state, accepted, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind($action_id)
        .bind(e.at_micros)
        .bind(e.actor.as_str())
        .bind(e.kind.as_str())
        .bind(e.from_state.as_str())
        .bind(e.to_state.as_str())
        .bind(e.accepted)
        .bind(e.reason.as_str())
        .execute(&mut *$tx)
        .await
        .ctx("insert a detainer event")?;
    }};
}

/// A triage case to create from an issued IAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPercCase {
    pub case_id: String,
    pub query_id: String,
    pub person_key: Option<String>,
    pub aor: String,
    pub status: String,
    pub rank_points: i64,
    pub tier: String,
    pub rank_json: String,
    pub policy_version: String,
    pub expected_release_micros: Option<i64>,
    pub iar_micros: i64,
    pub now_micros: i64,
}

/// A triage case as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PercCase {
    pub case_id: String,
    pub query_id: String,
    pub person_key: Option<String>,
    pub aor: String,
    pub status: String,
    pub rank_points: i64,
    pub tier: String,
    pub rank_json: String,
    pub policy_version: String,
    pub expected_release_micros: Option<i64>,
    pub iar_micros: i64,
    /// `triage`, `action`, `no_action` or `citizenship_review`.
    pub state: String,
    pub decided_micros: Option<i64>,
    pub citizenship_claim_open: bool,
    pub citizenship_indicia_open: bool,
    pub citizenship_note: String,
    pub created_micros: i64,
    pub updated_micros: i64,
    pub version: i64,
}

const CASE_COLUMNS: &str = "case_id, query_id, person_key, aor, status, rank_points, tier, \
     rank_json, policy_version, expected_release_micros, iar_micros, state, decided_micros, \
     citizenship_claim_open, citizenship_indicia_open, citizenship_note, created_micros, \
     updated_micros, version";

fn case_from_row(row: &impl StoreRow) -> Result<PercCase, StoreError> {
    let op = "read a perc case row";
    Ok(PercCase {
        case_id: row.text("case_id").ctx(op)?,
        query_id: row.text("query_id").ctx(op)?,
        person_key: row.opt_text("person_key").ctx(op)?,
        aor: row.text("aor").ctx(op)?,
        status: row.text("status").ctx(op)?,
        rank_points: row.int("rank_points").ctx(op)?,
        tier: row.text("tier").ctx(op)?,
        rank_json: row.text("rank_json").ctx(op)?,
        policy_version: row.text("policy_version").ctx(op)?,
        expected_release_micros: row.opt_int("expected_release_micros").ctx(op)?,
        iar_micros: row.int("iar_micros").ctx(op)?,
        state: row.text("state").ctx(op)?,
        decided_micros: row.opt_int("decided_micros").ctx(op)?,
        citizenship_claim_open: row.flag("citizenship_claim_open").ctx(op)?,
        citizenship_indicia_open: row.flag("citizenship_indicia_open").ctx(op)?,
        citizenship_note: row.text("citizenship_note").ctx(op)?,
        created_micros: row.int("created_micros").ctx(op)?,
        updated_micros: row.int("updated_micros").ctx(op)?,
        version: row.int("version").ctx(op)?,
    })
}

/// An enforcement action's indexed columns, kept in step with its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionColumns {
    pub kind: String,
    pub state: String,
    pub lift_reason: Option<String>,
    pub basis: Option<String>,
    pub warrant_kind: Option<String>,
    pub prepared_by: String,
    pub approved_by: Option<String>,
    pub action_json: String,
    pub lodged_micros: Option<i64>,
    pub hold_until_micros: Option<i64>,
    pub release_notified_micros: Option<i64>,
}

/// A new action: its columns, what it rests on and where the subject is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    pub action_id: String,
    pub case_id: String,
    pub columns: ActionColumns,
    pub evidence_json: String,
    pub facility: String,
}

/// An action as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    pub action_id: String,
    pub case_id: String,
    pub columns: ActionColumns,
    pub evidence_json: String,
    pub facility: String,
    pub created_micros: i64,
    pub updated_micros: i64,
    pub version: i64,
}

const ACTION_COLUMNS: &str = "action_id, case_id, kind, state, lift_reason, basis, warrant_kind, \
     prepared_by, approved_by, action_json, evidence_json, facility, lodged_micros, \
     hold_until_micros, release_notified_micros, created_micros, updated_micros, version";

fn action_from_row(row: &impl StoreRow) -> Result<ActionRow, StoreError> {
    let op = "read a detainer row";
    Ok(ActionRow {
        action_id: row.text("action_id").ctx(op)?,
        case_id: row.text("case_id").ctx(op)?,
        columns: ActionColumns {
            kind: row.text("kind").ctx(op)?,
            state: row.text("state").ctx(op)?,
            lift_reason: row.opt_text("lift_reason").ctx(op)?,
            basis: row.opt_text("basis").ctx(op)?,
            warrant_kind: row.opt_text("warrant_kind").ctx(op)?,
            prepared_by: row.text("prepared_by").ctx(op)?,
            approved_by: row.opt_text("approved_by").ctx(op)?,
            action_json: row.text("action_json").ctx(op)?,
            lodged_micros: row.opt_int("lodged_micros").ctx(op)?,
            hold_until_micros: row.opt_int("hold_until_micros").ctx(op)?,
            release_notified_micros: row.opt_int("release_notified_micros").ctx(op)?,
        },
        evidence_json: row.text("evidence_json").ctx(op)?,
        facility: row.text("facility").ctx(op)?,
        created_micros: row.int("created_micros").ctx(op)?,
        updated_micros: row.int("updated_micros").ctx(op)?,
        version: row.int("version").ctx(op)?,
    })
}

/// One line of an action's history: a transition, or an attempt the gates refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEvent {
    pub at_micros: i64,
    pub actor: String,
    pub kind: String,
    pub from_state: String,
    pub to_state: String,
    pub accepted: bool,
    pub reason: String,
}

fn event_from_row(row: &impl StoreRow) -> Result<ActionEvent, StoreError> {
    let op = "read a detainer event row";
    Ok(ActionEvent {
        at_micros: row.int("at_micros").ctx(op)?,
        actor: row.text("actor").ctx(op)?,
        kind: row.text("kind").ctx(op)?,
        from_state: row.text("from_state").ctx(op)?,
        to_state: row.text("to_state").ctx(op)?,
        accepted: row.flag("accepted").ctx(op)?,
        reason: row.text("reason").ctx(op)?,
    })
}

/// When and how a copy was served on the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub action_id: String,
    pub served_micros: i64,
    pub method: String,
    pub served_by: String,
    pub note: String,
    pub recorded_by: String,
    pub recorded_micros: i64,
}

/// What a compare-and-set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the row's new version.
    Updated { version: i64 },
    /// Someone changed the row first (or it does not exist): nothing was written.
    Stale,
}

/// Counts for the PERC metrics page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PercCounts {
    /// (state, lift reason or "", count)
    pub actions_by_state: Vec<(String, String, i64)>,
    /// (event reason, count) of refused attempts.
    pub refusals_by_reason: Vec<(String, i64)>,
    /// (case state, count)
    pub cases_by_state: Vec<(String, i64)>,
}

impl Store {
    /// The LESC query a case comes from (read here so PERC does not wait on the LESC API).
    pub async fn perc_query(
        &self,
        query_id: &str,
    ) -> Result<Option<crate::queries::QueryRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM queries WHERE query_id = $1",
            crate::queries::QUERY_COLUMNS
        );
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(query_id).fetch_optional(pool).await.ctx("read a query for perc")?;
            row.as_ref().map(crate::queries::query_from_row).transpose()
        })
    }

    /// Creates a triage case; `false` when the query already has one (idempotent).
    pub async fn insert_perc_case(&self, c: &NewPercCase) -> Result<bool, StoreError> {
        with_pool!(self, pool => {
            let r = sqlx::query(
                "INSERT INTO perc_cases (case_id, query_id, person_key, aor, status, rank_points, \
                 tier, rank_json, policy_version, expected_release_micros, iar_micros, state, \
                 created_micros, updated_micros, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'triage', $12, $12, 0) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&c.case_id)
            .bind(&c.query_id)
            .bind(&c.person_key)
            .bind(&c.aor)
            .bind(&c.status)
            .bind(c.rank_points)
            .bind(&c.tier)
            .bind(&c.rank_json)
            .bind(&c.policy_version)
            .bind(c.expected_release_micros)
            .bind(c.iar_micros)
            .bind(c.now_micros)
            .execute(pool)
            .await
            .ctx("insert a perc case")?;
            Ok(r.rows_affected() == 1)
        })
    }

    pub async fn get_perc_case(&self, case_id: &str) -> Result<Option<PercCase>, StoreError> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM perc_cases WHERE case_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(case_id).fetch_optional(pool).await.ctx("read a perc case")?;
            row.as_ref().map(case_from_row).transpose()
        })
    }

    pub async fn perc_case_for_query(
        &self,
        query_id: &str,
    ) -> Result<Option<PercCase>, StoreError> {
        let sql = format!("SELECT {CASE_COLUMNS} FROM perc_cases WHERE query_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(query_id).fetch_optional(pool).await.ctx("read a perc case")?;
            row.as_ref().map(case_from_row).transpose()
        })
    }

    /// Cases in `states`, highest rank first, then the soonest expected release (unknown last).
    pub async fn list_perc_cases(
        &self,
        states: &[&str],
        limit: i64,
    ) -> Result<Vec<PercCase>, StoreError> {
        let placeholders: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 2)).collect();
        let filter = if states.is_empty() {
            String::new()
        } else {
            format!("WHERE state IN ({})", placeholders.join(", "))
        };
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM perc_cases {filter} \
             ORDER BY rank_points DESC, \
             CASE WHEN expected_release_micros IS NULL THEN 1 ELSE 0 END, \
             expected_release_micros, iar_micros, case_id LIMIT $1"
        );
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql).bind(limit);
            for s in states {
                q = q.bind(*s);
            }
            let rows = q.fetch_all(pool).await.ctx("list perc cases")?;
            rows.iter().map(case_from_row).collect()
        })
    }

    /// Moves a case to `state` if it is still at `expected_version`; the first move out of
    /// triage stamps the decision time.
    pub async fn set_perc_case_state(
        &self,
        case_id: &str,
        state: &str,
        expected_version: i64,
        now_micros: i64,
    ) -> Result<CasOutcome, StoreError> {
        with_pool!(self, pool => {
            let r = sqlx::query(
                "UPDATE perc_cases SET state = $1, updated_micros = $2, version = version + 1, \
                 decided_micros = CASE WHEN decided_micros IS NULL AND $1 <> 'triage' THEN $2 ELSE decided_micros END \
                 WHERE case_id = $3 AND version = $4",
            )
            .bind(state)
            .bind(now_micros)
            .bind(case_id)
            .bind(expected_version)
            .execute(pool)
            .await
            .ctx("update a perc case state")?;
            Ok(if r.rows_affected() == 1 {
                CasOutcome::Updated { version: expected_version + 1 }
            } else {
                CasOutcome::Stale
            })
        })
    }

    /// Records (or resolves) a citizenship claim or indicia noted on a case.
    pub async fn set_perc_citizenship(
        &self,
        case_id: &str,
        claim_open: bool,
        indicia_open: bool,
        note: &str,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let r = sqlx::query(
                "UPDATE perc_cases SET citizenship_claim_open = $1, citizenship_indicia_open = $2, \
                 citizenship_note = $3, updated_micros = $4, version = version + 1 WHERE case_id = $5",
            )
            .bind(claim_open)
            .bind(indicia_open)
            .bind(note)
            .bind(now_micros)
            .bind(case_id)
            .execute(pool)
            .await
            .ctx("record a citizenship claim")?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound { what: "perc case", key: case_id.to_string() });
            }
            Ok(())
        })
    }

    /// Creates an action with its `prepare` event, in one transaction.
    pub async fn insert_action(
        &self,
        a: &NewAction,
        actor: &str,
        reason: &str,
        now_micros: i64,
    ) -> Result<(), StoreError> {
        let c = &a.columns;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a detainer insert")?;
            let r = sqlx::query(
                "INSERT INTO detainers (action_id, case_id, kind, state, lift_reason, basis, \
                 warrant_kind, prepared_by, approved_by, action_json, evidence_json, facility, \
                 lodged_micros, hold_until_micros, release_notified_micros, created_micros, \
                 updated_micros, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, 0) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&a.action_id)
            .bind(&a.case_id)
            .bind(&c.kind)
            .bind(&c.state)
            .bind(&c.lift_reason)
            .bind(&c.basis)
            .bind(&c.warrant_kind)
            .bind(&c.prepared_by)
            .bind(&c.approved_by)
            .bind(&c.action_json)
            .bind(&a.evidence_json)
            .bind(&a.facility)
            .bind(c.lodged_micros)
            .bind(c.hold_until_micros)
            .bind(c.release_notified_micros)
            .bind(now_micros)
            .execute(&mut *tx)
            .await
            .ctx("insert a detainer")?;
            if r.rows_affected() == 0 {
                return Err(StoreError::AlreadyExists { what: "detainer", key: a.action_id.clone() });
            }
            sqlx::query(
                "INSERT INTO detainer_events (action_id, at_micros, actor, kind, from_state, to_state, accepted, reason) \
                 VALUES ($1, $2, $3, 'prepare', '', $4, $5, $6)",
            )
            .bind(&a.action_id)
            .bind(now_micros)
            .bind(actor)
            .bind(&c.state)
            .bind(true)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .ctx("insert a detainer event")?;
            tx.commit().await.ctx("commit a detainer insert")?;
            Ok(())
        })
    }

    pub async fn get_action(&self, action_id: &str) -> Result<Option<ActionRow>, StoreError> {
        let sql = format!("SELECT {ACTION_COLUMNS} FROM detainers WHERE action_id = $1");
        with_pool!(self, pool => {
            let row = sqlx::query(&sql).bind(action_id).fetch_optional(pool).await.ctx("read a detainer")?;
            row.as_ref().map(action_from_row).transpose()
        })
    }

    pub async fn actions_for_case(&self, case_id: &str) -> Result<Vec<ActionRow>, StoreError> {
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM detainers WHERE case_id = $1 ORDER BY created_micros, action_id"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql).bind(case_id).fetch_all(pool).await.ctx("list a case's detainers")?;
            rows.iter().map(action_from_row).collect()
        })
    }

    /// Actions in `states`, the soonest hold end first (none last), for the tracking board.
    pub async fn list_actions(
        &self,
        states: &[&str],
        limit: i64,
    ) -> Result<Vec<ActionRow>, StoreError> {
        let placeholders: Vec<String> = (0..states.len()).map(|i| format!("${}", i + 2)).collect();
        let filter = if states.is_empty() {
            String::new()
        } else {
            format!("WHERE state IN ({})", placeholders.join(", "))
        };
        let sql = format!(
            "SELECT {ACTION_COLUMNS} FROM detainers {filter} \
             ORDER BY CASE WHEN hold_until_micros IS NULL THEN 1 ELSE 0 END, hold_until_micros, \
             updated_micros DESC, action_id LIMIT $1"
        );
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql).bind(limit);
            for s in states {
                q = q.bind(*s);
            }
            let rows = q.fetch_all(pool).await.ctx("list detainers")?;
            rows.iter().map(action_from_row).collect()
        })
    }

    /// Writes the action's new columns if it is still at `expected_version`, together with the
    /// event that explains the change. Exactly one of several concurrent callers holding the
    /// same version succeeds; the others get [`CasOutcome::Stale`] and nothing is written.
    pub async fn update_action(
        &self,
        action_id: &str,
        expected_version: i64,
        columns: &ActionColumns,
        event: &ActionEvent,
    ) -> Result<CasOutcome, StoreError> {
        let c = columns;
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a detainer update")?;
            let r = sqlx::query(
                "UPDATE detainers SET kind = $1, state = $2, lift_reason = $3, basis = $4, \
                 warrant_kind = $5, prepared_by = $6, approved_by = $7, action_json = $8, \
                 lodged_micros = $9, hold_until_micros = $10, release_notified_micros = $11, \
                 updated_micros = $12, version = version + 1 \
                 WHERE action_id = $13 AND version = $14",
            )
            .bind(&c.kind)
            .bind(&c.state)
            .bind(&c.lift_reason)
            .bind(&c.basis)
            .bind(&c.warrant_kind)
            .bind(&c.prepared_by)
            .bind(&c.approved_by)
            .bind(&c.action_json)
            .bind(c.lodged_micros)
            .bind(c.hold_until_micros)
            .bind(c.release_notified_micros)
            .bind(event.at_micros)
            .bind(action_id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .ctx("update a detainer")?;
            if r.rows_affected() != 1 {
                tx.rollback().await.ctx("roll back a stale detainer update")?;
                return Ok(CasOutcome::Stale);
            }
            insert_event!(tx, action_id, event);
            tx.commit().await.ctx("commit a detainer update")?;
            Ok(CasOutcome::Updated { version: expected_version + 1 })
        })
    }

    /// Appends an event without changing the action: refused attempts, notes.
    pub async fn append_action_event(
        &self,
        action_id: &str,
        event: &ActionEvent,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await.ctx("start a detainer event append")?;
            insert_event!(tx, action_id, event);
            tx.commit().await.ctx("commit a detainer event")?;
            Ok(())
        })
    }

    pub async fn action_events(&self, action_id: &str) -> Result<Vec<ActionEvent>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT at_micros, actor, kind, from_state, to_state, accepted, reason \
                 FROM detainer_events WHERE action_id = $1 ORDER BY event_id",
            )
            .bind(action_id)
            .fetch_all(pool)
            .await
            .ctx("list detainer events")?;
            rows.iter().map(event_from_row).collect()
        })
    }

    pub async fn add_service_record(&self, s: &ServiceRecord) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO service_records (action_id, served_micros, method, served_by, note, recorded_by, recorded_micros) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&s.action_id)
            .bind(s.served_micros)
            .bind(&s.method)
            .bind(&s.served_by)
            .bind(&s.note)
            .bind(&s.recorded_by)
            .bind(s.recorded_micros)
            .execute(pool)
            .await
            .ctx("insert a service record")?;
            Ok(())
        })
    }

    pub async fn service_records(&self, action_id: &str) -> Result<Vec<ServiceRecord>, StoreError> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT action_id, served_micros, method, served_by, note, recorded_by, recorded_micros \
                 FROM service_records WHERE action_id = $1 ORDER BY service_id",
            )
            .bind(action_id)
            .fetch_all(pool)
            .await
            .ctx("list service records")?;
            let op = "read a service record row";
            rows.iter()
                .map(|r| {
                    Ok(ServiceRecord {
                        action_id: r.text("action_id").ctx(op)?,
                        served_micros: r.int("served_micros").ctx(op)?,
                        method: r.text("method").ctx(op)?,
                        served_by: r.text("served_by").ctx(op)?,
                        note: r.text("note").ctx(op)?,
                        recorded_by: r.text("recorded_by").ctx(op)?,
                        recorded_micros: r.int("recorded_micros").ctx(op)?,
                    })
                })
                .collect()
        })
    }

    /// Counts of actions by state and lift reason, refusals by reason, cases by state.
    pub async fn perc_counts(&self) -> Result<PercCounts, StoreError> {
        let op = "count perc work";
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT state, COALESCE(lift_reason, '') AS reason, COUNT(*) AS n FROM detainers \
                 GROUP BY state, COALESCE(lift_reason, '') ORDER BY state, reason",
            )
            .fetch_all(pool)
            .await
            .ctx(op)?;
            let mut out = PercCounts::default();
            for r in &rows {
                out.actions_by_state.push((r.text("state").ctx(op)?, r.text("reason").ctx(op)?, r.int("n").ctx(op)?));
            }
            let rows = sqlx::query(
                "SELECT reason, COUNT(*) AS n FROM detainer_events WHERE accepted = $1 \
                 GROUP BY reason ORDER BY n DESC, reason",
            )
            .bind(false)
            .fetch_all(pool)
            .await
            .ctx(op)?;
            for r in &rows {
                out.refusals_by_reason.push((r.text("reason").ctx(op)?, r.int("n").ctx(op)?));
            }
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM perc_cases GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await
                .ctx(op)?;
            for r in &rows {
                out.cases_by_state.push((r.text("state").ctx(op)?, r.int("n").ctx(op)?));
            }
            Ok(out)
        })
    }
}
