//! verity-resolve: identity resolution. See ARCHITECTURE.md.
//!
//! Model side: [`compare`] (comparators), [`model`] (Fellegi–Sunter with EM, term frequencies,
//! calibration, explanations), [`link`] (batch link, dedupe, clustering), [`schema`] (CSV +
//! TOML schema readers), [`bench`] (synthetic benchmark). Candidate index: [`index`].

pub mod bench;
pub mod compare;
pub mod index;
pub mod link;
pub mod model;
pub mod names;
pub mod record;
pub mod schema;
pub mod search;
pub mod strsim;

pub use model::{FieldWeight, Model, Scored};
pub use record::{Prepared, Record};
pub use search::{SearchHit, Searcher};
