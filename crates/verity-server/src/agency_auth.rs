//! Agency API credentials: HTTP Basic with the ORI as user name and the issued API key as
//! password. Only the key's SHA-256 is stored. Every refusal is audited with the ORI claimed.

use crate::error::AppError;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use verity_model::{AuditAction, AuditEvent, Ori, Purpose, Role};
use verity_workflow::credentials::token_digest;
use verity_workflow::{Permission, Principal};

/// Why an agency request was refused: the status and the message the agency reads.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub reason: &'static str,
    pub claimed_ori: Option<Ori>,
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, key) = text.split_once(':')?;
    Some((user.to_string(), key.to_string()))
}

/// The agency behind a request, or why it is refused.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<Principal, Refused>, AppError> {
    let refuse = |status, reason, claimed_ori| {
        Ok(Err(Refused {
            status,
            reason,
            claimed_ori,
        }))
    };
    let Some((user, key)) = basic_credentials(headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "agency credentials required (HTTP Basic: ORI and API key)",
            None,
        );
    };
    let Ok(ori) = Ori::parse(&user) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the user name is not a valid 9-character ORI",
            None,
        );
    };
    let Some(agency) = state
        .store
        .agency_by_api_key_hash(&token_digest(&key))
        .await?
    else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unknown ORI or wrong API key",
            Some(ori),
        );
    };
    if agency.ori != ori {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unknown ORI or wrong API key",
            Some(ori),
        );
    }
    if !agency.active {
        return refuse(
            StatusCode::FORBIDDEN,
            "this agency is not authorized to query",
            Some(ori),
        );
    }
    Ok(Ok(Principal {
        username: format!("agency:{ori}"),
        roles: vec![Role::AgencyUser],
        agency: Some(ori),
    }))
}

/// The gate for agency API routes: authenticate the agency, then check the permission.
pub async fn require_agency(
    state: AppState,
    permission: Permission,
    mut req: Request,
    next: Next,
) -> Response {
    let outcome = match authenticate(&state, req.headers()).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let (who, refused) = match outcome {
        Ok(p) if state.access.allows(&p, permission) => (p, None),
        Ok(p) => {
            let ori = p.agency.clone();
            (
                p,
                Some(Refused {
                    status: StatusCode::FORBIDDEN,
                    reason: "this agency may not use this service",
                    claimed_ori: ori,
                }),
            )
        }
        Err(r) => (
            Principal {
                username: "unauthenticated".into(),
                roles: vec![],
                agency: None,
            },
            Some(r),
        ),
    };
    if let Some(r) = refused {
        metrics::counter!("verity_access_denied_total").increment(1);
        let event = AuditEvent {
            actor: r
                .claimed_ori
                .as_ref()
                .map(|o| format!("agency:{o}"))
                .unwrap_or_else(|| who.username.clone()),
            agency: r.claimed_ori.clone(),
            purpose: Purpose::CriminalJustice,
            action: AuditAction::AccessDenied {
                resource: req.uri().path().to_string(),
                reason: r.reason.to_string(),
            },
        };
        if let Err(e) = state.store.append_audit(event).await {
            return AppError::from(e).into_response();
        }
        let mut resp = (
            r.status,
            axum::Json(serde_json::json!({ "error": r.reason })),
        )
            .into_response();
        if r.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"verity\""),
            );
        }
        return resp;
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_decoded() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode("MD0030000:secret:with:colons");
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {v}").parse().expect("header"),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("MD0030000".into(), "secret:with:colons".into()))
        );
        h.insert(header::AUTHORIZATION, "Bearer x".parse().expect("header"));
        assert_eq!(basic_credentials(&h), None);
    }
}
