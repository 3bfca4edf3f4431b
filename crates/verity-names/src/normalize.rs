//! Normalization of recorded name text to an uppercase ASCII Latin form.
//!
//! Steps: apostrophe-like marks are dropped (O'BRIEN -> OBRIEN); NFKD decomposition with
//! combining marks removed (JOSÉ -> JOSE); any remaining non-ASCII character transliterated
//! with `deunicode` (Мухаммед -> MUKHAMMED, 张伟 -> ZHANG WEI); then uppercase, periods dropped,
//! every other non-alphanumeric character (hyphen, comma, slash...) becomes a space, and runs
//! of spaces collapse. The output contains only `A-Z`, `0-9` and single inner spaces, so
//! normalizing twice changes nothing.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Characters recorded as apostrophes in names (O'Brien, D'Angelo, Hawai'ian okina).
fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '\u{02BB}' | '`' | '\u{00B4}' | '\u{02B9}'
    )
}

/// Uppercase ASCII Latin form of one token or phrase: NFKD, diacritics dropped, other scripts
/// transliterated (deunicode), punctuation removed, apostrophes dropped, hyphens -> space,
/// spaces collapsed.
pub fn normalize(s: &str) -> String {
    // ASCII text is its own NFKD form and needs no transliteration (most recorded names):
    // skip straight to the cleanup pass, which drops ASCII apostrophes itself.
    if s.is_ascii() {
        return clean_latin(s);
    }
    clean_latin(&to_latin(s))
}

/// NFKD with combining marks dropped and other scripts transliterated; apostrophes removed.
fn to_latin(s: &str) -> String {
    let mut latin = String::with_capacity(s.len());
    for c in s.chars().filter(|c| !is_apostrophe(*c)).nfkd() {
        if c.is_ascii() {
            latin.push(c);
        } else if is_combining_mark(c) {
            continue;
        } else if let Some(t) = deunicode::deunicode_char(c) {
            // Transliterations of adjacent ideographs come without separators; a space keeps
            // syllables apart (they are separate name parts in CJK).
            latin.push_str(t);
        } else {
            latin.push(' ');
        }
    }
    latin
}

/// Uppercase, periods and apostrophes dropped, other non-alphanumerics as single spaces.
fn clean_latin(latin: &str) -> String {
    let mut out = String::with_capacity(latin.len());
    let mut pending_space = false;
    for c in latin.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c.to_ascii_uppercase());
        } else if c == '.' || is_apostrophe(c) {
            continue;
        } else {
            pending_space = true;
        }
    }
    out
}

/// True when the text contains Han ideographs or Hangul, whose names are written family-first.
pub(crate) fn has_east_asian_script(s: &str) -> bool {
    s.chars().any(|c| {
        matches!(c as u32,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F
            | 0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(normalize("José  María"), "JOSE MARIA");
        assert_eq!(normalize("O'Brien"), "OBRIEN");
        assert_eq!(normalize("O’Brien"), "OBRIEN");
        assert_eq!(normalize("al-Rashid"), "AL RASHID");
        assert_eq!(normalize("Nguyễn"), "NGUYEN");
        assert_eq!(normalize("Müller-Lüdenscheidt"), "MULLER LUDENSCHEIDT");
        assert_eq!(normalize("Straße"), "STRASSE");
        assert_eq!(normalize("Мухаммед"), "MUKHAMMED");
        assert_eq!(normalize("  J. R.  "), "J R");
        assert_eq!(normalize("Ｊｏｓｅ"), "JOSE");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("---"), "");
    }

    #[test]
    fn han_is_transliterated_to_separate_syllables() {
        let n = normalize("张伟");
        assert_eq!(n, "ZHANG WEI");
        assert!(has_east_asian_script("张伟"));
        assert!(has_east_asian_script("김민준"));
        assert!(!has_east_asian_script("Kim"));
    }

    proptest! {
        /// The ASCII shortcut gives what the full path gives.
        #[test]
        fn ascii_shortcut_matches_full_path(s in "[ -~]{0,30}") {
            prop_assert_eq!(normalize(&s), clean_latin(&to_latin(&s)));
        }

        #[test]
        fn normalize_is_idempotent(s in "\\PC{0,30}") {
            let once = normalize(&s);
            prop_assert_eq!(normalize(&once), once.clone());
            prop_assert!(once.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' '));
        }
    }
}
