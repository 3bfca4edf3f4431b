//! verity-formats: the wire and file formats Verity reads and writes.
//!
//! - [`fmr`]: ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 finger minutiae records.
//! - [`ansi_nist`]: ANSI/NIST-ITL traditional-encoding transactions (EBTS Type-1/2/4/9/14).
//! - [`nlets`]: legacy Nlets IAQ text in, IAR text out.
//! - [`read_subject`] / [`describe`]: any supported biometric file, told apart by content.
//!
//! Every reader is total: malformed input yields a [`FormatError`] naming where and what,
//! never a panic, and no length field is trusted before it is checked against the input size.

pub mod ansi_nist;
pub mod error;
pub mod fmr;
pub mod nlets;
mod subject;

pub use error::FormatError;
pub use subject::{describe, detect, read_subject, DetectedFormat, Subject};
