//! Streaming scans over the whole record store for batch jobs (NCATC lead runs).
//!
//! A batch job over every record cannot hold every decoded record in memory (10,000,000 people
//! are some 37,000,000 records). These reads let it work in two passes instead:
//! - [`Store::scan_record_json`]: pages of raw record JSON in `rev` order, so the caller decodes
//!   on its own worker threads and keeps only what it needs (identifiers, a few keys);
//! - [`Store::records_by_revs`]: the whole records of chosen revs (one person group at a time);
//! - [`Store::records_by_identifiers`]: every record holding any of many identifier values, in
//!   one query per page of values (an incremental run's expansion by shared identifiers).

use crate::backend::{with_pool, Store, StoreRow};
use crate::error::{DbContext, StoreError};
use crate::records::IdKind;
use crate::BackendKind;
use verity_model::{PartialDate, RecordSystem, SourceRecord};

/// Parameters per statement: under SQLite's (32,766) and PostgreSQL's (65,535) limits, and
/// large, because every statement is a round trip to the database thread or server (which
/// dominates an incremental run's time on a busy machine).
pub(crate) const VALUES_PER_QUERY: usize = 4_000;

/// One stored record, not yet decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub rev: i64,
    pub record_id: String,
    pub json: String,
}

impl RawRecord {
    /// Decodes the record; a row that does not decode is reported as corrupt, with its id.
    pub fn decode(&self) -> Result<SourceRecord, StoreError> {
        decode(&self.record_id, &self.json)
    }
}

/// Decodes a record's JSON: the fast path ([`FastRecord`]) first, the derived decoder when the
/// fast path cannot read it (it then also gives the error message).
fn decode(record_id: &str, json: &str) -> Result<SourceRecord, StoreError> {
    if let Ok(fast) = serde_json::from_str::<FastRecord>(json) {
        return Ok(SourceRecord {
            record_id: fast.record_id,
            identity: fast.identity,
            body: fast.body.0,
        });
    }
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "records",
        key: record_id.to_string(),
        problem: e.to_string(),
    })
}

/// A [`SourceRecord`] decoded without serde's buffering of internally tagged enums: the
/// derived decoder of `RecordBody` (tagged by `system`) first copies the whole body into an
/// intermediate tree to find the tag, then decodes from that tree. Stored bodies are written
/// by the same derive, which puts the tag first, so this decoder reads the tag and then the
/// system's fields straight from the text. A body whose tag is not first is refused here and
/// decoded by the derived decoder instead, so both give the same records.
#[derive(serde::Deserialize)]
struct FastRecord {
    record_id: String,
    identity: verity_model::Identity,
    body: FastBody,
}

struct FastBody(verity_model::RecordBody);

impl<'de> serde::Deserialize<'de> for FastBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FastBodyVisitor)
    }
}

struct FastBodyVisitor;

impl<'de> serde::de::Visitor<'de> for FastBodyVisitor {
    type Value = FastBody;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a record body with its system tag first")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FastBody, A::Error> {
        use serde::de::{value::MapAccessDeserializer, Error};
        use serde::Deserialize;
        use verity_model::record::*;
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some("system") {
            return Err(A::Error::custom("the body's system tag is not first"));
        }
        let system: String = map.next_value()?;
        let rest = MapAccessDeserializer::new(map);
        Ok(FastBody(match system.as_str() {
            "benefits" => RecordBody::Benefits(BenefitsRecord::deserialize(rest)?),
            "travel" => RecordBody::Travel(TravelRecord::deserialize(rest)?),
            "enforcement" => RecordBody::Enforcement(EnforcementRecord::deserialize(rest)?),
            "court" => RecordBody::Court(CourtRecord::deserialize(rest)?),
            "criminal" => RecordBody::Criminal(CriminalRecord::deserialize(rest)?),
            "custody" => RecordBody::Custody(CustodyRecord::deserialize(rest)?),
            "citizenship" => RecordBody::Citizenship(CitizenshipRecord::deserialize(rest)?),
            "biometrics" => RecordBody::Biometrics(BiometricsRecord::deserialize(rest)?),
            other => return Err(A::Error::custom(format!("unknown system '{other}'"))),
        }))
    }
}

