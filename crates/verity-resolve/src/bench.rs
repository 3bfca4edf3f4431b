//! Synthetic identification benchmark: a gallery of identities, probes that are noisy
//! re-encounters (mated) or other people (non-mated, many of them hard negatives: same common
//! name or a variant, birth date within a year), and the accuracy/speed figures.
//!
//! Two generators make the data ([`Generator`]):
//! - [`Generator::Synth`] (the default of `verity bench resolve` and the `bench_resolve`
//!   example): people of the `verity-synth` world, enrolled with one of their records, probed
//!   with another (see [`synth`]);
//! - [`Generator::Census`] ([`generate`], kept so that earlier figures stay comparable and for
//!   the tests and examples that need a cheap population): names drawn from the 1990 U.S. Census
//!   frequency lists (data/names/census), identifiers and noise of its own.
//!
//! [`failures`] explains the mated probes the engine misses and the non-mated ones it accepts.

#[path = "bench_failures.rs"]
pub mod failures;
#[path = "bench_synth.rs"]
pub mod synth;

use crate::link::{candidate_pairs, score_pairs, weigh_pairs};
use crate::model::{Calibration, Model, Pair, TrainOptions};
use crate::record::{Prepared, Record};
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;
use verity_model::{
    ANumber, Address, FbiNumber, Identity, PartialDate, Passport, PersonName, Sex, Ssn,
};

/// A frequency-weighted list of names.
struct Pool {
    names: Vec<String>,
    cumulative: Vec<f64>,
}

impl Pool {
    fn parse(text: &str, limit: usize, filter: impl Fn(&str) -> bool) -> Pool {
        let mut names = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(n), Some(f)) = (it.next(), it.next()) else {
                continue;
            };
            if !filter(n) {
                continue;
            }
            let f: f64 = f.parse().unwrap_or(0.0);
            total += f.max(0.0005);
            names.push(n.to_string());
            cumulative.push(total);
            if names.len() >= limit {
                break;
            }
        }
        Pool { names, cumulative }
    }
    fn draw(&self, rng: &mut ChaCha8Rng) -> String {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.gen::<f64>() * total;
        let i = self
            .cumulative
            .partition_point(|&c| c < x)
            .min(self.names.len().saturating_sub(1));
        self.names.get(i).cloned().unwrap_or_else(|| "DOE".into())
    }
}

struct Pools {
    surnames: Pool,
    hispanic_surnames: Pool,
    male: Pool,
    female: Pool,
    nick: HashMap<String, Vec<String>>,
}

fn pools() -> Pools {
    let last = include_str!("../../../data/names/census/dist.all.last");
    let male = include_str!("../../../data/names/census/dist.male.first");
    let female = include_str!("../../../data/names/census/dist.female.first");
    let mut nick: HashMap<String, Vec<String>> = HashMap::new();
    for line in include_str!("../../../data/names/nicknames/names.csv")
        .lines()
        .skip(1)
    {
        let p: Vec<&str> = line.split(',').collect();
        if let [a, _, b] = p.as_slice() {
            nick.entry(a.to_ascii_uppercase())
                .or_default()
                .push(b.to_ascii_uppercase());
            nick.entry(b.to_ascii_uppercase())
                .or_default()
                .push(a.to_ascii_uppercase());
        }
    }
    let hispanic = |n: &str| {
        n.ends_with("EZ")
            || [
                "GARCIA", "RIVERA", "TORRES", "FLORES", "REYES", "CRUZ", "MORALES", "ORTIZ",
                "ROJAS", "MENDOZA", "CASTILLO", "VARGAS",
            ]
            .contains(&n)
    };
    Pools {
        surnames: Pool::parse(last, 8000, |_| true),
        hispanic_surnames: Pool::parse(last, 400, hispanic),
        male: Pool::parse(male, 1200, |_| true),
        female: Pool::parse(female, 1500, |_| true),
        nick,
    }
}

const COUNTRIES_LATAM: &[&str] = &["MX", "MX", "MX", "GT", "SV", "HN", "CU", "DO", "CO"];
const COUNTRIES_OTHER: &[&str] = &["CN", "IN", "PH", "VN", "KR", "NG", "PL", "UA", "CA", "GB"];
const REGIONS: &[&str] = &["TX", "CA", "FL", "NY", "IL", "AZ", "GA", "NJ", "WA", "NC"];

