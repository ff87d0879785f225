//! The few Cloud Pub/Sub admin calls a Gmail watch needs, so Tributary can set push up
//! with its own service account: `projects.topics.create` (`PUT`), `get`, `delete`,
//! `getIamPolicy`/`setIamPolicy` (who may publish: Gmail's push account must), and push
//! subscriptions (`PUT`/`GET`/`DELETE projects.subscriptions`, with `pushConfig`
//! `{pushEndpoint, oidcToken{serviceAccountEmail, audience}}`). Every call needs the
//! service account's own token (no `sub`) with the `pubsub` or `cloud-platform` scope,
//! on its own project. Errors take Pub/Sub's shape: `{"error":{"code","message","status"}}`.

use super::super::call::json_response;
use super::super::state::EmulatorState;
use crate::kit::push::loopback_endpoint;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The account Gmail publishes watch notifications as.
pub const GMAIL_PUSH_ACCOUNT: &str = "gmail-api-push@system.gserviceaccount.com";
/// Roles that include `pubsub.topics.publish`.
const PUBLISHER_ROLES: &[&str] = &[
    "roles/pubsub.publisher",
    "roles/pubsub.editor",
    "roles/pubsub.admin",
];
const ADMIN_SCOPES: &[&str] = &[
    "https://www.googleapis.com/auth/pubsub",
    "https://www.googleapis.com/auth/cloud-platform",
];
/// Bounds on what the emulator keeps.
const MAX_TOPICS: usize = 100;
const MAX_SUBSCRIPTIONS: usize = 100;
const MAX_BINDINGS: usize = 100;
const MAX_MEMBERS: usize = 100;
/// Pub/Sub's ack deadline bounds and default, in seconds.
const ACK_DEADLINE: (u32, u32, u32) = (10, 600, 10);

/// A Pub/Sub error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubSubError {
    pub status: StatusCode,
    pub message: String,
}

impl PubSubError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PubSubError {
            status,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        PubSubError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(resource: &str) -> Self {
        PubSubError::new(
            StatusCode::NOT_FOUND,
            format!("Resource not found (resource={resource})."),
        )
    }

    fn denied() -> Self {
        PubSubError::new(
            StatusCode::FORBIDDEN,
            "User not authorized to perform this action.",
        )
    }

    fn status_name(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ALREADY_EXISTS",
            429 => "RESOURCE_EXHAUSTED",
            _ => "INTERNAL",
        }
    }
}

impl IntoResponse for PubSubError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.status.as_u16(),
            "message": self.message,
            "status": self.status_name(),
        }});
        json_response(self.status, &body)
    }
}

/// One IAM binding of a topic's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub role: String,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// `projects/P/topics/T`.
    pub name: String,
    pub bindings: Vec<Binding>,
    /// Bumped on every policy change (the policy's `etag`).
    pub version: u64,
}

impl Topic {
    /// Whether `account` (a service account email) may publish to the topic.
    pub fn may_publish(&self, account: &str) -> bool {
        let member = format!("serviceAccount:{account}");
        self.bindings.iter().any(|b| {
            PUBLISHER_ROLES.contains(&b.role.as_str())
                && b.members.iter().any(|m| m.eq_ignore_ascii_case(&member))
        })
    }

    fn policy(&self) -> Value {
        json!({"version": 1, "etag": format!("BwX{:06}", self.version), "bindings": self.bindings})
    }
}

/// Who signs the push tokens of a subscription, and for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcToken {
    pub service_account_email: String,
    /// The `aud` claim; empty: the push endpoint.
    #[serde(default)]
    pub audience: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// `projects/P/subscriptions/S`.
    pub name: String,
    pub topic: String,
    pub endpoint: Url,
    pub oidc: Option<OidcToken>,
    /// The OIDC service account's numeric id (`sub` and `azp` of its tokens).
    pub oidc_subject: String,
    pub ack_deadline_seconds: u32,
}

impl PushSubscription {
    fn view(&self) -> Value {
        let mut push_config = json!({"pushEndpoint": self.endpoint.as_str()});
        if let Some(oidc) = &self.oidc {
            push_config["oidcToken"] = json!({
                "serviceAccountEmail": oidc.service_account_email,
                "audience": oidc.audience,
            });
        }
        json!({
            "name": self.name,
            "topic": self.topic,
            "pushConfig": push_config,
            "ackDeadlineSeconds": self.ack_deadline_seconds,
            "messageRetentionDuration": "604800s",
            "state": "ACTIVE",
        })
    }

