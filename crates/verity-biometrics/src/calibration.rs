//! Score calibration and multi-finger fusion.
//!
//! A finger score (see [`crate::matcher`]) is turned into a log-likelihood ratio
//! ln P(score | same finger) / P(score | different fingers) by a binned table fitted on
//! synthetic genuine and impostor comparisons ([`Calibration::fit`]); the table is smoothed
//! (add-half counts) and made monotone (pool-adjacent-violators), and the built-in one is a data
//! file (`data/biometrics/finger_calibration.csv`) produced by
//! `cargo run --release -p verity-biometrics --example fit_calibration`.
//!
//! Fingers are independent given identity (true of the synthetic generator; a fair approximation
//! for real prints), so a ten-print log-likelihood ratio is the sum over the fingers both sides
//! have. [`same_person_probability`] turns that into a probability for a 1:1 comparison given a
//! prior; [`open_set_posteriors`] does it for a 1:N search.

use std::sync::OnceLock;

/// Width of a score bin.
pub const BIN_WIDTH: f32 = 0.02;
/// Number of bins; scores at or above the last bin's start fall in it.
pub const BINS: usize = 50;

const BUILTIN: &str = include_str!("../../../data/biometrics/finger_calibration.csv");

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibrationError {
    #[error("calibration line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error("calibration table has {found} bins; expected {BINS}")]
    BinCount { found: usize },
    #[error("calibration column llr is not non-decreasing at line {line}")]
    NotMonotone { line: usize },
}

/// Per-finger score -> log-likelihood ratio table.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    genuine: Vec<u64>,
    impostor: Vec<u64>,
    llr: Vec<f64>,
}

fn bin_of(score: f32) -> usize {
    if !score.is_finite() || score <= 0.0 {
        return 0;
    }
    ((score / BIN_WIDTH) as usize).min(BINS - 1)
}

impl Calibration {
    /// The table shipped with the crate.
    pub fn builtin() -> &'static Calibration {
        static TABLE: OnceLock<Calibration> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The embedded file is checked by a unit test, so failing here is a build defect.
            Calibration::parse(BUILTIN).expect("embedded finger calibration table is valid")
        })
    }

    /// Fits the table from genuine and impostor finger scores.
    pub fn fit(genuine_scores: &[f32], impostor_scores: &[f32]) -> Self {
        let mut genuine = vec![0u64; BINS];
        let mut impostor = vec![0u64; BINS];
        for &s in genuine_scores {
            genuine[bin_of(s)] += 1;
        }
        for &s in impostor_scores {
            impostor[bin_of(s)] += 1;
        }
        let g_total = genuine.iter().sum::<u64>() as f64 + 0.5 * BINS as f64;
        let i_total = impostor.iter().sum::<u64>() as f64 + 0.5 * BINS as f64;
        let raw: Vec<f64> = (0..BINS)
            .map(|b| {
                let g = (genuine[b] as f64 + 0.5) / g_total;
                let i = (impostor[b] as f64 + 0.5) / i_total;
                (g / i).ln()
            })
            .collect();
        let weights: Vec<f64> = (0..BINS)
            .map(|b| (genuine[b] + impostor[b]) as f64 + 1.0)
            .collect();
        Calibration {
            llr: pool_adjacent_violators(&raw, &weights),
            genuine,
            impostor,
        }
    }

    /// Parses the CSV table: `score_from,genuine,impostor,llr`, `#` comment lines allowed.
    pub fn parse(text: &str) -> Result<Self, CalibrationError> {
        let mut genuine = Vec::with_capacity(BINS);
        let mut impostor = Vec::with_capacity(BINS);
        let mut llr: Vec<f64> = Vec::with_capacity(BINS);
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let row = raw.trim();
            if row.is_empty() || row.starts_with('#') {
                continue;
            }
            if !header_seen {
                if row != "score_from,genuine,impostor,llr" {
                    return Err(CalibrationError::Line {
                        line,
                        problem: format!("header '{row}' is not 'score_from,genuine,impostor,llr'"),
                    });
                }
                header_seen = true;
                continue;
            }
            let cells: Vec<&str> = row.split(',').map(str::trim).collect();
            if cells.len() != 4 {
                return Err(CalibrationError::Line {
                    line,
                    problem: format!("{} columns; expected 4", cells.len()),
                });
            }
            let bad = |col: &str, v: &str| CalibrationError::Line {
                line,
                problem: format!("column {col}: '{v}' is not a number"),
            };
            let _: f32 = cells[0].parse().map_err(|_| bad("score_from", cells[0]))?;
            genuine.push(cells[1].parse().map_err(|_| bad("genuine", cells[1]))?);
            impostor.push(cells[2].parse().map_err(|_| bad("impostor", cells[2]))?);
            let v: f64 = cells[3].parse().map_err(|_| bad("llr", cells[3]))?;
            if !v.is_finite() {
                return Err(bad("llr", cells[3]));
            }
            if llr.last().is_some_and(|&prev| v < prev) {
                return Err(CalibrationError::NotMonotone { line });
            }
            llr.push(v);
        }
        if llr.len() != BINS {
            return Err(CalibrationError::BinCount { found: llr.len() });
        }
        Ok(Calibration {
            genuine,
            impostor,
            llr,
        })
    }

    /// The table as CSV (with a provenance comment).
    pub fn to_csv(&self, provenance: &str) -> String {
        let mut out = String::new();
        for line in provenance.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("score_from,genuine,impostor,llr\n");
        for b in 0..BINS {
            out.push_str(&format!(
                "{:.2},{},{},{:.4}\n",
                b as f32 * BIN_WIDTH,
                self.genuine[b],
                self.impostor[b],
                self.llr[b]
            ));
        }
        out
    }

    /// Log-likelihood ratio of one finger score, interpolated between bin centres.
    pub fn finger_llr(&self, score: f32) -> f64 {
        let pos = if score.is_finite() {
            f64::from(score) / f64::from(BIN_WIDTH) - 0.5
        } else {
            0.0
        };
        if pos <= 0.0 {
            return self.llr[0];
        }
        let lo = (pos.floor() as usize).min(BINS - 1);
        let hi = (lo + 1).min(BINS - 1);
        let t = (pos - lo as f64).clamp(0.0, 1.0);
        self.llr[lo] * (1.0 - t) + self.llr[hi] * t
    }

    /// Fraction of impostor finger comparisons in the fitting data scoring in `score`'s bin or
    /// above: the per-finger false match rate at that threshold.
    pub fn impostor_tail(&self, score: f32) -> f64 {
        let total: u64 = self.impostor.iter().sum();
        if total == 0 {
            return 1.0;
        }
        let tail: u64 = self.impostor[bin_of(score)..].iter().sum();
        tail as f64 / total as f64
    }
}

