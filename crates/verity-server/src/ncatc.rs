//! NCATC console: lead run history, lead review, field-office queues, dispositions and the
//! analytics dashboard (server-rendered SVG charts).
//!
//! Every page that shows person data (lead lists and evidence packages) writes an audit entry
//! with its purpose; every disposition and every run start is audited too.

use crate::console::NavItem;
use crate::error::{html_escape, AppError};
use crate::state::AppState;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, MethodRouter};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use verity_model::{AuditAction, AuditEvent, Purpose};
use verity_store::leads::{LeadDisposition, LeadFilter, LeadRow, LeadRun, QualityRow};
use verity_workflow::ncatc::{self, LeadContext, RunOptions, RunStats};
use verity_workflow::{Permission, Principal};

/// Console pages of this area: (path, permission, handler).
pub fn staff_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    vec![
        (
            "/ncatc/runs",
            Permission::RunLeads,
            get(runs_page).post(start_run),
        ),
        ("/ncatc/leads", Permission::ReviewLeads, get(leads_page)),
        (
            "/ncatc/leads/{lead_id}",
            Permission::ReviewLeads,
            get(lead_page),
        ),
        ("/ncatc/aor", Permission::WorkAorLeads, get(aor_page)),
        (
            "/ncatc/aor/leads/{lead_id}",
            Permission::WorkAorLeads,
            get(aor_lead_page).post(record_disposition),
        ),
        (
            "/ncatc/dashboard",
            Permission::ViewAnalytics,
            get(dashboard),
        ),
    ]
}

/// Agency API routes of this area: (path, permission, handler).
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    Vec::new()
}

/// Navigation entries of this area: (href, label, permission).
pub const NAV: &[(&str, &str, Permission)] = &[
    ("/ncatc/runs", "Lead runs", Permission::RunLeads),
    ("/ncatc/leads", "Lead review", Permission::ReviewLeads),
    ("/ncatc/aor", "AOR leads", Permission::WorkAorLeads),
    ("/ncatc/dashboard", "Analytics", Permission::ViewAnalytics),
];

use crate::console::nav_for as nav;

fn micros_text(m: i64) -> String {
    chrono::DateTime::from_timestamp_micros(m)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

async fn audit(
    state: &AppState,
    who: &Principal,
    purpose: Purpose,
    action: AuditAction,
) -> Result<(), AppError> {
    state
        .store
        .append_audit(AuditEvent {
            actor: who.username.clone(),
            agency: who.agency.clone(),
            purpose,
            action,
        })
        .await?;
    Ok(())
}

// ---------------------------------------------------------------- runs

/// One lead run at a time per server process.
static RUN_ACTIVE: AtomicBool = AtomicBool::new(false);

pub struct RunView {
    pub run_id: String,
    pub kind: String,
    pub state: String,
    pub policy_version: String,
    pub started_by: String,
    pub started: String,
    pub finished: String,
    pub revs: String,
    pub evaluated: u64,
    pub created: u64,
    pub refreshed: u64,
    pub withdrawn: u64,
    pub parked: u64,
    pub citizenship: u64,
}

fn run_view(r: &LeadRun) -> RunView {
    let stats: RunStats = serde_json::from_str(&r.stats_json).unwrap_or_default();
    RunView {
        run_id: r.run_id.clone(),
        kind: r.kind.clone(),
        state: r.state.clone(),
        policy_version: r.policy_version.clone(),
        started_by: r.started_by.clone(),
        started: micros_text(r.started_micros),
        finished: r.finished_micros.map(micros_text).unwrap_or_default(),
        revs: format!("{}..{}", r.from_rev, r.to_rev),
        evaluated: stats.persons_evaluated,
        created: stats.leads_created,
        refreshed: stats.leads_refreshed,
        withdrawn: stats.leads_withdrawn,
        parked: stats.parked.values().sum(),
        citizenship: stats.citizenship_reviews,
    }
}

#[derive(askama::Template)]
#[template(path = "ncatc_runs.html")]
struct RunsPage {
    nav: Vec<NavItem>,
    username: String,
    runs: Vec<RunView>,
    active: bool,
    message: Option<String>,
    policy_version: String,
}

#[derive(Deserialize)]
pub struct RunsQuery {
    message: Option<String>,
}

async fn runs_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<RunsQuery>,
) -> Result<Html<String>, AppError> {
    let runs = state.store.lead_runs(50).await?;
    let policy_version = LeadContext::load(None)
        .map(|c| c.policy.version)
        .unwrap_or_else(|e| format!("invalid: {e}"));
    let page = RunsPage {
        nav: nav(&state, &who),
        username: who.username.clone(),
        runs: runs.iter().map(run_view).collect(),
        active: RUN_ACTIVE.load(Ordering::SeqCst),
        message: q.message,
        policy_version,
    };
    Ok(Html(askama::Template::render(&page)?))
}

