//! Generated Immigration Alien Queries (IAQ) with ground truth, for the LESC benchmark and for
//! load tests.
//!
//! Each query is the JSON body an agency sends to `POST /v1/iaq` (the fields the intake parser
//! reads; nothing else, since unknown fields are refused) plus the truth the answer is judged
//! by. People are regenerated from `(world seed, index)` with [`generate_person`], exactly as
//! the world has them, so no world files need to be read. Categories:
//! - `noncitizen`: a noncitizen re-encountered, name and birth date noisy as real encounters
//!   are, sometimes with an A-number or FBI number, sometimes without;
//! - `citizen_birth`, `citizen_naturalized`, `citizen_derived`: a U.S. citizen with records;
//! - `citizen_lookalike`: a citizen who shares a name (or a variant) and a birth date within a
//!   year with a noncitizen of the world (records or not);
//! - `no_record`: a person who is not in the world at all;
//! - `citizenship_claim`: a noncitizen who claims U.S. citizenship (field or remarks).
//!
//! The truth status is the status the person's own records support (see
//! `records_supported_status`: for a citizen whose citizenship the records do not show, that
//! is what they do show) and `no_record_found` when the world holds no records of them.

use crate::noise;
use crate::person::{generate_person, PersonTruth};
use crate::tables::tables;
use crate::SynthError;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;
use verity_model::{Identity, ImmigrationStatus, SourceRecord};

const NCIC_POB_CSV: &str = include_str!("../../../data/reference/ncic_pob.csv");

/// What a generated query is really about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTruth {
    /// The person the query is about, when the world holds that person.
    pub person_id: Option<String>,
    pub category: String,
    /// The status the person's records support (`no_record_found` when there are none).
    pub status: ImmigrationStatus,
    pub citizen: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedQuery {
    /// The `/v1/iaq` JSON body.
    pub body: Value,
    /// The sending agency (sent beside the body, by credential).
    pub ori: String,
    pub truth: QueryTruth,
}

/// Category names, in the order of [`CATEGORY_MIX`].
pub const CATEGORIES: &[&str] = &[
    "noncitizen",
    "citizen_birth",
    "citizen_naturalized",
    "citizen_derived",
    "citizen_lookalike",
    "no_record",
    "citizenship_claim",
];

/// Share of each category (per thousand), aligned with [`CATEGORIES`].
const CATEGORY_MIX: &[u32] = &[450, 100, 50, 30, 150, 120, 100];

/// Attempts to find a person of a category before falling back to any person with records.
const MAX_ATTEMPTS: usize = 400;

const OFFENSES: &[&str] = &[
    "1313", "5404", "3599", "2299", "1399", "0399", "4801", "5707", "2399", "3562",
];

/// ISO country -> NCIC place-of-birth code (the first code that maps to it).
fn ncic_code(country: &str) -> Option<&'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for line in NCIC_POB_CSV.lines().skip(1) {
            let mut parts = line.split(',');
            if let (Some(code), Some(iso)) = (parts.next(), parts.next()) {
                let (code, iso) = (code.trim(), iso.trim());
                if !iso.is_empty() {
                    m.entry(iso).or_insert(code);
                }
            }
        }
        m
    });
    map.get(country).copied()
}

fn pick_category(rng: &mut ChaCha8Rng) -> &'static str {
    let total: u32 = CATEGORY_MIX.iter().sum();
    let mut x = rng.gen_range(0..total);
    for (c, w) in CATEGORIES.iter().zip(CATEGORY_MIX) {
        if x < *w {
            return c;
        }
        x -= w;
    }
    CATEGORIES[0]
}

fn wants(category: &str, truth: &PersonTruth, records: &[SourceRecord]) -> bool {
    use crate::person::CitizenshipBasis as B;
    if truth.deceased {
        return false;
    }
    match category {
        "noncitizen" | "citizenship_claim" => !truth.is_citizen() && !records.is_empty(),
        "citizen_birth" => truth.citizenship_basis == Some(B::Birth) && !records.is_empty(),
        "citizen_naturalized" => {
            truth.citizenship_basis == Some(B::Naturalized) && !records.is_empty()
        }
        "citizen_derived" => truth.citizenship_basis == Some(B::Derived) && !records.is_empty(),
        "citizen_lookalike" => truth.is_citizen() && truth.lookalike_of.is_some(),
        _ => !records.is_empty(),
    }
}

