//! Verity's workflows and the safeguards that guard them.
//!
//! Architecture invariant: every safeguard lives here, in one place, next to its tests. The
//! HTTP layer calls these functions; it never re-implements a check.

pub mod access;
pub mod credentials;
pub mod detainer;
pub mod documents;
pub mod hold_clock;
pub mod lesc;
pub mod ncatc;
pub mod perc;

pub use access::{AccessPolicy, Permission, Principal};
