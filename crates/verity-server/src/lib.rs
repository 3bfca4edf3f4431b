//! Verity's HTTP face: the JSON/text API for agencies, the server-rendered console for staff,
//! and Prometheus metrics.
//!
//! API boundary. Architecture invariant: handlers authenticate, check one [`Permission`], call
//! the workflow and store, and render. They hold no business rules: safeguards live in
//! `verity-workflow`. Every protected route is registered with the permission it needs, so a
//! route without one cannot exist (deny by default).

mod agency_auth;
mod api;
pub mod bookings;
pub mod config;
mod console;
mod error;
mod lesc_api;
mod lesc_console;
mod metrics_setup;
mod ncatc;
mod perc;
pub mod queue;
mod routes;
mod session;
mod state;

pub use config::ServerConfig;
pub use lesc_api::{read_records_for_engine, StoreLookup};
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
pub(crate) fn nav_items() -> Vec<(&'static str, &'static str, Permission)> {
    let mut items = vec![("/", "Home", Permission::ViewConsole)];
    for area in [
        lesc_api::NAV,
        lesc_console::NAV,
        perc::NAV,
        ncatc::NAV,
        bookings::NAV,
    ] {
        items.extend_from_slice(area);
    }
    items.push(("/admin/users", "Users", Permission::ManageUsers));
    items.push(("/audit", "Audit log", Permission::ViewAuditLog));
    items
}
