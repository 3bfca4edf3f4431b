//! LESC console: the specialist review queue, query detail with candidates side by side, the
//! person-centric subject view and the IAR preview.
//!
//! Pages read the stored query (`queries.result_json` is the engine's [`StoredResult`]: candidate
//! persons with record ids), fetch every record they show from the store, and recompute each
//! candidate's status determination with its citations, so the specialist sees exactly which
//! records an answer rests on. Review actions are compare-and-set query events
//! (`verity_store::review`); the IAR is composed from the engine's `decide_for` on the
//! specialist's choice and issued through `crate::lesc_api::issue_iar`.
//!
//! Every page that shows person data is audited with the user, the requesting agency's ORI and
//! the purpose the user picked (or the page's default); every decision is audited too.

use crate::console::NavItem;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use verity_model::record::csv_header;
use verity_model::{AuditAction, AuditEvent, ImmigrationStatus, Ori, Purpose, SourceRecord};
use verity_store::queries::QueryRow;
use verity_store::review::{ReviewAction, ReviewError};
use verity_store::IdKind;
use verity_workflow::lesc::engine::{QueryInput, StoredResult};
use verity_workflow::lesc::iar::{status_text, IarInput};
use verity_workflow::lesc::intake::Iaq;
use verity_workflow::lesc::queue::{due_at, sla_state, working_order, QueueItem, SlaState};
use verity_workflow::lesc::{Candidate, Decision, Iar, LescPolicy};
use verity_workflow::{Permission, Principal};

/// How many queued queries the queue page shows by default, and at most.
const QUEUE_PAGE: u32 = 25;
const QUEUE_PAGE_MAX: u32 = 1000;
/// Bounds on the subject view, so one busy person cannot make a page unbounded.
const SUBJECT_QUERIES: u32 = 200;
const SUBJECT_RECORDS: usize = 500;
/// Identifiers that tie records of one person together across systems.
const LINKING_IDS: &[IdKind] = &[
    IdKind::ANumber,
    IdKind::Fin,
    IdKind::FbiNumber,
    IdKind::Ssn,
    IdKind::Passport,
];
/// Fields of the answer's identity a specialist may correct.
const CORRECTABLE: &[&str] = &["name", "dob", "a_number", "fin", "fbi_number"];
/// Purposes a reader of LESC pages may state.
const PURPOSES: &[Purpose] = &[
    Purpose::StatusDetermination,
    Purpose::CitizenshipReview,
    Purpose::CriminalJustice,
    Purpose::Enforcement,
];

/// Console pages of this area: (path, permission, handler).
pub fn staff_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    vec![
        ("/lesc/queue", Permission::ReviewQueries, get(queue_page)),
        (
            "/lesc/queries/{id}",
            Permission::ReviewQueries,
            get(detail_page),
        ),
        (
            "/lesc/queries/{id}/action",
            Permission::ReviewQueries,
            post(review_action),
        ),
        (
            "/lesc/queries/{id}/issue",
            Permission::IssueIar,
            post(issue_answer),
        ),
        (
            "/lesc/queries/{id}/citizenship",
            Permission::ReviewCitizenship,
            post(close_citizenship),
        ),
        (
            "/lesc/queries/{id}/iar",
            Permission::ViewPersonData,
            get(iar_page),
        ),
        (
            "/lesc/subjects/{person_key}",
            Permission::ViewPersonData,
            get(subject_page),
        ),
    ]
}

/// Agency API routes of this area: (path, permission, handler).
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    Vec::new()
}

/// Navigation entries of this area: (href, label, permission).
pub const NAV: &[(&str, &str, Permission)] =
    &[("/lesc/queue", "LESC queue", Permission::ReviewQueries)];

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

use crate::console::nav_for;

fn render(t: &impl askama::Template) -> Result<Html<String>, AppError> {
    Ok(Html(t.render()?))
}

fn micros_text(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("(time {micros} out of range)"))
}

fn micros_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// "3d 04h", "2h 05m" or "7m".
fn age_text(from: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let mins = (now - from).num_minutes().max(0);
    let (d, h, m) = (mins / 1440, (mins / 60) % 24, mins % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m")
    }
}

/// The purpose a reader stated, or the page's default. Unknown codes fall back to the default
/// (the purpose list is the form's own).
fn purpose_of(raw: Option<&str>, default: Purpose) -> Purpose {
    raw.and_then(|c| Purpose::parse(c).ok())
        .filter(|p| PURPOSES.contains(p))
        .unwrap_or(default)
}

pub struct PurposeOption {
    pub code: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn purpose_options(chosen: Purpose) -> Vec<PurposeOption> {
    PURPOSES
        .iter()
        .map(|p| PurposeOption {
            code: p.code(),
            label: match p {
                Purpose::StatusDetermination => "Status determination",
                Purpose::CitizenshipReview => "Citizenship review",
                Purpose::CriminalJustice => "Criminal justice (agency request)",
                Purpose::Enforcement => "Enforcement",
                _ => "Other",
            },
            selected: *p == chosen,
        })
        .collect()
}

async fn audit(
    state: &AppState,
    who: &Principal,
    agency: Option<&str>,
    purpose: Purpose,
    action: AuditAction,
) -> Result<(), AppError> {
    state
        .store
        .append_audit(AuditEvent {
            actor: who.username.clone(),
            agency: agency.and_then(|o| Ori::parse(o).ok()),
            purpose,
            action,
        })
        .await?;
    Ok(())
}

fn iaq_of(row: &QueryRow) -> Option<Iaq> {
    serde_json::from_str(&row.iaq_json).ok()
}

/// A booking's FIN came from a fingerprint match (as the intake processed it).
fn booking_fin(row: &QueryRow, iaq: &Iaq) -> Option<verity_model::Fin> {
    (row.channel == "booking")
        .then(|| iaq.ids.fin.clone())
        .flatten()
}

fn stored_result(row: &QueryRow) -> Option<StoredResult> {
    row.result_json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
}

fn status_label(code: Option<&str>) -> String {
    match code.map(ImmigrationStatus::parse) {
        Some(Ok(s)) => format!("{} ({})", status_text(s), s.code()),
        Some(Err(_)) => code.unwrap_or_default().to_string(),
        None => "not yet determined".into(),
    }
}

async fn load_query(state: &AppState, id: &str) -> Result<QueryRow, AppError> {
    state.store.get_query(id).await?.ok_or(AppError::NotFound)
}

async fn fetch_records(state: &AppState, ids: &[String]) -> Result<Vec<SourceRecord>, AppError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = state.store.get_record(id).await? {
            out.push(r);
        }
    }
    Ok(out)
}

