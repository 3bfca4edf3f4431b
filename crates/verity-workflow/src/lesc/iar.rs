//! The Immigration Alien Response and what each recipient may see of it.

use super::decision::{Candidate, Decision, FieldEvidence};
use super::policy::LescPolicy;
use serde::Serialize;
use verity_model::record::{Disposition, RecordBody};
use verity_model::{Identity, ImmigrationStatus, OffenseTable};
use verity_policy::Citation;

/// What ICE intends to do, in words an agency reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntendedAction {
    /// U.S. citizen or potential U.S. citizen: no ICE action.
    NoActionCitizenship,
    /// No record found: no ICE action on this response.
    NoActionNoRecord,
    /// Lawful status or status undetermined: no ICE action on this response.
    NoActionOnThisResponse,
    /// The field office will review for possible enforcement action.
    FieldOfficeReview,
}

impl IntendedAction {
    pub fn text(self) -> &'static str {
        match self {
            IntendedAction::NoActionCitizenship => "U.S. citizen or potential U.S. citizen: no ICE action.",
            IntendedAction::NoActionNoRecord => "No record found: no ICE action on this response. This is not a finding of unlawful presence.",
            IntendedAction::NoActionOnThisResponse => "No ICE action on this response.",
            IntendedAction::FieldOfficeReview => "The ICE field office will review for possible enforcement action.",
        }
    }

    /// The action for a status. Only statuses that policy calls removable lead to a review.
    pub fn for_status(status: ImmigrationStatus, policy: &LescPolicy) -> IntendedAction {
        if status.is_citizen_or_potential() {
            IntendedAction::NoActionCitizenship
        } else if status == ImmigrationStatus::NoRecordFound {
            IntendedAction::NoActionNoRecord
        } else if policy.removable_statuses.contains(&status) {
            IntendedAction::FieldOfficeReview
        } else {
            IntendedAction::NoActionOnThisResponse
        }
    }
}

/// Human wording of a status for the answer.
pub fn status_text(status: ImmigrationStatus) -> &'static str {
    use ImmigrationStatus as S;
    match status {
        S::UsCitizenBirth
        | S::UsCitizenNaturalized
        | S::UsCitizenDerived
        | S::PotentialUsCitizen => "U.S. citizen or potential U.S. citizen",
        S::Lpr => "Lawful permanent resident",
        S::Refugee => "Refugee",
        S::Asylee => "Asylee",
        S::TpsHolder => "Temporary protected status",
        S::DacaRecipient => "Deferred action (DACA)",
        S::NonimmigrantInStatus => "Nonimmigrant in status",
        S::NonimmigrantOverstay => "Nonimmigrant, admission period expired",
        S::Parolee => "Parolee",
        S::PendingAsylum => "Asylum application pending",
        S::PendingTps => "TPS application pending",
        S::PendingAdjustment => "Adjustment of status pending",
        S::PendingRemovalProceedings => "In removal proceedings (not final)",
        S::FinalOrderOfRemoval => "Final order of removal",
        S::PreviouslyRemoved => "Previously removed",
        S::EnteredWithoutInspection => "Entered without inspection",
        S::NoRecordFound => "No record found",
        S::Undetermined => "Status not determined from the records",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IarIdentity {
    pub person_key: String,
    pub name: String,
    pub dob: String,
    pub a_number: String,
    pub fin: String,
    pub fbi_number: String,
    pub probability: f64,
    pub biometric: bool,
    pub explanation: Vec<FieldEvidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriminalLine {
    pub record_id: String,
    pub arrest_date: String,
    pub ncic_code: String,
    pub offense: String,
    pub disposition: String,
}

/// The full answer, as kept and as the field office sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Iar {
    pub query_id: String,
    pub issued_at: String,
    /// `automatic`, or the username of the specialist who issued it.
    pub decided_by: String,
    pub identity: Option<IarIdentity>,
    pub status: ImmigrationStatus,
    pub status_text: String,
    pub evidence: Vec<Citation>,
    pub citizenship_indicia: Vec<Citation>,
    pub criminal_history: Vec<CriminalLine>,
    pub intended_action: IntendedAction,
    pub intended_action_text: String,
    pub lesc_contact: String,
    pub rules_version: String,
    pub lesc_policy_version: String,
    pub field_office: Option<String>,
    pub requesting_ori: String,
}

/// What the requesting agency sees: the answer and its basis in plain words, without internal
/// record ids, scores per field or other people's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgencyIar {
    pub query_id: String,
    pub issued_at: String,
    pub name: Option<String>,
    pub dob: Option<String>,
    pub a_number: Option<String>,
    pub identity_confidence: Option<f64>,
    pub identified_by_fingerprints: bool,
    pub status_text: String,
    pub criminal_history: Vec<(String, String, String)>,
    pub intended_action_text: String,
    pub lesc_contact: String,
    pub rules_version: String,
}

