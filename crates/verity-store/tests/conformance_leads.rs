//! Conformance of the NCATC tables (lead runs, leads, parks, dispositions, aggregates): every
//! case runs on SQLite and on PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use common::TestDb;
use verity_model::{RecordBody, RecordSystem};
use verity_store::leads::{
    sweep_key_hash, LeadBatch, LeadDisposition, LeadFilter, NewLead, NewLeadRun, RefreshedLead,
};
use verity_store::{IdKind, Store, StoreError};

conformance!(
    run_batches_resume_and_finish,
    one_open_lead_per_person,
    dispositions_close_leads_and_feed_quality,
    refresh_and_withdraw_touch_only_open_leads,
    dashboard_reads_other_areas_tables,
    status_sweep_rows_are_found_by_key,
    hashed_sweep_keys_agree_with_text_keys,
    text_sweep_keys_move_to_the_hashed_tables,
    identifiers_lead_to_revs_and_heads,
    packed_reads_return_the_stored_records,
);

fn new_run(kind: &str, from_rev: i64) -> NewLeadRun {
    NewLeadRun {
        kind: kind.into(),
        policy_version: "leads-test".into(),
        rules_version: "rules-test".into(),
        started_by: "analyst1".into(),
        from_rev,
        to_rev: 100,
    }
}

fn lead(person: &str, rule: &str, aor: Option<&str>) -> NewLead {
    NewLead {
        person_key: person.into(),
        primary_rule: rule.into(),
        rules: vec![rule.into()],
        status: "final_order_of_removal".into(),
        policy_version: "leads-test".into(),
        aor: aor.map(Into::into),
        identity_probability: 0.995,
        subject_name: format!("SUBJECT {person}"),
        evidence_json: format!("{{\"person\":\"{person}\"}}"),
        subject_keys: vec![format!("F|{person}|19800101")],
    }
}

async fn seed(store: &Store) -> String {
    let run = store
        .start_lead_run(&new_run("full", 0), 1_000)
        .await
        .unwrap();
    let batch = LeadBatch {
        new_leads: vec![
            lead("P1", "final_order_not_executed", Some("NYC")),
            lead("P2", "final_order_not_executed", Some("NYC")),
            lead("P3", "in_absentia_order", None),
        ],
        parks: vec![(
            "P4".into(),
            vec!["final_order_not_executed".into()],
            "deceased".into(),
            "recorded as deceased".into(),
        )],
        ..LeadBatch::default()
    };
    store
        .save_lead_batch(&run.run_id, &batch, "P4", "{\"leads\":3}", 2_000)
        .await
        .unwrap();
    run.run_id
}

mod cases {
    use super::*;

