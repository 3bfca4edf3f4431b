//! Every stored record up to one revision, held in memory for the LESC engine's reads.
//!
//! Under HTTP load the engine's record reads were the intake's largest wait: about ten store
//! statements per query (index hits, then records sharing identifiers, in rounds), each a
//! hand-off to the SQLite driver's thread and a pooled connection. Records are insert-only
//! and every insert advances the store's revision head in the same transaction, so the
//! records with `rev <= upto_rev` never change: the snapshot holds them (their JSON, as
//! stored) with two sorted indexes, by record id and by identifier, and answers the engine's
//! reads without the store. Records stored after the snapshot are passed in by the caller
//! ([`SnapshotLookup::newer`]), who reads them from the store, so an answer is exactly as
//! fresh as one read from the store: a citizenship record stored a second ago still counts.
//!
//! [`SnapshotLookup`] answers exactly what the store's reads answer (same records, same
//! order): a test compares the engine's results through both.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use verity_model::{Identity, SourceRecord};
use verity_store::{IdKind, StoreError};

use super::engine::RecordLookup;

/// The identifiers the engine looks records up by (`RecordLookup::records_sharing_identifiers`),
/// in the store's canonical form; a value the canonical form refuses finds nothing. One
/// definition for the store's lookup and the snapshot's.
pub fn lookup_identifiers(identity: &Identity) -> Vec<(IdKind, String)> {
    LOOKUP_KINDS
        .into_iter()
        .filter_map(|kind| {
            kind.stored_value(identity)
                .and_then(|v| kind.canonical(&v).ok().map(|c| (kind, c)))
        })
        .collect()
}

/// The kinds [`lookup_identifiers`] asks about.
const LOOKUP_KINDS: [IdKind; 5] = [
    IdKind::ANumber,
    IdKind::Fin,
    IdKind::FbiNumber,
    IdKind::Ssn,
    IdKind::Passport,
];

/// A 64-bit hash of a record id (collisions are resolved by comparing the ids).
fn text_hash(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// A fixed 64-bit hash of an identifier (kind and value). Collisions only cost a decode: every
/// match is checked against the decoded record.
fn identifier_hash(kind: IdKind, value: &str) -> u64 {
    // `DefaultHasher::new()` has fixed keys: equal values hash equally within the process,
    // which is all an in-memory index needs.
    let mut h = std::hash::DefaultHasher::new();
    kind.code().hash(&mut h);
    value.hash(&mut h);
    h.finish()
}

/// Records with `rev <= upto_rev`, as stored.
#[derive(Debug, Default)]
pub struct RecordSnapshot {
    upto_rev: i64,
    /// Every record's JSON, concatenated in rev order; record `doc` is
    /// `json[json_ends[doc - 1]..json_ends[doc]]`.
    json: String,
    json_ends: Vec<usize>,
    /// Record ids, concatenated in the same order.
    ids: String,
    id_ends: Vec<usize>,
    /// (record id hash, doc), sorted: one probe region instead of a string comparison per
    /// step of a binary search over millions of ids.
    by_record_id: Vec<(u64, u32)>,
    /// (identifier hash, doc), sorted.
    by_identifier: Vec<(u64, u32)>,
}

/// Builds a [`RecordSnapshot`] from records given in rev order.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    snapshot: RecordSnapshot,
}

impl SnapshotBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one record: its rev (increasing), the decoded record (for its identifiers) and its
    /// JSON exactly as stored.
    pub fn push(&mut self, rev: i64, record: &SourceRecord, json: &str) {
        let s = &mut self.snapshot;
        let doc = u32::try_from(s.json_ends.len()).unwrap_or(u32::MAX);
        s.upto_rev = s.upto_rev.max(rev);
        s.json.push_str(json);
        s.json_ends.push(s.json.len());
        s.ids.push_str(&record.record_id);
        s.id_ends.push(s.ids.len());
        for kind in LOOKUP_KINDS {
            if let Some(v) = kind.stored_value(&record.identity) {
                s.by_identifier.push((identifier_hash(kind, &v), doc));
            }
        }
    }

    /// Marks every record up to `rev` as held (a store whose last revisions were skipped
    /// duplicates has a head above its last record).
    pub fn covers_up_to(&mut self, rev: i64) {
        self.snapshot.upto_rev = self.snapshot.upto_rev.max(rev);
    }

    pub fn finish(mut self) -> RecordSnapshot {
        let s = &mut self.snapshot;
        let docs = u32::try_from(s.id_ends.len()).unwrap_or(u32::MAX);
        let mut by_id: Vec<(u64, u32)> =
            (0..docs).map(|d| (text_hash(s.record_id(d)), d)).collect();
        by_id.sort_unstable();
        s.by_record_id = by_id;
        s.by_identifier.sort_unstable();
        s.json.shrink_to_fit();
        s.ids.shrink_to_fit();
        s.json_ends.shrink_to_fit();
        s.id_ends.shrink_to_fit();
        s.by_identifier.shrink_to_fit();
        self.snapshot
    }
}

