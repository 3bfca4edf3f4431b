//! The record the resolver compares, and its prepared (normalized, parsed-once) form.

use crate::names::{normalize, parse_name, phonetic, phonetic_code, ParsedName};
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

/// FNV-1a (64-bit) fed the bytes of one blocking key as [`Prepared::blocking_keys`] spells it,
/// piece by piece, so no key string is built: the hash is the one batch blocking always took
/// of the key string (the same buckets, the same order when a budget drops buckets).
struct KeyHasher(u64);

impl KeyHasher {
    /// Starts a key with its prefix (`fg:`, `a#`, ...).
    fn new(prefix: &[u8]) -> Self {
        KeyHasher(0xcbf2_9ce4_8422_2325).text(prefix)
    }
    fn text(mut self, s: &[u8]) -> Self {
        for &b in s {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
    /// A number in decimal, at least `width` digits (zero-padded), as `format!` writes it.
    fn number(self, n: u32, width: usize) -> Self {
        let mut digits = [b'0'; 10];
        let mut k = digits.len();
        let mut n = n;
        loop {
            k -= 1;
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let start = k.min(digits.len() - width.min(digits.len()));
        self.text(&digits[start..])
    }
    /// The date as `PartialDate` displays it: `YYYY-MM-DD`, `00` for an unknown part.
    fn date(self, d: &PartialDate) -> Self {
        self.number(u32::from(d.year), 4)
            .text(b"-")
            .number(u32::from(d.month.unwrap_or(0)), 2)
            .text(b"-")
            .number(u32::from(d.day.unwrap_or(0)), 2)
    }
    /// The key: the hash shifted right by one, top bit set for identifier keys (never
    /// dropped for being frequent).
    fn finish(self, identifier: bool) -> u64 {
        (self.0 >> 1) | (u64::from(identifier) << 63)
    }
}

/// The first character of `s` as a string slice ("" when empty).
fn first_char(s: &str) -> &str {
    s.get(..s.chars().next().map_or(0, char::len_utf8))
        .unwrap_or("")
}

impl Prepared {
    /// The keys of [`Prepared::blocking_keys`] as 64-bit hashes, appended to `out` without
    /// building the key strings: two records share a hash whenever they share a key (and
    /// otherwise only on a hash collision, which adds a candidate that scoring rejects). The
    /// top bit marks identifier keys. Batch blocking uses these; a test checks both agree.
    pub fn blocking_key_hashes(&self, out: &mut Vec<u64>) {
        let g0 = self.name.given.first().map(String::as_str).unwrap_or("");
        let f0 = self.name.family.first().map(String::as_str).unwrap_or("");
        let fl = self.name.family.last().map(String::as_str).unwrap_or("");
        // codes held inline: no string per code
        let (gp, fp) = (phonetic_code(g0), phonetic_code(f0));
        let flp = if fl == f0 { fp } else { phonetic_code(fl) };
        let (gi, fi) = (first_char(g0), first_char(f0));
        let key = KeyHasher::new;
        if !fp.is_empty() && !gi.is_empty() {
            out.push(
                key(b"fg:")
                    .text(fp.as_bytes())
                    .text(b":")
                    .text(gi.as_bytes())
                    .finish(false),
            );
            if flp != fp {
                out.push(
                    key(b"fg:")
                        .text(flp.as_bytes())
                        .text(b":")
                        .text(gi.as_bytes())
                        .finish(false),
                );
            }
        }
        if !gp.is_empty() && !fp.is_empty() {
            let (x, y) = if gp.as_bytes() <= fp.as_bytes() {
                (&gp, &fp)
            } else {
                (&fp, &gp)
            };
            out.push(
                key(b"pp:")
                    .text(x.as_bytes())
                    .text(b":")
                    .text(y.as_bytes())
                    .finish(false),
            );
        }
        if let Some(d) = &self.dob {
            // every name token with the full date (repeated codes are removed by the caller's
            // sort and dedup, as the string keys are)
            if !gp.is_empty() {
                out.push(
                    key(b"td:")
                        .text(gp.as_bytes())
                        .text(b":")
                        .date(d)
                        .finish(false),
                );
            }
            for (k, t) in self.name.family.iter().enumerate() {
                let code = match k {
                    0 => fp,
                    _ => phonetic_code(t),
                };
                if !code.is_empty() {
                    out.push(
                        key(b"td:")
                            .text(code.as_bytes())
                            .text(b":")
                            .date(d)
                            .finish(false),
                    );
                }
            }
            if !gi.is_empty() && !fi.is_empty() {
                let (x, y) = if gi <= fi { (gi, fi) } else { (fi, gi) };
                out.push(
                    key(b"dx:")
                        .date(d)
                        .text(b":")
                        .text(x.as_bytes())
                        .text(y.as_bytes())
                        .finish(false),
                );
            }
            let year = u32::from(d.year);
            if !fp.is_empty() {
                out.push(
                    key(b"fy:")
                        .text(fp.as_bytes())
                        .text(b":")
                        .number(year, 1)
                        .finish(false),
                );
            }
            if !gp.is_empty() {
                out.push(
                    key(b"gy:")
                        .text(gp.as_bytes())
                        .text(b":")
                        .number(year, 1)
                        .finish(false),
                );
                if d.is_complete() && !d.is_placeholder() {
                    out.push(
                        key(b"gm:")
                            .text(gp.as_bytes())
                            .text(b":")
                            .number(u32::from(d.month.unwrap_or(0)), 2)
                            .number(u32::from(d.day.unwrap_or(0)), 2)
                            .finish(false),
                    );
                }
            }
        }
        for (prefix, v) in [
            (b"a#", &self.a_number),
            (b"b#", &self.fbi_number),
            (b"p#", &self.passport_number),
            (b"s#", &self.ssn),
            (b"n#", &self.fin),
            (b"t#", &self.state_id),
            (b"i#", &self.national_id),
            (b"o#", &self.other_id),
        ] {
            if !v.is_empty() {
                out.push(key(prefix).text(v.as_bytes()).finish(true));
            }
        }
    }
}

/// True for identifier keys, which are never dropped for being too frequent.
pub fn is_identifier_key(k: &str) -> bool {
    k.as_bytes().get(1) == Some(&b'#')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{generate, BenchConfig};

    fn string_keys(p: &Prepared) -> Vec<String> {
        let mut k = p.blocking_keys();
        k.sort();
        k.dedup();
        k
    }

    fn hash_keys(p: &Prepared) -> Vec<u64> {
        let mut k = Vec::new();
        p.blocking_key_hashes(&mut k);
        k.sort_unstable();
        k.dedup();
        k
    }

    #[test]
    fn hashed_keys_pair_the_same_records_as_string_keys() {
        let w = generate(&BenchConfig {
            identities: 250,
            probes: 120,
            seed: 11,
            hard_negative_share: 0.35,
        });
        let recs: Vec<Prepared> = w
            .gallery
            .iter()
            .chain(&w.probes)
            .map(Prepared::from_record)
            .collect();
        let strings: Vec<Vec<String>> = recs.iter().map(string_keys).collect();
        let hashes: Vec<Vec<u64>> = recs.iter().map(hash_keys).collect();
        for (s, h) in strings.iter().zip(&hashes) {
            assert_eq!(s.len(), h.len(), "{s:?}");
            let ids = s.iter().filter(|k| is_identifier_key(k)).count();
            assert_eq!(ids, h.iter().filter(|k| *k >> 63 == 1).count(), "{s:?}");
        }
        // the very hash batch blocking took of the key strings
        for p in &recs {
            let mut want: Vec<u64> = p
                .blocking_keys()
                .iter()
                .map(|k| {
                    use std::hash::Hasher;
                    let mut h = fnv::FnvHasher::default();
                    h.write(k.as_bytes());
                    (h.finish() >> 1) | (u64::from(is_identifier_key(k)) << 63)
                })
                .collect();
            want.sort_unstable();
            want.dedup();
            assert_eq!(want, hash_keys(p), "{:?}", p.blocking_keys());
        }
        let mut shared = 0;
        for i in 0..recs.len() {
            for j in i + 1..recs.len() {
                let by_string = strings[i].iter().any(|k| strings[j].contains(k));
                let by_hash = hashes[i].iter().any(|k| hashes[j].contains(k));
                assert_eq!(
                    by_string, by_hash,
                    "records {i} and {j}: {:?} / {:?}",
                    strings[i], strings[j]
                );
                shared += usize::from(by_string);
            }
        }
        assert!(shared > 100, "only {shared} pairs share a key");
    }
}
