/// A policy file that cannot be used. The last good policy stays active.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: {problem}")]
    Parse { file: String, problem: String },
    #[error("{file}, line {line}: {problem}")]
    Invalid {
        file: String,
        line: usize,
        problem: String,
    },
}

/// The 1-based line of the first occurrence of `needle` in `text` (0 when absent), so that a
/// semantic error can point at the line that causes it.
pub(crate) fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or(0)
}
