//! Comparing two parsed names part by part.
//!
//! Unit level (one name unit against another, strongest first): identical; joined/split
//! spelling (DELAROSA / DE LA ROSA); particle dropped (DE LA ROSA / ROSA, AL RASHID / ALRASHID
//! / RASHID); Arabic ABD- compound spelling; initial; variant family; nickname (one hop, never
//! transitive); gendered or transliterated surname ending (PETROVA / PETROV); Double Metaphone
//! with an equal vowel skeleton; Jaro-Winkler >= 0.88 on tokens of 4+ letters; otherwise
//! Disagree.
//!
//! Part level: units are aligned by an optimal assignment (order may differ); a dropped unit
//! (GARCIA LOPEZ / GARCIA) or reordered units give Partial. Name level: given/middle and
//! middle/family boundaries are rebalanced when the same words were filed differently, and
//! given and family are matched across each other only when both crossed parts match; such a
//! swap sets `swapped`, never reports Exact, and lowers `similarity`.

use crate::phonetic::sounds_alike;
use crate::similarity::jaro_winkler;
use crate::tables::{tables, ParticleKind};
use crate::{NameAgreement, NameComparison, ParsedName};
use NameAgreement::*;

/// Jaro-Winkler threshold for a Fuzzy agreement (typos, small spelling differences).
pub const FUZZY_THRESHOLD: f64 = 0.88;
/// Similarity multiplier for an order-swapped alignment.
const SWAP_PENALTY: f32 = 0.9;

/// Which part of a name a comparison is about; decides which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartKind {
    Given,
    Middle,
    Family,
    /// A given name compared against a family name (order swap).
    Crossed,
}

impl PartKind {
    fn label(self) -> &'static str {
        match self {
            PartKind::Given => "given",
            PartKind::Middle => "middle",
            PartKind::Family => "family",
            PartKind::Crossed => "crossed",
        }
    }
}

pub(crate) fn is_binding_particle(word: &str) -> bool {
    matches!(
        tables().particles.get(word),
        Some(ParticleKind::Article | ParticleKind::Patronymic)
    )
}

pub(crate) fn compact(unit: &str) -> String {
    unit.replace(' ', "")
}

/// The unit without particle words, joined; the whole unit when it is only particles.
pub(crate) fn core(unit: &str) -> String {
    let kept: String = unit
        .split(' ')
        .filter(|w| !is_binding_particle(w))
        .collect();
    if kept.is_empty() {
        compact(unit)
    } else {
        kept
    }
}

/// True when `s` is a concatenation of one or more particles (AL, DELA, VANDER).
pub(crate) fn is_particle_run(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    particle_run_prefixes(s)[s.len()]
}

/// [`is_particle_run`] of every prefix at once: entry `cut` (0..=len) tells whether
/// `s[..cut]` is a run of binding particles (entry 0, the empty prefix, is false). One pass
/// instead of one per prefix: a prefix's run can only use particles that end within it.
pub(crate) fn particle_run_prefixes(s: &str) -> Vec<bool> {
    let mut reachable = particle_reach(s);
    reachable[0] = false;
    reachable
}

/// Positions of `s` that a run of binding particles from the start reaches (0 always).
fn particle_reach(s: &str) -> Vec<bool> {
    let n = s.len();
    let mut reachable = vec![false; n + 1];
    reachable[0] = true;
    for i in 0..n {
        if !reachable[i] {
            continue;
        }
        // Particles are at most 5 letters (SAINT).
        for j in i + 1..=n.min(i + 5) {
            if s.get(i..j).is_some_and(is_binding_particle) {
                if let Some(r) = reachable.get_mut(j) {
                    *r = true;
                }
            }
        }
    }
    reachable
}

