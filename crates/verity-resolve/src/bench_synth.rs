//! Benchmark data from the synthetic world of `verity-synth` (the default generator of
//! `verity bench resolve`).
//!
//! One world (one seed) supplies everybody:
//! - **gallery**: persons `0, 1, 2, …` of the world that left at least one record; each is
//!   enrolled with one of their records, chosen at random, exactly as the record system holds
//!   it (the synth noise of that system, the identifiers that record carries). A person whose
//!   true name and birth date equal an earlier gallery person's is skipped: two people with
//!   the same name, the same birth date and no shared identifier cannot be told apart by
//!   definition, so they would only measure luck.
//! - **mated probes**: a noisy re-encounter of a gallery person: another of their records (the
//!   world generator made it with `noise::perturb` at that record system's strength, 0.25 for
//!   citizenship up to 0.9 for arrests and bookings); a person with a single record is
//!   re-encountered as `perturb` of their true identity with that record's identifiers, at the
//!   strength of a record system drawn at random.
//! - **hard negatives**: `noise::lookalike` of a gallery person with a common name (same name
//!   or a nickname/transliteration/shortened variant, same sex and country of birth), with the
//!   identifiers and address of a record of an unrelated person of the same U.S.-born or
//!   foreign-born kind, then `perturb`ed at that record's system strength. The true birth date
//!   always differs from the gallery person's by 1 to 365 days (`lookalike` keeps the same day
//!   15% of the time; such draws are redrawn, for the reason above).
//! - **other non-mated probes**: a record of a person who is not in the gallery, taken from an
//!   index range the world generator's own look-alikes cannot reach from the gallery.
//!
//! Records carry only what the benchmark files hold ([`as_written`]), so that Splink, reading
//! the files, sees the same data as Verity. The record systems' files carry a FIN and a state
//! id (`verity_model::record::IDENTITY_COLUMNS`), so the benchmark files do too by default;
//! `VERITY_BENCH_COLUMNS=16` leaves them out, as sessions 1–4 did ([`files_carry_fin_and_state_id`]).
//!
//! "Common" is measured in the gallery itself: the given name and the family name are each held
//! by at least 0.1% of the gallery's people (at least 2). Same seed, same bytes.

use super::{BenchConfig, World};
use crate::record::Record;
use chrono::Duration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet, VecDeque};
use verity_model::{Identity, PartialDate, RecordSystem, SourceRecord};
use verity_synth::{generate_person, noise, PersonTruth};

/// How far the world generator's look-alikes reach back (`person::lookalike_target`); other
/// non-mated probes start beyond it so that none is a deliberate look-alike of a gallery person.
const LOOKALIKE_REACH: u64 = 5_000;
/// First index of the persons who lend identifiers to hard negatives (a range of its own, far
/// below the 10^8 after which the world's identifier bijections would repeat).
const DONOR_BASE: u64 = 1 << 24;
/// Persons looked at, at most, per range (a world where nobody leaves records must not hang).
const MAX_SCAN: u64 = 1 << 23;

/// What a probe is, for the figures and the failure analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ProbeKind {
    Mated,
    HardNegative,
    OtherNonMated,
}

/// Where a probe's record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOrigin {
    pub kind: ProbeKind,
    /// The synth person behind the probe (for hard negatives: the look-alike's target).
    pub person_id: String,
    /// For hard negatives: the person whose record lent the identifiers and address.
    pub donor_id: Option<String>,
    /// The record system of the probe record (or of the record whose strength was used).
    pub system: RecordSystem,
    /// Mated probes only: a second record of the person (false: `perturb` of the truth).
    pub other_record: bool,
    /// The probe's true identity (name, birth date, sex, country of birth).
    pub truth: Identity,
}

/// Counts that describe how the data were drawn.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SynthStats {
    /// World persons looked at to fill the gallery.
    pub persons_scanned: u64,
    pub skipped_without_records: u64,
    /// Same true name and birth date as an earlier gallery person.
    pub skipped_same_name_and_dob: u64,
    /// Gallery persons with a common name (the hard negatives' targets).
    pub common_name_persons: usize,
    pub mated_from_other_record: usize,
    pub mated_from_perturb: usize,
    /// `lookalike` draws that kept the same birth date and were redrawn.
    pub lookalike_same_dob_redrawn: usize,
    /// Other non-mated probes whose true given + family name equals a gallery person's, with a
    /// birth date within a year (coincidences, counted but not labelled hard).
    pub other_with_namesake_within_a_year: usize,
}

