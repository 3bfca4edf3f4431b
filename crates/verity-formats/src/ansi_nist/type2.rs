//! Type-2 descriptive text (EBTS): the subject's biographics as typed values.
//!
//! 2.018 NAM and 2.019 AKA are `LAST,FIRST MIDDLE`; 2.022 DOB and 2.045 DOA are CCYYMMDD
//! (`00` for an unknown month or day); 2.017 MNU subfields are `PP-NUMBER` (also read as two
//! items `PP` US `NUMBER`), where `FN` is the DHS fingerprint id (FIN) and `AR` an A-number.

use super::tagged::{truncate, Field, Place, RawField};
use crate::error::FormatError;
use verity_model::{ANumber, FbiNumber, Fin, PartialDate, PersonName, Sex, Ssn, StateId};

/// Typed biographics of one Type-2 record. Everything is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Biographics {
    /// 2.018 NAM
    pub name: Option<PersonName>,
    /// 2.019 AKA
    pub aliases: Vec<PersonName>,
    /// 2.022 DOB
    pub dob: Option<PartialDate>,
    /// 2.024 SEX
    pub sex: Option<Sex>,
    /// 2.020 POB (NCIC place code)
    pub pob: Option<String>,
    /// 2.021 CTZ (NCIC country codes)
    pub citizenship: Vec<String>,
    /// 2.014 FBI
    pub fbi: Option<FbiNumber>,
    /// 2.015 SID
    pub sid: Option<StateId>,
    /// 2.016 SOC
    pub ssn: Option<Ssn>,
    /// 2.017 MNU `FN-` entry
    pub fin: Option<Fin>,
    /// 2.017 MNU `AR-` entry
    pub a_number: Option<ANumber>,
    /// 2.017 MNU entries other than FN and AR, as (prefix, number).
    pub other_numbers: Vec<(String, String)>,
    /// 2.045 DOA
    pub date_of_arrest: Option<PartialDate>,
    /// 2.059 SRF: 'I' identified, 'N' not identified
    pub search_result: Option<String>,
    /// 2.060 MSG, one entry per subfield
    pub messages: Vec<String>,
}

/// A Type-2 record: typed biographics plus every other field verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Type2 {
    pub idc: u8,
    pub biographics: Biographics,
    pub other: Vec<Field>,
}

fn ebts_date(raw: &str) -> Result<PartialDate, String> {
    let s = raw.trim();
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{}' is not CCYYMMDD", truncate(s)));
    }
    let year: u16 = s[0..4].parse().map_err(|_| "bad year".to_string())?;
    let month: u8 = s[4..6].parse().map_err(|_| "bad month".to_string())?;
    let day: u8 = s[6..8].parse().map_err(|_| "bad day".to_string())?;
    let month = (month != 0).then_some(month);
    let day = (day != 0).then_some(day);
    PartialDate::new(year, month, day).map_err(|e| e.problem)
}

fn ebts_date_text(d: &PartialDate) -> String {
    format!(
        "{:04}{:02}{:02}",
        d.year,
        d.month.unwrap_or(0),
        d.day.unwrap_or(0)
    )
}

fn ebts_name(n: &PersonName) -> String {
    let mut rest = n.given.clone();
    if !n.middle.is_empty() {
        if !rest.is_empty() {
            rest.push(' ');
        }
        rest.push_str(&n.middle);
    }
    format!("{},{}", n.family, rest)
}

