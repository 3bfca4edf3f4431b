//! Verity's HTTP face: the JSON/text API for agencies, the server-rendered console for staff,
//! and Prometheus metrics.
//!
//! API boundary. Architecture invariant: handlers authenticate, check one [`Permission`], call
//! the workflow and store, and render. They hold no business rules: safeguards live in
//! `verity-workflow`. Every protected route is registered with the permission it needs, so a
//! route without one cannot exist (deny by default).

mod agency_auth;
mod api;
pub mod config;
mod console;
mod error;
mod metrics_setup;
pub mod queue;
mod routes;
mod session;
mod state;

pub use config::ServerConfig;
pub use routes::{agency_routes, protected_routes, router};
pub use state::AppState;

use verity_workflow::Permission;

/// Binds and serves until Ctrl-C.
pub async fn serve(state: AppState, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Whether a permission is needed for a console page: used by the navigation.
pub(crate) fn nav_items() -> &'static [(&'static str, &'static str, Permission)] {
    &[
        ("/", "Home", Permission::ViewConsole),
        ("/admin/users", "Users", Permission::ManageUsers),
        ("/audit", "Audit log", Permission::ViewAuditLog),
    ]
}