/// What the evaluation needs to explain the generated benchmark.
#[derive(Debug, Clone)]
pub struct SynthInfo {
    /// Per gallery record: the synth person and their true identity.
    pub gallery_person: Vec<String>,
    pub gallery_truth: Vec<Identity>,
    pub gallery_system: Vec<RecordSystem>,
    /// Per probe (in file order).
    pub origin: Vec<ProbeOrigin>,
    pub stats: SynthStats,
}

/// The noise strength the world generator applies to a record of `system`
/// (mirrors `verity_synth::person`, which keeps it private).
pub fn system_strength(system: RecordSystem) -> f32 {
    match system {
        RecordSystem::Citizenship => 0.25,
        RecordSystem::Benefits => 0.4,
        RecordSystem::Travel => 0.5,
        RecordSystem::Enforcement => 0.7,
        RecordSystem::Court => 0.5,
        RecordSystem::Criminal | RecordSystem::Custody => 0.9,
        RecordSystem::Biometrics => 0.3,
    }
}

const SYSTEMS: [RecordSystem; 8] = [
    RecordSystem::Benefits,
    RecordSystem::Travel,
    RecordSystem::Enforcement,
    RecordSystem::Court,
    RecordSystem::Criminal,
    RecordSystem::Custody,
    RecordSystem::Citizenship,
    RecordSystem::Biometrics,
];

/// Whether the benchmark files carry the FIN and state id columns: yes unless the environment
/// variable `VERITY_BENCH_COLUMNS` is `16` (the 16 columns of sessions 1–4).
pub fn files_carry_fin_and_state_id() -> bool {
    std::env::var("VERITY_BENCH_COLUMNS").map_or(true, |v| v.trim() != "16")
}

/// The identity as the 16-column benchmark files carry it (see [`super::CSV_HEADER`]): no
/// aliases, original-script name, FIN, state id or county, and a birth date only when complete.
pub fn as_written(identity: Identity) -> Identity {
    as_written_with(identity, false)
}

/// [`as_written`], keeping the FIN and state id when `fin_and_state_id` (the files then have
/// the [`super::CSV_HEADER_WITH_IDS`] columns). The in-memory benchmark uses exactly this, so
/// Verity's figures and Splink's (which reads the files) rest on the same data.
pub fn as_written_with(mut identity: Identity, fin_and_state_id: bool) -> Identity {
    identity.aliases.clear();
    identity.name.original.clear();
    if !fin_and_state_id {
        identity.ids.fin = None;
        identity.ids.state_id = None;
    }
    identity.address.county.clear();
    if !identity.dob.is_some_and(|d| d.is_complete()) {
        identity.dob = None;
    }
    identity
}

/// A benchmark record as the files carry it. The resolution schema has no state-id role, so
/// the state id travels in the `other_id` column role (an identifier compared exactly).
fn written_record(id: String, identity: &Identity, fin_and_state_id: bool) -> Record {
    let mut identity = as_written_with(identity.clone(), fin_and_state_id);
    let state_id = identity.ids.state_id.take();
    let mut record = Record::new(id, identity);
    record.other_id = state_id.map(|s| s.to_string());
    record
}

/// Set to `1` to draw gallery and probe records from the booking match records too.
pub const BOOKING_MATCHES_ENV: &str = "VERITY_BENCH_BOOKING_MATCHES";

