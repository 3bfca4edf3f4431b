//! Candidate search: which documents share the most keys with a query.
//!
//! The query's keys form groups (one per name token with its typo expansions, one per
//! blocking key, one per compound year key with year ±1, one per identifier); a document hit
//! by several terms of one group counts once. Per document we keep a 64-bit mask of groups
//! hit, so counting is an OR and a popcount.
//!
//! Work is bounded on common names: a group whose postings exceed
//! [`IndexConfig::common_key_docs`](super::IndexConfig) does not enumerate its documents; it
//! only adds to documents that a selective group brought in. Selective postings are gathered
//! into one flat vector of `(doc << 6) | group` words and sorted once: no allocation per
//! candidate. When every group is common, the candidates are the intersection of the groups.

use roaring::RoaringBitmap;

use super::fuzzy::{self, TypoAutomaton};
use super::keys::{self, IndexKeys, BLOCK_NS, ID_NS, INITIALS_KIND, NAME_NS};
use super::postings::PostingRef;
use super::{CandidateIndex, Expansions, TermPostings};
use fst::{IntoStreamer, Streamer};

/// At most this many groups per query (the mask is 64 bits); identifiers and compound keys
/// are taken first.
const MAX_GROUPS: usize = 64;
/// Typo candidates examined per token before the closest are kept.
const MAX_EXPANSION_SCAN: usize = 512;

struct Group<'a> {
    is_id: bool,
    terms: Vec<TermPostings<'a>>,
}

impl Group<'_> {
    fn size(&self) -> u64 {
        self.terms.iter().map(TermPostings::len).sum()
    }
}