/// Key of an Arabic ABD- compound: ABD + the name after the (possibly assimilated) article,
/// so ABDULRAHMAN, ABDELRAHMAN, ABDALRAHMAN, ABDURRAHMAN and ABDRAHMAN share a key.
pub(crate) fn abd_key(compact: &str) -> Option<String> {
    let rest = compact.strip_prefix("ABD")?;
    let mut best: Option<&str> = None;
    for vowel in ["OU", "U", "E", "A", "O", ""] {
        let Some(after_vowel) = rest.strip_prefix(vowel) else {
            continue;
        };
        if let Some(name) = after_vowel.strip_prefix('L') {
            best = best.or(Some(name));
        }
        // Sun-letter assimilation: ABD-UR-RAHMAN, ABD-US-SALAM, ABD-UN-NUR.
        let mut chars = after_vowel.chars();
        if let (Some(c1), Some(c2)) = (chars.next(), chars.next()) {
            if c1 == c2 && "RSZNTDL".contains(c1) {
                best = best.or(Some(&after_vowel[1..]));
            }
        }
    }
    let name = best.unwrap_or(rest);
    (name.len() >= 3).then(|| format!("ABD {}", crate::canonical(name)))
}

/// Surname stems under the gendered/transliteration ending rules (the token itself included).
pub(crate) fn surname_stems(token: &str) -> Vec<String> {
    let mut out = vec![token.to_string()];
    for (suffix, replacement) in &tables().surname_endings {
        if let Some(base) = token.strip_suffix(suffix.as_str()) {
            if base.len() >= 3 {
                out.push(format!("{base}{replacement}"));
            }
        }
    }
    out
}

fn variant_of(token: &str, kind: PartKind) -> Option<&'static str> {
    let v = tables().variants.get(token)?;
    let allowed = !v.family_only || matches!(kind, PartKind::Family | PartKind::Crossed);
    allowed.then_some(v.canonical.as_str())
}

fn is_nickname(a: &str, b: &str, kind: PartKind) -> bool {
    let nick = &tables().nicknames;
    let ca = variant_of(a, kind).unwrap_or(a);
    let cb = variant_of(b, kind).unwrap_or(b);
    // One hop only: a direct edge between the names or their canonical spellings.
    [(a, b), (ca, b), (a, cb), (ca, cb)]
        .iter()
        .any(|(x, y)| nick.get(*x).is_some_and(|set| set.contains(*y)))
}

/// Agreement of two name units, with a short reason (memoized: see `memo`).
pub fn unit_agreement(a: &str, b: &str, kind: PartKind) -> (NameAgreement, &'static str) {
    if a == b {
        return (Exact, "same");
    }
    memo::get_or_compute(a, b, kind, || unit_agreement_uncached(a, b, kind))
}

fn unit_agreement_uncached(a: &str, b: &str, kind: PartKind) -> (NameAgreement, &'static str) {
    let (ca, cb) = (compact(a), compact(b));
    if ca == cb {
        return (Equivalent, "joined/split spelling");
    }
    let (ka, kb) = (core(a), core(b));
    if ka == kb {
        return (Equivalent, "particle");
    }
    if kind == PartKind::Family {
        let merged = |whole: &str, part: &str| {
            whole.len() > part.len()
                && whole.ends_with(part)
                && is_particle_run(&whole[..whole.len() - part.len()])
        };
        if merged(&ca, &kb) || merged(&cb, &ka) {
            return (Equivalent, "particle");
        }
    }
    if let (Some(x), Some(y)) = (abd_key(&ca), abd_key(&cb)) {
        if x == y {
            return (Equivalent, "abd- compound");
        }
    }
    let direct = token_agreement(&ka, &kb, kind);
    if kind == PartKind::Family && direct.0 > Equivalent {
        // ALRASHID vs RASHED: a merged particle plus a spelling variant of the rest.
        for (whole, other) in [(&ka, &kb), (&kb, &ka)] {
            for cut in 2..whole.len().saturating_sub(3) {
                let (Some(head), Some(rest)) = (whole.get(..cut), whole.get(cut..)) else {
                    continue;
                };
                if is_particle_run(head) && token_agreement(rest, other, kind).0 <= Equivalent {
                    return (Equivalent, "particle and variant");
                }
            }
        }
    }
    direct
}

