//! Person names as recorded: parts, original script, aliases.
//!
//! The model keeps what the record said. Normalization, transliteration and variant matching
//! live in `verity-names`; this crate only stores and validates.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A name as one record system wrote it. Empty parts are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PersonName {
    pub given: String,
    pub middle: String,
    /// Family name(s), including compound Hispanic surnames ("GARCIA LOPEZ") and particles.
    pub family: String,
    /// The full name in its original script when the source had one (e.g. "Мухаммед Алиев").
    pub original: String,
}

impl PersonName {
    pub fn new(given: &str, middle: &str, family: &str) -> Self {
        PersonName {
            given: given.trim().into(),
            middle: middle.trim().into(),
            family: family.trim().into(),
            original: String::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.given.is_empty() && self.family.is_empty() && self.middle.is_empty()
    }

    /// Parses the NCIC/Nlets form `LAST, FIRST MIDDLE`. Names may carry commas only as the
    /// family/given separator and never carry periods.
    pub fn parse_last_first(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new("name", "is empty"));
        }
        if s.contains('.') {
            return Err(FieldError::new(
                "name",
                format!("'{raw}' contains a period"),
            ));
        }
        let (family, rest) = match s.split_once(',') {
            Some((f, r)) => (f.trim(), r.trim()),
            None => (s, ""),
        };
        if rest.contains(',') {
            return Err(FieldError::new(
                "name",
                format!("'{raw}' has more than one comma"),
            ));
        }
        if family.is_empty() {
            return Err(FieldError::new(
                "name",
                format!("'{raw}' has no family name before the comma"),
            ));
        }
        let mut given_parts = rest.split_whitespace();
        let given = given_parts.next().unwrap_or("");
        let middle: Vec<&str> = given_parts.collect();
        Ok(PersonName::new(given, &middle.join(" "), family))
    }

    /// The `LAST, FIRST MIDDLE` form.
    pub fn last_first(&self) -> String {
        let mut s = self.family.clone();
        if !self.given.is_empty() || !self.middle.is_empty() {
            s.push_str(", ");
            s.push_str(&self.given);
            if !self.middle.is_empty() {
                if !self.given.is_empty() {
                    s.push(' ');
                }
                s.push_str(&self.middle);
            }
        }
        s
    }
}

impl fmt::Display for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            self.given.as_str(),
            self.middle.as_str(),
            self.family.as_str(),
        ]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
        f.write_str(&parts.join(" "))
    }
}

/// Aliases are written in files as `LAST, FIRST MIDDLE` joined with `|`.
pub fn parse_aliases(raw: &str) -> Result<Vec<PersonName>, FieldError> {
    raw.split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| PersonName::parse_last_first(s).map_err(|e| FieldError::new("aliases", e.problem)))
        .collect()
}

pub fn format_aliases(aliases: &[PersonName]) -> String {
    aliases
        .iter()
        .map(PersonName::last_first)
        .collect::<Vec<_>>()
        .join("|")
}

/// Sex as recorded (NCIC codes M, F, X/U for unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Sex {
    #[serde(rename = "M")]
    Male,
    #[serde(rename = "F")]
    Female,
    #[serde(rename = "X")]
    Other,
}

impl Sex {
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "" | "U" => Ok(None),
            "M" | "MALE" => Ok(Some(Sex::Male)),
            "F" | "FEMALE" => Ok(Some(Sex::Female)),
            "X" => Ok(Some(Sex::Other)),
            other => Err(FieldError::new(
                "sex",
                format!("'{other}' is not M, F, X or U"),
            )),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
            Sex::Other => "X",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_first_form_round_trips() {
        let n = PersonName::parse_last_first("GARCIA LOPEZ, JOSE LUIS").expect("valid");
        assert_eq!(
            (n.family.as_str(), n.given.as_str(), n.middle.as_str()),
            ("GARCIA LOPEZ", "JOSE", "LUIS")
        );
        assert_eq!(n.last_first(), "GARCIA LOPEZ, JOSE LUIS");
        assert_eq!(PersonName::parse_last_first(&n.last_first()), Ok(n));
    }

    #[test]
    fn periods_and_double_commas_are_rejected() {
        assert!(PersonName::parse_last_first("DOE, J. R").is_err());
        assert!(PersonName::parse_last_first("DOE, JOHN, JR").is_err());
        assert!(PersonName::parse_last_first(", JOHN").is_err());
    }

    #[test]
    fn aliases_parse_from_pipe_list() {
        let a = parse_aliases("SMITH, BOB| JONES, ROBERT A").expect("valid");
        assert_eq!(a.len(), 2);
        assert_eq!(format_aliases(&a), "SMITH, BOB|JONES, ROBERT A");
    }
}
