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
//! into one flat vector of `(doc << 6) | group` words and radix-sorted by doc: no allocation
//! per candidate. When every group is common, the candidates are the intersection of the
//! groups.
//!
//! Counting the common groups is pruned without changing the answer: the best docs by the
//! groups counted so far are counted fully first, which sets a threshold key; every other doc
//! is dropped as soon as even hitting all its uncounted groups could not reach it. A test
//! checks the result against counting every group for every doc.
//!
//! Before that, the frequent terms of the common groups (postings of thousands to hundreds of
//! thousands of docs) are counted for every reached doc at once from the forward index: a doc
//! lists its few frequent-term ids, so the cost is a handful of lookups per doc whatever the
//! postings' length. Only the short terms (rare typo variants) are then counted from their
//! postings, with the pruning above.

use roaring::RoaringBitmap;

use super::fuzzy::{self, TypoAutomaton};
use super::keys::{self, IndexKeys, BLOCK_NS, ID_NS, INITIALS_KIND, NAME_NS};
use super::postings::{ForwardIndex, PostingRef};
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

/// Work done by one candidate search (for benchmarks and tuning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CandidateWork {
    /// Key groups of the query.
    pub groups: usize,
    /// Groups too common to enumerate (counted only for reached docs).
    pub common_groups: usize,
    /// Postings enumerated by the selective groups.
    pub enumerated: u64,
    /// Docs reached (by the selective groups, or the fallback intersection).
    pub reached: usize,
    /// Frequent terms of common groups counted through the forward index.
    pub forward_terms: usize,
    /// Forward ids read for that.
    pub forward_ids: u64,
    /// Terms of common groups counted from their postings.
    pub posting_terms: usize,
    /// Posting entries walked or membership probes made for those terms.
    pub posting_steps: u64,
}

/// Per-thread buffers of a candidate search, reused across queries: the hit words and the
/// reached docs run to thousands of entries, and allocating them afresh each query was a
/// tenth of the search time.
#[derive(Default)]
struct Buffers {
    hits: Vec<u64>,
    spare: Vec<u64>,
    docs: Vec<u32>,
    masks: Vec<u64>,
    ranked: Vec<(u64, u32, u32)>,
}

thread_local! {
    static BUFFERS: std::cell::RefCell<Buffers> = std::cell::RefCell::new(Buffers::default());
}

/// This thread's buffers (fresh ones if they are in use, e.g. a search inside a search).
fn take_buffers() -> Buffers {
    BUFFERS
        .try_with(|b| b.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

fn give_back(buffers: Buffers) {
    let _ = BUFFERS.try_with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            *b = buffers;
        }
    });
}

impl CandidateIndex {
    /// Up to `limit` documents sharing keys with `q`, best first: ranked by identifier keys
    /// hit, then by all keys hit, then by doc id. Each item is (doc, keys hit).
    pub fn candidates(&self, q: &IndexKeys, limit: usize) -> Vec<(u32, u32)> {
        self.candidates_counted(q, limit).0
    }

    /// [`Self::candidates`] with a count of the work done.
    pub fn candidates_counted(
        &self,
        q: &IndexKeys,
        limit: usize,
    ) -> (Vec<(u32, u32)>, CandidateWork) {
        self.candidates_with(q, limit, true)
    }

    /// [`Self::candidates`] computed without the forward index (every common term counted
    /// from its posting, as before the forward index existed): the same answer, slower. For
    /// equivalence checks in benchmarks.
    #[doc(hidden)]
    pub fn candidates_reference(&self, q: &IndexKeys, limit: usize) -> Vec<(u32, u32)> {
        self.candidates_with(q, limit, false).0
    }

