//! String similarity for name tokens: Jaro-Winkler and Levenshtein.
//!
//! Both are bit-parallel and allocation-free when the inputs are ASCII and the relevant string
//! fits in one 64-bit word (every realistic name token). Longer or non-ASCII inputs take a
//! straightforward fallback over `char`s that allocates. Results are symmetric by construction:
//! Jaro-Winkler orders its arguments canonically before computing, so `f(a, b) == f(b, a)`.

/// Pattern-match masks: bit `j` of `masks[slot(c)]` is set when `s[j] == c`.
///
/// Name tokens are uppercase letters and spaces, so the common case uses a 32-slot table
/// (256 bytes to clear) keyed by `c & 0x1F`, which is collision-free over `A-Z [\\]^_` and
/// space. Any other ASCII byte switches to the 128-slot table.
trait Masks {
    fn build(s: &[u8]) -> Self;
    fn get(&self, c: u8) -> u64;
}

struct Upper([u64; 32]);
struct Ascii([u64; 128]);

impl Masks for Upper {
    #[inline]
    fn build(s: &[u8]) -> Self {
        let mut m = [0u64; 32];
        for (j, &c) in s.iter().enumerate() {
            m[usize::from(c & 0x1f)] |= 1u64 << j;
        }
        Upper(m)
    }
    #[inline]
    fn get(&self, c: u8) -> u64 {
        self.0[usize::from(c & 0x1f)]
    }
}

impl Masks for Ascii {
    #[inline]
    fn build(s: &[u8]) -> Self {
        let mut m = [0u64; 128];
        for (j, &c) in s.iter().enumerate() {
            m[usize::from(c & 0x7f)] |= 1u64 << j;
        }
        Ascii(m)
    }
    #[inline]
    fn get(&self, c: u8) -> u64 {
        self.0[usize::from(c & 0x7f)]
    }
}

/// Which table fits both inputs: `Some(true)` upper-case table, `Some(false)` ASCII table,
/// `None` when either input is non-ASCII.
#[inline]
fn table_kind(a: &[u8], b: &[u8]) -> Option<bool> {
    // Branch-free accumulation so the check vectorizes.
    let mut any_high = 0u8;
    let mut upper = true;
    for &c in a.iter().chain(b.iter()) {
        any_high |= c;
        upper &= (c == b' ') | (c.wrapping_sub(b'A') < 31);
    }
    if any_high >= 0x80 {
        None
    } else {
        Some(upper)
    }
}

fn fits_word(a: &str, b: &str) -> Option<bool> {
    if a.len() <= 64 && b.len() <= 64 {
        table_kind(a.as_bytes(), b.as_bytes())
    } else {
        None
    }
}

/// Jaro similarity, 0..1 (1 = identical; two empty strings are identical).
pub fn jaro(a: &str, b: &str) -> f64 {
    // Canonical order keeps the greedy matching (and so the result) symmetric.
    let (a, b) = if (a.len(), a) <= (b.len(), b) {
        (a, b)
    } else {
        (b, a)
    };
    if a.is_empty() {
        return if b.is_empty() { 1.0 } else { 0.0 };
    }
    if a == b {
        return 1.0;
    }
    let fast = jaro_counts_upper(a.as_bytes(), b.as_bytes());
    let (matches, transpositions, la, lb) = if let Some(counts) = fast {
        counts
    } else if let Some(upper) = fits_word(a, b) {
        if upper {
            jaro_counts_ascii::<Upper>(a.as_bytes(), b.as_bytes())
        } else {
            jaro_counts_ascii::<Ascii>(a.as_bytes(), b.as_bytes())
        }
    } else {
        let ac: Vec<char> = a.chars().collect();
        let bc: Vec<char> = b.chars().collect();
        jaro_counts_chars(&ac, &bc)
    };
    if matches == 0 {
        return 0.0;
    }
    let m = matches as f64;
    let t = (transpositions / 2) as f64;
    (m / la as f64 + m / lb as f64 + (m - t) / m) / 3.0
}

/// Matches and half-transposition count when both inputs are in the upper-case table's
/// alphabet (A-Z, `[\]^_`, space) and at most 64 bytes, else `None`: one pass builds the
/// masks and checks the alphabet, and the match window slides as two shifting masks.
#[inline]
fn jaro_counts_upper(a: &[u8], b: &[u8]) -> Option<(usize, usize, usize, usize)> {
    let (la, lb) = (a.len(), b.len());
    if la > 64 || lb > 64 {
        return None;
    }
    let in_table = |c: u8| (c == b' ') | (c.wrapping_sub(b'A') < 31);
    let mut masks = [0u64; 32];
    let mut upper = true;
    for (j, &c) in b.iter().enumerate() {
        upper &= in_table(c);
        masks[usize::from(c & 0x1f)] |= 1u64 << j;
    }
    for &c in a {
        upper &= in_table(c);
    }
    if !upper {
        return None;
    }
    let window = (la.max(lb) / 2).saturating_sub(1);
    // Positions of `b` below i + window + 1 (saturating at all 64) and at or above
    // i - window; bits at or above `lb` are never set in `masks`.
    let mut below_hi: u64 = (1u64 << (window + 1)) - 1;
    let mut from_lo: u64 = u64::MAX;
    let mut flagged_a: u64 = 0;
    let mut flagged_b: u64 = 0;
    for (i, &c) in a.iter().enumerate() {
        let candidates = masks[usize::from(c & 0x1f)] & below_hi & from_lo & !flagged_b;
        let lowest = candidates & candidates.wrapping_neg();
        flagged_b |= lowest;
        flagged_a |= u64::from(lowest != 0) << i;
        below_hi = (below_hi << 1) | 1;
        from_lo <<= u32::from(i >= window);
    }
    let matches = flagged_a.count_ones() as usize;
    let mut transpositions = 0;
    let (mut fa, mut fb) = (flagged_a, flagged_b);
    while fa != 0 {
        let i = fa.trailing_zeros() as usize;
        let j = fb.trailing_zeros() as usize;
        transpositions += usize::from(a[i] != b[j]);
        fa &= fa - 1;
        fb &= fb.wrapping_sub(1);
    }
    Some((matches, transpositions, la, lb))
}

