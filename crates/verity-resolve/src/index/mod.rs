//! Candidate index for real-time identity search.
//!
//! An in-memory inverted index from name tokens, blocking keys (phonetic, variant-canonical,
//! initials + birth year) and identifiers to document ids (`u32`). It narrows millions of
//! records to a few hundred candidates that the Fellegi–Sunter model then scores.
//!
//! Layout (LSM-style, two tiers):
//! - an immutable tier ([`postings::BaseTier`]): one fst map term -> posting location, postings
//!   as single ids, small sorted runs in a shared arena, or roaring bitmaps;
//! - a forward index in the immutable tier: per doc, the ids of its frequent terms
//!   ([`IndexConfig::forward_min_docs`]), so that search counts a long posting for the few
//!   thousand docs it reached without walking or probing the posting;
//! - a small mutable delta: per term, the docs added and removed since the last merge. An fst
//!   cannot change, so inserts and removals land here and are merged into a new immutable tier
//!   when the delta passes [`IndexConfig::merge_threshold`] changes.
//!
//! The delta is exact per (term, doc): a removed document stays hidden even if its id is later
//! reused with different keys, and re-inserting it restores only the new keys.

pub mod fuzzy;
pub mod keys;
pub mod postings;

mod build;
mod search;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use roaring::RoaringBitmap;

pub use keys::IndexKeys;
pub use postings::MemoryBreakdown;
pub use search::CandidateWork;

use postings::{BaseTier, PostingRef};

/// Typo expansions of one token: (edit distance, namespaced term), closest first.
type Expansions = Arc<[(u8, Box<str>)]>;

/// The delta may hold this fraction (1/n) of the immutable tier's postings before a merge.
pub const MERGE_FRACTION: u64 = 32;

/// Tuning of the index. The defaults suit 1–10 million records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// A query key whose posting holds more docs than this is "common": it does not bring in
    /// candidates by itself, it only adds to the count of docs reached through a more
    /// selective key (e.g. family-phonetic + birth year). Bounds search work on common names.
    pub common_key_docs: u64,
    /// Most postings enumerated per query: selective groups are taken smallest first until
    /// this budget is spent; the rest count only for docs already reached. 6,000 (was
    /// 24,000) cut search CPU ~15% at 1M records with rank-1 unchanged; 3,000 lost rank-1.
    pub enumerate_budget: u64,
    /// Changes (term, doc) held in the delta before it is merged into the immutable tier
    /// (or 1/[`MERGE_FRACTION`] of the tier's postings, whichever is larger).
    pub merge_threshold: usize,
    /// Most typo expansions kept per query token (closest first; the exact token always).
    pub max_expansions: usize,
    /// Most candidates taken when every query key is common (intersection of those keys).
    pub max_fallback_candidates: usize,
    /// Query tokens whose typo expansions are cached (0 disables the cache).
    pub expansion_cache_tokens: usize,
    /// Terms with at least this many docs in the immutable tier are "frequent": each doc
    /// lists its frequent terms in a forward index, and search counts them for reached docs
    /// from there instead of probing their long postings (0 disables the forward index).
    pub forward_min_docs: u64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            common_key_docs: 10_000,
            enumerate_budget: 6_000,
            merge_threshold: 500_000,
            max_expansions: 24,
            max_fallback_candidates: 5_000,
            expansion_cache_tokens: 200_000,
            forward_min_docs: postings::FORWARD_MIN_DOCS,
        }
    }
}

/// Changes to one term since the last merge. Invariants: `removed` holds only docs present in
/// the immutable tier; `added` holds only docs absent from it.
#[derive(Debug, Clone, Default)]
struct DeltaPosting {
    added: RoaringBitmap,
    removed: RoaringBitmap,
}

/// The live posting of a term: immutable part patched by the delta.
#[derive(Debug, Clone)]
struct TermPostings<'a> {
    base: Option<PostingRef<'a>>,
    delta: Option<&'a DeltaPosting>,
    /// The frequent-term id when the term is frequent and unchanged since the last merge:
    /// then the forward index says exactly which docs hold it.
    frequent: Option<u16>,
}