fn digits(rng: &mut ChaCha8Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// One synthetic person (the truth behind records).
#[derive(Debug, Clone)]
pub struct Person {
    pub identity: Identity,
}

fn new_person(rng: &mut ChaCha8Rng, p: &Pools) -> Person {
    let male = rng.gen_bool(0.5);
    let latino = rng.gen_bool(0.35);
    let given = if male {
        p.male.draw(rng)
    } else {
        p.female.draw(rng)
    };
    let middle = if rng.gen_bool(0.5) {
        if male {
            p.male.draw(rng)
        } else {
            p.female.draw(rng)
        }
    } else {
        String::new()
    };
    let family = if latino {
        let a = p.hispanic_surnames.draw(rng);
        if rng.gen_bool(0.4) {
            format!("{a} {}", p.hispanic_surnames.draw(rng))
        } else {
            a
        }
    } else {
        p.surnames.draw(rng)
    };
    let country = if latino {
        if rng.gen_bool(0.3) {
            "US"
        } else {
            COUNTRIES_LATAM[rng.gen_range(0..COUNTRIES_LATAM.len())]
        }
    } else if rng.gen_bool(0.8) {
        "US"
    } else {
        COUNTRIES_OTHER[rng.gen_range(0..COUNTRIES_OTHER.len())]
    };
    let us = country == "US";
    let base = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap_or_default();
    let dob = base + Duration::days(rng.gen_range(0..(55 * 365)));
    let mut ids = verity_model::Identifiers::default();
    if !us && rng.gen_bool(0.7) {
        ids.a_number =
            ANumber::parse(&format!("{}", rng.gen_range(10_000_000u32..330_000_000))).ok();
    }
    if !us && rng.gen_bool(0.5) {
        ids.passport = Passport::parse(&format!(
            "{country}:{}{}",
            char::from(b'A' + rng.gen_range(0..26u8)),
            digits(rng, 8)
        ))
        .ok();
    }
    if rng.gen_bool(if us { 0.8 } else { 0.3 }) {
        ids.ssn = Ssn::parse(&format!("{}{}", rng.gen_range(1..9u8), digits(rng, 8))).ok();
    }
    if rng.gen_bool(0.25) {
        ids.fbi_number = FbiNumber::parse(&format!(
            "{}{}",
            digits(rng, 6),
            ["AA", "BC", "KD", "ZX"][rng.gen_range(0..4)]
        ))
        .ok();
    }
    Person {
        identity: Identity {
            name: PersonName::new(&given, &middle, &family),
            aliases: Vec::new(),
            dob: Some(PartialDate::from(dob)),
            sex: Some(if male { Sex::Male } else { Sex::Female }),
            country_of_birth: country.into(),
            ids,
            address: random_address(rng),
        },
    }
}

fn random_address(rng: &mut ChaCha8Rng) -> Address {
    let town = rng.gen_range(0..300u32);
    Address {
        street_number: format!("{}", rng.gen_range(1..9999)),
        street: format!(
            "{} {}",
            ["OAK", "MAIN", "ELM", "PINE", "CEDAR", "LAKE", "HILL", "PARK"][rng.gen_range(0..8)],
            ["ST", "AVE", "RD", "DR"][rng.gen_range(0..4)]
        ),
        locality: format!("TOWN{town:03}"),
        postcode: format!("{:05}", 10000 + town * 97 + rng.gen_range(0..5)),
        region: REGIONS[(town as usize) % REGIONS.len()].into(),
        county: String::new(),
    }
}

fn typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut b: Vec<u8> = s.bytes().collect();
    if b.len() < 3 {
        return s.to_string();
    }
    let i = rng.gen_range(1..b.len());
    match rng.gen_range(0..3) {
        0 => b[i] = b'A' + rng.gen_range(0..26u8),
        1 => {
            b.remove(i);
        }
        _ => b.swap(i - 1, i),
    }
    String::from_utf8(b).unwrap_or_else(|_| s.to_string())
}

fn digit_typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut b: Vec<u8> = s.bytes().collect();
    if b.len() < 2 {
        return s.to_string();
    }
    let i = rng.gen_range(0..b.len());
    if b[i].is_ascii_digit() {
        b[i] = b'0' + (b[i] - b'0' + rng.gen_range(1..10u8)) % 10;
    }
    String::from_utf8(b).unwrap_or_else(|_| s.to_string())
}

/// A noisy record of `p` as another agency would have keyed it.
fn perturb(rng: &mut ChaCha8Rng, pools: &Pools, p: &Person) -> Identity {
    let mut i = p.identity.clone();
    let n = &mut i.name;
    let r: f64 = rng.gen();
    if r < 0.12 {
        if let Some(v) = pools.nick.get(&n.given).filter(|v| !v.is_empty()) {
            n.given = v[rng.gen_range(0..v.len())].clone();
        }
    } else if r < 0.20 {
        n.given = typo(rng, &n.given);
    } else if r < 0.23 {
        n.given = n.given.chars().take(1).collect();
    }
    let r: f64 = rng.gen();
    if n.family.contains(' ') && r < 0.35 {
        n.family = n.family.split(' ').next().unwrap_or("").to_string();
    } else if r < 0.10 {
        n.family = typo(rng, &n.family);
    }
    if rng.gen_bool(0.03) {
        std::mem::swap(&mut n.given, &mut n.family);
    }
    let r: f64 = rng.gen();
    if r < 0.5 {
        n.middle.clear();
    } else if r < 0.6 {
        n.middle = n.middle.chars().take(1).collect();
    }
    if let Some(d) = i.dob {
        let r: f64 = rng.gen();
        i.dob = if r < 0.68 {
            Some(d)
        } else if r < 0.74 {
            match (d.month, d.day) {
                (Some(m), Some(dd)) if dd <= 12 && dd != m => PartialDate::full(d.year, dd, m).ok(),
                _ => Some(d),
            }
        } else if r < 0.80 {
            PartialDate::new(
                if rng.gen_bool(0.5) {
                    d.year + 1
                } else {
                    d.year - 1
                },
                d.month,
                d.day,
            )
            .ok()
            .or(Some(d))
        } else if r < 0.86 {
            PartialDate::parse_iso(&digit_typo(rng, &d.to_string()))
                .ok()
                .or(Some(d))
        } else if r < 0.91 {
            PartialDate::full(d.year, 1, 1).ok()
        } else if r < 0.94 {
            PartialDate::new(d.year, None, None).ok()
        } else if r < 0.97 {
            None
        } else {
            Some(d)
        };
    }
    if rng.gen_bool(0.05) {
        i.sex = None;
    }
    if rng.gen_bool(0.15) {
        i.country_of_birth.clear();
    }
    let ids = &mut i.ids;
    if rng.gen_bool(0.45) {
        ids.a_number = None;
    } else if let Some(a) = ids.a_number.as_ref().filter(|_| rng.gen_bool(0.06)) {
        ids.a_number = ANumber::parse(&digit_typo(rng, a.as_str())).ok();
    }
    if rng.gen_bool(0.5) {
        ids.passport = None;
    } else if let Some(pp) = ids.passport.as_ref().filter(|_| rng.gen_bool(0.3)) {
        // renewed: same country, new number
        ids.passport = Passport::parse(&format!(
            "{}:{}{}",
            pp.country,
            char::from(b'A' + rng.gen_range(0..26u8)),
            digits(rng, 8)
        ))
        .ok();
    }
    if rng.gen_bool(0.5) {
        ids.ssn = None;
    } else if let Some(s) = ids.ssn.as_ref().filter(|_| rng.gen_bool(0.03)) {
        ids.ssn = Ssn::parse(&digit_typo(rng, s.as_str())).ok();
    }
    if rng.gen_bool(0.4) {
        ids.fbi_number = None;
    }
    let r: f64 = rng.gen();
    if r < 0.45 {
        i.address = random_address(rng);
    } else if r < 0.65 {
        i.address = Address::default();
    }
    i
}