/// `n` parameter marks for an `IN (...)` list or a `VALUES` row: `?, ?, ...` on SQLite (which
/// binds numbered `$N` marks by walking the whole parameter list: quadratic in long lists),
/// `$1, $2, ...` on PostgreSQL.
pub(crate) fn placeholders(kind: BackendKind, n: usize) -> String {
    match kind {
        BackendKind::Sqlite => vec!["?"; n].join(", "),
        BackendKind::Postgres => (1..=n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `rows` rows of `width` parameter marks each, `(..), (..)`, numbered across rows on
/// PostgreSQL.
pub(crate) fn value_rows(kind: BackendKind, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|r| match kind {
            BackendKind::Sqlite => format!("({})", vec!["?"; width].join(", ")),
            BackendKind::Postgres => format!(
                "({})",
                (1..=width)
                    .map(|c| format!("${}", r * width + c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Up to `limit` records with `after_rev < rev <= to_rev`, in rev order, undecoded. Each
    /// statement answers up to 20,000 records in one packed row (`leads::packed_records_sql`),
    /// not a row per record.
    pub async fn scan_record_json(
        &self,
        after_rev: i64,
        to_rev: i64,
        limit: u32,
    ) -> Result<Vec<RawRecord>, StoreError> {
        use crate::leads::{packed_records_sql, unpack_records, Param, REVS_PER_PACKED_READ};
        let sql = packed_records_sql(
            self.kind(),
            "SELECT rev, record_id, record_json FROM records WHERE rev > $1 AND rev <= $2 \
             ORDER BY rev LIMIT $3",
        );
        let mut out = Vec::new();
        let mut after = after_rev;
        while out.len() < limit as usize {
            let part = (limit as usize - out.len()).min(REVS_PER_PACKED_READ);
            let before = out.len();
            let params = [
                Param::Int(after),
                Param::Int(to_rev),
                Param::Int(i64::try_from(part).unwrap_or(i64::MAX)),
            ];
            if let Some(text) = self.packed_value(&sql, &params, "scan record json").await? {
                unpack_records(&text, &mut out)?;
            }
            out[before..].sort_by_key(|r| r.rev);
            match out[before..].last() {
                Some(last) if out.len() - before == part => after = last.rev,
                // Fewer than asked: the range is done.
                _ => break,
            }
        }
        Ok(out)
    }

    /// The records with these revs (absent revs are skipped), in rev order, undecoded. Each
    /// statement answers up to 20,000 revs in one packed row (`leads::packed_records_sql`).
    pub async fn records_by_revs(&self, revs: &[i64]) -> Result<Vec<RawRecord>, StoreError> {
        use crate::leads::{json_list, packed_records_sql, unpack_records, REVS_PER_PACKED_READ};
        let backend = self.kind();
        let sql = packed_records_sql(
            backend,
            &format!(
                "SELECT rev, record_id, record_json FROM records WHERE rev IN ({})",
                json_list(backend, 1, true)
            ),
        );
        let mut out = Vec::with_capacity(revs.len());
        for text in self
            .packed_values_by_ints(&sql, revs, REVS_PER_PACKED_READ, "read records by rev")
            .await?
        {
            unpack_records(&text, &mut out)?;
        }
        out.sort_by_key(|r| r.rev);
        Ok(out)
    }

    /// Every record holding one of `values` as its `kind` identifier, in rev order, each once.
    /// Values that are not valid identifiers of that kind match nothing.
    pub async fn records_by_identifiers(
        &self,
        kind: IdKind,
        values: &[String],
    ) -> Result<Vec<RawRecord>, StoreError> {
        let canonical: Vec<String> = values
            .iter()
            .filter_map(|v| kind.canonical(v).ok())
            .collect();
        let mut out = Vec::new();
        with_pool!(self, pool => {
            for chunk in canonical.chunks(VALUES_PER_QUERY) {
                // The column name comes from a closed enum, never from input.
                let sql = format!(
                    "SELECT rev, record_id, record_json FROM records WHERE {} IN ({})",
                    kind.code(),
                    placeholders(self.kind(), chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for v in chunk {
                    q = q.bind(v.as_str());
                }
                for r in q.fetch_all(pool).await.ctx("look up records by identifiers")? {
                    out.push(RawRecord {
                        rev: r.int("rev").ctx("read a record row")?,
                        record_id: r.text("record_id").ctx("read a record row")?,
                        json: r.text("record_json").ctx("read a record row")?,
                    });
                }
            }
        });
        out.sort_by_key(|r| r.rev);
        out.dedup_by_key(|r| r.rev);
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Record digests: what a full lead run's first pass needs of each record, kept by every insert.
// ---------------------------------------------------------------------------------------------

/// Prefix of status sweep keys (citizenship keys start `F|` or `G|`).
pub const STATUS_KEY_PREFIX: &str = "S|";

/// The strong identifiers of a record, tagged by kind (0 A-number, 1 FIN, 2 FBI number,
/// 3 passport, 4 SSN, 5 state id), as display text: what links records into persons. A
/// fingerprint enrollment's FIN counts even when the enrolling system wrote only another
/// identifier on the record.
pub fn strong_identifiers(r: &SourceRecord) -> Vec<(u8, String)> {
    let ids = &r.identity.ids;
    let mut out = Vec::new();
    if let Some(v) = &ids.a_number {
        out.push((0, v.to_string()));
    }
    if let Some(v) = &ids.fin {
        out.push((1, v.to_string()));
    }
    if let Some(v) = &ids.fbi_number {
        out.push((2, v.to_string()));
    }
    if let Some(v) = &ids.passport {
        out.push((3, v.to_string()));
    }
    if let Some(v) = &ids.ssn {
        out.push((4, v.to_string()));
    }
    if let Some(v) = &ids.state_id {
        out.push((5, v.to_string()));
    }
    if let verity_model::RecordBody::Biometrics(b) = &r.body {
        let fin = b.fin.to_string();
        if !out.iter().any(|(tag, v)| *tag == 1 && *v == fin) {
            out.push((1, fin));
        }
    }
    out
}

/// Letters and digits of a name, upper-cased.
fn letters(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// A full birth date as `YYYYMMDD`, plus the day/month swap when it reads as a date too;
/// empty when the month or day is unknown (a partial date is no key).
fn full_birth_dates(dob: Option<PartialDate>) -> Vec<String> {
    let Some(dob) = dob else {
        return Vec::new();
    };
    let (Some(m), Some(d)) = (dob.month, dob.day) else {
        return Vec::new();
    };
    let mut dates = vec![format!("{:04}{:02}{:02}", dob.year, m, d)];
    if d <= 12 && d != m {
        dates.push(format!("{:04}{:02}{:02}", dob.year, d, m));
    }
    dates
}

/// A record's names, then its aliases, as (family, given).
fn names_of(r: &SourceRecord) -> impl Iterator<Item = (&str, &str)> {
    std::iter::once(&r.identity.name)
        .chain(r.identity.aliases.iter())
        .map(|n| (n.family.as_str(), n.given.as_str()))
}

/// Name-and-birth-date keys (`F|family|date`, `G|given|date`, and the day/month swap), sorted,
/// each once: the citizenship sweep's keys.
pub fn name_dob_keys_from<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
) -> Vec<String> {
    texts_of(|each| each_name_dob_key(names, dob, each))
}

/// [`digest_key_hash`] of each of [`name_dob_keys_from`], sorted, each once, without building a
/// string per key (a lead run's sweep hashes millions).
pub fn name_dob_key_hashes_from<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
) -> Vec<u64> {
    hashes_of(|each| each_name_dob_key(names, dob, each))
}

/// The keys a generator gives (as pieces), as text: sorted, each once.
fn texts_of(generate: impl FnOnce(&mut dyn FnMut(&[&str]))) -> Vec<String> {
    let mut out = Vec::new();
    generate(&mut |pieces| out.push(pieces.concat()));
    out.sort();
    out.dedup();
    out
}

/// The keys a generator gives (as pieces), hashed: sorted, each once.
fn hashes_of(generate: impl FnOnce(&mut dyn FnMut(&[&str]))) -> Vec<u64> {
    let mut out = Vec::new();
    generate(&mut |pieces| out.push(hash_of_pieces(pieces)));
    out.sort_unstable();
    out.dedup();
    out
}

/// [`digest_key_hash`] of the concatenation of `pieces`.
fn hash_of_pieces(pieces: &[&str]) -> u64 {
    let mut h = crate::leads::SweepKeyHasher::new();
    for p in pieces {
        h.piece(p);
    }
    u64::from_ne_bytes(h.finish().to_ne_bytes())
}

/// Calls `each` with every name-and-birth-date key (unsorted, maybe repeated) as the pieces it
/// is the concatenation of: the one definition of the key forms, for their text and their
/// hashes alike.
fn each_name_dob_key<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
    mut each: impl FnMut(&[&str]),
) {
    let dates = full_birth_dates(dob);
    if dates.is_empty() {
        return;
    }
    for (family, given) in names {
        let family = letters(family);
        let given = letters(given);
        for date in &dates {
            for (kind, name) in [("F|", &family), ("G|", &given)] {
                if !name.is_empty() {
                    each(&[kind, name, "|", date]);
                }
            }
        }
    }
}

/// Full-name-and-birth-date keys (`S|name|name|date|`, the two names sorted; the year in
/// two-year buckets offset by one; one name part with the other's initial), sorted, each once:
/// the status sweep's keys (see `verity_workflow::ncatc::person::full_name_dob_keys`).
pub fn full_name_dob_keys_from<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
) -> Vec<String> {
    texts_of(|each| each_full_name_dob_key(names, dob, each))
}

/// [`digest_key_hash`] of each of [`full_name_dob_keys_from`], sorted, each once, without
/// building a string per key.
pub fn full_name_dob_key_hashes_from<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
) -> Vec<u64> {
    hashes_of(|each| each_full_name_dob_key(names, dob, each))
}

/// Calls `each` with every full-name-and-birth-date key (unsorted, maybe repeated), in pieces.
fn each_full_name_dob_key<'a>(
    names: impl Iterator<Item = (&'a str, &'a str)>,
    dob: Option<PartialDate>,
    mut each: impl FnMut(&[&str]),
) {
    let dates: Vec<StatusDate> = full_birth_dates(dob)
        .iter()
        .map(|d| StatusDate::new(d))
        .collect();
    if dates.is_empty() {
        return;
    }
    for (family, given) in names {
        let family = letters(family);
        let given = letters(given);
        for date in &dates {
            each_status_key_of(&family, &given, date, &mut each);
        }
    }
}

/// A full birth date (`YYYYMMDD`) as the status keys write it: whole, and as its year's two
/// two-year buckets with the month and day.
struct StatusDate {
    date: String,
    /// The buckets (`year / 2` and `year / 2` rounded up) and the month and day, when the date
    /// starts with a year.
    buckets: Option<([String; 2], String)>,
}

impl StatusDate {
    fn new(date: &str) -> StatusDate {
        let buckets = match (date.get(..4).map(str::parse::<u16>), date.get(4..)) {
            (Some(Ok(year)), Some(month_day)) => Some((
                [(year / 2).to_string(), year.div_ceil(2).to_string()],
                month_day.to_string(),
            )),
            _ => None,
        };
        StatusDate {
            date: date.to_string(),
            buckets,
        }
    }
}

/// The status keys of one name (family and given, as [`letters`] gives them) on one full birth
/// date, in pieces: the one definition of the status keys' forms.
fn each_status_key_of(
    family: &str,
    given: &str,
    date: &StatusDate,
    each: &mut impl FnMut(&[&str]),
) {
    if family.is_empty() || given.is_empty() {
        return;
    }
    let (a, b) = if family <= given {
        (family, given)
    } else {
        (given, family)
    };
    // One name part with the other's initial, in both directions: a typo or a different
    // spelling in one part (the other part and its initial kept) still meets. Found at
    // 1,000,000 people: naturalized citizens whose permanent-residence grant was written
    // with a slightly different name read as overstays and got leads. A namesake with the
    // same birth date, one same name part and the same initial of the other is rare, and
    // costs only a parked lead, never a wrong one.
    let initial = |s: &'_ str| -> usize { s.chars().next().map_or(0, char::len_utf8) };
    let (family_initial, given_initial) = (&family[..initial(family)], &given[..initial(given)]);
    // Both names with the month and day, the year in two-year buckets offset by one: birth
    // years one apart always share a bucket (a year typo on the grant left a naturalized
    // citizen's group reading as an overstay at 1,000,000 people).
    if let Some((buckets, month_day)) = &date.buckets {
        for bucket in buckets {
            each(&[
                STATUS_KEY_PREFIX,
                a,
                "|",
                b,
                "|Y",
                bucket,
                "|",
                month_day,
                "|",
            ]);
        }
    }
    let d = date.date.as_str();
    each(&[STATUS_KEY_PREFIX, a, "|", b, "|", d, "|"]);
    each(&[
        STATUS_KEY_PREFIX,
        "~",
        family,
        "|",
        given_initial,
        "|",
        d,
        "|",
    ]);
    each(&[
        STATUS_KEY_PREFIX,
        "~",
        given,
        "|",
        family_initial,
        "|",
        d,
        "|",
    ]);
}

/// Calls `each` with the hash of every status key (maybe repeated) a person may hold whose
/// name-and-birth-date keys ([`name_dob_keys_from`] of all its records) are `keys`: on each
/// date, those of every family name with every given name. A superset of the person's own
/// status keys, which pair each record's names, since these keys do not say which names went
/// together. Keys of another form are skipped. Stops when `each` returns `true`, and says
/// whether it did.
pub fn any_status_key_hash_of_name_dob_keys<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    mut each: impl FnMut(u64) -> bool,
) -> bool {
    let mut by_date: std::collections::BTreeMap<&str, (Vec<&str>, Vec<&str>)> =
        std::collections::BTreeMap::new();
    for k in keys {
        let mut parts = k.split('|');
        let (Some(kind), Some(name), Some(date), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let entry = by_date.entry(date).or_default();
        match kind {
            "F" => entry.0.push(name),
            "G" => entry.1.push(name),
            _ => {}
        }
    }
    for (date, (families, givens)) in &by_date {
        let date = StatusDate::new(date);
        for family in families {
            for given in givens {
                let mut hit = false;
                each_status_key_of(family, given, &date, &mut |pieces| {
                    hit = hit || each(hash_of_pieces(pieces));
                });
                if hit {
                    return true;
                }
            }
        }
    }
    false
}

/// Every hash [`any_status_key_hash_of_name_dob_keys`] gives, sorted, each once (for the
/// property test; runs stop at the first hit).
#[cfg(test)]
fn status_key_hashes_of_name_dob_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<u64> {
    let mut out = Vec::new();
    any_status_key_hash_of_name_dob_keys(keys, |h| {
        out.push(h);
        false
    });
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether a record on its own indicates U.S. citizenship (U.S. birth, a citizenship record,
/// a granted naturalization or citizenship certificate).
pub fn indicates_citizenship(r: &SourceRecord) -> bool {
    use verity_model::record::{BenefitOutcome, BenefitType, RecordBody};
    if r.identity.country_of_birth == "US" {
        return true;
    }
    match &r.body {
        RecordBody::Citizenship(_) => true,
        RecordBody::Benefits(b) => {
            b.outcome == BenefitOutcome::Granted
                && matches!(
                    b.benefit,
                    BenefitType::Naturalization | BenefitType::CitizenshipCertificate
                )
        }
        _ => false,
    }
}

/// Whether a record bears on immigration status (enforcement, court, benefits, travel).
pub fn bears_on_status(r: &SourceRecord) -> bool {
    matches!(
        r.system(),
        RecordSystem::Enforcement
            | RecordSystem::Court
            | RecordSystem::Benefits
            | RecordSystem::Travel
    )
}

/// A record's sweep keys: citizenship keys when it indicates citizenship, status keys when it
/// bears on status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepKeys {
    pub citizen: Vec<String>,
    pub status: Vec<String>,
}

impl SweepKeys {
    pub fn of(r: &SourceRecord) -> SweepKeys {
        SweepKeys {
            citizen: if indicates_citizenship(r) {
                name_dob_keys_from(names_of(r), r.identity.dob)
            } else {
                Vec::new()
            },
            status: if bears_on_status(r) {
                full_name_dob_keys_from(names_of(r), r.identity.dob)
            } else {
                Vec::new()
            },
        }
    }
}

/// SipHash-2-4 of `parts` (each followed by a separator, so ("ab", "c") and ("a", "bc")
/// differ) under a fixed key: digests are stored, so the hash must not change between builds.
#[allow(deprecated)] // `SipHasher` is deprecated for `DefaultHasher`, whose algorithm may change.
fn stable_hash(k0: u64, k1: u64, parts: &[&[u8]]) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
    for p in parts {
        h.write(p);
        h.write_u8(0xff);
    }
    h.finish()
}

/// The stored 64-bit hash of a sweep key: the sweep-key tables' own
/// ([`crate::leads::sweep_key_hash`], fixed on disk), so one hash serves both. A collision can
/// only add a sweep match (a lead parked or sent to citizenship review), never lose one.
pub fn digest_key_hash(key: &str) -> u64 {
    u64::from_ne_bytes(crate::leads::sweep_key_hash(key).to_ne_bytes())
}

/// The stored 128-bit hash of an identifier: two independent 64-bit SipHashes. Identifiers
/// link records into persons, so a collision would merge two people; at 128 bits it will not
/// happen (about 10^-23 for 10^8 identifiers).
pub fn identifier_hash(tag: u8, value: &str) -> u128 {
    let lo = stable_hash(
        0x5645_5249_5459_0002,
        0x6964_0000_0000_0001,
        &[&[tag], value.as_bytes()],
    );
    let hi = stable_hash(
        0x5645_5249_5459_0003,
        0x6964_0000_0000_0002,
        &[&[tag], value.as_bytes()],
    );
    (u128::from(hi) << 64) | u128::from(lo)
}

/// What a full lead run's first pass needs of one record: its rev and id, its system, its
/// identifiers and sweep keys, hashed. Kept for every stored record by every insert (one
/// digest chunk per insert, migration 0008), so a full run reads a few large rows instead of
/// every record's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDigest {
    pub rev: i64,
    pub record_id: String,
    pub system: RecordSystem,
    /// [`identifier_hash`] of each of [`strong_identifiers`].
    pub identifiers: Vec<u128>,
    /// [`digest_key_hash`] of each citizenship sweep key.
    pub citizen_keys: Vec<u64>,
    /// [`digest_key_hash`] of each status sweep key.
    pub status_keys: Vec<u64>,
    /// What a lead rule may rest on in the record ([`LeadFacets::of`]); `None` in digests
    /// written before facets were kept (format 1): a lead run then treats the record as one
    /// that may lead.
    pub facets: Option<LeadFacets>,
}

/// What a lead rule may rest on in one record, in policy-independent form (record kinds and
/// offense codes, not severity classes), so a change of lead or priority policy needs no
/// re-import: a lead run derives from these, with the policy it runs under, whether any rule
/// could apply to a person (see `verity_workflow::ncatc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFacets {
    /// [`LeadFacets::FINAL_ORDER`] and the other kind bits.
    pub flags: u8,
    /// A criminal record's NCIC offense code (empty for other records).
    pub ncic_code: String,
}

impl LeadFacets {
    /// An order of removal that is final (or in absentia) on its own: an enforcement order
    /// marked final or in absentia, or a court removal order with no appeal pending.
    pub const FINAL_ORDER: u8 = 1;
    /// An order of removal in absentia (enforcement or court, no appeal pending).
    pub const IN_ABSENTIA: u8 = 2;
    /// An executed removal.
    pub const REMOVAL: u8 = 4;
    /// An arrival admitted for a period (not as a permanent resident, citizen or parolee)
    /// with an admit-until date: may become an overstay.
    pub const ADMISSION: u8 = 8;
    /// A criminal charge that ended in a conviction.
    pub const CONVICTED: u8 = 16;
    /// A criminal record (its offense code is [`LeadFacets::ncic_code`]).
    pub const CRIMINAL: u8 = 32;
    /// Every bit a stored facet may carry (others mark a damaged chunk).
    pub const KNOWN: u8 = 63;

    /// The facets of a record.
    pub fn of(r: &SourceRecord) -> LeadFacets {
        use verity_model::record::{
            CourtOutcome, Disposition, EnforcementEvent, OrderKind, RecordBody, TravelDirection,
        };
        let mut flags = 0u8;
        let mut ncic_code = String::new();
        match &r.body {
            RecordBody::Enforcement(e) => match e.event {
                EnforcementEvent::Removal => flags |= Self::REMOVAL,
                EnforcementEvent::RemovalOrder => match e.order {
                    Some(OrderKind::Final) => flags |= Self::FINAL_ORDER,
                    Some(OrderKind::InAbsentia) => flags |= Self::FINAL_ORDER | Self::IN_ABSENTIA,
                    _ => {}
                },
                _ => {}
            },
            RecordBody::Court(c) if !c.appeal_pending => match c.outcome {
                CourtOutcome::RemovalOrdered => flags |= Self::FINAL_ORDER,
                CourtOutcome::InAbsentiaOrder => flags |= Self::FINAL_ORDER | Self::IN_ABSENTIA,
                _ => {}
            },
            RecordBody::Travel(t) => {
                let class = t.class_of_admission.as_str();
                if t.direction == TravelDirection::Arrival
                    && t.admit_until.is_some()
                    && !matches!(class, "LPR" | "USC" | "PAROLE")
                {
                    flags |= Self::ADMISSION;
                }
            }
            RecordBody::Criminal(c) => {
                flags |= Self::CRIMINAL;
                if c.disposition == Disposition::Convicted {
                    flags |= Self::CONVICTED;
                }
                ncic_code = c.ncic_code.clone();
            }
            _ => {}
        }
        LeadFacets { flags, ncic_code }
    }

    /// A borrowed view.
    pub fn as_facets_ref(&self) -> FacetsRef<'_> {
        FacetsRef {
            flags: self.flags,
            ncic_code: &self.ncic_code,
        }
    }
}

/// [`LeadFacets`] read in place from a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacetsRef<'a> {
    pub flags: u8,
    pub ncic_code: &'a str,
}

impl RecordDigest {
    /// The digest of a record stored at `rev`, from its identifiers and sweep keys.
    pub fn new(
        rev: i64,
        record_id: &str,
        system: RecordSystem,
        identifiers: &[(u8, String)],
        keys: &SweepKeys,
    ) -> RecordDigest {
        RecordDigest {
            rev,
            record_id: record_id.to_string(),
            system,
            identifiers: identifiers
                .iter()
                .map(|(tag, v)| identifier_hash(*tag, v))
                .collect(),
            citizen_keys: keys.citizen.iter().map(|k| digest_key_hash(k)).collect(),
            status_keys: keys.status.iter().map(|k| digest_key_hash(k)).collect(),
            facets: None,
        }
    }

    /// The same digest with the record's lead facets.
    pub fn with_facets(mut self, facets: LeadFacets) -> RecordDigest {
        self.facets = Some(facets);
        self
    }

    /// The digest of a decoded record.
    pub fn of(rev: i64, r: &SourceRecord) -> RecordDigest {
        RecordDigest::new(
            rev,
            &r.record_id,
            r.system(),
            &strong_identifiers(r),
            &SweepKeys::of(r),
        )
        .with_facets(LeadFacets::of(r))
    }

    /// A borrowed view, as read from a chunk.
    pub fn as_digest_ref(&self) -> DigestRef<'_> {
        DigestRef {
            rev: self.rev,
            record_id: &self.record_id,
            system: self.system,
            identifiers: Words::Owned128(&self.identifiers),
            citizen_keys: Words::Owned64(&self.citizen_keys),
            status_keys: Words::Owned64(&self.status_keys),
            facets: self.facets.as_ref().map(LeadFacets::as_facets_ref),
        }
    }
}

/// A digest read in place from a chunk (nothing copied).
#[derive(Debug, Clone, Copy)]
pub struct DigestRef<'a> {
    pub rev: i64,
    pub record_id: &'a str,
    pub system: RecordSystem,
    identifiers: Words<'a>,
    citizen_keys: Words<'a>,
    status_keys: Words<'a>,
    /// `None` in a format 1 chunk (written before facets were kept).
    pub facets: Option<FacetsRef<'a>>,
}

