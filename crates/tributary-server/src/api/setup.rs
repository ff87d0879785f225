//! Google connection, capture switch, policy and User Delegation Sync: admin only.

use super::extract::ApiJson;
use crate::AppState;
use crate::auth::{AdminCaller, ApiCaller};
use crate::error::ApiError;
use crate::notify::{self, Delivery};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_core::PolicySettings;
use tributary_sync::RuntimeError;
use tributary_sync::runtime::KeyReplacement;

/// The key file as uploaded: its JSON text, or the JSON object itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    key_file: Value,
    admin_email: String,
    /// Replace a stored key even when the new one fails the connection test (the stored
    /// one is already dead). Without it a failing key is refused and the stored one kept.
    #[serde(default)]
    replace_anyway: bool,
}

pub async fn connection(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    match state.runtime.google_setup(&caller.tenant).await? {
        Some(setup) => Ok(Json(json!(setup))),
        None => Err(ApiError::not_found(
            "no Google Workspace connection yet: POST the service-account key file first",
        )),
    }
}

pub async fn connect(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<ConnectRequest>,
) -> Result<Json<Value>, ApiError> {
    let key = match request.key_file {
        Value::String(text) => text.into_bytes(),
        object @ Value::Object(_) => {
            serde_json::to_vec(&object).map_err(|e| ApiError::internal(&e))?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_key_file",
                "key_file must be the key file's JSON text or its JSON object",
            )
            .with_field("key_file"));
        }
    };
    let replacement = if request.replace_anyway {
        KeyReplacement::Anyway
    } else {
        KeyReplacement::IfItWorks
    };
    let setup = state
        .runtime
        .upload_google_key(
            &caller.tenant,
            &key,
            &request.admin_email,
            &caller.actor,
            replacement,
        )
        .await
        .map_err(connect_error)?;
    Ok(Json(json!(setup)))
}

/// The upload's own refusals; the rest as every handler answers them.
fn connect_error(error: RuntimeError) -> ApiError {
    match error {
        RuntimeError::AdminDomain { .. } => {
            ApiError::unprocessable("invalid_admin_email", error.to_string())
                .with_field("admin_email")
        }
        RuntimeError::KeyNotReplaced { ref check } => {
            let provider = check.status.map(|status| (status, check.message.clone()));
            let message = format!(
                "{error}. Send \"replace_anyway\": true to replace the working key anyway."
            );
            ApiError {
                provider,
                ..ApiError::conflict("key_test_failed", message).with_field("key_file")
            }
        }
        other => other.into(),
    }
}

pub async fn test_connection(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let check = state
        .runtime
        .test_connection(&caller.tenant, &caller.actor)
        .await?;
    Ok(Json(json!(check)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    enabled: bool,
}

pub async fn capture(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let enabled = state.runtime.capture_enabled(&caller.tenant).await?;
    Ok(Json(json!({ "enabled": enabled })))
}

/// Turning capture on mails the tenant's admins (as the console does); the answer says
/// how delivery went, so an API client can tell an admin when it failed.
pub async fn set_capture(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<CaptureRequest>,
) -> Result<Json<Value>, ApiError> {
    let was_enabled = state.runtime.capture_enabled(&caller.tenant).await?;
    state
        .runtime
        .set_capture_enabled(&caller.tenant, request.enabled, &caller.actor)
        .await?;
    let enabled = state.runtime.capture_enabled(&caller.tenant).await?;
    if !enabled || was_enabled {
        return Ok(Json(json!({ "enabled": enabled })));
    }
    let notification = notify_admins(&state, &caller).await?;
    Ok(Json(
        json!({ "enabled": enabled, "notification": notification }),
    ))
}

async fn notify_admins(state: &AppState, caller: &ApiCaller) -> Result<Value, ApiError> {
    let recipients = state.store().active_admin_emails(&caller.tenant).await?;
    let notice = notify::CaptureNotice {
        tenant: caller.tenant.as_str(),
        enabled_by: &caller.user.email,
        console_url: &state.config.public_url,
    };
    let delivery =
        notify::send_capture_enabled(state.config.smtp.as_ref(), &recipients, &notice).await;
    Ok(match delivery {
        Delivery::Sent(to) => json!({ "delivery": "sent", "recipients": to }),
        Delivery::NotConfigured => json!({ "delivery": "not_configured",
            "message": "no SMTP server is configured, so the admins were not notified" }),
        Delivery::NoRecipients => json!({ "delivery": "no_recipients",
            "message": "the tenant has no admin account to notify" }),
        Delivery::Failed(reason) => json!({ "delivery": "failed", "message": reason }),
    })
}

pub async fn policy(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<PolicySettings>, ApiError> {
    Ok(Json(state.runtime.policy(&caller.tenant).await?))
}

pub async fn set_policy(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(settings): ApiJson<PolicySettings>,
) -> Result<Json<PolicySettings>, ApiError> {
    state
        .runtime
        .set_policy(&caller.tenant, &settings, &caller.actor)
        .await?;
    Ok(Json(state.runtime.policy(&caller.tenant).await?))
}

pub async fn delegation(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let report = state.runtime.delegation_report(&caller.tenant).await?;
    Ok(Json(json!({ "last_result": report })))
}

pub async fn rebuild(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let report = state.runtime.rebuild(&caller.tenant, &caller.actor).await?;
    Ok(Json(json!(report)))
}
