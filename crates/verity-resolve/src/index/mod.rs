//! Candidate index (being built).
