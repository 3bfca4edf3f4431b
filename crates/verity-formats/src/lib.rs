//! verity-formats: placeholder; see ARCHITECTURE.md.
