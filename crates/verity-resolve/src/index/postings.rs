//! The immutable tier: an fst term dictionary whose values encode where each posting list is.
//!
//! Most terms are rare (every identifier is unique; most name tokens are uncommon), and a
//! roaring bitmap per rare term would cost two heap allocations and ~100 bytes. So the fst
//! value (u64) carries the posting itself when it is small:
//! - tag 1: a single doc id in the low 32 bits;
//! - tag 2: a sorted run of at most [`SMALL_LIST_MAX`] doc ids in a shared `u32` arena
//!   (offset in the low 32 bits, length above);
//! - tag 0: an index into a vector of roaring bitmaps, for larger postings.

use fst::{Map, MapBuilder};
use roaring::RoaringBitmap;

/// Largest posting stored as a plain sorted run; larger ones become roaring bitmaps.
pub const SMALL_LIST_MAX: usize = 64;

const TAG_SHIFT: u32 = 62;
const TAG_BITMAP: u64 = 0;
const TAG_ONE: u64 = 1;
const TAG_LIST: u64 = 2;
const LOW32: u64 = 0xFFFF_FFFF;

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
                let len = ((value >> 32) & 0x3FFF_FFFF) as usize;
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

    pub fn decode(&self, value: u64) -> PostingRef<'_> {
        self.store.decode(value)
    }

    /// Splits the tier so a merge can stream the dictionary while moving postings out.
    pub fn into_parts(self) -> (Map<Vec<u8>>, PostingStore) {
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
}

impl MemoryBreakdown {
    pub fn total(&self) -> usize {
        self.dictionary + self.small_lists + self.bitmaps
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
}

impl TierBuilder {
    pub fn new() -> Self {
        TierBuilder {
            builder: MapBuilder::memory(),
            arena: Vec::new(),
            bitmaps: Vec::new(),
            last: Vec::new(),
            any: false,
            postings: 0,
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

    fn insert(&mut self, term: &[u8], value: u64, docs: u64) {
        self.postings += docs;
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
        BaseTier {
            dict,
            store: PostingStore { arena, bitmaps },
            postings: self.postings,
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
    fn empty_tier_has_no_terms() {
        let t = BaseTier::default();
        assert_eq!(t.term_count(), 0);
        assert!(t.get(b"x").is_none());
    }
}
