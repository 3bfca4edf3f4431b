//! verity-resolve: identity resolution. See ARCHITECTURE.md.

pub mod index;
