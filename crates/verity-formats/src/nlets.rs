//! Nlets legacy text: the Immigration Alien Query (IAQ) in, the Immigration Alien Response
//! (IAR) out.
//!
//! IAQ layout (see the domain reference): `IAQ.` + 9-character sender ORI + `.` + destination
//! `AX` + `.` + optional control field + `.`, then `TXT` and tagged fields `TAG/value`, each
//! ending with a period (the last may omit it). Required, in this order: PUR (C or F), ATN
//! (<= 30), PHN (<= 20), NAM (<= 30, `LAST, FIRST MIDDLE`, no periods), DOB (MMDDYY or
//! CCYYMMDD), SEX, POB (NCIC place code), CUS (Y/N), OFF (4-digit NCIC code). Optional:
//! ARN (A-number), FBI, SID, OLN; any other tag (remarks such as MIS/) is kept as is.
//! Line breaks and spaces between fields are accepted. A field boundary is a period followed
//! (after optional white space) by the next `TAG/` or the end of the text, so a free-text value
//! may carry a period that is not followed by a tag.
//!
//! The parser reports every problem it finds (field + reason), not just the first. Field
//! order is not enforced: a misordered but otherwise valid query is still answerable.
//!
//! IAR layout written by [`write_iar`]:
//! ```text
//! IAR.<destination ORI>.VTICE0900.[<control>.]
//! TXT
//! TAG/value.
//! TAG/value.
//! ```
//! one tagged line per entry, in the order given; line breaks inside a value become spaces.

use chrono::{Datelike, NaiveDate};
use std::fmt;
use verity_model::{ANumber, FbiNumber, Ori, PartialDate, PersonName, Purpose, Sex, StateId};

/// LESC's Nlets address.
pub const LESC_ORI: &str = "VTICE0900";
/// The IAQ destination code for LESC.
pub const IAQ_DESTINATION: &str = "AX";

/// A parsed, validated IAQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iaq {
    pub sender: Ori,
    /// Optional control field after the destination (echoed in the IAR).
    pub control: Option<String>,
    /// PUR: C (criminal justice) or F (firearms).
    pub purpose: Purpose,
    /// ATN
    pub attention: String,
    /// PHN
    pub phone: String,
    /// NAM
    pub name: PersonName,
    /// DOB, always complete (6-digit dates get the century that keeps them in the past).
    pub dob: PartialDate,
    /// SEX (U = unknown = None)
    pub sex: Option<Sex>,
    /// POB: NCIC place code (not an ISO country code).
    pub pob: String,
    /// CUS
    pub in_custody: bool,
    /// OFF: 4-digit NCIC offense code; `0399` when unknown.
    pub offense: String,
    /// ARN
    pub a_number: Option<ANumber>,
    /// FBI
    pub fbi: Option<FbiNumber>,
    /// SID
    pub sid: Option<StateId>,
    /// OLN
    pub oln: Option<String>,
    /// Any other tagged fields (remarks and extra identifiers), in message order.
    pub other: Vec<(String, String)>,
}

/// One thing wrong with an IAQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaqProblem {
    /// "header", "ORI", "destination", "control", "TXT", or the field tag ("NAM", "DOB", ...).
    pub field: String,
    pub problem: String,
}

/// Every problem found in one IAQ (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct IaqErrors(pub Vec<IaqProblem>);

impl fmt::Display for IaqErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|p| format!("{}: {}", p.field, p.problem))
            .collect();
        write!(f, "IAQ rejected: {}", parts.join("; "))
    }
}

struct Problems(Vec<IaqProblem>);

impl Problems {
    fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.push(IaqProblem {
            field: field.to_string(),
            problem: problem.into(),
        });
    }
}

