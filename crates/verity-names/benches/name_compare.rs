//! Name-comparison benchmark (no criterion): ns per `compare_levels` (strings) against
//! `compare_levels_prepared` (interned ids) on realistic pairs, mated (nicknames, variants,
//! typos, dropped surnames, swaps, initials) and non-mated from the same culture; ns per unit
//! rule evaluation without any cache; ns per string-similarity comparison for the Jaro-Winkler
//! and Levenshtein of `verity-names` and of `verity-resolve::strsim` (compiled in from its
//! source file, unchanged). Prints the machine, load and data sizes with the figures.
//!
//! Run: `cargo bench -p verity-names --bench name_compare` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::time::Instant;
use verity_model::PersonName;
use verity_names::similarity::{jaro_winkler, levenshtein};
use verity_names::{
    compare_levels, compare_levels_prepared, parse, token_agreement, ParsedName, PartKind,
    PreparedName, TokenId, TokenTable,
};

#[allow(dead_code, unused_imports)]
#[path = "../../verity-resolve/src/strsim.rs"]
mod resolve_strsim;

const MALE: &str = include_str!("../../../data/names/census/dist.male.first");
const FEMALE: &str = include_str!("../../../data/names/census/dist.female.first");
const SURNAMES: &str = include_str!("../../../data/names/variants/common_surnames.txt");

struct Culture {
    given: Vec<String>,
    family: Vec<String>,
    /// Chance (per cent) of a second family name.
    second_family: u64,
}

fn words(list: &str) -> Vec<String> {
    list.split(',').map(|s| s.trim().to_string()).collect()
}

fn first_column(text: &str, n: usize) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .take(n)
        .map(String::from)
        .collect()
}

fn cultures() -> Vec<Culture> {
    let mut anglo_given = first_column(MALE, 80);
    anglo_given.extend(first_column(FEMALE, 80));
    vec![
        Culture {
            given: words("JOSE, JUAN, MARIA, LUIS, CARLOS, JORGE, ANA, ROSA, FRANCISCO, GUADALUPE, JESUS, MIGUEL, PEDRO, MARIA JOSE, ALEJANDRO, ROBERTO, ALBERTO, FERNANDO, SOFIA, LUCIA, JAVIER, MANUEL, ANTONIO, RAFAEL, ELENA, CARMEN, JUANA, MARIO, RAMON, DIEGO"),
            family: words("GARCIA, LOPEZ, HERNANDEZ, MARTINEZ, GONZALEZ, RODRIGUEZ, PEREZ, SANCHEZ, RAMIREZ, TORRES, FLORES, RIVERA, GOMEZ, DIAZ, CRUZ, DE LA ROSA, DE JESUS, MORALES, REYES, GUTIERREZ, ORTIZ, CHAVEZ, RAMOS, MENDOZA, CASTILLO, VASQUEZ, JIMENEZ, ROMERO, HERRERA, MEDINA"),
            second_family: 40,
        },
        Culture {
            given: words("MOHAMMED, MUHAMMAD, AHMED, ALI, OMAR, HASSAN, HUSSEIN, YOUSEF, KHALID, IBRAHIM, MAHMOUD, ABDUL RAHMAN, ABDULLAH, FATIMA, AISHA, MARYAM, MUSTAFA, TARIQ, SAMIR, NOOR, LAYLA, ZAINAB, HAMZA, BILAL"),
            family: words("AL RASHID, HADDAD, KHALIL, NASSER, SAID, EL SAYED, MANSOUR, SALEH, HAMDAN, AZIZ, IBRAHIM, ABBAS, AL HASHIMI, QURESHI, MALIK, KHAN, SHAIKH, BAKR, FARAH, YOUSSEF"),
            second_family: 5,
        },
        Culture {
            given: words("WEI, LI, XIN, MING, HUI, JIN, MIN JUN, SEO YEON, HONG, LAN, JIAN, YAN, HAO, JUN, MEI, LING, DONG, HYUN, JI WOO, THANH, MINH, LINH, ANH, HOA"),
            family: words("ZHANG, WANG, LI, LIU, CHEN, YANG, HUANG, ZHAO, WU, ZHOU, KIM, PARK, LEE, CHOI, NGUYEN, TRAN, PHAM, LE, HO, SUN, MA, ZHU, HU, LIN"),
            second_family: 0,
        },
        Culture {
            given: words("OLEKSANDR, ALEKSANDR, IVAN, DMITRY, SERGEI, ANNA, OLGA, NATALIA, YURI, VIKTOR, ANDRIY, MYKOLA, TATIANA, IRINA, PAVEL, NIKOLAI, MAXIM, EKATERINA, SVETLANA, VLADIMIR"),
            family: words("PETROV, IVANOV, KOWALSKI, NOVAK, SMIRNOV, KUZNETSOV, SHEVCHENKO, BONDARENKO, POPOV, VOLKOV, SOKOLOV, MOROZOV, LEBEDEV, KOVALENKO, WISNIEWSKI, NOVAKOVA, PETROVA, IVANOVA, KOWALSKA, SMIRNOVA"),
            second_family: 0,
        },
        Culture {
            given: anglo_given,
            family: first_column(SURNAMES, 150),
            second_family: 3,
        },
    ]
}

