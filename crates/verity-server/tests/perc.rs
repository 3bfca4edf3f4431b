//! PERC routes in process: preparation, second-person approval under concurrency, refusals of
//! invalid transitions (shown, recorded and audited), and the PDF packet.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use verity_model::record::{CourtOutcome, CourtRecord, RecordBody};
use verity_model::{ANumber, Identity, PartialDate, PersonName, Role, SourceRecord};
use verity_server::{router, AppState, ServerConfig};
use verity_store::perc::NewPercCase;
use verity_store::{NewUser, Store};
use verity_workflow::credentials::hash_password;
use verity_workflow::AccessPolicy;

const PASSWORD: &str = "a-long-test-password";
const CASE: &str = "PC-Q1";

struct Harness {
    state: AppState,
    _dir: tempfile::TempDir,
}

fn subject_identity() -> Identity {
    Identity {
        name: PersonName::parse_last_first("DOE, JANE").expect("name"),
        ids: verity_model::Identifiers {
            a_number: Some(ANumber::parse("012345678").expect("a-number")),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_data_dir(dir.path()).await.expect("store opens");
    for (name, role) in [
        ("officer", Role::PercOfficer),
        ("sup1", Role::Supervisor),
        ("sup2", Role::Supervisor),
    ] {
        store
            .create_user(&NewUser {
                username: name.into(),
                display_name: name.into(),
                password_hash: hash_password(PASSWORD).expect("hash"),
                roles: vec![role],
                agency_ori: None,
            })
            .await
            .expect("user");
    }
    let court = SourceRecord {
        record_id: "CRT-1".into(),
        identity: subject_identity(),
        body: RecordBody::Court(CourtRecord {
            case_number: "C1".into(),
            filed: PartialDate::full(2019, 1, 2).expect("date"),
            outcome: CourtOutcome::RemovalOrdered,
            decided: Some(PartialDate::full(2020, 5, 6).expect("date")),
            relief: String::new(),
            appeal_pending: false,
        }),
    };
    store.insert_records(&[court]).await.expect("records");
    // The answer a specialist issued (the LESC side writes this row; raw SQL keeps the test
    // independent of its API).
    let iar = r#"{"query_id":"Q1","issued_at":"2026-03-10T09:00:00Z","decided_by":"spec1",
      "identity":{"person_key":"P-1","name":"DOE, JANE","dob":"1980-01-02","a_number":"012345678","fin":"","biometric":false},
      "status":"final_order_of_removal","evidence":[{"record_id":"CRT-1","fact":"final_order","note":"final order of removal"}],
      "citizenship_indicia":[],"criminal_history":[],"field_office":"Baltimore","requesting_ori":"MD0030000","rules_version":"r1"}"#;
    store
        .execute_raw_sql(&format!(
            "INSERT INTO queries (query_id, ori, message_id, channel, received_micros, in_custody, aor, \
             iaq_json, state, citizenship_review, iar_json, updated_micros, version) \
             VALUES ('Q1', 'MD0030000', 'm1', 'json', 1, 1, 'Baltimore', '{{}}', 'answered', 0, '{}', 1, 0)",
            iar.replace('\n', " ")
        ))
        .await
        .expect("query row");
    store
        .insert_perc_case(&NewPercCase {
            case_id: CASE.into(),
            query_id: "Q1".into(),
            person_key: Some("P-1".into()),
            aor: "Baltimore".into(),
            status: "final_order_of_removal".into(),
            rank_points: 40,
            tier: "priority_3".into(),
            rank_json: "{}".into(),
            policy_version: "priority-test".into(),
            expected_release_micros: None,
            iar_micros: 1,
            now_micros: 2,
        })
        .await
        .expect("case");
    Harness {
        state: AppState::new(
            store,
            AccessPolicy::embedded().expect("policy"),
            ServerConfig::default(),
        ),
        _dir: dir,
    }
}

async fn send(h: &Harness, req: Request<Body>) -> (StatusCode, String) {
    let resp = router(h.state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn login(h: &Harness, username: &str) -> String {
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "username={username}&password={PASSWORD}"
        )))
        .expect("request");
    let resp = router(h.state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "login of {username}");
    let cookie = resp.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_string();
    cookie.split(';').next().expect("cookie").to_string()
}

fn post(path: &str, cookie: &str, form: &str) -> Request<Body> {
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/html")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_string()))
        .expect("request")
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .header(header::ACCEPT, "text/html")
        .body(Body::empty())
        .expect("request")
}

