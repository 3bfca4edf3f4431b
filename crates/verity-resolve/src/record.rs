//! The record the resolver compares, and its prepared (normalized, parsed-once) form.

use crate::names::{normalize, parse_name, phonetic, ParsedName};
use verity_model::{Identity, PartialDate, Sex};

/// One input record: an identity plus the identifiers the domain model has no slot for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub id: String,
    pub identity: Identity,
    pub national_id: Option<String>,
    pub other_id: Option<String>,
}

impl Record {
    pub fn new(id: impl Into<String>, identity: Identity) -> Self {
        Record {
            id: id.into(),
            identity,
            national_id: None,
            other_id: None,
        }
    }
}

/// A record normalized once so that comparing a pair allocates nothing heavy.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub name: ParsedName,
    pub given: String,
    pub middle: String,
    pub family: String,
    pub dob: Option<PartialDate>,
    pub sex: Option<Sex>,
    pub country_of_birth: String,
    pub a_number: String,
    pub fbi_number: String,
    pub passport_country: String,
    pub passport_number: String,
    pub ssn: String,
    pub fin: String,
    pub state_id: String,
    pub national_id: String,
    pub other_id: String,
    pub street_number: String,
    pub street: String,
    pub locality: String,
    pub postcode: String,
    pub region: String,
}

fn clean_id(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl Prepared {
    pub fn from_identity(i: &Identity) -> Self {
        let name = parse_name(&i.name);
        let ids = &i.ids;
        let (pc, pn) = ids
            .passport
            .as_ref()
            .map(|p| (p.country.clone(), p.number.clone()))
            .unwrap_or_default();
        Prepared {
            given: name.given.join(" "),
            middle: name.middle.join(" "),
            family: name.family.join(" "),
            name,
            dob: i.dob,
            sex: i.sex,
            country_of_birth: normalize(&i.country_of_birth),
            a_number: ids
                .a_number
                .as_ref()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            fbi_number: ids
                .fbi_number
                .as_ref()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            passport_country: pc,
            passport_number: pn,
            ssn: ids
                .ssn
                .as_ref()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            fin: ids
                .fin
                .as_ref()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            state_id: ids
                .state_id
                .as_ref()
                .map(|x| x.as_str().to_string())
                .unwrap_or_default(),
            national_id: String::new(),
            other_id: String::new(),
            street_number: normalize(&i.address.street_number),
            street: normalize(&i.address.street),
            locality: normalize(&i.address.locality),
            postcode: clean_id(&i.address.postcode),
            region: normalize(&i.address.region),
        }
    }

    pub fn from_record(r: &Record) -> Self {
        let mut p = Self::from_identity(&r.identity);
        p.national_id = r.national_id.as_deref().map(clean_id).unwrap_or_default();
        p.other_id = r.other_id.as_deref().map(clean_id).unwrap_or_default();
        p
    }

    /// Blocking keys: pairs sharing none of these are never compared.
    pub fn blocking_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(10);
        let g0 = self.name.given.first().map(String::as_str).unwrap_or("");
        let f0 = self.name.family.first().map(String::as_str).unwrap_or("");
        let fl = self.name.family.last().map(String::as_str).unwrap_or("");
        let (gp, fp, flp) = (phonetic(g0), phonetic(f0), phonetic(fl));
        let gi = g0.chars().next().map(String::from).unwrap_or_default();
        let dob = self.dob.map(|d| d.to_string());
        let year = self.dob.map(|d| d.year);
        if !fp.is_empty() && !gi.is_empty() {
            keys.push(format!("fg:{fp}:{gi}"));
            if flp != fp {
                keys.push(format!("fg:{flp}:{gi}"));
            }
        }
        if !gp.is_empty() && !fp.is_empty() {
            // order-free pair of phonetic keys catches given/family swaps
            let (x, y) = if gp <= fp { (&gp, &fp) } else { (&fp, &gp) };
            keys.push(format!("pp:{x}:{y}"));
        }
        if let Some(d) = &dob {
            // every name token with the full date: catches order swaps and typos elsewhere
            let mut seen: Vec<String> = Vec::new();
            for t in self
                .name
                .given
                .iter()
                .take(1)
                .chain(self.name.family.iter())
            {
                let k = phonetic(t);
                if !k.is_empty() && !seen.contains(&k) {
                    keys.push(format!("td:{k}:{d}"));
                    seen.push(k);
                }
            }
            // the date with both initials in either order: typos in both name parts
            let fi = f0.chars().next().map(String::from).unwrap_or_default();
            if !gi.is_empty() && !fi.is_empty() {
                let (x, y) = if gi <= fi { (&gi, &fi) } else { (&fi, &gi) };
                keys.push(format!("dx:{d}:{x}{y}"));
            }
        }
        if let (Some(y), false) = (year, fp.is_empty()) {
            keys.push(format!("fy:{fp}:{y}"));
        }
        if let (Some(y), false) = (year, gp.is_empty()) {
            // given name with the year (family typos) and with month/day (year off by one)
            keys.push(format!("gy:{gp}:{y}"));
            if let Some(dd) = self.dob.filter(|d| d.is_complete() && !d.is_placeholder()) {
                keys.push(format!(
                    "gm:{gp}:{:02}{:02}",
                    dd.month.unwrap_or(0),
                    dd.day.unwrap_or(0)
                ));
            }
        }
        for (tag, v) in [
            ("a", &self.a_number),
            ("b", &self.fbi_number),
            ("p", &self.passport_number),
            ("s", &self.ssn),
            ("n", &self.fin),
            ("t", &self.state_id),
            ("i", &self.national_id),
            ("o", &self.other_id),
        ] {
            if !v.is_empty() {
                keys.push(format!("{tag}#{v}"));
            }
        }
        keys
    }
}

/// True for identifier keys, which are never dropped for being too frequent.
pub fn is_identifier_key(k: &str) -> bool {
    k.as_bytes().get(1) == Some(&b'#')
}