/// A person of the world, generated on as many threads as the machine has.
///
/// The DHS booking match records the generator adds since session 6 (a copy of a booking's
/// identity with its FIN and FBI number) are left out unless [`BOOKING_MATCHES_ENV`] is `1`, so
/// the benchmark's gallery and probes are drawn from the same records as in sessions 1–5 and
/// figures stay comparable.
fn persons(seed: u64, indices: &[u64]) -> Vec<(PersonTruth, Vec<SourceRecord>)> {
    let with_booking_matches = std::env::var(BOOKING_MATCHES_ENV).is_ok_and(|v| v == "1");
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(indices.len().max(1));
    let chunk = indices.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = indices
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&i| {
                            let (truth, mut records) = generate_person(seed, i);
                            if !with_booking_matches {
                                records.retain(|r| !verity_synth::person::is_booking_match(r));
                            }
                            (truth, records)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            // a panic in a worker is a bug in the generator: pass it on rather than lose rows
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn name_dob_key(t: &PersonTruth) -> (String, String, chrono::NaiveDate) {
    (t.name.given.clone(), t.name.family.clone(), t.dob)
}

/// One gallery entry while generating.
struct Enrolled {
    index: u64,
    truth: PersonTruth,
    record_pos: usize,
    records: usize,
    record: SourceRecord,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        items.get(rng.gen_range(0..items.len()))
    }
}

/// Identity of a re-encounter of `p` when the world has only one record of them.
fn perturbed_reencounter(
    truth: &PersonTruth,
    record: &SourceRecord,
    rng: &mut ChaCha8Rng,
) -> (Identity, RecordSystem) {
    let system = SYSTEMS[rng.gen_range(0..SYSTEMS.len())];
    let mut base = truth.identity();
    base.name.original.clear();
    base.ids = record.identity.ids.clone();
    base.address = record.identity.address.clone();
    (noise::perturb(&base, rng, system_strength(system)), system)
}

/// A look-alike of `target` whose true birth date differs by 1 to 365 days.
fn hard_lookalike(target: &Identity, rng: &mut ChaCha8Rng, redrawn: &mut usize) -> Identity {
    for _ in 0..16 {
        let l = noise::lookalike(target, rng);
        if l.dob != target.dob {
            return l;
        }
        *redrawn += 1;
    }
    let mut l = noise::lookalike(target, rng);
    if let Some(d) = target.dob.and_then(|d| d.to_naive()) {
        let days = rng.gen_range(1..=365i64) * if rng.gen_bool(0.5) { 1 } else { -1 };
        let shifted = d.checked_add_signed(Duration::days(days)).unwrap_or(d);
        l.dob = Some(PartialDate::from(shifted));
    }
    l
}

/// Gallery people whose given and family names are common in the gallery.
fn common_name_people(gallery: &[Enrolled]) -> Vec<usize> {
    let mut given: HashMap<&str, usize> = HashMap::new();
    let mut family: HashMap<&str, usize> = HashMap::new();
    for e in gallery {
        *given.entry(e.truth.name.given.as_str()).or_default() += 1;
        *family.entry(e.truth.name.family.as_str()).or_default() += 1;
    }
    let min = (gallery.len() / 1000).max(2);
    let common: Vec<usize> = (0..gallery.len())
        .filter(|&k| {
            let n = &gallery[k].truth.name;
            given.get(n.given.as_str()).copied().unwrap_or(0) >= min
                && family.get(n.family.as_str()).copied().unwrap_or(0) >= min
        })
        .collect();
    if common.is_empty() {
        (0..gallery.len()).collect()
    } else {
        common
    }
}

/// Generates the benchmark from the synthetic world with `cfg.seed`: `cfg.identities` gallery
/// records, `cfg.probes` probes, half mated, `ceil(probes × hard_negative_share)` hard
/// negatives (at most the non-mated half), the rest other non-mated people.
pub fn generate_synth(cfg: &BenchConfig) -> (World, SynthInfo) {
    let seed = cfg.seed;
    let with_ids = files_carry_fin_and_state_id();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xBE7C_5EED);
    let mut stats = SynthStats::default();

    // gallery: scan the world in batches (generation is parallel, selection sequential)
    let mut gallery: Vec<Enrolled> = Vec::with_capacity(cfg.identities);
    let mut seen: HashSet<(String, String, chrono::NaiveDate)> = HashSet::new();
    let mut next: u64 = 0;
    while gallery.len() < cfg.identities && next < MAX_SCAN {
        let want = (cfg.identities - gallery.len()) as u64;
        let batch: Vec<u64> = (next..next + want + want / 4 + 16).collect();
        next = batch.last().map_or(next, |l| l + 1);
        for (index, (truth, mut records)) in batch.iter().copied().zip(persons(seed, &batch)) {
            if gallery.len() >= cfg.identities {
                break;
            }
            stats.persons_scanned = index + 1;
            if records.is_empty() {
                stats.skipped_without_records += 1;
                continue;
            }
            if !seen.insert(name_dob_key(&truth)) {
                stats.skipped_same_name_and_dob += 1;
                continue;
            }
            let record_pos = rng.gen_range(0..records.len());
            let n = records.len();
            let record = records.swap_remove(record_pos);
            gallery.push(Enrolled {
                index,
                truth,
                record_pos,
                records: n,
                record,
            });
        }
    }
    let common = common_name_people(&gallery);
    stats.common_name_persons = common.len();

    let n_mated = cfg.probes / 2;
    let n_hard =
        ((cfg.probes as f64 * cfg.hard_negative_share).ceil() as usize).min(cfg.probes - n_mated);
    let n_other = cfg.probes - n_mated - n_hard;

    // mated: draw the people first, then regenerate them in parallel for their other records
    let mated_people: Vec<usize> = (0..n_mated)
        .map(|_| rng.gen_range(0..gallery.len().max(1)))
        .collect();
    let mut probes: Vec<(Identity, Option<u32>, ProbeOrigin)> = Vec::with_capacity(cfg.probes);
    if !gallery.is_empty() {
        let indices: Vec<u64> = mated_people.iter().map(|&g| gallery[g].index).collect();
        for (&g, (truth, records)) in mated_people.iter().zip(persons(seed, &indices)) {
            let e = &gallery[g];
            let others: Vec<&SourceRecord> = records
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != e.record_pos)
                .map(|(_, r)| r)
                .collect();
            let (identity, system, other_record) = match pick(&mut rng, &others) {
                Some(r) if e.records > 1 => (r.identity.clone(), r.system(), true),
                _ => {
                    let (i, s) = perturbed_reencounter(&truth, &e.record, &mut rng);
                    (i, s, false)
                }
            };
            if other_record {
                stats.mated_from_other_record += 1;
            } else {
                stats.mated_from_perturb += 1;
            }
            let mut t = truth.identity();
            t.name.original.clear();
            probes.push((
                identity,
                Some(g as u32),
                ProbeOrigin {
                    kind: ProbeKind::Mated,
                    person_id: truth.person_id.clone(),
                    donor_id: None,
                    system,
                    other_record,
                    truth: t,
                },
            ));
        }
    }

    // people outside the gallery: beyond the look-alike reach of the last gallery person
    let outside_base = gallery.last().map_or(0, |e| e.index) + LOOKALIKE_REACH + 1;
    let mut namesakes: HashMap<(&str, &str), Vec<chrono::NaiveDate>> = HashMap::new();
    for e in &gallery {
        namesakes
            .entry((e.truth.name.given.as_str(), e.truth.name.family.as_str()))
            .or_default()
            .push(e.truth.dob);
    }
    let mut cursor = outside_base;
    let mut other_probes = Vec::with_capacity(n_other);
    while other_probes.len() < n_other && cursor < outside_base + MAX_SCAN {
        let want = (n_other - other_probes.len()) as u64;
        let batch: Vec<u64> = (cursor..cursor + want + want / 4 + 8).collect();
        cursor = batch.last().map_or(cursor, |l| l + 1);
        for (truth, records) in persons(seed, &batch) {
            if other_probes.len() >= n_other {
                break;
            }
            let Some(r) = pick(&mut rng, &records) else {
                continue;
            };
            let key = (truth.name.given.as_str(), truth.name.family.as_str());
            if namesakes
                .get(&key)
                .is_some_and(|ds| ds.iter().any(|d| (*d - truth.dob).num_days().abs() <= 365))
            {
                stats.other_with_namesake_within_a_year += 1;
            }
            let mut t = truth.identity();
            t.name.original.clear();
            other_probes.push((
                r.identity.clone(),
                None,
                ProbeOrigin {
                    kind: ProbeKind::OtherNonMated,
                    person_id: truth.person_id.clone(),
                    donor_id: None,
                    system: r.system(),
                    other_record: false,
                    truth: t,
                },
            ));
        }
    }

    // hard negatives: a look-alike of a common-name gallery person, with a donor's identifiers
    let donor_base = DONOR_BASE.max(outside_base + MAX_SCAN);
    let mut donor_cursor = donor_base;
    let mut donors: [VecDeque<(String, SourceRecord)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut hard_probes = Vec::with_capacity(n_hard);
    for _ in 0..n_hard {
        let Some(&g) = pick(&mut rng, &common) else {
            break;
        };
        let mut target = gallery[g].truth.identity();
        target.name.original.clear();
        let l = hard_lookalike(&target, &mut rng, &mut stats.lookalike_same_dob_redrawn);
        let us_born = usize::from(l.country_of_birth == "US");
        while donors[us_born].is_empty() && donor_cursor < donor_base + MAX_SCAN {
            let batch: Vec<u64> = (donor_cursor..donor_cursor + 64).collect();
            donor_cursor += 64;
            for (truth, records) in persons(seed, &batch) {
                if let Some(r) = pick(&mut rng, &records) {
                    let kind = usize::from(truth.country_of_birth == "US");
                    donors[kind].push_back((truth.person_id.clone(), r.clone()));
                }
            }
        }
        let Some((donor_id, donor)) = donors[us_born].pop_front() else {
            break;
        };
        let system = donor.system();
        let base = Identity {
            ids: donor.identity.ids.clone(),
            address: donor.identity.address.clone(),
            ..l.clone()
        };
        let identity = noise::perturb(&base, &mut rng, system_strength(system));
        hard_probes.push((
            identity,
            None,
            ProbeOrigin {
                kind: ProbeKind::HardNegative,
                person_id: gallery[g].truth.person_id.clone(),
                donor_id: Some(donor_id),
                system,
                other_record: false,
                truth: l,
            },
        ));
    }
    probes.extend(hard_probes);
    probes.extend(other_probes);

    // shuffle so that file order does not reveal the probe kind
    let mut order: Vec<usize> = (0..probes.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    let mut records = Vec::with_capacity(probes.len());
    let mut mate = Vec::with_capacity(probes.len());
    let mut hard = Vec::with_capacity(probes.len());
    let mut origin = Vec::with_capacity(probes.len());
    for (new, &old) in order.iter().enumerate() {
        let (identity, m, o) = &probes[old];
        records.push(written_record(format!("p{new}"), identity, with_ids));
        mate.push(*m);
        hard.push(o.kind == ProbeKind::HardNegative);
        origin.push(o.clone());
    }
    let world = World {
        gallery: gallery
            .iter()
            .enumerate()
            .map(|(k, e)| written_record(format!("g{k}"), &e.record.identity, with_ids))
            .collect(),
        probes: records,
        mate,
        hard_negative: hard,
    };
    let info = SynthInfo {
        gallery_person: gallery.iter().map(|e| e.truth.person_id.clone()).collect(),
        gallery_truth: gallery
            .iter()
            .map(|e| {
                let mut t = e.truth.identity();
                t.name.original.clear();
                t
            })
            .collect(),
        gallery_system: gallery.iter().map(|e| e.record.system()).collect(),
        origin,
        stats,
    };
    (world, info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_model::{Fin, StateId};

    #[test]
    fn fin_and_state_id_reach_the_record_only_when_the_files_carry_them() {
        let mut identity = Identity::default();
        identity.ids.fin = Fin::parse("1234567890").ok();
        identity.ids.state_id = StateId::parse("TX12345678").ok();
        let with = written_record("g0".into(), &identity, true);
        assert_eq!(with.identity.ids.fin, identity.ids.fin);
        // the state id travels as other_id (the schema has no state-id role)
        assert_eq!(with.identity.ids.state_id, None);
        assert_eq!(with.other_id.as_deref(), Some("TX12345678"));
        let without = written_record("g0".into(), &identity, false);
        assert_eq!(without.identity.ids.fin, None);
        assert_eq!(without.other_id, None);
    }
}
