//! Conformance of record digests (migration 0008) and record packs (0009): every insert stores
//! its inserted records' sweep keys, digests and pack, on SQLite and on PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{gen, TestDb};
use verity_model::{RecordSystem, SourceRecord};
use verity_store::scan::{RecordDigest, SweepKeys};
use verity_store::{BackendKind, Store};

conformance!(
    inserts_store_digests_of_inserted_records_only,
    inserts_store_sweep_keys,
    deleting_a_digest_chunk_drops_that_chunk_only,
    a_backfill_stores_the_digests_and_keys_an_insert_would_have,
    every_digest_chunk_packs_its_inserted_records_as_stored,
);

/// Every record in the chunks' packs, in order: (rev, id, JSON).
async fn all_packed(s: &Store) -> Vec<(i64, String, String)> {
    let head = s.max_record_rev().await.unwrap();
    let mut out = Vec::new();
    for c in s.record_digest_chunks(0, head, 10_000).await.unwrap() {
        let pack = c.pack.expect("a chunk written by an insert has its pack");
        verity_store::scan::for_each_packed_record(c.first_rev, &pack, |rev, id, json| {
            assert!(c.first_rev <= rev && rev <= c.last_rev);
            out.push((rev, id.to_string(), json.to_string()));
        })
        .unwrap();
    }
    out
}

/// Every stored digest, in rev order.
async fn all_digests(s: &Store) -> Vec<RecordDigest> {
    let head = s.max_record_rev().await.unwrap();
    let mut out = Vec::new();
    for c in s.record_digest_chunks(0, head, 10_000).await.unwrap() {
        c.for_each(|d| out.push(d.to_owned_digest())).unwrap();
    }
    out
}

/// The digest of every stored record, from the record itself.
async fn expected_digests(s: &Store) -> Vec<RecordDigest> {
    let mut out = Vec::new();
    for (rev, r) in s.scan_records(0, 100_000).await.unwrap() {
        out.push(RecordDigest::of(rev, &r));
    }
    out
}

