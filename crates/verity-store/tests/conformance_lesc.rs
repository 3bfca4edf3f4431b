//! LESC store conformance: queries (idempotent intake, compare-and-set processing and issue),
//! deliveries, query events, recovery listing and NCIC hit requests, on both backends.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

conformance!(
    insert_query_is_idempotent_by_ori_and_message_id,
    processing_is_compare_and_set,
    issue_writes_deliveries_and_event_once,
    concurrent_issuers_cannot_both_succeed,
    deliveries_page_per_recipient_and_mark_fetched,
    events_append_in_order_and_need_a_query,
    received_queries_are_listed_for_recovery,
    hits_insert_escalate_answer_and_measure,
    nul_text_is_refused,
    decided_intake_stores_everything_in_one_step,
    decided_intake_for_review_and_repeats,
    concurrent_decided_intakes_keep_one_audit_chain,
);

mod cases {
    use crate::common::TestDb;
    use verity_model::{AuditAction, AuditEvent, Purpose};
    use verity_store::queries::{
        CasOutcome, DecidedIntake, InsertOutcome, IssueIar, NewDelivery, NewHit, NewQuery,
        Processing,
    };
    use verity_store::StoreError;

    fn decision_event(subject: &str, decision: &str) -> AuditEvent {
        AuditEvent {
            actor: "agency:MD0030000".into(),
            agency: None,
            purpose: Purpose::StatusDetermination,
            action: AuditAction::Decision {
                subject: subject.into(),
                decision: decision.into(),
                reason: "test".into(),
            },
        }
    }

    fn decided(id: &str, msg: &str, automatic: bool) -> DecidedIntake {
        let mut p = processing();
        p.automatic = automatic;
        DecidedIntake {
            query: query(id, "MD0030000", msg, 1_000),
            received: decision_event(&format!("query:{id}"), "query received"),
            processing: p,
            issue: automatic.then(|| {
                (
                    issue("automatic"),
                    decision_event(&format!("query:{id}"), "IAR issued: lpr"),
                )
            }),
        }
    }

