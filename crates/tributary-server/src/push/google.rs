//! Gmail push through a Pub/Sub push subscription: `POST /push/google/{tenant}`.
//!
//! A delivery is trusted only when its OIDC token verifies against Google's
//! certificates, was issued by Google for this tenant's endpoint (the audience) and names
//! the tenant's own service account (the one its subscription signs as). Then the
//! mailbox's sync is brought forward and the answer is `204` at once: Pub/Sub retries
//! anything else, and the sync itself runs on a worker.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tributary_google::push::{PushAuthError, parse_envelope};
use tributary_store::{ConnectionKind, TenantId};

/// The route, in axum's path syntax.
pub const ROUTE: &str = "/push/google/{tenant}";

/// Longest tenant id accepted in the path.
pub(super) const MAX_TENANT_LEN: usize = 128;

/// The endpoint (and the OIDC audience) of `tenant`'s Gmail push subscription under
/// `public_url`: binding the audience to the tenant means a token minted for one
/// tenant's subscription is refused at another's.
pub fn endpoint(public_url: &str, tenant: &TenantId) -> String {
    format!(
        "{}/push/google/{}",
        public_url.trim_end_matches('/'),
        tenant.as_str()
    )
}

pub(super) fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn auth_refusal(error: &PushAuthError) -> Response {
    let status = if error.is_unavailable() {
        // Pub/Sub retries a 5xx: the delivery is kept until the certificates are back.
        StatusCode::SERVICE_UNAVAILABLE
    } else if error.is_forbidden() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNAUTHORIZED
    };
    refuse(status, &error.to_string())
}

/// Receives one Pub/Sub push delivery for `tenant`.
pub async fn receive(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(verifier) = state.google_push.clone() else {
        return refuse(StatusCode::NOT_FOUND, "push is not configured");
    };
    if tenant.is_empty() || tenant.len() > MAX_TENANT_LEN {
        return refuse(StatusCode::NOT_FOUND, "no such tenant");
    }
    // Checked before anything is read: an anonymous request costs no store read (and
    // no key decryption).
    let Some(token) = bearer(&headers) else {
        return auth_refusal(&PushAuthError::MissingToken);
    };
    let tenant = TenantId::new(tenant);
    // The service account the tenant's subscription signs as is the tenant's own.
    let sender = match state.runtime.google_setup(&tenant).await {
        Ok(Some(setup)) => setup.client_email,
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "no Google connection here"),
        Err(error) => {
            tracing::warn!(tenant = %tenant.as_str(), error = ?error.to_string(), "push: cannot read the connection");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    };
    let audience = endpoint(&state.config.public_url, &tenant);
    if let Err(error) = verifier.verify(token, &audience, &sender).await {
        tracing::info!(tenant = %tenant.as_str(), error = ?error.to_string(), "push: delivery refused");
        return auth_refusal(&error);
    }
    let notification = match parse_envelope(&body) {
        Ok(notification) => notification,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    match state
        .runtime
        .sync_mailbox_now(&tenant, ConnectionKind::Google, &notification.email_address)
        .await
    {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        // Acknowledged: a mailbox we do not sync (unlinked, or never linked) has
        // nothing to bring forward, and a retry would not change that.
        Ok(None) => {
            tracing::debug!(tenant = %tenant.as_str(), mailbox = ?notification.email_address, "push: no runnable link");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => {
            tracing::warn!(tenant = %tenant.as_str(), error = ?error.to_string(), "push: cannot schedule the sync");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}
