//! `cargo run --release -p verity-synth --example world -- PEOPLE SEED DIR`: the same as
//! `verity synth`, without building the whole binary (handy for profiling the generator).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let people = args.next().unwrap_or_else(|| "10000".into()).parse()?;
    let seed = args.next().unwrap_or_else(|| "1".into()).parse()?;
    let out = args
        .next()
        .unwrap_or_else(|| "/tmp/verity-world".into())
        .into();
    let summary = verity_synth::generate_world(&verity_synth::SynthConfig {
        people,
        seed,
        out,
        progress: true,
    })?;
    eprintln!("{summary:?}");
    Ok(())
}
