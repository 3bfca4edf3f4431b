//! The HTTP layer end to end in process: health, metrics, login, sessions, deny by default,
//! audit of refusals, body limits.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use verity_model::Ori;
use verity_model::{AuditAction, Role};
use verity_server::{protected_routes, router, AppState, ServerConfig};
use verity_store::{Agency, NewUser, Store};
use verity_workflow::credentials::{hash_password, token_digest};
use verity_workflow::AccessPolicy;

const PASSWORD: &str = "a-long-test-password";

struct Harness {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_data_dir(dir.path()).await.expect("store opens");
    for role in Role::ALL {
        store
            .create_user(&NewUser {
                username: role.code().to_string(),
                display_name: role.code().to_string(),
                password_hash: hash_password(PASSWORD).expect("hash"),
                roles: vec![*role],
                agency_ori: None,
            })
            .await
            .expect("user");
    }
    for (ori, key, active) in [
        ("MD0030000", "good-agency-key", true),
        ("VA0010000", "inactive-agency-key", false),
    ] {
        store
            .upsert_agency(&Agency {
                ori: Ori::parse(ori).expect("ori"),
                name: format!("Agency {ori}"),
                kind: "police".into(),
                state: ori[..2].into(),
                county: String::new(),
                field_office: "Baltimore".into(),
                api_key_hash: Some(token_digest(key)),
                active,
            })
            .await
            .expect("agency");
    }
    let config = ServerConfig {
        max_body_bytes: 4096,
        ..ServerConfig::default()
    };
    Harness {
        state: AppState::new(store, AccessPolicy::embedded().expect("policy"), config),
        _dir: dir,
    }
}

async fn send(h: &Harness, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = router(h.state.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header(header::ACCEPT, "text/html");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).expect("request")
}

async fn login(h: &Harness, username: &str, password: &str) -> Option<String> {
    let form = format!("username={username}&password={password}");
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .expect("request");
    let (status, headers, _) = send(h, req).await;
    if status != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = headers.get(header::SET_COOKIE)?.to_str().ok()?;
    Some(cookie.split(';').next()?.to_string())
}

#[tokio::test]
async fn health_and_metrics_are_public() {
    let h = harness().await;
    let (s, _, body) = send(&h, get("/healthz", None)).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
    let (s, headers, _) = send(&h, get("/metrics", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
}

#[tokio::test]
async fn the_console_needs_a_login() {
    let h = harness().await;
    let (s, headers, _) = send(&h, get("/", None)).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/login");
    let api = Request::get("/")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&h, api).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_password_is_refused_and_audited() {
    let h = harness().await;
    assert!(login(&h, "admin", "wrong-password-here").await.is_none());
    assert!(login(&h, "nobody", PASSWORD).await.is_none());
    let entries = h.state.store.list_audit(0, 100).await.expect("audit");
    let failed = entries
        .iter()
        .filter(|e| matches!(e.event.action, AuditAction::LoginFailed { .. }))
        .count();
    assert_eq!(failed, 2);
}

#[tokio::test]
async fn login_logout_round_trip() {
    let h = harness().await;
    let cookie = login(&h, "admin", PASSWORD).await.expect("login succeeds");
    let (s, _, body) = send(&h, get("/", Some(&cookie))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("Welcome, admin"));
    let req = Request::post("/logout")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&h, req).await.0, StatusCode::SEE_OTHER);
    let (s, _, _) = send(&h, get("/", Some(&cookie))).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "the session is gone after logout");
}

/// Deny by default: for every protected route and every role, access is exactly what the
/// policy grants, and every refusal is in the audit log.
#[tokio::test]
async fn every_protected_route_enforces_its_permission() {
    let h = harness().await;
    let policy = AccessPolicy::embedded().expect("policy");
    let mut refusals = 0;
    for role in Role::ALL {
        let cookie = login(&h, role.code(), PASSWORD).await.expect("login");
        let who = verity_workflow::Principal {
            username: role.code().into(),
            roles: vec![*role],
            agency: None,
        };
        for (path, permission, _) in protected_routes() {
            let (s, _, _) = send(&h, get(path, Some(&cookie))).await;
            if policy.allows(&who, permission) {
                // Past the gate: the page itself answers (200, or 404 for the literal
                // `{id}` placeholder, or 405 for a POST-only route), never a refusal.
                assert!(
                    s == StatusCode::OK
                        || s == StatusCode::NOT_FOUND
                        || s == StatusCode::METHOD_NOT_ALLOWED
                        || s == StatusCode::BAD_REQUEST,
                    "{role} should reach {path}, got {s}"
                );
            } else {
                assert_eq!(s, StatusCode::FORBIDDEN, "{role} must not reach {path}");
                refusals += 1;
            }
        }
    }
    assert!(refusals > 0);
    let entries = h.state.store.list_audit(0, 10_000).await.expect("audit");
    let denied = entries
        .iter()
        .filter(|e| matches!(e.event.action, AuditAction::AccessDenied { .. }))
        .count();
    assert_eq!(denied, refusals);
    assert!(h.state.store.verify_audit().await.is_ok());
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let h = harness().await;
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(vec![b'a'; 10_000]))
        .expect("request");
    assert_eq!(send(&h, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let h = harness().await;
    assert_eq!(
        send(&h, get("/no/such/page", None)).await.0,
        StatusCode::NOT_FOUND
    );
}

fn agency_get(path: &str, user: &str, key: &str) -> Request<Body> {
    use base64::Engine;
    let cred = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Basic {cred}"))
        .body(Body::empty())
        .expect("request")
}

/// Only an authenticated, active agency may use the API; every refusal is audited with the
/// ORI it claimed.
#[tokio::test]
async fn agency_credentials_are_checked_and_refusals_audited() {
    let h = harness().await;
    let (s, _, body) = send(&h, agency_get("/v1/whoami", "MD0030000", "good-agency-key")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("\"ori\":\"MD0030000\""));
    let cases = [
        (
            agency_get("/v1/whoami", "MD0030000", "wrong-key"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            agency_get("/v1/whoami", "VA0010000", "good-agency-key"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            agency_get("/v1/whoami", "NOTANORI", "good-agency-key"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            agency_get("/v1/whoami", "VA0010000", "inactive-agency-key"),
            StatusCode::FORBIDDEN,
        ),
        (
            Request::get("/v1/whoami")
                .body(Body::empty())
                .expect("request"),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    let n = cases.len();
    for (req, expected) in cases {
        let (s, _, body) = send(&h, req).await;
        assert_eq!(s, expected, "{body}");
        assert!(body.contains("error"));
    }
    let entries = h.state.store.list_audit(0, 1000).await.expect("audit");
    let denied: Vec<_> = entries
        .iter()
        .filter(|e| matches!(e.event.action, AuditAction::AccessDenied { .. }))
        .collect();
    assert_eq!(denied.len(), n);
    assert!(denied
        .iter()
        .any(|e| e.event.agency.as_ref().map(|o| o.as_str()) == Some("VA0010000")));
    // A console session is not an agency credential.
    let cookie = login(&h, "agency_user", PASSWORD).await.expect("login");
    assert_eq!(
        send(&h, get("/v1/whoami", Some(&cookie))).await.0,
        StatusCode::UNAUTHORIZED
    );
}
