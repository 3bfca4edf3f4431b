//! NCATC, one person at a time: grouping records into persons, the citizenship sweep keys, the
//! last known place, and the lead decision with its evidence package.
//!
//! Everything here is pure (no store, no clock): the run in [`crate::ncatc`] feeds it pages of
//! records and writes what it returns, so the same records give the same leads on any backend.

use chrono::NaiveDate;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use verity_model::record::{BenefitOutcome, BenefitType, Disposition, RecordBody};
use verity_model::{Identity, ImmigrationStatus, PartialDate, Reference, SourceRecord};
use verity_policy::{
    derive_facts, LeadOutcome, LeadPolicy, Ongoing, ParkReason, PolicyError, PriorityPolicy,
    StatusRules,
};

/// The policies and tables a lead run evaluates with.
#[derive(Debug, Clone)]
pub struct LeadContext {
    pub rules: StatusRules,
    pub policy: LeadPolicy,
    pub priority: PriorityPolicy,
    pub reference: Reference,
}

/// Why a lead context could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("reference tables: {0}")]
    Reference(#[from] verity_model::ModelError),
}

impl LeadContext {
    /// The embedded policies, with `leads_toml` instead of the embedded lead rules when given.
    /// A bad file is refused with its line and reason (the caller keeps its last good context).
    pub fn load(leads_toml: Option<&str>) -> Result<LeadContext, ContextError> {
        let reference = Reference::embedded()?;
        let priority = PriorityPolicy::embedded(&reference.offenses)?;
        let policy = match leads_toml {
            Some(text) => LeadPolicy::load(text, &priority)?,
            None => LeadPolicy::embedded(&priority)?,
        };
        Ok(LeadContext {
            rules: StatusRules::embedded()?,
            policy,
            priority,
            reference,
        })
    }
}

/// Groups records into persons by shared strong identifiers (A-number, FIN, FBI number,
/// passport, SSN, state id): union-find over identifier values. Returns index groups, each
/// sorted, groups ordered by their first index.
///
/// Interim: the engine's model-checked `lesc::engine::group_records` replaces this once it
/// lands; every caller goes through this one function (or [`group_key_lists`], the same rule
/// over identifiers already extracted).
pub fn group_persons(records: &[SourceRecord]) -> Vec<Vec<usize>> {
    let keys: Vec<Vec<(u8, String)>> = records.iter().map(strong_keys).collect();
    group_key_lists(&keys)
}

/// The root of `i` in a union-find forest (`parent[root] == root`), halving the path.
pub(crate) fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Joins the sets of `a` and `b`; the smaller root stays the root, so each set's root is its
/// smallest member.
pub(crate) fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

