//! PERC: triage of actionable answers by the versioned priority policy, and the persistence
//! glue of detainers and requests for notification (the gates live in [`crate::detainer`]).
//!
//! Everything here is pure: the server fetches the IAR, the subject's records and the stored
//! action, calls these functions, and writes the result. In particular the facts a gate needs
//! ([`SubjectSnapshot`]) are rebuilt from the subject's *current* records at every transition
//! by [`subject_snapshot`], never carried over from preparation.

use crate::detainer::{
    ActionKind, EnforcementAction, LiftReason, ProbableCause, Refusal, State, SubjectSnapshot,
    WarrantKind,
};
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use verity_model::record::RecordBody;
use verity_model::{AorTable, ImmigrationStatus, OffenseTable, SourceRecord};
use verity_policy::{derive_facts, Fact, FactName, PriorityPolicy, Rank, StatusRules};

pub const EMBEDDED_PERC_POLICY: &str = include_str!("../../../data/policy/perc.toml");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercError {
    #[error("perc.toml: {0}")]
    Policy(String),
    #[error("IAR of query '{query_id}': {problem}")]
    Iar { query_id: String, problem: String },
    #[error("stored action '{action_id}': {problem}")]
    Action { action_id: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: String,
    covered_aors: Vec<String>,
    actionable_statuses: Vec<String>,
    imminent_release_days: i64,
    soon_release_days: i64,
    reminder_hours_left: i64,
    escalation_hours_left: i64,
}

/// Which AORs PERC covers, which answers it acts on, and when clocks call for attention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PercPolicy {
    pub version: String,
    pub covered_aors: BTreeSet<String>,
    pub actionable_statuses: Vec<ImmigrationStatus>,
    pub imminent_release_days: i64,
    pub soon_release_days: i64,
    pub reminder_hours_left: i64,
    pub escalation_hours_left: i64,
}

impl PercPolicy {
    /// Loads and validates the policy: every AOR must be one of the field offices, and no
    /// citizen, "no record" or "undetermined" status may be actionable.
    pub fn load(text: &str, aors: &AorTable) -> Result<Self, PercError> {
        let bad = |m: String| PercError::Policy(m);
        let f: PolicyFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let offices: BTreeSet<&str> = aors.offices().collect();
        let mut covered = BTreeSet::new();
        for a in &f.covered_aors {
            if !offices.contains(a.as_str()) {
                return Err(bad(format!(
                    "covered_aors: '{a}' is not a field office in aor_jurisdictions.csv"
                )));
            }
            if !covered.insert(a.clone()) {
                return Err(bad(format!("covered_aors: '{a}' is listed twice")));
            }
        }
        let mut actionable = Vec::new();
        for s in &f.actionable_statuses {
            let status = ImmigrationStatus::parse(s)
                .map_err(|e| bad(format!("actionable_statuses: {}", e.problem)))?;
            if status.is_citizen_or_potential()
                || matches!(
                    status,
                    ImmigrationStatus::NoRecordFound | ImmigrationStatus::Undetermined
                )
            {
                return Err(bad(format!(
                    "actionable_statuses: '{s}' can never be actionable"
                )));
            }
            actionable.push(status);
        }
        if f.imminent_release_days < 0 || f.soon_release_days < f.imminent_release_days {
            return Err(bad(
                "soon_release_days must be at least imminent_release_days, both >= 0".into(),
            ));
        }
        if f.escalation_hours_left < 0 || f.reminder_hours_left < f.escalation_hours_left {
            return Err(bad(
                "reminder_hours_left must be at least escalation_hours_left, both >= 0".into(),
            ));
        }
        Ok(PercPolicy {
            version: f.version,
            covered_aors: covered,
            actionable_statuses: actionable,
            imminent_release_days: f.imminent_release_days,
            soon_release_days: f.soon_release_days,
            reminder_hours_left: f.reminder_hours_left,
            escalation_hours_left: f.escalation_hours_left,
        })
    }

    pub fn embedded(aors: &AorTable) -> Result<Self, PercError> {
        Self::load(EMBEDDED_PERC_POLICY, aors)
    }

