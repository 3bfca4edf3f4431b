//! The LESC engine: from a validated query to ranked candidate persons and a decision.
//!
//! The engine keeps only the search index (normalized identities) in memory; whole records are
//! fetched through a [`RecordLookup`] (the store in the server, a map in benchmarks), so memory
//! does not grow with record size.
//!
//! Steps: search the index with the query's identity; fetch the hit records; expand each hit to
//! the records that share a strong identifier with it (A-number, FIN, FBI number, SSN,
//! passport) *and* that the model scores as the same person; group those into candidate
//! persons; score each person against the query; then [`decide`](super::decide).
//!
//! CONTRACT (agreed between the engine, the HTTP API, bookings and lead generation); extend,
//! do not change without telling the lead.

#[path = "engine_second_look.rs"]
pub mod second_look;

use super::decision::{decide, Candidate, Decision, FieldEvidence, QueryContext, ReviewReason};
use super::intake::Iaq;
use super::LescPolicy;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use verity_model::{Fin, Identifiers, Identity, ImmigrationStatus, SourceRecord};
use verity_policy::StatusRules;
use verity_resolve::model::{ModelError, TrainOptions};
use verity_resolve::{Model, Prepared, Searcher};

/// Written into every stored result, so a later reader knows which engine produced it.
pub const ENGINE_VERSION: &str = "verity-lesc-engine/1";
/// Index hits scored per query.
const SEARCH_HITS: usize = 30;
/// Hits at or above this probability are fetched and expanded to their person's records.
const EXPAND_MIN: f64 = 0.01;
/// Records one query may gather at most (a bound on work per query and on a shared identifier
/// that many records carry by mistake).
const MAX_RECORDS_PER_QUERY: usize = 400;
/// Rounds of "records sharing an identifier with records found so far".
const EXPANSION_ROUNDS: usize = 2;
/// Two records sharing an identifier join only when the model, counting that identifier's
/// agreement, scores them as the same person at least this probably: a typo'd or shared
/// identifier on records whose names and birth dates disagree never merges two people.
/// Session 5 tried 0.10 (bench lesc, seeds 1-3: 1,168 record pairs of one person sharing an
/// identifier score below 0.95): once the model counts a fingerprint enrollment's FIN
/// (`identity_with_body_ids`), it answers no more queries automatically than 0.95, and the
/// synthetic world has no two people sharing an identifier, so the risk of the lower bar could
/// not be measured. It stays at 0.95.
pub const GROUP_MIN_PROBABILITY: f64 = 0.95;
/// Records sampled at most to train a model when none is saved (EM needs no more).
pub const TRAIN_SAMPLE_MAX: usize = 200_000;
/// Candidates kept per query, and the probability below which a candidate is not shown.
const MAX_CANDIDATES: usize = 10;
/// Hits asked per query variant in the second look before "no record found".
const SECOND_LOOK_HITS: usize = 5;
const CANDIDATE_FLOOR: f64 = 0.001;

/// Whole records by id or by shared identifier. Implemented over the store by the server and
/// over an in-memory map by benchmarks and tests.
pub trait RecordLookup: Sync {
    type Error: std::error::Error + Send + Sync + 'static;
    /// The records with these ids (missing ids are skipped), in any order.
    fn records(
        &self,
        record_ids: &[String],
    ) -> impl Future<Output = Result<Vec<SourceRecord>, Self::Error>> + Send;
    /// Every record carrying any of the identifiers of `identity` (A-number, FIN, FBI number,
    /// SSN, passport), in canonical form.
    fn records_sharing_identifiers(
        &self,
        identity: &Identity,
    ) -> impl Future<Output = Result<Vec<SourceRecord>, Self::Error>> + Send;
}

/// What one query needs besides the index.
#[derive(Debug, Clone)]
pub struct QueryInput<'a> {
    pub iaq: &'a Iaq,
    /// A FIN confirmed by a 1:N fingerprint identification (bookings); records carrying it are
    /// the subject, with biometric confidence.
    pub biometric_fin: Option<Fin>,
    pub today: chrono::NaiveDate,
}

/// The engine's whole answer for one query: kept as the query's result for review.
#[derive(Debug, Clone)]
pub struct Processed {
    /// Candidate persons, best first, each with all of its records.
    pub candidates: Vec<Candidate>,
    pub decision: Decision,
}

