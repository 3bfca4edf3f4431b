//! Similarity benchmark (no criterion): ns per Jaro-Winkler / Levenshtein comparison on
//! real-length name tokens, plus full `compare` for context. Run with
//! `cargo bench -p verity-names`; prints the machine and the data size with the figures.

use std::hint::black_box;
use std::time::Instant;
use verity_model::PersonName;
use verity_names::similarity::{jaro_winkler, levenshtein};
use verity_names::{compare, compare_fast, parse};

const MALE: &str = include_str!("../../../data/names/census/dist.male.first");
const FEMALE: &str = include_str!("../../../data/names/census/dist.female.first");
const SURNAMES: &str = include_str!("../../../data/names/variants/common_surnames.txt");

fn first_column(text: &str, n: usize) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .take(n)
        .map(String::from)
        .collect()
}

fn cpu_model() -> String {
    verity_model::machine::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// Runs `f` over all pairs `rounds` times; returns ns per call.
fn time_pairs<T>(names: &[String], rounds: usize, f: impl Fn(&str, &str) -> T) -> f64 {
    let start = Instant::now();
    let mut calls = 0u64;
    for _ in 0..rounds {
        for a in names {
            for b in names {
                black_box(f(black_box(a), black_box(b)));
                calls += 1;
            }
        }
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// Process user+system CPU time in clock ticks (USER_HZ, 100 per second on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// (CPU ns per call, fastest wall-clock round ns per call, calls) for `f` over all pairs.
fn measure(names: &[String], f: impl Fn(&str, &str) -> f64) -> (f64, f64, u64) {
    time_pairs(names, 1, &f);
    let per_round = (names.len() * names.len()) as u64;
    let start_ticks = cpu_ticks();
    let mut rounds = 0u64;
    let mut fastest = f64::MAX;
    while cpu_ticks() - start_ticks < 100 || rounds < 5 {
        fastest = fastest.min(time_pairs(names, 1, &f));
        rounds += 1;
    }
    let ticks = cpu_ticks() - start_ticks;
    (
        ticks as f64 * 1e7 / (rounds * per_round) as f64,
        fastest,
        rounds * per_round,
    )
}

fn main() {
    let mut names = first_column(MALE, 100);
    names.extend(first_column(FEMALE, 100));
    names.extend(first_column(SURNAMES, 100));
    let n = names.len();
    let mean_len = names.iter().map(String::len).sum::<usize>() as f64 / n as f64;
    let cores = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(0);
    println!("machine: {cores} logical CPUs (nproc), CPU {}", cpu_model());
    println!("data: {n} name tokens (Census top 100 male, 100 female, 100 surnames), mean length {mean_len:.1} bytes, {} ordered pairs per round", n * n);

    // The machine is shared (load is printed below), so wall time overstates the cost. Report
    // process CPU time per comparison (from /proc/self/stat, 10 ms ticks, over >= 1 s of CPU)
    // and the fastest of several wall-clock rounds.
    let base = measure(&names, |a, b| (a.len() ^ b.len()) as f64);
    println!("harness baseline (loop + black_box, no work): {:.1} ns CPU/call, fastest wall round {:.1} ns", base.0, base.1);
    let jw = measure(&names, jaro_winkler);
    let lev = measure(&names, |a, b| levenshtein(a, b) as f64);
    println!(
        "jaro_winkler: {:.1} ns CPU/comparison, fastest wall round {:.1} ns ({} comparisons)",
        jw.0, jw.1, jw.2
    );
    println!(
        "levenshtein:  {:.1} ns CPU/comparison, fastest wall round {:.1} ns ({} comparisons)",
        lev.0, lev.1, lev.2
    );
    println!(
        "load average: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    // Full-name comparison for context (allocates; uses tables and phonetic keys).
    let people: Vec<_> = (0..200)
        .map(|i| parse(&PersonName::new(&names[i % 200], "", &names[200 + i % 100])))
        .collect();
    let start = Instant::now();
    let mut calls = 0u64;
    for a in &people {
        for b in &people {
            black_box(compare(black_box(a), black_box(b)));
            calls += 1;
        }
    }
    let full = start.elapsed().as_nanos() as f64 / calls as f64;
    let start = Instant::now();
    for a in &people {
        for b in &people {
            black_box(compare_fast(black_box(a), black_box(b)));
        }
    }
    let fast = start.elapsed().as_nanos() as f64 / calls as f64;
    println!("compare_fast (no notes): {fast:.0} ns/comparison ({calls} comparisons)");
    println!(
        "compare (parsed names, given+family): {:.0} ns/comparison ({calls} comparisons)",
        full
    );
}
