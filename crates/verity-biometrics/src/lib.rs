//! verity-biometrics: placeholder; see ARCHITECTURE.md.
