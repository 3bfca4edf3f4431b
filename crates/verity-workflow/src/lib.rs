//! verity-workflow: placeholder; see ARCHITECTURE.md.
