//! Writing a whole world: people in chunks, generated in parallel, written in order.
//!
//! Memory stays bounded: at most `2 x threads` chunks of [`CHUNK`] people are held at once,
//! already serialized to CSV bytes. Within a chunk each system's rows are sorted by record id
//! (ids are keyed hashes), so a file's row order does not group one person's records together.

use crate::agencies::Agencies;
use crate::person::{generate_with, PersonTruth, TODAY};
use crate::tables::{tables, Tables};
use crate::SynthError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use verity_model::record::csv_header;
use verity_model::RecordSystem;

/// Written into `manifest.json`; bump the format number whenever output for a seed changes
/// (format 2: DHS booking match records, session 6).
pub const GENERATOR_VERSION: &str =
    concat!("verity-synth ", env!("CARGO_PKG_VERSION"), " format 2");

/// People generated per work unit.
pub const CHUNK: u64 = 10_000;
/// Identifier spaces (A-numbers, SSNs, FINs) are sized for at most this many people.
pub const MAX_PEOPLE: u64 = 100_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthConfig {
    pub people: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// What was written, with row counts per file (header excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldSummary {
    pub generator: String,
    pub seed: u64,
    pub people: u64,
    pub today: String,
    pub files: BTreeMap<String, u64>,
}

struct ChunkOut {
    people: u64,
    systems: Vec<Vec<u8>>,
    counts: Vec<u64>,
    persons: Vec<u8>,
    record_person: Vec<u8>,
}

fn system_index(s: RecordSystem) -> usize {
    RecordSystem::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn row_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new())
}

fn into_bytes(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, csv::Error> {
    w.into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::new(e.error().kind(), e.error().to_string())))
}

/// One system's rows of a chunk: CSV bytes in generation order plus an index to reorder them
/// by record id without moving whole records around.
struct SystemRows {
    bytes: csv::Writer<Vec<u8>>,
    /// (record id, start, end, person index)
    rows: Vec<(String, usize, usize, u64)>,
}

fn generate_chunk(t: &Tables, seed: u64, start: u64, end: u64) -> Result<ChunkOut, csv::Error> {
    let n = RecordSystem::ALL.len();
    let mut by_system: Vec<SystemRows> = (0..n)
        .map(|_| SystemRows {
            bytes: row_writer(),
            rows: Vec::new(),
        })
        .collect();
    let mut persons = row_writer();
    for index in start..end {
        let (truth, records) = generate_with(t, seed, index);
        persons.write_record(truth.to_csv_row())?;
        for r in records {
            let sys = &mut by_system[system_index(r.system())];
            let from = sys.bytes.get_ref().len();
            sys.bytes.write_record(r.to_csv_row())?;
            sys.bytes.flush()?;
            let to = sys.bytes.get_ref().len();
            sys.rows.push((r.record_id, from, to, index));
        }
    }
    let mut systems = Vec::with_capacity(n);
    let mut counts = Vec::with_capacity(n);
    let mut record_person = Vec::new();
    for (k, mut sys) in by_system.into_iter().enumerate() {
        sys.rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let system = RecordSystem::ALL[k];
        let arena = into_bytes(sys.bytes)?;
        let mut out = Vec::with_capacity(arena.len());
        for (id, from, to, person) in &sys.rows {
            out.extend_from_slice(&arena[*from..*to]);
            // Ids, system codes and person ids never need CSV quoting.
            record_person.extend_from_slice(id.as_bytes());
            record_person.push(b',');
            record_person.extend_from_slice(system.code().as_bytes());
            record_person.push(b',');
            record_person.extend_from_slice(crate::person::person_id(*person).as_bytes());
            record_person.push(b'\n');
        }
        counts.push(sys.rows.len() as u64);
        systems.push(out);
    }
    Ok(ChunkOut {
        people: end - start,
        systems,
        counts,
        persons: into_bytes(persons)?,
        record_person,
    })
}

struct Output {
    path: PathBuf,
    name: String,
    file: BufWriter<File>,
    rows: u64,
}

impl Output {
    fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Output, SynthError> {
        let path = dir.join(name);
        let f = File::create(&path).map_err(|cause| SynthError::Io {
            path: path.clone(),
            cause,
        })?;
        let mut out = Output {
            path,
            name: name.to_string(),
            file: BufWriter::with_capacity(1 << 20, f),
            rows: 0,
        };
        let mut w = row_writer();
        w.write_record(header).map_err(|cause| SynthError::Csv {
            path: out.path.clone(),
            cause,
        })?;
        let bytes = into_bytes(w).map_err(|cause| SynthError::Csv {
            path: out.path.clone(),
            cause,
        })?;
        out.write(&bytes, 0)?;
        Ok(out)
    }