impl CandidateIndex {
    /// Up to `limit` documents sharing keys with `q`, best first: ranked by identifier keys
    /// hit, then by all keys hit, then by doc id. Each item is (doc, keys hit).
    pub fn candidates(&self, q: &IndexKeys, limit: usize) -> Vec<(u32, u32)> {
        if limit == 0 {
            return Vec::new();
        }
        let groups = self.query_groups(q);
        let cap = self.config.common_key_docs;

        let mut id_mask = 0u64;
        let mut common: Vec<usize> = Vec::new();
        let mut by_size: Vec<(u64, usize)> = Vec::with_capacity(groups.len());
        for (gi, g) in groups.iter().enumerate() {
            if g.is_id {
                id_mask |= 1 << gi;
            }
            by_size.push((g.size(), gi));
        }
        // Most selective groups enumerate their docs, within a total budget; the rest only
        // count for docs already reached.
        by_size.sort_unstable();
        let mut hits: Vec<u64> = Vec::new();
        let mut enumerated = 0u64;
        for &(size, gi) in &by_size {
            let over_budget = enumerated > 0 && enumerated + size > self.config.enumerate_budget;
            if size > cap || over_budget {
                common.push(gi);
                continue;
            }
            enumerated += size;
            for t in &groups[gi].terms {
                t.for_each(|doc| hits.push((u64::from(doc) << 6) | gi as u64));
            }
        }
        common.sort_unstable();
        hits.sort_unstable();

        let mut docs: Vec<u32> = Vec::new();
        let mut masks: Vec<u64> = Vec::new();
        for h in hits {
            let doc = (h >> 6) as u32;
            let bit = 1u64 << (h & 63);
            if docs.last() == Some(&doc) {
                if let Some(m) = masks.last_mut() {
                    *m |= bit;
                }
            } else {
                docs.push(doc);
                masks.push(bit);
            }
        }

        if docs.is_empty() && !common.is_empty() {
            docs = self.fallback_candidates(&groups, &common);
            masks = vec![0; docs.len()];
        }

        // Candidates as a bitmap, built once, for container-wise intersection with large
        // common postings (much cheaper than a lookup per candidate).
        let mut candidate_set: Option<RoaringBitmap> = None;
        for &gi in &common {
            let bit = 1u64 << gi;
            for t in &groups[gi].terms {
                add_common_hits(t, &docs, &mut masks, bit, &mut candidate_set);
            }
        }

        let mut ranked: Vec<(u32, u32, u32)> = docs
            .iter()
            .zip(&masks)
            .map(|(&doc, &m)| ((m & id_mask).count_ones(), m.count_ones(), doc))
            .collect();
        let better = |a: &(u32, u32, u32), b: &(u32, u32, u32)| {
            b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2))
        };
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit - 1, better);
            ranked.truncate(limit);
        }
        ranked.sort_unstable_by(better);
        ranked.into_iter().map(|(_, hit, doc)| (doc, hit)).collect()
    }

    /// Candidates when no group is selective: intersect the common groups, smallest first,
    /// until the set is small enough; keep at most `max_fallback_candidates` (lowest ids).
    fn fallback_candidates(&self, groups: &[Group<'_>], common: &[usize]) -> Vec<u32> {
        let mut order: Vec<usize> = common.to_vec();
        order.sort_by_key(|&gi| groups[gi].size());
        let union = |gi: usize| {
            let mut bm = RoaringBitmap::new();
            for t in &groups[gi].terms {
                bm |= t.to_bitmap();
            }
            bm
        };
        let mut acc: Option<RoaringBitmap> = None;
        for gi in order {
            let next = union(gi);
            let merged = match acc {
                None => next,
                Some(a) => a & next,
            };
            let small = merged.len() <= self.config.common_key_docs;
            acc = Some(merged);
            if small {
                break;
            }
        }
        acc.map(|a| a.iter().take(self.config.max_fallback_candidates).collect())
            .unwrap_or_default()
    }

    /// The query's key groups, identifiers first, then compound year keys, name tokens, and
    /// plain blocking keys; at most [`MAX_GROUPS`].
    fn query_groups(&self, q: &IndexKeys) -> Vec<Group<'_>> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut buf = String::new();
        let mut seen: Vec<&str> = Vec::new();
        let single = |buf: &str| self.term(buf).into_iter().collect::<Vec<_>>();

        let mut ids: Vec<&str> = q.ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids.into_iter().filter(|i| !i.is_empty()) {
            keys::namespaced(&mut buf, ID_NS, id);
            groups.push(Group {
                is_id: true,
                terms: single(&buf),
            });
        }
        if let Some(year) = q.birth_year {
            for b in q.blocking.iter().filter(|b| keys::is_year_compound(b)) {
                if seen.contains(&b.as_str()) {
                    continue;
                }
                seen.push(b);
                let mut terms = Vec::new();
                for y in [year.saturating_sub(1), year, year.saturating_add(1)] {
                    keys::year_term(&mut buf, b, y);
                    terms.extend(self.term(&buf));
                }
                groups.push(Group {
                    is_id: false,
                    terms,
                });
            }
        }
        seen.clear();
        let mut expansions: Vec<(u8, String)> = Vec::new();
        for t in q.tokens.iter().filter(|t| !t.is_empty()) {
            if seen.contains(&t.as_str()) {
                continue;
            }
            seen.push(t);
            self.expand_token(t, &mut expansions);
            // Empty postings (every doc removed) are skipped before the cap so that an index
            // built incrementally expands exactly like one built at once.
            let terms = expansions
                .iter()
                .filter_map(|(_, term)| self.term(term))
                .filter(|t| t.len() > 0)
                .take(self.config.max_expansions.max(1))
                .collect();
            groups.push(Group {
                is_id: false,
                terms,
            });
        }
        seen.clear();
        for b in q.blocking.iter().filter(|b| !b.is_empty()) {
            if b.starts_with(INITIALS_KIND) || seen.contains(&b.as_str()) {
                continue;
            }
            seen.push(b);
            keys::namespaced(&mut buf, BLOCK_NS, b);
            groups.push(Group {
                is_id: false,
                terms: single(&buf),
            });
        }
        for g in &mut groups {
            g.terms.retain(|t| t.len() > 0);
        }
        groups.retain(|g| !g.terms.is_empty());
        groups.truncate(MAX_GROUPS);
        groups
    }

    /// The indexed name tokens a query token expands to (itself if indexed, and its allowed
    /// typo variants), closest first, with their edit distance; at most `max_expansions`.
    pub fn expand_name_token(&self, token: &str) -> Vec<(String, u8)> {
        let mut out = Vec::new();
        self.expand_token(token, &mut out);
        out.into_iter()
            .filter(|(_, term)| self.term(term).is_some_and(|t| t.len() > 0))
            .take(self.config.max_expansions.max(1))
            .map(|(d, term)| (term[NAME_NS.len()..].to_string(), d))
            .collect()
    }

    /// Namespaced terms a query token stands for: itself and its allowed typo variants
    /// present in the index, closest first (ties in byte order).
    fn expand_token(&self, token: &str, out: &mut Vec<(u8, String)>) {
        out.clear();
        let mut exact = String::with_capacity(NAME_NS.len() + token.len());
        keys::namespaced(&mut exact, NAME_NS, token);
        let max = fuzzy::max_edits(token.len());
        if max == 0 {
            out.push((0, exact));
            return;
        }
        let q = token.as_bytes();
        for (d, term) in self.base_expansions(token).iter() {
            out.push((*d, term.to_string()));
        }
        let novel = &self.novel_tokens;
        let mut stream = novel.set.search(TypoAutomaton::new(b"", q)).into_stream();
        while let Some(cand) = stream.next() {
            if let Some(d) = fuzzy::allowed_distance(q, cand) {
                let mut s = String::with_capacity(NAME_NS.len() + cand.len());
                s.push_str(NAME_NS);
                s.push_str(&String::from_utf8_lossy(cand));
                out.push((d, s));
            }
        }
        for cand in &novel.recent {
            if cand.len().abs_diff(q.len()) > usize::from(max) {
                continue;
            }
            if let Some(d) = fuzzy::allowed_distance(q, cand.as_bytes()) {
                let mut s = String::with_capacity(NAME_NS.len() + cand.len());
                keys::namespaced(&mut s, NAME_NS, cand);
                out.push((d, s));
            }
        }
        if !out.iter().any(|(d, _)| *d == 0) {
            out.push((0, exact));
        }
        out.sort_unstable();
        out.dedup();
    }
}

