//! verity-names: placeholder; see ARCHITECTURE.md.
