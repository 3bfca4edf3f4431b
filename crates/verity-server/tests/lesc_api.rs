//! The LESC agency API end to end in process, over a small synthetic world: JSON and Nlets
//! round trips, idempotency, every problem named, authentication and its audit, body limits,
//! agency isolation, deliveries per recipient with their views, recovery, hit confirmation.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use verity_model::{AuditAction, Ori, Role};
use verity_server::{router, AppState, ServerConfig};
use verity_store::queries::NewQuery;
use verity_store::{Agency, NewUser, Store};
use verity_workflow::credentials::{hash_password, token_digest};
use verity_workflow::lesc::engine::Engine;
use verity_workflow::AccessPolicy;

const MD: &str = "MD0030000";
const MD_KEY: &str = "md-agency-key";
const VA: &str = "VA0010000";
const VA_KEY: &str = "va-agency-key";
const PEOPLE: u64 = 150;
const PASSWORD: &str = "a-long-test-password";

struct Harness {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = dir.path().join("world");
    let cfg = verity_synth::SynthConfig {
        people: PEOPLE,
        seed: 1,
        out: world.clone(),
        progress: false,
    };
    verity_synth::generate_world(&cfg).expect("world");
    let store = Store::open_data_dir(&dir.path().join("data"))
        .await
        .expect("store opens");
    verity_store::import_world(&store, &world, &Default::default())
        .await
        .expect("import");
    for (ori, key, office) in [(MD, MD_KEY, "Baltimore"), (VA, VA_KEY, "Washington")] {
        store
            .upsert_agency(&Agency {
                ori: Ori::parse(ori).unwrap(),
                name: format!("Agency {ori}"),
                kind: "police".into(),
                state: ori[..2].into(),
                county: String::new(),
                field_office: office.into(),
                api_key_hash: Some(token_digest(key)),
                active: true,
            })
            .await
            .unwrap();
    }
    store
        .create_user(&NewUser {
            username: "spec".into(),
            display_name: "Specialist".into(),
            password_hash: hash_password(PASSWORD).unwrap(),
            roles: vec![Role::LescSpecialist],
            agency_ori: None,
        })
        .await
        .unwrap();
    // As `verity up` does: the engine's index and the record snapshot it reads from.
    let (records, snapshot) = verity_server::read_records_for_engine(&store, 1000, |_| {})
        .await
        .unwrap();
    let engine = Engine::build(
        records.into_iter(),
        None,
        verity_policy::StatusRules::embedded().unwrap(),
        verity_workflow::lesc::LescPolicy::embedded().unwrap(),
    )
    .unwrap();
    let config = ServerConfig {
        max_body_bytes: 16 * 1024,
        ..ServerConfig::default()
    };
    let state = AppState::new(store, AccessPolicy::embedded().unwrap(), config)
        .with_engine_and_snapshot(engine, snapshot)
        .unwrap();
    Harness { state, _dir: dir }
}

fn basic(ori: &str, key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ori}:{key}"))
    )
}

async fn send(h: &Harness, req: Request<Body>) -> (StatusCode, String) {
    let resp = router(h.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post(
    path: &str,
    auth: Option<(&str, &str)>,
    ctype: &str,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, ctype);
    if let Some((o, k)) = auth {
        b = b.header(header::AUTHORIZATION, basic(o, k));
    }
    b.body(body.into()).unwrap()
}

fn get(path: &str, ori: &str, key: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, basic(ori, key))
        .body(Body::empty())
        .unwrap()
}

async fn post_iaq(h: &Harness, body: &Value) -> (StatusCode, Value) {
    let (s, text) = send(
        h,
        post(
            "/v1/iaq",
            Some((MD, MD_KEY)),
            "application/json",
            body.to_string(),
        ),
    )
    .await;
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn generated(count: usize) -> Vec<Value> {
    verity_synth::queries::generate_queries(1, PEOPLE, count, 99)
        .into_iter()
        .map(|q| q.body)
        .collect()
}

async fn denials(h: &Harness) -> usize {
    h.state
        .store
        .list_audit(0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.event.action, AuditAction::AccessDenied { .. }))
        .count()
}