    fn candidates_with(
        &self,
        q: &IndexKeys,
        limit: usize,
        use_forward: bool,
    ) -> (Vec<(u32, u32)>, CandidateWork) {
        let mut work = CandidateWork::default();
        if limit == 0 {
            return (Vec::new(), work);
        }
        let groups = self.query_groups(q);
        work.groups = groups.len();
        let mut buffers = take_buffers();
        let reached = self.reach(&groups, &mut work, &mut buffers);
        let Reached {
            mut docs,
            mut masks,
            mut common,
            id_mask,
        } = reached;
        work.reached = docs.len();
        work.common_groups = common.len();
        let forward_done = use_forward
            && count_frequent(
                &groups,
                &common,
                self.base.forward(),
                &docs,
                &mut masks,
                &mut work,
            );
        if forward_done {
            // Groups made only of frequent terms are fully counted now.
            common.retain(|&gi| groups[gi].terms.iter().any(|t| t.frequent.is_none()));
        }
        complete_pruned(
            &groups,
            &common,
            id_mask,
            limit,
            &mut docs,
            &mut masks,
            forward_done,
            &mut work,
        );
        let ranked = rank(&docs, &masks, id_mask, limit, &mut buffers.ranked);
        buffers.docs = docs;
        buffers.masks = masks;
        give_back(buffers);
        (ranked, work)
    }

