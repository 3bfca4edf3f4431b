//! PERC console and API: triage queue, detainer preparation, supervisor approval, tracking board and PDF preview.
//!
//! Handlers only gather what the workflow needs and write what it decides: every transition of
//! an action goes through `EnforcementAction::apply` (the gates) with a snapshot of the subject
//! rebuilt from the store at that moment, and is written with a compare-and-set on the action's
//! version, so two concurrent approvals cannot both succeed. Refusals are shown with their
//! reason, recorded in the action's events, audited and counted.

use crate::console::NavItem;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Extension, Form, Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use verity_model::record::RecordBody;
use verity_model::{AuditAction, AuditEvent, Ori, Purpose, Reference, SourceRecord};
use verity_policy::{PriorityPolicy, StatusRules};
use verity_store::perc::{
    ActionColumns, ActionEvent, ActionRow, CasOutcome, NewAction, NewPercCase, PercCase,
    ServiceRecord,
};
use verity_store::queries::QueryRow;
use verity_store::IdKind;
use verity_workflow::detainer::{
    ActionKind, Actor, EnforcementAction, Event, Refusal, State as ActionState, Warrant,
    WarrantKind,
};
use verity_workflow::documents::{render_packet, PacketDetails};
use verity_workflow::hold_clock::HolidayCalendar;
use verity_workflow::perc::{self as wf, CaseNotes, ClockLevel, IarSummary, PercPolicy, Urgency};
use verity_workflow::{Permission, Principal};

/// Console pages of this area: (path, permission, handler).
pub fn staff_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    vec![
        ("/perc/queue", Permission::TrackDetainers, get(queue_page)),
        ("/perc/board", Permission::TrackDetainers, get(board_page)),
        (
            "/perc/escalations",
            Permission::Escalations,
            get(escalations_page),
        ),
        (
            "/perc/metrics",
            Permission::TrackDetainers,
            get(metrics_page),
        ),
        (
            "/perc/cases/{id}",
            Permission::TrackDetainers,
            get(case_page),
        ),
        (
            "/perc/cases/{id}/prepare",
            Permission::PrepareDetainer,
            post(prepare),
        ),
        (
            "/perc/cases/{id}/no-action",
            Permission::PrepareDetainer,
            post(no_action),
        ),
        (
            "/perc/cases/{id}/citizenship",
            Permission::TrackDetainers,
            post(citizenship),
        ),
        (
            "/perc/detainers/{id}/approve",
            Permission::ApproveDetainer,
            post(approve),
        ),
        (
            "/perc/detainers/{id}/event",
            Permission::TrackDetainers,
            post(track_event),
        ),
        (
            "/perc/detainers/{id}/service",
            Permission::TrackDetainers,
            post(service),
        ),
        (
            "/perc/detainers/{id}/packet.pdf",
            Permission::TrackDetainers,
            get(packet_pdf),
        ),
    ]
}

/// Agency API routes of this area: (path, permission, handler).
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    Vec::new()
}

/// Navigation entries of this area: (href, label, permission).
pub const NAV: &[(&str, &str, Permission)] = &[
    ("/perc/queue", "PERC queue", Permission::TrackDetainers),
    ("/perc/board", "Detainer board", Permission::TrackDetainers),
    ("/perc/escalations", "Escalations", Permission::Escalations),
    ("/perc/metrics", "PERC metrics", Permission::TrackDetainers),
];

/// The policies and tables PERC decides with, loaded once from the embedded data.
struct PercRuntime {
    reference: Reference,
    policy: PercPolicy,
    priority: PriorityPolicy,
    rules: StatusRules,
    holidays: HolidayCalendar,
}

fn runtime() -> Result<&'static PercRuntime, AppError> {
    static RT: OnceLock<Result<PercRuntime, String>> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        let reference = Reference::embedded().map_err(|e| e.to_string())?;
        Ok(PercRuntime {
            policy: PercPolicy::embedded(&reference.aors).map_err(|e| e.to_string())?,
            priority: PriorityPolicy::embedded(&reference.offenses).map_err(|e| e.to_string())?,
            rules: StatusRules::embedded().map_err(|e| e.to_string())?,
            holidays: HolidayCalendar::embedded().map_err(|e| e.to_string())?,
            reference,
        })
    });
    rt.as_ref()
        .map_err(|e| AppError::BadRequest(format!("PERC policy data is invalid: {e}")))
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn from_micros(m: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(m).map(|d| d.naive_utc())
}

