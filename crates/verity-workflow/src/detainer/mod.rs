//! Detainers (I-247A with an I-200/I-205 warrant) and requests for notification: their life
//! cycle and **the gates every route to "lodged" passes through**.
//!
//! This is where a wrong identity would become a wrongful detention, so the gates are not
//! options: there is no production path that skips one. Every transition re-checks them
//! against a fresh [`SubjectSnapshot`] (what is known about the person *now*), never against
//! what was known when the detainer was prepared.
//!
//! ```text
//! prepared ──approve──► approved ──lodge──► lodged ──► honored | declined | expired
//!     └────────── lift(reason) ──┴──────────────┘──► lifted
//! ```

#[cfg(test)]
mod tests;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use verity_model::Role;

/// Notice with a hold (I-247A) or notice only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Detainer,
    RequestForNotification,
}

/// Form I-247A box 1: what probable cause rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbableCause {
    /// (1) a final order of removal
    FinalOrder,
    /// (2) pending removal proceedings
    PendingProceedings,
    /// (3) biometric confirmation of identity and a records check indicating removability
    BiometricAndRecords,
    /// (4) statements or other reliable evidence
    StatementsOrEvidence,
}

impl ProbableCause {
    pub fn box_number(self) -> u8 {
        match self {
            ProbableCause::FinalOrder => 1,
            ProbableCause::PendingProceedings => 2,
            ProbableCause::BiometricAndRecords => 3,
            ProbableCause::StatementsOrEvidence => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WarrantKind {
    /// Warrant for arrest of alien.
    I200,
    /// Warrant of removal/deportation: only with a final order.
    I205,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warrant {
    pub kind: WarrantKind,
    pub signed_by: String,
    pub signed_at: NaiveDateTime,
}

/// What is known about the subject at the moment of a transition. The caller builds it from
/// the store each time (status determination, identity basis, open claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubjectSnapshot {
    /// Any record indicates U.S. citizenship and no deportation officer has resolved it.
    pub citizenship_indicia: bool,
    /// The person claims U.S. citizenship and the claim is still open.
    pub open_citizenship_claim: bool,
    pub final_order: bool,
    pub pending_proceedings: bool,
    /// Identity confirmed by fingerprints (1:N hit on this person).
    pub biometric_identity: bool,
    /// A LESC specialist confirmed the (biographic) identity.
    pub specialist_confirmed_identity: bool,
}

/// Someone acting, with the roles they hold at that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub username: String,
    pub roles: Vec<Role>,
}

/// Why a lodged detainer was lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiftReason {
    CitizenshipEstablished,
    IdentityMismatch,
    ReliefGranted,
    ChargesDismissed,
    PriorityChanged,
    PreparedInError,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum State {
    Prepared,
    Approved,
    Lodged,
    /// Transferred to ICE custody.
    Honored,
    /// The agency refused or released without notice.
    Declined,
    Lifted(LiftReason),
    /// The hold clock ran out without a transfer.
    Expired,
}

impl State {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Honored | State::Declined | State::Lifted(_) | State::Expired
        )
    }
    pub fn code(self) -> &'static str {
        match self {
            State::Prepared => "prepared",
            State::Approved => "approved",
            State::Lodged => "lodged",
            State::Honored => "honored",
            State::Declined => "declined",
            State::Lifted(_) => "lifted",
            State::Expired => "expired",
        }
    }
}

/// The safeguards. Each refusal names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Unresolved citizenship indicia: go to citizenship review.
    CitizenshipIndicia,
    /// An open claim of U.S. citizenship: go to citizenship review.
    OpenCitizenshipClaim,
    /// Basis (3) claims biometric confirmation; the identity must be biometric.
    BiometricBasisNeedsBiometricIdentity,
    /// A biographic-only identity must have been confirmed by a specialist.
    BiographicIdentityNeedsSpecialist,
    /// The basis must be supported: (1) needs a final order, (2) pending proceedings.
    BasisUnsupported,
    /// A detainer needs a probable-cause basis.
    DetainerNeedsBasis,
    /// A detainer needs a signed I-200 or I-205.
    DetainerNeedsWarrant,
    /// An I-205 needs a final order.
    I205NeedsFinalOrder,
    /// The approver must not be the preparer.
    SecondPerson,
    /// The approver must hold the supervisor role.
    ApproverRole,
    /// The preparer must be a PERC officer or supervisor.
    PreparerRole,
}