#[derive(Deserialize)]
pub struct StartRunForm {
    #[serde(default)]
    full: Option<String>,
}

/// Starts (or resumes) a lead run in the background and returns to the run history.
async fn start_run(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Form(form): Form<StartRunForm>,
) -> Result<Response, AppError> {
    let ctx = LeadContext::load(None)
        .map_err(|e| AppError::BadRequest(format!("lead policy rejected: {e}")))?;
    if RUN_ACTIVE.swap(true, Ordering::SeqCst) {
        return Ok(
            Redirect::to("/ncatc/runs?message=A+lead+run+is+already+in+progress").into_response(),
        );
    }
    audit(
        &state,
        &who,
        Purpose::LeadGeneration,
        AuditAction::Decision {
            subject: "lead_run".into(),
            decision: "started".into(),
            reason: format!(
                "policy {}{}",
                ctx.policy.version,
                if form.full.is_some() { ", full" } else { "" }
            ),
        },
    )
    .await?;
    let mut opts = RunOptions::new(&who.username, chrono::Utc::now().date_naive());
    opts.force_full = form.full.is_some();
    // The embedded store's runs keep a person map beside it, as `verity leads run` does.
    if state.config.database_url.is_none() {
        opts.map_dir = Some(state.config.data_dir.join("ncatc"));
    }
    let store = state.store.clone();
    tokio::spawn(async move {
        let result = ncatc::run_leads(&store, &ctx, &opts, &|_| {}).await;
        match result {
            Ok(s) => {
                tracing::info!(run = %s.run_id, created = s.stats.leads_created, "lead run finished")
            }
            Err(e) => tracing::error!(error = %e, "lead run stopped"),
        }
        RUN_ACTIVE.store(false, Ordering::SeqCst);
    });
    Ok(Redirect::to("/ncatc/runs?message=Lead+run+started").into_response())
}

// ---------------------------------------------------------------- leads

pub struct LeadItem {
    pub lead_id: String,
    pub subject: String,
    pub status: String,
    pub rule: String,
    pub aor: String,
    pub state: String,
    pub created: String,
    pub confidence: String,
    pub disposition: String,
}

fn lead_item(l: &LeadRow) -> LeadItem {
    LeadItem {
        lead_id: l.lead_id.clone(),
        subject: l.subject_name.clone(),
        status: l.status.clone(),
        rule: l.primary_rule.clone(),
        aor: l
            .aor
            .clone()
            .unwrap_or_else(|| "NCATC analyst queue".into()),
        state: l.state.clone(),
        created: micros_text(l.created_micros),
        confidence: format!("{:.3}", l.identity_probability),
        disposition: l
            .disposition
            .as_deref()
            .and_then(|d| LeadDisposition::parse(d).ok())
            .map(|d| d.label().to_string())
            .unwrap_or_default(),
    }
}

#[derive(Deserialize, Default)]
pub struct LeadsQuery {
    /// `analyst` for the analyst queue, an AOR code, or empty for all.
    queue: Option<String>,
    state: Option<String>,
    aor: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "ncatc_leads.html")]
