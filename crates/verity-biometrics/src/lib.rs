//! verity-biometrics: fingerprint identification on minutiae.
//!
//! - [`template`]: compact minutiae templates (6 bytes per minutia) with local edge tables.
//! - [`matcher`]: the single-finger matcher (root pairs + consistent local growth).
//! - [`calibration`]: per-finger score -> log-likelihood ratio, fitted on synthetic data and
//!   stored as a data table; ten-print fusion and same-person probabilities.
//! - [`index`]: the 1:N gallery with an inverted index of quantised edge invariants.
//! - [`synth`]: synthetic master prints and impressions.

pub mod calibration;
pub mod index;
pub mod matcher;
pub mod synth;
pub mod template;

pub use calibration::{Calibration, CalibrationError};
pub use index::{Candidate, GalleryIndex, IndexError, SubjectPrints};
pub use matcher::{FingerScore, Matcher};
pub use template::{Minutia, MinutiaType, Template};
