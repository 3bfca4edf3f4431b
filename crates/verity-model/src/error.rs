use std::fmt;

/// A value that failed validation: which field, what was wrong, and the offending input.
///
/// Every parser of outside input in Verity reports problems in this shape so that an agency
/// user or an operator can fix the input without reading code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Errors from loading reference tables and reading record files.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{file}, line {line}: {error}")]
    Row {
        file: String,
        line: u64,
        error: FieldError,
    },
    #[error("{file}: missing column '{column}'")]
    MissingColumn { file: String, column: String },
    #[error("{file}: {source}")]
    Csv {
        file: String,
        #[source]
        source: csv::Error,
    },
    #[error("{file}: {problem}")]
    Table { file: String, problem: String },
}