    /// The `aud` claim of its tokens.
    pub fn audience(&self) -> String {
        match &self.oidc {
            Some(oidc) if !oidc.audience.is_empty() => oidc.audience.clone(),
            _ => self.endpoint.to_string(),
        }
    }
}

/// Topics and push subscriptions.
#[derive(Debug, Default)]
pub struct PubSub {
    pub topics: BTreeMap<String, Topic>,
    pub subscriptions: BTreeMap<String, PushSubscription>,
    /// The last message id handed out.
    serial: u64,
}

/// Why a publish went nowhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRefused {
    #[error("Resource not found (resource={0}).")]
    NoTopic(String),
    #[error("User not authorized to perform this action.")]
    NotPublisher,
}

impl PubSub {
    /// A message id and the subscriptions a message `publisher` publishes to `topic`
    /// goes to.
    pub fn publish(
        &mut self,
        topic: &str,
        publisher: &str,
    ) -> Result<(String, Vec<PushSubscription>), PublishRefused> {
        let found = self
            .topics
            .get(topic)
            .ok_or_else(|| PublishRefused::NoTopic(topic.to_string()))?;
        if !found.may_publish(publisher) {
            return Err(PublishRefused::NotPublisher);
        }
        self.serial += 1;
        // Pub/Sub's ids are long decimal numbers.
        let message_id = (2_070_443_601_311_540u64 + self.serial).to_string();
        let targets = self
            .subscriptions
            .values()
            .filter(|s| s.topic == topic)
            .cloned()
            .collect();
        Ok((message_id, targets))
    }
}

/// `projects/{project}/topics/{id}` or `…/subscriptions/{id}`: Pub/Sub's rules for an
/// id (3 to 255 characters, a letter first, no `goog` prefix).
pub fn resource_name(project: &str, kind: &str, id: &str) -> Result<String, PubSubError> {
    let valid = (3..=255).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && !id.to_ascii_lowercase().starts_with("goog")
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c));
    if !valid {
        return Err(PubSubError::invalid(format!(
            "Invalid [{kind}] name: (name=projects/{project}/{kind}/{id})"
        )));
    }
    Ok(format!("projects/{project}/{kind}/{id}"))
}

/// The caller's project: its token must be the service account's own, with a Pub/Sub
/// scope, and `project` must be the service account's.
fn admin(state: &EmulatorState, headers: &HeaderMap, project: &str) -> Result<(), PubSubError> {
    let grant = state
        .auth
        .authenticate(headers)
        .map_err(|e| PubSubError::new(e.status, e.message))?;
    if !grant
        .scopes
        .iter()
        .any(|s| ADMIN_SCOPES.contains(&s.as_str()))
    {
        return Err(PubSubError::new(
            StatusCode::FORBIDDEN,
            "Request had insufficient authentication scopes.",
        ));
    }
    // An impersonated member is no member of the Cloud project.
    if grant.subject.is_some() {
        return Err(PubSubError::denied());
    }
    let own_project = state
        .auth
        .service_accounts()
        .into_iter()
        .find(|a| a.client_id == *grant.client_id)
        .map(|a| a.project_id);
    match own_project {
        Some(own) if own == project => Ok(()),
        _ => Err(PubSubError::denied()),
    }
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, PubSubError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| PubSubError::invalid(format!("Invalid JSON payload received. {e}")))
}

/// Answers an admin call: `call` runs only for the project's own service account.
fn admin_answer(
    state: &EmulatorState,
    headers: &HeaderMap,
    project: &str,
    call: impl FnOnce() -> Result<Value, PubSubError>,
) -> Response {
    match admin(state, headers, project).and_then(|()| call()) {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error.into_response(),
    }
}

/// Refuses to create `name` (`id` as the caller gave it) when it exists, or when the
/// emulator already keeps `most` of its `kind`.
fn check_new<T>(
    kept: &BTreeMap<String, T>,
    name: &str,
    id: &str,
    most: usize,
    kind: &str,
) -> Result<(), PubSubError> {
    if kept.contains_key(name) {
        return Err(PubSubError::new(
            StatusCode::CONFLICT,
            format!("Resource already exists in the project (resource={id})."),
        ));
    }
    if kept.len() >= most {
        return Err(PubSubError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("The emulator keeps at most {most} {kind}."),
        ));
    }
    Ok(())
}

