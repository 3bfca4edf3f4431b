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

use super::decision::{Candidate, Decision};
use super::intake::Iaq;
use std::future::Future;
use verity_model::{Fin, Identity, SourceRecord};

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

/// The in-memory part of the engine: search index, model, status rules and LESC policy.
pub struct Engine {
    rules: verity_policy::StatusRules,
    policy: super::LescPolicy,
}

impl Engine {
    /// An engine that knows no records yet (skeleton: the real one builds its index from the
    /// store at start).
    pub fn empty(rules: verity_policy::StatusRules, policy: super::LescPolicy) -> Engine {
        Engine { rules, policy }
    }

    /// Adds one record to the index (incremental; no rebuild).
    pub fn insert(&mut self, record_id: &str, identity: &Identity) {
        let _ = (record_id, identity);
    }

    /// Resolves and decides one query.
    pub async fn process<L: RecordLookup>(
        &self,
        input: &QueryInput<'_>,
        lookup: &L,
    ) -> Result<Processed, L::Error> {
        let _ = lookup;
        let ctx = super::decision::QueryContext {
            in_custody: input.iaq.in_custody,
            citizenship_claimed: input.iaq.citizenship_claimed,
            today: input.today,
        };
        let candidates = Vec::new();
        let decision = super::decide(&candidates, &ctx, &self.rules, &self.policy);
        Ok(Processed {
            candidates,
            decision,
        })
    }
}

/// Groups records into persons: records join when they share a strong identifier and the model
/// scores them as the same person. Returns groups of indexes into `records`. Used by the
/// engine per query and by lead generation over the whole store.
pub fn group_records(records: &[SourceRecord]) -> Vec<Vec<usize>> {
    (0..records.len()).map(|i| vec![i]).collect()
}