/// Agreement of two single normalized tokens (no spaces).
pub fn token_agreement(a: &str, b: &str, kind: PartKind) -> (NameAgreement, &'static str) {
    if a == b {
        return (Exact, "same");
    }
    if a.is_empty() || b.is_empty() {
        return (Missing, "empty");
    }
    if a.len() == 1 || b.len() == 1 {
        return if a.as_bytes()[0] == b.as_bytes()[0] {
            (Initial, "initial")
        } else {
            (Disagree, "initial differs")
        };
    }
    if let (Some(x), Some(y)) = (variant_of(a, kind), variant_of(b, kind)) {
        if x == y {
            return (Equivalent, "variant");
        }
    }
    if is_nickname(a, b, kind) {
        return (Equivalent, "nickname");
    }
    let family = kind == PartKind::Family;
    if family {
        let sa = surname_stems(a);
        let sb = surname_stems(b);
        if sa.iter().any(|s| s.len() >= 4 && sb.contains(s)) {
            return (Equivalent, "gendered/transliterated ending");
        }
    }
    if a.len() >= 3 && b.len() >= 3 && sounds_alike(a, b) {
        return (Phonetic, "sounds alike");
    }
    // A short name that starts a longer one is another name (JOSE/JOSEFINA), not a typo;
    // long ones may be truncated by fixed-width fields (CHRISTOPHE/CHRISTOPHER).
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long.len() >= short.len() + 2 && short.len() < 8 && long.starts_with(short) {
        return (Disagree, "different name (prefix)");
    }
    // Short tokens differing in a letter are usually different names (LI/LIN, KIM/KIN).
    if a.len() >= 4 && b.len() >= 4 && jaro_winkler(a, b) >= FUZZY_THRESHOLD {
        return (Fuzzy, "close spelling");
    }
    (Disagree, "different")
}

pub(crate) fn level_score(l: NameAgreement) -> f64 {
    match l {
        Exact => 1.0,
        Equivalent => 0.9,
        Phonetic => 0.8,
        Fuzzy => 0.6,
        Initial => 0.5,
        Partial => 0.45,
        Missing => 0.3,
        Disagree => 0.0,
    }
}

pub(crate) fn is_match(l: NameAgreement) -> bool {
    l <= Initial
}

/// Result of comparing one part (list of units) with another.
#[derive(Debug, Clone, PartialEq)]
pub struct PartResult {
    pub level: NameAgreement,
    pub similarity: f64,
    pub note: String,
}

/// Best assignment of units: (matched count, score sum, worst level rank, order kept) is
/// maximised lexicographically, which makes the outcome independent of argument order.
#[derive(Clone, Copy, PartialEq, PartialOrd, Default)]
pub(crate) struct Objective {
    pub(crate) matched: usize,
    pub(crate) score: f64,
    pub(crate) worst_rank: i32,
    pub(crate) ordered: bool,
}

