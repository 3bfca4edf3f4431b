//! Fellegi–Sunter model: m/u probabilities per comparison level, trained without labels.
//!
//! * u: share of each level among random record pairs (fixed-seed sample);
//! * m and the match rate λ: EM over the comparison vectors of blocked candidate pairs, with u fixed;
//! * term frequencies: exact name agreement on a common value (GARCIA, JOSE) weighs
//!   log2(m / freq(value)) instead of log2(m / u), frequencies taken from the data being linked;
//! * calibration: Platt scaling fitted on labelled synthetic pairs when available, otherwise the
//!   EM prior with clipping;
//! * safety: name + birth date agreement on a common name, with no identifier agreeing, is
//!   softly capped below 0.5 (namesakes are expected in a population of this size).
//!
//! Every score can be explained field by field, and the field weights add up to the total.

use crate::compare::{self, Vector, FIELDS, N_FIELDS};
use crate::record::Prepared;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use verity_model::Identity;

/// File format tag of saved models.
pub const FORMAT: &str = "verity-fs-model/1";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("model file: format '{found}' is not supported (expected '{FORMAT}')")]
    Format { found: String },
    #[error("model file: field '{field}' does not match this version's comparators")]
    Fields { field: String },
    #[error("model file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelParams {
    pub label: String,
    pub m: f64,
    pub u: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldParams {
    pub field: String,
    pub levels: Vec<LevelParams>,
}

/// Relative frequencies of name parts and countries in the data the model was trained on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TermFrequencies {
    pub given: BTreeMap<String, f64>,
    pub family: BTreeMap<String, f64>,
    pub country: BTreeMap<String, f64>,
    /// Frequency assumed for a value never seen in training.
    pub unseen: f64,
}

/// Maps raw Fellegi–Sunter log-odds to calibrated log-odds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    /// EM prior as is; log2-odds clipped to ±max_log2_odds.
    PriorClip { max_log2_odds: f64 },
    /// Platt scaling on natural log-odds x: calibrated = a·x + b, fitted on labelled pairs.
    Platt { a: f64, b: f64, fitted_pairs: usize },
}

/// Policy against joining people on name + birth date alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Safety {
    /// Size of the population a record might come from (namesake expectation).
    pub reference_population: f64,
    /// A name is common when the expected number of others sharing it and the birth date in
    /// the reference population is at least this.
    pub common_name_namesakes: f64,
    /// Probability that name + birth date agreement on a common name can approach but never reach.
    pub cap_probability: f64,
    /// Share of random pairs (both with a birth date) born in the same year; the chance of a
    /// namesake when only the year is known (placeholder or year-only dates).
    #[serde(default = "default_same_year")]
    pub same_year_probability: f64,
}

fn default_same_year() -> f64 {
    1.0 / 60.0
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            reference_population: 3.3e8,
            common_name_namesakes: 0.05,
            cap_probability: 0.4,
            same_year_probability: default_same_year(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    pub seed: u64,
    pub left_records: usize,
    pub right_records: usize,
    pub candidate_pairs: usize,
    pub u_sample_pairs: usize,
    pub em_iterations: usize,
    pub em_converged: bool,
    /// EM's match rate among candidate pairs.
    pub lambda_candidates: f64,
}

/// A trained Fellegi–Sunter model (saved as JSON, `"format": "verity-fs-model/1"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format: String,
    pub fields: Vec<FieldParams>,
    /// Prior log2-odds that two random records match.
    pub prior_log2_odds: f64,
    pub calibration: Calibration,
    pub safety: Safety,
    pub term_frequencies: TermFrequencies,
    pub training: TrainingReport,
    #[serde(skip)]
    cache: Cache,
}

type FastMap = HashMap<String, f64, fnv::FnvBuildHasher>;

#[derive(Debug, Clone, Default, PartialEq)]
struct Cache {
    weights: Vec<Vec<f64>>,
    given: FastMap,
    family: FastMap,
    country: FastMap,
}

/// One field's contribution to a score (log2 units; all fields add up to `match_weight`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldWeight {
    pub field: &'static str,
    pub level: String,
    pub weight: f64,
    pub detail: String,
}

/// A scored pair: calibrated probability, total log2-odds, and the per-field explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub probability: f64,
    pub match_weight: f64,
    pub fields: Vec<FieldWeight>,
}

/// The term frequencies of one record's given name, family name and country of birth under a
/// model ([`Model::record_terms`]): looked up once per record instead of once per pair.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RecordTerms {
    given: f64,
    family: f64,
    country: f64,
}

/// What batch scoring computes once per record instead of once per pair
/// ([`Model::batch_terms`]): the term frequencies, the exact-agreement weight at each of the
/// record's own frequencies (given, family, country) and the best name weights at those
/// frequencies. A pair's term-frequency field takes the larger frequency of its two records,
/// so it takes that record's precomputed values: the very numbers the per-pair path computes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BatchTerms {
    terms: RecordTerms,
    /// Exact-agreement weight at this record's given, family and country frequency.
    exact: [f64; 3],
    /// Best (agreeing, other) weight of the given (row 0) and family (row 1) name at this
    /// record's frequency, without (column 0) and with (column 1) an exact level possible.
    names: [[(f64, f64); 2]; 2],
    /// Whether this record's given name, family name, country of birth is empty.
    empty: [bool; 3],
}

/// Model-wide values of the batch bound ([`Model::batch_constants`]): the best name weights
/// when the left record's given (row 0) or family (row 1) name is empty (no term-frequency
/// adjustment), by whether an exact level is possible, and the middle name's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchConstants {
    names_empty: [[(f64, f64); 2]; 2],
    middle: (f64, f64),
    /// [`Model::non_name_terms`] of every field but the country's, by level.
    terms: [[(f64, f64); 16]; N_FIELDS],
    /// The safety cap in log2-odds.
    cap: f64,
}

/// Packed name shapes for [`Model::batch_bound`]: a hash of the given and family units and
/// the unit counts (given, middle, family). Equal units give equal hashes, so the exact-level
/// tests below can only err towards "possible" (a looser, still valid bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameShape {
    pub given_hash: u64,
    pub family_hash: u64,
    pub lens: [u32; 3],
}

impl NameShape {
    pub fn of(p: &Prepared) -> NameShape {
        let hash = |units: &[String]| {
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for u in units {
                // 0xff never occurs in UTF-8: it separates units
                for &c in u.as_bytes().iter().chain(&[0xff]) {
                    h = (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
            h
        };
        let len = |units: &[String]| u32::try_from(units.len()).unwrap_or(u32::MAX);
        NameShape {
            given_hash: hash(&p.name.given),
            family_hash: hash(&p.name.family),
            lens: [len(&p.name.given), len(&p.name.middle), len(&p.name.family)],
        }
    }

    /// [`given_exact_possible`] from shapes (true whenever that is true).
    fn given_exact_possible(&self, other: &NameShape) -> bool {
        self.given_hash == other.given_hash || self.lens[0] != other.lens[0]
    }

    /// [`family_exact_possible`] from shapes (true whenever that is true).
    fn family_exact_possible(&self, other: &NameShape) -> bool {
        let may_move = |x: &NameShape, y: &NameShape| {
            x.lens[1] != 0
                && y.lens[1] == 0
                && u64::from(y.lens[2]) == u64::from(x.lens[1]) + u64::from(x.lens[2])
        };
        self.family_hash == other.family_hash || may_move(self, other) || may_move(other, self)
    }
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub seed: u64,
    pub u_sample_pairs: usize,
    /// Of the random pairs, how many also get the (costly) name alignment; name fields' u come
    /// from these, every other field's u from all `u_sample_pairs`.
    pub u_name_sample_pairs: usize,
    pub max_em_iterations: usize,
    /// Candidate pairs used by EM at most (an evenly spaced subset beyond this).
    pub max_em_pairs: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 1,
            u_sample_pairs: 150_000,
            u_name_sample_pairs: 10_000,
            max_em_iterations: 30,
            max_em_pairs: 20_000,
        }
    }
}

fn log2_odds_to_p(w: f64) -> f64 {
    1.0 / (1.0 + (-w * std::f64::consts::LN_2).exp())
}

fn p_to_log2_odds(p: f64) -> f64 {
    (p / (1.0 - p)).log2()
}

/// Softly caps `w` below `cap` (monotone, so rankings survive): cap − log2(1 + 2^(cap − w)).
fn soft_cap(w: f64, cap: f64) -> f64 {
    let d = cap - w;
    // log2(1 + 2^d) computed stably
    let sp = if d > 30.0 { d } else { (1.0 + d.exp2()).log2() };
    cap - sp
}

fn frequencies<'a>(values: impl Iterator<Item = &'a str>) -> (BTreeMap<String, f64>, usize) {
    // counted under borrowed keys; only distinct values are copied
    let mut counts: HashMap<&str, u64, fnv::FnvBuildHasher> = HashMap::default();
    let mut total = 0usize;
    for v in values.filter(|v| !v.is_empty()) {
        *counts.entry(v).or_default() += 1;
        total += 1;
    }
    let t = total.max(1) as f64;
    (
        counts
            .into_iter()
            .map(|(k, c)| (k.to_string(), c as f64 / t))
            .collect(),
        total,
    )
}

