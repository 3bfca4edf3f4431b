//! PERC console and API: triage queue, detainer preparation, supervisor approval, tracking board and PDF preview.

use crate::state::AppState;
use axum::routing::MethodRouter;
use verity_workflow::Permission;

/// Console pages of this area: (path, permission, handler).
pub fn staff_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    Vec::new()
}

/// Agency API routes of this area: (path, permission, handler).
pub fn agency_routes() -> Vec<(&'static str, Permission, MethodRouter<AppState>)> {
    Vec::new()
}

/// Navigation entries of this area: (href, label, permission).
pub const NAV: &[(&str, &str, Permission)] = &[];

/// Called by the LESC side after every IAR is issued (automatically or by a specialist): PERC
/// takes the ones with an actionable status for people in custody in its covered AORs.
pub async fn on_iar_issued(
    state: &AppState,
    query: &verity_store::queries::QueryRow,
) -> Result<(), crate::error::AppError> {
    let _ = (state, query);
    Ok(())
}
