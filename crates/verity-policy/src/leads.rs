//! NCATC lead rules (`data/policy/leads.toml`) and deconfliction.
//!
//! [`LeadPolicy::evaluate`] takes one person and returns a lead with its reasons, a parked lead
//! with the reason nobody should act, a citizenship review, or nothing. The order of the
//! deconfliction checks is code, because it encodes safeguards: citizenship first, always.

use crate::error::{PolicyError, Source};
use crate::facts::{Fact, FactName};
use crate::priority::PriorityPolicy;
use crate::status::Determination;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use verity_model::record::{Disposition, RecordBody};
use verity_model::{ImmigrationStatus, OffenseTable, SourceRecord};

pub const EMBEDDED_LEADS: &str = include_str!("../../../data/policy/leads.toml");
const FILE: &str = "leads.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LeadsFile {
    version: String,
    min_identity_probability: f64,
    relief_bars_action: Vec<String>,
    rule: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    name: String,
    description: String,
    all: Vec<String>,
    #[serde(default)]
    none: Vec<String>,
    statuses: Vec<String>,
    conviction_class: Option<String>,
    arrest_class: Option<String>,
    #[serde(default)]
    at_large: bool,
    #[serde(default)]
    needs_location: bool,
}

#[derive(Debug, Clone)]
pub struct LeadRule {
    pub name: String,
    pub description: String,
    all: Vec<FactName>,
    none: Vec<FactName>,
    statuses: Vec<ImmigrationStatus>,
    conviction_class: Option<usize>,
    arrest_class: Option<usize>,
    at_large: bool,
    needs_location: bool,
}

#[derive(Debug, Clone)]
pub struct LeadPolicy {
    pub version: String,
    pub min_identity_probability: f64,
    relief_bars: Vec<FactName>,
    pub rules: Vec<LeadRule>,
}