/// `count` queries about the world `(world_seed, people)`, deterministic for `query_seed`.
pub fn generate_queries(
    world_seed: u64,
    people: u64,
    count: usize,
    query_seed: u64,
) -> Vec<GeneratedQuery> {
    let mut rng = ChaCha8Rng::seed_from_u64(query_seed ^ 0x1A0_5EED);
    let agencies = tables().map(|t| &t.agencies.agencies[..]).unwrap_or(&[]);
    let mut out = Vec::with_capacity(count);
    if people == 0 {
        return out;
    }
    for k in 0..count {
        let mut category = pick_category(&mut rng);
        let (truth, records) = if category == "no_record" {
            // Someone the world never generated: the same population, beyond its last index.
            let index = people + rng.gen_range(0..people.max(1_000));
            (generate_person(world_seed, index).0, Vec::new())
        } else {
            let mut found = None;
            for _ in 0..MAX_ATTEMPTS {
                let index = rng.gen_range(0..people);
                let (t, r) = generate_person(world_seed, index);
                if wants(category, &t, &r) {
                    found = Some((t, r));
                    break;
                }
            }
            match found {
                Some(f) => f,
                None => {
                    // A small world may lack the category: any person instead.
                    let index = rng.gen_range(0..people);
                    let (t, r) = generate_person(world_seed, index);
                    category = if t.is_citizen() {
                        match t.citizenship_basis {
                            Some(crate::person::CitizenshipBasis::Naturalized) => {
                                "citizen_naturalized"
                            }
                            Some(crate::person::CitizenshipBasis::Derived) => "citizen_derived",
                            _ => "citizen_birth",
                        }
                    } else {
                        "noncitizen"
                    };
                    (t, r)
                }
            }
        };
        let agency = agencies.choose(&mut rng);
        let (ori, state, county) = agency
            .map(|a| (a.ori.to_string(), a.state.clone(), a.county.clone()))
            .unwrap_or_default();
        let body = query_body(
            &mut rng, k, query_seed, category, &truth, &records, &state, &county,
        );
        let in_world = category != "no_record";
        out.push(GeneratedQuery {
            body,
            ori,
            truth: QueryTruth {
                person_id: in_world.then(|| truth.person_id.clone()),
                category: category.to_string(),
                status: records_supported_status(&truth, &records),
                citizen: truth.is_citizen(),
            },
        });
    }
    out
}

/// The status the person's own records support, which is what an answer can be judged by.
///
/// For a noncitizen that is the generated status. A citizen's records may not show the
/// citizenship: the generator leaves some naturalizations and derivations unrecorded (only the
/// permanent-residence grant remains) and many citizens by birth have no birth record or
/// passport on file, only a U.S. place of birth on an arrest. Judging such records against
/// the person's real status counted correct answers as wrong ("LPR" for a naturalization
/// nobody recorded). Here a citizen's truth is the basis the records document, else
/// "potential U.S. citizen" when any record points to citizenship, else "LPR" when the records
/// show only a permanent-residence grant, else "undetermined".
fn records_supported_status(truth: &PersonTruth, records: &[SourceRecord]) -> ImmigrationStatus {
    use verity_model::record::{
        BenefitOutcome, BenefitType, CitizenshipEvidence as E, RecordBody, TravelDirection,
    };
    use ImmigrationStatus as S;
    if records.is_empty() {
        return S::NoRecordFound;
    }
    if !truth.is_citizen() {
        return truth.status;
    }
    let has_evidence = |want: E| {
        records
            .iter()
            .any(|r| matches!(&r.body, RecordBody::Citizenship(c) if c.evidence == want))
    };
    let has_grant = |want: BenefitType| {
        records.iter().any(|r| {
            matches!(&r.body, RecordBody::Benefits(b)
                if b.benefit == want && b.outcome == BenefitOutcome::Granted)
        })
    };
    let documented = match truth.status {
        S::UsCitizenNaturalized => {
            has_evidence(E::NaturalizationCertificate) || has_grant(BenefitType::Naturalization)
        }
        S::UsCitizenDerived => {
            has_evidence(E::CitizenshipCertificate)
                || has_grant(BenefitType::CitizenshipCertificate)
        }
        S::UsCitizenBirth => has_evidence(E::UsBirthRecord) || has_evidence(E::UsPassport),
        _ => false,
    };
    if documented {
        return truth.status;
    }
    let points_to_citizenship = records.iter().any(|r| {
        r.identity.country_of_birth == "US"
            || matches!(&r.body, RecordBody::Citizenship(_))
            || matches!(&r.body, RecordBody::Travel(t) if t.class_of_admission == "USC")
    });
    if points_to_citizenship {
        return S::PotentialUsCitizen;
    }
    let lpr_grant = records.iter().any(|r| match &r.body {
        RecordBody::Benefits(b) => {
            matches!(
                b.benefit,
                BenefitType::Adjustment | BenefitType::ImmigrantVisa
            ) && b.outcome == BenefitOutcome::Granted
        }
        RecordBody::Travel(t) => {
            t.direction == TravelDirection::Arrival && t.class_of_admission == "LPR"
        }
        _ => false,
    });
    if lpr_grant {
        S::Lpr
    } else {
        S::Undetermined
    }
}

