//! One module per command group. Each turns clap arguments into a library call.

pub mod agency;
pub mod bench;
pub mod bio;
pub mod link;
pub mod serve;
pub mod store;
pub mod synth;
