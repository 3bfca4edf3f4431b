//! NCATC full-run scan: what a lead run keeps of each record while reading the whole store.
//!
//! A full run reads every record once to link them into persons and to collect the sweep
//! keys; only the persons a lead rule could apply to are read again, whole. This first pass
//! needs a record's id, system, identifiers and sweep keys. Every insert stores exactly that,
//! hashed, as the record's digest (`verity_store::scan::RecordDigest`, one chunk per insert),
//! so the pass reads a few large rows ([`add_chunk`]). Records without a digest (stored before
//! migration 0008) are read from their JSON through a borrowed view that skips everything else
//! (no strings copied, no dates or identifiers validated, no internally-tagged body buffered)
//! and digested here ([`scan_page`]). The keys come from the same functions as for a decoded
//! record; tests check that both paths agree on a generated world.
//!
//! Which persons are read again is decided by [`LeadScreen`]: each digest also holds the
//! record's lead facets (final order, removal, in absentia, an admission that may become an
//! overstay, a criminal charge's offense code and whether it ended in a conviction), and the
//! screen, read from the run's lead and priority policies, keeps a person only when some rule
//! could apply to those facets together. Digests written before facets were kept (format 1)
//! are digested again from their records' JSON by the next full run.

#[path = "ncatc_map.rs"]
pub(crate) mod map;

#[path = "ncatc_column.rs"]
pub(crate) mod column;
use column::{Column, Fixed};

use crate::ncatc::person;
use map::MapLinks;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use verity_model::record::{
    CourtOutcome, CourtRecord, CriminalRecord, Disposition, EnforcementEvent, EnforcementRecord,
    OrderKind, RecordBody, TravelDirection, TravelRecord,
};
use verity_model::{Identity, ImmigrationStatus};
use verity_model::{PartialDate, RecordSystem, SourceRecord};
use verity_policy::{Determination, Fact, FactName, LeadOutcome, Ongoing};
use verity_store::scan::{
    DigestChunk, DigestRef, FacetsRef, LeadFacets, RawRecord, RecordDigest, SweepKeys,
};
use verity_store::StoreError;

/// What a full run keeps of one record while scanning: enough to link it and to sweep, not the
/// record itself (which is read again, by rev, only for persons a lead rule could apply to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scanned {
    pub rev: i64,
    pub record_id: String,
    pub system: RecordSystem,
    pub may_lead: bool,
    pub keys: Vec<(u8, String)>,
    pub citizen_keys: Vec<String>,
    pub status_keys: Vec<String>,
    /// What a lead rule may rest on in the record (stored in its digest).
    pub facets: LeadFacets,
}

/// Whether a record of this system can make its person's status one a lead rule applies to.
/// Criminal, custody and citizenship records never give an immigration status on their own
/// (the status rules read immigration records: enforcement, court, travel, benefits,
/// biometrics), so persons with only such records are no lead and are not read again.
pub(crate) fn system_may_lead(system: RecordSystem) -> bool {
    !matches!(
        system,
        RecordSystem::Criminal | RecordSystem::Custody | RecordSystem::Citizenship
    )
}

/// [`system_may_lead`] for a decoded record.
#[cfg(test)]
pub(crate) fn may_lead(r: &SourceRecord) -> bool {
    system_may_lead(r.system())
}

#[derive(Deserialize)]
struct NameView<'a> {
    #[serde(borrow)]
    given: Cow<'a, str>,
    #[serde(borrow)]
    family: Cow<'a, str>,
}

#[derive(Deserialize)]
struct IdsView<'a> {
    #[serde(borrow)]
    a_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    fin: Option<Cow<'a, str>>,
    #[serde(borrow)]
    fbi_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    passport: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ssn: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IdentityView<'a> {
    #[serde(borrow)]
    name: NameView<'a>,
    #[serde(borrow)]
    aliases: Vec<NameView<'a>>,
    #[serde(borrow)]
    dob: Option<Cow<'a, str>>,
    #[serde(borrow)]
    country_of_birth: Cow<'a, str>,
    #[serde(borrow)]
    ids: IdsView<'a>,
}

/// The body fields the scan reads: the system tag, a benefit's type and outcome, and what the
/// record's lead facets rest on ([`LeadFacets::of`]).
#[derive(Deserialize)]
struct BodyView<'a> {
    #[serde(borrow)]
    system: Cow<'a, str>,
    #[serde(borrow, default)]
    benefit: Option<Cow<'a, str>>,
    /// A benefit's or a court case's outcome.
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    order: Option<Cow<'a, str>>,
    #[serde(default)]
    appeal_pending: bool,
    #[serde(borrow, default)]
    direction: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    class_of_admission: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    admit_until: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ncic_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    disposition: Option<Cow<'a, str>>,
    /// A biometrics record's FIN (see `person::strong_keys`).
    #[serde(borrow, default)]
    fin: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RecordView<'a> {
    #[serde(borrow)]
    identity: IdentityView<'a>,
    #[serde(borrow)]
    body: BodyView<'a>,
}

fn corrupt(raw: &RawRecord, problem: String) -> StoreError {
    StoreError::Corrupt {
        table: "records",
        key: raw.record_id.clone(),
        problem,
    }
}

/// The lead facets of a viewed record: the fields they rest on, put into a body of the
/// record's system with placeholders elsewhere, given to [`LeadFacets::of`] (one definition).
fn view_facets(
    raw: &RawRecord,
    system: RecordSystem,
    b: &BodyView<'_>,
) -> Result<LeadFacets, StoreError> {
    let bad = |field: &str, e: verity_model::FieldError| {
        corrupt(raw, format!("body.{field}: {}", e.problem))
    };
    let placeholder_date = PartialDate {
        year: 2000,
        month: None,
        day: None,
    };
    let text = |v: &Option<Cow<'_, str>>| v.as_deref().unwrap_or("").to_string();
    let body = match system {
        RecordSystem::Enforcement => RecordBody::Enforcement(EnforcementRecord {
            event: EnforcementEvent::parse(b.event.as_deref().unwrap_or(""))
                .map_err(|e| bad("event", e))?,
            date: placeholder_date,
            order: match b.order.as_deref() {
                Some(o) => Some(OrderKind::parse(o).map_err(|e| bad("order", e))?),
                None => None,
            },
            entry: None,
            office: String::new(),
            detail: String::new(),
        }),
        RecordSystem::Court => RecordBody::Court(CourtRecord {
            case_number: String::new(),
            filed: placeholder_date,
            outcome: CourtOutcome::parse(b.outcome.as_deref().unwrap_or(""))
                .map_err(|e| bad("outcome", e))?,
            decided: None,
            relief: String::new(),
            appeal_pending: b.appeal_pending,
        }),
        RecordSystem::Travel => RecordBody::Travel(TravelRecord {
            direction: TravelDirection::parse(b.direction.as_deref().unwrap_or(""))
                .map_err(|e| bad("direction", e))?,
            date: placeholder_date,
            class_of_admission: text(&b.class_of_admission),
            admit_until: b.admit_until.as_ref().map(|_| placeholder_date),
            port: String::new(),
        }),
        RecordSystem::Criminal => RecordBody::Criminal(CriminalRecord {
            arrest_date: placeholder_date,
            arresting_ori: None,
            ncic_code: text(&b.ncic_code),
            charge: String::new(),
            disposition: Disposition::parse(b.disposition.as_deref().unwrap_or(""))
                .map_err(|e| bad("disposition", e))?,
            disposition_date: None,
            sentence_days: None,
            flags: Vec::new(),
        }),
        // No facets rest on other systems.
        _ => return Ok(LeadFacets::default()),
    };
    Ok(LeadFacets::of(&SourceRecord {
        record_id: String::new(),
        identity: Identity::default(),
        body,
    }))
}

