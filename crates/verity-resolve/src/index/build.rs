//! Building the immutable tier: at once from all records, or by merging the delta in.
//!
//! Bulk build, sized for 10 million records: terms are interned once (hash map term -> id),
//! (term id, doc) pairs are collected flat, the distinct terms are sorted once, and a
//! counting sort groups the pairs by term rank, so the fst is written in one ordered pass with
//! no per-term allocation.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use fst::Streamer;
use roaring::RoaringBitmap;

use super::keys::IndexKeys;
use super::postings::{BaseTier, TierBuilder};
use super::DeltaPosting;

/// Multiply-rotate hash for short term strings: the interning map is the hot spot of a bulk
/// build, and SipHash's DoS resistance buys nothing for our own generated keys.
#[derive(Default, Clone, Copy)]
struct TermHasher(u64);

impl TermHasher {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for TermHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        // Full avalanche: the table indexes buckets by the low bits and tags by the high ones,
        // and a multiply alone leaves the low bits depending on the low input bits only.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^= h >> 33;
        h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        h ^ (h >> 33)
    }
}

type TermMap = HashMap<Box<str>, u32, BuildHasherDefault<TermHasher>>;

pub(super) fn build_tier<I>(records: I, forward_min_docs: u64) -> BaseTier
where
    I: IntoIterator<Item = (u32, IndexKeys)>,
{
    let mut ids: TermMap = TermMap::default();
    let mut counts: Vec<u32> = Vec::new();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut buf = String::new();
    for (doc, keys) in records {
        keys.for_each_doc_term(&mut buf, |term| {
            let id = match ids.get(term) {
                Some(&id) => id,
                None => {
                    let id = counts.len() as u32;
                    ids.insert(term.into(), id);
                    counts.push(0);
                    id
                }
            };
            counts[id as usize] += 1;
            pairs.push((id, doc));
        });
    }
    let mut terms: Vec<(Box<str>, u32)> = ids.into_iter().collect();
    terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    // Counting sort of the pairs by term rank; stable, so docs keep input order per term.
    let mut start_of_id = vec![0usize; counts.len()];
    let mut offset = 0usize;
    for (_, id) in &terms {
        start_of_id[*id as usize] = offset;
        offset += counts[*id as usize] as usize;
    }
    let mut flat = vec![0u32; pairs.len()];
    let mut cursor = start_of_id.clone();
    for (id, doc) in pairs.drain(..) {
        let c = &mut cursor[id as usize];
        flat[*c] = doc;
        *c += 1;
    }
    drop(pairs);
    drop(cursor);

    let mut builder = TierBuilder::with_forward(forward_min_docs);
    for (term, id) in &terms {
        let start = start_of_id[*id as usize];
        let run = &mut flat[start..start + counts[*id as usize] as usize];
        if !run.is_sorted() {
            run.sort_unstable();
        }
        let len = dedup_sorted(run);
        builder.push_sorted(term.as_bytes(), &run[..len]);
    }
    // Free the flat pairs before the forward index is built, to keep the peak down.
    drop(flat);
    drop(terms);
    builder.finish()
}

/// Removes adjacent duplicates in place; returns the new length.
fn dedup_sorted(run: &mut [u32]) -> usize {
    if run.is_empty() {
        return 0;
    }
    let mut w = 1;
    for r in 1..run.len() {
        if run[r] != run[w - 1] {
            run[w] = run[r];
            w += 1;
        }
    }
    w
}

/// A new immutable tier holding `base` patched by `delta`.
pub(super) fn merge_tier(
    base: BaseTier,
    delta: BTreeMap<Box<str>, DeltaPosting>,
    forward_min_docs: u64,
) -> BaseTier {
    let (dict, mut store) = base.into_parts();
    let mut builder = TierBuilder::with_forward(forward_min_docs);
    let mut scratch = Vec::new();
    let mut stream = dict.stream();
    let mut pending = delta.into_iter().peekable();
    while let Some((key, value)) = stream.next() {
        // Delta-only terms that sort before this base term.
        while let Some((dk, _)) = pending.peek() {
            if dk.as_bytes() >= key {
                break;
            }
            if let Some((dk, d)) = pending.next() {
                builder.push_bitmap(dk.as_bytes(), d.added, &mut scratch);
            }
        }
        let patch = match pending.peek() {
            Some((dk, _)) if dk.as_bytes() == key => pending.next().map(|(_, d)| d),
            _ => None,
        };
        match patch {
            None => match store.take_bitmap(value) {
                Some(bm) => builder.push_bitmap(key, bm, &mut scratch),
                None => {
                    scratch.clear();
                    store.decode(value).for_each(|d| scratch.push(d));
                    let docs = std::mem::take(&mut scratch);
                    builder.push_sorted(key, &docs);
                    scratch = docs;
                }
            },
            Some(d) => {
                let mut bm: RoaringBitmap = match store.take_bitmap(value) {
                    Some(bm) => bm,
                    None => store.decode(value).to_bitmap(),
                };
                bm -= &d.removed;
                bm |= &d.added;
                builder.push_bitmap(key, bm, &mut scratch);
            }
        }
    }
    for (dk, d) in pending {
        builder.push_bitmap(dk.as_bytes(), d.added, &mut scratch);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_first_of_each_run() {
        let mut v = [1, 1, 2, 3, 3, 3, 7];
        let n = dedup_sorted(&mut v);
        assert_eq!(&v[..n], &[1, 2, 3, 7]);
        assert_eq!(dedup_sorted(&mut []), 0);
    }

    #[test]
    fn hasher_spreads_similar_terms() {
        let h = |s: &str| {
            let mut x = TermHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_ne!(h("n:JOSE"), h("n:JOSA"));
        assert_ne!(h("i:a:012345678"), h("i:a:012345679"));
        assert_ne!(h("ab"), h("ab\0"));
    }
}
