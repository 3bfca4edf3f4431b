//! Real-time search: the candidate index proposes, the model scores, the best come back with
//! their probability and per-field explanation.
//!
//! A [`Searcher`] keeps each indexed record packed in a [`CompactRecords`] arena (about 100
//! bytes a record, so 10 million fit in about a gigabyte) and decodes only the candidates of a
//! query into reused scratch records. Scoring pays the costly name alignment only while a
//! candidate can still make the answer: each candidate first gets an upper bound of its final
//! weight from its cheap fields ([`Model::final_weight_bound`], names counted at their best
//! possible level); candidates are visited best bound first, and the visit stops once no
//! remaining bound can reach the `limit`-th best weight found or the reporting threshold. The
//! explanation is built only for the hits returned. Names are aligned by interned unit ids
//! (`compare_levels_prepared`, the same levels as the string comparison). The result is the one exhaustive scoring
//! of every candidate gives (a test checks it).

#[path = "search_store.rs"]
pub mod store;

use std::borrow::Borrow;
use std::cell::RefCell;

use crate::compare::{self, Vector};
use crate::index::{CandidateIndex, IndexKeys};
use crate::link::candidate_pairs;
use crate::model::{Model, Scored, TrainOptions};
use crate::names::{compare_levels_prepared, SharedTokenTable};
use crate::record::{Prepared, Record};
use verity_model::Identity;

pub use store::{CompactRecords, StoreStats};

/// How many index candidates are considered per query. The index ranks identifier hits first,
/// so the true record is nearly always among the first few (recall@100 ≥ 99.9% at 10 M records).
pub const CANDIDATES_SCORED: usize = 100;

/// One result: which record, how likely it is the query's person, and why.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub doc: u32,
    pub scored: Scored,
}

/// Work done by one search, for benchmarks and tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchWork {
    /// Candidates the index proposed.
    pub candidates: usize,
    /// Candidates whose names were aligned (the costly step).
    pub aligned: usize,
    /// Hits returned (each explained).
    pub returned: usize,
}

/// Memory held by a searcher's index and records (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearcherMemory {
    pub index_bytes: usize,
    pub records: StoreStats,
}

impl SearcherMemory {
    pub fn total_bytes(&self) -> usize {
        self.index_bytes + self.records.total_bytes()
    }
}

pub struct Searcher {
    model: Model,
    index: CandidateIndex,
    records: CompactRecords,
    /// Name units of queries and scored candidates, interned on first sight: candidates'
    /// names are compared by unit ids ([`compare_levels_prepared`], exactly what the string
    /// comparison gives, several times faster). It holds only the units search has met, so
    /// it stays small next to the records, and grows by the write lock only for new units.
    names: SharedTokenTable,
}

/// Per-thread scratch of a search: decoded candidates and their bounds (reused across
/// queries so that a search allocates little beyond its answer).
#[derive(Default)]
struct Scratch {
    decoded: Vec<Prepared>,
    /// (bound, slot in `decoded`, doc, cheap comparison vector)
    bounds: Vec<(f64, usize, u32, Vector)>,
    /// (final weight, doc, slot), best first
    best: Vec<(f64, u32, usize)>,
    /// Name levels already computed for this query, by the candidate's name units: common
    /// names recur among candidates, and the alignment depends on the name alone.
    name_memo: Vec<(u64, String, [u8; 3])>,
    name_memo_used: usize,
    key: String,
}

/// The candidate's name units as a memo key (unit and part separators cannot occur in
/// normalized names).
fn name_key(key: &mut String, p: &Prepared) {
    key.clear();
    for part in [&p.name.given, &p.name.middle, &p.name.family] {
        for unit in part {
            key.push_str(unit);
            key.push('\u{1e}');
        }
        key.push('\u{1f}');
    }
}

/// FNV-1a of a memo key (only to skip unequal keys quickly; equal hashes are then compared).
fn memo_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Log2-odds of a probability (−∞ for 0, +∞ for 1).
/// Best match weight first; equal weights by document id, so the order is deterministic.
fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.scored
            .match_weight
            .total_cmp(&a.scored.match_weight)
            .then(a.doc.cmp(&b.doc))
    });
}

