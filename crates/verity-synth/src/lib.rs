//! verity-synth: placeholder; see ARCHITECTURE.md.
