//! Name reference tables, embedded at build time and parsed once on first use.
//!
//! Every table is validated while loading: a malformed row is a [`TableError`] naming the file
//! and 1-based line. The embedded tables are checked by a unit test, so the lazily loaded
//! [`tables()`] can treat a failure as a broken build invariant.

use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

/// FNV-1a (the `fnv` crate): the tables are fixed embedded data (no adversarial keys), and
/// lookups of short name tokens sit on the comparison hot path, where SipHash costs more than
/// the rest of a lookup.
pub use fnv::FnvHasher as Fnv;

pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;
/// Hash set of name tokens.
pub type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<Fnv>>;

const VARIANTS: &str = include_str!("../../../data/names/variants/variants.csv");
const NICKNAMES_VENDORED: &str = include_str!("../../../data/names/nicknames/names.csv");
const NICKNAMES_EXTRA: &str = include_str!("../../../data/names/variants/nicknames_extra.csv");
const PARTICLES: &str = include_str!("../../../data/names/variants/particles.csv");
const SURNAME_ENDINGS: &str = include_str!("../../../data/names/variants/surname_endings.csv");
const EAST_ASIAN: &str = include_str!("../../../data/names/variants/east_asian_surnames.csv");
const COMMON_SURNAMES: &str = include_str!("../../../data/names/variants/common_surnames.txt");

/// A malformed row in a name table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct TableError {
    pub file: &'static str,
    /// 1-based line number.
    pub line: usize,
    pub problem: String,
}

/// What a particle does inside a family name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticleKind {
    /// Article or preposition that binds to the following surname (DE, LA, VAN, AL).
    Article,
    /// Patronymic marker that binds to the following name (BIN, IBN, BINT, BEN).
    Patronymic,
    /// Conjunction between two surnames (Spanish Y, Portuguese E); dropped when joining.
    Conjunction,
}

/// All name tables, loaded together.
#[derive(Debug, Default)]
pub struct Tables {
    /// Token -> its variant family.
    pub variants: HashMap<String, Variant>,
    /// Name -> names it is a nickname of or has as a nickname (one hop, undirected, as listed:
    /// never closed transitively and never merged through variant families).
    pub nicknames: HashMap<String, HashSet<String>>,
    pub particles: HashMap<String, ParticleKind>,
    /// Gendered/transliteration surname endings: (suffix, replacement).
    pub surname_endings: Vec<(String, String)>,
    /// Common East-Asian family names (normalized), used to detect family-first order.
    pub east_asian_surnames: HashSet<String>,
    /// The most frequent U.S. surnames (1990 Census), to tell "ZHANG WEI" from "LEE SMITH".
    pub common_surnames: HashSet<String>,
    /// Data version line from the variants file (`# version: ...`).
    pub version: String,
}

fn is_name_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// Non-comment, non-blank lines with their 1-based line numbers.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn err(file: &'static str, line: usize, problem: impl Into<String>) -> TableError {
    TableError {
        file,
        line,
        problem: problem.into(),
    }
}

fn fields<'a>(
    file: &'static str,
    line: usize,
    text: &'a str,
    expected: usize,
) -> Result<Vec<&'a str>, TableError> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != expected {
        return Err(err(
            file,
            line,
            format!(
                "expected {expected} comma-separated fields, found {}",
                parts.len()
            ),
        ));
    }
    Ok(parts)
}

/// A token's variant family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// First member of the family.
    pub canonical: String,
    /// Family-name-only family (e.g. Korean KIM/GIM); such tokens are not variants as given names.
    pub family_only: bool,
}

/// Parses the variant-family table: `kind,culture,MEMBER MEMBER ...` (first member canonical).
/// A token may belong to only one family, so `canonical` is well defined.
pub fn parse_variants(
    file: &'static str,
    text: &str,
) -> Result<(HashMap<String, Variant>, String), TableError> {
    let version = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("# version:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    if version.is_empty() {
        return Err(err(file, 1, "missing '# version:' header line"));
    }
    let mut canonical: HashMap<String, Variant> = HashMap::default();
    let mut header_seen = false;
    for (line, text) in data_lines(text) {
        let f = fields(file, line, text, 3)?;
        if !header_seen {
            header_seen = true;
            if f == ["kind", "culture", "members"] {
                continue;
            }
            return Err(err(file, line, "expected header 'kind,culture,members'"));
        }
        if !matches!(f[0], "given" | "family" | "any") {
            return Err(err(
                file,
                line,
                format!("kind '{}' is not given, family or any", f[0]),
            ));
        }
        if f[1].is_empty() || !f[1].bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(err(
                file,
                line,
                format!("culture '{}' must be lowercase a-z or _", f[1]),
            ));
        }
        let members: Vec<&str> = f[2].split_whitespace().collect();
        if members.len() < 2 {
            return Err(err(
                file,
                line,
                "a variant family needs at least two members",
            ));
        }
        let canon = members[0];
        for m in &members {
            if !is_name_token(m) {
                return Err(err(
                    file,
                    line,
                    format!("member '{m}' must be uppercase A-Z"),
                ));
            }
            if let Some(prev) = canonical.get(*m) {
                let prev = &prev.canonical;
                return Err(err(
                    file,
                    line,
                    format!("member '{m}' already belongs to family of '{prev}'"),
                ));
            }
            let variant = Variant {
                canonical: canon.to_string(),
                family_only: f[0] == "family",
            };
            canonical.insert((*m).to_string(), variant);
        }
    }
    Ok((canonical, version))
}

