//! Candidate index benchmark: build time, memory, single-query search latency.
//!
//! Run (release): `cargo bench -p verity-resolve --bench index_search -- --records 1000000`
//! Options (or env vars): `--records N` (VERITY_INDEX_RECORDS, default 1,000,000),
//! `--queries Q` (VERITY_INDEX_QUERIES, default 10,000), `--limit K` (default 100),
//! `--inserts M` (records inserted after the build to time the delta, default 100,000).
//!
//! Data: a synthetic population generated here (no real names): given and family names are
//! built from syllables, drawn with a Zipf-like skew (top family name ≈1%, top given name
//! ≈3%), 30% compound surnames, 25% second given names, birth years 1940–2007, and
//! identifiers with realistic presence rates. Queries are indexed people re-keyed with
//! typos (30% one edit, 5% two), year off by one (10%), and an identifier only 30% of the time.

use std::time::{Duration, Instant};

use verity_resolve::index::{CandidateIndex, IndexConfig, IndexKeys};

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x2545_F491_4F6C_DD1D)
    }
    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const ONSETS: &[&str] = &[
    "B", "C", "D", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "T", "V", "Z", "CH",
    "SH", "KH", "TR", "BR", "GR", "AL", "", "", "",
];
const NUCLEI: &[&str] = &["A", "E", "I", "O", "U", "IA", "EI", "OU", "AY"];
const CODAS: &[&str] = &[
    "", "", "", "N", "R", "S", "L", "Z", "M", "NG", "RT", "V", "K",
];

/// A pronounceable name for vocabulary rank `r` (deterministic).
fn make_name(r: u64, salt: u64) -> String {
    let mut rng = Rng::new(r.wrapping_mul(0x1000_0000_01B3) ^ salt);
    let syllables = 2 + rng.below(2);
    let mut s = String::new();
    for _ in 0..syllables {
        s.push_str(ONSETS[rng.below(ONSETS.len() as u64) as usize]);
        s.push_str(NUCLEI[rng.below(NUCLEI.len() as u64) as usize]);
        s.push_str(CODAS[rng.below(CODAS.len() as u64) as usize]);
    }
    s
}

/// Zipf-like vocabulary: weight of rank r is 1/(r + offset).
struct Vocab {
    names: Vec<String>,
    cumulative: Vec<u64>,
}

impl Vocab {
    fn new(size: u64, offset: f64, salt: u64) -> Self {
        let mut total = 0.0;
        let mut cumulative = Vec::with_capacity(size as usize);
        let mut names = Vec::with_capacity(size as usize);
        for r in 0..size {
            total += 1.0 / (r as f64 + offset);
            cumulative.push((total * 1e9) as u64);
            names.push(make_name(r, salt));
        }
        Vocab { names, cumulative }
    }
    fn pick(&self, rng: &mut Rng) -> &str {
        let top = self.cumulative.last().copied().unwrap_or(1);
        let x = rng.below(top);
        let i = self.cumulative.partition_point(|&c| c <= x);
        &self.names[i.min(self.names.len() - 1)]
    }
}

struct Person {
    given: Vec<String>,
    family: Vec<String>,
    year: u16,
    ids: Vec<String>,
}

struct World {
    given: Vocab,
    family: Vocab,
}

impl World {
    fn new() -> Self {
        World {
            given: Vocab::new(6_000, 6.0, 11),
            family: Vocab::new(80_000, 10.0, 29),
        }
    }

    fn person(&self, doc: u32) -> Person {
        let mut rng = Rng::new(u64::from(doc).wrapping_mul(0xA24B_AED4_963E_E407));
        let mut given = vec![self.given.pick(&mut rng).to_string()];
        if rng.chance(25) {
            given.push(self.given.pick(&mut rng).to_string());
        }
        let mut family = vec![self.family.pick(&mut rng).to_string()];
        if rng.chance(30) {
            family.push(self.family.pick(&mut rng).to_string());
        }
        // Birth years skewed towards 1975-2000.
        let year = if rng.chance(70) {
            1975 + rng.below(26)
        } else {
            1940 + rng.below(68)
        } as u16;
        let mut ids = Vec::new();
        let d = u64::from(doc);
        if rng.chance(40) {
            ids.push(format!(
                "a:{:09}",
                (d * 7_919 + 100_000_000) % 1_000_000_000
            ));
        }
        if rng.chance(50) {
            ids.push(format!("fin:{:010}", d * 104_729 % 10_000_000_000));
        }
        if rng.chance(30) {
            ids.push(format!("fbi:{:X}", d * 2_654_435_761 % 0xF_FFFF_FFFF));
        }
        if rng.chance(50) {
            ids.push(format!("ssn:{:09}", (d * 15_485_863 + 1) % 1_000_000_000));
        }
        if rng.chance(20) {
            ids.push(format!("pp:P{:08}", d * 48_271 % 100_000_000));
        }
        Person {
            given,
            family,
            year,
            ids,
        }
    }
}

