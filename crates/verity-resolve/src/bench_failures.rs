//! Why the engine misses, on benchmark data: for each mated probe not accepted at FPIR ≤ 0.1%
//! (and ≤ 1%) the cause (mate not among the candidates, another gallery record ranked first,
//! mate first but at or below the threshold), the field levels over-represented among the
//! misses compared with all mated probes, and whether an identifier agreed; for non-mated
//! probes, the best-scoring ones (they set the thresholds) and every hard negative at ≥ 0.5.
//! Examples show the records (synthetic data) and the per-field weights.

use super::synth::SynthInfo;
use super::{Evaluation, World};
use crate::model::Model;
use crate::record::Record;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Why a mated probe is not accepted at a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum MissCause {
    /// The mate is not among the probe's candidate pairs (blocking).
    NotBlocked,
    /// Another gallery record scores higher than the mate.
    Outranked,
    /// The mate ranks first but scores at or below the threshold.
    BelowThreshold,
}

/// One field level's share among the misses and among all mated probes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LevelShare {
    /// `field=level` of the probe–mate comparison.
    pub level: String,
    pub misses: usize,
    pub mated: usize,
}

/// The failure analysis of one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FailureAnalysis {
    pub mated: usize,
    /// Misses at FPIR ≤ 0.1% and ≤ 1% by cause.
    pub misses_01pct: BTreeMap<String, usize>,
    pub misses_1pct: BTreeMap<String, usize>,
    /// Among misses at FPIR ≤ 0.1%: an identifier agreed / only disagreeing identifiers / none
    /// comparable (in the probe–mate comparison).
    pub misses_identifier_agrees: usize,
    pub misses_identifier_disagrees: usize,
    pub misses_no_common_identifier: usize,
    /// Outranked misses whose winner is a gallery person with the mate's true given and family
    /// name (synth data only).
    pub outranked_by_namesake: usize,
    /// Misses at FPIR ≤ 0.1% by the probe record's system, against all mated probes (synth).
    pub misses_by_system: BTreeMap<String, (usize, usize)>,
    /// Field levels most over-represented among the misses.
    pub levels: Vec<LevelShare>,
    /// DET points at the best non-mated scores: (threshold log2-odds, non-mated probes
    /// accepted above it, FNIR there), highest threshold first.
    pub det: Vec<(f64, usize, f64)>,
    /// Readable examples.
    pub examples: Vec<String>,
}

fn row(r: &Record) -> String {
    let i = &r.identity;
    let mut ids = Vec::new();
    if let Some(a) = &i.ids.a_number {
        ids.push(format!("A#{a}"));
    }
    if let Some(x) = &i.ids.ssn {
        ids.push(format!("SSN {x}"));
    }
    if let Some(x) = &i.ids.fbi_number {
        ids.push(format!("FBI {x}"));
    }
    if let Some(x) = &i.ids.passport {
        ids.push(format!("PP {x}"));
    }
    let addr = &i.address;
    format!(
        "{}: {} / {} / {} | dob {} | sex {} | born {} | {} | {} {} {} {}",
        r.id,
        i.name.given,
        i.name.middle,
        i.name.family,
        i.dob.map_or("-".into(), |d| d.to_string()),
        i.sex.map_or("-", |s| s.code()),
        if i.country_of_birth.is_empty() {
            "-"
        } else {
            i.country_of_birth.as_str()
        },
        if ids.is_empty() {
            "no ids".into()
        } else {
            ids.join(" ")
        },
        addr.street_number,
        addr.street,
        addr.locality,
        addr.region
    )
}

fn explain(model: &Model, eval: &Evaluation, probe: usize, gallery: usize) -> String {
    let (Some(a), Some(b)) = (eval.probes.get(probe), eval.gallery.get(gallery)) else {
        return String::new();
    };
    let s = model.score_prepared(a, b);
    let parts: Vec<String> = s
        .fields
        .iter()
        .filter(|f| f.weight.abs() >= 0.005)
        .map(|f| format!("{} {} {:+.2}", f.field, f.level, f.weight))
        .collect();
    format!("log2-odds {:+.2}: {}", s.match_weight, parts.join("; "))
}

const IDENTIFIER_FIELDS: [&str; 4] = ["a_number", "fbi_number", "passport", "ssn"];