/// Known related spellings (variants, nicknames) used to make mated probes.
const RELATED: &[(&str, &str)] = &[
    ("JOSE", "PEPE"),
    ("FRANCISCO", "PACO"),
    ("GUADALUPE", "LUPE"),
    ("JESUS", "CHUY"),
    ("ROBERTO", "BETO"),
    ("ALEJANDRO", "ALEX"),
    ("MOHAMMED", "MUHAMMAD"),
    ("MUHAMMAD", "MOHAMED"),
    ("HUSSEIN", "HUSAYN"),
    ("YOUSEF", "YUSUF"),
    ("AHMED", "AHMAD"),
    ("ABDUL RAHMAN", "ABDULRAHMAN"),
    ("OLEKSANDR", "ALEXANDER"),
    ("ALEKSANDR", "OLEKSANDR"),
    ("WILLIAM", "BILL"),
    ("ROBERT", "BOB"),
    ("JAMES", "JIM"),
    ("ELIZABETH", "LIZ"),
    ("MICHAEL", "MIKE"),
    ("ZHANG", "CHANG"),
    ("PARK", "PAK"),
    ("PETROV", "PETROVA"),
    ("KOWALSKI", "KOWALSKA"),
    ("DE LA ROSA", "DELAROSA"),
    ("AL RASHID", "ALRASHID"),
    ("GONZALEZ", "GONZALES"),
    ("VASQUEZ", "VAZQUEZ"),
];

/// SplitMix64 (deterministic data).
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
    fn pick<'a>(&mut self, xs: &'a [String]) -> &'a str {
        &xs[self.below(xs.len())]
    }
}

fn draw(c: &Culture, rng: &mut Rng) -> [String; 3] {
    let given = rng.pick(&c.given).to_string();
    let middle = if rng.below(100) < 25 {
        rng.pick(&c.given).to_string()
    } else {
        String::new()
    };
    let mut family = rng.pick(&c.family).to_string();
    if (rng.below(100) as u64) < c.second_family {
        family = format!("{family} {}", rng.pick(&c.family));
    }
    [given, middle, family]
}

fn typo(word: &str, rng: &mut Rng) -> String {
    let mut b: Vec<u8> = word.bytes().collect();
    if b.len() < 3 {
        return word.to_string();
    }
    let i = 1 + rng.below(b.len() - 1);
    match rng.below(3) {
        0 => b[i] = b'A' + rng.below(26) as u8,
        1 => {
            b.remove(i);
        }
        _ => b.swap(i - 1, i),
    }
    String::from_utf8(b).unwrap_or_else(|_| word.to_string())
}

/// A noisy re-encounter of the same person.
fn mate(p: &[String; 3], rng: &mut Rng) -> [String; 3] {
    let mut q = p.clone();
    match rng.below(10) {
        0..=2 => {}
        3 => {
            for part in q.iter_mut() {
                for (x, y) in RELATED {
                    if part == x {
                        *part = y.to_string();
                        break;
                    }
                }
            }
        }
        4 | 5 => {
            let part = if rng.below(2) == 0 { 0 } else { 2 };
            q[part] = typo(&q[part], rng);
        }
        6 => {
            if let Some((first, _)) = q[2].split_once(' ') {
                q[2] = first.to_string();
            } else {
                q[1].clear();
            }
        }
        7 => q.swap(0, 2),
        8 => q[1] = q[1].chars().take(1).collect(),
        _ => q[0] = typo(&q[0], rng),
    }
    q
}