/// Hashes either as stored bytes (little-endian) or in memory.
#[derive(Debug, Clone, Copy)]
enum Words<'a> {
    Bytes(&'a [u8]),
    Owned128(&'a [u128]),
    Owned64(&'a [u64]),
}

impl<'a> Words<'a> {
    fn u64s(self) -> impl Iterator<Item = u64> + 'a {
        let (bytes, owned): (&[u8], &[u64]) = match self {
            Words::Bytes(b) => (b, &[]),
            Words::Owned64(o) => (&[], o),
            Words::Owned128(_) => (&[], &[]),
        };
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .chain(owned.iter().copied())
    }
    fn u128s(self) -> impl Iterator<Item = u128> + 'a {
        let (bytes, owned): (&[u8], &[u128]) = match self {
            Words::Bytes(b) => (b, &[]),
            Words::Owned128(o) => (&[], o),
            Words::Owned64(_) => (&[], &[]),
        };
        bytes
            .chunks_exact(16)
            .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
            .chain(owned.iter().copied())
    }
}

impl<'a> DigestRef<'a> {
    pub fn identifiers(&self) -> impl Iterator<Item = u128> + 'a {
        self.identifiers.u128s()
    }
    pub fn citizen_keys(&self) -> impl Iterator<Item = u64> + 'a {
        self.citizen_keys.u64s()
    }
    pub fn status_keys(&self) -> impl Iterator<Item = u64> + 'a {
        self.status_keys.u64s()
    }
    /// An owned copy.
    pub fn to_owned_digest(&self) -> RecordDigest {
        RecordDigest {
            rev: self.rev,
            record_id: self.record_id.to_string(),
            system: self.system,
            identifiers: self.identifiers().collect(),
            citizen_keys: self.citizen_keys().collect(),
            status_keys: self.status_keys().collect(),
            facets: self.facets.map(|f| LeadFacets {
                flags: f.flags,
                ncic_code: f.ncic_code.to_string(),
            }),
        }
    }
}