impl TermPostings<'_> {
    fn len(&self) -> u64 {
        let base = self.base.as_ref().map_or(0, PostingRef::len);
        match self.delta {
            None => base,
            Some(d) => (base + d.added.len()).saturating_sub(d.removed.len()),
        }
    }

    fn contains(&self, doc: u32) -> bool {
        let in_base = self.base.as_ref().is_some_and(|p| p.contains(doc));
        match self.delta {
            None => in_base,
            Some(d) => (in_base && !d.removed.contains(doc)) || d.added.contains(doc),
        }
    }

    /// Every live doc once, in no particular order.
    fn for_each(&self, mut f: impl FnMut(u32)) {
        match (self.base.as_ref(), self.delta) {
            (Some(b), None) => b.for_each(f),
            (base, Some(d)) => {
                if let Some(b) = base {
                    if d.removed.is_empty() {
                        b.for_each(&mut f);
                    } else {
                        b.for_each(|doc| {
                            if !d.removed.contains(doc) {
                                f(doc)
                            }
                        });
                    }
                }
                d.added.iter().for_each(f);
            }
            (None, None) => {}
        }
    }

    fn to_bitmap(&self) -> RoaringBitmap {
        let mut bm = self
            .base
            .as_ref()
            .map(PostingRef::to_bitmap)
            .unwrap_or_default();
        if let Some(d) = self.delta {
            bm -= &d.removed;
            bm |= &d.added;
        }
        bm
    }
}

/// Sizes of the index, for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Terms in the immutable tier.
    pub terms: usize,
    /// Terms touched in the delta.
    pub delta_terms: usize,
    /// (term, doc) changes in the delta since the last merge.
    pub delta_changes: usize,
    /// Immutable tier bytes.
    pub memory: MemoryBreakdown,
    /// Rough delta bytes (bitmaps serialized size plus term strings and tree nodes).
    pub delta_bytes: usize,
}

/// In-memory candidate index: fst term dictionaries + roaring postings, with a mutable delta.
#[derive(Debug, Default)]
pub struct CandidateIndex {
    config: IndexConfig,
    base: BaseTier,
    delta: BTreeMap<Box<str>, DeltaPosting>,
    delta_changes: usize,
    /// Name tokens present in the delta but not in the immutable dictionary: scanned for typo
    /// expansion, since the delta has no automaton-friendly structure.
    novel_tokens: NovelTokens,
    /// Typo expansions of query tokens against the immutable dictionary (which only changes
    /// on merge, when this is cleared). Name frequencies are skewed, so most query tokens
    /// repeat; walking the dictionary automaton is the costliest part of a search.
    expansion_cache: Mutex<HashMap<Box<str>, Expansions>>,
}

/// Name tokens added since the last merge that the immutable dictionary lacks: an fst set
/// rebuilt every [`NOVEL_BATCH`] additions plus the latest few scanned linearly, so typo
/// expansion over them stays an automaton walk however large the delta grows.
#[derive(Debug, Default)]
struct NovelTokens {
    set: fst::Set<Vec<u8>>,
    recent: BTreeSet<Box<str>>,
}

/// Recent novel tokens scanned linearly before they are folded into the novel fst set.
const NOVEL_BATCH: usize = 1024;

impl NovelTokens {
    fn insert(&mut self, token: &str) {
        if self.set.contains(token) || self.recent.contains(token) {
            return;
        }
        self.recent.insert(token.into());
        if self.recent.len() >= NOVEL_BATCH {
            let merged: Vec<Vec<u8>> = {
                let mut all: Vec<Vec<u8>> = self.set.stream().into_bytes();
                all.extend(self.recent.iter().map(|t| t.as_bytes().to_vec()));
                all.sort_unstable();
                all.dedup();
                all
            };
            // Sorted and deduplicated above, so building cannot fail; keep the old set if it did.
            if let Ok(set) = fst::Set::from_iter(merged) {
                self.set = set;
                self.recent.clear();
            }
        }
    }

    fn clear(&mut self) {
        *self = NovelTokens::default();
    }
}

impl CandidateIndex {
    pub fn new() -> Self {
        Self::with_config(IndexConfig::default())
    }

    pub fn with_config(config: IndexConfig) -> Self {
        CandidateIndex {
            config,
            ..CandidateIndex::default()
        }
    }

    /// Builds the immutable tier at once from all records (sorts terms, builds the fst once).
    pub fn build<I>(records: I) -> Self
    where
        I: IntoIterator<Item = (u32, IndexKeys)>,
    {
        Self::build_with_config(records, IndexConfig::default())
    }