#[derive(Clone, Copy, PartialEq)]
enum TfKind {
    None,
    Full,
    Bounded,
    AtMostCommon,
}

const fn label_in(label: &str, set: &[&str]) -> bool {
    let mut i = 0;
    while i < set.len() {
        if str_eq(label, set[i]) {
            return true;
        }
        i += 1;
    }
    false
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// How term frequencies adjust each (field, level): by label, computed at compile time.
const TF_KIND: [[TfKind; 16]; N_FIELDS] = {
    let mut t = [[TfKind::None; 16]; N_FIELDS];
    let tf_fields = [compare::GIVEN, compare::FAMILY, compare::COUNTRY];
    let mut k = 0;
    while k < tf_fields.len() {
        let f = tf_fields[k];
        let levels = FIELDS[f].levels;
        let mut l = 1;
        while l < levels.len() {
            let label = levels[l];
            t[f][l] = if f == compare::COUNTRY && str_eq(label, "agree") {
                TfKind::Bounded
            } else if label_in(label, &["exact", "agree"]) {
                TfKind::Full
            } else if label_in(label, &["equivalent", "phonetic", "fuzzy", "swapped"]) {
                TfKind::AtMostCommon
            } else {
                TfKind::None
            };
            l += 1;
        }
        k += 1;
    }
    t
};

/// Levels at which given (row 0) and family (row 1) names count as agreeing: every level
/// but null and "disagree". An initial or one given name of several agrees too, so J. GARCIA
/// or MARIA GARCIA for MARIA JOSE GARCIA stays under the common-name cap: no identifier either.
const NAME_AGREES: [[bool; 16]; 2] = {
    let mut t = [[false; 16]; 2];
    let not_agreeing = [compare::NULL, "disagree"];
    let mut row = 0;
    while row < 2 {
        let levels = FIELDS[[compare::GIVEN, compare::FAMILY][row]].levels;
        let mut l = 0;
        while l < levels.len() {
            t[row][l] = !label_in(levels[l], &not_agreeing);
            l += 1;
        }
        row += 1;
    }
    t
};

/// How likely a namesake's birth date agrees at a birth-date level by chance.
#[derive(Clone, Copy)]
enum Coincidence {
    /// Null or mismatch: any date would do.
    Any,
    /// Placeholder or year only: born the same year.
    SameYear,
    /// Otherwise the level's own u, scaled up by how much rarer the level is than an exact
    /// date among true matches (m_exact / m_level): a weaker date agreement is weaker evidence
    /// against a namesake, so fewer namesakes suffice to make the name common.
    LevelU,
}

/// [`Coincidence`] of each birth-date level, by label, computed at compile time.
const DOB_COINCIDENCE: [Coincidence; 16] = {
    let mut t = [Coincidence::Any; 16];
    let levels = FIELDS[compare::DOB].levels;
    let mut l = 0;
    while l < levels.len() {
        t[l] = if label_in(levels[l], &["null", "mismatch"]) {
            Coincidence::Any
        } else if label_in(levels[l], &["exact_placeholder", "year_only_same_year"]) {
            Coincidence::SameYear
        } else {
            Coincidence::LevelU
        };
        l += 1;
    }
    t
};

/// Levels at which an identifier field agrees (exact or one typo).
const ID_AGREES: [[bool; 16]; N_FIELDS] = {
    let mut t = [[false; 16]; N_FIELDS];
    let mut k = 0;
    while k < compare::IDENTIFIER_FIELDS.len() {
        let f = compare::IDENTIFIER_FIELDS[k];
        let mut l = 0;
        while l < FIELDS[f].levels.len() {
            t[f][l] = label_in(FIELDS[f].levels[l], &["exact", "one_typo"]);
            l += 1;
        }
        k += 1;
    }
    t
};

/// Whether the name alignment could call the given names "exact": only when the given units
/// are equal, or when the sides hold different numbers of given units (the alignment may then
/// move units between given and middle). Level 1 is "exact" for every name field.
fn given_exact_possible(a: &Prepared, b: &Prepared) -> bool {
    a.name.given == b.name.given || a.name.given.len() != b.name.given.len()
}

/// As [`given_exact_possible`] for family names: the alignment may move one side's middle
/// units into its family part when the other side has no middle name.
fn family_exact_possible(a: &Prepared, b: &Prepared) -> bool {
    let may_move = |x: &Prepared, y: &Prepared| {
        !x.name.middle.is_empty()
            && y.name.middle.is_empty()
            && y.name.family.len() == x.name.middle.len() + x.name.family.len()
    };
    a.name.family == b.name.family || may_move(a, b) || may_move(b, a)
}

/// Indices of candidate pairs: (left index, right index). In dedupe both index one list.
pub type Pair = (u32, u32);

/// The name fields' levels (given, middle, family, as [`compare::name_levels`] gives them) of
/// the pair (left index, other index): lets batch callers compare names in a prepared form.
pub type NameLevelsFn<'a> = dyn Fn(u32, u32) -> [u8; 3] + Sync + 'a;

/// The full comparison vector from the cheap fields and the name levels.
fn with_names(mut v: Vector, names: [u8; 3]) -> Vector {
    v[compare::GIVEN] = names[0];
    v[compare::MIDDLE] = names[1];
    v[compare::FAMILY] = names[2];
    v
}

impl Model {
    /// Trains on `left` (dedupe) or `left` × `right` (link) over the given candidate pairs.
    /// Deterministic for the same inputs and seed.
    pub fn train(
        left: &[Prepared],
        right: Option<&[Prepared]>,
        pairs: &[Pair],
        opts: &TrainOptions,
    ) -> Model {
        // names interned once: each pair's name levels then cost id comparisons (same levels)
        let prepared = crate::link::PreparedNames::new(left, right);
        let names = |i: u32, j: u32| prepared.levels(i, j);
        Self::train_with_names(left, right, pairs, opts, &names)
    }

    /// [`Model::train`] with the name levels of a pair (left index, other index) given by
    /// `names`, which must return what [`compare::name_levels`] returns for those records (the
    /// model is then the same).
    pub fn train_with_names(
        left: &[Prepared],
        right: Option<&[Prepared]>,
        pairs: &[Pair],
        opts: &TrainOptions,
        names: &NameLevelsFn<'_>,
    ) -> Model {
        let left_cheap = compare::cheap_fields_all(left);
        let right_cheap = right.map(compare::cheap_fields_all);
        Self::train_with_cheap(
            left,
            right,
            pairs,
            opts,
            names,
            &left_cheap,
            right_cheap.as_deref(),
        )
    }

    /// [`Model::train_with_names`] with the records' [`compare::CheapFields`] computed by the
    /// caller (`left_cheap[i]` of `left[i]`, `right_cheap` likewise), so that a run computes
    /// them once for training and scoring; the model is the same. Cheap fields of the wrong
    /// length are recomputed.
    pub fn train_with_cheap(
        left: &[Prepared],
        right: Option<&[Prepared]>,
        pairs: &[Pair],
        opts: &TrainOptions,
        names: &NameLevelsFn<'_>,
        left_cheap: &[compare::CheapFields],
        right_cheap: Option<&[compare::CheapFields]>,
    ) -> Model {
        if left_cheap.len() != left.len()
            || right.map(<[Prepared]>::len) != right_cheap.map(<[compare::CheapFields]>::len)
        {
            return Self::train_with_names(left, right, pairs, opts, names);
        }
        let other = right.unwrap_or(left);
        // term frequencies are counted while the u sample is drawn (on another core)
        let term_frequencies = || {
            let all = || left.iter().chain(right.unwrap_or(&[]).iter());
            let (given, n_given) = frequencies(all().map(|p| p.given.as_str()));
            let (family, n_family) = frequencies(all().map(|p| p.family.as_str()));
            let (country, _) = frequencies(all().map(|p| p.country_of_birth.as_str()));
            let unseen = 1.0 / (n_given.max(n_family).max(1) as f64 + 1.0);
            TermFrequencies {
                given,
                family,
                country,
                unseen,
            }
        };

        // u from random pairs
        let total_pairs = match right {
            Some(r) => left.len() as f64 * r.len() as f64,
            None => left.len() as f64 * (left.len().saturating_sub(1)) as f64 / 2.0,
        };
        let mut u_counts = vec![vec![0f64; 0]; N_FIELDS];
        for (f, c) in u_counts.iter_mut().enumerate() {
            *c = vec![0.0; FIELDS[f].levels.len()];
        }
        // random pairs in a fixed number of chunks, each with its own seed, so the sample does
        // not depend on how many threads run it
        const CHUNKS: usize = 8;
        // the cheap fields packed once per record: random pairs touch two small blocks
        let other_cheap = right_cheap.unwrap_or(left_cheap);
        let cheap_vector = |i: usize, j: usize| -> Vector {
            compare::vector_without_names_packed(
                &left_cheap[i],
                &other_cheap[j],
                &left[i],
                &other[j],
            )
        };
        let mut sampled = 0usize;
        let (mut dob_pairs, mut same_year) = (0usize, 0usize);
        let ((), tf) = rayon::join(
            || {
                if !left.is_empty() && !other.is_empty() && (right.is_some() || left.len() > 1) {
                    let n = opts.u_sample_pairs.min(total_pairs as usize).max(1);
                    let per_chunk = n.div_ceil(CHUNKS);
                    let per_chunk_names = opts.u_name_sample_pairs.min(n).div_ceil(CHUNKS);
                    let results: Vec<(Vec<Vec<f64>>, usize, usize, usize)> =
                        parallel_map(CHUNKS, |k| {
                            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                                opts.seed.wrapping_mul(1_000_003).wrapping_add(k as u64),
                            );
                            let mut counts: Vec<Vec<f64>> =
                                FIELDS.iter().map(|d| vec![0.0; d.levels.len()]).collect();
                            let (mut done, mut attempts, mut dp, mut sy) =
                                (0usize, 0usize, 0usize, 0usize);
                            // draw the pairs first (the first `per_chunk_names` drawn get their names
                            // compared), then visit them in record order: the counts do not depend on the
                            // order, and neighbouring pairs share a record in the cache
                            let mut drawn: Vec<(u32, u32, bool)> = Vec::with_capacity(per_chunk);
                            while done < per_chunk && attempts < per_chunk * 4 {
                                attempts += 1;
                                let i = rng.gen_range(0..left.len());
                                let j = rng.gen_range(0..other.len());
                                if right.is_none() && i == j {
                                    continue;
                                }
                                drawn.push((i as u32, j as u32, done < per_chunk_names));
                                done += 1;
                            }
                            drawn.sort_unstable();
                            for &(i, j, with_name) in &drawn {
                                let (i, j) = (i as usize, j as usize);
                                let v = if with_name {
                                    with_names(cheap_vector(i, j), names(i as u32, j as u32))
                                } else {
                                    cheap_vector(i, j)
                                };
                                if let (Some(x), Some(y)) = (left_cheap[i].dob, other_cheap[j].dob)
                                {
                                    dp += 1;
                                    sy += usize::from(x.year == y.year);
                                }
                                for f in 0..N_FIELDS {
                                    counts[f][v[f] as usize] += 1.0;
                                }
                            }
                            (counts, done, dp, sy)
                        });
                    for (counts, done, dp, sy) in results {
                        for f in 0..N_FIELDS {
                            for (l, c) in counts[f].iter().enumerate() {
                                u_counts[f][l] += c;
                            }
                        }
                        sampled += done;
                        dob_pairs += dp;
                        same_year += sy;
                    }
                }
            },
            term_frequencies,
        );
        let mut fields: Vec<FieldParams> = (0..N_FIELDS)
            .map(|f| {
                let def = &FIELDS[f];
                let counts = &u_counts[f];
                let non_null: f64 = counts[1..].iter().sum();
                let k = (def.levels.len() - 1) as f64;
                let levels = def
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(l, label)| {
                        // small pseudo-count keeps never-seen agreement levels finite
                        let u = if l == 0 {
                            1.0
                        } else {
                            (counts[l] + 0.5) / (non_null + 0.5 * k)
                        };
                        LevelParams {
                            label: (*label).to_string(),
                            m: def.initial_m[l],
                            u,
                        }
                    })
                    .collect();
                FieldParams {
                    field: def.name.to_string(),
                    levels,
                }
            })
            .collect();

        // EM over unique comparison vectors, in sessions as Splink does: fields that select the
        // pairs of a session are biased in it, so each session trains only the other fields.
        // EM needs the distribution of comparison vectors, not every pair: beyond
        // `max_em_pairs` an evenly spaced subset is used
        let stride = pairs.len().div_ceil(opts.max_em_pairs.max(1)).max(1);
        let em_pairs: Vec<Pair> = pairs.iter().step_by(stride).copied().collect();
        let chunk = em_pairs.len().div_ceil(8).max(1);
        let partial: Vec<BTreeMap<Vector, f64>> =
            parallel_map(em_pairs.len().div_ceil(chunk), |k| {
                let mut m: BTreeMap<Vector, f64> = BTreeMap::new();
                for &(i, j) in em_pairs.iter().skip(k * chunk).take(chunk) {
                    if (i as usize) < left.len() && (j as usize) < other.len() {
                        let v = with_names(cheap_vector(i as usize, j as usize), names(i, j));
                        *m.entry(v).or_default() += 1.0;
                    }
                }
                m
            });
        let mut all: BTreeMap<Vector, f64> = BTreeMap::new();
        for m in partial {
            for (v, c) in m {
                // counts are whole numbers: the sum is exact in any order
                *all.entry(v).or_default() += c;
            }
        }
        let is_name = |f: usize| matches!(f, compare::GIVEN | compare::MIDDLE | compare::FAMILY);
        let exact = |v: &Vector, f: usize| FIELDS[f].levels[v[f] as usize] == "exact";
        let subset = |keep: &dyn Fn(&Vector) -> bool| -> BTreeMap<Vector, f64> {
            all.iter()
                .filter(|(v, _)| keep(v))
                .map(|(v, c)| (*v, *c))
                .collect()
        };
        // session 1: same given and family name -> birth date, sex, country, identifiers, address
        let by_name = subset(&|v| exact(v, compare::GIVEN) && exact(v, compare::FAMILY));
        // sex and country of birth follow from the name (JOSE is male, GARCIA often MX), so
        // they cannot tell namesakes from matches here: leave them out of this session
        let mask1: Vec<bool> = (0..N_FIELDS)
            .map(|f| !is_name(f) && f != compare::SEX && f != compare::COUNTRY)
            .collect();
        let (it1, c1, _) = em(
            &mut fields,
            &by_name,
            opts.max_em_iterations,
            0.999,
            &mask1,
            &mask1,
        );
        // session 2: same full birth date -> names
        let by_dob = subset(&|v| exact(v, compare::DOB));
        let mask2: Vec<bool> = (0..N_FIELDS).map(is_name).collect();
        let (it2, c2, _) = em(
            &mut fields,
            &by_dob,
            opts.max_em_iterations,
            0.999,
            &mask2,
            &mask2,
        );
        // match rate over all candidates with every m fixed
        let max_matches = match right {
            Some(r) => left.len().min(r.len()),
            None => left.len(),
        } as f64;
        // in a link each record has at most one true match, which bounds the match rate
        let lambda_cap = (max_matches / pairs.len().max(1) as f64).clamp(1e-6, 0.999);
        let every = vec![true; N_FIELDS];
        let none = vec![false; N_FIELDS];
        let (it3, c3, lambda) = em(
            &mut fields,
            &all,
            opts.max_em_iterations,
            lambda_cap,
            &every,
            &none,
        );
        let (iterations, converged) = (it1 + it2 + it3, c1 && c2 && c3);
        let lambda_random = if total_pairs > 0.0 {
            (lambda * pairs.len() as f64 / total_pairs).clamp(1e-12, 0.5)
        } else {
            0.5
        };
        let mut model = Model {
            format: FORMAT.to_string(),
            fields,
            prior_log2_odds: p_to_log2_odds(lambda_random),
            calibration: Calibration::PriorClip {
                max_log2_odds: 20.0,
            },
            safety: Safety {
                same_year_probability: if dob_pairs >= 100 {
                    (same_year as f64 + 1.0) / (dob_pairs as f64 + 1.0)
                } else {
                    default_same_year()
                },
                ..Safety::default()
            },
            term_frequencies: tf,
            training: TrainingReport {
                seed: opts.seed,
                left_records: left.len(),
                right_records: right.map_or(0, <[Prepared]>::len),
                candidate_pairs: pairs.len(),
                u_sample_pairs: sampled,
                em_iterations: iterations,
                em_converged: converged,
                lambda_candidates: lambda,
            },
            cache: Cache::default(),
        };
        model.rebuild_cache();
        model
    }

    fn rebuild_cache(&mut self) {
        self.cache.weights = self
            .fields
            .iter()
            .enumerate()
            .map(|(f, fp)| {
                fp.levels
                    .iter()
                    .enumerate()
                    .map(|(l, lp)| {
                        if l == 0
                            || FIELDS
                                .get(f)
                                .is_some_and(|d| d.neutral.contains(&lp.label.as_str()))
                        {
                            0.0
                        } else {
                            (lp.m.max(1e-12) / lp.u.max(1e-12)).log2()
                        }
                    })
                    .collect()
            })
            .collect();
        let tf = &self.term_frequencies;
        self.cache.given = tf.given.iter().map(|(k, v)| (k.clone(), *v)).collect();
        self.cache.family = tf.family.iter().map(|(k, v)| (k.clone(), *v)).collect();
        self.cache.country = tf.country.iter().map(|(k, v)| (k.clone(), *v)).collect();
    }

    pub fn to_json(&self) -> String {
        // serialization of plain data cannot fail; fall back to an empty object defensively
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string())
    }

    pub fn from_json(text: &str) -> Result<Model, ModelError> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let found = v
            .get("format")
            .and_then(|f| f.as_str())
            .unwrap_or("")
            .to_string();
        if found != FORMAT {
            return Err(ModelError::Format { found });
        }
        let mut m: Model = serde_json::from_value(v)?;
        if m.fields.len() != N_FIELDS {
            return Err(ModelError::Fields {
                field: format!("{} fields", m.fields.len()),
            });
        }
        for (fp, def) in m.fields.iter().zip(FIELDS.iter()) {
            let same = fp.field == def.name
                && fp.levels.len() == def.levels.len()
                && fp.levels.iter().zip(def.levels).all(|(l, d)| l.label == *d);
            if !same {
                return Err(ModelError::Fields {
                    field: fp.field.clone(),
                });
            }
        }
        m.rebuild_cache();
        Ok(m)
    }

    pub fn save(&self, path: &std::path::Path) -> Result<(), ModelError> {
        std::fs::write(path, self.to_json()).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    pub fn load(path: &std::path::Path) -> Result<Model, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    fn weight(&self, f: usize, level: u8) -> f64 {
        self.cache
            .weights
            .get(f)
            .and_then(|w| w.get(level as usize))
            .copied()
            .unwrap_or(0.0)
    }

    fn freq(map: &FastMap, v: &str, unseen: f64) -> f64 {
        map.get(v).copied().unwrap_or(unseen).max(1e-12)
    }

    /// The term frequencies of a record's values (see [`RecordTerms`]).
    pub fn record_terms(&self, p: &Prepared) -> RecordTerms {
        let u = self.term_frequencies.unseen;
        let mut given = Self::freq(&self.cache.given, &p.given, u);
        let mut family = Self::freq(&self.cache.family, &p.family, u);
        // a name filed family-first (KIM | HYUN WOO) is as common as its other reading: the
        // more common reading decides, so that the order of the fields cannot make it rare
        if !p.given.is_empty() && !p.family.is_empty() {
            let given_as_family = Self::freq(&self.cache.family, &p.given, u);
            let family_as_given = Self::freq(&self.cache.given, &p.family, u);
            if given_as_family * family_as_given > given * family {
                (given, family) = (given_as_family, family_as_given);
            }
        }
        RecordTerms {
            given,
            family,
            country: Self::freq(&self.cache.country, &p.country_of_birth, u),
        }
    }

    /// The larger frequency of a term-frequency field's values on both sides.
    fn pair_frequency(f: usize, ta: &RecordTerms, tb: &RecordTerms) -> f64 {
        match f {
            compare::GIVEN => ta.given.max(tb.given),
            compare::FAMILY => ta.family.max(tb.family),
            _ => ta.country.max(tb.country),
        }
    }

    /// Weight of an exact agreement on a value of frequency `fa` (the larger of both sides).
    fn tf_exact_weight(&self, f: usize, fa: f64) -> f64 {
        match self.fields.get(f).and_then(|fp| fp.levels.get(1)) {
            Some(exact) => (exact.m.max(1e-12) / fa).log2(),
            None => f64::NAN,
        }
    }

    /// [`Self::tf_adjustment`] once the exact-agreement weight of the value is known.
    fn tf_adjustment_with(&self, f: usize, level: u8, tf_exact_weight: f64) -> f64 {
        if tf_exact_weight.is_nan() {
            return 0.0;
        }
        let base = self.weight(f, level);
        match TF_KIND[f][level as usize] {
            // a rare country says little more than a common one: bound its adjustment
            TfKind::Bounded => (tf_exact_weight - base).clamp(-1.0, 1.0),
            TfKind::Full => tf_exact_weight - base,
            // variants of a common name are no stronger than the common name itself
            TfKind::AtMostCommon => (tf_exact_weight - base).min(0.0),
            TfKind::None => 0.0,
        }
    }

    fn names_agree(v: &Vector) -> bool {
        NAME_AGREES[0][v[compare::GIVEN] as usize & 15]
            && NAME_AGREES[1][v[compare::FAMILY] as usize & 15]
    }

    /// Names that agree only across each other (given/family order swap) and a birth date
    /// that agrees only with day and month swapped: two transpositions and nothing else.
    fn transpositions_only(v: &Vector) -> bool {
        v[compare::GIVEN] == const { compare::lvl(compare::GIVEN, "swapped") }
            && v[compare::DOB] == const { compare::lvl(compare::DOB, "day_month_swap") }
    }

    fn identifier_agrees(v: &Vector) -> bool {
        compare::IDENTIFIER_FIELDS
            .iter()
            .any(|&f| ID_AGREES[f][v[f] as usize & 15])
    }

    /// Expected number of other people in the reference population who share the given and
    /// family name and whose birth date agrees with this pair's at the observed level
    /// (exact, a typo away, same year when only the year is known, anything on mismatch).
    fn expected_namesakes(&self, ta: &RecordTerms, tb: &RecordTerms, dob_level: u8) -> f64 {
        let fg = ta.given.max(tb.given);
        let ff = ta.family.max(tb.family);
        let coincidence = match DOB_COINCIDENCE
            .get(dob_level as usize)
            .copied()
            .unwrap_or(Coincidence::Any)
        {
            Coincidence::Any => 1.0,
            Coincidence::SameYear => self.safety.same_year_probability,
            Coincidence::LevelU => {
                let levels = self.fields.get(compare::DOB).map(|f| f.levels.as_slice());
                let level = levels.and_then(|l| l.get(dob_level as usize));
                let exact_m = levels.and_then(|l| l.get(1)).map_or(1.0, |l| l.m);
                level.map_or(1.0, |l| {
                    (l.u * (exact_m / l.m.max(1e-12)).max(1.0)).min(1.0)
                })
            }
        };
        self.safety.reference_population * fg * ff * coincidence
    }

    fn calibrate(&self, raw_log2: f64) -> f64 {
        match &self.calibration {
            Calibration::PriorClip { max_log2_odds } => {
                raw_log2.clamp(-max_log2_odds, *max_log2_odds)
            }
            Calibration::Platt { a, b, .. } => {
                (a * raw_log2 * std::f64::consts::LN_2 + b) / std::f64::consts::LN_2
            }
        }
    }

    /// Raw (uncalibrated) log2-odds of a pair: prior + field weights with term frequencies.
    pub fn raw_weight(&self, a: &Prepared, b: &Prepared) -> f64 {
        self.evaluate(a, b, false).0
    }

    /// Calibrated match probability (fast path, no explanation).
    pub fn probability(&self, a: &Prepared, b: &Prepared) -> f64 {
        log2_odds_to_p(self.evaluate(a, b, false).1)
    }

    fn evaluate(&self, a: &Prepared, b: &Prepared, explain: bool) -> (f64, f64, Vec<FieldWeight>) {
        let (v, swapped) = if explain {
            let (v, n) = compare::compare(a, b);
            (v, n.swapped)
        } else {
            (compare::vector(a, b), false)
        };
        let (ta, tb) = (self.record_terms(a), self.record_terms(b));
        self.evaluate_vector(a, b, &ta, &tb, &v, swapped, explain)
    }

    /// Final log2-odds of a pair whose comparison vector is already known.
    pub fn final_weight_of(&self, a: &Prepared, b: &Prepared, v: &Vector) -> f64 {
        let (ta, tb) = (self.record_terms(a), self.record_terms(b));
        self.final_weight_with_terms(a, b, &ta, &tb, v)
    }

    /// [`Self::final_weight_of`] with both records' [`RecordTerms`] looked up in advance.
    pub fn final_weight_with_terms(
        &self,
        a: &Prepared,
        b: &Prepared,
        ta: &RecordTerms,
        tb: &RecordTerms,
        v: &Vector,
    ) -> f64 {
        self.evaluate_vector(a, b, ta, tb, v, false, false).1
    }

    /// An upper bound on [`Self::final_weight`] of a pair from its cheap fields alone (`v` from
    /// [`compare::vector_without_names`]): each name field counts at its best possible level.
    /// Calibration is monotone and the safety cap only lowers, so the bound holds after both.
    /// Batch scoring skips the name alignment of pairs whose bound cannot reach the output.
    pub fn final_weight_bound(&self, a: &Prepared, b: &Prepared, v: &Vector) -> f64 {
        let (ta, tb) = (self.record_terms(a), self.record_terms(b));
        self.bound_with_terms(a, b, &ta, &tb, v)
    }

    /// [`Self::final_weight_bound`] with both records' [`RecordTerms`] looked up in advance.
    pub fn bound_with_terms(
        &self,
        a: &Prepared,
        b: &Prepared,
        ta: &RecordTerms,
        tb: &RecordTerms,
        v: &Vector,
    ) -> f64 {
        if let Calibration::Platt { a: slope, .. } = self.calibration {
            if slope.is_nan() || slope <= 0.0 {
                return f64::INFINITY;
            }
        }
        // best weight of each name field (given, middle, family) over the levels at which the
        // names count as agreeing and over the others (null included, weight 0)
        let mut agreeing = [f64::NEG_INFINITY; 3];
        let mut other = [0.0f64; 3];
        for (k, f) in [compare::GIVEN, compare::MIDDLE, compare::FAMILY]
            .into_iter()
            .enumerate()
        {
            let left_empty = match f {
                compare::GIVEN => a.given.is_empty(),
                compare::FAMILY => a.family.is_empty(),
                _ => true,
            };
            let exact_possible = match f {
                compare::GIVEN => given_exact_possible(a, b),
                compare::FAMILY => family_exact_possible(a, b),
                _ => true,
            };
            // no term-frequency adjustment for the middle name or an empty left value
            let exact_weight = if left_empty {
                f64::NAN
            } else {
                self.tf_exact_weight(f, Self::pair_frequency(f, ta, tb))
            };
            (agreeing[k], other[k]) = self.name_field_bound(f, exact_weight, exact_possible);
        }
        let country_exact = if a.country_of_birth.is_empty() {
            f64::NAN
        } else {
            self.tf_exact_weight(
                compare::COUNTRY,
                Self::pair_frequency(compare::COUNTRY, ta, tb),
            )
        };
        let terms = |f: usize, level: u8| self.non_name_terms(f, level, country_exact);
        let cap = p_to_log2_odds(self.safety.cap_probability);
        self.bound_from_names(agreeing, other, v, terms, cap, ta, tb)
    }

    /// A non-name field's weight in the bound: (as counted when the names do not agree, as
    /// counted when they do); `country_exact` as in [`Self::bound_from_names`].
    fn non_name_terms(&self, f: usize, level: u8, country_exact: f64) -> (f64, f64) {
        let exact = if f == compare::COUNTRY {
            country_exact
        } else {
            f64::NAN
        };
        let (base, tf, _) = self.field_term_exact(f, level, exact, false);
        let full = base + tf;
        // only sex and country of birth weigh differently when the names agree
        let agree = if matches!(f, compare::SEX | compare::COUNTRY) {
            let (base, tf, _) = self.field_term_exact(f, level, exact, true);
            base + tf
        } else {
            full
        };
        (full, agree)
    }

    /// The best weight of name field `f` over the levels at which the names count as agreeing
    /// and over the others (null included, weight 0), with the exact-agreement weight of the
    /// pair's value (NaN: no term-frequency adjustment); level "exact" only when possible.
    fn name_field_bound(&self, f: usize, exact_weight: f64, exact_possible: bool) -> (f64, f64) {
        self.name_field_bounds(f, exact_weight)[usize::from(exact_possible)]
    }

    /// [`Self::name_field_bound`] without (0) and with (1) the exact level possible, in one
    /// pass over the levels (each maximum taken in the same order: the same numbers).
    fn name_field_bounds(&self, f: usize, exact_weight: f64) -> [(f64, f64); 2] {
        let mut out = [(f64::NEG_INFINITY, 0.0f64); 2];
        for l in 1..FIELDS[f].levels.len() as u8 {
            let w = self.weight(f, l) + self.tf_adjustment_with(f, l, exact_weight);
            let agrees = match f {
                compare::GIVEN => NAME_AGREES[0][l as usize],
                compare::FAMILY => NAME_AGREES[1][l as usize],
                _ => false,
            };
            for (possible, (agreeing, other)) in out.iter_mut().enumerate() {
                if possible == 0 && l == 1 {
                    continue;
                }
                if agrees {
                    *agreeing = agreeing.max(w);
                } else {
                    *other = other.max(w);
                }
            }
        }
        out
    }

    /// The bound once the name fields' best weights are known (see [`Self::bound_with_terms`]);
    /// `terms(f, level)` is [`Self::non_name_terms`] of a non-name field (the country's with
    /// the pair's exact-agreement weight, NaN: no adjustment) and `cap` the safety cap in
    /// log2-odds.
    #[allow(clippy::too_many_arguments)]
    fn bound_from_names(
        &self,
        agreeing: [f64; 3],
        other: [f64; 3],
        v: &Vector,
        terms: impl Fn(usize, u8) -> (f64, f64),
        cap: f64,
        ta: &RecordTerms,
        tb: &RecordTerms,
    ) -> f64 {
        let any = |k: usize| agreeing[k].max(other[k]);
        // three cases cover every outcome of the name alignment: the names agree (sex and
        // country then count as mostly implied, and the safety cap may apply), the given
        // names do not, the family names do not. Each sum runs in the order of
        // `evaluate_vector`, so rounding cannot lift the exact weight above its case's bound.
        let mut agree_raw = self.prior_log2_odds + agreeing[0] + any(1) + agreeing[2];
        let mut given_off_raw = self.prior_log2_odds + other[0] + any(1) + any(2);
        let mut family_off_raw = self.prior_log2_odds + any(0) + any(1) + other[2];
        for (f, &level) in v.iter().enumerate().skip(compare::FAMILY + 1) {
            let (full, agree_part) = terms(f, level);
            agree_raw += agree_part;
            given_off_raw += full;
            family_off_raw += full;
        }
        let mut agree = self.calibrate(agree_raw);
        if agree_raw.is_finite() && !Self::identifier_agrees(v) {
            let namesakes = self.expected_namesakes(ta, tb, v[compare::DOB]);
            // the name levels are not known here: the transposition rule (which needs a
            // swapped name) is left out, so the bound only gets looser
            if namesakes >= self.safety.common_name_namesakes {
                // a hair above the cap: the soft cap's two branches meet within 1e-9
                agree = soft_cap(agree, cap) + 1e-6;
            }
        }
        agree
            .max(self.calibrate(given_off_raw))
            .max(self.calibrate(family_off_raw))
    }

    /// A record's [`BatchTerms`] under this model (its [`RecordTerms`] and what follows from
    /// them alone), computed once per record by batch scoring.
    pub fn batch_terms(&self, p: &Prepared) -> BatchTerms {
        let terms = self.record_terms(p);
        let exact = [
            self.tf_exact_weight(compare::GIVEN, terms.given),
            self.tf_exact_weight(compare::FAMILY, terms.family),
            self.tf_exact_weight(compare::COUNTRY, terms.country),
        ];
        let names = [(0, compare::GIVEN), (1, compare::FAMILY)]
            .map(|(k, f)| self.name_field_bounds(f, exact[k]));
        BatchTerms {
            terms,
            exact,
            names,
            empty: [
                p.given.is_empty(),
                p.family.is_empty(),
                p.country_of_birth.is_empty(),
            ],
        }
    }

    /// The model-wide values of [`Self::batch_bound`] (compute once per scoring run).
    pub fn batch_constants(&self) -> BatchConstants {
        let names_empty =
            [compare::GIVEN, compare::FAMILY].map(|f| self.name_field_bounds(f, f64::NAN));
        let mut terms = [[(0.0, 0.0); 16]; N_FIELDS];
        for (f, row) in terms.iter_mut().enumerate() {
            for (l, t) in row.iter_mut().enumerate().take(FIELDS[f].levels.len()) {
                *t = self.non_name_terms(f, l as u8, f64::NAN);
            }
        }
        BatchConstants {
            names_empty,
            middle: self.name_field_bound(compare::MIDDLE, f64::NAN, true),
            terms,
            cap: p_to_log2_odds(self.safety.cap_probability),
        }
    }

    /// The exact-agreement weights (given, family, country) of a pair from its records'
    /// [`BatchTerms`]: the record with the larger frequency supplies it (as
    /// [`Self::pair_frequency`] picks it); NaN when the left value is empty.
    fn batch_exact(ta: &BatchTerms, tb: &BatchTerms) -> [f64; 3] {
        let freq = |t: &BatchTerms| [t.terms.given, t.terms.family, t.terms.country];
        let (fa, fb) = (freq(ta), freq(tb));
        std::array::from_fn(|k| {
            if ta.empty[k] {
                f64::NAN
            } else if fa[k] >= fb[k] || fb[k].is_nan() {
                ta.exact[k]
            } else {
                tb.exact[k]
            }
        })
    }

    /// [`Self::bound_with_terms`] from per-record values: the same number, with the exact-level
    /// tests on name shapes (which can only say "possible" more often: never a lower bound).
    #[allow(clippy::too_many_arguments)]
    pub fn batch_bound(
        &self,
        consts: &BatchConstants,
        ta: &BatchTerms,
        tb: &BatchTerms,
        sa: &NameShape,
        sb: &NameShape,
        v: &Vector,
    ) -> f64 {
        if let Calibration::Platt { a: slope, .. } = self.calibration {
            if slope.is_nan() || slope <= 0.0 {
                return f64::INFINITY;
            }
        }
        let freq = |t: &BatchTerms, k: usize| {
            if k == 0 {
                t.terms.given
            } else {
                t.terms.family
            }
        };
        let name = |k: usize, possible: bool| {
            let ep = usize::from(possible);
            if ta.empty[k] {
                consts.names_empty[k][ep]
            } else if freq(ta, k) >= freq(tb, k) || freq(tb, k).is_nan() {
                ta.names[k][ep]
            } else {
                tb.names[k][ep]
            }
        };
        let (g, m, f) = (
            name(0, sa.given_exact_possible(sb)),
            consts.middle,
            name(1, sa.family_exact_possible(sb)),
        );
        let country_exact = Self::batch_exact(ta, tb)[2];
        let terms = |f: usize, level: u8| {
            let known = consts.terms.get(f).and_then(|row| row.get(level as usize));
            match known {
                Some(&t) if f != compare::COUNTRY && (level as usize) < FIELDS[f].levels.len() => t,
                _ => self.non_name_terms(f, level, country_exact),
            }
        };
        self.bound_from_names(
            [g.0, m.0, f.0],
            [g.1, m.1, f.1],
            v,
            terms,
            consts.cap,
            &ta.terms,
            &tb.terms,
        )
    }

    /// [`Self::final_weight_with_terms`] from per-record values (the same number).
    pub fn batch_final_weight(
        &self,
        a: &Prepared,
        b: &Prepared,
        ta: &BatchTerms,
        tb: &BatchTerms,
        v: &Vector,
    ) -> f64 {
        let exact = Self::batch_exact(ta, tb);
        self.evaluate_vector_exact(a, b, &ta.terms, &tb.terms, v, false, false, &exact)
            .1
    }

    /// One field's weight in a pair's score: (level weight, term-frequency adjustment, whether
    /// the agreement counted as implied by agreeing names). `exact` is the pair's
    /// exact-agreement weight of the field's value (NaN: no term-frequency adjustment, as for
    /// an empty left value or a field without one).
    fn field_term_exact(
        &self,
        f: usize,
        level: u8,
        exact: f64,
        names_agree: bool,
    ) -> (f64, f64, bool) {
        let base = self.weight(f, level);
        let mut tf = self.tf_adjustment_with(f, level, exact);
        // when the names agree, agreeing sex and country of birth are mostly implied by the
        // name; count at most a little of them (disagreement keeps its full weight)
        let implied_cap = match f {
            compare::SEX => Some(0.0),
            compare::COUNTRY => Some(1.0),
            _ => None,
        };
        let mut implied = false;
        if let (Some(cap), true) = (implied_cap, names_agree) {
            if base + tf > cap {
                tf = cap - base;
                implied = true;
            }
        }
        (base, tf, implied)
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_vector(
        &self,
        a: &Prepared,
        b: &Prepared,
        ta: &RecordTerms,
        tb: &RecordTerms,
        v: &Vector,
        swapped: bool,
        explain: bool,
    ) -> (f64, f64, Vec<FieldWeight>) {
        // the exact-agreement weight of each term-frequency field's value, where it applies
        let exact = [
            (compare::GIVEN, a.given.as_str()),
            (compare::FAMILY, a.family.as_str()),
            (compare::COUNTRY, a.country_of_birth.as_str()),
        ]
        .map(|(f, va)| {
            if v[f] != 0 && !va.is_empty() {
                self.tf_exact_weight(f, Self::pair_frequency(f, ta, tb))
            } else {
                f64::NAN
            }
        });
        self.evaluate_vector_exact(a, b, ta, tb, v, swapped, explain, &exact)
    }

    /// [`Self::evaluate_vector`] with the pair's exact-agreement weights of the given name,
    /// family name and country values known (NaN: no term-frequency adjustment).
    #[allow(clippy::too_many_arguments)]
    fn evaluate_vector_exact(
        &self,
        a: &Prepared,
        b: &Prepared,
        ta: &RecordTerms,
        tb: &RecordTerms,
        v: &Vector,
        swapped: bool,
        explain: bool,
        exact: &[f64; 3],
    ) -> (f64, f64, Vec<FieldWeight>) {
        let v = *v;
        let names_agree = Self::names_agree(&v);
        let mut out = Vec::new();
        let mut raw = self.prior_log2_odds;
        if explain {
            out.push(FieldWeight {
                field: "prior",
                level: "match_rate".into(),
                weight: self.prior_log2_odds,
                detail: format!(
                    "P(two random records match) = {:.3e}",
                    log2_odds_to_p(self.prior_log2_odds)
                ),
            });
        }
        for f in 0..N_FIELDS {
            let exact_f = match f {
                compare::GIVEN => exact[0],
                compare::FAMILY => exact[1],
                compare::COUNTRY => exact[2],
                _ => f64::NAN,
            };
            let (base, tf, implied) = self.field_term_exact(f, v[f], exact_f, names_agree);
            raw += base + tf;
            if explain {
                let mut detail = compare::field_values(f, a, b);
                if implied {
                    detail.push_str(" (mostly implied by the agreeing name)");
                } else if tf != 0.0 {
                    detail.push_str(&format!(" (term frequency {tf:+.2})"));
                }
                if f == compare::GIVEN && swapped {
                    detail.push_str(" (given/family swapped)");
                }
                out.push(FieldWeight {
                    field: FIELDS[f].name,
                    level: FIELDS[f].levels[v[f] as usize].to_string(),
                    weight: base + tf,
                    detail,
                });
            }
        }
        let calibrated = self.calibrate(raw);
        if explain && calibrated != raw {
            let level = match self.calibration {
                Calibration::Platt { .. } => "platt",
                Calibration::PriorClip { .. } => "clip",
            };
            out.push(FieldWeight {
                field: "calibration",
                level: level.into(),
                weight: calibrated - raw,
                detail: format!("raw {raw:.2} -> {calibrated:.2}"),
            });
        }
        let mut fin = calibrated;
        if names_agree && !Self::identifier_agrees(&v) {
            let namesakes = self.expected_namesakes(ta, tb, v[compare::DOB]);
            if Self::transpositions_only(&v) && namesakes < self.safety.common_name_namesakes {
                // a swapped name order and a swapped birth date together are how two
                // different people look alike: never an identity without an identifier
                fin = soft_cap(calibrated, p_to_log2_odds(self.safety.cap_probability));
                if explain {
                    out.push(FieldWeight {
                        field: "safety",
                        level: "transpositions_without_identifier".into(),
                        weight: fin - calibrated,
                        detail: "name order and day/month both swapped; no identifier agrees"
                            .into(),
                    });
                }
            } else if namesakes >= self.safety.common_name_namesakes {
                fin = soft_cap(calibrated, p_to_log2_odds(self.safety.cap_probability));
                if explain {
                    out.push(FieldWeight {
                        field: "safety",
                        level: "common_name_without_identifier".into(),
                        weight: fin - calibrated,
                        detail: format!("about {namesakes:.2} people with this name and a birth date this close expected in a population of {:.0}; no identifier agrees", self.safety.reference_population),
                    });
                }
            }
        }
        (raw, fin, out)
    }

    /// Scores two prepared records with the per-field explanation.
    pub fn score_prepared(&self, a: &Prepared, b: &Prepared) -> Scored {
        let (_, fin, fields) = self.evaluate(a, b, true);
        Scored {
            probability: log2_odds_to_p(fin),
            match_weight: fin,
            fields,
        }
    }

    /// Scores two identities with the per-field explanation.
    pub fn score(&self, a: &Identity, b: &Identity) -> Scored {
        self.score_prepared(&Prepared::from_identity(a), &Prepared::from_identity(b))
    }

    /// Fits Platt scaling on (raw log2-odds, is-match) pairs by Newton's method; deterministic.
    /// Targets are smoothed as in Platt (1999) and (a, b) are pulled towards (1, 0), so that
    /// perfectly separable labelled data cannot drive the slope to infinity.
    pub fn fit_platt(&mut self, labelled: &[(f64, bool)]) {
        let pos = labelled.iter().filter(|l| l.1).count() as f64;
        let neg = labelled.len() as f64 - pos;
        if pos == 0.0 || neg == 0.0 {
            return;
        }
        let (t_pos, t_neg) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
        let ridge = 1.0;
        let ln2 = std::f64::consts::LN_2;
        let loss = |a: f64, b: f64| -> f64 {
            let mut l = 0.5 * ridge * ((a - 1.0).powi(2) + b * b);
            for &(w, y) in labelled {
                let z = a * w * ln2 + b;
                let t = if y { t_pos } else { t_neg };
                // -t log p - (1-t) log(1-p), computed stably
                let log1p_exp = |v: f64| if v > 30.0 { v } else { v.exp().ln_1p() };
                l += t * log1p_exp(-z) + (1.0 - t) * log1p_exp(z);
            }
            l
        };
        let (mut a, mut b) = (1.0f64, 0.0f64);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb) = (ridge * (a - 1.0), ridge * b);
            let (mut haa, mut hab, mut hbb) = (ridge, 0.0, ridge);
            for &(w, y) in labelled {
                let x = w * ln2;
                let p = 1.0 / (1.0 + (-(a * x + b)).exp());
                let r = p - if y { t_pos } else { t_neg };
                ga += r * x;
                gb += r;
                let s = (p * (1.0 - p)).max(1e-12);
                haa += s * x * x;
                hab += s * x;
                hbb += s;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            // backtracking: Newton steps on nearly separable data overshoot
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-6 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l <= current {
                    a = na;
                    b = nb;
                    improved = current - l > 1e-12;
                    current = l;
                    break;
                }
                step *= 0.5;
            }
            if !improved {
                break;
            }
        }
        if a.is_finite() && b.is_finite() && a > 0.0 {
            self.calibration = Calibration::Platt {
                a,
                b,
                fitted_pairs: labelled.len(),
            };
        }
    }

    /// Final log2-odds of a pair (after calibration and safety); ranks without saturating.
    pub fn final_weight(&self, a: &Prepared, b: &Prepared) -> f64 {
        self.evaluate(a, b, false).1
    }
}