fn topic_view(topic: &Topic) -> Value {
    json!({"name": topic.name})
}

/// `PUT projects/{p}/topics/{t}`: creates the topic.
pub async fn topic_put(
    State(state): State<Arc<EmulatorState>>,
    Path((project, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let name = resource_name(&project, "topics", &topic)?;
        let mut pubsub = state.push.pubsub();
        check_new(&pubsub.topics, &name, &topic, MAX_TOPICS, "topics")?;
        let created = Topic {
            name: name.clone(),
            bindings: Vec::new(),
            version: 0,
        };
        let view = topic_view(&created);
        pubsub.topics.insert(name, created);
        Ok(view)
    })
}

/// `GET projects/{p}/topics/{t}` and `GET …/{t}:getIamPolicy`.
pub async fn topic_get(
    State(state): State<Arc<EmulatorState>>,
    Path((project, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let (id, action) = split_action(&topic);
        let name = resource_name(&project, "topics", id)?;
        let pubsub = state.push.pubsub();
        let found = pubsub
            .topics
            .get(&name)
            .ok_or_else(|| PubSubError::not_found(id))?;
        match action {
            None => Ok(topic_view(found)),
            Some("getIamPolicy") => Ok(found.policy()),
            Some(other) => Err(unknown_action(other)),
        }
    })
}

#[derive(Debug, Default, Deserialize)]
struct SetPolicy {
    #[serde(default)]
    policy: PolicyBody,
}

#[derive(Debug, Default, Deserialize)]
struct PolicyBody {
    #[serde(default)]
    bindings: Vec<Binding>,
}

/// `POST projects/{p}/topics/{t}:setIamPolicy`: replaces the topic's bindings.
pub async fn topic_post(
    State(state): State<Arc<EmulatorState>>,
    Path((project, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let (id, action) = split_action(&topic);
        if action != Some("setIamPolicy") {
            return Err(unknown_action(action.unwrap_or("")));
        }
        let request: SetPolicy = parse_body(&body)?;
        let bindings = request.policy.bindings;
        if bindings.len() > MAX_BINDINGS || bindings.iter().any(|b| b.members.len() > MAX_MEMBERS) {
            return Err(PubSubError::invalid(format!(
                "A policy has at most {MAX_BINDINGS} bindings of {MAX_MEMBERS} members each."
            )));
        }
        if let Some(bad) = bindings.iter().find(|b| !b.role.starts_with("roles/")) {
            return Err(PubSubError::invalid(format!(
                "Role {} is not a valid role name.",
                bad.role
            )));
        }
        let name = resource_name(&project, "topics", id)?;
        let mut pubsub = state.push.pubsub();
        let found = pubsub
            .topics
            .get_mut(&name)
            .ok_or_else(|| PubSubError::not_found(id))?;
        found.bindings = bindings;
        found.version += 1;
        Ok(found.policy())
    })
}