/// What the store keeps as `queries.result_json`: candidates with record ids, not whole records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    pub candidates: Vec<StoredCandidate>,
    pub decision: StoredDecision,
    pub engine_version: String,
}

/// A LESC candidate's person key is this prefix and the lowest record id of its records
/// (`S-` and an id): a PERC case, and so a detainer, opened from an answer carries it.
pub const SUBJECT_KEY_PREFIX: &str = "S-";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCandidate {
    pub person_key: String,
    pub probability: f64,
    pub strong_identifier: bool,
    pub biometric: bool,
    #[serde(deserialize_with = "deserialize_evidence")]
    pub explanation: Vec<FieldEvidence>,
    pub record_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDecision {
    pub automatic: bool,
    pub citizenship_review: bool,
    pub chosen: Option<usize>,
    /// Why a specialist must look, in words.
    pub reviews: Vec<String>,
    pub status: ImmigrationStatus,
    pub rules_version: String,
}

/// `FieldEvidence` lives with the decision and is serialize-only; read it back through a mirror.
fn deserialize_evidence<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<FieldEvidence>, D::Error> {
    #[derive(Deserialize)]
    struct Mirror {
        field: String,
        weight: f64,
        detail: String,
    }
    let v: Vec<Mirror> = Vec::deserialize(d)?;
    Ok(v.into_iter()
        .map(|m| FieldEvidence {
            field: m.field,
            weight: m.weight,
            detail: m.detail,
        })
        .collect())
}

/// A review reason as a specialist reads it.
pub fn describe_review(r: &ReviewReason) -> String {
    match r {
        ReviewReason::IdentityBelowAutoThreshold { probability } => format!(
            "identity not certain enough for an automatic answer (best candidate {probability:.3})"
        ),
        ReviewReason::AmbiguousIdentity { top, runner_up } => format!(
            "ambiguous identity: best candidate {top:.3}, next {runner_up:.3}"
        ),
        ReviewReason::CitizenshipIndicia => {
            "records indicate U.S. citizenship: citizenship review".into()
        }
        ReviewReason::CitizenshipClaim => "the subject claims U.S. citizenship".into(),
        ReviewReason::PlausibleCandidateIsCitizen { person_key } => {
            format!("a plausible candidate ({person_key}) has citizenship indicia")
        }
        ReviewReason::ConflictingRecords { conflicts } => {
            format!("conflicting records: {}", conflicts.join("; "))
        }
        ReviewReason::RemovableOnBiographicOnly => {
            "removable status on name and birth date alone: an identifier or fingerprints must agree"
                .into()
        }
        ReviewReason::NoncitizenOnBiographicOnly => {
            "noncitizen status on name and birth date alone: an identifier or fingerprints must agree (a citizen namesake may be the subject)"
                .into()
        }
        ReviewReason::StatusNotRoutine { status } => {
            format!("status '{status}' is not answered automatically")
        }
        ReviewReason::Undetermined => "the records establish no status".into(),
        ReviewReason::NoRecordNeedsReview => "no record found; policy asks for a review".into(),
        ReviewReason::CandidateStatusDiffers { person_key, status } => format!(
            "another linked candidate ({person_key}) has records establishing status '{status}'"
        ),
        ReviewReason::PossibleRecordOnSecondLook { change, probability } => format!(
            "no record found as asked, but a record matches with {change} (probability {probability:.3}): a specialist must search before 'no record found' goes out"
        ),
        ReviewReason::EnrollingRecordMissing { system, enrolled } => format!(
            "fingerprints were taken by {system} on {enrolled}, but no {system} record from then was found: a record the status may rest on is missing"
        ),
        ReviewReason::PossibleUnrecordedCitizenship { detail } => format!(
            "permanent residence on record, but citizenship may have been gained since without a record ({detail}): citizenship check"
        ),
    }
}

impl Processed {
    pub fn to_stored(&self) -> StoredResult {
        let d = &self.decision;
        StoredResult {
            candidates: self
                .candidates
                .iter()
                .map(|c| StoredCandidate {
                    person_key: c.person_key.clone(),
                    probability: c.probability,
                    strong_identifier: c.strong_identifier,
                    biometric: c.biometric,
                    explanation: c.explanation.clone(),
                    record_ids: c.records.iter().map(|r| r.record_id.clone()).collect(),
                })
                .collect(),
            decision: StoredDecision {
                automatic: d.automatic,
                citizenship_review: d.citizenship_review,
                chosen: d.chosen,
                reviews: d.reviews.iter().map(describe_review).collect(),
                status: d.determination.status,
                rules_version: d.determination.rules_version.clone(),
            },
            engine_version: ENGINE_VERSION.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("saved model: {0}")]
    Model(#[from] ModelError),
    #[error("{0} records are more than the index can hold (4,294,967,295)")]
    TooManyRecords(usize),
}

/// The in-memory part of the engine: search index, model, status rules and LESC policy.
pub struct Engine {
    searcher: Searcher,
    /// Index document -> record id.
    record_ids: Vec<String>,
    /// Record id -> index document (to replace a record on insert).
    docs: HashMap<String, u32>,
    rules: StatusRules,
    policy: LescPolicy,
}

impl Engine {
    /// An engine that knows no records yet (records arrive through [`Engine::insert`]). Its
    /// model is untrained: build from the store, or pass a saved model, for real answers.
    pub fn empty(rules: StatusRules, policy: LescPolicy) -> Engine {
        let model = Model::train(&[], None, &[], &TrainOptions::default());
        Engine {
            searcher: Searcher::with_model(model, std::iter::empty()),
            record_ids: Vec::new(),
            docs: HashMap::new(),
            rules,
            policy,
        }
    }

    /// Indexes every record. With `model` (a saved model file's text) the model is loaded;
    /// without one it is trained, unsupervised and deterministically, on an evenly spaced
    /// sample of at most [`TRAIN_SAMPLE_MAX`] records (same records in the same order, same
    /// model).
    pub fn build(
        records: impl Iterator<Item = (String, Identity)>,
        model: Option<&str>,
        rules: StatusRules,
        policy: LescPolicy,
    ) -> Result<Engine, EngineError> {
        let records: Vec<(String, Identity)> = records.collect();
        if records.len() > u32::MAX as usize {
            return Err(EngineError::TooManyRecords(records.len()));
        }
        let model = match model {
            Some(text) => Model::from_json(text)?,
            None => train_model(records.iter().map(|(_, id)| id), records.len()),
        };
        let searcher = Searcher::with_model(
            model,
            records
                .iter()
                .enumerate()
                .map(|(i, (_, id))| (i as u32, id)),
        );
        let mut docs = HashMap::with_capacity(records.len());
        let mut record_ids = Vec::with_capacity(records.len());
        for (i, (rid, _)) in records.into_iter().enumerate() {
            docs.insert(rid.clone(), i as u32);
            record_ids.push(rid);
        }
        Ok(Engine {
            searcher,
            record_ids,
            docs,
            rules,
            policy,
        })
    }

    /// The model as a versioned JSON file (saved in the data dir, passed to `build` next start).
    pub fn model_json(&self) -> String {
        self.searcher.model().to_json()
    }

    pub fn model(&self) -> &Model {
        self.searcher.model()
    }

    /// Records in the index.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn rules(&self) -> &StatusRules {
        &self.rules
    }

    pub fn policy(&self) -> &LescPolicy {
        &self.policy
    }

    /// Adds one record to the index, or replaces it when its id is known (no rebuild).
    pub fn insert(&mut self, record_id: &str, identity: &Identity) {
        let doc = match self.docs.get(record_id) {
            Some(&d) => d,
            None => {
                // Beyond u32::MAX records the index cannot grow; such a store is far beyond
                // what one engine serves, and the record stays reachable by identifier.
                let Ok(d) = u32::try_from(self.record_ids.len()) else {
                    return;
                };
                self.record_ids.push(record_id.to_string());
                self.docs.insert(record_id.to_string(), d);
                d
            }
        };
        self.searcher.insert(doc, identity);
    }

    /// Resolves and decides one query.
    pub async fn process<L: RecordLookup>(
        &self,
        input: &QueryInput<'_>,
        lookup: &L,
    ) -> Result<Processed, L::Error> {
        let query = query_identity(input);
        let hits = self.searcher.search(&query, SEARCH_HITS);
        let ids: Vec<String> = hits
            .iter()
            .filter(|h| h.scored.probability >= EXPAND_MIN)
            .filter_map(|h| self.record_ids.get(h.doc as usize).cloned())
            .collect();
        let records = self.gather(&query, ids, lookup).await?;
        let candidates = self.candidates(&query, input, &records, &BTreeSet::new());
        let decision = decide(&candidates, &context(input), &self.rules, &self.policy);
        if !(decision.automatic
            && decision.chosen.is_none()
            && decision.determination.status == ImmigrationStatus::NoRecordFound)
        {
            return Ok(Processed {
                candidates,
                decision,
            });
        }
        self.second_look(&query, input, records, candidates, decision, lookup)
            .await
    }

    /// Before "no record found" goes out automatically: a weak candidate of the first search,
    /// or anything plausible under a variant of the query (birth year off by one, day and
    /// month transposed, names swapped, one name part alone), sends the query to a specialist
    /// with the records found among the candidates. The status stays "no record found" unless
    /// the records found make a candidate plausible for the query as asked.
    async fn second_look<L: RecordLookup>(
        &self,
        query: &Identity,
        input: &QueryInput<'_>,
        records: Vec<SourceRecord>,
        candidates: Vec<Candidate>,
        decision: Decision,
        lookup: &L,
    ) -> Result<Processed, L::Error> {
        // (what changed, record id, probability under that change), strongest first.
        let mut found: Vec<(&'static str, String, f64)> = candidates
            .iter()
            .filter(|c| c.probability >= self.policy.no_record_weak_candidate_min)
            .filter_map(|c| {
                c.records
                    .first()
                    .map(|r| ("a weak match as asked", r.record_id.clone(), c.probability))
            })
            .collect();
        for variant in second_look::query_variants(query) {
            for hit in self.searcher.search_above(
                &variant.identity,
                SECOND_LOOK_HITS,
                self.policy.plausible_min,
            ) {
                if let Some(id) = self.record_ids.get(hit.doc as usize) {
                    found.push((variant.change, id.clone(), hit.scored.probability));
                }
            }
        }
        if found.is_empty() {
            return Ok(Processed {
                candidates,
                decision,
            });
        }
        found.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        let keep: BTreeSet<String> = found.iter().map(|f| f.1.clone()).collect();
        let mut records = records;
        let extra = self
            .gather(query, keep.iter().cloned().collect(), lookup)
            .await?;
        let known: BTreeSet<String> = records.iter().map(|r| r.record_id.clone()).collect();
        records.extend(extra.into_iter().filter(|r| !known.contains(&r.record_id)));
        records.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        let candidates = self.candidates(query, input, &records, &keep);
        let mut decision = decide(&candidates, &context(input), &self.rules, &self.policy);
        if decision.chosen.is_none()
            && decision.determination.status == ImmigrationStatus::NoRecordFound
        {
            let (change, _, probability) = &found[0];
            decision
                .reviews
                .push(ReviewReason::PossibleRecordOnSecondLook {
                    change: (*change).to_string(),
                    probability: *probability,
                });
            decision.automatic = false;
        }
        Ok(Processed {
            candidates,
            decision,
        })
    }

    /// Recomposes the decision after a specialist's choice: candidate `chosen` (or none). The
    /// specialist has confirmed the identity, so the chosen person alone is decided on, at
    /// full identity confidence; the status and every safeguard still come from the records
    /// and the query (a citizenship claim or indicium still gives the safe answer). An index
    /// out of range counts as "none".
    pub fn decide_for(
        &self,
        candidates: &[Candidate],
        chosen: Option<usize>,
        input: &QueryInput<'_>,
    ) -> Decision {
        let ctx = context(input);
        match chosen.and_then(|i| candidates.get(i).map(|c| (i, c))) {
            Some((i, c)) => {
                let mut confirmed = c.clone();
                confirmed.probability = 1.0;
                let mut d = decide(
                    std::slice::from_ref(&confirmed),
                    &ctx,
                    &self.rules,
                    &self.policy,
                );
                d.chosen = Some(i);
                // Safeguard: choosing one person over a plausible other candidate who shows
                // U.S. citizenship does not make the citizenship question go away (the person
                // in front of the officer may be that citizen, a look-alike). The answer stays
                // "potential U.S. citizen" until a deportation officer resolves it.
                for (j, other) in candidates.iter().enumerate() {
                    if j == i || other.probability < self.policy.plausible_min {
                        continue;
                    }
                    let theirs = self.rules.determine(&other.records, ctx.today);
                    if theirs.citizenship_indicia.is_empty() {
                        continue;
                    }
                    d.reviews.push(ReviewReason::PlausibleCandidateIsCitizen {
                        person_key: other.person_key.clone(),
                    });
                    d.determination
                        .citizenship_indicia
                        .extend(theirs.citizenship_indicia);
                    d.determination.status = ImmigrationStatus::PotentialUsCitizen;
                    d.determination.routine = false;
                    d.determination.citizenship_review_required = true;
                    d.citizenship_review = true;
                    d.automatic = false;
                }
                d
            }
            None => decide(&[], &ctx, &self.rules, &self.policy),
        }
    }

    /// Every record the query may be about: the records `ids` (index hits), records carrying
    /// the query's own identifiers, and records sharing a strong identifier with those
    /// (bounded rounds).
    async fn gather<L: RecordLookup>(
        &self,
        query: &Identity,
        ids: Vec<String>,
        lookup: &L,
    ) -> Result<Vec<SourceRecord>, L::Error> {
        let mut found: Vec<SourceRecord> = Vec::new();
        let mut seen_records: BTreeSet<String> = BTreeSet::new();
        let mut add = |found: &mut Vec<SourceRecord>, batch: Vec<SourceRecord>| {
            for r in batch {
                if found.len() < MAX_RECORDS_PER_QUERY && seen_records.insert(r.record_id.clone()) {
                    found.push(r);
                }
            }
        };
        if !ids.is_empty() {
            add(&mut found, lookup.records(&ids).await?);
        }
        let mut seen_ids: BTreeSet<(char, String)> = BTreeSet::new();
        if let Some(own) = unseen_strong(query, &mut seen_ids) {
            add(&mut found, lookup.records_sharing_identifiers(&own).await?);
        }
        let mut start = 0;
        for _ in 0..EXPANSION_ROUNDS {
            let end = found.len();
            let mut asks = Vec::new();
            for r in &found[start..end] {
                if let Some(ask) = unseen_strong(&r.identity, &mut seen_ids) {
                    asks.push(ask);
                }
            }
            for ask in asks {
                if found.len() >= MAX_RECORDS_PER_QUERY {
                    break;
                }
                add(&mut found, lookup.records_sharing_identifiers(&ask).await?);
            }
            start = end;
            if start == found.len() {
                break;
            }
        }
        // The lookup returns records in any order: sort so that the answer does not depend on it.
        found.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        Ok(found)
    }

    /// Groups the records into persons and scores each person against the query, best first.
    /// A group holding a record of `keep` stays whatever its probability (a second look found
    /// it: the specialist must see it).
    fn candidates(
        &self,
        query: &Identity,
        input: &QueryInput<'_>,
        records: &[SourceRecord],
        keep: &BTreeSet<String>,
    ) -> Vec<Candidate> {
        let model = self.searcher.model();
        let q = Prepared::from_identity(query);
        let prepared: Vec<Prepared> = records
            .iter()
            .map(|r| Prepared::from_identity(&r.identity))
            .collect();
        // Weights without explanations for every record; the explanation is written for each
        // group's best record only (the same arithmetic: a test pins the two to the bit).
        let weights: Vec<f64> = prepared.iter().map(|p| model.final_weight(&q, p)).collect();
        let query_ids = strong_keys(&query.ids);
        let mut out: Vec<Candidate> = group_records(records, model)
            .into_iter()
            .filter_map(|group| {
                let best = group.iter().copied().max_by(|&a, &b| {
                    weights[a]
                        .total_cmp(&weights[b])
                        .then_with(|| records[b].record_id.cmp(&records[a].record_id))
                })?;
                let scored = model.score_prepared(&q, &prepared[best]);
                let probability = scored.probability;
                let kept = group.iter().any(|&i| keep.contains(&records[i].record_id));
                if probability < CANDIDATE_FLOOR && !kept {
                    return None;
                }
                let strong_identifier = group.iter().any(|&i| {
                    strong_keys(&records[i].identity.ids)
                        .iter()
                        .any(|k| query_ids.contains(k))
                });
                let biometric = input.biometric_fin.as_ref().is_some_and(|fin| {
                    group
                        .iter()
                        .any(|&i| records[i].identity.ids.fin.as_ref() == Some(fin))
                });
                let mut recs: Vec<SourceRecord> =
                    group.iter().map(|&i| records[i].clone()).collect();
                recs.sort_by(|a, b| a.record_id.cmp(&b.record_id));
                let person_key = format!(
                    "{SUBJECT_KEY_PREFIX}{}",
                    recs.first().map(|r| r.record_id.as_str()).unwrap_or("")
                );
                Some(Candidate {
                    person_key,
                    probability,
                    strong_identifier,
                    biometric,
                    explanation: scored
                        .fields
                        .iter()
                        .map(|f| FieldEvidence {
                            field: f.field.to_string(),
                            weight: f.weight,
                            detail: format!("{}: {}", f.level, f.detail),
                        })
                        .collect(),
                    records: recs,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.probability
                .total_cmp(&a.probability)
                .then_with(|| a.person_key.cmp(&b.person_key))
        });
        out.truncate(MAX_CANDIDATES);
        out
    }
}

/// Trains a model on an evenly spaced sample of at most [`TRAIN_SAMPLE_MAX`] identities.
fn train_model<'a>(identities: impl Iterator<Item = &'a Identity>, total: usize) -> Model {
    let stride = total.div_ceil(TRAIN_SAMPLE_MAX).max(1);
    let sample: Vec<Prepared> = identities
        .step_by(stride)
        .map(Prepared::from_identity)
        .collect();
    let pairs = verity_resolve::link::candidate_pairs(&sample, None, 2_000);
    Model::train(&sample, None, &pairs, &TrainOptions::default())
}

fn context(input: &QueryInput<'_>) -> QueryContext {
    QueryContext {
        in_custody: input.iaq.in_custody,
        citizenship_claimed: input.iaq.citizenship_claimed,
        today: input.today,
    }
}

/// The identity the query describes (the confirmed FIN included).
pub fn query_identity(input: &QueryInput<'_>) -> Identity {
    let iaq = input.iaq;
    Identity {
        name: iaq.name.clone(),
        aliases: Vec::new(),
        dob: iaq.dob,
        sex: iaq.sex,
        country_of_birth: iaq.country_of_birth.clone(),
        ids: Identifiers {
            fin: input.biometric_fin.clone().or_else(|| iaq.ids.fin.clone()),
            ..iaq.ids.clone()
        },
        address: Default::default(),
    }
}

/// The strong identifiers (A-number, FIN, FBI number, SSN, passport) as (kind, value) keys.
fn strong_keys(ids: &Identifiers) -> Vec<(char, String)> {
    let mut k = Vec::with_capacity(5);
    if let Some(a) = &ids.a_number {
        k.push(('a', a.as_str().to_string()));
    }
    if let Some(f) = &ids.fin {
        k.push(('n', f.as_str().to_string()));
    }
    if let Some(b) = &ids.fbi_number {
        k.push(('b', b.as_str().to_string()));
    }
    if let Some(s) = &ids.ssn {
        k.push(('s', s.as_str().to_string()));
    }
    if let Some(p) = &ids.passport {
        k.push(('p', p.to_string()));
    }
    k
}

/// An identity carrying only the strong identifiers of `identity` not asked about yet (and
/// marks them asked), or `None` when there is nothing new to ask.
fn unseen_strong(identity: &Identity, seen: &mut BTreeSet<(char, String)>) -> Option<Identity> {
    let ids = &identity.ids;
    let mut ask = Identifiers::default();
    let mut any = false;
    let mut fresh = |kind: char, value: String| seen.insert((kind, value));
    if let Some(a) = &ids.a_number {
        if fresh('a', a.as_str().to_string()) {
            ask.a_number = Some(a.clone());
            any = true;
        }
    }
    if let Some(f) = &ids.fin {
        if fresh('n', f.as_str().to_string()) {
            ask.fin = Some(f.clone());
            any = true;
        }
    }
    if let Some(b) = &ids.fbi_number {
        if fresh('b', b.as_str().to_string()) {
            ask.fbi_number = Some(b.clone());
            any = true;
        }
    }
    if let Some(s) = &ids.ssn {
        if fresh('s', s.as_str().to_string()) {
            ask.ssn = Some(s.clone());
            any = true;
        }
    }
    if let Some(p) = &ids.passport {
        if fresh('p', p.to_string()) {
            ask.passport = Some(p.clone());
            any = true;
        }
    }
    any.then(|| Identity {
        ids: ask,
        ..Default::default()
    })
}

/// The identifiers a record carries wherever they are written, as (kind, value) keys: the
/// strong identifiers of its identity, its state id (SID: arrest and custody records often
/// carry only an FBI number or a SID), and the FIN of a fingerprint enrollment, which is the
/// person's FIN even when the enrolling system wrote no FIN on the identity.
pub fn record_identifier_keys(record: &SourceRecord) -> Vec<(char, String)> {
    let mut keys = strong_keys(&record.identity.ids);
    if let Some(sid) = &record.identity.ids.state_id {
        keys.push(('t', sid.to_string()));
    }
    if let verity_model::RecordBody::Biometrics(b) = &record.body {
        let fin = ('n', b.fin.as_str().to_string());
        if !keys.contains(&fin) {
            keys.push(fin);
        }
    }
    keys
}

/// The record's identity with the identifiers its body holds filled in where the identity
/// lacks them (a fingerprint enrollment's FIN), so that the model counts the identifier a
/// join rests on.
fn identity_with_body_ids(record: &SourceRecord) -> std::borrow::Cow<'_, Identity> {
    match &record.body {
        verity_model::RecordBody::Biometrics(b) if record.identity.ids.fin.is_none() => {
            let mut identity = record.identity.clone();
            identity.ids.fin = Some(b.fin.clone());
            std::borrow::Cow::Owned(identity)
        }
        _ => std::borrow::Cow::Borrowed(&record.identity),
    }
}

/// Groups records into persons: records join when they share an exact identifier wherever it
/// is written ([`record_identifier_keys`]) *and* the model, which counts that identifier's
/// agreement, confirms it: the pair's probability is at least
/// [`GROUP_MIN_PROBABILITY`]. A shared number on records whose names and birth dates disagree
/// (a clerk's typo, a borrowed number) stays below it, so an identifier alone never merges two
/// people; and name and birth date alone never join records (no shared identifier, no join):
/// merged records of two people are how citizens get detained. Groups are the connected
/// components of such pairs: one person's noisy records join through whichever of their
/// records agree best. Returns groups of indexes into `records`, each sorted, groups ordered
/// by their first index. Used by the engine per query and by lead generation over batches of
/// the store.
pub fn group_records(records: &[SourceRecord], model: &Model) -> Vec<Vec<usize>> {
    let n = records.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut buckets: HashMap<(char, String), Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for key in record_identifier_keys(r) {
            buckets.entry(key).or_default().push(i);
        }
    }
    // Deterministic order of buckets, so that the same input always gives the same groups.
    let mut keys: Vec<&(char, String)> = buckets
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    let mut prepared: Vec<Option<Prepared>> = vec![None; n];
    for key in keys {
        let members = &buckets[key];
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
                if ri == rj {
                    continue;
                }
                for k in [i, j] {
                    if prepared[k].is_none() {
                        prepared[k] = Some(Prepared::from_identity(&identity_with_body_ids(
                            &records[k],
                        )));
                    }
                }
                let same = match (&prepared[i], &prepared[j]) {
                    (Some(a), Some(b)) => model.probability(a, b) >= GROUP_MIN_PROBABILITY,
                    _ => false,
                };
                if same {
                    // The smaller root wins, so components do not depend on edge order.
                    let (lo, hi) = if ri < rj { (ri, rj) } else { (rj, ri) };
                    parent[hi] = lo;
                }
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    for i in 0..n {
        let root = find(&mut parent, i);
        let g = *slot.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}
