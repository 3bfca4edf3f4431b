//! verity-resolve: placeholder; see ARCHITECTURE.md.
