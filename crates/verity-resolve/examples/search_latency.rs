//! Real-time `search()` latency (index candidates + model scoring), one query at a time.
//! `cargo run --release -p verity-resolve --example search_latency -- [records] [train] [queries] [chunk]`
//!
//! Records are generated in chunks of `chunk` identities (seeds 1, 2, …; people are drawn
//! independently, so the chunks form one population) and streamed into the index, so that 10
//! million records never sit in memory as full identities. Each chunk contributes its share of
//! the probes (mated, hard-negative and other, as `bench::generate` makes them). With one chunk
//! the data equal earlier sessions' `generate(records, queries, seed 1)`.

use std::time::Instant;
use verity_resolve::bench::{generate, BenchConfig};
use verity_resolve::index::{CandidateWork, IndexKeys};
use verity_resolve::model::TrainOptions;
use verity_resolve::search::CANDIDATES_SCORED;
use verity_resolve::{Prepared, Searcher};

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process so far (from /proc; 0 where unavailable): the
/// load-independent cost of the queries, since wall time on a shared machine includes waiting.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (records, train, queries) = (arg(1, 200_000), arg(2, 20_000), arg(3, 2_000));
    let chunk = arg(4, 1_000_000).max(1);
    let chunks = records.div_ceil(chunk);

    // Train on a sample (EM needs no more): the first `train` people of chunk 1 (the
    // generator draws people first, so they equal those of the full chunk).
    let t = Instant::now();
    let sample_world = generate(&BenchConfig {
        identities: train.min(records),
        probes: 0,
        seed: 1,
        hard_negative_share: 0.35,
    });
    let sample: Vec<Prepared> = sample_world
        .gallery
        .iter()
        .map(Prepared::from_record)
        .collect();
    drop(sample_world);
    let pairs = verity_resolve::link::candidate_pairs(&sample, None, 2_000);
    let model = verity_resolve::Model::train(&sample, None, &pairs, &TrainOptions::default());
    drop((sample, pairs));
    println!(
        "trained on {} records in {:.1} s",
        train.min(records),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut probes = Vec::with_capacity(queries);
    let mut gen_secs = 0.0;
    let stream = (0..chunks).flat_map(|c| {
        let start = c * chunk;
        let size = chunk.min(records - start);
        // this chunk's share of the probes
        let share = queries * (start + size) / records - queries * start / records;
        let tg = Instant::now();
        let world = generate(&BenchConfig {
            identities: size,
            probes: share,
            seed: 1 + c as u64,
            hard_negative_share: 0.35,
        });
        gen_secs += tg.elapsed().as_secs_f64();
        for (k, p) in world.probes.into_iter().enumerate() {
            probes.push((p.identity, world.mate[k].map(|m| m + start as u32)));
        }
        world
            .gallery
            .into_iter()
            .enumerate()
            .map(move |(i, r)| ((start + i) as u32, r.identity))
    });
    let searcher = Searcher::from_identities(model, stream);
    let total = t.elapsed().as_secs_f64();
    let mem = searcher.memory();
    println!(
        "indexed {records} records in {:.1} s ({:.1} s of it generating them, in {chunks} chunks of {chunk}); build {:.1} s",
        total,
        gen_secs,
        total - gen_secs
    );
    let parts = searcher.index().stats().memory;
    println!(
        "index parts: dictionary {:.0} MiB, small lists {:.0} MiB, bitmaps {:.0} MiB ({} of them), forward index {:.0} MiB ({} frequent terms)",
        mib(parts.dictionary),
        mib(parts.small_lists),
        mib(parts.bitmaps),
        parts.bitmap_count,
        mib(parts.forward),
        parts.frequent_terms
    );
    println!(
        "memory: index structures {:.0} MiB, packed records {:.0} MiB (arena {:.0}, columns {:.0}, interned {:.1}), total {:.0} MiB; RSS now {:.0} MiB, peak {:.0} MiB",
        mib(mem.index_bytes),
        mib(mem.records.total_bytes()),
        mib(mem.records.arena_bytes),
        mib(mem.records.column_bytes),
        mib(mem.records.interned_bytes),
        mib(mem.total_bytes()),
        status_kb("VmRSS:") as f64 / 1024.0,
        status_kb("VmHWM:") as f64 / 1024.0,
    );

    let cpu_before = process_cpu_seconds();
    let mut times = Vec::with_capacity(probes.len());
    let (mut rank1, mut mated, mut aligned, mut cands) = (0, 0, 0, 0);
    for (query, mate) in &probes {
        let t = Instant::now();
        let (hits, work) = searcher.search_counted(query, 5, 0.0);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ms > 50.0 {
            // Outliers: which query, and whether it is slow again (warm caches).
            let t2 = Instant::now();
            let _ = searcher.search_counted(query, 5, 0.0);
            println!(
                "  slow search #{}: {ms:.1} ms (again: {:.2} ms), name {:?} / {:?} / {:?}, {} aliases, born {:?}",
                times.len(),
                t2.elapsed().as_secs_f64() * 1000.0,
                query.name.given,
                query.name.middle,
                query.name.family,
                query.aliases.len(),
                query.dob.map(|d| d.year),
            );
        }
        times.push(ms);
        aligned += work.aligned;
        cands += work.candidates;
        if let Some(m) = mate {
            mated += 1;
            if hits.first().is_some_and(|h| h.doc == *m) {
                rank1 += 1;
            }
        }
    }
    let cpu_ms_per_query =
        (process_cpu_seconds() - cpu_before) * 1000.0 / times.len().max(1) as f64;
    let n = times.len().max(1);
    times.sort_by(f64::total_cmp);
    let at = |q: usize| times.get((n * q / 100).min(n - 1)).copied().unwrap_or(0.0);
    let cpu = verity_model::machine::cpu_model(
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
    );
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!(
        "search over {records} records, {} queries (limit 5): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, mean CPU {:.2} ms; rank-1 {rank1}/{mated}; per query {:.1} candidates, {:.1} name alignments",
        times.len(),
        at(50),
        at(99),
        times.last().copied().unwrap_or(0.0),
        cpu_ms_per_query,
        cands as f64 / n as f64,
        aligned as f64 / n as f64,
    );
    // The candidate index alone (the first step of every search), for the split of the time.
    let mut tc = Vec::with_capacity(probes.len());
    let mut slowest: Vec<(f64, usize, CandidateWork)> = Vec::new();
    let mut sum = CandidateWork::default();
    for (k, (query, _)) in probes.iter().enumerate() {
        let t = Instant::now();
        let keys = IndexKeys::from_identity(query);
        let (_, w) = searcher
            .index()
            .candidates_counted(&keys, CANDIDATES_SCORED);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        tc.push(ms);
        sum.groups += w.groups;
        sum.common_groups += w.common_groups;
        sum.enumerated += w.enumerated;
        sum.reached += w.reached;
        sum.forward_terms += w.forward_terms;
        sum.forward_ids += w.forward_ids;
        sum.posting_terms += w.posting_terms;
        sum.posting_steps += w.posting_steps;
        slowest.push((ms, k, w));
        slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
        slowest.truncate(5);
    }
    let per = |x: f64| x / n as f64;
    println!(
        "index work per query: {:.1} groups ({:.1} common), {:.0} postings enumerated, {:.0} docs reached, {:.1} frequent terms counted by {:.0} forward ids, {:.1} terms counted by {:.0} posting steps",
        per(sum.groups as f64),
        per(sum.common_groups as f64),
        per(sum.enumerated as f64),
        per(sum.reached as f64),
        per(sum.forward_terms as f64),
        per(sum.forward_ids as f64),
        per(sum.posting_terms as f64),
        per(sum.posting_steps as f64),
    );
    for (ms, k, w) in &slowest {
        let q = &probes[*k].0;
        println!(
            "  slow index query #{k}: {ms:.2} ms, name {:?} / {:?} / {:?}, {} aliases, born {:?}, {} tokens; {w:?}",
            q.name.given,
            q.name.middle,
            q.name.family,
            q.aliases.len(),
            q.dob.map(|d| d.year),
            IndexKeys::from_identity(q).tokens.len(),
        );
    }
    tc.sort_by(f64::total_cmp);
    let atc = |q: usize| tc.get((n * q / 100).min(n - 1)).copied().unwrap_or(0.0);
    println!(
        "candidates only (index): p50 {:.2} ms, p99 {:.2} ms; load average {}",
        atc(50),
        atc(99),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Equivalence: the same candidates and hits as the reference path (no forward index,
    // every candidate fully scored) on the same index and model.
    let (mut cand_diff, mut hit_diff, mut ref_rank1) = (0, 0, 0);
    for (query, mate) in &probes {
        let keys = IndexKeys::from_identity(query);
        if searcher.index().candidates(&keys, CANDIDATES_SCORED)
            != searcher
                .index()
                .candidates_reference(&keys, CANDIDATES_SCORED)
        {
            cand_diff += 1;
        }
        let got: Vec<(u32, f64)> = searcher
            .search(query, 5)
            .iter()
            .map(|h| (h.doc, h.scored.match_weight))
            .collect();
        let want: Vec<(u32, f64)> = searcher
            .search_reference(query, 5, 0.0)
            .iter()
            .map(|h| (h.doc, h.scored.match_weight))
            .collect();
        if got != want {
            hit_diff += 1;
        }
        if let (Some(m), Some(first)) = (mate, want.first()) {
            if first.0 == *m {
                ref_rank1 += 1;
            }
        }
    }
    println!(
        "equivalence with the reference path: {cand_diff} of {n} queries with other candidates, {hit_diff} with other hits; reference rank-1 {ref_rank1}/{mated}"
    );
    // Engine-style calls: 30 hits at probability ≥ 0.01.
    let mut t30 = Vec::with_capacity(probes.len());
    for (query, _) in &probes {
        let t = Instant::now();
        let _ = searcher.search_above(query, 30, 0.01);
        t30.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    t30.sort_by(f64::total_cmp);
    let at30 = |q: usize| t30.get((n * q / 100).min(n - 1)).copied().unwrap_or(0.0);
    println!(
        "engine-style search_above(30, 0.01): p50 {:.2} ms, p99 {:.2} ms; peak RSS {:.0} MiB",
        at30(50),
        at30(99),
        status_kb("VmHWM:") as f64 / 1024.0
    );
}
