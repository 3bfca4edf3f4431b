//! Status determination: facts -> status, by versioned rules, with cited records.

use crate::error::{line_of, PolicyError, Source};
use crate::facts::{derive_facts, derive_facts_of, Fact, FactName};
use chrono::NaiveDate;
use serde::Deserialize;
use std::collections::BTreeMap;
use verity_model::{ImmigrationStatus, SourceRecord};

pub const EMBEDDED_STATUS_RULES: &str = include_str!("../../../data/policy/status-rules.toml");
const FILE: &str = "status-rules.toml";
/// The record id under which a determination cites the query's own encounter.
pub const THIS_QUERY: &str = "this-query";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    version: String,
    citizenship_indicia: Vec<String>,
    routine: Vec<String>,
    rule: Vec<RuleEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    status: String,
    all: Vec<String>,
    #[serde(default)]
    none: Vec<String>,
}

#[derive(Debug, Clone)]
struct Rule {
    status: ImmigrationStatus,
    all: Vec<FactName>,
    none: Vec<FactName>,
}

/// A loaded, validated set of status rules.
#[derive(Debug, Clone)]
pub struct StatusRules {
    pub version: String,
    indicia: Vec<FactName>,
    routine: Vec<ImmigrationStatus>,
    rules: Vec<Rule>,
}

/// A record that a determination rests on, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Citation {
    pub record_id: String,
    pub fact: String,
    pub note: String,
}

/// The answer for one person, with everything needed to check it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Determination {
    pub status: ImmigrationStatus,
    pub rules_version: String,
    /// The records that establish the status.
    pub basis: Vec<Citation>,
    /// Every record that indicates U.S. citizenship. Non-empty blocks enforcement.
    pub citizenship_indicia: Vec<Citation>,
    /// Other statuses whose rules also matched (lower precedence), for the specialist.
    pub also_matched: Vec<ImmigrationStatus>,
    /// Records that point different ways (e.g. citizenship evidence beside a removal order).
    pub conflicts: Vec<String>,
    /// Policy allows an automatic answer for this status (identity confidence is checked elsewhere).
    pub routine: bool,
    /// A LESC deportation officer must review a citizenship question before anything else.
    pub citizenship_review_required: bool,
}

fn parse_status(text: &str, name: &str) -> Result<ImmigrationStatus, PolicyError> {
    ImmigrationStatus::parse(name).map_err(|e| PolicyError::Invalid {
        file: FILE.into(),
        line: line_of(text, &format!("\"{name}\"")),
        problem: e.problem,
    })
}

impl StatusRules {
    pub fn load(text: &str) -> Result<Self, PolicyError> {
        let src = Source { file: FILE, text };
        let f: RulesFile = src.parse()?;
        let invalid = |needle: &str, problem: String| src.invalid(needle, problem);
        let indicia = src.facts(&f.citizenship_indicia)?;
        if indicia.is_empty() {
            return Err(invalid(
                "citizenship_indicia",
                "citizenship_indicia must not be empty".into(),
            ));
        }
        let mut routine = Vec::new();
        for s in &f.routine {
            let st = parse_status(text, s)?;
            if st.is_citizen_or_potential() || st.is_non_answer() {
                return Err(invalid(
                    &format!("\"{s}\""),
                    format!("'{s}' can never be answered automatically as routine"),
                ));
            }
            routine.push(st);
        }
        let mut rules = Vec::new();
        for r in &f.rule {
            let status = parse_status(text, &r.status)?;
            let at = format!("status = \"{}\"", r.status);
            if status.is_non_answer() || status == ImmigrationStatus::PotentialUsCitizen {
                return Err(invalid(
                    &at,
                    format!("'{}' is decided by code, not by a rule", r.status),
                ));
            }
            if r.all.is_empty() {
                return Err(invalid(
                    &at,
                    format!("rule for '{}' has no `all` facts", r.status),
                ));
            }
            let (all, none) = src.rule_facts(&r.status, &at, &r.all, &r.none)?;
            // A citizen status may rest only on citizenship indicia, and a removable status
            // must never rest on one.
            let uses_indicia = all.iter().any(|a| indicia.contains(a));
            if status.is_citizen_or_potential() != uses_indicia {
                return Err(invalid(
                    &at,
                    format!(
                        "rule for '{}' must {} citizenship indicia",
                        r.status,
                        if uses_indicia {
                            "not rest on"
                        } else {
                            "rest on"
                        }
                    ),
                ));
            }
            rules.push(Rule { status, all, none });
        }
        Ok(StatusRules {
            version: f.version,
            indicia,
            routine,
            rules,
        })
    }