/// Format version of an encoded chunk (its first byte): 2 adds each record's lead facets.
const DIGEST_FORMAT: u8 = 2;
/// The format before facets, still read (its digests have no facets).
const DIGEST_FORMAT_NO_FACETS: u8 = 1;
/// The facet byte of a digest written without facets in a format 2 chunk.
const FACETS_UNKNOWN: u8 = 0x80;

fn system_number(s: RecordSystem) -> u8 {
    match s {
        RecordSystem::Benefits => 0,
        RecordSystem::Travel => 1,
        RecordSystem::Enforcement => 2,
        RecordSystem::Court => 3,
        RecordSystem::Criminal => 4,
        RecordSystem::Custody => 5,
        RecordSystem::Citizenship => 6,
        RecordSystem::Biometrics => 7,
    }
}

fn system_of_number(n: u8) -> Option<RecordSystem> {
    Some(match n {
        0 => RecordSystem::Benefits,
        1 => RecordSystem::Travel,
        2 => RecordSystem::Enforcement,
        3 => RecordSystem::Court,
        4 => RecordSystem::Criminal,
        5 => RecordSystem::Custody,
        6 => RecordSystem::Citizenship,
        7 => RecordSystem::Biometrics,
        _ => return None,
    })
}

fn len_u32(n: usize) -> u32 {
    // Record ids and key lists are far below 4 GiB; saturating keeps encoding total.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Encodes digests as one chunk: a format byte, then per digest its rev (i64), system (u8),
/// record id (u32 length + bytes), the identifier, citizenship-key and status-key hashes
/// (u32 count + little-endian words each), then its facets: the flag byte ([`FACETS_UNKNOWN`]
/// when it has none) and the offense code (u16 length + bytes).
pub fn encode_digests(digests: &[RecordDigest]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + digests.len() * 96);
    out.push(DIGEST_FORMAT);
    for d in digests {
        out.extend_from_slice(&d.rev.to_le_bytes());
        out.push(system_number(d.system));
        let id = d.record_id.as_bytes();
        let id = &id[..id.len().min(u32::MAX as usize)];
        out.extend_from_slice(&len_u32(id.len()).to_le_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&len_u32(d.identifiers.len()).to_le_bytes());
        for h in &d.identifiers {
            out.extend_from_slice(&h.to_le_bytes());
        }
        for keys in [&d.citizen_keys, &d.status_keys] {
            out.extend_from_slice(&len_u32(keys.len()).to_le_bytes());
            for h in keys {
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        match &d.facets {
            Some(f) => {
                out.push(f.flags & LeadFacets::KNOWN);
                let code = f.ncic_code.as_bytes();
                // Offense codes are a few characters; a longer one is cut at a character
                // boundary (it names no offense either way).
                let mut n = code.len().min(usize::from(u16::MAX));
                while !f.ncic_code.is_char_boundary(n) {
                    n -= 1;
                }
                out.extend_from_slice(&u16::try_from(n).unwrap_or(0).to_le_bytes());
                out.extend_from_slice(&code[..n]);
            }
            None => {
                out.push(FACETS_UNKNOWN);
                out.extend_from_slice(&0u16.to_le_bytes());
            }
        }
    }
    out
}

/// Reads an encoded chunk, calling `each` per digest in order. A chunk that does not parse is
/// reported as corrupt with `chunk` (its first rev) and the byte offset.
pub fn for_each_digest<'a>(
    chunk: i64,
    bytes: &'a [u8],
    mut each: impl FnMut(DigestRef<'a>),
) -> Result<(), StoreError> {
    let corrupt = |at: usize, problem: &str| StoreError::Corrupt {
        table: "record_digests",
        key: format!("first_rev {chunk}"),
        problem: format!("byte {at}: {problem}"),
    };
    let mut at = 0usize;
    let mut take = |n: usize, what: &str| -> Result<&'a [u8], StoreError> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| corrupt(at, &format!("truncated {what}")))?;
        let part = &bytes[at..end];
        at = end;
        Ok(part)
    };
    let format = take(1, "format byte")?[0];
    if format != DIGEST_FORMAT && format != DIGEST_FORMAT_NO_FACETS {
        return Err(corrupt(0, &format!("unknown format {format}")));
    }
    let word = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as usize;
    loop {
        let Ok(rev) = take(8, "rev") else {
            // A clean end falls exactly on a digest boundary.
            break;
        };
        let rev = i64::from_le_bytes(rev.try_into().unwrap_or([0; 8]));
        let sys = take(1, "system")?[0];
        let system = system_of_number(sys).ok_or_else(|| StoreError::Corrupt {
            table: "record_digests",
            key: format!("first_rev {chunk}"),
            problem: format!("rev {rev}: unknown system number {sys}"),
        })?;
        let n = word(take(4, "record id length")?);
        let id = std::str::from_utf8(take(n, "record id")?).map_err(|e| StoreError::Corrupt {
            table: "record_digests",
            key: format!("first_rev {chunk}"),
            problem: format!("rev {rev}: record id is not UTF-8: {e}"),
        })?;
        let n = word(take(4, "identifier count")?);
        let ids = take(n.saturating_mul(16), "identifiers")?;
        let n = word(take(4, "citizenship key count")?);
        let citizen = take(n.saturating_mul(8), "citizenship keys")?;
        let n = word(take(4, "status key count")?);
        let status = take(n.saturating_mul(8), "status keys")?;
        let facets = if format == DIGEST_FORMAT {
            let flags = take(1, "facet flags")?[0];
            let n = usize::from(u16::from_le_bytes(
                take(2, "offense code length")?.try_into().unwrap_or([0; 2]),
            ));
            let code =
                std::str::from_utf8(take(n, "offense code")?).map_err(|e| StoreError::Corrupt {
                    table: "record_digests",
                    key: format!("first_rev {chunk}"),
                    problem: format!("rev {rev}: offense code is not UTF-8: {e}"),
                })?;
            match flags {
                FACETS_UNKNOWN => None,
                f if f & !LeadFacets::KNOWN == 0 => Some(FacetsRef {
                    flags: f,
                    ncic_code: code,
                }),
                f => {
                    return Err(StoreError::Corrupt {
                        table: "record_digests",
                        key: format!("first_rev {chunk}"),
                        problem: format!("rev {rev}: unknown facet flags {f:#04x}"),
                    })
                }
            }
        } else {
            None
        };
        each(DigestRef {
            rev,
            record_id: id,
            system,
            identifiers: Words::Bytes(ids),
            citizen_keys: Words::Bytes(citizen),
            status_keys: Words::Bytes(status),
            facets,
        });
    }
    if at != bytes.len() {
        return Err(corrupt(at, "trailing bytes"));
    }
    Ok(())
}

/// One stored digest chunk: the digests of one insert's records (or of a run's backfill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChunk {
    pub first_rev: i64,
    pub last_rev: i64,
    pub records: i64,
    pub bytes: Vec<u8>,
    /// The chunk's records as stored ([`encode_record_pack`]); `None` for a chunk written
    /// before packs were kept (schema version 9), which a full lead run then fills in, or
    /// for one whose pack was not asked for ([`Store::record_digest_chunks_packs_after`]).
    pub pack: Option<Vec<u8>>,
    /// Whether the store holds the chunk's pack (read or not).
    pub pack_stored: bool,
}

