//! Single-finger comparison rate on one thread, with the genuine/impostor score quantiles so
//! that a speed change can be checked for accuracy at once. Small and deterministic, for
//! repeatable instruction counts under callgrind:
//! `valgrind --tool=callgrind --toggle-collect='verity_biometrics::matcher::Matcher::compare'
//! target/release/examples/comparison_rate 400 1` (instructions / 4000 = per comparison).
//! Usage: comparison_rate [masters] [repeats]. Pairs: every probe (with its root table) against
//! its mate and 9 non-mates of the same finger position (gallery side stored as a search holds
//! it: edges only); 10% mated; 80% rolled/rolled, 20% plain/rolled.
use std::time::Instant;
use verity_biometrics::synth::{impression, master, ImpressionParams};
use verity_biometrics::{Matcher, Template};

const SEED: u64 = 0x5EED_C0DE;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let repeats: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let rolled = ImpressionParams::rolled();
    let plain = ImpressionParams::plain();
    let mut gallery = Vec::with_capacity(n);
    let mut probes = Vec::with_capacity(n);
    for i in 0..n {
        let m = master(SEED, &format!("{:010}", i), (i % 10 + 1) as u8);
        // Gallery templates as a 1:N search holds them: edges only, no lookup table (the probe
        // builds its table once per search).
        let mut g = Template::new(&[]);
        g.rebuild_edges_only(&impression(&m, &rolled, 0), &mut Vec::new());
        gallery.push(g);
        let p = if i % 5 == 4 { &plain } else { &rolled };
        probes.push(Template::new(&impression(&m, p, 1)));
    }
    let pairs: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (0..10).map(move |j| (i, if j == 0 { i } else { (i + 10 * j * 37) % n })))
        .collect();
    let mut matcher = Matcher::new();
    let mut rates = Vec::new();
    let mut gen = Vec::new();
    let mut imp = Vec::new();
    let mut cpu_rates = Vec::new();
    for r in 0..repeats {
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        let mut sink = 0f32;
        for &(p, g) in &pairs {
            let s = matcher.compare(&probes[p], &gallery[g]).score;
            sink += s;
            if r == 0 {
                if p == g {
                    gen.push(s)
                } else {
                    imp.push(s)
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push(pairs.len() as f64 / secs);
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_seconds()) {
            cpu_rates.push(pairs.len() as f64 / (b - a).max(0.01));
        }
        std::hint::black_box(sink);
    }
    rates.sort_by(f64::total_cmp);
    cpu_rates.sort_by(f64::total_cmp);
    if !cpu_rates.is_empty() {
        println!(
            "per CPU-second of this thread: median {:.0}/s",
            cpu_rates[cpu_rates.len() / 2]
        );
    }
    gen.sort_by(f32::total_cmp);
    imp.sort_by(f32::total_cmp);
    let q = |v: &Vec<f32>, f: f64| v[((v.len() - 1) as f64 * f) as usize];
    let mean = |ts: &[Template]| ts.iter().map(|t| t.len()).sum::<usize>() as f64 / ts.len() as f64;
    println!(
        "{} comparisons x {repeats}: median {:.0}/s (min {:.0}, max {:.0}); minutiae mean gallery {:.1} probe {:.1}",
        pairs.len(), rates[rates.len() / 2], rates[0], rates[rates.len() - 1], mean(&gallery), mean(&probes)
    );
    println!(
        "genuine  q001 {:.3} q01 {:.3} q05 {:.3} q50 {:.3}",
        q(&gen, 0.001),
        q(&gen, 0.01),
        q(&gen, 0.05),
        q(&gen, 0.5)
    );
    let t999 = q(&imp, 0.999);
    let t9999 = q(&imp, 0.9999);
    println!(
        "single-finger FNMR at FMR 0.1% (score > {t999:.3}): {:.4}; at FMR 0.01% (> {t9999:.3}): {:.4}",
        gen.iter().filter(|&&g| g <= t999).count() as f64 / gen.len() as f64,
        gen.iter().filter(|&&g| g <= t9999).count() as f64 / gen.len() as f64
    );
    println!(
        "impostor q50 {:.3} q99 {:.3} q999 {:.3} max {:.3}",
        q(&imp, 0.5),
        q(&imp, 0.99),
        q(&imp, 0.999),
        q(&imp, 1.0)
    );
}

/// CPU time of the calling thread (user + system) from /proc, in seconds (10 ms resolution).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