/// [`group_persons`] over each record's [`strong_keys`]: records sharing any key are one
/// person. Groups are sorted, ordered by their first index.
pub fn group_key_lists(keys: &[Vec<(u8, String)>]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..keys.len()).collect();
    let mut first_with: HashMap<&(u8, String), usize> = HashMap::new();
    for (i, ks) in keys.iter().enumerate() {
        for key in ks {
            match first_with.get(key) {
                Some(&j) => union(&mut parent, i, j),
                None => {
                    first_with.insert(key, i);
                }
            }
        }
    }
    drop(first_with);
    // Roots are each group's smallest index, so ordering by root orders by first index.
    let mut slot: Vec<usize> = vec![usize::MAX; keys.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in 0..keys.len() {
        let root = find(&mut parent, i);
        if slot[root] == usize::MAX {
            slot[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[slot[root]].push(i);
    }
    groups
}

/// The strong identifiers of a record, tagged by kind.
pub fn strong_keys(r: &SourceRecord) -> Vec<(u8, String)> {
    // The store keeps these (hashed) in each record's digest: one definition for both.
    verity_store::scan::strong_identifiers(r)
}

/// The person key of a group: `NP-` and its smallest record id (stable while the group only
/// grows by records with larger ids; a merged group keeps one of its old keys).
pub fn person_key(records: &[SourceRecord]) -> String {
    let min = records
        .iter()
        .map(|r| r.record_id.as_str())
        .min()
        .unwrap_or("");
    format!("NP-{min}")
}

fn letters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// A record's names, then its aliases, as (family, given).
fn names_of(r: &SourceRecord) -> impl Iterator<Item = (&str, &str)> {
    std::iter::once(&r.identity.name)
        .chain(r.identity.aliases.iter())
        .map(|n| (n.family.as_str(), n.given.as_str()))
}

/// Name-and-birth-date keys of a record (family name or given name with the birth date, and
/// the day/month swap), used to find citizenship evidence identifiers did not link.
pub fn name_dob_keys(r: &SourceRecord) -> Vec<String> {
    name_dob_keys_from(names_of(r), r.identity.dob)
}

/// The sweep's hashes of [`name_dob_keys`] (sorted, each once), without a string per key.
pub fn name_dob_key_hashes(r: &SourceRecord) -> Vec<u64> {
    verity_store::scan::name_dob_key_hashes_from(names_of(r), r.identity.dob)
}

/// A person's citizenship sweep keys: the hashes of its records' [`name_dob_keys`], sorted,
/// each once.
pub fn person_citizen_key_hashes(records: &[SourceRecord]) -> Vec<u64> {
    person_key_hashes(records, name_dob_key_hashes)
}

/// A person's status sweep keys: the hashes of its records' [`full_name_dob_keys`], sorted,
/// each once.
pub fn person_status_key_hashes(records: &[SourceRecord]) -> Vec<u64> {
    person_key_hashes(records, full_name_dob_key_hashes)
}

/// `keys` of each record, sorted, each once. The keys depend only on a record's names,
/// aliases and birth date, which most of a person's records share, so each distinct (names,
/// aliases, birth date) is hashed once.
fn person_key_hashes(records: &[SourceRecord], keys: fn(&SourceRecord) -> Vec<u64>) -> Vec<u64> {
    let mut seen: Vec<&Identity> = Vec::new();
    let mut out = Vec::new();
    for r in records {
        let id = &r.identity;
        if seen
            .iter()
            .any(|s| s.dob == id.dob && s.name == id.name && s.aliases == id.aliases)
        {
            continue;
        }
        seen.push(id);
        out.extend(keys(r));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// [`name_dob_keys`] from a record's (family, given) names and birth date.
pub(crate) fn name_dob_keys_from<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
) -> Vec<String> {
    // The store derives the same keys on insert: one definition for both.
    verity_store::scan::name_dob_keys_from(names, dob)
}

/// Whether a record bears on immigration status (enforcement, court, benefits, travel).
pub fn bears_on_status(r: &SourceRecord) -> bool {
    verity_store::scan::bears_on_status(r)
}

/// Full-name-and-birth-date keys of a record: `S|name|name|date|`, the two names in sorted
/// order (a given/family swap between systems is common), for every name and alias and the
/// day/month swap. A status-bearing record with such a key outside a person's linked records
/// may be that person's (an executed removal, a grant): the status sweep parks such leads.
/// Also one name part with the initial of the other (`S|~part|initial|date|`), so a typo in
/// one part still meets. Stricter than [`name_dob_keys`] (one part alone is not enough)
/// because a looser key would withhold leads on namesakes. Stored with the holding record's id
/// (`lead_status_keys`).
pub fn full_name_dob_keys(r: &SourceRecord) -> Vec<String> {
    full_name_dob_keys_from(names_of(r), r.identity.dob)
}

/// The sweep's hashes of [`full_name_dob_keys`] (sorted, each once), without a string per key.
pub fn full_name_dob_key_hashes(r: &SourceRecord) -> Vec<u64> {
    verity_store::scan::full_name_dob_key_hashes_from(names_of(r), r.identity.dob)
}

/// [`full_name_dob_keys`] from a record's (family, given) names and birth date.
pub(crate) fn full_name_dob_keys_from<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
) -> Vec<String> {
    // The store derives the same keys on insert (see there for the key forms and why).
    verity_store::scan::full_name_dob_keys_from(names, dob)
}

/// Prefix of status sweep keys (citizenship keys start `F|` or `G|`; since migration 0006 the
/// two live in separate tables).
pub const STATUS_KEY_PREFIX: &str = verity_store::scan::STATUS_KEY_PREFIX;

/// Whether a record on its own indicates U.S. citizenship.
pub fn indicates_citizenship(r: &SourceRecord) -> bool {
    verity_store::scan::indicates_citizenship(r)
}

/// The date a record describes, for ordering a person's history.
pub fn record_date(r: &SourceRecord) -> Option<PartialDate> {
    match &r.body {
        RecordBody::Benefits(b) => b.decided.or(b.filed),
        RecordBody::Travel(t) => Some(t.date),
        RecordBody::Enforcement(e) => Some(e.date),
        RecordBody::Court(c) => c.decided.or(Some(c.filed)),
        RecordBody::Criminal(c) => Some(c.arrest_date),
        RecordBody::Custody(c) => Some(c.booking_date),
        RecordBody::Citizenship(c) => c.issued,
        RecordBody::Biometrics(b) => Some(b.enrolled),
    }
}

fn date_key(d: Option<PartialDate>) -> (u16, u8, u8) {
    d.map(|d| (d.year, d.month.unwrap_or(1), d.day.unwrap_or(1)))
        .unwrap_or((0, 0, 0))
}

/// Where the person is, as far as the records say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastKnown {
    /// `custody` (a booking with no release) or `address` (the newest record's address).
    pub kind: String,
    pub state: String,
    pub county: String,
    pub detail: String,
    pub since: Option<String>,
    pub record_id: String,
}

/// The last known place: a current custody, else the address on the newest dated record.
pub fn last_known(records: &[SourceRecord]) -> Option<LastKnown> {
    let custody = records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Custody(c) if c.released.is_none() => Some((r, c)),
            _ => None,
        })
        .max_by_key(|(r, c)| (date_key(Some(c.booking_date)), r.record_id.clone()));
    if let Some((r, c)) = custody {
        return Some(LastKnown {
            kind: "custody".into(),
            state: c.state.clone(),
            county: c.county.clone(),
            detail: format!("{} (booking {})", c.facility, c.booking_number),
            since: Some(c.booking_date.to_string()),
            record_id: r.record_id.clone(),
        });
    }
    records
        .iter()
        .filter(|r| !r.identity.address.region.is_empty())
        .max_by_key(|r| (date_key(record_date(r)), r.record_id.clone()))
        .map(|r| {
            let a = &r.identity.address;
            LastKnown {
                kind: "address".into(),
                state: a.region.clone(),
                county: a.county.clone(),
                detail: format!(
                    "{} {}, {} {}",
                    a.street_number, a.street, a.locality, a.postcode
                )
                .trim()
                .to_string(),
                since: record_date(r).map(|d| d.to_string()),
                record_id: r.record_id.clone(),
            }
        })
}

