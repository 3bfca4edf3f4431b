//! Automatic answer or specialist review: the LESC decision for one query.

use super::policy::LescPolicy;
use chrono::NaiveDate;
use serde::Serialize;
use verity_model::{ImmigrationStatus, SourceRecord};
use verity_policy::{Determination, StatusRules};

/// One field's contribution to an identity score, as the resolver explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldEvidence {
    pub field: String,
    pub weight: f64,
    pub detail: String,
}

/// A person the query may be about, with all of that person's records.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub person_key: String,
    /// Calibrated probability that the query is about this person.
    pub probability: f64,
    /// An identifier (A-number, FIN, FBI number, passport, SSN) agreed.
    pub strong_identifier: bool,
    /// Fingerprints matched.
    pub biometric: bool,
    pub explanation: Vec<FieldEvidence>,
    pub records: Vec<SourceRecord>,
}

/// What the query itself says, beyond identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryContext {
    pub in_custody: bool,
    /// The subject claims U.S. citizenship (a field or the remarks of the query).
    pub citizenship_claimed: bool,
    pub today: NaiveDate,
}

/// Why a specialist (or deportation officer) must look.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ReviewReason {
    IdentityBelowAutoThreshold { probability: f64 },
    AmbiguousIdentity { top: f64, runner_up: f64 },
    CitizenshipIndicia,
    CitizenshipClaim,
    PlausibleCandidateIsCitizen { person_key: String },
    ConflictingRecords { conflicts: Vec<String> },
    RemovableOnBiographicOnly,
    StatusNotRoutine { status: ImmigrationStatus },
    Undetermined,
    NoRecordNeedsReview,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The answer may go out now without a specialist.
    pub automatic: bool,
    /// Reasons a specialist must review (the answer waits for them unless it is the safe
    /// citizenship answer).
    pub reviews: Vec<ReviewReason>,
    /// A LESC deportation officer must review a citizenship question.
    pub citizenship_review: bool,
    /// Index of the candidate the answer is about, if any.
    pub chosen: Option<usize>,
    pub determination: Determination,
}

/// Decides how to answer. Candidates need not be sorted.
pub fn decide(
    candidates: &[Candidate],
    ctx: &QueryContext,
    rules: &StatusRules,
    policy: &LescPolicy,
) -> Decision {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .probability
            .total_cmp(&candidates[a].probability)
    });
    let plausible: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| candidates[i].probability >= policy.plausible_min)
        .collect();

    let mut reviews = Vec::new();
    let Some(&top) = plausible.first() else {
        let mut determination = rules.determine(&[], ctx.today);
        let mut citizenship_review = false;
        if ctx.citizenship_claimed {
            determination.status = ImmigrationStatus::PotentialUsCitizen;
            determination.citizenship_review_required = true;
            citizenship_review = true;
            reviews.push(ReviewReason::CitizenshipClaim);
        } else if !policy.auto_answer_no_record {
            reviews.push(ReviewReason::NoRecordNeedsReview);
        }
        // A claim with no record still gets the safe answer at once.
        let automatic = reviews
            .iter()
            .all(|r| matches!(r, ReviewReason::CitizenshipClaim));
        return Decision {
            automatic,
            reviews,
            citizenship_review,
            chosen: None,
            determination,
        };
    };

    let best = &candidates[top];
    let mut determination = rules.determine(&best.records, ctx.today);
    let identity_confident = best.probability >= policy.auto_identity_min
        && plausible
            .get(1)
            .is_none_or(|&i| candidates[i].probability <= policy.runner_up_max);
    if best.probability < policy.auto_identity_min {
        reviews.push(ReviewReason::IdentityBelowAutoThreshold {
            probability: best.probability,
        });
    }
    if let Some(&second) = plausible.get(1) {
        if candidates[second].probability > policy.runner_up_max {
            reviews.push(ReviewReason::AmbiguousIdentity {
                top: best.probability,
                runner_up: candidates[second].probability,
            });
        }
    }

    // Safeguard: a sign of citizenship anywhere among the plausible people decides the answer.
    let mut citizen = determination.status.is_citizen_or_potential();
    if citizen {
        reviews.push(ReviewReason::CitizenshipIndicia);
    }
    for &i in plausible.iter().skip(1) {
        if !rules
            .determine(&candidates[i].records, ctx.today)
            .citizenship_indicia
            .is_empty()
        {
            reviews.push(ReviewReason::PlausibleCandidateIsCitizen {
                person_key: candidates[i].person_key.clone(),
            });
            citizen = true;
        }
    }
    if ctx.citizenship_claimed {
        reviews.push(ReviewReason::CitizenshipClaim);
        citizen = true;
    }
    if citizen {
        if !determination.status.is_citizen_or_potential() {
            determination.status = ImmigrationStatus::PotentialUsCitizen;
            determination.routine = false;
        }
        determination.citizenship_review_required = true;
        // The safe answer ("no ICE action") may go out as soon as identity is confident; the
        // citizenship question itself waits for a deportation officer.
        let automatic = identity_confident;
        return Decision {
            automatic,
            reviews,
            citizenship_review: true,
            chosen: Some(top),
            determination,
        };
    }

    if !determination.conflicts.is_empty() {
        reviews.push(ReviewReason::ConflictingRecords {
            conflicts: determination.conflicts.clone(),
        });
    }
    if determination.status == ImmigrationStatus::Undetermined {
        reviews.push(ReviewReason::Undetermined);
    } else if !determination.routine {
        reviews.push(ReviewReason::StatusNotRoutine {
            status: determination.status,
        });
    }
    let removable = policy.removable_statuses.contains(&determination.status);
    if removable && policy.removable_needs_identifier && !(best.strong_identifier || best.biometric)
    {
        reviews.push(ReviewReason::RemovableOnBiographicOnly);
    }
    Decision {
        automatic: reviews.is_empty(),
        reviews,
        citizenship_review: false,
        chosen: Some(top),
        determination,
    }
}