struct LeadsPage {
    nav: Vec<NavItem>,
    username: String,
    leads: Vec<LeadItem>,
    queues: Vec<(String, String, u64)>,
    queue: String,
    states: Vec<(String, bool)>,
    parks: Vec<(String, u64)>,
}

async fn queue_list(state: &AppState) -> Result<Vec<(String, String, u64)>, AppError> {
    Ok(state
        .store
        .open_lead_queues()
        .await?
        .into_iter()
        .map(|(aor, n)| match aor {
            Some(a) => (a.clone(), a, n),
            None => ("analyst".to_string(), "NCATC analyst queue".to_string(), n),
        })
        .collect())
}

async fn leads_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<LeadsQuery>,
) -> Result<Html<String>, AppError> {
    let queue = q.queue.unwrap_or_default();
    let state_filter = q.state.unwrap_or_else(|| "open".into());
    let filter = LeadFilter {
        aor: match queue.as_str() {
            "" => None,
            "analyst" => Some(None),
            a => Some(Some(a.to_string())),
        },
        state: (!state_filter.is_empty() && state_filter != "all").then(|| state_filter.clone()),
        run_id: None,
        limit: 200,
    };
    let leads = state.store.list_leads(&filter).await?;
    audit(
        &state,
        &who,
        Purpose::LeadGeneration,
        AuditAction::Search {
            query: format!("ncatc leads queue={queue} state={state_filter}"),
            results: leads.len() as u64,
        },
    )
    .await?;
    let page = LeadsPage {
        nav: nav(&state, &who),
        username: who.username.clone(),
        leads: leads.iter().map(lead_item).collect(),
        queues: queue_list(&state).await?,
        queue,
        states: ["open", "closed", "withdrawn", "all"]
            .iter()
            .map(|s| (s.to_string(), *s == state_filter))
            .collect(),
        parks: state.store.park_reason_counts().await?,
    };
    Ok(Html(askama::Template::render(&page)?))
}

