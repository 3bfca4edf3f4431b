//! A tiny deterministic generator of valid `SourceRecord`s for tests and the import benchmark.
//! Names are made of random syllables, so no real person's data can appear.

use verity_model::ids::{ANumber, FbiNumber, Fin, Passport, Ssn, StateId};
use verity_model::record::*;
use verity_model::{
    Address, Identifiers, Identity, Ori, PartialDate, PersonName, RecordSystem, Sex, SourceRecord,
};

/// xorshift64*: small, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const SYLLABLES: &[&str] = &[
    "KA", "LO", "MEN", "RI", "SO", "TA", "VE", "NU", "DAR", "EL", "MI", "ZO", "BEL", "FA", "GU",
    "HAN", "IR", "JO", "KEL", "PA",
];

fn word(rng: &mut Rng) -> String {
    let n = 2 + rng.below(2) as usize;
    (0..n).map(|_| rng.pick(SYLLABLES)).collect()
}

fn date(rng: &mut Rng, from: u16, span: u64) -> PartialDate {
    let year = from + rng.below(span) as u16;
    PartialDate::full(year, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8).expect("valid date")
}

fn ori(rng: &mut Rng) -> Ori {
    Ori::parse(&format!("MD{}", rng.digits(7))).expect("valid ORI")
}

/// Record number `i` of a world with seed `seed`; `i` makes the record id unique.
pub fn record(seed: u64, i: u64, system: RecordSystem) -> SourceRecord {
    let mut rng = Rng::new(seed ^ i.wrapping_mul(0x1000_0000_01B3));
    let prefix = &system.code()[..3].to_ascii_uppercase();
    let ids = Identifiers {
        a_number: rng
            .chance(40)
            .then(|| ANumber::parse(&rng.digits(9)).expect("valid")),
        fin: rng
            .chance(30)
            .then(|| Fin::parse(&rng.digits(10)).expect("valid")),
        fbi_number: rng.chance(25).then(|| {
            FbiNumber::parse(&format!("{}AB{}", rng.digits(3), rng.digits(3))).expect("valid")
        }),
        state_id: rng
            .chance(25)
            .then(|| StateId::parse(&format!("MD{}", rng.digits(7))).expect("valid")),
        passport: rng
            .chance(20)
            .then(|| Passport::parse(&format!("MX:G{}", rng.digits(7))).expect("valid")),
        ssn: rng
            .chance(30)
            .then(|| Ssn::parse(&format!("5{}", rng.digits(8))).expect("valid")),
    };
    let mut name = PersonName::new(&word(&mut rng), "", &word(&mut rng));
    if rng.chance(30) {
        name.middle = word(&mut rng);
    }
    let aliases = if rng.chance(15) {
        vec![PersonName::new(&word(&mut rng), "", &name.family)]
    } else {
        vec![]
    };
    let identity = Identity {
        name,
        aliases,
        dob: rng.chance(95).then(|| date(&mut rng, 1950, 55)),
        sex: Some(if rng.chance(50) {
            Sex::Male
        } else {
            Sex::Female
        }),
        country_of_birth: rng.pick(&["MX", "US", "GT", "IN", "CN", "SV"]).to_string(),
        ids,
        address: Address {
            street_number: rng.digits(3),
            street: format!("{} ST", word(&mut rng)),
            locality: word(&mut rng),
            postcode: rng.digits(5),
            region: rng.pick(&["MD", "VA", "TX", "CA"]).to_string(),
            county: format!("{} COUNTY", word(&mut rng)),
        },
    };
    let body = match system {
        RecordSystem::Benefits => RecordBody::Benefits(BenefitsRecord {
            receipt_number: format!("EAC{}", rng.digits(10)),
            benefit: rng.pick(BenefitType::ALL),
            outcome: rng.pick(BenefitOutcome::ALL),
            filed: Some(date(&mut rng, 2000, 24)),
            decided: rng.chance(50).then(|| date(&mut rng, 2005, 20)),
            valid_until: rng.chance(30).then(|| date(&mut rng, 2025, 5)),
        }),
        RecordSystem::Travel => RecordBody::Travel(TravelRecord {
            direction: rng.pick(TravelDirection::ALL),
            date: date(&mut rng, 2000, 25),
            class_of_admission: rng.pick(&["B2", "F1", "H1B", "WT"]).into(),
            admit_until: rng.chance(50).then(|| date(&mut rng, 2020, 8)),
            port: rng.pick(&["LAX", "JFK", "MIA"]).into(),
        }),
        RecordSystem::Enforcement => RecordBody::Enforcement(EnforcementRecord {
            event: rng.pick(EnforcementEvent::ALL),
            date: date(&mut rng, 2000, 25),
            order: rng.chance(30).then(|| rng.pick(OrderKind::ALL)),
            entry: rng.chance(30).then(|| rng.pick(EntryManner::ALL)),
            office: "BAL".into(),
            detail: String::new(),
        }),
        RecordSystem::Court => RecordBody::Court(CourtRecord {
            case_number: rng.digits(9),
            filed: date(&mut rng, 2005, 20),
            outcome: rng.pick(CourtOutcome::ALL),
            decided: rng.chance(50).then(|| date(&mut rng, 2010, 15)),
            relief: String::new(),
            appeal_pending: rng.chance(10),
        }),
        RecordSystem::Criminal => RecordBody::Criminal(CriminalRecord {
            arrest_date: date(&mut rng, 2000, 25),
            arresting_ori: rng.chance(80).then(|| ori(&mut rng)),
            ncic_code: rng.digits(4),
            charge: "SIMPLE ASSAULT".into(),
            disposition: rng.pick(Disposition::ALL),
            disposition_date: rng.chance(40).then(|| date(&mut rng, 2005, 20)),
            sentence_days: rng.chance(20).then(|| rng.below(3650) as u32),
            flags: Vec::new(),
        }),
        RecordSystem::Custody => RecordBody::Custody(CustodyRecord {
            booking_number: rng.digits(8),
            facility: format!("{} DETENTION CENTER", word(&mut rng)),
            ori: ori(&mut rng),
            county: format!("{} COUNTY", word(&mut rng)),
            state: "MD".into(),
            booking_date: date(&mut rng, 2024, 2),
            expected_release: rng.chance(50).then(|| date(&mut rng, 2026, 2)),
            released: None,
        }),
        RecordSystem::Citizenship => RecordBody::Citizenship(CitizenshipRecord {
            evidence: rng.pick(CitizenshipEvidence::ALL),
            document_number: rng.digits(9),
            issued: rng.chance(70).then(|| date(&mut rng, 1990, 30)),
        }),
        RecordSystem::Biometrics => RecordBody::Biometrics(BiometricsRecord {
            fin: Fin::parse(&rng.digits(10)).expect("valid"),
            enrolled: date(&mut rng, 2005, 20),
            captured_by: rng.pick(RecordSystem::ALL),
            fingers: 1 + rng.below(10) as u8,
        }),
    };
    SourceRecord {
        record_id: format!("{prefix}-{i:08}"),
        identity,
        body,
    }
}

