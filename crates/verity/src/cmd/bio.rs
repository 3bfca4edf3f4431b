//! `verity bio`: fingerprint identification (identify, enroll), file inspection and synthetic
//! gallery/probe sets. Conversion between `verity_formats` records and the matcher's compact
//! templates happens here, at the edge.

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use verity_biometrics::index::{GalleryIndex, SearchOptions, SearchScratch, SubjectPrints};
use verity_biometrics::synth::{self, ImpressionParams, IMAGE_HEIGHT, IMAGE_WIDTH};
use verity_biometrics::{Calibration, Minutia, MinutiaType};
use verity_formats::fmr::{self, FingerMinutiaeRecord, FingerView, FmrFormat, MinutiaKind};

#[derive(Subcommand)]
pub enum BioCommand {
    /// Identify each probe against a gallery (1:N). Writes `probe,gallery,score`, where score is
    /// the calibrated probability that both are the same person.
    Identify {
        /// Directory with one subject file per gallery subject (ANSI/NIST-ITL, ISO 19794-2 or
        /// INCITS 378, told apart by content).
        #[arg(long, required_unless_present = "gallery_index")]
        gallery: Option<PathBuf>,
        /// A gallery index written by `verity bio enroll` (instead of --gallery).
        #[arg(long, conflicts_with = "gallery")]
        gallery_index: Option<PathBuf>,
        /// Directory with one subject file per probe.
        #[arg(long)]
        probes: PathBuf,
        /// Output CSV.
        #[arg(long)]
        out: PathBuf,
        /// Gallery subjects kept per probe.
        #[arg(long, default_value_t = 1)]
        top: usize,
        /// Subjects compared in full after the index pre-filter.
        #[arg(long, default_value_t = 200)]
        shortlist: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Build a gallery index file from a directory of subject files.
    Enroll {
        #[arg(long)]
        gallery: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Describe one subject file (format, header, views, minutiae counts).
    Inspect { file: PathBuf },
    /// Write a synthetic gallery and probe set (half of the probes mated).
    Synth {
        /// A synthetic world directory: FINs are read from biometrics.csv (column fin_enrolled).
        #[arg(long, required_unless_present = "subjects")]
        world: Option<PathBuf>,
        /// Number of gallery subjects when no world is given.
        #[arg(long, conflicts_with = "world")]
        subjects: Option<usize>,
        /// Output directory: gallery/, probes/ and truth.csv are written under it.
        #[arg(long)]
        out: PathBuf,
        /// Number of probes (half mated); default min(gallery size, 200) rounded to even.
        #[arg(long)]
        probes: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// File format of the written records.
        #[arg(long, value_enum, default_value_t = SynthFormat::Mixed)]
        format: SynthFormat,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SynthFormat {
    Iso,
    Incits,
    /// Alternate ISO and INCITS by subject.
    Mixed,
}

pub fn run(c: BioCommand) -> anyhow::Result<()> {
    match c {
        BioCommand::Identify {
            gallery,
            gallery_index,
            probes,
            out,
            top,
            shortlist,
            threads,
        } => identify(
            gallery.as_deref(),
            gallery_index.as_deref(),
            &probes,
            &out,
            SearchOptions {
                shortlist: shortlist.max(top),
                top,
            },
            threads,
        ),
        BioCommand::Enroll { gallery, out } => {
            let index = enroll_dir(&gallery)?;
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(&out)
                    .with_context(|| format!("creating {}", out.display()))?,
            );
            index
                .write(&mut file)
                .with_context(|| format!("writing {}", out.display()))?;
            file.flush()
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "enrolled {} subjects from {} into {}",
                index.len(),
                gallery.display(),
                out.display()
            );
            Ok(())
        }
        BioCommand::Inspect { file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let text =
                verity_formats::describe(&bytes).with_context(|| format!("{}", file.display()))?;
            println!("{text}");
            Ok(())
        }
        BioCommand::Synth {
            world,
            subjects,
            out,
            probes,
            seed,
            format,
        } => synth_sets(world.as_deref(), subjects, &out, probes, seed, format),
    }
}

/// Converts a subject's finger views to the matcher's compact form (rescaled to 500 ppi).
pub fn from_views(resolution_ppcm: u16, views: &[FingerView]) -> SubjectPrints {
    SubjectPrints {
        fingers: views
            .iter()
            .map(|v| {
                let minutiae = v
                    .minutiae
                    .iter()
                    .map(|m| {
                        let kind = match m.kind {
                            MinutiaKind::RidgeEnding => MinutiaType::RidgeEnding,
                            MinutiaKind::Bifurcation => MinutiaType::Bifurcation,
                            MinutiaKind::Other => MinutiaType::Other,
                        };
                        Minutia::from_degrees(
                            f32::from(m.x),
                            f32::from(m.y),
                            m.angle_degrees,
                            kind,
                            resolution_ppcm,
                        )
                    })
                    .collect();
                (v.finger_position, minutiae)
            })
            .collect(),
    }
}

/// Regular files of a directory, sorted by name (hidden files skipped).
fn subject_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("reading directory {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_file() && !hidden {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read_prints(path: &Path) -> anyhow::Result<SubjectPrints> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let subject = verity_formats::read_subject(&bytes)
        .with_context(|| format!("{}: not a readable subject file", path.display()))?;
    Ok(from_views(subject.resolution_ppcm, &subject.views))
}

fn enroll_dir(dir: &Path) -> anyhow::Result<GalleryIndex> {
    let mut index = GalleryIndex::new();
    for path in subject_files(dir)? {
        let prints = read_prints(&path)?;
        index
            .insert(&file_name(&path), &prints)
            .with_context(|| format!("enrolling {}", path.display()))?;
    }
    Ok(index)
}

fn identify(
    gallery: Option<&Path>,
    gallery_index: Option<&Path>,
    probes: &Path,
    out: &Path,
    options: SearchOptions,
    threads: Option<usize>,
) -> anyhow::Result<()> {
    let index = match (gallery, gallery_index) {
        (_, Some(file)) => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            GalleryIndex::read(&bytes).with_context(|| format!("{}", file.display()))?
        }
        (Some(dir), None) => enroll_dir(dir)?,
        (None, None) => bail!("give --gallery DIR or --gallery-index FILE"),
    };
    let probe_files = subject_files(probes)?;
    let probe_prints: Vec<SubjectPrints> = probe_files
        .iter()
        .map(|p| read_prints(p))
        .collect::<anyhow::Result<_>>()?;
    let calibration = Calibration::builtin();
    let workers = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 64);
    let mut results: Vec<Vec<(u32, f64)>> = vec![Vec::new(); probe_prints.len()];
    std::thread::scope(|scope| {
        let chunk = probe_prints.len().div_ceil(workers).max(1);
        for (prints, slots) in probe_prints.chunks(chunk).zip(results.chunks_mut(chunk)) {
            let index = &index;
            scope.spawn(move || {
                let mut scratch = SearchScratch::default();
                for (p, slot) in prints.iter().zip(slots.iter_mut()) {
                    *slot = index
                        .search(p, &options, calibration, &mut scratch)
                        .into_iter()
                        .map(|c| (c.subject, c.probability))
                        .collect();
                }
            });
        }
    });
    let mut w =
        csv::Writer::from_path(out).with_context(|| format!("creating {}", out.display()))?;
    w.write_record(["probe", "gallery", "score"])?;
    for (path, found) in probe_files.iter().zip(&results) {
        for &(subject, probability) in found {
            let name = index.name(subject).unwrap_or_default();
            w.write_record([
                file_name(path),
                name.to_string(),
                format!("{probability:.6}"),
            ])?;
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "identified {} probes against {} gallery subjects -> {}",
        probe_files.len(),
        index.len(),
        out.display()
    );
    Ok(())
}

/// Unique FINs of a world's biometrics.csv, in file order, with the most fingers any of the
/// FIN's enrolments captured (column `fingers`, 1-10; 10 when absent or unreadable).
fn world_fins(world: &Path) -> anyhow::Result<Vec<(String, u8)>> {
    let path = world.join("biometrics.csv");
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: reading the header", path.display()))?
        .clone();
    let Some(column) = headers.iter().position(|h| h == "fin_enrolled") else {
        bail!("{}: no column 'fin_enrolled' in the header", path.display());
    };
    let fingers_column = headers.iter().position(|h| h == "fingers");
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut fins: Vec<(String, u8)> = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: line {}", path.display(), i + 2))?;
        let fin = row.get(column).unwrap_or_default().to_string();
        let fingers = fingers_column
            .and_then(|c| row.get(c))
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|n| (1..=10).contains(n))
            .unwrap_or(10);
        if fin.is_empty() {
            continue;
        }
        match seen.get(&fin) {
            Some(&at) => fins[at].1 = fins[at].1.max(fingers),
            None => {
                seen.insert(fin.clone(), fins.len());
                fins.push((fin, fingers));
            }
        }
    }
    Ok(fins)
}

