//! Name handling seen from the resolver: one adapter over name parsing and comparison.
//!
//! The resolver talks to names only through [`parse_name`], [`compare_names`], [`normalize`]
//! and [`phonetic`]. Until `verity-names` publishes its contract (`parse`, `compare`,
//! `canonical`), a small private fallback lives here; switching is a change to this file only.

use std::collections::HashMap;
use std::sync::OnceLock;
use verity_model::PersonName;

/// Interned-token name comparison (see docs/dev/names-prepared-api.md): prepare each name once
/// into a [`TokenTable`], then [`compare_levels_prepared`] returns exactly [`compare_levels`].
pub use verity_names::{
    compare_levels_parts, compare_levels_prepared, NameLevels, PreparedName, SharedTokenTable,
    TokenId, TokenTable,
};
pub use verity_names::{NameAgreement, NameComparison, ParsedName};

/// Uppercase ASCII form: transliterated, punctuation and apostrophes dropped, hyphens to spaces.
pub fn normalize(s: &str) -> String {
    // ASCII input transliterates to itself: skip the copy (most fields of most files)
    let ascii = if s.is_ascii() {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(deunicode::deunicode(s))
    };
    let mut out = String::with_capacity(ascii.len());
    let mut last_space = true;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
            last_space = false;
        } else if (c == '-' || c.is_whitespace() || c == ',') && !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

fn tokens(s: &str) -> Vec<String> {
    normalize(s)
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses a recorded name into normalized parts.
pub fn parse_name(n: &PersonName) -> ParsedName {
    if USE_VERITY_NAMES {
        return verity_names::parse(n);
    }
    ParsedName {
        given: tokens(&n.given),
        middle: tokens(&n.middle),
        family: tokens(&n.family),
        original: n.original.clone(),
    }
}

/// Whether the shared `verity-names` implementation is used (else the private fallback, which is
/// about 3x faster on the benchmark with equal accuracy there but knows fewer name cultures).
pub const USE_VERITY_NAMES: bool = true;

/// Compares two parsed names part by part (with human-readable notes).
pub fn compare_names(a: &ParsedName, b: &ParsedName) -> NameComparison {
    if USE_VERITY_NAMES {
        return verity_names::compare(a, b);
    }
    fallback::compare(a, b, true)
}

/// Same decisions as [`compare_names`] without building notes (the scoring hot path).
pub fn compare_names_fast(a: &ParsedName, b: &ParsedName) -> NameComparison {
    if USE_VERITY_NAMES {
        return verity_names::compare_fast(a, b);
    }
    fallback::compare(a, b, false)
}

/// The levels of [`compare_names_fast`]: given, middle, family, swapped.
pub fn compare_levels(
    a: &ParsedName,
    b: &ParsedName,
) -> (NameAgreement, NameAgreement, NameAgreement, bool) {
    if USE_VERITY_NAMES {
        return verity_names::compare_levels(a, b);
    }
    let n = compare_names_fast(a, b);
    (n.given, n.middle, n.family, n.swapped)
}

/// American Soundex of the first token (blocking key and phonetic agreement).
pub fn phonetic(token: &str) -> String {
    phonetic_code(token).as_str().to_string()
}

/// A [`phonetic`] code held inline (empty, or 4 ASCII bytes): batch blocking hashes codes of
/// every record without allocating a string for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhoneticCode {
    len: u8,
    bytes: [u8; 4],
}

impl PhoneticCode {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).min(4)]
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// [`phonetic`] without allocating.
pub fn phonetic_code(token: &str) -> PhoneticCode {
    let mut out = PhoneticCode::default();
    let mut n = 0usize;
    let mut last = 0u8;
    for (i, c) in token.bytes().filter(u8::is_ascii_alphabetic).enumerate() {
        let code = match c.to_ascii_uppercase() {
            b'B' | b'F' | b'P' | b'V' => b'1',
            b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
            b'D' | b'T' => b'3',
            b'L' => b'4',
            b'M' | b'N' => b'5',
            b'R' => b'6',
            b'H' | b'W' => continue,
            _ => 0,
        };
        if i == 0 {
            out.bytes[n] = c.to_ascii_uppercase();
            n += 1;
        } else if code != 0 && code != last {
            out.bytes[n] = code;
            n += 1;
        }
        last = code;
        if n == 4 {
            break;
        }
    }
    if n > 0 {
        while n < 4 {
            out.bytes[n] = b'0';
            n += 1;
        }
    }
    out.len = n as u8;
    out
}

