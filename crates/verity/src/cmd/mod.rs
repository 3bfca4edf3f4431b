//! One module per command group. Each turns clap arguments into a library call.

pub mod agency;
pub mod bench;
pub mod bench_lesc;
pub mod bio;
pub mod leads;
pub mod link;
pub mod perc;
pub mod serve;
pub mod store;
pub mod synth;