    pub fn embedded() -> Result<Self, PolicyError> {
        Self::load(EMBEDDED_STATUS_RULES)
    }

    /// Determines the status of the person whose records these are.
    pub fn determine(&self, records: &[SourceRecord], today: NaiveDate) -> Determination {
        self.determine_facts(records.is_empty(), derive_facts(records, today))
    }

    /// Determines the status of a person encountered in the United States `today` (the
    /// subject of an IAQ: an agency has them in front of it). With a removal on record and no
    /// later record of presence, that encounter is the presence after removal; it is cited as
    /// [`THIS_QUERY`]. Otherwise the same as [`Self::determine`].
    pub fn determine_encountered(
        &self,
        records: &[SourceRecord],
        today: NaiveDate,
    ) -> Determination {
        let refs: Vec<&SourceRecord> = records.iter().collect();
        self.determine_encountered_of(&refs, today)
    }

    /// [`Self::determine_encountered`] over borrowed records (for instance two candidate
    /// persons' records taken together, without cloning them).
    pub fn determine_encountered_of(
        &self,
        records: &[&SourceRecord],
        today: NaiveDate,
    ) -> Determination {
        let mut facts = derive_facts_of(records, today);
        if facts.contains_key(&FactName::Removed)
            && !facts.contains_key(&FactName::PresentAfterRemoval)
        {
            facts.insert(
                FactName::PresentAfterRemoval,
                Fact {
                    name: FactName::PresentAfterRemoval,
                    records: vec![THIS_QUERY.to_string()],
                    note: format!("encountered in the United States on {today}, after the removal"),
                },
            );
        }
        self.determine_facts(records.is_empty(), facts)
    }

    fn determine_facts(&self, no_records: bool, facts: BTreeMap<FactName, Fact>) -> Determination {
        fn cite(f: &Fact) -> impl Iterator<Item = Citation> + '_ {
            f.records.iter().map(|id| Citation {
                record_id: id.clone(),
                fact: f.name.to_string(),
                note: f.note.clone(),
            })
        }
        let citizenship_indicia: Vec<Citation> = self
            .indicia
            .iter()
            .filter_map(|n| facts.get(n))
            .flat_map(cite)
            .collect();
        let matching: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| {
                r.all.iter().all(|f| facts.contains_key(f))
                    && !r.none.iter().any(|f| facts.contains_key(f))
            })
            .collect();

        let mut d = Determination {
            status: ImmigrationStatus::Undetermined,
            rules_version: self.version.clone(),
            basis: Vec::new(),
            citizenship_indicia,
            also_matched: Vec::new(),
            conflicts: Vec::new(),
            routine: false,
            citizenship_review_required: false,
        };

        if no_records {
            d.status = ImmigrationStatus::NoRecordFound;
            return d;
        }

        if !d.citizenship_indicia.is_empty() {
            // Safeguard: citizenship indicia decide the answer whatever else matches.
            let citizen_rule = matching.iter().find(|r| r.status.is_citizen_or_potential());
            d.status = citizen_rule
                .map(|r| r.status)
                .unwrap_or(ImmigrationStatus::PotentialUsCitizen);
            d.basis = d.citizenship_indicia.clone();
            d.citizenship_review_required = true;
            for r in matching
                .iter()
                .filter(|r| !r.status.is_citizen_or_potential())
            {
                d.also_matched.push(r.status);
                d.conflicts.push(format!(
                    "citizenship indicia alongside records supporting '{}': possibly two people's records mixed, or citizenship gained later",
                    r.status
                ));
            }
            return d;
        }

        let mut it = matching.iter();
        if let Some(first) = it.next() {
            d.status = first.status;
            d.basis = first
                .all
                .iter()
                .filter_map(|f| facts.get(f))
                .flat_map(cite)
                .collect();
            d.also_matched = it
                .map(|r| r.status)
                .filter(|s| *s != first.status)
                .collect();
            d.routine = self.routine.contains(&first.status);
        }
        d
    }

    /// Facts by name, for display next to a determination.
    pub fn facts(&self, records: &[SourceRecord], today: NaiveDate) -> BTreeMap<FactName, Fact> {
        derive_facts(records, today)
    }
}
