//! Google and Microsoft 365 connections, capture switch, policy and User Delegation
//! Sync: admin only.

use super::extract::ApiJson;
use crate::AppState;
use crate::auth::{AdminCaller, ApiCaller};
use crate::console::setup_microsoft::{
    ConsentAnswer, consent_outcome, consent_url, private_key_block,
};
use crate::error::ApiError;
use crate::notify::{self, Delivery};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_core::PolicySettings;
use tributary_sync::RuntimeError;
use tributary_sync::runtime::{KeyReplacement, MicrosoftCredential, MicrosoftSetup};

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

/// The app registration: both IDs, and a client secret or a certificate (PEM) with its
/// private key (PEM; may be left out when `certificate_pem` holds the key too).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftConnectRequest {
    tenant_id: String,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    certificate_pem: Option<String>,
    #[serde(default)]
    private_key_pem: Option<String>,
}

/// Where Microsoft should send the admin back after consent, and the caller's own
/// `state` to recognise the answer by.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentLinkRequest {
    redirect_uri: String,
    state: String,
}

/// The query Microsoft's consent page redirected with, as the caller received it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    #[serde(default)]
    admin_consent: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Longest redirect URI accepted (Entra ID's own limit is 256 characters).
const MAX_REDIRECT_URI_LEN: usize = 2_048;

/// Longest caller `state` carried through consent.
const MAX_STATE_LEN: usize = 512;

fn not_connected_to_microsoft() -> ApiError {
    ApiError::conflict(
        "not_connected",
        "no Microsoft 365 connection yet: POST the app registration to /microsoft/connection first",
    )
}

/// A Microsoft field's refusal names it; the rest as every handler answers them.
fn microsoft_error(error: RuntimeError) -> ApiError {
    match error {
        RuntimeError::MicrosoftField { field, .. } => {
            let code = match field {
                "tenant_id" => "invalid_tenant_id",
                "client_id" => "invalid_client_id",
                "client_secret" => "invalid_client_secret",
                "certificate" => "invalid_certificate",
                "tenant" => "consent_other_directory",
                _ => "invalid_field",
            };
            ApiError::unprocessable(code, error.to_string()).with_field(field)
        }
        RuntimeError::NotConnected => not_connected_to_microsoft(),
        other => other.into(),
    }
}

async fn microsoft_setup(state: &AppState, caller: &ApiCaller) -> Result<MicrosoftSetup, ApiError> {
    state
        .runtime
        .microsoft_setup(&caller.tenant)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "no Microsoft 365 connection yet: POST the app registration to /microsoft/connection first",
            )
        })
}

pub async fn microsoft_connection(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<MicrosoftSetup>, ApiError> {
    Ok(Json(microsoft_setup(&state, &caller).await?))
}

pub async fn connect_microsoft(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<MicrosoftConnectRequest>,
) -> Result<Json<MicrosoftSetup>, ApiError> {
    let credential = match (request.client_secret, request.certificate_pem) {
        (Some(secret), None) => MicrosoftCredential::Secret(secret),
        (None, Some(certificate_pem)) => MicrosoftCredential::Certificate {
            private_key_pem: request
                .private_key_pem
                .unwrap_or_else(|| private_key_block(&certificate_pem)),
            certificate_pem,
        },
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_credential",
                "give either client_secret (the secret's Value) or certificate_pem (with private_key_pem), not both",
            )
            .with_field("client_secret"));
        }
    };
    state
        .runtime
        .connect_microsoft(
            &caller.tenant,
            &request.tenant_id,
            &request.client_id,
            credential,
            &caller.actor,
        )
        .await
        .map_err(microsoft_error)?;
    Ok(Json(microsoft_setup(&state, &caller).await?))
}

pub async fn test_microsoft(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let check = state
        .runtime
        .test_microsoft_connection(&caller.tenant, &caller.actor)
        .await
        .map_err(microsoft_error)?;
    Ok(Json(json!(check)))
}

/// Microsoft's admin-consent URL for the stored app, on the operator's identity
/// platform, sending the admin back to the caller's `redirect_uri`.
pub async fn microsoft_consent_link(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<ConsentLinkRequest>,
) -> Result<Json<Value>, ApiError> {
    let redirect = request.redirect_uri.trim();
    let web_url = redirect.starts_with("https://") || redirect.starts_with("http://");
    if !web_url
        || redirect.len() > MAX_REDIRECT_URI_LEN
        || redirect
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::unprocessable(
            "invalid_redirect_uri",
            format!("redirect_uri must be an http(s) URL of at most {MAX_REDIRECT_URI_LEN} characters, registered on the app in Entra ID"),
        )
        .with_field("redirect_uri"));
    }
    if request.state.len() > MAX_STATE_LEN || request.state.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_state",
            format!("state must be at most {MAX_STATE_LEN} characters without control characters"),
        )
        .with_field("state"));
    }
    let setup = microsoft_setup(&state, &caller).await?;
    let url = consent_url(
        state.runtime.microsoft_authority(),
        &setup,
        redirect,
        &request.state,
    );
    Ok(Json(json!({ "consent_url": url })))
}

/// Records what Microsoft's consent page answered; a grant is then tested at once.
pub async fn microsoft_consent(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<ConsentRequest>,
) -> Result<Json<Value>, ApiError> {
    let answer = ConsentAnswer {
        admin_consent: request.admin_consent,
        tenant: request.tenant,
        state: None,
        error: request.error,
        error_description: request.error_description,
    };
    let outcome = consent_outcome(&answer).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_consent_answer",
            "give admin_consent \"True\" with tenant, or error (and error_description), as Microsoft's redirect carried them",
        )
    })?;
    let consent = state
        .runtime
        .record_microsoft_consent(&caller.tenant, outcome, &caller.actor)
        .await
        .map_err(microsoft_error)?;
    let check = if consent.granted {
        Some(
            state
                .runtime
                .test_microsoft_connection(&caller.tenant, &caller.actor)
                .await
                .map_err(microsoft_error)?,
        )
    } else {
        None
    };
    Ok(Json(json!({ "consent": consent, "check": check })))
}