/// The `LAST, FIRST MIDDLE` form within the 30 characters an IAQ allows.
fn name_field(identity: &Identity) -> String {
    let mut n = identity.name.clone();
    n.original.clear();
    let mut s = n.last_first();
    if s.chars().count() > 30 {
        n.middle.clear();
        s = n.last_first();
    }
    if s.chars().count() > 30 {
        s = s
            .chars()
            .take(30)
            .collect::<String>()
            .trim_end()
            .to_string();
        while s.ends_with(',') {
            s.pop();
        }
    }
    s
}

#[allow(clippy::too_many_arguments)]
fn query_body(
    rng: &mut ChaCha8Rng,
    k: usize,
    query_seed: u64,
    category: &str,
    truth: &PersonTruth,
    records: &[SourceRecord],
    state: &str,
    county: &str,
) -> Value {
    // What the officer writes down: the true identity, noisy as encounters are.
    let strength = if category == "citizen_lookalike" {
        0.3
    } else {
        0.6
    };
    let seen = noise::perturb(&truth.identity(), rng, strength);
    let mut m = Map::new();
    m.insert("message_id".into(), json!(format!("Q{query_seed}-{k:07}")));
    m.insert(
        "purpose".into(),
        json!(if rng.gen_bool(0.05) { "F" } else { "C" }),
    );
    m.insert(
        "attention".into(),
        json!(format!("DESK {}", rng.gen_range(1..40))),
    );
    m.insert(
        "phone".into(),
        json!(format!("555{:07}", rng.gen_range(0..10_000_000u32))),
    );
    let name = name_field(&seen);
    if !name.is_empty() {
        m.insert("name".into(), json!(name));
    }
    if let Some(d) = seen.dob {
        m.insert("dob".into(), json!(d.to_string()));
    }
    if let Some(s) = seen.sex {
        m.insert("sex".into(), json!(s.code()));
    }
    if rng.gen_bool(0.85) && !seen.country_of_birth.is_empty() {
        let code = if seen.country_of_birth == "US" {
            (state.len() == 2).then_some(state)
        } else {
            ncic_code(&seen.country_of_birth)
        };
        if let Some(c) = code {
            m.insert("place_of_birth".into(), json!(c));
        }
    }
    m.insert("in_custody".into(), json!(rng.gen_bool(0.7)));
    if let Some(o) = OFFENSES.choose(rng) {
        m.insert("offense_code".into(), json!(o));
    }
    // Identifiers the person really has, when the encounter produced them. Booking match
    // records (DHS's copy of an arrest's FBI number) are left out, so that the query set is
    // the one the world without them gave: figures stay comparable across that change.
    let own = || {
        records
            .iter()
            .filter(|r| !crate::person::is_booking_match(r))
    };
    let a_number = own().find_map(|r| r.identity.ids.a_number.clone());
    let fbi = own().find_map(|r| r.identity.ids.fbi_number.clone());
    let (p_a, p_fbi) = if truth.is_citizen() {
        (0.15, 0.3)
    } else {
        (0.4, 0.35)
    };
    if let Some(a) = a_number.filter(|_| rng.gen_bool(p_a)) {
        m.insert("a_number".into(), json!(a.as_str()));
    }
    if let Some(b) = fbi.filter(|_| rng.gen_bool(p_fbi)) {
        m.insert("fbi_number".into(), json!(b.as_str()));
    }
    if !state.is_empty() {
        m.insert("encounter_state".into(), json!(state));
    }
    if !county.is_empty() {
        m.insert("encounter_county".into(), json!(county));
    }
    if category == "citizenship_claim" {
        if rng.gen_bool(0.5) {
            m.insert("citizenship_claimed".into(), json!(true));
        } else {
            m.insert(
                "remarks".into(),
                json!("SUBJECT CLAIMS US CITIZENSHIP, NO DOCUMENTS"),
            );
        }
    }
    Value::Object(m)
}

