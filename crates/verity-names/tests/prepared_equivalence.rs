//! The prepared-name comparison must return exactly what `compare_levels` returns, and the
//! table's unit agreement exactly what `unit_agreement` returns (level and reason). Checked on a
//! corpus (the data-driven cases, Census names, a vocabulary dense in variants, nicknames,
//! particles and gendered forms) and by property tests over generated name pairs with
//! variants, nicknames, swaps, particles, moved boundaries, initials and typos, plus arbitrary
//! hand-built parts.

use proptest::prelude::*;
use std::sync::{Mutex, OnceLock, PoisonError};
use verity_model::PersonName;
use verity_names::compare::PartKind;
use verity_names::{
    compare_levels, compare_levels_prepared, parse, unit_agreement, ParsedName, TokenTable,
};

const CASES: &str = include_str!("name_cases.txt");
const MALE: &str = include_str!("../../../data/names/census/dist.male.first");
const FEMALE: &str = include_str!("../../../data/names/census/dist.female.first");
const SURNAMES: &str = include_str!("../../../data/names/variants/common_surnames.txt");

const KINDS: [PartKind; 4] = [
    PartKind::Given,
    PartKind::Middle,
    PartKind::Family,
    PartKind::Crossed,
];

/// Given names dense in variant families, nicknames, ABD- compounds and look-alikes.
const GIVEN: &[&str] = &[
    "Jose",
    "Pepe",
    "José",
    "Maria",
    "Mario",
    "María José",
    "Mariajose",
    "Mohammed",
    "Muhammad",
    "Mohamed",
    "Mohd",
    "Mahmoud",
    "William",
    "Bill",
    "Billy",
    "Roberto",
    "Beto",
    "Alberto",
    "Francisco",
    "Paco",
    "Pancho",
    "Guadalupe",
    "Lupe",
    "Jesus",
    "Chuy",
    "Alexander",
    "Oleksandr",
    "Aleksandr",
    "Alex",
    "Alejandro",
    "Stephen",
    "Steven",
    "Kathryn",
    "Catherine",
    "Anna",
    "Ana",
    "Wei",
    "Juan",
    "Juana",
    "Ivan",
    "Ivana",
    "Abdul Rahman",
    "Abdulrahman",
    "Abdel Rahman",
    "Abd al Rahman",
    "Abdurrahman",
    "Abdulaziz",
    "Hussein",
    "Husayn",
    "Hassan",
    "Ahmed",
    "Ahmad",
    "Yusuf",
    "Yousef",
    "Christopher",
    "Christophe",
    "Josefina",
    "Li",
    "Lin",
    "Kim",
    "Ben",
    "Al",
    "Van",
    "J",
    "M",
    "A",
    "Thi",
    "Minh",
    "Sean",
    "Shawn",
    "Elizabeth",
    "Liz",
    "Beth",
    "Maria de los Angeles",
    "Jean-Pierre",
    "Jean Pierre",
];

/// Family names with particles, compounds, gendered endings and transliterations.
const FAMILY: &[&str] = &[
    "Garcia",
    "Lopez",
    "Garcia Lopez",
    "Garcia y Lopez",
    "Garcia-Lopez",
    "Lopez Garcia",
    "de la Rosa",
    "Delarosa",
    "Rosa",
    "De Jesus",
    "Jesus",
    "al-Rashid",
    "Al Rashid",
    "Alrashid",
    "Rashid",
    "Rashed",
    "El Sayed",
    "Al Sayed",
    "Petrov",
    "Petrova",
    "Novak",
    "Novakova",
    "Kowalski",
    "Kowalska",
    "Zhang",
    "Chang",
    "Cheung",
    "Park",
    "Pak",
    "Bak",
    "Kim",
    "Gim",
    "Nguyen",
    "Ngyuen",
    "Nguyễn",
    "Hernandez",
    "Fernandez",
    "Gonzalez",
    "Gonzales",
    "van der Berg",
    "Vanderberg",
    "Berg",
    "Tchaikovsky",
    "Chaykovskiy",
    "Smith",
    "Smyth",
    "bin Laden",
    "Laden",
    "O'Brien",
    "Obrien",
    "Müller",
    "Muller",
    "Vasquez",
    "Vazquez",
    "Lee",
    "Wang",
    "Abdullah",
    "Abdallah",
    "Martinez",
    "Martin",
    "Rodriguez",
    "Rodrigues",
];

fn first_column(text: &str, n: usize) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .take(n)
        .map(String::from)
        .collect()
}

/// One table shared by every test in this file (building one interns the nickname graph).
fn shared_table() -> &'static Mutex<TokenTable> {
    static TABLE: OnceLock<Mutex<TokenTable>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(TokenTable::new()))
}

