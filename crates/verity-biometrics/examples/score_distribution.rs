//! Usage: score_distribution [masters]. Prints genuine and impostor single-finger score quantiles on synthetic impressions.
use verity_biometrics::synth::{impression, master, ImpressionParams};
use verity_biometrics::{Matcher, Template};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let p = ImpressionParams::rolled();
    let mut gallery = Vec::new();
    let mut probes = Vec::new();
    for i in 0..n {
        let m = master(1, &format!("{:010}", i), (i % 10 + 1) as u8);
        gallery.push(Template::new(&impression(&m, &p, 0)));
        probes.push(Template::new(&impression(&m, &p, 1)));
    }
    let mut matcher = Matcher::new();
    let mut gen = Vec::new();
    let mut imp = Vec::new();
    let t = std::time::Instant::now();
    for i in 0..n {
        gen.push(matcher.compare(&probes[i], &gallery[i]).score);
        for j in 0..10 {
            let k = (i + 1 + j * 7) % n;
            if k != i {
                imp.push(matcher.compare(&probes[i], &gallery[k]).score);
            }
        }
    }
    let el = t.elapsed();
    println!(
        "{} comparisons in {:?}: {:.0}/s",
        gen.len() + imp.len(),
        el,
        (gen.len() + imp.len()) as f64 / el.as_secs_f64()
    );
    gen.sort_by(|a, b| a.total_cmp(b));
    imp.sort_by(|a, b| a.total_cmp(b));
    let q = |v: &Vec<f32>, f: f64| v[((v.len() - 1) as f64 * f) as usize];
    println!(
        "genuine  q01 {:.3} q05 {:.3} q50 {:.3}",
        q(&gen, 0.01),
        q(&gen, 0.05),
        q(&gen, 0.5)
    );
    println!(
        "impostor q50 {:.3} q99 {:.3} q999 {:.3} max {:.3}",
        q(&imp, 0.5),
        q(&imp, 0.99),
        q(&imp, 0.999),
        q(&imp, 1.0)
    );
    let mean_n: f64 = gallery.iter().map(|t| t.len() as f64).sum::<f64>() / n as f64;
    println!("mean minutiae {:.1}", mean_n);
}
