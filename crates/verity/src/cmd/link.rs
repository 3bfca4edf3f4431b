//! `verity link`: link two CSV files, or dedupe one, with a Fellegi–Sunter model trained by EM
//! on the files themselves. Output: `left_id,right_id,score`.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use verity_resolve::link::{self, LinkOptions};
use verity_resolve::model::{Model, TrainOptions};
use verity_resolve::schema::{read_records, Schema, SkippedRow};
use verity_resolve::Record;

#[derive(Args)]
pub struct LinkArgs {
    /// Left CSV file (or the only file, to dedupe).
    #[arg(long)]
    pub left: PathBuf,
    /// Right CSV file; without it the left file is deduplicated.
    #[arg(long)]
    pub right: Option<PathBuf>,
    /// Schema TOML: role = "column" lines, plus dob_format.
    #[arg(long)]
    pub schema: PathBuf,
    /// Output CSV: left_id,right_id,score.
    #[arg(long)]
    pub out: PathBuf,
    /// Keep each left record's K best candidates at any score.
    #[arg(long)]
    pub top: Option<usize>,
    /// Keep pairs with probability at or above this.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// Skip rows with bad values and write them to a report instead of failing.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Where the skipped-rows report goes (default: <out>.skipped.csv).
    #[arg(long)]
    pub skipped_report: Option<PathBuf>,
    /// Print the per-field explanation of output pairs (up to --explain-limit).
    #[arg(long)]
    pub explain: bool,
    #[arg(long, default_value_t = 20)]
    pub explain_limit: usize,
    /// Use this saved model instead of training one.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Save the trained model (verity-fs-model/1 JSON) here.
    #[arg(long)]
    pub model_out: Option<PathBuf>,
    /// Dedupe only: write `id,cluster_id` (cluster id = smallest record id in the cluster).
    #[arg(long)]
    pub clusters: Option<PathBuf>,
    /// Seed for the random-pair sample that estimates u.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn load(
    path: &PathBuf,
    schema: &Schema,
    skip: bool,
    skipped: &mut Vec<SkippedRow>,
) -> anyhow::Result<Vec<Record>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (records, bad) = read_records(&bytes, &path.display().to_string(), schema, skip)?;
    skipped.extend(bad);
    Ok(records)
}

pub fn run(args: LinkArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold must be within 0 and 1, got {}", args.threshold);
    }
    let schema_text = std::fs::read_to_string(&args.schema)
        .with_context(|| format!("reading {}", args.schema.display()))?;
    let schema =
        Schema::parse(&schema_text).with_context(|| format!("{}", args.schema.display()))?;
    let mut skipped = Vec::new();
    // the right file is read and prepared on another thread while the left one is
    let (left_read, right_read) = std::thread::scope(|s| {
        s.spawn(link::load_name_tables);
        let right_job = args.right.as_ref().map(|p| {
            let schema = &schema;
            s.spawn(move || {
                let mut bad = Vec::new();
                load(p, schema, args.skip_bad_rows, &mut bad)
                    .map(|records| (link::prepare_all(&records), records, bad))
            })
        });
        let mut bad = Vec::new();
        let left_read = load(&args.left, &schema, args.skip_bad_rows, &mut bad)
            .map(|records| (link::prepare_all(&records), records, bad));
        let right_read = right_job.map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("reading the right file failed")))
        });
        (left_read, right_read)
    });
    let (lp, left, bad) = left_read?;
    skipped.extend(bad);
    let (rp, right) = match right_read {
        Some(r) => {
            let (rp, right, bad) = r?;
            skipped.extend(bad);
            (Some(rp), Some(right))
        }
        None => (None, None),
    };
    if args.skip_bad_rows {
        let path = args
            .skipped_report
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.skipped.csv", args.out.display())));
        let mut w =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(["file", "line", "problem"])?;
        for s in &skipped {
            w.write_record([s.file.as_str(), &s.line.to_string(), &s.problem])?;
        }
        w.flush()?;
        if !skipped.is_empty() {
            eprintln!(
                "skipped {} bad rows; report: {}",
                skipped.len(),
                path.display()
            );
        }
    }
    let opts = LinkOptions {
        threshold: args.threshold,
        top: args.top,
        train: TrainOptions {
            seed: args.seed,
            ..TrainOptions::default()
        },
        ..LinkOptions::default()
    };
    // blocking (no pair budget), names interned once for training and scoring (same levels
    // as comparing the strings) and cheap fields packed once, all at the same time
    let index = link::RunIndex::build(&lp, rp.as_deref(), opts.max_bucket, usize::MAX);
    let pairs = &index.pairs;
    let model = match &args.model {
        Some(p) => Model::load(p)?,
        None => index.train(&lp, rp.as_deref(), &opts.train),
    };
    if let Some(p) = &args.model_out {
        model.save(p)?;
    }
    let kept = index.score_and_select(&model, &lp, rp.as_deref(), opts.threshold, opts.top);
    let right_records = right.as_deref().unwrap_or(&left);
    let mut w = csv::Writer::from_path(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    w.write_record(["left_id", "right_id", "score"])?;
    for p in &kept {
        let (Some(a), Some(b)) = (
            left.get(p.left as usize),
            right_records.get(p.right as usize),
        ) else {
            continue;
        };
        w.write_record([
            a.id.as_str(),
            b.id.as_str(),
            &format!("{:.6}", p.probability),
        ])?;
    }
    w.flush()?;
    if args.explain {
        let other = rp.as_deref().unwrap_or(&lp);
        for p in kept.iter().take(args.explain_limit) {
            let (Some(a), Some(b)) = (lp.get(p.left as usize), other.get(p.right as usize)) else {
                continue;
            };
            let s = model.score_prepared(a, b);
            println!(
                "{} ~ {}: probability {:.6}, match weight {:+.2}",
                left[p.left as usize].id,
                right_records[p.right as usize].id,
                s.probability,
                s.match_weight
            );
            // null levels weigh 0: leave them out of the printout
            for f in s.fields.iter().filter(|f| f.level != "null") {
                println!(
                    "  {:<18} {:<28} {:+8.2}  {}",
                    f.field, f.level, f.weight, f.detail
                );
            }
        }
    }
    if let Some(path) = &args.clusters {
        if right.is_some() {
            anyhow::bail!("--clusters applies to dedupe (no --right)");
        }
        let ids: Vec<String> = left.iter().map(|r| r.id.clone()).collect();
        let edges: Vec<(u32, u32)> = kept
            .iter()
            .filter(|p| p.probability >= args.threshold)
            .map(|p| (p.left, p.right))
            .collect();
        let cl = link::clusters(&ids, &edges);
        let mut w =
            csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
        w.write_record(["id", "cluster_id"])?;
        for (id, c) in ids.iter().zip(&cl) {
            w.write_record([id, c])?;
        }
        w.flush()?;
    }
    eprintln!(
        "linked {} x {} records: {} candidate pairs, {} pairs written to {}",
        left.len(),
        right.as_ref().map_or(left.len(), Vec::len),
        pairs.len(),
        kept.len(),
        args.out.display()
    );
    Ok(())
}
