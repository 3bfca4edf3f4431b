//! Conformance of the LESC review store (`verity_store::review`) on both backends: queue order,
//! compare-and-set assignment and review actions, events, and the subject view's reads.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

conformance!(
    queue_orders_citizenship_then_custody_then_oldest,
    queue_respects_its_limit,
    assign_is_compare_and_set,
    review_actions_change_the_row_and_are_recorded_as_events,
    override_without_reason_is_refused_and_changes_nothing,
    answered_query_takes_no_review_action,
    concurrent_actions_on_one_version_let_exactly_one_through,
    queries_about_person_match_subject_and_candidates_literally,
    citizenship_reviews_of_answered_queries_wait_until_an_officer_closes_them,
);

mod cases {
    use crate::common::TestDb;
    use verity_store::queries::{NewQuery, Processing, QueryRow};
    use verity_store::review::{ReviewAction, ReviewError};
    use verity_store::Store;

    /// Stores a query and moves it to `state` with the given result.
    #[allow(clippy::too_many_arguments)]
    async fn put_query(
        store: &Store,
        id: &str,
        received_micros: i64,
        in_custody: bool,
        citizenship: bool,
        state: &str,
        person_key: Option<&str>,
        result_json: &str,
    ) -> QueryRow {
        let row = store
            .insert_query(&NewQuery {
                query_id: id.into(),
                ori: "MD0030000".into(),
                message_id: format!("m-{id}"),
                channel: "json".into(),
                received_micros,
                in_custody,
                aor: Some("BAL".into()),
                iaq_json: "{}".into(),
                raw_text: None,
            })
            .await
            .unwrap()
            .into_row();
        if state == "received" {
            return row;
        }
        match store
            .record_processing(
                id,
                row.version,
                &Processing {
                    state: state.into(),
                    // Tests answer queries only automatically (review answers go through issue).
                    automatic: state == "answered",
                    citizenship_review: citizenship,
                    status: Some("undetermined".into()),
                    person_key: person_key.map(Into::into),
                    result_json: result_json.into(),
                    at_micros: received_micros + 1,
                    actor: "engine".into(),
                },
            )
            .await
            .unwrap()
        {
            verity_store::queries::CasOutcome::Applied(r) => r,
            verity_store::queries::CasOutcome::Stale(r) => panic!("stale setup: {r:?}"),
        }
    }

    async fn in_review(store: &Store, id: &str) -> QueryRow {
        put_query(store, id, 1_000, false, false, "in_review", None, "{}").await
    }

    fn ids(rows: &[QueryRow]) -> Vec<&str> {
        rows.iter().map(|r| r.query_id.as_str()).collect()
    }

    pub async fn queue_orders_citizenship_then_custody_then_oldest(db: &TestDb) {
        let s = &db.store;
        put_query(s, "free-old", 100, false, false, "in_review", None, "{}").await;
        put_query(s, "custody-new", 900, true, false, "in_review", None, "{}").await;
        put_query(s, "custody-old", 500, true, false, "in_review", None, "{}").await;
        put_query(s, "citizen-new", 950, false, true, "in_review", None, "{}").await;
        put_query(s, "free-old-b", 100, false, false, "in_review", None, "{}").await;
        put_query(s, "not-yet", 1, true, false, "received", None, "{}").await;
        let q = s.review_queue(50).await.unwrap();
        assert_eq!(
            ids(&q),
            [
                "citizen-new",
                "custody-old",
                "custody-new",
                "free-old",
                "free-old-b"
            ]
        );
    }

    pub async fn queue_respects_its_limit(db: &TestDb) {
        for i in 0..5 {
            put_query(
                &db.store,
                &format!("q{i}"),
                10 * i,
                false,
                false,
                "in_review",
                None,
                "{}",
            )
            .await;
        }
        let q = db.store.review_queue(2).await.unwrap();
        assert_eq!(ids(&q), ["q0", "q1"]);
        assert!(db.store.review_queue(0).await.unwrap().is_empty());
    }

    pub async fn assign_is_compare_and_set(db: &TestDb) {
        let s = &db.store;
        let q = in_review(s, "a1").await;
        let taken = s.assign("a1", "spec.one", q.version).await.unwrap();
        assert_eq!(taken.assigned_to.as_deref(), Some("spec.one"));
        assert_eq!(taken.version, q.version + 1);
        // The second specialist read the old version: refused, told to reload.
        match s.assign("a1", "spec.two", q.version).await {
            Err(ReviewError::Stale {
                expected, actual, ..
            }) => {
                assert_eq!(expected, q.version);
                assert_eq!(actual, taken.version);
            }
            other => panic!("expected Stale, got {other:?}"),
        }
        assert_eq!(
            s.get_query("a1")
                .await
                .unwrap()
                .unwrap()
                .assigned_to
                .as_deref(),
            Some("spec.one")
        );
        // With the current version the query can be handed over.
        let moved = s.assign("a1", "spec.two", taken.version).await.unwrap();
        assert_eq!(moved.assigned_to.as_deref(), Some("spec.two"));
        assert!(matches!(
            s.assign("nope", "spec.one", 0).await,
            Err(ReviewError::NotFound { .. })
        ));
    }