impl Gate {
    pub const ALL: &'static [Gate] = &[
        Gate::CitizenshipIndicia,
        Gate::OpenCitizenshipClaim,
        Gate::BiometricBasisNeedsBiometricIdentity,
        Gate::BiographicIdentityNeedsSpecialist,
        Gate::BasisUnsupported,
        Gate::DetainerNeedsBasis,
        Gate::DetainerNeedsWarrant,
        Gate::I205NeedsFinalOrder,
        Gate::SecondPerson,
        Gate::ApproverRole,
        Gate::PreparerRole,
    ];

    pub fn explain(self) -> &'static str {
        match self {
            Gate::CitizenshipIndicia => "the subject has unresolved U.S. citizenship indicia; a citizenship review must resolve them first",
            Gate::OpenCitizenshipClaim => "the subject has an open claim of U.S. citizenship; a citizenship review must resolve it first",
            Gate::BiometricBasisNeedsBiometricIdentity => "probable-cause basis (3) requires biometric confirmation of identity",
            Gate::BiographicIdentityNeedsSpecialist => "the identity rests on biographic data only and no specialist has confirmed it",
            Gate::BasisUnsupported => "the probable-cause basis is not supported by the records (1 needs a final order, 2 pending proceedings)",
            Gate::DetainerNeedsBasis => "a detainer needs a probable-cause basis",
            Gate::DetainerNeedsWarrant => "a detainer needs a signed I-200 or I-205 warrant",
            Gate::I205NeedsFinalOrder => "an I-205 warrant of removal requires a final order of removal",
            Gate::SecondPerson => "the approver prepared this action; a second person must approve",
            Gate::ApproverRole => "the approver does not hold the supervisor role",
            Gate::PreparerRole => "the preparer is not a PERC officer or supervisor",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum Refusal {
    #[error("refused by safeguard {gate:?}: {}", gate.explain())]
    Gate { gate: Gate },
    #[error("a {from} action cannot be {attempted}")]
    InvalidTransition {
        from: &'static str,
        attempted: &'static str,
    },
    #[error("a lift needs a reason")]
    LiftNeedsReason,
}

/// Something that happens to an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Approve {
        by: Actor,
    },
    Lodge {
        by: Actor,
    },
    Honor {
        by: Actor,
    },
    Decline {
        by: Actor,
    },
    Lift {
        by: Actor,
        reason: Option<LiftReason>,
        note: String,
    },
    Expire,
}

impl Event {
    fn verb(&self) -> &'static str {
        match self {
            Event::Approve { .. } => "approved",
            Event::Lodge { .. } => "lodged",
            Event::Honor { .. } => "honored",
            Event::Decline { .. } => "declined",
            Event::Lift { .. } => "lifted",
            Event::Expire => "expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub by: String,
    pub at: NaiveDateTime,
    pub note: String,
}

/// A detainer or request for notification and its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforcementAction {
    pub kind: ActionKind,
    pub basis: Option<ProbableCause>,
    pub warrant: Option<Warrant>,
    pub prepared_by: Actor,
    pub prepared_at: NaiveDateTime,
    /// The approver as they were at approval (name and roles), re-checked at lodging.
    pub approved_by: Option<Actor>,
    pub state: State,
    pub history: Vec<Transition>,
}

/// Checks every safeguard that applies at `stage`, in a fixed order; the first that fails is
/// the refusal. `skip` exists only for tests that prove the property tests can fail.
fn check_gates(
    action: &EnforcementAction,
    subject: &SubjectSnapshot,
    approver: Option<&Actor>,
    skip: Option<Gate>,
) -> Result<(), Refusal> {
    let refuse = |gate: Gate| -> Result<(), Refusal> {
        if skip == Some(gate) {
            Ok(())
        } else {
            Err(Refusal::Gate { gate })
        }
    };
    if subject.citizenship_indicia {
        refuse(Gate::CitizenshipIndicia)?;
    }
    if subject.open_citizenship_claim {
        refuse(Gate::OpenCitizenshipClaim)?;
    }
    if !action
        .prepared_by
        .roles
        .iter()
        .any(|r| matches!(r, Role::PercOfficer | Role::Supervisor))
    {
        refuse(Gate::PreparerRole)?;
    }
    if !subject.biometric_identity && !subject.specialist_confirmed_identity {
        refuse(Gate::BiographicIdentityNeedsSpecialist)?;
    }
    match action.basis {
        Some(ProbableCause::BiometricAndRecords) if !subject.biometric_identity => {
            refuse(Gate::BiometricBasisNeedsBiometricIdentity)?
        }
        Some(ProbableCause::FinalOrder) if !subject.final_order => refuse(Gate::BasisUnsupported)?,
        Some(ProbableCause::PendingProceedings) if !subject.pending_proceedings => {
            refuse(Gate::BasisUnsupported)?
        }
        _ => {}
    }
    if action.kind == ActionKind::Detainer {
        if action.basis.is_none() {
            refuse(Gate::DetainerNeedsBasis)?;
        }
        if action.warrant.is_none() {
            refuse(Gate::DetainerNeedsWarrant)?;
        }
    }
    // Whatever the action, an attached I-205 must rest on a final order.
    if action
        .warrant
        .as_ref()
        .is_some_and(|w| w.kind == WarrantKind::I205)
        && !subject.final_order
    {
        refuse(Gate::I205NeedsFinalOrder)?;
    }
    if let Some(a) = approver {
        if a.username == action.prepared_by.username {
            refuse(Gate::SecondPerson)?;
        }
        if !a.roles.contains(&Role::Supervisor) {
            refuse(Gate::ApproverRole)?;
        }
    }
    Ok(())
}

