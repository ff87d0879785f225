//! The identity platform: OpenID configuration, the v2 token endpoint (client
//! credentials with a secret in the body or Basic, or a certificate assertion), and
//! admin consent (v1 and v2), with Microsoft's error answers.

pub mod assertion;
pub mod errors;
pub mod registry;

use super::state::MicrosoftState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use errors::AadError;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Graph's resource, as a `.default` scope names it (by URL or app id).
const GRAPH_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "00000003-0000-0000-c000-000000000000",
];

pub fn routes() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/v2.0/adminconsent", get(admin_consent_v2))
        .route("/{tenant}/adminconsent", get(admin_consent_v1))
}

/// What an authority's tenant segment names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRef {
    Ours(String),
    /// `common`, `organizations` or `consumers`.
    Multi,
    Unknown,
}

pub fn resolve_tenant(state: &MicrosoftState, segment: &str) -> TenantRef {
    let tenant = state.tenant();
    if segment.eq_ignore_ascii_case(&tenant.tenant_id) || tenant.owns_domain(segment) {
        return TenantRef::Ours(tenant.tenant_id.clone());
    }
    match segment.to_ascii_lowercase().as_str() {
        "common" | "organizations" | "consumers" => TenantRef::Multi,
        _ => TenantRef::Unknown,
    }
}

