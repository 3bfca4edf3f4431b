//! The immutable tier: an fst term dictionary whose values encode where each posting list is.
//!
//! Most terms are rare (every identifier is unique; most name tokens are uncommon), and a
//! roaring bitmap per rare term would cost two heap allocations and ~100 bytes. So the fst
//! value (u64) carries the posting itself when it is small:
//! - tag 1: a single doc id in the low 32 bits;
//! - tag 2: a sorted run of at most [`SMALL_LIST_MAX`] doc ids in a shared `u32` arena
//!   (offset in the low 32 bits, length above);
//! - tag 0: an index into a vector of roaring bitmaps, for larger postings.
//!
//! Frequent terms (at least `forward_min_docs` docs) also get a dense id (bits 40..56 of the
//! value, id + 1; 0 for other terms), and the tier keeps a forward index: per doc, the sorted
//! ids of its frequent terms. Search counts which frequent query terms a reached doc holds by
//! reading its few forward ids instead of probing (or walking) a posting of 100,000s of docs.

use fst::{Map, MapBuilder};
use roaring::RoaringBitmap;

/// Largest posting stored as a plain sorted run; larger ones become roaring bitmaps.
pub const SMALL_LIST_MAX: usize = 64;

const TAG_SHIFT: u32 = 62;
const TAG_BITMAP: u64 = 0;
const TAG_ONE: u64 = 1;
const TAG_LIST: u64 = 2;
const LOW32: u64 = 0xFFFF_FFFF;
/// Where a frequent term's id (+1) sits in the fst value; 0 there means "not frequent".
const FREQUENT_SHIFT: u32 = 40;
const FREQUENT_MASK: u64 = 0x1_FFFF;
/// Length field of a small run (at most [`SMALL_LIST_MAX`], so 8 bits suffice; the bits above
/// hold the frequent-term id).
const LIST_LEN_MASK: u64 = 0xFF;
/// Most frequent terms (ids are u16). Terms beyond this many are searched the plain way.
pub const MAX_FREQUENT_TERMS: usize = u16::MAX as usize;
/// Default `forward_min_docs`: postings at least this long get a frequent-term id.
pub const FORWARD_MIN_DOCS: u64 = 2_000;

/// A borrowed (or, for terms changed since the last merge, computed) posting list.
#[derive(Debug, Clone)]
pub enum PostingRef<'a> {
    One(u32),
    List(&'a [u32]),
    Bitmap(&'a RoaringBitmap),
    Owned(RoaringBitmap),
}

impl PostingRef<'_> {
    pub fn len(&self) -> u64 {
        match self {
            PostingRef::One(_) => 1,
            PostingRef::List(l) => l.len() as u64,
            PostingRef::Bitmap(b) => b.len(),
            PostingRef::Owned(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, doc: u32) -> bool {
        match self {
            PostingRef::One(d) => *d == doc,
            PostingRef::List(l) => l.binary_search(&doc).is_ok(),
            PostingRef::Bitmap(b) => b.contains(doc),
            PostingRef::Owned(b) => b.contains(doc),
        }
    }

    /// Calls `f` on every doc id in increasing order.
    pub fn for_each(&self, mut f: impl FnMut(u32)) {
        match self {
            PostingRef::One(d) => f(*d),
            PostingRef::List(l) => l.iter().copied().for_each(f),
            PostingRef::Bitmap(b) => b.iter().for_each(f),
            PostingRef::Owned(b) => b.iter().for_each(f),
        }
    }

    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            PostingRef::Bitmap(b) => (*b).clone(),
            PostingRef::Owned(b) => b.clone(),
            other => {
                let mut bm = RoaringBitmap::new();
                other.for_each(|d| {
                    bm.insert(d);
                });
                bm
            }
        }
    }
}

/// The immutable tier: dictionary plus posting storage.
pub struct BaseTier {
    dict: Map<Vec<u8>>,
    store: PostingStore,
    /// Total (term, doc) postings.
    postings: u64,
    forward: ForwardIndex,
}

