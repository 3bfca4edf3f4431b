//! `verity`: the one binary. It parses flags and wires the library crates together; the work
//! itself lives in the crates (see ARCHITECTURE.md).

mod cmd;

use clap::{Parser, Subcommand};

// mimalloc instead of glibc malloc: batch linkage allocates and frees many small name and
// candidate buffers, and glibc's malloc/free were about 17% of its instructions (session 6
// profile); mimalloc also returns memory from threads' heaps without glibc's arena growth.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "verity",
    version,
    about = "Verity: identity resolution and status determination with accountability"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on the embedded default (SQLite): data dir, demo world, server, console.
    Up(cmd::serve::UpArgs),
    /// Serve an existing data dir or PostgreSQL store.
    Serve(cmd::serve::ServeArgs),
    /// Process bookings queued on NATS by `verity serve --nats` (one of any number of workers).
    Worker(cmd::serve::WorkerArgs),
    /// Write a synthetic world (one CSV per record system plus ground truth).
    Synth(cmd::synth::SynthArgs),
    /// Load a synthetic world directory into the store.
    Import(cmd::store::ImportArgs),
    /// Link two CSV files, or dedupe one.
    Link(cmd::link::LinkArgs),
    /// Fingerprint tools: identify, enroll, inspect.
    #[command(subcommand)]
    Bio(cmd::bio::BioCommand),
    /// Account tools.
    #[command(subcommand)]
    User(cmd::serve::UserCommand),
    /// Agency tools: API keys.
    #[command(subcommand)]
    Agency(cmd::agency::AgencyCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(cmd::store::AuditCommand),
    /// NCATC lead generation.
    #[command(subcommand)]
    Leads(cmd::leads::LeadsCommand),
    /// PERC tools.
    #[command(subcommand)]
    Perc(cmd::perc::PercCommand),
    /// Benchmarks that print figures with the machine and data size.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(a) => cmd::serve::up(a),
        Command::Serve(a) => cmd::serve::serve(a),
        Command::Worker(a) => cmd::serve::worker(a),
        Command::Synth(a) => cmd::synth::run(a),
        Command::Import(a) => cmd::store::import(a),
        Command::Link(a) => cmd::link::run(a),
        Command::Bio(c) => cmd::bio::run(c),
        Command::User(c) => cmd::serve::user(c),
        Command::Agency(c) => cmd::agency::run(c),
        Command::Audit(c) => cmd::store::audit(c),
        Command::Bench(c) => cmd::bench::run(c),
        Command::Leads(c) => cmd::leads::run(c),
        Command::Perc(c) => cmd::perc::run(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