/// A different person who looks like `p`: same (or variant) common name, same sex and
/// country, birth date 1–365 days away, own identifiers and address.
fn lookalike(rng: &mut ChaCha8Rng, pools: &Pools, p: &Person) -> Person {
    let mut other = new_person(rng, pools);
    let mut name = p.identity.name.clone();
    name.middle = other.identity.name.middle.clone();
    if rng.gen_bool(0.2) {
        if let Some(v) = pools.nick.get(&name.given).filter(|v| !v.is_empty()) {
            name.given = v[rng.gen_range(0..v.len())].clone();
        }
    }
    other.identity.name = name;
    other.identity.sex = p.identity.sex;
    other.identity.country_of_birth = p.identity.country_of_birth.clone();
    if let Some(d) = p.identity.dob.and_then(|d| d.to_naive()) {
        let shift = rng.gen_range(1..=365) * if rng.gen_bool(0.5) { 1 } else { -1 };
        other.identity.dob = Some(PartialDate::from(d + Duration::days(shift)));
    }
    if other.identity.country_of_birth == "US" {
        other.identity.ids.a_number = None;
        other.identity.ids.passport = None;
    }
    other
}

/// The generated benchmark data.
#[derive(Debug, Clone)]
pub struct World {
    pub gallery: Vec<Record>,
    pub probes: Vec<Record>,
    /// Gallery index of each probe's mate (None for non-mated probes).
    pub mate: Vec<Option<u32>>,
    pub hard_negative: Vec<bool>,
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub identities: usize,
    pub probes: usize,
    pub seed: u64,
    /// Share of probes that are hard negatives (≥ 0.3 by design).
    pub hard_negative_share: f64,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            identities: 20_000,
            probes: 4_000,
            seed: 1,
            hard_negative_share: 0.35,
        }
    }
}

/// Which generator makes the benchmark data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Generator {
    /// People of the `verity-synth` world and their records (see [`synth`]).
    #[default]
    Synth,
    /// The Census-names stand-in of sessions 1–3 ([`generate`]).
    Census,
}

impl Generator {
    /// `synth` or `census`.
    pub fn parse(name: &str) -> Option<Generator> {
        match name.trim().to_ascii_lowercase().as_str() {
            "synth" => Some(Generator::Synth),
            "census" => Some(Generator::Census),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Generator::Synth => "synth",
            Generator::Census => "census",
        }
    }
}

/// Generates with `generator`; the synth generator also returns what explains its probes.
pub fn generate_with(generator: Generator, cfg: &BenchConfig) -> (World, Option<synth::SynthInfo>) {
    match generator {
        Generator::Synth => {
            let (world, info) = synth::generate_synth(cfg);
            (world, Some(info))
        }
        Generator::Census => (generate(cfg), None),
    }
}

fn is_common(pools: &Pools, n: &PersonName) -> bool {
    let top = |pool: &Pool, s: &str, k: usize| pool.names.iter().take(k).any(|x| x == s);
    // a compound surname is not a common name, even when both parts are
    let fam = n.family.as_str();
    (top(&pools.male, &n.given, 60) || top(&pools.female, &n.given, 60))
        && (top(&pools.surnames, fam, 150) || top(&pools.hispanic_surnames, fam, 25))
}