    pub fn covers(&self, aor: &str) -> bool {
        self.covered_aors.contains(aor)
    }

    pub fn is_actionable(&self, status: ImmigrationStatus) -> bool {
        self.actionable_statuses.contains(&status)
    }
}

/// What PERC needs from an issued IAR (`queries.iar_json`), read leniently so that fields the
/// LESC side adds later do not break it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IarSummary {
    pub query_id: String,
    pub issued_at: String,
    pub decided_by: String,
    pub status: ImmigrationStatus,
    pub person_key: Option<String>,
    pub name: String,
    pub dob: String,
    pub a_number: String,
    pub fin: String,
    pub biometric: bool,
    /// Records the status rests on: (record id, fact, note).
    pub evidence: Vec<(String, String, String)>,
    pub citizenship_indicia: Vec<(String, String, String)>,
    pub criminal_record_ids: Vec<String>,
    pub field_office: Option<String>,
    pub requesting_ori: String,
    pub rules_version: String,
}

impl IarSummary {
    pub fn parse(query_id: &str, iar_json: &str) -> Result<Self, PercError> {
        let bad = |problem: String| PercError::Iar {
            query_id: query_id.to_string(),
            problem,
        };
        let v: serde_json::Value =
            serde_json::from_str(iar_json).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = |val: &serde_json::Value, key: &str| -> String {
            val.get(key)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let status_code = v
            .get("status")
            .and_then(|s| s.as_str())
            .ok_or_else(|| bad("field 'status' is missing".into()))?;
        let status = ImmigrationStatus::parse(status_code)
            .map_err(|e| bad(format!("field 'status': {}", e.problem)))?;
        let citations = |key: &str| -> Vec<(String, String, String)> {
            v.get(key)
                .and_then(|x| x.as_array())
                .map(|a| {
                    a.iter()
                        .map(|c| (text(c, "record_id"), text(c, "fact"), text(c, "note")))
                        .collect()
                })
                .unwrap_or_default()
        };
        let identity = v.get("identity").filter(|i| !i.is_null());
        let id_text = |key: &str| identity.map(|i| text(i, key)).unwrap_or_default();
        Ok(IarSummary {
            query_id: query_id.to_string(),
            issued_at: text(&v, "issued_at"),
            decided_by: text(&v, "decided_by"),
            status,
            person_key: identity
                .map(|i| text(i, "person_key"))
                .filter(|k| !k.is_empty()),
            name: id_text("name"),
            dob: id_text("dob"),
            a_number: id_text("a_number"),
            fin: id_text("fin"),
            biometric: identity
                .and_then(|i| i.get("biometric"))
                .and_then(|b| b.as_bool())
                .unwrap_or(false),
            evidence: citations("evidence"),
            citizenship_indicia: citations("citizenship_indicia"),
            criminal_record_ids: v
                .get("criminal_history")
                .and_then(|x| x.as_array())
                .map(|a| a.iter().map(|c| text(c, "record_id")).collect())
                .unwrap_or_default(),
            field_office: v
                .get("field_office")
                .and_then(|x| x.as_str())
                .map(str::to_string),
            requesting_ori: text(&v, "requesting_ori"),
            rules_version: text(&v, "rules_version"),
        })
    }

    /// A specialist, not the automatic path, issued the answer (so confirmed the identity).
    pub fn specialist_confirmed(&self) -> bool {
        !self.decided_by.is_empty() && self.decided_by != "automatic"
    }
}

/// The record ids of the person the answer is about: the chosen candidate's records from the
/// engine result (`queries.result_json`) when present, else the records the IAR cites.
pub fn subject_record_ids(iar: &IarSummary, result_json: Option<&str>) -> Vec<String> {
    let mut ids: BTreeSet<String> = BTreeSet::new();
    if let Some(v) = result_json.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) {
        let candidates = v.get("candidates").and_then(|c| c.as_array());
        let chosen = v
            .get("decision")
            .and_then(|d| d.get("chosen"))
            .and_then(|c| c.as_u64());
        let pick = candidates.and_then(|cs| {
            cs.iter()
                .find(|c| {
                    iar.person_key.is_some()
                        && c.get("person_key").and_then(|k| k.as_str()) == iar.person_key.as_deref()
                })
                .or_else(|| chosen.and_then(|i| cs.get(usize::try_from(i).ok()?)))
        });
        if let Some(ids_json) = pick
            .and_then(|c| c.get("record_ids"))
            .and_then(|r| r.as_array())
        {
            ids.extend(
                ids_json
                    .iter()
                    .filter_map(|x| x.as_str())
                    .map(str::to_string),
            );
        }
    }
    ids.extend(iar.evidence.iter().map(|e| e.0.clone()));
    ids.extend(iar.citizenship_indicia.iter().map(|e| e.0.clone()));
    ids.extend(iar.criminal_record_ids.iter().cloned());
    ids.retain(|i| !i.is_empty());
    ids.into_iter().collect()
}

