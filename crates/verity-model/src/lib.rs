//! Verity's domain model: the shapes every other crate speaks.
//!
//! Architecture invariant: this crate does no I/O except parsing text it is handed (and the
//! reference tables embedded at build time). It knows nothing about storage, HTTP or matching.

pub mod audit;
pub mod compact;
pub mod date;
pub mod error;
pub mod ids;
pub mod machine;
pub mod name;
pub mod record;
pub mod reference;
pub mod roles;
pub mod status;

pub use audit::{AuditAction, AuditEntry, AuditEvent};
pub use date::PartialDate;
pub use error::{FieldError, ModelError};
pub use ids::{ANumber, FbiNumber, Fin, Identifiers, Ori, Passport, Ssn, StateId};
pub use name::{PersonName, Sex};
pub use record::{Address, Identity, RecordBody, RecordSystem, SourceRecord};
pub use reference::{AorTable, FieldOffice, OffenseTable, Reference, States};
pub use roles::{Purpose, Role};
pub use status::ImmigrationStatus;
