//! Biometrics benchmarks (harness = false): single-finger comparison throughput, and ten-print
//! 1:N identification accuracy (rank-1, FNIR at FPIR, DET points), search latency, scaling and
//! memory per enrolled subject, on synthetic galleries and probes (half mated).
//!
//! cargo bench -p verity-biometrics --bench biometrics -- [--sizes 10000,30000,100000]
//!     [--probes 1000] [--shortlist 200] [--threads 2]

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

fn comparison_throughput() {
    let n = 400;
    let params = ImpressionParams::rolled();
    let templates: Vec<Template> = (0..n)
        .map(|i| {
            let m = master(SEED, &gallery_fin(i), (i % 10 + 1) as u8);
            Template::new(&impression(&m, &params, 0))
        })
        .collect();
    let mates: Vec<Template> = (0..n)
        .map(|i| {
            let m = master(SEED, &gallery_fin(i), (i % 10 + 1) as u8);
            Template::new(&impression(&m, &params, 1))
        })
        .collect();
    let mut matcher = Matcher::new();
    let mut sink = 0f32;
    let start = Instant::now();
    let mut count = 0u64;
    for a in &mates {
        for b in &templates {
            sink += matcher.compare(a, b).score;
            count += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mean_minutiae = templates.iter().map(Template::len).sum::<usize>() as f64 / n as f64;
    println!(
        "single-finger comparisons: {count} ({n}x{n}, {:.1} minutiae mean, {} mated) in {secs:.2} s on 1 thread = {:.0} per second (checksum {sink:.1})",
        mean_minutiae,
        n,
        count as f64 / secs
    );
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
    comparison_throughput();

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
            "  {} probes ({} mated, {} non-mated), shortlist {shortlist}: {:.1} ms per ten-print search on 1 thread",
            outcomes.len(),
            mated.len(),
            non.len(),
            1000.0 * search_secs / outcomes.len().max(1) as f64
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
