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

/// One policy file being loaded: parses it and makes errors that point at the offending line.
pub(crate) struct Source<'a> {
    pub file: &'static str,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, PolicyError> {
        toml::from_str(self.text).map_err(|e| PolicyError::Parse {
            file: self.file.into(),
            problem: e.to_string(),
        })
    }

    /// An error at the first line containing `needle`.
    pub fn invalid(&self, needle: &str, problem: impl Into<String>) -> PolicyError {
        PolicyError::Invalid {
            file: self.file.into(),
            line: line_of(self.text, needle),
            problem: problem.into(),
        }
    }

    pub fn facts(&self, names: &[String]) -> Result<Vec<crate::facts::FactName>, PolicyError> {
        names
            .iter()
            .map(|n| {
                crate::facts::FactName::parse(n).map_err(|_| {
                    let known: Vec<&str> = crate::facts::FactName::ALL
                        .iter()
                        .map(|f| f.code())
                        .collect();
                    self.invalid(
                        &format!("\"{n}\""),
                        format!("unknown fact '{n}'; known facts: {}", known.join(", ")),
                    )
                })
            })
            .collect()
    }

    /// A rule's required and excluding facts; a fact in both is a contradiction.
    pub fn rule_facts(
        &self,
        rule: &str,
        at: &str,
        all: &[String],
        none: &[String],
    ) -> Result<(Vec<crate::facts::FactName>, Vec<crate::facts::FactName>), PolicyError> {
        let all = self.facts(all)?;
        let none = self.facts(none)?;
        if let Some(both) = all.iter().find(|a| none.contains(a)) {
            return Err(self.invalid(
                at,
                format!("contradiction: rule '{rule}' both requires and forbids '{both}'"),
            ));
        }
        Ok((all, none))
    }
}
