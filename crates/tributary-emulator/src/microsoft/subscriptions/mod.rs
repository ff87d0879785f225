//! Graph change notifications: `POST/GET/PATCH/DELETE /subscriptions` on a mailbox's
//! messages (a folder's or all) and events, the `validationToken` handshake on create,
//! notifications with `clientState` ([`notify`]), renewal, `reauthorize`, and lifecycle
//! notifications triggered through the control API ([`control`]). Delivery, retries and
//! faults are the kit's [`Outbox`]. See `docs/emulator-push.md`.

pub mod control;
pub mod notify;

use super::access;
use super::envelope::{self, GraphError, RequestIds};
use super::identity::registry::Grant;
use super::ids::random_guid;
use super::query::Preferences;
use super::state::MicrosoftState;
use crate::kit::push::{Outbox, loopback_endpoint};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The longest life of an Outlook message or event subscription without resource data.
pub const MAX_LIFETIME_MINUTES: i64 = 10_080;
/// Graph allows 1,000 subscriptions per mailbox.
pub const MAX_PER_MAILBOX: usize = 1_000;
/// What the emulator keeps in all.
const MAX_SUBSCRIPTIONS: usize = 10_000;
const MAX_CLIENT_STATE: usize = 128;
/// The endpoint must echo the validation token within this.
pub const VALIDATION_DEADLINE: Duration = Duration::from_secs(10);

/// A change a subscription reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "created",
            ChangeType::Updated => "updated",
            ChangeType::Deleted => "deleted",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "created" => Some(ChangeType::Created),
            "updated" => Some(ChangeType::Updated),
            "deleted" => Some(ChangeType::Deleted),
            _ => None,
        }
    }
}

/// What a subscription watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A folder's messages (`None`: every folder's).
    Messages {
        user_id: String,
        folder_id: Option<String>,
    },
    /// The user's calendar (keyed as the meeting store keys it).
    Events { user_id: String, calendar: String },
}