fn is_tag_at(s: &[u8], i: usize) -> bool {
    s.len() >= i + 4 && s[i..i + 3].iter().all(u8::is_ascii_uppercase) && s[i + 3] == b'/'
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Finds `TXT` that starts the body: preceded by a period or white space and followed by
/// white space, a tag, or the end.
fn find_txt(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    (1..b.len().saturating_sub(2)).find(|&p| {
        &b[p..p + 3] == b"TXT"
            && (b[p - 1] == b'.' || b[p - 1].is_ascii_whitespace())
            && (p + 3 == b.len() || b[p + 3].is_ascii_whitespace() || is_tag_at(b, p + 3))
    })
}

/// Splits the TXT body into (tag, value) pairs.
fn split_fields(body: &str, problems: &mut Problems) -> Vec<(String, String)> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_ws(b, 0);
    while i < b.len() {
        if !is_tag_at(b, i) {
            problems.add(
                "TXT",
                format!(
                    "expected a field tag such as NAM/ at '{}'",
                    shorten(&body[i..])
                ),
            );
            break;
        }
        let tag = body[i..i + 3].to_string();
        let start = i + 4;
        let mut end = b.len();
        let mut next = b.len();
        let mut j = start;
        while j < b.len() {
            if b[j] == b'.' {
                let k = skip_ws(b, j + 1);
                if k == b.len() || is_tag_at(b, k) {
                    end = j;
                    next = k;
                    break;
                }
            } else if b[j] == b'\n' {
                let k = skip_ws(b, j + 1);
                if k < b.len() && is_tag_at(b, k) {
                    problems.add(&tag, "does not end with a period");
                    end = j;
                    next = k;
                    break;
                }
            }
            j += 1;
        }
        // Tags and boundaries are ASCII, so these are char boundaries. Runs of white space
        // (a value wrapped over lines) become one space.
        let value = body[start..end]
            .split_ascii_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        out.push((tag, value));
        i = next;
    }
    out
}

fn parse_header(header: &str, problems: &mut Problems) -> (Option<Ori>, Option<String>) {
    let h = header.trim_end();
    // The header ends with a period; a line break before TXT is accepted in its place.
    let line_break = header[h.len()..].contains('\n');
    let h = h.strip_suffix('.').unwrap_or_else(|| {
        if !line_break {
            problems.add("header", "must end with a period before TXT");
        }
        h
    });
    let parts: Vec<&str> = h.split('.').map(str::trim).collect();
    if parts.first().copied() != Some("IAQ") {
        problems.add("header", "message must start with 'IAQ.'");
    }
    let ori = match parts.get(1) {
        None => {
            problems.add("ORI", "sender ORI is missing");
            None
        }
        Some(raw) => match Ori::parse(raw) {
            Ok(o) if raw.len() == 9 => Some(o),
            _ => {
                problems.add(
                    "ORI",
                    format!("'{}' must be exactly 9 letters or digits", shorten(raw)),
                );
                None
            }
        },
    };
    match parts.get(2) {
        Some(&IAQ_DESTINATION) => {}
        Some(other) => problems.add("destination", format!("'{}' is not AX", shorten(other))),
        None => problems.add("destination", "destination AX is missing"),
    }
    let control = parts.get(3).map(|c| c.to_string());
    if let Some(c) = &control {
        if c.is_empty() || c.len() > 10 || !c.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            problems.add(
                "control",
                format!("'{}' must be 1 to 10 letters or digits", shorten(c)),
            );
        }
    }
    if parts.len() > 4 {
        problems.add(
            "header",
            format!(
                "unexpected text '{}' before TXT",
                shorten(parts[4..].join(".").as_str())
            ),
        );
    }
    (ori, control)
}

