//! The Microsoft emulator's control API (nested under `/control`, no authentication:
//! loopback only): live mail, moves and deletes, expired delta state, directory changes,
//! the app's secrets, consent, permissions, access policy, throttling, faults, counters.
//! Same conventions as the Google emulator's (`docs/emulator-control.md`).

use super::counters::CountersSnapshot;
use super::identity::registry::{AccessPolicy, AccessRight, Secret, new_secret_value};
use super::ids::{guid, random_guid};
use super::mail::live::{self, Delivered};
use super::mail::store::ExoMailbox;
use super::state::MicrosoftState;
use super::tenant::{EntraUser, Tenant};
use crate::kit::control::{Answer, Body, ok, settings_routes};
use crate::kit::{
    FaultConfig, FaultSwitch, ScenarioError, ScenarioTarget, WindowConfig, WindowLimiter,
};
use crate::org::{LiveMessage, NamedAddress};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type Shared = State<Arc<MicrosoftState>>;

pub fn router() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route("/state", get(get_state))
        .route("/users", post(add_user))
        .route("/users/{user}", delete(delete_user))
        .route("/users/{user}/account", post(set_account))
        .route("/users/{user}/aliases", post(add_alias))
        .route("/users/{user}/mailbox", post(set_mailbox))
        .route("/users/{user}/messages/{id}", delete(delete_message))
        .route("/users/{user}/messages/{id}/move", post(move_message))
        .route("/users/{user}/delta/expire", post(expire_user_delta))
        .route("/delta/expire", post(expire_all_delta))
        .route("/messages/deliver", post(deliver))
        .route("/app/secrets", post(add_secret))
        .route("/app/secrets/expire", post(expire_secrets))
        .route("/app/disable", post(disable_app))
        .route("/consent/grant", post(grant_consent))
        .route("/consent/revoke", post(revoke_consent))
        .route("/consent/decline", put(decline_consent))
        .route("/permissions", put(set_permissions))
        .route("/permissions/remove", post(remove_permission))
        .route("/access-policy", put(set_policy).delete(clear_policy))
        .route("/tokens/expire", post(expire_tokens))
        .route(
            "/throttling",
            settings_routes(|s: &MicrosoftState| &s.throttling),
        )
        .route("/faults", settings_routes(|s: &MicrosoftState| &s.faults))
        .route("/counters", get(get_counters))
        .route("/counters/reset", post(reset_counters))
}

pub use crate::kit::control::ControlError;

type ControlResult = Answer;

fn no_user(user: &str) -> ControlError {
    ControlError::not_found(format!("no user {user}"))
}

fn bad(message: impl Into<String>) -> ControlError {
    ControlError::bad_request(message)
}

/// The id of a live user named by id, UPN or any address.
fn user_id(tenant: &Tenant, user: &str) -> Result<String, ControlError> {
    tenant
        .user(user)
        .or_else(|| tenant.user_by_address(user))
        .map(|u| u.id.clone())
        .ok_or_else(|| no_user(user))
}

fn user_summary(tenant: &Tenant, user: &EntraUser) -> Value {
    let mailbox = tenant.mailboxes.get(&user.id);
    json!({
        "id": user.id,
        "user_principal_name": user.user_principal_name,
        "mail": user.mail,
        "proxy_addresses": user.proxy_addresses,
        "account_enabled": user.account_enabled,
        "mailbox": mailbox.map(|m| json!({
            "enabled": m.enabled,
            "items": m.items.len(),
            "folders": m.folders.len(),
            "sync_generation": m.sync_generation,
        })),
    })
}

