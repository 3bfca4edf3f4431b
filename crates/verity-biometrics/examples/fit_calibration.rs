//! Fits the per-finger calibration table on synthetic comparisons and prints it as CSV.
//! Deterministic. Usage: fit_calibration [masters] > data/biometrics/finger_calibration.csv
use verity_biometrics::synth::{impression, master, ImpressionParams};
use verity_biometrics::{Calibration, Matcher, Template};

const SEED: u64 = 0xCA11_B8A7E;
const IMPOSTORS_PER_PROBE: usize = 20;

fn main() {
    let masters: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(12_000);
    let rolled = ImpressionParams::rolled();
    let plain = ImpressionParams::plain();
    let mut gallery = Vec::with_capacity(masters);
    let mut probes = Vec::with_capacity(masters);
    for i in 0..masters {
        let finger = (i % 10 + 1) as u8;
        let m = master(SEED, &format!("{:010}", i), finger);
        gallery.push(Template::new(&impression(&m, &rolled, 0)));
        // One probe in five is a plain (flat, partial) impression.
        let params = if i % 5 == 4 { &plain } else { &rolled };
        probes.push(Template::new(&impression(&m, params, 1)));
    }
    let mut matcher = Matcher::new();
    let mut genuine = Vec::with_capacity(masters);
    let mut impostor = Vec::with_capacity(masters * IMPOSTORS_PER_PROBE);
    for i in 0..masters {
        genuine.push(matcher.compare(&probes[i], &gallery[i]).score);
        // Impostors share the finger position (indices congruent mod 10), as in a search.
        for j in 1..=IMPOSTORS_PER_PROBE {
            let k = (i + 10 * j * 37) % masters;
            if k != i {
                impostor.push(matcher.compare(&probes[i], &gallery[k]).score);
            }
        }
    }
    let c = Calibration::fit(&genuine, &impostor);
    print!(
        "{}",
        c.to_csv(&format!(
            "Fitted by `cargo run --release -p verity-biometrics --example fit_calibration {masters}`\n\
             seed {SEED:#x}; {} genuine pairs (80% rolled/rolled, 20% plain/rolled), {} impostor pairs (same finger position)",
            genuine.len(),
            impostor.len()
        ))
    );
}