/// Checks both argument orders of names and of every unit pair; returns a description of
/// the first difference.
fn check_pair(t: &mut TokenTable, a: &ParsedName, b: &ParsedName) -> Result<(), String> {
    let (pa, pb) = (t.prepare(a), t.prepare(b));
    for (x, y, px, py) in [(a, b, &pa, &pb), (b, a, &pb, &pa)] {
        let want = compare_levels(x, y);
        let got = compare_levels_prepared(px, py, t);
        if got != want {
            return Err(format!("{x:?} / {y:?}: prepared {got:?}, strings {want:?}"));
        }
    }
    let units = |n: &ParsedName| -> Vec<String> {
        n.given
            .iter()
            .chain(&n.middle)
            .chain(&n.family)
            .cloned()
            .collect()
    };
    for u in units(a) {
        for v in units(b) {
            let (iu, iv) = (t.intern(&u), t.intern(&v));
            for kind in KINDS {
                for (x, y, ix, iy) in [(&u, &v, iu, iv), (&v, &u, iv, iu)] {
                    let want = unit_agreement(x, y, kind);
                    let got = t.unit_agreement(ix, iy, kind);
                    if got != want {
                        return Err(format!("unit {x:?} / {y:?} {kind:?}: {got:?} vs {want:?}"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn name_of(kind: &str, s: &str) -> PersonName {
    match kind {
        "given" => PersonName::new(s, "", ""),
        "middle" => PersonName::new("", s, ""),
        "family" => PersonName::new("", "", s),
        _ => {
            let parts: Vec<&str> = s.split(';').collect();
            PersonName::new(
                parts.first().copied().unwrap_or(""),
                parts.get(1).copied().unwrap_or(""),
                parts.get(2).copied().unwrap_or(""),
            )
        }
    }
}

#[test]
fn name_cases_file_is_equal() {
    let mut t = shared_table()
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut checked = 0;
    let mut all = Vec::new();
    for line in CASES.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(f.len(), 4, "{line}");
        let a = parse(&name_of(f[0], f[1]));
        let b = parse(&name_of(f[0], f[2]));
        if let Err(e) = check_pair(&mut t, &a, &b) {
            panic!("name_cases.txt `{line}`: {e}");
        }
        all.push(a);
        all.push(b);
        checked += 1;
    }
    assert!(checked > 100, "only {checked} cases");
    // Every case name against every other: cross-case pairs meet other rules.
    for a in &all {
        for b in &all {
            let want = compare_levels(a, b);
            let (pa, pb) = (t.prepare(a), t.prepare(b));
            assert_eq!(compare_levels_prepared(&pa, &pb, &t), want, "{a:?} / {b:?}");
        }
    }
}

#[test]
fn vocabulary_and_census_corpus_is_equal() {
    let mut t = shared_table()
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut given: Vec<String> = GIVEN.iter().map(|s| s.to_string()).collect();
    given.extend(first_column(MALE, 30));
    given.extend(first_column(FEMALE, 30));
    let mut family: Vec<String> = FAMILY.iter().map(|s| s.to_string()).collect();
    family.extend(first_column(SURNAMES, 40));
    // Given x family names on a diagonal walk, so each given meets several surnames.
    let names: Vec<ParsedName> = (0..given.len() + given.len() / 2)
        .map(|i| {
            let g = &given[i % given.len()];
            let f = &family[(i * 7 + i / given.len()) % family.len()];
            let m = if i % 5 == 0 {
                given[(i * 3) % given.len()].as_str()
            } else {
                ""
            };
            parse(&PersonName::new(g, m, f))
        })
        .collect();
    for a in &names {
        for b in &names {
            let (pa, pb) = (t.prepare(a), t.prepare(b));
            assert_eq!(
                compare_levels_prepared(&pa, &pb, &t),
                compare_levels(a, b),
                "{a:?} / {b:?}"
            );
        }
    }
    // Every unit against every unit, all kinds.
    let units: Vec<String> = given
        .iter()
        .chain(&family)
        .flat_map(|s| {
            let p = parse(&PersonName::new("", "", s));
            let q = parse(&PersonName::new(s, "", ""));
            p.family.into_iter().chain(q.given)
        })
        .collect();
    for u in &units {
        for v in &units {
            let (iu, iv) = (t.intern(u), t.intern(v));
            for kind in KINDS {
                assert_eq!(
                    t.unit_agreement(iu, iv, kind),
                    unit_agreement(u, v, kind),
                    "{u} / {v} {kind:?}"
                );
            }
        }
    }
}

/// SplitMix64: deterministic mutations from a proptest-chosen seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// A typo in one word: substitution, deletion, insertion or transposition.
fn typo(word: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.is_empty() {
        return word.to_string();
    }
    let i = rng.below(chars.len());
    let letter = (b'A' + rng.below(26) as u8) as char;
    match rng.below(4) {
        0 => chars[i] = letter,
        1 => {
            chars.remove(i);
        }
        2 => chars.insert(i, letter),
        _ => {
            if i + 1 < chars.len() {
                chars.swap(i, i + 1);
            }
        }
    }
    chars.into_iter().collect()
}

/// A base name and a related one (mutated by 0-3 realistic changes).
fn generated_pair(seed: u64) -> (PersonName, PersonName) {
    let mut rng = Rng(seed);
    let mut base = [String::new(), String::new(), String::new()];
    base[0] = rng.pick(GIVEN).to_string();
    if rng.below(3) == 0 {
        base[1] = rng.pick(GIVEN).to_string();
    }
    base[2] = rng.pick(FAMILY).to_string();
    if rng.below(4) == 0 {
        base[2] = format!("{} {}", base[2], rng.pick(FAMILY));
    }
    if rng.below(10) == 0 {
        base[0] = String::new();
    }
    let mut other = base.clone();
    for _ in 0..rng.below(4) {
        let part = rng.below(3);
        match rng.below(11) {
            0 => {
                let words: Vec<String> = other[part]
                    .split(' ')
                    .map(|w| {
                        if rng.below(2) == 0 {
                            typo(w, &mut rng)
                        } else {
                            w.to_string()
                        }
                    })
                    .collect();
                other[part] = words.join(" ");
            }
            1 => other[part] = rng.pick(if part == 2 { FAMILY } else { GIVEN }).to_string(),
            2 => other.swap(0, 2),
            3 => {
                other[2] = format!("{} {}", other[1], other[2]).trim().to_string();
                other[1].clear();
            }
            4 => {
                let family = other[2].clone();
                if let Some((first, rest)) = family.split_once(' ') {
                    other[1] = format!("{} {first}", other[1]).trim().to_string();
                    other[2] = rest.to_string();
                }
            }
            5 => other[part] = other[part].replace([' ', '-'], ""),
            6 => other[part] = other[part].chars().take(1).collect(),
            7 => {
                let mut words: Vec<&str> = other[part].split(' ').collect();
                let i = rng.below(words.len());
                words.remove(i);
                other[part] = words.join(" ");
            }
            8 => {
                other[0] = format!("{} {}", other[0], other[1]).trim().to_string();
                other[1].clear();
            }
            9 => other[part] = other[part].replace(' ', "-"),
            _ => {
                // Single-field full name, family first (ZHANG WEI).
                other = [
                    String::new(),
                    String::new(),
                    format!("{} {}", other[2], other[0]),
                ];
            }
        }
    }
    let person = |p: &[String; 3]| PersonName::new(&p[0], &p[1], &p[2]);
    (person(&base), person(&other))
}

fn raw_unit() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z]{0,9}",
        "\\PC{0,6}",
        Just("DE LA ROSA".to_string()),
        Just("AL RASHID".to_string()),
        Just("ALRASHED".to_string()),
        Just("ABD AL AZIZ".to_string()),
        Just("DE  LA".to_string()),
        Just("AL".to_string()),
        Just("PETROVA".to_string()),
        Just("MUHAMMAD".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn generated_pairs_are_equal(seed in any::<u64>()) {
        let mut t = shared_table().lock().unwrap_or_else(PoisonError::into_inner);
        let (a, b) = generated_pair(seed);
        let (pa, pb) = (parse(&a), parse(&b));
        if let Err(e) = check_pair(&mut t, &pa, &pb) {
            prop_assert!(false, "{:?} / {:?}: {}", a, b, e);
        }
    }

    #[test]
    fn hand_built_parts_are_equal(
        g in prop::collection::vec(raw_unit(), 0..4),
        m in prop::collection::vec(raw_unit(), 0..3),
        f in prop::collection::vec(raw_unit(), 0..4),
        g2 in prop::collection::vec(raw_unit(), 0..4),
        f2 in prop::collection::vec(raw_unit(), 0..4),
    ) {
        let mut t = shared_table().lock().unwrap_or_else(PoisonError::into_inner);
        let a = ParsedName { given: g.clone(), middle: m.clone(), family: f.clone(), original: String::new() };
        let b = ParsedName { given: g2, middle: vec![], family: f2, original: String::new() };
        let c = ParsedName { given: f, middle: m, family: g, original: String::new() };
        for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
            if let Err(e) = check_pair(&mut t, x, y) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}
