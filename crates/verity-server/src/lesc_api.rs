//! LESC agency API: POST /v1/iaq (JSON) and /v1/nlets (text), answers and deliveries, NCIC hit confirmation, and the processing of accepted queries (inline, recovered at start).

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
