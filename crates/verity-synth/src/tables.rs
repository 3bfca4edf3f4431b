//! The generator's data tables: name lists per culture, name variants, places, the population
//! and offense mixes, and the reference tables from `verity-model`.
//!
//! Every table is a data file embedded at build time (see `data/synth/README.md` for
//! provenance). They are parsed once per process; a bad table is a [`SynthError::Data`] naming
//! the file, line and problem.

use crate::agencies::Agencies;
use crate::SynthError;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use verity_model::{ImmigrationStatus, Reference};

const CENSUS_LAST: &str = include_str!("../../../data/names/census/dist.all.last");
const CENSUS_MALE: &str = include_str!("../../../data/names/census/dist.male.first");
const CENSUS_FEMALE: &str = include_str!("../../../data/names/census/dist.female.first");
const NICKNAMES: &str = include_str!("../../../data/names/nicknames/names.csv");
const VARIANTS: &str = include_str!("../../../data/synth/variants.csv");
const PLACES: &str = include_str!("../../../data/synth/places.csv");
const POPULATION_MIX: &str = include_str!("../../../data/synth/population_mix.csv");
const OFFENSE_MIX: &str = include_str!("../../../data/synth/offense_mix.csv");

/// The cultures whose names the generator draws. `Anglo` uses the 1990 Census lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Culture {
    Anglo,
    Hispanic,
    Arabic,
    Chinese,
    Vietnamese,
    Korean,
    Indian,
    Slavic,
    WestAfrican,
    Haitian,
}

impl Culture {
    pub const ALL: [Culture; 10] = [
        Culture::Anglo,
        Culture::Hispanic,
        Culture::Arabic,
        Culture::Chinese,
        Culture::Vietnamese,
        Culture::Korean,
        Culture::Indian,
        Culture::Slavic,
        Culture::WestAfrican,
        Culture::Haitian,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Culture::Anglo => "anglo",
            Culture::Hispanic => "hispanic",
            Culture::Arabic => "arabic",
            Culture::Chinese => "chinese",
            Culture::Vietnamese => "vietnamese",
            Culture::Korean => "korean",
            Culture::Indian => "indian",
            Culture::Slavic => "slavic",
            Culture::WestAfrican => "west_african",
            Culture::Haitian => "haitian",
        }
    }

    /// Whether documents from this culture's countries write the family name first.
    pub fn family_first(self) -> bool {
        matches!(
            self,
            Culture::Chinese | Culture::Korean | Culture::Vietnamese
        )
    }

    fn file(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Culture::Anglo => return None,
            Culture::Hispanic => (
                "cultures/hispanic.csv",
                include_str!("../../../data/synth/cultures/hispanic.csv"),
            ),
            Culture::Arabic => (
                "cultures/arabic.csv",
                include_str!("../../../data/synth/cultures/arabic.csv"),
            ),
            Culture::Chinese => (
                "cultures/chinese.csv",
                include_str!("../../../data/synth/cultures/chinese.csv"),
            ),
            Culture::Vietnamese => (
                "cultures/vietnamese.csv",
                include_str!("../../../data/synth/cultures/vietnamese.csv"),
            ),
            Culture::Korean => (
                "cultures/korean.csv",
                include_str!("../../../data/synth/cultures/korean.csv"),
            ),
            Culture::Indian => (
                "cultures/indian.csv",
                include_str!("../../../data/synth/cultures/indian.csv"),
            ),
            Culture::Slavic => (
                "cultures/slavic.csv",
                include_str!("../../../data/synth/cultures/slavic.csv"),
            ),
            Culture::WestAfrican => (
                "cultures/west_african.csv",
                include_str!("../../../data/synth/cultures/west_african.csv"),
            ),
            Culture::Haitian => (
                "cultures/haitian.csv",
                include_str!("../../../data/synth/cultures/haitian.csv"),
            ),
        })
    }
}

/// Items with integer weights, drawn in proportion to their weight.
#[derive(Debug, Clone)]
pub struct Weighted<T> {
    items: Vec<T>,
    cumulative: Vec<u64>,
}

impl<T> Default for Weighted<T> {
    fn default() -> Self {
        Weighted {
            items: Vec::new(),
            cumulative: Vec::new(),
        }
    }
}

impl<T> Weighted<T> {
    pub fn push(&mut self, item: T, weight: u64) {
        if weight == 0 {
            return;
        }
        let total = self.total() + weight;
        self.items.push(item);
        self.cumulative.push(total);
    }

    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[T] {
        &self.items
    }

