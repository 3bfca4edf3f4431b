//! Server-rendered console pages (askama templates in `templates/`).

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Extension, Form, State};
use axum::response::Html;
use serde::Deserialize;
use verity_model::{AuditAction, AuditEvent, Ori, Purpose, Role};
use verity_store::NewUser;
use verity_workflow::credentials::{generate_secret, hash_password};
use verity_workflow::Principal;

pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
}

/// The navigation entries this user's roles may see (every console page shows them).
pub(crate) fn nav_for(state: &AppState, who: &Principal) -> Vec<NavItem> {
    crate::nav_items()
        .into_iter()
        .filter(|(_, _, p)| state.access.allows(who, *p))
        .map(|(href, label, _)| NavItem { href, label })
        .collect()
}

#[derive(askama::Template)]
#[template(path = "home.html")]
struct HomePage {
    nav: Vec<NavItem>,
    username: String,
    roles: Vec<String>,
    permissions: Vec<String>,
    counts: Vec<(String, u64)>,
    total: u64,
    access_version: String,
}

pub async fn home(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    let counts: Vec<(String, u64)> = state
        .store
        .count_records_by_system()
        .await?
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect();
    let page = HomePage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        roles: who.roles.iter().map(|r| r.to_string()).collect(),
        permissions: state
            .access
            .permissions_of(&who)
            .into_iter()
            .map(|p| p.code().to_string())
            .collect(),
        total: counts.iter().map(|(_, n)| n).sum(),
        counts,
        access_version: state.access.version.clone(),
    };
    Ok(Html(askama::Template::render(&page)?))
}

pub struct UserRow {
    pub username: String,
    pub display_name: String,
    pub roles: String,
    pub agency: String,
    pub active: bool,
}

#[derive(askama::Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Vec<NavItem>,
    username: String,
    users: Vec<UserRow>,
    all_roles: Vec<String>,
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn users_page(
    state: &AppState,
    who: &Principal,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<Html<String>, AppError> {
    let users = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserRow {
            username: u.username,
            display_name: u.display_name,
            roles: u
                .roles
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            agency: u.agency_ori.map(|o| o.to_string()).unwrap_or_default(),
            active: u.active,
        })
        .collect();
    let page = UsersPage {
        nav: nav_for(state, who),
        username: who.username.clone(),
        users,
        all_roles: Role::ALL.iter().map(|r| r.to_string()).collect(),
        created,
        error,
    };
    Ok(Html(askama::Template::render(&page)?))
}

pub async fn users(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    users_page(&state, &who, None, None).await
}

#[derive(Deserialize)]
pub struct CreateUserForm {
    username: String,
    display_name: String,
    role: String,
    agency_ori: String,
}

fn validate_new_user(form: &CreateUserForm) -> Result<(String, Role, Option<Ori>), String> {
    let username = form.username.trim().to_ascii_lowercase();
    if username.len() < 3
        || username.len() > 32
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err("username: 3 to 32 letters, digits, '.', '_' or '-'".into());
    }
    let role = Role::parse(&form.role).map_err(|e| format!("role: {}", e.problem))?;
    let agency = match form.agency_ori.trim() {
        "" => None,
        s => Some(Ori::parse(s).map_err(|e| format!("agency_ori: {}", e.problem))?),
    };
    if role == Role::AgencyUser && agency.is_none() {
        return Err("agency_ori: an agency user must belong to an agency".into());
    }
    Ok((username, role, agency))
}

/// Creates an account with a one-time password shown once to the administrator.
pub async fn create_user(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Form(form): Form<CreateUserForm>,
) -> Result<Html<String>, AppError> {
    let (username, role, agency) = match validate_new_user(&form) {
        Ok(v) => v,
        Err(msg) => return users_page(&state, &who, None, Some(msg)).await,
    };
    if state.store.get_user(&username).await?.is_some() {
        return users_page(
            &state,
            &who,
            None,
            Some(format!("username: '{username}' is taken")),
        )
        .await;
    }
    let password = generate_secret(20);
    let hash = hash_password(&password).map_err(|e| AppError::BadRequest(e.to_string()))?;
    state
        .store
        .create_user(&NewUser {
            username: username.clone(),
            display_name: form.display_name.trim().to_string(),
            password_hash: hash,
            roles: vec![role],
            agency_ori: agency.clone(),
        })
        .await?;
    state
        .store
        .append_audit(AuditEvent {
            actor: who.username.clone(),
            agency: None,
            purpose: Purpose::Administration,
            action: AuditAction::UserCreated {
                username: username.clone(),
                roles: vec![role.to_string()],
            },
        })
        .await?;
    users_page(&state, &who, Some((username, password)), None).await
}

pub struct AuditRow {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub agency: String,
    pub purpose: String,
    pub action: String,
}

#[derive(askama::Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Vec<NavItem>,
    username: String,
    chain: String,
    rows: Vec<AuditRow>,
}

pub async fn audit_log(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Html<String>, AppError> {
    let chain = match state.store.verify_audit().await {
        Ok(n) => format!("Hash chain intact: {n} entries verified."),
        Err(e) => format!("HASH CHAIN BROKEN: {e}"),
    };
    let (total, _) = state.store.audit_head().await?;
    let from = total.saturating_sub(200);
    let mut rows: Vec<AuditRow> = state
        .store
        .list_audit(from, 200)
        .await?
        .into_iter()
        .map(|e| AuditRow {
            seq: e.seq,
            at: e.at,
            actor: e.event.actor,
            agency: e.event.agency.map(|o| o.to_string()).unwrap_or_default(),
            purpose: e.event.purpose.to_string(),
            action: serde_json::to_string(&e.event.action).unwrap_or_default(),
        })
        .collect();
    rows.reverse();
    let page = AuditPage {
        nav: nav_for(&state, &who),
        username: who.username.clone(),
        chain,
        rows,
    };
    Ok(Html(askama::Template::render(&page)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(u: &str, role: &str, ori: &str) -> CreateUserForm {
        CreateUserForm {
            username: u.into(),
            display_name: "X".into(),
            role: role.into(),
            agency_ori: ori.into(),
        }
    }

    #[test]
    fn new_user_form_errors_name_the_field() {
        assert!(validate_new_user(&form("ab", "admin", ""))
            .unwrap_err()
            .starts_with("username"));
        assert!(validate_new_user(&form("alice", "wizard", ""))
            .unwrap_err()
            .starts_with("role"));
        assert!(validate_new_user(&form("alice", "agency_user", ""))
            .unwrap_err()
            .starts_with("agency_ori"));
        assert!(validate_new_user(&form("alice", "agency_user", "BAD"))
            .unwrap_err()
            .starts_with("agency_ori"));
        assert!(validate_new_user(&form("Alice", "auditor", "")).is_ok());
    }
}