impl RecordSnapshot {
    /// Every record with `rev <= upto_rev()` is here.
    pub fn upto_rev(&self) -> i64 {
        self.upto_rev
    }

    pub fn len(&self) -> usize {
        self.json_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.json_ends.is_empty()
    }

    /// Bytes held (JSON, ids and both indexes), for the start-up log.
    pub fn heap_bytes(&self) -> usize {
        self.json.capacity()
            + self.ids.capacity()
            + (self.json_ends.capacity() + self.id_ends.capacity()) * std::mem::size_of::<usize>()
            + self.by_record_id.capacity() * 16
            + self.by_identifier.capacity() * 16
    }

    fn span(ends: &[usize], doc: u32) -> (usize, usize) {
        let d = doc as usize;
        let start = if d == 0 { 0 } else { ends[d - 1] };
        (start, ends[d])
    }

    fn record_id(&self, doc: u32) -> &str {
        let (a, b) = Self::span(&self.id_ends, doc);
        &self.ids[a..b]
    }

    /// The record of `doc`. Its text decoded when the snapshot was built, so a failure here
    /// is reported as a corrupt record, like a row of the store that does not decode.
    fn decode(&self, doc: u32) -> Result<SourceRecord, StoreError> {
        let (a, b) = Self::span(&self.json_ends, doc);
        serde_json::from_str(&self.json[a..b]).map_err(|e| StoreError::Corrupt {
            table: "records",
            key: self.record_id(doc).to_string(),
            problem: format!("in the LESC record snapshot: {e}"),
        })
    }

    fn doc_of(&self, record_id: &str) -> Option<u32> {
        let h = text_hash(record_id);
        let start = self.by_record_id.partition_point(|&(k, _)| k < h);
        self.by_record_id[start..]
            .iter()
            .take_while(|&&(k, _)| k == h)
            .map(|&(_, d)| d)
            .find(|&d| self.record_id(d) == record_id)
    }

    /// Docs (rev order) of the records stored under one of `wanted`, each once.
    fn docs_with(
        &self,
        wanted: &[(IdKind, String)],
    ) -> Result<Vec<(u32, SourceRecord)>, StoreError> {
        let mut docs: BTreeSet<u32> = BTreeSet::new();
        for (kind, value) in wanted {
            let h = identifier_hash(*kind, value);
            let start = self.by_identifier.partition_point(|&(k, _)| k < h);
            docs.extend(
                self.by_identifier[start..]
                    .iter()
                    .take_while(|&&(k, _)| k == h)
                    .map(|&(_, d)| d),
            );
        }
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let r = self.decode(doc)?;
            // A hash collision decodes a record that holds none of the values: dropped here.
            if wanted
                .iter()
                .any(|(kind, value)| kind.stored_value(&r.identity).as_deref() == Some(value))
            {
                out.push((doc, r));
            }
        }
        Ok(out)
    }
}

/// The engine's reads over a snapshot plus the records stored after it.
pub struct SnapshotLookup<'a> {
    pub snapshot: &'a RecordSnapshot,
    /// Every record with `rev > snapshot.upto_rev()`, in rev order (read from the store by the
    /// caller just before the query).
    pub newer: &'a [SourceRecord],
}

