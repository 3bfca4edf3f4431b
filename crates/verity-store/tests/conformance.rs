//! The store conformance suite: every case runs once against SQLite and once against
//! PostgreSQL (see `common` for how databases are made and skipped).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::{gen, TestDb};
use proptest::prelude::*;
use verity_model::audit::{ChainError, GENESIS_HASH};
use verity_model::{AuditAction, AuditEvent, Ori, Purpose, RecordSystem, Role, SourceRecord};
use verity_store::{
    import_world, Agency, AuditVerifyError, BackendKind, IdKind, ImportError, ImportOptions,
    NewUser, Store, StoreError,
};

conformance!(
    records_round_trip_every_system,
    wal_checkpoint_copies_the_wal_on_sqlite_only,
    insert_is_idempotent,
    identifier_lookups_use_canonical_forms,
    batch_reads_match_one_at_a_time_reads,
    scan_pages_in_rev_order_and_resumes_after_a_rev,
    concurrent_inserts_get_distinct_increasing_revs,
    invalid_record_id_is_rejected,
    agencies_upsert_merge_and_list,
    users_create_update_and_list,
    sessions_expire_and_end,
    meta_values_overwrite,
    audit_appends_chain_and_verify,
    audit_edit_of_content_is_detected,
    audit_edit_of_filter_column_is_detected,
    audit_deleted_middle_entry_is_detected,
    audit_deleted_last_entry_is_detected,
    audit_swapped_entries_are_detected,
    audit_log_refuses_update_and_delete,
    concurrent_audit_appends_form_one_chain,
    import_loads_world_and_audits_it,
    import_failure_names_file_line_column_and_resumes,
    import_reports_missing_column_and_ragged_rows,
    reopening_keeps_data_and_reruns_no_migration,
);

fn event(actor: &str, i: u64) -> AuditEvent {
    AuditEvent {
        actor: actor.to_string(),
        agency: matches!(i % 3, 0).then(|| Ori::parse("MD0030000").unwrap()),
        purpose: if matches!(i % 2, 0) {
            Purpose::StatusDetermination
        } else {
            Purpose::CriminalJustice
        },
        action: AuditAction::RecordRead {
            record_id: format!("R{i}"),
        },
    }
}

async fn scan_all(store: &Store, page: u32) -> Vec<(i64, SourceRecord)> {
    let mut out: Vec<(i64, SourceRecord)> = Vec::new();
    loop {
        let after = out.last().map(|(rev, _)| *rev).unwrap_or(0);
        let batch = store.scan_records(after, page).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        assert!(batch.len() <= page as usize);
        out.extend(batch);
    }
}

/// Runs SQL that bypasses the store, after removing the append-only triggers (as an attacker
/// with database access could).
async fn tamper(store: &Store, sql: &str) {
    let drop_triggers = match store.kind() {
        BackendKind::Sqlite => {
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;"
        }
        BackendKind::Postgres => {
            "DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_delete ON audit_log;"
        }
    };
    store.execute_raw_sql(drop_triggers).await.unwrap();
    store.execute_raw_sql(sql).await.unwrap();
}

async fn append_n(store: &Store, n: u64) {
    for i in 1..=n {
        store.append_audit(event("alice", i)).await.unwrap();
    }
    assert_eq!(store.verify_audit().await.unwrap(), n);
}

mod cases {
    use super::*;

    pub async fn records_round_trip_every_system(db: &TestDb) {
        let s = &db.store;
        let recs = gen::records(1, 40);
        assert_eq!(s.insert_records(&recs).await.unwrap(), 40);
        for r in &recs {
            assert_eq!(s.get_record(&r.record_id).await.unwrap().as_ref(), Some(r));
        }
        assert_eq!(s.get_record("NO-SUCH-ID").await.unwrap(), None);
        let counts = s.count_records_by_system().await.unwrap();
        for system in RecordSystem::ALL {
            assert_eq!(counts.get(system), Some(&5), "{system}");
        }
        assert_eq!(s.count_records().await.unwrap(), 40);
        assert_eq!(s.insert_records(&[]).await.unwrap(), 0);
    }

