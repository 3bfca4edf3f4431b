//! Phonetic keys: Double Metaphone codes plus a vowel skeleton.
//!
//! Double Metaphone ignores non-initial vowels, so on its own it equates different names
//! (MOHAMMED/MAHMOUD, HUSSEIN/HASSAN, MARIA/MARIO all share a code). A phonetic agreement
//! therefore also requires the same vowel skeleton: the sequence of vowel classes
//! (A | E,I,Y | O,U) with repeats collapsed, and the same kind of ending.

use rphonetic::DoubleMetaphone;

const CODE_LENGTH: usize = 6;

/// Primary and alternate Double Metaphone codes (alternate omitted when equal or empty).
pub fn metaphone_codes(token: &str) -> Vec<String> {
    // The encoder slices by byte and panics on multi-byte input: feed it letters A-Z only.
    let letters: String = if token.bytes().all(|b| b.is_ascii_uppercase()) {
        token.to_string()
    } else {
        crate::normalize(token)
            .chars()
            .filter(char::is_ascii_uppercase)
            .collect()
    };
    if letters.is_empty() {
        return Vec::new();
    }
    let dm = DoubleMetaphone::new(Some(CODE_LENGTH));
    let r = dm.double_metaphone(&letters);
    let (p, a) = (r.primary(), r.alternate());
    let mut out = Vec::with_capacity(2);
    if !p.is_empty() {
        out.push(p.clone());
    }
    if !a.is_empty() && a != p {
        out.push(a);
    }
    out
}

/// Vowel classes of an uppercase ASCII token, consecutive repeats collapsed, followed by `.`
/// when the token ends in a consonant. A final E after a consonant counts as silent
/// (CATHERINE ends like CATHRYN) but any other final vowel is kept, because it often marks a
/// different name (JUAN/JUANA, IVAN/IVANA, MARIO/MARIA).
pub fn vowel_skeleton(token: &str) -> String {
    let bytes = token.as_bytes();
    let n = bytes.len();
    let silent_final_e = n >= 3 && bytes[n - 1] == b'E' && !is_vowel_at(bytes, n - 2);
    let end = if silent_final_e { n - 1 } else { n };
    let mut out = String::new();
    for (i, &b) in bytes[..end].iter().enumerate() {
        let class = match b {
            b'A' => 'A',
            b'E' | b'I' => 'I',
            b'Y' if i > 0 => 'I',
            b'O' | b'U' => 'O',
            _ => continue,
        };
        if !out.ends_with(class) {
            out.push(class);
        }
    }
    if end > 0 && !is_vowel_at(bytes, end - 1) {
        out.push('.');
    }
    out
}

fn is_vowel_at(bytes: &[u8], i: usize) -> bool {
    matches!(bytes[i], b'A' | b'E' | b'I' | b'O' | b'U') || (bytes[i] == b'Y' && i > 0)
}

/// True when two tokens share a Double Metaphone code and their vowel skeletons agree.
pub fn sounds_alike(a: &str, b: &str) -> bool {
    if vowel_skeleton(a) != vowel_skeleton(b) {
        return false;
    }
    let ca = metaphone_codes(a);
    let cb = metaphone_codes(b);
    ca.iter().any(|x| cb.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_examples() {
        assert_eq!(vowel_skeleton("MARIA"), "AIA");
        assert_eq!(vowel_skeleton("MARIO"), "AIO");
        assert_eq!(vowel_skeleton("YURI"), "OI");
        assert_eq!(vowel_skeleton("NGUYEN"), "OI.");
        assert_eq!(vowel_skeleton("JUAN"), "OA.");
        assert_eq!(vowel_skeleton("JUANA"), "OA");
        assert_eq!(vowel_skeleton("CATHERINE"), vowel_skeleton("KATHRYN"));
    }

    #[test]
    fn sounds_alike_examples() {
        assert!(sounds_alike("STEPHEN", "STEVEN"));
        assert!(sounds_alike("KATHRYN", "CATHERINE"));
        assert!(sounds_alike("TCHAIKOVSKY", "CHAYKOVSKIY"));
        assert!(!sounds_alike("MARIA", "MARIO"));
        assert!(!sounds_alike("MOHAMMED", "MAHMOUD"));
        assert!(!sounds_alike("HUSSEIN", "HASSAN"));
        assert!(!sounds_alike("PETROV", "PETROS"));
        assert!(!sounds_alike("JUAN", "JUANA"));
        assert!(!sounds_alike("IVAN", "IVANA"));
        assert_eq!(metaphone_codes("Ñandú"), metaphone_codes("NANDU"));
        assert!(metaphone_codes("123").is_empty());
    }
}
