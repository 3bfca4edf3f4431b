//! One synthetic person: ground truth and the records their life left in each system.
//!
//! Everything about person `i` of a world with seed `s` is a pure function of `(s, i)`: each
//! person draws from ChaCha8 streams seeded by a hash of `(s, i, stream)`. That is what lets the
//! world be generated in parallel chunks and still come out byte-identical. A citizen
//! look-alike refers to an *earlier* person (index below its own), whose core identity is
//! recomputed from that person's own stream.

use crate::noise;
use crate::tables::{tables_checked, Culture, CultureNames, Tables, Weighted};
use chrono::{Datelike, Duration, Months, NaiveDate};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verity_model::record::{
    BenefitOutcome, BenefitType, BenefitsRecord, BiometricsRecord, CitizenshipEvidence,
    CitizenshipRecord, CourtOutcome, CourtRecord, CriminalRecord, CustodyRecord, Disposition,
    EnforcementEvent, EnforcementRecord, EntryManner, LawEnforcementFlag, OrderKind,
    TravelDirection, TravelRecord,
};
use verity_model::{
    ANumber, Address, FbiNumber, Fin, Identity, ImmigrationStatus, Ori, PartialDate, Passport,
    PersonName, RecordBody, RecordSystem, Sex, SourceRecord, Ssn, StateId,
};

/// Share of synthetic criminal records flagged from a law-enforcement gang file.
const GANG_FLAG_SHARE: f64 = 0.02;
/// Share of synthetic criminal records with a watchlist / national-security hit.
const NATIONAL_SECURITY_FLAG_SHARE: f64 = 0.002;

/// The fixed "today" of every synthetic world, so that bytes never depend on the clock.
pub const TODAY: (i32, u32, u32) = (2026, 11, 1);

pub fn today() -> NaiveDate {
    // A constant, valid calendar date.
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).unwrap_or(NaiveDate::MIN)
}

/// How a citizen is a citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CitizenshipBasis {
    Birth,
    Naturalized,
    Derived,
}

impl CitizenshipBasis {
    pub fn code(self) -> &'static str {
        match self {
            CitizenshipBasis::Birth => "birth",
            CitizenshipBasis::Naturalized => "naturalized",
            CitizenshipBasis::Derived => "derived",
        }
    }
}

/// The hidden truth about one person. Verity never reads it except in evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonTruth {
    pub person_id: String,
    pub index: u64,
    pub status: ImmigrationStatus,
    pub citizenship_basis: Option<CitizenshipBasis>,
    /// True name (uppercase Latin), with the original-script form when the culture has one.
    pub name: PersonName,
    pub dob: NaiveDate,
    pub sex: Sex,
    pub country_of_birth: String,
    pub culture: Culture,
    /// The noncitizen whose name and birth date this citizen deliberately resembles.
    pub lookalike_of: Option<String>,
    pub deceased: bool,
    pub in_ice_custody: bool,
    pub in_custody: bool,
}

impl PersonTruth {
    pub const CSV_HEADER: [&'static str; 16] = [
        "person_id",
        "status",
        "citizen",
        "citizenship_basis",
        "given_name",
        "middle_name",
        "family_name",
        "dob",
        "sex",
        "country_of_birth",
        "lookalike_of",
        "deceased",
        "in_ice_custody",
        "in_custody",
        "name_original",
        "culture",
    ];

    pub fn is_citizen(&self) -> bool {
        self.citizenship_basis.is_some()
    }

    pub fn to_csv_row(&self) -> Vec<String> {
        let yn = |b: bool| if b { "Y" } else { "N" }.to_string();
        vec![
            self.person_id.clone(),
            self.status.code().into(),
            yn(self.is_citizen()),
            self.citizenship_basis
                .map(|b| b.code().to_string())
                .unwrap_or_default(),
            self.name.given.clone(),
            self.name.middle.clone(),
            self.name.family.clone(),
            self.dob.format("%Y-%m-%d").to_string(),
            self.sex.code().into(),
            self.country_of_birth.clone(),
            self.lookalike_of.clone().unwrap_or_default(),
            yn(self.deceased),
            yn(self.in_ice_custody),
            yn(self.in_custody),
            self.name.original.clone(),
            self.culture.code().into(),
        ]
    }

    /// The true identity block (no identifiers, no address).
    pub fn identity(&self) -> Identity {
        Identity {
            name: self.name.clone(),
            aliases: Vec::new(),
            dob: Some(PartialDate::from(self.dob)),
            sex: Some(self.sex),
            country_of_birth: self.country_of_birth.clone(),
            ..Default::default()
        }
    }
}

pub fn person_id(index: u64) -> String {
    format!("P{index:09}")
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The RNG of one stream of one person.
fn stream(seed: u64, index: u64, which: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(splitmix(splitmix(seed ^ 0x5EED) ^ splitmix(index) ^ which))
}

/// A bijection of `0..modulus` keyed by the seed: unique identifiers without coordination.
fn affine(seed: u64, salt: u64, index: u64, modulus: u64) -> u64 {
    // `multiplier` is coprime to every modulus used (powers of ten, 7e8): odd, not a multiple
    // of 5 or 7.
    let multiplier: u128 = 982_451_653;
    let offset = u128::from(splitmix(seed ^ salt) % modulus);
    ((multiplier * u128::from(index) + offset) % u128::from(modulus)) as u64
}

/// Record ids: a system prefix and a keyed bijection of (person, record number), so ids are
/// unique, look random and reveal nothing about which records belong together.
fn record_id(system: RecordSystem, seed: u64, index: u64, seq: u64) -> String {
    let prefix = match system {
        RecordSystem::Benefits => "BEN",
        RecordSystem::Travel => "TRV",
        RecordSystem::Enforcement => "ENF",
        RecordSystem::Court => "CRT",
        RecordSystem::Criminal => "CRM",
        RecordSystem::Custody => "CUS",
        RecordSystem::Citizenship => "CIT",
        RecordSystem::Biometrics => "BIO",
    };
    let key = splitmix(seed ^ 0x1D5);
    // xor with a key and the splitmix finalizer are both bijections on u64.
    format!("{prefix}-{:016X}", splitmix((index << 8 | seq) ^ key))
}

/// Most records per person (record ids reserve 8 bits for the record number).
const MAX_RECORDS: u64 = 250;

// ---- population tables (tunable; see data/synth/README.md) ----

use Culture::*;
/// Cultures of U.S.-born citizens (children and grandchildren of immigrants included).
const BORN_HERE: &[(Culture, u32)] = &[
    (Anglo, 780),
    (Hispanic, 170),
    (Vietnamese, 8),
    (Chinese, 8),
    (Korean, 6),
    (Indian, 8),
    (Arabic, 6),
    (Haitian, 6),
    (WestAfrican, 4),
    (Slavic, 4),
];
/// Immigrants in general (LPRs, naturalized and derived citizens, visa holders).
const IMMIGRANTS: &[(Culture, u32)] = &[
    (Hispanic, 480),
    (Anglo, 40),
    (Chinese, 70),
    (Indian, 80),
    (Vietnamese, 45),
    (Korean, 35),
    (Arabic, 60),
    (Slavic, 60),
    (WestAfrican, 60),
    (Haitian, 60),
];
/// Refugees and asylum seekers.
const HUMANITARIAN: &[(Culture, u32)] = &[
    (Arabic, 250),
    (Hispanic, 250),
    (Slavic, 150),
    (WestAfrican, 130),
    (Chinese, 80),
    (Haitian, 80),
    (Vietnamese, 30),
    (Indian, 30),
];
/// TPS countries per culture (the country is forced into this list).
const TPS: &[(Culture, u32)] = &[
    (Hispanic, 550),
    (Haitian, 250),
    (Slavic, 100),
    (Arabic, 100),
];
const TPS_COUNTRIES: &[&str] = &["SV", "HN", "VE", "NI", "HT", "UA", "SY", "YE", "SD"];
/// People without status or in removal proceedings.
const UNDOCUMENTED: &[(Culture, u32)] = &[
    (Hispanic, 800),
    (Haitian, 50),
    (Indian, 40),
    (Chinese, 30),
    (WestAfrican, 30),
    (Anglo, 20),
    (Arabic, 10),
    (Slavic, 10),
    (Korean, 5),
    (Vietnamese, 5),
];

fn pick_static<T: Copy, R: Rng + ?Sized>(table: &[(T, u32)], rng: &mut R) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (item, w) in table {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    table[0].0
}

fn culture_table(status: ImmigrationStatus) -> &'static [(Culture, u32)] {
    use ImmigrationStatus as S;
    match status {
        S::UsCitizenBirth => BORN_HERE,
        S::Refugee | S::Asylee | S::PendingAsylum => HUMANITARIAN,
        S::TpsHolder | S::PendingTps => TPS,
        S::DacaRecipient
        | S::EnteredWithoutInspection
        | S::PendingRemovalProceedings
        | S::FinalOrderOfRemoval
        | S::PreviouslyRemoved => UNDOCUMENTED,
        _ => IMMIGRANTS,
    }
}