    pub fn build_with_config<I>(records: I, config: IndexConfig) -> Self
    where
        I: IntoIterator<Item = (u32, IndexKeys)>,
    {
        let base = build::build_tier(records, config.forward_min_docs);
        CandidateIndex {
            config,
            base,
            ..CandidateIndex::default()
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Adds a document's keys without rebuilding; merges the delta when it grows too large.
    pub fn insert(&mut self, doc: u32, rec: &IndexKeys) {
        let mut buf = String::new();
        let base = &self.base;
        let delta = &mut self.delta;
        let novel = &mut self.novel_tokens;
        let mut changes = 0usize;
        rec.for_each_doc_term(&mut buf, |term| {
            let base_posting = base.get(term.as_bytes());
            let in_base = base_posting.as_ref().is_some_and(|p| p.contains(doc));
            if let Some(token) = term.strip_prefix(keys::NAME_NS) {
                if base_posting.is_none() {
                    novel.insert(token);
                }
            }
            let changed = match delta.get_mut(term) {
                Some(d) => {
                    if in_base {
                        d.removed.remove(doc)
                    } else {
                        d.added.insert(doc)
                    }
                }
                None if in_base => false,
                None => {
                    let mut d = DeltaPosting::default();
                    d.added.insert(doc);
                    delta.insert(term.into(), d);
                    true
                }
            };
            changes += usize::from(changed);
        });
        self.delta_changes += changes;
        self.merge_if_due();
    }

    /// Hides a document under the given keys (the keys it was inserted with).
    pub fn remove(&mut self, doc: u32, rec: &IndexKeys) {
        let mut buf = String::new();
        let base = &self.base;
        let delta = &mut self.delta;
        let mut changes = 0usize;
        rec.for_each_doc_term(&mut buf, |term| {
            let in_base = base.get(term.as_bytes()).is_some_and(|p| p.contains(doc));
            let changed = match delta.get_mut(term) {
                Some(d) => {
                    let changed = if in_base {
                        d.removed.insert(doc)
                    } else {
                        d.added.remove(doc)
                    };
                    if d.added.is_empty() && d.removed.is_empty() {
                        delta.remove(term);
                    }
                    changed
                }
                None if in_base => {
                    let mut d = DeltaPosting::default();
                    d.removed.insert(doc);
                    delta.insert(term.into(), d);
                    true
                }
                None => false,
            };
            changes += usize::from(changed);
        });
        self.delta_changes += changes;
        self.merge_if_due();
    }

    fn merge_if_due(&mut self) {
        // A merge rewrites the whole immutable tier, so let the delta grow with it: merge cost
        // per change stays bounded as the index grows.
        let proportional = self.base.posting_count() / MERGE_FRACTION;
        let due = (self.config.merge_threshold as u64).max(proportional);
        if self.delta_changes as u64 >= due {
            self.merge();
        }
    }

    /// Folds the delta into a new immutable tier (untouched bitmaps are moved, not copied).
    pub fn merge(&mut self) {
        if self.delta.is_empty() {
            self.delta_changes = 0;
            self.novel_tokens.clear();
            self.clear_expansion_cache();
            return;
        }
        let base = std::mem::take(&mut self.base);
        let delta = std::mem::take(&mut self.delta);
        self.base = build::merge_tier(base, delta, self.config.forward_min_docs);
        self.delta_changes = 0;
        self.novel_tokens.clear();
        self.clear_expansion_cache();
    }

    /// Forgets cached typo expansions (they are rebuilt on demand).
    pub fn clear_expansion_cache(&self) {
        if let Ok(mut cache) = self.expansion_cache.lock() {
            cache.clear();
        }
    }

    pub fn stats(&self) -> IndexStats {
        let delta_bytes = self
            .delta
            .iter()
            .map(|(k, d)| k.len() + 64 + d.added.serialized_size() + d.removed.serialized_size())
            .sum();
        IndexStats {
            terms: self.base.term_count(),
            delta_terms: self.delta.len(),
            delta_changes: self.delta_changes,
            memory: self.base.memory_bytes(),
            delta_bytes,
        }
    }

    /// The live posting of one namespaced term.
    fn term(&self, term: &str) -> Option<TermPostings<'_>> {
        let (base, frequent) = match self.base.get_with_frequent(term.as_bytes()) {
            Some((p, f)) => (Some(p), f),
            None => (None, None),
        };
        let delta = self.delta.get(term);
        if base.is_none() && delta.is_none() {
            return None;
        }
        Some(TermPostings {
            base,
            delta,
            frequent: if delta.is_none() { frequent } else { None },
        })
    }

    /// Live docs of one namespaced term, sorted (for tests and diagnostics).
    pub fn docs_for_term(&self, term: &str) -> Vec<u32> {
        self.term(term)
            .map(|t| t.to_bitmap().iter().collect())
            .unwrap_or_default()
    }
}