/// Mask of the lowest `k` bits, `k` in 0..=64.
#[inline]
fn low_bits(k: usize) -> u64 {
    ((1u128 << k) - 1) as u64
}

/// Matches and half-transposition count for ASCII inputs of at most 64 bytes, using one bit
/// per position of `b`.
#[inline]
fn jaro_counts_ascii<M: Masks>(a: &[u8], b: &[u8]) -> (usize, usize, usize, usize) {
    let (la, lb) = (a.len(), b.len());
    let window = (la.max(lb) / 2).saturating_sub(1);
    let masks = M::build(b);
    let mut flagged_a: u64 = 0;
    let mut flagged_b: u64 = 0;
    // Branch-free: data-dependent branches mispredict on random name pairs.
    for (i, &c) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(lb);
        let range = low_bits(hi) & !low_bits(lo);
        let candidates = masks.get(c) & range & !flagged_b;
        let lowest = candidates & candidates.wrapping_neg();
        flagged_b |= lowest;
        flagged_a |= u64::from(lowest != 0) << i;
    }
    let matches = flagged_a.count_ones() as usize;
    let mut transpositions = 0;
    let (mut fa, mut fb) = (flagged_a, flagged_b);
    while fa != 0 {
        let i = fa.trailing_zeros() as usize;
        let j = fb.trailing_zeros() as usize;
        transpositions += usize::from(a[i] != b[j]);
        fa &= fa - 1;
        fb &= fb.wrapping_sub(1);
    }
    (matches, transpositions, la, lb)
}

fn jaro_counts_chars(a: &[char], b: &[char]) -> (usize, usize, usize, usize) {
    let (la, lb) = (a.len(), b.len());
    let window = (la.max(lb) / 2).saturating_sub(1);
    let mut used_b = vec![false; lb];
    let mut matched_a = Vec::with_capacity(la);
    for (i, &c) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(lb);
        for j in lo..hi {
            if !used_b[j] && b[j] == c {
                used_b[j] = true;
                matched_a.push(c);
                break;
            }
        }
    }
    let matched_b = b.iter().zip(&used_b).filter(|(_, &u)| u).map(|(&c, _)| c);
    let transpositions = matched_a
        .iter()
        .zip(matched_b)
        .filter(|(x, y)| **x != *y)
        .count();
    (matched_a.len(), transpositions, la, lb)
}

/// Jaro-Winkler similarity, 0..1: Jaro boosted by a common prefix of up to 4 characters
/// (scaling 0.1) when Jaro exceeds 0.7, as in Winkler's original definition.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let j = jaro(a, b);
    if j <= 0.7 {
        return j;
    }
    let prefix = if a.is_ascii() && b.is_ascii() {
        a.bytes()
            .zip(b.bytes())
            .take(4)
            .take_while(|(x, y)| x == y)
            .count()
    } else {
        a.chars()
            .zip(b.chars())
            .take(4)
            .take_while(|(x, y)| x == y)
            .count()
    };
    j + 0.1 * prefix as f64 * (1.0 - j)
}

/// Levenshtein distance (insert, delete, substitute; each cost 1), counted in `char`s.
/// Uses Myers' bit-vector algorithm when the shorter input is ASCII and at most 64 bytes.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return long.chars().count();
    }
    let kind = if short.len() <= 64 {
        table_kind(short.as_bytes(), long.as_bytes())
    } else {
        None
    };
    if let Some(upper) = kind {
        if upper {
            myers_ascii::<Upper>(short.as_bytes(), long.as_bytes())
        } else {
            myers_ascii::<Ascii>(short.as_bytes(), long.as_bytes())
        }
    } else {
        let sc: Vec<char> = short.chars().collect();
        let lc: Vec<char> = long.chars().collect();
        levenshtein_dp(&sc, &lc)
    }
}