async fn openid_configuration(
    State(state): State<Arc<MicrosoftState>>,
    Path(segment): Path<String>,
) -> Response {
    let realm = match resolve_tenant(&state, &segment) {
        TenantRef::Ours(id) => id,
        TenantRef::Multi => segment.to_ascii_lowercase(),
        TenantRef::Unknown => {
            let mut error = errors::unknown_tenant(&segment);
            error.error = "invalid_tenant";
            return error.into_response();
        }
    };
    let base = &state.base_url;
    let issuer_tenant = if realm.contains('-') {
        realm.clone()
    } else {
        "{tenantid}".to_string()
    };
    let body = json!({
        "token_endpoint": format!("{base}/{realm}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{realm}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{realm}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{realm}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{realm}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "roles"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// The form body, and a Basic `Authorization` header's client id and secret.
fn token_params(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut params: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|b| b.split_once(':')) {
        let decode = |s: &str| {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        params
            .entry("client_id".into())
            .or_insert_with(|| decode(id));
        params
            .entry("client_secret".into())
            .or_insert_with(|| decode(secret));
    }
    params
}

/// One resource's `.default` scope (extra OIDC scopes tolerated, as msal may add none).
fn check_scope(scope: Option<&String>) -> Result<(), AadError> {
    let scope = scope.ok_or_else(|| errors::missing_parameter("scope"))?;
    let resources: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .collect();
    if resources.len() > 1 {
        return Err(errors::several_resources());
    }
    let Some(only) = resources.first() else {
        return Err(errors::invalid_scope(scope));
    };
    let resource = only
        .strip_suffix("/.default")
        .ok_or_else(|| errors::invalid_scope(only))?;
    let resource = resource.trim_end_matches('/');
    if GRAPH_RESOURCES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(resource))
    {
        Ok(())
    } else {
        Err(errors::invalid_scope(only))
    }
}

fn check_credential(
    state: &MicrosoftState,
    params: &HashMap<String, String>,
    client_id: &str,
    segment: &str,
    tenant_id: &str,
) -> Result<(), AadError> {
    let identity = state.identity();
    let app = identity
        .app(client_id)
        .ok_or_else(|| errors::unknown_app(client_id, tenant_id))?;
    if app.disabled {
        return Err(errors::app_disabled(client_id, &app.display_name));
    }
    if let Some(secret) = params.get("client_secret") {
        let found = app
            .secrets
            .iter()
            .find(|s| &s.value == secret)
            .ok_or_else(|| errors::wrong_secret(client_id))?;
        return if found.expired {
            Err(errors::expired_secret(client_id))
        } else {
            Ok(())
        };
    }
    let assertion = params
        .get("client_assertion")
        .ok_or_else(errors::no_credential)?;
    if params.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err(AadError::bad_request(
            "invalid_request",
            50_027,
            "Invalid client_assertion_type.",
        ));
    }
    let audiences = vec![
        format!("{}/{segment}/oauth2/v2.0/token", state.base_url),
        format!("{}/{tenant_id}/oauth2/v2.0/token", state.base_url),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    assertion::verify(assertion, app, &audiences, now)
}

fn grant_token(
    state: &MicrosoftState,
    segment: &str,
    params: &HashMap<String, String>,
) -> Result<Response, AadError> {
    let tenant_id = match resolve_tenant(state, segment) {
        TenantRef::Ours(id) => id,
        TenantRef::Multi => return Err(errors::common_endpoint()),
        TenantRef::Unknown => return Err(errors::unknown_tenant(segment)),
    };
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| errors::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(errors::unsupported_grant_type(grant_type));
    }
    let client_id = params
        .get("client_id")
        .ok_or_else(|| errors::missing_parameter("client_id"))?;
    check_scope(params.get("scope"))?;
    check_credential(state, params, client_id, segment, &tenant_id)?;
    let mut identity = state.identity_mut();
    if !identity.principals.contains_key(client_id) {
        return Err(errors::no_service_principal(client_id, &tenant_id));
    }
    let (token, _) = identity.issue(&tenant_id, client_id, state.token_lifetime);
    let expires_in = state.token_lifetime.as_secs().saturating_sub(1);
    let body = json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": token,
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    Ok(response)
}

async fn token(
    State(state): State<Arc<MicrosoftState>>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.counters.record_token_request();
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if state.faults.decide_token_error() {
        return errors::temporarily_unavailable()
            .with_correlation(correlation)
            .into_response();
    }
    let params = token_params(&headers, &body);
    match grant_token(&state, &segment, &params) {
        Ok(response) => response,
        Err(error) => error.with_correlation(correlation).into_response(),
    }
}

/// Admin consent, v1 or v2.
fn admin_consent(state: &MicrosoftState, segment: &str, query: Option<&str>, v2: bool) -> Response {
    let params: HashMap<String, String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let tenant_id = match resolve_tenant(state, segment) {
        TenantRef::Ours(id) => id,
        TenantRef::Multi => state.tenant().tenant_id.clone(),
        TenantRef::Unknown => return errors::unknown_tenant(segment).into_response(),
    };
    let (Some(client_id), Some(redirect_uri)) =
        (params.get("client_id"), params.get("redirect_uri"))
    else {
        return errors::missing_parameter("client_id").into_response();
    };
    if state.identity().app(client_id).is_none() {
        return errors::unknown_app(client_id, &tenant_id).into_response();
    }
    let mut answer = form_urlencoded::Serializer::new(String::new());
    let declined = state.identity().decline_consent;
    match (declined, v2) {
        (true, true) => {
            answer.append_pair("admin_consent", "True");
            answer.append_pair("error", "consent_required");
            answer.append_pair(
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            );
        }
        (true, false) => {
            answer.append_pair("error", "permission_denied");
            answer.append_pair("error_description", "The admin canceled the request");
        }
        (false, _) => {
            state.identity_mut().consent(client_id);
            answer.append_pair("admin_consent", "True");
            answer.append_pair("tenant", &tenant_id);
        }
    }
    if let Some(state_param) = params.get("state") {
        answer.append_pair("state", state_param);
    }
    if let (false, true, Some(scope)) = (declined, v2, params.get("scope")) {
        answer.append_pair("scope", scope);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{redirect_uri}{separator}{}", answer.finish())).into_response()
}

async fn admin_consent_v2(
    State(state): State<Arc<MicrosoftState>>,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    admin_consent(&state, &segment, query.as_deref(), true)
}

async fn admin_consent_v1(
    State(state): State<Arc<MicrosoftState>>,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    admin_consent(&state, &segment, query.as_deref(), false)
}
