//! The LESC answering policy (`data/policy/lesc.toml`).

use serde::Deserialize;
use verity_model::ImmigrationStatus;

pub const EMBEDDED_LESC_POLICY: &str = include_str!("../../../../data/policy/lesc.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: String,
    auto_identity_min: f64,
    runner_up_max: f64,
    ruled_out_runner_up_max: f64,
    plausible_min: f64,
    removable_needs_identifier: bool,
    removable_statuses: Vec<String>,
    noncitizen_needs_identifier: bool,
    auto_answer_no_record: bool,
    no_record_weak_candidate_min: f64,
    lpr_citizenship_check_years: u32,
    sla_minutes_in_custody: i64,
    sla_minutes_not_in_custody: i64,
    hit_minutes_urgent: i64,
    hit_minutes_routine: i64,
    hit_escalate_at_share: f64,
    lesc_contact: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LescPolicy {
    pub version: String,
    pub auto_identity_min: f64,
    pub runner_up_max: f64,
    /// A runner-up at most this probable whose identifier contradicts the one the query's
    /// identifier picked is another person (see `decide`).
    pub ruled_out_runner_up_max: f64,
    pub plausible_min: f64,
    pub removable_needs_identifier: bool,
    pub removable_statuses: Vec<ImmigrationStatus>,
    /// No noncitizen status goes out automatically on name and birth date alone.
    pub noncitizen_needs_identifier: bool,
    pub auto_answer_no_record: bool,
    /// A candidate at least this probable keeps "no record found" from going out unreviewed.
    pub no_record_weak_candidate_min: f64,
    /// A permanent residence this many years old may hide a naturalization no record shows.
    pub lpr_citizenship_check_years: u32,
    pub sla_minutes_in_custody: i64,
    pub sla_minutes_not_in_custody: i64,
    pub hit_minutes_urgent: i64,
    pub hit_minutes_routine: i64,
    pub hit_escalate_at_share: f64,
    pub lesc_contact: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lesc.toml: {0}")]
pub struct LescPolicyError(pub String);

impl LescPolicy {
    pub fn load(text: &str) -> Result<Self, LescPolicyError> {
        let f: PolicyFile = toml::from_str(text).map_err(|e| LescPolicyError(e.to_string()))?;
        let prob = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(LescPolicyError(format!(
                    "{name} = {v} is not a probability in [0, 1]"
                )))
            }
        };
        prob("auto_identity_min", f.auto_identity_min)?;
        prob("runner_up_max", f.runner_up_max)?;
        prob("ruled_out_runner_up_max", f.ruled_out_runner_up_max)?;
        if f.ruled_out_runner_up_max >= f.auto_identity_min {
            return Err(LescPolicyError(
                "contradiction: ruled_out_runner_up_max must be below auto_identity_min (a runner-up that probable is not ruled out by an identifier)".into(),
            ));
        }
        prob("plausible_min", f.plausible_min)?;
        prob("hit_escalate_at_share", f.hit_escalate_at_share)?;
        prob(
            "no_record_weak_candidate_min",
            f.no_record_weak_candidate_min,
        )?;
        if f.no_record_weak_candidate_min > f.plausible_min {
            return Err(LescPolicyError(
                "no_record_weak_candidate_min above plausible_min would let a plausible-but-weak record pass as 'no record found'".into(),
            ));
        }
        if f.lpr_citizenship_check_years > 5 {
            return Err(LescPolicyError(
                "lpr_citizenship_check_years above 5: naturalization is possible after 5 years (3 for a citizen's spouse)".into(),
            ));
        }
        if f.plausible_min >= f.auto_identity_min {
            return Err(LescPolicyError(
                "contradiction: plausible_min must be below auto_identity_min".into(),
            ));
        }
        if f.auto_identity_min < 0.5 {
            return Err(LescPolicyError(
                "auto_identity_min below 0.5 would answer on a coin toss".into(),
            ));
        }
        for (name, v) in [
            ("sla_minutes_in_custody", f.sla_minutes_in_custody),
            ("sla_minutes_not_in_custody", f.sla_minutes_not_in_custody),
            ("hit_minutes_urgent", f.hit_minutes_urgent),
            ("hit_minutes_routine", f.hit_minutes_routine),
        ] {
            if v <= 0 {
                return Err(LescPolicyError(format!("{name} must be positive")));
            }
        }
        let removable_statuses = f
            .removable_statuses
            .iter()
            .map(|s| {
                ImmigrationStatus::parse(s)
                    .map_err(|e| LescPolicyError(format!("removable_statuses: {}", e.problem)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = removable_statuses
            .iter()
            .find(|s| s.is_citizen_or_potential() || s.is_non_answer())
        {
            return Err(LescPolicyError(format!(
                "removable_statuses: '{bad}' can never be removable"
            )));
        }
        Ok(LescPolicy {
            version: f.version,
            auto_identity_min: f.auto_identity_min,
            runner_up_max: f.runner_up_max,
            ruled_out_runner_up_max: f.ruled_out_runner_up_max,
            plausible_min: f.plausible_min,
            removable_needs_identifier: f.removable_needs_identifier,
            removable_statuses,
            noncitizen_needs_identifier: f.noncitizen_needs_identifier,
            auto_answer_no_record: f.auto_answer_no_record,
            no_record_weak_candidate_min: f.no_record_weak_candidate_min,
            lpr_citizenship_check_years: f.lpr_citizenship_check_years,
            sla_minutes_in_custody: f.sla_minutes_in_custody,
            sla_minutes_not_in_custody: f.sla_minutes_not_in_custody,
            hit_minutes_urgent: f.hit_minutes_urgent,
            hit_minutes_routine: f.hit_minutes_routine,
            hit_escalate_at_share: f.hit_escalate_at_share,
            lesc_contact: f.lesc_contact,
        })
    }

    pub fn embedded() -> Result<Self, LescPolicyError> {
        Self::load(EMBEDDED_LESC_POLICY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_policy_is_valid() {
        let p = LescPolicy::embedded().expect("valid");
        assert!(p.auto_identity_min > p.plausible_min);
    }

    #[test]
    fn contradictions_and_bad_values_are_rejected() {
        let good = EMBEDDED_LESC_POLICY;
        assert!(
            LescPolicy::load(&good.replace("plausible_min = 0.10", "plausible_min = 0.99"))
                .is_err()
        );
        assert!(LescPolicy::load(
            &good.replace("auto_identity_min = 0.98", "auto_identity_min = 1.5")
        )
        .is_err());
        let e = LescPolicy::load(&good.replace(
            "\"previously_removed\",",
            "\"previously_removed\",\n  \"us_citizen_birth\",",
        ))
        .unwrap_err();
        assert!(e.0.contains("can never be removable"), "{e}");
        assert!(LescPolicy::load(&format!("{good}\nsurprise = 1\n")).is_err());
        let e = LescPolicy::load(&good.replace(
            "no_record_weak_candidate_min = 0.01",
            "no_record_weak_candidate_min = 0.5",
        ))
        .unwrap_err();
        assert!(e.0.contains("no_record_weak_candidate_min"), "{e}");
        let e = LescPolicy::load(&good.replace(
            "lpr_citizenship_check_years = 3",
            "lpr_citizenship_check_years = 6",
        ))
        .unwrap_err();
        assert!(e.0.contains("lpr_citizenship_check_years"), "{e}");
        // A runner-up as probable as an automatic identity cannot be ruled out by an identifier.
        let e = LescPolicy::load(&good.replace(
            "ruled_out_runner_up_max = 0.5",
            "ruled_out_runner_up_max = 0.99",
        ))
        .unwrap_err();
        assert!(e.0.contains("ruled_out_runner_up_max"), "{e}");
    }
}