/// Parses a nickname table `name1,has_nickname,name2` (header line required, any letter case)
/// into pairs of normalized names (uppercase, periods and spaces removed).
pub fn parse_nicknames(
    file: &'static str,
    text: &str,
) -> Result<Vec<(String, String)>, TableError> {
    let mut pairs = Vec::new();
    let mut header_seen = false;
    for (line, text) in data_lines(text) {
        let f = fields(file, line, text, 3)?;
        if !header_seen {
            header_seen = true;
            if f == ["name1", "relationship", "name2"] {
                continue;
            }
            return Err(err(
                file,
                line,
                "expected header 'name1,relationship,name2'",
            ));
        }
        if f[1] != "has_nickname" {
            return Err(err(
                file,
                line,
                format!("relationship '{}' is not has_nickname", f[1]),
            ));
        }
        // The vendored table carries a few dotted forms (k.c.); normalize like record names.
        let a = crate::normalize(f[0]).replace(' ', "");
        let b = crate::normalize(f[2]).replace(' ', "");
        for n in [&a, &b] {
            if !is_name_token(n) {
                return Err(err(
                    file,
                    line,
                    format!("name '{n}' must be letters A-Z only"),
                ));
            }
        }
        pairs.push((a, b));
    }
    Ok(pairs)
}

/// Parses `particle,kind`.
pub fn parse_particles(
    file: &'static str,
    text: &str,
) -> Result<HashMap<String, ParticleKind>, TableError> {
    let mut out = HashMap::default();
    let mut header_seen = false;
    for (line, text) in data_lines(text) {
        let f = fields(file, line, text, 2)?;
        if !header_seen {
            header_seen = true;
            if f == ["particle", "kind"] {
                continue;
            }
            return Err(err(file, line, "expected header 'particle,kind'"));
        }
        if !is_name_token(f[0]) {
            return Err(err(
                file,
                line,
                format!("particle '{}' must be uppercase A-Z", f[0]),
            ));
        }
        let kind = match f[1] {
            "article" => ParticleKind::Article,
            "patronymic" => ParticleKind::Patronymic,
            "conjunction" => ParticleKind::Conjunction,
            other => {
                return Err(err(
                    file,
                    line,
                    format!("kind '{other}' is not article, patronymic or conjunction"),
                ))
            }
        };
        if out.insert(f[0].to_string(), kind).is_some() {
            return Err(err(file, line, format!("particle '{}' listed twice", f[0])));
        }
    }
    Ok(out)
}

/// Parses `suffix,replacement` (replacement may be empty).
pub fn parse_endings(file: &'static str, text: &str) -> Result<Vec<(String, String)>, TableError> {
    let mut out = Vec::new();
    let mut header_seen = false;
    for (line, text) in data_lines(text) {
        let f = fields(file, line, text, 2)?;
        if !header_seen {
            header_seen = true;
            if f == ["suffix", "replacement"] {
                continue;
            }
            return Err(err(file, line, "expected header 'suffix,replacement'"));
        }
        if !is_name_token(f[0]) || !(f[1].is_empty() || is_name_token(f[1])) {
            return Err(err(
                file,
                line,
                "suffix must be uppercase A-Z; replacement empty or uppercase A-Z",
            ));
        }
        if f[0] == f[1] {
            return Err(err(file, line, "suffix and replacement are identical"));
        }
        out.push((f[0].to_string(), f[1].to_string()));
    }
    Ok(out)
}

/// Parses `culture,surname`.
pub fn parse_east_asian(file: &'static str, text: &str) -> Result<HashSet<String>, TableError> {
    let mut out = HashSet::default();
    let mut header_seen = false;
    for (line, text) in data_lines(text) {
        let f = fields(file, line, text, 2)?;
        if !header_seen {
            header_seen = true;
            if f == ["culture", "surname"] {
                continue;
            }
            return Err(err(file, line, "expected header 'culture,surname'"));
        }
        if !matches!(f[0], "chinese" | "korean" | "vietnamese" | "japanese") {
            return Err(err(
                file,
                line,
                format!(
                    "culture '{}' is not chinese, korean, vietnamese or japanese",
                    f[0]
                ),
            ));
        }
        if !is_name_token(f[1]) {
            return Err(err(
                file,
                line,
                format!("surname '{}' must be uppercase A-Z", f[1]),
            ));
        }
        out.insert(f[1].to_string());
    }
    Ok(out)
}