/// Per doc, the sorted ids of the frequent terms whose immutable posting holds it.
#[derive(Debug, Default)]
pub struct ForwardIndex {
    /// `ids[offsets[d]..offsets[d + 1]]` are doc `d`'s; docs past the end have none.
    offsets: Vec<u32>,
    ids: Vec<u16>,
    /// Frequent terms (ids 0..terms).
    terms: usize,
}

impl ForwardIndex {
    /// The frequent-term ids of `doc`, sorted.
    pub fn ids_of(&self, doc: u32) -> &[u16] {
        let d = doc as usize;
        match (self.offsets.get(d), self.offsets.get(d + 1)) {
            (Some(&a), Some(&b)) => self.ids.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    pub fn term_count(&self) -> usize {
        self.terms
    }

    /// Calls `f(i, ids)` for each `docs[i]` with its frequent-term ids. Reached docs are
    /// scattered over the whole index, so each costs a cache miss or two: the offsets and
    /// the first ids of a block of docs are loaded first, in independent loads the CPU
    /// overlaps, before any of them is used.
    pub fn for_each_ids(&self, docs: &[u32], mut f: impl FnMut(usize, &[u16])) {
        const BLOCK: usize = 16;
        let mut ranges = [(0usize, 0usize); BLOCK];
        let mut first = [0u16; BLOCK];
        for (b, block) in docs.chunks(BLOCK).enumerate() {
            for (k, &doc) in block.iter().enumerate() {
                let d = doc as usize;
                ranges[k] = match (self.offsets.get(d), self.offsets.get(d + 1)) {
                    (Some(&a), Some(&e)) => (a as usize, e as usize),
                    _ => (0, 0),
                };
            }
            for k in 0..block.len() {
                let (a, e) = ranges[k];
                first[k] = if a < e {
                    self.ids.get(a).copied().unwrap_or(0)
                } else {
                    0
                };
            }
            for k in 0..block.len() {
                let (a, e) = ranges[k];
                let ids = self.ids.get(a..e).unwrap_or(&[]);
                // `first` is what was loaded ahead; use it so the load is not elided.
                if ids.first().is_some_and(|&x| x == first[k]) || ids.is_empty() {
                    f(b * BLOCK + k, ids);
                } else {
                    f(b * BLOCK + k, &[]);
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        self.offsets.capacity() * 4 + self.ids.capacity() * 2
    }

    /// Transposes the postings of the frequent terms (`values[id]` is term `id`'s fst value).
    fn build(store: &PostingStore, values: &[u64]) -> ForwardIndex {
        let mut max_doc: Option<u32> = None;
        let mut total = 0usize;
        for &v in values {
            let p = store.decode(v);
            total += p.len() as usize;
            let last = match &p {
                PostingRef::One(d) => Some(*d),
                PostingRef::List(l) => l.last().copied(),
                PostingRef::Bitmap(b) => b.max(),
                PostingRef::Owned(b) => b.max(),
            };
            max_doc = max_doc.max(last);
        }
        let Some(max_doc) = max_doc else {
            return ForwardIndex::default();
        };
        if u32::try_from(total).is_err() {
            // Beyond u32 offsets: no forward index (term_count 0, so no frequent id is used).
            return ForwardIndex::default();
        }
        let docs = max_doc as usize + 1;
        let mut offsets = vec![0u32; docs + 1];
        for &v in values {
            store.decode(v).for_each(|d| offsets[d as usize + 1] += 1);
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        let mut cursor: Vec<u32> = offsets[..docs].to_vec();
        let mut ids = vec![0u16; total];
        // Terms in id order, so each doc's ids come out sorted.
        for (id, &v) in values.iter().enumerate() {
            let id = id as u16;
            store.decode(v).for_each(|d| {
                let c = &mut cursor[d as usize];
                ids[*c as usize] = id;
                *c += 1;
            });
        }
        ForwardIndex {
            offsets,
            ids,
            terms: values.len(),
        }
    }
}

/// The frequent-term id an fst value carries, if any.
pub fn frequent_id(value: u64) -> Option<u16> {
    match value >> TAG_SHIFT {
        TAG_ONE => None,
        _ => {
            let f = (value >> FREQUENT_SHIFT) & FREQUENT_MASK;
            u16::try_from(f.checked_sub(1)?).ok()
        }
    }
}

/// Where postings of the immutable tier live; the fst value says which part and where.
#[derive(Debug, Default)]
pub struct PostingStore {
    arena: Vec<u32>,
    bitmaps: Vec<RoaringBitmap>,
}

impl PostingStore {
    pub fn decode(&self, value: u64) -> PostingRef<'_> {
        let low = (value & LOW32) as u32;
        match value >> TAG_SHIFT {
            TAG_ONE => PostingRef::One(low),
            TAG_LIST => {
                let start = low as usize;
                let len = ((value >> 32) & LIST_LEN_MASK) as usize;
                PostingRef::List(self.arena.get(start..start + len).unwrap_or(&[]))
            }
            _ => match self.bitmaps.get(low as usize) {
                Some(b) => PostingRef::Bitmap(b),
                None => PostingRef::List(&[]),
            },
        }
    }

    /// Moves a bitmap posting out (used by a merge, which consumes the tier).
    pub fn take_bitmap(&mut self, value: u64) -> Option<RoaringBitmap> {
        if value >> TAG_SHIFT == TAG_BITMAP {
            self.bitmaps
                .get_mut((value & LOW32) as usize)
                .map(std::mem::take)
        } else {
            None
        }
    }
}

impl std::fmt::Debug for BaseTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseTier")
            .field("terms", &self.dict.len())
            .field("arena", &self.store.arena.len())
            .field("bitmaps", &self.store.bitmaps.len())
            .finish()
    }
}

impl Default for BaseTier {
    fn default() -> Self {
        TierBuilder::new().finish()
    }
}

impl BaseTier {
    pub fn dict(&self) -> &Map<Vec<u8>> {
        &self.dict
    }

    pub fn get(&self, term: &[u8]) -> Option<PostingRef<'_>> {
        self.dict.get(term).map(|v| self.decode(v))
    }

    /// The posting of `term` and its frequent-term id, if it is frequent.
    pub fn get_with_frequent(&self, term: &[u8]) -> Option<(PostingRef<'_>, Option<u16>)> {
        // Ids past the forward index (its build gave up) are not usable.
        let terms = self.forward.terms;
        self.dict.get(term).map(|v| {
            let id = frequent_id(v).filter(|&id| usize::from(id) < terms);
            (self.decode(v), id)
        })
    }

    pub fn forward(&self) -> &ForwardIndex {
        &self.forward
    }

    pub fn decode(&self, value: u64) -> PostingRef<'_> {
        self.store.decode(value)
    }

    /// Splits the tier so a merge can stream the dictionary while moving postings out.
    pub fn into_parts(self) -> (Map<Vec<u8>>, PostingStore) {
        // The forward index is dropped here: a merge builds a new one.
        (self.dict, self.store)
    }

    /// Total (term, doc) postings held.
    pub fn posting_count(&self) -> u64 {
        self.postings
    }

    pub fn term_count(&self) -> usize {
        self.dict.len()
    }

    /// Heap bytes of the structures (roaring bitmaps estimated from their serialized size plus
    /// per-bitmap struct overhead).
    pub fn memory_bytes(&self) -> MemoryBreakdown {
        let roaring: usize = self
            .store
            .bitmaps
            .iter()
            .map(|b| b.serialized_size() + std::mem::size_of::<RoaringBitmap>())
            .sum();
        MemoryBreakdown {
            dictionary: self.dict.as_fst().as_bytes().len(),
            small_lists: self.store.arena.capacity() * 4,
            bitmaps: roaring,
            bitmap_count: self.store.bitmaps.len(),
            forward: self.forward.bytes(),
            frequent_terms: self.forward.terms,
        }
    }
}

/// Bytes used by each part of the immutable tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryBreakdown {
    pub dictionary: usize,
    pub small_lists: usize,
    pub bitmaps: usize,
    pub bitmap_count: usize,
    /// Forward index of frequent terms (per-doc offsets and ids).
    pub forward: usize,
    pub frequent_terms: usize,
}