// ---- dates ----

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn plus_days(d: NaiveDate, days: i64) -> NaiveDate {
    d.checked_add_signed(Duration::days(days)).unwrap_or(d)
}

fn plus_months(d: NaiveDate, months: i64) -> NaiveDate {
    if months >= 0 {
        d.checked_add_months(Months::new(months as u32))
    } else {
        d.checked_sub_months(Months::new(months.unsigned_abs() as u32))
    }
    .unwrap_or(d)
}

fn plus_years(d: NaiveDate, years: i64) -> NaiveDate {
    plus_months(d, years * 12)
}

/// A uniform day in `lo..=hi`; `lo` when the range is empty.
fn between<R: Rng + ?Sized>(rng: &mut R, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    let span = (hi - lo).num_days();
    if span <= 0 {
        return lo;
    }
    plus_days(lo, rng.gen_range(0..=span))
}

fn pd(d: NaiveDate) -> PartialDate {
    PartialDate::from(d)
}

// ---- core identity ----

/// The part of a person that look-alikes copy: decided from stream 0 alone.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub status: ImmigrationStatus,
    pub culture: Culture,
    pub sex: Sex,
    pub name: PersonName,
    pub dob: NaiveDate,
    pub country_of_birth: String,
}

fn pick_age<R: Rng + ?Sized>(rng: &mut R) -> i64 {
    // The jail population is young and adult.
    let (lo, hi) = pick_static(
        &[
            ((18, 24), 20),
            ((25, 34), 32),
            ((35, 44), 25),
            ((45, 54), 14),
            ((55, 75), 9),
        ],
        rng,
    );
    rng.gen_range(lo..=hi)
}

fn name_form<'a, R: Rng + ?Sized>(
    list: &'a Weighted<crate::tables::NameForm>,
    rng: &mut R,
) -> Option<&'a crate::tables::NameForm> {
    list.pick(rng)
}