/// Myers/Hyyrö bit-parallel edit distance; `pattern` is 1..=64 bytes.
#[inline]
fn myers_ascii<M: Masks>(pattern: &[u8], text: &[u8]) -> usize {
    let m = pattern.len();
    let masks = M::build(pattern);
    let mut vp: u64 = if m == 64 { u64::MAX } else { (1u64 << m) - 1 };
    let mut vn: u64 = 0;
    let top = m - 1;
    let mut score = m;
    for &c in text {
        let eq = masks.get(c);
        let xv = eq | vn;
        let xh = ((eq & vp).wrapping_add(vp) ^ vp) | eq;
        let mut hp = vn | !(xh | vp);
        let mut hn = vp & xh;
        // Branch-free score update; the score never goes below 0 or above m + text length.
        score = score
            .wrapping_add(((hp >> top) & 1) as usize)
            .wrapping_sub(((hn >> top) & 1) as usize);
        hp = (hp << 1) | 1;
        hn <<= 1;
        vp = hn | !(xv | hp);
        vn = hp & xv;
    }
    score
}

fn levenshtein_dp(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() < 1e-9
    }

    #[test]
    fn jaro_winkler_known_values() {
        // Classic textbook values (Winkler 1990 examples).
        assert!(close((jaro("MARTHA", "MARHTA") * 1000.0).round(), 944.0));
        assert!(close(
            (jaro_winkler("MARTHA", "MARHTA") * 1000.0).round(),
            961.0
        ));
        assert!(close(
            (jaro_winkler("DWAYNE", "DUANE") * 1000.0).round(),
            840.0
        ));
        assert!(close(
            (jaro_winkler("DIXON", "DICKSONX") * 1000.0).round(),
            813.0
        ));
        assert!(close(jaro_winkler("", ""), 1.0));
        assert!(close(jaro_winkler("A", ""), 0.0));
        assert!(close(jaro_winkler("ABC", "XYZ"), 0.0));
    }

    #[test]
    fn levenshtein_known_values() {
        assert_eq!(levenshtein("KITTEN", "SITTING"), 3);
        assert_eq!(levenshtein("", "ABC"), 3);
        assert_eq!(levenshtein("NGUYEN", "NGYUEN"), 2);
        assert_eq!(levenshtein("GARCIA", "GARCIA"), 0);
        assert_eq!(levenshtein("Ñandú", "Nandu"), 2);
        let long_a = "A".repeat(70);
        let long_b = format!("{}B", "A".repeat(69));
        assert_eq!(levenshtein(&long_a, &long_b), 1);
    }

    fn lev_reference(a: &str, b: &str) -> usize {
        let ac: Vec<char> = a.chars().collect();
        let bc: Vec<char> = b.chars().collect();
        levenshtein_dp(&ac, &bc)
    }

    fn jaro_reference(a: &str, b: &str) -> f64 {
        let (a, b) = if (a.len(), a) <= (b.len(), b) {
            (a, b)
        } else {
            (b, a)
        };
        if a.is_empty() {
            return if b.is_empty() { 1.0 } else { 0.0 };
        }
        let ac: Vec<char> = a.chars().collect();
        let bc: Vec<char> = b.chars().collect();
        let (m, t, la, lb) = jaro_counts_chars(&ac, &bc);
        if m == 0 {
            return 0.0;
        }
        let m = m as f64;
        (m / la as f64 + m / lb as f64 + (m - (t / 2) as f64) / m) / 3.0
    }

    proptest! {
        #[test]
        fn myers_matches_dynamic_programming(a in "[A-E]{0,70}", b in "[A-E]{0,70}") {
            prop_assert_eq!(levenshtein(&a, &b), lev_reference(&a, &b));
        }

        #[test]
        fn bit_parallel_jaro_matches_reference(a in "[A-F]{0,64}", b in "[A-F]{0,64}") {
            prop_assert!(close(jaro(&a, &b), jaro_reference(&a, &b)));
        }

        #[test]
        fn both_mask_tables_agree_with_reference(a in "[ A-Za-z0-9@_]{0,20}", b in "[ A-Za-z0-9@_]{0,20}") {
            prop_assert!(close(jaro(&a, &b), jaro_reference(&a, &b)));
            prop_assert_eq!(levenshtein(&a, &b), lev_reference(&a, &b));
        }

        #[test]
        fn sliding_window_counts_match_table_counts(a in "[ A-E_]{0,64}", b in "[ A-E_]{0,64}") {
            let (short, long) = if (a.len(), &a) <= (b.len(), &b) { (&a, &b) } else { (&b, &a) };
            prop_assert_eq!(
                jaro_counts_upper(short.as_bytes(), long.as_bytes()),
                Some(jaro_counts_ascii::<Upper>(short.as_bytes(), long.as_bytes()))
            );
            prop_assert_eq!(jaro_counts_upper(b"A", b"a"), None);
        }

        #[test]
        fn similarity_is_symmetric_and_bounded(a in "[A-Z]{0,12}", b in "[A-Z]{0,12}") {
            let x = jaro_winkler(&a, &b);
            prop_assert!(close(x, jaro_winkler(&b, &a)));
            prop_assert!((0.0..=1.0).contains(&x));
            prop_assert_eq!(levenshtein(&a, &b), levenshtein(&b, &a));
        }
    }
}