/// Analyses the run; `examples` bounds the examples per kind.
pub fn analyse(
    world: &World,
    info: Option<&SynthInfo>,
    model: &Model,
    eval: &Evaluation,
    examples: usize,
) -> FailureAnalysis {
    let mut out = FailureAnalysis::default();
    let mut mate_weight: HashMap<usize, f64> = HashMap::new();
    for (&(i, j), &w) in eval.pairs.iter().zip(&eval.weights) {
        if world.mate.get(i as usize).copied().flatten() == Some(j) {
            mate_weight.insert(i as usize, w);
        }
    }
    let cause_at = |k: usize, mate: u32, t: f64| -> Option<MissCause> {
        let (w, top) = eval
            .best
            .get(k)
            .copied()
            .unwrap_or((f64::NEG_INFINITY, None));
        if top == Some(mate) && w > t {
            return None;
        }
        Some(if !mate_weight.contains_key(&k) {
            MissCause::NotBlocked
        } else if top != Some(mate) {
            MissCause::Outranked
        } else {
            MissCause::BelowThreshold
        })
    };
    let mut level_all: HashMap<String, usize> = HashMap::new();
    let mut level_miss: HashMap<String, usize> = HashMap::new();
    let mut shown: BTreeMap<MissCause, usize> = BTreeMap::new();
    let mut example_text = Vec::new();
    for (k, m) in world.mate.iter().enumerate() {
        let Some(mate) = *m else { continue };
        out.mated += 1;
        let system = info
            .and_then(|i| i.origin.get(k))
            .map(|o| format!("{:?}", o.system));
        if let Some(sys) = &system {
            out.misses_by_system.entry(sys.clone()).or_default().1 += 1;
        }
        if let Some(c) = cause_at(k, mate, eval.threshold_1pct) {
            *out.misses_1pct.entry(format!("{c:?}")).or_default() += 1;
        }
        let miss = cause_at(k, mate, eval.threshold_01pct);
        let (Some(probe), Some(mate_p)) = (eval.probes.get(k), eval.gallery.get(mate as usize))
        else {
            continue;
        };
        let scored = model.score_prepared(probe, mate_p);
        for f in &scored.fields {
            if f.field == "prior" || f.field == "calibration" {
                continue;
            }
            let key = format!("{}={}", f.field, f.level);
            *level_all.entry(key.clone()).or_default() += 1;
            if miss.is_some() {
                *level_miss.entry(key).or_default() += 1;
            }
        }
        let Some(cause) = miss else { continue };
        *out.misses_01pct.entry(format!("{cause:?}")).or_default() += 1;
        if let Some(sys) = system {
            out.misses_by_system.entry(sys).or_default().0 += 1;
        }
        let id_levels: Vec<&str> = scored
            .fields
            .iter()
            .filter(|f| IDENTIFIER_FIELDS.contains(&f.field))
            .map(|f| f.level.as_str())
            .collect();
        if id_levels.iter().any(|l| *l == "exact" || *l == "one_typo") {
            out.misses_identifier_agrees += 1;
        } else if id_levels
            .iter()
            .any(|l| *l == "disagree" || *l == "other_country")
        {
            out.misses_identifier_disagrees += 1;
        } else {
            out.misses_no_common_identifier += 1;
        }
        let winner = eval.best.get(k).and_then(|b| b.1);
        if cause == MissCause::Outranked {
            if let (Some(i), Some(w)) = (info, winner) {
                let (a, b) = (
                    i.gallery_truth.get(w as usize),
                    i.gallery_truth.get(mate as usize),
                );
                if let (Some(a), Some(b)) = (a, b) {
                    if a.name.given == b.name.given && a.name.family == b.name.family {
                        out.outranked_by_namesake += 1;
                    }
                }
            }
        }
        let n = shown.entry(cause).or_default();
        if *n < examples {
            *n += 1;
            let mut e = String::new();
            let origin = info
                .and_then(|i| i.origin.get(k))
                .map_or(String::new(), |o| {
                    format!(
                        " ({}, probe from {:?}{})",
                        o.person_id,
                        o.system,
                        if o.other_record {
                            " record"
                        } else {
                            ", perturbed truth"
                        }
                    )
                });
            let _ = writeln!(e, "missed mated probe, {cause:?}{origin}:");
            if let Some(r) = world.probes.get(k) {
                let _ = writeln!(e, "    probe  {}", row(r));
            }
            if let Some(r) = world.gallery.get(mate as usize) {
                let _ = writeln!(e, "    mate   {}", row(r));
            }
            let _ = writeln!(e, "    mate:   {}", explain(model, eval, k, mate as usize));
            if let Some(w) = winner.filter(|w| *w != mate) {
                if let Some(r) = world.gallery.get(w as usize) {
                    let _ = writeln!(e, "    winner {}", row(r));
                }
                let _ = writeln!(e, "    winner: {}", explain(model, eval, k, w as usize));
            }
            example_text.push(e);
        }
    }
    let n_miss: usize = out.misses_01pct.values().sum();
    let mut levels: Vec<LevelShare> = level_miss
        .iter()
        .map(|(k, &m)| LevelShare {
            level: k.clone(),
            misses: m,
            mated: level_all.get(k).copied().unwrap_or(0),
        })
        .collect();
    let over = |l: &LevelShare| {
        l.misses as f64 / n_miss.max(1) as f64 - l.mated as f64 / out.mated.max(1) as f64
    };
    levels.sort_by(|a, b| over(b).total_cmp(&over(a)).then(a.level.cmp(&b.level)));
    levels.truncate(14);
    out.levels = levels;

    // non-mated probes with the best scores: they set the thresholds
    let mut non: Vec<usize> = (0..world.mate.len())
        .filter(|&k| world.mate[k].is_none())
        .collect();
    let w_of = |k: usize| eval.best.get(k).map_or(f64::NEG_INFINITY, |b| b.0);
    non.sort_by(|&a, &b| w_of(b).total_cmp(&w_of(a)).then(a.cmp(&b)));
    let mated_hits: Vec<f64> = world
        .mate
        .iter()
        .enumerate()
        .filter_map(|(k, m)| {
            let mate = (*m)?;
            let (w, top) = eval.best.get(k).copied()?;
            Some(if top == Some(mate) {
                w
            } else {
                f64::NEG_INFINITY
            })
        })
        .collect();
    for (rank, &k) in non.iter().take(12).enumerate() {
        let t = w_of(k);
        let missed = out.mated - mated_hits.iter().filter(|&&w| w > t).count();
        out.det
            .push((t, rank, missed as f64 / out.mated.max(1) as f64));
    }
    for &k in non.iter().take(examples.max(3)) {
        let Some(g) = eval.best.get(k).and_then(|b| b.1) else {
            continue;
        };
        let kind = if world.hard_negative.get(k).copied().unwrap_or(false) {
            "hard negative"
        } else {
            "other non-mated"
        };
        let mut e = String::new();
        let _ = writeln!(e, "best-scoring non-mated probe ({kind}):");
        if let Some(r) = world.probes.get(k) {
            let _ = writeln!(e, "    probe  {}", row(r));
        }
        if let Some(r) = world.gallery.get(g as usize) {
            let _ = writeln!(e, "    best   {}", row(r));
        }
        let _ = writeln!(e, "    best:   {}", explain(model, eval, k, g as usize));
        example_text.push(e);
    }
    let mut hard_shown = 0;
    for &k in &non {
        let is_hard = world.hard_negative.get(k).copied().unwrap_or(false);
        let (w, g) = eval
            .best
            .get(k)
            .copied()
            .unwrap_or((f64::NEG_INFINITY, None));
        let Some(g) = g else { continue };
        if !is_hard || w < 0.0 || hard_shown >= examples {
            continue;
        }
        hard_shown += 1;
        let mut e = String::new();
        let _ = writeln!(e, "hard negative scoring >= 0.5:");
        if let Some(r) = world.probes.get(k) {
            let _ = writeln!(e, "    probe  {}", row(r));
        }
        if let Some(r) = world.gallery.get(g as usize) {
            let _ = writeln!(e, "    best   {}", row(r));
        }
        let _ = writeln!(e, "    best:   {}", explain(model, eval, k, g as usize));
        example_text.push(e);
    }
    out.examples = example_text;
    out
}