/// Generates gallery and probes: half the probes mated, the rest non-mated with
/// `hard_negative_share` of all probes being hard negatives. Same config gives the same data.
pub fn generate(cfg: &BenchConfig) -> World {
    let pools = pools();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let people: Vec<Person> = (0..cfg.identities)
        .map(|_| new_person(&mut rng, &pools))
        .collect();
    let gallery: Vec<Record> = people
        .iter()
        .enumerate()
        .map(|(k, p)| Record::new(format!("g{k}"), p.identity.clone()))
        .collect();
    let common: Vec<usize> = (0..people.len())
        .filter(|&k| is_common(&pools, &people[k].identity.name))
        .collect();
    let n_mated = cfg.probes / 2;
    let n_hard =
        ((cfg.probes as f64 * cfg.hard_negative_share).ceil() as usize).min(cfg.probes - n_mated);
    let mut probes = Vec::with_capacity(cfg.probes);
    let mut mate = Vec::with_capacity(cfg.probes);
    let mut hard = Vec::with_capacity(cfg.probes);
    for k in 0..cfg.probes {
        let (identity, m, h) = if k < n_mated {
            let g = rng.gen_range(0..people.len());
            (perturb(&mut rng, &pools, &people[g]), Some(g as u32), false)
        } else if k < n_mated + n_hard && !common.is_empty() {
            let g = common[rng.gen_range(0..common.len())];
            let other = lookalike(&mut rng, &pools, &people[g]);
            (perturb(&mut rng, &pools, &other), None, true)
        } else {
            let other = new_person(&mut rng, &pools);
            (perturb(&mut rng, &pools, &other), None, false)
        };
        probes.push(Record::new(format!("p{k}"), identity));
        mate.push(m);
        hard.push(h);
    }
    // interleave deterministically so that file order does not reveal the probe kind
    let mut order: Vec<usize> = (0..probes.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    let probes2: Vec<Record> = order
        .iter()
        .enumerate()
        .map(|(new, &old)| Record {
            id: format!("p{new}"),
            ..probes[old].clone()
        })
        .collect();
    World {
        gallery,
        mate: order.iter().map(|&o| mate[o]).collect(),
        hard_negative: order.iter().map(|&o| hard[o]).collect(),
        probes: probes2,
    }
}

pub const CSV_HEADER: &str = "rec_id,given_name,middle_name,family_name,dob,sex,country_of_birth,a_number,passport,fbi_number,ssn,street_number,street,locality,postcode,region";

/// [`CSV_HEADER`] and the FIN and state id columns the record systems' files carry
/// (`synth::files_carry_fin_and_state_id`).
pub const CSV_HEADER_WITH_IDS: &str = "rec_id,given_name,middle_name,family_name,dob,sex,country_of_birth,a_number,passport,fbi_number,ssn,street_number,street,locality,postcode,region,fin,state_id";

/// Schema TOML for the files [`write_csv_with`] writes with the FIN and state id (the schema
/// has no state-id role: the column goes to `other_id`, an identifier compared exactly).
pub const SCHEMA_TOML_WITH_IDS: &str = "id = \"rec_id\"\ngiven_name = \"given_name\"\nmiddle_name = \"middle_name\"\nfamily_name = \"family_name\"\ndob = \"dob\"\nsex = \"sex\"\ncountry_of_birth = \"country_of_birth\"\na_number = \"a_number\"\npassport = \"passport\"\nfbi_number = \"fbi_number\"\nssn = \"ssn\"\nstreet_number = \"street_number\"\nstreet = \"street\"\nlocality = \"locality\"\npostcode = \"postcode\"\nregion = \"region\"\nfin = \"fin\"\nother_id = \"state_id\"\n";

/// The schema of the files [`write_csv_with`] writes.
pub fn schema_toml(fin_and_state_id: bool) -> &'static str {
    if fin_and_state_id {
        SCHEMA_TOML_WITH_IDS
    } else {
        SCHEMA_TOML
    }
}

/// Schema TOML for the files [`write_csv`] writes.
pub const SCHEMA_TOML: &str = "id = \"rec_id\"\ngiven_name = \"given_name\"\nmiddle_name = \"middle_name\"\nfamily_name = \"family_name\"\ndob = \"dob\"\nsex = \"sex\"\ncountry_of_birth = \"country_of_birth\"\na_number = \"a_number\"\npassport = \"passport\"\nfbi_number = \"fbi_number\"\nssn = \"ssn\"\nstreet_number = \"street_number\"\nstreet = \"street\"\nlocality = \"locality\"\npostcode = \"postcode\"\nregion = \"region\"\n";