impl DigestChunk {
    /// Whether the chunk was written before lead facets were kept (format 1).
    pub fn lacks_facets(&self) -> bool {
        self.bytes.first() == Some(&DIGEST_FORMAT_NO_FACETS)
    }

    /// Calls `each` per digest, in rev order.
    pub fn for_each<'a>(&'a self, each: impl FnMut(DigestRef<'a>)) -> Result<(), StoreError> {
        for_each_digest(self.first_rev, &self.bytes, each)
    }
}

/// Format of a record pack (its first byte).
const PACK_FORMAT: u8 = 1;

/// Bytes of a pack's header: the format byte and the uncompressed length (u64 LE).
const PACK_HEADER: usize = 9;

/// zstd level of record packs: level 1 already takes record JSON to about a tenth (keys and
/// most values repeat from record to record), and it is the fastest to write on import.
const PACK_LEVEL: i32 = 1;

/// Packs records as stored, `(rev, record id, record JSON)` in rev order, into one
/// zstd-compressed blob: the format byte, the uncompressed length, then per record its rev
/// (i64 LE), id length (u32 LE), id, JSON length (u32 LE) and JSON.
pub fn encode_record_pack<'a>(
    records: impl IntoIterator<Item = (i64, &'a str, &'a str)>,
) -> Vec<u8> {
    RecordPacker::new().pack(records)
}

/// Packs records as [`encode_record_pack`] does, reusing one zstd context and buffer: for many
/// small packs (a lead run's candidates file: 16 KB blocks), where setting up a context for
/// each pack costs about as much as compressing it.
pub struct RecordPacker {
    /// `None` if zstd could not set up a context: packs are then stored raw (format 0).
    compressor: Option<zstd::bulk::Compressor<'static>>,
    raw: Vec<u8>,
}

impl Default for RecordPacker {
    fn default() -> Self {
        RecordPacker::new()
    }
}

impl RecordPacker {
    pub fn new() -> RecordPacker {
        RecordPacker {
            compressor: zstd::bulk::Compressor::new(PACK_LEVEL).ok(),
            raw: Vec::new(),
        }
    }