/// How surely a group of records is one person, with the reasons.
pub fn identity_confidence(records: &[SourceRecord]) -> (f64, Vec<String>) {
    let mut explanation = Vec::new();
    if records.len() == 1 {
        explanation.push("a single record".to_string());
        return (0.999, explanation);
    }
    let mut shared: BTreeMap<&'static str, usize> = BTreeMap::new();
    let kinds = [
        "A-number",
        "FIN",
        "FBI number",
        "passport",
        "SSN",
        "state id",
    ];
    // Sorted runs, not a hash map: a person has a handful of records and keys.
    let mut keys: Vec<(u8, String)> = records.iter().flat_map(strong_keys).collect();
    keys.sort_unstable();
    for run in keys.chunk_by(|a, b| a == b) {
        if let [(kind, _), _, ..] = run {
            *shared.entry(kinds[usize::from(*kind)]).or_default() += run.len();
        }
    }
    for (kind, n) in &shared {
        explanation.push(format!("{n} records share the {kind}"));
    }
    let mut p: f64 = 0.999;
    // Names conflict when two records share no similar name token at all (given and family
    // names pooled, so an order swap or a compound surname is no conflict).
    // Records of one person mostly spell the name alike, and a list is always similar to
    // itself: the distinct names' distinct token lists decide the same, with a handful of
    // pairs.
    let mut names: Vec<(&str, &str, &str)> = Vec::new();
    for r in records {
        let n = &r.identity.name;
        let name = (n.given.as_str(), n.middle.as_str(), n.family.as_str());
        if !names.contains(&name) {
            names.push(name);
        }
    }
    // One spelling is similar to itself: no tokens to build.
    let name_conflict = names.len() > 1 && {
        let mut tokens: Vec<Vec<String>> = names
            .iter()
            .map(|(given, middle, family)| {
                format!("{given} {middle} {family}")
                    .split_whitespace()
                    .map(letters)
                    .filter(|t| t.len() > 1)
                    .collect()
            })
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        let similar = |a: &[String], b: &[String]| {
            a.is_empty()
                || b.is_empty()
                || a.iter().any(|x| {
                    b.iter()
                        .any(|y| verity_names::similarity::jaro_winkler(x, y) >= 0.85)
                })
        };
        tokens
            .iter()
            .enumerate()
            .any(|(i, a)| tokens[i + 1..].iter().any(|b| !similar(a, b)))
    };
    if name_conflict {
        p -= 0.05;
        explanation.push("names differ between records".into());
    }
    let years: Vec<u16> = records
        .iter()
        .filter_map(|r| r.identity.dob.map(|d| d.year))
        .collect();
    if let (Some(lo), Some(hi)) = (years.iter().min(), years.iter().max()) {
        if hi - lo > 1 {
            p -= 0.05;
            explanation.push(format!("birth years differ ({lo} to {hi})"));
        } else {
            explanation.push("birth dates agree".into());
        }
    }
    (p, explanation)
}