/// A CSV field, quoted only when it holds a comma, a quote or a line break (generated values
/// normally hold none, so the files stay byte-identical to the unquoted form).
fn csv_field(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains([',', '"', '\n', '\r']) {
        std::borrow::Cow::Owned(format!("\"{}\"", value.replace('"', "\"\"")))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// Records as CSV with the [`CSV_HEADER`] columns.
pub fn write_csv(records: &[Record]) -> String {
    write_csv_with(records, false)
}

/// Records as CSV: the [`CSV_HEADER_WITH_IDS`] columns when `fin_and_state_id` (the state id
/// is the record's `other_id`), else the [`CSV_HEADER`] ones.
pub fn write_csv_with(records: &[Record], fin_and_state_id: bool) -> String {
    let mut s = String::from(if fin_and_state_id {
        CSV_HEADER_WITH_IDS
    } else {
        CSV_HEADER
    });
    s.push('\n');
    for r in records {
        let i = &r.identity;
        let o = |x: Option<String>| x.unwrap_or_default();
        let q = |x: &str| csv_field(x).into_owned();
        let dob = i.dob.map(|d| {
            if d.is_complete() {
                d.to_string()
            } else {
                String::new()
            }
        });
        let _ = write!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            q(&r.id),
            q(&i.name.given),
            q(&i.name.middle),
            q(&i.name.family),
            o(dob),
            i.sex.map(|x| x.code().to_string()).unwrap_or_default(),
            q(&i.country_of_birth),
            q(&o(i.ids.a_number.as_ref().map(|x| x.to_string()))),
            q(&o(i.ids.passport.as_ref().map(|x| x.to_string()))),
            q(&o(i.ids.fbi_number.as_ref().map(|x| x.to_string()))),
            q(&o(i.ids.ssn.as_ref().map(|x| x.to_string()))),
            q(&i.address.street_number),
            q(&i.address.street),
            q(&i.address.locality),
            q(&i.address.postcode),
            q(&i.address.region)
        );
        if fin_and_state_id {
            let _ = write!(
                s,
                ",{},{}",
                q(&o(i.ids.fin.as_ref().map(|x| x.to_string()))),
                q(r.other_id.as_deref().unwrap_or(""))
            );
        }
        s.push('\n');
    }
    s
}

/// Ground truth for the probes: `probe_id,gallery_id,hard_negative`.
pub fn truth_csv(w: &World) -> String {
    let mut s = String::from("probe_id,gallery_id,hard_negative\n");
    for (k, p) in w.probes.iter().enumerate() {
        let g = w.mate[k]
            .map(|g| w.gallery[g as usize].id.clone())
            .unwrap_or_default();
        let _ = writeln!(s, "{},{},{}", p.id, g, u8::from(w.hard_negative[k]));
    }
    s
}

/// Accuracy and speed figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// `synth` or `census`.
    pub generator: String,
    pub gallery: usize,
    pub probes: usize,
    pub mated: usize,
    pub hard_negatives: usize,
    pub candidate_pairs: usize,
    pub blocking_recall: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub fnir_at_fpir_1pct: f64,
    pub fnir_at_fpir_01pct: f64,
    pub hard_negatives_above_half: usize,
    pub ece_prior_clip: f64,
    pub ece_platt: f64,
    pub calibration: String,
    pub train_seconds: f64,
    pub score_seconds: f64,
    pub link_seconds: f64,
    pub em_iterations: usize,
    /// Final log2-odds above which a probe's best candidate is accepted at FPIR ≤ 1% / 0.1%.
    pub threshold_log2_odds_at_fpir_1pct: f64,
    pub threshold_log2_odds_at_fpir_01pct: f64,
}

/// Expected calibration error over 10 equal-width bins.
pub fn ece(scored: &[(f64, bool)]) -> f64 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for &(p, y) in scored {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += f64::from(u8::from(y));
        bins[b].2 += 1;
    }
    let n = scored.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|b| (b.0 - b.1).abs() / n)
        .sum()
}

/// FNIR at the lowest threshold whose FPIR is at most `max_fpir`.
/// `top` holds, per probe, (best score, best candidate is the mate, is mated).
pub fn fnir_at_fpir(top: &[(f64, bool, bool)], max_fpir: f64) -> f64 {
    let t = threshold_at_fpir(top, max_fpir);
    let mated: Vec<&(f64, bool, bool)> = top.iter().filter(|t| t.2).collect();
    let misses = mated.iter().filter(|m| !(m.1 && m.0 > t)).count();
    misses as f64 / mated.len().max(1) as f64
}

/// The lowest threshold whose FPIR is at most `max_fpir`: scores strictly above it are
/// accepted (it is the (allowed+1)-th best non-mated score). Same `top` as [`fnir_at_fpir`].
pub fn threshold_at_fpir(top: &[(f64, bool, bool)], max_fpir: f64) -> f64 {
    let mut non: Vec<f64> = top.iter().filter(|t| !t.2).map(|t| t.0).collect();
    non.sort_by(|a, b| b.total_cmp(a));
    let allowed = (max_fpir * non.len() as f64).floor() as usize;
    non.get(allowed).copied().unwrap_or(f64::NEG_INFINITY)
}

/// What a run computed, kept for the failure analysis ([`failures`]).
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub gallery: Vec<Prepared>,
    pub probes: Vec<Prepared>,
    /// Candidate pairs (probe, gallery) and their final log2-odds.
    pub pairs: Vec<Pair>,
    pub weights: Vec<f64>,
    /// Per probe: the best candidate's final log2-odds and gallery index.
    pub best: Vec<(f64, Option<u32>)>,
    /// Log2-odds thresholds of FPIR ≤ 1% and ≤ 0.1% (accepted when strictly above).
    pub threshold_1pct: f64,
    pub threshold_01pct: f64,
}

/// Runs the benchmark on a generated world: EM training, calibration on a separately seeded
/// labelled world (Census generator), identification and the figures.
pub fn run(cfg: &BenchConfig, world: &World) -> (BenchReport, Model) {
    let (report, model, _) = run_with(Generator::Census, cfg, world);
    (report, model)
}

