//! Automatic answer or specialist review: the LESC decision for one query.

use super::policy::LescPolicy;
use chrono::NaiveDate;
use serde::Serialize;
use verity_model::{ImmigrationStatus, RecordBody, SourceRecord};
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
    IdentityBelowAutoThreshold {
        probability: f64,
    },
    AmbiguousIdentity {
        top: f64,
        runner_up: f64,
    },
    CitizenshipIndicia,
    CitizenshipClaim,
    PlausibleCandidateIsCitizen {
        person_key: String,
    },
    ConflictingRecords {
        conflicts: Vec<String>,
    },
    RemovableOnBiographicOnly,
    /// A noncitizen status (not removable) on name and birth date alone.
    NoncitizenOnBiographicOnly,
    StatusNotRoutine {
        status: ImmigrationStatus,
    },
    Undetermined,
    NoRecordNeedsReview,
    /// Another candidate linked to the chosen one (plausible, or sharing an identifier) has
    /// records establishing a different status: the status is not supported consistently.
    CandidateStatusDiffers {
        person_key: String,
        status: ImmigrationStatus,
    },
    /// Nobody plausible for the query as asked, but a record is plausible under a common
    /// slip (birth year off by one, names swapped, ...) or a weak candidate exists: "no record
    /// found" waits for a specialist's search.
    PossibleRecordOnSecondLook {
        change: String,
        probability: f64,
    },
    /// Permanent residence on record, old enough for a naturalization (or obtained as a minor,
    /// so citizenship may have been derived) that no record shows: citizenship is checked
    /// before a noncitizen status goes out.
    PossibleUnrecordedCitizenship {
        detail: String,
    },
    /// A fingerprint enrollment says a system captured the person (a USCIS benefits
    /// appointment, an arrival, an encounter), but no record of that system from then is among
    /// the person's records: a record the status may rest on (a pending asylum application,
    /// say) was not found, so the records do not establish the status.
    EnrollingRecordMissing {
        system: String,
        enrolled: String,
    },
}

/// The first fingerprint enrollment whose enrolling encounter (benefits appointment, arrival,
/// immigration encounter) has no record of that system dated on or before it among
/// `records`: (system, enrollment date). Arrests and custody are left out: they establish no
/// status.
#[cfg(test)]
fn enrolling_record_missing(records: &[SourceRecord]) -> Option<(String, String)> {
    let refs: Vec<&SourceRecord> = records.iter().collect();
    enrolling_record_missing_of(&refs)
}

/// The same over borrowed records (the engine path; the owned form above is for the tests
/// beside this file). A benefits record counts as dated on
/// or before the enrollment when either of its dates is (or it has none): a receipt date
/// written after the decision (a clerk's slip) does not hide a record that was decided before
/// the appointment.
fn enrolling_record_missing_of(records: &[&SourceRecord]) -> Option<(String, String)> {
    use verity_model::RecordSystem as Sys;
    let key = |d: &verity_model::PartialDate| (d.year, d.month.unwrap_or(1), d.day.unwrap_or(1));
    records.iter().find_map(|r| {
        let RecordBody::Biometrics(b) = &r.body else {
            return None;
        };
        if !matches!(
            b.captured_by,
            Sys::Benefits | Sys::Travel | Sys::Enforcement
        ) {
            return None;
        }
        let at = key(&b.enrolled);
        let found = records.iter().any(|o| match (&o.body, b.captured_by) {
            (RecordBody::Benefits(x), Sys::Benefits) => {
                (x.filed.is_none() && x.decided.is_none())
                    || [x.filed, x.decided].iter().flatten().any(|d| key(d) <= at)
            }
            (RecordBody::Travel(x), Sys::Travel) => key(&x.date) <= at,
            (RecordBody::Enforcement(x), Sys::Enforcement) => key(&x.date) <= at,
            _ => false,
        });
        (!found).then(|| (b.captured_by.code().to_string(), b.enrolled.to_string()))
    })
}

/// Records that only say what a person did (arrests, custody), never their immigration or
/// citizenship status.
fn status_neutral(records: &[SourceRecord]) -> bool {
    records
        .iter()
        .all(|r| matches!(r.body, RecordBody::Criminal(_) | RecordBody::Custody(_)))
}

/// The status the two groups' records would establish if they were one person's (borrowed,
/// not cloned: this runs for runner-ups on the query path).
fn merged_status(
    a: &[SourceRecord],
    b: &[SourceRecord],
    rules: &StatusRules,
    today: NaiveDate,
) -> ImmigrationStatus {
    let both: Vec<&SourceRecord> = a.iter().chain(b).collect();
    rules.determine_encountered_of(&both, today).status
}