#[tokio::test]
async fn json_round_trip_is_idempotent() {
    let h = harness().await;
    let body = generated(1).remove(0);
    let (s1, v1) = post_iaq(&h, &body).await;
    assert!(
        s1 == StatusCode::OK || s1 == StatusCode::ACCEPTED,
        "{s1} {v1}"
    );
    let id = v1["query_id"].as_str().unwrap().to_string();
    assert_eq!(v1["duplicate"], false);
    assert_ne!(v1["state"], "received", "processed inline: {v1}");
    let (s2, v2) = post_iaq(&h, &body).await;
    assert_eq!(s2, s1);
    assert_eq!(v2["query_id"], id.as_str());
    assert_eq!(v2["duplicate"], true);
    let (s3, text) = send(&h, get(&format!("/v1/iaq/{id}"), MD, MD_KEY)).await;
    assert_eq!(s3, StatusCode::OK);
    let v3: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v3["state"], v1["state"]);
    assert_eq!(v3["message_id"], body["message_id"]);
    // The body may name its own ORI, never another.
    let mut with_ori = body.clone();
    with_ori["ori"] = json!(MD);
    with_ori["message_id"] = json!("named-ori");
    let (s, _) = post_iaq(&h, &with_ori).await;
    assert!(s.is_success());
}

#[tokio::test]
async fn nlets_round_trip_answers_in_text() {
    let h = harness().await;
    let text = "IAQ.MD0030000.AX.C42.TXT PUR/C.ATN/SGT J DOE.PHN/4105550100.NAM/QQZYXW, VVUTSR.DOB/19850312.SEX/M.POB/MX.CUS/Y.OFF/1313";
    let (s, reply) = send(
        &h,
        post("/v1/nlets", Some((MD, MD_KEY)), "text/plain", text),
    )
    .await;
    let id = reply
        .lines()
        .find_map(|l| l.strip_prefix("QID/"))
        .map(|l| l.trim_end_matches('.').to_string())
        .expect("a query id in the reply");
    if s == StatusCode::OK {
        assert!(reply.starts_with("IAR.MD0030000.VTICE0900.C42."), "{reply}");
        assert!(reply.contains("STS/No record found."), "{reply}");
    } else {
        assert_eq!(s, StatusCode::ACCEPTED);
        assert!(reply.starts_with("ACK.MD0030000."), "{reply}");
    }
    let (s2, again) = send(&h, get(&format!("/v1/nlets/{id}"), MD, MD_KEY)).await;
    assert_eq!(s2, s);
    if s2 == StatusCode::OK {
        assert_eq!(again, reply, "the same IAR text later");
    }
    // Resending the same message (same control field) is the same query.
    let (_, reply2) = send(
        &h,
        post("/v1/nlets", Some((MD, MD_KEY)), "text/plain", text),
    )
    .await;
    assert!(reply2.contains(&format!("QID/{id}.")));
    let row = h.state.store.get_query(&id).await.unwrap().unwrap();
    assert_eq!(row.channel, "nlets");
    assert_eq!(row.raw_text.as_deref(), Some(text));
}

