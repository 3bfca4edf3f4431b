//! Loading a synthetic world directory into the store.
//!
//! Reads the eight `<system>.csv` files (named by [`RecordSystem::file_name`], columns by
//! [`verity_model::record::csv_header`]) and `agencies.csv`. It never opens anything else in
//! the directory; in particular the ground truth under `truth/` stays unread.
//!
//! A parsing thread reads and validates rows and hands batches to the writer over a small
//! channel, so parsing and inserting overlap. Each batch is one transaction, and inserts skip
//! record ids already stored: an import that stops part-way (bad row, crash, Ctrl-C) leaves
//! only whole batches behind, and running it again after fixing the cause completes it with
//! no duplicates.
//!
//! Into a store that holds no records the writer bulk loads instead ([`crate::bulk`]): the
//! records' secondary indexes are dropped first and built once at the end, and many batches
//! share a transaction. The same batches, revs, sweep keys and digest chunks are stored.

use crate::accounts::Agency;
use crate::backend::Store;
use crate::bulk::BulkLoader;
use crate::error::StoreError;
use crate::records::RecordRow;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use verity_model::record::csv_header;
use verity_model::{AuditAction, AuditEvent, Ori, Purpose, RecordSystem, SourceRecord};

/// The agency table's file name and columns.
pub const AGENCIES_FILE: &str = "agencies.csv";
pub const AGENCY_COLUMNS: &[&str] = &["ori", "name", "kind", "state", "county", "field_office"];

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Records per transaction.
    pub batch_size: usize,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            batch_size: 10_000,
            progress: false,
        }
    }
}

/// Which write path an import takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Bulk load when the store holds no records, or when an earlier bulk load stopped
    /// part-way (it is resumed); otherwise insert batch by batch.
    #[default]
    Auto,
    /// Insert batch by batch, each batch one transaction, indexes kept up to date. An
    /// interrupted bulk load is finished first ([`Store::finish_interrupted_bulk_load`]).
    Incremental,
}

/// What one file contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub file: String,
    pub rows: u64,
    /// Rows newly stored (rows already present from an earlier run are skipped).
    pub inserted: u64,
}

/// The outcome of an import.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub files: Vec<FileSummary>,
    /// Expected files that were absent (skipped).
    pub missing_files: Vec<String>,
    /// Record rows read from the files (all of them are stored when the import succeeds).
    pub records: u64,
    pub records_inserted: u64,
    pub agencies: u64,
    pub elapsed: Duration,
    /// Whether the records went in by the bulk path.
    pub bulk: bool,
    /// Of `elapsed`, the bulk load's finish: staged sweep keys into place, indexes re-built.
    pub finish_elapsed: Duration,
}

impl ImportSummary {
    /// Record rows read and stored per second of wall time.
    pub fn records_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.records as f64 / s
        } else {
            0.0
        }
    }
}