/// Runs `f(0..n)` on the shared worker pool; results in index order. The pool's threads
/// live for the whole process, so per-thread caches (the name-pair memo) stay warm from one
/// phase of a run to the next and no phase pays for starting threads.
pub(crate) fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    use rayon::prelude::*;
    (0..n).into_par_iter().map(&f).collect()
}

/// EM with u fixed: updates m and returns (iterations, converged, λ among candidate pairs).
/// `use_field`: fields in the likelihood; `update`: fields whose m is re-estimated.
fn em(
    fields: &mut [FieldParams],
    patterns: &BTreeMap<Vector, f64>,
    max_iter: usize,
    lambda_cap: f64,
    use_field: &[bool],
    update: &[bool],
) -> (usize, bool, f64) {
    let total: f64 = patterns.values().sum();
    if total == 0.0 {
        return (0, true, 0.0);
    }
    let neutral: Vec<Vec<bool>> = fields
        .iter()
        .enumerate()
        .map(|(f, fp)| {
            fp.levels
                .iter()
                .enumerate()
                .map(|(l, lp)| l == 0 || FIELDS[f].neutral.contains(&lp.label.as_str()))
                .collect()
        })
        .collect();
    let mut lambda = (lambda_cap * 0.5).clamp(1e-6, 0.5);
    // MAP estimate: the starting m values act as this many pseudo-pairs, which keeps EM from
    // absorbing look-alike non-matches into the match class on small or adversarial data
    let prior_strength = 50.0;
    for it in 1..=max_iter {
        let mut m_acc: Vec<Vec<f64>> = fields.iter().map(|fp| vec![0.0; fp.levels.len()]).collect();
        let mut matches = 0.0;
        // logarithms once per iteration, not once per pattern (same values, same sums)
        let logs: Vec<Vec<(f64, f64)>> = fields
            .iter()
            .map(|fp| {
                fp.levels
                    .iter()
                    .map(|lp| (lp.m.max(1e-300).ln(), lp.u.max(1e-300).ln()))
                    .collect()
            })
            .collect();
        let used: Vec<usize> = (0..N_FIELDS).filter(|&f| use_field[f]).collect();
        let (log_lambda, log_not_lambda) = (lambda.ln(), (1.0 - lambda).ln());
        for (v, &count) in patterns {
            let (mut lm, mut lu) = (log_lambda, log_not_lambda);
            for &f in &used {
                let l = v[f] as usize;
                if !neutral[f][l] {
                    lm += logs[f][l].0;
                    lu += logs[f][l].1;
                }
            }
            let p = 1.0 / (1.0 + (lu - lm).exp());
            matches += p * count;
            for f in 0..N_FIELDS {
                m_acc[f][v[f] as usize] += p * count;
            }
        }
        let mut delta = 0.0f64;
        for (f, fp) in fields.iter_mut().enumerate().filter(|(f, _)| update[*f]) {
            let denom: f64 = (1..fp.levels.len())
                .filter(|&l| !neutral[f][l])
                .map(|l| m_acc[f][l])
                .sum();
            let k = fp.levels.len() as f64;
            for l in 1..fp.levels.len() {
                let init = FIELDS[f].initial_m.get(l).copied().unwrap_or(0.0);
                let new_m = if neutral[f][l] {
                    fp.levels[l].u
                } else {
                    (m_acc[f][l] + 0.01 + prior_strength * init)
                        / (denom + 0.01 * k + prior_strength)
                };
                delta = delta.max((new_m - fp.levels[l].m).abs());
                fp.levels[l].m = new_m;
            }
        }
        let new_lambda = (matches / total).clamp(1e-9, lambda_cap);
        delta = delta.max((new_lambda - lambda).abs());
        lambda = new_lambda;
        if delta < 1e-6 {
            return (it, true, lambda);
        }
    }
    (max_iter, false, lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_cap_is_monotone_and_below_cap() {
        let cap = p_to_log2_odds(0.4);
        let mut last = f64::NEG_INFINITY;
        for i in -400..200 {
            let w = f64::from(i) / 10.0;
            let c = soft_cap(w, cap);
            assert!(
                c < cap && c > last && c <= w + 1e-12,
                "w {w} c {c} last {last}"
            );
            last = c;
        }
    }

    #[test]
    fn unsupported_format_is_rejected() {
        let e = Model::from_json(r#"{"format":"verity-fs-model/0"}"#).unwrap_err();
        assert!(e.to_string().contains("verity-fs-model/0"));
    }

    /// A model trained on a small generated benchmark, with the name frequencies replaced by
    /// `given` and `family` (every other name unseen, frequency 1e-6).
    fn model_with_names(given: &[(&str, f64)], family: &[(&str, f64)]) -> Model {
        use crate::bench::{generate, BenchConfig};
        let w = generate(&BenchConfig {
            identities: 400,
            probes: 200,
            seed: 3,
            hard_negative_share: 0.35,
        });
        let gp: Vec<Prepared> = w.gallery.iter().map(Prepared::from_record).collect();
        let pp: Vec<Prepared> = w.probes.iter().map(Prepared::from_record).collect();
        let pairs = crate::link::candidate_pairs(&pp, Some(&gp), 2000);
        let mut m = Model::train(&pp, Some(&gp), &pairs, &TrainOptions::default());
        let table = |t: &[(&str, f64)]| t.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        m.term_frequencies.given = table(given);
        m.term_frequencies.family = table(family);
        m.term_frequencies.unseen = 1e-6;
        m.rebuild_cache();
        m
    }

    fn person(given: &str, middle: &str, family: &str, dob: &str, a_number: &str) -> Identity {
        Identity {
            name: verity_model::PersonName::new(given, middle, family),
            dob: verity_model::PartialDate::parse_iso(dob).ok(),
            sex: Some(verity_model::Sex::Male),
            country_of_birth: "KR".into(),
            ids: verity_model::Identifiers {
                a_number: verity_model::ANumber::parse(a_number).ok(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn capped_by(s: &Scored) -> Option<&str> {
        s.fields
            .iter()
            .find(|f| f.field == "safety")
            .map(|f| f.level.as_str())
    }

    #[test]
    fn a_common_name_filed_family_first_is_still_common() {
        let m = model_with_names(&[("HYUN WOO", 0.02)], &[("KIM", 0.05)]);
        // both records filed family-first: KIM in the given field, HYUN WOO in the family one
        let a = person("Kim", "", "Hyun Woo", "1990-03-17", "");
        let b = person("Kim", "", "Hyun Woo", "1990-03-17", "");
        let straight = m.record_terms(&Prepared::from_identity(&person(
            "Hyun Woo",
            "",
            "Kim",
            "1990-03-17",
            "",
        )));
        let filed = m.record_terms(&Prepared::from_identity(&a));
        // each field is looked up under the reading that makes the name more common
        assert_eq!(
            (filed.given, filed.family),
            (straight.family, straight.given)
        );
        let s = m.score(&a, &b);
        assert_eq!(capped_by(&s), Some("common_name_without_identifier"));
        assert!(s.probability < 0.5, "{s:?}");
        // the same person with an agreeing A-number is an identity
        let a = person("Kim", "", "Hyun Woo", "1990-03-17", "012345678");
        let b = person("Kim", "", "Hyun Woo", "1990-03-17", "012345678");
        let s = m.score(&a, &b);
        assert_eq!(capped_by(&s), None);
        assert!(s.probability > 0.5, "{s:?}");
    }

    #[test]
    fn swapped_name_order_and_swapped_day_month_together_are_capped() {
        // a rare name: neither rule of commonness applies
        let m = model_with_names(&[], &[]);
        let a = person("Tao", "", "Liu", "1995-11-08", "");
        let look_alike = person("Liu", "", "Tao", "1995-08-11", "");
        let s = m.score(&a, &look_alike);
        assert_eq!(capped_by(&s), Some("transpositions_without_identifier"));
        assert!(s.probability < 0.5, "{s:?}");
        // one transposition alone is tolerated: the name order, or the day and month
        let s = m.score(&a, &person("Liu", "", "Tao", "1995-11-08", ""));
        assert_eq!(capped_by(&s), None);
        assert!(s.probability > 0.5, "{s:?}");
        let s = m.score(&a, &person("Tao", "", "Liu", "1995-08-11", ""));
        assert_eq!(capped_by(&s), None);
        assert!(s.probability > 0.5, "{s:?}");
    }

    #[test]
    fn a_weaker_birth_date_agreement_needs_fewer_namesakes_to_be_capped() {
        let m = model_with_names(&[], &[]);
        let terms = RecordTerms {
            given: 1e-3,
            family: 1e-3,
            country: 0.1,
        };
        let exact = m.expected_namesakes(&terms, &terms, compare::lvl(compare::DOB, "exact"));
        for level in ["day_month_swap", "one_digit_typo", "year_month"] {
            let weaker = m.expected_namesakes(&terms, &terms, compare::lvl(compare::DOB, level));
            assert!(weaker > exact, "{level}: {weaker} vs exact {exact}");
        }
        // a name just too rare to be capped with an exact date is capped with a swapped one
        let swap =
            m.expected_namesakes(&terms, &terms, compare::lvl(compare::DOB, "day_month_swap"));
        let f = (m.safety.common_name_namesakes / exact * 1e-6).sqrt() * (exact / swap).powf(0.25);
        let m = model_with_names(&[("RAJESH", f)], &[("SHAH", f)]);
        let a = person("Rajesh", "", "Shah", "2002-05-02", "");
        let s = m.score(&a, &person("Rajesh", "", "Shah", "2002-05-02", ""));
        assert_eq!(capped_by(&s), None, "{s:?}");
        assert!(s.probability > 0.5, "{s:?}");
        let s = m.score(&a, &person("Rajesh", "", "Shah", "2002-02-05", ""));
        assert_eq!(capped_by(&s), Some("common_name_without_identifier"));
        assert!(s.probability < 0.5, "{s:?}");
    }

    #[test]
    fn one_given_name_of_several_on_a_common_name_is_capped() {
        let m = model_with_names(
            &[("MARIA", 0.03), ("MARIA JOSE", 0.01)],
            &[("GARCIA", 0.03)],
        );
        let a = person("Maria Jose", "", "Garcia", "1985-03-12", "");
        for other in ["Maria", "M"] {
            let s = m.score(&a, &person(other, "", "Garcia", "1985-03-12", ""));
            assert_eq!(
                capped_by(&s),
                Some("common_name_without_identifier"),
                "{other}"
            );
            assert!(s.probability < 0.5, "{other}: {s:?}");
        }
        let s = m.score(
            &person("Maria Jose", "", "Garcia", "1985-03-12", "012345678"),
            &person("Maria", "", "Garcia", "1985-03-12", "012345678"),
        );
        assert!(s.probability > 0.5, "{s:?}");
    }
}