impl CandidateIndex {
    /// Allowed typo variants of `token` in the immutable dictionary (namespaced), cached.
    fn base_expansions(&self, token: &str) -> Expansions {
        let capacity = self.config.expansion_cache_tokens;
        if capacity > 0 {
            if let Some(hit) = self
                .expansion_cache
                .lock()
                .ok()
                .and_then(|c| c.get(token).cloned())
            {
                return hit;
            }
        }
        let q = token.as_bytes();
        let mut found: Vec<(u8, Box<str>)> = Vec::new();
        let aut = TypoAutomaton::new(NAME_NS.as_bytes(), q);
        let mut stream = self.base.dict().search(aut).into_stream();
        while let Some((key, _)) = stream.next() {
            let cand = &key[NAME_NS.len()..];
            if let (Some(d), Ok(s)) = (fuzzy::allowed_distance(q, cand), std::str::from_utf8(key)) {
                found.push((d, s.into()));
            }
            if found.len() >= MAX_EXPANSION_SCAN {
                break;
            }
        }
        let found: Expansions = found.into();
        if capacity > 0 {
            if let Ok(mut cache) = self.expansion_cache.lock() {
                if cache.len() >= capacity {
                    cache.clear(); // crude bound; the hot tokens come back at once
                }
                cache.insert(token.into(), found.clone());
            }
        }
        found
    }
}

/// Marks `bit` on every candidate (sorted `docs`) that the common posting `t` holds.
fn add_common_hits(
    t: &TermPostings<'_>,
    docs: &[u32],
    masks: &mut [u64],
    bit: u64,
    candidate_set: &mut Option<RoaringBitmap>,
) {
    let mut mark = |doc: u32| {
        if let Ok(i) = docs.binary_search(&doc) {
            masks[i] |= bit;
        }
    };
    if t.len() < docs.len() as u64 {
        // Few docs in the posting: look each up among the candidates.
        t.for_each(mark);
        return;
    }
    match (&t.base, t.delta) {
        (Some(PostingRef::Bitmap(b)), None) if docs.len() > 64 => {
            let cands = candidate_set.get_or_insert_with(|| {
                RoaringBitmap::from_sorted_iter(docs.iter().copied()).unwrap_or_default()
            });
            (&*cands & *b).iter().for_each(&mut mark);
        }
        _ => {
            for (i, &doc) in docs.iter().enumerate() {
                if t.contains(doc) {
                    masks[i] |= bit;
                }
            }
        }
    }
}