    /// The documents the selective groups reach, with the groups each hits; the common
    /// groups (not yet counted) in increasing size.
    fn reach(
        &self,
        groups: &[Group<'_>],
        work: &mut CandidateWork,
        buffers: &mut Buffers,
    ) -> Reached {
        let cap = self.config.common_key_docs;
        let budget = self.config.enumerate_budget;
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
        let mut enumerated = 0u64;
        let mut selective: Vec<usize> = Vec::new();
        for &(size, gi) in &by_size {
            let over_budget = enumerated > 0 && enumerated + size > budget;
            if size > cap || over_budget {
                common.push(gi);
                continue;
            }
            enumerated += size;
            selective.push(gi);
        }
        work.enumerated += enumerated;
        let mut hits = std::mem::take(&mut buffers.hits);
        hits.clear();
        hits.reserve(enumerated as usize);
        for gi in selective {
            for t in &groups[gi].terms {
                t.for_each(|doc| hits.push((u64::from(doc) << 6) | gi as u64));
            }
        }
        sort_by_doc(&mut hits, &mut buffers.spare);

        let mut docs = std::mem::take(&mut buffers.docs);
        let mut masks = std::mem::take(&mut buffers.masks);
        docs.clear();
        masks.clear();
        docs.reserve(hits.len());
        masks.reserve(hits.len());
        for &h in &hits {
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
        buffers.hits = hits;

        if docs.is_empty() && !common.is_empty() {
            let mut by_index = common.clone();
            by_index.sort_unstable();
            docs = self.fallback_candidates(groups, &by_index);
            masks = vec![0; docs.len()];
        }
        Reached {
            docs,
            masks,
            common,
            id_mask,
        }
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

/// What the selective groups reached: sorted docs, the groups each hits, the common groups
/// still to count (smallest first), and which groups are identifiers.
struct Reached {
    docs: Vec<u32>,
    masks: Vec<u64>,
    common: Vec<usize>,
    id_mask: u64,
}

/// Rank key of a doc with the groups `mask` (larger is better): identifier groups hit, then
/// all groups hit, then the lower doc id.
fn rank_key(mask: u64, id_mask: u64, doc: u32) -> u64 {
    let ids = u64::from((mask & id_mask).count_ones());
    let all = u64::from(mask.count_ones());
    (ids << 40) | (all << 32) | u64::from(u32::MAX - doc)
}

/// The best `limit` docs by [`rank_key`], best first, as (doc, groups hit).
fn rank(
    docs: &[u32],
    masks: &[u64],
    id_mask: u64,
    limit: usize,
    ranked: &mut Vec<(u64, u32, u32)>,
) -> Vec<(u32, u32)> {
    ranked.clear();
    ranked.extend(
        docs.iter()
            .zip(masks)
            .map(|(&doc, &m)| (rank_key(m, id_mask, doc), m.count_ones(), doc)),
    );
    let better = |a: &(u64, u32, u32), b: &(u64, u32, u32)| b.0.cmp(&a.0);
    if ranked.len() > limit {
        ranked.select_nth_unstable_by(limit - 1, better);
        ranked.truncate(limit);
    }
    ranked.sort_unstable_by(better);
    ranked.iter().map(|&(_, hit, doc)| (doc, hit)).collect()
}

/// Counts the common groups for the reached docs, dropping every doc that can no longer make
/// the best `limit` (exact: the result ranks as counting every group for every doc would).
///
/// A doc's key is bounded below by the groups counted so far and above by adding every common
/// group not yet checked for it. The `limit` docs best by partial count are counted fully
/// first, and the `limit`-th best lower key then is a threshold no dropped doc can reach
/// (keys only rise as groups are counted, so it stays valid). Each common group, smallest
/// first, is then counted for the surviving docs only, and docs whose upper key falls below
/// the threshold are dropped after each group.
#[allow(clippy::too_many_arguments)]
fn complete_pruned(
    groups: &[Group<'_>],
    common: &[usize],
    id_mask: u64,
    limit: usize,
    docs: &mut Vec<u32>,
    masks: &mut Vec<u64>,
    skip_frequent: bool,
    work: &mut CandidateWork,
) {
    if common.is_empty() || docs.is_empty() {
        return;
    }
    let common_mask = common.iter().fold(0u64, |m, &gi| m | (1 << gi));
    // Common groups already counted, per doc.
    let mut counted: Vec<u64> = vec![0; docs.len()];
    let mut threshold = None;
    if docs.len() > limit {
        // The `limit` best docs by partial key, counted fully.
        let mut order: Vec<(u64, usize)> = docs
            .iter()
            .zip(masks.iter())
            .enumerate()
            .map(|(i, (&d, &m))| (rank_key(m, id_mask, d), i))
            .collect();
        order.select_nth_unstable_by(limit - 1, |a, b| b.0.cmp(&a.0));
        order.truncate(limit);
        let mut picked: Vec<usize> = order.into_iter().map(|(_, i)| i).collect();
        picked.sort_unstable();
        let sub_docs: Vec<u32> = picked.iter().map(|&i| docs[i]).collect();
        let mut sub_masks: Vec<u64> = picked.iter().map(|&i| masks[i]).collect();
        for &gi in common {
            mark_group(
                &groups[gi],
                &sub_docs,
                &mut sub_masks,
                1 << gi,
                skip_frequent,
                work,
            );
        }
        for (k, &i) in picked.iter().enumerate() {
            masks[i] = sub_masks[k];
            counted[i] = common_mask;
        }
        let mut lower: Vec<u64> = docs
            .iter()
            .zip(masks.iter())
            .map(|(&d, &m)| rank_key(m, id_mask, d))
            .collect();
        let (_, &mut t, _) = lower.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
        threshold = Some(t);
        prune(docs, masks, &mut counted, common_mask, id_mask, t);
    }
    for &gi in common {
        let bit = 1u64 << gi;
        // Docs counted fully above hold their bit already; marking again changes nothing.
        mark_group(&groups[gi], docs, masks, bit, skip_frequent, work);
        counted.iter_mut().for_each(|c| *c |= bit);
        if let Some(t) = threshold {
            prune(docs, masks, &mut counted, common_mask, id_mask, t);
        }
    }
}

/// Keeps only the docs whose best possible key (every uncounted common group hit) reaches
/// `threshold`.
fn prune(
    docs: &mut Vec<u32>,
    masks: &mut Vec<u64>,
    counted: &mut Vec<u64>,
    common_mask: u64,
    id_mask: u64,
    threshold: u64,
) {
    let mut w = 0;
    for r in 0..docs.len() {
        let open = common_mask & !counted[r];
        let upper = rank_key(masks[r] | open, id_mask, docs[r]);
        if upper >= threshold {
            docs[w] = docs[r];
            masks[w] = masks[r];
            counted[w] = counted[r];
            w += 1;
        }
    }
    docs.truncate(w);
    masks.truncate(w);
    counted.truncate(w);
}

/// Marks with each common group's bit every reached doc that holds one of the group's
/// frequent terms, from the forward index. Returns whether it ran (then those terms are
/// counted and the postings pass skips them).
fn count_frequent(
    groups: &[Group<'_>],
    common: &[usize],
    forward: &ForwardIndex,
    docs: &[u32],
    masks: &mut [u64],
    work: &mut CandidateWork,
) -> bool {
    // (frequent id, groups holding it), sorted by id.
    let mut wanted: Vec<(u16, u64)> = Vec::new();
    for &gi in common {
        for t in &groups[gi].terms {
            if let Some(f) = t.frequent {
                wanted.push((f, 1u64 << gi));
            }
        }
    }
    if wanted.is_empty() {
        return false;
    }
    wanted.sort_unstable_by_key(|w| w.0);
    let mut merged: Vec<(u16, u64)> = Vec::with_capacity(wanted.len());
    for (f, bits) in wanted {
        match merged.last_mut() {
            Some(last) if last.0 == f => last.1 |= bits,
            _ => merged.push((f, bits)),
        }
    }
    work.forward_terms += merged.len();
    // One bit per possible id: most forward ids of a doc are not the query's, and this
    // rejects them with one load.
    let mut filter = [0u64; (u16::MAX as usize + 1) / 64];
    for &(f, _) in &merged {
        filter[usize::from(f) >> 6] |= 1u64 << (f & 63);
    }
    let mut read = 0u64;
    forward.for_each_ids(docs, |i, ids| {
        read += ids.len() as u64;
        let mut m = 0u64;
        for &f in ids {
            if (filter[usize::from(f) >> 6] >> (f & 63)) & 1 != 0 {
                if let Ok(k) = merged.binary_search_by_key(&f, |w| w.0) {
                    m |= merged[k].1;
                }
            }
        }
        if let Some(mask) = masks.get_mut(i) {
            *mask |= m;
        }
    });
    work.forward_ids += read;
    true
}

/// Marks `bit` on every doc of (sorted) `docs` that some term of `group` holds (skipping the
/// frequent terms when the forward index counted them already).
fn mark_group(
    group: &Group<'_>,
    docs: &[u32],
    masks: &mut [u64],
    bit: u64,
    skip_frequent: bool,
    work: &mut CandidateWork,
) {
    // The docs as a bitmap, built at most once per group, for container-wise intersections.
    let mut as_bitmap: Option<RoaringBitmap> = None;
    for t in &group.terms {
        if skip_frequent && t.frequent.is_some() {
            continue;
        }
        work.posting_terms += 1;
        let (len, n) = (t.len(), docs.len() as u64);
        work.posting_steps += if len > 12 * n { n } else { len };
        mark_term(t, docs, masks, bit, &mut as_bitmap);
    }
}

/// Marks `bit` on every doc of (sorted) `docs` that the posting `t` holds, choosing the
/// cheaper way: one membership test per doc when the posting is much larger than `docs`, a
/// container-wise bitmap intersection when both are large, else a merge of the two sorted
/// sequences.
fn mark_term(
    t: &TermPostings<'_>,
    docs: &[u32],
    masks: &mut [u64],
    bit: u64,
    as_bitmap: &mut Option<RoaringBitmap>,
) {
    let len = t.len();
    let n = docs.len() as u64;
    if len > 12 * n {
        for (i, &doc) in docs.iter().enumerate() {
            if masks[i] & bit == 0 && t.contains(doc) {
                masks[i] |= bit;
            }
        }
        return;
    }
    let mut mark_sorted = |doc: u32, cursor: &mut usize| {
        while *cursor < docs.len() && docs[*cursor] < doc {
            *cursor += 1;
        }
        if docs.get(*cursor) == Some(&doc) {
            masks[*cursor] |= bit;
        }
    };
    let mut cursor = 0usize;
    match (&t.base, t.delta) {
        (Some(PostingRef::Bitmap(b)), None) if n > 4096 => {
            let cands = as_bitmap.get_or_insert_with(|| {
                RoaringBitmap::from_sorted_iter(docs.iter().copied()).unwrap_or_default()
            });
            (&*cands & *b)
                .iter()
                .for_each(|doc| mark_sorted(doc, &mut cursor));
        }
        // The immutable tier alone yields docs in increasing order: merge.
        (Some(base), None) => base.for_each(|doc| mark_sorted(doc, &mut cursor)),
        // Patched by the delta (not in order): look each doc up.
        _ => t.for_each(|doc| {
            if let Ok(i) = docs.binary_search(&doc) {
                masks[i] |= bit;
            }
        }),
    }
}

/// Sorts `(doc << 6) | group` words by doc (groups within a doc in any order): an LSD radix
/// sort on the doc bits, far cheaper than a comparison sort on tens of thousands of words.
fn sort_by_doc(hits: &mut Vec<u64>, spare: &mut Vec<u64>) {
    const DIGIT: u32 = 11;
    const BUCKETS: usize = 1 << DIGIT;
    if hits.len() < 512 {
        hits.sort_unstable();
        return;
    }
    let max_doc = hits.iter().map(|&h| h >> 6).max().unwrap_or(0);
    let bits = 64 - max_doc.leading_zeros();
    let mut from = std::mem::take(hits);
    let mut to = std::mem::take(spare);
    to.clear();
    to.resize(from.len(), 0);
    let mut shift = 6;
    while shift < 6 + bits {
        let mut counts = [0usize; BUCKETS];
        for &h in &from {
            counts[((h >> shift) as usize) & (BUCKETS - 1)] += 1;
        }
        let mut sum = 0;
        for c in counts.iter_mut() {
            let n = *c;
            *c = sum;
            sum += n;
        }
        for &h in &from {
            let b = ((h >> shift) as usize) & (BUCKETS - 1);
            to[counts[b]] = h;
            counts[b] += 1;
        }
        std::mem::swap(&mut from, &mut to);
        shift += DIGIT;
    }
    *hits = from;
    *spare = to;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexConfig;
    use proptest::prelude::*;

    impl CandidateIndex {
        /// The reference: every common group counted for every reached doc, then ranked.
        fn candidates_exhaustive(&self, q: &IndexKeys, limit: usize) -> Vec<(u32, u32)> {
            if limit == 0 {
                return Vec::new();
            }
            let groups = self.query_groups(q);
            let Reached {
                docs,
                mut masks,
                common,
                id_mask,
            } = self.reach(
                &groups,
                &mut CandidateWork::default(),
                &mut Buffers::default(),
            );
            for &gi in &common {
                for t in &groups[gi].terms {
                    for (i, &doc) in docs.iter().enumerate() {
                        if t.contains(doc) {
                            masks[i] |= 1 << gi;
                        }
                    }
                }
            }
            rank(&docs, &masks, id_mask, limit, &mut Vec::new())
        }
    }

    #[test]
    fn radix_sort_groups_by_doc() {
        let mut hits: Vec<u64> = (0..5000u64)
            .map(|i| ((i * 7919 % 100_003) << 6) | (i % 64))
            .collect();
        let mut want = hits.clone();
        sort_by_doc(&mut hits, &mut Vec::new());
        want.sort_unstable_by_key(|h| h >> 6);
        let docs = |v: &[u64]| v.iter().map(|h| h >> 6).collect::<Vec<_>>();
        assert_eq!(docs(&hits), docs(&want));
        let mut sorted_all = hits.clone();
        sorted_all.sort_unstable();
        want.sort_unstable();
        assert_eq!(sorted_all, want);
    }

    fn arb_keys() -> impl Strategy<Value = IndexKeys> {
        let names = [
            "ANA", "JOSE", "JOSA", "LUIS", "GARCIA", "LOPEZ", "MARIA", "MARTA",
        ];
        (
            proptest::collection::vec(0..names.len(), 0..4),
            proptest::collection::vec(0..6u8, 0..3),
            proptest::option::of(1980u16..1984),
            proptest::collection::vec(0..30u8, 0..2),
        )
            .prop_map(move |(t, b, y, i)| IndexKeys {
                tokens: t.into_iter().map(|k| names[k].to_string()).collect(),
                blocking: b
                    .into_iter()
                    .map(|k| match k {
                        0 => "fp:G620".to_string(),
                        1 => "in:JG".to_string(),
                        2 => "gc:JOSE".to_string(),
                        3 => "fc:GARCIA".to_string(),
                        4 => "fp:L120".to_string(),
                        _ => "in:AL".to_string(),
                    })
                    .collect(),
                birth_year: y,
                ids: i.into_iter().map(|k| format!("ssn:{k:09}")).collect(),
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn pruned_counting_ranks_as_exhaustive_counting(
            records in proptest::collection::vec(arb_keys(), 1..300),
            queries in proptest::collection::vec(arb_keys(), 1..8),
            common_key_docs in 2u64..40,
            enumerate_budget in 1u64..200,
            forward_min_docs in 0u64..30,
            limit in 1usize..20,
        ) {
            let config = IndexConfig {
                common_key_docs,
                enumerate_budget,
                forward_min_docs,
                ..IndexConfig::default()
            };
            let idx = CandidateIndex::build_with_config(
                records.into_iter().enumerate().map(|(d, k)| (d as u32, k)),
                config,
            );
            for q in &queries {
                prop_assert_eq!(idx.candidates(q, limit), idx.candidates_exhaustive(q, limit));
            }
        }
    }
}
