//! verity-store: placeholder; see ARCHITECTURE.md.