/// Identifier values of one kind across a group's records: (A-number, FIN, FBI, SSN).
fn id_sets(records: &[SourceRecord]) -> [Vec<&str>; 4] {
    let mut out: [Vec<&str>; 4] = Default::default();
    for r in records {
        let ids = &r.identity.ids;
        if let Some(v) = &ids.a_number {
            out[0].push(v.as_str());
        }
        if let Some(v) = &ids.fin {
            out[1].push(v.as_str());
        }
        if let Some(v) = &ids.fbi_number {
            out[2].push(v.as_str());
        }
        if let Some(v) = &ids.ssn {
            out[3].push(v.as_str());
        }
    }
    out
}

/// Both groups carry an identifier of the same kind and no value agrees: different people.
fn identifiers_conflict(x: &[Vec<&str>; 4], y: &[Vec<&str>; 4]) -> bool {
    x.iter()
        .zip(y.iter())
        .any(|(p, q)| !p.is_empty() && !q.is_empty() && !p.iter().any(|v| q.contains(v)))
}

/// The two groups share at least one identifier value.
fn identifiers_shared(x: &[Vec<&str>; 4], y: &[Vec<&str>; 4]) -> bool {
    x.iter()
        .zip(y.iter())
        .any(|(p, q)| p.iter().any(|v| q.contains(v)))
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
        let mut determination = rules.determine_encountered(&[], ctx.today);
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
    let mut determination = rules.determine_encountered(&best.records, ctx.today);
    let identity_confident = best.probability >= policy.auto_identity_min
        && plausible
            .get(1)
            .is_none_or(|&i| candidates[i].probability <= policy.runner_up_max);
    if best.probability < policy.auto_identity_min {
        reviews.push(ReviewReason::IdentityBelowAutoThreshold {
            probability: best.probability,
        });
    }
    // A runner-up that carries only arrest/custody records, no citizenship indicia and no
    // identifier contradicting the top candidate, and that would not change the status if it
    // were the same person, cannot change the answer (it is usually the same person's criminal
    // records split from the immigration ones): it does not block an automatic answer, and it
    // is not merged into the answer either. The "would not change the status" test matters:
    // an arrest after a removal makes "previously removed" (bench: 4 wrong automatic
    // "pending proceedings" answers per 2,000 queries without it).
    //
    // Likewise any runner-up when an identifier of the query (or fingerprints) picks the top
    // candidate and agrees with none of the runner-up's records: the query's identifier says
    // who the subject is, and the runner-up (name and birth date only; usually the same
    // person's records that share no identifier with the rest, a travel record carrying only
    // a passport) neither contradicts an identifier, nor shows citizenship, nor changes the
    // status were it the same person. Were it another person, it says nothing of the subject.
    //
    // And a runner-up the query's identifier rules out: the identifier (or fingerprints) picks
    // the top candidate, the runner-up holds none of the query's identifiers, its records carry
    // an identifier of a kind the top candidate's records also carry with no value in common
    // (another A-number, another FIN: another person), and on name and birth date it is at
    // most `ruled_out_runner_up_max` (lesc.toml) probable. It is another person, so it neither makes the
    // identity ambiguous nor says anything of the subject's status (bench seeds 1-3: such
    // runner-ups were all another person, often the same common name with another birth
    // date). Its citizenship indicia still count below: that safeguard looks at everyone
    // plausible.
    //
    // Work per runner-up is lazy (this runs on every query): its own determination is needed
    // for the citizenship safeguard anyway; whether it is harmless (a merged determination of
    // both groups' records) is asked only when the answer depends on it: the runner-up would
    // otherwise make the identity ambiguous or the status inconsistent, or the top candidate's
    // enrolling record is missing and might be among the harmless runner-ups.
    let pinned = best.strong_identifier || best.biometric;
    let best_ids = id_sets(&best.records);
    let top_enrolling_missing = {
        let refs: Vec<&SourceRecord> = best.records.iter().collect();
        enrolling_record_missing_of(&refs)
    };
    let harmless = |c: &Candidate, c_ids: &[Vec<&str>; 4]| {
        let kind_ok = if pinned && !c.strong_identifier && !c.biometric {
            true
        } else {
            // Not for a permanent resident: the bench showed one wrong-person automatic LPR
            // answer (seed 2) without this exception.
            determination.status != ImmigrationStatus::Lpr && status_neutral(&c.records)
        };
        kind_ok
            && !identifiers_conflict(&best_ids, c_ids)
            && merged_status(&best.records, &c.records, rules, ctx.today) == determination.status
    };
    let mut ambiguous_runner_up = None;
    let mut harmless_runner_ups: Vec<usize> = Vec::new();
    let mut runner_up_status_differs: Vec<ReviewReason> = Vec::new();
    let mut plausible_citizens: Vec<ReviewReason> = Vec::new();
    for &i in plausible.iter().skip(1) {
        let c = &candidates[i];
        let d = rules.determine_encountered(&c.records, ctx.today);
        let has_indicia = !d.citizenship_indicia.is_empty();
        if has_indicia {
            plausible_citizens.push(ReviewReason::PlausibleCandidateIsCitizen {
                person_key: c.person_key.clone(),
            });
        }
        let differs = !has_indicia && !d.basis.is_empty() && d.status != determination.status;
        let above = c.probability > policy.runner_up_max;
        if !(above || differs || (top_enrolling_missing.is_some() && !has_indicia)) {
            // Changes nothing whatever it is: not ambiguous, same status (or none).
            continue;
        }
        let c_ids = id_sets(&c.records);
        if !has_indicia && harmless(c, &c_ids) {
            harmless_runner_ups.push(i);
            continue;
        }
        let ruled_out = pinned
            && !has_indicia
            && !c.strong_identifier
            && !c.biometric
            && c.probability <= policy.ruled_out_runner_up_max
            && identifiers_conflict(&best_ids, &c_ids);
        if ruled_out {
            continue;
        }
        if above && ambiguous_runner_up.is_none() {
            ambiguous_runner_up = Some(c.probability);
        }
        if differs {
            runner_up_status_differs.push(ReviewReason::CandidateStatusDiffers {
                person_key: c.person_key.clone(),
                status: d.status,
            });
        }
    }
    if let Some(runner_up) = ambiguous_runner_up {
        reviews.push(ReviewReason::AmbiguousIdentity {
            top: best.probability,
            runner_up,
        });
    }
    // Linked candidates (plausible, or sharing an identifier with the top one) whose records
    // establish another status, or citizenship: the status is not supported consistently.
    let mut linked_citizen = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        if i == top
            || plausible.contains(&i)
            || !identifiers_shared(&best_ids, &id_sets(&c.records))
        {
            continue;
        }
        let d = rules.determine_encountered(&c.records, ctx.today);
        if !d.citizenship_indicia.is_empty() {
            linked_citizen.push(c.person_key.clone());
        } else if !d.basis.is_empty()
            && d.status != determination.status
            // A split-off group whose status the top candidate's records supersede (an old
            // visa before a later grant) does not contradict it: were it the same person,
            // the status would be the same. Were it another person, it says nothing of this one.
            && merged_status(&best.records, &c.records, rules, ctx.today) != determination.status
        {
            reviews.push(ReviewReason::CandidateStatusDiffers {
                person_key: c.person_key.clone(),
                status: d.status,
            });
        }
    }
    reviews.extend(runner_up_status_differs);

    // Safeguard: a sign of citizenship anywhere among the plausible people decides the answer.
    let mut citizen = determination.status.is_citizen_or_potential();
    if citizen {
        reviews.push(ReviewReason::CitizenshipIndicia);
    }
    if !plausible_citizens.is_empty() {
        reviews.extend(plausible_citizens);
        citizen = true;
    }
    for person_key in linked_citizen {
        reviews.push(ReviewReason::PlausibleCandidateIsCitizen { person_key });
        citizen = true;
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
    let mut citizenship_review = false;
    if determination.status == ImmigrationStatus::Lpr {
        if let Some(detail) = possible_unrecorded_citizenship(
            &best.records,
            ctx.today,
            policy.lpr_citizenship_check_years,
        ) {
            reviews.push(ReviewReason::PossibleUnrecordedCitizenship { detail });
            citizenship_review = true;
        }
    }
    // The enrolling encounter's record may be among the harmless runner-ups (the same
    // person's arrival record carrying only a passport): found there, it is not missing, and
    // with it the status is the same (that is what harmless means).
    let found_among_harmless =
        top_enrolling_missing.is_some() && !harmless_runner_ups.is_empty() && {
            let with_harmless: Vec<&SourceRecord> = best
                .records
                .iter()
                .chain(
                    harmless_runner_ups
                        .iter()
                        .flat_map(|&i| candidates[i].records.iter()),
                )
                .collect();
            enrolling_record_missing_of(&with_harmless).is_none()
                && rules
                    .determine_encountered_of(&with_harmless, ctx.today)
                    .status
                    == determination.status
        };
    if let Some((system, enrolled)) = top_enrolling_missing.filter(|_| !found_among_harmless) {
        reviews.push(ReviewReason::EnrollingRecordMissing { system, enrolled });
    }
    let removable = policy.removable_statuses.contains(&determination.status);
    if removable && policy.removable_needs_identifier && !(best.strong_identifier || best.biometric)
    {
        reviews.push(ReviewReason::RemovableOnBiographicOnly);
    } else {
        let noncitizen_status = !determination.status.is_citizen_or_potential()
            && !determination.status.is_non_answer();
        let identified = best.strong_identifier || best.biometric;
        if policy.noncitizen_needs_identifier && noncitizen_status && !identified {
            reviews.push(ReviewReason::NoncitizenOnBiographicOnly);
        }
    }
    Decision {
        automatic: reviews.is_empty(),
        reviews,
        citizenship_review,
        chosen: Some(top),
        determination,
    }
}