fn parsed(p: &[String; 3]) -> ParsedName {
    parse(&PersonName::new(&p[0], &p[1], &p[2]))
}

fn cpu_model() -> String {
    verity_model::machine::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// Process user+system CPU time in clock ticks (USER_HZ, 100 per second on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// Runs `round` (which makes `calls` calls) until at least `min_ticks` of CPU time have passed;
/// returns (CPU ns per call, fastest wall-clock round ns per call).
fn measure(calls: usize, min_ticks: u64, mut round: impl FnMut()) -> (f64, f64) {
    round();
    let start = cpu_ticks();
    let mut rounds = 0u64;
    let mut fastest = f64::MAX;
    while cpu_ticks() - start < min_ticks || rounds < 3 {
        let t = Instant::now();
        round();
        fastest = fastest.min(t.elapsed().as_nanos() as f64 / calls as f64);
        rounds += 1;
    }
    let ticks = cpu_ticks() - start;
    (ticks as f64 * 1e7 / (rounds as f64 * calls as f64), fastest)
}

fn report(label: &str, (cpu, wall): (f64, f64)) {
    println!("  {label:<58} {cpu:>8.1} ns CPU/call   fastest round {wall:>8.1} ns");
}

fn pair_set(label: &str, pairs: &[(ParsedName, ParsedName)], min_ticks: u64) {
    let mut table = TokenTable::new();
    let prepared: Vec<(PreparedName, PreparedName)> = pairs
        .iter()
        .map(|(a, b)| (table.prepare(a), table.prepare(b)))
        .collect();
    let mismatches = pairs
        .iter()
        .zip(&prepared)
        .filter(|((a, b), (pa, pb))| {
            compare_levels(a, b) != compare_levels_prepared(pa, pb, &table)
        })
        .count();
    println!(
        "{label}: {} pairs, {} distinct units, {mismatches} results differing between the two",
        pairs.len(),
        table.len()
    );
    let strings = measure(pairs.len(), min_ticks, || {
        for (a, b) in pairs {
            black_box(compare_levels(black_box(a), black_box(b)));
        }
    });
    report("compare_levels (strings, process memo warm)", strings);
    let ids = measure(pairs.len(), min_ticks, || {
        for (a, b) in &prepared {
            black_box(compare_levels_prepared(black_box(a), black_box(b), &table));
        }
    });
    report("compare_levels_prepared (ids, thread cache warm)", ids);
    // A fresh table per round (built untimed): every unit is interned with its forms and every
    // unit pair evaluated from forms once (pair cache cold). Fastest of 5 wall-clock rounds.
    let (mut prepare_ns, mut cold_ns) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let mut t = TokenTable::new();
        let start = Instant::now();
        let p: Vec<(PreparedName, PreparedName)> = pairs
            .iter()
            .map(|(a, b)| (t.prepare(a), t.prepare(b)))
            .collect();
        prepare_ns = prepare_ns.min(start.elapsed().as_nanos() as f64 / (2 * pairs.len()) as f64);
        let start = Instant::now();
        for (a, b) in &p {
            black_box(compare_levels_prepared(a, b, &t));
        }
        cold_ns = cold_ns.min(start.elapsed().as_nanos() as f64 / pairs.len() as f64);
    }
    println!(
        "  {:<58} {prepare_ns:>8.1} ns wall/name (fastest of 5 rounds)",
        "prepare into a fresh table (intern units, compute forms)"
    );
    println!(
        "  {:<58} {cold_ns:>8.1} ns wall/call (fastest of 5 rounds)",
        "compare_levels_prepared, fresh table (pair cache cold)"
    );
    let lookup = measure(pairs.len() * 2, min_ticks, || {
        for (a, b) in pairs {
            black_box(table.try_prepare(black_box(a)));
            black_box(table.try_prepare(black_box(b)));
        }
    });
    report("try_prepare of a known name (string lookups)", lookup);
    println!(
        "  speed-up prepared vs strings (CPU): {:.1}x",
        strings.0 / ids.0
    );
}