/// The digests as a chunk of format 1 (before lead facets were kept): per digest its rev,
/// system number, record id, identifier, citizenship-key and status-key hashes, no facets.
fn encode_format_1(digests: &[RecordDigest]) -> Vec<u8> {
    // The system numbers of the stored format (`verity_store::scan`, fixed on disk).
    let number = |s: RecordSystem| -> u8 {
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
    };
    let mut out = vec![1u8];
    for d in digests {
        out.extend_from_slice(&d.rev.to_le_bytes());
        out.push(number(d.system));
        out.extend_from_slice(&(d.record_id.len() as u32).to_le_bytes());
        out.extend_from_slice(d.record_id.as_bytes());
        out.extend_from_slice(&(d.identifiers.len() as u32).to_le_bytes());
        for h in &d.identifiers {
            out.extend_from_slice(&h.to_le_bytes());
        }
        for keys in [&d.citizen_keys, &d.status_keys] {
            out.extend_from_slice(&(keys.len() as u32).to_le_bytes());
            for h in keys {
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
    }
    out
}

/// Stores a chunk with these bytes as written by an older build (raw SQL: the typed API writes
/// the current format only).
async fn store_raw_chunk(s: &Store, first: i64, last: i64, records: usize, bytes: &[u8]) {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let blob = match s.kind() {
        BackendKind::Sqlite => format!("X'{hex}'"),
        BackendKind::Postgres => format!("decode('{hex}', 'hex')"),
    };
    s.execute_raw_sql(&format!(
        "INSERT INTO record_digests (first_rev, last_rev, records, digest) \
         VALUES ({first}, {last}, {records}, {blob})"
    ))
    .await
    .unwrap();
}

/// Inserts `recs` in `parts` inserts (one digest chunk each).
async fn insert_in_parts(s: &Store, recs: &[SourceRecord], parts: usize) {
    for part in recs.chunks(recs.len().div_ceil(parts)) {
        assert_eq!(s.insert_records(part).await.unwrap(), part.len() as u64);
    }
}

mod cases {
    use super::*;

    pub async fn every_digest_chunk_packs_its_inserted_records_as_stored(db: &TestDb) {
        let s = &db.store;
        let recs = gen::records(5, 60);
        assert_eq!(s.insert_records(&recs[..30]).await.unwrap(), 30);
        // Half skipped as already stored: the second chunk packs only the other half.
        assert_eq!(s.insert_records(&recs[15..]).await.unwrap(), 30);
        let head = s.max_record_rev().await.unwrap();
        let stored: Vec<(i64, String, String)> = s
            .scan_record_json(0, head, 1_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.rev, r.record_id, r.json))
            .collect();
        assert_eq!(stored.len(), 60);
        assert_eq!(all_packed(s).await, stored);
        // Packs asked for only after a rev: chunks ending at or before it come without theirs
        // (still stored), the rest with them, and the digests are the same.
        let chunks = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert!(chunks.len() >= 2, "{} chunks", chunks.len());
        let after = chunks[0].last_rev;
        let partly = s
            .record_digest_chunks_packs_after(0, head, 100, after)
            .await
            .unwrap();
        assert_eq!(partly.len(), chunks.len());
        for (p, c) in partly.iter().zip(&chunks) {
            assert!(p.pack_stored && c.pack_stored);
            assert_eq!(p.bytes, c.bytes);
            if c.last_rev > after {
                assert_eq!(p.pack, c.pack);
            } else {
                assert_eq!(p.pack, None);
            }
        }
        // A chunk without its pack (written before schema version 9) reads as `None`; a pack
        // stored for it later reads back as stored.
        let chunks = s.record_digest_chunks(0, head, 100).await.unwrap();
        s.execute_raw_sql("UPDATE record_digests SET records_packed = NULL")
            .await
            .unwrap();
        let bare = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert!(bare.iter().all(|c| c.pack.is_none() && !c.pack_stored));
        for c in &chunks {
            s.set_record_pack(c.first_rev, c.pack.as_deref().unwrap())
                .await
                .unwrap();
        }
        assert_eq!(all_packed(s).await, stored);
    }

    pub async fn inserts_store_digests_of_inserted_records_only(db: &TestDb) {
        let s = &db.store;
        let recs = gen::records(3, 40);
        assert_eq!(s.insert_records(&recs[..20]).await.unwrap(), 20);
        // All skipped: no new chunk.
        assert_eq!(s.insert_records(&recs[..20]).await.unwrap(), 0);
        let head = s.max_record_rev().await.unwrap();
        assert_eq!(s.record_digest_chunks(0, head, 100).await.unwrap().len(), 1);
        // Half skipped: the chunk holds the other half, with their own revs.
        assert_eq!(s.insert_records(&recs[10..]).await.unwrap(), 20);
        let digests = all_digests(s).await;
        assert_eq!(digests.len(), 40);
        assert_eq!(digests, expected_digests(s).await);
        // A chunk spans exactly its insert's revs, and a run's head bounds what it reads.
        let head = s.max_record_rev().await.unwrap();
        let chunks = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].records, 20);
        assert_eq!(chunks[1].records, 20);
        assert!(chunks[0].last_rev < chunks[1].first_rev);
        assert_eq!(
            s.record_digest_chunks(0, chunks[1].first_rev - 1, 100)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            s.record_digest_chunks(chunks[0].first_rev, head, 100)
                .await
                .unwrap()
                .len(),
            1
        );
        // Storing a chunk again is a no-op; clearing drops them all.
        s.add_record_digests(&digests[..3], None).await.unwrap();
        assert_eq!(all_digests(s).await.len(), 40);
        s.clear_record_digests().await.unwrap();
        assert!(all_digests(s).await.is_empty());
    }

    pub async fn inserts_store_sweep_keys(db: &TestDb) {
        let s = &db.store;
        let mut recs: Vec<SourceRecord> = gen::records(5, 80);
        // A U.S.-born record with a full birth date: citizenship keys for sure.
        recs[0].identity.country_of_birth = "US".into();
        recs[0].identity.dob = verity_model::PartialDate::full(1980, 3, 4).ok();
        s.insert_records(&recs).await.unwrap();
        let hash = verity_store::leads::sweep_key_hash;
        let (mut citizen, mut status) = (0, 0);
        for r in &recs {
            let keys = SweepKeys::of(r);
            if !keys.citizen.is_empty() {
                let hashes: Vec<i64> = keys.citizen.iter().map(|k| hash(k)).collect();
                let found = s.citizen_hashes_among(&hashes).await.unwrap();
                assert_eq!(found.len(), hashes.len(), "{}", r.record_id);
                citizen += 1;
            }
            if !keys.status.is_empty() {
                let hashes: Vec<i64> = keys.status.iter().map(|k| hash(k)).collect();
                let holders = s.status_hash_holders(&hashes).await.unwrap();
                for h in &hashes {
                    assert!(
                        holders.iter().any(|(x, id)| x == h && *id == r.record_id),
                        "{}",
                        r.record_id
                    );
                }
                status += 1;
            }
        }
        assert!(citizen > 0 && status > 0, "{citizen} {status}");
    }

    pub async fn deleting_a_digest_chunk_drops_that_chunk_only(db: &TestDb) {
        let s = &db.store;
        insert_in_parts(s, &gen::records(11, 30), 3).await;
        let head = s.max_record_rev().await.unwrap();
        let before = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert_eq!(before.len(), 3);
        s.delete_record_digest_chunk(before[1].first_rev)
            .await
            .unwrap();
        let after = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert_eq!(after, vec![before[0].clone(), before[2].clone()]);
        // Again, or a rev inside a chunk that does not start it, or past every chunk: nothing.
        s.delete_record_digest_chunk(before[1].first_rev)
            .await
            .unwrap();
        assert!(before[0].last_rev > before[0].first_rev);
        s.delete_record_digest_chunk(before[0].first_rev + 1)
            .await
            .unwrap();
        s.delete_record_digest_chunk(head + 1).await.unwrap();
        assert_eq!(s.record_digest_chunks(0, head, 100).await.unwrap(), after);
        // The records themselves are untouched.
        assert_eq!(s.count_records().await.unwrap(), 30);
    }

    pub async fn a_backfill_stores_the_digests_and_keys_an_insert_would_have(db: &TestDb) {
        let s = &db.store;
        let mut recs = gen::records(12, 45);
        // A U.S.-born record with a full birth date: citizenship keys for sure.
        recs[2].identity.country_of_birth = "US".into();
        recs[2].identity.dob = verity_model::PartialDate::full(1981, 5, 6).ok();
        insert_in_parts(s, &recs, 3).await;
        let head = s.max_record_rev().await.unwrap();
        let expected = expected_digests(s).await;
        assert_eq!(all_digests(s).await, expected);
        let chunks = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert_eq!(chunks.len(), 3);

        // The first chunk as an older build wrote it (format 1, no facets), the second lost (an
        // insert stopped after its records), the third current.
        let old: Vec<RecordDigest> = expected
            .iter()
            .filter(|d| d.rev >= chunks[0].first_rev && d.rev <= chunks[0].last_rev)
            .cloned()
            .collect();
        s.delete_record_digest_chunk(chunks[0].first_rev)
            .await
            .unwrap();
        store_raw_chunk(
            s,
            chunks[0].first_rev,
            chunks[0].last_rev,
            old.len(),
            &encode_format_1(&old),
        )
        .await;
        s.delete_record_digest_chunk(chunks[1].first_rev)
            .await
            .unwrap();
        let stored = s.record_digest_chunks(0, head, 100).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert!(stored[0].lacks_facets());
        assert!(!stored[1].lacks_facets());
        let mut read_old = Vec::new();
        stored[0]
            .for_each(|d| read_old.push(d.to_owned_digest()))
            .unwrap();
        let without_facets: Vec<RecordDigest> = old
            .iter()
            .map(|d| RecordDigest {
                facets: None,
                ..d.clone()
            })
            .collect();
        assert_eq!(read_old, without_facets);

        // The backfill, as a full lead run does it: drop the old chunk, then read the records
        // without a digest from their JSON, a page at a time, and store each page's sweep keys
        // and then its digests (twice for the first page: a run stopped after it and resumed).
        s.delete_record_digest_chunk(stored[0].first_rev)
            .await
            .unwrap();
        let gap_end = chunks[2].first_rev - 1;
        let mut after = 0i64;
        let mut pages = 0;
        loop {
            let page = s.scan_record_json(after, gap_end, 7).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.rev;
            let mut digests = Vec::new();
            let (mut citizen, mut status) = (Vec::new(), Vec::new());
            for raw in &page {
                let r = raw.decode().unwrap();
                let keys = SweepKeys::of(&r);
                let hash = verity_store::leads::sweep_key_hash;
                citizen.extend(keys.citizen.iter().map(|k| hash(k)));
                status.extend(keys.status.iter().map(|k| (hash(k), r.record_id.clone())));
                digests.push(RecordDigest::of(raw.rev, &r));
            }
            let times = if pages == 0 { 2 } else { 1 };
            for _ in 0..times {
                s.add_citizen_key_hashes(&citizen).await.unwrap();
                s.add_status_key_hashes(&status).await.unwrap();
                s.add_record_digests(&digests, None).await.unwrap();
            }
            pages += 1;
        }
        assert_eq!(
            pages,
            (chunks[1].last_rev - chunks[0].first_rev + 1 + 6) / 7
        );
        // Every record has exactly one digest again, the one its insert stored.
        assert_eq!(all_digests(s).await, expected);
        let spans: Vec<(i64, i64)> = s
            .record_digest_chunks(0, head, 100)
            .await
            .unwrap()
            .iter()
            .map(|c| (c.first_rev, c.last_rev))
            .collect();
        assert_eq!(spans.len(), pages as usize + 1);
        assert!(spans.windows(2).all(|w| w[0].1 < w[1].0), "{spans:?}");
        // The keys stored twice are there once.
        let hash = verity_store::leads::sweep_key_hash;
        let us = SweepKeys::of(&recs[2]);
        assert!(!us.citizen.is_empty());
        let wanted: Vec<i64> = us.citizen.iter().map(|k| hash(k)).collect();
        assert_eq!(
            s.citizen_hashes_among(&wanted).await.unwrap().len(),
            wanted.len()
        );
        let holder = recs
            .iter()
            .find(|r| !SweepKeys::of(r).status.is_empty())
            .unwrap();
        let wanted: Vec<i64> = SweepKeys::of(holder)
            .status
            .iter()
            .map(|k| hash(k))
            .collect();
        let rows = s.status_hash_holders(&wanted).await.unwrap();
        let mine: Vec<&(i64, String)> = rows
            .iter()
            .filter(|(_, id)| *id == holder.record_id)
            .collect();
        assert_eq!(mine.len(), wanted.len(), "{rows:?}");
    }
}