fn to_view(finger: u8, minutiae: &[Minutia]) -> FingerView {
    FingerView {
        finger_position: finger,
        view_number: 0,
        impression_type: 1, // live-scan rolled
        quality: 80,
        minutiae: minutiae
            .iter()
            .map(|m| fmr::Minutia {
                kind: match m.kind {
                    MinutiaType::RidgeEnding => MinutiaKind::RidgeEnding,
                    MinutiaType::Bifurcation => MinutiaKind::Bifurcation,
                    MinutiaType::Other => MinutiaKind::Other,
                },
                x: m.x.max(0) as u16,
                y: m.y.max(0) as u16,
                angle_degrees: m.degrees(),
                quality: 60,
            })
            .collect(),
        extended_data: Vec::new(),
    }
}

fn write_subject(
    path: &Path,
    format: FmrFormat,
    prints: &[(u8, Vec<Minutia>)],
) -> anyhow::Result<()> {
    let views = prints.iter().map(|(f, ms)| to_view(*f, ms)).collect();
    let record = FingerMinutiaeRecord::new(format, IMAGE_WIDTH, IMAGE_HEIGHT, 197, views);
    record
        .check_encodable()
        .with_context(|| format!("encoding {}", path.display()))?;
    std::fs::write(path, fmr::write_fmr(&record))
        .with_context(|| format!("writing {}", path.display()))
}