/// All ordered pairs of `tokens` through `f`, monomorphized per function.
fn similarity_round(
    tokens: &[String],
    min_ticks: u64,
    f: impl Fn(&str, &str) -> f64,
) -> (f64, f64) {
    measure(tokens.len() * tokens.len(), min_ticks, || {
        for a in tokens {
            for b in tokens {
                black_box(f(black_box(a), black_box(b)));
            }
        }
    })
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let min_ticks = if quick { 20 } else { 100 };
    let cores = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(0);
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    println!("machine: {cores} logical CPUs (nproc), CPU {}", cpu_model());
    println!("load average at start: {}", load());
    println!("timing: process CPU time (10 ms ticks) over >= {} ms of CPU per figure, and the fastest wall-clock round", min_ticks * 10);

    let cultures = cultures();
    let mut rng = Rng(20_261_129);
    let per_culture = 800;
    let mut mated = Vec::new();
    let mut non_mated = Vec::new();
    for c in &cultures {
        for _ in 0..per_culture {
            let a = draw(c, &mut rng);
            mated.push((parsed(&a), parsed(&mate(&a, &mut rng))));
            let mut b = draw(c, &mut rng);
            while b == a {
                b = draw(c, &mut rng);
            }
            non_mated.push((parsed(&a), parsed(&b)));
        }
    }
    println!(
        "data: {} cultures (Hispanic, Arabic, East Asian, Slavic, U.S. Census), {per_culture} pairs each per set",
        cultures.len()
    );
    pair_set("mated pairs", &mated, min_ticks);
    pair_set("non-mated pairs, same culture", &non_mated, min_ticks);

    // Unit rules without any cache: strings (token_agreement) against stored forms.
    let mut table = TokenTable::new();
    let tokens: Vec<String> = cultures
        .iter()
        .flat_map(|c| c.given.iter().chain(&c.family))
        .filter(|t| !t.contains(' '))
        .take(300)
        .cloned()
        .collect();
    let ids: Vec<TokenId> = tokens.iter().map(|t| table.intern(t)).collect();
    let n = tokens.len();
    println!(
        "unit rules, no cache: {n} single-word units, {} ordered pairs per round, kind Family",
        n * n
    );
    report(
        "token_agreement (strings)",
        measure(n * n, min_ticks, || {
            for a in &tokens {
                for b in &tokens {
                    black_box(token_agreement(
                        black_box(a),
                        black_box(b),
                        PartKind::Family,
                    ));
                }
            }
        }),
    );
    report(
        "TokenTable::unit_agreement (stored forms)",
        measure(n * n, min_ticks, || {
            for &a in &ids {
                for &b in &ids {
                    black_box(table.unit_agreement(black_box(a), black_box(b), PartKind::Family));
                }
            }
        }),
    );

    // String similarity on Census tokens, as the similarity bench.
    let mut sim_tokens = first_column(MALE, 100);
    sim_tokens.extend(first_column(FEMALE, 100));
    sim_tokens.extend(first_column(SURNAMES, 100));
    let m = sim_tokens.len();
    let mean = sim_tokens.iter().map(String::len).sum::<usize>() as f64 / m as f64;
    println!(
        "string similarity: {m} Census tokens (mean {mean:.1} bytes), {} ordered pairs per round",
        m * m
    );
    report(
        "harness baseline (loop + black_box, no work)",
        similarity_round(&sim_tokens, min_ticks, |a, b| (a.len() ^ b.len()) as f64),
    );
    report(
        "verity_names::similarity::jaro_winkler",
        similarity_round(&sim_tokens, min_ticks, jaro_winkler),
    );
    report(
        "verity_names::similarity::levenshtein",
        similarity_round(&sim_tokens, min_ticks, |a, b| levenshtein(a, b) as f64),
    );
    report(
        "verity_resolve::strsim::jaro_winkler",
        similarity_round(&sim_tokens, min_ticks, resolve_strsim::jaro_winkler),
    );
    report(
        "verity_resolve::strsim::levenshtein",
        similarity_round(&sim_tokens, min_ticks, |a, b| {
            resolve_strsim::levenshtein(a, b) as f64
        }),
    );
    println!("load average at end: {}", load());
}