/// The candidates of a stored result with their records, as the engine had them.
async fn candidates_of(
    state: &AppState,
    result: &StoredResult,
) -> Result<Vec<Candidate>, AppError> {
    let mut out = Vec::with_capacity(result.candidates.len());
    for c in &result.candidates {
        out.push(Candidate {
            person_key: c.person_key.clone(),
            probability: c.probability,
            strong_identifier: c.strong_identifier,
            biometric: c.biometric,
            explanation: c.explanation.clone(),
            records: fetch_records(state, &c.record_ids).await?,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// What the specialists did: the review state read back from the query's events.
// ---------------------------------------------------------------------------------------------

/// The effect of a query's review events, in order.
#[derive(Debug, Default, Clone, PartialEq)]
struct ReviewState {
    /// `Some(choice)` once a specialist confirmed a candidate (`Some(None)`: none of them).
    chosen: Option<Option<usize>>,
    /// A status override that came after the last confirmation, with its reason.
    override_status: Option<(ImmigrationStatus, String)>,
    /// Corrected identity fields of the answer (last one wins).
    corrections: BTreeMap<String, String>,
}

fn review_state(events: &[verity_store::queries::QueryEvent]) -> ReviewState {
    let mut s = ReviewState::default();
    for e in events {
        let Ok(action) = serde_json::from_str::<ReviewAction>(&e.detail_json) else {
            continue;
        };
        match action {
            ReviewAction::Confirm { candidate, .. } => {
                s.chosen = Some(candidate);
                s.override_status = None;
            }
            ReviewAction::Override { status, reason } => {
                if let Ok(st) = ImmigrationStatus::parse(&status) {
                    s.override_status = Some((st, reason));
                }
            }
            ReviewAction::Correct { field, value, .. } => {
                s.corrections.insert(field, value);
            }
            ReviewAction::Assign | ReviewAction::Note { .. } => {}
        }
    }
    s
}

/// The answer as it would go out now: the engine's decision recomposed on the specialist's
/// choice (or the engine's own proposal), then the override and corrections applied.
struct Draft {
    iar: Iar,
    decision: Decision,
    candidates: Vec<Candidate>,
    result: StoredResult,
    review: ReviewState,
    current_choice: Option<usize>,
}

async fn draft_answer(state: &AppState, row: &QueryRow, decided_by: &str) -> Result<Draft, String> {
    let iaq = iaq_of(row).ok_or("the stored query cannot be read")?;
    let result = stored_result(row).ok_or("the engine has not processed this query yet")?;
    let candidates = candidates_of(state, &result)
        .await
        .map_err(|e| e.public_message())?;
    let events = state
        .store
        .query_events(&row.query_id)
        .await
        .map_err(|e| AppError::from(e).public_message())?;
    let review = review_state(&events);
    let current_choice = review.chosen.unwrap_or(result.decision.chosen);
    let input = QueryInput {
        iaq: &iaq,
        biometric_fin: booking_fin(row, &iaq),
        today: Utc::now().date_naive(),
    };
    let mut decision =
        state
            .lesc
            .engine
            .read()
            .await
            .decide_for(&candidates, current_choice, &input);
    if let Some((status, _)) = &review.override_status {
        decision.determination.status = *status;
    }
    let issued_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut iar = Iar::compose(
        IarInput {
            query_id: &row.query_id,
            requesting_ori: &row.ori,
            issued_at: &issued_at,
            decided_by,
            field_office: row.aor.clone(),
        },
        &decision,
        &candidates,
        &state.lesc.policy,
        &state.lesc.offenses,
    );
    if let Some(identity) = iar.identity.as_mut() {
        // A specialist's confirmation is the identity's basis now, as in `decide_for`.
        if review.chosen.is_some() {
            identity.probability = 1.0;
        }
        for (field, value) in &review.corrections {
            match field.as_str() {
                "name" => identity.name = value.clone(),
                "dob" => identity.dob = value.clone(),
                "a_number" => identity.a_number = value.clone(),
                "fin" => identity.fin = value.clone(),
                "fbi_number" => identity.fbi_number = value.clone(),
                _ => {}
            }
        }
    }
    Ok(Draft {
        iar,
        decision,
        candidates,
        result,
        review,
        current_choice,
    })
}

// ---------------------------------------------------------------------------------------------
// Queue
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct PageQuery {
    purpose: Option<String>,
    done: Option<String>,
    /// The query the reader came from (subject view): its agency is recorded in the audit.
    from: Option<String>,
    /// How many queue rows to show.
    limit: Option<u32>,
}

pub struct QueueRowView {
    pub query_id: String,
    /// The id shortened for the table (the full id is the link's title).
    pub short_id: String,
    pub name: String,
    pub dob: String,
    pub ori: String,
    pub channel: String,
    pub received: String,
    pub age: String,
    pub in_custody: bool,
    pub citizenship: bool,
    pub sla_class: &'static str,
    pub sla_text: String,
    pub due: String,
    pub status: String,
    pub reasons: Vec<String>,
    pub assigned_to: String,
}

#[derive(askama::Template)]
#[template(path = "lesc_queue.html")]
struct QueuePage {
    nav: Vec<NavItem>,
    username: String,
    rows: Vec<QueueRowView>,
    /// Answered with the safe answer; the citizenship question waits for an officer.
    citizenship_pending: Vec<QueueRowView>,
    /// All queries in review (the page may show fewer).
    waiting: i64,
    limit: u32,
    breached: usize,
    in_custody: usize,
    citizenship: usize,
    purpose: &'static str,
    policy_version: String,
    now: String,
}

fn sla_view(s: SlaState) -> (&'static str, &'static str) {
    match s {
        SlaState::OnTime => ("sla-ok", "on time"),
        SlaState::DueSoon => ("sla-soon", "due soon"),
        SlaState::Breached => ("sla-breached", "BREACHED"),
    }
}

/// The first 12 characters of an id, with an ellipsis when cut.
fn short_id(id: &str) -> String {
    match id.char_indices().nth(12) {
        Some((cut, _)) => format!("{}…", &id[..cut]),
        None => id.to_string(),
    }
}

fn queue_item(row: &QueryRow) -> QueueItem {
    QueueItem {
        query_id: row.query_id.clone(),
        received_at: micros_time(row.received_micros),
        in_custody: row.in_custody,
        citizenship: row.citizenship_review,
    }
}

fn queue_rows(rows: &[QueryRow], policy: &LescPolicy, now: DateTime<Utc>) -> Vec<QueueRowView> {
    let by_id: BTreeMap<&str, &QueryRow> = rows.iter().map(|r| (r.query_id.as_str(), r)).collect();
    let mut items: Vec<QueueItem> = rows.iter().map(queue_item).collect();
    working_order(&mut items);
    items
        .iter()
        .filter_map(|item| {
            let row = by_id.get(item.query_id.as_str())?;
            let iaq = iaq_of(row);
            let (sla_class, sla_text) = sla_view(sla_state(item, now, policy));
            Some(QueueRowView {
                query_id: row.query_id.clone(),
                short_id: short_id(&row.query_id),
                name: iaq
                    .as_ref()
                    .map(|q| q.name.last_first())
                    .unwrap_or_else(|| "(unreadable query)".into()),
                dob: iaq
                    .as_ref()
                    .and_then(|q| q.dob.map(|d| d.to_string()))
                    .unwrap_or_default(),
                ori: row.ori.clone(),
                channel: row.channel.clone(),
                received: micros_text(row.received_micros),
                age: age_text(item.received_at, now),
                in_custody: row.in_custody,
                citizenship: row.citizenship_review,
                sla_class,
                sla_text: sla_text.into(),
                due: due_at(item, policy)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string(),
                status: row
                    .status
                    .as_deref()
                    .and_then(|c| ImmigrationStatus::parse(c).ok())
                    .map(|s| status_text(s).to_string())
                    .unwrap_or_else(|| status_label(row.status.as_deref())),
                reasons: stored_result(row)
                    .map(|r| r.decision.reviews)
                    .unwrap_or_default(),
                assigned_to: row.assigned_to.clone().unwrap_or_default(),
            })
        })
        .collect()
}

async fn queue_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, AppError> {
    let policy = &state.lesc.policy;
    let purpose = purpose_of(q.purpose.as_deref(), Purpose::StatusDetermination);
    let limit = q.limit.unwrap_or(QUEUE_PAGE).clamp(1, QUEUE_PAGE_MAX);
    let stored = state.store.review_queue(limit).await?;
    let waiting: i64 = state
        .store
        .count_queries_by_state()
        .await?
        .into_iter()
        .filter(|(st, _)| st == verity_store::review::IN_REVIEW)
        .map(|(_, n)| n)
        .sum();
    let now = Utc::now();
    let rows = queue_rows(&stored, policy, now);
    let citizenship_pending = queue_rows(
        &state.store.pending_citizenship_reviews(limit).await?,
        policy,
        now,
    );
    // The queue shows names and birth dates as the agencies sent them.
    audit(
        &state,
        &who,
        None,
        purpose,
        AuditAction::Search {
            query: "LESC review queue".into(),
            results: (rows.len() + citizenship_pending.len()) as u64,
        },
    )
    .await?;
    render(&QueuePage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        waiting,
        limit,
        citizenship_pending,
        breached: rows
            .iter()
            .filter(|r| r.sla_class == "sla-breached")
            .count(),
        in_custody: rows.iter().filter(|r| r.in_custody).count(),
        citizenship: rows.iter().filter(|r| r.citizenship).count(),
        rows,
        purpose: purpose.code(),
        policy_version: policy.version.clone(),
        now: now.format("%Y-%m-%d %H:%M UTC").to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Records as the pages show them
// ---------------------------------------------------------------------------------------------

pub struct CitationView {
    pub record_id: String,
    pub fact: String,
    pub note: String,
}

fn citations(c: &[verity_policy::Citation]) -> Vec<CitationView> {
    c.iter()
        .map(|c| CitationView {
            record_id: c.record_id.clone(),
            fact: c.fact.clone(),
            note: c.note.clone(),
        })
        .collect()
}

pub struct RecordView {
    pub record_id: String,
    pub system: String,
    pub name: String,
    pub dob: String,
    /// Every non-empty source field, in the system's column order.
    pub fields: Vec<(String, String)>,
    /// Why this record is on the page (subject view).
    pub provenance: String,
    /// The proposed status rests on it.
    pub cited: bool,
    /// It indicates U.S. citizenship.
    pub indicia: bool,
}

fn record_view(r: &SourceRecord, provenance: String, cited: bool, indicia: bool) -> RecordView {
    let header = csv_header(r.system());
    let values = r.to_csv_row();
    let fields = header
        .iter()
        .zip(values)
        .filter(|(col, v)| !v.is_empty() && **col != "record_id")
        .map(|(col, v)| (col.to_string(), v))
        .collect();
    RecordView {
        record_id: r.record_id.clone(),
        system: r.system().to_string(),
        name: r.identity.name.last_first(),
        dob: r.identity.dob.map(|d| d.to_string()).unwrap_or_default(),
        fields,
        provenance,
        cited,
        indicia,
    }
}

/// A `YYYY-MM-DD` cell (partial dates carry `00` for unknown month or day).
fn is_date_cell(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

pub struct TimelineEntry {
    pub date: String,
    pub system: String,
    pub record_id: String,
    pub what: String,
}

/// Every dated fact of the records (birth dates excepted), oldest first.
fn timeline(records: &[RecordView]) -> Vec<TimelineEntry> {
    let mut out: Vec<TimelineEntry> = records
        .iter()
        .flat_map(|r| {
            r.fields
                .iter()
                .filter(|(col, v)| col != "dob" && is_date_cell(v))
                .map(|(col, v)| TimelineEntry {
                    date: v.clone(),
                    system: r.system.clone(),
                    record_id: r.record_id.clone(),
                    what: describe_date(&r.system, col, &r.fields),
                })
        })
        .collect();
    out.sort_by(|a, b| {
        a.date
            .cmp(&b.date)
            .then_with(|| a.record_id.cmp(&b.record_id))
    });
    out
}

/// "benefits: naturalization granted (decided)" and the like: the column with the record's
/// kind-of-event cells beside it.
fn describe_date(system: &str, column: &str, fields: &[(String, String)]) -> String {
    let cell = |name: &str| {
        fields
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let kind = match system {
        "benefits" => format!("{} {}", cell("benefit"), cell("outcome")),
        "travel" => format!("{} {}", cell("direction"), cell("class_of_admission")),
        "enforcement" => format!("{} {}", cell("event"), cell("order")),
        "court" => format!("case {} {}", cell("case_number"), cell("outcome")),
        "criminal" => format!("{} {}", cell("ncic_code"), cell("disposition")),
        "custody" => format!("booking {} {}", cell("booking_number"), cell("facility")),
        "citizenship" => cell("evidence").to_string(),
        "biometrics" => format!("FIN {}", cell("fin")),
        _ => String::new(),
    };
    format!("{} ({})", kind.trim(), column.replace('_', " "))
}

// ---------------------------------------------------------------------------------------------
// Query detail
// ---------------------------------------------------------------------------------------------

pub struct CandidateView {
    pub index: usize,
    pub person_key: String,
    pub probability: String,
    pub strong_identifier: bool,
    pub biometric: bool,
    pub explanation: Vec<(String, String, String)>,
    pub status: String,
    pub basis: Vec<CitationView>,
    pub indicia: Vec<CitationView>,
    pub conflicts: Vec<String>,
    pub records: Vec<RecordView>,
    pub chosen: bool,
}

pub struct EventView {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

pub struct StatusOption {
    pub code: &'static str,
    pub text: &'static str,
}

#[derive(askama::Template)]
#[template(path = "lesc_query.html")]
struct DetailPage {
    nav: Vec<NavItem>,
    username: String,
    query_id: String,
    state: String,
    ori: String,
    channel: String,
    received: String,
    in_custody: bool,
    citizenship_review: bool,
    automatic: String,
    aor: String,
    assigned_to: String,
    version: i64,
    sla_class: &'static str,
    sla_text: String,
    due: String,
    as_received: Vec<(&'static str, String)>,
    raw_text: Option<String>,
    reasons: Vec<String>,
    engine_status: String,
    /// The answer as it would go out now, or why none can be drafted.
    proposal: Result<ProposalView, String>,
    candidates: Vec<CandidateView>,
    history: Vec<EventView>,
    purposes: Vec<PurposeOption>,
    purpose: &'static str,
    statuses: Vec<StatusOption>,
    correctable: &'static [&'static str],
    notice: Option<String>,
    error: Option<String>,
    answered: bool,
    /// The reader may close a citizenship review (deportation officer).
    may_close_citizenship: bool,
    /// An answered query's citizenship question still waits for an officer.
    citizenship_open: bool,
    findings: &'static [&'static str],
    may_issue: bool,
}

pub struct ProposalView {
    pub status: String,
    pub intended_action: String,
    pub subject: String,
    pub basis: Vec<CitationView>,
    pub indicia: Vec<CitationView>,
    pub confirmed: String,
    pub override_reason: Option<String>,
    pub corrections: Vec<(String, String)>,
}

fn as_received(iaq: &Iaq) -> Vec<(&'static str, String)> {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let ids = &iaq.ids;
    vec![
        ("Message id", iaq.message_id.clone()),
        ("Purpose", format!("{:?}", iaq.purpose)),
        ("Attention", iaq.attention.clone()),
        ("Phone", iaq.phone.clone()),
        ("Name", iaq.name.last_first()),
        ("Date of birth", opt(iaq.dob.map(|d| d.to_string()))),
        ("Sex", opt(iaq.sex.map(|s| s.code().to_string()))),
        (
            "Place of birth",
            format!("{} ({})", iaq.pob_code, iaq.country_of_birth),
        ),
        (
            "In custody",
            if iaq.in_custody { "yes" } else { "no" }.into(),
        ),
        ("Offense (NCIC)", iaq.offense_code.clone()),
        (
            "A-number",
            opt(ids.a_number.as_ref().map(|v| v.to_string())),
        ),
        ("FIN", opt(ids.fin.as_ref().map(|v| v.to_string()))),
        (
            "FBI number",
            opt(ids.fbi_number.as_ref().map(|v| v.to_string())),
        ),
        (
            "State id",
            opt(ids.state_id.as_ref().map(|v| v.to_string())),
        ),
        (
            "Passport",
            opt(ids.passport.as_ref().map(|v| v.to_string())),
        ),
        ("SSN", opt(ids.ssn.as_ref().map(|v| v.to_string()))),
        ("Driver licence", iaq.driver_license.clone()),
        (
            "Encounter",
            format!("{} {}", iaq.encounter_county, iaq.encounter_state)
                .trim()
                .to_string(),
        ),
        (
            "Claims U.S. citizenship",
            if iaq.citizenship_claimed { "YES" } else { "no" }.into(),
        ),
        ("Remarks", iaq.remarks.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .collect()
}

fn event_view(e: &verity_store::queries::QueryEvent) -> EventView {
    let detail = match serde_json::from_str::<ReviewAction>(&e.detail_json) {
        Ok(ReviewAction::Assign) => "took the query".into(),
        Ok(ReviewAction::Note { text }) => text,
        Ok(ReviewAction::Confirm {
            candidate,
            person_key,
            status,
        }) => match candidate {
            Some(i) => format!(
                "candidate {} ({}) confirmed; status {status}",
                i + 1,
                person_key.unwrap_or_default()
            ),
            None => format!("none of the candidates; status {status}"),
        },
        Ok(ReviewAction::Correct {
            field,
            value,
            reason,
        }) => format!("{field} corrected to '{value}': {reason}"),
        Ok(ReviewAction::Override { status, reason }) => {
            format!("status overridden to {status}: {reason}")
        }
        // Events of the intake and issue steps: their JSON object as "key: value" pairs.
        Err(_) => match serde_json::from_str::<serde_json::Value>(&e.detail_json) {
            Ok(serde_json::Value::Object(map)) => map
                .iter()
                .map(|(k, v)| format!("{}: {}", k.replace('_', " "), text_of(v)))
                .collect::<Vec<_>>()
                .join(", "),
            _ => e.detail_json.clone(),
        },
    };
    EventView {
        at: micros_text(e.at_micros),
        actor: e.actor.clone(),
        kind: e.kind.clone(),
        detail,
    }
}

/// Citizenship questions are read for a citizenship review unless the reader says otherwise.
fn default_purpose(row: &QueryRow) -> Purpose {
    if row.citizenship_review {
        Purpose::CitizenshipReview
    } else {
        Purpose::StatusDetermination
    }
}

/// Builds the detail page and audits the view: one entry per candidate person shown, on
/// behalf of the requesting agency, with the reader's purpose.
async fn detail(
    state: &AppState,
    who: &Principal,
    row: &QueryRow,
    purpose: Purpose,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Html<String>, AppError> {
    let policy = &state.lesc.policy;
    let now = Utc::now();
    let today: NaiveDate = now.date_naive();
    let item = queue_item(row);
    let (sla_class, sla_text) = if row.state == "answered" {
        ("sla-done", "answered".to_string())
    } else {
        let (c, t) = sla_view(sla_state(&item, now, policy));
        (c, t.to_string())
    };
    let draft = draft_answer(state, row, &who.username).await;
    let engine = state.lesc.engine.read().await;
    let (candidates, proposal, reasons, engine_status) = match &draft {
        Ok(d) => {
            let views = d
                .candidates
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let det = engine.rules().determine(&c.records, today);
                    let cited: BTreeSet<&str> =
                        det.basis.iter().map(|c| c.record_id.as_str()).collect();
                    let indicia: BTreeSet<&str> = det
                        .citizenship_indicia
                        .iter()
                        .map(|c| c.record_id.as_str())
                        .collect();
                    CandidateView {
                        index: i,
                        person_key: c.person_key.clone(),
                        probability: format!("{:.3}", c.probability),
                        strong_identifier: c.strong_identifier,
                        biometric: c.biometric,
                        explanation: c
                            .explanation
                            .iter()
                            .map(|e| {
                                (
                                    e.field.clone(),
                                    format!("{:+.2}", e.weight),
                                    e.detail.clone(),
                                )
                            })
                            .collect(),
                        status: status_label(Some(det.status.code())),
                        basis: citations(&det.basis),
                        indicia: citations(&det.citizenship_indicia),
                        conflicts: det.conflicts.clone(),
                        records: c
                            .records
                            .iter()
                            .map(|r| {
                                record_view(
                                    r,
                                    String::new(),
                                    cited.contains(r.record_id.as_str()),
                                    indicia.contains(r.record_id.as_str()),
                                )
                            })
                            .collect(),
                        chosen: d.current_choice == Some(i),
                    }
                })
                .collect();
            let iar = &d.iar;
            let proposal = ProposalView {
                status: status_label(Some(iar.status.code())),
                intended_action: iar.intended_action_text.clone(),
                subject: iar
                    .identity
                    .as_ref()
                    .map(|i| format!("{} · DOB {} · {}", i.name, i.dob, i.person_key))
                    .unwrap_or_else(|| "no person identified".into()),
                basis: citations(&iar.evidence),
                indicia: citations(&iar.citizenship_indicia),
                confirmed: match d.review.chosen {
                    Some(Some(i)) => format!("candidate {} confirmed by a specialist", i + 1),
                    Some(None) => "a specialist confirmed none of the candidates".into(),
                    None => "the engine's proposal: no specialist has confirmed it yet".into(),
                },
                override_reason: d
                    .review
                    .override_status
                    .as_ref()
                    .map(|(s, r)| format!("overridden to {}: {r}", s.code())),
                corrections: d
                    .review
                    .corrections
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            let _ = &d.decision;
            (
                views,
                Ok(proposal),
                d.result.decision.reviews.clone(),
                status_label(Some(d.result.decision.status.code())),
            )
        }
        Err(e) => (Vec::new(), Err(e.clone()), Vec::new(), String::new()),
    };
    drop(engine);
    for c in &candidates {
        audit(
            state,
            who,
            Some(&row.ori),
            purpose,
            AuditAction::PersonViewed {
                person_key: c.person_key.clone(),
                records: c.records.len() as u64,
            },
        )
        .await?;
    }
    if candidates.is_empty() {
        audit(
            state,
            who,
            Some(&row.ori),
            purpose,
            AuditAction::RecordRead {
                record_id: format!("query:{}", row.query_id),
            },
        )
        .await?;
    }
    let events = state.store.query_events(&row.query_id).await?;
    let citizenship_open = row.citizenship_review
        && row.state == "answered"
        && !events
            .iter()
            .any(|e| e.kind == verity_store::review::CITIZENSHIP_CLOSED);
    let history = events.iter().map(event_view).collect();
    let may_close_citizenship = state.access.allows(who, Permission::ReviewCitizenship);
    render(&DetailPage {
        nav: nav_for(state, who),
        username: who.username.clone(),
        query_id: row.query_id.clone(),
        state: row.state.clone(),
        ori: row.ori.clone(),
        channel: row.channel.clone(),
        received: micros_text(row.received_micros),
        in_custody: row.in_custody,
        citizenship_review: row.citizenship_review,
        automatic: match row.automatic {
            Some(true) => "automatic".into(),
            Some(false) => "needs review".into(),
            None => "not processed".into(),
        },
        aor: row.aor.clone().unwrap_or_default(),
        assigned_to: row.assigned_to.clone().unwrap_or_default(),
        version: row.version,
        sla_class,
        sla_text,
        due: due_at(&item, policy)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        as_received: iaq_of(row).map(|q| as_received(&q)).unwrap_or_default(),
        raw_text: row.raw_text.clone(),
        reasons,
        engine_status,
        proposal,
        candidates,
        history,
        purposes: purpose_options(purpose),
        purpose: purpose.code(),
        statuses: ImmigrationStatus::ALL
            .iter()
            .map(|s| StatusOption {
                code: s.code(),
                text: status_text(*s),
            })
            .collect(),
        correctable: CORRECTABLE,
        notice,
        error,
        answered: row.state == "answered",
        may_close_citizenship,
        citizenship_open,
        findings: verity_store::review::CITIZENSHIP_FINDINGS,
        may_issue: state.access.allows(who, Permission::IssueIar)
            && (!row.citizenship_review || may_close_citizenship),
    })
}

fn done_notice(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "assign" => "You have taken this query.",
            "note" => "Note added.",
            "confirm" => "Identity decision recorded.",
            "correct" => "Correction recorded.",
            "override" => "Override recorded with its reason.",
            "citizenship" => "Citizenship review closed with its finding.",
            _ => return None,
        }
        .to_string(),
    )
}

async fn detail_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, AppError> {
    let row = load_query(&state, &id).await?;
    let purpose = purpose_of(q.purpose.as_deref(), default_purpose(&row));
    detail(
        &state,
        &who,
        &row,
        purpose,
        done_notice(q.done.as_deref()),
        None,
    )
    .await
}

/// The detail page again, with a refusal explained, under `status`.
async fn refuse(
    state: &AppState,
    who: &Principal,
    query_id: &str,
    purpose: Purpose,
    status: StatusCode,
    message: String,
) -> Result<Response, AppError> {
    let row = load_query(state, query_id).await?;
    let page = detail(state, who, &row, purpose, None, Some(message)).await?;
    Ok((status, page).into_response())
}

/// Audits a refusal for lack of a permission, as the route gate does.
async fn audit_denied(
    state: &AppState,
    who: &Principal,
    resource: String,
    permission: Permission,
) -> Result<(), AppError> {
    metrics::counter!("verity_access_denied_total").increment(1);
    audit(
        state,
        who,
        None,
        Purpose::Administration,
        AuditAction::AccessDenied {
            resource,
            reason: format!("lacks permission {}", permission.code()),
        },
    )
    .await
}

#[derive(Deserialize)]
pub struct ActionForm {
    action: String,
    version: i64,
    purpose: Option<String>,
    candidate: Option<String>,
    field: Option<String>,
    value: Option<String>,
    reason: Option<String>,
    text: Option<String>,
    status: Option<String>,
}

fn form_text(v: &Option<String>) -> String {
    v.as_deref().unwrap_or("").trim().to_string()
}

/// The review action a form asks for, or the reason it cannot be taken (for the user).
async fn action_from_form(
    state: &AppState,
    row: &QueryRow,
    form: &ActionForm,
) -> Result<ReviewAction, String> {
    match form.action.as_str() {
        "assign" => Ok(ReviewAction::Assign),
        "note" => {
            let text = form_text(&form.text);
            if text.is_empty() {
                return Err("Note refused: write the note first.".into());
            }
            Ok(ReviewAction::Note { text })
        }
        "confirm" => {
            let raw = form_text(&form.candidate);
            let candidate = match raw.as_str() {
                "none" => None,
                "" => return Err("Confirm refused: choose a candidate or 'none of them'.".into()),
                n => Some(
                    n.parse::<usize>()
                        .map_err(|_| format!("candidate: '{n}' is not a candidate number"))?,
                ),
            };
            let iaq = iaq_of(row).ok_or("the stored query cannot be read")?;
            let result = stored_result(row).ok_or("the engine has not processed this query yet")?;
            if let Some(i) = candidate {
                if i >= result.candidates.len() {
                    return Err(format!("candidate: there is no candidate {}", i + 1));
                }
            }
            let candidates = candidates_of(state, &result)
                .await
                .map_err(|e| e.public_message())?;
            let input = QueryInput {
                iaq: &iaq,
                biometric_fin: booking_fin(row, &iaq),
                today: Utc::now().date_naive(),
            };
            let decision =
                state
                    .lesc
                    .engine
                    .read()
                    .await
                    .decide_for(&candidates, candidate, &input);
            Ok(ReviewAction::Confirm {
                candidate,
                person_key: candidate.and_then(|i| candidates.get(i).map(|c| c.person_key.clone())),
                status: decision.determination.status.code().to_string(),
            })
        }
        "correct" => {
            let field = form_text(&form.field);
            if !CORRECTABLE.contains(&field.as_str()) {
                return Err(format!(
                    "field: '{field}' cannot be corrected (one of {})",
                    CORRECTABLE.join(", ")
                ));
            }
            let (value, reason) = (form_text(&form.value), form_text(&form.reason));
            if value.is_empty() || reason.is_empty() {
                return Err("Correction refused: give the corrected value and a reason.".into());
            }
            Ok(ReviewAction::Correct {
                field,
                value,
                reason,
            })
        }
        "override" => {
            let reason = form_text(&form.reason);
            if reason.is_empty() {
                return Err("Override refused: a reason is required.".into());
            }
            let status = ImmigrationStatus::parse(&form_text(&form.status))
                .map_err(|e| format!("status: {}", e.problem))?;
            Ok(ReviewAction::Override {
                status: status.code().to_string(),
                reason,
            })
        }
        other => Err(format!("action: '{other}' is not a review action")),
    }
}

fn describe_action(a: &ReviewAction) -> (String, String) {
    match a {
        ReviewAction::Assign => ("assign".into(), String::new()),
        ReviewAction::Note { .. } => ("note".into(), String::new()),
        ReviewAction::Confirm {
            candidate,
            person_key,
            status,
        } => (
            match candidate {
                Some(i) => format!(
                    "confirm candidate {} ({}) status {status}",
                    i + 1,
                    person_key.as_deref().unwrap_or("")
                ),
                None => format!("confirm none of the candidates, status {status}"),
            },
            "specialist identity decision".into(),
        ),
        ReviewAction::Correct {
            field,
            value,
            reason,
        } => (format!("correct {field} to '{value}'"), reason.clone()),
        ReviewAction::Override { status, reason } => {
            (format!("override status to {status}"), reason.clone())
        }
    }
}

async fn review_action(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, AppError> {
    let row = load_query(&state, &id).await?;
    let purpose = purpose_of(form.purpose.as_deref(), default_purpose(&row));
    let action = match action_from_form(&state, &row, &form).await {
        Ok(a) => a,
        Err(msg) => return refuse(&state, &who, &id, purpose, StatusCode::BAD_REQUEST, msg).await,
    };
    // The answer to a citizenship question is the deportation officer's to change.
    if row.citizenship_review
        && matches!(action, ReviewAction::Override { .. })
        && !state.access.allows(&who, Permission::ReviewCitizenship)
    {
        audit_denied(
            &state,
            &who,
            format!("/lesc/queries/{id}/action (override)"),
            Permission::ReviewCitizenship,
        )
        .await?;
        return refuse(
            &state,
            &who,
            &id,
            purpose,
            StatusCode::FORBIDDEN,
            "Override refused: only a LESC deportation officer may change the answer to a citizenship question.".into(),
        )
        .await;
    }
    match state
        .store
        .record_review_action(&id, &who.username, &action, form.version)
        .await
    {
        Ok(_) => {}
        Err(ReviewError::Store(e)) => return Err(e.into()),
        Err(ReviewError::NotFound { .. }) => return Err(AppError::NotFound),
        Err(
            e @ (ReviewError::Stale { .. }
            | ReviewError::NotInReview { .. }
            | ReviewError::Refused { .. }),
        ) => {
            return refuse(
                &state,
                &who,
                &id,
                purpose,
                StatusCode::CONFLICT,
                format!("Not recorded: {e}."),
            )
            .await
        }
        Err(ReviewError::Invalid(e)) => {
            return refuse(
                &state,
                &who,
                &id,
                purpose,
                StatusCode::BAD_REQUEST,
                format!("Refused: {}: {}.", e.field, e.problem),
            )
            .await
        }
    }
    if !matches!(action, ReviewAction::Note { .. } | ReviewAction::Assign) {
        let (decision, reason) = describe_action(&action);
        audit(
            &state,
            &who,
            Some(&row.ori),
            purpose,
            AuditAction::Decision {
                subject: format!("query {id}"),
                decision,
                reason,
            },
        )
        .await?;
    }
    Ok(Redirect::to(&format!(
        "/lesc/queries/{id}?purpose={}&done={}",
        purpose.code(),
        action.kind()
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct CitizenshipForm {
    version: i64,
    purpose: Option<String>,
    finding: Option<String>,
    reason: Option<String>,
}

/// A deportation officer closes the citizenship question of a query that got the safe answer
/// automatically. The finding and its reason are required.
async fn close_citizenship(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): Form<CitizenshipForm>,
) -> Result<Response, AppError> {
    let row = load_query(&state, &id).await?;
    let purpose = purpose_of(form.purpose.as_deref(), Purpose::CitizenshipReview);
    let (finding, reason) = (form_text(&form.finding), form_text(&form.reason));
    if reason.is_empty() {
        return refuse(
            &state,
            &who,
            &id,
            purpose,
            StatusCode::BAD_REQUEST,
            "Not closed: a reason is required.".into(),
        )
        .await;
    }
    match state
        .store
        .close_citizenship_review(&id, &who.username, &finding, &reason, form.version)
        .await
    {
        Ok(_) => {}
        Err(ReviewError::Store(e)) => return Err(e.into()),
        Err(ReviewError::NotFound { .. }) => return Err(AppError::NotFound),
        Err(ReviewError::Invalid(e)) => {
            return refuse(
                &state,
                &who,
                &id,
                purpose,
                StatusCode::BAD_REQUEST,
                format!("Not closed: {}: {}.", e.field, e.problem),
            )
            .await
        }
        Err(e) => {
            return refuse(
                &state,
                &who,
                &id,
                purpose,
                StatusCode::CONFLICT,
                format!("Not closed: {e}."),
            )
            .await
        }
    }
    audit(
        &state,
        &who,
        Some(&row.ori),
        purpose,
        AuditAction::Decision {
            subject: format!("query {id}"),
            decision: format!("citizenship review closed: {finding}"),
            reason,
        },
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/lesc/queries/{id}?purpose={}&done=citizenship",
        purpose.code()
    ))
    .into_response())
}

#[derive(Deserialize)]
pub struct IssueForm {
    version: i64,
    purpose: Option<String>,
}

async fn issue_answer(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): Form<IssueForm>,
) -> Result<Response, AppError> {
    let row = load_query(&state, &id).await?;
    let purpose = purpose_of(form.purpose.as_deref(), default_purpose(&row));
    if row.state == "answered" {
        return refuse(
            &state,
            &who,
            &id,
            purpose,
            StatusCode::CONFLICT,
            "Not issued: this query is already answered.".into(),
        )
        .await;
    }
    if row.citizenship_review && !state.access.allows(&who, Permission::ReviewCitizenship) {
        audit_denied(
            &state,
            &who,
            format!("/lesc/queries/{id}/issue"),
            Permission::ReviewCitizenship,
        )
        .await?;
        return refuse(
            &state,
            &who,
            &id,
            purpose,
            StatusCode::FORBIDDEN,
            "Not issued: a citizenship review can only be closed by a LESC deportation officer."
                .into(),
        )
        .await;
    }
    if row.version != form.version {
        return refuse(
            &state,
            &who,
            &id,
            purpose,
            StatusCode::CONFLICT,
            "Not issued: this query changed since you opened it. Check the changes below and issue again.".into(),
        )
        .await;
    }
    let draft = match draft_answer(&state, &row, &who.username).await {
        Ok(d) => d,
        Err(msg) => {
            return refuse(
                &state,
                &who,
                &id,
                purpose,
                StatusCode::BAD_REQUEST,
                format!("Not issued: {msg}."),
            )
            .await
        }
    };
    if draft.review.chosen.is_none() {
        return refuse(
            &state,
            &who,
            &id,
            purpose,
            StatusCode::BAD_REQUEST,
            "Not issued: confirm a candidate (or none of them) first.".into(),
        )
        .await;
    }
    match crate::lesc_api::issue_iar(&state, &id, draft.iar.clone(), Some(&who), form.version)
        .await?
    {
        Ok(_) => {}
        Err(_) => {
            return refuse(
                &state,
                &who,
                &id,
                purpose,
                StatusCode::CONFLICT,
                "Not issued: someone else changed or answered this query first.".into(),
            )
            .await
        }
    }
    Ok(Redirect::to(&format!(
        "/lesc/queries/{id}/iar?purpose={}",
        purpose.code()
    ))
    .into_response())
}

// ---------------------------------------------------------------------------------------------
// IAR preview
// ---------------------------------------------------------------------------------------------

/// The full answer, read from its JSON (issued: as stored; draft: as composed now).
pub struct IarView {
    pub status_text: String,
    pub status_code: String,
    pub intended_action: String,
    pub lesc_contact: String,
    pub identity: Vec<(String, String)>,
    /// How each field of the query compared with the person's records.
    pub explanation: Vec<(String, String, String)>,
    pub evidence: Vec<CitationView>,
    pub indicia: Vec<CitationView>,
    pub criminal: Vec<Vec<String>>,
    pub decided_by: String,
    pub issued_at: String,
    pub field_office: String,
    pub requesting_ori: String,
    pub versions: String,
}

fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format!("{f:.3}"),
            _ => n.to_string(),
        },
        serde_json::Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::Array(parts) => {
                    parts.iter().map(text_of).collect::<Vec<_>>().join(" · ")
                }
                other => text_of(other),
            })
            .collect::<Vec<_>>()
            .join("; "),
        serde_json::Value::Object(map) => map
            .values()
            .map(text_of)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" · "),
    }
}

fn field(v: &serde_json::Value, key: &str) -> String {
    v.get(key).map(text_of).unwrap_or_default()
}

fn citations_of(v: &serde_json::Value, key: &str) -> Vec<CitationView> {
    v.get(key)
        .and_then(|c| c.as_array())
        .map(|items| {
            items
                .iter()
                .map(|c| CitationView {
                    record_id: field(c, "record_id"),
                    fact: field(c, "fact"),
                    note: field(c, "note"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn iar_view(v: &serde_json::Value) -> IarView {
    let identity = match v.get("identity") {
        Some(id @ serde_json::Value::Object(_)) => [
            ("Name", "name"),
            ("Date of birth", "dob"),
            ("A-number", "a_number"),
            ("FIN", "fin"),
            ("FBI number", "fbi_number"),
            ("Person key", "person_key"),
        ]
        .iter()
        .map(|(label, key)| (label.to_string(), field(id, key)))
        .chain([
            (
                "Identity confidence".to_string(),
                id.get("probability")
                    .and_then(|p| p.as_f64())
                    .map(|p| format!("{p:.3}"))
                    .unwrap_or_default(),
            ),
            (
                "Fingerprint match".to_string(),
                if id.get("biometric").and_then(|b| b.as_bool()) == Some(true) {
                    "yes".into()
                } else {
                    "no".into()
                },
            ),
        ])
        .filter(|(_, value)| !value.is_empty())
        .collect(),
        _ => Vec::new(),
    };
    let criminal = v
        .get("criminal_history")
        .and_then(|c| c.as_array())
        .map(|lines| {
            lines
                .iter()
                .map(|l| {
                    [
                        "arrest_date",
                        "ncic_code",
                        "offense",
                        "disposition",
                        "record_id",
                    ]
                    .iter()
                    .map(|k| field(l, k))
                    .collect()
                })
                .collect()
        })
        .unwrap_or_default();
    let explanation = v
        .get("identity")
        .and_then(|i| i.get("explanation"))
        .and_then(|e| e.as_array())
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    (
                        field(e, "field"),
                        e.get("weight")
                            .and_then(|w| w.as_f64())
                            .map(|w| format!("{w:+.2}"))
                            .unwrap_or_default(),
                        field(e, "detail"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    IarView {
        explanation,
        status_text: field(v, "status_text"),
        status_code: field(v, "status"),
        intended_action: field(v, "intended_action_text"),
        lesc_contact: field(v, "lesc_contact"),
        identity,
        evidence: citations_of(v, "evidence"),
        indicia: citations_of(v, "citizenship_indicia"),
        criminal,
        decided_by: field(v, "decided_by"),
        issued_at: field(v, "issued_at"),
        field_office: field(v, "field_office"),
        requesting_ori: field(v, "requesting_ori"),
        versions: format!(
            "rules {} · LESC policy {}",
            field(v, "rules_version"),
            field(v, "lesc_policy_version")
        ),
    }
}

/// A recipient's view as label/value rows, in the view's own field order; a nested object
/// (the identity) gives one row per field, except the per-field score explanation.
fn view_rows(v: &serde_json::Value) -> Vec<(String, String)> {
    let label = |k: &str| k.replace('_', " ");
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(k, val)| match val {
                serde_json::Value::Object(inner) => inner
                    .iter()
                    .filter(|(ik, _)| ik.as_str() != "explanation")
                    .map(|(ik, iv)| (format!("{} {}", label(k), label(ik)), text_of(iv)))
                    .collect::<Vec<_>>(),
                other => vec![(label(k), text_of(other))],
            })
            .collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![("view".into(), text_of(other))],
    }
}

#[derive(askama::Template)]
#[template(path = "lesc_iar.html")]
struct IarPage {
    nav: Vec<NavItem>,
    username: String,
    query_id: String,
    issued: bool,
    /// Why no answer can be shown, when none can.
    unavailable: Option<String>,
    full: Option<IarView>,
    agency: Vec<(String, String)>,
    field_office: Vec<(String, String)>,
    /// The field office sees the whole answer (the full view above).
    field_office_sees_full: bool,
    field_office_name: String,
    deliveries: Vec<(String, String, String)>,
    subject_key: String,
    purpose: &'static str,
}

async fn iar_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, AppError> {
    let row = load_query(&state, &id).await?;
    let purpose = purpose_of(q.purpose.as_deref(), default_purpose(&row));
    let mut deliveries = Vec::new();
    let (issued, unavailable, full, agency, field_office) = match &row.iar_json {
        Some(json) => {
            let full: serde_json::Value = serde_json::from_str(json).unwrap_or_else(
                |e| serde_json::json!({ "status_text": format!("stored answer unreadable: {e}") }),
            );
            let mut agency = serde_json::Value::Null;
            let mut field_office = full.clone();
            for d in state.store.deliveries_of_query(&id).await? {
                let view = serde_json::from_str(&d.view_json).unwrap_or(serde_json::Value::Null);
                deliveries.push((
                    d.recipient_kind.replace('_', " "),
                    d.recipient.clone(),
                    match d.fetched_micros {
                        Some(t) => format!("fetched {}", micros_text(t)),
                        None => format!("waiting since {}", micros_text(d.created_micros)),
                    },
                ));
                match d.recipient_kind.as_str() {
                    "agency" => agency = view,
                    "field_office" => field_office = view,
                    _ => {}
                }
            }
            if agency.is_null() {
                agency = full.clone();
            }
            (true, None, Some(full), agency, field_office)
        }
        None => match draft_answer(&state, &row, &who.username).await {
            Ok(d) => {
                let full = serde_json::to_value(&d.iar).unwrap_or(serde_json::Value::Null);
                let agency =
                    serde_json::to_value(d.iar.agency_view()).unwrap_or(serde_json::Value::Null);
                (false, None, Some(full.clone()), agency, full)
            }
            Err(e) => (
                false,
                Some(e),
                None,
                serde_json::Value::Null,
                serde_json::Value::Null,
            ),
        },
    };
    let subject_key = full
        .as_ref()
        .and_then(|f| f.get("identity"))
        .map(|i| field(i, "person_key"))
        .unwrap_or_default();
    audit(
        &state,
        &who,
        Some(&row.ori),
        purpose,
        if subject_key.is_empty() {
            AuditAction::RecordRead {
                record_id: format!("iar:{id}"),
            }
        } else {
            AuditAction::PersonViewed {
                person_key: subject_key.clone(),
                records: full
                    .as_ref()
                    .and_then(|f| f.get("evidence"))
                    .and_then(|e| e.as_array())
                    .map_or(0, |e| e.len() as u64),
            }
        },
    )
    .await?;
    render(&IarPage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        query_id: id,
        issued,
        unavailable,
        full: full.as_ref().map(iar_view),
        agency: view_rows(&agency),
        field_office_name: row.aor.clone().unwrap_or_else(|| "(county unknown)".into()),
        field_office_sees_full: full.as_ref() == Some(&field_office),
        field_office: view_rows(&field_office),
        deliveries,
        subject_key,
        purpose: purpose.code(),
    })
}

// ---------------------------------------------------------------------------------------------
// Subject view
// ---------------------------------------------------------------------------------------------

#[derive(askama::Template)]
#[template(path = "lesc_subject.html")]
struct SubjectPage {
    nav: Vec<NavItem>,
    username: String,
    person_key: String,
    names: Vec<String>,
    dobs: Vec<String>,
    identifiers: Vec<(String, String)>,
    records: Vec<RecordView>,
    timeline: Vec<TimelineEntry>,
    queries: Vec<(String, String, String, String)>,
    truncated: bool,
    purposes: Vec<PurposeOption>,
    purpose: &'static str,
    from: String,
}

/// The records of a person: those the engine grouped under `person_key` in any stored result,
/// then every record sharing one of their strong identifiers. Each with why it is here.
async fn subject_records(
    state: &AppState,
    person_key: &str,
    queries: &[QueryRow],
) -> Result<(Vec<(SourceRecord, String)>, bool), AppError> {
    let mut provenance: BTreeMap<String, String> = BTreeMap::new();
    for q in queries {
        let Some(result) = stored_result(q) else {
            continue;
        };
        for c in result
            .candidates
            .iter()
            .filter(|c| c.person_key == person_key)
        {
            for id in &c.record_ids {
                provenance
                    .entry(id.clone())
                    .or_insert_with(|| format!("grouped by the engine for query {}", q.query_id));
            }
        }
    }
    let ids: Vec<String> = provenance.keys().cloned().collect();
    let mut records: Vec<(SourceRecord, String)> = fetch_records(state, &ids)
        .await?
        .into_iter()
        .map(|r| {
            let why = provenance.get(&r.record_id).cloned().unwrap_or_default();
            (r, why)
        })
        .collect();
    let mut seen: BTreeSet<String> = records.iter().map(|(r, _)| r.record_id.clone()).collect();
    let mut truncated = false;
    let mut asked: BTreeSet<(String, String)> = BTreeSet::new();
    let mut i = 0;
    // One round: identifiers of the engine's records (a chain of weak links is not followed).
    let first_round = records.len();
    while i < first_round {
        let identity = records[i].0.identity.clone();
        let from_id = records[i].0.record_id.clone();
        for &kind in LINKING_IDS {
            let Some(value) = kind.stored_value(&identity) else {
                continue;
            };
            if !asked.insert((kind.code().to_string(), value.clone())) {
                continue;
            }
            for r in state.store.records_by_identifier(kind, &value).await? {
                if seen.len() >= SUBJECT_RECORDS {
                    truncated = true;
                    break;
                }
                if seen.insert(r.record_id.clone()) {
                    records.push((
                        r,
                        format!(
                            "shares {} {value} with {from_id}",
                            kind.code().replace('_', " ")
                        ),
                    ));
                }
            }
        }
        i += 1;
    }
    records.sort_by(|(a, _), (b, _)| {
        a.system()
            .code()
            .cmp(b.system().code())
            .then_with(|| a.record_id.cmp(&b.record_id))
    });
    Ok((records, truncated))
}

async fn subject_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(person_key): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, AppError> {
    let purpose = purpose_of(q.purpose.as_deref(), Purpose::StatusDetermination);
    let queries = state
        .store
        .queries_about_person(&person_key, SUBJECT_QUERIES)
        .await?;
    let (records, truncated) = subject_records(&state, &person_key, &queries).await?;
    if records.is_empty() && queries.is_empty() {
        return Err(AppError::NotFound);
    }
    // The agency on whose behalf: the query the reader came from, if it is about this person.
    let from = q
        .from
        .as_deref()
        .and_then(|f| queries.iter().find(|row| row.query_id == f));
    audit(
        &state,
        &who,
        from.map(|r| r.ori.as_str()),
        purpose,
        AuditAction::PersonViewed {
            person_key: person_key.clone(),
            records: records.len() as u64,
        },
    )
    .await?;
    let mut names = BTreeSet::new();
    let mut dobs = BTreeSet::new();
    let mut identifiers = BTreeSet::new();
    for (r, _) in &records {
        names.insert(r.identity.name.last_first());
        for a in &r.identity.aliases {
            names.insert(a.last_first());
        }
        if let Some(d) = r.identity.dob {
            dobs.insert(d.to_string());
        }
        for &kind in IdKind::ALL {
            if let Some(v) = kind.stored_value(&r.identity) {
                identifiers.insert((kind.code().replace('_', " "), v));
            }
        }
    }
    let views: Vec<RecordView> = records
        .iter()
        .map(|(r, why)| record_view(r, why.clone(), false, false))
        .collect();
    render(&SubjectPage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        timeline: timeline(&views),
        records: views,
        names: names.into_iter().filter(|n| !n.is_empty()).collect(),
        dobs: dobs.into_iter().collect(),
        identifiers: identifiers.into_iter().collect(),
        queries: queries
            .iter()
            .map(|r| {
                (
                    r.query_id.clone(),
                    micros_text(r.received_micros),
                    r.state.clone(),
                    status_label(r.status.as_deref()),
                )
            })
            .collect(),
        truncated,
        purposes: purpose_options(purpose),
        purpose: purpose.code(),
        from: q.from.clone().unwrap_or_default(),
        person_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_store::queries::QueryEvent;

    fn event(kind: &str, action: &ReviewAction) -> QueryEvent {
        QueryEvent {
            event_id: 0,
            query_id: "Q".into(),
            at_micros: 0,
            actor: "s".into(),
            kind: kind.into(),
            detail_json: serde_json::to_string(action).expect("serialize"),
        }
    }

    #[test]
    fn review_state_follows_the_events_in_order() {
        let confirm = |c: Option<usize>| ReviewAction::Confirm {
            candidate: c,
            person_key: None,
            status: "lpr".into(),
        };
        let over = ReviewAction::Override {
            status: "parolee".into(),
            reason: "record not loaded".into(),
        };
        let fix = |v: &str| ReviewAction::Correct {
            field: "dob".into(),
            value: v.into(),
            reason: "typo".into(),
        };
        let mut events = vec![
            event("confirm", &confirm(Some(1))),
            event("override", &over),
            event("correct", &fix("1980-01-01")),
            event("note", &ReviewAction::Note { text: "x".into() }),
            event("correct", &fix("1980-01-02")),
        ];
        events.push(QueryEvent {
            detail_json: "{\"state\":\"in_review\"}".into(),
            ..event("processed", &ReviewAction::Assign)
        });
        let s = review_state(&events);
        assert_eq!(s.chosen, Some(Some(1)));
        assert_eq!(
            s.override_status,
            Some((ImmigrationStatus::Parolee, "record not loaded".into()))
        );
        assert_eq!(
            s.corrections.get("dob").map(String::as_str),
            Some("1980-01-02")
        );
        // A later confirmation recomputes the status: the override no longer applies.
        events.push(event("confirm", &confirm(None)));
        let s = review_state(&events);
        assert_eq!(s.chosen, Some(None));
        assert_eq!(s.override_status, None);
        assert_eq!(review_state(&[]), ReviewState::default());
    }

    #[test]
    fn ages_read_in_days_hours_and_minutes() {
        let now = Utc::now();
        assert_eq!(age_text(now - chrono::Duration::minutes(7), now), "7m");
        assert_eq!(
            age_text(now - chrono::Duration::minutes(125), now),
            "2h 05m"
        );
        assert_eq!(
            age_text(now - chrono::Duration::minutes(3 * 1440 + 240), now),
            "3d 04h"
        );
        assert_eq!(age_text(now + chrono::Duration::minutes(5), now), "0m");
    }

    #[test]
    fn purposes_outside_the_list_fall_back_to_the_page_default() {
        assert_eq!(
            purpose_of(Some("CITIZEN"), Purpose::StatusDetermination),
            Purpose::CitizenshipReview
        );
        assert_eq!(
            purpose_of(Some("ADMIN"), Purpose::StatusDetermination),
            Purpose::StatusDetermination
        );
        assert_eq!(
            purpose_of(Some("??"), Purpose::Enforcement),
            Purpose::Enforcement
        );
        assert_eq!(purpose_of(None, Purpose::Enforcement), Purpose::Enforcement);
    }

    #[test]
    fn timeline_takes_dated_cells_except_birth_dates_oldest_first() {
        let rec = |id: &str, system: &str, fields: &[(&str, &str)]| RecordView {
            record_id: id.into(),
            system: system.into(),
            name: String::new(),
            dob: String::new(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            provenance: String::new(),
            cited: false,
            indicia: false,
        };
        let records = vec![
            rec(
                "T1",
                "travel",
                &[
                    ("dob", "1980-01-01"),
                    ("direction", "arrival"),
                    ("class_of_admission", "B2"),
                    ("date", "2006-02-09"),
                    ("admit_until", "2006-08-00"),
                ],
            ),
            rec(
                "E1",
                "enforcement",
                &[
                    ("event", "removal"),
                    ("date", "2001-05-05"),
                    ("office", "1999"),
                ],
            ),
        ];
        let t = timeline(&records);
        let dates: Vec<&str> = t.iter().map(|e| e.date.as_str()).collect();
        assert_eq!(dates, ["2001-05-05", "2006-02-09", "2006-08-00"]);
        assert_eq!(t[1].what, "arrival B2 (date)");
        assert!(is_date_cell("2006-08-00"));
        assert!(!is_date_cell("2006-08"));
        assert!(!is_date_cell("A012345678"));
    }

    #[test]
    fn views_read_as_rows_with_nested_identity_and_rounded_numbers() {
        let v = serde_json::json!({
            "status_text": "Lawful permanent resident",
            "identity": {"name": "DOE, JANE", "probability": 0.98765, "explanation": [{"field": "dob"}]},
            "criminal_history": [["2001-01-01", "1313 ASSAULT", "convicted"]],
            "identified_by_fingerprints": false,
            "a_number": null,
        });
        let rows = view_rows(&v);
        let get = |k: &str| {
            rows.iter()
                .find(|(label, _)| label == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("identity name"), Some("DOE, JANE"));
        assert_eq!(get("identity probability"), Some("0.988"));
        assert_eq!(get("identity explanation"), None);
        assert_eq!(
            get("criminal history"),
            Some("2001-01-01 · 1313 ASSAULT · convicted")
        );
        assert_eq!(get("identified by fingerprints"), Some("no"));
        assert_eq!(get("a number"), Some(""));
        let full = iar_view(&serde_json::json!({
            "status": "lpr", "status_text": "Lawful permanent resident",
            "lesc_contact": "LESC", "identity": null,
            "evidence": [{"record_id": "B1", "fact": "lpr", "note": "granted"}],
        }));
        assert_eq!(full.lesc_contact, "LESC");
        assert!(full.identity.is_empty());
        assert_eq!(full.evidence.len(), 1);
        assert_eq!(full.evidence[0].record_id, "B1");
    }

    #[test]
    fn queue_rows_put_citizenship_then_custody_then_age_and_time_the_sla() {
        let policy = LescPolicy::embedded().expect("policy");
        let now = Utc::now();
        let row = |id: &str, minutes_ago: i64, custody: bool, citizen: bool| QueryRow {
            query_id: id.into(),
            ori: "MD0030000".into(),
            message_id: id.into(),
            channel: "json".into(),
            received_micros: (now - chrono::Duration::minutes(minutes_ago)).timestamp_micros(),
            in_custody: custody,
            aor: None,
            iaq_json: "not json".into(),
            raw_text: None,
            state: "in_review".into(),
            automatic: Some(false),
            citizenship_review: citizen,
            status: None,
            person_key: None,
            result_json: None,
            iar_json: None,
            answered_micros: None,
            answered_by: None,
            assigned_to: None,
            updated_micros: 0,
            version: 1,
        };
        let rows = vec![
            row("free", 500, false, false),
            row("custody-late", 45, true, false),
            row("citizen", 1, false, true),
        ];
        let views = queue_rows(&rows, &policy, now);
        let ids: Vec<&str> = views.iter().map(|v| v.query_id.as_str()).collect();
        assert_eq!(ids, ["citizen", "custody-late", "free"]);
        assert_eq!(views[1].sla_class, "sla-breached");
        assert_eq!(views[0].sla_class, "sla-ok");
        assert_eq!(views[0].name, "(unreadable query)");
        assert_eq!(short_id("Q-338313507c7f436f"), "Q-338313507c…");
        assert_eq!(short_id("Q-1"), "Q-1");
    }

    mod pages {
        //! The pages through the router, as a browser uses them: gate, session, forms.
        use super::super::*;
        use axum::body::Body;
        use axum::http::{header, Request};
        use tower::ServiceExt;
        use verity_model::record::{CitizenshipEvidence, CitizenshipRecord};
        use verity_model::{Identity, PartialDate, PersonName, RecordBody, Role};
        use verity_store::queries::{CasOutcome, NewQuery, Processing};
        use verity_store::{NewUser, Store};
        use verity_workflow::credentials::token_digest;
        use verity_workflow::lesc::engine::{StoredCandidate, StoredDecision};
        use verity_workflow::lesc::intake::QueryPurpose;
        use verity_workflow::AccessPolicy;

        const QID: &str = "Q-test-1";

        async fn state_with_citizenship_query() -> AppState {
            let store = Store::open("sqlite::memory:").await.expect("store");
            let identity = Identity {
                name: PersonName::new("ANA", "", "REYES"),
                dob: Some(PartialDate::full(1990, 4, 2).expect("date")),
                country_of_birth: "US".into(),
                ..Identity::default()
            };
            store
                .insert_records(&[SourceRecord {
                    record_id: "CIT-1".into(),
                    identity: identity.clone(),
                    body: RecordBody::Citizenship(CitizenshipRecord {
                        evidence: CitizenshipEvidence::UsPassport,
                        document_number: "P123".into(),
                        issued: None,
                    }),
                }])
                .await
                .expect("records");
            let iaq = Iaq {
                message_id: "m1".into(),
                ori: Ori::parse("MD0030000").expect("ori"),
                purpose: QueryPurpose::C,
                attention: "DESK".into(),
                phone: "4105550100".into(),
                name: identity.name.clone(),
                dob: identity.dob,
                sex: None,
                pob_code: String::new(),
                country_of_birth: String::new(),
                in_custody: true,
                offense_code: "0399".into(),
                ids: Default::default(),
                driver_license: String::new(),
                encounter_state: String::new(),
                encounter_county: String::new(),
                citizenship_claimed: true,
                remarks: "SAYS HE IS A US CITIZEN".into(),
            };
            let row = store
                .insert_query(&NewQuery {
                    query_id: QID.into(),
                    ori: "MD0030000".into(),
                    message_id: "m1".into(),
                    channel: "json".into(),
                    received_micros: Utc::now().timestamp_micros(),
                    in_custody: true,
                    aor: Some("Baltimore".into()),
                    iaq_json: serde_json::to_string(&iaq).expect("iaq"),
                    raw_text: None,
                })
                .await
                .expect("query")
                .into_row();
            let result = StoredResult {
                candidates: vec![StoredCandidate {
                    person_key: "P-REYES".into(),
                    probability: 0.6,
                    strong_identifier: false,
                    biometric: false,
                    explanation: Vec::new(),
                    record_ids: vec!["CIT-1".into()],
                }],
                decision: StoredDecision {
                    automatic: false,
                    citizenship_review: true,
                    chosen: Some(0),
                    reviews: vec!["the subject claims U.S. citizenship".into()],
                    status: ImmigrationStatus::PotentialUsCitizen,
                    rules_version: "test".into(),
                },
                engine_version: "test".into(),
            };
            let processed = store
                .record_processing(
                    QID,
                    row.version,
                    &Processing {
                        state: "in_review".into(),
                        automatic: false,
                        citizenship_review: true,
                        status: Some("potential_us_citizen".into()),
                        person_key: Some("P-REYES".into()),
                        result_json: serde_json::to_string(&result).expect("result"),
                        at_micros: Utc::now().timestamp_micros(),
                        actor: "engine".into(),
                    },
                )
                .await
                .expect("processing");
            assert!(matches!(processed, CasOutcome::Applied(_)));
            for (user, role) in [
                ("spec", Role::LescSpecialist),
                ("officer", Role::LescDeportationOfficer),
            ] {
                store
                    .create_user(&NewUser {
                        username: user.into(),
                        display_name: user.into(),
                        password_hash: "unused".into(),
                        roles: vec![role],
                        agency_ori: None,
                    })
                    .await
                    .expect("user");
                store
                    .create_session(
                        &token_digest(&format!("token-{user}")),
                        user,
                        Utc::now() + chrono::Duration::hours(1),
                    )
                    .await
                    .expect("session");
            }
            AppState::new(
                store,
                AccessPolicy::embedded().expect("access"),
                crate::config::ServerConfig::default(),
            )
        }

        async fn send(
            state: &AppState,
            user: &str,
            req: Request<Body>,
        ) -> (StatusCode, String, String) {
            let mut req = req;
            req.headers_mut().insert(
                header::COOKIE,
                format!("verity_session=token-{user}")
                    .parse()
                    .expect("cookie"),
            );
            let resp = crate::router(state.clone())
                .oneshot(req)
                .await
                .expect("response");
            let status = resp.status();
            let location = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 22)
                .await
                .expect("body");
            (
                status,
                String::from_utf8_lossy(&body).into_owned(),
                location,
            )
        }

        fn get(path: &str) -> Request<Body> {
            Request::get(path).body(Body::empty()).expect("request")
        }

        fn post(path: &str, form: &str) -> Request<Body> {
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_string()))
                .expect("request")
        }

        async fn version(state: &AppState) -> i64 {
            state
                .store
                .get_query(QID)
                .await
                .expect("read")
                .expect("query")
                .version
        }

        #[tokio::test]
        async fn an_automatic_safe_answer_leaves_the_citizenship_question_to_an_officer() {
            let state = state_with_citizenship_query().await;
            let row = state
                .store
                .insert_query(&NewQuery {
                    query_id: "Q-auto".into(),
                    ori: "MD0030000".into(),
                    message_id: "m2".into(),
                    channel: "json".into(),
                    received_micros: Utc::now().timestamp_micros(),
                    in_custody: false,
                    aor: None,
                    iaq_json: "{}".into(),
                    raw_text: None,
                })
                .await
                .expect("query")
                .into_row();
            let answered = match state
                .store
                .record_processing(
                    "Q-auto",
                    row.version,
                    &Processing {
                        state: "answered".into(),
                        automatic: true,
                        citizenship_review: true,
                        status: Some("potential_us_citizen".into()),
                        person_key: None,
                        result_json: "{}".into(),
                        at_micros: Utc::now().timestamp_micros(),
                        actor: "engine".into(),
                    },
                )
                .await
                .expect("processing")
            {
                CasOutcome::Applied(r) => r,
                CasOutcome::Stale(r) => panic!("stale: {r:?}"),
            };
            let (_, body, _) = send(&state, "spec", get("/lesc/queue")).await;
            assert!(
                body.contains("citizenship-pending") && body.contains("Q-auto"),
                "{body}"
            );
            let path = "/lesc/queries/Q-auto/citizenship";
            let v = answered.version;
            // The route itself needs review_citizenship.
            let (status, _, _) = send(
                &state,
                "spec",
                post(
                    path,
                    &format!("version={v}&finding=citizen_confirmed&reason=passport"),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN);
            let (status, body, _) = send(
                &state,
                "officer",
                post(
                    path,
                    &format!("version={v}&finding=citizen_confirmed&reason="),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.contains("a reason is required"), "{body}");
            let (status, _, location) = send(
                &state,
                "officer",
                post(
                    path,
                    &format!("version={v}&finding=citizen_confirmed&reason=passport+on+file"),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
            assert!(state
                .store
                .pending_citizenship_reviews(10)
                .await
                .expect("pending")
                .is_empty());
        }

        #[tokio::test]
        async fn a_citizenship_review_is_closed_only_by_a_deportation_officer() {
            let state = state_with_citizenship_query().await;
            let (status, body, _) = send(&state, "spec", get("/lesc/queue")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains(QID) && body.contains("citizenship"), "{body}");

            let (status, body, _) =
                send(&state, "spec", get(&format!("/lesc/queries/{QID}"))).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains("CIT-1"), "every source record is shown");
            assert!(
                body.contains("SAYS HE IS A US CITIZEN"),
                "the query as received"
            );

            // An override needs a reason, and is refused with a message that says so.
            let v = version(&state).await;
            let (status, body, _) = send(
                &state,
                "officer",
                post(
                    &format!("/lesc/queries/{QID}/action"),
                    &format!("action=override&version={v}&status=lpr&reason="),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.contains("a reason is required"), "{body}");
            assert_eq!(version(&state).await, v, "nothing recorded");

            let (status, _, location) = send(
                &state,
                "spec",
                post(
                    &format!("/lesc/queries/{QID}/action"),
                    &format!("action=confirm&version={v}&candidate=0"),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert!(location.contains("done=confirm"), "{location}");

            // The specialist may not close it: refused, audited, nothing issued.
            let v = version(&state).await;
            let (status, body, _) = send(
                &state,
                "spec",
                post(
                    &format!("/lesc/queries/{QID}/issue"),
                    &format!("version={v}"),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert!(body.contains("deportation officer"), "{body}");
            assert_eq!(
                state
                    .store
                    .get_query(QID)
                    .await
                    .expect("read")
                    .expect("q")
                    .state,
                "in_review"
            );

            // A stale form is refused.
            let (status, _, _) = send(
                &state,
                "officer",
                post(
                    &format!("/lesc/queries/{QID}/issue"),
                    &format!("version={}", v - 1),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::CONFLICT);

            let (status, _, location) = send(
                &state,
                "officer",
                post(
                    &format!("/lesc/queries/{QID}/issue"),
                    &format!("version={v}&purpose=CITIZEN"),
                ),
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER);
            assert!(location.ends_with("/iar?purpose=CITIZEN"), "{location}");
            let row = state.store.get_query(QID).await.expect("read").expect("q");
            assert_eq!(row.state, "answered");
            assert_eq!(row.answered_by.as_deref(), Some("officer"));

            let (status, body, _) =
                send(&state, "officer", get(&format!("/lesc/queries/{QID}/iar"))).await;
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains("no ICE action"), "{body}");
            assert!(body.contains("Law Enforcement Support Center"), "{body}");

            let (status, body, _) = send(&state, "spec", get("/lesc/subjects/P-REYES")).await;
            assert_eq!(status, StatusCode::OK);
            assert!(
                body.contains("CIT-1") && body.contains("grouped by the engine"),
                "{body}"
            );
            let (status, _, _) = send(&state, "spec", get("/lesc/subjects/P-NOBODY")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);

            // Reads carry the agency and the purpose; the refusal and the decisions are logged.
            let (total, _) = state.store.audit_head().await.expect("head");
            let entries = state
                .store
                .list_audit(0, total as u32 + 1)
                .await
                .expect("audit");
            let person_views: Vec<_> = entries
                .iter()
                .filter(|e| matches!(e.event.action, AuditAction::PersonViewed { .. }))
                .collect();
            assert!(!person_views.is_empty());
            assert!(person_views
                .iter()
                .any(|e| e.event.purpose == Purpose::CitizenshipReview
                    && e.event.agency.as_ref().map(|o| o.as_str()) == Some("MD0030000")));
            assert!(
                entries.iter().any(|e| matches!(&e.event.action,
                AuditAction::AccessDenied { reason, .. } if reason.contains("review_citizenship")))
            );
            assert!(entries.iter().any(|e| matches!(&e.event.action,
                AuditAction::Decision { decision, .. } if decision.starts_with("confirm candidate 1"))));
        }
    }
}