/// Why an import stopped. Batches committed before the error stay stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{dir}: no record files found (expected files such as {example})")]
    NoFiles { dir: String, example: String },
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: header has no column '{column}'")]
    MissingColumn { file: String, column: String },
    #[error("{file}, line {line}, column '{column}': {problem}")]
    Row {
        file: String,
        line: u64,
        column: String,
        problem: String,
    },
    #[error("{file}, line {line}: {problem}")]
    Csv {
        file: String,
        line: u64,
        problem: String,
    },
    #[error("the import's reader thread stopped unexpectedly: {0}")]
    Reader(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the parsing thread sends the writer.
enum Msg {
    Batch {
        file: usize,
        rows: Vec<RecordRow>,
        bytes_done: u64,
    },
    Failed(ImportError),
}

/// Imports the world in `dir` into `store` and returns counts and timing. Writes an
/// `ImportStarted` and (on success) an `ImportFinished` audit entry as actor `system`. Bulk
/// loads into a store without records ([`ImportMode::Auto`]).
pub async fn import_world(
    store: &Store,
    dir: &Path,
    opts: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    import_world_with(store, dir, opts, ImportMode::Auto).await
}

/// The batch writer of an import: row by row with indexes, or a bulk load.
enum Writer {
    Incremental,
    Bulk(BulkLoader),
}

/// [`import_world`] with the write path chosen by `mode`.
pub async fn import_world_with(
    store: &Store,
    dir: &Path,
    opts: &ImportOptions,
    mode: ImportMode,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let mut missing_files = Vec::new();
    let mut files: Vec<(RecordSystem, PathBuf, u64)> = Vec::new();
    for &system in RecordSystem::ALL {
        let path = dir.join(system.file_name());
        match std::fs::metadata(&path) {
            Ok(m) => files.push((system, path, m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing_files.push(path.display().to_string())
            }
            Err(source) => {
                return Err(ImportError::Io {
                    file: path.display().to_string(),
                    source,
                })
            }
        }
    }
    if files.is_empty() {
        return Err(ImportError::NoFiles {
            dir: dir.display().to_string(),
            example: RecordSystem::Criminal.file_name(),
        });
    }
    let source = dir.display().to_string();
    store
        .append_audit(system_event(AuditAction::ImportStarted {
            source: source.clone(),
        }))
        .await?;

    let agencies_path = dir.join(AGENCIES_FILE);
    let agencies = if agencies_path.exists() {
        let list = read_agencies(&agencies_path)?;
        store.merge_agencies(&list).await?;
        list.len() as u64
    } else {
        missing_files.push(agencies_path.display().to_string());
        0
    };

    let pending = store.bulk_load_pending().await?.is_some();
    let bulk = match mode {
        ImportMode::Auto => pending || store.has_no_records().await?,
        ImportMode::Incremental => {
            store.finish_interrupted_bulk_load().await?;
            false
        }
    };
    let mut writer = if bulk {
        Writer::Bulk(BulkLoader::start(store, &source).await?)
    } else {
        Writer::Incremental
    };

    let total_bytes: u64 = files.iter().map(|f| f.2).sum();
    let bar = if opts.progress {
        let b = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg:>12} [{bar:40}] {bytes}/{total_bytes} {elapsed_precise} eta {eta}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    } else {
        ProgressBar::hidden()
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(3);
    let batch_size = opts.batch_size.max(1);
    let jobs: Vec<(RecordSystem, PathBuf)> =
        files.iter().map(|(s, p, _)| (*s, p.clone())).collect();
    let reader = tokio::task::spawn_blocking(move || {
        for (i, (system, path)) in jobs.iter().enumerate() {
            let sent = read_system_file(*system, path, batch_size, |rows, bytes_done| {
                tx.blocking_send(Msg::Batch {
                    file: i,
                    rows,
                    bytes_done,
                })
                .is_ok()
            });
            match sent {
                Ok(true) => {}
                // The writer has stopped; it reports why.
                Ok(false) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Msg::Failed(e));
                    return;
                }
            }
        }
    });

    let mut summaries: Vec<FileSummary> = files
        .iter()
        .map(|(_, p, _)| FileSummary {
            file: p.display().to_string(),
            rows: 0,
            inserted: 0,
        })
        .collect();
    let bytes_before: Vec<u64> = files
        .iter()
        .scan(0u64, |acc, f| {
            let before = *acc;
            *acc += f.2;
            Some(before)
        })
        .collect();
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Batch {
                file,
                rows,
                bytes_done,
            } => {
                let written = match &mut writer {
                    Writer::Incremental => store.insert_rows(&rows).await,
                    Writer::Bulk(loader) => loader.write_batch(&rows).await,
                };
                let inserted = match written {
                    Ok(n) => n,
                    Err(e) => {
                        failure = Some(ImportError::Store(e));
                        break;
                    }
                };
                if let Some(s) = summaries.get_mut(file) {
                    s.rows += rows.len() as u64;
                    s.inserted += inserted;
                }
                if let Some((system, _, _)) = files.get(file) {
                    bar.set_message(system.code());
                }
                bar.set_position(bytes_before.get(file).copied().unwrap_or(0) + bytes_done);
            }
            Msg::Failed(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    let joined = reader.await;
    let failure = failure.or(joined.err().map(|e| ImportError::Reader(e.to_string())));
    let finish_started = Instant::now();
    if let Writer::Bulk(loader) = writer {
        match failure {
            // Whole batches stay stored and the flag stays set: the next import resumes.
            Some(e) => {
                bar.finish_and_clear();
                let _ = loader.stop().await;
                return Err(e);
            }
            None => {
                bar.set_message("indexing");
                if let Err(e) = loader.finish().await {
                    bar.finish_and_clear();
                    return Err(e.into());
                }
            }
        }
    }
    let finish_elapsed = finish_started.elapsed();
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }

    let records = summaries.iter().map(|s| s.rows).sum();
    let records_inserted = summaries.iter().map(|s| s.inserted).sum();
    store
        .append_audit(system_event(AuditAction::ImportFinished {
            source,
            records: records_inserted,
        }))
        .await?;
    Ok(ImportSummary {
        files: summaries,
        missing_files,
        records,
        records_inserted,
        agencies,
        elapsed: started.elapsed(),
        bulk,
        finish_elapsed,
    })
}

fn system_event(action: AuditAction) -> AuditEvent {
    AuditEvent {
        actor: "system".into(),
        agency: None,
        purpose: Purpose::Administration,
        action,
    }
}

fn open_csv(path: &Path) -> Result<csv::Reader<BufReader<File>>, ImportError> {
    let file = File::open(path).map_err(|source| ImportError::Io {
        file: path.display().to_string(),
        source,
    })?;
    Ok(csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        // Split on LF only: with the default CR/LF handling the csv crate reports lines of
        // CRLF files one too low. A CR left at the end of the last cell is trimmed like any
        // other surrounding whitespace.
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(BufReader::with_capacity(1 << 20, file)))
}