impl Type2 {
    pub(crate) fn from_fields(
        idc: u8,
        fields: &[RawField<'_>],
        place: Place,
    ) -> Result<Self, FormatError> {
        let mut b = Biographics::default();
        let mut other = Vec::new();
        for f in fields {
            let tag = place.tag(f.number);
            let bad = |p: String| place.err(tag.clone(), f.offset, p);
            let text = || f.as_str(place).map(|s| s.trim().to_string());
            match f.number {
                2 => {}
                14 => b.fbi = Some(FbiNumber::parse(&text()?).map_err(|e| bad(e.problem))?),
                15 => b.sid = Some(StateId::parse(&text()?).map_err(|e| bad(e.problem))?),
                16 => b.ssn = Some(Ssn::parse(&text()?).map_err(|e| bad(e.problem))?),
                17 => {
                    for sub in f.items(place)? {
                        let (prefix, number) = match sub.as_slice() {
                            [one] => one.split_once('-').ok_or_else(|| {
                                bad(format!("'{}' is not PP-NUMBER", truncate(one)))
                            })?,
                            [p, n] => (*p, *n),
                            _ => return Err(bad("subfield is not PP-NUMBER".into())),
                        };
                        match prefix.trim() {
                            "FN" => b.fin = Some(Fin::parse(number).map_err(|e| bad(e.problem))?),
                            "AR" => {
                                b.a_number =
                                    Some(ANumber::parse(number).map_err(|e| bad(e.problem))?)
                            }
                            p => b
                                .other_numbers
                                .push((p.to_string(), number.trim().to_string())),
                        }
                    }
                }
                18 => {
                    b.name =
                        Some(PersonName::parse_last_first(&text()?).map_err(|e| bad(e.problem))?)
                }
                19 => {
                    for sub in f.items(place)? {
                        let joined = sub.join(" ");
                        b.aliases.push(
                            PersonName::parse_last_first(&joined).map_err(|e| bad(e.problem))?,
                        );
                    }
                }
                20 => b.pob = Some(text()?),
                21 => {
                    b.citizenship = f
                        .items(place)?
                        .iter()
                        .map(|s| s.join(" ").trim().to_string())
                        .collect()
                }
                22 => b.dob = Some(ebts_date(&text()?).map_err(bad)?),
                24 => b.sex = Sex::parse(&text()?).map_err(|e| bad(e.problem))?,
                45 => b.date_of_arrest = Some(ebts_date(&text()?).map_err(bad)?),
                59 => b.search_result = Some(text()?),
                60 => b.messages = f.items(place)?.iter().map(|s| s.join(" ")).collect(),
                _ => other.push(f.owned()),
            }
        }
        Ok(Type2 {
            idc,
            biographics: b,
            other,
        })
    }

    pub(crate) fn to_fields(&self) -> Vec<Field> {
        let b = &self.biographics;
        let mut out = vec![Field::text(2, format!("{:02}", self.idc))];
        let mut opt = |n: u32, v: Option<String>| {
            if let Some(v) = v {
                out.push(Field::text(n, v));
            }
        };
        opt(14, b.fbi.as_ref().map(ToString::to_string));
        opt(15, b.sid.as_ref().map(ToString::to_string));
        opt(16, b.ssn.as_ref().map(ToString::to_string));
        opt(18, b.name.as_ref().map(ebts_name));
        opt(20, b.pob.clone());
        opt(22, b.dob.as_ref().map(ebts_date_text));
        opt(24, b.sex.map(|s| s.code().to_string()));
        opt(45, b.date_of_arrest.as_ref().map(ebts_date_text));
        opt(59, b.search_result.clone());
        let mut mnu: Vec<Vec<String>> = Vec::new();
        if let Some(f) = &b.fin {
            mnu.push(vec![format!("FN-{f}")]);
        }
        if let Some(a) = &b.a_number {
            mnu.push(vec![format!("AR-{a}")]);
        }
        mnu.extend(
            b.other_numbers
                .iter()
                .map(|(p, n)| vec![format!("{p}-{n}")]),
        );
        if !mnu.is_empty() {
            out.push(Field::from_items(17, &mnu));
        }
        let list = |v: &[String]| v.iter().map(|s| vec![s.clone()]).collect::<Vec<_>>();
        if !b.aliases.is_empty() {
            let names: Vec<String> = b.aliases.iter().map(ebts_name).collect();
            out.push(Field::from_items(19, &list(&names)));
        }
        if !b.citizenship.is_empty() {
            out.push(Field::from_items(21, &list(&b.citizenship)));
        }
        if !b.messages.is_empty() {
            out.push(Field::from_items(60, &list(&b.messages)));
        }
        out.extend(self.other.iter().cloned());
        out
    }
}

impl Biographics {
    /// One line per known value, for `verity bio inspect`.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let mut line = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                let _ = writeln!(s, "  {k}: {v}");
            }
        };
        line("name", self.name.as_ref().map(PersonName::last_first));
        for a in &self.aliases {
            line("alias", Some(a.last_first()));
        }
        line("dob", self.dob.map(|d| d.to_string()));
        line("sex", self.sex.map(|x| x.code().to_string()));
        line("pob", self.pob.clone());
        if !self.citizenship.is_empty() {
            line("citizenship", Some(self.citizenship.join(", ")));
        }
        line("fbi", self.fbi.as_ref().map(ToString::to_string));
        line("sid", self.sid.as_ref().map(ToString::to_string));
        line("ssn", self.ssn.as_ref().map(|_| "(present)".to_string()));
        line("fin", self.fin.as_ref().map(ToString::to_string));
        line("a-number", self.a_number.as_ref().map(ToString::to_string));
        for (p, n) in &self.other_numbers {
            line("number", Some(format!("{p}-{n}")));
        }
        line("date of arrest", self.date_of_arrest.map(|d| d.to_string()));
        line("search result", self.search_result.clone());
        for m in &self.messages {
            line("message", Some(m.clone()));
        }
        format!("biographics (Type-2):\n{s}")
    }
}