/// Classes of admission of children of U.S. citizens (immigrant visas IR-2/3/4, IH-3/4, CR-2).
const CHILD_OF_CITIZEN_CLASSES: &[&str] = &["IR2", "IR3", "IR4", "IH3", "IH4", "CR2"];

/// Years of permanent residence after which naturalization may have happened unrecorded: three,
/// the shortest common path (a spouse of a U.S. citizen, INA 319(a)), not the general five.
/// With five, a naturalized citizen four years after the grant, whose naturalization no record
/// showed, got a lead once an incremental run raised the identity confidence (100k world).
const NATURALIZATION_ELIGIBLE_YEARS: i32 = 3;

/// Whether the records suggest citizenship no record shows: derived through a parent (Child
/// Citizenship Act: permanent residence obtained before 18, or admission as the child of a
/// U.S. citizen), or naturalization after at least three years of permanent residence (the
/// GAO's main cause of detainers on citizens: citizenship gained after the record). Such a
/// person goes to citizenship review, never straight to a lead.
pub fn possible_unrecorded_citizenship(records: &[SourceRecord], today: NaiveDate) -> bool {
    use chrono::Datelike;
    let lpr_long_ago = records.iter().any(|r| match &r.body {
        RecordBody::Benefits(b) => {
            b.outcome == BenefitOutcome::Granted
                && matches!(
                    b.benefit,
                    BenefitType::Adjustment | BenefitType::ImmigrantVisa
                )
                && b.decided.or(b.filed).is_none_or(|d| {
                    today.year() - i32::from(d.year) >= NATURALIZATION_ELIGIBLE_YEARS
                })
        }
        RecordBody::Travel(t) => {
            t.class_of_admission.eq_ignore_ascii_case("LPR")
                && today.year() - i32::from(t.date.year) >= NATURALIZATION_ELIGIBLE_YEARS
        }
        _ => false,
    });
    lpr_long_ago || possible_derived_citizenship(records)
}

/// Citizenship derived through a parent: permanent residence before 18, or admission as the
/// child of a U.S. citizen.
pub fn possible_derived_citizenship(records: &[SourceRecord]) -> bool {
    let dob = records
        .iter()
        .filter_map(|r| r.identity.dob)
        .find(|d| d.is_complete())
        .or_else(|| records.iter().find_map(|r| r.identity.dob));
    let minor_on = |d: Option<PartialDate>| -> bool {
        match (dob, d) {
            (Some(b), Some(d)) => {
                let years = i32::from(d.year) - i32::from(b.year);
                years < 18
                    || (years == 18
                        && date_key(Some(d)) < (d.year, b.month.unwrap_or(12), b.day.unwrap_or(31)))
            }
            _ => false,
        }
    };
    records.iter().any(|r| match &r.body {
        RecordBody::Benefits(b) => {
            b.outcome == BenefitOutcome::Granted
                && matches!(
                    b.benefit,
                    BenefitType::Adjustment | BenefitType::ImmigrantVisa
                )
                && minor_on(b.decided.or(b.filed))
        }
        RecordBody::Travel(t) => {
            let class: String = t
                .class_of_admission
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_uppercase();
            CHILD_OF_CITIZEN_CLASSES.contains(&class.as_str())
        }
        _ => false,
    })
}

/// What others are already doing about a person, and evidence found outside the group.
#[derive(Debug, Clone, Default)]
pub struct PersonContext {
    pub ongoing: Ongoing,
    /// Records outside the group share a name-and-birth-date key with citizenship evidence.
    pub citizen_key_match: bool,
    /// A status-bearing record outside the group shares a full-name-and-birth-date key with
    /// the group.
    pub unlinked_status_record: bool,
}

