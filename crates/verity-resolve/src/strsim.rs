//! String similarity used by comparators (byte-wise; inputs are normalized ASCII).

/// Jaro–Winkler similarity in 0..1 (prefix scale 0.1, prefix up to 4).
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a.len() > 64 || b.len() > 64 {
        // names never get this long; compare the first 64 bytes
        return jaro_winkler_bytes(&a[..a.len().min(64)], &b[..b.len().min(64)]);
    }
    jaro_winkler_bytes(a, b)
}

fn jaro_winkler_bytes(a: &[u8], b: &[u8]) -> f64 {
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut b_used = [false; 64];
    let mut a_matched = [0u8; 64];
    let mut m = 0usize;
    for (i, &ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_used[j] && b[j] == ca {
                b_used[j] = true;
                a_matched[m] = ca;
                m += 1;
                break;
            }
        }
    }
    if m == 0 {
        return 0.0;
    }
    let b_matched = b
        .iter()
        .zip(&b_used[..b.len()])
        .filter(|(_, &u)| u)
        .map(|(&c, _)| c);
    let transpositions = a_matched[..m]
        .iter()
        .zip(b_matched)
        .filter(|(x, y)| **x != *y)
        .count()
        / 2;
    let mf = m as f64;
    let jaro =
        (mf / a.len() as f64 + mf / b.len() as f64 + (mf - transpositions as f64) / mf) / 3.0;
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count() as f64;
    jaro + prefix * 0.1 * (1.0 - jaro)
}

/// Levenshtein edit distance over bytes.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// True when two equal-length strings differ in exactly one position or by one adjacent
/// transposition (the typical keying error in a number).
pub fn one_typo(a: &str, b: &str) -> bool {
    one_typo_bytes(a.as_bytes(), b.as_bytes())
}

/// [`one_typo`] on bytes.
pub fn one_typo_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() || a == b {
        return false;
    }
    // positions of the first two differences (no allocation: this runs per identifier pair)
    let mut diffs = [usize::MAX; 2];
    let mut n = 0;
    for i in 0..a.len() {
        if a[i] != b[i] {
            if n == 2 {
                return false;
            }
            diffs[n] = i;
            n += 1;
        }
    }
    match (n, diffs) {
        (1, _) => true,
        (2, [i, j]) => j == i + 1 && a[i] == b[j] && a[j] == b[i],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert!((jaro_winkler("MARTHA", "MARHTA") - 0.9611).abs() < 1e-3);
        assert!((jaro_winkler("DIXON", "DICKSONX") - 0.8133).abs() < 1e-3);
        assert_eq!(levenshtein("KITTEN", "SITTING"), 3);
        assert!(one_typo("123456789", "123456780"));
        assert!(one_typo("123456789", "123456798"));
        assert!(!one_typo("123456789", "123456789"));
        assert!(!one_typo("123456789", "123456700"));
    }
}
