//! Biometrics benchmarks (harness = false): single-finger comparison throughput, and ten-print
//! 1:N identification accuracy (rank-1, FNIR at FPIR, DET points), search latency, scaling and
//! memory per enrolled subject, on synthetic galleries and probes (half mated).
//!
//! cargo bench -p verity-biometrics --bench biometrics -- [--sizes 10000,30000,100000]
//!     [--probes 1000] [--shortlist 200] [--threads 2] [--comparison-masters 4000]
//!     [--repeats 7] [--comparisons-only]

use std::time::Instant;
use verity_biometrics::calibration::Calibration;
use verity_biometrics::index::{GalleryIndex, SearchOptions, SearchScratch, SubjectPrints};
use verity_biometrics::synth::{impression, master, ten_print, ImpressionParams};
use verity_biometrics::{Matcher, Template};

const SEED: u64 = 0xBE7C4;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn cpu_model() -> String {
    verity_model::machine::cpu_model(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

fn gallery_fin(i: usize) -> String {
    format!("{:010}", 1_000_000_000 + i)
}

fn stranger_fin(i: usize) -> String {
    format!("{:010}", 8_000_000_000u64 + i as u64)
}

/// Ten-prints for fins, generated on `threads` threads, in order.
fn generate(
    fins: &[String],
    impression_seed: u64,
    threads: usize,
    params: &ImpressionParams,
) -> Vec<SubjectPrints> {
    let chunk = fins.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = fins
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|fin| SubjectPrints {
                            fingers: ten_print(SEED, fin, impression_seed, params),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("generator thread does not panic"))
            .collect()
    })
}

