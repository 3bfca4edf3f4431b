//! The machine line every benchmark prints next to its figures.
//!
//! Parses text it is handed (the contents of `/proc/cpuinfo`), so this crate stays free of I/O.

/// "N cores, CPU model" from `/proc/cpuinfo` text and the core count.
pub fn describe(cpuinfo: &str, cores: usize) -> String {
    format!("{cores} cores, {}", cpu_model(cpuinfo))
}

/// The first `model name` in `/proc/cpuinfo` text, or `unknown`.
pub fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_model_name() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n";
        assert_eq!(cpu_model(text), "AMD EPYC 7B13");
        assert_eq!(describe(text, 2), "2 cores, AMD EPYC 7B13");
        assert_eq!(cpu_model(""), "unknown");
    }
}
