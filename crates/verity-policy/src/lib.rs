//! Versioned policy: data files under `data/policy/`, validated at load, evaluated here.
//!
//! Architecture invariant: law and policy change; code should not need to. What may change
//! with a memo (which facts establish a status, which statuses are routine, priorities, lead
//! rules) is data. What must never change with a memo (citizenship indicia block enforcement;
//! "no record found" is not a status about the person) is code here, with tests.

pub mod error;
pub mod facts;
pub mod leads;
pub mod priority;
pub mod status;

pub use error::PolicyError;
pub use facts::{derive_facts, Fact, FactName};
pub use leads::{LeadOutcome, LeadPolicy, Ongoing, ParkReason};
pub use priority::{PriorityPolicy, Rank};
pub use status::{Citation, Determination, StatusRules};
