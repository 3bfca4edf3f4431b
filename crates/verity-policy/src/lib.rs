//! verity-policy: placeholder; see ARCHITECTURE.md.
