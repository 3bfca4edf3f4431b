//! PERC priority: criminality and immigration history scored by a versioned policy file
//! (`data/policy/priority.toml`), with an explanation of every point.

use crate::error::{PolicyError, Source};
use crate::facts::{Fact, FactName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use verity_model::record::{Disposition, RecordBody};
use verity_model::{OffenseTable, SourceRecord};

pub const EMBEDDED_PRIORITY: &str = include_str!("../../../data/policy/priority.toml");
const FILE: &str = "priority.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorityFile {
    version: String,
    classes: Vec<String>,
    categories: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    offense_overrides: BTreeMap<String, String>,
    points: Points,
    tiers: Vec<Tier>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Points {
    convicted_level1: i64,
    convicted_level2: i64,
    convicted_level3: i64,
    pending_level1: i64,
    pending_level2: i64,
    pending_level3: i64,
    final_order: i64,
    reentry_after_removal: i64,
    in_absentia_order: i64,
    national_security_offense: i64,
    gang_flag: i64,
    national_security_flag: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tier {
    name: String,
    min: i64,
}

/// DHS criminality categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Criminality {
    ConvictedCriminal,
    PendingCriminalCharges,
    OtherImmigrationViolator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Factor {
    pub name: String,
    pub points: i64,
    pub records: Vec<String>,
    pub detail: String,
}

/// A subject's rank with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rank {
    pub points: i64,
    pub tier: String,
    pub criminality: Criminality,
    /// The most serious charge: (NCIC code, severity class).
    pub most_serious: Option<(String, String)>,
    pub factors: Vec<Factor>,
    pub policy_version: String,
}

#[derive(Debug, Clone)]
pub struct PriorityPolicy {
    pub version: String,
    classes: Vec<String>,
    class_of_category: HashMap<String, usize>,
    class_of_code: HashMap<String, usize>,
    points: Points,
    tiers: Vec<Tier>,
}

impl PriorityPolicy {
    pub fn load(text: &str, offenses: &OffenseTable) -> Result<Self, PolicyError> {
        let src = Source { file: FILE, text };
        let f: PriorityFile = src.parse()?;
        let invalid = |needle: &str, problem: String| src.invalid(needle, problem);
        if f.classes.is_empty() {
            return Err(invalid("classes", "classes must not be empty".into()));
        }
        let known_categories: std::collections::BTreeSet<&str> =
            offenses.all().map(|o| o.category.as_str()).collect();
        let mut class_of_category = HashMap::new();
        for (class, cats) in &f.categories {
            let idx = f.classes.iter().position(|c| c == class).ok_or_else(|| {
                invalid(
                    &format!("{class} ="),
                    format!("class '{class}' is not listed in `classes`"),
                )
            })?;
            for cat in cats {
                if !known_categories.contains(cat.as_str()) {
                    return Err(invalid(
                        &format!("\"{cat}\""),
                        format!("unknown offense category '{cat}'"),
                    ));
                }
                if let Some(prev) = class_of_category.insert(cat.clone(), idx) {
                    return Err(invalid(
                        &format!("\"{cat}\""),
                        format!(
                            "contradiction: category '{cat}' is in both '{}' and '{class}'",
                            f.classes[prev]
                        ),
                    ));
                }
            }
        }
        let mut class_of_code = HashMap::new();
        for (code, class) in &f.offense_overrides {
            if code.len() != 4 || !code.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid(
                    &format!("\"{code}\""),
                    format!("bad offense code '{code}': NCIC codes have 4 digits"),
                ));
            }
            if offenses.get(code).is_none() {
                return Err(invalid(
                    &format!("\"{code}\""),
                    format!("bad offense code '{code}': not in the offense table"),
                ));
            }
            let idx = f.classes.iter().position(|c| c == class).ok_or_else(|| {
                invalid(
                    &format!("\"{code}\""),
                    format!("class '{class}' is not listed in `classes`"),
                )
            })?;
            class_of_code.insert(code.clone(), idx);
        }
        if f.tiers.is_empty() || f.tiers.windows(2).any(|w| w[0].min <= w[1].min) {
            return Err(invalid(
                "[[tiers]]",
                "tiers must be listed from the highest minimum down, without ties".into(),
            ));
        }
        if f.tiers.last().is_some_and(|t| t.min > 0) {
            return Err(invalid(
                "[[tiers]]",
                "the last tier must start at 0 so every rank has a tier".into(),
            ));
        }
        Ok(PriorityPolicy {
            version: f.version,
            classes: f.classes,
            class_of_category,
            class_of_code,
            points: f.points,
            tiers: f.tiers,
        })
    }

    pub fn embedded(offenses: &OffenseTable) -> Result<Self, PolicyError> {
        Self::load(EMBEDDED_PRIORITY, offenses)
    }

    /// Index of a severity class by name (0 = most severe).
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == name)
    }

    /// Severity class index of an offense code (0 = most severe), `None` for "other".
    pub fn severity(&self, ncic_code: &str, offenses: &OffenseTable) -> Option<usize> {
        self.class_of_code.get(ncic_code).copied().or_else(|| {
            offenses
                .get(ncic_code)
                .and_then(|o| self.class_of_category.get(&o.category).copied())
        })
    }

    fn class_points(&self, convicted: bool, class: usize) -> i64 {
        let p = &self.points;
        match (convicted, class) {
            (true, 0) => p.convicted_level1,
            (true, 1) => p.convicted_level2,
            (true, _) => p.convicted_level3,
            (false, 0) => p.pending_level1,
            (false, 1) => p.pending_level2,
            (false, _) => p.pending_level3,
        }
    }

    /// Ranks a subject from their records and the facts derived from them.
    pub fn rank(
        &self,
        records: &[SourceRecord],
        facts: &BTreeMap<FactName, Fact>,
        offenses: &OffenseTable,
    ) -> Rank {
        let mut factors = Vec::new();
        // The most serious conviction and the most serious pending charge count once each.
        let mut best: [Option<(usize, &SourceRecord, &str)>; 2] = [None, None];
        let mut national_security = Vec::new();
        for r in records {
            let RecordBody::Criminal(c) = &r.body else {
                continue;
            };
            let slot = match c.disposition {
                Disposition::Convicted => 0,
                Disposition::Pending => 1,
                Disposition::Dismissed | Disposition::Acquitted => continue,
            };
            if offenses
                .get(&c.ncic_code)
                .is_some_and(|o| o.category == "sovereignty")
            {
                national_security.push(r.record_id.clone());
            }
            if let Some(class) = self.severity(&c.ncic_code, offenses) {
                if best[slot].is_none_or(|(b, _, _)| class < b) {
                    best[slot] = Some((class, r, c.ncic_code.as_str()));
                }
            }
        }
        for (slot, convicted) in [(0usize, true), (1usize, false)] {
            if let Some((class, r, code)) = best[slot] {
                let what = if convicted { "convicted" } else { "pending" };
                factors.push(Factor {
                    name: format!("{what}_{}", self.classes[class]),
                    points: self.class_points(convicted, class),
                    records: vec![r.record_id.clone()],
                    detail: format!(
                        "{what}: {code} {}",
                        offenses
                            .get(code)
                            .map(|o| o.description.as_str())
                            .unwrap_or("")
                    ),
                });
            }
        }
        if !national_security.is_empty() {
            factors.push(Factor {
                name: "national_security_offense".into(),
                points: self.points.national_security_offense,
                records: national_security,
                detail: "charge in the sovereignty family (01xx)".into(),
            });
        }
        let mut fact_factor = |fact: FactName, name: &str, points: i64| {
            if let Some(f) = facts.get(&fact) {
                factors.push(Factor {
                    name: name.into(),
                    points,
                    records: f.records.clone(),
                    detail: f.note.clone(),
                });
            }
        };
        fact_factor(FactName::GangFlag, "gang_flag", self.points.gang_flag);
        fact_factor(
            FactName::NationalSecurityFlag,
            "national_security_flag",
            self.points.national_security_flag,
        );
        fact_factor(FactName::FinalOrder, "final_order", self.points.final_order);
        fact_factor(
            FactName::InAbsentiaOrder,
            "in_absentia_order",
            self.points.in_absentia_order,
        );
        if facts.contains_key(&FactName::Removed) {
            fact_factor(
                FactName::PresentAfterRemoval,
                "reentry_after_removal",
                self.points.reentry_after_removal,
            );
        }
        let points: i64 = factors.iter().map(|f| f.points).sum();
        let tier = self
            .tiers
            .iter()
            .find(|t| points >= t.min)
            .map(|t| t.name.clone())
            .unwrap_or_default();
        let criminality = if best[0].is_some() {
            Criminality::ConvictedCriminal
        } else if best[1].is_some() {
            Criminality::PendingCriminalCharges
        } else {
            Criminality::OtherImmigrationViolator
        };
        let most_serious = best
            .iter()
            .flatten()
            .min_by_key(|(class, _, _)| *class)
            .map(|(class, _, code)| (code.to_string(), self.classes[*class].clone()));
        Rank {
            points,
            tier,
            criminality,
            most_serious,
            factors,
            policy_version: self.version.clone(),
        }
    }
}
