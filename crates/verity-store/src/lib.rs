//! verity-store: Verity's durable store.
//!
//! One [`Store`] type with two backends behind it: SQLite (the embedded default, one file
//! `<data dir>/verity.db` in WAL mode) and PostgreSQL (production). Both run the same SQL text
//! wherever the dialects agree (SQLite accepts `$1`-style parameters), so a query is written
//! once; the few backend-specific statements (transaction start, snapshot reads) sit in
//! [`backend`].
//!
//! It holds: source records (whole record as JSON plus indexed lookup columns, each write
//! stamped with a monotonically increasing `rev`), agencies, users, sessions, the hash-chained
//! audit log (append-only: no update or delete is exposed) and a small key/value `meta` table.
//!
//! Architecture invariant: this crate knows nothing about HTTP, matching or policy. It stores
//! and returns the domain types of `verity-model`; callers decide what to do with them.

mod accounts;
mod audit;
mod backend;
pub mod bookings;
pub mod bulk;
mod error;
pub mod import;
pub mod leads;
mod meta;
mod migrate;
pub mod perc;
pub mod queries;
mod records;
pub mod review;
pub mod scan;

pub use accounts::{Agency, NewUser, Session, User};
pub use audit::AuditVerifyError;
pub use backend::{BackendKind, Store};
pub use error::StoreError;
pub use import::{import_world, FileSummary, ImportError, ImportOptions, ImportSummary};
pub use migrate::SCHEMA_VERSION;
pub use records::IdKind;

/// File name of the SQLite database inside a data directory.
pub const SQLITE_FILE_NAME: &str = "verity.db";

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Handlers in the HTTP server await these futures on a multi-threaded runtime.
    #[test]
    fn store_futures_are_send() {
        let dir = std::env::temp_dir();
        assert_send(&Store::open_data_dir(&dir));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = rt
            .block_on(Store::open("sqlite::memory:"))
            .expect("in-memory store");
        assert_send(&store.insert_records(&[]));
        assert_send(&store.get_record("x"));
        assert_send(&store.records_by_identifier(IdKind::Fin, "1234567890"));
        assert_send(&store.scan_records(0, 1));
        assert_send(&store.get_user("x"));
        assert_send(&store.get_session("x"));
        assert_send(&store.list_audit(0, 1));
        assert_send(&store.verify_audit());
        assert_send(&store.get_meta("x"));
        let event = verity_model::AuditEvent {
            actor: "t".into(),
            agency: None,
            purpose: verity_model::Purpose::System,
            action: verity_model::AuditAction::Logout,
        };
        assert_send(&store.append_audit(event));
        let opts = ImportOptions::default();
        assert_send(&import_world(&store, &dir, &opts));
    }
}
