//! Times the parts of a link run as `verity link --top 1` runs them, in a fresh process (no
//! name memo or table warmed by an earlier run in the same process): read + prepare (both
//! files at once), block + intern names + pack cheap fields (at once), train, score + select
//! top 1, write. Parts that run at the same time are timed together.
//!
//! Usage:
//! * `time_parts DIR [repeats]`: links `DIR/probes.csv` against `DIR/gallery.csv` with
//!   `DIR/schema.toml` (the files `bench_resolve` writes with `VERITY_BENCH_OUT=DIR`), writes
//!   `DIR/verity_links_fresh.csv`, and prints each part and the total from reading the CSV to
//!   the written pairs (the span `bench/splink/run.sh` times for Splink). With `repeats` > 1
//!   the whole run is repeated in the same process and each total printed (later runs have a
//!   warm name memo, so only the first is the cold figure).
//! * `time_parts [identities] [probes] [seed]`: the same parts on generated records (no CSV).
use std::fmt::Write as _;

// The allocator of the `verity` binary (see its main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::Path;
use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::link::{prepare_all, LinkOptions, RunIndex};
use verity_resolve::model::TrainOptions;
use verity_resolve::schema::{read_records, Schema};
use verity_resolve::{Prepared, Record};

/// CPU seconds this process has used so far (all threads; Linux `/proc/self/stat`, 10 ms
/// ticks), or 0 where that is not available. Shown beside wall time because the machine is
/// shared: wall time grows with other people's load, CPU time much less.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields after the command name: state is 0, utime 11, stime 12
    let tick = |k: usize| {
        fields
            .get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

thread_local! {
    static LAST_CPU: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

/// Seconds since `t`, printed with a label and the CPU seconds used since the previous lap.
fn lap(label: &str, t: &mut Instant, extra: &str) -> f64 {
    let s = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds();
    let used = cpu - LAST_CPU.with(|c| c.replace(cpu));
    println!("{label:<14} {s:>8.3}s wall {used:>7.2}s cpu {extra}");
    *t = Instant::now();
    s
}

fn link_parts(
    left: &[Prepared],
    right: &[Prepared],
    t: &mut Instant,
) -> Vec<verity_resolve::link::LinkPair> {
    let opts = LinkOptions::default();
    // blocking without a pair budget, names interned once for training and scoring, as
    // `verity link` does
    let index = RunIndex::build(left, Some(right), opts.max_bucket, usize::MAX);
    lap(
        "block+intern",
        t,
        &format!("({} candidate pairs)", index.pairs.len()),
    );
    let model = index.train(left, Some(right), &TrainOptions::default());
    lap(
        "train",
        t,
        &format!("({} EM iterations)", model.training.em_iterations),
    );
    let kept = index.score_and_select(&model, left, Some(right), 0.5, Some(1));
    lap("score+select", t, &format!("({} pairs kept)", kept.len()));
    kept
}

fn from_files(dir: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    LAST_CPU.with(|c| c.set(cpu0));
    let mut t = Instant::now();
    let schema = Schema::parse(&std::fs::read_to_string(dir.join("schema.toml"))?)?;
    // each file read and prepared while the other is
    let read = |name: &str| -> Result<(Vec<Record>, Vec<Prepared>), String> {
        let bytes = std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))?;
        let records = read_records(&bytes, name, &schema, false)
            .map_err(|e| e.to_string())?
            .0;
        let prepared = prepare_all(&records);
        Ok((records, prepared))
    };
    let (l, (r, ())) = rayon::join(
        || read("probes.csv"),
        || {
            rayon::join(
                || read("gallery.csv"),
                verity_resolve::link::load_name_tables,
            )
        },
    );
    let ((left, lp), (right, rp)) = (l?, r?);
    lap(
        "read+prepare",
        &mut t,
        &format!("({} probes, {} gallery)", left.len(), right.len()),
    );
    let kept = link_parts(&lp, &rp, &mut t);
    let mut out = String::with_capacity(kept.len() * 24 + 32);
    out.push_str("left_id,right_id,score\n");
    for p in &kept {
        let _ = writeln!(
            out,
            "{},{},{:.6}",
            left[p.left as usize].id, right[p.right as usize].id, p.probability
        );
    }
    std::fs::write(dir.join("verity_links_fresh.csv"), out)?;
    lap("write", &mut t, "");
    let total = start.elapsed().as_secs_f64();
    println!(
        "total          {total:>8.3}s wall {:>7.2}s cpu (CSV read to pairs written)",
        cpu_seconds() - cpu0
    );
    Ok(total)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dir) = raw.first().filter(|a| Path::new(a).is_dir()) {
        let repeats: usize = raw.get(1).and_then(|r| r.parse().ok()).unwrap_or(1);
        let mut totals = Vec::new();
        for _ in 0..repeats.max(1) {
            totals.push(from_files(Path::new(dir))?);
        }
        if totals.len() > 1 {
            println!("totals {totals:.3?}");
        }
        return Ok(());
    }
    let args: Vec<usize> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let w = generate(&BenchConfig {
        identities: args.first().copied().unwrap_or(20_000),
        probes: args.get(1).copied().unwrap_or(4_000),
        seed: args.get(2).copied().unwrap_or(1) as u64,
        ..BenchConfig::default()
    });
    let start = Instant::now();
    LAST_CPU.with(|c| c.set(cpu_seconds()));
    let mut t = Instant::now();
    let gp = prepare_all(&w.gallery);
    let pp = prepare_all(&w.probes);
    lap(
        "prepare",
        &mut t,
        &format!("({} probes, {} gallery)", pp.len(), gp.len()),
    );
    link_parts(&pp, &gp, &mut t);
    println!("total          {:>8.3}s", start.elapsed().as_secs_f64());
    Ok(())
}