fn synth_sets(
    world: Option<&Path>,
    subjects: Option<usize>,
    out: &Path,
    probes: Option<usize>,
    seed: u64,
    format: SynthFormat,
) -> anyhow::Result<()> {
    let fins = match (world, subjects) {
        (Some(w), _) => world_fins(w)?,
        (None, Some(n)) => (0..n)
            .map(|i| (format!("{:010}", 1_000_000_000 + i), 10))
            .collect(),
        (None, None) => bail!("give --world DIR or --subjects N"),
    };
    if fins.is_empty() {
        bail!("no subjects to write");
    }
    let probe_count = probes.unwrap_or_else(|| fins.len().min(200) & !1);
    let mated = (probe_count - probe_count / 2).min(fins.len());
    let gallery_dir = out.join("gallery");
    let probe_dir = out.join("probes");
    for dir in [&gallery_dir, &probe_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let pick = |i: usize| match (format, i % 2) {
        (SynthFormat::Iso, _) | (SynthFormat::Mixed, 0) => FmrFormat::Iso19794_2_2005,
        (SynthFormat::Incits, _) | (SynthFormat::Mixed, _) => FmrFormat::Incits378_2004,
    };
    let rolled = ImpressionParams::rolled();
    let mut names = Vec::with_capacity(fins.len());
    for (i, (fin, fingers)) in fins.iter().enumerate() {
        let name = format!("{fin}.fmr");
        // Enrolments keep the fingers the world says were captured (1..=n).
        let mut prints = synth::ten_print(seed, fin, 0, &rolled);
        prints.truncate(usize::from(*fingers));
        write_subject(&gallery_dir.join(&name), pick(i), &prints)?;
        names.push(name);
    }
    let known: HashSet<&str> = fins.iter().map(|(f, _)| f.as_str()).collect();
    let mut truth = csv::Writer::from_path(out.join("truth.csv"))
        .with_context(|| format!("creating {}", out.join("truth.csv").display()))?;
    truth.write_record(["probe", "gallery"])?;
    let mut stranger = 0u64;
    for p in 0..probe_count {
        let probe_name = format!("probe_{:06}.fmr", p + 1);
        // Mated probes spread over the gallery; the rest are people never enrolled.
        let (fin, mate) = if p < mated {
            let i = p * fins.len() / mated.max(1);
            (fins[i].0.clone(), names[i].clone())
        } else {
            let fin = loop {
                let candidate = format!("{:010}", 9_000_000_000u64 + stranger);
                stranger += 1;
                if !known.contains(candidate.as_str()) {
                    break candidate;
                }
            };
            (fin, String::new())
        };
        write_subject(
            &probe_dir.join(&probe_name),
            pick(p + 1),
            &synth::ten_print(seed, &fin, 1, &rolled),
        )?;
        truth.write_record([probe_name, mate])?;
    }
    truth.flush()?;
    eprintln!(
        "wrote {} gallery subjects to {}, {} probes ({} mated) to {}, ground truth to {}",
        fins.len(),
        gallery_dir.display(),
        probe_count,
        mated,
        probe_dir.display(),
        out.join("truth.csv").display()
    );
    Ok(())
}