impl RecordLookup for SnapshotLookup<'_> {
    type Error = StoreError;

    /// In record id order, as the store's `IN (...)` read gives them.
    async fn records(&self, record_ids: &[String]) -> Result<Vec<SourceRecord>, StoreError> {
        let mut ids: Vec<&str> = record_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.snapshot.doc_of(id) {
                Some(doc) => out.push(self.snapshot.decode(doc)?),
                None => out.extend(self.newer.iter().filter(|r| r.record_id == id).cloned()),
            }
        }
        Ok(out)
    }

    /// In rev order (snapshot first, then newer), as the store's read orders them.
    async fn records_sharing_identifiers(
        &self,
        identity: &Identity,
    ) -> Result<Vec<SourceRecord>, StoreError> {
        let wanted = lookup_identifiers(identity);
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut out: Vec<SourceRecord> = self
            .snapshot
            .docs_with(&wanted)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        out.extend(
            self.newer
                .iter()
                .filter(|r| {
                    wanted.iter().any(|(kind, value)| {
                        kind.stored_value(&r.identity).as_deref() == Some(value)
                    })
                })
                .cloned(),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn record(id: &str, a_number: Option<&str>, passport: Option<&str>) -> SourceRecord {
        let mut v = serde_json::json!({
            "record_id": id,
            "identity": {
                "name": {"given": "ANA", "middle": "", "family": "ROSS", "original": ""},
                "aliases": [], "dob": "1990-01-02", "sex": "F", "country_of_birth": "MX",
                "ids": {"a_number": null, "fin": null, "fbi_number": null, "state_id": null,
                        "passport": null, "ssn": null},
                "address": {"street_number": "", "street": "", "locality": "", "postcode": "",
                            "region": "", "county": ""}
            },
            "body": {"system": "travel", "direction": "arrival", "date": "2020-01-01",
                     "class_of_admission": "B2", "admit_until": null, "port": "MIAMI FL"}
        });
        if let Some(a) = a_number {
            v["identity"]["ids"]["a_number"] = a.into();
        }
        if let Some(p) = passport {
            v["identity"]["ids"]["passport"] = p.into();
        }
        serde_json::from_value(v).expect("test record")
    }

    fn snapshot(records: &[SourceRecord]) -> RecordSnapshot {
        let mut b = SnapshotBuilder::new();
        for (i, r) in records.iter().enumerate() {
            b.push(i as i64 + 1, r, &serde_json::to_string(r).unwrap());
        }
        b.finish()
    }

    fn ids(rs: &[SourceRecord]) -> Vec<&str> {
        rs.iter().map(|r| r.record_id.as_str()).collect()
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn reads_by_id_in_id_order_and_skips_absent_ids() {
        let rs = [
            record("TRV-B", None, None),
            record("TRV-A", None, None),
            record("TRV-C", None, None),
        ];
        let snap = snapshot(&rs);
        let lookup = SnapshotLookup {
            snapshot: &snap,
            newer: &[],
        };
        let got = block(lookup.records(&[
            "TRV-C".to_string(),
            "TRV-X".to_string(),
            "TRV-A".to_string(),
            "TRV-C".to_string(),
        ]))
        .unwrap();
        assert_eq!(ids(&got), ["TRV-A", "TRV-C"]);
        assert_eq!(got[0], rs[1]);
    }

    #[test]
    fn finds_records_sharing_an_identifier_in_rev_order_then_newer_ones() {
        let rs = [
            record("TRV-2", Some("012345678"), None),
            record("TRV-1", None, Some("MX:A1234567")),
            record("TRV-3", Some("012345678"), Some("MX:B7654321")),
            record("TRV-4", Some("087654321"), None),
        ];
        let snap = snapshot(&rs);
        let newer = [record("TRV-0", Some("012345678"), None)];
        let lookup = SnapshotLookup {
            snapshot: &snap,
            newer: &newer,
        };
        let q = record("Q", Some("A012-345-678"), Some("MX:A1234567"));
        let got = block(lookup.records_sharing_identifiers(&q.identity)).unwrap();
        assert_eq!(ids(&got), ["TRV-2", "TRV-1", "TRV-3", "TRV-0"]);
        // Without the newer records, the one stored after the snapshot is not seen: the caller
        // must pass them.
        let only_snapshot = SnapshotLookup {
            snapshot: &snap,
            newer: &[],
        };
        let got = block(only_snapshot.records_sharing_identifiers(&q.identity)).unwrap();
        assert_eq!(ids(&got), ["TRV-2", "TRV-1", "TRV-3"]);
        assert_eq!(snap.upto_rev(), 4);
    }

    #[test]
    fn a_query_without_identifiers_finds_nothing() {
        let snap = snapshot(&[record("TRV-1", None, None)]);
        let lookup = SnapshotLookup {
            snapshot: &snap,
            newer: &[],
        };
        let q = record("Q", None, None);
        assert!(block(lookup.records_sharing_identifiers(&q.identity))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn newer_records_are_found_by_id() {
        let snap = snapshot(&[record("TRV-1", None, None)]);
        let newer = [record("TRV-9", None, None)];
        let lookup = SnapshotLookup {
            snapshot: &snap,
            newer: &newer,
        };
        let got = block(lookup.records(&["TRV-9".into(), "TRV-1".into()])).unwrap();
        assert_eq!(ids(&got), ["TRV-1", "TRV-9"]);
    }
}
