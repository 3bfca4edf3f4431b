//! Batch link (two files) and dedupe (one file): blocking, EM training, scoring, selection of
//! output pairs (threshold and/or top-K) and clustering into stable person ids.

use crate::model::{Model, Pair, TrainOptions};
use crate::record::{is_identifier_key, Prepared, Record};
use std::collections::HashMap;

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

/// Blocking keys of each record as 64-bit hashes, computed once per record on all cores.
/// The top bit marks identifier keys (never dropped for being frequent). A hash collision can
/// only merge two buckets (extra candidates, which scoring rejects), never lose a pair.
fn hashed_keys(records: &[Prepared]) -> Vec<Vec<u64>> {
    use std::hash::Hasher;
    let chunk = records.len().div_ceil(threads() * 4).max(1);
    let parts: Vec<&[Prepared]> = records.chunks(chunk).collect();
    crate::model::parallel_map(parts.len(), |k| {
        parts[k]
            .iter()
            .map(|p| {
                let mut keys: Vec<u64> = p
                    .blocking_keys()
                    .iter()
                    .map(|key| {
                        let mut h = fnv::FnvHasher::default();
                        h.write(key.as_bytes());
                        let flag = if is_identifier_key(key) { 1 << 63 } else { 0 };
                        (h.finish() >> 1) | flag
                    })
                    .collect();
                keys.sort_unstable();
                keys.dedup();
                keys
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Candidate pairs sharing at least one blocking key. In dedupe (`right` = None) only i < j.
pub fn candidate_pairs(
    left: &[Prepared],
    right: Option<&[Prepared]>,
    max_bucket: usize,
) -> Vec<Pair> {
    candidate_pairs_within(left, right, max_bucket, usize::MAX)
}

/// [`candidate_pairs`] under a budget of `max_pairs_per_record` (see
/// [`LinkOptions::max_pairs_per_record`]): the largest name/date buckets are dropped first.
pub fn candidate_pairs_within(
    left: &[Prepared],
    right: Option<&[Prepared]>,
    max_bucket: usize,
    max_pairs_per_record: usize,
) -> Vec<Pair> {
    let other = right.unwrap_or(left);
    let left_keys = hashed_keys(left);
    let other_keys_owned;
    let other_keys = match right {
        Some(r) => {
            other_keys_owned = hashed_keys(r);
            &other_keys_owned
        }
        None => &left_keys,
    };
    let mut buckets: HashMap<u64, Vec<u32>, fnv::FnvBuildHasher> = HashMap::default();
    for (j, keys) in other_keys.iter().enumerate() {
        for &k in keys {
            buckets.entry(k).or_default().push(j as u32);
        }
    }
    buckets.retain(|k, v| v.len() <= max_bucket || k >> 63 == 1);
    let budget = max_pairs_per_record.saturating_mul(left.len().max(1));
    let dedupe = right.is_none();
    drop_largest_buckets(&mut buckets, &left_keys, dedupe, budget);
    let n_threads = threads();
    let chunk = left.len().div_ceil(n_threads * 4).max(1);
    let parts: Vec<&[Vec<u64>]> = left_keys.chunks(chunk).collect();
    let buckets = &buckets;
    crate::model::parallel_map(parts.len(), |c| {
        let mut seen = vec![u32::MAX; other.len()];
        let mut local = Vec::new();
        let mut mine = Vec::new();
        for (off, keys) in parts[c].iter().enumerate() {
            let i = (c * chunk + off) as u32;
            mine.clear();
            for k in keys {
                if let Some(b) = buckets.get(k) {
                    for &j in b {
                        if (dedupe && j <= i) || seen[j as usize] == i {
                            continue;
                        }
                        seen[j as usize] = i;
                        mine.push(j);
                    }
                }
            }
            mine.sort_unstable();
            local.extend(mine.iter().map(|&j| (i, j)));
        }
        local
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Drops name/date buckets, largest first (ties by key: deterministic), while the pairs they
/// would generate exceed `budget`.
fn drop_largest_buckets(
    buckets: &mut HashMap<u64, Vec<u32>, fnv::FnvBuildHasher>,
    left_keys: &[Vec<u64>],
    dedupe: bool,
    budget: usize,
) {
    if budget == usize::MAX {
        return;
    }
    let mut left_count: HashMap<u64, usize, fnv::FnvBuildHasher> = HashMap::default();
    if !dedupe {
        for keys in left_keys {
            for &k in keys {
                if buckets.contains_key(&k) {
                    *left_count.entry(k).or_default() += 1;
                }
            }
        }
    }
    let mut costs: Vec<(usize, u64, usize)> = buckets
        .iter()
        .filter(|(k, _)| *k >> 63 == 0)
        .map(|(&k, v)| {
            let n = v.len();
            let cost = if dedupe {
                n * n.saturating_sub(1) / 2
            } else {
                n * left_count.get(&k).copied().unwrap_or(0)
            };
            (n, k, cost)
        })
        .collect();
    let mut total: usize = costs.iter().map(|c| c.2).sum();
    if total <= budget {
        return;
    }
    costs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, k, cost) in costs {
        if total <= budget {
            break;
        }
        buckets.remove(&k);
        total -= cost;
    }
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
    let chunk = pairs.len().div_ceil(threads()).max(1);
    let mut out = Vec::with_capacity(pairs.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(
                            |&(i, j)| match (left.get(i as usize), other.get(j as usize)) {
                                (Some(a), Some(b)) => f(model, a, b),
                                _ => f64::NEG_INFINITY,
                            },
                        )
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().unwrap_or_default());
        }
    });
    out
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
    let n_groups = starts.len() - 1;
    let n_threads = threads();
    let per = n_groups.div_ceil(n_threads * 8).max(1);
    let tasks: Vec<(usize, usize)> = (0..n_groups)
        .step_by(per)
        .map(|g| (starts[g], starts[(g + per).min(n_groups)]))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Vec<LinkPair>)> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n_threads.min(tasks.len()).max(1))
            .map(|_| {
                let (tasks, next) = (&tasks, &next);
                s.spawn(move || {
                    let mut done = Vec::new();
                    let mut scratch = Vec::new();
                    loop {
                        let t = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(from, to)) = tasks.get(t) else {
                            break;
                        };
                        let mut out = Vec::new();
                        let mut k = from;
                        while k < to {
                            let i = pairs[k].0;
                            let end = k + pairs[k..to].iter().take_while(|p| p.0 == i).count();
                            select_group(
                                model,
                                left,
                                other,
                                &pairs[k..end],
                                threshold,
                                top,
                                &mut scratch,
                                &mut out,
                            );
                            k = end;
                        }
                        done.push((t, out));
                    }
                    done
                })
            })
            .collect();
        for h in handles {
            results.extend(h.join().unwrap_or_default());
        }
    });
    results.sort_unstable_by_key(|r| r.0);
    results.into_iter().flat_map(|r| r.1).collect()
}