/// Whether a permanent resident's records leave room for a citizenship no record shows, and
/// why: the earliest grant is `check_years` or more old (naturalization is possible after
/// three years for a spouse of a citizen, INA 319(a), five otherwise), or unknown, or came
/// before 18 (citizenship derived through a naturalized parent, INA 320). The GAO found
/// citizenship gained after the record to be a main cause of detainers on citizens.
pub fn possible_unrecorded_citizenship(
    records: &[SourceRecord],
    today: NaiveDate,
    check_years: u32,
) -> Option<String> {
    use verity_model::record::{BenefitOutcome, BenefitType, TravelDirection};
    let key = |d: &verity_model::PartialDate| (d.year, d.month.unwrap_or(1), d.day.unwrap_or(1));
    let mut earliest: Option<verity_model::PartialDate> = None;
    let mut undated = false;
    for r in records {
        let granted_on = match &r.body {
            RecordBody::Benefits(b)
                if b.outcome == BenefitOutcome::Granted
                    && matches!(
                        b.benefit,
                        BenefitType::Adjustment | BenefitType::ImmigrantVisa
                    ) =>
            {
                Some(b.decided.or(b.filed))
            }
            RecordBody::Travel(t)
                if t.direction == TravelDirection::Arrival && t.class_of_admission == "LPR" =>
            {
                Some(Some(t.date))
            }
            _ => None,
        };
        match granted_on {
            Some(Some(d)) if earliest.is_none_or(|e| key(&d) < key(&e)) => earliest = Some(d),
            Some(None) => undated = true,
            _ => {}
        }
    }
    let Some(since) = earliest else {
        return undated.then(|| "the permanent-residence grant is undated".to_string());
    };
    let birth = records
        .iter()
        .filter_map(|r| r.identity.dob)
        .find(|d| d.is_complete())
        .or_else(|| records.iter().find_map(|r| r.identity.dob));
    if let Some(b) = birth {
        // Under 18 at the grant, counted conservatively (unknown month or day: still a minor).
        let years = i32::from(since.year) - i32::from(b.year);
        let before_birthday = (since.month.unwrap_or(1), since.day.unwrap_or(1))
            < (b.month.unwrap_or(12), b.day.unwrap_or(31));
        if years < 18 || (years == 18 && before_birthday) {
            return Some(format!(
                "permanent residence since {} (aged {} or less): citizenship may be derived",
                key_text(&since),
                years
            ));
        }
    }
    let grant = NaiveDate::from_ymd_opt(
        i32::from(since.year),
        u32::from(since.month.unwrap_or(1)),
        u32::from(since.day.unwrap_or(1)),
    )?;
    let eligible_from = grant.checked_add_months(chrono::Months::new(12 * check_years))?;
    (today >= eligible_from).then(|| {
        format!(
            "permanent residence since {}, {check_years} or more years ago: naturalization possible",
            key_text(&since)
        )
    })
}