fn log2_odds(p: f64) -> f64 {
    (p / (1.0 - p)).log2()
}

impl Searcher {
    /// Trains a model on the records themselves (unsupervised, deterministic for the same data
    /// and seed) and indexes them. Record `i` of `records` is doc `i`.
    pub fn train(records: &[Record], train: &TrainOptions, max_bucket: usize) -> Searcher {
        let prepared: Vec<Prepared> = records.iter().map(Prepared::from_record).collect();
        let pairs = candidate_pairs(&prepared, None, max_bucket);
        let model = Model::train(&prepared, None, &pairs, train);
        Self::with_model(
            model,
            records
                .iter()
                .enumerate()
                .map(|(i, r)| (i as u32, &r.identity)),
        )
    }

    /// Indexes identities under a model trained elsewhere (for example loaded from its file).
    /// Identities are streamed: only the packed records and the index are kept.
    pub fn with_model<'a>(
        model: Model,
        identities: impl IntoIterator<Item = (u32, &'a Identity)>,
    ) -> Searcher {
        Self::from_identities(model, identities)
    }

    /// As [`Self::with_model`] for identities given by value or by reference, so that a caller
    /// can generate or read them in a stream without holding them all.
    pub fn from_identities<I: Borrow<Identity>>(
        model: Model,
        identities: impl IntoIterator<Item = (u32, I)>,
    ) -> Searcher {
        let mut records = CompactRecords::new();
        let index = CandidateIndex::build(identities.into_iter().map(|(doc, id)| {
            let id = id.borrow();
            records.insert(doc, &Prepared::from_identity(id));
            (doc, IndexKeys::from_identity(id))
        }));
        records.shrink_to_fit();
        Searcher {
            model,
            index,
            records,
            names: SharedTokenTable::new(),
        }
    }