/// Soundex-like phonetic code (first letter + 3 consonant-class digits), standing in for the
/// names crate's key so that the benchmark measures the index alone.
fn phonetic(s: &str) -> String {
    let class = |c: u8| match c {
        b'B' | b'F' | b'P' | b'V' => b'1',
        b'C' | b'G' | b'J' | b'K' | b'Q' | b'S' | b'X' | b'Z' => b'2',
        b'D' | b'T' => b'3',
        b'L' => b'4',
        b'M' | b'N' => b'5',
        b'R' => b'6',
        _ => b'0',
    };
    let b = s.as_bytes();
    let mut out = String::with_capacity(4);
    let Some(&first) = b.first() else {
        return out;
    };
    out.push(first as char);
    let mut last = class(first);
    for &c in &b[1..] {
        let k = class(c);
        if k != b'0' && k != last {
            out.push(k as char);
            if out.len() == 4 {
                break;
            }
        }
        last = k;
    }
    out
}

fn keys_of(p: &Person) -> IndexKeys {
    let mut tokens: Vec<String> = p.given.iter().chain(&p.family).cloned().collect();
    tokens.sort();
    tokens.dedup();
    let g0 = p.given.first().map(String::as_str).unwrap_or("");
    let gi = g0.chars().next().unwrap_or('_');
    let mut blocking = Vec::with_capacity(8);
    for f in &p.family {
        blocking.push(format!("fp:{}", phonetic(f)));
        blocking.push(format!("fc:{f}"));
        blocking.push(format!("fi:{f} {gi}"));
    }
    // Variant canonical form: a name's family of variants is approximated by its phonetic code.
    blocking.push(format!("gc:{}", phonetic(g0)));
    if let Some(f0) = p.family.first().and_then(|f| f.chars().next()) {
        blocking.push(format!("in:{gi}{f0}"));
    }
    blocking.sort();
    blocking.dedup();
    IndexKeys {
        tokens,
        blocking,
        birth_year: Some(p.year),
        ids: p.ids.clone(),
    }
}

fn typo(rng: &mut Rng, s: &mut String) {
    let mut b = s.clone().into_bytes();
    if b.len() < 3 {
        return;
    }
    let i = 1 + rng.below(b.len() as u64 - 2) as usize;
    match rng.below(3) {
        0 => b[i] = b'A' + rng.below(26) as u8,
        1 => {
            b.remove(i);
        }
        _ => b.swap(i, i + 1),
    }
    *s = String::from_utf8_lossy(&b).into_owned();
}