/// Variant groups of given names (nickname table), keyed by normalized token.
type GroupMap = HashMap<String, Vec<u32>, fnv::FnvBuildHasher>;

fn nickname_groups() -> &'static GroupMap {
    static GROUPS: OnceLock<GroupMap> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let text = include_str!("../../../data/names/nicknames/names.csv");
        let mut formal_ids: HashMap<String, u32> = HashMap::new();
        let mut groups: GroupMap = GroupMap::default();
        for line in text.lines().skip(1) {
            let mut parts = line.split(',');
            let (Some(formal), Some(_), Some(nick)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let formal = normalize(formal);
            let next = formal_ids.len() as u32;
            let id = *formal_ids.entry(formal.clone()).or_insert(next);
            for name in [formal, normalize(nick)] {
                let g = groups.entry(name).or_default();
                if !g.contains(&id) {
                    g.push(id);
                }
            }
        }
        groups
    })
}

/// True when two normalized given-name tokens are in the same nickname family.
pub fn same_variant_family(a: &str, b: &str) -> bool {
    let groups = nickname_groups();
    match (groups.get(a), groups.get(b)) {
        (Some(x), Some(y)) => x.iter().any(|g| y.contains(g)),
        _ => false,
    }
}

mod fallback {
    use super::*;
    use crate::strsim::{jaro_winkler, levenshtein};