    /// Adds (or replaces) one record without rebuilding anything.
    pub fn insert(&mut self, doc: u32, identity: &Identity) {
        self.records.insert(doc, &Prepared::from_identity(identity));
        self.index.insert(doc, &IndexKeys::from_identity(identity));
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn index(&self) -> &CandidateIndex {
        &self.index
    }

    /// Bytes held by the index structures and the packed records.
    pub fn memory(&self) -> SearcherMemory {
        let stats = self.index.stats();
        SearcherMemory {
            index_bytes: stats.memory.total() + stats.delta_bytes,
            records: self.records.stats(),
        }
    }

    /// The `limit` most probable records for `query`, best first.
    pub fn search(&self, query: &Identity, limit: usize) -> Vec<SearchHit> {
        self.search_above(query, limit, 0.0)
    }

    /// The `limit` most probable records for `query` whose probability is at least
    /// `min_probability`, best first. A threshold lets the search skip more candidates.
    pub fn search_above(
        &self,
        query: &Identity,
        limit: usize,
        min_probability: f64,
    ) -> Vec<SearchHit> {
        self.search_counted(query, limit, min_probability).0
    }

    /// [`Self::search_above`] with a count of the work done.
    pub fn search_counted(
        &self,
        query: &Identity,
        limit: usize,
        min_probability: f64,
    ) -> (Vec<SearchHit>, SearchWork) {
        if limit == 0 {
            return (Vec::new(), SearchWork::default());
        }
        let candidates = self
            .index
            .candidates(&IndexKeys::from_identity(query), CANDIDATES_SCORED);
        let q = Prepared::from_identity(query);
        let threshold = if min_probability > 0.0 {
            log2_odds(min_probability)
        } else {
            f64::NEG_INFINITY
        };
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.score(&q, &candidates, limit, threshold, &mut scratch),
            // Only reachable if a search ran inside a search on this thread: use fresh scratch.
            Err(_) => self.score(&q, &candidates, limit, threshold, &mut Scratch::default()),
        })
    }

    /// The `limit` best hits as an exhaustive search finds them: the index's candidates
    /// computed without the forward index, every one fully scored. Equals
    /// [`Self::search_above`]; slower. For equivalence checks in benchmarks.
    #[doc(hidden)]
    pub fn search_reference(
        &self,
        query: &Identity,
        limit: usize,
        min_probability: f64,
    ) -> Vec<SearchHit> {
        let candidates = self
            .index
            .candidates_reference(&IndexKeys::from_identity(query), CANDIDATES_SCORED);
        let q = Prepared::from_identity(query);
        let mut hits: Vec<SearchHit> = candidates
            .iter()
            .filter_map(|&(doc, _)| {
                let rec = self.records.get(doc)?;
                let scored = self.model.score_prepared(&q, &rec);
                let keep =
                    min_probability <= 0.0 || scored.match_weight >= log2_odds(min_probability);
                keep.then_some(SearchHit { doc, scored })
            })
            .collect();
        sort_hits(&mut hits);
        hits.truncate(limit);
        hits
    }

    fn score(
        &self,
        q: &Prepared,
        candidates: &[(u32, u32)],
        limit: usize,
        threshold: f64,
        s: &mut Scratch,
    ) -> (Vec<SearchHit>, SearchWork) {
        let mut work = SearchWork {
            candidates: candidates.len(),
            ..SearchWork::default()
        };
        if s.decoded.len() < candidates.len() {
            s.decoded.resize_with(candidates.len(), Prepared::default);
        }
        s.bounds.clear();
        for (slot, &(doc, _)) in candidates.iter().enumerate() {
            let rec = &mut s.decoded[slot];
            if !self.records.decode_into(doc, rec) {
                continue;
            }
            let v = compare::vector_without_names(q, rec);
            let bound = self.model.final_weight_bound(q, rec, &v);
            if bound >= threshold {
                s.bounds.push((bound, slot, doc, v));
            }
        }
        s.bounds
            .sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.2.cmp(&y.2)));
        s.best.clear();
        s.name_memo_used = 0;
        let q_name = self.names.prepare(&q.name);
        for &(bound, slot, doc, mut v) in &s.bounds {
            if s.best.len() >= limit && s.best.get(limit - 1).is_some_and(|b| bound < b.0) {
                break;
            }
            let rec = &s.decoded[slot];
            name_key(&mut s.key, rec);
            // Compare a hash first: most memo entries are other names.
            let hash = memo_hash(&s.key);
            let known = s.name_memo[..s.name_memo_used]
                .iter()
                .find(|(h, k, _)| *h == hash && *k == s.key)
                .map(|e| e.2);
            let [g, m, f] = match known {
                Some(levels) => levels,
                None => {
                    let cand_name = self.names.prepare(&rec.name);
                    let (given, middle, family, swapped) =
                        compare_levels_prepared(&q_name, &cand_name, &self.names.read());
                    let levels = compare::levels_of_agreements(given, middle, family, swapped);
                    work.aligned += 1;
                    match s.name_memo.get_mut(s.name_memo_used) {
                        Some(e) => {
                            e.0 = hash;
                            e.1.clear();
                            e.1.push_str(&s.key);
                            e.2 = levels;
                        }
                        None => s.name_memo.push((hash, s.key.clone(), levels)),
                    }
                    s.name_memo_used += 1;
                    levels
                }
            };
            (v[compare::GIVEN], v[compare::MIDDLE], v[compare::FAMILY]) = (g, m, f);
            let w = self.model.final_weight_of(q, rec, &v);
            if w < threshold {
                continue;
            }
            let pos = s
                .best
                .iter()
                .position(|&(bw, bd, _)| w > bw || (w == bw && doc < bd))
                .unwrap_or(s.best.len());
            if pos < limit {
                s.best.insert(pos, (w, doc, slot));
                s.best.truncate(limit);
            }
        }
        let mut hits: Vec<SearchHit> = s
            .best
            .iter()
            .map(|&(_, doc, slot)| SearchHit {
                doc,
                scored: self.model.score_prepared(q, &s.decoded[slot]),
            })
            .collect();
        sort_hits(&mut hits);
        work.returned = hits.len();
        (hits, work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{generate, BenchConfig};

    #[test]
    fn search_finds_mates_and_keeps_hard_negatives_below_half() {
        let world = generate(&BenchConfig {
            identities: 2_000,
            probes: 400,
            seed: 5,
            hard_negative_share: 0.35,
        });
        let searcher = Searcher::train(&world.gallery, &TrainOptions::default(), 2_000);
        let (mut found, mut mated, mut hard_high, mut hard) = (0, 0, 0, 0);
        for (i, probe) in world.probes.iter().enumerate() {
            let hits = searcher.search(&probe.identity, 5);
            if let Some(mate) = world.mate[i] {
                mated += 1;
                if hits.first().is_some_and(|h| h.doc == mate) {
                    found += 1;
                }
            } else if world.hard_negative[i] {
                hard += 1;
                if hits.first().is_some_and(|h| h.scored.probability >= 0.5) {
                    hard_high += 1;
                }
            }
            for h in &hits {
                let sum: f64 = h.scored.fields.iter().map(|f| f.weight).sum();
                assert!(
                    (sum - h.scored.match_weight).abs() < 1e-6,
                    "explanation must add up"
                );
            }
        }
        assert!(mated > 100 && hard > 50);
        assert!(found as f64 / mated as f64 > 0.9, "rank-1 {found}/{mated}");
        assert_eq!(hard_high, 0, "hard negatives above 0.5");
    }

    #[test]
    fn pruned_scoring_returns_what_exhaustive_scoring_returns() {
        let world = generate(&BenchConfig {
            identities: 1_500,
            probes: 300,
            seed: 7,
            hard_negative_share: 0.35,
        });
        let searcher = Searcher::train(&world.gallery, &TrainOptions::default(), 2_000);
        let mut pruned_work = 0;
        let mut exhaustive_work = 0;
        for probe in &world.probes {
            let q = Prepared::from_identity(&probe.identity);
            let candidates = searcher.index.candidates(
                &IndexKeys::from_identity(&probe.identity),
                CANDIDATES_SCORED,
            );
            for (limit, min_probability) in [(1, 0.0), (5, 0.0), (30, 0.01), (3, 0.5)] {
                let (hits, work) = searcher.search_counted(&probe.identity, limit, min_probability);
                // reference: every candidate scored from its full prepared form
                let mut all: Vec<(f64, u32)> = candidates
                    .iter()
                    .map(|&(doc, _)| {
                        let rec = Prepared::from_identity(&world.gallery[doc as usize].identity);
                        (searcher.model.score_prepared(&q, &rec).match_weight, doc)
                    })
                    .filter(|&(w, _)| min_probability == 0.0 || w >= log2_odds(min_probability))
                    .collect();
                all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                all.truncate(limit);
                let got: Vec<(f64, u32)> = hits
                    .iter()
                    .map(|h| (h.scored.match_weight, h.doc))
                    .collect();
                assert_eq!(got, all, "limit {limit} min {min_probability}");
                pruned_work += work.aligned;
                exhaustive_work += candidates.len();
            }
        }
        assert!(
            pruned_work < exhaustive_work,
            "pruning aligned {pruned_work} of {exhaustive_work}"
        );
    }

    #[test]
    fn memory_is_reported_and_small_per_record() {
        let world = generate(&BenchConfig {
            identities: 1_000,
            probes: 0,
            seed: 2,
            hard_negative_share: 0.35,
        });
        let searcher = Searcher::train(&world.gallery, &TrainOptions::default(), 2_000);
        let m = searcher.memory();
        assert_eq!(m.records.records, 1_000);
        assert!(m.index_bytes > 0);
        assert!(m.records.total_bytes() < 1_000 * 250, "{m:?}");
    }

    #[test]
    fn inserted_records_are_searchable() {
        let world = generate(&BenchConfig {
            identities: 300,
            probes: 10,
            seed: 9,
            hard_negative_share: 0.35,
        });
        let (first, rest) = world.gallery.split_at(299);
        let mut searcher = Searcher::train(first, &TrainOptions::default(), 2_000);
        searcher.insert(299, &rest[0].identity);
        let hits = searcher.search(&rest[0].identity, 1);
        assert_eq!(hits.first().map(|h| h.doc), Some(299));
    }
}