/// The evidence package, flattened for the template.
pub struct Evidence {
    pub name: String,
    pub dob: String,
    pub sex: String,
    pub country_of_birth: String,
    pub a_number: String,
    pub confidence: String,
    pub explanation: Vec<String>,
    pub status: String,
    pub rules_version: String,
    pub policy_version: String,
    pub rules: Vec<String>,
    pub reasons: Vec<String>,
    pub records: Vec<(String, String, String, String, String)>,
    pub arrests: u64,
    pub convictions: u64,
    pub criminal: Vec<(String, String, String, String, String)>,
    pub last_known: String,
    pub basis: Vec<(String, String, String)>,
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

fn evidence_of(l: &LeadRow) -> Evidence {
    let e: serde_json::Value = serde_json::from_str(&l.evidence_json).unwrap_or_default();
    let id = &e["identity"];
    let records = e["records"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        text(&r["record_id"]),
                        text(&r["system"]),
                        text(&r["date"]),
                        text(&r["summary"]),
                        text(&r["provenance"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let ch = &e["criminal_history"];
    let criminal = ch["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        text(&c["arrest_date"]),
                        text(&c["ncic_code"]),
                        text(&c["charge"]),
                        text(&c["disposition"]),
                        text(&c["severity_class"]),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let lk = &e["last_known"];
    let last_known = if lk.is_null() {
        "unknown".to_string()
    } else {
        format!(
            "{}: {} — {} County, {}{} (record {})",
            text(&lk["kind"]),
            text(&lk["detail"]),
            text(&lk["county"]),
            text(&lk["state"]),
            lk["since"]
                .as_str()
                .map(|s| format!(", since {s}"))
                .unwrap_or_default(),
            text(&lk["record_id"])
        )
    };
    let basis = e["status_basis"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| (text(&c["record_id"]), text(&c["fact"]), text(&c["note"])))
                .collect()
        })
        .unwrap_or_default();
    Evidence {
        name: text(&id["name"]),
        dob: text(&id["dob"]),
        sex: text(&id["sex"]),
        country_of_birth: text(&id["country_of_birth"]),
        a_number: text(&id["a_number"]),
        confidence: id["confidence"]
            .as_f64()
            .map(|p| format!("{p:.3}"))
            .unwrap_or_default(),
        explanation: strings(&id["explanation"]),
        status: text(&e["status"]),
        rules_version: text(&e["rules_version"]),
        policy_version: text(&e["policy_version"]),
        rules: strings(&e["rules"]),
        reasons: strings(&e["reasons"]),
        records,
        arrests: ch["arrests"].as_u64().unwrap_or(0),
        convictions: ch["convictions"].as_u64().unwrap_or(0),
        criminal,
        last_known,
        basis,
    }
}

#[derive(askama::Template)]
#[template(path = "ncatc_lead.html")]
struct LeadPage {
    nav: Vec<NavItem>,
    username: String,
    lead: LeadItem,
    person_key: String,
    run_id: String,
    evidence: Evidence,
    /// Field officers get the disposition form.
    can_dispose: bool,
    form_action: String,
    dispositions: Vec<(String, String)>,
    disposition_note: String,
    withdrawn_reason: String,
    message: Option<String>,
}

async fn show_lead(
    state: &AppState,
    who: &Principal,
    lead_id: &str,
    field: bool,
    message: Option<String>,
) -> Result<Html<String>, AppError> {
    let lead = state
        .store
        .get_lead(lead_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let evidence = evidence_of(&lead);
    audit(
        state,
        who,
        if field {
            Purpose::Enforcement
        } else {
            Purpose::LeadGeneration
        },
        AuditAction::PersonViewed {
            person_key: lead.person_key.clone(),
            records: evidence.records.len() as u64,
        },
    )
    .await?;
    let page = LeadPage {
        nav: nav(state, who),
        username: who.username.clone(),
        lead: lead_item(&lead),
        person_key: lead.person_key.clone(),
        run_id: lead.run_id.clone(),
        evidence,
        can_dispose: field && lead.state == "open",
        form_action: format!("/ncatc/aor/leads/{}", lead.lead_id),
        dispositions: LeadDisposition::ALL
            .iter()
            .map(|d| (d.code().to_string(), d.label().to_string()))
            .collect(),
        disposition_note: lead.disposition_note.clone().unwrap_or_default(),
        withdrawn_reason: lead.withdrawn_reason.clone().unwrap_or_default(),
        message,
    };
    Ok(Html(askama::Template::render(&page)?))
}

async fn lead_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(lead_id): Path<String>,
) -> Result<Html<String>, AppError> {
    show_lead(&state, &who, &lead_id, false, None).await
}

// ---------------------------------------------------------------- field office queues

#[derive(askama::Template)]
#[template(path = "ncatc_aor.html")]
struct AorPage {
    nav: Vec<NavItem>,
    username: String,
    aor: String,
    fixed_aor: bool,
    queues: Vec<(String, String, u64)>,
    leads: Vec<LeadItem>,
}

async fn aor_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<LeadsQuery>,
) -> Result<Html<String>, AppError> {
    // An officer assigned to a field office sees only that office's queue.
    let own = state.store.user_aor(&who.username).await?;
    let aor = own.clone().or(q.aor).unwrap_or_default();
    let leads = if aor.is_empty() {
        Vec::new()
    } else {
        state
            .store
            .list_leads(&LeadFilter {
                aor: Some(Some(aor.clone())),
                state: Some("open".into()),
                run_id: None,
                limit: 200,
            })
            .await?
    };
    if !aor.is_empty() {
        audit(
            &state,
            &who,
            Purpose::Enforcement,
            AuditAction::Search {
                query: format!("ncatc aor queue {aor}"),
                results: leads.len() as u64,
            },
        )
        .await?;
    }
    let queues = queue_list(&state)
        .await?
        .into_iter()
        .filter(|(k, _, _)| k != "analyst")
        .collect();
    let page = AorPage {
        nav: nav(&state, &who),
        username: who.username.clone(),
        aor,
        fixed_aor: own.is_some(),
        queues,
        leads: leads.iter().map(lead_item).collect(),
    };
    Ok(Html(askama::Template::render(&page)?))
}

async fn aor_lead_page(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(lead_id): Path<String>,
) -> Result<Html<String>, AppError> {
    field_lead_allowed(&state, &who, &lead_id).await?;
    show_lead(&state, &who, &lead_id, true, None).await
}

/// A field officer assigned to an office works only that office's leads.
async fn field_lead_allowed(
    state: &AppState,
    who: &Principal,
    lead_id: &str,
) -> Result<(), AppError> {
    let lead = state
        .store
        .get_lead(lead_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if let Some(own) = state.store.user_aor(&who.username).await? {
        if lead.aor.as_deref() != Some(own.as_str()) {
            return Err(AppError::NotFound);
        }
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct DispositionForm {
    disposition: String,
    #[serde(default)]
    note: String,
}

async fn record_disposition(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(lead_id): Path<String>,
    Form(form): Form<DispositionForm>,
) -> Result<Html<String>, AppError> {
    field_lead_allowed(&state, &who, &lead_id).await?;
    let disposition = LeadDisposition::parse(&form.disposition)
        .map_err(|e| AppError::BadRequest(format!("disposition: {}", e.problem)))?;
    let note = form.note.trim();
    if note.len() > 2_000 {
        return Err(AppError::BadRequest("note: at most 2000 characters".into()));
    }
    match state
        .store
        .record_lead_disposition(
            &lead_id,
            disposition,
            &who.username,
            note,
            chrono::Utc::now().timestamp_micros(),
        )
        .await
    {
        Ok(_) => {}
        Err(verity_store::StoreError::NotFound { .. }) => {
            return Err(AppError::BadRequest(format!(
                "lead {lead_id} is not open: it already has a disposition or was withdrawn"
            )))
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        &state,
        &who,
        Purpose::Enforcement,
        AuditAction::Decision {
            subject: lead_id.clone(),
            decision: format!("lead disposition: {}", disposition.code()),
            reason: note.to_string(),
        },
    )
    .await?;
    show_lead(
        &state,
        &who,
        &lead_id,
        true,
        Some(format!("Disposition recorded: {}", disposition.label())),
    )
    .await
}

// ---------------------------------------------------------------- dashboard

const CHART_W: f64 = 560.0;
const CHART_H: f64 = 220.0;

/// A bar chart as inline SVG: one bar per (label, value) (values of one series).
fn bar_chart(title: &str, bars: &[(String, f64)], unit: &str) -> String {
    stacked_chart(
        title,
        bars.iter().map(|(l, v)| (l.clone(), vec![*v])).collect(),
        &[unit],
        &["bar0"],
    )
}

/// A stacked bar chart as inline SVG, with a legend when there is more than one series.
fn stacked_chart(
    title: &str,
    bars: Vec<(String, Vec<f64>)>,
    series: &[&str],
    classes: &[&str],
) -> String {
    let mut svg = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {CHART_W} {}\" width=\"{CHART_W}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        html_escape(title),
        html_escape(title),
        CHART_H + 60.0,
        CHART_H + 60.0
    );
    if bars.is_empty() {
        svg.push_str("<text x=\"10\" y=\"40\" class=\"empty\">No data yet</text></svg></figure>");
        return svg;
    }
    let max = bars
        .iter()
        .map(|(_, v)| v.iter().sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let left = 40.0;
    let plot_w = CHART_W - left - 10.0;
    let slot = plot_w / bars.len() as f64;
    let bar_w = (slot * 0.7).max(2.0);
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{CHART_H}\" x2=\"{}\" y2=\"{CHART_H}\" class=\"axis\"/><text x=\"2\" y=\"14\" class=\"tick\">{}</text>",
        CHART_W - 10.0,
        html_escape(&format_value(max))
    ));
    for (i, (label, values)) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let mut y = CHART_H;
        for (s, v) in values.iter().enumerate() {
            let h = (v / max) * (CHART_H - 20.0);
            y -= h;
            let class = classes.get(s).copied().unwrap_or("bar0");
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" class=\"{class}\"><title>{}: {} {}</title></rect>",
                html_escape(label),
                html_escape(&format_value(*v)),
                html_escape(series.get(s).copied().unwrap_or(""))
            ));
        }
        let total: f64 = values.iter().sum();
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"value\" text-anchor=\"middle\">{}</text>",
            x + bar_w / 2.0,
            (y - 3.0).max(10.0),
            html_escape(&format_value(total))
        ));
        // Labels turn when bars are many.
        let lx = x + bar_w / 2.0;
        let ly = CHART_H + 12.0;
        let short: String = label.chars().take(18).collect();
        if bars.len() > 6 {
            svg.push_str(&format!(
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"label\" text-anchor=\"end\" transform=\"rotate(-35 {lx:.1} {ly:.1})\">{}</text>",
                html_escape(&short)
            ));
        } else {
            svg.push_str(&format!(
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"label\" text-anchor=\"middle\">{}</text>",
                html_escape(&short)
            ));
        }
    }
    if series.len() > 1 {
        for (s, name) in series.iter().enumerate() {
            let x = left + 150.0 * s as f64;
            let class = classes.get(s).copied().unwrap_or("bar0");
            svg.push_str(&format!(
                "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" class=\"{class}\"/><text x=\"{}\" y=\"{}\" class=\"legend\">{}</text>",
                CHART_H + 45.0,
                x + 14.0,
                CHART_H + 54.0,
                html_escape(name)
            ));
        }
    }
    svg.push_str("</svg></figure>");
    svg
}

