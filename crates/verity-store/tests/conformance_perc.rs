//! PERC store conformance: triage cases, detainers with compare-and-set, events and service
//! records, on SQLite and PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

conformance!(
    cases_insert_once_and_list_by_rank_then_release,
    case_state_moves_compare_and_set_and_stamp_the_decision,
    citizenship_notes_round_trip,
    actions_round_trip_with_their_events,
    stale_action_update_writes_nothing,
    concurrent_approvals_cannot_both_succeed,
    refusals_are_recorded_and_counted,
    service_records_round_trip,
);

mod cases {
    use crate::common::TestDb;
    use verity_store::perc::{
        ActionColumns, ActionEvent, CasOutcome, NewAction, NewPercCase, ServiceRecord,
    };
    use verity_store::Store;

    /// The queries row a case hangs from (its table belongs to the LESC area; raw SQL keeps
    /// this suite independent of that API).
    async fn query(store: &Store, id: &str) {
        store
            .execute_raw_sql(&format!(
                "INSERT INTO queries (query_id, ori, message_id, channel, received_micros, in_custody, \
                 aor, iaq_json, state, citizenship_review, updated_micros, version) \
                 VALUES ('{id}', 'MD0030000', 'm-{id}', 'json', 1, TRUE, 'Baltimore', '{{}}', 'answered', FALSE, 1, 0)"
            ))
            .await
            .unwrap();
    }

    fn new_case(id: &str, points: i64, release: Option<i64>) -> NewPercCase {
        NewPercCase {
            case_id: format!("PC-{id}"),
            query_id: id.into(),
            person_key: Some(format!("P-{id}")),
            aor: "Baltimore".into(),
            status: "final_order_of_removal".into(),
            rank_points: points,
            tier: "priority_1".into(),
            rank_json: "{\"points\":1}".into(),
            policy_version: "priority-test".into(),
            expected_release_micros: release,
            iar_micros: 10,
            now_micros: 20,
        }
    }

    async fn case(store: &Store, id: &str, points: i64, release: Option<i64>) -> String {
        query(store, id).await;
        assert!(store
            .insert_perc_case(&new_case(id, points, release))
            .await
            .unwrap());
        format!("PC-{id}")
    }

    fn columns(state: &str, json: &str) -> ActionColumns {
        ActionColumns {
            kind: "detainer".into(),
            state: state.into(),
            lift_reason: None,
            basis: Some("final_order".into()),
            warrant_kind: Some("I205".into()),
            prepared_by: "officer".into(),
            approved_by: None,
            action_json: json.into(),
            lodged_micros: None,
            hold_until_micros: None,
            release_notified_micros: None,
        }
    }

    async fn action(store: &Store, case_id: &str, action_id: &str) {
        store
            .insert_action(
                &NewAction {
                    action_id: action_id.into(),
                    case_id: case_id.into(),
                    columns: columns("prepared", "{\"v\":0}"),
                    evidence_json: "[[\"R1\",\"final order\"]]".into(),
                    facility: "County Jail".into(),
                },
                "officer",
                "prepared detainer",
                100,
            )
            .await
            .unwrap();
    }

    fn event(
        actor: &str,
        kind: &str,
        from: &str,
        to: &str,
        accepted: bool,
        reason: &str,
    ) -> ActionEvent {
        ActionEvent {
            at_micros: 200,
            actor: actor.into(),
            kind: kind.into(),
            from_state: from.into(),
            to_state: to.into(),
            accepted,
            reason: reason.into(),
        }
    }

    pub async fn cases_insert_once_and_list_by_rank_then_release(db: &TestDb) {
        let s = &db.store;
        case(s, "q1", 50, Some(5_000)).await;
        case(s, "q2", 150, None).await;
        case(s, "q3", 50, Some(1_000)).await;
        case(s, "q4", 50, None).await;
        // A second IAR for the same query does not make a second case.
        assert!(!s
            .insert_perc_case(&new_case("q1", 999, None))
            .await
            .unwrap());
        let listed: Vec<String> = s
            .list_perc_cases(&["triage"], 10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.query_id)
            .collect();
        assert_eq!(listed, ["q2", "q3", "q1", "q4"]);
        let c = s.perc_case_for_query("q1").await.unwrap().unwrap();
        assert_eq!(c.rank_points, 50);
        assert_eq!(c.expected_release_micros, Some(5_000));
        assert_eq!(c.state, "triage");
        assert_eq!(s.get_perc_case("PC-q1").await.unwrap(), Some(c));
        assert!(s.get_perc_case("PC-none").await.unwrap().is_none());
        assert_eq!(
            s.list_perc_cases(&["no_action"], 10).await.unwrap().len(),
            0
        );
        assert_eq!(s.list_perc_cases(&[], 2).await.unwrap().len(), 2);
    }

    pub async fn case_state_moves_compare_and_set_and_stamp_the_decision(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        assert_eq!(
            s.set_perc_case_state(&id, "action", 0, 500).await.unwrap(),
            CasOutcome::Updated { version: 1 }
        );
        assert_eq!(
            s.set_perc_case_state(&id, "no_action", 0, 600)
                .await
                .unwrap(),
            CasOutcome::Stale
        );
        s.set_perc_case_state(&id, "no_action", 1, 700)
            .await
            .unwrap();
        let c = s.get_perc_case(&id).await.unwrap().unwrap();
        assert_eq!(c.state, "no_action");
        // The decision time is the first move out of triage.
        assert_eq!(c.decided_micros, Some(500));
        assert_eq!(c.version, 2);
    }