/// A lead decision for one person, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonResult {
    pub person_key: String,
    pub outcome: LeadOutcome,
    pub status: ImmigrationStatus,
    pub aor: Option<String>,
    pub identity_probability: f64,
    pub subject_name: String,
    /// The evidence package (JSON) when the outcome is a lead.
    pub evidence: Option<serde_json::Value>,
    /// Name-and-birth-date keys of the subject's records (for the later citizenship sweep).
    pub subject_keys: Vec<String>,
}

#[derive(Serialize)]
struct EvidenceRecord<'a> {
    record_id: &'a str,
    system: &'static str,
    date: Option<String>,
    summary: String,
    provenance: String,
}

fn summary_of(r: &SourceRecord) -> (String, String) {
    match &r.body {
        RecordBody::Benefits(b) => (
            format!("{} {} (receipt {})", b.benefit, b.outcome, b.receipt_number),
            "USCIS benefits system".into(),
        ),
        RecordBody::Travel(t) => (
            format!("{} as {} at {}", t.direction, t.class_of_admission, t.port),
            "arrival/departure records".into(),
        ),
        RecordBody::Enforcement(e) => (
            format!(
                "{}{}{}",
                e.event,
                e.order.map(|o| format!(" ({o} order)")).unwrap_or_default(),
                if e.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", e.detail)
                }
            ),
            format!("enforcement records, office {}", e.office),
        ),
        RecordBody::Court(c) => (
            format!("case {}: {}", c.case_number, c.outcome),
            "immigration court".into(),
        ),
        RecordBody::Criminal(c) => (
            format!("{} {} ({})", c.ncic_code, c.charge, c.disposition),
            format!(
                "criminal history, arresting agency {}",
                c.arresting_ori
                    .as_ref()
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
        ),
        RecordBody::Custody(c) => (
            format!(
                "booked at {} ({}, {}){}",
                c.facility,
                c.county,
                c.state,
                c.released
                    .map(|d| format!(", released {d}"))
                    .unwrap_or_default()
            ),
            format!("custody records, agency {}", c.ori),
        ),
        RecordBody::Citizenship(c) => (
            format!("{} {}", c.evidence, c.document_number),
            "citizenship records".into(),
        ),
        RecordBody::Biometrics(b) => (
            format!("fingerprints enrolled, FIN {}", b.fin),
            format!("biometric repository, captured by {}", b.captured_by),
        ),
    }
}