fn format_value(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.2}")
    }
}

fn day_label(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.format("%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

pub struct QualityView {
    pub rule: String,
    pub aor: String,
    pub leads: u64,
    pub open: u64,
    pub withdrawn: u64,
    pub disposed: u64,
    pub arrested: u64,
    pub not_located: u64,
    pub not_amenable: u64,
    pub us_citizen: u64,
    pub bad_share: String,
    pub flagged: bool,
}

/// Share of disposed leads found not amenable or U.S. citizens above which a rule is flagged.
const BAD_SHARE_FLAG: f64 = 0.1;

fn quality_view(q: &QualityRow) -> QualityView {
    let bad = q.bad_share();
    QualityView {
        rule: q.rule.clone(),
        aor: q.aor.clone().unwrap_or_else(|| "analyst queue".into()),
        leads: q.leads,
        open: q.open,
        withdrawn: q.withdrawn,
        disposed: q.disposed(),
        arrested: q.count(LeadDisposition::Arrested),
        not_located: q.count(LeadDisposition::NotLocated),
        not_amenable: q.count(LeadDisposition::NotAmenable),
        us_citizen: q.count(LeadDisposition::UsCitizen),
        bad_share: bad
            .map(|b| format!("{:.1}%", b * 100.0))
            .unwrap_or_default(),
        flagged: q.count(LeadDisposition::UsCitizen) > 0 || bad.is_some_and(|b| b > BAD_SHARE_FLAG),
    }
}

#[derive(askama::Template)]
#[template(path = "ncatc_dashboard.html")]
struct DashboardPage {
    nav: Vec<NavItem>,
    username: String,
    charts: Vec<String>,
    quality: Vec<QualityView>,
    detainers_available: bool,
}

async fn dashboard(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    let data = state.store.dashboard_data(30).await?;
    let quality = state.store.lead_quality().await?;
    let mut charts = Vec::new();
    charts.push(bar_chart(
        "Query volume per day (UTC)",
        &data
            .query_days
            .iter()
            .map(|d| (day_label(d.day), d.received as f64))
            .collect::<Vec<_>>(),
        "queries",
    ));
    charts.push(stacked_chart(
        "Answers per day: automatic vs reviewed",
        data.query_days
            .iter()
            .map(|d| {
                (
                    day_label(d.day),
                    vec![d.answered_automatic as f64, d.answered_reviewed as f64],
                )
            })
            .collect(),
        &["automatic", "reviewed"],
        &["bar0", "bar1"],
    ));
    charts.push(bar_chart(
        "Mean response time per day (seconds)",
        &data
            .query_days
            .iter()
            .filter_map(|d| d.mean_response_seconds.map(|s| (day_label(d.day), s)))
            .collect::<Vec<_>>(),
        "s",
    ));
    charts.push(bar_chart(
        "Response time distribution (answered queries)",
        &data
            .response_buckets
            .iter()
            .map(|(l, n)| (l.clone(), *n as f64))
            .collect::<Vec<_>>(),
        "queries",
    ));
    charts.push(bar_chart(
        "Queue depth now (unanswered queries by state)",
        &data
            .queue_depth
            .iter()
            .map(|(l, n)| (l.clone(), *n as f64))
            .collect::<Vec<_>>(),
        "queries",
    ));
    if let Some(outcomes) = &data.detainer_outcomes {
        charts.push(bar_chart(
            "Detainer and notification outcomes",
            &outcomes
                .iter()
                .map(|(l, n)| (l.clone(), *n as f64))
                .collect::<Vec<_>>(),
            "actions",
        ));
    }
    let mut by_aor: std::collections::BTreeMap<String, (f64, f64, f64)> = Default::default();
    let mut by_rule: std::collections::BTreeMap<String, (f64, f64, f64)> = Default::default();
    for q in &quality {
        let good = (q.disposed()
            - q.count(LeadDisposition::NotAmenable)
            - q.count(LeadDisposition::UsCitizen)) as f64;
        let bad =
            (q.count(LeadDisposition::NotAmenable) + q.count(LeadDisposition::UsCitizen)) as f64;
        let pending = (q.leads - q.disposed()) as f64;
        for (map, key) in [
            (
                &mut by_aor,
                q.aor.clone().unwrap_or_else(|| "analyst".into()),
            ),
            (&mut by_rule, q.rule.clone()),
        ] {
            let e = map.entry(key).or_default();
            e.0 += pending;
            e.1 += good;
            e.2 += bad;
        }
    }
    let series = [
        "open or withdrawn",
        "disposed",
        "not amenable / U.S. citizen",
    ];
    let classes = ["bar2", "bar0", "bar3"];
    charts.push(stacked_chart(
        "Leads and dispositions by AOR",
        by_aor
            .into_iter()
            .map(|(k, (p, g, b))| (k, vec![p, g, b]))
            .collect(),
        &series,
        &classes,
    ));
    charts.push(stacked_chart(
        "Leads and dispositions by rule",
        by_rule
            .into_iter()
            .map(|(k, (p, g, b))| (k, vec![p, g, b]))
            .collect(),
        &series,
        &classes,
    ));
    let page = DashboardPage {
        nav: nav(&state, &who),
        username: who.username.clone(),
        charts,
        quality: quality.iter().map(quality_view).collect(),
        detainers_available: data.detainer_outcomes.is_some(),
    };
    Ok(Html(askama::Template::render(&page)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_draw_one_rect_per_value() {
        let svg = stacked_chart(
            "T<x>",
            vec![("a<b".into(), vec![1.0, 2.0]), ("c".into(), vec![0.0, 3.0])],
            &["s1", "s2"],
            &["bar0", "bar1"],
        );
        assert!(svg.contains("T&lt;x&gt;"));
        assert!(svg.contains("a&lt;b"));
        assert!(!svg.contains("a<b"));
        // 4 data rects + 2 legend rects.
        assert_eq!(svg.matches("<rect").count(), 6);
        assert!(bar_chart("empty", &[], "u").contains("No data yet"));
    }
}