/// Scans one stored record through the borrowed view.
pub(crate) fn scan_raw(raw: &RawRecord) -> Result<Scanned, StoreError> {
    let v: RecordView<'_> =
        serde_json::from_str(&raw.json).map_err(|e| corrupt(raw, e.to_string()))?;
    let system = RecordSystem::parse(&v.body.system)
        .map_err(|e| corrupt(raw, format!("body.system: {}", e.problem)))?;
    let dob = match v.identity.dob.as_deref() {
        Some(d) => Some(
            PartialDate::parse_iso(d)
                .map_err(|e| corrupt(raw, format!("identity.dob: {}", e.problem)))?,
        ),
        None => None,
    };
    let ids = &v.identity.ids;
    // The same kinds, order and text as `person::strong_keys` (identifiers serialize as their
    // display form).
    let mut keys: Vec<(u8, String)> = [
        (0u8, &ids.a_number),
        (1, &ids.fin),
        (2, &ids.fbi_number),
        (3, &ids.passport),
        (4, &ids.ssn),
        (5, &ids.state_id),
    ]
    .into_iter()
    .filter_map(|(tag, v)| v.as_deref().map(|v| (tag, v.to_string())))
    .collect();
    if system == RecordSystem::Biometrics {
        if let Some(fin) = v.body.fin.as_deref() {
            if !keys.iter().any(|(tag, v)| *tag == 1 && v == fin) {
                keys.push((1, fin.to_string()));
            }
        }
    }
    let names = || {
        std::iter::once(&v.identity.name)
            .chain(v.identity.aliases.iter())
            .map(|n| (n.family.as_ref(), n.given.as_ref()))
    };
    // As `person::indicates_citizenship`.
    let citizen = v.identity.country_of_birth == "US"
        || system == RecordSystem::Citizenship
        || (system == RecordSystem::Benefits
            && v.body.outcome.as_deref() == Some("granted")
            && matches!(
                v.body.benefit.as_deref(),
                Some("naturalization" | "citizenship_certificate")
            ));
    // As `person::bears_on_status`.
    let bears = matches!(
        system,
        RecordSystem::Enforcement
            | RecordSystem::Court
            | RecordSystem::Benefits
            | RecordSystem::Travel
    );
    let facets = view_facets(raw, system, &v.body)?;
    Ok(Scanned {
        facets,
        rev: raw.rev,
        record_id: raw.record_id.clone(),
        system,
        may_lead: system_may_lead(system),
        keys,
        citizen_keys: if citizen {
            person::name_dob_keys_from(names(), dob)
        } else {
            Vec::new()
        },
        status_keys: if bears {
            person::full_name_dob_keys_from(names(), dob)
        } else {
            Vec::new()
        },
    })
}

// ---------------------------------------------------------------------------------------------
// The screen: which persons a lead rule could apply to, from their records' facets.
// ---------------------------------------------------------------------------------------------

/// No offense class: no criminal record, or an offense in none of the policy's classes.
const NO_CLASS: u8 = u8::MAX;
/// [`RecordLead`] flag: the record's system may lead ([`system_may_lead`]).
const SYSTEM_MAY_LEAD: u8 = 0x40;
/// [`RecordLead`] flag: the record's facets are unknown (a digest written before they were
/// kept, or an offense class the screen cannot tell): its person is judged by system alone.
const FACETS_UNKNOWN: u8 = 0x80;

/// What the screen keeps of one record: its facet bits with the flags above, and its offense
/// class under the run's priority policy (two bytes per record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordLead {
    flags: u8,
    class: u8,
}

impl RecordLead {
    /// Its two bytes, for the person map.
    pub(crate) fn to_bytes(self) -> [u8; 2] {
        [self.flags, self.class]
    }

    pub(crate) fn from_bytes(b: [u8; 2]) -> RecordLead {
        RecordLead {
            flags: b[0],
            class: b[1],
        }
    }
}

/// A person's records folded together for the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeadProfile {
    flags: u8,
    /// Most severe class of a conviction ([`NO_CLASS`] if none).
    convicted: u8,
    /// Most severe class of any charge, convicted or not.
    charged: u8,
}

impl Default for LeadProfile {
    fn default() -> Self {
        LeadProfile {
            flags: 0,
            convicted: NO_CLASS,
            charged: NO_CLASS,
        }
    }
}

impl LeadProfile {
    pub fn add(&mut self, r: RecordLead) {
        self.flags |= r.flags;
        if r.flags & LeadFacets::CRIMINAL != 0 {
            self.charged = self.charged.min(r.class);
            if r.flags & LeadFacets::CONVICTED != 0 {
                self.convicted = self.convicted.min(r.class);
            }
        }
    }
}

/// The record facets a fact needs: a person has the fact only if one of their records has
/// these bits (0: no facet tells, so the fact counts as possible for everyone). Checked against
/// `derive_facts` on generated worlds (tests): a change there that breaks this fails them.
fn witness_bits(f: FactName) -> u8 {
    match f {
        FactName::FinalOrder => LeadFacets::FINAL_ORDER,
        FactName::InAbsentiaOrder => LeadFacets::IN_ABSENTIA,
        // Presence after removal needs a removal first.
        FactName::Removed | FactName::PresentAfterRemoval => LeadFacets::REMOVAL,
        FactName::NonimmigrantOverstay => LeadFacets::ADMISSION,
        _ => 0,
    }
}

/// [`witness_bits`], for tests.
#[cfg(test)]
pub(crate) fn witness_bits_of(f: FactName) -> u8 {
    witness_bits(f)
}

/// One lead rule as the screen knows it: the facet bits its facts need, and whether it
/// applies for each (conviction class, charge class), both indexed `0..=classes` with
/// `classes` meaning none.
#[derive(Debug, Clone)]
struct RuleNeeds {
    bits: u8,
    applies: Vec<bool>,
}

#[derive(Debug)]
struct ScreenInner {
    /// `None`: the policy could not be read this way; the screen is the system test alone.
    rules: Option<Vec<RuleNeeds>>,
    /// Severity classes of the priority policy that have an offense code.
    classes: usize,
    priority: verity_policy::PriorityPolicy,
    offenses: verity_model::OffenseTable,
}

/// Decides, from a person's records' facets and the lead policy of the run, whether any lead
/// rule could apply to the person: a necessary condition, never a sufficient one, so a person
/// it turns away would have had no rule apply (outcome "no rule"), and is not read or
/// evaluated. Persons with only criminal, custody or citizenship records are turned away as
/// before ([`system_may_lead`]).
///
/// The rules are read by asking the policy itself ([`verity_policy::LeadPolicy::evaluate`])
/// about small made-up persons: for each rule the smallest set of facts under which it
/// applies (up to three facts; a rule that needs more makes the screen fall back to the
/// system test), then for each pair of offense classes whether it still applies. So a changed
/// policy file changes the screen with no code or data change.
#[derive(Debug, Clone)]
pub struct LeadScreen(Arc<ScreenInner>);