impl MemoryBreakdown {
    pub fn total(&self) -> usize {
        self.dictionary + self.small_lists + self.bitmaps + self.forward
    }
}

/// Writes terms in strictly increasing byte order into a new tier.
pub struct TierBuilder {
    builder: MapBuilder<Vec<u8>>,
    arena: Vec<u32>,
    bitmaps: Vec<RoaringBitmap>,
    last: Vec<u8>,
    any: bool,
    postings: u64,
    /// Postings at least this long are frequent (0: none is).
    forward_min_docs: u64,
    /// fst values of the frequent terms so far, by id.
    frequent: Vec<u64>,
}

impl TierBuilder {
    pub fn new() -> Self {
        Self::with_forward(0)
    }

    /// A builder that gives terms of at least `forward_min_docs` docs a frequent-term id and
    /// a forward index (0 disables both).
    pub fn with_forward(forward_min_docs: u64) -> Self {
        TierBuilder {
            builder: MapBuilder::memory(),
            arena: Vec::new(),
            bitmaps: Vec::new(),
            last: Vec::new(),
            any: false,
            postings: 0,
            forward_min_docs,
            frequent: Vec::new(),
        }
    }

    /// False when `term` does not sort strictly after the previous one (the term is skipped).
    fn accepts(&mut self, term: &[u8]) -> bool {
        if self.any && term <= self.last.as_slice() {
            return false;
        }
        self.any = true;
        self.last.clear();
        self.last.extend_from_slice(term);
        true
    }

