//! Dates whose parts may be unknown.
//!
//! Records in this field often hold a year only, or a placeholder such as `01/01`. A
//! [`PartialDate`] keeps unknown parts as `None` so that a comparator can treat them as weak
//! evidence instead of a real birthday. Text form: `YYYY-MM-DD`, with `00` for an unknown
//! month or day (`1985-00-00` = year only).

use crate::error::FieldError;
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Serialized as its text form in human-readable formats (JSON, TOML, CSV), and as one
/// integer (`year << 16 | month << 8 | day`, 0 for an unknown part) in binary ones (the compact
/// record form), where parsing text cost a cached record's decoding an allocation per date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartialDate {
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

impl PartialDate {
    pub fn full(year: u16, month: u8, day: u8) -> Result<Self, FieldError> {
        Self::new(year, Some(month), Some(day))
    }

    pub fn new(year: u16, month: Option<u8>, day: Option<u8>) -> Result<Self, FieldError> {
        if !(1800..=2200).contains(&year) {
            return Err(FieldError::new(
                "date",
                format!("year {year} is out of range 1800-2200"),
            ));
        }
        if day.is_some() && month.is_none() {
            return Err(FieldError::new(
                "date",
                "a day without a month is not a date",
            ));
        }
        if let Some(m) = month {
            if !(1..=12).contains(&m) {
                return Err(FieldError::new("date", format!("month {m} is not 1-12")));
            }
            if let Some(d) = day {
                if NaiveDate::from_ymd_opt(year.into(), m.into(), d.into()).is_none() {
                    return Err(FieldError::new(
                        "date",
                        format!("{year:04}-{m:02}-{d:02} is not a calendar date"),
                    ));
                }
            }
        }
        Ok(PartialDate { year, month, day })
    }

    /// Parses `YYYY-MM-DD`, with `00` (or `XX`) for unknown month or day, or `YYYY` alone.
    pub fn parse_iso(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let bad = || FieldError::new("date", format!("'{raw}' is not YYYY-MM-DD"));
        let mut parts = s.split('-');
        let y = parts.next().ok_or_else(bad)?;
        if y.len() != 4 {
            return Err(bad());
        }
        let year: u16 = y.parse().map_err(|_| bad())?;
        let part = |p: Option<&str>| -> Result<Option<u8>, FieldError> {
            match p {
                None => Ok(None),
                Some("00") | Some("XX") | Some("xx") => Ok(None),
                Some(v) if v.len() == 2 => v.parse::<u8>().map(Some).map_err(|_| bad()),
                Some(_) => Err(bad()),
            }
        };
        let month = part(parts.next())?;
        let day = part(parts.next())?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Self::new(year, month, day)
    }

    /// Parses with a strftime pattern (for CSV schemas such as `%Y%m%d`). Only complete dates
    /// can be read this way; the ISO form above also accepts partial ones.
    pub fn parse_with(raw: &str, pattern: &str) -> Result<Self, FieldError> {
        if pattern == "%Y-%m-%d" {
            return Self::parse_iso(raw);
        }
        let d = NaiveDate::parse_from_str(raw.trim(), pattern).map_err(|e| {
            FieldError::new("date", format!("'{raw}' does not fit '{pattern}': {e}"))
        })?;
        Ok(Self::from(d))
    }

    pub fn is_complete(&self) -> bool {
        self.day.is_some()
    }

    /// `01/01` is the conventional placeholder when only the year is known.
    pub fn is_placeholder(&self) -> bool {
        self.month == Some(1) && self.day == Some(1)
    }

    pub fn to_naive(&self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year.into(), self.month?.into(), self.day?.into())
    }

    /// Whole years between this date and `on`, when both month and day are known.
    pub fn age_on(&self, on: NaiveDate) -> Option<i32> {
        let d = self.to_naive()?;
        let mut years = on.year() - d.year();
        if (on.month(), on.day()) < (d.month(), d.day()) {
            years -= 1;
        }
        Some(years)
    }
}

impl From<NaiveDate> for PartialDate {
    fn from(d: NaiveDate) -> Self {
        // chrono dates are always valid; year may exceed our range only for absurd inputs,
        // which callers never construct.
        PartialDate {
            year: d.year().clamp(0, u16::MAX as i32) as u16,
            month: Some(d.month() as u8),
            day: Some(d.day() as u8),
        }
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.year,
            self.month.unwrap_or(0),
            self.day.unwrap_or(0)
        )
    }
}

