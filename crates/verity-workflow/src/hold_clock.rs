//! The detainer hold clock: 48 hours past the time the agency would otherwise release the
//! person, **excluding Saturdays, Sundays and federal holidays** (8 CFR 287.7). The holiday
//! calendar is versioned data (`data/policy/federal-holidays.toml`).
//!
//! Times are the facility's local wall-clock time: the regulation counts the agency's days.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Weekday};
use serde::Deserialize;
use std::collections::BTreeSet;

pub const EMBEDDED_HOLIDAYS: &str = include_str!("../../../data/policy/federal-holidays.toml");

/// The most a detainer may extend custody, in business hours.
pub const HOLD_HOURS: i64 = 48;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("federal-holidays.toml: {0}")]
    Load(String),
    #[error(
        "{date} is outside the holiday calendar ({first}-{last}); extend federal-holidays.toml"
    )]
    OutsideCalendar {
        date: NaiveDate,
        first: i32,
        last: i32,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarFile {
    version: String,
    first_year: i32,
    last_year: i32,
    holidays: Vec<HolidayEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayEntry {
    date: String,
    name: String,
}

#[derive(Debug, Clone)]
pub struct HolidayCalendar {
    pub version: String,
    first_year: i32,
    last_year: i32,
    days: BTreeSet<NaiveDate>,
}

impl HolidayCalendar {
    pub fn load(text: &str) -> Result<Self, ClockError> {
        let f: CalendarFile = toml::from_str(text).map_err(|e| ClockError::Load(e.to_string()))?;
        if f.first_year > f.last_year {
            return Err(ClockError::Load("first_year is after last_year".into()));
        }
        let mut days = BTreeSet::new();
        for h in &f.holidays {
            let d = NaiveDate::parse_from_str(&h.date, "%Y-%m-%d").map_err(|e| {
                ClockError::Load(format!("holiday '{}' date '{}': {e}", h.name, h.date))
            })?;
            // An observed New Year's Day may fall on Dec 31 of the year before.
            if d.year() < f.first_year - 1 || d.year() > f.last_year {
                return Err(ClockError::Load(format!(
                    "holiday '{}' {} is outside {}-{}",
                    h.name, h.date, f.first_year, f.last_year
                )));
            }
            days.insert(d);
        }
        Ok(HolidayCalendar {
            version: f.version,
            first_year: f.first_year,
            last_year: f.last_year,
            days,
        })
    }

    pub fn embedded() -> Result<Self, ClockError> {
        Self::load(EMBEDDED_HOLIDAYS)
    }

    /// True on weekdays that are not federal holidays.
    pub fn is_business_day(&self, d: NaiveDate) -> Result<bool, ClockError> {
        if d.year() < self.first_year || d.year() > self.last_year {
            return Err(ClockError::OutsideCalendar {
                date: d,
                first: self.first_year,
                last: self.last_year,
            });
        }
        Ok(!matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.days.contains(&d))
    }

    /// The end of the hold: `HOLD_HOURS` of business-day time after `would_release`.
    pub fn hold_deadline(&self, would_release: NaiveDateTime) -> Result<NaiveDateTime, ClockError> {
        let mut remaining = Duration::hours(HOLD_HOURS);
        let mut t = would_release;
        loop {
            let next_midnight = t
                .date()
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .ok_or(ClockError::OutsideCalendar {
                    date: t.date(),
                    first: self.first_year,
                    last: self.last_year,
                })?;
            if self.is_business_day(t.date())? {
                let available = next_midnight - t;
                if available >= remaining {
                    return Ok(t + remaining);
                }
                remaining -= available;
            }
            t = next_midnight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("valid test time")
    }

    fn cal() -> HolidayCalendar {
        HolidayCalendar::embedded().expect("embedded calendar is valid")
    }

    #[test]
    fn weekday_release_gets_two_calendar_days() {
        // Tuesday 2026-03-10 10:00 -> Thursday 10:00.
        assert_eq!(
            cal().hold_deadline(at("2026-03-10 10:00")),
            Ok(at("2026-03-12 10:00"))
        );
    }

    #[test]
    fn weekends_do_not_count() {
        // Friday 2026-03-13 15:00: 9 h Friday, skip Sat+Sun, 24 h Monday, 15 h Tuesday.
        assert_eq!(
            cal().hold_deadline(at("2026-03-13 15:00")),
            Ok(at("2026-03-17 15:00"))
        );
        // Release on a Saturday: the clock starts Monday 00:00.
        assert_eq!(
            cal().hold_deadline(at("2026-03-14 09:00")),
            Ok(at("2026-03-18 00:00"))
        );
    }

    #[test]
    fn holidays_do_not_count() {
        // Wed 2026-11-25 12:00; Thanksgiving Thu 11-26 skipped; Fri 24 h... 12 h Wed + 24 h Fri
        // + skip weekend + 12 h Mon.
        assert_eq!(
            cal().hold_deadline(at("2026-11-25 12:00")),
            Ok(at("2026-11-30 12:00"))
        );
        // Christmas 2027 falls on a Saturday and is observed Friday 2027-12-24.
        assert_eq!(
            cal().is_business_day(NaiveDate::from_ymd_opt(2027, 12, 24).expect("date")),
            Ok(false)
        );
    }

    #[test]
    fn outside_the_calendar_is_an_error_not_a_guess() {
        assert!(matches!(
            cal().hold_deadline(at("2031-01-02 10:00")),
            Err(ClockError::OutsideCalendar { .. })
        ));
        assert!(HolidayCalendar::load("version='x'\nfirst_year=2026\nlast_year=2026\nholidays=[{date='2026-13-01', name='x'}]").is_err());
    }

    proptest! {
        /// The hold is never shorter than 48 hours of wall time and never ends on a weekend or
        /// holiday (except exactly at midnight that closes a business day).
        #[test]
        fn deadline_is_at_least_48h_and_on_business_time(day in 0i64..1800, minute in 0i64..1440) {
            let c = cal();
            let start = at("2025-01-01 00:00") + Duration::days(day) + Duration::minutes(minute);
            let end = c.hold_deadline(start).expect("in calendar");
            prop_assert!(end - start >= Duration::hours(48));
            let last_instant = end - Duration::seconds(1);
            prop_assert!(c.is_business_day(last_instant.date()).expect("in calendar"));
        }
    }
}