/// A true name for a person of `culture`. `us_born` people keep fewer foreign conventions.
fn make_name<R: Rng + ?Sized>(
    names: &CultureNames,
    culture: Culture,
    female: bool,
    us_born: bool,
    rng: &mut R,
) -> PersonName {
    let given_list = if female { &names.female } else { &names.male };
    let g = name_form(given_list, rng);
    let f = name_form(&names.family, rng);
    let given = g.map(|g| g.latin(female).to_string()).unwrap_or_default();
    let given_o = g
        .map(|g| g.original(female).to_string())
        .unwrap_or_default();
    let mut family = f.map(|f| f.latin(female).to_string()).unwrap_or_default();
    let mut family_o = f
        .map(|f| f.original(female).to_string())
        .unwrap_or_default();
    let mut middle = String::new();
    let mut middle_o = String::new();
    let mut pick_middle = |list: &Weighted<crate::tables::NameForm>, fem: bool, rng: &mut R| {
        if let Some(m) = list.pick(rng) {
            if m.latin(fem) != given {
                middle = m.latin(fem).to_string();
                middle_o = m.original(fem).to_string();
            }
        }
    };
    match culture {
        Anglo => {
            if rng.gen_bool(0.6) {
                pick_middle(given_list, female, rng);
            }
        }
        Hispanic => {
            if rng.gen_bool(0.4) {
                pick_middle(given_list, female, rng);
            }
            let two_surnames = if us_born { 0.25 } else { 0.75 };
            if rng.gen_bool(two_surnames) {
                if let Some(m) = names.family.pick(rng) {
                    if m.male != family {
                        let joiner = if rng.gen_bool(0.03) { " Y " } else { " " };
                        family = format!("{family}{joiner}{}", m.male);
                        family_o = format!("{family_o}{joiner}{}", m.original_male);
                    }
                }
            }
        }
        Arabic => {
            if rng.gen_bool(0.7) {
                pick_middle(&names.male, false, rng);
            }
        }
        Vietnamese => {
            let list = if female {
                &names.middle_female
            } else {
                &names.middle_male
            };
            pick_middle(list, female, rng);
        }
        Slavic => {
            if rng.gen_bool(0.7) {
                let list = if female {
                    &names.middle_female
                } else {
                    &names.middle_male
                };
                pick_middle(list, female, rng);
            }
        }
        Indian => {
            if family == "SINGH" && female {
                family = "KAUR".into();
            } else if family == "KAUR" && !female {
                family = "SINGH".into();
            }
            if rng.gen_bool(0.25) {
                if !female && rng.gen_bool(0.5) {
                    middle = "KUMAR".into();
                } else {
                    pick_middle(given_list, female, rng);
                }
            }
        }
        WestAfrican | Haitian => {
            if rng.gen_bool(0.3) {
                pick_middle(given_list, female, rng);
            }
        }
        Chinese | Korean => {}
    }
    let mut name = PersonName::new(&given, &middle, &family);
    if culture == Chinese {
        // Pinyin given names are written as one word; records split them ("XIAO MING").
        name.given = given.replace(' ', "");
    }
    let has_original = !given_o.is_empty() && !family_o.is_empty();
    if has_original && !us_born {
        name.original = match culture {
            Chinese | Korean => format!("{family_o}{}", given_o.replace(' ', "")),
            Vietnamese => [family_o.as_str(), middle_o.as_str(), given_o.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            _ => [given_o.as_str(), middle_o.as_str(), family_o.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        };
        // Accented Latin that is identical to the plain form carries no information.
        if name.original == name.to_string() {
            name.original.clear();
        }
    }
    name
}

pub(crate) fn core(t: &Tables, seed: u64, index: u64) -> Core {
    use ImmigrationStatus as S;
    let mut rng = stream(seed, index, 0);
    let status = t
        .population
        .pick(&mut rng)
        .copied()
        .unwrap_or(S::UsCitizenBirth);
    let culture = pick_static(culture_table(status), &mut rng);
    let male_share = if status.is_citizen_or_potential() {
        0.72
    } else {
        0.78
    };
    let sex = if rng.gen_bool(male_share) {
        Sex::Male
    } else {
        Sex::Female
    };
    let dob = if status == S::DacaRecipient {
        between(&mut rng, ymd(1981, 6, 16), ymd(2006, 6, 15))
    } else {
        let age = pick_age(&mut rng);
        plus_days(plus_years(today(), -age), -rng.gen_range(0..365))
    };
    let names = t.cultures.get(&culture);
    let country_of_birth = if status == S::UsCitizenBirth {
        "US".to_string()
    } else if matches!(status, S::TpsHolder | S::PendingTps) {
        let own: Vec<&String> = names
            .map(|n| n.countries.items().iter().collect())
            .unwrap_or_default();
        own.iter()
            .filter(|c| TPS_COUNTRIES.contains(&c.as_str()))
            .copied()
            .collect::<Vec<_>>()
            .choose(&mut rng)
            .map(|c| c.to_string())
            .unwrap_or_else(|| "SV".into())
    } else {
        names
            .and_then(|n| n.countries.pick(&mut rng))
            .cloned()
            .unwrap_or_else(|| "MX".into())
    };
    let name = names
        .map(|n| {
            make_name(
                n,
                culture,
                sex == Sex::Female,
                status == S::UsCitizenBirth,
                &mut rng,
            )
        })
        .unwrap_or_default();
    Core {
        status,
        culture,
        sex,
        name,
        dob,
        country_of_birth,
    }
}

// ---- life history ----

/// A record waiting for its identity block, which is filled in once the whole life is known
/// (a FIN or FBI number may be assigned by a later event).
struct Pending {
    body: RecordBody,
    at: NaiveDate,
    /// Written from a foreign document (original script, family-first order).
    foreign_doc: bool,
    /// Where the event happened (county index), for addresses.
    county: usize,
}

struct Life<'a> {
    t: &'a Tables,
    rng: ChaCha8Rng,
    seed: u64,
    index: u64,
    truth: PersonTruth,
    home_county: usize,
    street: (String, String, String, String),
    a_number: Option<ANumber>,
    ssn: Option<Ssn>,
    us_passport: Option<Passport>,
    foreign_passports: Vec<(NaiveDate, Passport)>,
    pending: Vec<Pending>,
    biometric_events: Vec<(NaiveDate, RecordSystem)>,
    arrests: u32,
    last_event: NaiveDate,
    /// Decided up front so that the flows do not start a current custody for the dead.
    will_die: bool,
}

fn digits<R: Rng + ?Sized>(rng: &mut R, n: u32) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

impl<'a> Life<'a> {
    fn office(&self, county: usize) -> String {
        self.t
            .agencies
            .counties
            .get(county)
            .and_then(|c| self.t.reference.aors.office_for(&c.state, &c.name))
            .map(|o| o.0)
            .unwrap_or_default()
    }

    fn push(&mut self, body: RecordBody, at: NaiveDate, foreign_doc: bool) {
        self.push_at(body, at, foreign_doc, self.home_county);
    }

    fn push_at(&mut self, body: RecordBody, at: NaiveDate, foreign_doc: bool, county: usize) {
        if self.pending.len() as u64 >= MAX_RECORDS - 4 {
            return;
        }
        if at > self.last_event {
            self.last_event = at;
        }
        self.pending.push(Pending {
            body,
            at,
            foreign_doc,
            county,
        });
    }

    fn ensure_a_number(&mut self) {
        if self.a_number.is_none() {
            let n = affine(self.seed, 0xA, self.index, 1_000_000_000);
            self.a_number = ANumber::parse(&format!("{n:09}")).ok();
        }
    }

    fn receipt(&mut self) -> String {
        let center = ["EAC", "WAC", "LIN", "SRC", "MSC", "IOE"]
            .choose(&mut self.rng)
            .copied()
            .unwrap_or("EAC");
        format!("{center}{}", digits(&mut self.rng, 10))
    }

    fn benefit(
        &mut self,
        benefit: BenefitType,
        outcome: BenefitOutcome,
        filed: NaiveDate,
        decided: Option<NaiveDate>,
        valid_until: Option<NaiveDate>,
    ) {
        self.ensure_a_number();
        let receipt_number = self.receipt();
        let at = decided.unwrap_or(filed);
        let biometric = !matches!(
            benefit,
            BenefitType::NonimmigrantVisa | BenefitType::ImmigrantVisa
        );
        if biometric {
            self.biometric_events
                .push((plus_days(filed, 30).min(today()), RecordSystem::Benefits));
        }
        let foreign = self.rng.gen_bool(0.3);
        self.push(
            RecordBody::Benefits(BenefitsRecord {
                receipt_number,
                benefit,
                outcome,
                filed: Some(pd(filed)),
                decided: decided.map(pd),
                valid_until: valid_until.map(pd),
            }),
            at,
            foreign,
        );
    }

    fn passport_for(&mut self, country: &str, issued: NaiveDate) -> Option<Passport> {
        let letter = char::from(b'A' + self.rng.gen_range(0..26u8));
        let number = format!("{letter}{}", digits(&mut self.rng, 8));
        let p = Passport::parse(&format!("{country}:{number}")).ok()?;
        self.foreign_passports.push((issued, p.clone()));
        self.foreign_passports.sort_by_key(|(d, _)| *d);
        Some(p)
    }

    /// The foreign passport valid on `at`: renewed every ten years, so two trips far apart
    /// carry different numbers.
    fn foreign_passport_at(&mut self, at: NaiveDate) -> Option<Passport> {
        let cc = self.truth.country_of_birth.clone();
        if cc == "US" || cc.len() != 2 {
            return None;
        }
        let current = self
            .foreign_passports
            .iter()
            .rev()
            .find(|(d, _)| *d <= at)
            .cloned();
        match current {
            Some((issued, p)) if plus_years(issued, 10) > at => Some(p),
            _ => {
                let issued = plus_days(at, -self.rng.gen_range(30..1500));
                self.passport_for(&cc, issued)
            }
        }
    }

    fn travel(
        &mut self,
        direction: TravelDirection,
        date: NaiveDate,
        class: &str,
        admit_until: Option<NaiveDate>,
    ) {
        let port = self
            .t
            .places
            .ports
            .pick(&mut self.rng)
            .cloned()
            .unwrap_or_default();
        let noncitizen_arrival = direction == TravelDirection::Arrival && class != "USC";
        if noncitizen_arrival {
            self.biometric_events.push((date, RecordSystem::Travel));
        }
        if class != "USC" {
            // Make sure a passport exists for that date (materialize reads it back).
            self.foreign_passport_at(date);
        }
        self.push(
            RecordBody::Travel(TravelRecord {
                direction,
                date: pd(date),
                class_of_admission: class.into(),
                admit_until: admit_until.map(pd),
                port,
            }),
            date,
            noncitizen_arrival,
        );
    }

    fn enforcement(
        &mut self,
        event: EnforcementEvent,
        date: NaiveDate,
        order: Option<OrderKind>,
        entry: Option<EntryManner>,
        detail: &str,
    ) {
        if !matches!(event, EnforcementEvent::Deceased) {
            self.ensure_a_number();
        }
        if matches!(
            event,
            EnforcementEvent::BorderApprehension
                | EnforcementEvent::Encounter
                | EnforcementEvent::IceDetention
        ) {
            self.biometric_events
                .push((date, RecordSystem::Enforcement));
        }
        let office = if matches!(event, EnforcementEvent::BorderApprehension) {
            ["San Diego", "El Paso", "San Antonio", "Phoenix", "Houston"]
                .choose(&mut self.rng)
                .map(|s| s.to_string())
                .unwrap_or_default()
        } else {
            self.office(self.home_county)
        };
        self.push(
            RecordBody::Enforcement(EnforcementRecord {
                event,
                date: pd(date),
                order,
                entry,
                office,
                detail: detail.into(),
            }),
            date,
            false,
        );
    }

    fn court(
        &mut self,
        filed: NaiveDate,
        outcome: CourtOutcome,
        decided: Option<NaiveDate>,
        relief: &str,
    ) {
        self.ensure_a_number();
        let case_number = self
            .a_number
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let appeal_pending = decided.is_some()
            && matches!(outcome, CourtOutcome::RemovalOrdered)
            && self.rng.gen_bool(0.05);
        self.push(
            RecordBody::Court(CourtRecord {
                case_number,
                filed: pd(filed),
                outcome,
                decided: decided.map(pd),
                relief: relief.into(),
                appeal_pending,
            }),
            decided.unwrap_or(filed),
            false,
        );
    }

    fn citizenship(&mut self, evidence: CitizenshipEvidence, number: String, issued: NaiveDate) {
        self.push(
            RecordBody::Citizenship(CitizenshipRecord {
                evidence,
                document_number: number,
                issued: Some(pd(issued)),
            }),
            issued,
            false,
        );
    }

    fn issue_us_passport(&mut self, after: NaiveDate) -> NaiveDate {
        let issued = between(&mut self.rng, after, plus_days(today(), -20));
        let number = digits(&mut self.rng, 9);
        self.us_passport = Passport::parse(&format!("US:{number}")).ok();
        self.citizenship(CitizenshipEvidence::UsPassport, number, issued);
        issued
    }

    /// Round trips abroad between `from` and `to`, each a departure and a return.
    fn trips(&mut self, from: NaiveDate, to: NaiveDate, class: &str, max: u32) {
        let n = self.rng.gen_range(1..=max);
        let mut days: Vec<NaiveDate> = (0..n)
            .map(|_| between(&mut self.rng, from, plus_days(to, -30)))
            .collect();
        days.sort();
        for d in days {
            let back = plus_days(d, self.rng.gen_range(5..40)).min(plus_days(today(), -1));
            self.travel(TravelDirection::Departure, d, class, None);
            self.travel(TravelDirection::Arrival, back, class, None);
        }
    }

    fn adult(&self) -> NaiveDate {
        plus_years(self.truth.dob, 18)
    }

    /// A first arrival date for an immigrant, not before birth.
    fn arrival(&mut self, earliest: NaiveDate, latest: NaiveDate) -> NaiveDate {
        let lo = earliest.max(plus_days(self.truth.dob, 1));
        let hi = latest.max(lo);
        between(&mut self.rng, lo, hi)
    }

    fn nonimmigrant_class(&mut self) -> &'static str {
        pick_static(
            &[
                ("B2", 50),
                ("F1", 15),
                ("H1B", 15),
                ("WT", 10),
                ("B1", 5),
                ("J1", 5),
            ],
            &mut self.rng,
        )
    }

    fn admit_until(class: &str, arrival: NaiveDate) -> Option<NaiveDate> {
        match class {
            "B2" | "B1" => Some(plus_months(arrival, 6)),
            "WT" => Some(plus_days(arrival, 90)),
            "F1" | "J1" => Some(plus_years(arrival, 4)),
            "H1B" | "L1" => Some(plus_years(arrival, 3)),
            "K1" => Some(plus_days(arrival, 90)),
            _ => None,
        }
    }

    /// Entry without inspection: maybe caught at the border (DHS record), maybe not.
    fn ewi_entry(&mut self, date: NaiveDate, caught: f64) {
        if self.rng.gen_bool(caught) {
            self.enforcement(
                EnforcementEvent::BorderApprehension,
                date,
                None,
                Some(EntryManner::WithoutInspection),
                "apprehended between ports of entry",
            );
        }
    }

    fn overstay_entry(&mut self, latest: NaiveDate) -> NaiveDate {
        let class = pick_static(
            &[("B2", 70), ("WT", 15), ("F1", 10), ("H1B", 5)],
            &mut self.rng,
        );
        let probe = plus_days(today(), 1);
        let mut a = self.arrival(ymd(1990, 1, 1), latest);
        if let Some(until) = Self::admit_until(class, a) {
            if until >= probe {
                // Move the arrival back so that the stay has run out.
                a = plus_days(
                    a,
                    -((until - probe).num_days() + self.rng.gen_range(30..900)),
                );
                a = a.max(plus_days(self.truth.dob, 1));
            }
        }
        let until = Self::admit_until(class, a).map(|u| u.min(plus_days(today(), -1)));
        self.travel(TravelDirection::Arrival, a, class, until);
        a
    }

    fn tps_valid_until(&mut self) -> NaiveDate {
        between(&mut self.rng, ymd(2027, 2, 1), ymd(2028, 9, 30))
    }

    /// Notice to appear, then the court case; returns the court filing date.
    fn removal_proceedings(&mut self, after: NaiveDate, latest: NaiveDate) -> NaiveDate {
        let nta = between(&mut self.rng, plus_days(after, 1), latest);
        self.enforcement(
            EnforcementEvent::NoticeToAppear,
            nta,
            None,
            None,
            "NTA issued",
        );
        plus_days(nta, self.rng.gen_range(10..60))
    }

    fn ice_detention(&mut self, from: NaiveDate, released: bool) {
        let start = between(&mut self.rng, from, plus_days(today(), -2));
        self.enforcement(
            EnforcementEvent::IceDetention,
            start,
            None,
            None,
            "booked into ICE detention",
        );
        if released {
            let end = plus_days(start, self.rng.gen_range(3..200)).min(plus_days(today(), -1));
            self.enforcement(
                EnforcementEvent::IceRelease,
                end,
                None,
                None,
                "released on bond",
            );
        } else {
            self.truth.in_ice_custody = true;
        }
    }

    fn status_flow(&mut self) {
        use ImmigrationStatus as S;
        let today = today();
        let dob = self.truth.dob;
        match self.truth.status {
            S::UsCitizenBirth => {
                if self.rng.gen_bool(0.3) {
                    let issued = plus_days(dob, self.rng.gen_range(3..40));
                    let no = format!("BC{}", digits(&mut self.rng, 9));
                    self.citizenship(CitizenshipEvidence::UsBirthRecord, no, issued);
                }
                if self.rng.gen_bool(0.35) {
                    let issued = self.issue_us_passport(plus_years(dob, 16));
                    if self.rng.gen_bool(0.5) {
                        self.trips(issued, today, "USC", 3);
                    }
                }
            }
            S::UsCitizenNaturalized => {
                let a = self.arrival(ymd(1975, 1, 1), plus_years(today, -8));
                let lpr = self.become_lpr(a);
                let nat = between(&mut self.rng, plus_years(lpr, 5), plus_days(today, -30))
                    .min(plus_days(today, -30));
                if self.rng.gen_bool(0.4) {
                    // An old trip, still recorded under the LPR class of admission.
                    self.trips(lpr, nat.max(plus_days(lpr, 60)), "LPR", 2);
                }
                let r: f64 = self.rng.gen();
                if r < 0.55 {
                    let filed = plus_months(nat, -self.rng.gen_range(5..14));
                    self.benefit(
                        BenefitType::Naturalization,
                        BenefitOutcome::Granted,
                        filed,
                        Some(nat),
                        None,
                    );
                    let no = format!("NC{}", digits(&mut self.rng, 8));
                    self.citizenship(CitizenshipEvidence::NaturalizationCertificate, no, nat);
                    if self.rng.gen_bool(0.4) {
                        let issued = self.issue_us_passport(nat);
                        if self.rng.gen_bool(0.4) {
                            self.trips(issued, today, "USC", 2);
                        }
                    }
                } else if r < 0.75 {
                    let no = format!("NC{}", digits(&mut self.rng, 8));
                    self.citizenship(CitizenshipEvidence::NaturalizationCertificate, no, nat);
                }
                // else: citizenship gained later but never recorded; only the LPR grant remains.
            }
            S::UsCitizenDerived => {
                let a = self.arrival(dob, plus_years(dob, 15).min(plus_years(today, -2)));
                self.immigrant_visa(a, "IR2");
                let derived = between(&mut self.rng, a, plus_days(plus_years(dob, 18), -1).max(a));
                if self.rng.gen_bool(0.2) {
                    self.trips(a, derived.max(plus_days(a, 60)), "LPR", 1);
                }
                if self.rng.gen_bool(0.5) {
                    let decided =
                        between(&mut self.rng, plus_days(derived, 90), plus_days(today, -30));
                    let filed = plus_months(decided, -self.rng.gen_range(4..12));
                    self.benefit(
                        BenefitType::CitizenshipCertificate,
                        BenefitOutcome::Granted,
                        filed,
                        Some(decided),
                        None,
                    );
                    let no = format!("CC{}", digits(&mut self.rng, 8));
                    self.citizenship(CitizenshipEvidence::CitizenshipCertificate, no, decided);
                }
            }
            S::Lpr => {
                let a = self.arrival(ymd(1975, 1, 1), plus_years(today, -1));
                let lpr = self.become_lpr(a);
                if self.rng.gen_bool(0.3) {
                    self.trips(lpr, today, "LPR", 3);
                }
            }
            S::Refugee => {
                let a = self.arrival(plus_years(today, -3), plus_days(today, -60));
                let filed = plus_months(a, -self.rng.gen_range(8..30));
                let decided = plus_days(a, -self.rng.gen_range(10..90));
                self.benefit(
                    BenefitType::Refugee,
                    BenefitOutcome::Granted,
                    filed,
                    Some(decided),
                    None,
                );
                self.travel(TravelDirection::Arrival, a, "RE", None);
            }
            S::Asylee => {
                let a = self.arrival(plus_years(today, -15), plus_years(today, -2));
                if self.rng.gen_bool(0.5) {
                    self.travel(TravelDirection::Arrival, a, "B2", Some(plus_months(a, 6)));
                } else {
                    self.ewi_entry(a, 0.9);
                }
                let filed = plus_months(a, self.rng.gen_range(1..12));
                let granted =
                    plus_months(filed, self.rng.gen_range(6..36)).min(plus_days(today, -1));
                if self.rng.gen_bool(0.3) {
                    self.court(filed, CourtOutcome::ReliefGranted, Some(granted), "asylum");
                } else {
                    self.benefit(
                        BenefitType::Asylum,
                        BenefitOutcome::Granted,
                        filed,
                        Some(granted),
                        None,
                    );
                }
            }
            S::TpsHolder | S::PendingTps => {
                let a = self.arrival(ymd(2000, 1, 1), plus_years(today, -2));
                if self.rng.gen_bool(0.35) {
                    self.travel(TravelDirection::Arrival, a, "B2", Some(plus_months(a, 6)));
                } else {
                    self.ewi_entry(a, 0.6);
                }
                if self.truth.status == S::TpsHolder {
                    let filed = between(&mut self.rng, plus_months(a, 1), plus_months(today, -8));
                    let granted = plus_months(filed, self.rng.gen_range(3..12));
                    let until = self.tps_valid_until();
                    self.benefit(
                        BenefitType::Tps,
                        BenefitOutcome::Granted,
                        filed,
                        Some(granted),
                        Some(until),
                    );
                } else {
                    let filed = between(
                        &mut self.rng,
                        plus_months(today, -18),
                        plus_days(today, -10),
                    );
                    self.benefit(
                        BenefitType::Tps,
                        BenefitOutcome::Pending,
                        filed.max(a),
                        None,
                        None,
                    );
                }
            }
            S::DacaRecipient => {
                let latest = plus_years(dob, 16).min(ymd(2007, 6, 15));
                let a = self.arrival(plus_years(dob, 1), latest);
                if self.rng.gen_bool(0.3) {
                    self.travel(TravelDirection::Arrival, a, "B2", Some(plus_months(a, 6)));
                }
                let first = between(
                    &mut self.rng,
                    ymd(2012, 8, 15).max(plus_years(dob, 15)),
                    plus_years(today, -2),
                );
                let granted = plus_months(first, self.rng.gen_range(3..8));
                self.benefit(
                    BenefitType::Daca,
                    BenefitOutcome::Granted,
                    first,
                    Some(granted),
                    Some(plus_years(granted, 2)),
                );
                let renewal = between(&mut self.rng, plus_years(today, -2), plus_months(today, -3))
                    .max(plus_days(granted, 1));
                let renewed = plus_months(renewal, 2).min(plus_days(today, -1));
                self.benefit(
                    BenefitType::Daca,
                    BenefitOutcome::Granted,
                    renewal,
                    Some(renewed),
                    Some(plus_years(renewed, 2).max(plus_months(today, 3))),
                );
            }
            S::NonimmigrantInStatus => {
                let class = pick_static(
                    &[("B2", 40), ("F1", 20), ("H1B", 25), ("WT", 10), ("J1", 5)],
                    &mut self.rng,
                );
                let earliest = match class {
                    "B2" => plus_days(today, -150),
                    "WT" => plus_days(today, -80),
                    "F1" | "J1" => plus_years(today, -3),
                    _ => plus_years(today, -2),
                };
                let a = self.arrival(earliest, plus_days(today, -5));
                if self.rng.gen_bool(0.3) {
                    self.trips(plus_years(a, -6), plus_days(a, -200), class, 2);
                }
                self.travel(
                    TravelDirection::Arrival,
                    a,
                    class,
                    Self::admit_until(class, a),
                );
                if matches!(class, "F1" | "H1B" | "J1") {
                    let until = Self::admit_until(class, a);
                    self.benefit(
                        BenefitType::NonimmigrantVisa,
                        BenefitOutcome::Granted,
                        plus_months(a, -4),
                        Some(plus_months(a, -2)),
                        until,
                    );
                }
            }
            S::NonimmigrantOverstay => {
                self.overstay_entry(plus_days(today, -200));
            }
            S::Parolee => {
                let a = self.arrival(plus_years(today, -3), plus_days(today, -30));
                let until = plus_years(a, 2).max(plus_days(today, self.rng.gen_range(30..700)));
                if self.rng.gen_bool(0.6) {
                    self.travel(TravelDirection::Arrival, a, "PAROLE", Some(until));
                } else {
                    self.enforcement(
                        EnforcementEvent::Encounter,
                        a,
                        None,
                        Some(EntryManner::Inspected),
                        "paroled at port of entry",
                    );
                    self.benefit(
                        BenefitType::Parole,
                        BenefitOutcome::Granted,
                        a,
                        Some(a),
                        Some(until),
                    );
                }
            }
            S::PendingAsylum => {
                let a = self.arrival(plus_years(today, -6), plus_days(today, -60));
                if self.rng.gen_bool(0.5) {
                    self.ewi_entry(a, 0.9);
                } else {
                    self.travel(TravelDirection::Arrival, a, "B2", Some(plus_months(a, 6)));
                }
                let filed = between(&mut self.rng, plus_days(a, 20), plus_days(today, -10));
                self.benefit(
                    BenefitType::Asylum,
                    BenefitOutcome::Pending,
                    filed,
                    None,
                    None,
                );
            }
            S::PendingAdjustment => {
                let class = pick_static(
                    &[("H1B", 40), ("F1", 20), ("B2", 25), ("K1", 15)],
                    &mut self.rng,
                );
                let a = self.arrival(plus_years(today, -8), plus_days(today, -60));
                self.travel(
                    TravelDirection::Arrival,
                    a,
                    class,
                    Self::admit_until(class, a),
                );
                let filed = between(&mut self.rng, plus_days(a, 30), plus_days(today, -10));
                self.benefit(
                    BenefitType::Adjustment,
                    BenefitOutcome::Pending,
                    filed,
                    None,
                    None,
                );
            }
            S::PendingRemovalProceedings | S::FinalOrderOfRemoval | S::PreviouslyRemoved => {
                let removed_before = self.truth.status == S::PreviouslyRemoved;
                let latest = if removed_before {
                    plus_years(today, -4)
                } else {
                    plus_days(today, -120)
                };
                let entered = if self.rng.gen_bool(0.6) {
                    let e = self.arrival(ymd(1995, 1, 1).max(plus_years(dob, 14)), latest);
                    self.ewi_entry(e, 0.75);
                    e
                } else {
                    self.overstay_entry(latest)
                };
                let nta_latest = if removed_before {
                    plus_years(today, -3)
                } else {
                    plus_days(today, -60)
                };
                let court_filed = self.removal_proceedings(entered, nta_latest);
                match self.truth.status {
                    S::PendingRemovalProceedings => {
                        self.court(court_filed, CourtOutcome::Pending, None, "");
                        if !self.will_die && self.rng.gen_bool(0.25) {
                            self.ice_detention(court_filed, false);
                        } else if self.rng.gen_bool(0.3) {
                            self.ice_detention(court_filed, true);
                        }
                    }
                    _ => {
                        let decided = between(
                            &mut self.rng,
                            plus_months(court_filed, 3),
                            plus_months(court_filed, 36),
                        )
                        .min(if removed_before {
                            plus_days(today, -420)
                        } else {
                            plus_days(today, -2)
                        });
                        let absentia = !removed_before && self.rng.gen_bool(0.4);
                        let (outcome, order) = if absentia {
                            (CourtOutcome::InAbsentiaOrder, OrderKind::InAbsentia)
                        } else {
                            (CourtOutcome::RemovalOrdered, OrderKind::Final)
                        };
                        self.court(court_filed, outcome, Some(decided), "");
                        self.enforcement(
                            EnforcementEvent::RemovalOrder,
                            decided,
                            Some(order),
                            None,
                            "order of removal",
                        );
                        if removed_before {
                            let removed = plus_days(decided, self.rng.gen_range(20..200));
                            self.enforcement(
                                EnforcementEvent::Removal,
                                removed,
                                Some(OrderKind::Final),
                                None,
                                "removed",
                            );
                            // Came back without inspection; a later arrest shows the re-entry.
                            let back = plus_days(removed, self.rng.gen_range(30..700))
                                .min(plus_days(today, -10));
                            let arrest = between(&mut self.rng, back, plus_days(today, -3));
                            self.arrest(arrest, Some(("0304", "Illegal reentry after removal")));
                            if !self.will_die && self.rng.gen_bool(0.2) {
                                self.ice_detention(plus_days(arrest, 2), false);
                            }
                        } else if !self.will_die && self.rng.gen_bool(0.3) {
                            self.ice_detention(decided, false);
                        }
                    }
                }
            }
            S::EnteredWithoutInspection => {
                let e = self.arrival(
                    ymd(1990, 1, 1).max(plus_years(dob, 12)),
                    plus_days(today, -30),
                );
                let r: f64 = self.rng.gen();
                if r < 0.4 {
                    self.ewi_entry(e, 1.0);
                    if self.rng.gen_bool(0.3) {
                        self.enforcement(
                            EnforcementEvent::VoluntaryReturn,
                            plus_days(e, 2),
                            None,
                            None,
                            "returned to country",
                        );
                    }
                } else if r < 0.6 {
                    let met = between(&mut self.rng, plus_days(e, 30), plus_days(today, -5));
                    self.enforcement(
                        EnforcementEvent::Encounter,
                        met,
                        None,
                        Some(EntryManner::WithoutInspection),
                        "encountered in the interior",
                    );
                    if !self.will_die && self.rng.gen_bool(0.08) {
                        self.ice_detention(met, false);
                    }
                }
                // else: no DHS record at all.
            }
            S::PotentialUsCitizen | S::NoRecordFound | S::Undetermined => {}
        }
    }

    fn immigrant_visa(&mut self, a: NaiveDate, class: &str) {
        let filed = plus_months(a, -self.rng.gen_range(6..24));
        let decided = plus_months(a, -self.rng.gen_range(1..5));
        self.benefit(
            BenefitType::ImmigrantVisa,
            BenefitOutcome::Granted,
            filed,
            Some(decided),
            None,
        );
        self.travel(TravelDirection::Arrival, a, class, None);
    }

    /// Becomes a permanent resident: an immigrant visa on arrival, or a nonimmigrant entry
    /// later adjusted. Returns the LPR date.
    fn become_lpr(&mut self, a: NaiveDate) -> NaiveDate {
        if self.rng.gen_bool(0.5) {
            let class = pick_static(
                &[
                    ("IR1", 30),
                    ("CR1", 20),
                    ("F2A", 25),
                    ("EB2", 15),
                    ("DV", 10),
                ],
                &mut self.rng,
            );
            self.immigrant_visa(a, class);
            a
        } else {
            let class = self.nonimmigrant_class();
            self.travel(
                TravelDirection::Arrival,
                a,
                class,
                Self::admit_until(class, a),
            );
            let filed = plus_months(a, self.rng.gen_range(3..30));
            let granted = plus_months(filed, self.rng.gen_range(6..24)).min(plus_days(today(), -1));
            self.benefit(
                BenefitType::Adjustment,
                BenefitOutcome::Granted,
                filed,
                Some(granted),
                None,
            );
            granted
        }
    }

    /// Law-enforcement flags for one criminal record: a small share carry a gang-file hit
    /// (about 2%) or a watchlist / national-security hit (about 0.2%).
    fn pick_flags(&mut self) -> Vec<LawEnforcementFlag> {
        let mut flags = Vec::new();
        if self.rng.gen_bool(GANG_FLAG_SHARE) {
            flags.push(LawEnforcementFlag::GangMember);
        }
        if self.rng.gen_bool(NATIONAL_SECURITY_FLAG_SHARE) {
            flags.push(LawEnforcementFlag::NationalSecurity);
        }
        flags
    }

    fn pick_offense(&mut self) -> (String, String) {
        let t = self.t;
        t.offense_categories
            .pick(&mut self.rng)
            .and_then(|c| t.offenses_by_category.get(c))
            .and_then(|list| list.choose(&mut self.rng))
            .cloned()
            .unwrap_or_else(|| {
                (
                    "7399".into(),
                    "Public order crimes - describe offense".into(),
                )
            })
    }

    /// One arrest with charge and disposition; a jail booking for most.
    fn arrest(&mut self, date: NaiveDate, charge: Option<(&str, &str)>) {
        let today = today();
        self.arrests += 1;
        let county = if self.rng.gen_bool(0.85) {
            self.home_county
        } else {
            self.random_county_in_state()
        };
        let (ncic_code, charge) = match charge {
            Some((c, d)) => (c.to_string(), d.to_string()),
            None => self.pick_offense(),
        };
        let recent = (today - date).num_days() < 120;
        let disposition = if recent && self.rng.gen_bool(0.7) {
            Disposition::Pending
        } else {
            pick_static(
                &[
                    (Disposition::Convicted, 55),
                    (Disposition::Dismissed, 35),
                    (Disposition::Acquitted, 5),
                    (Disposition::Pending, 5),
                ],
                &mut self.rng,
            )
        };
        let disposition_date = (disposition != Disposition::Pending)
            .then(|| plus_days(date, self.rng.gen_range(1..400)).min(plus_days(today, -1)));
        let sentence_days = (disposition == Disposition::Convicted && self.rng.gen_bool(0.5))
            .then(|| (self.rng.gen::<f64>().powi(3) * 3650.0) as u32 + 1);
        let agencies = &self.t.agencies;
        let arresting = agencies.counties.get(county).and_then(|c| {
            let pick = if c.police.is_empty() || self.rng.gen_bool(0.3) {
                c.sheriff
            } else {
                c.police[self.rng.gen_range(0..c.police.len())]
            };
            agencies.agencies.get(pick).map(|a| a.ori.clone())
        });
        let flags = self.pick_flags();
        self.push_at(
            RecordBody::Criminal(CriminalRecord {
                arrest_date: pd(date),
                arresting_ori: arresting,
                ncic_code,
                charge,
                disposition,
                disposition_date: disposition_date.map(pd),
                sentence_days,
                flags,
            }),
            date,
            false,
            county,
        );
        if self.rng.gen_bool(0.55) {
            let served = sentence_days.unwrap_or(self.rng.gen_range(0..10));
            let released = plus_days(date, i64::from(served)).min(plus_days(today, -1));
            self.booking(county, date, Some(released), None);
        }
    }

    fn booking(
        &mut self,
        county: usize,
        date: NaiveDate,
        released: Option<NaiveDate>,
        expected: Option<NaiveDate>,
    ) {
        let agencies = &self.t.agencies;
        let Some(c) = agencies.counties.get(county) else {
            return;
        };
        let Some(sheriff) = agencies.agencies.get(c.sheriff) else {
            return;
        };
        let ori: Ori = sheriff.ori.clone();
        let booking_number = format!("{}{}", date.year(), digits(&mut self.rng, 7));
        let facility = format!("{} COUNTY JAIL", c.name.to_ascii_uppercase());
        let (state, county_name) = (c.state.clone(), c.name.clone());
        self.push_at(
            RecordBody::Custody(CustodyRecord {
                booking_number,
                facility,
                ori,
                county: county_name,
                state,
                booking_date: pd(date),
                expected_release: expected.map(pd),
                released: released.map(pd),
            }),
            date,
            false,
            county,
        );
    }

    fn random_county_in_state(&mut self) -> usize {
        let state = self
            .t
            .agencies
            .counties
            .get(self.home_county)
            .map(|c| c.state.clone())
            .unwrap_or_default();
        self.t
            .agencies
            .counties_of_state
            .get(&state)
            .and_then(|v| v.choose(&mut self.rng))
            .copied()
            .unwrap_or(self.home_county)
    }

    fn criminal_history(&mut self) {
        use ImmigrationStatus as S;
        let today = today();
        let share = match self.truth.status {
            S::UsCitizenBirth | S::UsCitizenNaturalized | S::UsCitizenDerived => 0.30,
            S::PreviouslyRemoved => 0.4, // plus the forced re-entry arrest
            S::PendingRemovalProceedings | S::FinalOrderOfRemoval => 0.4,
            _ => 0.22,
        };
        // Look-alikes matter where they are encountered: in jails.
        let share = if self.truth.lookalike_of.is_some() {
            0.6
        } else {
            share
        };
        let start = self
            .pending
            .iter()
            .filter(|p| !matches!(p.body, RecordBody::Citizenship(_)))
            .map(|p| p.at)
            .min()
            .unwrap_or(self.truth.dob)
            .max(self.adult());
        if start >= plus_days(today, -2) {
            return;
        }
        if self.rng.gen_bool(share) {
            let mut n = 1;
            while n < 6 && self.rng.gen_bool(0.45) {
                n += 1;
            }
            let mut dates: Vec<NaiveDate> = (0..n)
                .map(|_| between(&mut self.rng, start, plus_days(today, -3)))
                .collect();
            dates.sort();
            for d in dates {
                self.arrest(d, None);
            }
        }
        // A share of people with a record are in jail right now.
        if self.arrests > 0
            && !self.will_die
            && !self.truth.in_ice_custody
            && self.rng.gen_bool(0.15)
        {
            let d = plus_days(today, -self.rng.gen_range(1..60));
            let county = self.home_county;
            let (code, charge) = self.pick_offense();
            self.arrests += 1;
            let ori = self
                .t
                .agencies
                .counties
                .get(county)
                .and_then(|c| self.t.agencies.agencies.get(c.sheriff))
                .map(|a| a.ori.clone());
            let flags = self.pick_flags();
            self.push_at(
                RecordBody::Criminal(CriminalRecord {
                    arrest_date: pd(d),
                    arresting_ori: ori,
                    ncic_code: code,
                    charge,
                    disposition: Disposition::Pending,
                    disposition_date: None,
                    sentence_days: None,
                    flags,
                }),
                d,
                false,
                county,
            );
            let expected = self
                .rng
                .gen_bool(0.5)
                .then(|| plus_days(today, self.rng.gen_range(2..120)));
            self.booking(county, d, None, expected);
            self.truth.in_custody = true;
        }
    }

    fn maybe_die(&mut self) {
        if !self.will_die {
            return;
        }
        let today = today();
        // A person with no recorded event yet can die any time after coming of age; without
        // this floor `last_event` is NaiveDate::MIN and the date would be in year 0.
        let adult = self
            .truth
            .dob
            .checked_add_months(chrono::Months::new(18 * 12))
            .unwrap_or(self.truth.dob);
        let from = plus_days(self.last_event.max(adult), 1);
        if from >= plus_days(today, -1) || self.truth.in_custody || self.truth.in_ice_custody {
            return;
        }
        let died = between(&mut self.rng, from, plus_days(today, -1));
        self.enforcement(
            EnforcementEvent::Deceased,
            died,
            None,
            None,
            "death reported",
        );
        self.truth.deceased = true;
    }

    /// Fills in each record's identity block: what that system would know, then noise.
    fn materialize(mut self) -> (PersonTruth, Vec<SourceRecord>) {
        let t = self.t;
        let fin = if self.biometric_events.is_empty() {
            None
        } else {
            Fin::parse(&format!(
                "{:010}",
                affine(self.seed, 0xF, self.index, 10_000_000_000)
            ))
            .ok()
        };
        // Biometric enrollments: the first capture, the last, and maybe one between.
        if let Some(fin) = &fin {
            let mut events = self.biometric_events.clone();
            events.sort();
            events.dedup_by_key(|e| e.0);
            let mut chosen = vec![events[0]];
            if events.len() > 2 && self.rng.gen_bool(0.5) {
                chosen.push(events[events.len() / 2]);
            }
            if events.len() > 1 {
                chosen.push(events[events.len() - 1]);
            }
            for (date, by) in chosen {
                let fingers = if self.rng.gen_bool(0.9) {
                    10
                } else {
                    self.rng.gen_range(6..10)
                };
                self.push(
                    RecordBody::Biometrics(BiometricsRecord {
                        fin: fin.clone(),
                        enrolled: pd(date),
                        captured_by: by,
                        fingers,
                    }),
                    date,
                    false,
                );
            }
        }
        let state = t
            .agencies
            .counties
            .get(self.home_county)
            .map(|c| c.state.clone())
            .unwrap_or_default();
        let (fbi, sid) = if self.arrests > 0 {
            let n = affine(self.seed, 0xFB, self.index, 100_000_000);
            let letter = char::from(b'A' + (splitmix(self.index ^ self.seed) % 26) as u8);
            (
                FbiNumber::parse(&format!("{n:08}{letter}")).ok(),
                StateId::parse(&format!(
                    "{state}{:08}",
                    affine(self.seed, 0x51D, self.index, 100_000_000)
                ))
                .ok(),
            )
        } else {
            (None, None)
        };
        let base = self.truth.identity();
        let culture = self.truth.culture;
        let pending = std::mem::take(&mut self.pending);
        let mut records = Vec::with_capacity(pending.len());
        for (seq, p) in pending.into_iter().enumerate() {
            let system = p.body.system();
            let mut id = base.clone();
            if !(p.foreign_doc && self.rng.gen_bool(0.6)) {
                id.name.original.clear();
            }
            if p.foreign_doc && culture.family_first() && self.rng.gen_bool(0.4) {
                std::mem::swap(&mut id.name.given, &mut id.name.family);
            }
            let r = &mut self.rng;
            let mut maybe = |p: f64| r.gen_bool(p);
            let ids = &mut id.ids;
            let passport = match system {
                RecordSystem::Travel => {
                    let class_usc =
                        matches!(&p.body, RecordBody::Travel(tr) if tr.class_of_admission == "USC");
                    if class_usc {
                        self.us_passport.clone()
                    } else {
                        self.foreign_passports
                            .iter()
                            .rev()
                            .find(|(d, _)| *d <= p.at)
                            .or(self.foreign_passports.first())
                            .map(|(_, p)| p.clone())
                    }
                }
                RecordSystem::Citizenship => match &p.body {
                    RecordBody::Citizenship(c) if c.evidence == CitizenshipEvidence::UsPassport => {
                        Passport::parse(&format!("US:{}", c.document_number)).ok()
                    }
                    _ => None,
                },
                RecordSystem::Benefits | RecordSystem::Enforcement => {
                    if maybe(0.3) {
                        self.foreign_passports
                            .iter()
                            .rev()
                            .find(|(d, _)| *d <= p.at)
                            .map(|(_, p)| p.clone())
                    } else {
                        None
                    }
                }
                _ => None,
            };
            ids.passport = passport;
            let (a_p, fin_p, fbi_p, sid_p, ssn_p) = match system {
                RecordSystem::Benefits => (1.0, 0.8, 0.0, 0.0, 0.5),
                RecordSystem::Travel => (0.3, 0.6, 0.0, 0.0, 0.0),
                RecordSystem::Enforcement => (0.95, 0.9, 0.3, 0.1, 0.1),
                RecordSystem::Court => (1.0, 0.0, 0.0, 0.0, 0.0),
                RecordSystem::Criminal => (0.05, 0.03, 0.9, 0.8, 0.4),
                RecordSystem::Custody => (0.03, 0.03, 0.4, 0.6, 0.2),
                RecordSystem::Citizenship => (0.9, 0.0, 0.0, 0.0, 0.6),
                RecordSystem::Biometrics => (0.5, 1.0, 0.2, 0.0, 0.0),
            };
            if maybe(a_p) {
                ids.a_number = self.a_number.clone();
            }
            if maybe(fin_p) {
                ids.fin = fin.clone();
            }
            if maybe(fbi_p) {
                ids.fbi_number = fbi.clone();
            }
            if maybe(sid_p) {
                ids.state_id = sid.clone();
            }
            if maybe(ssn_p) {
                ids.ssn = self.ssn.clone();
            }
            let with_address = matches!(
                system,
                RecordSystem::Criminal
                    | RecordSystem::Custody
                    | RecordSystem::Benefits
                    | RecordSystem::Citizenship
            ) && maybe(0.75);
            if with_address {
                let county = t.agencies.counties.get(p.county);
                let (num, street, locality, postcode) = self.street.clone();
                id.address = Address {
                    street_number: num,
                    street,
                    locality,
                    postcode,
                    region: county.map(|c| c.state.clone()).unwrap_or_default(),
                    county: county.map(|c| c.name.clone()).unwrap_or_default(),
                };
            }
            let strength = match system {
                RecordSystem::Citizenship => 0.25,
                RecordSystem::Benefits => 0.4,
                RecordSystem::Travel => 0.5,
                RecordSystem::Enforcement => 0.7,
                RecordSystem::Court => 0.5,
                RecordSystem::Criminal | RecordSystem::Custody => 0.9,
                RecordSystem::Biometrics => 0.3,
            };
            let identity = noise::perturb(&id, &mut self.rng, strength);
            records.push(SourceRecord {
                record_id: record_id(system, self.seed, self.index, seq as u64),
                identity,
                body: p.body,
            });
        }
        let first_enrollment = self.biometric_events.iter().map(|e| e.0).min();
        let matches = booking_matches(
            self.seed,
            self.index,
            &base,
            fin.as_ref().zip(first_enrollment),
            fbi.as_ref(),
            &records,
        );
        records.extend(matches);
        (self.truth, records)
    }
}