/// Writes `dir/queries/iaq.jsonl` (one body a line) and `dir/queries/truth.csv`.
pub fn write_queries(dir: &Path, queries: &[GeneratedQuery]) -> Result<(), SynthError> {
    let qdir = dir.join("queries");
    std::fs::create_dir_all(&qdir).map_err(|cause| SynthError::Io {
        path: qdir.clone(),
        cause,
    })?;
    let jsonl = qdir.join("iaq.jsonl");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| SynthError::Io { path, cause }
    };
    let mut body = Vec::new();
    for q in queries {
        // serde_json never fails to write a Value into a Vec
        serde_json::to_writer(&mut body, &q.body).map_err(|e| SynthError::Config(e.to_string()))?;
        body.push(b'\n');
    }
    std::fs::File::create(&jsonl)
        .and_then(|mut f| f.write_all(&body))
        .map_err(io(&jsonl))?;
    let csv_path = qdir.join("truth.csv");
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let csv_err = |cause: csv::Error| SynthError::Csv {
        path: csv_path.clone(),
        cause,
    };
    w.write_record([
        "message_id",
        "ori",
        "person_id",
        "category",
        "status",
        "citizen",
    ])
    .map_err(csv_err)?;
    for q in queries {
        let id = q
            .body
            .get("message_id")
            .and_then(Value::as_str)
            .unwrap_or("");
        w.write_record([
            id,
            &q.ori,
            q.truth.person_id.as_deref().unwrap_or(""),
            &q.truth.category,
            q.truth.status.code(),
            if q.truth.citizen { "Y" } else { "N" },
        ])
        .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| SynthError::Config(format!("truth.csv: {}", e.error())))?;
    std::fs::write(&csv_path, bytes).map_err(io(&csv_path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seeds_same_queries_and_every_category_appears() {
        let a = generate_queries(3, 2_000, 150, 9);
        assert_eq!(a, generate_queries(3, 2_000, 150, 9));
        assert_eq!(a.len(), 150);
        for c in [
            "noncitizen",
            "citizen_lookalike",
            "no_record",
            "citizenship_claim",
        ] {
            assert!(a.iter().any(|q| q.truth.category == c), "no {c}");
        }
        for q in &a {
            assert!(q.body.get("message_id").is_some() && q.body.get("in_custody").is_some());
            let name = q.body.get("name").and_then(Value::as_str).unwrap_or("");
            assert!(name.chars().count() <= 30 && !name.contains('.'), "{name}");
            if q.truth.category == "no_record" {
                assert_eq!(q.truth.status, ImmigrationStatus::NoRecordFound);
                assert!(q.truth.person_id.is_none());
            }
            if q.truth.category == "citizen_lookalike" {
                assert!(q.truth.citizen);
            }
        }
    }

    #[test]
    fn ncic_codes_map_back_from_iso() {
        assert_eq!(ncic_code("MX"), Some("MX"));
        assert_eq!(ncic_code("SV"), Some("ES"));
        assert_eq!(ncic_code("ZZ"), None);
    }
}