    pub fn pack<'a>(
        &mut self,
        records: impl IntoIterator<Item = (i64, &'a str, &'a str)>,
    ) -> Vec<u8> {
        let raw = &mut self.raw;
        raw.clear();
        for (rev, id, json) in records {
            raw.extend_from_slice(&rev.to_le_bytes());
            for part in [id, json] {
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                raw.extend_from_slice(&len.to_le_bytes());
                raw.extend_from_slice(part.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(PACK_HEADER + raw.len() / 8);
        out.push(PACK_FORMAT);
        out.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        // Compressing into a growing Vec from a slice cannot fail but for memory; keep the raw
        // bytes uncompressed then rather than lose the pack (format 0 below).
        match self.compressor.as_mut().map(|c| c.compress(raw)) {
            Some(Ok(compressed)) => out.extend_from_slice(&compressed),
            _ => {
                out[0] = PACK_FORMAT_RAW;
                out.extend_from_slice(raw);
            }
        }
        out
    }
}

/// A pack stored uncompressed (written only if compression failed).
const PACK_FORMAT_RAW: u8 = 0;

/// Largest uncompressed pack a reader accepts (a chunk holds one import batch, some 10,000
/// records of a few hundred bytes): a damaged length must not allocate without bound.
const PACK_MAX_RAW: u64 = 1 << 31;

/// Reads a record pack, calling `each` with every record in it, in order. A pack that does
/// not parse is reported as corrupt with `chunk` (its first rev) and what is wrong.
pub fn for_each_packed_record(
    chunk: i64,
    pack: &[u8],
    each: impl FnMut(i64, &str, &str),
) -> Result<(), StoreError> {
    RecordUnpacker::new().for_each(chunk, pack, each)
}

/// Reads record packs as [`for_each_packed_record`] does, reusing one zstd context: for many
/// small packs.
pub struct RecordUnpacker {
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

impl Default for RecordUnpacker {
    fn default() -> Self {
        RecordUnpacker::new()
    }
}

impl RecordUnpacker {
    pub fn new() -> RecordUnpacker {
        RecordUnpacker {
            decompressor: zstd::bulk::Decompressor::new().ok(),
        }
    }

    /// Calls `each` with every record of `pack` ([`for_each_packed_record`]).
    pub fn for_each(
        &mut self,
        chunk: i64,
        pack: &[u8],
        mut each: impl FnMut(i64, &str, &str),
    ) -> Result<(), StoreError> {
        let corrupt = |problem: String| StoreError::Corrupt {
            table: "record_digests",
            key: format!("first_rev {chunk}"),
            problem: format!("record pack: {problem}"),
        };
        let (Some(&format), Some(len)) = (pack.first(), pack.get(1..PACK_HEADER)) else {
            return Err(corrupt("truncated header".into()));
        };
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(len);
        let raw_len = u64::from_le_bytes(len_bytes);
        if raw_len > PACK_MAX_RAW {
            return Err(corrupt(format!(
                "uncompressed length {raw_len} is too large"
            )));
        }
        let body = &pack[PACK_HEADER..];
        let owned;
        let raw: &[u8] = match format {
            PACK_FORMAT => {
                owned = match self.decompressor.as_mut() {
                    Some(d) => d.decompress(body, raw_len as usize),
                    None => zstd::bulk::decompress(body, raw_len as usize),
                }
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
                &owned
            }
            PACK_FORMAT_RAW => body,
            other => return Err(corrupt(format!("unknown format {other}"))),
        };
        if raw.len() as u64 != raw_len {
            return Err(corrupt(format!(
                "{} bytes unpacked, the header says {raw_len}",
                raw.len()
            )));
        }
        fn take<'r>(raw: &'r [u8], at: &mut usize, n: usize) -> Option<&'r [u8]> {
            let end = at.checked_add(n).filter(|&e| e <= raw.len())?;
            let part = &raw[*at..end];
            *at = end;
            Some(part)
        }
        let mut at = 0usize;
        while at < raw.len() {
            let truncated = |at: usize, what: &str| corrupt(format!("byte {at}: truncated {what}"));
            let mut rev = [0u8; 8];
            rev.copy_from_slice(take(raw, &mut at, 8).ok_or_else(|| truncated(at, "rev"))?);
            let mut parts: [&str; 2] = ["", ""];
            for (slot, what) in parts.iter_mut().zip(["record id", "record JSON"]) {
                let mut n = [0u8; 4];
                n.copy_from_slice(take(raw, &mut at, 4).ok_or_else(|| truncated(at, what))?);
                let bytes = take(raw, &mut at, u32::from_le_bytes(n) as usize)
                    .ok_or_else(|| truncated(at, what))?;
                *slot = std::str::from_utf8(bytes)
                    .map_err(|_| corrupt(format!("byte {at}: {what} is not UTF-8")))?;
            }
            each(i64::from_le_bytes(rev), parts[0], parts[1]);
        }
        Ok(())
    }
}

/// The one statement that stores a digest chunk with its record pack (the normal insert and the
/// bulk load both use it, so a column added to the chunk is added for both): first rev, last
/// rev, records, digest bytes, pack.
pub(crate) const INSERT_DIGEST_CHUNK: &str =
    "INSERT INTO record_digests (first_rev, last_rev, records, digest, records_packed) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (first_rev) DO NOTHING";

impl Store {
    /// Stores the digests of records already stored, as one chunk (idempotent: a chunk with
    /// the same first rev is kept). The caller writes the records' sweep keys first: a chunk
    /// means its records' keys are in the store (see [`Store::insert_records`]).
    /// `pack` holds the same records as stored ([`encode_record_pack`]), for full lead runs.
    pub async fn add_record_digests(
        &self,
        digests: &[RecordDigest],
        pack: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (
            digests.iter().map(|d| d.rev).min(),
            digests.iter().map(|d| d.rev).max(),
        ) else {
            return Ok(());
        };
        let bytes = encode_digests(digests);
        let records = i64::try_from(digests.len()).unwrap_or(i64::MAX);
        with_pool!(self, pool => {
            sqlx::query(INSERT_DIGEST_CHUNK)
            .bind(first)
            .bind(last)
            .bind(records)
            .bind(bytes.as_slice())
            .bind(pack)
            .execute(pool)
            .await
            .ctx("store record digests")?;
        });
        Ok(())
    }

    /// Up to `limit` digest chunks with `after_first_rev < first_rev <= to_rev`, by first rev,
    /// each with its pack.
    pub async fn record_digest_chunks(
        &self,
        after_first_rev: i64,
        to_rev: i64,
        limit: u32,
    ) -> Result<Vec<DigestChunk>, StoreError> {
        self.record_digest_chunks_packs_after(after_first_rev, to_rev, limit, i64::MIN)
            .await
    }

    /// As [`Store::record_digest_chunks`], but reads the packs only of chunks with records
    /// after `packs_after_rev` (`last_rev > packs_after_rev`): a full lead run that has the
    /// older records from its last run's candidates. Packs are most of a chunk's bytes, and
    /// both backends leave an unread column's bytes on disk (SQLite stops following a row's
    /// overflow pages at the last column it reads; PostgreSQL leaves it in TOAST).
    pub async fn record_digest_chunks_packs_after(
        &self,
        after_first_rev: i64,
        to_rev: i64,
        limit: u32,
        packs_after_rev: i64,
    ) -> Result<Vec<DigestChunk>, StoreError> {
        // Whether a pack is stored, without reading it: SQLite answers `length` of a blob
        // from the row's header (`IS NOT NULL` would load the whole value from its overflow
        // pages); PostgreSQL answers `IS NOT NULL` from the row's null bitmap.
        let stored = match self.kind() {
            BackendKind::Sqlite => "length(records_packed) IS NOT NULL",
            BackendKind::Postgres => "records_packed IS NOT NULL",
        };
        let sql = format!(
            "SELECT first_rev, last_rev, records, digest, {stored} AS pack_stored, \
             CASE WHEN last_rev > $4 THEN records_packed END AS pack \
             FROM record_digests \
             WHERE first_rev > $1 AND first_rev <= $2 ORDER BY first_rev LIMIT $3"
        );
        with_pool!(self, pool => {
            let rows = sqlx::query(&sql)
            .bind(after_first_rev)
            .bind(to_rev)
            .bind(i64::from(limit))
            .bind(packs_after_rev)
            .fetch_all(pool)
            .await
            .ctx("read record digests")?;
            let op = "read a record digest row";
            rows.iter()
                .map(|r| {
                    use sqlx::Row;
                    Ok(DigestChunk {
                        first_rev: r.int("first_rev").ctx(op)?,
                        last_rev: r.int("last_rev").ctx(op)?,
                        records: r.int("records").ctx(op)?,
                        bytes: r.try_get::<Vec<u8>, _>("digest").ctx(op)?,
                        pack: r.try_get::<Option<Vec<u8>>, _>("pack").ctx(op)?,
                        pack_stored: r.flag("pack_stored").ctx(op)?,
                    })
                })
                .collect()
        })
    }

    /// Stores the record pack of the digest chunk that starts at `first_rev` (a chunk written
    /// before packs were kept). The pack must hold exactly the chunk's records as stored.
    pub async fn set_record_pack(&self, first_rev: i64, pack: &[u8]) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE record_digests SET records_packed = $2 WHERE first_rev = $1")
                .bind(first_rev)
                .bind(pack)
                .execute(pool)
                .await
                .ctx("store a record pack")?;
        });
        Ok(())
    }

    /// Drops the digest chunk that starts at `first_rev` (if any): a chunk written before
    /// lead facets were kept, whose records a full lead run then digests again from their JSON.
    pub async fn delete_record_digest_chunk(&self, first_rev: i64) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM record_digests WHERE first_rev = $1")
                .bind(first_rev)
                .execute(pool)
                .await
                .ctx("delete a record digest chunk")?;
        });
        Ok(())
    }

    /// Drops every digest chunk (a full lead run then reads records' JSON and stores their
    /// digests again). For tests, and for a migration that rebuilds the sweep keys: a chunk
    /// promises that its records' sweep keys are stored.
    pub async fn clear_record_digests(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM record_digests")
                .execute(pool)
                .await
                .ctx("clear record digests")?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod pack_tests {
    use super::*;
    use proptest::prelude::*;

    fn unpack(pack: &[u8]) -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut out = Vec::new();
        for_each_packed_record(7, pack, |rev, id, json| {
            out.push((rev, id.to_string(), json.to_string()))
        })?;
        Ok(out)
    }

    fn pack_of(records: &[(i64, String, String)]) -> Vec<u8> {
        encode_record_pack(records.iter().map(|(r, i, j)| (*r, i.as_str(), j.as_str())))
    }

    proptest! {
        #[test]
        fn a_pack_gives_back_its_records(
            records in proptest::collection::vec((any::<i64>(), ".{0,12}", ".{0,300}"), 0..40)
        ) {
            prop_assert_eq!(unpack(&pack_of(&records)).unwrap(), records);
        }

        #[test]
        fn a_damaged_pack_is_an_error_or_other_records_never_a_panic(
            cut in 0usize..200, flip in 0usize..200, byte in any::<u8>()
        ) {
            let records = vec![
                (1, "BEN-1".to_string(), "{\"a\":1}".to_string()),
                (2, "TRV-2".to_string(), "{\"b\":\"é\"}".to_string()),
            ];
            let mut pack = pack_of(&records);
            if flip < pack.len() {
                pack[flip] ^= byte;
            }
            pack.truncate(cut.max(1));
            let _ = unpack(&pack);
        }
    }

    #[test]
    fn records_compress_to_a_fraction_of_their_json() {
        let json = r#"{"record_id":"BEN-006F7EDA1EF02412","identity":{"name":{"given":"ANA","middle":"","family":"REYES","original":""},"aliases":[],"dob":"1996-10-05","sex":"F","country_of_birth":"HT","ids":{"a_number":null,"fin":null}},"body":{"system":"benefits","benefit":"naturalization","outcome":"granted"}}"#;
        let records: Vec<(i64, String, String)> = (0..1_000)
            .map(|i| {
                (
                    i,
                    format!("BEN-{i:016X}"),
                    json.replace("1996", &format!("{}", 1900 + i % 100)),
                )
            })
            .collect();
        let raw: usize = records.iter().map(|(_, i, j)| 16 + i.len() + j.len()).sum();
        let pack = pack_of(&records);
        assert!(pack.len() * 5 < raw, "{} of {raw} bytes", pack.len());
        assert_eq!(unpack(&pack).unwrap(), records);
    }

    #[test]
    fn a_damaged_pack_names_its_chunk() {
        let pack = pack_of(&[(1, "A".into(), "{}".into())]);
        for bad in [
            Vec::new(),
            vec![PACK_FORMAT],
            [&[9u8][..], &pack[1..]].concat(),
            pack[..pack.len() - 1].to_vec(),
        ] {
            let err = unpack(&bad).unwrap_err().to_string();
            assert!(
                err.contains("first_rev 7") && err.contains("record pack"),
                "{err}"
            );
        }
        // A header claiming more than a chunk can hold allocates nothing.
        let mut huge = pack.clone();
        huge[1..PACK_HEADER].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(unpack(&huge).unwrap_err().to_string().contains("too large"));
        // Uncompressed packs (written only if compression failed) read too.
        let mut raw = vec![PACK_FORMAT_RAW];
        let body = [
            &1i64.to_le_bytes()[..],
            &1u32.to_le_bytes(),
            b"A",
            &2u32.to_le_bytes(),
            b"{}",
        ]
        .concat();
        raw.extend_from_slice(&(body.len() as u64).to_le_bytes());
        raw.extend_from_slice(&body);
        assert_eq!(
            unpack(&raw).unwrap(),
            vec![(1, "A".to_string(), "{}".to_string())]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `identifier_hash(0, "012345678")` as first stored.
    const IDENTIFIER_HASH_OF_SAMPLE: u128 = 255_513_063_461_093_752_542_613_768_081_149_405_020;

    fn sample_digests() -> Vec<RecordDigest> {
        vec![
            RecordDigest {
                rev: 7,
                record_id: "ENF-1".into(),
                system: RecordSystem::Enforcement,
                identifiers: vec![identifier_hash(0, "012345678"), u128::MAX],
                citizen_keys: vec![],
                status_keys: vec![digest_key_hash("S|ANA|LOPEZ|19800102|"), 0, u64::MAX],
                facets: Some(LeadFacets {
                    flags: LeadFacets::CRIMINAL | LeadFacets::CONVICTED,
                    ncic_code: "1313".into(),
                }),
            },
            RecordDigest {
                rev: 9,
                record_id: "CIT-\u{e9}".into(),
                system: RecordSystem::Citizenship,
                identifiers: vec![],
                citizen_keys: vec![digest_key_hash("F|LOPEZ|19800102")],
                status_keys: vec![],
                facets: None,
            },
        ]
    }

    /// A chunk as format 1 wrote it (no facets), from the same digests.
    fn format_1_chunk(digests: &[RecordDigest]) -> Vec<u8> {
        let mut out = vec![DIGEST_FORMAT_NO_FACETS];
        for d in digests {
            let mut one = encode_digests(std::slice::from_ref(d));
            // Drop the format byte and the facets (flag byte, u16 length, code).
            let code = d.facets.as_ref().map_or(0, |f| f.ncic_code.len());
            one.truncate(one.len() - 3 - code);
            out.extend_from_slice(&one[1..]);
        }
        out
    }

    #[test]
    fn chunks_written_before_facets_read_with_no_facets() {
        let digests = sample_digests();
        let mut back = Vec::new();
        for_each_digest(7, &format_1_chunk(&digests), |d| {
            back.push(d.to_owned_digest())
        })
        .unwrap();
        let without: Vec<RecordDigest> = digests
            .into_iter()
            .map(|mut d| {
                d.facets = None;
                d
            })
            .collect();
        assert_eq!(back, without);
    }

    #[test]
    fn facets_name_what_a_lead_rule_may_rest_on() {
        use verity_model::record::*;
        let body_facets = |body: RecordBody| {
            LeadFacets::of(&SourceRecord {
                record_id: "R-1".into(),
                identity: verity_model::Identity::default(),
                body,
            })
        };
        let order = |order: Option<OrderKind>, event: EnforcementEvent| {
            body_facets(RecordBody::Enforcement(EnforcementRecord {
                event,
                date: PartialDate::full(2020, 1, 2).unwrap(),
                order,
                entry: None,
                office: "BAL".into(),
                detail: String::new(),
            }))
            .flags
        };
        assert_eq!(
            order(Some(OrderKind::Final), EnforcementEvent::RemovalOrder),
            LeadFacets::FINAL_ORDER
        );
        assert_eq!(
            order(Some(OrderKind::InAbsentia), EnforcementEvent::RemovalOrder),
            LeadFacets::FINAL_ORDER | LeadFacets::IN_ABSENTIA
        );
        assert_eq!(
            order(Some(OrderKind::Pending), EnforcementEvent::RemovalOrder),
            0
        );
        assert_eq!(order(None, EnforcementEvent::Removal), LeadFacets::REMOVAL);
        let court = |outcome: CourtOutcome, appeal_pending: bool| {
            body_facets(RecordBody::Court(CourtRecord {
                case_number: "C-1".into(),
                filed: PartialDate::full(2019, 5, 6).unwrap(),
                outcome,
                decided: None,
                relief: String::new(),
                appeal_pending,
            }))
            .flags
        };
        assert_eq!(
            court(CourtOutcome::InAbsentiaOrder, false),
            LeadFacets::FINAL_ORDER | LeadFacets::IN_ABSENTIA
        );
        assert_eq!(court(CourtOutcome::RemovalOrdered, true), 0);
        let arrival = |class: &str, until: bool| {
            body_facets(RecordBody::Travel(TravelRecord {
                direction: TravelDirection::Arrival,
                date: PartialDate::full(2019, 5, 6).unwrap(),
                class_of_admission: class.into(),
                admit_until: until.then(|| PartialDate::full(2019, 11, 6).unwrap()),
                port: "JFK".into(),
            }))
            .flags
        };
        assert_eq!(arrival("B2", true), LeadFacets::ADMISSION);
        assert_eq!(arrival("B2", false), 0);
        assert_eq!(arrival("LPR", true), 0);
        let crime = body_facets(RecordBody::Criminal(CriminalRecord {
            arrest_date: PartialDate::full(2019, 5, 6).unwrap(),
            arresting_ori: None,
            ncic_code: "1313".into(),
            charge: "ASSAULT".into(),
            disposition: Disposition::Convicted,
            disposition_date: None,
            sentence_days: None,
            flags: Vec::new(),
        }));
        assert_eq!(crime.flags, LeadFacets::CRIMINAL | LeadFacets::CONVICTED);
        assert_eq!(crime.ncic_code, "1313");
    }

    #[test]
    fn digests_read_back_as_written() {
        let digests = sample_digests();
        let bytes = encode_digests(&digests);
        let mut back = Vec::new();
        for_each_digest(7, &bytes, |d| back.push(d.to_owned_digest())).unwrap();
        assert_eq!(back, digests);
        let mut from_owned = Vec::new();
        for d in &digests {
            from_owned.push(d.as_digest_ref().to_owned_digest());
        }
        assert_eq!(from_owned, digests);
        // An empty chunk is the format byte alone.
        let mut none = 0;
        for_each_digest(1, &encode_digests(&[]), |_| none += 1).unwrap();
        assert_eq!(none, 0);
    }

    #[test]
    fn a_damaged_chunk_is_corrupt_with_its_first_rev_never_a_panic() {
        let bytes = encode_digests(&sample_digests());
        // Every truncation, and a wrong format byte, an unknown system, trailing bytes.
        // Cut at a digest boundary a chunk is shorter, not damaged.
        let boundaries = [1, encode_digests(&sample_digests()[..1]).len()];
        let mut damaged: Vec<Vec<u8>> = (0..bytes.len())
            .filter(|n| !boundaries.contains(n))
            .map(|n| bytes[..n].to_vec())
            .collect();
        let mut wrong_format = bytes.clone();
        wrong_format[0] = 9;
        damaged.push(wrong_format);
        let mut wrong_system = bytes.clone();
        wrong_system[9] = 200;
        damaged.push(wrong_system);
        let mut trailing = bytes.clone();
        trailing.push(1);
        damaged.push(trailing);
        // The first digest's facet flags with an unknown bit.
        let mut wrong_facets = bytes.clone();
        let first_len = encode_digests(&sample_digests()[..1]).len();
        wrong_facets[first_len - 7] = 0x40;
        damaged.push(wrong_facets);
        for (i, b) in damaged.iter().enumerate() {
            let mut seen = Vec::new();
            match for_each_digest(42, b, |d| seen.push(d.rev)) {
                Err(StoreError::Corrupt { table, key, .. }) => {
                    assert_eq!(
                        (table, key.as_str()),
                        ("record_digests", "first_rev 42"),
                        "{i}"
                    )
                }
                other => panic!(
                    "case {i} ({} bytes): expected corrupt, got {other:?}",
                    b.len()
                ),
            }
        }
    }

    #[test]
    fn stored_hashes_do_not_change_between_builds() {
        // Digests are stored: these values must stay what they were when written.
        assert_eq!(identifier_hash(0, "012345678"), IDENTIFIER_HASH_OF_SAMPLE);
        assert_eq!(
            digest_key_hash("F|LOPEZ|19800102"),
            u64::from_ne_bytes(crate::leads::sweep_key_hash("F|LOPEZ|19800102").to_ne_bytes())
        );
        assert_ne!(
            identifier_hash(0, "012345678"),
            identifier_hash(1, "012345678")
        );
    }

    #[test]
    fn a_digest_holds_the_records_identifiers_and_sweep_keys() {
        use verity_model::record::*;
        use verity_model::{ANumber, Identity, PersonName};
        let mut identity = Identity {
            name: PersonName::new("ANA", "", "LOPEZ"),
            dob: PartialDate::full(1980, 1, 2).ok(),
            country_of_birth: "US".into(),
            ..Identity::default()
        };
        identity.ids.a_number = ANumber::parse("A12345678").ok();
        let r = SourceRecord {
            record_id: "ENF-1".into(),
            identity,
            body: RecordBody::Enforcement(EnforcementRecord {
                event: EnforcementEvent::RemovalOrder,
                date: PartialDate::full(2020, 1, 2).unwrap(),
                order: Some(OrderKind::Final),
                entry: None,
                office: "BAL".into(),
                detail: String::new(),
            }),
        };
        let d = RecordDigest::of(5, &r);
        assert_eq!(d.rev, 5);
        assert_eq!(d.system, RecordSystem::Enforcement);
        assert_eq!(d.identifiers, vec![identifier_hash(0, "012345678")]);
        // Born in the U.S.: citizenship keys; an enforcement record: status keys.
        let keys = SweepKeys::of(&r);
        assert!(
            keys.citizen.contains(&"F|LOPEZ|19800102".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.status.contains(&"S|ANA|LOPEZ|19800102|".to_string()),
            "{keys:?}"
        );
        assert!(
            keys.status.contains(&"S|ANA|LOPEZ|19800201|".to_string()),
            "day/month swap"
        );
        assert_eq!(d.citizen_keys.len(), keys.citizen.len());
        assert!(d
            .citizen_keys
            .contains(&digest_key_hash("F|LOPEZ|19800102")));
        assert!(d
            .status_keys
            .contains(&digest_key_hash("S|ANA|LOPEZ|19800102|")));
    }

    #[test]
    fn placeholders_are_positional_on_sqlite_and_numbered_on_postgres() {
        assert_eq!(placeholders(BackendKind::Postgres, 3), "$1, $2, $3");
        assert_eq!(placeholders(BackendKind::Sqlite, 3), "?, ?, ?");
        assert_eq!(placeholders(BackendKind::Sqlite, 0), "");
        assert_eq!(
            value_rows(BackendKind::Postgres, 2, 2),
            "($1, $2), ($3, $4)"
        );
        assert_eq!(value_rows(BackendKind::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn a_bad_row_is_reported_with_its_id() {
        let raw = RawRecord {
            rev: 1,
            record_id: "R-1".into(),
            json: "{".into(),
        };
        match raw.decode() {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "R-1"),
            other => panic!("expected a corrupt-row error, got {other:?}"),
        }
    }

    #[test]
    fn the_fast_decoder_reads_what_the_derived_one_reads() {
        use verity_model::record::*;
        use verity_model::{ANumber, Identity, PartialDate, PersonName};
        let mut identity = Identity {
            name: PersonName::new("ANA", "", "LOPEZ"),
            dob: PartialDate::full(1980, 1, 2).ok(),
            country_of_birth: "MX".into(),
            ..Identity::default()
        };
        identity.ids.a_number = ANumber::parse("A12345678").ok();
        let bodies = vec![
            RecordBody::Enforcement(EnforcementRecord {
                event: EnforcementEvent::RemovalOrder,
                date: PartialDate::full(2020, 1, 2).unwrap(),
                order: Some(OrderKind::Final),
                entry: None,
                office: "BAL".into(),
                detail: "with \"quotes\" and \u{e9}".into(),
            }),
            RecordBody::Citizenship(CitizenshipRecord {
                evidence: CitizenshipEvidence::UsPassport,
                document_number: "X1".into(),
                issued: None,
            }),
            RecordBody::Court(CourtRecord {
                case_number: "C-1".into(),
                filed: PartialDate::full(2019, 5, 6).unwrap(),
                outcome: CourtOutcome::InAbsentiaOrder,
                decided: None,
                relief: String::new(),
                appeal_pending: false,
            }),
        ];
        for body in bodies {
            let r = SourceRecord {
                record_id: "R-1".into(),
                identity: identity.clone(),
                body,
            };
            let json = serde_json::to_string(&r).unwrap();
            let fast: FastRecord = serde_json::from_str(&json).unwrap();
            assert_eq!(fast.body.0, r.body);
            assert_eq!(decode("R-1", &json).unwrap(), r);
        }
        // The tag not first: the derived decoder still reads it.
        let moved = r#"{"record_id":"R-2","identity":IDENT,"body":{"evidence":"us_passport","document_number":"X","issued":null,"system":"citizenship"}}"#
            .replace("IDENT", &serde_json::to_string(&identity).unwrap());
        assert!(serde_json::from_str::<FastRecord>(&moved).is_err());
        assert_eq!(decode("R-2", &moved).unwrap().record_id, "R-2");
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use proptest::prelude::*;

    fn hashes_of(keys: &[String]) -> Vec<u64> {
        let mut h: Vec<u64> = keys.iter().map(|k| digest_key_hash(k)).collect();
        h.sort_unstable();
        h.dedup();
        h
    }

    #[test]
    fn the_key_forms_are_as_stored() {
        let dob = Some(PartialDate {
            year: 1980,
            month: Some(1),
            day: Some(2),
        });
        let names = [("López", "Ana María")];
        assert_eq!(
            name_dob_keys_from(names.iter().copied(), dob),
            [
                "F|LÓPEZ|19800102",
                "F|LÓPEZ|19800201",
                "G|ANAMARÍA|19800102",
                "G|ANAMARÍA|19800201"
            ]
        );
        let status = full_name_dob_keys_from(names.iter().copied(), dob);
        assert!(status.contains(&"S|ANAMARÍA|LÓPEZ|19800102|".to_string()));
        assert!(status.contains(&"S|ANAMARÍA|LÓPEZ|Y990|0102|".to_string()));
        assert!(status.contains(&"S|~LÓPEZ|A|19800201|".to_string()));
        assert!(status.contains(&"S|~ANAMARÍA|L|19800102|".to_string()));
        // Per date: the bucket key (1980 is even, so both buckets are 990), the exact key and
        // the two initial keys; two dates (the day/month swap).
        assert_eq!(status.len(), 8);
        // A partial birth date is no key.
        let partial = Some(PartialDate {
            year: 1980,
            month: None,
            day: None,
        });
        assert!(name_dob_key_hashes_from(names.iter().copied(), partial).is_empty());
        assert!(full_name_dob_key_hashes_from(names.iter().copied(), None).is_empty());
    }

    proptest! {
        /// The hashes a lead run matches are the stored hashes of the keys' text.
        #[test]
        fn key_hashes_are_the_hashes_of_the_keys(
            names in proptest::collection::vec(("\\PC{0,8}", "\\PC{0,8}"), 0..4),
            year in 0u16..3000,
            month in proptest::option::of(1u8..=12),
            day in proptest::option::of(1u8..=31),
        ) {
            let dob = Some(PartialDate { year, month, day });
            let pairs = || names.iter().map(|(f, g)| (f.as_str(), g.as_str()));
            prop_assert_eq!(
                name_dob_key_hashes_from(pairs(), dob),
                hashes_of(&name_dob_keys_from(pairs(), dob))
            );
            prop_assert_eq!(
                full_name_dob_key_hashes_from(pairs(), dob),
                hashes_of(&full_name_dob_keys_from(pairs(), dob))
            );
        }

        /// The status keys derived from a person's name-and-birth-date keys hold every status
        /// key of its records: an open lead's subject keys find every status record its sweep
        /// would match.
        #[test]
        fn status_keys_from_name_keys_cover_the_records_own(
            records in proptest::collection::vec(
                (proptest::collection::vec(("[A-Za-zÀ-ÿ ]{0,6}", "[A-Za-zÀ-ÿ ]{0,6}"), 1..3),
                 1900u16..2030, 1u8..=12, 1u8..=28),
                1..4),
        ) {
            let mut name_keys = Vec::new();
            let mut own = Vec::new();
            for (names, year, month, day) in &records {
                let dob = Some(PartialDate { year: *year, month: Some(*month), day: Some(*day) });
                let pairs = || names.iter().map(|(f, g)| (f.as_str(), g.as_str()));
                name_keys.extend(name_dob_keys_from(pairs(), dob));
                own.extend(full_name_dob_key_hashes_from(pairs(), dob));
            }
            let derived = status_key_hashes_of_name_dob_keys(name_keys.iter().map(String::as_str));
            for h in own {
                prop_assert!(derived.binary_search(&h).is_ok());
            }
        }
    }
}
