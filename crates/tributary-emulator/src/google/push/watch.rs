//! Gmail `users.watch` and `users.stop`, and the publishing of watched mailboxes'
//! changes to their Pub/Sub topic. A watch lasts 7 days; a successful watch publishes
//! one notification at once, then one whenever the mailbox's history id moves past what
//! was last published (and the change matches the label filter), at most one a second
//! per mailbox as Gmail does: changes in between are coalesced into the next one.

use super::super::app::now_ms;
use super::super::call::json_response;
use super::super::error::ApiError;
use super::super::gmail::gmail_call;
use super::super::quota::GmailMethod;
use super::super::state::EmulatorState;
use super::pubsub::GMAIL_PUSH_ACCOUNT;
use crate::model::Mailbox;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Google's watch expiry: re-watch at least every 7 days.
pub const WATCH_LIFETIME_MS: i64 = 7 * 86_400_000;
/// Gmail's rate of notifications per mailbox.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Label filters longer than this are refused.
const MAX_LABEL_IDS: usize = 100;

/// One mailbox's watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Watch {
    pub email: String,
    /// `projects/P/topics/T`.
    pub topic: String,
    pub label_ids: Vec<String>,
    /// `labelFilterBehavior: exclude`: changes to messages with none of the labels.
    pub exclude: bool,
    pub expiration_ms: i64,
    /// The history id last published, or judged outside the label filter.
    pub seen_history_id: u64,
    #[serde(skip)]
    pub last_sent: Option<Instant>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WatchRequest {
    #[serde(default)]
    topic_name: String,
    #[serde(default)]
    label_ids: Vec<String>,
    label_filter_behavior: Option<String>,
    /// The deprecated spelling of `labelFilterBehavior`.
    label_filter_action: Option<String>,
}

/// Whether the filter excludes, from `labelFilterBehavior` (or its old name), any case.
fn excludes(request: &WatchRequest) -> Result<bool, ApiError> {
    let value = request
        .label_filter_behavior
        .as_deref()
        .or(request.label_filter_action.as_deref());
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("include") => Ok(false),
        Some("exclude") => Ok(true),
        Some(other) => Err(ApiError::invalid_argument(format!(
            "Invalid value at 'label_filter_behavior': {other}"
        ))),
    }
}

/// The project of the caller's client: a watch's topic must belong to it.
fn caller_project(state: &EmulatorState, client_id: &str) -> String {
    state
        .auth
        .service_accounts()
        .into_iter()
        .find(|a| a.client_id == client_id)
        .map(|a| a.project_id)
        .unwrap_or_default()
}

/// Checks `topic_name` against the caller's project and the topic's policy.
fn check_topic(state: &EmulatorState, project: &str, topic_name: &str) -> Result<(), ApiError> {
    let in_project = topic_name
        .strip_prefix(&format!("projects/{project}/topics/"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    if !in_project {
        return Err(ApiError::invalid_argument(format!(
            "Invalid topicName does not match projects/{project}/topics/*"
        )));
    }
    let pubsub = state.push.pubsub();
    let topic = pubsub.topics.get(topic_name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            format!("Resource not found (resource={topic_name})."),
        )
    })?;
    if !topic.may_publish(GMAIL_PUSH_ACCOUNT) {
        return Err(ApiError::forbidden(format!(
            "Error sending test message to Cloud PubSub {topic_name} : User not authorized to perform this action."
        )));
    }
    Ok(())
}

/// `POST gmail/v1/users/{userId}/watch`.
pub async fn watch(
    State(state): State<Arc<EmulatorState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: WatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return ApiError::invalid_argument(format!("Invalid JSON payload received. {e}"))
                .into_response();
        }
    };
    let mut started: Option<Watch> = None;
    let response = gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::Watch,
        |caller, mailbox| {
            let exclude = excludes(&request)?;
            if request.label_ids.len() > MAX_LABEL_IDS {
                return Err(ApiError::invalid_argument(format!(
                    "At most {MAX_LABEL_IDS} labelIds"
                )));
            }
            let project = caller_project(&state, &caller.grant.client_id);
            check_topic(&state, &project, &request.topic_name)?;
            let expiration_ms = now_ms() + WATCH_LIFETIME_MS;
            started = Some(Watch {
                email: mailbox.email.clone(),
                topic: request.topic_name.clone(),
                label_ids: request.label_ids.clone(),
                exclude,
                expiration_ms,
                seen_history_id: mailbox.history_id,
                last_sent: Some(Instant::now()),
            });
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "historyId": mailbox.history_id.to_string(),
                    "expiration": expiration_ms.to_string(),
                }),
            ))
        },
    )
    .await;
    if let Some(watch) = started {
        let (email, topic, history_id) = (
            watch.email.clone(),
            watch.topic.clone(),
            watch.seen_history_id,
        );
        state.push.watches().insert(email.clone(), watch);
        publish(&state, &email, &topic, history_id);
    }
    response
}

