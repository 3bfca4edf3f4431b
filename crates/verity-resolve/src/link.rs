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
    pub train: TrainOptions,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            threshold: 0.5,
            top: None,
            max_bucket: 2000,
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

/// Candidate pairs sharing at least one blocking key. In dedupe (`right` = None) only i < j.
pub fn candidate_pairs(
    left: &[Prepared],
    right: Option<&[Prepared]>,
    max_bucket: usize,
) -> Vec<Pair> {
    let other = right.unwrap_or(left);
    let mut buckets: HashMap<String, Vec<u32>> = HashMap::new();
    for (j, p) in other.iter().enumerate() {
        for k in p.blocking_keys() {
            buckets.entry(k).or_default().push(j as u32);
        }
    }
    buckets.retain(|k, v| v.len() <= max_bucket || is_identifier_key(k));
    let n_threads = threads();
    let chunk = left.len().div_ceil(n_threads).max(1);
    let dedupe = right.is_none();
    let mut out: Vec<Pair> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = left
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let buckets = &buckets;
                s.spawn(move || {
                    let mut seen = vec![u32::MAX; other.len()];
                    let mut local = Vec::new();
                    for (off, p) in part.iter().enumerate() {
                        let i = (c * chunk + off) as u32;
                        let mut mine = Vec::new();
                        for k in p.blocking_keys() {
                            if let Some(b) = buckets.get(&k) {
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
                        local.extend(mine.into_iter().map(|j| (i, j)));
                    }
                    local
                })
            })
            .collect();
        for h in handles {
            // a worker only panics on a bug; surface it rather than lose pairs silently
            out.extend(h.join().unwrap_or_default());
        }
    });
    out
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

/// Links `left` to `right`, or dedupes `left` when `right` is None.
pub fn link(left: &[Record], right: Option<&[Record]>, opts: &LinkOptions) -> LinkResult {
    let lp: Vec<Prepared> = left.iter().map(Prepared::from_record).collect();
    let rp: Option<Vec<Prepared>> = right.map(|r| r.iter().map(Prepared::from_record).collect());
    let pairs = candidate_pairs(&lp, rp.as_deref(), opts.max_bucket);
    let model = Model::train(&lp, rp.as_deref(), &pairs, &opts.train);
    let scores = score_pairs(&model, &lp, rp.as_deref(), &pairs);
    let selected = select(&pairs, &scores, opts.threshold, opts.top, right.is_none());
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