async fn get_state(State(state): Shared) -> ControlResult {
    let tenant = state.tenant();
    let users: Vec<Value> = tenant
        .users
        .iter()
        .filter(|u| !u.deleted)
        .map(|u| user_summary(&tenant, u))
        .collect();
    let identity = state.identity();
    let apps: Vec<Value> = identity
        .apps
        .iter()
        .map(|a| {
            json!({
                "client_id": a.client_id,
                "disabled": a.disabled,
                "secrets": a.secrets,
                "certificates": a.certificates.len(),
                "consented": identity.principals.contains_key(&a.client_id),
                "roles": identity.principals.get(&a.client_id),
            })
        })
        .collect();
    ok(json!({
        "tenant_id": tenant.tenant_id,
        "domains": tenant.domains,
        "users": users,
        "apps": apps,
        "decline_consent": identity.decline_consent,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    user_principal_name: String,
    given_name: String,
    surname: String,
    #[serde(default)]
    aliases: Vec<String>,
    /// Without an Exchange mailbox when false.
    #[serde(default = "yes")]
    mailbox: bool,
}

fn yes() -> bool {
    true
}

async fn add_user(State(state): Shared, Body(new): Body<NewUser>) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let upn = new.user_principal_name.to_ascii_lowercase();
    let domain_ok = upn
        .split_once('@')
        .is_some_and(|(_, d)| tenant.owns_domain(d));
    if !domain_ok {
        return Err(bad(format!("{upn} is not on one of the tenant's domains")));
    }
    if std::iter::once(&upn).chain(&new.aliases).any(|a| {
        tenant
            .users
            .iter()
            .any(|u| u.owns_address(&a.to_ascii_lowercase()))
    }) {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            "the address or an alias belongs to someone",
        ));
    }
    let id = guid(
        &tenant.tenant_id,
        &format!("user/added/{upn}/{}", random_guid()),
    );
    let mut proxy = vec![format!("SMTP:{upn}")];
    proxy.extend(
        new.aliases
            .iter()
            .map(|a| format!("smtp:{}", a.to_ascii_lowercase())),
    );
    let user = EntraUser {
        id: id.clone(),
        user_principal_name: upn.clone(),
        display_name: format!("{} {}", new.given_name, new.surname),
        given_name: new.given_name,
        surname: new.surname,
        mail: new.mailbox.then(|| upn.clone()),
        proxy_addresses: if new.mailbox { proxy } else { Vec::new() },
        account_enabled: true,
        user_type: "Member".into(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        deleted: false,
        global_admin: false,
    };
    let mailbox = if new.mailbox {
        ExoMailbox::new(&id)
    } else {
        ExoMailbox::disabled(&id)
    };
    tenant.mailboxes.insert(id.clone(), mailbox);
    tenant.users.push(user);
    let summary = user_summary(&tenant, tenant.users.last().expect("just added"));
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

async fn delete_user(State(state): Shared, Path(user): Path<String>) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    if let Some(entry) = tenant.users.iter_mut().find(|u| u.id == id) {
        entry.deleted = true;
    }
    ok(json!({"deleted": id}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

async fn set_account(
    State(state): Shared,
    Path(user): Path<String>,
    Body(body): Body<Enabled>,
) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    let entry = tenant.user_mut(&id).ok_or_else(|| no_user(&user))?;
    entry.account_enabled = body.enabled;
    let entry = entry.clone();
    ok(user_summary(&tenant, &entry))
}

/// Enables or disables the user's Exchange Online mailbox (`MailboxNotEnabledForRESTAPI`).
async fn set_mailbox(
    State(state): Shared,
    Path(user): Path<String>,
    Body(body): Body<Enabled>,
) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    let mailbox = tenant
        .mailboxes
        .get_mut(&id)
        .ok_or_else(|| no_user(&user))?;
    mailbox.enabled = body.enabled;
    let entry = tenant.user(&id).cloned().ok_or_else(|| no_user(&user))?;
    ok(user_summary(&tenant, &entry))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Alias {
    alias: String,
}

async fn add_alias(
    State(state): Shared,
    Path(user): Path<String>,
    Body(body): Body<Alias>,
) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    let alias = body.alias.to_ascii_lowercase();
    if !alias
        .split_once('@')
        .is_some_and(|(_, d)| tenant.owns_domain(d))
    {
        return Err(bad(format!(
            "{alias} is not on one of the tenant's domains"
        )));
    }
    if tenant.users.iter().any(|u| u.owns_address(&alias)) {
        return Err(ControlError::new(
            StatusCode::CONFLICT,
            format!("{alias} belongs to someone"),
        ));
    }
    let entry = tenant.user_mut(&id).ok_or_else(|| no_user(&user))?;
    entry.proxy_addresses.push(format!("smtp:{alias}"));
    let entry = entry.clone();
    ok(user_summary(&tenant, &entry))
}

async fn delete_message(
    State(state): Shared,
    Path((user, message)): Path<(String, String)>,
) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    let mailbox = tenant
        .mailboxes
        .get_mut(&id)
        .ok_or_else(|| no_user(&user))?;
    mailbox
        .delete_item(&message)
        .ok_or_else(|| ControlError::new(StatusCode::NOT_FOUND, format!("no message {message}")))?;
    ok(json!({"deleted": message}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Move {
    /// A folder id or well-known name.
    folder: String,
}

async fn move_message(
    State(state): Shared,
    Path((user, message)): Path<(String, String)>,
    Body(body): Body<Move>,
) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    let mailbox = tenant
        .mailboxes
        .get_mut(&id)
        .ok_or_else(|| no_user(&user))?;
    let folder = mailbox
        .folder(&body.folder)
        .map(|f| f.id.clone())
        .ok_or_else(|| {
            ControlError::new(StatusCode::NOT_FOUND, format!("no folder {}", body.folder))
        })?;
    let rest_id = mailbox
        .move_item(&message, &folder)
        .ok_or_else(|| ControlError::new(StatusCode::NOT_FOUND, format!("no message {message}")))?;
    let immutable_id = mailbox.item(&rest_id).map(|i| i.immutable_id.clone());
    ok(json!({"rest_id": rest_id, "immutable_id": immutable_id, "folder_id": folder}))
}

async fn expire_user_delta(State(state): Shared, Path(user): Path<String>) -> ControlResult {
    let mut tenant = state.tenant_mut();
    let id = user_id(&tenant, &user)?;
    let mailbox = tenant
        .mailboxes
        .get_mut(&id)
        .ok_or_else(|| no_user(&user))?;
    mailbox.expire_sync_state();
    ok(json!({"sync_generation": mailbox.sync_generation}))
}

async fn expire_all_delta(State(state): Shared) -> ControlResult {
    let mut tenant = state.tenant_mut();
    for mailbox in tenant.mailboxes.values_mut() {
        mailbox.expire_sync_state();
    }
    ok(json!({"expired": tenant.mailboxes.len()}))
}

/// An address as `"a@b"` or `{"name": "A", "address": "a@b"}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AddressInput {
    Plain(String),
    Named {
        name: Option<String>,
        address: String,
    },
}

impl AddressInput {
    fn named(&self) -> NamedAddress {
        match self {
            AddressInput::Plain(address) => NamedAddress::new(None, address),
            AddressInput::Named { name, address } => NamedAddress::new(name.as_deref(), address),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    from: AddressInput,
    #[serde(default)]
    to: Vec<AddressInput>,
    #[serde(default)]
    cc: Vec<AddressInput>,
    #[serde(default)]
    bcc: Vec<AddressInput>,
    subject: Option<String>,
    #[serde(default)]
    body: String,
    /// Without angle brackets; generated when absent.
    message_id: Option<String>,
    in_reply_to: Option<String>,
}

async fn deliver(State(state): Shared, Body(body): Body<Delivery>) -> ControlResult {
    if body.to.is_empty() && body.cc.is_empty() && body.bcc.is_empty() {
        return Err(bad("a message needs at least one recipient"));
    }
    let now = chrono::Utc::now().timestamp_millis();
    let from = body.from.named();
    let domain = from
        .address
        .split_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let message = LiveMessage {
        to: body.to.iter().map(AddressInput::named).collect(),
        cc: body.cc.iter().map(AddressInput::named).collect(),
        bcc: body.bcc.iter().map(AddressInput::named).collect(),
        subject: body.subject,
        date_ms: now,
        message_id: Some(
            body.message_id
                .unwrap_or_else(|| format!("{}@{domain}", random_guid())),
        ),
        in_reply_to: body.in_reply_to.clone(),
        references: body.in_reply_to.into_iter().collect(),
        body: body.body,
        from,
    };
    let delivered: Vec<Delivered> = live::deliver(&mut state.tenant_mut(), &message, now);
    Ok((
        StatusCode::CREATED,
        Json(json!({"message_id": message.message_id, "delivered": delivered})),
    )
        .into_response())
}

/// The app the control calls act on: the only one, or the one named.
fn only_app(state: &MicrosoftState) -> Result<String, ControlError> {
    state
        .identity()
        .apps
        .first()
        .map(|a| a.client_id.clone())
        .ok_or_else(|| ControlError::new(StatusCode::NOT_FOUND, "no app registration"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct SecretRequest {
    /// Drop the existing secrets (a rotation) instead of adding a second one.
    replace: bool,
}

async fn add_secret(State(state): Shared, body: Option<Json<SecretRequest>>) -> ControlResult {
    let replace = body.map(|b| b.0.replace).unwrap_or(false);
    let client_id = only_app(&state)?;
    let mut identity = state.identity_mut();
    let app = identity
        .app_mut(&client_id)
        .ok_or_else(|| no_user(&client_id))?;
    if replace {
        app.secrets.clear();
    }
    let secret = Secret {
        id: random_guid(),
        value: new_secret_value(),
        expired: false,
    };
    app.secrets.push(secret.clone());
    Ok((
        StatusCode::CREATED,
        Json(json!({"client_secret": secret.value, "secret_id": secret.id})),
    )
        .into_response())
}

async fn expire_secrets(State(state): Shared) -> ControlResult {
    let client_id = only_app(&state)?;
    let mut identity = state.identity_mut();
    let app = identity
        .app_mut(&client_id)
        .ok_or_else(|| no_user(&client_id))?;
    for secret in &mut app.secrets {
        secret.expired = true;
    }
    ok(json!({"expired": app.secrets.len()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Disabled {
    disabled: bool,
}

async fn disable_app(State(state): Shared, Body(body): Body<Disabled>) -> ControlResult {
    let client_id = only_app(&state)?;
    let mut identity = state.identity_mut();
    let app = identity
        .app_mut(&client_id)
        .ok_or_else(|| no_user(&client_id))?;
    app.disabled = body.disabled;
    ok(json!({"client_id": client_id, "disabled": body.disabled}))
}

async fn grant_consent(State(state): Shared) -> ControlResult {
    let client_id = only_app(&state)?;
    state.identity_mut().consent(&client_id);
    ok(json!({"client_id": client_id, "consented": true}))
}

/// Deletes the service principal: new token requests get AADSTS7000229.
async fn revoke_consent(State(state): Shared) -> ControlResult {
    let client_id = only_app(&state)?;
    state.identity_mut().principals.remove(&client_id);
    ok(json!({"client_id": client_id, "consented": false}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decline {
    decline: bool,
}

async fn decline_consent(State(state): Shared, Body(body): Body<Decline>) -> ControlResult {
    state.identity_mut().decline_consent = body.decline;
    ok(json!({"decline_consent": body.decline}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

/// Replaces the granted roles (tokens issued from now on carry them).
async fn set_permissions(State(state): Shared, Body(body): Body<Roles>) -> ControlResult {
    let client_id = only_app(&state)?;
    let mut identity = state.identity_mut();
    let roles = identity
        .principals
        .get_mut(&client_id)
        .ok_or_else(|| bad("no consent: grant it first"))?;
    *roles = body.roles.into_iter().collect();
    ok(json!({"roles": roles.clone()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Permission {
    permission: String,
}

async fn remove_permission(State(state): Shared, Body(body): Body<Permission>) -> ControlResult {
    let client_id = only_app(&state)?;
    let mut identity = state.identity_mut();
    let roles = identity
        .principals
        .get_mut(&client_id)
        .ok_or_else(|| bad("no consent: grant it first"))?;
    roles.remove(&body.permission);
    ok(json!({"roles": roles.clone()}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRequest {
    /// Users (id, UPN or address) in the policy's group.
    members: Vec<String>,
    access_right: AccessRight,
}

async fn set_policy(State(state): Shared, Body(body): Body<PolicyRequest>) -> ControlResult {
    let client_id = only_app(&state)?;
    let members = {
        let tenant = state.tenant();
        body.members
            .iter()
            .map(|m| user_id(&tenant, m))
            .collect::<Result<_, _>>()?
    };
    state.identity_mut().policies.insert(
        client_id.clone(),
        AccessPolicy {
            members,
            right: body.access_right,
        },
    );
    ok(json!({"client_id": client_id, "access_right": body.access_right}))
}

async fn clear_policy(State(state): Shared) -> ControlResult {
    let client_id = only_app(&state)?;
    state.identity_mut().policies.remove(&client_id);
    ok(json!({"client_id": client_id, "access_policy": null}))
}

async fn expire_tokens(State(state): Shared) -> ControlResult {
    state.identity_mut().expire_tokens();
    ok(json!({"expired": true}))
}

async fn get_counters(State(state): Shared) -> ControlResult {
    let snapshot: CountersSnapshot = state.counters.snapshot();
    let mut body = serde_json::to_value(snapshot).unwrap_or_default();
    body["faults"] = serde_json::to_value(state.faults.totals()).unwrap_or_default();
    ok(body)
}

async fn reset_counters(State(state): Shared) -> ControlResult {
    state.counters.reset();
    state.faults.reset_totals();
    ok(json!({"reset": true}))
}

/// Start-up settings from a JSON file, in the kit's format (see [`crate::kit::scenario`]):
/// `{"quota" or "throttling": {..WindowConfig}, "faults": {..FaultConfig}, "time_scale": 60,
/// "mail_disabled": ["user@domain"]}`.
pub type Scenario = crate::kit::Scenario<WindowConfig, FaultConfig>;

/// How a scenario applies to the Microsoft emulator: throttling and faults as the
/// control API sets them, and the Exchange mailboxes it names disabled
/// (`MailboxNotEnabledForRESTAPI`).
impl ScenarioTarget for MicrosoftState {
    type Limits = WindowLimiter;
    type Faults = FaultSwitch;

    fn limits(&self) -> &WindowLimiter {
        &self.throttling
    }

    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn disable_mail(&self, addresses: &[String]) -> Result<(), ScenarioError> {
        let mut tenant = self.tenant_mut();
        // Check every address before changing anything.
        let ids = addresses
            .iter()
            .map(|address| {
                user_id(&tenant, address)
                    .ok()
                    .filter(|id| tenant.mailboxes.contains_key(id))
                    .ok_or_else(|| ScenarioError::UnknownMailbox(address.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for id in ids {
            if let Some(mailbox) = tenant.mailboxes.get_mut(&id) {
                mailbox.enabled = false;
            }
        }
        Ok(())
    }
}