    pub fn cumulative(&self) -> &[u64] {
        &self.cumulative
    }

    /// A weighted draw; `None` only for an empty list.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&T> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let x = rng.gen_range(0..total);
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.items.get(i)
    }
}

/// One name from a culture list, with male/female forms (the same for ungendered names) and
/// the original-script spelling when the list gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameForm {
    pub male: String,
    pub female: String,
    pub original_male: String,
    pub original_female: String,
}

impl NameForm {
    pub fn latin(&self, female: bool) -> &str {
        if female {
            &self.female
        } else {
            &self.male
        }
    }
    pub fn original(&self, female: bool) -> &str {
        if female {
            &self.original_female
        } else {
            &self.original_male
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CultureNames {
    pub male: Weighted<NameForm>,
    pub female: Weighted<NameForm>,
    pub family: Weighted<NameForm>,
    pub middle_male: Weighted<NameForm>,
    pub middle_female: Weighted<NameForm>,
    pub countries: Weighted<String>,
}

/// Places used for addresses and agencies.
#[derive(Debug, Clone, Default)]
pub struct Places {
    pub states: Weighted<String>,
    pub counties: Weighted<String>,
    pub localities: Weighted<String>,
    pub streets: Weighted<String>,
    pub ports: Weighted<String>,
}

/// Everything the generator reads, parsed and validated once.
#[derive(Debug)]
pub struct Tables {
    pub reference: Reference,
    pub cultures: BTreeMap<Culture, CultureNames>,
    /// Token -> other spellings in its transliteration family.
    pub transliterations: BTreeMap<String, Vec<String>>,
    /// Given name -> nicknames (Census-era English list plus our own per-culture list).
    pub nicknames: BTreeMap<String, Vec<String>>,
    pub places: Places,
    pub population: Weighted<ImmigrationStatus>,
    pub offense_categories: Weighted<String>,
    /// Offense codes by category, from the reference table.
    pub offenses_by_category: BTreeMap<String, Vec<(String, String)>>,
    pub agencies: Agencies,
}

fn data_err(file: &str, line: usize, problem: impl Into<String>) -> SynthError {
    SynthError::Data {
        file: file.to_string(),
        line,
        problem: problem.into(),
    }
}

/// Data lines of a small CSV file (header skipped, blank lines ignored), with line numbers.
/// Our own files never quote fields, so a plain split is enough and keeps parsing obvious.
fn csv_lines<'a>(
    file: &'a str,
    text: &'a str,
    header: &str,
) -> Result<impl Iterator<Item = (usize, Vec<&'a str>)> + 'a, SynthError> {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").trim();
    if first != header {
        return Err(data_err(
            file,
            1,
            format!("header is '{first}', expected '{header}'"),
        ));
    }
    Ok(lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 2, l.split(',').map(str::trim).collect())))
}

fn parse_weight(file: &str, line: usize, raw: &str) -> Result<u64, SynthError> {
    raw.parse::<u64>()
        .map_err(|_| data_err(file, line, format!("weight '{raw}' is not a whole number")))
}

fn check_name(file: &str, line: usize, name: &str) -> Result<(), SynthError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == ' ' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(data_err(
            file,
            line,
            format!("name '{name}' must be uppercase ASCII letters, spaces or hyphens"),
        ))
    }
}

fn parse_culture(file: &str, text: &str) -> Result<CultureNames, SynthError> {
    let mut c = CultureNames::default();
    for (line, cells) in csv_lines(file, text, "part,name,weight,original")? {
        if cells.len() != 4 {
            return Err(data_err(file, line, "expected 4 cells"));
        }
        let weight = parse_weight(file, line, cells[2])?;
        if cells[0] == "country" {
            if cells[1].len() != 2 || !cells[1].chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(data_err(
                    file,
                    line,
                    format!("'{}' is not an ISO country code", cells[1]),
                ));
            }
            c.countries.push(cells[1].to_string(), weight);
            continue;
        }
        let (male, female) = cells[1].split_once('|').unwrap_or((cells[1], cells[1]));
        let (om, of) = cells[3].split_once('|').unwrap_or((cells[3], cells[3]));
        check_name(file, line, male)?;
        check_name(file, line, female)?;
        let form = NameForm {
            male: male.into(),
            female: female.into(),
            original_male: om.into(),
            original_female: of.into(),
        };
        let list = match cells[0] {
            "male" => &mut c.male,
            "female" => &mut c.female,
            "family" => &mut c.family,
            "middle_m" => &mut c.middle_male,
            "middle_f" => &mut c.middle_female,
            other => return Err(data_err(file, line, format!("unknown part '{other}'"))),
        };
        list.push(form, weight);
    }
    if c.male.is_empty() || c.female.is_empty() || c.family.is_empty() || c.countries.is_empty() {
        return Err(data_err(
            file,
            0,
            "needs male, female, family and country rows",
        ));
    }
    Ok(c)
}

