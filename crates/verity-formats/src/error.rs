//! One error type for every reader in this crate; each variant says where the problem is.

/// A malformed or unsupported input. Every variant names the place (format and byte offset,
/// or ANSI/NIST record type + index, field number and byte offset) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A binary record (ISO 19794-2, INCITS 378): `offset` is from the start of the input.
    #[error("{format}: byte {offset}: {field}: {problem}")]
    Binary {
        format: &'static str,
        offset: usize,
        field: &'static str,
        problem: String,
    },
    /// An ANSI/NIST-ITL logical record. `record_index` counts records from 0 (Type-1 is 0);
    /// `field` is the tag such as "2.022" (or "header" for binary records).
    #[error("ANSI/NIST record Type-{record_type} #{record_index}, field {field}, byte {offset}: {problem}")]
    Record {
        record_type: u32,
        record_index: usize,
        field: String,
        offset: usize,
        problem: String,
    },
    /// The content matched no supported format.
    #[error("unrecognised content: {0}")]
    Unrecognised(String),
    /// A value could not be written in the format (too long, out of range).
    #[error("cannot encode {field}: {problem}")]
    Encode { field: String, problem: String },
}