fn key_text(d: &verity_model::PartialDate) -> String {
    match (d.month, d.day) {
        (Some(m), Some(day)) => format!("{:04}-{m:02}-{day:02}", d.year),
        (Some(m), None) => format!("{:04}-{m:02}", d.year),
        _ => format!("{:04}", d.year),
    }
}

#[cfg(test)]
mod enrolling_tests {
    use super::enrolling_record_missing;
    use verity_model::{RecordBody, RecordSystem};

    /// A synthetic person fingerprinted at a USCIS benefits appointment, with their records.
    fn enrolled_by_benefits() -> Vec<verity_model::SourceRecord> {
        (0..5_000u64)
            .map(|i| verity_synth::generate_person(11, i).1)
            .find(|records| {
                records.iter().any(|r| {
                    matches!(&r.body, RecordBody::Biometrics(b) if b.captured_by == RecordSystem::Benefits)
                }) && enrolling_record_missing(records).is_none()
            })
            .expect("a person enrolled at a benefits appointment with the benefits record")
    }

    #[test]
    fn an_enrollment_without_its_systems_record_is_flagged() {
        let records = enrolled_by_benefits();
        assert_eq!(enrolling_record_missing(&records), None);
        // The benefits record the status rests on is not among the person's records found.
        let without: Vec<_> = records
            .into_iter()
            .filter(|r| !matches!(r.body, RecordBody::Benefits(_)))
            .collect();
        let (system, _) = enrolling_record_missing(&without).expect("missing record flagged");
        assert_eq!(system, RecordSystem::Benefits.code());
    }
}
