//! verity-synth: the synthetic world generator.
//!
//! A world is a population of people (most of them U.S. citizens, the rest carrying every
//! immigration status) and the records their lives left in the eight record systems, plus the
//! hidden ground truth. The same seed always gives the same bytes: each person is a pure
//! function of `(seed, index)` (see [`person`]), chunks of people are generated in parallel and
//! written in order, and nothing reads the clock ("today" is fixed at [`person::TODAY`]).
//!
//! Output layout in the target directory:
//! - `<system>.csv` for each record system, in `verity_model::record::csv_header` form;
//! - `agencies.csv` (ORI, name, kind, state, county, field office);
//! - `truth/persons.csv` and `truth/record_person.csv` (evaluation only);
//! - `manifest.json` (generator version, seed, people, row counts; no timestamps).

pub mod agencies;
pub mod noise;
pub mod person;
pub mod queries;
pub mod tables;
mod world;

pub use person::{generate_person, person_id, CitizenshipBasis, PersonTruth, TODAY};
pub use tables::Culture;
pub use world::{generate_world, SynthConfig, WorldSummary, GENERATOR_VERSION};

use std::path::PathBuf;

/// What can go wrong while generating a world.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    // The cause is part of the message (not a `#[source]`), so that `{:#}` chains do not
    // print it twice.
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: CSV write failed: {cause}")]
    Csv { path: PathBuf, cause: csv::Error },
    #[error("embedded table data/synth/{file} line {line}: {problem}")]
    Data {
        file: String,
        line: usize,
        problem: String,
    },
    #[error("bad configuration: {0}")]
    Config(String),
}

impl SynthError {
    /// A copy for errors cached by the table loader (only `Data` and `Config` occur there).
    pub(crate) fn clone_data(&self) -> SynthError {
        match self {
            SynthError::Data {
                file,
                line,
                problem,
            } => SynthError::Data {
                file: file.clone(),
                line: *line,
                problem: problem.clone(),
            },
            other => SynthError::Config(other.to_string()),
        }
    }
}