/// `POST gmail/v1/users/{userId}/stop`: no more notifications for the mailbox.
pub async fn stop(
    State(state): State<Arc<EmulatorState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut stopped: Option<String> = None;
    let response = gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::Stop,
        |_, mailbox| {
            stopped = Some(mailbox.email.clone());
            Ok(StatusCode::NO_CONTENT.into_response())
        },
    )
    .await;
    if let Some(email) = stopped {
        state.push.watches().remove(&email);
    }
    response
}

/// Publishes Gmail's notification for `email` at `history_id`.
fn publish(state: &EmulatorState, email: &str, topic: &str, history_id: u64) {
    let data = json!({"emailAddress": email, "historyId": history_id.to_string()});
    if let Err(refused) = state
        .push
        .publish(topic, GMAIL_PUSH_ACCOUNT, data.to_string().as_bytes())
    {
        state.push.count_refused();
        tracing::debug!(%topic, %refused, "Gmail notification not published");
    }
}

/// Whether a change since `watch.seen_history_id` matches the watch's label filter.
fn matches_filter(watch: &Watch, mailbox: &Mailbox) -> bool {
    if watch.label_ids.is_empty() {
        return true;
    }
    let mut records = mailbox
        .history
        .iter()
        .rev()
        .take_while(|r| r.id > watch.seen_history_id)
        .peekable();
    // Expired history: the change cannot be judged, so it is reported.
    if records.peek().is_none() {
        return true;
    }
    records.any(|record| {
        let labelled = record
            .message_labels
            .iter()
            .any(|l| watch.label_ids.contains(l));
        labelled != watch.exclude
    })
}

/// What one scan decided for a watch.
enum Outcome {
    Publish(u64),
    Skip(u64),
}

/// Publishes the changes of every watched mailbox (run by the push ticker). Watches are
/// copied out first so no lock is held while the organization is read.
pub fn scan(state: &Arc<EmulatorState>) {
    let now = Instant::now();
    let watches: Vec<Watch> = {
        let mut watches = state.push.watches();
        let now_ms = now_ms();
        watches.retain(|_, w| w.expiration_ms > now_ms);
        watches.values().cloned().collect()
    };
    if watches.is_empty() {
        return;
    }
    let mut outcomes = Vec::new();
    {
        let org = state.org();
        for watch in &watches {
            let Some(mailbox) = org.mailboxes.get(&watch.email) else {
                continue;
            };
            if mailbox.history_id <= watch.seen_history_id {
                continue;
            }
            if !matches_filter(watch, mailbox) {
                outcomes.push((watch, Outcome::Skip(mailbox.history_id)));
            } else if watch
                .last_sent
                .is_none_or(|sent| now.duration_since(sent) >= MIN_INTERVAL)
            {
                outcomes.push((watch, Outcome::Publish(mailbox.history_id)));
            }
        }
    }
    for (watch, outcome) in outcomes {
        let history_id = match outcome {
            Outcome::Publish(id) | Outcome::Skip(id) => id,
        };
        {
            let mut watches = state.push.watches();
            // A watch stopped or replaced meanwhile is left alone.
            let Some(current) = watches.get_mut(&watch.email) else {
                continue;
            };
            if current.topic != watch.topic || current.seen_history_id >= history_id {
                continue;
            }
            current.seen_history_id = history_id;
            if matches!(outcome, Outcome::Publish(_)) {
                current.last_sent = Some(now);
            }
        }
        if matches!(outcome, Outcome::Publish(_)) {
            publish(state, &watch.email, &watch.topic, history_id);
        }
    }
}