/// Census lists: `NAME  freq  cumulative  rank`; frequency in percent with 3 decimals.
/// Names with frequency 0.000 are left out (they cannot be weighted).
fn parse_census(file: &str, text: &str, limit: usize) -> Result<Weighted<NameForm>, SynthError> {
    let mut w = Weighted::default();
    for (i, l) in text.lines().enumerate().take(limit) {
        let mut parts = l.split_whitespace();
        let (Some(name), Some(freq)) = (parts.next(), parts.next()) else {
            return Err(data_err(file, i + 1, "expected name and frequency"));
        };
        let thousandths = freq
            .split_once('.')
            .and_then(|(a, b)| Some(a.parse::<u64>().ok()? * 1000 + b.parse::<u64>().ok()?))
            .ok_or_else(|| data_err(file, i + 1, format!("frequency '{freq}' is not N.NNN")))?;
        check_name(file, i + 1, name)?;
        w.push(
            NameForm {
                male: name.into(),
                female: name.into(),
                original_male: String::new(),
                original_female: String::new(),
            },
            thousandths,
        );
    }
    Ok(w)
}

fn add_relation(map: &mut BTreeMap<String, Vec<String>>, a: &str, b: &str) {
    if a == b {
        return;
    }
    let list = map.entry(a.to_string()).or_default();
    if !list.iter().any(|x| x == b) {
        list.push(b.to_string());
    }
}

fn load() -> Result<Tables, SynthError> {
    let reference = Reference::embedded().map_err(|e| data_err("reference", 0, e.to_string()))?;

    let mut cultures = BTreeMap::new();
    let mut anglo = CultureNames {
        male: parse_census("census/dist.male.first", CENSUS_MALE, usize::MAX)?,
        female: parse_census("census/dist.female.first", CENSUS_FEMALE, usize::MAX)?,
        family: parse_census("census/dist.all.last", CENSUS_LAST, usize::MAX)?,
        ..Default::default()
    };
    // Foreign-born people with Census (English) names: a small share from these countries.
    for (cc, w) in [("GB", 30), ("CA", 30), ("JM", 25), ("IE", 10), ("PH", 5)] {
        anglo.countries.push(cc.to_string(), w);
    }
    cultures.insert(Culture::Anglo, anglo);
    for culture in Culture::ALL {
        if let Some((file, text)) = culture.file() {
            cultures.insert(culture, parse_culture(file, text)?);
        }
    }

    let mut transliterations = BTreeMap::new();
    let mut nicknames = BTreeMap::new();
    for (line, cells) in csv_lines("variants.csv", VARIANTS, "kind,forms")? {
        if cells.len() != 2 {
            return Err(data_err("variants.csv", line, "expected 2 cells"));
        }
        let forms: Vec<&str> = cells[1].split('|').map(str::trim).collect();
        for f in &forms {
            check_name("variants.csv", line, f)?;
        }
        match cells[0] {
            "translit" => {
                for a in &forms {
                    for b in &forms {
                        add_relation(&mut transliterations, a, b);
                    }
                }
            }
            "nickname" => {
                for b in &forms[1..] {
                    add_relation(&mut nicknames, forms[0], b);
                }
            }
            other => {
                return Err(data_err(
                    "variants.csv",
                    line,
                    format!("unknown kind '{other}'"),
                ))
            }
        }
    }
    for (line, cells) in csv_lines("names.csv", NICKNAMES, "name1,relationship,name2")? {
        if cells.len() != 3 {
            return Err(data_err("nicknames/names.csv", line, "expected 3 cells"));
        }
        if cells[1] == "has_nickname" {
            let a = cells[0].to_ascii_uppercase();
            let b = cells[1 + 1].to_ascii_uppercase();
            if a.chars().all(|c| c.is_ascii_uppercase())
                && b.chars().all(|c| c.is_ascii_uppercase())
            {
                add_relation(&mut nicknames, &a, &b);
            }
        }
    }

    let mut places = Places::default();
    for (line, cells) in csv_lines("places.csv", PLACES, "kind,value,weight")? {
        if cells.len() != 3 {
            return Err(data_err("places.csv", line, "expected 3 cells"));
        }
        let w = parse_weight("places.csv", line, cells[2])?;
        let list = match cells[0] {
            "state" => {
                if reference.states.name_of(cells[1]).is_none() {
                    return Err(data_err(
                        "places.csv",
                        line,
                        format!("'{}' is not a state code", cells[1]),
                    ));
                }
                &mut places.states
            }
            "county" => &mut places.counties,
            "locality" => &mut places.localities,
            "street" => &mut places.streets,
            "port" => &mut places.ports,
            other => {
                return Err(data_err(
                    "places.csv",
                    line,
                    format!("unknown kind '{other}'"),
                ))
            }
        };
        list.push(cells[1].to_string(), w);
    }

    let mut population = Weighted::default();
    for (line, cells) in csv_lines("population_mix.csv", POPULATION_MIX, "status,weight,notes")? {
        let status = ImmigrationStatus::parse(cells.first().copied().unwrap_or(""))
            .map_err(|e| data_err("population_mix.csv", line, e.problem))?;
        if matches!(
            status,
            ImmigrationStatus::PotentialUsCitizen
                | ImmigrationStatus::NoRecordFound
                | ImmigrationStatus::Undetermined
        ) {
            return Err(data_err(
                "population_mix.csv",
                line,
                format!("{status} is an answer about records, not a true status"),
            ));
        }
        let w = parse_weight(
            "population_mix.csv",
            line,
            cells.get(1).copied().unwrap_or(""),
        )?;
        population.push(status, w);
    }

    let mut offenses_by_category: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for o in reference.offenses.all() {
        offenses_by_category
            .entry(o.category.clone())
            .or_default()
            .push((o.code.clone(), o.description.clone()));
    }
    let mut offense_categories = Weighted::default();
    for (line, cells) in csv_lines("offense_mix.csv", OFFENSE_MIX, "category,weight")? {
        if cells.len() != 2 {
            return Err(data_err("offense_mix.csv", line, "expected 2 cells"));
        }
        if !offenses_by_category.contains_key(cells[0]) {
            return Err(data_err(
                "offense_mix.csv",
                line,
                format!("'{}' is not a category of ncic_offenses.csv", cells[0]),
            ));
        }
        let w = parse_weight("offense_mix.csv", line, cells[1])?;
        offense_categories.push(cells[0].to_string(), w);
    }

    let agencies = Agencies::build(&reference, &places);
    Ok(Tables {
        reference,
        cultures,
        transliterations,
        nicknames,
        places,
        population,
        offense_categories,
        offenses_by_category,
        agencies,
    })
}