    fn insert(&mut self, term: &[u8], mut value: u64, docs: u64) {
        self.postings += docs;
        let frequent = self.forward_min_docs > 0
            && docs >= self.forward_min_docs.max(2)
            && self.frequent.len() < MAX_FREQUENT_TERMS;
        if frequent {
            self.frequent.push(value);
            value |= (self.frequent.len() as u64) << FREQUENT_SHIFT;
        }
        // Order is checked by `accepts` and the writer is a Vec, so fst cannot fail here;
        // a failure would only drop this one term.
        let _ = self.builder.insert(term, value);
    }

    /// Adds a term with a sorted, deduplicated posting; empty postings are skipped.
    pub fn push_sorted(&mut self, term: &[u8], docs: &[u32]) {
        if docs.is_empty() || !self.accepts(term) {
            return;
        }
        if docs.len() == 1 {
            self.insert(term, (TAG_ONE << TAG_SHIFT) | u64::from(docs[0]), 1);
        } else if docs.len() <= SMALL_LIST_MAX && self.arena.len() + docs.len() <= LOW32 as usize {
            let value =
                (TAG_LIST << TAG_SHIFT) | ((docs.len() as u64) << 32) | self.arena.len() as u64;
            self.arena.extend_from_slice(docs);
            self.insert(term, value, docs.len() as u64);
        } else {
            let bm = RoaringBitmap::from_sorted_iter(docs.iter().copied())
                .unwrap_or_else(|_| docs.iter().copied().collect::<RoaringBitmap>());
            self.push_bitmap_unchecked(term, bm);
        }
    }

    /// Adds a term with a bitmap posting (small bitmaps are stored as runs).
    pub fn push_bitmap(&mut self, term: &[u8], bm: RoaringBitmap, scratch: &mut Vec<u32>) {
        if (bm.len() as usize) <= SMALL_LIST_MAX {
            scratch.clear();
            scratch.extend(bm.iter());
            self.push_sorted(term, scratch);
        } else if self.accepts(term) {
            self.push_bitmap_unchecked(term, bm);
        }
    }