    fn write(&mut self, bytes: &[u8], rows: u64) -> Result<(), SynthError> {
        self.rows += rows;
        self.file.write_all(bytes).map_err(|cause| SynthError::Io {
            path: self.path.clone(),
            cause,
        })
    }

    fn finish(mut self) -> Result<(String, u64), SynthError> {
        self.file.flush().map_err(|cause| SynthError::Io {
            path: self.path.clone(),
            cause,
        })?;
        Ok((self.name, self.rows))
    }
}

fn write_agencies(dir: &Path, agencies: &Agencies) -> Result<(String, u64), SynthError> {
    let mut out = Output::create(dir, "agencies.csv", &Agencies::HEADER)?;
    let mut w = row_writer();
    for a in &agencies.agencies {
        w.write_record([
            a.ori.as_str(),
            &a.name,
            a.kind.code(),
            &a.state,
            &a.county,
            &a.field_office,
        ])
        .map_err(|cause| SynthError::Csv {
            path: out.path.clone(),
            cause,
        })?;
    }
    let bytes = into_bytes(w).map_err(|cause| SynthError::Csv {
        path: out.path.clone(),
        cause,
    })?;
    out.write(&bytes, agencies.len() as u64)?;
    out.finish()
}

fn create_dir(path: &Path) -> Result<(), SynthError> {
    std::fs::create_dir_all(path).map_err(|cause| SynthError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// Generates the world described by `cfg` into `cfg.out` (created if missing; files in it
/// are overwritten).
pub fn generate_world(cfg: &SynthConfig) -> Result<WorldSummary, SynthError> {
    if cfg.people > MAX_PEOPLE {
        return Err(SynthError::Config(format!(
            "--people {} is more than the {MAX_PEOPLE} the identifier spaces allow",
            cfg.people
        )));
    }
    let t = tables()?;
    create_dir(&cfg.out)?;
    let truth_dir = cfg.out.join("truth");
    create_dir(&truth_dir)?;

    let mut systems: Vec<Output> = RecordSystem::ALL
        .iter()
        .map(|s| Output::create(&cfg.out, &s.file_name(), &csv_header(*s)))
        .collect::<Result<_, _>>()?;
    let mut persons = Output::create(&truth_dir, "persons.csv", &PersonTruth::CSV_HEADER)?;
    let mut record_person = Output::create(
        &truth_dir,
        "record_person.csv",
        &["record_id", "system", "person_id"],
    )?;

    let bar = if cfg.progress {
        let b = ProgressBar::with_draw_target(Some(cfg.people), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} people ({per_sec}, eta {eta})",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        ProgressBar::hidden()
    };

    let chunks = cfg.people.div_ceil(CHUNK);
    let batch = (rayon::current_num_threads() as u64 * 2).max(2);
    let mut next = 0;
    while next < chunks {
        let last = (next + batch).min(chunks);
        let outs: Vec<Result<ChunkOut, csv::Error>> = (next..last)
            .into_par_iter()
            .map(|c| {
                let start = c * CHUNK;
                generate_chunk(t, cfg.seed, start, (start + CHUNK).min(cfg.people))
            })
            .collect();
        for out in outs {
            let out = out.map_err(|cause| SynthError::Csv {
                path: cfg.out.clone(),
                cause,
            })?;
            for (k, bytes) in out.systems.iter().enumerate() {
                if let Some(o) = systems.get_mut(k) {
                    o.write(bytes, out.counts[k])?;
                }
            }
            persons.write(&out.persons, out.people)?;
            record_person.write(&out.record_person, out.counts.iter().sum())?;
            bar.inc(out.people);
        }
        next = last;
    }
    bar.finish_and_clear();

    let mut files = BTreeMap::new();
    for o in systems {
        let (name, rows) = o.finish()?;
        files.insert(name, rows);
    }
    let (name, rows) = persons.finish()?;
    files.insert(format!("truth/{name}"), rows);
    let (name, rows) = record_person.finish()?;
    files.insert(format!("truth/{name}"), rows);
    let (name, rows) = write_agencies(&cfg.out, &t.agencies)?;
    files.insert(name, rows);

    let summary = WorldSummary {
        generator: GENERATOR_VERSION.to_string(),
        seed: cfg.seed,
        people: cfg.people,
        today: format!("{:04}-{:02}-{:02}", TODAY.0, TODAY.1, TODAY.2),
        files,
    };
    let manifest = cfg.out.join("manifest.json");
    let mut json = serde_json::to_string_pretty(&summary)
        .map_err(|e| SynthError::Config(format!("manifest: {e}")))?;
    json.push('\n');
    std::fs::write(&manifest, json).map_err(|cause| SynthError::Io {
        path: manifest,
        cause,
    })?;
    Ok(summary)
}
