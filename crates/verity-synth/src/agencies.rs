//! Synthetic law-enforcement agencies with valid 9-character ORIs, one set per county.
//!
//! The agency table depends only on the reference tables and `places.csv`, never on the seed,
//! so every world shares it. ORIs follow the usual shape: state code, 3-digit county number,
//! then an agency suffix (`00` `00` for the sheriff, `NN00` for city police, `SP` for state
//! police, `FB` for federal offices, `0C` for corrections).

use crate::tables::Places;
use std::collections::BTreeMap;
use verity_model::{Ori, Reference};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgencyKind {
    Police,
    Sheriff,
    StatePolice,
    Federal,
    Corrections,
}

impl AgencyKind {
    pub fn code(self) -> &'static str {
        match self {
            AgencyKind::Police => "police",
            AgencyKind::Sheriff => "sheriff",
            AgencyKind::StatePolice => "state_police",
            AgencyKind::Federal => "federal",
            AgencyKind::Corrections => "corrections",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Agency {
    pub ori: Ori,
    pub name: String,
    pub kind: AgencyKind,
    pub state: String,
    pub county: String,
    pub field_office: String,
}

/// The agencies of one county: its sheriff (who runs the jail) and city police.
#[derive(Debug, Clone)]
pub struct County {
    pub state: String,
    pub name: String,
    pub sheriff: usize,
    pub police: Vec<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Agencies {
    pub agencies: Vec<Agency>,
    pub counties: Vec<County>,
    /// State code -> indexes into `counties`.
    pub counties_of_state: BTreeMap<String, Vec<usize>>,
}

/// Number of synthetic counties for a whole-state jurisdiction, from its population weight.
fn county_count(weight: u64) -> usize {
    (4 + weight / 3).min(40) as usize
}

fn make_ori(raw: String) -> Option<Ori> {
    Ori::parse(&raw).ok()
}

impl Agencies {
    pub fn build(reference: &Reference, places: &Places) -> Agencies {
        let mut a = Agencies::default();
        for state in reference.states.codes() {
            let listed = reference.aors.listed_counties(state);
            let counties: Vec<String> = if listed.is_empty() {
                let weight = places.weight_of_state(state);
                places
                    .counties
                    .items()
                    .iter()
                    .take(county_count(weight))
                    .cloned()
                    .collect()
            } else {
                listed.to_vec()
            };
            let office = |county: &str| {
                reference
                    .aors
                    .office_for(state, county)
                    .map(|o| o.0)
                    .unwrap_or_default()
            };
            // State police headquarters.
            if let Some(ori) = make_ori(format!("{state}SP00000")) {
                a.agencies.push(Agency {
                    ori,
                    name: format!("{state} STATE POLICE"),
                    kind: AgencyKind::StatePolice,
                    state: state.to_string(),
                    county: counties.first().cloned().unwrap_or_default(),
                    field_office: counties.first().map(|c| office(c)).unwrap_or_default(),
                });
            }
            for (n, county) in counties.iter().enumerate() {
                let num = n + 1;
                let fo = office(county);
                let upper = county.to_ascii_uppercase();
                let push = |a: &mut Agencies, ori: String, name: String, kind| {
                    let ori = make_ori(ori)?;
                    a.agencies.push(Agency {
                        ori,
                        name,
                        kind,
                        state: state.to_string(),
                        county: county.clone(),
                        field_office: fo.clone(),
                    });
                    Some(a.agencies.len() - 1)
                };
                let Some(sheriff) = push(
                    &mut a,
                    format!("{state}{num:03}0000"),
                    format!("{upper} COUNTY SHERIFF"),
                    AgencyKind::Sheriff,
                ) else {
                    continue;
                };
                // Bigger counties (listed first in places.csv, or any split-state county) get
                // more city departments.
                let police_count = 1 + (num % 3) + usize::from(n < 5);
                let mut police = Vec::new();
                for p in 1..=police_count {
                    let locality = places
                        .localities
                        .items()
                        .get((n * 7 + p * 3) % places.localities.items().len().max(1))
                        .cloned()
                        .unwrap_or_else(|| "CITY".into());
                    if let Some(i) = push(
                        &mut a,
                        format!("{state}{num:03}{p:02}00"),
                        format!("{} POLICE DEPARTMENT", locality.to_ascii_uppercase()),
                        AgencyKind::Police,
                    ) {
                        police.push(i);
                    }
                }
                if num % 4 == 1 {
                    push(
                        &mut a,
                        format!("{state}{num:03}0C00"),
                        format!("{upper} COUNTY DEPARTMENT OF CORRECTIONS"),
                        AgencyKind::Corrections,
                    );
                }
                if n == 0 {
                    push(
                        &mut a,
                        format!("{state}{num:03}FB00"),
                        format!("FEDERAL BUREAU OF INVESTIGATION {state} FIELD OFFICE"),
                        AgencyKind::Federal,
                    );
                }
                let idx = a.counties.len();
                a.counties.push(County {
                    state: state.to_string(),
                    name: county.clone(),
                    sheriff,
                    police,
                });
                a.counties_of_state
                    .entry(state.to_string())
                    .or_default()
                    .push(idx);
            }
        }
        a
    }

    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }

    /// The `agencies.csv` header.
    pub const HEADER: [&'static str; 6] =
        ["ori", "name", "kind", "state", "county", "field_office"];
}

impl Places {
    /// A state's weight in `places.csv` (0 when absent).
    pub fn weight_of_state(&self, state: &str) -> u64 {
        let mut prev = 0;
        for (item, cum) in self.states.items().iter().zip(self.states.cumulative()) {
            if item == state {
                return cum - prev;
            }
            prev = *cum;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use crate::tables::tables;

    #[test]
    fn every_agency_has_a_field_office_and_unique_ori() {
        let t = tables().expect("tables");
        let mut seen = std::collections::BTreeSet::new();
        for a in &t.agencies.agencies {
            assert!(!a.field_office.is_empty(), "{a:?}");
            assert!(seen.insert(a.ori.to_string()), "duplicate {}", a.ori);
            assert_eq!(&a.ori.as_str()[..2], a.state);
        }
        assert!(t.agencies.len() >= 2000, "{}", t.agencies.len());
        for c in &t.agencies.counties {
            assert!(t.reference.aors.office_for(&c.state, &c.name).is_some());
        }
    }
}