fn display_name(records: &[SourceRecord]) -> String {
    records
        .first()
        .map(|r| {
            let n = &r.identity.name;
            format!("{}, {} {}", n.family, n.given, n.middle)
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Evaluates one person (their records, sorted by record id) under the context's policies.
pub fn evaluate_person(
    ctx: &LeadContext,
    records: &[SourceRecord],
    person: &PersonContext,
    today: NaiveDate,
) -> PersonResult {
    let key = person_key(records);
    let facts = derive_facts(records, today);
    let determination = ctx.rules.determine(records, today);
    let (probability, explanation) = identity_confidence(records);
    let place = last_known(records);
    let aor = place
        .as_ref()
        .and_then(|p| ctx.reference.aors.office_for(&p.state, &p.county))
        .map(|o| o.0);
    let mut ongoing = person.ongoing;
    // A same-name-and-birth-date record with citizenship evidence counts as an open claim:
    // never a lead until a person has looked.
    ongoing.open_citizenship_claim |=
        person.citizen_key_match || possible_unrecorded_citizenship(records, today);
    let mut outcome = ctx.policy.evaluate(
        records,
        &facts,
        &determination,
        probability,
        place.is_some(),
        ongoing,
        &ctx.priority,
        &ctx.reference.offenses,
    );
    if outcome == LeadOutcome::CitizenshipReview {
        // Worth a citizenship review only when a lead rule would apply but for the citizenship
        // evidence; ordinary citizens' records are simply no lead.
        let mut without = determination.clone();
        without.citizenship_indicia.clear();
        without.status = determination
            .also_matched
            .first()
            .copied()
            .filter(|_| determination.status.is_citizen_or_potential())
            .unwrap_or(determination.status);
        let would = if without.status.is_citizen_or_potential() {
            LeadOutcome::None
        } else {
            ctx.policy.evaluate(
                records,
                &facts,
                &without,
                probability,
                place.is_some(),
                Ongoing {
                    open_citizenship_claim: false,
                    ..person.ongoing
                },
                &ctx.priority,
                &ctx.reference.offenses,
            )
        };
        if matches!(would, LeadOutcome::None) {
            outcome = LeadOutcome::None;
        }
    }
    if person.unlinked_status_record {
        if let LeadOutcome::Lead { rules, .. } = &outcome {
            // The status rests on linked records only; an immigration record of the same full
            // name and birth date that identifiers did not link may change it (an executed
            // removal, a grant, an order). Parked, with the reason, until an analyst links or
            // rules out that record.
            outcome = LeadOutcome::Parked {
                rules: rules.clone(),
                reason: ParkReason::UnlinkedStatusRecord,
                detail: "an immigration record with the same full name and birth date is not \
                         linked to this person: an analyst must link or rule it out"
                    .into(),
            };
        }
    }
    let subject_name = display_name(records);
    let evidence = match &outcome {
        LeadOutcome::Lead { rules, reasons } => {
            let mut sorted: Vec<&SourceRecord> = records.iter().collect();
            sorted.sort_by_key(|r| (date_key(record_date(r)), r.record_id.clone()));
            let evidence_records: Vec<EvidenceRecord> = sorted
                .iter()
                .map(|r| {
                    let (summary, provenance) = summary_of(r);
                    EvidenceRecord {
                        record_id: &r.record_id,
                        system: r.system().code(),
                        date: record_date(r).map(|d| d.to_string()),
                        summary,
                        provenance,
                    }
                })
                .collect();
            let criminal: Vec<serde_json::Value> = sorted
                .iter()
                .filter_map(|r| match &r.body {
                    RecordBody::Criminal(c) => Some(serde_json::json!({
                        "record_id": r.record_id,
                        "arrest_date": c.arrest_date.to_string(),
                        "ncic_code": c.ncic_code,
                        "charge": c.charge,
                        "disposition": c.disposition.code(),
                        "convicted": c.disposition == Disposition::Convicted,
                        "severity_class": ctx.priority.severity(&c.ncic_code, &ctx.reference.offenses).map(|i| format!("level{}", i + 1)),
                        "sentence_days": c.sentence_days,
                    })),
                    _ => None,
                })
                .collect();
            let first = records.first();
            Some(serde_json::json!({
                "person_key": key,
                "identity": {
                    "name": subject_name,
                    "dob": first.and_then(|r| r.identity.dob).map(|d| d.to_string()),
                    "sex": first.and_then(|r| r.identity.sex).map(|s| s.code()),
                    "country_of_birth": first.map(|r| r.identity.country_of_birth.clone()),
                    "a_number": records.iter().find_map(|r| r.identity.ids.a_number.as_ref().map(|a| a.to_string())),
                    "fbi_number": records.iter().find_map(|r| r.identity.ids.fbi_number.as_ref().map(|a| a.to_string())),
                    "confidence": probability,
                    "explanation": explanation,
                },
                "status": determination.status.code(),
                "status_basis": determination.basis,
                "rules_version": determination.rules_version,
                "records": evidence_records,
                "criminal_history": {
                    "arrests": criminal.len(),
                    "convictions": criminal.iter().filter(|c| c["convicted"] == serde_json::Value::Bool(true)).count(),
                    "events": criminal,
                },
                "last_known": place,
                "aor": aor,
                "rules": rules,
                "reasons": reasons,
                "policy_version": ctx.policy.version,
            }))
        }
        _ => None,
    };
    // Kept with a lead only (`apply_outcome`): not worth deriving for the other outcomes.
    let subject_keys = if matches!(outcome, LeadOutcome::Lead { .. }) {
        let mut k: Vec<String> = records.iter().flat_map(name_dob_keys).collect();
        k.sort();
        k.dedup();
        k
    } else {
        Vec::new()
    };
    PersonResult {
        person_key: key,
        outcome,
        status: determination.status,
        aor,
        identity_probability: probability,
        subject_name,
        evidence,
        subject_keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verity_model::record::*;
    use verity_model::{ANumber, Identity, PersonName};

    fn rec(id: &str, a: Option<&str>, body: RecordBody) -> SourceRecord {
        let mut identity = Identity {
            name: PersonName {
                given: "JUAN".into(),
                family: "PEREZ".into(),
                ..PersonName::default()
            },
            dob: PartialDate::full(1980, 3, 4).ok(),
            country_of_birth: "MX".into(),
            ..Identity::default()
        };
        identity.ids.a_number = a.and_then(|a| ANumber::parse(a).ok());
        identity.address.region = "MD".into();
        identity.address.county = "Baltimore".into();
        SourceRecord {
            record_id: id.into(),
            identity,
            body,
        }
    }

    fn lpr_grant(id: &str, year: u16) -> SourceRecord {
        rec(
            id,
            Some("A123456789"),
            RecordBody::Benefits(BenefitsRecord {
                receipt_number: "IOE0000000001".into(),
                benefit: BenefitType::Adjustment,
                outcome: BenefitOutcome::Granted,
                filed: PartialDate::full(year - 1, 5, 1).ok(),
                decided: PartialDate::full(year, 7, 30).ok(),
                valid_until: None,
            }),
        )
    }

    #[test]
    fn a_different_name_among_many_alike_is_a_conflict_and_repeats_are_none() {
        let mut records: Vec<SourceRecord> = (0..5)
            .map(|i| lpr_grant(&format!("BEN-{i}"), 2020))
            .collect();
        let (alike, why) = identity_confidence(&records);
        assert!(!why.iter().any(|w| w.contains("names differ")), "{why:?}");
        let mut other = lpr_grant("BEN-9", 2020);
        other.identity.name = PersonName::new("MARIA", "", "GOMEZ");
        records.insert(2, other);
        let (differ, why) = identity_confidence(&records);
        assert!(why.iter().any(|w| w.contains("names differ")), "{why:?}");
        assert!(differ < alike);
    }

    #[test]
    fn shared_identifiers_are_counted_per_kind_and_a_lone_one_is_not() {
        let mut records: Vec<SourceRecord> = (0..3)
            .map(|i| lpr_grant(&format!("BEN-{i}"), 2020))
            .collect();
        // A fourth record with another A-number: held once, so not shared.
        let mut lone = lpr_grant("BEN-9", 2020);
        lone.identity.ids.a_number = Some(ANumber::parse("A987654321").expect("a-number"));
        records.push(lone);
        let (_, why) = identity_confidence(&records);
        assert!(
            why.iter().any(|w| w == "3 records share the A-number"),
            "{why:?}"
        );
        assert!(!why.iter().any(|w| w.starts_with('4')), "{why:?}");
    }

    #[test]
    fn permanent_residence_three_years_old_may_hide_a_naturalization() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        // Four years after the grant a spouse of a citizen may have naturalized unrecorded.
        assert!(possible_unrecorded_citizenship(
            &[lpr_grant("BEN-1", 2022)],
            today
        ));
        // Two years after it nobody can have.
        assert!(!possible_unrecorded_citizenship(
            &[lpr_grant("BEN-2", 2024)],
            today
        ));
    }

    #[test]
    fn status_keys_meet_across_a_typo_in_one_name_part_but_not_across_other_names() {
        let keys = |given: &str, family: &str, dob: (u16, u8, u8)| {
            let mut r = lpr_grant("BEN-K", 2015);
            r.identity.name.given = given.into();
            r.identity.name.family = family.into();
            r.identity.dob = PartialDate::full(dob.0, dob.1, dob.2).ok();
            full_name_dob_keys(&r)
        };
        let meet = |a: &[String], b: &[String]| a.iter().any(|k| b.contains(k));
        let subject = keys("JUAN", "PEREZ", (1980, 3, 4));
        // Same person, written differently: a typo in either part, or the parts swapped.
        assert!(meet(&subject, &keys("JAUN", "PEREZ", (1980, 3, 4))));
        assert!(meet(&subject, &keys("JUAN", "PERES", (1980, 3, 4))));
        assert!(meet(&subject, &keys("PEREZ", "JUAN", (1980, 3, 4))));
        // A birth year one off, both ways.
        assert!(meet(&subject, &keys("JUAN", "PEREZ", (1981, 3, 4))));
        assert!(meet(&subject, &keys("JUAN", "PEREZ", (1979, 3, 4))));
        // Another person: another given name, or the same names born on another day.
        assert!(!meet(&subject, &keys("MIGUEL", "PEREZ", (1980, 3, 4))));
        assert!(!meet(&subject, &keys("JUAN", "LOPEZ", (1980, 3, 4))));
        assert!(!meet(&subject, &keys("JUAN", "PEREZ", (1980, 3, 5))));
        assert!(!meet(&subject, &keys("JUAN", "PEREZ", (1983, 3, 4))));
    }

    #[test]
    fn a_fingerprint_enrollment_joins_its_a_number_to_its_fin() {
        let fin = verity_model::Fin::parse("8231062975").expect("fin");
        let grant = lpr_grant("BEN-1", 2010);
        let mut arrest = order("ENF-1", None);
        arrest.identity.ids.fin = Some(fin.clone());
        let mut enrollment = rec(
            "BIO-1",
            Some("A123456789"),
            RecordBody::Biometrics(BiometricsRecord {
                fin,
                enrolled: PartialDate::full(2010, 6, 3).expect("date"),
                captured_by: RecordSystem::Benefits,
                fingers: 10,
            }),
        );
        enrollment.identity.ids.fin = None;
        let groups = |records: &[&SourceRecord]| {
            let keys: Vec<_> = records.iter().map(|r| strong_keys(r)).collect();
            group_key_lists(&keys).len()
        };
        assert_eq!(groups(&[&grant, &arrest]), 2);
        assert_eq!(groups(&[&grant, &arrest, &enrollment]), 1);
    }

    fn order(id: &str, a: Option<&str>) -> SourceRecord {
        rec(
            id,
            a,
            RecordBody::Enforcement(EnforcementRecord {
                event: EnforcementEvent::RemovalOrder,
                date: PartialDate::full(2020, 1, 2).expect("date"),
                order: Some(OrderKind::Final),
                entry: None,
                office: "BAL".into(),
                detail: String::new(),
            }),
        )
    }

    fn passport(id: &str, a: Option<&str>) -> SourceRecord {
        rec(
            id,
            a,
            RecordBody::Citizenship(CitizenshipRecord {
                evidence: CitizenshipEvidence::UsPassport,
                document_number: "123".into(),
                issued: None,
            }),
        )
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).expect("date")
    }

    #[test]
    fn groups_join_records_by_shared_identifiers_only() {
        let records = vec![
            order("E1", Some("012345678")),
            order("E2", None),
            passport("C1", Some("012345678")),
        ];
        assert_eq!(group_persons(&records), vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn a_final_order_with_an_address_is_a_lead_routed_by_county() {
        let ctx = LeadContext::load(None).expect("embedded policies");
        let r = evaluate_person(
            &ctx,
            &[order("E1", None)],
            &PersonContext::default(),
            today(),
        );
        assert!(
            matches!(r.outcome, LeadOutcome::Lead { .. }),
            "{:?}",
            r.outcome
        );
        assert_eq!(
            r.aor.as_deref(),
            ctx.reference
                .aors
                .office_for("MD", "Baltimore")
                .map(|o| o.0)
                .as_deref()
        );
        let e = r.evidence.expect("evidence");
        assert_eq!(e["records"][0]["record_id"], "E1");
        assert_eq!(e["policy_version"], ctx.policy.version.as_str());
        assert_eq!(e["person_key"], "NP-E1");
    }

    #[test]
    fn citizenship_evidence_in_the_group_or_by_name_and_dob_blocks_the_lead() {
        let ctx = LeadContext::load(None).expect("embedded policies");
        let mixed = [
            order("E1", Some("012345678")),
            passport("C1", Some("012345678")),
        ];
        let r = evaluate_person(&ctx, &mixed, &PersonContext::default(), today());
        assert_eq!(r.outcome, LeadOutcome::CitizenshipReview);
        assert!(r.evidence.is_none());
        let swept = PersonContext {
            citizen_key_match: true,
            ..PersonContext::default()
        };
        let r = evaluate_person(&ctx, &[order("E1", None)], &swept, today());
        assert_eq!(r.outcome, LeadOutcome::CitizenshipReview);
        // The sweep keys of the passport record match the order record's keys.
        let k1 = name_dob_keys(&passport("C1", None));
        let k2 = name_dob_keys(&order("E1", None));
        assert!(k1.iter().any(|k| k2.contains(k)));
        assert!(indicates_citizenship(&passport("C1", None)));
    }

    #[test]
    fn an_open_lead_parks_the_person() {
        let ctx = LeadContext::load(None).expect("embedded policies");
        let p = PersonContext {
            ongoing: Ongoing {
                open_lead: true,
                ..Ongoing::default()
            },
            ..PersonContext::default()
        };
        let r = evaluate_person(&ctx, &[order("E1", None)], &p, today());
        assert!(matches!(
            r.outcome,
            LeadOutcome::Parked {
                reason: verity_policy::ParkReason::OpenLead,
                ..
            }
        ));
    }
}