    pub async fn review_actions_change_the_row_and_are_recorded_as_events(db: &TestDb) {
        let s = &db.store;
        let q = in_review(s, "r1").await;
        let v1 = s
            .record_review_action(
                "r1",
                "spec.one",
                &ReviewAction::Note {
                    text: "called the agency".into(),
                },
                q.version,
            )
            .await
            .unwrap();
        // The first action of an unassigned query assigns it to its actor.
        assert_eq!(v1.assigned_to.as_deref(), Some("spec.one"));
        let v2 = s
            .record_review_action(
                "r1",
                "spec.one",
                &ReviewAction::Confirm {
                    candidate: Some(1),
                    person_key: Some("P-7".into()),
                    status: "lpr".into(),
                },
                v1.version,
            )
            .await
            .unwrap();
        assert_eq!(v2.person_key.as_deref(), Some("P-7"));
        assert_eq!(v2.status.as_deref(), Some("lpr"));
        let v3 = s
            .record_review_action(
                "r1",
                "spec.two",
                &ReviewAction::Correct {
                    field: "dob".into(),
                    value: "1985-03-12".into(),
                    reason: "agency typo".into(),
                },
                v2.version,
            )
            .await
            .unwrap();
        assert_eq!(v3.assigned_to.as_deref(), Some("spec.one"), "kept holder");
        let v4 = s
            .record_review_action(
                "r1",
                "spec.one",
                &ReviewAction::Override {
                    status: "parolee".into(),
                    reason: "parole record not yet loaded".into(),
                },
                v3.version,
            )
            .await
            .unwrap();
        assert_eq!(v4.status.as_deref(), Some("parolee"));
        assert_eq!(v4.person_key.as_deref(), Some("P-7"));
        assert_eq!(v4.state, "in_review");
        // Confirming none clears the subject.
        let v5 = s
            .record_review_action(
                "r1",
                "spec.one",
                &ReviewAction::Confirm {
                    candidate: None,
                    person_key: None,
                    status: "no_record_found".into(),
                },
                v4.version,
            )
            .await
            .unwrap();
        assert_eq!(v5.person_key, None);
        let events = s.query_events("r1").await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "processed",
                "note",
                "confirm",
                "correct",
                "override",
                "confirm"
            ]
        );
        assert_eq!(events[3].actor, "spec.two");
        let detail: ReviewAction = serde_json::from_str(&events[4].detail_json).unwrap();
        assert_eq!(
            detail,
            ReviewAction::Override {
                status: "parolee".into(),
                reason: "parole record not yet loaded".into()
            }
        );
    }

    pub async fn override_without_reason_is_refused_and_changes_nothing(db: &TestDb) {
        let s = &db.store;
        let q = in_review(s, "o1").await;
        let r = s
            .record_review_action(
                "o1",
                "spec.one",
                &ReviewAction::Override {
                    status: "lpr".into(),
                    reason: " ".into(),
                },
                q.version,
            )
            .await;
        match r {
            Err(ReviewError::Invalid(e)) => assert_eq!(e.field, "reason"),
            other => panic!("expected Invalid(reason), got {other:?}"),
        }
        let after = s.get_query("o1").await.unwrap().unwrap();
        assert_eq!(after, q);
        assert_eq!(
            s.query_events("o1").await.unwrap().len(),
            1,
            "processed only"
        );
    }

    pub async fn answered_query_takes_no_review_action(db: &TestDb) {
        let s = &db.store;
        let q = put_query(s, "done", 5, false, false, "answered", None, "{}").await;
        match s
            .record_review_action(
                "done",
                "spec.one",
                &ReviewAction::Note {
                    text: "late".into(),
                },
                q.version,
            )
            .await
        {
            Err(ReviewError::NotInReview { state, .. }) => assert_eq!(state, "answered"),
            other => panic!("expected NotInReview, got {other:?}"),
        }
        assert!(s.review_queue(10).await.unwrap().is_empty());
    }

    pub async fn concurrent_actions_on_one_version_let_exactly_one_through(db: &TestDb) {
        let q = in_review(&db.store, "c1").await;
        let mut tasks = Vec::new();
        for i in 0..6 {
            let store = db.store.clone();
            let version = q.version;
            tasks.push(tokio::spawn(async move {
                store
                    .record_review_action(
                        "c1",
                        &format!("spec.{i}"),
                        &ReviewAction::Note {
                            text: format!("note {i}"),
                        },
                        version,
                    )
                    .await
            }));
        }
        let mut applied = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => applied += 1,
                Err(ReviewError::Stale { .. }) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(applied, 1);
        let after = db.store.get_query("c1").await.unwrap().unwrap();
        assert_eq!(after.version, q.version + 1);
        assert_eq!(db.store.query_events("c1").await.unwrap().len(), 2);
    }

    pub async fn queries_about_person_match_subject_and_candidates_literally(db: &TestDb) {
        let s = &db.store;
        let result = |keys: &[&str]| {
            let cands: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| serde_json::json!({"person_key": k, "record_ids": ["R1"]}))
                .collect();
            serde_json::json!({"candidates": cands}).to_string()
        };
        put_query(
            s,
            "subj",
            10,
            false,
            false,
            "in_review",
            Some("P_1"),
            &result(&["P_1"]),
        )
        .await;
        put_query(
            s,
            "cand",
            20,
            false,
            false,
            "in_review",
            Some("Q9"),
            &result(&["Q9", "P_1"]),
        )
        .await;
        // `_` is a LIKE wildcard: PX1 must not match a search for P_1, nor P_10.
        put_query(
            s,
            "other",
            30,
            false,
            false,
            "in_review",
            Some("PX1"),
            &result(&["PX1"]),
        )
        .await;
        put_query(
            s,
            "longer",
            40,
            false,
            false,
            "in_review",
            None,
            &result(&["P_10"]),
        )
        .await;
        let found = s.queries_about_person("P_1", 10).await.unwrap();
        assert_eq!(ids(&found), ["cand", "subj"], "newest first");
        assert!(s
            .queries_about_person("nobody", 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            ids(&s.queries_about_person("P_1", 1).await.unwrap()),
            ["cand"]
        );
    }

    pub async fn citizenship_reviews_of_answered_queries_wait_until_an_officer_closes_them(
        db: &TestDb,
    ) {
        let s = &db.store;
        let safe = put_query(s, "safe", 20, false, true, "answered", None, "{}").await;
        put_query(s, "safe-custody", 30, true, true, "answered", None, "{}").await;
        put_query(s, "plain", 10, false, false, "answered", None, "{}").await;
        let waiting = put_query(s, "waiting", 5, true, true, "in_review", None, "{}").await;
        let pending = s.pending_citizenship_reviews(10).await.unwrap();
        assert_eq!(ids(&pending), ["safe-custody", "safe"]);
        // Finding and reason are required.
        for (finding, reason, field) in [
            ("guess", "x", "finding"),
            ("citizen_confirmed", " ", "reason"),
        ] {
            match s
                .close_citizenship_review("safe", "officer", finding, reason, safe.version)
                .await
            {
                Err(ReviewError::Invalid(e)) => assert_eq!(e.field, field),
                other => panic!("expected Invalid({field}), got {other:?}"),
            }
        }
        // A query still in review is closed by issuing its answer, not here.
        assert!(matches!(
            s.close_citizenship_review(
                "waiting",
                "officer",
                "citizen_confirmed",
                "passport",
                waiting.version
            )
            .await,
            Err(ReviewError::Refused { .. })
        ));
        assert!(matches!(
            s.close_citizenship_review("plain", "officer", "citizen_confirmed", "passport", 2)
                .await,
            Err(ReviewError::Refused { .. })
        ));
        let closed = s
            .close_citizenship_review(
                "safe",
                "officer",
                "citizen_confirmed",
                "U.S. passport on file",
                safe.version,
            )
            .await
            .unwrap();
        assert_eq!(closed.version, safe.version + 1);
        assert_eq!(
            ids(&s.pending_citizenship_reviews(10).await.unwrap()),
            ["safe-custody"]
        );
        let last = s.query_events("safe").await.unwrap().pop().unwrap();
        assert_eq!(last.kind, verity_store::review::CITIZENSHIP_CLOSED);
        assert_eq!(last.actor, "officer");
        assert!(last.detail_json.contains("U.S. passport on file"));
        // Once only; a stale version is told so.
        assert!(matches!(
            s.close_citizenship_review(
                "safe",
                "officer",
                "claim_not_substantiated",
                "x",
                closed.version
            )
            .await,
            Err(ReviewError::Refused { .. })
        ));
        assert!(matches!(
            s.close_citizenship_review(
                "safe",
                "officer",
                "claim_not_substantiated",
                "x",
                safe.version
            )
            .await,
            Err(ReviewError::Stale { .. })
        ));
    }
}
