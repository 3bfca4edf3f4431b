//! Reference tables: field offices (AORs) and their jurisdictions, states, NCIC offense codes.
//!
//! The tables are data files under `data/reference/`, embedded at build time and validated when
//! loaded. A bad table fails loudly with its file, line and problem.

use crate::error::{FieldError, ModelError};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const AOR_CSV: &str = include_str!("../../../data/reference/aor_jurisdictions.csv");
pub const STATES_CSV: &str = include_str!("../../../data/reference/us_states.csv");
pub const OFFENSES_CSV: &str = include_str!("../../../data/reference/ncic_offenses.csv");

fn reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

fn rows(file: &str, text: &str, columns: &[&str]) -> Result<Vec<(u64, Vec<String>)>, ModelError> {
    let mut rdr = reader(text);
    let headers = rdr
        .headers()
        .map_err(|source| ModelError::Csv {
            file: file.into(),
            source,
        })?
        .clone();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| {
            headers
                .iter()
                .position(|h| h == *c)
                .ok_or_else(|| ModelError::MissingColumn {
                    file: file.into(),
                    column: (*c).into(),
                })
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|source| ModelError::Csv {
            file: file.into(),
            source,
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        out.push((
            line,
            idx.iter()
                .map(|i| rec.get(*i).unwrap_or("").to_string())
                .collect(),
        ));
    }
    Ok(out)
}

/// U.S. states and territories: USPS code <-> name.
#[derive(Debug, Clone)]
pub struct States {
    by_code: BTreeMap<String, String>,
    by_name: HashMap<String, String>,
}

impl States {
    pub fn load(text: &str) -> Result<Self, ModelError> {
        let file = "us_states.csv";
        let mut by_code = BTreeMap::new();
        let mut by_name = HashMap::new();
        for (line, r) in rows(file, text, &["code", "name"])? {
            let (code, name) = (r[0].to_ascii_uppercase(), r[1].clone());
            if code.len() != 2 || name.is_empty() {
                return Err(ModelError::Row {
                    file: file.into(),
                    line,
                    error: FieldError::new("code", "must be 2 letters with a name"),
                });
            }
            if by_code.insert(code.clone(), name.clone()).is_some() {
                return Err(ModelError::Row {
                    file: file.into(),
                    line,
                    error: FieldError::new("code", format!("{code} repeats")),
                });
            }
            by_name.insert(name.to_ascii_lowercase(), code);
        }
        Ok(States { by_code, by_name })
    }
    pub fn embedded() -> Result<Self, ModelError> {
        Self::load(STATES_CSV)
    }
    pub fn code_of(&self, name: &str) -> Option<&str> {
        self.by_name
            .get(&name.trim().to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn name_of(&self, code: &str) -> Option<&str> {
        self.by_code
            .get(&code.trim().to_ascii_uppercase())
            .map(String::as_str)
    }
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.by_code.keys().map(String::as_str)
    }
}

/// One of the 25 ERO field offices.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FieldOffice(pub String);

impl FieldOffice {
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// Which field office covers a (state, county). Split states (CA, NY, TX) are covered by
/// county; every other state by one office.
#[derive(Debug, Clone)]
pub struct AorTable {
    offices: BTreeSet<String>,
    whole_state: HashMap<String, String>,
    by_county: HashMap<(String, String), String>,
    counties_of: BTreeMap<String, Vec<String>>,
}

fn county_key(county: &str) -> String {
    let c = county.trim().to_ascii_lowercase();
    c.strip_suffix(" county").unwrap_or(&c).trim().to_string()
}

impl AorTable {
    pub fn load(text: &str, states: &States) -> Result<Self, ModelError> {
        let file = "aor_jurisdictions.csv";
        let mut t = AorTable {
            offices: BTreeSet::new(),
            whole_state: HashMap::new(),
            by_county: HashMap::new(),
            counties_of: BTreeMap::new(),
        };
        for (line, r) in rows(file, text, &["office_name", "state_name", "county_name"])? {
            let err = |field: &str, p: String| ModelError::Row {
                file: file.into(),
                line,
                error: FieldError::new(field, p),
            };
            let office = r[0].clone();
            if office.is_empty() {
                return Err(err("office_name", "is empty".into()));
            }
            let state = states
                .code_of(&r[1])
                .ok_or_else(|| err("state_name", format!("'{}' is not a known state", r[1])))?
                .to_string();
            t.offices.insert(office.clone());
            if r[2].is_empty() {
                if let Some(prev) = t.whole_state.insert(state.clone(), office.clone()) {
                    return Err(err(
                        "state_name",
                        format!("{state} is already covered by {prev}"),
                    ));
                }
            } else {
                let key = (state.clone(), county_key(&r[2]));
                if let Some(prev) = t.by_county.insert(key, office.clone()) {
                    return Err(err(
                        "county_name",
                        format!("{} is already covered by {prev}", r[2]),
                    ));
                }
                t.counties_of.entry(state).or_default().push(r[2].clone());
            }
        }
        if t.offices.len() != 25 {
            return Err(ModelError::Table {
                file: file.into(),
                problem: format!("expected 25 field offices, found {}", t.offices.len()),
            });
        }
        for code in states.codes() {
            if !t.whole_state.contains_key(code) && !t.counties_of.contains_key(code) {
                return Err(ModelError::Table {
                    file: file.into(),
                    problem: format!("state {code} has no field office"),
                });
            }
        }
        Ok(t)
    }

    pub fn embedded(states: &States) -> Result<Self, ModelError> {
        Self::load(AOR_CSV, states)
    }

    pub fn offices(&self) -> impl Iterator<Item = &str> {
        self.offices.iter().map(String::as_str)
    }

    /// The office for a state (USPS code) and county. A split state needs the county; `None`
    /// when the place is unknown, so that callers route to a person instead of guessing.
    pub fn office_for(&self, state: &str, county: &str) -> Option<FieldOffice> {
        let st = state.trim().to_ascii_uppercase();
        if let Some(o) = self.whole_state.get(&st) {
            return Some(FieldOffice(o.clone()));
        }
        self.by_county
            .get(&(st, county_key(county)))
            .map(|o| FieldOffice(o.clone()))
    }

    /// Counties listed for a split state (empty for whole-state jurisdictions).
    pub fn listed_counties(&self, state: &str) -> &[String] {
        self.counties_of
            .get(&state.to_ascii_uppercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// An NCIC offense code with its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offense {
    pub code: String,
    pub category: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct OffenseTable {
    by_code: BTreeMap<String, Offense>,
}

impl OffenseTable {
    pub fn load(text: &str) -> Result<Self, ModelError> {
        let file = "ncic_offenses.csv";
        let mut by_code = BTreeMap::new();
        for (line, r) in rows(file, text, &["code", "category", "description"])? {
            let err = |field: &str, p: String| ModelError::Row {
                file: file.into(),
                line,
                error: FieldError::new(field, p),
            };
            if r[0].len() != 4 || !r[0].chars().all(|c| c.is_ascii_digit()) {
                return Err(err("code", format!("'{}' is not 4 digits", r[0])));
            }
            if r[1].is_empty() {
                return Err(err("category", "is empty".into()));
            }
            let o = Offense {
                code: r[0].clone(),
                category: r[1].clone(),
                description: r[2].clone(),
            };
            if by_code.insert(r[0].clone(), o).is_some() {
                return Err(err("code", format!("{} repeats", r[0])));
            }
        }
        Ok(OffenseTable { by_code })
    }
    pub fn embedded() -> Result<Self, ModelError> {
        Self::load(OFFENSES_CSV)
    }
    pub fn get(&self, code: &str) -> Option<&Offense> {
        self.by_code.get(code)
    }
    pub fn all(&self) -> impl Iterator<Item = &Offense> {
        self.by_code.values()
    }
}

/// All reference tables, loaded and validated together at start.
#[derive(Debug, Clone)]
pub struct Reference {
    pub states: States,
    pub aors: AorTable,
    pub offenses: OffenseTable,
}

impl Reference {
    pub fn embedded() -> Result<Self, ModelError> {
        let states = States::embedded()?;
        let aors = AorTable::embedded(&states)?;
        Ok(Reference {
            states,
            aors,
            offenses: OffenseTable::embedded()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_load_with_25_offices() {
        let r = Reference::embedded().expect("embedded tables are valid");
        assert_eq!(r.aors.offices().count(), 25);
        assert_eq!(
            r.aors.office_for("MD", "").map(|o| o.0),
            Some("Baltimore".into())
        );
        assert_eq!(
            r.aors.office_for("NY", "Albany County").map(|o| o.0),
            Some("Buffalo".into())
        );
        assert_eq!(r.aors.office_for("TX", "Nowhere"), None);
        assert_eq!(
            r.offenses.get("1313").map(|o| o.category.as_str()),
            Some("assault")
        );
    }

    #[test]
    fn bad_tables_are_rejected_with_line() {
        let states = States::embedded().expect("valid");
        let bad = "office_name,state_name,county_name\nX,Atlantis,\n";
        let e = AorTable::load(bad, &states).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("Atlantis"), "{e}");
        let e = OffenseTable::load("code,category,description\n13,assault,x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not 4 digits"), "{e}");
    }
}