    pub async fn insert_is_idempotent(db: &TestDb) {
        let s = &db.store;
        let recs = gen::records(2, 30);
        assert_eq!(s.insert_records(&recs[..20]).await.unwrap(), 20);
        assert_eq!(s.insert_records(&recs[..20]).await.unwrap(), 0);
        assert_eq!(s.insert_records(&recs[10..]).await.unwrap(), 10);
        assert_eq!(s.count_records().await.unwrap(), 30);
        // The same id twice in one batch is stored once.
        let extra = gen::record(2, 1000, RecordSystem::Criminal);
        assert_eq!(
            s.insert_records(&[extra.clone(), extra.clone()])
                .await
                .unwrap(),
            1
        );
        // A later version under a stored id does not replace the stored one.
        let mut changed = extra.clone();
        changed.identity.name.family = "CHANGED".into();
        assert_eq!(s.insert_records(&[changed]).await.unwrap(), 0);
        assert_eq!(s.get_record(&extra.record_id).await.unwrap(), Some(extra));
        assert_eq!(s.count_records().await.unwrap(), 31);
    }

    pub async fn identifier_lookups_use_canonical_forms(db: &TestDb) {
        let s = &db.store;
        let mut recs = gen::records(4, 120);
        // Two records share an A-number.
        recs[1].identity.ids.a_number = recs[0].identity.ids.a_number.clone();
        if recs[0].identity.ids.a_number.is_none() {
            let a = verity_model::ANumber::parse("012345678").unwrap();
            recs[0].identity.ids.a_number = Some(a.clone());
            recs[1].identity.ids.a_number = Some(a);
        }
        s.insert_records(&recs).await.unwrap();
        for &kind in IdKind::ALL {
            let value = recs
                .iter()
                .find_map(|r| kind.stored_value(&r.identity))
                .unwrap_or_else(|| panic!("generator made no {kind}"));
            let expected: Vec<&SourceRecord> = recs
                .iter()
                .filter(|r| kind.stored_value(&r.identity).as_deref() == Some(value.as_str()))
                .collect();
            let got = s.records_by_identifier(kind, &value).await.unwrap();
            assert_eq!(got.iter().collect::<Vec<_>>(), expected, "{kind}");
        }
        let a = recs[0].identity.ids.a_number.as_ref().unwrap().to_string();
        let written = format!("A{}-{}-{}", &a[..3], &a[3..6], &a[6..]);
        let got = s
            .records_by_identifier(IdKind::ANumber, &written)
            .await
            .unwrap();
        assert_eq!(got.len(), 2);
        assert!(s
            .records_by_identifier(IdKind::Ssn, "000000001")
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            s.records_by_identifier(IdKind::Ssn, "12").await,
            Err(StoreError::Invalid(e)) if e.field == "ssn"
        ));
    }

    /// The server checkpoints SQLite's WAL in the background so commits need not: a pass
    /// copies every frame when nobody reads; PostgreSQL has no such step.
    pub async fn wal_checkpoint_copies_the_wal_on_sqlite_only(db: &TestDb) {
        let s = &db.store;
        s.insert_records(&gen::records(9, 300)).await.unwrap();
        match (s.kind(), s.checkpoint_wal().await.unwrap()) {
            (BackendKind::Sqlite, Some((frames, copied))) => {
                assert!(frames > 0, "the insert went through the WAL");
                assert_eq!(copied, frames, "no reader holds a frame back");
            }
            (BackendKind::Postgres, None) => {}
            (kind, other) => panic!("{kind:?}: {other:?}"),
        }
    }

    pub async fn batch_reads_match_one_at_a_time_reads(db: &TestDb) {
        let s = &db.store;
        let recs = gen::records(6, 700);
        s.insert_records(&recs).await.unwrap();
        // More ids than one statement takes, a repeat and an absent id.
        let mut ids: Vec<String> = recs.iter().map(|r| r.record_id.clone()).collect();
        ids.push(recs[3].record_id.clone());
        ids.push("NO-SUCH-RECORD".into());
        let mut got = s.get_records(&ids).await.unwrap();
        got.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        let mut expected = recs.clone();
        expected.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        assert_eq!(got, expected);
        assert!(s.get_records(&[]).await.unwrap().is_empty());

        // Any-identifier lookup = the union of the one-kind lookups, each record once, oldest
        // first; an invalid value matches nothing instead of failing the lookup.
        let mut wanted: Vec<(IdKind, String)> = Vec::new();
        for &kind in IdKind::ALL {
            if let Some(v) = recs.iter().find_map(|r| kind.stored_value(&r.identity)) {
                wanted.push((kind, v));
            }
        }
        assert!(wanted.len() >= 3, "generator made too few identifier kinds");
        let mut union: Vec<SourceRecord> = Vec::new();
        for (kind, v) in &wanted {
            for r in s.records_by_identifier(*kind, v).await.unwrap() {
                if !union.contains(&r) {
                    union.push(r);
                }
            }
        }
        let order: std::collections::HashMap<&str, usize> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.record_id.as_str(), i))
            .collect();
        union.sort_by_key(|r| order[r.record_id.as_str()]);
        wanted.push((IdKind::Ssn, "12".into()));
        assert_eq!(s.records_by_any_identifier(&wanted).await.unwrap(), union);
        assert!(s
            .records_by_any_identifier(&[(IdKind::Ssn, "12".into())])
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn scan_pages_in_rev_order_and_resumes_after_a_rev(db: &TestDb) {
        let s = &db.store;
        assert_eq!(s.max_record_rev().await.unwrap(), 0);
        assert!(s.scan_records(0, 10).await.unwrap().is_empty());
        let recs = gen::records(5, 50);
        s.insert_records(&recs[..25]).await.unwrap();
        let first = scan_all(s, 7).await;
        let last_seen = first.last().unwrap().0;
        s.insert_records(&recs[25..]).await.unwrap();
        s.insert_records(&recs[..10]).await.unwrap(); // duplicates: no new revs visible
        let all = scan_all(s, 7).await;
        assert_eq!(all.len(), 50);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "revs increase");
        let got: Vec<&SourceRecord> = all.iter().map(|(_, r)| r).collect();
        assert_eq!(got, recs.iter().collect::<Vec<_>>(), "insertion order");
        // An incremental job that saw `last_seen` gets exactly what came later.
        let later = s.scan_records(last_seen, 1000).await.unwrap();
        let later: Vec<&SourceRecord> = later.iter().map(|(_, r)| r).collect();
        assert_eq!(later, recs[25..].iter().collect::<Vec<_>>());
        assert!(s.max_record_rev().await.unwrap() >= all.last().unwrap().0);
    }

    pub async fn concurrent_inserts_get_distinct_increasing_revs(db: &TestDb) {
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                for b in 0..5u64 {
                    let start = t * 1000 + b * 20;
                    let recs = gen::records_range(6, start..start + 20);
                    assert_eq!(store.insert_records(&recs).await.unwrap(), 20);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let all = scan_all(&db.store, 64).await;
        assert_eq!(all.len(), 400);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        // Each writer's records appear in the order it wrote them.
        for t in 0..4u64 {
            let mine: Vec<u64> = all
                .iter()
                .filter_map(|(_, r)| r.record_id[4..].parse::<u64>().ok())
                .filter(|n| n / 1000 == t)
                .collect();
            assert_eq!(mine.len(), 100);
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }
    }

    pub async fn invalid_record_id_is_rejected(db: &TestDb) {
        let mut r = gen::record(7, 1, RecordSystem::Court);
        r.record_id = "BAD\0ID".into();
        assert!(matches!(
            db.store.insert_records(&[r]).await,
            Err(StoreError::Invalid(e)) if e.field == "record_id"
        ));
        assert_eq!(db.store.count_records().await.unwrap(), 0);
    }

    pub async fn agencies_upsert_merge_and_list(db: &TestDb) {
        let s = &db.store;
        let mut a = Agency {
            ori: Ori::parse("MD0030000").unwrap(),
            name: "TEST COUNTY SHERIFF".into(),
            kind: "sheriff".into(),
            state: "MD".into(),
            county: "TEST".into(),
            field_office: "BAL".into(),
            api_key_hash: None,
            active: true,
        };
        s.upsert_agency(&a).await.unwrap();
        assert_eq!(s.get_agency(&a.ori).await.unwrap(), Some(a.clone()));
        a.name = "TEST COUNTY SHERIFF'S OFFICE".into();
        a.api_key_hash = Some("hash-1".into());
        a.active = false;
        s.upsert_agency(&a).await.unwrap();
        assert_eq!(s.get_agency(&a.ori).await.unwrap(), Some(a.clone()));
        assert_eq!(
            s.agency_by_api_key_hash("hash-1").await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(s.agency_by_api_key_hash("hash-2").await.unwrap(), None);
        // Merging (as an import does) updates descriptions but keeps key and active flag.
        let mut imported = a.clone();
        imported.name = "RENAMED".into();
        imported.api_key_hash = None;
        imported.active = true;
        let other = Agency {
            ori: Ori::parse("VA0010000").unwrap(),
            ..imported.clone()
        };
        s.merge_agencies(&[imported, other.clone()]).await.unwrap();
        let stored = s.get_agency(&a.ori).await.unwrap().unwrap();
        assert_eq!(stored.name, "RENAMED");
        assert_eq!(stored.api_key_hash.as_deref(), Some("hash-1"));
        assert!(!stored.active);
        let list = s.list_agencies().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1], other);
        assert_eq!(
            s.get_agency(&Ori::parse("TX0000000").unwrap())
                .await
                .unwrap(),
            None
        );
    }

    pub async fn users_create_update_and_list(db: &TestDb) {
        let s = &db.store;
        let new = NewUser {
            username: "bspecialist".into(),
            display_name: "B. Specialist".into(),
            password_hash: "ph-1".into(),
            roles: vec![Role::LescSpecialist, Role::Supervisor],
            agency_ori: None,
        };
        let created = s.create_user(&new).await.unwrap();
        assert!(created.active);
        assert_eq!(
            s.get_user("bspecialist").await.unwrap(),
            Some(created.clone())
        );
        assert!(matches!(
            s.create_user(&new).await,
            Err(StoreError::AlreadyExists { what: "user", .. })
        ));
        let ori = Ori::parse("MD0030000").unwrap();
        let agency_user = NewUser {
            username: "adeputy".into(),
            display_name: "A. Deputy".into(),
            password_hash: "ph-2".into(),
            roles: vec![Role::AgencyUser],
            agency_ori: Some(ori.clone()),
        };
        assert!(matches!(
            s.create_user(&agency_user).await,
            Err(StoreError::NotFound { what: "agency", .. })
        ));
        s.upsert_agency(&Agency {
            ori: ori.clone(),
            name: "X".into(),
            kind: "police".into(),
            state: "MD".into(),
            county: "X".into(),
            field_office: "BAL".into(),
            api_key_hash: None,
            active: true,
        })
        .await
        .unwrap();
        s.create_user(&agency_user).await.unwrap();
        let names: Vec<String> = s
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, ["adeputy", "bspecialist"]);
        s.set_password_hash("bspecialist", "ph-3").await.unwrap();
        s.set_active("bspecialist", false).await.unwrap();
        s.set_roles("bspecialist", &[Role::Auditor]).await.unwrap();
        let u = s.get_user("bspecialist").await.unwrap().unwrap();
        assert_eq!(
            (u.password_hash.as_str(), u.active, u.roles.as_slice()),
            ("ph-3", false, &[Role::Auditor][..])
        );
        assert_eq!(
            s.get_user("adeputy").await.unwrap().unwrap().agency_ori,
            Some(ori)
        );
        assert!(matches!(
            s.set_password_hash("nobody", "x").await,
            Err(StoreError::NotFound { what: "user", .. })
        ));
        assert!(matches!(
            s.set_active("nobody", true).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.create_user(&NewUser {
                username: " padded".into(),
                ..new.clone()
            })
            .await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub async fn sessions_expire_and_end(db: &TestDb) {
        let s = &db.store;
        s.create_user(&NewUser {
            username: "u1".into(),
            display_name: "U".into(),
            password_hash: "ph".into(),
            roles: vec![Role::Admin],
            agency_ori: None,
        })
        .await
        .unwrap();
        let now = chrono::Utc::now();
        let live = s
            .create_session("tok-live", "u1", now + chrono::Duration::hours(1))
            .await
            .unwrap();
        s.create_session("tok-old", "u1", now - chrono::Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!(s.get_session("tok-live").await.unwrap(), Some(live));
        assert_eq!(s.get_session("tok-old").await.unwrap(), None);
        assert_eq!(s.get_session("tok-none").await.unwrap(), None);
        assert_eq!(s.delete_expired_sessions().await.unwrap(), 1);
        assert!(matches!(
            s.create_session("tok-x", "ghost", now + chrono::Duration::hours(1))
                .await,
            Err(StoreError::NotFound { what: "user", .. })
        ));
        assert!(matches!(
            s.create_session("tok-live", "u1", now + chrono::Duration::hours(1))
                .await,
            Err(StoreError::AlreadyExists { .. })
        ));
        assert!(s.delete_session("tok-live").await.unwrap());
        assert!(!s.delete_session("tok-live").await.unwrap());
        // Disabling a user ends their sessions.
        s.create_session("tok-2", "u1", now + chrono::Duration::hours(1))
            .await
            .unwrap();
        s.set_active("u1", false).await.unwrap();
        assert_eq!(s.get_session("tok-2").await.unwrap(), None);
    }

    pub async fn meta_values_overwrite(db: &TestDb) {
        let s = &db.store;
        assert_eq!(s.get_meta("demo_world_loaded").await.unwrap(), None);
        s.set_meta("demo_world_loaded", "yes").await.unwrap();
        s.set_meta("demo_world_loaded", "yes, 10 people")
            .await
            .unwrap();
        assert_eq!(
            s.get_meta("demo_world_loaded").await.unwrap().as_deref(),
            Some("yes, 10 people")
        );
    }

    pub async fn audit_appends_chain_and_verify(db: &TestDb) {
        let s = &db.store;
        assert_eq!(s.verify_audit().await.unwrap(), 0);
        assert_eq!(s.audit_head().await.unwrap(), (0, GENESIS_HASH.to_string()));
        let mut entries = Vec::new();
        for i in 1..=30 {
            entries.push(s.append_audit(event("alice", i)).await.unwrap());
        }
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        for (i, w) in entries.windows(2).enumerate() {
            assert_eq!(w[1].seq, i as u64 + 2);
            assert_eq!(w[1].prev_hash, w[0].hash);
        }
        let at = &entries[0].at;
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        assert!(
            at.ends_with('Z') && at.split('.').nth(1).map(str::len) == Some(7),
            "{at}"
        );
        assert_eq!(verity_model::audit::verify_chain(&entries), Ok(30));
        assert_eq!(s.verify_audit().await.unwrap(), 30);
        assert_eq!(s.list_audit(0, 10).await.unwrap(), entries[..10].to_vec());
        assert_eq!(s.list_audit(25, 10).await.unwrap(), entries[25..].to_vec());
        let last = entries.last().unwrap();
        assert_eq!(s.audit_head().await.unwrap(), (30, last.hash.clone()));
    }

    pub async fn audit_edit_of_content_is_detected(db: &TestDb) {
        append_n(&db.store, 10).await;
        tamper(
            &db.store,
            "UPDATE audit_log SET event_json = replace(event_json, '\"R3\"', '\"R9\"') WHERE seq = 3",
        )
        .await;
        let e = db.store.verify_audit().await.unwrap_err();
        assert!(
            matches!(e, AuditVerifyError::Chain(ChainError::Content { seq: 3 })),
            "{e}"
        );
        assert_eq!(e.seq(), Some(3));
    }

    pub async fn audit_edit_of_filter_column_is_detected(db: &TestDb) {
        append_n(&db.store, 10).await;
        tamper(
            &db.store,
            "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4",
        )
        .await;
        let e = db.store.verify_audit().await.unwrap_err();
        assert!(
            matches!(
                e,
                AuditVerifyError::Column {
                    seq: 4,
                    column: "actor"
                }
            ),
            "{e}"
        );
    }

    pub async fn audit_deleted_middle_entry_is_detected(db: &TestDb) {
        append_n(&db.store, 10).await;
        tamper(&db.store, "DELETE FROM audit_log WHERE seq = 5").await;
        let e = db.store.verify_audit().await.unwrap_err();
        assert!(
            matches!(
                e,
                AuditVerifyError::Chain(ChainError::Sequence {
                    position: 5,
                    found: 6,
                    ..
                })
            ),
            "{e}"
        );
    }

    pub async fn audit_deleted_last_entry_is_detected(db: &TestDb) {
        append_n(&db.store, 10).await;
        tamper(&db.store, "DELETE FROM audit_log WHERE seq = 10").await;
        let e = db.store.verify_audit().await.unwrap_err();
        assert!(
            matches!(
                e,
                AuditVerifyError::Head {
                    head_seq: 10,
                    last_seq: 9
                }
            ),
            "{e}"
        );
        assert_eq!(e.seq(), Some(10));
    }

    pub async fn audit_swapped_entries_are_detected(db: &TestDb) {
        append_n(&db.store, 10).await;
        tamper(
            &db.store,
            "UPDATE audit_log SET seq = -3 WHERE seq = 3; \
             UPDATE audit_log SET seq = 3 WHERE seq = 4; \
             UPDATE audit_log SET seq = 4 WHERE seq = -3;",
        )
        .await;
        let e = db.store.verify_audit().await.unwrap_err();
        assert!(
            matches!(e, AuditVerifyError::Chain(ChainError::Link { seq: 3 })),
            "{e}"
        );
    }

    pub async fn audit_log_refuses_update_and_delete(db: &TestDb) {
        append_n(&db.store, 3).await;
        assert!(db
            .store
            .execute_raw_sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
            .await
            .is_err());
        assert!(db
            .store
            .execute_raw_sql("DELETE FROM audit_log WHERE seq = 3")
            .await
            .is_err());
        assert_eq!(db.store.verify_audit().await.unwrap(), 3);
    }

    pub async fn concurrent_audit_appends_form_one_chain(db: &TestDb) {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let store = db.store.clone();
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..25u64 {
                    let e = store
                        .append_audit(event(&format!("task{t}"), t * 100 + i))
                        .await
                        .unwrap();
                    seqs.push(e.seq);
                }
                seqs
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.extend(t.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
        assert_eq!(db.store.verify_audit().await.unwrap(), 200);
    }

    pub async fn import_loads_world_and_audits_it(db: &TestDb) {
        let world = db.scratch.0.join("world");
        let written = gen::write_world(&world, 8, 96);
        // Ground truth sits beside the record files; the import must not read it.
        std::fs::create_dir_all(world.join("truth")).unwrap();
        std::fs::write(
            world.join("truth").join("criminal.csv"),
            "not,a\nvalid file",
        )
        .unwrap();
        let opts = ImportOptions {
            batch_size: 5,
            progress: false,
        };
        let summary = import_world(&db.store, &world, &opts).await.unwrap();
        assert_eq!(summary.records, 96);
        assert_eq!(summary.records_inserted, 96);
        assert_eq!(summary.agencies, 5);
        assert!(summary.missing_files.is_empty());
        assert_eq!(summary.files.len(), 8);
        for recs in written.values() {
            for r in recs {
                assert_eq!(
                    db.store.get_record(&r.record_id).await.unwrap().as_ref(),
                    Some(r)
                );
            }
        }
        assert_eq!(db.store.list_agencies().await.unwrap().len(), 5);
        let log = db.store.list_audit(0, 10).await.unwrap();
        let kinds: Vec<&AuditAction> = log.iter().map(|e| &e.event.action).collect();
        assert!(matches!(
            kinds[..],
            [
                AuditAction::ImportStarted { .. },
                AuditAction::ImportFinished { records: 96, .. }
            ]
        ));
        assert!(log
            .iter()
            .all(|e| e.event.actor == "system" && e.event.purpose == Purpose::Administration));
        // Importing again stores nothing new.
        let again = import_world(&db.store, &world, &opts).await.unwrap();
        assert_eq!((again.records, again.records_inserted), (96, 0));
        assert_eq!(db.store.count_records().await.unwrap(), 96);
    }

    pub async fn import_failure_names_file_line_column_and_resumes(db: &TestDb) {
        let world = db.scratch.0.join("world");
        let written = gen::write_world(&world, 9, 160);
        let total: usize = written.values().map(Vec::len).sum();
        // Break row 13 of the second file (travel.csv): line 14, after the header.
        let second = RecordSystem::ALL[1];
        let path = world.join(second.file_name());
        let clean = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = clean.lines().map(str::to_string).collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let col = header.iter().position(|h| *h == "date").unwrap();
        let mut cells: Vec<String> = lines[13].split(',').map(str::to_string).collect();
        cells[col] = "2020-13-45".into();
        lines[13] = cells.join(",");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();

        let opts = ImportOptions {
            batch_size: 4,
            progress: false,
        };
        let err = import_world(&db.store, &world, &opts).await.unwrap_err();
        match &err {
            ImportError::Row {
                file,
                line,
                column,
                problem,
            } => {
                assert!(file.ends_with("travel.csv"), "{file}");
                assert_eq!(*line, 14);
                assert_eq!(column, "date");
                assert!(
                    problem.contains("2020-13-45") || problem.contains("month"),
                    "{problem}"
                );
            }
            other => panic!("expected a row error, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("travel.csv") && msg.contains("line 14") && msg.contains("'date'"),
            "{msg}"
        );
        // Whole batches before the bad row stay; nothing after it was stored.
        let partial = db.store.count_records().await.unwrap();
        let first_file = written[&RecordSystem::ALL[0]].len() as u64;
        assert!(partial >= first_file && partial < total as u64, "{partial}");

        std::fs::write(&path, clean).unwrap();
        let summary = import_world(&db.store, &world, &opts).await.unwrap();
        assert_eq!(summary.records, total as u64);
        assert_eq!(summary.records_inserted, total as u64 - partial);
        assert_eq!(db.store.count_records().await.unwrap(), total as u64);
        let counts = db.store.count_records_by_system().await.unwrap();
        for (system, recs) in &written {
            assert_eq!(counts.get(system).copied(), Some(recs.len() as u64));
        }
        let all = scan_all(&db.store, 100).await;
        let mut ids: Vec<&str> = all.iter().map(|(_, r)| r.record_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total);
        assert!(db.store.verify_audit().await.is_ok());
    }

    pub async fn import_reports_missing_column_and_ragged_rows(db: &TestDb) {
        let world = db.scratch.0.join("world");
        gen::write_world(&world, 10, 16);
        let path = world.join(RecordSystem::Benefits.file_name());
        let text = std::fs::read_to_string(&path).unwrap();
        let opts = ImportOptions::default();

        std::fs::write(&path, text.replacen("family_name", "surname", 1)).unwrap();
        let err = import_world(&db.store, &world, &opts).await.unwrap_err();
        assert!(
            matches!(&err, ImportError::MissingColumn { file, column } if file.ends_with("benefits.csv") && column == "family_name"),
            "{err}"
        );

        let mut lines: Vec<&str> = text.lines().collect();
        lines[2] = "BEN-1,only,three";
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let err = import_world(&db.store, &world, &opts).await.unwrap_err();
        assert!(
            matches!(&err, ImportError::Csv { file, line: 3, .. } if file.ends_with("benefits.csv")),
            "{err}"
        );

        let empty = db.scratch.0.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(matches!(
            import_world(&db.store, &empty, &opts).await,
            Err(ImportError::NoFiles { .. })
        ));
    }

    pub async fn reopening_keeps_data_and_reruns_no_migration(db: &TestDb) {
        let recs = gen::records(11, 8);
        db.store.insert_records(&recs).await.unwrap();
        db.store.append_audit(event("bob", 1)).await.unwrap();
        let again = Store::open(&db.url).await.unwrap();
        assert_eq!(again.count_records().await.unwrap(), 8);
        assert_eq!(again.verify_audit().await.unwrap(), 1);
        again.close().await;
    }
}

/// Random records (any Unicode in names and address, NULs included) read back identically.
fn arb_record() -> impl Strategy<Value = SourceRecord> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    (
        any::<u64>(),
        0usize..RecordSystem::ALL.len(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
    )
        .prop_map(
            |(seed, system, given, middle, family, original, region, county)| {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let mut r = gen::record(seed, n, RecordSystem::ALL[system]);
                r.record_id = format!("PROP-{n}-{seed}");
                r.identity.name.given = given;
                r.identity.name.middle = middle;
                r.identity.name.family = family;
                r.identity.name.original = original;
                r.identity.address.region = region;
                r.identity.address.county = county;
                r
            },
        )
}

fn round_trip_property(db: &TestDb, rt: &tokio::runtime::Runtime, cases: u32) {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    runner
        .run(&arb_record(), |r| {
            let got = rt
                .block_on(async {
                    db.store.insert_records(std::slice::from_ref(&r)).await?;
                    db.store.get_record(&r.record_id).await
                })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(got, Some(r));
            Ok(())
        })
        .unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sqlite_random_records_round_trip() {
    let rt = runtime();
    let db = rt.block_on(TestDb::sqlite());
    round_trip_property(&db, &rt, 128);
    rt.block_on(db.finish());
}

#[test]
fn postgres_random_records_round_trip() {
    let rt = runtime();
    let Some(db) = rt.block_on(TestDb::postgres()) else {
        return;
    };
    round_trip_property(&db, &rt, 32);
    rt.block_on(db.finish());
}