async fn prepared_action(h: &Harness, officer: &str) -> String {
    let (s, _) = send(
        h,
        post(
            &format!("/perc/cases/{CASE}/prepare"),
            officer,
            "kind=detainer&basis=final_order&warrant=I205",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let actions = h.state.store.actions_for_case(CASE).await.expect("actions");
    assert_eq!(actions.len(), 1);
    actions[0].action_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_approvals_cannot_both_succeed() {
    let h = harness().await;
    let officer = login(&h, "officer").await;
    let id = prepared_action(&h, &officer).await;
    // The preparer may not approve at all: the route needs the supervisor's permission.
    let (s, _) = send(
        &h,
        post(&format!("/perc/detainers/{id}/approve"), &officer, ""),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (a, b) = (login(&h, "sup1").await, login(&h, "sup2").await);
    let path = format!("/perc/detainers/{id}/approve");
    let (ra, rb) = tokio::join!(send(&h, post(&path, &a, "")), send(&h, post(&path, &b, "")));
    let wins = [&ra, &rb]
        .iter()
        .filter(|(s, body)| *s == StatusCode::OK && body.contains("is now approved"))
        .count();
    assert_eq!(
        wins, 1,
        "exactly one approval succeeds: {:?} {:?}",
        ra.0, rb.0
    );
    let loser = if ra.0 == StatusCode::OK { &rb } else { &ra };
    assert_eq!(loser.0, StatusCode::CONFLICT);
    assert!(loser.1.contains("Refused"), "{}", loser.1);
    let events = h.state.store.action_events(&id).await.expect("events");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == "approve" && e.accepted)
            .count(),
        1
    );
    assert!(events.iter().any(|e| e.kind == "approve" && !e.accepted));
    // The approving supervisor signs the warrant.
    let row = h
        .state
        .store
        .get_action(&id)
        .await
        .expect("read")
        .expect("action");
    let json: serde_json::Value = serde_json::from_str(&row.columns.action_json).expect("json");
    assert_eq!(
        json["warrant"]["signed_by"].as_str(),
        row.columns.approved_by.as_deref()
    );
}

#[tokio::test]
async fn invalid_transitions_are_refused_with_the_reason_and_audited() {
    let h = harness().await;
    let officer = login(&h, "officer").await;
    let id = prepared_action(&h, &officer).await;
    let (s, body) = send(
        &h,
        post(
            &format!("/perc/detainers/{id}/event"),
            &officer,
            "event=honor",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        body.contains("a prepared action cannot be honored"),
        "{body}"
    );
    let events = h.state.store.action_events(&id).await.expect("events");
    let refused = events.last().expect("an event");
    assert!(!refused.accepted && refused.reason == "invalid_transition");
    let (total, _) = h.state.store.audit_head().await.expect("head");
    let audit = h
        .state
        .store
        .list_audit(0, u32::try_from(total).expect("small log"))
        .await
        .expect("audit");
    assert!(audit.iter().any(|e| {
        serde_json::to_string(&e.event.action)
            .unwrap_or_default()
            .contains("honor refused")
    }));
    // A lift without a known reason is refused too.
    let (s, body) = send(
        &h,
        post(
            &format!("/perc/detainers/{id}/event"),
            &officer,
            "event=lift&reason=whim",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("a lift needs a reason"), "{body}");
}

#[tokio::test]
async fn pages_render_and_the_packet_is_a_pdf() {
    let h = harness().await;
    let officer = login(&h, "officer").await;
    let id = prepared_action(&h, &officer).await;
    for page in [
        "/perc/queue",
        "/perc/board",
        "/perc/metrics",
        &format!("/perc/cases/{CASE}"),
    ] {
        let (s, body) = send(&h, get(page, &officer)).await;
        assert_eq!(s, StatusCode::OK, "{page}: {body}");
    }
    let (_, body) = send(&h, get(&format!("/perc/cases/{CASE}"), &officer)).await;
    assert!(body.contains("CRT-1") && body.contains("final order"));
    let resp = router(h.state.clone())
        .oneshot(get(&format!("/perc/detainers/{id}/packet.pdf"), &officer))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/pdf");
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(bytes.starts_with(b"%PDF-"));
    // The escalation list is for supervisors only.
    let (s, _) = send(&h, get("/perc/escalations", &officer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