/// The day booking fingerprints began to be checked against the DHS biometric repository
/// everywhere (state bureau -> FBI NGI -> DHS IDENT interoperability was nationwide by 2013;
/// the reference texts give no finer date, so the first day of that year).
pub const INTEROPERABILITY_NATIONWIDE: (i32, u32, u32) = (2013, 1, 1);

/// The RNG stream of the booking match records (0: core identity, 1: life history).
const BOOKING_MATCH_STREAM: u64 = 2;

/// Whether `record` is a DHS biometric match made when an arrest's booking prints were checked
/// against the DHS repository (a fingerprint record captured by the criminal-history system).
/// Fingerprint enrollments proper are captured by benefits, travel or enforcement encounters.
pub fn is_booking_match(record: &SourceRecord) -> bool {
    matches!(&record.body, RecordBody::Biometrics(b) if b.captured_by == RecordSystem::Criminal)
}

/// Booking interoperability: each arrest booked on or after [`INTEROPERABILITY_NATIONWIDE`] of
/// a person who already had a DHS fingerprint enrollment (their FIN, first enrolled strictly
/// before the arrest) left a DHS match record carrying that FIN and the arrest's FBI number,
/// and the state id (SID) when the arrest record carries one. A first-time encounter makes no
/// match. `enrolled` is the person's FIN and first enrollment date; `records` are the person's
/// other records, already complete. The randomness comes from the person's own
/// [`BOOKING_MATCH_STREAM`], and record numbers follow the other records', so every other
/// record stays byte-identical to a world generated without these.
fn booking_matches(
    seed: u64,
    index: u64,
    base: &Identity,
    enrolled: Option<(&Fin, NaiveDate)>,
    fbi: Option<&FbiNumber>,
    records: &[SourceRecord],
) -> Vec<SourceRecord> {
    let (Some((fin, first_enrolled)), Some(fbi)) = (enrolled, fbi) else {
        return Vec::new();
    };
    let (y, m, d) = INTEROPERABILITY_NATIONWIDE;
    let nationwide = ymd(y, m, d);
    let mut rng = stream(seed, index, BOOKING_MATCH_STREAM);
    let mut out = Vec::new();
    for r in records {
        let RecordBody::Criminal(c) = &r.body else {
            continue;
        };
        let Some(arrested) = c.arrest_date.to_naive() else {
            continue;
        };
        if arrested < nationwide || arrested <= first_enrolled {
            continue;
        }
        // Record numbers are 8 bits of the record id (see `record_id`).
        let seq = (records.len() + out.len()) as u64;
        if seq > 0xFF {
            break;
        }
        let mut id = base.clone();
        id.name.original.clear();
        id.ids.fin = Some(fin.clone());
        id.ids.fbi_number = Some(fbi.clone());
        id.ids.state_id = r.identity.ids.state_id.clone();
        let identity = noise::perturb(&id, &mut rng, 0.3);
        out.push(SourceRecord {
            record_id: record_id(RecordSystem::Biometrics, seed, index, seq),
            identity,
            body: RecordBody::Biometrics(BiometricsRecord {
                fin: fin.clone(),
                enrolled: c.arrest_date,
                captured_by: RecordSystem::Criminal,
                fingers: 10,
            }),
        });
    }
    out
}