    pub async fn run_batches_resume_and_finish(db: &TestDb) {
        let s = &db.store;
        assert!(s.latest_lead_run("running").await.unwrap().is_none());
        let bad = s.start_lead_run(&new_run("weekly", 0), 1).await;
        assert!(matches!(bad, Err(StoreError::Invalid(_))));
        let run_id = seed(s).await;
        assert_eq!(run_id, "LR000001");
        let running = s.latest_lead_run("running").await.unwrap().unwrap();
        assert_eq!(running.cursor_key.as_deref(), Some("P4"));
        assert_eq!(running.stats_json, "{\"leads\":3}");
        // A resumed run may repeat its last batch: nothing doubles.
        let again = LeadBatch {
            new_leads: vec![lead("P1", "final_order_not_executed", Some("NYC"))],
            ..LeadBatch::default()
        };
        s.save_lead_batch(&run_id, &again, "P4", "{}", 3_000)
            .await
            .unwrap();
        let all = s
            .list_leads(&LeadFilter {
                limit: 100,
                ..LeadFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(s.lead_parks(&run_id, 10).await.unwrap().len(), 1);
        s.finish_lead_run(&run_id, "finished", "{\"done\":true}", 4_000)
            .await
            .unwrap();
        let done = s.latest_lead_run("finished").await.unwrap().unwrap();
        assert_eq!(done.finished_micros, Some(4_000));
        assert!(s.latest_lead_run("running").await.unwrap().is_none());
        // A finished run takes no more batches and cannot finish twice.
        assert!(s
            .save_lead_batch(&run_id, &again, "P9", "{}", 5_000)
            .await
            .is_err());
        assert!(s
            .finish_lead_run(&run_id, "failed", "{}", 5_000)
            .await
            .is_err());
        let second = s
            .start_lead_run(&new_run("incremental", 100), 6_000)
            .await
            .unwrap();
        assert_eq!(second.run_id, "LR000002");
        assert_eq!(s.lead_runs(10).await.unwrap()[0].run_id, "LR000002");
    }

    pub async fn one_open_lead_per_person(db: &TestDb) {
        let s = &db.store;
        seed(s).await;
        let run2 = s
            .start_lead_run(&new_run("incremental", 100), 5_000)
            .await
            .unwrap();
        let dup = LeadBatch {
            new_leads: vec![lead("P1", "in_absentia_order", None)],
            ..LeadBatch::default()
        };
        s.save_lead_batch(&run2.run_id, &dup, "P1", "{}", 6_000)
            .await
            .unwrap();
        let open = s.open_leads_for(&["P1".to_string()]).await.unwrap();
        assert_eq!(open.len(), 1, "still one open lead on P1");
        assert_eq!(open[0].run_id, "LR000001");
        let keys = s.open_lead_keys().await.unwrap();
        assert_eq!(
            keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["P1", "P2", "P3"]
        );
    }

    pub async fn dispositions_close_leads_and_feed_quality(db: &TestDb) {
        let s = &db.store;
        let run = seed(s).await;
        let id1 = verity_store::leads::lead_id_for(&run, "P1");
        let id2 = verity_store::leads::lead_id_for(&run, "P2");
        let l = s
            .record_lead_disposition(
                &id1,
                LeadDisposition::Arrested,
                "officer1",
                "at home",
                7_000,
            )
            .await
            .unwrap();
        assert_eq!(l.state, "closed");
        assert_eq!(l.disposition.as_deref(), Some("arrested"));
        assert_eq!(l.disposition_by.as_deref(), Some("officer1"));
        let again = s
            .record_lead_disposition(&id1, LeadDisposition::Referred, "officer1", "", 8_000)
            .await;
        assert!(matches!(again, Err(StoreError::NotFound { .. })));
        s.record_lead_disposition(
            &id2,
            LeadDisposition::UsCitizen,
            "officer2",
            "passport shown",
            9_000,
        )
        .await
        .unwrap();
        let q = s.lead_quality().await.unwrap();
        assert_eq!(q.len(), 2);
        let nyc = q.iter().find(|r| r.aor.as_deref() == Some("NYC")).unwrap();
        assert_eq!((nyc.leads, nyc.open, nyc.disposed()), (2, 0, 2));
        assert_eq!(nyc.bad_share(), Some(0.5));
        let analyst = q.iter().find(|r| r.aor.is_none()).unwrap();
        assert_eq!(
            (analyst.rule.as_str(), analyst.open),
            ("in_absentia_order", 1)
        );
        let queues = s.open_lead_queues().await.unwrap();
        assert_eq!(queues, vec![(None, 1)]);
        let nyc_queue = s
            .list_leads(&LeadFilter {
                aor: Some(Some("NYC".into())),
                state: Some("open".into()),
                limit: 10,
                ..LeadFilter::default()
            })
            .await
            .unwrap();
        assert!(nyc_queue.is_empty());
        let analyst_queue = s
            .list_leads(&LeadFilter {
                aor: Some(None),
                limit: 10,
                ..LeadFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(analyst_queue.len(), 1);
        assert_eq!(analyst_queue[0].identity_probability, 0.995);
    }

    pub async fn refresh_and_withdraw_touch_only_open_leads(db: &TestDb) {
        let s = &db.store;
        let run = seed(s).await;
        s.finish_lead_run(&run, "finished", "{}", 3_000)
            .await
            .unwrap();
        let id1 = verity_store::leads::lead_id_for(&run, "P1");
        let id2 = verity_store::leads::lead_id_for(&run, "P2");
        s.record_lead_disposition(&id2, LeadDisposition::NotLocated, "o", "", 3_500)
            .await
            .unwrap();
        let run2 = s
            .start_lead_run(&new_run("incremental", 100), 4_000)
            .await
            .unwrap();
        let refreshed = |lead_id: &str, evidence: &str, key: &str| RefreshedLead {
            lead_id: lead_id.to_string(),
            evidence_json: evidence.to_string(),
            subject_keys: vec![key.to_string()],
        };
        let batch = LeadBatch {
            refreshed: vec![
                refreshed(&id1, "{\"fresh\":1}", "F|ALIAS|19800101"),
                refreshed(&id2, "{\"fresh\":2}", "F|CLOSED|19800101"),
            ],
            withdrawn: vec![(id2.clone(), "citizenship indicia".into())],
            ..LeadBatch::default()
        };
        s.save_lead_batch(&run2.run_id, &batch, "P2", "{}", 5_000)
            .await
            .unwrap();
        // A refreshed open lead gains its subject's new keys; a closed one gains none.
        let keys = s.open_lead_subject_keys().await.unwrap();
        assert!(keys
            .iter()
            .any(|(lead, _, k)| *lead == id1 && k == "F|ALIAS|19800101"));
        assert!(keys.iter().all(|(_, _, k)| k != "F|CLOSED|19800101"));
        let l1 = s.get_lead(&id1).await.unwrap().unwrap();
        assert_eq!(
            (l1.evidence_json.as_str(), l1.checked_run_id.as_str()),
            ("{\"fresh\":1}", "LR000002")
        );
        let l2 = s.get_lead(&id2).await.unwrap().unwrap();
        assert_eq!(l2.state, "closed", "a closed lead is not withdrawn");
        let batch = LeadBatch {
            withdrawn: vec![(id1.clone(), "now in ICE custody".into())],
            ..LeadBatch::default()
        };
        s.save_lead_batch(&run2.run_id, &batch, "P3", "{}", 6_000)
            .await
            .unwrap();
        let l1 = s.get_lead(&id1).await.unwrap().unwrap();
        assert_eq!(
            (l1.state.as_str(), l1.withdrawn_reason.as_deref()),
            ("withdrawn", Some("now in ICE custody"))
        );
        assert!(s.get_lead("nope").await.unwrap().is_none());
        // The open leads' subject keys: open leads only.
        let wanted = ["F|P3|19800101", "F|P1|19800101", "F|X|1"];
        let mut in_memory: Vec<(String, String)> = s
            .open_lead_subject_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, _, k)| wanted.contains(&k.as_str()))
            .map(|(lead, person, _)| (lead, person))
            .collect();
        in_memory.dedup();
        assert_eq!(
            in_memory,
            vec![(
                verity_store::leads::lead_id_for(&run, "P3"),
                "P3".to_string()
            )]
        );
        s.add_citizen_keys(&["F|P3|19800101".into(), "F|P3|19800101".into()])
            .await
            .unwrap();
        let among = s
            .citizen_keys_among(&["F|P3|19800101".into(), "F|P9|1".into()])
            .await
            .unwrap();
        assert_eq!(
            among.into_iter().collect::<Vec<_>>(),
            vec!["F|P3|19800101".to_string()]
        );
    }

    pub async fn dashboard_reads_other_areas_tables(db: &TestDb) {
        let s = &db.store;
        let day = 86_400_000_000i64;
        s.execute_raw_sql(&format!(
            "INSERT INTO queries (query_id, ori, message_id, channel, received_micros, in_custody, iaq_json, state, automatic, answered_micros, updated_micros) VALUES \
             ('q1', 'MD0030000', 'm1', 'json', {d}, {t}, '{{}}', 'answered', {t}, {a1}, 0), \
             ('q2', 'MD0030000', 'm2', 'json', {d}, {f}, '{{}}', 'answered', {f}, {a2}, 0), \
             ('q3', 'MD0030000', 'm3', 'json', {d2}, {f}, '{{}}', 'in_review', NULL, NULL, 0)",
            d = day,
            d2 = 2 * day,
            a1 = day + 500_000,
            a2 = day + 120_000_000,
            t = if s.kind() == verity_store::BackendKind::Sqlite { "1" } else { "TRUE" },
            f = if s.kind() == verity_store::BackendKind::Sqlite { "0" } else { "FALSE" },
        ))
        .await
        .unwrap();
        let d = s.dashboard_data(30).await.unwrap();
        assert_eq!(d.query_days.len(), 2);
        assert_eq!(d.query_days[0].day, 1);
        assert_eq!(
            (
                d.query_days[0].received,
                d.query_days[0].answered_automatic,
                d.query_days[0].answered_reviewed
            ),
            (2, 1, 1)
        );
        let mean = d.query_days[0].mean_response_seconds.unwrap();
        assert!((mean - 60.25).abs() < 1e-6, "{mean}");
        assert_eq!(d.response_buckets[0], ("< 1 s".to_string(), 1));
        assert_eq!(d.response_buckets[3], ("1-10 min".to_string(), 1));
        assert_eq!(d.queue_depth, vec![("in_review".to_string(), 1)]);
        // PERC's tables exist in this schema but hold nothing yet.
        assert_eq!(d.detainer_outcomes, Some(vec![]));
        assert!(s
            .persons_with_active_detainer(&["P1".into()])
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn status_sweep_rows_are_found_by_key(db: &TestDb) {
        let s = &db.store;
        let row = |k: &str, id: &str| (k.to_string(), id.to_string());
        s.add_status_keys(&[
            row("S|ANA|LOPEZ|19800102|", "ENF-2"),
            row("S|ANA|LOPEZ|19800102|", "ENF-1"),
            row("S|ANA|LOPEZ|19800201|", "ENF-1"),
            row("S|ANA|LOPEZB|19800102|", "TRV-9"),
        ])
        .await
        .unwrap();
        // Idempotent: a resumed run may add the same rows again.
        s.add_status_keys(&[row("S|ANA|LOPEZ|19800102|", "ENF-2")])
            .await
            .unwrap();
        let found = s
            .status_key_holders(&["S|ANA|LOPEZ|19800102|".into(), "S|NOBODY|X|1|".into()])
            .await
            .unwrap();
        // Equality, not a prefix: the longer family name's row is not found.
        assert_eq!(
            found,
            vec![
                row("S|ANA|LOPEZ|19800102|", "ENF-1"),
                row("S|ANA|LOPEZ|19800102|", "ENF-2"),
            ]
        );
        // Status rows do not count as citizenship evidence.
        assert!(s
            .citizen_keys_among(&["S|ANA|LOPEZ|19800102|".into()])
            .await
            .unwrap()
            .is_empty());
    }

    pub async fn hashed_sweep_keys_agree_with_text_keys(db: &TestDb) {
        let s = &db.store;
        let h = sweep_key_hash;
        // Added by hash, found by text, and the other way round; idempotent.
        s.add_citizen_key_hashes(&[h("F|LOPEZ|19800102"), h("F|LOPEZ|19800102")])
            .await
            .unwrap();
        s.add_citizen_keys(&["G|ANA|19800102".into()])
            .await
            .unwrap();
        let among = s
            .citizen_keys_among(&[
                "F|LOPEZ|19800102".into(),
                "G|ANA|19800102".into(),
                "F|LOPEZ|19800103".into(),
            ])
            .await
            .unwrap();
        assert_eq!(among.len(), 2, "{among:?}");
        assert!(!among.contains("F|LOPEZ|19800103"));
        let hashes = s
            .citizen_hashes_among(&[h("G|ANA|19800102"), h("F|X|19700101")])
            .await
            .unwrap();
        assert_eq!(
            hashes.into_iter().collect::<Vec<_>>(),
            vec![h("G|ANA|19800102")]
        );

        let key = "S|ANA|LOPEZ|19800102|";
        s.add_status_key_hashes(&[(h(key), "ENF-2".into()), (h(key), "ENF-1".into())])
            .await
            .unwrap();
        s.add_status_keys(&[
            (key.into(), "ENF-1".into()),
            ("S|B|C|19900101|".into(), "TRV-1".into()),
        ])
        .await
        .unwrap();
        assert_eq!(
            s.status_hash_holders(&[h(key), h("S|NOBODY|X|19700101|")])
                .await
                .unwrap(),
            vec![(h(key), "ENF-1".to_string()), (h(key), "ENF-2".to_string())]
        );
        assert_eq!(
            s.status_key_holders(&[key.into(), "S|B|C|19900101|".into()])
                .await
                .unwrap(),
            vec![
                (key.to_string(), "ENF-1".to_string()),
                (key.to_string(), "ENF-2".to_string()),
                ("S|B|C|19900101|".to_string(), "TRV-1".to_string()),
            ]
        );
        // The two sweeps stay apart.
        assert!(s.citizen_hashes_among(&[h(key)]).await.unwrap().is_empty());
    }

    pub async fn text_sweep_keys_move_to_the_hashed_tables(db: &TestDb) {
        let s = &db.store;
        // A store written before migration 0007: keys in the text tables, more status rows
        // than one page of the move.
        s.execute_raw_sql(
            "INSERT INTO lead_citizen_keys (citizen_key) VALUES ('F|LOPEZ|19800102'), ('G|ANA|19800102')",
        )
        .await
        .unwrap();
        s.execute_raw_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25000) \
             INSERT INTO lead_status_keys (status_key, record_id) \
             SELECT 'S|A|B|' || CAST(i AS TEXT) || '|', 'ENF-' || CAST(i AS TEXT) FROM n",
        )
        .await
        .unwrap();
        // Not found until moved.
        assert!(s
            .citizen_keys_among(&["F|LOPEZ|19800102".into()])
            .await
            .unwrap()
            .is_empty());
        assert_eq!(s.move_text_sweep_keys().await.unwrap(), 25_002);
        assert_eq!(s.move_text_sweep_keys().await.unwrap(), 0);
        assert_eq!(
            s.citizen_keys_among(&["F|LOPEZ|19800102".into(), "G|ANA|19800102".into()])
                .await
                .unwrap()
                .len(),
            2
        );
        for i in [1, 19_999, 20_000, 20_001, 25_000] {
            let key = format!("S|A|B|{i}|");
            assert_eq!(
                s.status_key_holders(std::slice::from_ref(&key))
                    .await
                    .unwrap(),
                vec![(key, format!("ENF-{i}"))]
            );
        }
        // The text tables are empty.
        assert_eq!(
            s.execute_raw_sql("DELETE FROM lead_citizen_keys")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            s.execute_raw_sql("DELETE FROM lead_status_keys")
                .await
                .unwrap(),
            0
        );
    }

    pub async fn identifiers_lead_to_revs_and_heads(db: &TestDb) {
        use common::gen::record;
        use verity_model::{ANumber, Fin, Identifiers};
        let s = &db.store;
        let a = ANumber::parse("012345678").unwrap();
        let f = Fin::parse("1234567890").unwrap();
        let only = |ids: Identifiers, mut r: verity_model::SourceRecord| {
            r.identity.ids = ids;
            r
        };
        let enf = only(
            Identifiers {
                a_number: Some(a.clone()),
                ..Identifiers::default()
            },
            record(5, 1, RecordSystem::Enforcement),
        );
        // A fingerprint enrollment whose identity carries the A-number but no FIN: its FIN
        // is in the body only.
        let mut bio = only(
            Identifiers {
                a_number: Some(a.clone()),
                ..Identifiers::default()
            },
            record(5, 2, RecordSystem::Biometrics),
        );
        if let RecordBody::Biometrics(b) = &mut bio.body {
            b.fin = f.clone();
        }
        let ben = only(
            Identifiers {
                fin: Some(f.clone()),
                ..Identifiers::default()
            },
            record(5, 3, RecordSystem::Benefits),
        );
        let other = only(
            Identifiers {
                fin: Fin::parse("9999999999").ok(),
                ..Identifiers::default()
            },
            record(5, 4, RecordSystem::Travel),
        );
        s.insert_records(&[enf.clone(), bio.clone(), ben.clone(), other])
            .await
            .unwrap();
        let ids_of = |heads: &[verity_store::leads::RecordHead]| {
            let mut ids: Vec<String> = heads.iter().map(|h| h.record_id.clone()).collect();
            ids.sort();
            ids
        };
        let by_a = s
            .revs_by_identifiers(IdKind::ANumber, &[a.to_string(), "A0".into()])
            .await
            .unwrap();
        let heads = s.record_heads_by_revs(&by_a).await.unwrap();
        assert_eq!(
            ids_of(&heads),
            vec![bio.record_id.clone(), enf.record_id.clone()]
        );
        // A FIN finds the enrollment holding it in its body too.
        let by_fin = s
            .revs_by_identifiers(IdKind::Fin, &[f.to_string()])
            .await
            .unwrap();
        let heads = s.record_heads_by_revs(&by_fin).await.unwrap();
        assert_eq!(
            ids_of(&heads),
            vec![ben.record_id.clone(), bio.record_id.clone()]
        );
        for h in &heads {
            if h.record_id == bio.record_id {
                assert_eq!(h.system, "biometrics");
                assert_eq!(h.a_number.as_deref(), Some(a.to_string().as_str()));
                assert_eq!(h.fin, None);
                let json = h.biometrics_json.as_deref().unwrap();
                let decoded: verity_model::SourceRecord = serde_json::from_str(json).unwrap();
                assert_eq!(decoded, bio);
            } else {
                assert_eq!(h.fin.as_deref(), Some(f.to_string().as_str()));
                assert_eq!(h.biometrics_json, None);
            }
        }
        assert!(s
            .revs_by_identifiers(IdKind::Fin, &["not a fin".into()])
            .await
            .unwrap()
            .is_empty());
        assert!(s.record_heads_by_revs(&[]).await.unwrap().is_empty());
    }

    pub async fn packed_reads_return_the_stored_records(db: &TestDb) {
        use common::gen::records;
        use verity_store::scan::LeadFacets;
        let s = &db.store;
        let mut all = records(17, 300);
        // Ids with a space and non-ASCII letters: the packed read frames by byte lengths.
        all[0].record_id = "ENF \u{e9}t\u{e9} 1".into();
        all[1].record_id = "BIO-\u{4e00}-2".into();
        s.insert_records(&all).await.unwrap();
        let inserted: std::collections::HashMap<&str, &verity_model::SourceRecord> =
            all.iter().map(|r| (r.record_id.as_str(), r)).collect();
        let head = s.max_record_rev().await.unwrap();
        let mut revs: Vec<i64> = (1..=head).collect();
        // Absent revs are skipped.
        revs.push(head + 1_000);
        let rows = s.records_by_revs(&revs).await.unwrap();
        assert_eq!(rows.len(), all.len());
        assert!(rows.windows(2).all(|w| w[0].rev < w[1].rev));
        for r in &rows {
            assert_eq!(&r.decode().unwrap(), inserted[r.record_id.as_str()]);
        }
        let some: Vec<i64> = rows.iter().step_by(3).map(|r| r.rev).rev().collect();
        let want: Vec<_> = rows.iter().step_by(3).cloned().collect();
        assert_eq!(s.records_by_revs(&some).await.unwrap(), want);
        assert!(s.records_by_revs(&[]).await.unwrap().is_empty());
        assert!(s.records_by_revs(&[head + 1]).await.unwrap().is_empty());
        // Pages by rev range: the same records, in rev order.
        for (after, to, limit) in [
            (0, head, 1_000),
            (10, head, 50),
            (10, 30, 50),
            (head - 3, head, 10),
            (head, head, 10),
            (0, head, 0),
        ] {
            let want: Vec<_> = rows
                .iter()
                .filter(|r| r.rev > after && r.rev <= to)
                .take(limit as usize)
                .cloned()
                .collect();
            assert_eq!(
                s.scan_record_json(after, to, limit).await.unwrap(),
                want,
                "after {after}, to {to}, limit {limit}"
            );
        }
        // Every inserted record is in a digest chunk (its sweep keys are stored).
        let spans = s.digest_spans(0, head).await.unwrap();
        for rev in 1..=head {
            assert!(
                spans.iter().any(|(a, b)| *a <= rev && rev <= *b),
                "rev {rev} in {spans:?}"
            );
        }
        assert_eq!(s.digest_spans(head, head + 10).await.unwrap(), vec![]);
        assert_eq!(s.digest_spans(5, 7).await.unwrap().len(), 1);

        // Links hold the head's identifier columns and a fingerprint enrollment's body FIN.
        let heads = s.record_heads_by_revs(&revs).await.unwrap();
        let links = s.record_links_by_revs(&revs).await.unwrap();
        assert_eq!(links.len(), heads.len());
        let mut enrollments = 0;
        for (l, h) in links.iter().zip(&heads) {
            assert_eq!(
                (
                    l.rev,
                    &l.record_id,
                    &l.system,
                    &l.a_number,
                    &l.fin,
                    &l.fbi_number,
                    &l.ssn,
                    &l.passport,
                    &l.state_id
                ),
                (
                    h.rev,
                    &h.record_id,
                    &h.system,
                    &h.a_number,
                    &h.fin,
                    &h.fbi_number,
                    &h.ssn,
                    &h.passport,
                    &h.state_id
                )
            );
            match &h.biometrics_json {
                Some(json) => {
                    enrollments += 1;
                    let r: verity_model::SourceRecord = serde_json::from_str(json).unwrap();
                    let RecordBody::Biometrics(b) = &r.body else {
                        panic!("{} is not an enrollment", r.record_id)
                    };
                    assert_eq!(l.body_fin.as_deref(), Some(b.fin.to_string().as_str()));
                }
                None => assert_eq!(l.body_fin, None, "{}", l.record_id),
            }
        }
        assert!(enrollments > 10, "{enrollments} enrollments");
        // Links carry each record's lead facets, as its digest holds them.
        let mut faceted = 0;
        for (l, r) in links.iter().zip(&rows) {
            assert_eq!(l.rev, r.rev);
            let facets = LeadFacets::of(&r.decode().unwrap());
            faceted += usize::from(facets != LeadFacets::default());
            assert_eq!(l.facets, facets, "{}", l.record_id);
        }
        assert!(faceted > 30, "{faceted} records with facets");
        assert!(s.record_links_by_revs(&[]).await.unwrap().is_empty());

        // One statement for all kinds finds what the per-kind look-ups find.
        let mut sets: Vec<(IdKind, Vec<String>)> = Vec::new();
        let mut expected: Vec<i64> = Vec::new();
        for kind in [
            IdKind::ANumber,
            IdKind::Fin,
            IdKind::FbiNumber,
            IdKind::Passport,
            IdKind::Ssn,
            IdKind::StateId,
        ] {
            let column = |h: &verity_store::leads::RecordHead| match kind {
                IdKind::ANumber => h.a_number.clone(),
                IdKind::Fin => h.fin.clone(),
                IdKind::FbiNumber => h.fbi_number.clone(),
                IdKind::Passport => h.passport.clone(),
                IdKind::Ssn => h.ssn.clone(),
                _ => h.state_id.clone(),
            };
            let mut values: Vec<String> = heads.iter().step_by(7).filter_map(column).collect();
            if kind == IdKind::Fin {
                values.extend(links.iter().step_by(3).filter_map(|l| l.body_fin.clone()));
            }
            values.push("not an identifier".into());
            expected.extend(s.revs_by_identifiers(kind, &values).await.unwrap());
            sets.push((kind, values));
        }
        expected.sort_unstable();
        expected.dedup();
        assert!(expected.len() > 20, "{} revs", expected.len());
        assert_eq!(s.revs_by_identifier_sets(&sets).await.unwrap(), expected);
        assert!(s.revs_by_identifier_sets(&[]).await.unwrap().is_empty());
        assert!(s
            .revs_by_identifier_sets(&[(IdKind::Ssn, vec!["x".into()])])
            .await
            .unwrap()
            .is_empty());

        // Sweep look-ups keep every 64-bit hash, the extremes included.
        let extremes = [i64::MIN, -1, 0, 1, i64::MAX, sweep_key_hash("F|A|19800101")];
        s.add_citizen_key_hashes(&extremes).await.unwrap();
        let mut asked = extremes.to_vec();
        asked.push(42);
        let found: Vec<i64> = s
            .citizen_hashes_among(&asked)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let mut want = extremes.to_vec();
        want.sort_unstable();
        assert_eq!(found, want);
        let rows: Vec<(i64, String)> = extremes
            .iter()
            .map(|h| (*h, format!("ENF \u{e9} {h}")))
            .collect();
        s.add_status_key_hashes(&rows).await.unwrap();
        let mut want = rows.clone();
        want.sort();
        assert_eq!(s.status_hash_holders(&asked).await.unwrap(), want);
        assert!(s.status_hash_holders(&[]).await.unwrap().is_empty());
        assert!(s.citizen_hashes_among(&[]).await.unwrap().is_empty());
    }
}