#[tokio::test]
async fn bad_queries_get_400_with_every_problem_named() {
    let h = harness().await;
    let body = json!({"purpose":"X","name":"DOE. JOHN","dob":"2099-01-01","in_custody":"yes","offense_code":"13","colour":"red"});
    let (s, v) = post_iaq(&h, &body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    for f in [
        "colour",
        "message_id",
        "purpose",
        "name",
        "dob",
        "in_custody",
        "offense_code",
    ] {
        assert!(fields.contains(&f), "{f} not named: {v}");
    }
    let (s, v) = send(
        &h,
        post("/v1/iaq", Some((MD, MD_KEY)), "application/json", "{oops"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v.contains("\"field\":\"body\""), "{v}");
    let bad = "IAQ.MD0030000.AX.TXT PUR/Q.ATN/X.PHN/1.NAM/DOE.JOHN.DOB/20991301.SEX/M.POB/MX.CUS/Y.OFF/1313";
    let (s, reply) = send(&h, post("/v1/nlets", Some((MD, MD_KEY)), "text/plain", bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for tag in ["ERR/PUR", "ERR/DOB"] {
        assert!(reply.contains(tag), "{tag} missing in {reply}");
    }
    assert_eq!(
        h.state.store.count_queries_by_state().await.unwrap(),
        vec![],
        "nothing stored"
    );
}

#[tokio::test]
async fn bad_credentials_and_foreign_ori_are_refused_and_audited() {
    let h = harness().await;
    let body = generated(1).remove(0).to_string();
    let before = denials(&h).await;
    let (s, _) = send(&h, post("/v1/iaq", None, "application/json", body.clone())).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = send(
        &h,
        post(
            "/v1/iaq",
            Some((MD, "wrong-key")),
            "application/json",
            body.clone(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = send(
        &h,
        post(
            "/v1/iaq",
            Some(("ZZ9990000", MD_KEY)),
            "application/json",
            body.clone(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut foreign: Value = serde_json::from_str(&body).unwrap();
    foreign["ori"] = json!(VA);
    let (s, _) = post_iaq(&h, &foreign).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let nlets = "IAQ.VA0010000.AX.TXT PUR/C.ATN/X.PHN/4105550100.NAM/DOE, JOHN.DOB/19850312.SEX/M.POB/MX.CUS/Y.OFF/1313";
    let (s, _) = send(
        &h,
        post("/v1/nlets", Some((MD, MD_KEY)), "text/plain", nlets),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(denials(&h).await, before + 5);
    assert_eq!(
        h.state.store.count_queries_by_state().await.unwrap(),
        vec![],
        "nothing stored"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let h = harness().await;
    let big = format!("{{\"remarks\":\"{}\"}}", "x".repeat(32 * 1024));
    let (s, _) = send(
        &h,
        post(
            "/v1/iaq",
            Some((MD, MD_KEY)),
            "application/json",
            big.clone(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let (s, _) = send(&h, post("/v1/nlets", Some((MD, MD_KEY)), "text/plain", big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn another_agency_cannot_read_a_query() {
    let h = harness().await;
    let (_, v) = post_iaq(&h, &generated(1).remove(0)).await;
    let id = v["query_id"].as_str().unwrap();
    let before = denials(&h).await;
    for path in [format!("/v1/iaq/{id}"), format!("/v1/nlets/{id}")] {
        let (s, text) = send(&h, get(&path, VA, VA_KEY)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {text}");
        assert!(!text.contains(id));
    }
    assert_eq!(denials(&h).await, before + 2);
    let (_, inbox) = send(&h, get("/v1/iar", VA, VA_KEY)).await;
    let inbox: Value = serde_json::from_str(&inbox).unwrap();
    assert!(inbox["deliveries"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn automatic_answers_reach_agency_and_field_office_with_their_views() {
    let h = harness().await;
    let mut answered = Vec::new();
    for body in generated(25) {
        let (s, v) = post_iaq(&h, &body).await;
        if s == StatusCode::OK {
            assert_eq!(v["state"], "answered");
            assert!(v["iar"]["status_text"].is_string(), "{v}");
            answered.push(v["query_id"].as_str().unwrap().to_string());
        }
    }
    assert!(
        !answered.is_empty(),
        "some generated queries are answered automatically"
    );
    for id in &answered {
        let row = h.state.store.get_query(id).await.unwrap().unwrap();
        assert_eq!(row.answered_by.as_deref(), Some("automatic"));
        assert_eq!(row.automatic, Some(true));
        let d = h.state.store.deliveries_of_query(id).await.unwrap();
        let agency = d
            .iter()
            .find(|d| d.recipient_kind == "agency")
            .expect("agency copy");
        let office = d
            .iter()
            .find(|d| d.recipient_kind == "field_office")
            .expect("field office copy");
        assert_eq!(agency.recipient, MD);
        assert_eq!(Some(office.recipient.clone()), row.aor);
        let av: Value = serde_json::from_str(&agency.view_json).unwrap();
        let fv: Value = serde_json::from_str(&office.view_json).unwrap();
        // The agency sees the answer in words, without internal evidence or record ids.
        assert!(
            av.get("evidence").is_none() && av.get("identity").is_none(),
            "{av}"
        );
        assert!(!agency.view_json.contains("record_id"));
        assert!(agency
            .nlets_text
            .as_deref()
            .unwrap()
            .starts_with("IAR.MD0030000."));
        // The field office sees the full answer with its basis.
        assert!(
            fv.get("evidence").is_some() && fv.get("rules_version").is_some(),
            "{fv}"
        );
        let kinds: Vec<String> = h
            .state
            .store
            .query_events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["processed", "issue"]);
    }
    let (s, inbox) = send(&h, get("/v1/iar?limit=500", MD, MD_KEY)).await;
    assert_eq!(s, StatusCode::OK);
    let inbox: Value = serde_json::from_str(&inbox).unwrap();
    assert_eq!(
        inbox["deliveries"].as_array().unwrap().len(),
        answered.len()
    );
    let issued = h
        .state
        .store
        .list_audit(0, 10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(&e.event.action, AuditAction::Decision { decision, .. } if decision.starts_with("IAR issued")))
        .count();
    assert_eq!(issued, answered.len());
}

#[tokio::test]
async fn recovery_processes_a_received_row() {
    let h = harness().await;
    let body = generated(1).remove(0);
    let iaq = verity_workflow::lesc::intake::parse_json(
        body.to_string().as_bytes(),
        &Ori::parse(MD).unwrap(),
        chrono::Utc::now().date_naive(),
    )
    .unwrap();
    // As if the server died right after the commit that acknowledged it.
    h.state
        .store
        .insert_query(&NewQuery {
            query_id: "Q-crashed".into(),
            ori: MD.into(),
            message_id: iaq.message_id.clone(),
            channel: "json".into(),
            received_micros: 1,
            in_custody: iaq.in_custody,
            aor: Some("Baltimore".into()),
            iaq_json: serde_json::to_string(&iaq).unwrap(),
            raw_text: None,
        })
        .await
        .unwrap();
    assert_eq!(h.state.recover_lesc().await.unwrap(), 1);
    let row = h.state.store.get_query("Q-crashed").await.unwrap().unwrap();
    assert_ne!(row.state, "received");
    assert!(row.result_json.is_some());
    assert_eq!(h.state.recover_lesc().await.unwrap(), 0, "nothing left");
    // A resend by the agency now finds the recovered query.
    let (_, v) = post_iaq(&h, &body).await;
    assert_eq!(v["query_id"], "Q-crashed");
}

async fn login(h: &Harness) -> String {
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("username=spec&password={PASSWORD}")))
        .unwrap();
    let resp = router(h.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let c = resp.headers()[header::SET_COOKIE].to_str().unwrap();
    c.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn hits_are_timed_listed_and_answered() {
    let h = harness().await;
    let yq =
        json!({"message_id":"yq-1","priority":"U","ncic_number":"V123456789","name":"DOE, JOHN"});
    let (s, text) = send(
        &h,
        post(
            "/v1/hits",
            Some((MD, MD_KEY)),
            "application/json",
            yq.to_string(),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let id = v["hit_id"].as_str().unwrap().to_string();
    assert_eq!(v["clock"], "waiting");
    let received =
        chrono::DateTime::parse_from_rfc3339(v["received_at"].as_str().unwrap()).unwrap();
    let deadline = chrono::DateTime::parse_from_rfc3339(v["deadline"].as_str().unwrap()).unwrap();
    assert_eq!(
        (deadline - received).num_minutes(),
        10,
        "priority U: 10 minutes"
    );
    let (_, again) = send(
        &h,
        post(
            "/v1/hits",
            Some((MD, MD_KEY)),
            "application/json",
            yq.to_string(),
        ),
    )
    .await;
    assert!(again.contains(&id), "idempotent by message id");
    let (s, text) = send(
        &h,
        post(
            "/v1/hits",
            Some((MD, MD_KEY)),
            "application/json",
            r#"{"priority":"Z"}"#,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        text.contains("message_id") && text.contains("ncic_number"),
        "{text}"
    );
    let (s, _) = send(&h, get(&format!("/v1/hits/{id}"), VA, VA_KEY)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let cookie = login(&h).await;
    let page = Request::get("/lesc/hits")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (s, html) = send(&h, page).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&id) && html.contains("V123456789"), "{html}");
    let answer = Request::post(format!("/lesc/hits/{id}"))
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("answer=will_confirm_by&reason=&minutes=20"))
        .unwrap();
    let (s, html) = send(&h, answer).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("answered"), "{html}");
    let (s, text) = send(&h, get(&format!("/v1/hits/{id}"), MD, MD_KEY)).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["state"], "answered");
    assert_eq!(v["answer"]["kind"], "will_confirm_by");
    assert_eq!(v["clock"], "answered_in_time");
    h.state.lesc_monitor_once().await.unwrap();
    let metrics = h.state.metrics.render();
    assert!(
        metrics.contains("verity_hits_answered_in_time"),
        "compliance is measured"
    );
}

/// The engine reads whole records from the in-memory snapshot in production: for generated
/// queries of every category, its results equal those it gets reading from the store.
#[tokio::test]
async fn answers_from_the_record_snapshot_equal_answers_from_the_store() {
    use verity_workflow::lesc::engine::QueryInput;
    use verity_workflow::lesc::snapshot::SnapshotLookup;
    let h = harness().await;
    let ori = Ori::parse(MD).unwrap();
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let engine = h.state.lesc.engine.read().await;
    let snapshot = h
        .state
        .lesc
        .snapshot
        .as_ref()
        .expect("the harness has a snapshot");
    assert!(!snapshot.is_empty());
    let from_store = verity_server::StoreLookup(&h.state.store);
    let from_snapshot = SnapshotLookup {
        snapshot,
        newer: &[],
    };
    let mut with_candidates = 0;
    for body in generated(80) {
        let iaq =
            verity_workflow::lesc::intake::parse_json(body.to_string().as_bytes(), &ori, today)
                .unwrap();
        let input = QueryInput {
            iaq: &iaq,
            biometric_fin: None,
            today,
        };
        let a = engine.process(&input, &from_store).await.unwrap();
        let b = engine.process(&input, &from_snapshot).await.unwrap();
        assert_eq!(a.to_stored(), b.to_stored(), "query {body}");
        let records = |p: &verity_workflow::lesc::engine::Processed| {
            p.candidates
                .iter()
                .map(|c| c.records.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(records(&a), records(&b), "query {body}");
        with_candidates += usize::from(!a.candidates.is_empty());
    }
    assert!(
        with_candidates > 40,
        "only {with_candidates} queries found anyone"
    );
}

/// Posts `body` as MD and returns the stored query, its status and its stored result.
async fn posted_query(
    h: &Harness,
    body: &Value,
) -> (
    verity_store::queries::QueryRow,
    verity_model::ImmigrationStatus,
    Value,
) {
    let (_, v) = post_iaq(h, body).await;
    let row = h
        .state
        .store
        .get_query(v["query_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let result: Value = serde_json::from_str(row.result_json.as_deref().unwrap()).unwrap();
    let status = serde_json::from_value(result["decision"]["status"].clone()).unwrap();
    (row, status, result)
}

/// A record stored after the snapshot was built (by an import, a booking or another process)
/// counts in the next answer: citizenship evidence stored a moment ago blocks enforcement.
#[tokio::test]
async fn citizenship_stored_after_start_counts_in_the_next_answer() {
    use verity_model::{ImmigrationStatus, SourceRecord};
    let h = harness().await;
    let store = &h.state.store;
    // A query answered with a noncitizen status, about a person whose record carries an
    // identifier the engine follows.
    let mut found: Option<(Value, SourceRecord)> = None;
    'queries: for (i, mut body) in generated(150).into_iter().enumerate() {
        body["message_id"] = json!(format!("before-{i}"));
        let (_, status, result) = posted_query(&h, &body).await;
        if status.is_citizen_or_potential() || status == ImmigrationStatus::NoRecordFound {
            continue;
        }
        let Some(chosen) = result["decision"]["chosen"].as_u64() else {
            continue;
        };
        for id in result["candidates"][chosen as usize]["record_ids"]
            .as_array()
            .unwrap()
        {
            let r = store
                .get_record(id.as_str().unwrap())
                .await
                .unwrap()
                .unwrap();
            if !verity_workflow::lesc::snapshot::lookup_identifiers(&r.identity).is_empty() {
                found = Some((body, r));
                break 'queries;
            }
        }
    }
    let (body, record) = found.expect("a noncitizen answer about a person with an identifier");
    // Naturalization, stored now under the same identity.
    let mut citizenship = serde_json::to_value(&record).unwrap();
    citizenship["record_id"] = json!("CIT-STORED-AFTER-START");
    citizenship["body"] = json!({"system": "citizenship", "evidence": "naturalization_certificate",
        "document_number": "NC00000001", "issued": "2026-01-05"});
    let citizenship: SourceRecord = serde_json::from_value(citizenship).unwrap();
    store.insert_records(&[citizenship]).await.unwrap();
    let mut again = body.clone();
    again["message_id"] = json!("after-naturalization");
    let (row, status, result) = posted_query(&h, &again).await;
    assert!(
        status.is_citizen_or_potential(),
        "{status:?} after naturalization was stored: {result}"
    );
    assert!(row.citizenship_review, "{result}");
}