/// Parses a one-name-per-line list.
pub fn parse_name_list(file: &'static str, text: &str) -> Result<HashSet<String>, TableError> {
    let mut out = HashSet::default();
    for (line, text) in data_lines(text) {
        if !is_name_token(text) {
            return Err(err(
                file,
                line,
                format!("name '{text}' must be uppercase A-Z"),
            ));
        }
        out.insert(text.to_string());
    }
    Ok(out)
}

/// Loads and validates every embedded table.
pub fn load() -> Result<Tables, TableError> {
    let (variants, version) = parse_variants("data/names/variants/variants.csv", VARIANTS)?;
    let mut nicknames: HashMap<String, HashSet<String>> = HashMap::default();
    let vendored = parse_nicknames("data/names/nicknames/names.csv", NICKNAMES_VENDORED)?;
    let extra = parse_nicknames("data/names/variants/nicknames_extra.csv", NICKNAMES_EXTRA)?;
    for (a, b) in vendored.into_iter().chain(extra) {
        if a == b {
            continue;
        }
        nicknames.entry(a.clone()).or_default().insert(b.clone());
        nicknames.entry(b).or_default().insert(a);
    }
    Ok(Tables {
        nicknames,
        particles: parse_particles("data/names/variants/particles.csv", PARTICLES)?,
        surname_endings: parse_endings("data/names/variants/surname_endings.csv", SURNAME_ENDINGS)?,
        east_asian_surnames: parse_east_asian(
            "data/names/variants/east_asian_surnames.csv",
            EAST_ASIAN,
        )?,
        common_surnames: parse_name_list(
            "data/names/variants/common_surnames.txt",
            COMMON_SURNAMES,
        )?,
        variants,
        version,
    })
}

static TABLES: OnceLock<Tables> = OnceLock::new();

/// The embedded tables, loaded on first use.
pub fn tables() -> &'static Tables {
    TABLES.get_or_init(|| {
        // The embedded data is fixed at build time and validated by `embedded_tables_load`.
        load().expect("embedded name tables are validated by the test suite")
    })
}

/// Validates the embedded tables (for start-up self-checks), returning the data version.
pub fn validate_embedded() -> Result<String, TableError> {
    load().map(|t| t.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_load() {
        let t = load().expect("embedded tables must be valid");
        assert!(!t.version.is_empty());
        assert!(
            t.variants.len() > 900,
            "variant tokens: {}",
            t.variants.len()
        );
        assert!(t.nicknames.len() > 1000);
        assert_eq!(t.particles.get("DE"), Some(&ParticleKind::Article));
    }

    #[test]
    fn bad_variant_row_names_file_and_line() {
        let text = "# version: 1\nkind,culture,members\ngiven,arabic,MOHAMMED MUHAMMAD\ngiven,arabic,HUSSEIN hus4in\n";
        let e =
            parse_variants("bad.csv", text).expect_err("lowercase/digit member must be rejected");
        assert_eq!((e.file, e.line), ("bad.csv", 4));
        assert!(e.to_string().starts_with("bad.csv:4:"), "{e}");
    }

    #[test]
    fn duplicate_variant_member_is_rejected() {
        let text = "# version: 1\nkind,culture,members\ngiven,x,LEE LI\nfamily,x,LI YI\n";
        let e = parse_variants("dup.csv", text).expect_err("member in two families");
        assert_eq!(e.line, 4);
        assert!(e.problem.contains("already belongs"));
    }

    #[test]
    fn missing_version_is_rejected() {
        assert!(parse_variants("v.csv", "kind,culture,members\n").is_err());
    }

    #[test]
    fn bad_nickname_rows_are_rejected() {
        let e = parse_nicknames("n.csv", "name1,relationship,name2\njose,has_nickname\n")
            .expect_err("2 fields");
        assert_eq!(e.line, 2);
        let e = parse_nicknames(
            "n.csv",
            "name1,relationship,name2\njose,is_brother_of,pepe\n",
        )
        .expect_err("relation");
        assert!(e.problem.contains("is_brother_of"));
        assert!(parse_nicknames("n.csv", "a,b,c\n").is_err());
    }

    #[test]
    fn bad_particle_ending_and_surname_rows_are_rejected() {
        assert_eq!(
            parse_particles("p.csv", "particle,kind\nDE,article\nLA,thing\n").map_err(|e| e.line),
            Err(3)
        );
        assert_eq!(
            parse_endings("e.csv", "suffix,replacement\nOVA,OV\nova,\n").map_err(|e| e.line),
            Err(3)
        );
        assert_eq!(
            parse_east_asian("s.csv", "culture,surname\nthai,SOMCHAI\n").map_err(|e| e.line),
            Err(2)
        );
        assert_eq!(
            parse_name_list("l.txt", "# c\nSMITH\nO BRIEN\n").map_err(|e| e.line),
            Err(3)
        );
    }
}