static TABLES: OnceLock<Result<Tables, SynthError>> = OnceLock::new();

/// The parsed tables (parsed on first use).
pub fn tables() -> Result<&'static Tables, SynthError> {
    match TABLES.get_or_init(load) {
        Ok(t) => Ok(t),
        Err(e) => Err(e.clone_data()),
    }
}

/// For code that has no error path: the embedded tables are validated by the test suite, and
/// `generate_world` checks them before generating anything.
pub(crate) fn tables_checked() -> &'static Tables {
    #[allow(clippy::expect_used)]
    tables().expect("embedded synth tables are valid (checked by tests and by generate_world)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn embedded_tables_load() {
        let t = tables().expect("valid tables");
        assert_eq!(t.cultures.len(), Culture::ALL.len());
        assert!(t.places.states.total() > 0);
        assert!(t
            .nicknames
            .get("WILLIAM")
            .is_some_and(|v| v.iter().any(|n| n == "BILL")));
        assert!(t
            .transliterations
            .get("MOHAMMED")
            .is_some_and(|v| v.iter().any(|n| n == "MUHAMMAD")));
        assert!(t.agencies.len() > 1000);
    }

    #[test]
    fn weighted_pick_follows_weights() {
        let mut w = Weighted::default();
        w.push("a", 9);
        w.push("b", 1);
        w.push("never", 0);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let a = (0..10_000)
            .filter(|_| w.pick(&mut rng) == Some(&"a"))
            .count();
        assert!((8_700..9_300).contains(&a), "{a}");
        assert!(Weighted::<u8>::default().pick(&mut rng).is_none());
    }

    #[test]
    fn bad_culture_file_names_line() {
        let e = parse_culture("x.csv", "part,name,weight,original\nmale,jose,1,\n")
            .expect_err("lowercase rejected");
        assert!(e.to_string().contains("x.csv line 2"), "{e}");
        let e = parse_culture("x.csv", "part,name,weight,original\nmale,JOSE,lots,\n")
            .expect_err("bad weight");
        assert!(e.to_string().contains("weight"), "{e}");
    }
}