/// Parses a 6-digit MMDDYY (century inferred so the date is not after `today`) or an
/// 8-digit CCYYMMDD date of birth.
pub fn parse_dob(raw: &str, today: NaiveDate) -> Result<PartialDate, String> {
    let s = raw.trim();
    if !s.bytes().all(|b| b.is_ascii_digit()) || !(s.len() == 6 || s.len() == 8) {
        return Err(format!("'{}' is not MMDDYY or CCYYMMDD", shorten(s)));
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let date = if s.len() == 8 {
        let d = NaiveDate::from_ymd_opt(num(0..4) as i32, num(4..6), num(6..8))
            .ok_or_else(|| format!("'{s}' is not a calendar date"))?;
        if d > today {
            return Err(format!("{d} is in the future"));
        }
        d
    } else {
        let (m, d, yy) = (num(0..2), num(2..4), num(4..6) as i32);
        let century = today.year() - today.year().rem_euclid(100);
        let recent = NaiveDate::from_ymd_opt(century + yy, m, d);
        let older = NaiveDate::from_ymd_opt(century - 100 + yy, m, d);
        match (recent, older) {
            (Some(r), _) if r <= today => r,
            (_, Some(o)) => o,
            // 29 February may exist in only one of the two centuries.
            (Some(_), None) | (None, None) => {
                return Err(format!("'{s}' is not a calendar date (MMDDYY)"))
            }
        }
    };
    PartialDate::new(
        date.year() as u16,
        Some(date.month() as u8),
        Some(date.day() as u8),
    )
    .map_err(|e| e.problem)
}

fn check_len(problems: &mut Problems, field: &str, v: &str, max: usize) -> bool {
    if v.is_empty() {
        problems.add(field, "is empty");
        false
    } else if v.chars().count() > max {
        problems.add(
            field,
            format!("is {} characters; at most {max}", v.chars().count()),
        );
        false
    } else {
        true
    }
}

/// Parses and validates a legacy IAQ. `today` bounds dates of birth.
pub fn parse_iaq(text: &str, today: NaiveDate) -> Result<Iaq, IaqErrors> {
    let mut problems = Problems(Vec::new());
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let Some(txt) = find_txt(text) else {
        let mut p = Problems(Vec::new());
        p.add("TXT", "the message has no TXT section");
        if !text.starts_with("IAQ.") {
            p.add("header", "message must start with 'IAQ.'");
        }
        return Err(IaqErrors(p.0));
    };
    let (sender, control) = parse_header(&text[..txt], &mut problems);
    let fields = split_fields(&text[txt + 3..], &mut problems);

    let mut seen: Vec<&str> = Vec::new();
    let mut purpose = None;
    let mut attention = None;
    let mut phone = None;
    let mut name = None;
    let mut dob = None;
    let mut sex: Option<Option<Sex>> = None;
    let mut pob = None;
    let mut in_custody = None;
    let mut offense = None;
    let mut a_number = None;
    let mut fbi = None;
    let mut sid = None;
    let mut oln = None;
    let mut other = Vec::new();
    for (tag, value) in &fields {
        let v = value.as_str();
        if seen.contains(&tag.as_str()) && tag != "MIS" {
            problems.add(tag, "appears more than once");
            continue;
        }
        seen.push(tag.as_str());
        if v.chars().any(char::is_control) {
            problems.add(tag, "contains control characters");
            continue;
        }
        match tag.as_str() {
            "PUR" => match v {
                "C" => purpose = Some(Purpose::CriminalJustice),
                "F" => purpose = Some(Purpose::Firearms),
                _ => problems.add("PUR", format!("'{}' is not C or F", shorten(v))),
            },
            "ATN" => {
                if check_len(&mut problems, "ATN", v, 30) {
                    attention = Some(v.to_string());
                }
            }
            "PHN" => {
                if check_len(&mut problems, "PHN", v, 20) {
                    if v.chars()
                        .all(|c| c.is_ascii_digit() || " -()+X".contains(c))
                        && v.chars().any(|c| c.is_ascii_digit())
                    {
                        phone = Some(v.to_string());
                    } else {
                        problems.add("PHN", format!("'{}' is not a telephone number", shorten(v)));
                    }
                }
            }
            "NAM" => {
                if check_len(&mut problems, "NAM", v, 30) {
                    if let Some(bad) = v
                        .chars()
                        .find(|c| !(c.is_alphanumeric() || " -',".contains(*c)))
                    {
                        problems.add("NAM", format!("'{bad}' is not allowed in a name"));
                    } else {
                        match PersonName::parse_last_first(v) {
                            Ok(n) => name = Some(n),
                            Err(e) => problems.add("NAM", e.problem),
                        }
                    }
                }
            }
            "DOB" => match parse_dob(v, today) {
                Ok(d) => dob = Some(d),
                Err(e) => problems.add("DOB", e),
            },
            "SEX" => match Sex::parse(v) {
                Ok(s) if v.len() == 1 => sex = Some(s),
                _ => problems.add("SEX", format!("'{}' is not M, F, X or U", shorten(v))),
            },
            "POB" => {
                if v.len() == 2
                    && v.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                {
                    pob = Some(v.to_string());
                } else {
                    problems.add(
                        "POB",
                        format!("'{}' is not a 2-character NCIC place code", shorten(v)),
                    );
                }
            }
            "CUS" => match v {
                "Y" => in_custody = Some(true),
                "N" => in_custody = Some(false),
                _ => problems.add("CUS", format!("'{}' is not Y or N", shorten(v))),
            },
            "OFF" => {
                if v.len() == 4 && v.bytes().all(|b| b.is_ascii_digit()) {
                    offense = Some(v.to_string());
                } else {
                    problems.add(
                        "OFF",
                        format!(
                            "'{}' is not a 4-digit NCIC offense code (0399 when unknown)",
                            shorten(v)
                        ),
                    );
                }
            }
            "ARN" => match ANumber::parse(v) {
                Ok(a) => a_number = Some(a),
                Err(e) => problems.add("ARN", e.problem),
            },
            "FBI" => match FbiNumber::parse(v) {
                Ok(f) => fbi = Some(f),
                Err(e) => problems.add("FBI", e.problem),
            },
            "SID" => match StateId::parse(v) {
                Ok(s) => sid = Some(s),
                Err(e) => problems.add("SID", e.problem),
            },
            "OLN" => {
                if check_len(&mut problems, "OLN", v, 20) {
                    if v.chars().all(|c| c.is_ascii_alphanumeric()) {
                        oln = Some(v.to_string());
                    } else {
                        problems.add(
                            "OLN",
                            format!("'{}' must be letters and digits", shorten(v)),
                        );
                    }
                }
            }
            _ => other.push((tag.clone(), v.to_string())),
        }
    }
    for (tag, present) in [
        ("PUR", seen.contains(&"PUR")),
        ("ATN", seen.contains(&"ATN")),
        ("PHN", seen.contains(&"PHN")),
        ("NAM", seen.contains(&"NAM")),
        ("DOB", seen.contains(&"DOB")),
        ("SEX", seen.contains(&"SEX")),
        ("POB", seen.contains(&"POB")),
        ("CUS", seen.contains(&"CUS")),
        ("OFF", seen.contains(&"OFF")),
    ] {
        if !present {
            problems.add(tag, "required field is missing");
        }
    }
    match (
        sender, purpose, attention, phone, name, dob, sex, pob, in_custody, offense,
    ) {
        (
            Some(sender),
            Some(purpose),
            Some(attention),
            Some(phone),
            Some(name),
            Some(dob),
            Some(sex),
            Some(pob),
            Some(in_custody),
            Some(offense),
        ) if problems.0.is_empty() => Ok(Iaq {
            sender,
            control,
            purpose,
            attention,
            phone,
            name,
            dob,
            sex,
            pob,
            in_custody,
            offense,
            a_number,
            fbi,
            sid,
            oln,
            other,
        }),
        _ => {
            if problems.0.is_empty() {
                problems.add("IAQ", "incomplete");
            }
            Err(IaqErrors(problems.0))
        }
    }
}

fn dob_text(d: &PartialDate) -> String {
    format!(
        "{:04}{:02}{:02}",
        d.year,
        d.month.unwrap_or(0),
        d.day.unwrap_or(0)
    )
}

/// `LAST, FIRST MIDDLE`, dropping the space after the comma when that keeps the field within
/// its 30 characters.
fn nam_text(name: &PersonName) -> String {
    let full = name.last_first();
    if full.chars().count() > 30 {
        full.replacen(", ", ",", 1)
    } else {
        full
    }
}

/// Writes an IAQ in the legacy layout (one line, every field ending with a period, DOB as
/// CCYYMMDD).
pub fn write_iaq(q: &Iaq) -> String {
    let mut s = format!("IAQ.{}.{IAQ_DESTINATION}.", q.sender);
    if let Some(c) = &q.control {
        s.push_str(c);
        s.push('.');
    }
    s.push_str("TXT ");
    let mut fields: Vec<(&str, String)> = vec![
        ("PUR", q.purpose.code().to_string()),
        ("ATN", q.attention.clone()),
        ("PHN", q.phone.clone()),
        ("NAM", nam_text(&q.name)),
        ("DOB", dob_text(&q.dob)),
        ("SEX", q.sex.map(Sex::code).unwrap_or("U").to_string()),
        ("POB", q.pob.clone()),
        ("CUS", if q.in_custody { "Y" } else { "N" }.to_string()),
        ("OFF", q.offense.clone()),
    ];
    if let Some(a) = &q.a_number {
        fields.push(("ARN", a.to_string()));
    }
    if let Some(f) = &q.fbi {
        fields.push(("FBI", f.to_string()));
    }
    if let Some(x) = &q.sid {
        fields.push(("SID", x.to_string()));
    }
    if let Some(o) = &q.oln {
        fields.push(("OLN", o.clone()));
    }
    fields.extend(q.other.iter().map(|(t, v)| (t.as_str(), v.clone())));
    let body: Vec<String> = fields.iter().map(|(t, v)| format!("{t}/{v}.")).collect();
    s.push_str(&body.concat());
    s
}

/// An IAR to be sent as Nlets text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IarText {
    /// The querying agency.
    pub destination: Ori,
    /// The IAQ's control field, echoed.
    pub control: Option<String>,
    /// Tagged lines in order, e.g. ("NAM", "GARCIA LOPEZ, JOSE LUIS"), ("STS", "...").
    pub lines: Vec<(String, String)>,
}