    fn push_bitmap_unchecked(&mut self, term: &[u8], bm: RoaringBitmap) {
        let value = (TAG_BITMAP << TAG_SHIFT) | self.bitmaps.len() as u64;
        let docs = bm.len();
        self.bitmaps.push(bm);
        self.insert(term, value, docs);
    }

    pub fn finish(self) -> BaseTier {
        let mut arena = self.arena;
        arena.shrink_to_fit();
        let mut bitmaps = self.bitmaps;
        bitmaps.shrink_to_fit();
        let bytes = self.builder.into_inner().unwrap_or_default();
        // An empty byte vector is not a valid fst; fall back to an empty map.
        let dict = Map::new(bytes).unwrap_or_default();
        let store = PostingStore { arena, bitmaps };
        let forward = ForwardIndex::build(&store, &self.frequent);
        BaseTier {
            dict,
            store,
            postings: self.postings,
            forward,
        }
    }
}

impl Default for TierBuilder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_posting_encodings_round_trip() {
        let mut b = TierBuilder::new();
        let big: Vec<u32> = (0..1000).map(|i| i * 7).collect();
        b.push_sorted(b"a", &[5]);
        b.push_sorted(b"b", &[1, 2, 3]);
        b.push_sorted(b"c", &big);
        b.push_sorted(b"c", &[9]); // out of order: skipped
        b.push_sorted(b"d", &[]); // empty: skipped
        let t = b.finish();
        assert_eq!(t.term_count(), 3);
        let docs = |term: &[u8]| {
            let mut v = Vec::new();
            if let Some(p) = t.get(term) {
                p.for_each(|d| v.push(d));
            }
            v
        };
        assert_eq!(docs(b"a"), vec![5]);
        assert_eq!(docs(b"b"), vec![1, 2, 3]);
        assert_eq!(docs(b"c"), big);
        assert!(t.get(b"d").is_none());
        assert!(t
            .get(b"c")
            .is_some_and(|p| p.contains(693) && !p.contains(694)));
        assert!(t.memory_bytes().total() > 0);
    }

    #[test]
    fn forward_index_lists_each_docs_frequent_terms_sorted() {
        let mut b = TierBuilder::with_forward(3);
        let big: Vec<u32> = (0..200).map(|i| i * 3).collect();
        b.push_sorted(b"a", &[1, 4, 9]); // frequent id 0 (run)
        b.push_sorted(b"b", &[4, 5]); // too short
        b.push_sorted(b"c", &big); // frequent id 1 (bitmap)
        b.push_sorted(b"d", &[0]);
        let t = b.finish();
        assert_eq!(t.forward().term_count(), 2);
        let id = |term: &[u8]| t.get_with_frequent(term).and_then(|(_, f)| f);
        assert_eq!(
            (id(b"a"), id(b"b"), id(b"c"), id(b"d")),
            (Some(0), None, Some(1), None)
        );
        assert_eq!(t.forward().ids_of(9), &[0, 1]);
        assert_eq!(t.forward().ids_of(1), &[0]);
        assert_eq!(t.forward().ids_of(4), &[0]);
        assert_eq!(t.forward().ids_of(5), &[] as &[u16]);
        assert_eq!(t.forward().ids_of(597), &[1]);
        assert_eq!(t.forward().ids_of(100_000), &[] as &[u16]);
        // postings still decode with the frequent id in the value
        let docs = |term: &[u8]| {
            let mut v = Vec::new();
            if let Some(p) = t.get(term) {
                p.for_each(|d| v.push(d));
            }
            v
        };
        assert_eq!(docs(b"a"), vec![1, 4, 9]);
        assert_eq!(docs(b"c"), big);
        let off = TierBuilder::new();
        assert_eq!(off.finish().forward().term_count(), 0);
    }

    #[test]
    fn empty_tier_has_no_terms() {
        let t = BaseTier::default();
        assert_eq!(t.term_count(), 0);
        assert!(t.get(b"x").is_none());
    }
}
