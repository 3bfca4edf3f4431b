//! LESC: answering an Immigration Alien Query.
//!
//! [`decide`] turns ranked identity candidates and the status rules into either an automatic
//! answer or a specialist review, with the reasons. [`Iar`] is the answer and its views per
//! recipient. [`queue`] orders the review work; [`hits`] times NCIC hit confirmations.
//!
//! Safeguards that live here, with tests:
//! - any plausible candidate with citizenship indicia, or a claim in the query, gives "U.S.
//!   citizen or potential U.S. citizen: no ICE action" and a citizenship review;
//! - "no record found" is said as such and never carries an enforcement action;
//! - a removable status is never answered automatically on name and birth date alone, nor is
//!   any other noncitizen status (lesc.toml `noncitizen_needs_identifier`): a citizen namesake
//!   may be the subject.

pub mod decision;
pub mod engine;
pub mod hits;
pub mod iar;
pub mod intake;
pub mod policy;
pub mod queue;
pub mod snapshot;

pub use decision::{decide, Candidate, Decision, QueryContext, ReviewReason};
pub use iar::{AgencyIar, Iar, IntendedAction};
pub use policy::LescPolicy;
