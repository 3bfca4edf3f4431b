//! LESC console: the specialist review queue, query detail with candidates side by side, the person-centric subject view and the IAR preview.

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