/// [`run`] with the calibration world made by `generator` (the one that made `world`), also
/// returning what the failure analysis needs.
pub fn run_with(
    generator: Generator,
    cfg: &BenchConfig,
    world: &World,
) -> (BenchReport, Model, Evaluation) {
    let t0 = Instant::now();
    let gp: Vec<Prepared> = world.gallery.iter().map(Prepared::from_record).collect();
    let pp: Vec<Prepared> = world.probes.iter().map(Prepared::from_record).collect();
    let pairs = candidate_pairs(&pp, Some(&gp), 2000);
    let opts = TrainOptions {
        seed: cfg.seed,
        ..TrainOptions::default()
    };
    let mut model = Model::train(&pp, Some(&gp), &pairs, &opts);
    let train_seconds = t0.elapsed().as_secs_f64();

    let labelled = |w: &World, ps: &[Pair]| -> Vec<bool> {
        ps.iter()
            .map(|&(i, j)| w.mate[i as usize] == Some(j))
            .collect()
    };
    // calibration world: different seed, a quarter of the size, labels used only for Platt
    let cal_cfg = BenchConfig {
        identities: (cfg.identities / 4).max(50),
        probes: (cfg.probes / 4).max(20),
        seed: cfg.seed.wrapping_add(7919),
        ..cfg.clone()
    };
    let (cal, _) = generate_with(generator, &cal_cfg);
    let cgp: Vec<Prepared> = cal.gallery.iter().map(Prepared::from_record).collect();
    let cpp: Vec<Prepared> = cal.probes.iter().map(Prepared::from_record).collect();
    let cpairs = candidate_pairs(&cpp, Some(&cgp), 2000);
    let clabels = labelled(&cal, &cpairs);
    let raw: Vec<(f64, bool)> = cpairs
        .iter()
        .zip(&clabels)
        .map(|(&(i, j), &y)| (model.raw_weight(&cpp[i as usize], &cgp[j as usize]), y))
        .collect();

    let labels = labelled(world, &pairs);
    let before = score_pairs(&model, &pp, Some(&gp), &pairs);
    let ece_prior_clip = ece(&before
        .iter()
        .copied()
        .zip(labels.iter().copied())
        .collect::<Vec<_>>());
    model.fit_platt(&raw);

    let t1 = Instant::now();
    let weights = weigh_pairs(&model, &pp, Some(&gp), &pairs);
    let score_seconds = t1.elapsed().as_secs_f64();
    let scores: Vec<f64> = weights
        .iter()
        .map(|w| 1.0 / (1.0 + (-w * std::f64::consts::LN_2).exp()))
        .collect();
    let ece_platt = ece(&scores
        .iter()
        .copied()
        .zip(labels.iter().copied())
        .collect::<Vec<_>>());

    // best candidate per probe by final log2-odds (probabilities saturate near 1)
    let mut best: Vec<(f64, Option<u32>)> = vec![(f64::NEG_INFINITY, None); pp.len()];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (((&(i, j), &p), &w), &y) in pairs.iter().zip(&scores).zip(&weights).zip(&labels) {
        let b = &mut best[i as usize];
        if b.1.is_none() || w > b.0 || (w == b.0 && Some(j) < b.1) {
            *b = (w, Some(j));
        }
        if p >= 0.5 {
            if y {
                tp += 1
            } else {
                fp += 1
            }
        }
    }
    let mated = world.mate.iter().filter(|m| m.is_some()).count();
    let in_candidates = {
        let mut found = vec![false; pp.len()];
        for (&(i, _), &y) in pairs.iter().zip(&labels) {
            if y {
                found[i as usize] = true;
            }
        }
        found.iter().filter(|f| **f).count()
    };
    let top: Vec<(f64, bool, bool)> = best
        .iter()
        .enumerate()
        .map(|(k, b)| {
            (
                b.0,
                b.1.is_some() && b.1 == world.mate[k],
                world.mate[k].is_some(),
            )
        })
        .collect();
    // probability >= 0.5 is log2-odds >= 0
    let hard_above = best
        .iter()
        .zip(&world.hard_negative)
        .filter(|(b, h)| **h && b.0 >= 0.0)
        .count();
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / mated.max(1) as f64;
    let threshold_1pct = threshold_at_fpir(&top, 0.01);
    let threshold_01pct = threshold_at_fpir(&top, 0.001);
    let report = BenchReport {
        generator: generator.name().into(),
        gallery: world.gallery.len(),
        probes: world.probes.len(),
        mated,
        hard_negatives: world.hard_negative.iter().filter(|h| **h).count(),
        candidate_pairs: pairs.len(),
        blocking_recall: in_candidates as f64 / mated.max(1) as f64,
        precision,
        recall,
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        fnir_at_fpir_1pct: fnir_at_fpir(&top, 0.01),
        fnir_at_fpir_01pct: fnir_at_fpir(&top, 0.001),
        hard_negatives_above_half: hard_above,
        ece_prior_clip,
        ece_platt,
        calibration: match model.calibration {
            Calibration::Platt { a, b, fitted_pairs } => format!(
                "platt a={a:.3} b={b:.3} on {fitted_pairs} labelled pairs (seed {})",
                cal_cfg.seed
            ),
            Calibration::PriorClip { .. } => "prior+clip".into(),
        },
        train_seconds,
        score_seconds,
        link_seconds: train_seconds + score_seconds,
        em_iterations: model.training.em_iterations,
        threshold_log2_odds_at_fpir_1pct: threshold_1pct,
        threshold_log2_odds_at_fpir_01pct: threshold_01pct,
    };
    let evaluation = Evaluation {
        gallery: gp,
        probes: pp,
        pairs,
        weights,
        best,
        threshold_1pct,
        threshold_01pct,
    };
    (report, model, evaluation)
}

