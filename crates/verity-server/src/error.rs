//! Failures as the operator and the user should see them.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// A failure in a handler. Storage details are logged, not shown.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("storage failure: {0}")]
    Store(#[from] verity_store::StoreError),
    #[error("page rendering failed: {0}")]
    Render(#[from] askama::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    /// A failure inside the server itself (a task that stopped, a resource that closed).
    #[error("internal failure: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Store(_) | AppError::Render(_) | AppError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// What the person at the other end reads.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Store(_) => "The data store could not complete this request. The operator has the details in the server log.".into(),
            AppError::Render(_) => "This page could not be drawn. The operator has the details in the server log.".into(),
            AppError::BadRequest(m) => m.clone(),
            AppError::NotFound => "No such page.".into(),
            AppError::Internal(_) => "The server could not complete this request. The operator has the details in the server log.".into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>Verity: {code}</title><main><h1>{code}</h1><p>{msg}</p><p><a href=\"/\">Home</a></p></main>",
            code = status,
            msg = html_escape(&self.public_message())
        );
        (status, Html(body)).into_response()
    }
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_statuses_and_plain_messages() {
        assert_eq!(AppError::NotFound.status(), StatusCode::NOT_FOUND);
        let e = AppError::BadRequest("dob: '1985-13-01' is not a date".into());
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.public_message().contains("dob"));
        assert_eq!(html_escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