fn fmt_micros(m: Option<i64>) -> String {
    m.and_then(from_micros)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

use crate::console::nav_for;

fn actor_of(who: &Principal) -> Actor {
    Actor {
        username: who.username.clone(),
        roles: who.roles.clone(),
    }
}

async fn audit(
    state: &AppState,
    who: &str,
    subject: &str,
    decision: &str,
    reason: &str,
) -> Result<(), AppError> {
    state
        .store
        .append_audit(AuditEvent {
            actor: who.to_string(),
            agency: None,
            purpose: Purpose::Enforcement,
            action: AuditAction::Decision {
                subject: subject.to_string(),
                decision: decision.to_string(),
                reason: reason.to_string(),
            },
        })
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Intake from the LESC

/// Called by the LESC side after every IAR is issued (automatically or by a specialist): PERC
/// takes the ones with an actionable status for people in custody in its covered AORs.
pub async fn on_iar_issued(state: &AppState, query: &QueryRow) -> Result<(), AppError> {
    let Some(iar_json) = query.iar_json.as_deref() else {
        return Ok(());
    };
    let rt = runtime()?;
    // A malformed answer must not undo its issue: log it, count it, and leave it to the LESC.
    let iar = match IarSummary::parse(&query.query_id, iar_json) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "PERC could not read an issued IAR");
            metrics::counter!("verity_perc_triage_total", "outcome" => "unreadable_iar")
                .increment(1);
            return Ok(());
        }
    };
    let aor = match wf::triage_eligibility(query.in_custody, query.aor.as_deref(), &iar, &rt.policy)
    {
        Ok(aor) => aor,
        Err(reason) => {
            let code = serde_json::to_value(&reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            metrics::counter!("verity_perc_triage_total", "outcome" => code).increment(1);
            return Ok(());
        }
    };
    let records = subject_records(state, &iar, query.result_json.as_deref()).await?;
    let today = Utc::now().date_naive();
    let rank = wf::rank_subject(&records, &rt.priority, &rt.reference.offenses, today);
    let custody = wf::custody_facts(&records);
    let iar_micros = query.answered_micros.unwrap_or_else(|| micros(now()));
    let created = state
        .store
        .insert_perc_case(&NewPercCase {
            case_id: format!("PC-{}", query.query_id),
            query_id: query.query_id.clone(),
            person_key: iar.person_key.clone(),
            aor,
            status: iar.status.code().to_string(),
            rank_points: rank.points,
            tier: rank.tier.clone(),
            rank_json: serde_json::to_string(&rank).unwrap_or_else(|_| "{}".into()),
            policy_version: rank.policy_version.clone(),
            expected_release_micros: custody
                .expected_release
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(micros),
            iar_micros,
            now_micros: micros(now()),
        })
        .await?;
    if created {
        metrics::counter!("verity_perc_triage_total", "outcome" => "taken").increment(1);
    }
    Ok(())
}

/// The subject's records now: the answer's records plus every record sharing its A-number or
/// FIN, so evidence that arrived after the answer (a passport, a naturalization) is seen.
async fn subject_records(
    state: &AppState,
    iar: &IarSummary,
    result_json: Option<&str>,
) -> Result<Vec<SourceRecord>, AppError> {
    let mut by_id: BTreeMap<String, SourceRecord> = BTreeMap::new();
    for id in wf::subject_record_ids(iar, result_json) {
        if let Some(r) = state.store.get_record(&id).await? {
            by_id.insert(r.record_id.clone(), r);
        }
    }
    for (kind, value) in [(IdKind::ANumber, &iar.a_number), (IdKind::Fin, &iar.fin)] {
        if value.is_empty() {
            continue;
        }
        // An identifier the store cannot canonicalise simply finds nothing more.
        if let Ok(rs) = state.store.records_by_identifier(kind, value).await {
            for r in rs {
                by_id.insert(r.record_id.clone(), r);
            }
        }
    }
    Ok(by_id.into_values().collect())
}

/// Everything a case page or a transition needs, read fresh from the store.
struct CaseContext {
    case: PercCase,
    query: QueryRow,
    iar: IarSummary,
    records: Vec<SourceRecord>,
}