impl EnforcementAction {
    /// Prepares an action. Refused at once when the subject has citizenship indicia or an open
    /// claim (those go to citizenship review), or the preparer may not prepare.
    pub fn prepare(
        kind: ActionKind,
        basis: Option<ProbableCause>,
        warrant: Option<Warrant>,
        preparer: Actor,
        at: NaiveDateTime,
        subject: &SubjectSnapshot,
    ) -> Result<Self, Refusal> {
        let action = EnforcementAction {
            kind,
            basis,
            warrant,
            prepared_by: preparer,
            prepared_at: at,
            approved_by: None,
            state: State::Prepared,
            history: Vec::new(),
        };
        // At preparation the citizenship and role gates already apply; the rest may still be
        // satisfied before approval (for example a specialist's confirmation).
        let early = SubjectSnapshot {
            biometric_identity: true,
            final_order: true,
            pending_proceedings: true,
            ..*subject
        };
        let mut provisional = action.clone();
        provisional.basis = None;
        provisional.kind = ActionKind::RequestForNotification;
        check_gates(&provisional, &early, None, None)?;
        Ok(action)
    }

    /// Applies an event with every safeguard in force.
    pub fn apply(
        &mut self,
        event: Event,
        subject: &SubjectSnapshot,
        at: NaiveDateTime,
    ) -> Result<State, Refusal> {
        self.apply_inner(event, subject, at, None)
    }

    fn apply_inner(
        &mut self,
        event: Event,
        subject: &SubjectSnapshot,
        at: NaiveDateTime,
        skip: Option<Gate>,
    ) -> Result<State, Refusal> {
        let invalid = Refusal::InvalidTransition {
            from: self.state.code(),
            attempted: event.verb(),
        };
        let (to, by, note) = match (&event, self.state) {
            (Event::Approve { by }, State::Prepared) => {
                check_gates(self, subject, Some(by), skip)?;
                (State::Approved, by.username.clone(), String::new())
            }
            (Event::Lodge { by }, State::Approved) => {
                // Re-check everything against what is known now, including the recorded
                // approval: an Approved action without an approver cannot be lodged.
                let Some(approver) = self.approved_by.clone() else {
                    return Err(invalid);
                };
                check_gates(self, subject, Some(&approver), skip)?;
                (State::Lodged, by.username.clone(), String::new())
            }
            (Event::Honor { by }, State::Lodged) => {
                (State::Honored, by.username.clone(), String::new())
            }
            (Event::Decline { by }, State::Lodged) => {
                (State::Declined, by.username.clone(), String::new())
            }
            (Event::Expire, State::Lodged) => (
                State::Expired,
                "system".to_string(),
                "hold clock ran out".to_string(),
            ),
            (
                Event::Lift { by, reason, note },
                State::Prepared | State::Approved | State::Lodged,
            ) => {
                let reason = reason.ok_or(Refusal::LiftNeedsReason)?;
                (State::Lifted(reason), by.username.clone(), note.clone())
            }
            _ => return Err(invalid),
        };
        if let Event::Approve { by } = &event {
            self.approved_by = Some(by.clone());
        }
        self.history.push(Transition {
            from: self.state,
            to,
            by,
            at,
            note,
        });
        self.state = to;
        Ok(to)
    }
}
