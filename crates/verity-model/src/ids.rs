//! Identifiers that name a person or an agency across record systems.
//!
//! Each type validates on construction so that a malformed identifier is rejected at the edge,
//! with the field named, and never silently compared against good data.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

fn digits_only(field: &str, raw: &str) -> Result<String, FieldError> {
    let cleaned: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    if cleaned.is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    if !cleaned.chars().all(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            format!("'{raw}' must contain only digits"),
        ));
    }
    Ok(cleaned)
}

/// Alien registration number. Issued with 8 or 9 digits; stored as 9 digits (zero-padded),
/// which is how an 8-digit A-number is written on newer documents.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ANumber(String);

impl ANumber {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        let body = trimmed
            .strip_prefix('A')
            .or_else(|| trimmed.strip_prefix('a'))
            .unwrap_or(trimmed);
        let d = digits_only("a_number", body)?;
        match d.len() {
            8 => Ok(ANumber(format!("0{d}"))),
            9 => Ok(ANumber(d)),
            n => Err(FieldError::new(
                "a_number",
                format!("'{raw}' has {n} digits; an A-number has 8 or 9"),
            )),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// DHS fingerprint identification number (FIN): an opaque identifier of a biometric
/// enrollment. Synthetic FINs are 10 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fin(String);

impl Fin {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let d = digits_only("fin", raw.trim())?;
        if !(8..=12).contains(&d.len()) {
            return Err(FieldError::new(
                "fin",
                format!("'{raw}' must have 8 to 12 digits"),
            ));
        }
        Ok(Fin(d))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// FBI Universal Control Number: up to 9 alphanumeric characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FbiNumber(String);

impl FbiNumber {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let v = raw.trim().to_ascii_uppercase();
        if v.is_empty() || v.len() > 9 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                "fbi_number",
                format!("'{raw}' must be 1 to 9 letters or digits"),
            ));
        }
        Ok(FbiNumber(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// State identification number (SID): two-letter state prefix plus up to 8 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StateId(String);

impl StateId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let v = raw.trim().to_ascii_uppercase();
        if v.len() < 3 || v.len() > 10 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                "state_id",
                format!("'{raw}' must be 3 to 10 letters or digits"),
            ));
        }
        Ok(StateId(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Passport: issuing country (NCIC/ISO-like 2-3 letter code) and document number.
/// Written as `CC:NUMBER` in files.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Passport {
    pub country: String,
    pub number: String,
}

impl Passport {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let raw_t = raw.trim();
        let (country, number) = raw_t.split_once(':').ok_or_else(|| {
            FieldError::new("passport", format!("'{raw}' must be COUNTRY:NUMBER"))
        })?;
        let country = country.trim().to_ascii_uppercase();
        let number = number.trim().to_ascii_uppercase();
        if !(2..=3).contains(&country.len()) || !country.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(FieldError::new(
                "passport",
                format!("'{raw}' has a bad country code"),
            ));
        }
        if number.is_empty()
            || number.len() > 20
            || !number.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(FieldError::new(
                "passport",
                format!("'{raw}' has a bad document number"),
            ));
        }
        Ok(Passport { country, number })
    }
}

/// Social Security number, 9 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ssn(String);

impl Ssn {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let d = digits_only("ssn", raw.trim())?;
        if d.len() != 9 {
            return Err(FieldError::new(
                "ssn",
                format!("'{raw}' must have 9 digits"),
            ));
        }
        Ok(Ssn(d))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Originating Agency Identifier: exactly 9 letters or digits (for example `MD0030000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ori(String);

impl Ori {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let v = raw.trim().to_ascii_uppercase();
        if v.len() != 9 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                "ori",
                format!("'{raw}' must be exactly 9 letters or digits"),
            ));
        }
        Ok(Ori(v))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, FieldError> { <$t>::parse(&s) }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String { v.to_string() }
        }
        impl std::str::FromStr for $t {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, FieldError> { <$t>::parse(s) }
        }
    )*};
}
string_newtype_impls!(ANumber, Fin, FbiNumber, StateId, Passport, Ssn, Ori);

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }
    )*};
}
display_inner!(ANumber, Fin, FbiNumber, StateId, Ssn, Ori);

impl fmt::Display for Passport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.country, self.number)
    }
}

/// All identifiers a record may carry. Every one is optional: most records carry few.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifiers {
    pub a_number: Option<ANumber>,
    pub fin: Option<Fin>,
    pub fbi_number: Option<FbiNumber>,
    pub state_id: Option<StateId>,
    pub passport: Option<Passport>,
    pub ssn: Option<Ssn>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_pads_eight_digits_and_rejects_bad_lengths() {
        assert_eq!(
            ANumber::parse("12345678").map(|a| a.to_string()),
            Ok("012345678".into())
        );
        assert_eq!(
            ANumber::parse("A012-345-678").map(|a| a.to_string()),
            Ok("012345678".into())
        );
        let e = ANumber::parse("1234567").unwrap_err();
        assert_eq!(e.field, "a_number");
        assert!(ANumber::parse("12345678X").is_err());
    }

    #[test]
    fn ori_is_exactly_nine_characters() {
        assert!(Ori::parse("MD0030000").is_ok());
        assert!(Ori::parse("md0030000").is_ok());
        assert!(Ori::parse("MD003000").is_err());
        assert!(Ori::parse("MD00300000").is_err());
    }

    #[test]
    fn passport_round_trips_through_text() {
        let p = Passport::parse("mx:G1234567").expect("valid");
        assert_eq!(p.to_string(), "MX:G1234567");
        assert_eq!(Passport::parse(&p.to_string()), Ok(p));
        assert!(Passport::parse("G1234567").is_err());
    }
}