    pub async fn decided_intake_stores_everything_in_one_step(db: &TestDb) {
        let s = &db.store;
        let (audit_before, _) = s.audit_head().await.unwrap();
        let InsertOutcome::Inserted(row) = s
            .insert_decided_query(&decided("Q1", "m-1", true))
            .await
            .unwrap()
        else {
            panic!("a new message id inserts")
        };
        // The same row the three-step path (insert, record, issue) leaves.
        assert_eq!((row.state.as_str(), row.version), ("answered", 2));
        assert_eq!(row.automatic, Some(true));
        assert_eq!(row.answered_by.as_deref(), Some("automatic"));
        assert_eq!(row.status.as_deref(), Some("lpr"));
        assert_eq!(row.received_micros, 1_000);
        let d = s.deliveries_of_query("Q1").await.unwrap();
        assert_eq!(d.len(), 2);
        // The acknowledgement carries the agency's copy: fetched at issue; the field office's not.
        assert_eq!(
            (d[0].recipient_kind.as_str(), d[0].fetched_micros),
            ("agency", Some(3_000))
        );
        assert_eq!(
            (d[1].recipient_kind.as_str(), d[1].fetched_micros),
            ("field_office", None)
        );
        let kinds: Vec<String> = s
            .query_events("Q1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["processed", "issue"]);
        // Receipt and issue audited, in that order, on an intact chain.
        let (audit_after, _) = s.audit_head().await.unwrap();
        assert_eq!(audit_after, audit_before + 2);
        let entries = s.list_audit(audit_before, 10).await.unwrap();
        let decisions: Vec<String> = entries
            .iter()
            .map(|e| match &e.event.action {
                AuditAction::Decision { decision, .. } => decision.clone(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(decisions, ["query received", "IAR issued: lpr"]);
        assert_eq!(s.verify_audit().await.unwrap(), audit_after);
        // Answered: neither reprocessed nor issued again.
        assert!(matches!(
            s.record_processing("Q1", 2, &processing()).await.unwrap(),
            CasOutcome::Stale(_)
        ));
        assert!(matches!(
            s.issue_iar("Q1", 2, &issue("bob")).await.unwrap(),
            CasOutcome::Stale(_)
        ));
    }

    pub async fn decided_intake_for_review_and_repeats(db: &TestDb) {
        let s = &db.store;
        let (audit_before, _) = s.audit_head().await.unwrap();
        let InsertOutcome::Inserted(row) = s
            .insert_decided_query(&decided("Q1", "m-1", false))
            .await
            .unwrap()
        else {
            panic!("a new message id inserts")
        };
        assert_eq!((row.state.as_str(), row.version), ("in_review", 1));
        assert!(s.deliveries_of_query("Q1").await.unwrap().is_empty());
        assert_eq!(s.audit_head().await.unwrap().0, audit_before + 1);
        // A repeat (even decided differently) stores nothing and returns the first query.
        let again = s
            .insert_decided_query(&decided("Q2", "m-1", true))
            .await
            .unwrap();
        assert!(again.is_duplicate());
        assert_eq!(again.row(), &row);
        assert!(s.get_query("Q2").await.unwrap().is_none());
        assert!(s.deliveries_of_query("Q1").await.unwrap().is_empty());
        assert_eq!(s.audit_head().await.unwrap().0, audit_before + 1);
        // A repeat of a query stored the three-step way is a repeat too.
        s.insert_query(&query("Q3", "MD0030000", "m-3", 1_000))
            .await
            .unwrap();
        assert!(s
            .insert_decided_query(&decided("Q4", "m-3", true))
            .await
            .unwrap()
            .is_duplicate());
        // Refused before anything is written.
        let mut bad = decided("Q5", "m-5", true);
        bad.processing.state = "received".into();
        assert!(matches!(
            s.insert_decided_query(&bad).await,
            Err(StoreError::Invalid(_))
        ));
        let mut bad = decided("Q5", "m-5", true);
        bad.query.iaq_json = "nul\0".into();
        assert!(matches!(
            s.insert_decided_query(&bad).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(s.get_query("Q5").await.unwrap().is_none());
        assert_eq!(s.verify_audit().await.unwrap(), audit_before + 1);
    }

    pub async fn concurrent_decided_intakes_keep_one_audit_chain(db: &TestDb) {
        let s = &db.store;
        let (audit_before, _) = s.audit_head().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                // Every pair shares a message id: one of each pair stores, the other repeats.
                let d = decided(&format!("Q{i}"), &format!("m-{}", i / 2), i % 3 != 0);
                s.insert_decided_query(&d).await.unwrap().is_duplicate()
            }));
        }
        let mut repeats = 0;
        for t in tasks {
            repeats += usize::from(t.await.unwrap());
        }
        assert_eq!(repeats, 8);
        let head = s.verify_audit().await.unwrap();
        assert!(head > audit_before);
        assert_eq!(head, s.audit_head().await.unwrap().0);
    }

    fn query(id: &str, ori: &str, msg: &str, at: i64) -> NewQuery {
        NewQuery {
            query_id: id.into(),
            ori: ori.into(),
            message_id: msg.into(),
            channel: "json".into(),
            received_micros: at,
            in_custody: true,
            aor: Some("Baltimore".into()),
            iaq_json: format!("{{\"message_id\":\"{msg}\"}}"),
            raw_text: None,
        }
    }

    fn processing() -> Processing {
        Processing {
            state: "in_review".into(),
            automatic: false,
            citizenship_review: true,
            status: Some("potential_us_citizen".into()),
            person_key: Some("P1".into()),
            result_json: "{\"candidates\":[]}".into(),
            at_micros: 2_000,
            actor: "engine".into(),
        }
    }

    fn issue(by: &str) -> IssueIar {
        IssueIar {
            iar_json: format!("{{\"decided_by\":\"{by}\"}}"),
            answered_by: by.into(),
            answered_micros: 3_000,
            status: Some("lpr".into()),
            person_key: Some("P1".into()),
            deliveries: vec![
                NewDelivery {
                    recipient_kind: "agency".into(),
                    recipient: "MD0030000".into(),
                    view_json: "{\"view\":\"agency\"}".into(),
                    nlets_text: Some("IAR.MD0030000.VTICE0900.\nTXT\n".into()),
                },
                NewDelivery {
                    recipient_kind: "field_office".into(),
                    recipient: "Baltimore".into(),
                    view_json: "{\"view\":\"full\"}".into(),
                    nlets_text: None,
                },
            ],
            event_detail_json: "{}".into(),
        }
    }

    pub async fn insert_query_is_idempotent_by_ori_and_message_id(db: &TestDb) {
        let s = &db.store;
        let first = s
            .insert_query(&query("Q1", "MD0030000", "m-1", 1_000))
            .await
            .unwrap();
        let InsertOutcome::Inserted(row) = first else {
            panic!("first insert must insert")
        };
        assert_eq!((row.state.as_str(), row.version), ("received", 0));
        assert!(row.in_custody);
        assert_eq!(row.aor.as_deref(), Some("Baltimore"));
        // Same ORI and message id, new query id: the first row comes back.
        let again = s
            .insert_query(&query("Q2", "MD0030000", "m-1", 9_000))
            .await
            .unwrap();
        assert!(again.is_duplicate());
        assert_eq!(again.row().query_id, "Q1");
        assert_eq!(again.row().received_micros, 1_000);
        assert!(s.get_query("Q2").await.unwrap().is_none());
        // Another agency may use the same message id.
        let other = s
            .insert_query(&query("Q3", "VA0010000", "m-1", 1_000))
            .await
            .unwrap();
        assert!(!other.is_duplicate());
        assert_eq!(s.get_query("Q1").await.unwrap().unwrap(), row);
        assert_eq!(
            s.get_query_by_message("VA0010000", "m-1")
                .await
                .unwrap()
                .unwrap()
                .query_id,
            "Q3"
        );
    }

    pub async fn processing_is_compare_and_set(db: &TestDb) {
        let s = &db.store;
        s.insert_query(&query("Q1", "MD0030000", "m-1", 1_000))
            .await
            .unwrap();
        let CasOutcome::Applied(row) = s.record_processing("Q1", 0, &processing()).await.unwrap()
        else {
            panic!("version 0 is current")
        };
        assert_eq!(row.state, "in_review");
        assert_eq!(row.version, 1);
        assert_eq!(row.automatic, Some(false));
        assert!(row.citizenship_review);
        assert_eq!(row.status.as_deref(), Some("potential_us_citizen"));
        assert_eq!(row.result_json.as_deref(), Some("{\"candidates\":[]}"));
        // A stale version changes nothing.
        let stale = s.record_processing("Q1", 0, &processing()).await.unwrap();
        assert!(matches!(stale, CasOutcome::Stale(r) if r.version == 1));
        let events = s.query_events("Q1").await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].kind.as_str(), events[0].actor.as_str()),
            ("processed", "engine")
        );
        // Unknown query, bad state.
        assert!(matches!(
            s.record_processing("nope", 0, &processing()).await,
            Err(StoreError::NotFound { .. })
        ));
        let mut bad = processing();
        bad.state = "received".into();
        assert!(matches!(
            s.record_processing("Q1", 1, &bad).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub async fn issue_writes_deliveries_and_event_once(db: &TestDb) {
        let s = &db.store;
        s.insert_query(&query("Q1", "MD0030000", "m-1", 1_000))
            .await
            .unwrap();
        s.record_processing("Q1", 0, &processing()).await.unwrap();
        assert!(matches!(
            s.issue_iar("Q1", 0, &issue("a")).await.unwrap(),
            CasOutcome::Stale(_)
        ));
        let CasOutcome::Applied(row) = s.issue_iar("Q1", 1, &issue("alice")).await.unwrap() else {
            panic!("version 1 is current")
        };
        assert_eq!(row.state, "answered");
        assert_eq!(row.answered_by.as_deref(), Some("alice"));
        assert_eq!(row.answered_micros, Some(3_000));
        assert_eq!(row.status.as_deref(), Some("lpr"));
        assert_eq!(row.version, 2);
        let d = s.deliveries_of_query("Q1").await.unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].recipient_kind, "agency");
        assert_eq!(d[1].recipient, "Baltimore");
        assert!(d[0].nlets_text.is_some() && d[1].nlets_text.is_none());
        // Answered: neither issue again nor reprocess.
        assert!(matches!(
            s.issue_iar("Q1", 2, &issue("bob")).await.unwrap(),
            CasOutcome::Stale(_)
        ));
        assert!(matches!(
            s.record_processing("Q1", 2, &processing()).await.unwrap(),
            CasOutcome::Stale(_)
        ));
        assert_eq!(s.deliveries_of_query("Q1").await.unwrap().len(), 2);
        let kinds: Vec<String> = s
            .query_events("Q1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["processed", "issue"]);
        // A delivery of an unknown kind is refused before anything is written.
        let mut bad = issue("x");
        bad.deliveries[0].recipient_kind = "press".into();
        s.insert_query(&query("Q2", "MD0030000", "m-2", 1_000))
            .await
            .unwrap();
        assert!(matches!(
            s.issue_iar("Q2", 0, &bad).await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(s.get_query("Q2").await.unwrap().unwrap().state, "received");
    }

    pub async fn concurrent_issuers_cannot_both_succeed(db: &TestDb) {
        let s = &db.store;
        for round in 0..5 {
            let id = format!("Q{round}");
            s.insert_query(&query(&id, "MD0030000", &format!("m-{round}"), 1_000))
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for who in 0..4 {
                let (s, id) = (s.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    s.issue_iar(&id, 0, &issue(&format!("user{who}")))
                        .await
                        .unwrap()
                }));
            }
            let mut applied = 0;
            for t in tasks {
                if matches!(t.await.unwrap(), CasOutcome::Applied(_)) {
                    applied += 1;
                }
            }
            assert_eq!(applied, 1, "round {round}");
            assert_eq!(s.deliveries_of_query(&id).await.unwrap().len(), 2);
        }
    }

    pub async fn deliveries_page_per_recipient_and_mark_fetched(db: &TestDb) {
        let s = &db.store;
        for i in 0..5 {
            let id = format!("Q{i}");
            s.insert_query(&query(&id, "MD0030000", &format!("m-{i}"), 1_000 + i))
                .await
                .unwrap();
            s.issue_iar(&id, 0, &issue("automatic")).await.unwrap();
        }
        let page1 = s.deliveries_for("agency", "MD0030000", 0, 3).await.unwrap();
        assert_eq!(page1.len(), 3);
        let page2 = s
            .deliveries_for("agency", "MD0030000", page1[2].delivery_id, 3)
            .await
            .unwrap();
        assert_eq!(page2.len(), 2);
        let ids: Vec<&str> = page1
            .iter()
            .chain(&page2)
            .map(|d| d.query_id.as_str())
            .collect();
        assert_eq!(ids, ["Q0", "Q1", "Q2", "Q3", "Q4"]);
        assert!(page1.iter().all(|d| d.recipient_kind == "agency"));
        assert_eq!(
            s.deliveries_for("field_office", "Baltimore", 0, 100)
                .await
                .unwrap()
                .len(),
            5
        );
        assert!(s
            .deliveries_for("agency", "VA0010000", 0, 100)
            .await
            .unwrap()
            .is_empty());
        let d = page1[0].delivery_id;
        assert!(s.mark_delivery_fetched(d, 7_000).await.unwrap());
        assert!(s.mark_delivery_fetched(d, 8_000).await.unwrap());
        let again = s.deliveries_for("agency", "MD0030000", 0, 1).await.unwrap();
        assert_eq!(
            again[0].fetched_micros,
            Some(7_000),
            "the first fetch time stays"
        );
        assert!(!s.mark_delivery_fetched(999_999, 1).await.unwrap());
    }

    pub async fn events_append_in_order_and_need_a_query(db: &TestDb) {
        let s = &db.store;
        s.insert_query(&query("Q1", "MD0030000", "m-1", 1_000))
            .await
            .unwrap();
        let a = s
            .append_query_event("Q1", "alice", "note", "{\"n\":1}", 5)
            .await
            .unwrap();
        let b = s
            .append_query_event("Q1", "bob", "assign", "{\"n\":2}", 6)
            .await
            .unwrap();
        assert!(b > a);
        let ev = s.query_events("Q1").await.unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (ev[0].actor.as_str(), ev[0].kind.as_str()),
            ("alice", "note")
        );
        assert_eq!(ev[1].detail_json, "{\"n\":2}");
        assert!(matches!(
            s.append_query_event("nope", "a", "note", "{}", 1).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    pub async fn received_queries_are_listed_for_recovery(db: &TestDb) {
        let s = &db.store;
        for (i, at) in [(0, 30), (1, 10), (2, 20)] {
            s.insert_query(&query(&format!("Q{i}"), "MD0030000", &format!("m-{i}"), at))
                .await
                .unwrap();
        }
        s.record_processing("Q2", 0, &processing()).await.unwrap();
        let received = s.list_queries_in_state("received", 100).await.unwrap();
        let ids: Vec<&str> = received.iter().map(|q| q.query_id.as_str()).collect();
        assert_eq!(ids, ["Q1", "Q0"], "oldest first, processed ones excluded");
        assert_eq!(
            s.list_queries_in_state("received", 1).await.unwrap().len(),
            1
        );
        // Q2 (received at 20, in custody) is in review; cutoffs decide whether it is late.
        assert_eq!(s.count_review_breaches(21, 0).await.unwrap(), 1);
        assert_eq!(s.count_review_breaches(20, 100).await.unwrap(), 0);
        let counts = s.count_queries_by_state().await.unwrap();
        assert_eq!(
            counts,
            vec![("in_review".to_string(), 1), ("received".to_string(), 2)]
        );
    }

    pub async fn hits_insert_escalate_answer_and_measure(db: &TestDb) {
        let s = &db.store;
        let hit = |id: &str, msg: &str, p: &str, at: i64, deadline: i64| NewHit {
            hit_id: id.into(),
            ori: "MD0030000".into(),
            message_id: msg.into(),
            priority: p.into(),
            received_micros: at,
            deadline_micros: deadline,
            request_json: "{}".into(),
        };
        let h1 = s.insert_hit(&hit("H1", "y-1", "U", 0, 600)).await.unwrap();
        assert!(!h1.is_duplicate());
        assert_eq!(h1.row().state, "open");
        let dup = s.insert_hit(&hit("H9", "y-1", "U", 5, 605)).await.unwrap();
        assert!(dup.is_duplicate());
        assert_eq!(dup.row().hit_id, "H1");
        s.insert_hit(&hit("H2", "y-2", "R", 0, 3_600))
            .await
            .unwrap();
        s.insert_hit(&hit("H3", "y-3", "R", 0, 100)).await.unwrap();
        assert!(matches!(
            s.insert_hit(&hit("H4", "y-4", "X", 0, 1)).await,
            Err(StoreError::Invalid(_))
        ));
        let open: Vec<String> = s
            .list_open_hits(10)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.hit_id)
            .collect();
        assert_eq!(open, ["H3", "H1", "H2"], "nearest deadline first");
        assert!(s.escalate_hit("H1", 300).await.unwrap());
        assert!(!s.escalate_hit("H1", 301).await.unwrap(), "escalates once");
        let h = s.get_hit("H1").await.unwrap().unwrap();
        assert_eq!(
            (h.state.as_str(), h.escalated_micros),
            ("escalated", Some(300))
        );
        let answered = s
            .answer_hit("H1", "alice", 500, "{\"kind\":\"confirmed\"}")
            .await
            .unwrap();
        assert!(
            matches!(&answered, Ok(r) if r.state == "answered" && r.answered_by.as_deref() == Some("alice"))
        );
        assert!(
            s.answer_hit("H1", "bob", 501, "{}").await.unwrap().is_err(),
            "answered once"
        );
        s.answer_hit("H3", "bob", 200, "{}").await.unwrap().unwrap();
        assert!(matches!(
            s.answer_hit("nope", "bob", 1, "{}").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(!s.escalate_hit("H1", 700).await.unwrap());
        let c = s.hit_compliance(10_000).await.unwrap();
        assert_eq!((c.answered, c.answered_in_time, c.overdue_open), (2, 1, 1));
        let open: Vec<String> = s
            .list_open_hits(10)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.hit_id)
            .collect();
        assert_eq!(open, ["H2"]);
    }

    pub async fn nul_text_is_refused(db: &TestDb) {
        let s = &db.store;
        let mut q = query("Q1", "MD0030000", "m\0", 1);
        assert!(matches!(
            s.insert_query(&q).await,
            Err(StoreError::Invalid(_))
        ));
        q.message_id = "m".into();
        q.iaq_json = "{}".into();
        q.raw_text = Some("IAQ\0".into());
        assert!(matches!(
            s.insert_query(&q).await,
            Err(StoreError::Invalid(_))
        ));
        q.raw_text = None;
        s.insert_query(&q).await.unwrap();
        assert!(matches!(
            s.append_query_event("Q1", "a", "note", "\0", 1).await,
            Err(StoreError::Invalid(_))
        ));
    }
}