/// Why PERC did not take an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotTaken {
    NotInCustody,
    NoAor,
    AorNotCovered,
    StatusNotActionable,
    CitizenshipIndicia,
}

/// Triage: PERC takes an issued answer only for a person in custody, in a covered AOR, with an
/// actionable status and no citizenship indicia on the answer.
pub fn triage_eligibility(
    in_custody: bool,
    aor: Option<&str>,
    iar: &IarSummary,
    policy: &PercPolicy,
) -> Result<String, NotTaken> {
    if !in_custody {
        return Err(NotTaken::NotInCustody);
    }
    let aor = aor.or(iar.field_office.as_deref()).ok_or(NotTaken::NoAor)?;
    if !policy.covers(aor) {
        return Err(NotTaken::AorNotCovered);
    }
    if !policy.is_actionable(iar.status) {
        return Err(NotTaken::StatusNotActionable);
    }
    if !iar.citizenship_indicia.is_empty() {
        return Err(NotTaken::CitizenshipIndicia);
    }
    Ok(aor.to_string())
}

/// Where the subject is held and until when, from their custody records: the latest booking
/// without a release.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustodyFacts {
    pub facility: String,
    pub agency_ori: String,
    pub expected_release: Option<NaiveDate>,
}

pub fn custody_facts(records: &[SourceRecord]) -> CustodyFacts {
    records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Custody(c) if c.released.is_none() => Some(c),
            _ => None,
        })
        .max_by_key(|c| c.booking_date.to_naive())
        .map(|c| CustodyFacts {
            facility: c.facility.clone(),
            agency_ori: c.ori.to_string(),
            expected_release: c.expected_release.and_then(|d| d.to_naive()),
        })
        .unwrap_or_default()
}

/// The rank of a subject, with its explanation and the policy version.
pub fn rank_subject(
    records: &[SourceRecord],
    priority: &PriorityPolicy,
    offenses: &OffenseTable,
    today: NaiveDate,
) -> Rank {
    let facts = derive_facts(records, today);
    priority.rank(records, &facts, offenses)
}

/// How soon the subject leaves the agency's custody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Expected release has passed or is within `imminent_release_days`.
    Imminent,
    Soon,
    Later,
    Unknown,
}

impl Urgency {
    pub fn of(expected_release: Option<NaiveDate>, today: NaiveDate, policy: &PercPolicy) -> Self {
        match expected_release {
            None => Urgency::Unknown,
            Some(d) => {
                let days = (d - today).num_days();
                if days <= policy.imminent_release_days {
                    Urgency::Imminent
                } else if days <= policy.soon_release_days {
                    Urgency::Soon
                } else {
                    Urgency::Later
                }
            }
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Urgency::Imminent => "imminent",
            Urgency::Soon => "soon",
            Urgency::Later => "later",
            Urgency::Unknown => "unknown",
        }
    }
}

/// Things PERC staff noted on the case that the records may not show yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CaseNotes {
    pub citizenship_claim_open: bool,
    pub citizenship_indicia_open: bool,
}