pub(crate) struct Assignment {
    pub(crate) objective: Objective,
    pub(crate) worst: NameAgreement,
    pairs: Vec<(usize, usize, NameAgreement, &'static str)>,
}

pub(crate) fn best_assignment(
    m: &[Vec<(NameAgreement, &'static str)>],
    rows: usize,
    cols: usize,
) -> Assignment {
    let mut best = Assignment {
        objective: Objective::default(),
        worst: Disagree,
        pairs: Vec::new(),
    };
    let mut used = vec![false; cols];
    let mut current: Vec<(usize, usize, NameAgreement, &'static str)> = Vec::new();
    // Rows and columns are few (name units); exhaustive search with a size guard.
    fn search(
        row: usize,
        m: &[Vec<(NameAgreement, &'static str)>],
        used: &mut Vec<bool>,
        current: &mut Vec<(usize, usize, NameAgreement, &'static str)>,
        best: &mut Assignment,
        budget: &mut u32,
    ) {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        if row == m.len() {
            let worst = current.iter().map(|p| p.2).max().unwrap_or(Disagree);
            let ordered = current.windows(2).all(|w| w[0].1 < w[1].1);
            let objective = Objective {
                matched: current.len(),
                score: current.iter().map(|p| level_score(p.2)).sum(),
                worst_rank: -(worst as i32),
                ordered,
            };
            if objective > best.objective {
                *best = Assignment {
                    objective,
                    worst,
                    pairs: current.clone(),
                };
            }
            return;
        }
        search(row + 1, m, used, current, best, budget);
        for col in 0..used.len() {
            let (level, why) = m[row][col];
            if !used[col] && is_match(level) {
                used[col] = true;
                current.push((row, col, level, why));
                search(row + 1, m, used, current, best, budget);
                current.pop();
                used[col] = false;
            }
        }
    }
    let mut budget = 20_000u32;
    let _ = rows;
    search(0, m, &mut used, &mut current, &mut best, &mut budget);
    best
}

fn joined(units: &[String]) -> String {
    units.join(" ")
}

/// Compares two parts (lists of name units).
pub fn compare_part(xs: &[String], ys: &[String], kind: PartKind) -> PartResult {
    part_impl(xs, ys, kind, true)
}

fn part_impl(xs: &[String], ys: &[String], kind: PartKind, with_note: bool) -> PartResult {
    let label = kind.label();
    if xs.is_empty() || ys.is_empty() {
        let note = if xs.is_empty() && ys.is_empty() {
            format!("{label}: missing on both sides")
        } else {
            format!("{label}: missing on one side")
        };
        return PartResult {
            level: Missing,
            similarity: 0.0,
            note,
        };
    }
    let (jx, jy) = (joined(xs), joined(ys));
    let (cx, cy) = (compact(&jx), compact(&jy));
    let jw = jaro_winkler(&cx, &cy);
    let result = |level: NameAgreement, why: &str| {
        let floor = match level {
            Exact => 1.0,
            Equivalent => 0.9,
            Phonetic => 0.85,
            _ => 0.0,
        };
        let sym = match level {
            Exact => "=",
            Disagree => "!=",
            _ => "~",
        };
        let note = if with_note {
            format!("{label}: {jx} {sym} {jy} ({why})")
        } else {
            String::new()
        };
        PartResult {
            level,
            similarity: jw.max(floor),
            note,
        }
    };
    if xs == ys {
        return result(Exact, "same");
    }
    if xs.len() == 1 && ys.len() == 1 {
        let (level, why) = unit_agreement(&xs[0], &ys[0], kind);
        return result(level, why);
    }
    if cx == cy {
        return result(Equivalent, "joined/split spelling");
    }
    let matrix: Vec<Vec<(NameAgreement, &'static str)>> = xs
        .iter()
        .map(|x| ys.iter().map(|y| unit_agreement(x, y, kind)).collect())
        .collect();
    let a = best_assignment(&matrix, xs.len(), ys.len());
    let matched = a.objective.matched;
    if matched == 0 {
        return result(Disagree, "no unit agrees");
    }
    let reasons: Vec<&str> = a
        .pairs
        .iter()
        .filter(|p| p.2 != Exact)
        .map(|p| p.3)
        .collect();
    if matched == xs.len() && matched == ys.len() {
        if a.objective.ordered {
            let why = if reasons.is_empty() || !with_note {
                "same".to_string()
            } else {
                reasons.join(", ")
            };
            return result(a.worst, &why);
        }
        return result(Partial, "same units in a different order");
    }
    let why = if with_note {
        format!("{matched} of {}/{} units agree", xs.len(), ys.len())
    } else {
        String::new()
    };
    result(Partial, &why)
}

/// Moves trailing given units into the middle on the side with more given units when both
/// sides hold the same number of forename units (MARIA JOSE | - vs MARIA | JOSE).
fn rebalance_forenames(a: &mut ParsedName, b: &mut ParsedName, notes: &mut Vec<String>) {
    let (na, nb) = (a.given.len(), b.given.len());
    if na == nb || na + a.middle.len() != nb + b.middle.len() || na.min(nb) == 0 {
        return;
    }
    let (long, keep) = if na > nb { (a, nb) } else { (b, na) };
    let moved = long.given.split_off(keep);
    long.middle.splice(0..0, moved);
    notes.push("given/middle boundary differs; compared as one forename sequence".to_string());
}

/// When one side filed a first surname as a middle name (JOSE | GARCIA | LOPEZ vs
/// JOSE | - | GARCIA LOPEZ), moves it into the family part if that makes the families agree.
fn rebalance_surnames(a: &mut ParsedName, b: &mut ParsedName, notes: &mut Vec<String>) {
    if !move_middle_into_family(a, b, notes) {
        move_middle_into_family(b, a, notes);
    }
}

fn move_middle_into_family(x: &mut ParsedName, y: &ParsedName, notes: &mut Vec<String>) -> bool {
    if x.middle.is_empty()
        || !y.middle.is_empty()
        || y.family.len() != x.middle.len() + x.family.len()
    {
        return false;
    }
    let merged: Vec<String> = x.middle.iter().chain(&x.family).cloned().collect();
    if compare_part(&merged, &y.family, PartKind::Family).level > Fuzzy {
        return false;
    }
    x.family = merged;
    x.middle.clear();
    notes.push("middle name on one side is the first surname on the other".to_string());
    true
}

/// Compares two parsed names (see module doc).
pub fn compare(a: &ParsedName, b: &ParsedName) -> NameComparison {
    compare_impl(a, b, true)
}

/// Same decisions as [`compare`] without building `notes` (the scoring hot path).
pub fn compare_fast(a: &ParsedName, b: &ParsedName) -> NameComparison {
    compare_impl(a, b, false)
}

/// The levels of [`compare`] (given, middle, family, swapped) without notes, similarity,
/// string joins or copies of the names: the scoring hot path. Names whose given/middle or
/// middle/family boundaries need rebalancing take the full path (rare).
pub fn compare_levels(
    a: &ParsedName,
    b: &ParsedName,
) -> (NameAgreement, NameAgreement, NameAgreement, bool) {
    let surname_move = |x: &ParsedName, y: &ParsedName| {
        !x.middle.is_empty()
            && y.middle.is_empty()
            && y.family.len() == x.middle.len() + x.family.len()
    };
    let (na, nb) = (a.given.len(), b.given.len());
    let forename_move = na != nb && na + a.middle.len() == nb + b.middle.len() && na.min(nb) != 0;
    if surname_move(a, b) || surname_move(b, a) || forename_move {
        let c = compare_impl(a, b, false);
        return (c.given, c.middle, c.family, c.swapped);
    }
    let given = part_level(&a.given, &b.given, PartKind::Given);
    let middle = part_level(&a.middle, &b.middle, PartKind::Middle);
    let family = part_level(&a.family, &b.family, PartKind::Family);
    let all_present = [&a.given, &a.family, &b.given, &b.family]
        .iter()
        .all(|p| !p.is_empty());
    if all_present && (given > Fuzzy || family > Fuzzy) {
        let ab = part_level(&a.given, &b.family, PartKind::Crossed);
        let ba = part_level(&a.family, &b.given, PartKind::Crossed);
        let worst = ab.max(ba).max(Equivalent);
        let straight = level_score(given) + level_score(family);
        if is_match(ab) && is_match(ba) && 2.0 * level_score(worst) > straight {
            return (worst, middle, worst, true);
        }
    }
    (given, middle, family, false)
}

/// The level [`compare_part`] would report, without building strings.
fn part_level(xs: &[String], ys: &[String], kind: PartKind) -> NameAgreement {
    if xs.is_empty() || ys.is_empty() {
        return Missing;
    }
    if xs == ys {
        return Exact;
    }
    if let ([x], [y]) = (xs, ys) {
        return unit_agreement(x, y, kind).0;
    }
    let letters = |units: &[String]| {
        units
            .iter()
            .flat_map(|u| u.bytes())
            .filter(|&c| c != b' ')
            .collect::<Vec<u8>>()
    };
    if letters(xs) == letters(ys) {
        return Equivalent;
    }
    let matrix: Vec<Vec<(NameAgreement, &'static str)>> = xs
        .iter()
        .map(|x| ys.iter().map(|y| unit_agreement(x, y, kind)).collect())
        .collect();
    let a = best_assignment(&matrix, xs.len(), ys.len());
    let matched = a.objective.matched;
    if matched == 0 {
        Disagree
    } else if matched == xs.len() && matched == ys.len() && a.objective.ordered {
        a.worst
    } else {
        Partial
    }
}

fn compare_impl(a: &ParsedName, b: &ParsedName, with_notes: bool) -> NameComparison {
    let mut notes = Vec::new();
    let (mut a, mut b) = (a.clone(), b.clone());
    rebalance_surnames(&mut a, &mut b, &mut notes);
    rebalance_forenames(&mut a, &mut b, &mut notes);

    let given = part_impl(&a.given, &b.given, PartKind::Given, with_notes);
    let middle = part_impl(&a.middle, &b.middle, PartKind::Middle, with_notes);
    let family = part_impl(&a.family, &b.family, PartKind::Family, with_notes);
    let straight = level_score(given.level) + level_score(family.level);

    let all_present = [&a.given, &a.family, &b.given, &b.family]
        .iter()
        .all(|p| !p.is_empty());
    if all_present && (given.level > Fuzzy || family.level > Fuzzy) {
        let ab = part_impl(&a.given, &b.family, PartKind::Crossed, with_notes);
        let ba = part_impl(&a.family, &b.given, PartKind::Crossed, with_notes);
        // Both crossed parts must match; the reported level is the weaker of the two (for
        // symmetry) and never Exact.
        let worst = ab.level.max(ba.level).max(Equivalent);
        let crossed = 2.0 * level_score(worst);
        if is_match(ab.level) && is_match(ba.level) && crossed > straight {
            if with_notes {
                notes.push("order swap: given and family matched across each other".to_string());
                notes.push(ab.note.replacen("crossed", "given(a)~family(b)", 1));
                notes.push(ba.note.replacen("crossed", "family(a)~given(b)", 1));
                notes.push(middle.note.clone());
            } else {
                notes.clear();
            }
            let sim = weighted_similarity(
                (ab.similarity + ba.similarity) / 2.0,
                Some(&middle),
                (ab.similarity + ba.similarity) / 2.0,
            );
            return NameComparison {
                given: worst,
                middle: middle.level,
                family: worst,
                swapped: true,
                similarity: sim * SWAP_PENALTY,
                notes,
            };
        }
    }
    if with_notes {
        notes.extend([given.note.clone(), middle.note.clone(), family.note.clone()]);
    } else {
        notes.clear();
    }
    let sim = weighted_similarity(given.similarity, Some(&middle), family.similarity);
    NameComparison {
        given: given.level,
        middle: middle.level,
        family: family.level,
        swapped: false,
        similarity: sim,
        notes,
    }
}

/// Overall similarity: family 0.5, given 0.4, middle 0.1 (middle only when both sides have one).
fn weighted_similarity(given: f64, middle: Option<&PartResult>, family: f64) -> f32 {
    let mut total = 0.5 * family + 0.4 * given;
    let mut weight = 0.9;
    if let Some(m) = middle.filter(|m| m.level != Missing) {
        total += 0.1 * m.similarity;
        weight += 0.1;
    }
    ((total / weight).clamp(0.0, 1.0)) as f32
}

/// Process-wide memo of unit agreements. Name units repeat heavily across records (common
/// given names and surnames), and a unit comparison costs microseconds (phonetic codes,
/// surname stems, table look-ups) while a look-up costs tens of nanoseconds. Keys are a
/// 64-bit hash of (kind, a, b); each entry keeps both units and is verified on a hit, so a hash
/// collision can only cost a recomputation, never a wrong answer. Sharded mutexes keep two
/// scoring threads from contending; a full shard is cleared (memory stays bounded).
mod memo {
    use super::{NameAgreement, PartKind};
    use std::hash::Hasher;
    use std::sync::{Mutex, OnceLock};

    const SHARDS: usize = 32;
    /// Entries per shard before it is cleared: 32 x 32,768 = about 1 M unit pairs.
    const SHARD_CAP: usize = 1 << 15;

    struct Entry {
        a: Box<str>,
        b: Box<str>,
        kind: PartKind,
        result: (NameAgreement, &'static str),
    }

    type Shard = Mutex<crate::tables::HashMap<u64, Entry>>;

    fn shards() -> &'static [Shard; SHARDS] {
        static CELL: OnceLock<[Shard; SHARDS]> = OnceLock::new();
        CELL.get_or_init(|| std::array::from_fn(|_| Mutex::new(Default::default())))
    }

    fn key(a: &str, b: &str, kind: PartKind) -> u64 {
        let mut h = crate::tables::Fnv::default();
        h.write_u8(kind as u8);
        h.write(a.as_bytes());
        h.write_u8(0xff);
        h.write(b.as_bytes());
        h.finish()
    }

    pub(super) fn get_or_compute(
        a: &str,
        b: &str,
        kind: PartKind,
        compute: impl FnOnce() -> (NameAgreement, &'static str),
    ) -> (NameAgreement, &'static str) {
        let k = key(a, b, kind);
        let shard = &shards()[(k >> 59) as usize % SHARDS];
        if let Ok(map) = shard.lock() {
            if let Some(e) = map.get(&k) {
                if e.kind == kind && &*e.a == a && &*e.b == b {
                    return e.result;
                }
            }
        }
        let result = compute();
        if let Ok(mut map) = shard.lock() {
            if map.len() >= SHARD_CAP {
                map.clear();
            }
            map.insert(
                k,
                Entry {
                    a: a.into(),
                    b: b.into(),
                    kind,
                    result,
                },
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abd_keys() {
        let k = |s: &str| abd_key(s);
        assert_eq!(k("ABDULRAHMAN"), k("ABDELRAHMAN"));
        assert_eq!(k("ABDULRAHMAN"), k("ABDURRAHMAN"));
        assert_eq!(k("ABDULRAHMAN"), k("ABDALRAHMAN"));
        assert_eq!(k("ABDULLAH"), k("ABDALLAH"));
        assert_ne!(k("ABDULRAHMAN"), k("ABDULAZIZ"));
        assert_eq!(k("ALI"), None);
    }

    #[test]
    fn particle_runs() {
        assert!(is_particle_run("AL"));
        assert!(is_particle_run("DELA"));
        assert!(is_particle_run("VANDER"));
        assert!(!is_particle_run("ALB"));
        assert!(!is_particle_run(""));
        for word in [
            "DELAROSA",
            "ALRASHID",
            "VANDERBERG",
            "ABDUL",
            "DE",
            "",
            "SAINTDENIS",
        ] {
            let prefixes = particle_run_prefixes(word);
            for (cut, &run) in prefixes.iter().enumerate() {
                assert_eq!(run, is_particle_run(&word[..cut]), "{word} cut {cut}");
            }
        }
    }

    #[test]
    fn stems() {
        assert!(surname_stems("PETROVA").contains(&"PETROV".to_string()));
        assert!(surname_stems("NOVAKOVA").contains(&"NOVAK".to_string()));
        assert!(surname_stems("KOWALSKA").contains(&"KOWALSKI".to_string()));
    }
}