    pub async fn citizenship_notes_round_trip(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        s.set_perc_citizenship(&id, true, false, "claims birth in Texas", 900)
            .await
            .unwrap();
        let c = s.get_perc_case(&id).await.unwrap().unwrap();
        assert!(c.citizenship_claim_open && !c.citizenship_indicia_open);
        assert_eq!(c.citizenship_note, "claims birth in Texas");
        assert!(s
            .set_perc_citizenship("PC-none", true, true, "", 1)
            .await
            .is_err());
    }

    pub async fn actions_round_trip_with_their_events(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        action(s, &id, "D1").await;
        // The same id twice is refused, not overwritten.
        let dup = s
            .insert_action(
                &NewAction {
                    action_id: "D1".into(),
                    case_id: id.clone(),
                    columns: columns("prepared", "{}"),
                    evidence_json: "[]".into(),
                    facility: String::new(),
                },
                "x",
                "",
                1,
            )
            .await;
        assert!(dup.is_err());
        let row = s.get_action("D1").await.unwrap().unwrap();
        assert_eq!(row.version, 0);
        assert_eq!(row.columns, columns("prepared", "{\"v\":0}"));
        assert_eq!(row.facility, "County Jail");
        let mut next = columns("approved", "{\"v\":1}");
        next.approved_by = Some("boss".into());
        next.hold_until_micros = Some(9_000);
        let out = s
            .update_action(
                "D1",
                0,
                &next,
                &event("boss", "approve", "prepared", "approved", true, "approved"),
            )
            .await
            .unwrap();
        assert_eq!(out, CasOutcome::Updated { version: 1 });
        let row = s.get_action("D1").await.unwrap().unwrap();
        assert_eq!(row.columns, next);
        let events = s.action_events("D1").await.unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, "prepare");
        assert_eq!(events[1].actor, "boss");
        assert_eq!(s.actions_for_case(&id).await.unwrap().len(), 1);
        assert_eq!(s.list_actions(&["approved"], 10).await.unwrap().len(), 1);
        assert_eq!(s.list_actions(&["lodged"], 10).await.unwrap().len(), 0);
    }

    pub async fn stale_action_update_writes_nothing(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        action(s, &id, "D1").await;
        let out = s
            .update_action(
                "D1",
                7,
                &columns("approved", "{}"),
                &event("b", "approve", "prepared", "approved", true, ""),
            )
            .await
            .unwrap();
        assert_eq!(out, CasOutcome::Stale);
        assert_eq!(
            s.get_action("D1").await.unwrap().unwrap().columns.state,
            "prepared"
        );
        assert_eq!(s.action_events("D1").await.unwrap().len(), 1);
        let missing = s
            .update_action(
                "nope",
                0,
                &columns("approved", "{}"),
                &event("b", "approve", "", "", true, ""),
            )
            .await
            .unwrap();
        assert_eq!(missing, CasOutcome::Stale);
    }

    pub async fn concurrent_approvals_cannot_both_succeed(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        for round in 0..5 {
            let action_id = format!("D{round}");
            action(s, &id, &action_id).await;
            let mut tasks = Vec::new();
            for who in ["sup-a", "sup-b"] {
                let store = s.clone();
                let action_id = action_id.clone();
                tasks.push(tokio::spawn(async move {
                    let mut next = columns("approved", "{}");
                    next.approved_by = Some(who.into());
                    store
                        .update_action(
                            &action_id,
                            0,
                            &next,
                            &event(who, "approve", "prepared", "approved", true, "ok"),
                        )
                        .await
                        .unwrap()
                }));
            }
            let mut outcomes = Vec::new();
            for t in tasks {
                outcomes.push(t.await.unwrap());
            }
            let wins = outcomes
                .iter()
                .filter(|o| matches!(o, CasOutcome::Updated { .. }))
                .count();
            assert_eq!(wins, 1, "round {round}: {outcomes:?}");
            let row = s.get_action(&action_id).await.unwrap().unwrap();
            assert_eq!(row.version, 1);
            let events = s.action_events(&action_id).await.unwrap();
            assert_eq!(events.len(), 2, "only the winner's event is written");
            assert_eq!(Some(events[1].actor.clone()), row.columns.approved_by);
        }
    }

    pub async fn refusals_are_recorded_and_counted(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        action(s, &id, "D1").await;
        for _ in 0..2 {
            s.append_action_event(
                "D1",
                &event(
                    "boss",
                    "lodge",
                    "prepared",
                    "prepared",
                    false,
                    "citizenship_indicia",
                ),
            )
            .await
            .unwrap();
        }
        s.append_action_event(
            "D1",
            &event(
                "boss",
                "approve",
                "prepared",
                "prepared",
                false,
                "second_person",
            ),
        )
        .await
        .unwrap();
        let counts = s.perc_counts().await.unwrap();
        assert_eq!(
            counts.refusals_by_reason,
            vec![
                ("citizenship_indicia".to_string(), 2),
                ("second_person".to_string(), 1)
            ]
        );
        assert_eq!(
            counts.actions_by_state,
            vec![("prepared".to_string(), String::new(), 1)]
        );
        assert_eq!(counts.cases_by_state, vec![("triage".to_string(), 1)]);
        // Refusals leave the action as it was.
        assert_eq!(s.get_action("D1").await.unwrap().unwrap().version, 0);
    }

    pub async fn service_records_round_trip(db: &TestDb) {
        let s = &db.store;
        let id = case(s, "q1", 50, None).await;
        action(s, &id, "D1").await;
        let r = ServiceRecord {
            action_id: "D1".into(),
            served_micros: 1_000,
            method: "in_person".into(),
            served_by: "officer".into(),
            note: "copy handed to subject at booking desk".into(),
            recorded_by: "officer".into(),
            recorded_micros: 2_000,
        };
        s.add_service_record(&r).await.unwrap();
        assert_eq!(s.service_records("D1").await.unwrap(), vec![r]);
        assert!(s.service_records("D2").await.unwrap().is_empty());
    }
}