impl FailureAnalysis {
    /// The analysis as text for the benchmark's printout.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let n01: usize = self.misses_01pct.values().sum();
        let n1: usize = self.misses_1pct.values().sum();
        let causes = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            s,
            "missed mated probes at FPIR <= 1%: {n1} of {} ({})",
            self.mated,
            causes(&self.misses_1pct)
        );
        let _ = writeln!(
            s,
            "missed mated probes at FPIR <= 0.1%: {n01} of {} ({}); outranked by a gallery namesake of the mate: {}",
            self.mated,
            causes(&self.misses_01pct),
            self.outranked_by_namesake
        );
        let _ = writeln!(
            s,
            "  identifiers between probe and mate in those misses: an identifier agrees {}, only disagreeing {}, none comparable {}",
            self.misses_identifier_agrees, self.misses_identifier_disagrees, self.misses_no_common_identifier
        );
        if !self.misses_by_system.is_empty() {
            let by: Vec<String> = self
                .misses_by_system
                .iter()
                .map(|(k, (m, a))| format!("{k} {m}/{a}"))
                .collect();
            let _ = writeln!(
                s,
                "  misses / mated probes by probe record system: {}",
                by.join(", ")
            );
        }
        let _ = writeln!(
            s,
            "  probe-mate field levels over-represented among the misses (misses with it / all mated with it):"
        );
        for l in &self.levels {
            let _ = writeln!(
                s,
                "    {:<44} {:>5} of {:<5} ({:>5.1}% of misses, {:>5.1}% of mated)",
                l.level,
                l.misses,
                l.mated,
                100.0 * l.misses as f64 / n01.max(1) as f64,
                100.0 * l.mated as f64 / self.mated.max(1) as f64
            );
        }
        let det: Vec<String> = self
            .det
            .iter()
            .map(|(t, n, fnir)| format!("{t:+.2}: {n} / FNIR {fnir:.4}"))
            .collect();
        let _ = writeln!(
            s,
            "  DET at the best non-mated scores (threshold log2-odds: non-mated accepted / FNIR): {}",
            det.join(", ")
        );
        for e in &self.examples {
            s.push_str(e);
        }
        s
    }
}