impl TryFrom<String> for PartialDate {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse_iso(&s)
    }
}

impl From<PartialDate> for String {
    fn from(d: PartialDate) -> String {
        d.to_string()
    }
}

impl PartialDate {
    /// The binary form: `year << 16 | month << 8 | day`, 0 for an unknown part.
    fn packed(&self) -> u32 {
        u32::from(self.year) << 16
            | u32::from(self.month.unwrap_or(0)) << 8
            | u32::from(self.day.unwrap_or(0))
    }

    /// Reads the binary form, validated as [`PartialDate::new`] validates.
    fn unpacked(v: u32) -> Result<Self, FieldError> {
        let part = |p: u32| u8::try_from(p & 0xff).ok().filter(|&p| p != 0);
        let year = u16::try_from(v >> 16).unwrap_or(u16::MAX);
        Self::new(year, part(v >> 8), part(v))
    }
}

impl Serialize for PartialDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u32(self.packed())
        }
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = std::borrow::Cow::<str>::deserialize(d)?;
            Self::parse_iso(&text).map_err(serde::de::Error::custom)
        } else {
            Self::unpacked(u32::deserialize(d)?).map_err(serde::de::Error::custom)
        }
    }
}

impl std::str::FromStr for PartialDate {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        Self::parse_iso(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_and_partial_dates() {
        assert_eq!(
            PartialDate::parse_iso("1985-03-12"),
            PartialDate::full(1985, 3, 12)
        );
        let y = PartialDate::parse_iso("1985-00-00").expect("year only");
        assert_eq!((y.month, y.day), (None, None));
        assert_eq!(PartialDate::parse_iso("1985").expect("year").month, None);
        assert!(PartialDate::parse_iso("1985-02-30").is_err());
        assert!(PartialDate::parse_iso("85-02-03").is_err());
        assert!(PartialDate::parse_iso("1985-13-01").is_err());
    }

    #[test]
    fn strftime_patterns_are_supported() {
        assert_eq!(
            PartialDate::parse_with("19850312", "%Y%m%d"),
            PartialDate::full(1985, 3, 12)
        );
        let e = PartialDate::parse_with("1985-03-12", "%Y%m%d").unwrap_err();
        assert_eq!(e.field, "date");
    }

    #[test]
    fn placeholder_is_detected() {
        assert!(PartialDate::full(1990, 1, 1)
            .expect("valid")
            .is_placeholder());
        assert!(!PartialDate::full(1990, 1, 2)
            .expect("valid")
            .is_placeholder());
    }

    #[test]
    fn serde_keeps_the_text_form_in_json_and_rejects_bad_dates() {
        let d = PartialDate::new(1985, Some(3), None).expect("valid");
        assert_eq!(serde_json::to_string(&d).expect("json"), "\"1985-03-00\"");
        assert_eq!(
            serde_json::from_str::<PartialDate>("\"1985-03-00\"").ok(),
            Some(d)
        );
        assert!(serde_json::from_str::<PartialDate>("\"1985-02-30\"").is_err());
        // A binary form naming no calendar date is refused too.
        assert!(PartialDate::unpacked(1985 << 16 | 2 << 8 | 30).is_err());
        assert!(PartialDate::unpacked(1985 << 16 | 31).is_err());
    }

    proptest! {
        #[test]
        fn binary_form_round_trips(y in 1850u16..2100, m in proptest::option::of(1u8..=12), d in 1u8..=28, has_day: bool) {
            let day = if has_day && m.is_some() { Some(d) } else { None };
            let date = PartialDate::new(y, m, day).expect("constructed valid");
            prop_assert_eq!(PartialDate::unpacked(date.packed()), Ok(date));
        }

        #[test]
        fn text_form_round_trips(y in 1850u16..2100, m in proptest::option::of(1u8..=12), d in 1u8..=28, has_day: bool) {
            let day = if has_day && m.is_some() { Some(d) } else { None };
            let date = PartialDate::new(y, m, day).expect("constructed valid");
            prop_assert_eq!(PartialDate::parse_iso(&date.to_string()), Ok(date));
        }
    }
}