/// CPU time of the calling thread (user + system) from /proc, in seconds (10 ms ticks): on a
/// shared machine, comparisons per CPU-second is the per-core rate; wall time is also shown.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Single-finger comparisons on one thread, as a 1:N search runs them: each probe finger (with
/// its root table) against 10 gallery fingers of the same position (stored form: edges only),
/// one of them its mate (10% mated); 80% rolled/rolled, 20% plain/rolled impressions.
fn comparison_throughput(masters: usize, repeats: usize) {
    let rolled = ImpressionParams::rolled();
    let plain = ImpressionParams::plain();
    let mut gallery = Vec::with_capacity(masters);
    let mut probes = Vec::with_capacity(masters);
    let mut scratch = Vec::new();
    for i in 0..masters {
        let m = master(SEED, &gallery_fin(i), (i % 10 + 1) as u8);
        let mut g = Template::new(&[]);
        g.rebuild_edges_only(&impression(&m, &rolled, 0), &mut scratch);
        gallery.push(g);
        let p = if i % 5 == 4 { &plain } else { &rolled };
        probes.push(Template::new(&impression(&m, p, 1)));
    }
    let pairs: Vec<(usize, usize)> = (0..masters)
        .flat_map(|i| (0..10).map(move |j| (i, (i + 10 * j * 37) % masters.max(1))))
        .collect();
    let mut matcher = Matcher::new();
    let (mut wall_rates, mut cpu_rates) = (Vec::new(), Vec::new());
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for r in 0..repeats.max(1) {
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        for &(p, g) in &pairs {
            let score = matcher.compare(&probes[p], &gallery[g]).score;
            if r == 0 {
                if p == g {
                    genuine.push(score);
                } else {
                    impostor.push(score);
                }
            }
        }
        wall_rates.push(pairs.len() as f64 / start.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_seconds()) {
            cpu_rates.push(pairs.len() as f64 / (b - a).max(0.01));
        }
    }
    let mean = |ts: &[Template]| {
        ts.iter().map(Template::len).sum::<usize>() as f64 / ts.len().max(1) as f64
    };
    println!(
        "single-finger comparisons, 1 thread: {} pairs ({} mated) x {} repeats; minutiae mean gallery {:.1}, probe {:.1}",
        pairs.len(),
        genuine.len(),
        repeats.max(1),
        mean(&gallery),
        mean(&probes)
    );
    println!(
        "  median {:.0} per CPU-second (per core); median {:.0} per wall-second (min {:.0}, max {:.0})",
        median(&mut cpu_rates),
        median(&mut wall_rates.clone()),
        wall_rates.iter().copied().fold(f64::INFINITY, f64::min),
        wall_rates.iter().copied().fold(0.0, f64::max)
    );
    impostor.sort_by(f32::total_cmp);
    let at = |q: f64| {
        impostor
            .get(((impostor.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    for (fmr, threshold) in [(0.001, at(0.999)), (0.0001, at(0.9999))] {
        let missed = genuine.iter().filter(|&&g| g <= threshold).count();
        println!(
            "  single-finger FNMR {:.4} ({missed}/{}) at FMR {fmr} (score > {threshold:.3})",
            missed as f64 / genuine.len().max(1) as f64,
            genuine.len()
        );
    }
}

struct Outcome {
    mated: bool,
    mate_rank: Option<usize>,
    mate_probability: f64,
    top_probability: f64,
}

fn main() {
    let sizes: Vec<usize> = arg("--sizes")
        .unwrap_or_else(|| "10000,30000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let probes: usize = arg("--probes").and_then(|s| s.parse().ok()).unwrap_or(1000);
    let shortlist: usize = arg("--shortlist")
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let threads: usize = arg("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let plain = std::env::args().any(|a| a == "--plain");
    let rolled = ImpressionParams::rolled();
    let probe_params = if plain {
        ImpressionParams::plain()
    } else {
        ImpressionParams::rolled()
    };
    println!(
        "machine: {} logical cores, CPU {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    let masters: usize = arg("--comparison-masters")
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let repeats: usize = arg("--repeats").and_then(|s| s.parse().ok()).unwrap_or(7);
    comparison_throughput(masters, repeats);
    if std::env::args().any(|a| a == "--comparisons-only") {
        return;
    }

    let calibration = Calibration::builtin();
    let mut index = GalleryIndex::new();
    let options = SearchOptions { shortlist, top: 5 };
    let strangers: Vec<String> = (0..probes / 2).map(stranger_fin).collect();
    let stranger_prints = generate(&strangers, 1, threads, &probe_params);
    for &size in &sizes {
        let start = Instant::now();
        let from = index.len();
        let fins: Vec<String> = (from..size).map(gallery_fin).collect();
        for (fin, prints) in fins.iter().zip(generate(&fins, 0, threads, &rolled)) {
            if let Err(e) = index.insert(fin, &prints) {
                eprintln!("insert failed: {e}");
                return;
            }
        }
        let build = start.elapsed().as_secs_f64();
        // Mated probes: a fresh impression of evenly spread enrolled subjects.
        let mated_n = probes - probes / 2;
        let mated_ids: Vec<usize> = (0..mated_n).map(|i| i * size / mated_n.max(1)).collect();
        let mated_fins: Vec<String> = mated_ids.iter().map(|&i| gallery_fin(i)).collect();
        let mated_prints = generate(&mated_fins, 1, threads, &probe_params);
        let mut scratch = SearchScratch::default();
        let mut outcomes = Vec::with_capacity(probes);
        let search_start = Instant::now();
        let search_cpu_start = thread_cpu_seconds();
        for (k, prints) in mated_prints.iter().enumerate() {
            let found = index.search(prints, &options, calibration, &mut scratch);
            let rank = found
                .iter()
                .position(|c| c.subject as usize == mated_ids[k]);
            outcomes.push(Outcome {
                mated: true,
                mate_rank: rank,
                mate_probability: rank.map_or(0.0, |r| found[r].probability),
                top_probability: found.first().map_or(0.0, |c| c.probability),
            });
        }
        for prints in &stranger_prints {
            let found = index.search(prints, &options, calibration, &mut scratch);
            outcomes.push(Outcome {
                mated: false,
                mate_rank: None,
                mate_probability: 0.0,
                top_probability: found.first().map_or(0.0, |c| c.probability),
            });
        }
        let search_secs = search_start.elapsed().as_secs_f64();
        let search_cpu_secs = match (search_cpu_start, thread_cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        let mated: Vec<&Outcome> = outcomes.iter().filter(|o| o.mated).collect();
        let non: Vec<&Outcome> = outcomes.iter().filter(|o| !o.mated).collect();
        let rank1 = mated.iter().filter(|o| o.mate_rank == Some(0)).count();
        let in_top5 = mated.iter().filter(|o| o.mate_rank.is_some()).count();
        println!(
            "\ngallery {size} subjects (10 rolled fingers each): built in {build:.1} s ({} new); memory {:.0} bytes/subject total ({:.0} of it index postings)",
            fins.len(),
            index.heap_bytes() as f64 / size as f64,
            index.postings_bytes() as f64 / size as f64
        );
        println!(
            "  probes: {} impressions",
            if plain {
                "plain (flat, partial)"
            } else {
                "rolled"
            }
        );
        println!(
            "  {} probes ({} mated, {} non-mated), shortlist {shortlist}: {:.1} ms per ten-print search on 1 thread (wall), {} ms CPU",
            outcomes.len(),
            mated.len(),
            non.len(),
            1000.0 * search_secs / outcomes.len().max(1) as f64,
            search_cpu_secs.map_or("?".to_string(), |c| format!("{:.1}", 1000.0 * c / outcomes.len().max(1) as f64))
        );
        println!(
            "  rank-1 identification rate {:.4} ({rank1}/{}); mate in top 5: {in_top5}",
            rank1 as f64 / mated.len().max(1) as f64,
            mated.len()
        );
        println!("  DET (threshold on calibrated probability; FNIR counts a mate found at rank 1 at or above it):");
        for t in [0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99] {
            let fp = non.iter().filter(|o| o.top_probability >= t).count();
            let fnr = mated
                .iter()
                .filter(|o| !(o.mate_rank == Some(0) && o.mate_probability >= t))
                .count();
            println!(
                "    threshold {t:<5} FPIR {:.4} ({fp}/{})  FNIR {:.4} ({fnr}/{})",
                fp as f64 / non.len().max(1) as f64,
                non.len(),
                fnr as f64 / mated.len().max(1) as f64,
                mated.len()
            );
        }
        let max_non = non.iter().map(|o| o.top_probability).fold(0.0, f64::max);
        let min_mate = mated
            .iter()
            .filter(|o| o.mate_rank == Some(0))
            .map(|o| o.mate_probability)
            .fold(1.0, f64::min);
        println!("  highest non-mated top probability {max_non:.3e}; lowest rank-1 mate probability {min_mate:.3e}");
    }
}