/// The machine line printed with every figure: threads, CPU model, load average, memory.
pub fn machine_line() -> String {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let cpu = verity_model::machine::cpu_model(
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
    );
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    let mem_kib = |key: &str, text: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = |k: Option<f64>| k.map_or("?".to_string(), |v| format!("{:.1}", v / 1_048_576.0));
    format!(
        "{threads} threads, {cpu}, load average {load}, memory {} GiB total / {} GiB available",
        gib(mem_kib("MemTotal:", &meminfo)),
        gib(mem_kib("MemAvailable:", &meminfo))
    )
}

/// The human-readable figures of a run (data sizes, accuracy, time), as both `verity bench
/// resolve` and the `bench_resolve` example print them.
pub fn summary(report: &BenchReport, info: Option<&synth::SynthInfo>) -> String {
    let mut s = String::new();
    let non_mated = report.probes - report.mated;
    let _ = writeln!(
        s,
        "data ({} generator): gallery {} records, {} probes: {} mated, {} non-mated of which {} hard negatives ({:.1}% of probes)",
        report.generator,
        report.gallery,
        report.probes,
        report.mated,
        non_mated,
        report.hard_negatives,
        100.0 * report.hard_negatives as f64 / report.probes.max(1) as f64
    );
    if let Some(i) = info {
        let st = &i.stats;
        let _ = writeln!(
            s,
            "  world: {} persons scanned for the gallery ({} without records, {} with an earlier gallery person's name and birth date skipped); {} gallery persons with a common name",
            st.persons_scanned, st.skipped_without_records, st.skipped_same_name_and_dob, st.common_name_persons
        );
        let _ = writeln!(
            s,
            "  mated probes: {} another record of the person, {} perturbed truth (one-record persons); look-alike draws with the same birth date redrawn: {}; other non-mated with a same-name gallery person born within a year: {}",
            st.mated_from_other_record, st.mated_from_perturb, st.lookalike_same_dob_redrawn, st.other_with_namesake_within_a_year
        );
    }
    let _ = writeln!(
        s,
        "blocking: {} candidate pairs, mate among candidates for {:.2}% of mated probes",
        report.candidate_pairs,
        100.0 * report.blocking_recall
    );
    let _ = writeln!(
        s,
        "pairwise at threshold 0.5: precision {:.4}  recall {:.4}  F1 {:.4}",
        report.precision, report.recall, report.f1
    );
    let _ = writeln!(
        s,
        "FNIR at FPIR <= 1%:   {:.4}   (threshold log2-odds {:.2})",
        report.fnir_at_fpir_1pct, report.threshold_log2_odds_at_fpir_1pct
    );
    let _ = writeln!(
        s,
        "FNIR at FPIR <= 0.1%: {:.4}   (threshold log2-odds {:.2})",
        report.fnir_at_fpir_01pct, report.threshold_log2_odds_at_fpir_01pct
    );
    let _ = writeln!(
        s,
        "hard negatives scoring >= 0.5: {} of {} ({:.2} per 1000)",
        report.hard_negatives_above_half,
        report.hard_negatives,
        1000.0 * report.hard_negatives_above_half as f64 / report.hard_negatives.max(1) as f64
    );
    let _ = writeln!(
        s,
        "calibration: {}; ECE over candidate pairs: prior+clip {:.4}, calibrated {:.4}",
        report.calibration, report.ece_prior_clip, report.ece_platt
    );
    let _ = write!(
        s,
        "time: train (prepare + block + u sample + EM, {} iterations) {:.2}s, score {:.2}s",
        report.em_iterations, report.train_seconds, report.score_seconds
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_has_the_requested_mix() {
        let cfg = BenchConfig {
            identities: 300,
            probes: 100,
            seed: 3,
            hard_negative_share: 0.35,
        };
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(write_csv(&a.probes), write_csv(&b.probes));
        assert_eq!(a.mate.iter().filter(|m| m.is_some()).count(), 50);
        assert!(a.hard_negative.iter().filter(|h| **h).count() >= 30);
    }

    fn synth_config() -> BenchConfig {
        BenchConfig {
            identities: 300,
            probes: 100,
            seed: 3,
            hard_negative_share: 0.35,
        }
    }

    #[test]
    fn synth_generation_is_deterministic() {
        let cfg = synth_config();
        let (a, ai) = generate_with(Generator::Synth, &cfg);
        let (b, bi) = generate_with(Generator::Synth, &cfg);
        assert_eq!(write_csv(&a.gallery), write_csv(&b.gallery));
        assert_eq!(write_csv(&a.probes), write_csv(&b.probes));
        assert_eq!(truth_csv(&a), truth_csv(&b));
        assert_eq!(ai.map(|i| i.stats), bi.map(|i| i.stats));
        let (c, _) = generate_with(Generator::Synth, &BenchConfig { seed: 4, ..cfg });
        assert_ne!(write_csv(&a.probes), write_csv(&c.probes));
    }

    #[test]
    fn synth_generation_has_the_requested_mix() {
        let cfg = synth_config();
        let (w, info) = generate_with(Generator::Synth, &cfg);
        let info = info.expect("synth generator explains its probes");
        assert_eq!(w.gallery.len(), 300);
        assert_eq!(w.probes.len(), 100);
        assert_eq!(w.mate.iter().filter(|m| m.is_some()).count(), 50);
        let hard = w.hard_negative.iter().filter(|h| **h).count();
        assert_eq!(hard, 35);
        assert!(hard as f64 >= 0.3 * w.probes.len() as f64);
        assert_eq!(info.origin.len(), 100);
        // ids are the ones the Splink script expects
        assert!(w.gallery.iter().all(|r| r.id.starts_with('g')));
        assert!(w.probes.iter().all(|r| r.id.starts_with('p')));
        for (k, o) in info.origin.iter().enumerate() {
            assert_eq!(w.hard_negative[k], o.kind == synth::ProbeKind::HardNegative);
            match (w.mate[k], o.kind) {
                (Some(g), synth::ProbeKind::Mated) => {
                    // a re-encounter of the very person enrolled as that gallery record
                    assert_eq!(info.gallery_person[g as usize], o.person_id);
                }
                (None, synth::ProbeKind::HardNegative) => {
                    let g = info
                        .gallery_person
                        .iter()
                        .position(|p| *p == o.person_id)
                        .expect("target in the gallery");
                    let target = &info.gallery_truth[g];
                    let days = |i: &Identity| i.dob.and_then(|d| d.to_naive()).expect("full date");
                    let apart = (days(target) - days(&o.truth)).num_days().abs();
                    assert!((1..=365).contains(&apart), "{apart} days apart");
                    assert_eq!(target.sex, o.truth.sex);
                    assert!(
                        target.name.given == o.truth.name.given
                            || target.name.family == o.truth.name.family,
                        "{:?} vs {:?}",
                        target.name,
                        o.truth.name
                    );
                    assert!(o.donor_id.is_some());
                }
                (None, synth::ProbeKind::OtherNonMated) => {
                    assert!(!info.gallery_person.contains(&o.person_id));
                }
                (m, kind) => panic!("probe {k}: mate {m:?} with kind {kind:?}"),
            }
        }
        // a hard negative's look-alike target has a common name
        assert!(info.stats.common_name_persons > 0);
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        let mut r = Record::new("g0", Identity::default());
        r.identity.address.street = "MAIN ST, APT 4".into();
        r.identity.name.family = "O\"NEIL".into();
        let text = write_csv(&[r]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader
            .records()
            .next()
            .expect("one row")
            .expect("valid CSV");
        assert_eq!(row.len(), 16);
        assert_eq!(&row[3], "O\"NEIL");
        assert_eq!(&row[12], "MAIN ST, APT 4");
    }

    #[test]
    fn failure_analysis_counts_what_fnir_counts() {
        let cfg = synth_config();
        let (w, info) = generate_with(Generator::Synth, &cfg);
        let (report, model, eval) = run_with(Generator::Synth, &cfg, &w);
        let analysis = failures::analyse(&w, info.as_ref(), &model, &eval, 2);
        assert_eq!(analysis.mated, report.mated);
        let misses_01: usize = analysis.misses_01pct.values().sum();
        let misses_1: usize = analysis.misses_1pct.values().sum();
        let expected = |fnir: f64| (fnir * report.mated as f64).round() as usize;
        assert_eq!(misses_01, expected(report.fnir_at_fpir_01pct));
        assert_eq!(misses_1, expected(report.fnir_at_fpir_1pct));
        assert_eq!(
            analysis.misses_identifier_agrees
                + analysis.misses_identifier_disagrees
                + analysis.misses_no_common_identifier,
            misses_01
        );
        // 50 non-mated probes: FPIR <= 0.1% accepts none, so the threshold is the best one
        let first = analysis.det.first().expect("non-mated probes scored");
        assert_eq!(first.1, 0);
        assert_eq!(first.2, report.fnir_at_fpir_01pct);
        let text = analysis.render();
        assert!(text.contains("missed mated probes at FPIR <= 0.1%"));
        assert!(text.contains("best-scoring non-mated probe"));
    }

    #[test]
    fn synth_records_are_exactly_what_the_files_carry() {
        let (w, _) = generate_with(Generator::Synth, &synth_config());
        let ids = synth::files_carry_fin_and_state_id();
        let schema = crate::schema::Schema::parse(schema_toml(ids)).expect("own schema parses");
        for records in [&w.gallery, &w.probes] {
            let text = write_csv_with(records, ids);
            let (back, skipped) =
                crate::schema::read_records(text.as_bytes(), "bench.csv", &schema, false)
                    .expect("own CSV reads");
            assert!(skipped.is_empty());
            assert_eq!(back.len(), records.len());
            for (a, b) in records.iter().zip(&back) {
                assert_eq!(a, b, "{}", a.id);
            }
        }
    }

    #[test]
    fn generator_names_parse() {
        assert_eq!(Generator::parse("synth"), Some(Generator::Synth));
        assert_eq!(Generator::parse(" Census "), Some(Generator::Census));
        assert_eq!(Generator::parse("other"), None);
        assert_eq!(Generator::default(), Generator::Synth);
    }

    #[test]
    fn fnir_at_fpir_counts_misses() {
        let top = vec![
            (0.9, true, true),
            (0.2, true, true),
            (0.5, false, false),
            (0.1, false, false),
        ];
        assert_eq!(fnir_at_fpir(&top, 0.0), 0.5);
        assert_eq!(fnir_at_fpir(&top, 0.5), 0.0);
        assert_eq!(fnir_at_fpir(&top, 1.0), 0.0);
    }
}