/// Facts a rule may need at most for the screen to find it.
const MAX_RULE_FACTS: usize = 3;

impl LeadScreen {
    /// The screen of a lead context's policies.
    pub fn new(ctx: &person::LeadContext) -> LeadScreen {
        let mut reps: BTreeMap<usize, String> = BTreeMap::new();
        for o in ctx.reference.offenses.all() {
            if let Some(c) = ctx.priority.severity(&o.code, &ctx.reference.offenses) {
                reps.entry(c).or_insert_with(|| o.code.clone());
            }
        }
        // Classes 0..n, each with an offense code, and fewer than NO_CLASS.
        let classes = (0..).take_while(|c| reps.contains_key(c)).count();
        let rules = if reps.len() == classes && classes < usize::from(NO_CLASS) {
            probe_rules(ctx, &reps, classes)
        } else {
            None
        };
        LeadScreen(Arc::new(ScreenInner {
            rules,
            classes,
            priority: ctx.priority.clone(),
            offenses: ctx.reference.offenses.clone(),
        }))
    }

    /// The screen of the system test alone (every person with a record of a may-lead system).
    pub fn by_system(ctx: &person::LeadContext) -> LeadScreen {
        LeadScreen(Arc::new(ScreenInner {
            rules: None,
            classes: 0,
            priority: ctx.priority.clone(),
            offenses: ctx.reference.offenses.clone(),
        }))
    }

    /// Whether the screen reads the rules (false: it is the system test alone).
    pub fn reads_rules(&self) -> bool {
        self.0.rules.is_some()
    }

    /// What the screen keeps of a record of `system` with these facets (`None`: unknown).
    pub(crate) fn record(&self, system: RecordSystem, facets: Option<FacetsRef<'_>>) -> RecordLead {
        let system_bit = if system_may_lead(system) {
            SYSTEM_MAY_LEAD
        } else {
            0
        };
        let Some(f) = facets else {
            return RecordLead {
                flags: system_bit | FACETS_UNKNOWN,
                class: NO_CLASS,
            };
        };
        let mut flags = system_bit | (f.flags & LeadFacets::KNOWN);
        let mut class = NO_CLASS;
        if f.flags & LeadFacets::CRIMINAL != 0 {
            match self.0.priority.severity(f.ncic_code, &self.0.offenses) {
                Some(c) if c < self.0.classes => class = c as u8,
                Some(_) => flags |= FACETS_UNKNOWN,
                None => {}
            }
        }
        RecordLead { flags, class }
    }

    /// [`LeadScreen::record`] of a decoded record.
    pub(crate) fn decoded(&self, r: &SourceRecord) -> RecordLead {
        let facets = LeadFacets::of(r);
        self.record(r.system(), Some(facets.as_facets_ref()))
    }

    /// Whether a lead rule could apply to a person with this profile.
    pub(crate) fn could_lead(&self, p: &LeadProfile) -> bool {
        if p.flags & SYSTEM_MAY_LEAD == 0 {
            return false;
        }
        let Some(rules) = &self.0.rules else {
            return true;
        };
        if p.flags & FACETS_UNKNOWN != 0 {
            return true;
        }
        let n = self.0.classes;
        let index = |c: u8| usize::from(c).min(n);
        let at = index(p.convicted) * (n + 1) + index(p.charged);
        rules
            .iter()
            .any(|r| p.flags & r.bits == r.bits && r.applies.get(at).copied().unwrap_or(true))
    }

    /// Whether a lead rule could apply to a person with these records.
    pub fn could_lead_records(&self, records: &[SourceRecord]) -> bool {
        let mut p = LeadProfile::default();
        for r in records {
            p.add(self.decoded(r));
        }
        self.could_lead(&p)
    }
}

/// A made-up criminal record with an offense code and disposition, for asking the policy.
fn probe_charge(code: &str, disposition: Disposition) -> SourceRecord {
    SourceRecord {
        record_id: format!("PROBE-{code}-{disposition}"),
        identity: Identity::default(),
        body: RecordBody::Criminal(CriminalRecord {
            arrest_date: PartialDate {
                year: 2000,
                month: None,
                day: None,
            },
            arresting_ori: None,
            ncic_code: code.to_string(),
            charge: String::new(),
            disposition,
            disposition_date: None,
            sentence_days: None,
            flags: Vec::new(),
        }),
    }
}

/// The rules that apply to a made-up person with exactly these facts, this status and these
/// criminal records (identity sure, place known, nothing ongoing: every match shows).
fn rules_applying(
    ctx: &person::LeadContext,
    facts: &[FactName],
    status: ImmigrationStatus,
    charges: &[SourceRecord],
) -> Vec<String> {
    let facts: BTreeMap<FactName, Fact> = facts
        .iter()
        .map(|&name| {
            (
                name,
                Fact {
                    name,
                    records: Vec::new(),
                    note: String::new(),
                },
            )
        })
        .collect();
    let determination = Determination {
        status,
        rules_version: String::new(),
        basis: Vec::new(),
        citizenship_indicia: Vec::new(),
        also_matched: Vec::new(),
        conflicts: Vec::new(),
        routine: false,
        citizenship_review_required: false,
    };
    match ctx.policy.evaluate(
        charges,
        &facts,
        &determination,
        1.0,
        true,
        Ongoing::default(),
        &ctx.priority,
        &ctx.reference.offenses,
    ) {
        LeadOutcome::Lead { rules, .. } | LeadOutcome::Parked { rules, .. } => rules,
        LeadOutcome::None | LeadOutcome::CitizenshipReview => Vec::new(),
    }
}