impl IarText {
    /// An IAR addressed back to the sender of `iaq`, opening with its ATN, NAM and DOB.
    pub fn reply_to(iaq: &Iaq) -> Self {
        IarText {
            destination: iaq.sender.clone(),
            control: iaq.control.clone(),
            lines: vec![
                ("ATN".into(), iaq.attention.clone()),
                ("NAM".into(), iaq.name.last_first()),
                ("DOB".into(), dob_text(&iaq.dob)),
            ],
        }
    }

    pub fn push(&mut self, tag: &str, value: impl Into<String>) {
        self.lines.push((tag.to_string(), value.into()));
    }
}

/// Writes an IAR in the layout documented at the top of this module.
pub fn write_iar(iar: &IarText) -> String {
    let mut s = format!("IAR.{}.{LESC_ORI}.", iar.destination);
    if let Some(c) = &iar.control {
        s.push_str(c);
        s.push('.');
    }
    s.push_str("\nTXT\n");
    for (tag, value) in &iar.lines {
        let flat: String = value
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
            .collect();
        s.push_str(tag);
        s.push('/');
        s.push_str(flat.trim());
        s.push_str(".\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid")
    }

    #[test]
    fn six_digit_dob_never_lands_in_the_future() {
        assert_eq!(parse_dob("031285", today()).map(|d| d.year), Ok(1985));
        assert_eq!(parse_dob("031225", today()).map(|d| d.year), Ok(2025));
        // Tomorrow in 2026 would be the future: it must be 1926.
        assert_eq!(parse_dob("112926", today()).map(|d| d.year), Ok(1926));
        assert_eq!(parse_dob("112826", today()).map(|d| d.year), Ok(2026));
        assert!(parse_dob("20270101", today()).is_err());
        assert!(parse_dob("023185", today()).is_err());
        assert!(parse_dob("1985-03-12", today()).is_err());
    }

    #[test]
    fn iar_layout_is_header_then_tagged_lines() {
        let iar = IarText {
            destination: Ori::parse("MD0030000").expect("valid"),
            control: Some("Q123".into()),
            lines: vec![
                ("NAM".into(), "DOE, JOHN".into()),
                ("STS".into(), "LPR\nSINCE 2001".into()),
            ],
        };
        assert_eq!(
            write_iar(&iar),
            "IAR.MD0030000.VTICE0900.Q123.\nTXT\nNAM/DOE, JOHN.\nSTS/LPR SINCE 2001.\n"
        );
    }
}
