//! Prints a few people and their records, for eyeballing the generator's output.
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    for i in 0..n {
        let (t, recs) = verity_synth::generate_person(1, i);
        println!("{}", t.to_csv_row().join(","));
        for r in recs {
            println!("    {}", r.to_csv_row().join(","));
        }
    }
}