/// The facts every gate checks, rebuilt from the subject's current records and the answer.
pub fn subject_snapshot(
    iar: &IarSummary,
    records: &[SourceRecord],
    rules: &StatusRules,
    notes: CaseNotes,
    today: NaiveDate,
) -> SubjectSnapshot {
    let determination = rules.determine(records, today);
    let facts = derive_facts(records, today);
    SubjectSnapshot {
        citizenship_indicia: notes.citizenship_indicia_open
            || !iar.citizenship_indicia.is_empty()
            || !determination.citizenship_indicia.is_empty()
            || determination.status.is_citizen_or_potential(),
        open_citizenship_claim: notes.citizenship_claim_open
            || facts.contains_key(&FactName::CitizenshipClaim),
        final_order: (facts.contains_key(&FactName::FinalOrder)
            && !facts.contains_key(&FactName::OrderVacated))
            || determination.status == ImmigrationStatus::FinalOrderOfRemoval,
        pending_proceedings: facts.contains_key(&FactName::ProceedingsPending)
            || determination.status == ImmigrationStatus::PendingRemovalProceedings,
        biometric_identity: iar.biometric,
        specialist_confirmed_identity: iar.specialist_confirmed(),
    }
}

/// The subject's status determined again from their current records. PERC acts only while it
/// is still actionable: a grant that arrived after the answer (asylum, relief, LPR) or records
/// the answer did not see stop every transition toward a hold.
pub fn status_still_actionable(
    records: &[SourceRecord],
    rules: &StatusRules,
    policy: &PercPolicy,
    today: NaiveDate,
) -> Result<ImmigrationStatus, ImmigrationStatus> {
    let status = rules.determine(records, today).status;
    if policy.is_actionable(status) {
        Ok(status)
    } else {
        Err(status)
    }
}

/// The records a probable-cause basis rests on: (record id, what it shows). Empty when the
/// records do not support the basis (the gates then refuse it).
pub fn evidence_for(
    basis: Option<ProbableCause>,
    iar: &IarSummary,
    records: &[SourceRecord],
    today: NaiveDate,
) -> Vec<(String, String)> {
    let facts = derive_facts(records, today);
    let of = |names: &[FactName]| -> Vec<(String, String)> {
        names
            .iter()
            .filter_map(|n| facts.get(n))
            .flat_map(|f: &Fact| {
                f.records
                    .iter()
                    .map(move |r| (r.clone(), format!("{}: {}", f.name, f.note)))
            })
            .collect()
    };
    let cited = || -> Vec<(String, String)> {
        iar.evidence
            .iter()
            .map(|(r, fact, note)| (r.clone(), format!("{fact}: {note}")))
            .collect()
    };
    match basis {
        None => cited(),
        Some(ProbableCause::FinalOrder) => of(&[FactName::FinalOrder, FactName::InAbsentiaOrder]),
        Some(ProbableCause::PendingProceedings) => of(&[FactName::ProceedingsPending]),
        Some(ProbableCause::BiometricAndRecords) => {
            let mut e: Vec<(String, String)> = records
                .iter()
                .filter(|r| matches!(r.body, RecordBody::Biometrics(_)))
                .map(|r| {
                    (
                        r.record_id.clone(),
                        "biometric enrolment matched by fingerprints".to_string(),
                    )
                })
                .collect();
            e.extend(cited());
            e
        }
        Some(ProbableCause::StatementsOrEvidence) => cited(),
    }
}

/// Stable code of a refusal, for metrics and the event log.
pub fn refusal_code(r: &Refusal) -> String {
    match r {
        Refusal::Gate { gate } => serde_json::to_value(gate)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{gate:?}")),
        Refusal::InvalidTransition { .. } => "invalid_transition".into(),
        Refusal::LiftNeedsReason => "lift_needs_reason".into(),
    }
}

pub fn lift_reason_code(r: LiftReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn parse_lift_reason(code: &str) -> Option<LiftReason> {
    serde_json::from_value(serde_json::Value::String(code.to_string())).ok()
}

pub const LIFT_REASONS: &[LiftReason] = &[
    LiftReason::CitizenshipEstablished,
    LiftReason::IdentityMismatch,
    LiftReason::ReliefGranted,
    LiftReason::ChargesDismissed,
    LiftReason::PriorityChanged,
    LiftReason::PreparedInError,
    LiftReason::Other,
];

pub fn basis_code(b: ProbableCause) -> &'static str {
    match b {
        ProbableCause::FinalOrder => "final_order",
        ProbableCause::PendingProceedings => "pending_proceedings",
        ProbableCause::BiometricAndRecords => "biometric_and_records",
        ProbableCause::StatementsOrEvidence => "statements_or_evidence",
    }
}