/// Finds an earlier noncitizen for a citizen to resemble.
fn lookalike_target(
    t: &Tables,
    seed: u64,
    index: u64,
    rng: &mut ChaCha8Rng,
) -> Option<(u64, Core)> {
    if index == 0 {
        return None;
    }
    for _ in 0..24 {
        let back = rng.gen_range(1..=index.min(5_000));
        let j = index - back;
        let c = core(t, seed, j);
        if !c.status.is_citizen_or_potential() {
            return Some((j, c));
        }
    }
    None
}

/// Share of citizens who are deliberate look-alikes of a noncitizen.
pub const LOOKALIKE_SHARE: f64 = 0.13;

/// Person `index` of the world with `seed`: ground truth and every record they left.
pub fn generate_person(seed: u64, index: u64) -> (PersonTruth, Vec<SourceRecord>) {
    generate_with(tables_checked(), seed, index)
}

pub(crate) fn generate_with(t: &Tables, seed: u64, index: u64) -> (PersonTruth, Vec<SourceRecord>) {
    use ImmigrationStatus as S;
    let mut c = core(t, seed, index);
    let mut rng = stream(seed, index, 1);
    let basis = match c.status {
        S::UsCitizenBirth => Some(CitizenshipBasis::Birth),
        S::UsCitizenNaturalized => Some(CitizenshipBasis::Naturalized),
        S::UsCitizenDerived => Some(CitizenshipBasis::Derived),
        _ => None,
    };
    let mut lookalike_of = None;
    if basis.is_some() && rng.gen_bool(LOOKALIKE_SHARE) {
        if let Some((j, target)) = lookalike_target(t, seed, index, &mut rng) {
            let target_identity = Identity {
                name: target.name.clone(),
                dob: Some(PartialDate::from(target.dob)),
                sex: Some(target.sex),
                country_of_birth: target.country_of_birth.clone(),
                ..Default::default()
            };
            let l = noise::lookalike(&target_identity, &mut rng);
            c.name = l.name;
            c.dob = l.dob.and_then(|d| d.to_naive()).unwrap_or(target.dob);
            c.sex = target.sex;
            c.culture = target.culture;
            if c.status != S::UsCitizenBirth {
                c.country_of_birth = target.country_of_birth;
            }
            lookalike_of = Some(person_id(j));
        }
    }
    let will_die = match c.status {
        S::UsCitizenBirth => false,
        S::UsCitizenNaturalized | S::UsCitizenDerived => rng.gen_bool(0.005),
        _ => rng.gen_bool(0.012),
    };
    let truth = PersonTruth {
        person_id: person_id(index),
        index,
        status: c.status,
        citizenship_basis: basis,
        name: c.name,
        dob: c.dob,
        sex: c.sex,
        country_of_birth: c.country_of_birth,
        culture: c.culture,
        lookalike_of,
        deceased: false,
        in_ice_custody: false,
        in_custody: false,
    };
    let state = t.places.states.pick(&mut rng).cloned().unwrap_or_default();
    let home_county = t
        .agencies
        .counties_of_state
        .get(&state)
        .and_then(|v| v.choose(&mut rng))
        .copied()
        .unwrap_or(0);
    let street = (
        rng.gen_range(1..9999u32).to_string(),
        t.places.streets.pick(&mut rng).cloned().unwrap_or_default(),
        t.places
            .localities
            .pick(&mut rng)
            .cloned()
            .unwrap_or_default(),
        digits(&mut rng, 5),
    );
    let ssn_share = match c.status {
        S::UsCitizenBirth | S::UsCitizenNaturalized | S::UsCitizenDerived => 0.9,
        S::Lpr | S::Refugee | S::Asylee | S::TpsHolder | S::DacaRecipient => 0.8,
        S::NonimmigrantInStatus | S::PendingAdjustment | S::Parolee => 0.4,
        _ => 0.05,
    };
    let ssn = if rng.gen_bool(ssn_share) {
        Ssn::parse(&format!(
            "{:09}",
            100_000_000 + affine(seed, 0x55, index, 700_000_000)
        ))
        .ok()
    } else {
        None
    };
    let mut life = Life {
        t,
        rng,
        seed,
        index,
        truth,
        home_county,
        street,
        a_number: None,
        ssn,
        us_passport: None,
        foreign_passports: Vec::new(),
        pending: Vec::new(),
        biometric_events: Vec::new(),
        arrests: 0,
        last_event: NaiveDate::MIN,
        will_die,
    };
    life.status_flow();
    life.criminal_history();
    life.maybe_die();
    life.materialize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_index_same_person() {
        for i in [0, 1, 77, 12_345] {
            assert_eq!(generate_person(9, i), generate_person(9, i));
        }
        assert_ne!(generate_person(9, 5).0, generate_person(10, 5).0);
    }

    #[test]
    fn record_dates_never_pass_today() {
        let today = pd(today());
        for i in 0..3000 {
            let (truth, records) = generate_person(3, i);
            assert!(truth.dob < today.to_naive().unwrap_or(NaiveDate::MAX));
            for r in &records {
                let date = match &r.body {
                    RecordBody::Benefits(b) => b.decided.or(b.filed),
                    RecordBody::Travel(t) => Some(t.date),
                    RecordBody::Enforcement(e) => Some(e.date),
                    RecordBody::Court(c) => c.decided.or(Some(c.filed)),
                    RecordBody::Criminal(c) => Some(c.arrest_date),
                    RecordBody::Custody(c) => Some(c.booking_date),
                    RecordBody::Citizenship(c) => c.issued,
                    RecordBody::Biometrics(b) => Some(b.enrolled),
                };
                let d = date.expect("dated");
                assert!(d <= today, "{} {d} in {:?}", r.record_id, truth.status);
            }
        }
    }

    #[test]
    fn record_ids_are_unique_and_prefixed() {
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            for r in generate_person(1, i).1 {
                assert!(r.record_id.len() == 20 && r.record_id.as_bytes()[3] == b'-');
                assert!(seen.insert(r.record_id));
            }
        }
    }

    /// The enrollment FIN and first enrollment date of a person's records, if enrolled.
    fn enrollment(records: &[SourceRecord]) -> Option<(Fin, PartialDate)> {
        let key = |d: &PartialDate| (d.year, d.month, d.day);
        records
            .iter()
            .filter(|r| !is_booking_match(r))
            .filter_map(|r| match &r.body {
                RecordBody::Biometrics(b) => Some((b.fin.clone(), b.enrolled)),
                _ => None,
            })
            .min_by_key(|(_, d)| key(d))
    }

    #[test]
    fn booking_matches_follow_each_arrest_after_enrollment_and_interoperability() {
        let (y, m, d) = INTEROPERABILITY_NATIONWIDE;
        let nationwide = ymd(y, m, d);
        let mut matched = 0;
        for i in 0..4_000 {
            let (truth, records) = generate_person(5, i);
            // Appended after every other record.
            let first = records
                .iter()
                .position(is_booking_match)
                .unwrap_or(records.len());
            assert!(records[first..].iter().all(is_booking_match));
            let fbis: std::collections::BTreeSet<String> = records[..first]
                .iter()
                .filter_map(|r| r.identity.ids.fbi_number.as_ref())
                .map(|f| f.to_string())
                .collect();
            let expected: Vec<PartialDate> = match enrollment(&records) {
                None => Vec::new(),
                Some((_, enrolled)) => records[..first]
                    .iter()
                    .filter_map(|r| match &r.body {
                        RecordBody::Criminal(c) => Some(c.arrest_date),
                        _ => None,
                    })
                    .filter(|a| {
                        let a = a.to_naive().unwrap_or(NaiveDate::MIN);
                        a >= nationwide && Some(a) > enrolled.to_naive()
                    })
                    .collect(),
            };
            let got: Vec<PartialDate> = records[first..]
                .iter()
                .filter_map(|r| match &r.body {
                    RecordBody::Biometrics(b) => Some(b.enrolled),
                    _ => None,
                })
                .collect();
            assert_eq!(got, expected, "{}", truth.person_id);
            let mut fbi_on_matches = std::collections::BTreeSet::new();
            for r in &records[first..] {
                let RecordBody::Biometrics(b) = &r.body else {
                    unreachable!("filtered above")
                };
                assert_eq!(Some(&b.fin), enrollment(&records).as_ref().map(|e| &e.0));
                assert_eq!(b.fingers, 10);
                // The person's one FBI number (the other records may all have lost theirs).
                if let Some(f) = &r.identity.ids.fbi_number {
                    assert!(
                        fbis.is_empty() || fbis.contains(f.as_str()),
                        "{} {f}",
                        truth.person_id
                    );
                    fbi_on_matches.insert(f.to_string());
                }
                if let Some(f) = &r.identity.ids.fin {
                    assert_eq!(f, &b.fin);
                }
                // Born here, never fingerprinted by DHS: no match.
                assert_ne!(truth.status, ImmigrationStatus::UsCitizenBirth);
            }
            assert!(fbis.len() + fbi_on_matches.len() <= 2 && fbi_on_matches.len() <= 1);
            matched += records.len() - first;
        }
        assert!(matched > 20, "only {matched} booking matches");
    }

    #[test]
    fn a_first_time_encounter_makes_no_booking_match() {
        // A person with an arrest after interoperability and a FIN.
        let (y, m, d) = INTEROPERABILITY_NATIONWIDE;
        let nationwide = ymd(y, m, d);
        let (seed, index, records) = (0..4_000)
            .map(|i| (7, i, generate_person(7, i).1))
            .find(|(_, _, r)| r.iter().any(is_booking_match))
            .expect("someone with a booking match");
        let others: Vec<SourceRecord> = records
            .iter()
            .filter(|r| !is_booking_match(r))
            .cloned()
            .collect();
        let (fin, _) = enrollment(&others).expect("enrolled");
        let fbi = others
            .iter()
            .find_map(|r| r.identity.ids.fbi_number.clone())
            .expect("arrested");
        let arrests: Vec<NaiveDate> = others
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::Criminal(c) => c.arrest_date.to_naive(),
                _ => None,
            })
            .filter(|a| *a >= nationwide)
            .collect();
        let base = Identity::default();
        let early = ymd(2000, 1, 1);
        let made = booking_matches(seed, index, &base, Some((&fin, early)), Some(&fbi), &others);
        assert_eq!(made.len(), arrests.len());
        // Enrolled on the day of the first such arrest: that booking was the first encounter
        // and makes no match; later ones do.
        let first = arrests.iter().min().copied().expect("an arrest");
        let made = booking_matches(seed, index, &base, Some((&fin, first)), Some(&fbi), &others);
        assert_eq!(made.len(), arrests.iter().filter(|a| **a > first).count());
        assert!(made.len() < arrests.len());
        assert!(booking_matches(seed, index, &base, None, Some(&fbi), &others).is_empty());
        // Ids stay unique and distinct from the person's other records.
        let ids: std::collections::BTreeSet<&String> =
            records.iter().map(|r| &r.record_id).collect();
        assert_eq!(ids.len(), records.len());
    }

    #[test]
    fn affine_is_a_bijection_on_small_moduli() {
        let m = 1000;
        let set: std::collections::BTreeSet<u64> = (0..m).map(|i| affine(4, 1, i, m)).collect();
        assert_eq!(set.len() as u64, m);
    }
}
