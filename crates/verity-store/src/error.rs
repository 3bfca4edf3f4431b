//! The store's error type: what failed, where, and why, in words an operator can act on.

use verity_model::FieldError;

/// Errors from opening or using a [`crate::Store`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL '{url}' is not supported: {problem}")]
    BadUrl { url: String, problem: String },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open database {target}: {source}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error while trying to {op}: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A stored value could not be read back (edited by hand, or written by a newer version).
    #[error("stored {table} row '{key}' is unreadable: {problem}")]
    Corrupt {
        table: &'static str,
        key: String,
        problem: String,
    },
    #[error("invalid input: {0}")]
    Invalid(#[from] FieldError),
    #[error("{what} '{key}' already exists")]
    AlreadyExists { what: &'static str, key: String },
    #[error("{what} '{key}' does not exist")]
    NotFound { what: &'static str, key: String },
}

/// Attaches the operation name to a sqlx error.
pub(crate) trait DbContext<T> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> DbContext<T> for Result<T, sqlx::Error> {
    fn ctx(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { op, source })
    }
}
