//! Detainer packet PDF rendering time. `cargo bench -p verity-workflow --bench pdf_packet`

use std::time::Instant;
use verity_workflow::documents::{example_packet, render_packet};

fn main() {
    let (action, details) = example_packet();
    let runs = 200;
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let t = Instant::now();
        bytes = render_packet(&action, &details).len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let cpu = verity_model::machine::cpu_model(
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
    );
    println!(
        "machine: {} cores, {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("detainer packet (I-247A + I-205, 2 pages, {bytes} bytes), {runs} renders");
    println!(
        "median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times[runs / 2],
        times[runs * 99 / 100],
        times[runs - 1]
    );
}