async fn load_case(state: &AppState, case_id: &str) -> Result<CaseContext, AppError> {
    let case = state
        .store
        .get_perc_case(case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let query = state
        .store
        .perc_query(&case.query_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let iar = IarSummary::parse(&query.query_id, query.iar_json.as_deref().unwrap_or(""))
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let records = subject_records(state, &iar, query.result_json.as_deref()).await?;
    Ok(CaseContext {
        case,
        query,
        iar,
        records,
    })
}

fn snapshot(ctx: &CaseContext, rt: &PercRuntime) -> verity_workflow::detainer::SubjectSnapshot {
    wf::subject_snapshot(
        &ctx.iar,
        &ctx.records,
        &rt.rules,
        CaseNotes {
            citizenship_claim_open: ctx.case.citizenship_claim_open,
            citizenship_indicia_open: ctx.case.citizenship_indicia_open,
        },
        Utc::now().date_naive(),
    )
}

// ---------------------------------------------------------------------------------------------
// Pages

pub struct QueueRow {
    pub case_id: String,
    pub points: i64,
    pub tier: String,
    pub explanation: String,
    pub policy_version: String,
    pub status: String,
    pub aor: String,
    pub release: String,
    pub urgency: String,
    pub state: String,
    pub name: String,
}

fn explanation(rank_json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(rank_json).unwrap_or_default();
    let factors: Vec<String> = v
        .get("factors")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .map(|f| {
                    format!(
                        "{} +{} ({})",
                        f.get("name").and_then(|x| x.as_str()).unwrap_or(""),
                        f.get("points").and_then(|x| x.as_i64()).unwrap_or(0),
                        f.get("detail").and_then(|x| x.as_str()).unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if factors.is_empty() {
        "no priority factor".into()
    } else {
        factors.join("; ")
    }
}

#[derive(askama::Template)]
#[template(path = "perc_queue.html")]
struct QueuePage {
    nav: Vec<NavItem>,
    username: String,
    rows: Vec<QueueRow>,
    policy_version: String,
    covered: String,
}

async fn queue_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    let rt = runtime()?;
    let today = Utc::now().date_naive();
    let cases = state
        .store
        .list_perc_cases(&["triage", "action", "citizenship_review"], 500)
        .await?;
    let mut rows = Vec::new();
    for c in cases {
        let release = c
            .expected_release_micros
            .and_then(from_micros)
            .map(|t| t.date());
        let name = match state.store.perc_query(&c.query_id).await? {
            Some(q) => q
                .iar_json
                .as_deref()
                .and_then(|j| IarSummary::parse(&q.query_id, j).ok())
                .map(|i| i.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        rows.push(QueueRow {
            explanation: explanation(&c.rank_json),
            urgency: Urgency::of(release, today, &rt.policy).code().into(),
            release: release
                .map(|d| d.to_string())
                .unwrap_or_else(|| "unknown".into()),
            case_id: c.case_id,
            points: c.rank_points,
            tier: c.tier,
            policy_version: c.policy_version,
            status: c.status,
            aor: c.aor,
            state: c.state,
            name,
        });
    }
    let page = QueuePage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        rows,
        policy_version: rt.policy.version.clone(),
        covered: rt
            .policy
            .covered_aors
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    };
    Ok(Html(askama::Template::render(&page)?))
}

pub struct RecordLine {
    pub record_id: String,
    pub system: String,
    pub summary: String,
}

fn summarize(r: &SourceRecord) -> String {
    match &r.body {
        RecordBody::Court(c) => format!("immigration court {}: {}", c.case_number, c.outcome),
        RecordBody::Criminal(c) => format!(
            "arrest {} charge {} {} ({})",
            c.arrest_date, c.ncic_code, c.charge, c.disposition
        ),
        RecordBody::Custody(c) => format!(
            "booked {} at {} ({}), expected release {}",
            c.booking_date,
            c.facility,
            c.ori,
            c.expected_release
                .map(|d| d.to_string())
                .unwrap_or_else(|| "unknown".into())
        ),
        RecordBody::Enforcement(e) => format!("{} on {} {}", e.event, e.date, e.detail),
        RecordBody::Citizenship(c) => format!("citizenship evidence: {}", c.evidence),
        RecordBody::Benefits(b) => format!("{} {}", b.benefit, b.outcome),
        RecordBody::Travel(t) => {
            format!("{} {} class {}", t.direction, t.date, t.class_of_admission)
        }
        RecordBody::Biometrics(b) => format!(
            "fingerprints enrolled {} ({} fingers)",
            b.enrolled, b.fingers
        ),
    }
}

pub struct GateLine {
    pub label: String,
    pub ok: bool,
}

pub struct ActionView {
    pub action_id: String,
    pub kind: String,
    pub state: String,
    pub lift_reason: String,
    pub basis: String,
    pub warrant: String,
    pub prepared_by: String,
    pub approved_by: String,
    pub hold_until: String,
    pub release_notified: String,
    pub evidence: Vec<(String, String)>,
    pub events: Vec<EventLine>,
    pub services: Vec<String>,
    pub open: bool,
    pub can_approve: bool,
    pub lodged: bool,
    pub approved: bool,
}

pub struct EventLine {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub change: String,
    pub accepted: bool,
    pub reason: String,
}

#[derive(askama::Template)]
#[template(path = "perc_case.html")]
struct CasePage {
    nav: Vec<NavItem>,
    username: String,
    case_id: String,
    state: String,
    name: String,
    dob: String,
    a_number: String,
    status: String,
    aor: String,
    decided_by: String,
    biometric: bool,
    points: i64,
    tier: String,
    explanation: String,
    policy_version: String,
    release: String,
    urgency: String,
    facility: String,
    citizenship_note: String,
    claim_open: bool,
    indicia_open: bool,
    gates: Vec<GateLine>,
    records: Vec<RecordLine>,
    actions: Vec<ActionView>,
    can_prepare: bool,
    lift_reasons: Vec<String>,
    message: Option<String>,
    refusal: Option<String>,
}

fn view_action(
    row: &ActionRow,
    events: Vec<verity_store::perc::ActionEvent>,
    services: Vec<ServiceRecord>,
    can_approve: bool,
) -> ActionView {
    let c = &row.columns;
    let evidence: Vec<(String, String)> =
        serde_json::from_str(&row.evidence_json).unwrap_or_default();
    ActionView {
        action_id: row.action_id.clone(),
        kind: c.kind.clone(),
        state: c.state.clone(),
        lift_reason: c.lift_reason.clone().unwrap_or_default(),
        basis: c.basis.clone().unwrap_or_default(),
        warrant: c.warrant_kind.clone().unwrap_or_default(),
        prepared_by: c.prepared_by.clone(),
        approved_by: c.approved_by.clone().unwrap_or_default(),
        hold_until: fmt_micros(c.hold_until_micros),
        release_notified: fmt_micros(c.release_notified_micros),
        evidence,
        events: events
            .into_iter()
            .map(|e| EventLine {
                at: fmt_micros(Some(e.at_micros)),
                change: if e.accepted {
                    format!("{} -> {}", e.from_state, e.to_state)
                } else {
                    format!("refused at {}", e.from_state)
                },
                actor: e.actor,
                kind: e.kind,
                accepted: e.accepted,
                reason: e.reason,
            })
            .collect(),
        services: services
            .into_iter()
            .map(|s| {
                format!(
                    "served {} by {} ({}): {}",
                    fmt_micros(Some(s.served_micros)),
                    s.served_by,
                    s.method,
                    s.note
                )
            })
            .collect(),
        open: matches!(c.state.as_str(), "prepared" | "approved" | "lodged"),
        can_approve: can_approve && c.state == "prepared",
        lodged: c.state == "lodged",
        approved: c.state == "approved",
    }
}

async fn render_case(
    state: &AppState,
    who: &Principal,
    case_id: &str,
    message: Option<String>,
    refusal: Option<String>,
) -> Result<Response, AppError> {
    let rt = runtime()?;
    let ctx = load_case(state, case_id).await?;
    let snap = snapshot(&ctx, rt);
    let today = Utc::now().date_naive();
    let custody = wf::custody_facts(&ctx.records);
    let gates = vec![
        GateLine {
            label: "No unresolved U.S. citizenship indicia".into(),
            ok: !snap.citizenship_indicia,
        },
        GateLine {
            label: "No open claim of U.S. citizenship".into(),
            ok: !snap.open_citizenship_claim,
        },
        GateLine {
            label: "Identity confirmed by fingerprints".into(),
            ok: snap.biometric_identity,
        },
        GateLine {
            label: "Identity confirmed by a LESC specialist".into(),
            ok: snap.specialist_confirmed_identity,
        },
        GateLine {
            label: "Final order of removal on record (basis 1, I-205)".into(),
            ok: snap.final_order,
        },
        GateLine {
            label: "Removal proceedings pending (basis 2)".into(),
            ok: snap.pending_proceedings,
        },
    ];
    let can_approve = state.access.allows(who, Permission::ApproveDetainer);
    let mut actions = Vec::new();
    for row in state.store.actions_for_case(case_id).await? {
        let events = state.store.action_events(&row.action_id).await?;
        let services = state.store.service_records(&row.action_id).await?;
        actions.push(view_action(&row, events, services, can_approve));
    }
    let release = ctx
        .case
        .expected_release_micros
        .and_then(from_micros)
        .map(|t| t.date());
    let page = CasePage {
        nav: nav_for(state, who),
        username: who.username.clone(),
        case_id: ctx.case.case_id.clone(),
        state: ctx.case.state.clone(),
        name: ctx.iar.name.clone(),
        dob: ctx.iar.dob.clone(),
        a_number: ctx.iar.a_number.clone(),
        status: ctx.case.status.clone(),
        aor: ctx.case.aor.clone(),
        decided_by: ctx.iar.decided_by.clone(),
        biometric: ctx.iar.biometric,
        points: ctx.case.rank_points,
        tier: ctx.case.tier.clone(),
        explanation: explanation(&ctx.case.rank_json),
        policy_version: ctx.case.policy_version.clone(),
        release: release
            .map(|d| d.to_string())
            .unwrap_or_else(|| "unknown".into()),
        urgency: Urgency::of(release, today, &rt.policy).code().into(),
        facility: custody.facility,
        citizenship_note: ctx.case.citizenship_note.clone(),
        claim_open: ctx.case.citizenship_claim_open,
        indicia_open: ctx.case.citizenship_indicia_open,
        gates,
        records: ctx
            .records
            .iter()
            .map(|r| RecordLine {
                record_id: r.record_id.clone(),
                system: r.system().to_string(),
                summary: summarize(r),
            })
            .collect(),
        actions,
        can_prepare: state.access.allows(who, Permission::PrepareDetainer),
        lift_reasons: wf::LIFT_REASONS
            .iter()
            .map(|r| wf::lift_reason_code(*r))
            .collect(),
        message,
        refusal: refusal.clone(),
    };
    let html = askama::Template::render(&page)?;
    let status = if refusal.is_some() {
        axum::http::StatusCode::CONFLICT
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Html(html)).into_response())
}

async fn case_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    render_case(&state, &who, &id, None, None).await
}

// ---------------------------------------------------------------------------------------------
// Transitions

fn refused_metric(code: &str) {
    metrics::counter!("verity_perc_gate_refusals_total", "reason" => code.to_string()).increment(1);
}

/// Records a refusal everywhere it must be seen: the action's events (when there is an action),
/// the audit log and the metrics; returns the text for the page.
async fn record_refusal(
    state: &AppState,
    who: &str,
    subject: &str,
    action: Option<(&str, &str)>,
    attempted: &str,
    code: &str,
    why: &str,
) -> Result<String, AppError> {
    refused_metric(code);
    if let Some((action_id, from)) = action {
        state
            .store
            .append_action_event(
                action_id,
                &ActionEvent {
                    at_micros: micros(now()),
                    actor: who.to_string(),
                    kind: attempted.to_string(),
                    from_state: from.to_string(),
                    to_state: from.to_string(),
                    accepted: false,
                    reason: code.to_string(),
                },
            )
            .await?;
    }
    audit(state, who, subject, &format!("{attempted} refused"), why).await?;
    Ok(format!("Refused: {why}"))
}

#[derive(Deserialize)]
pub struct PrepareForm {
    kind: String,
    #[serde(default)]
    basis: String,
    #[serde(default)]
    warrant: String,
}

async fn prepare(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(case_id): Path<String>,
    Form(form): Form<PrepareForm>,
) -> Result<Response, AppError> {
    let rt = runtime()?;
    let ctx = load_case(&state, &case_id).await?;
    let kind = match form.kind.as_str() {
        "detainer" => ActionKind::Detainer,
        "request_for_notification" => ActionKind::RequestForNotification,
        other => {
            return Err(AppError::BadRequest(format!(
                "kind: '{other}' is not detainer or request_for_notification"
            )))
        }
    };
    let basis = match form.basis.as_str() {
        "" => None,
        b => Some(wf::parse_basis(b).ok_or_else(|| {
            AppError::BadRequest(format!("basis: '{b}' is not one of the four I-247A bases"))
        })?),
    };
    let at = now();
    let warrant = match form.warrant.as_str() {
        "" => None,
        // The officer prepares the warrant under their name; the approving supervisor signs it
        // at approval (below, in `transition`).
        "I200" | "I205" => Some(Warrant {
            kind: if form.warrant == "I200" {
                WarrantKind::I200
            } else {
                WarrantKind::I205
            },
            signed_by: who.username.clone(),
            signed_at: at,
        }),
        w => {
            return Err(AppError::BadRequest(format!(
                "warrant: '{w}' is not I200 or I205"
            )))
        }
    };
    let snap = snapshot(&ctx, rt);
    let action = match EnforcementAction::prepare(kind, basis, warrant, actor_of(&who), at, &snap) {
        Ok(a) => a,
        Err(refusal) => {
            let text = record_refusal(
                &state,
                &who.username,
                &case_id,
                None,
                "prepare",
                &wf::refusal_code(&refusal),
                &refusal.to_string(),
            )
            .await?;
            if matches!(
                refusal,
                Refusal::Gate {
                    gate: verity_workflow::detainer::Gate::CitizenshipIndicia
                        | verity_workflow::detainer::Gate::OpenCitizenshipClaim
                }
            ) {
                let _ = state
                    .store
                    .set_perc_case_state(
                        &case_id,
                        "citizenship_review",
                        ctx.case.version,
                        micros(at),
                    )
                    .await?;
            }
            return render_case(&state, &who, &case_id, None, Some(text)).await;
        }
    };
    // The gates passed; PERC also acts only while the current records keep the status actionable.
    if let Err(status) = wf::status_still_actionable(&ctx.records, &rt.rules, &rt.policy, at.date())
    {
        let text = record_refusal(
            &state,
            &who.username,
            &case_id,
            None,
            "prepare",
            "status_not_actionable",
            &format!(
                "the subject's current records give status '{status}', which PERC does not act on"
            ),
        )
        .await?;
        return render_case(&state, &who, &case_id, None, Some(text)).await;
    }
    let idx = wf::index_action(&action).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let evidence = wf::evidence_for(basis, &ctx.iar, &ctx.records, at.date());
    let action_id = format!(
        "DET-{}-{}",
        ctx.query.query_id,
        at.and_utc().timestamp_micros() % 1_000_000_000
    );
    let custody = wf::custody_facts(&ctx.records);
    state
        .store
        .insert_action(
            &NewAction {
                action_id: action_id.clone(),
                case_id: case_id.clone(),
                columns: columns_of(idx, None, None, None),
                evidence_json: serde_json::to_string(&evidence).unwrap_or_else(|_| "[]".into()),
                facility: custody.facility,
            },
            &who.username,
            &format!("prepared {}", form.kind),
            micros(at),
        )
        .await?;
    if ctx.case.state == "triage" {
        if let CasOutcome::Updated { .. } = state
            .store
            .set_perc_case_state(&case_id, "action", ctx.case.version, micros(at))
            .await?
        {
            decision_metric(ctx.case.iar_micros, micros(at), "action");
        }
    }
    audit(&state, &who.username, &action_id, "prepared", &form.kind).await?;
    Ok(Redirect::to(&format!("/perc/cases/{case_id}")).into_response())
}

fn decision_metric(iar_micros: i64, at_micros: i64, decision: &str) {
    let seconds = (at_micros - iar_micros).max(0) as f64 / 1e6;
    metrics::histogram!("verity_perc_iar_to_decision_seconds", "decision" => decision.to_string())
        .record(seconds);
}

fn columns_of(
    idx: wf::IndexedAction,
    lodged: Option<i64>,
    hold_until: Option<i64>,
    release_notified: Option<i64>,
) -> ActionColumns {
    ActionColumns {
        kind: idx.kind,
        state: idx.state,
        lift_reason: idx.lift_reason,
        basis: idx.basis,
        warrant_kind: idx.warrant_kind,
        prepared_by: idx.prepared_by,
        approved_by: idx.approved_by,
        action_json: idx.action_json,
        lodged_micros: lodged,
        hold_until_micros: hold_until,
        release_notified_micros: release_notified,
    }
}

async fn no_action(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(case_id): Path<String>,
) -> Result<Response, AppError> {
    let case = state
        .store
        .get_perc_case(&case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let at = micros(now());
    match state
        .store
        .set_perc_case_state(&case_id, "no_action", case.version, at)
        .await?
    {
        CasOutcome::Updated { .. } => {
            if case.decided_micros.is_none() {
                decision_metric(case.iar_micros, at, "no_action");
            }
            audit(
                &state,
                &who.username,
                &case_id,
                "no action",
                "closed from triage",
            )
            .await?;
            Ok(Redirect::to("/perc/queue").into_response())
        }
        CasOutcome::Stale => {
            render_case(
                &state,
                &who,
                &case_id,
                None,
                Some("Refused: the case changed meanwhile; reload and try again".into()),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct CitizenshipForm {
    /// claim | indicia | resolved
    what: String,
    #[serde(default)]
    note: String,
}

async fn citizenship(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(case_id): Path<String>,
    Form(form): Form<CitizenshipForm>,
) -> Result<Response, AppError> {
    let (claim, indicia) = match form.what.as_str() {
        "claim" => (true, false),
        "indicia" => (false, true),
        // Only a deportation officer's citizenship review may resolve; PERC records it here.
        "resolved" => {
            if !state.access.allows(&who, Permission::ReviewCitizenship) {
                return render_case(&state, &who, &case_id, None, Some("Refused: only a citizenship review (permission review_citizenship) resolves a claim or indicia".into())).await;
            }
            (false, false)
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "what: '{other}' is not claim, indicia or resolved"
            )))
        }
    };
    let note = form.note.trim();
    state
        .store
        .set_perc_citizenship(&case_id, claim, indicia, note, micros(now()))
        .await?;
    audit(
        &state,
        &who.username,
        &case_id,
        &format!("citizenship {}", form.what),
        note,
    )
    .await?;
    render_case(
        &state,
        &who,
        &case_id,
        Some(format!("Recorded: citizenship {}.", form.what)),
        None,
    )
    .await
}

/// Applies one event to a stored action through the gates and writes it compare-and-set.
async fn transition(
    state: &AppState,
    who: &Principal,
    action_id: &str,
    event: Event,
    verb: &str,
    note: &str,
) -> Result<Response, AppError> {
    let rt = runtime()?;
    let row = state
        .store
        .get_action(action_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let ctx = load_case(state, &row.case_id).await?;
    let snap = snapshot(&ctx, rt);
    let mut action = wf::read_action(action_id, &row.columns.action_json)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let from = action.state;
    let at = now();
    let toward_hold = matches!(event, Event::Approve { .. } | Event::Lodge { .. });
    if let Err(refusal) = action.apply(event, &snap, at) {
        let text = record_refusal(
            state,
            &who.username,
            action_id,
            Some((action_id, from.code())),
            verb,
            &wf::refusal_code(&refusal),
            &refusal.to_string(),
        )
        .await?;
        if matches!(
            refusal,
            Refusal::Gate {
                gate: verity_workflow::detainer::Gate::CitizenshipIndicia
                    | verity_workflow::detainer::Gate::OpenCitizenshipClaim
            }
        ) {
            let _ = state
                .store
                .set_perc_case_state(
                    &ctx.case.case_id,
                    "citizenship_review",
                    ctx.case.version,
                    micros(at),
                )
                .await?;
        }
        return render_case(state, who, &row.case_id, None, Some(text)).await;
    }
    // The gates passed; PERC also acts only while the current records keep the status actionable.
    if toward_hold {
        if let Err(status) =
            wf::status_still_actionable(&ctx.records, &rt.rules, &rt.policy, at.date())
        {
            let text = record_refusal(
                state,
                &who.username,
                action_id,
                Some((action_id, from.code())),
                verb,
                "status_not_actionable",
                &format!("the subject's current records give status '{status}', which PERC does not act on"),
            )
            .await?;
            return render_case(state, who, &row.case_id, None, Some(text)).await;
        }
    }
    let to = action.state;
    if to == ActionState::Approved {
        if let Some(w) = action.warrant.as_mut() {
            w.signed_by = who.username.clone();
            w.signed_at = at;
        }
    }
    let idx = wf::index_action(&action).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let mut lodged = row.columns.lodged_micros;
    let mut hold_until = row.columns.hold_until_micros;
    if to == ActionState::Lodged {
        lodged = Some(micros(at));
        if action.kind == ActionKind::Detainer {
            // Until the agency notifies the release time, the clock runs from the expected
            // release date; the notification replaces it with the real time.
            hold_until = ctx
                .case
                .expected_release_micros
                .and_then(from_micros)
                .and_then(|t| rt.holidays.hold_deadline(t).ok())
                .map(micros);
        }
    }
    let event_row = ActionEvent {
        at_micros: micros(at),
        actor: who.username.clone(),
        kind: verb.to_string(),
        from_state: from.code().to_string(),
        to_state: to.code().to_string(),
        accepted: true,
        reason: note.to_string(),
    };
    match state
        .store
        .update_action(
            action_id,
            row.version,
            &columns_of(idx, lodged, hold_until, row.columns.release_notified_micros),
            &event_row,
        )
        .await?
    {
        CasOutcome::Updated { .. } => {
            if to.is_terminal() {
                let reason = match to {
                    ActionState::Lifted(r) => wf::lift_reason_code(r),
                    _ => String::new(),
                };
                metrics::counter!("verity_perc_detainers_total", "outcome" => to.code().to_string(), "lift_reason" => reason).increment(1);
            }
            audit(state, &who.username, action_id, to.code(), note).await?;
            render_case(
                state,
                who,
                &row.case_id,
                Some(format!("{} is now {}.", action_id, to.code())),
                None,
            )
            .await
        }
        CasOutcome::Stale => {
            let refusal_text = "Refused: someone else changed this action at the same moment; reload to see its state";
            refused_metric("concurrent_change");
            state
                .store
                .append_action_event(
                    action_id,
                    &ActionEvent {
                        accepted: false,
                        to_state: from.code().into(),
                        reason: "concurrent_change".into(),
                        ..event_row
                    },
                )
                .await?;
            audit(
                state,
                &who.username,
                action_id,
                &format!("{verb} refused"),
                "concurrent change",
            )
            .await?;
            render_case(state, who, &row.case_id, None, Some(refusal_text.into())).await
        }
    }
}

async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let event = Event::Approve { by: actor_of(&who) };
    transition(
        &state,
        &who,
        &id,
        event,
        "approve",
        "approved by supervisor",
    )
    .await
}

#[derive(Deserialize)]
pub struct TrackForm {
    /// lodge | honor | decline | lift | expire | release_notified
    event: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    /// Release time notified by the agency (`YYYY-MM-DDTHH:MM`, facility local).
    #[serde(default)]
    released_at: String,
}

async fn track_event(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): Form<TrackForm>,
) -> Result<Response, AppError> {
    let by = actor_of(&who);
    let note = form.note.trim().to_string();
    let event = match form.event.as_str() {
        "lodge" => Event::Lodge { by },
        "honor" => Event::Honor { by },
        "decline" => Event::Decline { by },
        "expire" => Event::Expire,
        "lift" => Event::Lift {
            by,
            reason: wf::parse_lift_reason(form.reason.trim()),
            note: note.clone(),
        },
        "release_notified" => {
            return release_notified(&state, &who, &id, &form.released_at, &note).await
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "event: '{other}' is not lodge, honor, decline, lift, expire or release_notified"
            )))
        }
    };
    transition(&state, &who, &id, event, &form.event, &note).await
}

/// The agency's release notification closes the loop: it fixes when the hold clock started.
async fn release_notified(
    state: &AppState,
    who: &Principal,
    action_id: &str,
    released_at: &str,
    note: &str,
) -> Result<Response, AppError> {
    let rt = runtime()?;
    let released =
        NaiveDateTime::parse_from_str(released_at.trim(), "%Y-%m-%dT%H:%M").map_err(|e| {
            AppError::BadRequest(format!(
                "released_at: '{released_at}' is not YYYY-MM-DDTHH:MM ({e})"
            ))
        })?;
    let row = state
        .store
        .get_action(action_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let action = wf::read_action(action_id, &row.columns.action_json)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    if action.state != ActionState::Lodged {
        let refusal = Refusal::InvalidTransition {
            from: action.state.code(),
            attempted: "notified of release",
        };
        let text = record_refusal(
            state,
            &who.username,
            action_id,
            Some((action_id, action.state.code())),
            "release_notified",
            &wf::refusal_code(&refusal),
            &refusal.to_string(),
        )
        .await?;
        return render_case(state, who, &row.case_id, None, Some(text)).await;
    }
    let hold_until = if action.kind == ActionKind::Detainer {
        Some(
            rt.holidays
                .hold_deadline(released)
                .map_err(|e| AppError::BadRequest(format!("released_at: {e}")))?,
        )
    } else {
        None
    };
    let mut cols = row.columns.clone();
    cols.release_notified_micros = Some(micros(released));
    cols.hold_until_micros = hold_until.map(micros).or(cols.hold_until_micros);
    let ev = ActionEvent {
        at_micros: micros(now()),
        actor: who.username.clone(),
        kind: "release_notified".into(),
        from_state: "lodged".into(),
        to_state: "lodged".into(),
        accepted: true,
        reason: format!(
            "agency release at {}; {note}",
            released.format("%Y-%m-%d %H:%M")
        ),
    };
    match state
        .store
        .update_action(action_id, row.version, &cols, &ev)
        .await?
    {
        CasOutcome::Updated { .. } => {
            audit(
                state,
                &who.username,
                action_id,
                "release notified",
                &ev.reason,
            )
            .await?;
            render_case(
                state,
                who,
                &row.case_id,
                Some("Release notification recorded; the hold clock runs from it.".into()),
                None,
            )
            .await
        }
        CasOutcome::Stale => {
            render_case(
                state,
                who,
                &row.case_id,
                None,
                Some("Refused: the action changed meanwhile; reload and try again".into()),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct ServiceForm {
    served_at: String,
    method: String,
    #[serde(default)]
    note: String,
}

async fn service(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Form(form): Form<ServiceForm>,
) -> Result<Response, AppError> {
    let served =
        NaiveDateTime::parse_from_str(form.served_at.trim(), "%Y-%m-%dT%H:%M").map_err(|e| {
            AppError::BadRequest(format!(
                "served_at: '{}' is not YYYY-MM-DDTHH:MM ({e})",
                form.served_at
            ))
        })?;
    if !matches!(form.method.as_str(), "in_person" | "via_facility" | "mail") {
        return Err(AppError::BadRequest(format!(
            "method: '{}' is not in_person, via_facility or mail",
            form.method
        )));
    }
    let row = state
        .store
        .get_action(&id)
        .await?
        .ok_or(AppError::NotFound)?;
    state
        .store
        .add_service_record(&ServiceRecord {
            action_id: id.clone(),
            served_micros: micros(served),
            method: form.method.clone(),
            served_by: who.username.clone(),
            note: form.note.trim().to_string(),
            recorded_by: who.username.clone(),
            recorded_micros: micros(now()),
        })
        .await?;
    audit(&state, &who.username, &id, "copy served", &form.method).await?;
    render_case(
        &state,
        &who,
        &row.case_id,
        Some("Service recorded.".into()),
        None,
    )
    .await
}

async fn packet_pdf(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let rt = runtime()?;
    let row = state
        .store
        .get_action(&id)
        .await?
        .ok_or(AppError::NotFound)?;
    let ctx = load_case(&state, &row.case_id).await?;
    let action = wf::read_action(&id, &row.columns.action_json)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let subject = ctx
        .records
        .iter()
        .find(|r| r.identity.ids.a_number.is_some())
        .or(ctx.records.first());
    let agency = match Ori::parse(&ctx.query.ori) {
        Ok(ori) => state.store.get_agency(&ori).await?.map(|a| a.name),
        Err(_) => None,
    };
    let details = PacketDetails {
        action_id: id.clone(),
        event_number: ctx.query.query_id.clone(),
        subject_name: ctx.iar.name.clone(),
        dob: ctx.iar.dob.clone(),
        sex: subject
            .and_then(|r| r.identity.sex)
            .map(|s| format!("{s:?}"))
            .unwrap_or_default(),
        citizenship: subject
            .map(|r| r.identity.country_of_birth.clone())
            .unwrap_or_default(),
        a_number: ctx.iar.a_number.clone(),
        fin: ctx.iar.fin.clone(),
        to_agency: agency.unwrap_or_else(|| ctx.query.ori.clone()),
        facility: row.facility.clone(),
        from_office: ctx.case.aor.clone(),
        evidence: serde_json::from_str(&row.evidence_json).unwrap_or_default(),
        versions: vec![
            ctx.iar.rules_version.clone(),
            ctx.case.policy_version.clone(),
            rt.policy.version.clone(),
        ],
        hold_until: row.columns.hold_until_micros.and_then(from_micros),
        generated_at: now(),
    };
    let pdf = render_packet(&action, &details);
    audit(&state, &who.username, &id, "packet viewed", "PDF preview").await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"packet.pdf\"",
            ),
        ],
        pdf,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Tracking board, escalations, metrics

pub struct BoardRow {
    pub action_id: String,
    pub case_id: String,
    pub kind: String,
    pub state: String,
    pub facility: String,
    pub hold_until: String,
    pub left: String,
    pub level: String,
    pub prepared_by: String,
    pub approved_by: String,
}

async fn board_rows(state: &AppState, rt: &PercRuntime) -> Result<Vec<BoardRow>, AppError> {
    let t = now();
    let rows = state
        .store
        .list_actions(&["prepared", "approved", "lodged"], 500)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let (level, left) = match (
                r.columns.state.as_str(),
                r.columns.hold_until_micros.and_then(from_micros),
            ) {
                ("lodged", Some(until)) => {
                    let (lvl, mins) = ClockLevel::of(until, t, &rt.policy);
                    (
                        lvl.code().to_string(),
                        format!("{}h {:02}m", mins / 60, (mins % 60).abs()),
                    )
                }
                ("lodged", None) => ("no_clock".to_string(), "release date unknown".to_string()),
                _ => ("not_lodged".to_string(), String::new()),
            };
            BoardRow {
                hold_until: fmt_micros(r.columns.hold_until_micros),
                action_id: r.action_id,
                case_id: r.case_id,
                kind: r.columns.kind,
                state: r.columns.state,
                facility: r.facility,
                left,
                level,
                prepared_by: r.columns.prepared_by,
                approved_by: r.columns.approved_by.unwrap_or_default(),
            }
        })
        .collect())
}

#[derive(askama::Template)]
#[template(path = "perc_board.html")]
struct BoardPage {
    nav: Vec<NavItem>,
    username: String,
    title: String,
    rows: Vec<BoardRow>,
    reminders: usize,
    escalations: usize,
    clock_note: String,
}

async fn board(
    state: &AppState,
    who: &Principal,
    only_escalations: bool,
) -> Result<Html<String>, AppError> {
    let rt = runtime()?;
    let mut rows = board_rows(state, rt).await?;
    let reminders = rows.iter().filter(|r| r.level == "reminder").count();
    let escalations = rows
        .iter()
        .filter(|r| matches!(r.level.as_str(), "escalate" | "overdue"))
        .count();
    if only_escalations {
        rows.retain(|r| matches!(r.level.as_str(), "escalate" | "overdue"));
    }
    let page = BoardPage {
        nav: nav_for(state, who),
        username: who.username.clone(),
        title: if only_escalations { "Escalations".into() } else { "Detainer tracking board".into() },
        rows,
        reminders,
        escalations,
        clock_note: format!(
            "48-hour hold clocks exclude Saturdays, Sundays and federal holidays (calendar {}); reminder at {} h left, escalation to supervisors at {} h left (policy {}).",
            rt.holidays.version, rt.policy.reminder_hours_left, rt.policy.escalation_hours_left, rt.policy.version
        ),
    };
    Ok(Html(askama::Template::render(&page)?))
}

async fn board_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    board(&state, &who, false).await
}

async fn escalations_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    board(&state, &who, true).await
}

#[derive(askama::Template)]
#[template(path = "perc_metrics.html")]
struct MetricsPage {
    nav: Vec<NavItem>,
    username: String,
    actions: Vec<(String, String, i64)>,
    refusals: Vec<(String, i64)>,
    cases: Vec<(String, i64)>,
    decision_median: String,
    decided: usize,
    prometheus: Vec<String>,
}

async fn metrics_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    let counts = state.store.perc_counts().await?;
    let mut waits: Vec<i64> = state
        .store
        .list_perc_cases(&[], 10_000)
        .await?
        .into_iter()
        .filter_map(|c| c.decided_micros.map(|d| d - c.iar_micros))
        .collect();
    waits.sort_unstable();
    let decision_median = waits
        .get(waits.len() / 2)
        .map(|m| format!("{:.1} minutes", *m as f64 / 60e6))
        .unwrap_or_else(|| "no decision yet".into());
    let prometheus = state
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("verity_perc_"))
        .map(str::to_string)
        .collect();
    let page = MetricsPage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        actions: counts.actions_by_state,
        refusals: counts.refusals_by_reason,
        cases: counts.cases_by_state,
        decided: waits.len(),
        decision_median,
        prometheus,
    };
    Ok(Html(askama::Template::render(&page)?))
}
