//! Batch link (two files) and dedupe (one file): blocking, EM training, scoring, selection of
//! output pairs (threshold and/or top-K) and clustering into stable person ids.

use crate::compare::CheapFields;
use crate::model::{BatchConstants, BatchTerms, Model, NameLevelsFn, Pair, TrainOptions};
use crate::record::{Prepared, Record};
use std::collections::HashMap;
use verity_names::{compare_levels_prepared, PreparedName, TokenTable};

#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Keep pairs at or above this probability.
    pub threshold: f64,
    /// Also keep each left record's K best candidates at any score.
    pub top: Option<usize>,
    /// Name/date blocking keys shared by more records than this are not used (identifiers always are).
    pub max_bucket: usize,
    /// Blocking budget: when the name/date keys would generate more than this many candidate
    /// pairs per left record (counted per key, before de-duplication), the largest buckets are
    /// dropped until they fit. Keeps dedupe of millions of records near-linear; identifier
    /// keys are never dropped.
    pub max_pairs_per_record: usize,
    pub train: TrainOptions,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            threshold: 0.5,
            top: None,
            max_bucket: 2000,
            max_pairs_per_record: 20,
            train: TrainOptions::default(),
        }
    }
}

/// One output pair: indexes into the left and right (or same, in dedupe) record lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkPair {
    pub left: u32,
    pub right: u32,
    pub probability: f64,
}

#[derive(Debug, Clone)]
pub struct LinkResult {
    pub pairs: Vec<LinkPair>,
    pub model: Model,
    pub candidate_pairs: usize,
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, 16)
}

/// The names of a link or dedupe run interned once in a [`TokenTable`], so that comparing a
/// pair's names costs id comparisons instead of string work. [`PreparedNames::levels`] gives
/// exactly what [`crate::compare::name_levels`] gives for the same records (the tests compare
/// the two paths).
pub struct PreparedNames {
    table: TokenTable,
    left: Vec<PreparedName>,
    right: Option<Vec<PreparedName>>,
}

impl PreparedNames {
    /// Interns the names of `left` and (link) `right`; index `i` is record `i` of its side.
    pub fn new(left: &[Prepared], right: Option<&[Prepared]>) -> PreparedNames {
        let mut table = TokenTable::new();
        let left = left.iter().map(|p| table.prepare(&p.name)).collect();
        let right = right.map(|r| r.iter().map(|p| table.prepare(&p.name)).collect());
        PreparedNames { table, left, right }
    }

    /// The name levels (given, middle, family) of left record `i` and right (dedupe: left)
    /// record `j`; all null for an index out of range.
    pub fn levels(&self, i: u32, j: u32) -> [u8; 3] {
        let other = self.right.as_deref().unwrap_or(&self.left);
        match (self.left.get(i as usize), other.get(j as usize)) {
            (Some(a), Some(b)) => {
                let (given, middle, family, swapped) = compare_levels_prepared(a, b, &self.table);
                crate::compare::levels_of_agreements(given, middle, family, swapped)
            }
            _ => [0; 3],
        }
    }
}

/// What a link or dedupe run computes once from the prepared records, before training, and
/// shares between training and scoring: the candidate pairs, the interned names and each
/// record's packed cheap fields.
pub struct RunIndex {
    pub pairs: Vec<Pair>,
    pub names: PreparedNames,
    pub left_cheap: Vec<CheapFields>,
    pub right_cheap: Option<Vec<CheapFields>>,
}

impl RunIndex {
    /// Blocks ([`candidate_pairs_within`]), interns the names ([`PreparedNames::new`]) and
    /// packs the cheap fields at the same time: interning runs on one core while blocking and
    /// packing use the others. Each part is what it would be on its own.
    pub fn build(
        left: &[Prepared],
        right: Option<&[Prepared]>,
        max_bucket: usize,
        max_pairs_per_record: usize,
    ) -> RunIndex {
        let (names, (pairs, (left_cheap, right_cheap))) = rayon::join(
            || PreparedNames::new(left, right),
            || {
                rayon::join(
                    || candidate_pairs_within(left, right, max_bucket, max_pairs_per_record),
                    || {
                        (
                            crate::compare::cheap_fields_all(left),
                            right.map(crate::compare::cheap_fields_all),
                        )
                    },
                )
            },
        );
        RunIndex {
            pairs,
            names,
            left_cheap,
            right_cheap,
        }
    }

    /// Trains a model on this run's pairs ([`Model::train_with_cheap`]).
    pub fn train(
        &self,
        left: &[Prepared],
        right: Option<&[Prepared]>,
        opts: &TrainOptions,
    ) -> Model {
        let names = |i: u32, j: u32| self.names.levels(i, j);
        Model::train_with_cheap(
            left,
            right,
            &self.pairs,
            opts,
            &names,
            &self.left_cheap,
            self.right_cheap.as_deref(),
        )
    }

