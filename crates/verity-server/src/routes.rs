//! The route table. Public routes are listed explicitly in [`router`]; every other route is in
//! [`protected_routes`] with the permission it needs. There is no other way in.

use crate::agency_auth;
use crate::api;
use crate::console;
use crate::error::AppError;
use crate::session;
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use verity_workflow::Permission;

/// Every protected route with the one permission it needs. This table is the only place a
/// protected route can be added, so none exists without a permission.
pub fn protected_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    let mut routes = vec![
        ("/", Permission::ViewConsole, get(console::home)),
        (
            "/admin/users",
            Permission::ManageUsers,
            get(console::users).post(console::create_user),
        ),
        ("/audit", Permission::ViewAuditLog, get(console::audit_log)),
    ];
    routes.extend(crate::lesc_api::staff_routes());
    routes.extend(crate::lesc_console::staff_routes());
    routes.extend(crate::perc::staff_routes());
    routes.extend(crate::ncatc::staff_routes());
    routes.extend(crate::bookings::staff_routes());
    routes
}

/// Every agency API route with the permission it needs; agencies authenticate with their ORI
/// and API key.
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    let mut routes = vec![("/v1/whoami", Permission::SubmitQuery, get(api::whoami))];
    routes.extend(crate::lesc_api::agency_routes());
    routes.extend(crate::lesc_console::agency_routes());
    routes.extend(crate::perc::agency_routes());
    routes.extend(crate::ncatc::agency_routes());
    routes.extend(crate::bookings::agency_routes());
    routes
}

/// Who a route serves, and so how its callers authenticate.
#[derive(Clone, Copy)]
enum Caller {
    /// Console users with a login session.
    Staff,
    /// Agencies' systems with their ORI and API key.
    Agency,
}

/// Wraps a handler in its gate: authenticate the caller, then demand `permission`.
fn gate(
    state: &AppState,
    caller: Caller,
    permission: Permission,
    handler: MethodRouter<AppState>,
) -> MethodRouter<AppState> {
    let st = state.clone();
    handler.layer(middleware::from_fn(move |req: Request, next: Next| {
        let st = st.clone();
        async move {
            match caller {
                Caller::Staff => session::require(st, permission, req, next).await,
                Caller::Agency => agency_auth::require_agency(st, permission, req, next).await,
            }
        }
    }))
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n").into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The console's stylesheets, embedded: one shared, one per area.
async fn stylesheet(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let css = match file.as_str() {
        "style.css" => include_str!("../static/style.css"),
        "lesc.css" => include_str!("../static/lesc.css"),
        "perc.css" => include_str!("../static/perc.css"),
        "ncatc.css" => include_str!("../static/ncatc.css"),
        _ => return AppError::NotFound.into_response(),
    };
    ([(header::CONTENT_TYPE, "text/css")], css).into_response()
}

async fn count_requests(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string());
    let resp = next.run(req).await;
    metrics::counter!(
        "verity_http_requests_total",
        "route" => path.unwrap_or_else(|| "unmatched".into()),
        "status" => resp.status().as_u16().to_string()
    )
    .increment(1);
    resp
}

pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    for (path, permission, handler) in protected_routes() {
        app = app.route(path, gate(&state, Caller::Staff, permission, handler));
    }
    for (path, permission, handler) in agency_routes() {
        app = app.route(path, gate(&state, Caller::Agency, permission, handler));
    }
    for (path, handler) in crate::lesc_api::public_routes() {
        app = app.route(path, handler);
    }
    let max_body = state.config.max_body_bytes;
    app.route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/static/{file}", get(stylesheet))
        .route(
            "/login",
            get(session::login_page).post(session::login_submit),
        )
        .route("/logout", post(session::logout))
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn(count_requests))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