/// `n` records spread over all eight systems, numbered from 0.
pub fn records(seed: u64, n: u64) -> Vec<SourceRecord> {
    records_range(seed, 0..n)
}

/// Records numbered `range` (record ids depend only on the number, so ranges that do not
/// overlap give distinct ids).
pub fn records_range(seed: u64, range: std::ops::Range<u64>) -> Vec<SourceRecord> {
    range
        .map(|i| {
            let system = RecordSystem::ALL[(i % RecordSystem::ALL.len() as u64) as usize];
            record(seed, i, system)
        })
        .collect()
}

/// Writes a world directory: one `<system>.csv` per system and `agencies.csv`.
/// Returns the records written per system, in file order.
pub fn write_world(
    dir: &std::path::Path,
    seed: u64,
    n: u64,
) -> std::collections::BTreeMap<RecordSystem, Vec<SourceRecord>> {
    std::fs::create_dir_all(dir).expect("world dir");
    let mut by_system: std::collections::BTreeMap<RecordSystem, Vec<SourceRecord>> =
        Default::default();
    for r in records(seed, n) {
        by_system.entry(r.system()).or_default().push(r);
    }
    for (system, recs) in &by_system {
        let mut w = csv::Writer::from_path(dir.join(system.file_name())).expect("csv file");
        w.write_record(csv_header(*system)).expect("header");
        for r in recs {
            w.write_record(r.to_csv_row()).expect("row");
        }
        w.flush().expect("flush");
    }
    let mut w = csv::Writer::from_path(dir.join("agencies.csv")).expect("agencies file");
    w.write_record(["ori", "name", "kind", "state", "county", "field_office"])
        .expect("header");
    for k in 0..5 {
        w.write_record([
            format!("MD00{k}0000"),
            format!("TEST COUNTY {k} SHERIFF"),
            "sheriff".to_string(),
            "MD".to_string(),
            format!("TEST COUNTY {k}"),
            "BAL".to_string(),
        ])
        .expect("row");
    }
    w.flush().expect("flush");
    by_system
}
