//! Console sessions and the authorization gate every protected route passes through.

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Form, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use verity_model::{AuditAction, AuditEvent, Purpose};
use verity_workflow::credentials::{generate_secret, token_digest, verify_password};
use verity_workflow::{Permission, Principal};

pub const SESSION_COOKIE: &str = "verity_session";

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The logged-in user, if the request carries a live session of an active account.
pub async fn principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, AppError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let Some(session) = state.store.get_session(&token_digest(&token)).await? else {
        return Ok(None);
    };
    if session.expires_at <= chrono::Utc::now() {
        return Ok(None);
    }
    let Some(user) = state.store.get_user(&session.username).await? else {
        return Ok(None);
    };
    if !user.active {
        return Ok(None);
    }
    Ok(Some(Principal {
        username: user.username,
        roles: user.roles,
        agency: user.agency_ori,
    }))
}

/// The gate: authenticate, then allow only what the access policy grants. Denials are audited.
pub async fn require(
    state: AppState,
    permission: Permission,
    mut req: Request,
    next: Next,
) -> Response {
    let who = match principal(&state, req.headers()).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let wants_html = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|a| a.contains("text/html") || a.contains("*/*"));
            return if wants_html {
                Redirect::to("/login").into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "authentication required").into_response()
            };
        }
        Err(e) => return e.into_response(),
    };
    if !state.access.allows(&who, permission) {
        metrics::counter!("verity_access_denied_total").increment(1);
        let event = AuditEvent {
            actor: who.username.clone(),
            agency: who.agency.clone(),
            purpose: Purpose::Administration,
            action: AuditAction::AccessDenied {
                resource: req.uri().path().to_string(),
                reason: format!("lacks permission {}", permission.code()),
            },
        };
        if let Err(e) = state.store.append_audit(event).await {
            return AppError::from(e).into_response();
        }
        return (
            StatusCode::FORBIDDEN,
            Html(format!(
                "<!doctype html><meta charset=utf-8><title>Verity: not allowed</title><main><h1>Not allowed</h1><p>Your roles do not include the permission <code>{}</code>. This refusal is in the audit log.</p><p><a href=\"/\">Home</a></p></main>",
                permission.code()
            )),
        )
            .into_response();
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
}

pub async fn login_page() -> Result<Html<String>, AppError> {
    Ok(Html(askama::Template::render(&LoginPage { error: None })?))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

pub async fn login_submit(
    State(state): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let username = form.username.trim().to_string();
    let user = state.store.get_user(&username).await?;
    let ok = user
        .as_ref()
        .is_some_and(|u| u.active && verify_password(&u.password_hash, &form.password));
    let action = if ok {
        AuditAction::LoginSucceeded
    } else {
        AuditAction::LoginFailed {
            reason: "unknown user, inactive account or wrong password".into(),
        }
    };
    metrics::counter!("verity_logins_total", "outcome" => if ok { "ok" } else { "failed" })
        .increment(1);
    state
        .store
        .append_audit(AuditEvent {
            actor: username.clone(),
            agency: user.as_ref().and_then(|u| u.agency_ori.clone()),
            purpose: Purpose::Administration,
            action,
        })
        .await?;
    if !ok {
        let page = LoginPage {
            error: Some("Wrong username or password.".into()),
        };
        return Ok((
            StatusCode::UNAUTHORIZED,
            Html(askama::Template::render(&page)?),
        )
            .into_response());
    }
    let token = generate_secret(40);
    let expires = chrono::Utc::now() + chrono::Duration::minutes(state.config.session_minutes);
    state
        .store
        .create_session(&token_digest(&token), &username, expires)
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        state.config.session_minutes * 60
    );
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = session_token(&headers) {
        let digest = token_digest(&token);
        if let Some(session) = state.store.get_session(&digest).await? {
            state.store.delete_session(&digest).await?;
            state
                .store
                .append_audit(AuditEvent {
                    actor: session.username,
                    agency: None,
                    purpose: Purpose::Administration,
                    action: AuditAction::Logout,
                })
                .await?;
        }
    }
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}