    fn join(v: &[String]) -> std::borrow::Cow<'_, str> {
        if v.len() == 1 {
            std::borrow::Cow::Borrowed(v[0].as_str())
        } else {
            std::borrow::Cow::Owned(v.join(" "))
        }
    }

    fn part(a: &[String], b: &[String], nick: bool) -> (NameAgreement, f64) {
        if a.is_empty() || b.is_empty() {
            return (NameAgreement::Missing, 0.0);
        }
        if a == b {
            return (NameAgreement::Exact, 1.0);
        }
        let (ja, jb) = (join(a), join(b));
        let sim = jaro_winkler(&ja, &jb);
        let (fa, fb) = (&a[0], &b[0]);
        if nick && same_variant_family(fa, fb) && a.len() == b.len() {
            return (NameAgreement::Equivalent, sim);
        }
        if a.len() == b.len()
            && sim >= 0.8
            && phonetic(&ja.replace(' ', "")) == phonetic(&jb.replace(' ', ""))
        {
            return (NameAgreement::Phonetic, sim);
        }
        let short = ja.len().min(jb.len());
        let close = || {
            let lev = levenshtein(&ja, &jb);
            (lev <= 1 && short >= 4) || (lev <= 2 && short >= 8)
        };
        if sim >= 0.92 || (short >= 4 && ja.len().abs_diff(jb.len()) <= 2 && close()) {
            return (NameAgreement::Fuzzy, sim);
        }
        if (fa.len() == 1 || fb.len() == 1) && fa.as_bytes().first() == fb.as_bytes().first() {
            return (NameAgreement::Initial, sim);
        }
        // One record holds a subset of the other's tokens (compound surnames, dropped parts).
        let overlap = a.iter().any(|t| t.len() > 1 && b.contains(t));
        if overlap {
            return (NameAgreement::Partial, sim);
        }
        (NameAgreement::Disagree, sim)
    }

    pub(super) fn compare(a: &ParsedName, b: &ParsedName, with_notes: bool) -> NameComparison {
        let (g, gs) = part(&a.given, &b.given, true);
        let (f, fs) = part(&a.family, &b.family, false);
        let (m, _) = part(&a.middle, &b.middle, true);
        let mut notes = Vec::new();
        let weak = |x: NameAgreement| x >= NameAgreement::Initial;
        if weak(g) && weak(f) {
            let (cg, cgs) = part(&a.given, &b.family, true);
            let (cf, cfs) = part(&a.family, &b.given, false);
            if cg <= NameAgreement::Fuzzy && cf <= NameAgreement::Fuzzy {
                if with_notes {
                    notes.push(format!(
                        "given/family swapped: {} {} ~ {} {}",
                        a.given.join(" "),
                        a.family.join(" "),
                        b.given.join(" "),
                        b.family.join(" ")
                    ));
                }
                return NameComparison {
                    given: cg,
                    middle: m,
                    family: cf,
                    swapped: true,
                    similarity: ((cgs + cfs) / 2.0) as f32,
                    notes,
                };
            }
        }
        for (label, x, pa, pb) in if with_notes {
            vec![
                ("given", g, &a.given, &b.given),
                ("middle", m, &a.middle, &b.middle),
                ("family", f, &a.family, &b.family),
            ]
        } else {
            Vec::new()
        } {
            notes.push(format!(
                "{label}: {} ~ {} ({x:?})",
                pa.join(" "),
                pb.join(" ")
            ));
        }
        NameComparison {
            given: g,
            middle: m,
            family: f,
            swapped: false,
            similarity: ((gs + fs) / 2.0) as f32,
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pn(g: &str, m: &str, f: &str) -> ParsedName {
        parse_name(&PersonName::new(g, m, f))
    }

    #[test]
    fn normalization_drops_accents_and_punctuation() {
        assert_eq!(normalize(" José-Luis  O'Brien "), "JOSE LUIS OBRIEN");
    }

    #[test]
    fn ascii_transliterates_to_itself() {
        // the ASCII fast path of `normalize` skips deunicode; deunicode's output is ASCII, so
        // `normalize(deunicode(s))` is the path without the shortcut (DEL, which deunicode
        // drops, is dropped by the loop too)
        for c in (0u8..128).map(char::from) {
            let s = format!("a{c}b {c}-{c}C");
            assert_eq!(normalize(&s), normalize(&deunicode::deunicode(&s)), "{c:?}");
        }
        assert_eq!(normalize("  ab-c,d\te\u{7f}f  "), "AB C D EF");
    }

    #[test]
    fn nicknames_and_swaps_are_recognised() {
        let c = compare_names(&pn("William", "", "Smith"), &pn("Bill", "", "Smith"));
        assert_eq!(c.given, NameAgreement::Equivalent);
        assert_eq!(c.family, NameAgreement::Exact);
        let s = compare_names(&pn("Wei", "", "Zhang"), &pn("Zhang", "", "Wei"));
        assert!(s.swapped);
        assert!(s.given <= NameAgreement::Equivalent);
        let d = compare_names(&pn("Maria", "", "Lopez"), &pn("Ana", "", "Perez"));
        assert_eq!(
            (d.given, d.family),
            (NameAgreement::Disagree, NameAgreement::Disagree)
        );
    }

    #[test]
    fn fallback_recognises_nicknames_and_swaps() {
        let c = fallback::compare(&pn("William", "", "Smith"), &pn("Bill", "", "Smith"), true);
        assert_eq!(
            (c.given, c.family),
            (NameAgreement::Equivalent, NameAgreement::Exact)
        );
        assert_eq!(c.notes.len(), 3);
        let s = fallback::compare(&pn("Wei", "", "Zhang"), &pn("Zhang", "", "Wei"), false);
        assert!(s.swapped && s.notes.is_empty());
    }

    #[test]
    fn soundex_matches_reference_values() {
        assert_eq!(phonetic("ROBERT"), "R163");
        assert_eq!(phonetic("RUPERT"), "R163");
        assert_eq!(phonetic("ASHCRAFT"), "A261");
        assert_eq!(phonetic(""), "");
        // short names (zero padding), digits and non-letters, long names; a leading H or W
        // is skipped with its letter (as the blocking keys have always been spelled)
        assert_eq!(phonetic("HUANG"), "5200");
        assert_eq!(phonetic("LI"), "L000");
        assert_eq!(phonetic("O'BRIEN-2"), "O165");
        assert_eq!(phonetic("123"), "");
        assert_eq!(phonetic("WASHINGTONIANS"), "2523");
        assert_eq!(phonetic_code("ROBERT").as_bytes(), b"R163");
        assert!(phonetic_code("").is_empty());
    }
}