fn csv_error(file: &str, e: csv::Error) -> ImportError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ImportError::Io {
            file: file.to_string(),
            source,
        },
        other => ImportError::Csv {
            file: file.to_string(),
            line,
            problem: describe_csv_error(other),
        },
    }
}

fn describe_csv_error(kind: csv::ErrorKind) -> String {
    match kind {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        other => format!("{other:?}"),
    }
}

/// Column name -> index for the columns `wanted` names; errors on the first one absent.
fn column_index(
    file: &str,
    headers: &csv::StringRecord,
    wanted: &[&'static str],
) -> Result<HashMap<&'static str, usize>, ImportError> {
    wanted
        .iter()
        .map(|&c| {
            headers
                .iter()
                .position(|h| h == c)
                .map(|i| (c, i))
                .ok_or_else(|| ImportError::MissingColumn {
                    file: file.to_string(),
                    column: c.to_string(),
                })
        })
        .collect()
}

/// Reads one system's file, calling `emit(rows, bytes_read)` per full batch and at the end.
/// Returns Ok(false) if `emit` asked to stop.
fn read_system_file(
    system: RecordSystem,
    path: &Path,
    batch_size: usize,
    mut emit: impl FnMut(Vec<RecordRow>, u64) -> bool,
) -> Result<bool, ImportError> {
    let file = path.display().to_string();
    let mut rdr = open_csv(path)?;
    let headers = rdr.headers().map_err(|e| csv_error(&file, e))?.clone();
    let index = column_index(&file, &headers, &csv_header(system))?;
    let mut rec = csv::StringRecord::new();
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(&file, e)),
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let get = |c: &str| index.get(c).and_then(|&i| rec.get(i));
        let record = SourceRecord::from_csv_row(system, get).map_err(|e| ImportError::Row {
            file: file.clone(),
            line,
            column: e.field,
            problem: e.problem,
        })?;
        batch.push(RecordRow::from_record(&record)?);
        if batch.len() >= batch_size {
            let bytes = rec.position().map(|p| p.byte()).unwrap_or(0);
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            if !emit(full, bytes) {
                return Ok(false);
            }
        }
    }
    let bytes = rdr.position().byte();
    if !batch.is_empty() && !emit(batch, bytes) {
        return Ok(false);
    }
    Ok(true)
}

/// Reads `agencies.csv` (columns [`AGENCY_COLUMNS`]). New agencies start active, without an
/// API key.
pub fn read_agencies(path: &Path) -> Result<Vec<Agency>, ImportError> {
    let file = path.display().to_string();
    let mut rdr = open_csv(path)?;
    let headers = rdr.headers().map_err(|e| csv_error(&file, e))?.clone();
    let index = column_index(&file, &headers, AGENCY_COLUMNS)?;
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).map_err(|e| csv_error(&file, e))? {
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let cell = |c: &str| {
            index
                .get(c)
                .and_then(|&i| rec.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let ori = Ori::parse(&cell("ori")).map_err(|e| ImportError::Row {
            file: file.clone(),
            line,
            column: "ori".into(),
            problem: e.problem,
        })?;
        let name = cell("name");
        if name.is_empty() {
            return Err(ImportError::Row {
                file: file.clone(),
                line,
                column: "name".into(),
                problem: "is required".into(),
            });
        }
        out.push(Agency {
            ori,
            name,
            kind: cell("kind"),
            state: cell("state").to_ascii_uppercase(),
            county: cell("county"),
            field_office: cell("field_office"),
            api_key_hash: None,
            active: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("verity_store_import_{}_{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    }

    #[test]
    fn bad_cell_line_is_right_for_lf_and_crlf_files() {
        let header = "ori,name,kind,state,county,field_office";
        for (name, eol) in [("lf", "\n"), ("crlf", "\r\n")] {
            let dir = scratch(name);
            let path = dir.join(AGENCIES_FILE);
            let body = [
                header,
                "MD0030000,A SHERIFF,sheriff,MD,A,BAL",
                "MD0040000,B SHERIFF,sheriff,MD,B,BAL",
                "BAD,C SHERIFF,sheriff,MD,C,BAL",
            ]
            .join(eol);
            std::fs::write(&path, body + eol).expect("write");
            match read_agencies(&path) {
                Err(ImportError::Row { line, column, .. }) => {
                    assert_eq!((line, column.as_str()), (4, "ori"), "{name}")
                }
                other => panic!("{name}: expected a row error, got {other:?}"),
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn crlf_files_read_without_stray_carriage_returns() {
        let dir = scratch("crlf_ok");
        let path = dir.join(AGENCIES_FILE);
        std::fs::write(
            &path,
            "ori,name,kind,state,county,field_office\r\nMD0030000,A SHERIFF,sheriff,MD,A,\"BAL\"\r\n",
        )
        .expect("write");
        let list = read_agencies(&path).expect("valid file");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].field_office, "BAL");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