/// What others are already doing about the person (from the store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ongoing {
    pub open_lead: bool,
    pub active_detainer: bool,
    pub open_citizenship_claim: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParkReason {
    InIceCustody,
    OpenLead,
    ActiveDetainer,
    ReliefBarsAction,
    Deceased,
    IdentityBelowThreshold,
    NoKnownLocation,
    /// An immigration record (enforcement, court, benefits, travel) outside the person's linked
    /// records has the same full name and birth date: it may change the person's status (an
    /// executed removal, a grant, an order), so an analyst must link or rule it out first.
    UnlinkedStatusRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LeadOutcome {
    /// No rule applies.
    None,
    /// Citizenship indicia or an open claim: never a lead; a citizenship review instead.
    CitizenshipReview,
    /// A rule applies but nobody should act now.
    Parked {
        rules: Vec<String>,
        reason: ParkReason,
        detail: String,
    },
    Lead {
        rules: Vec<String>,
        reasons: Vec<String>,
    },
}

impl LeadPolicy {
    pub fn load(text: &str, priority: &PriorityPolicy) -> Result<Self, PolicyError> {
        let src = Source { file: FILE, text };
        let f: LeadsFile = src.parse()?;
        let invalid = |needle: &str, problem: String| src.invalid(needle, problem);
        if !(0.5..=1.0).contains(&f.min_identity_probability) {
            return Err(invalid(
                "min_identity_probability",
                "min_identity_probability must be in [0.5, 1]".into(),
            ));
        }
        let relief_bars = src.facts(&f.relief_bars_action)?;
        let mut rules = Vec::new();
        for r in f.rule {
            let at = format!("name = \"{}\"", r.name);
            if rules.iter().any(|x: &LeadRule| x.name == r.name) {
                return Err(invalid(&at, format!("rule name '{}' repeats", r.name)));
            }
            let (all, none) = src.rule_facts(&r.name, &at, &r.all, &r.none)?;
            let mut statuses = Vec::new();
            for s in &r.statuses {
                let st = ImmigrationStatus::parse(s)
                    .map_err(|e| invalid(&format!("\"{s}\""), e.problem))?;
                if st.is_citizen_or_potential() || st.is_non_answer() {
                    return Err(invalid(
                        &format!("\"{s}\""),
                        format!("a lead can never rest on status '{s}'"),
                    ));
                }
                statuses.push(st);
            }
            if statuses.is_empty() {
                return Err(invalid(&at, format!("rule '{}' lists no statuses", r.name)));
            }
            let class = |c: &Option<String>| -> Result<Option<usize>, PolicyError> {
                match c {
                    None => Ok(None),
                    Some(name) => priority.class_index(name).map(Some).ok_or_else(|| {
                        invalid(
                            &format!("\"{name}\""),
                            format!("unknown severity class '{name}'"),
                        )
                    }),
                }
            };
            let conviction_class = class(&r.conviction_class)?;
            let arrest_class = class(&r.arrest_class)?;
            if all.is_empty() && conviction_class.is_none() && arrest_class.is_none() {
                return Err(invalid(
                    &at,
                    format!("rule '{}' has no condition at all", r.name),
                ));
            }
            rules.push(LeadRule {
                name: r.name,
                description: r.description,
                all,
                none,
                statuses,
                conviction_class,
                arrest_class,
                at_large: r.at_large,
                needs_location: r.needs_location,
            });
        }
        Ok(LeadPolicy {
            version: f.version,
            min_identity_probability: f.min_identity_probability,
            relief_bars,
            rules,
        })
    }

    pub fn embedded(priority: &PriorityPolicy) -> Result<Self, PolicyError> {
        Self::load(EMBEDDED_LEADS, priority)
    }

    /// Evaluates one person. `identity_probability` is how surely the person's records belong
    /// together; `has_location` whether a current address or custody place is known.
    #[allow(clippy::too_many_arguments)]
    pub fn evaluate(
        &self,
        records: &[SourceRecord],
        facts: &BTreeMap<FactName, Fact>,
        determination: &Determination,
        identity_probability: f64,
        has_location: bool,
        ongoing: Ongoing,
        priority: &PriorityPolicy,
        offenses: &OffenseTable,
    ) -> LeadOutcome {
        // Safeguard first, whatever the rules say.
        if !determination.citizenship_indicia.is_empty()
            || determination.status.is_citizen_or_potential()
            || ongoing.open_citizenship_claim
        {
            return LeadOutcome::CitizenshipReview;
        }
        let worst = |convicted_only: bool| -> Option<usize> {
            records
                .iter()
                .filter_map(|r| match &r.body {
                    RecordBody::Criminal(c)
                        if !convicted_only || c.disposition == Disposition::Convicted =>
                    {
                        priority.severity(&c.ncic_code, offenses)
                    }
                    _ => None,
                })
                .min()
        };
        let in_custody = facts.contains_key(&FactName::InLocalCustody)
            || facts.contains_key(&FactName::InIceCustody);
        let mut matched = Vec::new();
        let mut reasons = Vec::new();
        for rule in &self.rules {
            let ok = rule.statuses.contains(&determination.status)
                && rule.all.iter().all(|f| facts.contains_key(f))
                && !rule.none.iter().any(|f| facts.contains_key(f))
                && rule
                    .conviction_class
                    .is_none_or(|c| worst(true).is_some_and(|w| w <= c))
                && rule
                    .arrest_class
                    .is_none_or(|c| worst(false).is_some_and(|w| w <= c))
                && (!rule.at_large || !in_custody);
            if ok {
                matched.push(rule.name.clone());
                reasons.push(rule.description.clone());
            }
        }
        if matched.is_empty() {
            return LeadOutcome::None;
        }
        let park = |reason: ParkReason, detail: String| LeadOutcome::Parked {
            rules: matched.clone(),
            reason,
            detail,
        };
        if facts.contains_key(&FactName::Deceased) {
            return park(ParkReason::Deceased, "recorded as deceased".into());
        }
        if facts.contains_key(&FactName::InIceCustody) {
            return park(ParkReason::InIceCustody, "already in ICE custody".into());
        }
        if ongoing.active_detainer {
            return park(
                ParkReason::ActiveDetainer,
                "a detainer or notification request is active".into(),
            );
        }
        if ongoing.open_lead {
            return park(ParkReason::OpenLead, "a lead on this person is open".into());
        }
        if let Some(bar) = self.relief_bars.iter().find(|b| facts.contains_key(b)) {
            return park(
                ParkReason::ReliefBarsAction,
                format!("pending or granted relief bars action: {bar}"),
            );
        }
        if identity_probability < self.min_identity_probability {
            return park(
                ParkReason::IdentityBelowThreshold,
                format!(
                    "identity confidence {identity_probability:.4} is below {}",
                    self.min_identity_probability
                ),
            );
        }
        if self
            .rules
            .iter()
            .filter(|r| matched.contains(&r.name))
            .all(|r| r.needs_location)
            && !has_location
        {
            return park(
                ParkReason::NoKnownLocation,
                "no current address or custody place".into(),
            );
        }
        LeadOutcome::Lead {
            rules: matched,
            reasons,
        }
    }
}