/// Reads each rule of the policy by asking it (see [`LeadScreen`]); `None` when a rule is not
/// found with up to [`MAX_RULE_FACTS`] facts.
fn probe_rules(
    ctx: &person::LeadContext,
    reps: &BTreeMap<usize, String>,
    classes: usize,
) -> Option<Vec<RuleNeeds>> {
    let statuses: Vec<ImmigrationStatus> = ImmigrationStatus::ALL
        .iter()
        .copied()
        .filter(|s| !s.is_citizen_or_potential())
        .collect();
    let charges = |convicted: usize, charged: usize| -> Vec<SourceRecord> {
        let mut out = Vec::new();
        if let Some(code) = reps.get(&convicted) {
            out.push(probe_charge(code, Disposition::Convicted));
        }
        if let Some(code) = reps.get(&charged) {
            out.push(probe_charge(code, Disposition::Pending));
        }
        out
    };
    // The most severe charges satisfy every class condition.
    let worst = charges(0, 0);
    let names: Vec<&str> = ctx.policy.rules.iter().map(|r| r.name.as_str()).collect();
    let mut found: Vec<Option<(Vec<FactName>, ImmigrationStatus)>> = vec![None; names.len()];
    let facts = FactName::ALL;
    // Fact sets by size, smallest first: a rule's first set is exactly the facts it needs.
    let mut sets: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0;
    loop {
        for set in &sets {
            let chosen: Vec<FactName> = set.iter().map(|&i| facts[i]).collect();
            for &status in &statuses {
                for name in rules_applying(ctx, &chosen, status, &worst) {
                    if let Some(i) = names.iter().position(|n| *n == name) {
                        if found[i].is_none() {
                            found[i] = Some((chosen.clone(), status));
                        }
                    }
                }
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
        if size == MAX_RULE_FACTS {
            return None;
        }
        size += 1;
        // The sets of `size` facts, each in increasing index order.
        sets = sets
            .iter()
            .flat_map(|set| {
                let from = set.last().map_or(0, |&l| l + 1);
                (from..facts.len()).map(move |i| {
                    let mut next = set.clone();
                    next.push(i);
                    next
                })
            })
            .filter(|set| set.len() == size)
            .collect();
    }
    let mut out = Vec::with_capacity(names.len());
    for (name, entry) in names.iter().zip(found) {
        let (needed, status) = entry?;
        let bits = needed.iter().fold(0u8, |b, &f| b | witness_bits(f));
        let mut applies = Vec::with_capacity((classes + 1) * (classes + 1));
        for convicted in 0..=classes {
            for charged in 0..=classes {
                let rules = rules_applying(ctx, &needed, status, &charges(convicted, charged));
                applies.push(rules.iter().any(|r| r == name));
            }
        }
        out.push(RuleNeeds { bits, applies });
    }
    Some(out)
}

/// The hash of a sweep key: the store's, since digests hold sweep keys hashed (runs hash keys
/// as they derive them: `person::name_dob_key_hashes`).
#[cfg(test)]
pub(crate) fn key_hash(key: &str) -> u64 {
    verity_store::scan::digest_key_hash(key)
}

/// The record ids of a scan in one buffer (a `String` per record costs some 40 bytes more).
#[derive(Default)]
struct IdArena {
    text: String,
    ends: Vec<usize>,
}

impl IdArena {
    fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }
    /// The `i`th id ("" past the end).
    fn get(&self, i: usize) -> &str {
        let start = i
            .checked_sub(1)
            .and_then(|j| self.ends.get(j))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }
}

/// What a full run holds while scanning every record: per record its rev, id and what the
/// screen keeps of it; hashed identifiers for linking; hashed sweep keys. Some 40 bytes per
/// record plus 20 per identifier, 8 per citizenship key and 12 per status key, instead of the
/// strings themselves (and no hash tables: sorted arrays, built once the scan is complete).
#[derive(Default)]
pub(crate) struct FullScan {
    revs: Vec<i64>,
    ids: IdArena,
    /// What the screen keeps of each record.
    lead: Vec<RecordLead>,
    /// (identifier hash, record index), for every identifier of every record.
    identifiers: Parts<IdEntry>,
    /// Hashes of the citizenship sweep keys.
    citizen: Parts<u64>,
    /// (status sweep key hash, record index).
    status: Parts<KeyEntry>,
}

/// A list kept in the parts it was built in (the workers' scans are appended whole) and put
/// together once, at its final size, when the scan is complete: no array grows by doubling,
/// which copies it each time and holds the old and the new copy at once.
struct Parts<T> {
    done: Vec<Vec<T>>,
    last: Vec<T>,
}

impl<T> Default for Parts<T> {
    fn default() -> Self {
        Parts {
            done: Vec::new(),
            last: Vec::new(),
        }
    }
}

impl<T: Copy> Parts<T> {
    fn push(&mut self, value: T) {
        self.last.push(value);
    }

    fn extend(&mut self, values: impl IntoIterator<Item = T>) {
        self.last.extend(values);
    }

    fn len(&self) -> usize {
        self.done.iter().map(Vec::len).sum::<usize>() + self.last.len()
    }

    /// Takes `other`'s parts after these, each value passed through `adjust`.
    fn append(&mut self, other: Parts<T>, adjust: impl Fn(T) -> T) {
        if !self.last.is_empty() {
            self.done.push(std::mem::take(&mut self.last));
        }
        for mut part in other.done.into_iter().chain(std::iter::once(other.last)) {
            if part.is_empty() {
                continue;
            }
            for v in &mut part {
                *v = adjust(*v);
            }
            self.done.push(part);
        }
    }

    /// The values in order, in one array of exactly their number (each part freed once
    /// copied).
    fn into_vec(self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        for part in self.done {
            out.extend_from_slice(&part);
        }
        out.extend_from_slice(&self.last);
        out
    }
}

/// An identifier hash and the index of a record holding it, in 20 bytes (a `(u128, u32)` takes
/// 32 with its alignment): the hash's 32-bit words from the most significant, then the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdEntry([u32; 5]);

impl IdEntry {
    fn new(hash: u128, record: u32) -> IdEntry {
        // Truncating casts take each 32-bit word of the hash.
        IdEntry([
            (hash >> 96) as u32,
            (hash >> 64) as u32,
            (hash >> 32) as u32,
            hash as u32,
            record,
        ])
    }
    fn hash(&self) -> u128 {
        let w = &self.0;
        (u128::from(w[0]) << 96)
            | (u128::from(w[1]) << 64)
            | (u128::from(w[2]) << 32)
            | u128::from(w[3])
    }
    fn record(&self) -> u32 {
        self.0[4]
    }
}

/// A 64-bit key hash and a 32-bit number (a record index while scanning, a person's group
/// number in the index) in 12 bytes (a `(u64, u32)` takes 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyEntry([u32; 3]);

impl Fixed for IdEntry {
    const WIDTH: usize = 20;
    fn read(b: &[u8]) -> IdEntry {
        let w = |i: usize| u32::read(&b[i * 4..]);
        IdEntry([w(0), w(1), w(2), w(3), w(4)])
    }
    fn write(&self, out: &mut Vec<u8>) {
        for w in self.0 {
            w.write(out);
        }
    }
}

impl Fixed for KeyEntry {
    const WIDTH: usize = 12;
    fn read(b: &[u8]) -> KeyEntry {
        let w = |i: usize| u32::read(&b[i * 4..]);
        KeyEntry([w(0), w(1), w(2)])
    }
    fn write(&self, out: &mut Vec<u8>) {
        for w in self.0 {
            w.write(out);
        }
    }
}

impl Fixed for RecordLead {
    const WIDTH: usize = 2;
    fn read(b: &[u8]) -> RecordLead {
        RecordLead::from_bytes([b[0], b[1]])
    }
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl KeyEntry {
    fn new(hash: u64, value: u32) -> KeyEntry {
        KeyEntry([(hash >> 32) as u32, hash as u32, value])
    }
    fn hash(&self) -> u64 {
        (u64::from(self.0[0]) << 32) | u64::from(self.0[1])
    }
    fn value(&self) -> u32 {
        self.0[2]
    }
}

/// Where each run of keys with the same top bits starts in a sorted array of uniform hashes
/// (SipHash outputs): a look-up reads one directory slot and a few neighbouring keys, about
/// two cache misses, where a binary search over millions of keys missed some twenty times per
/// key.
#[derive(Default)]
struct HashDirectory {
    bits: u32,
    starts: Column<u32>,
}

impl HashDirectory {
    /// The directory of `n` sorted hashes given by `hash_at`, about two keys per slot.
    fn of(n: usize, hash_at: impl Fn(usize) -> u64) -> HashDirectory {
        let mut bits = 0u32;
        while bits < 32 && (1usize << bits) < n / 2 {
            bits += 1;
        }
        let slots = 1usize << bits;
        let mut starts = Vec::with_capacity(slots + 1);
        let mut i = 0usize;
        for slot in 0..slots {
            while i < n && Self::slot_of(bits, hash_at(i)) < slot {
                i += 1;
            }
            starts.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        starts.push(u32::try_from(n).unwrap_or(u32::MAX));
        HashDirectory {
            bits,
            starts: Column::Owned(starts),
        }
    }

    /// A directory read back from the person map: `2^bits + 1` starts, the last `n`, none
    /// decreasing (checked: a look-up trusts them).
    fn from_column(bits: u32, starts: Column<u32>, n: usize) -> Result<HashDirectory, String> {
        let slots = 1usize
            .checked_shl(bits)
            .filter(|_| bits <= 32)
            .ok_or_else(|| format!("a directory of {bits} bits"))?;
        if starts.len() != slots + 1 || starts.get(slots).map(|v| v as usize) != Some(n) {
            return Err("a directory does not cover its keys".into());
        }
        Ok(HashDirectory { bits, starts })
    }

    fn slot_of(bits: u32, hash: u64) -> usize {
        if bits == 0 {
            0
        } else {
            (hash >> (64 - bits)) as usize
        }
    }

    /// The index range of the sorted array where `hash` can be.
    fn range(&self, hash: u64) -> std::ops::Range<usize> {
        let slot = Self::slot_of(self.bits, hash);
        let at = |s: usize| self.starts.get(s).map_or(0, |v| v as usize);
        at(slot)..at(slot + 1).max(at(slot))
    }
}

/// The sweep keys of a full run, hashed, in sorted arrays with a [`HashDirectory`] each: the
/// citizenship keys once each, and each status key with its holder: the person (group number)
/// whose records hold it, or [`HELD_BY_MANY`]. Some 12 bytes per distinct status key (a hash
/// table of every record's keys took over 40).
pub(crate) struct SweepIndex {
    citizen: Column<u64>,
    citizen_dir: HashDirectory,
    status: Column<KeyEntry>,
    status_dir: HashDirectory,
    /// For a map's index, the block checksums its status part is checked by as read.
    status_sums: Option<map::BlockSums>,
}

/// A status key held by records of more than one person: outside any person.
pub(crate) const HELD_BY_MANY: u32 = u32::MAX;

impl SweepIndex {
    /// The index of sorted, distinct citizenship key hashes and of status keys sorted by hash
    /// with their holders (one entry per hash).
    fn new(citizen: Vec<u64>, status: Vec<KeyEntry>) -> SweepIndex {
        let citizen_dir = HashDirectory::of(citizen.len(), |i| citizen[i]);
        let status_dir = HashDirectory::of(status.len(), |i| status[i].hash());
        SweepIndex {
            citizen: Column::Owned(citizen),
            citizen_dir,
            status: Column::Owned(status),
            status_dir,
            status_sums: None,
        }
    }

    /// An index of these citizenship keys and (status key, holder) pairs (for tests).
    #[cfg(test)]
    pub(crate) fn for_tests(mut citizen: Vec<u64>, status: Vec<(u64, u32)>) -> SweepIndex {
        citizen.sort_unstable();
        citizen.dedup();
        let mut status: Vec<KeyEntry> = status
            .into_iter()
            .map(|(h, v)| KeyEntry::new(h, v))
            .collect();
        status.sort_unstable_by_key(KeyEntry::hash);
        SweepIndex::new(citizen, status)
    }

    /// Whether `hash` is a citizenship key.
    pub(crate) fn is_citizen_key(&self, hash: u64) -> bool {
        self.citizen
            .iter_range(self.citizen_dir.range(hash))
            .any(|h| h == hash)
    }

    /// The holder of status key `hash`: a group number, or [`HELD_BY_MANY`]. A map's entries
    /// are checked here, by the blocks the look-up reads (its directory is under the file's
    /// checksum, which holds before a run sweeps).
    pub(crate) fn holder(&self, hash: u64) -> Result<Option<u32>, map::DamagedBlock> {
        let range = self.status_dir.range(hash);
        if let Some(sums) = &self.status_sums {
            if let Some(bytes) = self.status.byte_range(range.clone()) {
                sums.check(bytes)?;
            }
        }
        Ok(self
            .status
            .iter_range(range)
            .find(|e| e.hash() == hash)
            .map(|e| e.value()))
    }

    /// Whether any of `keys` (the hashes of a person's name-and-birth-date keys) is a
    /// citizenship key.
    pub fn citizen_match(&self, keys: &[u64]) -> bool {
        keys.iter().any(|&k| self.is_citizen_key(k))
    }

    /// Whether a record outside person `group` holds any of `keys` (the hashes of
    /// full-name-and-birth-date keys).
    /// A full run's index is in memory; a damaged block of a map's counts as a holder
    /// outside (the incremental run asks the store instead: `MapSweep::status_outside`).
    pub fn status_outside(&self, keys: &[u64], group: u32) -> bool {
        keys.iter().any(|&k| match self.holder(k) {
            Err(_) | Ok(Some(HELD_BY_MANY)) => true,
            Ok(Some(holder)) => holder != group,
            Ok(None) => false,
        })
    }

    /// The bytes of the map file its status part lies in (a map's index only).
    #[cfg(test)]
    pub(crate) fn status_region(&self) -> Option<std::ops::Range<usize>> {
        self.status_sums.as_ref().map(map::BlockSums::region)
    }

    /// Distinct citizenship and status keys, for the run's timing line.
    pub fn sizes(&self) -> (usize, usize) {
        (self.citizen.len(), self.status.len())
    }
}

/// The sweep rows of one scanned page, for the store, hashed as the store keeps them
/// (`verity_store::leads::sweep_key_hash`): citizenship keys (sorted, once each) and
/// (status key, record id), sorted.
#[derive(Default)]
pub(crate) struct SweepRows {
    pub citizen: Vec<i64>,
    pub status: Vec<(i64, String)>,
}

/// Scans one page of stored records (on a worker thread): what the run keeps of them, their
/// sweep rows and their digests (for records stored without one: see [`add_chunk`]).
pub(crate) fn scan_page(
    page: &[RawRecord],
    screen: &LeadScreen,
) -> Result<(FullScan, SweepRows, Vec<RecordDigest>), StoreError> {
    let mut scan = FullScan::default();
    let mut rows = SweepRows::default();
    let mut digests = Vec::with_capacity(page.len());
    for raw in page {
        let s = scan_raw(raw)?;
        let keys = SweepKeys {
            citizen: s.citizen_keys,
            status: s.status_keys,
        };
        let d =
            RecordDigest::new(s.rev, &s.record_id, s.system, &s.keys, &keys).with_facets(s.facets);
        scan.add_digest(&d.as_digest_ref(), screen)?;
        // The digest's key hashes are the sweep tables'.
        let as_i64 = |h: u64| i64::from_ne_bytes(h.to_ne_bytes());
        rows.citizen
            .extend(d.citizen_keys.iter().map(|&h| as_i64(h)));
        for &h in &d.status_keys {
            rows.status.push((as_i64(h), s.record_id.clone()));
        }
        digests.push(d);
    }
    rows.citizen.sort_unstable();
    rows.citizen.dedup();
    rows.status.sort_unstable();
    rows.status.dedup();
    Ok((scan, rows, digests))
}

/// Adds the digests of a stored chunk with `after < rev <= to_rev` to a scan (nothing is
/// parsed or hashed: the insert did that). Returns how many were added.
pub(crate) fn add_chunk(
    scan: &mut FullScan,
    chunk: &DigestChunk,
    after: i64,
    to_rev: i64,
    screen: &LeadScreen,
) -> Result<usize, StoreError> {
    let mut added = 0usize;
    let mut failed = None;
    chunk.for_each(|d| {
        if failed.is_none() && d.rev > after && d.rev <= to_rev {
            match scan.add_digest(&d, screen) {
                Ok(()) => added += 1,
                Err(e) => failed = Some(e),
            }
        }
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(added),
    }
}

/// One person of a full run: its key, group number and the revs of its records.
pub(crate) struct ScannedPerson {
    pub key: String,
    pub group: u32,
    pub revs: Vec<i64>,
}

/// The persons of a full scan: those worth evaluating, sorted by key, how many there are in
/// all, and the sweep index.
pub(crate) struct Grouped {
    pub persons: Vec<ScannedPerson>,
    pub persons_total: u64,
    pub sweep: SweepIndex,
    /// The groups for the person map, when asked for.
    pub links: Option<MapLinks>,
}

impl FullScan {
    /// Records scanned so far.
    pub fn records(&self) -> usize {
        self.revs.len()
    }

    /// Makes room for `records` records in all (the per-record arrays; the ids' text sized
    /// from their length so far): one allocation each instead of repeated doubling, each a
    /// copy of the whole. The lists of keys need none ([`Parts`]).
    pub fn reserve_for(&mut self, records: usize) {
        let have = self.revs.len();
        if have == 0 || records <= have {
            return;
        }
        let more = records - have;
        self.revs.reserve(more);
        self.lead.reserve(more);
        self.ids.ends.reserve(more);
        let text = self.ids.text.len().saturating_mul(more).div_ceil(have);
        self.ids.text.reserve(text + text / 16);
    }

    /// Appends another scan's records (a page or chunk scanned on a worker thread) after these.
    pub fn append(&mut self, other: FullScan) -> Result<(), StoreError> {
        let too_many = || StoreError::Corrupt {
            table: "records",
            key: other.ids.get(0).to_string(),
            problem: "more than 4,294,967,295 records in one lead run".into(),
        };
        if self.revs.len() + other.revs.len() > u32::MAX as usize {
            return Err(too_many());
        }
        let offset = u32::try_from(self.revs.len()).map_err(|_| too_many())?;
        self.revs.extend(other.revs);
        self.lead.extend(other.lead);
        let text_offset = self.ids.text.len();
        self.ids.text.push_str(&other.ids.text);
        self.ids
            .ends
            .extend(other.ids.ends.iter().map(|e| e + text_offset));
        self.identifiers.append(other.identifiers, |e| {
            IdEntry::new(e.hash(), e.record() + offset)
        });
        self.citizen.append(other.citizen, |h| h);
        self.status.append(other.status, |e| {
            KeyEntry::new(e.hash(), e.value() + offset)
        });
        Ok(())
    }

    /// Keeps what the run needs of one scanned record.
    #[cfg(test)]
    pub fn add(&mut self, s: &Scanned, screen: &LeadScreen) -> Result<(), StoreError> {
        let keys = SweepKeys {
            citizen: s.citizen_keys.clone(),
            status: s.status_keys.clone(),
        };
        let d = RecordDigest::new(s.rev, &s.record_id, s.system, &s.keys, &keys)
            .with_facets(s.facets.clone());
        self.add_digest(&d.as_digest_ref(), screen)
    }

    /// Keeps what the run needs of one record's digest.
    pub fn add_digest(&mut self, d: &DigestRef<'_>, screen: &LeadScreen) -> Result<(), StoreError> {
        let index = u32::try_from(self.revs.len()).map_err(|_| StoreError::Corrupt {
            table: "records",
            key: d.record_id.to_string(),
            problem: "more than 4,294,967,295 records in one lead run".into(),
        })?;
        self.revs.push(d.rev);
        self.ids.push(d.record_id);
        self.lead.push(screen.record(d.system, d.facets));
        for h in d.identifiers() {
            self.identifiers.push(IdEntry::new(h, index));
        }
        self.citizen.extend(d.citizen_keys());
        for h in d.status_keys() {
            self.status.push(KeyEntry::new(h, index));
        }
        Ok(())
    }

    /// Links records sharing an identifier into persons (the rule of
    /// `person::group_key_lists`), keeps those a lead rule could apply to (`screen`) or with an
    /// open lead (`has_open_lead(record id)`), and indexes the sweep keys by person.
    ///
    /// On the machine's cores: the identifiers are sorted in two halves (split by the top bit
    /// of their hash, so equal hashes share a half) while the sweep keys are sorted on another
    /// thread; only the union of records and the numbering of groups run on one.
    ///
    /// With `keep_links`, also the groups and identifiers for the person map ([`MapLinks`]).
    pub fn group(
        mut self,
        has_open_lead: impl Fn(&str) -> bool,
        screen: &LeadScreen,
        keep_links: bool,
    ) -> Grouped {
        let n = self.revs.len();
        let mut identifiers = std::mem::take(&mut self.identifiers).into_vec();
        let citizen = std::mem::take(&mut self.citizen);
        let status = std::mem::take(&mut self.status);
        let mut parent: Vec<u32> = (0..n as u32).collect();
        fn find(parent: &mut [u32], mut i: u32) -> u32 {
            while parent[i as usize] != i {
                let up = parent[parent[i as usize] as usize];
                parent[i as usize] = up;
                i = up;
            }
            i
        }
        let (citizen, mut status) = std::thread::scope(|s| {
            let keys = s.spawn(|| {
                let mut citizen = citizen.into_vec();
                citizen.sort_unstable();
                citizen.dedup();
                citizen.shrink_to_fit();
                let mut status = status.into_vec();
                status.sort_unstable_by_key(KeyEntry::hash);
                (citizen, status)
            });
            let low = partition_by_top_bit(&mut identifiers);
            std::thread::scope(|halves| {
                let (lower, upper) = identifiers.split_at_mut(low);
                let upper_sorted = halves.spawn(move || upper.sort_unstable_by_key(IdEntry::hash));
                lower.sort_unstable_by_key(IdEntry::hash);
                if let Err(p) = upper_sorted.join() {
                    std::panic::resume_unwind(p);
                }
            });
            for pair in identifiers.windows(2) {
                if pair[0].hash() == pair[1].hash() {
                    let (a, b) = (
                        find(&mut parent, pair[0].record()),
                        find(&mut parent, pair[1].record()),
                    );
                    if a != b {
                        parent[a.max(b) as usize] = a.min(b);
                    }
                }
            }
            match keys.join() {
                Ok(keys) => keys,
                Err(p) => std::panic::resume_unwind(p),
            }
        });
        if !keep_links {
            identifiers = Vec::new();
        }
        // Group numbers in order of each group's first record.
        let mut group_of: Vec<u32> = vec![u32::MAX; n];
        let mut groups: u32 = 0;
        for i in 0..n as u32 {
            let root = find(&mut parent, i);
            if group_of[root as usize] == u32::MAX {
                group_of[root as usize] = groups;
                groups += 1;
            }
            group_of[i as usize] = group_of[root as usize];
        }
        drop(parent);
        let sweep = std::thread::scope(|s| {
            // The status keys, sorted by hash, become one entry per hash with its holder, in
            // place, while the persons are picked.
            let index = s.spawn(|| {
                let mut kept = 0usize;
                let mut i = 0usize;
                while i < status.len() {
                    let hash = status[i].hash();
                    let first = group_of
                        .get(status[i].value() as usize)
                        .copied()
                        .unwrap_or(HELD_BY_MANY);
                    let mut holder = first;
                    let mut j = i + 1;
                    while j < status.len() && status[j].hash() == hash {
                        let g = group_of
                            .get(status[j].value() as usize)
                            .copied()
                            .unwrap_or(HELD_BY_MANY);
                        if g != first {
                            holder = HELD_BY_MANY;
                        }
                        j += 1;
                    }
                    status[kept] = KeyEntry::new(hash, holder);
                    kept += 1;
                    i = j;
                }
                status.truncate(kept);
                status.shrink_to_fit();
                SweepIndex::new(citizen, status)
            });
            let (starts, members) = group_members(&group_of, groups);
            let persons = self.pick_persons(&starts, &members, &has_open_lead, screen);
            let links = keep_links.then(|| {
                MapLinks::new(
                    &starts,
                    &members,
                    &group_of,
                    std::mem::take(&mut identifiers),
                    |i| self.revs[i as usize],
                    |i| self.lead[i as usize],
                    |i| map::record_id_tag(self.ids.get(i as usize)),
                )
            });
            match index.join() {
                Ok(sweep) => (persons, sweep, links),
                Err(p) => std::panic::resume_unwind(p),
            }
        });
        let (persons, sweep, links) = sweep;
        Grouped {
            persons,
            persons_total: u64::from(groups),
            sweep,
            links,
        }
    }

    /// The persons (groups) a lead rule could apply to or with an open lead, sorted by key.
    fn pick_persons(
        &self,
        starts: &[usize],
        members: &[u32],
        has_open_lead: &impl Fn(&str) -> bool,
        screen: &LeadScreen,
    ) -> Vec<ScannedPerson> {
        let groups = starts.len().saturating_sub(1);
        let mut persons = Vec::new();
        for g in 0..groups {
            let m = &members[starts[g]..starts[g + 1]];
            let mut profile = LeadProfile::default();
            for &i in m {
                profile.add(self.lead[i as usize]);
            }
            let wanted = screen.could_lead(&profile)
                || m.iter().any(|&i| has_open_lead(self.ids.get(i as usize)));
            if !wanted {
                continue;
            }
            let min_id = m
                .iter()
                .map(|&i| self.ids.get(i as usize))
                .min()
                .unwrap_or("");
            persons.push(ScannedPerson {
                key: format!("NP-{min_id}"),
                group: g as u32,
                revs: m.iter().map(|&i| self.revs[i as usize]).collect(),
            });
        }
        persons.sort_by(|a, b| a.key.cmp(&b.key));
        persons
    }
}

/// Each group's members (record indexes) listed group after group, and where each group
/// starts (one more entry than groups), by counting.
fn group_members(group_of: &[u32], groups: u32) -> (Vec<usize>, Vec<u32>) {
    let mut starts: Vec<usize> = vec![0; groups as usize + 1];
    for &g in group_of {
        starts[g as usize + 1] += 1;
    }
    for g in 0..groups as usize {
        starts[g + 1] += starts[g];
    }
    let mut fill = starts.clone();
    let mut members: Vec<u32> = vec![0; group_of.len()];
    for (i, &g) in group_of.iter().enumerate() {
        members[fill[g as usize]] = i as u32;
        fill[g as usize] += 1;
    }
    (starts, members)
}

/// Moves the identifiers whose hash has the top bit clear before the others (in place) and
/// returns how many there are: equal hashes end up on the same side, so each side can be
/// sorted on its own.
fn partition_by_top_bit(entries: &mut [IdEntry]) -> usize {
    let high = |e: &IdEntry| e.0[0] & 0x8000_0000 != 0;
    let (mut i, mut j) = (0usize, entries.len());
    loop {
        while i < j && !high(&entries[i]) {
            i += 1;
        }
        while i < j && high(&entries[j - 1]) {
            j -= 1;
        }
        if i + 1 >= j {
            return i;
        }
        entries.swap(i, j - 1);
        i += 1;
        j -= 1;
    }
}

/// What [`scan_raw`] keeps, from a decoded record (the reference the view must agree with).
#[cfg(test)]
pub(crate) fn scan_decoded(rev: i64, r: &SourceRecord) -> Scanned {
    Scanned {
        rev,
        record_id: r.record_id.clone(),
        system: r.system(),
        may_lead: may_lead(r),
        facets: LeadFacets::of(r),
        keys: person::strong_keys(r),
        citizen_keys: if person::indicates_citizenship(r) {
            person::name_dob_keys(r)
        } else {
            Vec::new()
        },
        status_keys: if person::bears_on_status(r) {
            person::full_name_dob_keys(r)
        } else {
            Vec::new()
        },
    }
}

/// Digest chunks read per statement by [`for_each_digest_up_to`] (each holds up to one import
/// batch: some 10,000 records).
#[cfg(test)]
const DIGEST_CHUNKS_PER_READ: u32 = 8;

/// Calls `each` with every stored record digest of a rev up to `to_rev`, in rev order, reading
/// a few chunks per statement. The one loop over digest chunks outside the full run, whose
/// pipeline reads them on its own (`full_population`): today only tests need it (an
/// incremental run gets the facets it needs with the records' links), hence `cfg(test)`.
#[cfg(test)]
pub(crate) async fn for_each_digest_up_to(
    store: &verity_store::Store,
    to_rev: i64,
    mut each: impl FnMut(DigestRef<'_>),
) -> Result<(), StoreError> {
    let mut after_chunk = 0i64;
    loop {
        let chunks = store
            .record_digest_chunks(after_chunk, to_rev, DIGEST_CHUNKS_PER_READ)
            .await?;
        let Some(last) = chunks.last() else {
            return Ok(());
        };
        after_chunk = last.first_rev;
        for chunk in &chunks {
            chunk.for_each(|d| {
                if d.rev <= to_rev {
                    each(d)
                }
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn a_row_that_is_no_record_is_corrupt_with_its_id() {
        let raw = RawRecord {
            rev: 7,
            record_id: "ENF-1".into(),
            json: "{\"identity\": 3}".into(),
        };
        match scan_raw(&raw) {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "ENF-1"),
            other => panic!("expected a corrupt-row error, got {other:?}"),
        }
    }

    fn scanned(rev: i64, id: &str, a_number: Option<&str>, status: &[&str]) -> Scanned {
        Scanned {
            rev,
            record_id: id.into(),
            system: RecordSystem::Enforcement,
            may_lead: true,
            keys: a_number
                .map(|a| vec![(0, a.to_string())])
                .unwrap_or_default(),
            citizen_keys: if id.starts_with("CIT") {
                vec!["F|LOPEZ|19800102".into()]
            } else {
                Vec::new()
            },
            status_keys: status.iter().map(|s| s.to_string()).collect(),
            facets: LeadFacets::default(),
        }
    }

    /// The system test alone (these records have no facets a rule rests on).
    fn by_system() -> LeadScreen {
        LeadScreen::by_system(&person::LeadContext::load(None).unwrap())
    }

    #[test]
    fn a_status_key_held_by_two_persons_is_outside_each() {
        let key = "S|ANA|LOPEZ|19800102|";
        let mut scan = FullScan::default();
        for s in [
            scanned(1, "ENF-1", Some("012345678"), &[key]),
            scanned(2, "ENF-2", Some("012345678"), &[key]),
            scanned(3, "TRV-7", None, &[key]),
        ] {
            scan.add(&s, &by_system()).unwrap();
        }
        let g = scan.group(|_| false, &by_system(), false);
        assert_eq!(g.persons.len(), 2);
        for p in &g.persons {
            assert!(
                g.sweep.status_outside(&[key_hash(key)], p.group),
                "{}",
                p.key
            );
        }
    }

    #[test]
    fn the_sweep_index_finds_status_records_outside_the_person_only() {
        let key = "S|ANA|LOPEZ|19800102|";
        let mut scan = FullScan::default();
        for s in [
            scanned(1, "ENF-2", Some("012345678"), &[key]),
            scanned(2, "ENF-1", Some("012345678"), &[key]),
            scanned(3, "TRV-7", None, &["S|BOB|X|19700101|"]),
            scanned(4, "CIT-1", None, &[]),
        ] {
            scan.add(&s, &by_system()).unwrap();
        }
        assert_eq!(scan.records(), 4);
        let g = scan.group(|id| id == "CIT-1", &by_system(), false);
        assert_eq!(g.persons_total, 3);
        let keys: Vec<&str> = g.persons.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["NP-CIT-1", "NP-ENF-1", "NP-TRV-7"]);
        let enf = &g.persons[1];
        assert_eq!(enf.revs.len(), 2);
        // The person's own two records hold the key: nothing outside.
        assert!(!g.sweep.status_outside(&[key_hash(key)], enf.group));
        // Another person (or one not in the scan) with that key: a record outside holds it.
        let trv = &g.persons[2];
        assert!(g.sweep.status_outside(&[key_hash(key)], trv.group));
        assert!(g.sweep.status_outside(&[key_hash(key)], u32::MAX));
        assert!(!g
            .sweep
            .status_outside(&[key_hash("S|NO|ONE|19990101|")], trv.group));
        assert!(g.sweep.citizen_match(&[key_hash("F|LOPEZ|19800102")]));
        assert!(!g.sweep.citizen_match(&[key_hash("G|ANA|19800102")]));
    }

    /// A small deterministic generator (xorshift), for reproducible made-up scans.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn the_sweep_index_and_groups_agree_with_a_plain_reference() {
        for (records, seed) in [(0usize, 1u64), (1, 2), (37, 3), (1_500, 4)] {
            let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let numbers: Vec<String> = (0..records / 3 + 1).map(|i| format!("A{i:08}")).collect();
            let keys: Vec<String> = (0..records / 2 + 2)
                .map(|i| format!("S|K{i}|X|19800101|"))
                .collect();
            let citizen_pool: Vec<String> = (0..records / 4 + 2)
                .map(|i| format!("F|C{i}|19800101"))
                .collect();
            let mut scan = FullScan::default();
            let mut all = Vec::new();
            for i in 0..records {
                let mut s = scanned(i as i64 + 1, &format!("REC-{i:06}"), None, &[]);
                if !next(&mut state).is_multiple_of(4) {
                    let n = &numbers[(next(&mut state) % numbers.len() as u64) as usize];
                    s.keys.push((0, n.clone()));
                }
                for _ in 0..next(&mut state) % 3 {
                    let k = &keys[(next(&mut state) % keys.len() as u64) as usize];
                    if !s.status_keys.contains(k) {
                        s.status_keys.push(k.clone());
                    }
                }
                if next(&mut state).is_multiple_of(5) {
                    let c = &citizen_pool[(next(&mut state) % citizen_pool.len() as u64) as usize];
                    s.citizen_keys.push(c.clone());
                }
                // Scanned in parts now and then, as the workers do.
                if i % 700 == 699 {
                    let mut part = FullScan::default();
                    part.add(&s, &by_system()).unwrap();
                    scan.append(part).unwrap();
                } else {
                    scan.add(&s, &by_system()).unwrap();
                }
                all.push(s);
            }
            // The reference: persons by union-find on identifier strings, then for each status
            // key the set of persons holding it.
            let key_lists: Vec<Vec<(u8, String)>> = all.iter().map(|s| s.keys.clone()).collect();
            let mut person_of = vec![usize::MAX; records];
            for (p, members) in person::group_key_lists(&key_lists).iter().enumerate() {
                for &i in members {
                    person_of[i] = p;
                }
            }
            let mut holders: HashMap<&str, HashSet<usize>> = HashMap::new();
            for (i, s) in all.iter().enumerate() {
                for k in &s.status_keys {
                    holders.entry(k.as_str()).or_default().insert(person_of[i]);
                }
            }
            let citizen: HashSet<&str> = all
                .iter()
                .flat_map(|s| s.citizen_keys.iter().map(String::as_str))
                .collect();
            let g = scan.group(|_| true, &by_system(), false);
            assert_eq!(g.persons.len(), person::group_key_lists(&key_lists).len());
            // Every key for the first persons, then every 16th (a debug build hashes slowly).
            for (n, p) in g.persons.iter().enumerate() {
                let first_rev = p.revs.iter().copied().min().unwrap();
                let me = person_of[(first_rev - 1) as usize];
                let step = if n < 40 { 1 } else { 16 };
                for k in keys.iter().skip(n % step).step_by(step) {
                    let expected = holders
                        .get(k.as_str())
                        .is_some_and(|hs| hs.iter().any(|&h| h != me));
                    assert_eq!(
                        g.sweep.status_outside(&[key_hash(k)], p.group),
                        expected,
                        "{records} records: person {} key {k}",
                        p.key
                    );
                }
            }
            for c in &citizen_pool {
                assert_eq!(
                    g.sweep.citizen_match(&[key_hash(c)]),
                    citizen.contains(c.as_str()),
                    "{c}"
                );
            }
        }
    }

    #[test]
    fn partitioning_by_the_top_bit_keeps_every_entry_and_splits_them() {
        let mut state = 99u64;
        for n in [0usize, 1, 2, 3, 10, 1_000] {
            let mut entries: Vec<IdEntry> = (0..n)
                .map(|i| {
                    let h = (u128::from(next(&mut state)) << 64) | u128::from(next(&mut state));
                    IdEntry::new(h, i as u32)
                })
                .collect();
            let mut before: Vec<(u128, u32)> =
                entries.iter().map(|e| (e.hash(), e.record())).collect();
            let low = partition_by_top_bit(&mut entries);
            assert!(entries[..low].iter().all(|e| e.hash() >> 127 == 0));
            assert!(entries[low..].iter().all(|e| e.hash() >> 127 == 1));
            let mut after: Vec<(u128, u32)> =
                entries.iter().map(|e| (e.hash(), e.record())).collect();
            before.sort_unstable();
            after.sort_unstable();
            assert_eq!(before, after);
        }
    }
}
