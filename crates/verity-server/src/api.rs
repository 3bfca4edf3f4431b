//! The agency-facing JSON API.

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Extension, State};
use axum::Json;
use serde::Serialize;
use verity_workflow::Principal;

#[derive(Serialize)]
pub struct WhoAmI {
    ori: String,
    name: String,
    field_office: String,
}

/// Lets an agency check its credentials.
pub async fn whoami(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<WhoAmI>, AppError> {
    let ori = who.agency.ok_or(AppError::NotFound)?;
    let agency = state
        .store
        .get_agency(&ori)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(WhoAmI {
        ori: agency.ori.to_string(),
        name: agency.name,
        field_office: agency.field_office,
    }))
}
