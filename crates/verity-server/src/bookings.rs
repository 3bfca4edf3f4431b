//! Bookings: POST /v1/bookings takes an ANSI/NIST ten-print transaction, identifies it 1:N and starts the query.

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