    /// Scores and selects this run's pairs ([`score_and_select_with_cheap`]).
    pub fn score_and_select(
        &self,
        model: &Model,
        left: &[Prepared],
        right: Option<&[Prepared]>,
        threshold: f64,
        top: Option<usize>,
    ) -> Vec<LinkPair> {
        let names = |i: u32, j: u32| self.names.levels(i, j);
        score_and_select_with_cheap(
            model,
            left,
            right,
            &self.pairs,
            threshold,
            top,
            &names,
            &self.left_cheap,
            self.right_cheap.as_deref(),
        )
    }
}

/// Loads the embedded name tables now. They load on first use otherwise, while every core
/// waits in [`prepare_all`]; a run calls this on a spare core while it reads its input.
pub fn load_name_tables() {
    let _ = verity_names::tables::tables();
}

/// Prepares records on all cores, in order.
pub fn prepare_all(records: &[Record]) -> Vec<Prepared> {
    let chunk = records.len().div_ceil(threads() * 4).max(1);
    let parts: Vec<&[Record]> = records.chunks(chunk).collect();
    crate::model::parallel_map(parts.len(), |k| {
        parts[k]
            .iter()
            .map(Prepared::from_record)
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Blocking keys of every record as 64-bit hashes ([`Prepared::blocking_key_hashes`]), one
/// flat array with per-record offsets, computed on all cores. Each record's keys are sorted
/// and free of repeats.
struct RecordKeys {
    start: Vec<usize>,
    keys: Vec<u64>,
}

impl RecordKeys {
    fn of(&self, i: usize) -> &[u64] {
        &self.keys[self.start[i]..self.start[i + 1]]
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }
}

fn hashed_keys(records: &[Prepared]) -> RecordKeys {
    let chunk = records.len().div_ceil(threads() * 4).max(1);
    let parts: Vec<&[Prepared]> = records.chunks(chunk).collect();
    let done = crate::model::parallel_map(parts.len(), |k| {
        let mut keys = Vec::with_capacity(parts[k].len() * 12);
        let mut ends = Vec::with_capacity(parts[k].len());
        let mut mine = Vec::with_capacity(24);
        for p in parts[k] {
            mine.clear();
            p.blocking_key_hashes(&mut mine);
            mine.sort_unstable();
            mine.dedup();
            keys.extend_from_slice(&mine);
            ends.push(keys.len());
        }
        (keys, ends)
    });
    let total = done.iter().map(|d| d.0.len()).sum();
    let mut out = RecordKeys {
        start: Vec::with_capacity(records.len() + 1),
        keys: Vec::with_capacity(total),
    };
    out.start.push(0);
    for (keys, ends) in done {
        let base = out.keys.len();
        out.start.extend(ends.iter().map(|e| base + e));
        out.keys.extend(keys);
    }
    out
}

/// Sorts (key, index) entries on all cores: a counting pass splits them by the top byte of the
/// key (so the split parts are already in order), then each part is sorted on its own.
fn par_sort_entries(entries: Vec<(u64, u32)>) -> Vec<(u64, u32)> {
    let n_threads = threads();
    if entries.len() < 1 << 16 || n_threads == 1 {
        let mut e = entries;
        e.sort_unstable();
        return e;
    }
    let mut counts = vec![0usize; 256];
    for e in &entries {
        counts[(e.0 >> 56) as usize] += 1;
    }
    let mut next = vec![0usize; 256];
    for b in 1..256 {
        next[b] = next[b - 1] + counts[b - 1];
    }
    let mut out = vec![(0u64, 0u32); entries.len()];
    for e in entries {
        let b = (e.0 >> 56) as usize;
        out[next[b]] = e;
        next[b] += 1;
    }
    let mut groups: Vec<Vec<&mut [(u64, u32)]>> = (0..n_threads).map(|_| Vec::new()).collect();
    let mut rest = &mut out[..];
    for (b, &c) in counts.iter().enumerate() {
        let (part, tail) = rest.split_at_mut(c);
        groups[b % n_threads].push(part);
        rest = tail;
    }
    rayon::scope(|s| {
        for group in groups {
            s.spawn(move |_| {
                for part in group {
                    part.sort_unstable();
                }
            });
        }
    });
    out
}

/// Candidate pairs sharing at least one blocking key. In dedupe (`right` = None) only i < j.
pub fn candidate_pairs(
    left: &[Prepared],
    right: Option<&[Prepared]>,
    max_bucket: usize,
) -> Vec<Pair> {
    candidate_pairs_within(left, right, max_bucket, usize::MAX)
}

/// Marks left-side entries in the blocking join (indexes stay below 2^31).
const LEFT_SIDE: u32 = 1 << 31;

/// One blocking key's bucket: its right-side members are `members[from..to]`.
struct Bucket {
    key: u64,
    from: usize,
    to: usize,
    left_members: usize,
}

/// [`candidate_pairs`] under a budget of `max_pairs_per_record` (see
/// [`LinkOptions::max_pairs_per_record`]): the largest name/date buckets are dropped first.
///
/// Blocking is a sort-merge join on hashed keys: every (key, record) entry of both sides is
/// sorted once, each run of equal keys is a bucket, and each left record then visits the
/// buckets it belongs to.
pub fn candidate_pairs_within(
    left: &[Prepared],
    right: Option<&[Prepared]>,
    max_bucket: usize,
    max_pairs_per_record: usize,
) -> Vec<Pair> {
    let other = right.unwrap_or(left);
    let dedupe = right.is_none();
    if left.len() >= LEFT_SIDE as usize || other.len() >= LEFT_SIDE as usize {
        // u32 pair indexes cannot address more records; no realistic input comes near this
        return Vec::new();
    }
    let left_keys = hashed_keys(left);
    let other_keys = match right {
        Some(r) => hashed_keys(r),
        None => RecordKeys {
            start: vec![0],
            keys: Vec::new(),
        },
    };
    let other_keys = if dedupe { &left_keys } else { &other_keys };
    let mut entries: Vec<(u64, u32)> =
        Vec::with_capacity(other_keys.keys.len() + if dedupe { 0 } else { left_keys.keys.len() });
    for j in 0..other_keys.len() {
        entries.extend(other_keys.of(j).iter().map(|&k| (k, j as u32)));
    }
    if !dedupe {
        for i in 0..left_keys.len() {
            entries.extend(left_keys.of(i).iter().map(|&k| (k, LEFT_SIDE | i as u32)));
        }
    }
    let entries = par_sort_entries(entries);

    // buckets (runs of equal keys) that can produce a pair and are not too frequent
    let mut buckets: Vec<Bucket> = Vec::new();
    let mut members: Vec<u32> = Vec::with_capacity(entries.len() / 2);
    let mut left_of: Vec<(u32, u32)> = Vec::new();
    let mut k = 0;
    while k < entries.len() {
        let key = entries[k].0;
        let end = k + entries[k..].iter().take_while(|e| e.0 == key).count();
        let run = &entries[k..end];
        // right-side entries sort before left-side ones (the LEFT_SIDE bit)
        let n_other = run.iter().take_while(|e| e.1 < LEFT_SIDE).count();
        let n_left = if dedupe { n_other } else { run.len() - n_other };
        let identifier = key >> 63 == 1;
        let useful = if dedupe {
            n_other >= 2
        } else {
            n_other >= 1 && n_left >= 1
        };
        if useful && (n_other <= max_bucket || identifier) {
            let b = buckets.len() as u32;
            let from = members.len();
            members.extend(run[..n_other].iter().map(|e| e.1));
            let lefts = if dedupe {
                &run[..n_other]
            } else {
                &run[n_other..]
            };
            left_of.extend(lefts.iter().map(|e| (e.1 & !LEFT_SIDE, b)));
            buckets.push(Bucket {
                key,
                from,
                to: members.len(),
                left_members: n_left,
            });
        }
        k = end;
    }
    drop(entries);
    let budget = max_pairs_per_record.saturating_mul(left.len().max(1));
    let dropped = drop_largest_buckets(&buckets, dedupe, budget);

    // each left record's buckets (counting sort by record)
    let mut start = vec![0usize; left.len() + 1];
    for &(i, b) in &left_of {
        if !dropped[b as usize] {
            start[i as usize + 1] += 1;
        }
    }
    for i in 0..left.len() {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut of_left = vec![0u32; start[left.len()]];
    for &(i, b) in &left_of {
        if !dropped[b as usize] {
            of_left[fill[i as usize]] = b;
            fill[i as usize] += 1;
        }
    }
    drop(left_of);

    let n_threads = threads();
    let chunk = left.len().div_ceil(n_threads * 4).max(1);
    let n_chunks = left.len().div_ceil(chunk);
    let (buckets, members, start, of_left) = (&buckets, &members, &start, &of_left);
    crate::model::parallel_map(n_chunks, |c| {
        let mut seen = vec![u32::MAX; other.len()];
        let mut local = Vec::new();
        let mut mine = Vec::new();
        for i in c * chunk..((c + 1) * chunk).min(left.len()) {
            let i32_ = i as u32;
            mine.clear();
            for &b in &of_left[start[i]..start[i + 1]] {
                let bucket = &buckets[b as usize];
                for &j in &members[bucket.from..bucket.to] {
                    if (dedupe && j <= i32_) || seen[j as usize] == i32_ {
                        continue;
                    }
                    seen[j as usize] = i32_;
                    mine.push(j);
                }
            }
            mine.sort_unstable();
            local.extend(mine.iter().map(|&j| (i32_, j)));
        }
        local
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Which buckets to drop: name/date buckets, largest first (ties by key: deterministic),
/// while the pairs they would generate exceed `budget`.
fn drop_largest_buckets(buckets: &[Bucket], dedupe: bool, budget: usize) -> Vec<bool> {
    let mut dropped = vec![false; buckets.len()];
    if budget == usize::MAX {
        return dropped;
    }
    let cost = |b: &Bucket| {
        let n = b.to - b.from;
        if dedupe {
            n * n.saturating_sub(1) / 2
        } else {
            n * b.left_members
        }
    };
    let mut order: Vec<usize> = (0..buckets.len())
        .filter(|&b| buckets[b].key >> 63 == 0)
        .collect();
    let mut total: usize = order.iter().map(|&b| cost(&buckets[b])).sum();
    if total <= budget {
        return dropped;
    }
    let size = |b: usize| buckets[b].to - buckets[b].from;
    order.sort_unstable_by(|&x, &y| {
        size(y)
            .cmp(&size(x))
            .then(buckets[x].key.cmp(&buckets[y].key))
    });
    for b in order {
        if total <= budget {
            break;
        }
        dropped[b] = true;
        total -= cost(&buckets[b]);
    }
    dropped
}

/// Match probabilities of pairs, computed in parallel, in the order of `pairs`.
pub fn score_pairs(
    model: &Model,
    left: &[Prepared],
    right: Option<&[Prepared]>,
    pairs: &[Pair],
) -> Vec<f64> {
    score_pairs_with(model, left, right, pairs, Model::probability)
}

/// Final log2-odds of pairs (ranking without saturation), in the order of `pairs`.
pub fn weigh_pairs(
    model: &Model,
    left: &[Prepared],
    right: Option<&[Prepared]>,
    pairs: &[Pair],
) -> Vec<f64> {
    score_pairs_with(model, left, right, pairs, Model::final_weight)
}

fn score_pairs_with(
    model: &Model,
    left: &[Prepared],
    right: Option<&[Prepared]>,
    pairs: &[Pair],
    f: fn(&Model, &Prepared, &Prepared) -> f64,
) -> Vec<f64> {
    let other = right.unwrap_or(left);
    let chunk = pairs.len().div_ceil(threads() * 4).max(1);
    crate::model::parallel_map(pairs.len().div_ceil(chunk), |c| {
        pairs[c * chunk..((c + 1) * chunk).min(pairs.len())]
            .iter()
            .map(
                |&(i, j)| match (left.get(i as usize), other.get(j as usize)) {
                    (Some(a), Some(b)) => f(model, a, b),
                    _ => f64::NEG_INFINITY,
                },
            )
            .collect::<Vec<f64>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Keeps pairs meeting the threshold or within each left record's top K (either suffices).
pub fn select(
    pairs: &[Pair],
    scores: &[f64],
    threshold: f64,
    top: Option<usize>,
    dedupe: bool,
) -> Vec<LinkPair> {
    let mut by_left: HashMap<u32, Vec<(u32, f64)>> = HashMap::new();
    for (&(i, j), &p) in pairs.iter().zip(scores) {
        by_left.entry(i).or_default().push((j, p));
        if dedupe {
            by_left.entry(j).or_default().push((i, p));
        }
    }
    let mut keep: Vec<LinkPair> = Vec::new();
    let mut lefts: Vec<u32> = by_left.keys().copied().collect();
    lefts.sort_unstable();
    for i in lefts {
        let Some(c) = by_left.get_mut(&i) else {
            continue;
        };
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (rank, &(j, p)) in c.iter().enumerate() {
            let in_top = top.is_some_and(|k| rank < k);
            if p >= threshold || in_top {
                // in dedupe a pair over the threshold is written once, smaller index first
                if dedupe && !in_top && j < i {
                    continue;
                }
                keep.push(LinkPair {
                    left: i,
                    right: j,
                    probability: p,
                });
            }
        }
    }
    keep
}

/// Candidate pairs scored and selected as [`score_pairs`] then [`select`] would (threshold
/// and/or top-K per left record, ranked by final log2-odds), but the costly name alignment is
/// paid only for pairs that could still be selected: each pair first gets an upper bound from
/// its cheap fields ([`Model::final_weight_bound`]); a left record's candidates are visited
/// best bound first and the visit stops once no remaining bound can reach the threshold or the
/// current K-th best. Dedupe with top-K takes the exhaustive path.
pub fn score_and_select(
    model: &Model,
    left: &[Prepared],
    right: Option<&[Prepared]>,
    pairs: &[Pair],
    threshold: f64,
    top: Option<usize>,
) -> Vec<LinkPair> {
    let prepared = PreparedNames::new(left, right);
    let names = |i: u32, j: u32| prepared.levels(i, j);
    score_and_select_with_names(model, left, right, pairs, threshold, top, &names)
}

/// [`score_and_select`] with the name levels of a pair (left index, other index) given by
/// `names` (see [`NameLevelsFn`]); the selection is the same.
pub fn score_and_select_with_names(
    model: &Model,
    left: &[Prepared],
    right: Option<&[Prepared]>,
    pairs: &[Pair],
    threshold: f64,
    top: Option<usize>,
    names: &NameLevelsFn<'_>,
) -> Vec<LinkPair> {
    let left_cheap = crate::compare::cheap_fields_all(left);
    let right_cheap = right.map(crate::compare::cheap_fields_all);
    score_and_select_with_cheap(
        model,
        left,
        right,
        pairs,
        threshold,
        top,
        names,
        &left_cheap,
        right_cheap.as_deref(),
    )
}

/// [`score_and_select_with_names`] with the records' [`CheapFields`] computed by the caller
/// (as [`RunIndex`] holds them); the selection is the same. Cheap fields of the wrong length
/// are recomputed.
#[allow(clippy::too_many_arguments)]
pub fn score_and_select_with_cheap(
    model: &Model,
    left: &[Prepared],
    right: Option<&[Prepared]>,
    pairs: &[Pair],
    threshold: f64,
    top: Option<usize>,
    names: &NameLevelsFn<'_>,
    left_cheap: &[CheapFields],
    right_cheap: Option<&[CheapFields]>,
) -> Vec<LinkPair> {
    if left_cheap.len() != left.len()
        || right.map(<[Prepared]>::len) != right_cheap.map(<[CheapFields]>::len)
    {
        return score_and_select_with_names(model, left, right, pairs, threshold, top, names);
    }
    let dedupe = right.is_none();
    if dedupe && top.is_some() {
        let scores = score_pairs(model, left, right, pairs);
        return select(pairs, &scores, threshold, top, true);
    }
    let other = right.unwrap_or(left);
    let mut sorted: Vec<Pair>;
    let pairs = if pairs.windows(2).all(|w| w[0].0 <= w[1].0) {
        pairs
    } else {
        sorted = pairs.to_vec();
        sorted.sort_unstable();
        &sorted[..]
    };
    // group boundaries: one group per left record, split into contiguous runs per thread
    let mut starts: Vec<usize> = Vec::new();
    for (k, p) in pairs.iter().enumerate() {
        if k == 0 || pairs[k - 1].0 != p.0 {
            starts.push(k);
        }
    }
    starts.push(pairs.len());
    let (left_terms, other_terms) = rayon::join(
        || record_terms(model, left),
        || right.map_or_else(Vec::new, |r| record_terms(model, r)),
    );
    let other_terms = if dedupe { &left_terms } else { &other_terms };
    let sides = Sides {
        left,
        other,
        constants: model.batch_constants(),
        left_terms: &left_terms,
        other_terms,
        left_cheap,
        other_cheap: right_cheap.unwrap_or(left_cheap),
        names,
    };
    let n_groups = starts.len() - 1;
    let n_threads = threads();
    let per = n_groups.div_ceil(n_threads * 8).max(1);
    let tasks: Vec<(usize, usize)> = (0..n_groups)
        .step_by(per)
        .map(|g| (starts[g], starts[(g + per).min(n_groups)]))
        .collect();
    let sides = &sides;
    // tasks on the shared pool (whose threads keep their name-pair memo warm from training);
    // results in task order, so the output does not depend on scheduling
    crate::model::parallel_map(tasks.len(), |t| {
        let (from, to) = tasks[t];
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let mut k = from;
        while k < to {
            let i = pairs[k].0;
            let end = k + pairs[k..to].iter().take_while(|p| p.0 == i).count();
            select_group(
                model,
                sides,
                &pairs[k..end],
                threshold,
                top,
                &mut scratch,
                &mut out,
            );
            k = end;
        }
        out
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Both sides of a scoring run with each record's term frequencies looked up once.
struct Sides<'a> {
    left: &'a [Prepared],
    other: &'a [Prepared],
    constants: BatchConstants,
    left_terms: &'a [BatchTerms],
    other_terms: &'a [BatchTerms],
    left_cheap: &'a [CheapFields],
    other_cheap: &'a [CheapFields],
    names: &'a NameLevelsFn<'a>,
}

/// [`Model::batch_terms`] of every record, on all cores.
fn record_terms(model: &Model, records: &[Prepared]) -> Vec<BatchTerms> {
    let chunk = records.len().div_ceil(threads() * 4).max(1);
    let parts: Vec<&[Prepared]> = records.chunks(chunk).collect();
    crate::model::parallel_map(parts.len(), |k| {
        parts[k]
            .iter()
            .map(|p| model.batch_terms(p))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// One left record's candidates: bound, visit best bound first, score exactly while useful.
fn select_group(
    model: &Model,
    sides: &Sides<'_>,
    group: &[Pair],
    threshold: f64,
    top: Option<usize>,
    scratch: &mut Vec<(f64, u32, crate::compare::Vector)>,
    out: &mut Vec<LinkPair>,
) {
    let Some(first) = group.first() else {
        return;
    };
    let i = first.0;
    let (Some(a), Some(ta), Some(ca)) = (
        sides.left.get(i as usize),
        sides.left_terms.get(i as usize),
        sides.left_cheap.get(i as usize),
    ) else {
        return;
    };
    scratch.clear();
    for &(_, j) in group {
        if let (Some(b), Some(tb), Some(cb)) = (
            sides.other.get(j as usize),
            sides.other_terms.get(j as usize),
            sides.other_cheap.get(j as usize),
        ) {
            let v = crate::compare::vector_without_names_packed(ca, cb, a, b);
            let bound = model.batch_bound(&sides.constants, ta, tb, &ca.name, &cb.name, &v);
            scratch.push((bound, j, v));
        }
    }
    scratch.sort_unstable_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    let k = top.unwrap_or(0);
    // exact (weight, j) of scored candidates, best first
    let mut best: Vec<(f64, u32)> = Vec::new();
    for &(bound, j, mut v) in scratch.iter() {
        let below_threshold = to_probability(bound) < threshold;
        let below_top =
            best.len() >= k && best.get(k.wrapping_sub(1)).is_none_or(|&(w, _)| bound < w);
        if below_threshold && below_top {
            break;
        }
        let (b, tb) = (&sides.other[j as usize], &sides.other_terms[j as usize]);
        let names = (sides.names)(i, j);
        v[crate::compare::GIVEN] = names[0];
        v[crate::compare::MIDDLE] = names[1];
        v[crate::compare::FAMILY] = names[2];
        let w = model.batch_final_weight(a, b, ta, tb, &v);
        let pos = best
            .iter()
            .position(|&(bw, bj)| w > bw || (w == bw && j < bj))
            .unwrap_or(best.len());
        best.insert(pos, (w, j));
    }
    for (rank, &(w, j)) in best.iter().enumerate() {
        let p = to_probability(w);
        if p >= threshold || rank < k {
            out.push(LinkPair {
                left: i,
                right: j,
                probability: p,
            });
        }
    }
}

fn to_probability(log2_odds: f64) -> f64 {
    1.0 / (1.0 + (-log2_odds * std::f64::consts::LN_2).exp())
}

/// Links `left` to `right`, or dedupes `left` when `right` is None.
pub fn link(left: &[Record], right: Option<&[Record]>, opts: &LinkOptions) -> LinkResult {
    let (lp, rp) = rayon::join(|| prepare_all(left), || right.map(prepare_all));
    let index = RunIndex::build(
        &lp,
        rp.as_deref(),
        opts.max_bucket,
        opts.max_pairs_per_record,
    );
    let model = index.train(&lp, rp.as_deref(), &opts.train);
    let selected = index.score_and_select(&model, &lp, rp.as_deref(), opts.threshold, opts.top);
    LinkResult {
        pairs: selected,
        model,
        candidate_pairs: index.pairs.len(),
    }
}

/// Connected components over `edges`; each record's cluster id is the smallest record id in
/// its cluster, so adding a record never renumbers clusters it does not join.
pub fn clusters(ids: &[String], edges: &[(u32, u32)]) -> Vec<String> {
    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for &(a, b) in edges {
        let (a, b) = (a as usize, b as usize);
        if a >= ids.len() || b >= ids.len() {
            continue;
        }
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            // the root is the member with the smallest id
            if ids[ra] <= ids[rb] {
                parent[rb] = ra;
            } else {
                parent[ra] = rb;
            }
        }
    }
    (0..ids.len())
        .map(|i| ids[find(&mut parent, i)].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_take_the_smallest_id_and_are_stable() {
        let ids: Vec<String> = ["r5", "r2", "r9", "r7"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = clusters(&ids, &[(0, 1), (2, 3)]);
        assert_eq!(c, vec!["r2", "r2", "r7", "r7"]);
        // a new record joining the first cluster leaves the second untouched
        let mut ids2 = ids.clone();
        ids2.push("r1".into());
        let c2 = clusters(&ids2, &[(0, 1), (2, 3), (4, 0)]);
        assert_eq!(c2, vec!["r1", "r1", "r7", "r7", "r1"]);
        // a new singleton renumbers nothing
        let mut ids3 = ids.clone();
        ids3.push("r0".into());
        let c3 = clusters(&ids3, &[(0, 1), (2, 3)]);
        assert_eq!(&c3[..4], &c[..]);
        assert_eq!(c3[4], "r0");
    }

    /// Gallery and probes of a small generated benchmark (35% hard negatives), prepared.
    fn small_benchmark(
        identities: usize,
        probes: usize,
        seed: u64,
    ) -> (Vec<Prepared>, Vec<Prepared>) {
        use crate::bench::{generate, BenchConfig};
        let w = generate(&BenchConfig {
            identities,
            probes,
            seed,
            hard_negative_share: 0.35,
        });
        let g = w.gallery.iter().map(Prepared::from_record).collect();
        let p = w.probes.iter().map(Prepared::from_record).collect();
        (g, p)
    }

    #[test]
    fn pruned_selection_equals_exhaustive_selection() {
        let (g, p) = small_benchmark(300, 80, 4);
        let key = |v: Vec<LinkPair>| {
            let mut k: Vec<(u32, u32, u64)> = v
                .iter()
                .map(|x| (x.left, x.right, (x.probability * 1e9) as u64))
                .collect();
            k.sort_unstable();
            k
        };
        for (right, dedupe) in [(Some(&g[..]), false), (None, true)] {
            let left = if dedupe { &g[..] } else { &p[..] };
            let pairs = candidate_pairs(left, right, 2000);
            let model = Model::train(left, right, &pairs, &TrainOptions::default());
            let scores = score_pairs(&model, left, right, &pairs);
            let tops: &[Option<usize>] = if dedupe {
                &[None]
            } else {
                &[None, Some(1), Some(3)]
            };
            for &top in tops {
                for threshold in [0.0, 0.5, 1.0] {
                    let fast = score_and_select(&model, left, right, &pairs, threshold, top);
                    let slow = select(&pairs, &scores, threshold, top, dedupe);
                    assert_eq!(key(fast), key(slow), "top {top:?} threshold {threshold}");
                }
            }
        }
    }

    #[test]
    fn batch_terms_give_the_per_pair_weights_and_bounds() {
        let (g, p) = small_benchmark(300, 80, 6);
        let pairs = candidate_pairs(&p, Some(&g), 2000);
        let model = Model::train(&p, Some(&g), &pairs, &TrainOptions::default());
        let consts = model.batch_constants();
        let (pc, gc) = (
            crate::compare::cheap_fields_all(&p),
            crate::compare::cheap_fields_all(&g),
        );
        let (pb, gb) = (record_terms(&model, &p), record_terms(&model, &g));
        let mut checked = 0;
        for &(i, j) in &pairs {
            let (a, b) = (&p[i as usize], &g[j as usize]);
            let (ta, tb) = (model.record_terms(a), model.record_terms(b));
            let v = crate::compare::vector_without_names(a, b);
            let batch = model.batch_bound(
                &consts,
                &pb[i as usize],
                &gb[j as usize],
                &pc[i as usize].name,
                &gc[j as usize].name,
                &v,
            );
            // the very number of the per-pair bound (no shape hash collides in this data)
            let per_pair = model.bound_with_terms(a, b, &ta, &tb, &v);
            assert_eq!(batch.to_bits(), per_pair.to_bits(), "pair {i} {j}");
            let full = crate::compare::vector(a, b);
            let w = model.batch_final_weight(a, b, &pb[i as usize], &gb[j as usize], &full);
            assert_eq!(
                w.to_bits(),
                model.final_weight(a, b).to_bits(),
                "pair {i} {j}"
            );
            assert!(batch >= w, "pair {i} {j}: bound {batch} below weight {w}");
            checked += 1;
        }
        assert!(checked > 100);
    }

    #[test]
    fn run_index_gives_the_same_model_and_links_as_the_separate_steps() {
        let (g, p) = small_benchmark(300, 80, 5);
        let opts = TrainOptions::default();
        for (left, right) in [(&p[..], Some(&g[..])), (&g[..], None)] {
            let pairs = candidate_pairs_within(left, right, 2000, 20);
            let model = Model::train(left, right, &pairs, &opts);
            let top = right.map(|_| 1);
            let links = score_and_select(&model, left, right, &pairs, 0.5, top);
            let index = RunIndex::build(left, right, 2000, 20);
            assert_eq!(index.pairs, pairs);
            let model2 = index.train(left, right, &opts);
            assert_eq!(model2.to_json(), model.to_json());
            assert_eq!(
                index.score_and_select(&model2, left, right, 0.5, top),
                links
            );
            // cheap fields of the wrong length are recomputed, not trusted
            let names = |i: u32, j: u32| index.names.levels(i, j);
            let short = &index.left_cheap[..index.left_cheap.len() - 1];
            let model3 = Model::train_with_cheap(left, right, &pairs, &opts, &names, short, None);
            assert_eq!(model3.to_json(), model.to_json());
            let links3 = score_and_select_with_cheap(
                &model, left, right, &pairs, 0.5, top, &names, short, None,
            );
            assert_eq!(links3, links);
        }
    }

    /// Blocking as first written: string keys, one hash map of buckets.
    fn reference_pairs(
        left: &[Prepared],
        right: Option<&[Prepared]>,
        max_bucket: usize,
    ) -> Vec<Pair> {
        let other = right.unwrap_or(left);
        let mut buckets: HashMap<String, Vec<u32>> = HashMap::new();
        for (j, p) in other.iter().enumerate() {
            let mut keys = p.blocking_keys();
            keys.sort();
            keys.dedup();
            for k in keys {
                buckets.entry(k).or_default().push(j as u32);
            }
        }
        let mut out = Vec::new();
        for (i, p) in left.iter().enumerate() {
            let mut mine: Vec<u32> = Vec::new();
            for k in p.blocking_keys() {
                let Some(b) = buckets.get(&k) else { continue };
                if b.len() > max_bucket && !crate::record::is_identifier_key(&k) {
                    continue;
                }
                mine.extend(b.iter().filter(|&&j| right.is_some() || j > i as u32));
            }
            mine.sort_unstable();
            mine.dedup();
            out.extend(mine.into_iter().map(|j| (i as u32, j)));
        }
        out
    }

    #[test]
    fn sort_merge_blocking_equals_the_hash_map_reference() {
        let (g, p) = small_benchmark(400, 150, 8);
        for max_bucket in [2, 5, 2000] {
            assert_eq!(
                candidate_pairs(&p, Some(&g), max_bucket),
                reference_pairs(&p, Some(&g), max_bucket),
                "link, max_bucket {max_bucket}"
            );
            assert_eq!(
                candidate_pairs(&g, None, max_bucket),
                reference_pairs(&g, None, max_bucket),
                "dedupe, max_bucket {max_bucket}"
            );
        }
        // under a budget: a subset, never losing a pair that shares an identifier (probes and
        // their gallery mates share some)
        let g: Vec<Prepared> = g.iter().chain(&p).cloned().collect();
        let all = candidate_pairs(&g, None, 2000);
        let within = candidate_pairs_within(&g, None, 2000, 0);
        assert!(within.len() < all.len());
        assert!(within.iter().all(|x| all.binary_search(x).is_ok()));
        let shares_id = |&(i, j): &Pair| {
            let ids = |k: u32| -> Vec<String> {
                g[k as usize]
                    .blocking_keys()
                    .into_iter()
                    .filter(|k| crate::record::is_identifier_key(k))
                    .collect()
            };
            let a = ids(i);
            ids(j).iter().any(|k| a.contains(k))
        };
        let id_pairs: Vec<&Pair> = all.iter().filter(|x| shares_id(x)).collect();
        assert!(!id_pairs.is_empty());
        assert!(id_pairs.iter().all(|x| within.binary_search(x).is_ok()));
    }

    #[test]
    fn parallel_sort_sorts() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let entries: Vec<(u64, u32)> = (0..200_000u32)
            .map(|k| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x, k)
            })
            .collect();
        let mut want = entries.clone();
        want.sort_unstable();
        assert_eq!(par_sort_entries(entries), want);
    }

    #[test]
    fn select_keeps_threshold_or_top() {
        let pairs = vec![(0, 0), (0, 1), (0, 2), (1, 0)];
        let scores = vec![0.9, 0.2, 0.1, 0.3];
        let kept = select(&pairs, &scores, 0.5, Some(2), false);
        let got: Vec<(u32, u32)> = kept.iter().map(|p| (p.left, p.right)).collect();
        assert_eq!(got, vec![(0, 0), (0, 1), (1, 0)]);
        let only_t = select(&pairs, &scores, 0.5, None, false);
        assert_eq!(only_t.len(), 1);
    }
}