/// One left record's candidates: bound, visit best bound first, score exactly while useful.
#[allow(clippy::too_many_arguments)]
fn select_group(
    model: &Model,
    left: &[Prepared],
    other: &[Prepared],
    group: &[Pair],
    threshold: f64,
    top: Option<usize>,
    scratch: &mut Vec<(f64, u32, crate::compare::Vector)>,
    out: &mut Vec<LinkPair>,
) {
    let Some(a) = group.first().and_then(|p| left.get(p.0 as usize)) else {
        return;
    };
    let i = group[0].0;
    scratch.clear();
    for &(_, j) in group {
        if let Some(b) = other.get(j as usize) {
            let v = crate::compare::vector_without_names(a, b);
            scratch.push((model.final_weight_bound(a, b, &v), j, v));
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
        let b = &other[j as usize];
        let names = crate::compare::name_levels(a, b);
        v[crate::compare::GIVEN] = names[0];
        v[crate::compare::MIDDLE] = names[1];
        v[crate::compare::FAMILY] = names[2];
        let w = model.final_weight_of(a, b, &v);
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
    let lp = prepare_all(left);
    let rp: Option<Vec<Prepared>> = right.map(prepare_all);
    let pairs = candidate_pairs_within(
        &lp,
        rp.as_deref(),
        opts.max_bucket,
        opts.max_pairs_per_record,
    );
    let model = Model::train(&lp, rp.as_deref(), &pairs, &opts.train);
    let selected = score_and_select(&model, &lp, rp.as_deref(), &pairs, opts.threshold, opts.top);
    LinkResult {
        pairs: selected,
        model,
        candidate_pairs: pairs.len(),
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

    #[test]
    fn pruned_selection_equals_exhaustive_selection() {
        use crate::bench::{generate, BenchConfig};
        let w = generate(&BenchConfig {
            identities: 300,
            probes: 80,
            seed: 4,
            hard_negative_share: 0.35,
        });
        let g: Vec<Prepared> = w.gallery.iter().map(Prepared::from_record).collect();
        let p: Vec<Prepared> = w.probes.iter().map(Prepared::from_record).collect();
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