/// Weighted isotonic (non-decreasing) regression.
fn pool_adjacent_violators(values: &[f64], weights: &[f64]) -> Vec<f64> {
    // Blocks of (mean, weight, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(values.len());
    for (&v, &w) in values.iter().zip(weights) {
        blocks.push((v, w, 1));
        while blocks.len() >= 2 {
            let (m2, w2, n2) = blocks[blocks.len() - 1];
            let (m1, w1, n1) = blocks[blocks.len() - 2];
            if m1 <= m2 {
                break;
            }
            blocks.truncate(blocks.len() - 2);
            blocks.push(((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2));
        }
    }
    blocks
        .iter()
        .flat_map(|&(m, _, n)| std::iter::repeat_n(m, n))
        .collect()
}

/// Probability that two ten-prints come from one person, from their fused log-likelihood ratio
/// and the prior probability of that (0.5 when nothing else is known).
pub fn same_person_probability(llr: f64, prior: f64) -> f64 {
    let prior = prior.clamp(1e-12, 1.0 - 1e-12);
    let log_odds = llr + (prior / (1.0 - prior)).ln();
    1.0 / (1.0 + (-log_odds).exp())
}

/// Open-set 1:N posteriors. With prior 1/2 that the probe is enrolled at all and a uniform
/// prior over the `gallery_size` subjects, the probability that subject s is the probe's mate is
/// exp(llr_s) / (gallery_size + sum over t of exp(llr_t)). Subjects left out of `llrs` (not
/// shortlisted) are taken to contribute nothing to the sum.
pub fn open_set_posteriors(llrs: &[f64], gallery_size: usize) -> Vec<f64> {
    let log_n = (gallery_size.max(1) as f64).ln();
    let peak = llrs.iter().copied().fold(log_n, f64::max);
    let sum = (log_n - peak).exp() + llrs.iter().map(|l| (l - peak).exp()).sum::<f64>();
    let log_denominator = peak + sum.ln();
    llrs.iter().map(|l| (l - log_denominator).exp()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_is_monotone() {
        let c = Calibration::builtin();
        let mut prev = f64::NEG_INFINITY;
        for i in 0..=100 {
            let v = c.finger_llr(i as f32 / 100.0);
            assert!(v >= prev - 1e-12, "llr decreases at {i}");
            prev = v;
        }
        assert!(c.finger_llr(0.05) < 0.0);
        assert!(c.finger_llr(0.7) > 3.0);
    }

    #[test]
    fn fit_round_trips_through_csv() {
        let genuine: Vec<f32> = (0..500).map(|i| 0.3 + (i % 50) as f32 / 100.0).collect();
        let impostor: Vec<f32> = (0..5000).map(|i| (i % 20) as f32 / 100.0).collect();
        let c = Calibration::fit(&genuine, &impostor);
        let again = Calibration::parse(&c.to_csv("test")).expect("own output parses");
        for b in 0..BINS {
            assert!((again.llr[b] - c.llr[b]).abs() < 1e-3);
        }
        assert!(c.finger_llr(0.1) < 0.0 && c.finger_llr(0.6) > 0.0);
        assert!(c.impostor_tail(0.0) == 1.0 && c.impostor_tail(0.25) == 0.0);
    }

    #[test]
    fn parse_errors_name_the_line() {
        let bad = "score_from,genuine,impostor,llr\n0.00,1,2,x\n";
        assert!(matches!(
            Calibration::parse(bad),
            Err(CalibrationError::Line { line: 2, .. })
        ));
        assert!(matches!(
            Calibration::parse("score_from,genuine,impostor,llr\n"),
            Err(CalibrationError::BinCount { found: 0 })
        ));
    }

    #[test]
    fn pava_is_monotone() {
        let v = pool_adjacent_violators(&[1.0, 3.0, 2.0, 0.0, 5.0], &[1.0; 5]);
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn probabilities_behave() {
        assert!((same_person_probability(0.0, 0.5) - 0.5).abs() < 1e-12);
        assert!(same_person_probability(20.0, 0.5) > 0.999);
        let p = open_set_posteriors(&[30.0, -5.0], 1000);
        assert!(p[0] > 0.99 && p[1] < 1e-6);
        let none = open_set_posteriors(&[-10.0], 1000);
        assert!(none[0] < 1e-6);
        let sum: f64 = open_set_posteriors(&[8.0, 8.0, 8.0], 10).iter().sum();
        assert!(sum < 1.0);
    }
}
