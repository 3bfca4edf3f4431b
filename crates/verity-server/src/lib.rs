//! verity-server: placeholder; see ARCHITECTURE.md.