impl Target {
    pub fn user_id(&self) -> &str {
        match self {
            Target::Messages { user_id, .. } | Target::Events { user_id, .. } => user_id,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub application_id: String,
    /// As the client gave it.
    pub resource: String,
    pub target: Target,
    pub change_types: Vec<ChangeType>,
    pub notification_url: Url,
    pub lifecycle_url: Option<Url>,
    pub client_state: Option<String>,
    pub expiration_ms: i64,
    /// Created with `Prefer: IdType="ImmutableId"`: notifications carry immutable ids.
    pub immutable_ids: bool,
    /// The change sequence (mailbox or calendar) notifications have covered.
    pub seen_seq: u64,
    /// Set by a `reauthorizationRequired` lifecycle event, cleared by renewal.
    pub reauthorization_required: bool,
}

/// `2026-03-10T09:00:00.0000000Z`, as Graph writes its instants.
pub fn graph_instant(ms: i64) -> String {
    let stamp = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    format!(
        "{}.{:03}0000Z",
        stamp.format("%Y-%m-%dT%H:%M:%S"),
        ms.rem_euclid(1000)
    )
}

impl Subscription {
    fn view(&self, state: &MicrosoftState) -> Value {
        let change_type: Vec<&str> = self.change_types.iter().map(|c| c.as_str()).collect();
        json!({
            "@odata.context": format!("{}/$metadata#subscriptions/$entity", state.graph_url()),
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": change_type.join(","),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url.as_str(),
            "lifecycleNotificationUrl": self.lifecycle_url.as_ref().map(Url::as_str),
            "expirationDateTime": graph_instant(self.expiration_ms),
            "creatorId": self.application_id,
            "includeResourceData": false,
            "latestSupportedTlsVersion": "v1_2",
            "notificationContentType": null,
        })
    }
}

/// Every subscription, and the outbox their notifications leave through.
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub outbox: Arc<Outbox>,
    all: Mutex<BTreeMap<String, Subscription>>,
}

impl Subscriptions {
    pub fn new(outbox: Outbox) -> Self {
        Subscriptions {
            outbox: Arc::new(outbox),
            all: Mutex::default(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Subscription>> {
        self.all.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub fn routes() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route("/v1.0/subscriptions", post(create).get(list))
        .route(
            "/v1.0/subscriptions/{id}",
            get(get_one).patch(renew).delete(remove),
        )
        .route("/v1.0/subscriptions/{id}/reauthorize", post(reauthorize))
}

/// Starts delivering notifications (for as long as `state` lives).
pub fn start(state: &Arc<MicrosoftState>) {
    crate::kit::push::spawn_ticker(state, notify::SCAN_PERIOD, notify::scan);
}

fn invalid(message: impl Into<String>) -> GraphError {
    GraphError::bad_request("InvalidRequest", message)
}

fn not_found() -> GraphError {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        "The object was not found.",
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRequest {
    #[serde(default)]
    change_type: String,
    #[serde(default)]
    notification_url: String,
    #[serde(default)]
    lifecycle_notification_url: Option<String>,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    expiration_date_time: String,
    #[serde(default)]
    client_state: Option<String>,
    #[serde(default)]
    include_resource_data: bool,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, GraphError> {
    serde_json::from_slice(body)
        .map_err(|e| GraphError::bad_request("BadRequest", format!("Invalid request body: {e}")))
}

fn change_types(value: &str) -> Result<Vec<ChangeType>, GraphError> {
    let mut types = Vec::new();
    for part in value.split(',') {
        let change = ChangeType::parse(part).ok_or_else(|| {
            invalid(format!(
                "'{}' is not a valid changeType: use created, updated or deleted, comma-separated.",
                part.trim()
            ))
        })?;
        if !types.contains(&change) {
            types.push(change);
        }
    }
    types.sort();
    Ok(types)
}

/// The expiration as epoch ms, within Graph's maximum from now.
fn expiration(value: &str, now_ms: i64) -> Result<i64, GraphError> {
    let at = DateTime::parse_from_rfc3339(value.trim())
        .map_err(|_| {
            invalid(format!(
                "expirationDateTime {value:?} is not an ISO 8601 date and time."
            ))
        })?
        .timestamp_millis();
    if at <= now_ms {
        return Err(invalid("Subscription expiration must be in the future."));
    }
    if at > now_ms + MAX_LIFETIME_MINUTES * 60_000 {
        return Err(invalid(format!(
            "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future."
        )));
    }
    Ok(at)
}

/// What a resource path names: (user, `Some(folder)` | `None` for all messages, or events).
enum Resource<'a> {
    Messages(&'a str, Option<&'a str>),
    Events(&'a str),
}

fn parse_resource(resource: &str) -> Option<Resource<'_>> {
    let path = resource.trim().trim_start_matches('/');
    let rest = path.get(..6).filter(|p| p.eq_ignore_ascii_case("users/"))?;
    let rest = &path[rest.len()..];
    let (user, tail) = rest.split_once('/')?;
    if user.is_empty() {
        return None;
    }
    let lower = tail.to_ascii_lowercase();
    if lower == "messages" {
        return Some(Resource::Messages(user, None));
    }
    if lower == "events" {
        return Some(Resource::Events(user));
    }
    if !lower.starts_with("mailfolders") || !lower.ends_with("/messages") {
        return None;
    }
    // ASCII lowercasing keeps byte offsets, so `tail` can be cut where `lower` matched.
    let middle = tail.get("mailfolders".len()..tail.len() - "/messages".len())?;
    let folder = middle
        .strip_prefix("('")
        .and_then(|f| f.strip_suffix("')"))
        .or_else(|| middle.strip_prefix('/'))?;
    (!folder.is_empty() && !folder.contains('/')).then_some(Resource::Messages(user, Some(folder)))
}

/// Checks the caller may read the resource, and resolves it.
fn target(state: &MicrosoftState, grant: &Grant, resource: &str) -> Result<Target, GraphError> {
    let parsed = parse_resource(resource).ok_or_else(|| {
        invalid(format!(
            "Resource {resource:?} is not supported: use users/{{id}}/messages, users/{{id}}/mailFolders('{{folder}}')/messages or users/{{id}}/events."
        ))
    })?;
    match parsed {
        Resource::Messages(user, folder) => {
            let call = access::open_mailbox(state, grant, user)?;
            let folder_id = match folder {
                None => None,
                Some(name) => {
                    let tenant = state.tenant();
                    let folder = tenant
                        .mailboxes
                        .get(&call.user_id)
                        .and_then(|m| m.folder(name))
                        .ok_or_else(envelope::item_not_found)?;
                    Some(folder.id.clone())
                }
            };
            Ok(Target::Messages {
                user_id: call.user_id,
                folder_id,
            })
        }
        Resource::Events(user) => {
            let call = access::open_calendar(state, grant, user)?;
            let address = {
                let tenant = state.tenant();
                let entra = tenant
                    .user(&call.user_id)
                    .ok_or_else(envelope::mailbox_user_not_found)?;
                entra
                    .mail
                    .clone()
                    .unwrap_or_else(|| entra.user_principal_name.clone())
            };
            let calendar = state
                .calendars
                .read()
                .directory
                .member(&address)
                .ok_or_else(envelope::mailbox_not_enabled)?
                .to_string();
            Ok(Target::Events {
                user_id: call.user_id,
                calendar,
            })
        }
    }
}

/// The sequence changes are counted from: notifications cover what comes after.
fn current_seq(state: &MicrosoftState, target: &Target) -> u64 {
    match target {
        Target::Messages { user_id, .. } => {
            state.tenant().mailboxes.get(user_id).map_or(0, |m| m.seq)
        }
        Target::Events { .. } => state.calendars.read().seq,
    }
}

/// Graph's validation handshake: `POST url?validationToken=…` must answer 200 with the
/// token as text/plain within 10 s.
async fn validate_endpoint(state: &MicrosoftState, url: &Url) -> Result<(), GraphError> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        random_guid()
    );
    let mut with_token = url.clone();
    with_token
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let answer = state
        .subscriptions
        .outbox
        .exchange(
            with_token,
            Vec::new(),
            "text/plain; charset=utf-8",
            VALIDATION_DEADLINE,
        )
        .await;
    let echoed = answer.as_ref().is_ok_and(|a| {
        a.status == 200 && a.content_type.starts_with("text/plain") && a.body == token
    });
    if echoed {
        return Ok(());
    }
    let reason = match answer {
        Ok(a) if a.status != 200 => format!("the endpoint answered {}", a.status),
        Ok(a) if !a.content_type.starts_with("text/plain") => {
            format!(
                "the answer's content type was {:?}, not text/plain",
                a.content_type
            )
        }
        Ok(_) => "the answer was not the validation token".to_string(),
        Err(error) => error,
    };
    Err(invalid(format!(
        "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request ({reason})."
    )))
}

fn endpoint(field: &str, value: &str) -> Result<Url, GraphError> {
    loopback_endpoint(value).map_err(|e| invalid(format!("{field}: {e}")))
}

/// `POST /subscriptions`.
async fn create(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match create_subscription(&state, &headers, &body).await {
        Ok(view) => envelope::json_response(StatusCode::CREATED, &view),
        Err(error) => error.render(&ids),
    }
}

async fn create_subscription(
    state: &MicrosoftState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, GraphError> {
    let grant = access::authenticate(state, headers)?;
    let request: CreateRequest = parse_json(body)?;
    let change_types = change_types(&request.change_type)?;
    if request.include_resource_data {
        return Err(invalid(
            "includeResourceData is not emulated: subscribe without resource data and read the changes through delta.",
        ));
    }
    if let Some(state) = &request.client_state
        && state.chars().count() > MAX_CLIENT_STATE
    {
        return Err(invalid(format!(
            "clientState is at most {MAX_CLIENT_STATE} characters."
        )));
    }
    let now_ms = Utc::now().timestamp_millis();
    let expiration_ms = expiration(&request.expiration_date_time, now_ms)?;
    let notification_url = endpoint("notificationUrl", &request.notification_url)?;
    let lifecycle_url = request
        .lifecycle_notification_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .map(|u| endpoint("lifecycleNotificationUrl", u))
        .transpose()?;
    let target = target(state, &grant, &request.resource)?;
    validate_endpoint(state, &notification_url).await?;
    if let Some(url) = &lifecycle_url {
        validate_endpoint(state, url).await?;
    }
    let subscription = Subscription {
        id: random_guid(),
        application_id: grant.client_id.clone(),
        resource: request.resource.trim().to_string(),
        seen_seq: current_seq(state, &target),
        target,
        change_types,
        notification_url,
        lifecycle_url,
        client_state: request.client_state,
        expiration_ms,
        immutable_ids: Preferences::from_headers(headers).immutable_ids,
        reauthorization_required: false,
    };
    let view = subscription.view(state);
    let mut all = state.subscriptions.lock();
    let user_id = subscription.target.user_id();
    let on_mailbox = all
        .values()
        .filter(|s| s.target.user_id() == user_id)
        .count();
    if on_mailbox >= MAX_PER_MAILBOX || all.len() >= MAX_SUBSCRIPTIONS {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "ExtensionError",
            format!(
                "The number of subscriptions for the mailbox reached its limit ({MAX_PER_MAILBOX})."
            ),
        ));
    }
    all.insert(subscription.id.clone(), subscription);
    Ok(view)
}

/// The caller's subscription `id`.
fn owned(
    state: &MicrosoftState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Subscription, GraphError> {
    let grant = access::authenticate(state, headers)?;
    state
        .subscriptions
        .lock()
        .get(id)
        .filter(|s| s.application_id == grant.client_id)
        .cloned()
        .ok_or_else(not_found)
}

fn finish(result: Result<Response, GraphError>, ids: &RequestIds) -> Response {
    result.unwrap_or_else(|error| error.render(ids))
}

/// `GET /subscriptions`: the caller's.
async fn list(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    headers: HeaderMap,
) -> Response {
    finish(
        access::authenticate(&state, &headers).map(|grant| {
            let value: Vec<Value> = state
                .subscriptions
                .lock()
                .values()
                .filter(|s| s.application_id == grant.client_id)
                .map(|s| s.view(&state))
                .collect();
            let context = format!("{}/$metadata#subscriptions", state.graph_url());
            envelope::json_response(
                StatusCode::OK,
                &json!({"@odata.context": context, "value": value}),
            )
        }),
        &ids,
    )
}

async fn get_one(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    finish(
        owned(&state, &headers, &id)
            .map(|s| envelope::json_response(StatusCode::OK, &s.view(&state))),
        &ids,
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RenewRequest {
    expiration_date_time: String,
}

/// `PATCH /subscriptions/{id}`: a new expiration (which also reauthorizes).
async fn renew(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        owned(&state, &headers, &id)?;
        let request: RenewRequest = parse_json(&body)?;
        let expiration_ms =
            expiration(&request.expiration_date_time, Utc::now().timestamp_millis())?;
        let mut all = state.subscriptions.lock();
        let subscription = all.get_mut(&id).ok_or_else(not_found)?;
        subscription.expiration_ms = expiration_ms;
        subscription.reauthorization_required = false;
        Ok(envelope::json_response(
            StatusCode::OK,
            &subscription.view(&state),
        ))
    })();
    finish(result, &ids)
}

/// `DELETE /subscriptions/{id}`.
async fn remove(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = owned(&state, &headers, &id).map(|_| {
        state.subscriptions.lock().remove(&id);
        StatusCode::NO_CONTENT.into_response()
    });
    finish(result, &ids)
}

/// `POST /subscriptions/{id}/reauthorize`: answers a `reauthorizationRequired`.
async fn reauthorize(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = owned(&state, &headers, &id).map(|_| {
        if let Some(subscription) = state.subscriptions.lock().get_mut(&id) {
            subscription.reauthorization_required = false;
        }
        StatusCode::OK.into_response()
    });
    finish(result, &ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_a_folder_all_messages_or_events() {
        assert!(matches!(
            parse_resource("users/u1/mailFolders('inbox')/messages"),
            Some(Resource::Messages("u1", Some("inbox")))
        ));
        assert!(matches!(
            parse_resource("/Users/u1/mailfolders/Inbox/messages"),
            Some(Resource::Messages("u1", Some("Inbox")))
        ));
        assert!(matches!(
            parse_resource("users/u1/messages"),
            Some(Resource::Messages("u1", None))
        ));
        assert!(matches!(
            parse_resource("users/u1/events"),
            Some(Resource::Events("u1"))
        ));
        for bad in [
            "me/messages",
            "users//messages",
            "users/u1/contacts",
            "users/u1/mailFolders('a/b')/messages",
        ] {
            assert!(parse_resource(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn expirations_stay_within_graph_s_maximum() {
        let now = 1_700_000_000_000;
        let at = |ms: i64| graph_instant(ms);
        assert!(expiration(&at(now + 60_000), now).is_ok());
        assert!(expiration(&at(now + MAX_LIFETIME_MINUTES * 60_000), now).is_ok());
        assert!(expiration(&at(now + MAX_LIFETIME_MINUTES * 60_000 + 1000), now).is_err());
        assert!(expiration(&at(now - 1000), now).is_err());
        assert!(expiration("tomorrow", now).is_err());
    }

    #[test]
    fn change_types_are_a_comma_separated_set() {
        assert_eq!(
            change_types("updated, created,created").unwrap(),
            [ChangeType::Created, ChangeType::Updated]
        );
        assert!(change_types("created,moved").is_err());
        assert!(change_types("").is_err());
    }
}