/// `DELETE projects/{p}/topics/{t}`: its subscriptions stay, detached (`_deleted-topic_`).
pub async fn topic_delete(
    State(state): State<Arc<EmulatorState>>,
    Path((project, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let name = resource_name(&project, "topics", &topic)?;
        let mut pubsub = state.push.pubsub();
        pubsub
            .topics
            .remove(&name)
            .ok_or_else(|| PubSubError::not_found(&topic))?;
        for subscription in pubsub.subscriptions.values_mut() {
            if subscription.topic == name {
                subscription.topic = "_deleted-topic_".to_string();
            }
        }
        Ok(json!({}))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSubscription {
    #[serde(default)]
    topic: String,
    push_config: Option<PushConfigBody>,
    ack_deadline_seconds: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushConfigBody {
    #[serde(default)]
    push_endpoint: String,
    oidc_token: Option<OidcToken>,
}

/// `PUT projects/{p}/subscriptions/{s}`: a push subscription (the emulator keeps no
/// pull subscriptions: nothing would pull them).
pub async fn subscription_put(
    State(state): State<Arc<EmulatorState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let name = resource_name(&project, "subscriptions", &id)?;
        let request: NewSubscription = parse_body(&body)?;
        let push = request.push_config.ok_or_else(|| {
            PubSubError::invalid(
                "The emulator keeps push subscriptions only: give pushConfig.pushEndpoint.",
            )
        })?;
        let endpoint = loopback_endpoint(&push.push_endpoint).map_err(|e| {
            PubSubError::invalid(format!(
                "Invalid push endpoint given (endpoint={}): {e}",
                push.push_endpoint
            ))
        })?;
        let ack_deadline_seconds = request.ack_deadline_seconds.unwrap_or(ACK_DEADLINE.2);
        if !(ACK_DEADLINE.0..=ACK_DEADLINE.1).contains(&ack_deadline_seconds) {
            return Err(PubSubError::invalid(format!(
                "Invalid ack deadline given: {ack_deadline_seconds} (between {} and {} seconds).",
                ACK_DEADLINE.0, ACK_DEADLINE.1
            )));
        }
        let oidc_subject = match &push.oidc_token {
            Some(oidc) => state
                .auth
                .service_account(&oidc.service_account_email)
                .map(|a| a.identity.client_id)
                .ok_or_else(|| {
                    PubSubError::invalid(format!(
                        "Service account {} does not exist.",
                        oidc.service_account_email
                    ))
                })?,
            None => String::new(),
        };
        let mut pubsub = state.push.pubsub();
        if !pubsub.topics.contains_key(&request.topic) {
            return Err(PubSubError::not_found(&request.topic));
        }
        check_new(
            &pubsub.subscriptions,
            &name,
            &id,
            MAX_SUBSCRIPTIONS,
            "subscriptions",
        )?;
        let subscription = PushSubscription {
            name: name.clone(),
            topic: request.topic,
            endpoint,
            oidc: push.oidc_token,
            oidc_subject,
            ack_deadline_seconds,
        };
        let view = subscription.view();
        pubsub.subscriptions.insert(name, subscription);
        Ok(view)
    })
}

pub async fn subscription_get(
    State(state): State<Arc<EmulatorState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let name = resource_name(&project, "subscriptions", &id)?;
        let pubsub = state.push.pubsub();
        pubsub
            .subscriptions
            .get(&name)
            .map(PushSubscription::view)
            .ok_or_else(|| PubSubError::not_found(&id))
    })
}

pub async fn subscription_delete(
    State(state): State<Arc<EmulatorState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    admin_answer(&state, &headers, &project, || {
        let name = resource_name(&project, "subscriptions", &id)?;
        state
            .push
            .pubsub()
            .subscriptions
            .remove(&name)
            .map(|_| json!({}))
            .ok_or_else(|| PubSubError::not_found(&id))
    })
}

/// `t:action` → (`t`, `action`).
fn split_action(segment: &str) -> (&str, Option<&str>) {
    match segment.split_once(':') {
        Some((id, action)) => (id, Some(action)),
        None => (segment, None),
    }
}

fn unknown_action(action: &str) -> PubSubError {
    PubSubError::new(StatusCode::NOT_FOUND, format!("Method not found: {action}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pub_sub_s_rules() {
        assert_eq!(
            resource_name("p", "topics", "gmail-push").unwrap(),
            "projects/p/topics/gmail-push"
        );
        for bad in ["ab", "1topic", "goog-topic", "a/b/c", ""] {
            assert!(resource_name("p", "topics", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_publisher_binding_for_the_account_allows_publishing() {
        let mut topic = Topic {
            name: "projects/p/topics/t".into(),
            bindings: vec![Binding {
                role: "roles/pubsub.viewer".into(),
                members: vec![format!("serviceAccount:{GMAIL_PUSH_ACCOUNT}")],
            }],
            version: 0,
        };
        assert!(!topic.may_publish(GMAIL_PUSH_ACCOUNT));
        topic.bindings.push(Binding {
            role: "roles/pubsub.publisher".into(),
            members: vec![format!("serviceAccount:{GMAIL_PUSH_ACCOUNT}")],
        });
        assert!(topic.may_publish(GMAIL_PUSH_ACCOUNT));
        assert!(!topic.may_publish("other@system.gserviceaccount.com"));
    }
}