fn query_of(world: &World, doc: u32, rng: &mut Rng) -> IndexKeys {
    let mut p = world.person(doc);
    if rng.chance(30) {
        let pick = rng.below(2);
        let part = if pick == 0 {
            &mut p.given
        } else {
            &mut p.family
        };
        if let Some(t) = part.first_mut() {
            typo(rng, t);
            if t.len() >= 8 && rng.chance(15) {
                typo(rng, t);
            }
        }
    }
    if rng.chance(10) {
        p.year = if rng.chance(50) {
            p.year - 1
        } else {
            p.year + 1
        };
    }
    if !rng.chance(30) {
        p.ids.clear();
    }
    keys_of(&p)
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn cpu_model() -> String {
    verity_model::machine::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

fn arg(name: &str, env: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.replace('_', "").parse().ok())
        .or_else(|| std::env::var(env).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run_queries(
    label: &str,
    index: &CandidateIndex,
    world: &World,
    records: u32,
    queries: u64,
    limit: usize,
) {
    let mut rng = Rng::new(7);
    let qs: Vec<(u32, IndexKeys)> = (0..queries + 500)
        .map(|_| {
            let doc = rng.below(u64::from(records)) as u32;
            (doc, query_of(world, doc, &mut rng))
        })
        .collect();
    index.clear_expansion_cache();
    let mut times = Vec::with_capacity(queries as usize);
    let mut found = 0u64;
    let mut returned = 0u64;
    for (i, (doc, q)) in qs.iter().enumerate() {
        let t = Instant::now();
        let c = index.candidates(q, limit);
        let e = t.elapsed();
        if i >= 500 {
            times.push(e);
            returned += c.len() as u64;
            found += u64::from(c.iter().any(|&(d, _)| d == *doc));
        }
    }
    // Typo expansion alone (part of the search above), per query over all its tokens.
    let mut expand_times = Vec::with_capacity(queries as usize);
    index.clear_expansion_cache();
    for (i, (_, q)) in qs.iter().enumerate() {
        let t = Instant::now();
        let n: usize = q
            .tokens
            .iter()
            .map(|tok| index.expand_name_token(tok).len())
            .sum();
        if i >= 500 {
            expand_times.push(t.elapsed());
        }
        std::hint::black_box(n);
    }
    expand_times.sort_unstable();
    times.sort_unstable();
    let n = times.len().max(1) as f64;
    let mean = times.iter().sum::<Duration>().as_secs_f64() / n;
    println!(
        "{label}: {} queries (limit {limit}): p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  mean {:.3} ms",
        times.len(),
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.90).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        mean * 1e3,
    );
    println!(
        "{label}: of which typo expansion of the query tokens: p50 {:.3} ms  p99 {:.3} ms; load average {}",
        percentile(&expand_times, 0.50).as_secs_f64() * 1e3,
        percentile(&expand_times, 0.99).as_secs_f64() * 1e3,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!(
        "{label}: mean candidates returned {:.1}; source record among them (recall@{limit}) {:.2}%",
        returned as f64 / n,
        100.0 * found as f64 / n
    );
}

fn main() {
    let records =
        arg("--records", "VERITY_INDEX_RECORDS", 1_000_000).min(u64::from(u32::MAX)) as u32;
    let queries = arg("--queries", "VERITY_INDEX_QUERIES", 10_000);
    let limit = arg("--limit", "VERITY_INDEX_LIMIT", 100) as usize;
    let inserts = arg("--inserts", "VERITY_INDEX_INSERTS", 100_000) as u32;
    let cache = arg("--cache", "VERITY_INDEX_CACHE", 200_000) as usize;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("machine: nproc {cores}, cpu {}", cpu_model());
    println!(
        "data: {records} synthetic records, {queries} queries, limit {limit}, expansion cache {cache} tokens"
    );

    let world = World::new();
    let sample = records.min(1_000_000);
    let t = Instant::now();
    let mut terms = 0usize;
    for d in 0..sample {
        terms += keys_of(&world.person(d)).tokens.len();
    }
    let gen_per_record = t.elapsed().as_secs_f64() / f64::from(sample.max(1));
    println!(
        "generator: {:.2} us/record (measured on {sample}; {:.1} tokens/record)",
        gen_per_record * 1e6,
        terms as f64 / f64::from(sample.max(1))
    );

    let rss_before = status_kb("VmRSS:");
    let t = Instant::now();
    let config = IndexConfig {
        expansion_cache_tokens: cache,
        ..IndexConfig::default()
    };
    let mut index = CandidateIndex::build_with_config(
        (0..records).map(|d| (d, keys_of(&world.person(d)))),
        config,
    );
    let build = t.elapsed().as_secs_f64();
    let gen_total = gen_per_record * f64::from(records);
    let rss_after = status_kb("VmRSS:");
    let stats = index.stats();
    println!(
        "build: {build:.2} s including generation (~{gen_total:.2} s generation, ~{:.2} s index)",
        build - gen_total
    );
    println!(
        "index: {} terms, {} bitmaps; structure sizes: fst {:.1} MiB + small lists {:.1} MiB + bitmaps {:.1} MiB = {:.1} MiB",
        stats.terms,
        stats.memory.bitmap_count,
        mib(stats.memory.dictionary),
        mib(stats.memory.small_lists),
        mib(stats.memory.bitmaps),
        mib(stats.memory.total())
    );
    println!(
        "process memory: RSS before build {:.1} MiB, after build {:.1} MiB (index ≈ {:.1} MiB), peak RSS (VmHWM) {:.1} MiB",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0,
        status_kb("VmHWM:") as f64 / 1024.0
    );

    run_queries("search", &index, &world, records, queries, limit);

    if inserts > 0 {
        let t = Instant::now();
        for d in records..records.saturating_add(inserts) {
            index.insert(d, &keys_of(&world.person(d)));
        }
        let ins = t.elapsed().as_secs_f64();
        let s = index.stats();
        println!(
            "insert: {inserts} records after build in {ins:.2} s ({:.1} us/record incl. generation); delta {} terms, {} changes, ~{:.1} MiB",
            ins * 1e6 / f64::from(inserts.max(1)),
            s.delta_terms,
            s.delta_changes,
            mib(s.delta_bytes)
        );
        run_queries(
            "search with delta",
            &index,
            &world,
            records.saturating_add(inserts),
            queries,
            limit,
        );
        let t = Instant::now();
        index.merge();
        println!(
            "merge: delta folded into a new immutable tier in {:.2} s ({} terms)",
            t.elapsed().as_secs_f64(),
            index.stats().terms
        );
    }
    println!(
        "peak RSS (VmHWM) at end {:.1} MiB",
        status_kb("VmHWM:") as f64 / 1024.0
    );
}