pub fn parse_basis(code: &str) -> Option<ProbableCause> {
    [
        ProbableCause::FinalOrder,
        ProbableCause::PendingProceedings,
        ProbableCause::BiometricAndRecords,
        ProbableCause::StatementsOrEvidence,
    ]
    .into_iter()
    .find(|b| basis_code(*b) == code)
}

pub fn kind_code(k: ActionKind) -> &'static str {
    match k {
        ActionKind::Detainer => "detainer",
        ActionKind::RequestForNotification => "request_for_notification",
    }
}

pub fn warrant_code(k: WarrantKind) -> &'static str {
    match k {
        WarrantKind::I200 => "I200",
        WarrantKind::I205 => "I205",
    }
}

/// The store's indexed view of an action (kept in step with its JSON on every write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedAction {
    pub kind: String,
    pub state: String,
    pub lift_reason: Option<String>,
    pub basis: Option<String>,
    pub warrant_kind: Option<String>,
    pub prepared_by: String,
    pub approved_by: Option<String>,
    pub action_json: String,
}

pub fn index_action(a: &EnforcementAction) -> Result<IndexedAction, PercError> {
    Ok(IndexedAction {
        kind: kind_code(a.kind).into(),
        state: a.state.code().into(),
        lift_reason: match a.state {
            State::Lifted(r) => Some(lift_reason_code(r)),
            _ => None,
        },
        basis: a.basis.map(|b| basis_code(b).to_string()),
        warrant_kind: a.warrant.as_ref().map(|w| warrant_code(w.kind).to_string()),
        prepared_by: a.prepared_by.username.clone(),
        approved_by: a.approved_by.as_ref().map(|x| x.username.clone()),
        action_json: serde_json::to_string(a).map_err(|e| PercError::Action {
            action_id: String::new(),
            problem: format!("cannot serialise: {e}"),
        })?,
    })
}

pub fn read_action(action_id: &str, json: &str) -> Result<EnforcementAction, PercError> {
    serde_json::from_str(json).map_err(|e| PercError::Action {
        action_id: action_id.to_string(),
        problem: format!("unreadable action JSON: {e}"),
    })
}

/// Where a lodged hold's clock stands, computed at read time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockLevel {
    /// The subject is not yet at their release time, or plenty of time is left.
    Running,
    /// `reminder_hours_left` or fewer hours left: remind the officer.
    Reminder,
    /// `escalation_hours_left` or fewer: listed for supervisors.
    Escalate,
    /// The hold time is over without a transfer.
    Overdue,
}

impl ClockLevel {
    pub fn of(hold_until: NaiveDateTime, now: NaiveDateTime, policy: &PercPolicy) -> (Self, i64) {
        let minutes_left = (hold_until - now).num_minutes();
        let level = if minutes_left <= 0 {
            ClockLevel::Overdue
        } else if minutes_left <= policy.escalation_hours_left * 60 {
            ClockLevel::Escalate
        } else if minutes_left <= policy.reminder_hours_left * 60 {
            ClockLevel::Reminder
        } else {
            ClockLevel::Running
        };
        (level, minutes_left)
    }
    pub fn code(self) -> &'static str {
        match self {
            ClockLevel::Running => "running",
            ClockLevel::Reminder => "reminder",
            ClockLevel::Escalate => "escalate",
            ClockLevel::Overdue => "overdue",
        }
    }
}

/// Counts derived from a rank, for display: factor name -> points.
pub fn rank_summary(rank: &Rank) -> BTreeMap<String, i64> {
    rank.factors
        .iter()
        .map(|f| (f.name.clone(), f.points))
        .collect()
}

#[cfg(test)]
#[path = "perc_tests.rs"]
mod tests;