fn best_identity(c: &Candidate) -> Identity {
    // The richest record speaks for the person: the one with the most identifiers.
    let score = |i: &Identity| {
        [
            i.ids.a_number.is_some(),
            i.ids.fin.is_some(),
            i.ids.fbi_number.is_some(),
            i.dob.is_some_and(|d| d.is_complete()),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    };
    c.records
        .iter()
        .map(|r| &r.identity)
        .max_by_key(|i| score(i))
        .cloned()
        .unwrap_or_default()
}

pub struct IarInput<'a> {
    pub query_id: &'a str,
    pub requesting_ori: &'a str,
    pub issued_at: &'a str,
    pub decided_by: &'a str,
    pub field_office: Option<String>,
}

impl Iar {
    pub fn compose(
        input: IarInput<'_>,
        decision: &Decision,
        candidates: &[Candidate],
        policy: &LescPolicy,
        offenses: &OffenseTable,
    ) -> Iar {
        let chosen = decision.chosen.and_then(|i| candidates.get(i));
        let identity = chosen.map(|c| {
            let id = best_identity(c);
            IarIdentity {
                person_key: c.person_key.clone(),
                name: id.name.last_first(),
                dob: id.dob.map(|d| d.to_string()).unwrap_or_default(),
                a_number: id.ids.a_number.map(|a| a.to_string()).unwrap_or_default(),
                fin: id.ids.fin.map(|a| a.to_string()).unwrap_or_default(),
                fbi_number: id.ids.fbi_number.map(|a| a.to_string()).unwrap_or_default(),
                probability: c.probability,
                biometric: c.biometric,
                explanation: c.explanation.clone(),
            }
        });
        let criminal_history = chosen
            .map(|c| {
                let mut lines: Vec<CriminalLine> = c
                    .records
                    .iter()
                    .filter_map(|r| match &r.body {
                        RecordBody::Criminal(k) => Some(CriminalLine {
                            record_id: r.record_id.clone(),
                            arrest_date: k.arrest_date.to_string(),
                            ncic_code: k.ncic_code.clone(),
                            offense: offenses
                                .get(&k.ncic_code)
                                .map(|o| o.description.clone())
                                .unwrap_or_else(|| k.charge.clone()),
                            disposition: match k.disposition {
                                Disposition::Convicted => "convicted",
                                Disposition::Pending => "pending",
                                Disposition::Dismissed => "dismissed",
                                Disposition::Acquitted => "acquitted",
                            }
                            .into(),
                        }),
                        _ => None,
                    })
                    .collect();
                lines.sort_by(|a, b| b.arrest_date.cmp(&a.arrest_date));
                lines
            })
            .unwrap_or_default();
        let status = decision.determination.status;
        let action = IntendedAction::for_status(status, policy);
        Iar {
            query_id: input.query_id.into(),
            issued_at: input.issued_at.into(),
            decided_by: input.decided_by.into(),
            identity,
            status,
            status_text: status_text(status).into(),
            evidence: decision.determination.basis.clone(),
            citizenship_indicia: decision.determination.citizenship_indicia.clone(),
            criminal_history,
            intended_action: action,
            intended_action_text: action.text().into(),
            lesc_contact: policy.lesc_contact.clone(),
            rules_version: decision.determination.rules_version.clone(),
            lesc_policy_version: policy.version.clone(),
            field_office: input.field_office,
            requesting_ori: input.requesting_ori.into(),
        }
    }

    pub fn agency_view(&self) -> AgencyIar {
        AgencyIar {
            query_id: self.query_id.clone(),
            issued_at: self.issued_at.clone(),
            name: self.identity.as_ref().map(|i| i.name.clone()),
            dob: self.identity.as_ref().map(|i| i.dob.clone()),
            a_number: self
                .identity
                .as_ref()
                .map(|i| i.a_number.clone())
                .filter(|a| !a.is_empty()),
            identity_confidence: self.identity.as_ref().map(|i| i.probability),
            identified_by_fingerprints: self.identity.as_ref().is_some_and(|i| i.biometric),
            status_text: self.status_text.clone(),
            criminal_history: self
                .criminal_history
                .iter()
                .map(|c| {
                    (
                        c.arrest_date.clone(),
                        format!("{} {}", c.ncic_code, c.offense),
                        c.disposition.clone(),
                    )
                })
                .collect(),
            intended_action_text: self.intended_action_text.clone(),
            lesc_contact: self.lesc_contact.clone(),
            rules_version: self.rules_version.clone(),
        }
    }
}
