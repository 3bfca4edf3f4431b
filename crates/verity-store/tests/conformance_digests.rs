//! Conformance of record digests (migration 0008): every insert stores its inserted records'
//! sweep keys and digests, on SQLite and on PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{gen, TestDb};
use verity_model::SourceRecord;
use verity_store::scan::{RecordDigest, SweepKeys};
use verity_store::Store;

conformance!(
    inserts_store_digests_of_inserted_records_only,
    inserts_store_sweep_keys,
);

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

mod cases {
    use super::*;

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
        s.add_record_digests(&digests[..3]).await.unwrap();
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
}
