//! Graph change notification subscriptions (`/subscriptions`): made, renewed and
//! deleted with the app's own token, so that Graph tells Tributary's endpoint when a
//! mailbox's messages or a calendar's events change (see `docs/push.md`).
//!
//! Subscriptions carry no resource data: a notification only says that something
//! changed, and the sync reads what through delta. A `clientState` secret chosen by
//! the caller comes back in every notification, which is how the receiver tells
//! Graph's notifications from forgeries.

use crate::api::{Answer, Api, decode_answer, required};
use crate::error::{GraphCall, unreadable_answer};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::sync::Arc;
use tributary_core::{ProviderDetail, ProviderError};

/// How long a subscription is asked for. Graph's maximum for Outlook messages and
/// events without resource data is 10,080 minutes (7 days) in its current documentation,
/// which gave 4,230 minutes (just under 3 days) as late as 2022; an expiration above
/// the limit is refused with 400, not shortened. 4,200 minutes fits both limits with
/// half an hour to spare for clock skew, and renewal (a PATCH after a sync) costs one
/// call every couple of days.
pub const SUBSCRIPTION_LIFETIME_MINUTES: i64 = 4_200;

/// Graph's limit on `clientState`.
pub const MAX_CLIENT_STATE_CHARS: usize = 128;

/// The change types every subscription asks for: a new message or event, a changed
/// one (moved into another folder, answered, rescheduled), and a removed one.
const CHANGE_TYPES: &str = "created,updated,deleted";

/// A subscription to make.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// What to watch, relative to Graph's root: see [`messages_resource`] and
    /// [`events_resource`].
    pub resource: String,
    /// Where Graph sends change notifications (https at Microsoft).
    pub notification_url: String,
    /// Where Graph sends lifecycle notifications (reauthorization, removal, missed).
    pub lifecycle_notification_url: String,
    /// The secret every notification carries, at most [`MAX_CLIENT_STATE_CHARS`].
    pub client_state: String,
    pub expiration: DateTime<Utc>,
}

impl std::fmt::Debug for NewSubscription {
    // The client state is a secret: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSubscription")
            .field("resource", &self.resource)
            .field("notification_url", &self.notification_url)
            .field(
                "lifecycle_notification_url",
                &self.lifecycle_notification_url,
            )
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// A subscription as Graph answered it (its `clientState` is not kept: the caller
/// chose it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub resource: String,
    #[serde(rename = "expirationDateTime")]
    pub expiration: DateTime<Utc>,
}

/// Every message of `user`'s mailbox, in every folder (Inbox, Sent Items and any folder
/// a member made): a move between folders is an update, never a deletion.
pub fn messages_resource(user: &str) -> String {
    user_resource(user, "messages")
}

/// Every event of `user`'s calendars.
pub fn events_resource(user: &str) -> String {
    user_resource(user, "events")
}

/// `users/{user}/{what}`, the user escaped as one path segment exactly as the mail
/// and calendar calls escape it, so an address cannot reach another resource.
fn user_resource(user: &str, what: &str) -> String {
    let mut url = Url::parse("https://graph.invalid/").expect("a constant URL");
    if let Ok(mut path) = url.path_segments_mut() {
        path.clear().extend(["users", user, what]);
    }
    url.path().trim_start_matches('/').to_owned()
}

/// `instant` as Graph reads an `expirationDateTime`: UTC with a `Z`.
fn graph_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The expiration to ask for from `now`.
pub fn expiration_from(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::minutes(SUBSCRIPTION_LIFETIME_MINUTES)
}

/// The app's subscriptions.
#[derive(Debug, Clone)]
pub struct SubscriptionClient {
    api: Arc<Api>,
}

impl SubscriptionClient {
    pub(crate) fn new(api: Arc<Api>) -> Self {
        SubscriptionClient { api }
    }

    /// `POST /subscriptions`. Graph first checks both URLs with its validation
    /// handshake, so this answers only once the endpoint has echoed the tokens; a
    /// failed handshake is Graph's `400 InvalidRequest` with its reason.
    pub async fn create(&self, request: &NewSubscription) -> Result<Subscription, ProviderError> {
        const WHAT: &str = "subscriptions.create";
        if request.client_state.chars().count() > MAX_CLIENT_STATE_CHARS {
            return Err(ProviderError::other(ProviderDetail::new(format!(
                "a subscription's clientState is at most {MAX_CLIENT_STATE_CHARS} characters"
            ))));
        }
        let body = serde_json::json!({
            "changeType": CHANGE_TYPES,
            "notificationUrl": request.notification_url,
            "lifecycleNotificationUrl": request.lifecycle_notification_url,
            "resource": request.resource,
            "expirationDateTime": graph_instant(request.expiration),
            "clientState": request.client_state,
        });
        let url = self.api.endpoints.graph(&["subscriptions"]);
        let answer = self
            .api
            .send(|http| http.post(url.clone()).json(&body))
            .await?;
        let made = decode_answer(
            answer.status,
            &answer.headers,
            &answer.body,
            GraphCall::Other,
            WHAT,
        )?;
        required(made, WHAT)
    }

    /// `PATCH /subscriptions/{id}` with a new expiration (which also answers a
    /// `reauthorizationRequired`). `Ok(None)`: Graph no longer has it (expired or
    /// removed), so a new one must be made.
    pub async fn renew(
        &self,
        id: &str,
        expiration: DateTime<Utc>,
    ) -> Result<Option<Subscription>, ProviderError> {
        const WHAT: &str = "subscriptions.update";
        let body = serde_json::json!({ "expirationDateTime": graph_instant(expiration) });
        let url = self.url(id);
        let answer = self
            .api
            .send(|http| http.patch(url.clone()).json(&body))
            .await?;
        if is_gone(&answer) {
            return Ok(None);
        }
        let renewed = decode_answer(
            answer.status,
            &answer.headers,
            &answer.body,
            GraphCall::Other,
            WHAT,
        )?;
        required(renewed, WHAT).map(Some)
    }

    /// `DELETE /subscriptions/{id}`; one Graph no longer has is deleted already.
    pub async fn delete(&self, id: &str) -> Result<(), ProviderError> {
        const WHAT: &str = "subscriptions.delete";
        let url = self.url(id);
        let answer = self.api.send(|http| http.delete(url.clone())).await?;
        if answer.status.is_success() || is_gone(&answer) {
            return Ok(());
        }
        // Not a success, so this is Graph's error classified (an `Other` call is never
        // "gone").
        match decode_answer::<IgnoredAny>(
            answer.status,
            &answer.headers,
            &answer.body,
            GraphCall::Other,
            WHAT,
        ) {
            Err(error) => Err(error),
            Ok(_) => Err(unreadable_answer(WHAT, "not a success")),
        }
    }

    fn url(&self, id: &str) -> Url {
        self.api.endpoints.graph(&["subscriptions", id.trim()])
    }
}

/// A 404 on `/subscriptions/{id}` is the subscription missing: the path names no user or
/// mailbox that could be the missing thing instead (the crate's usual reading of
/// `ResourceNotFound`).
fn is_gone(answer: &Answer) -> bool {
    answer.status == StatusCode::NOT_FOUND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_every_folder_or_the_calendar_of_one_user() {
        assert_eq!(
            messages_resource("ann@acme.example"),
            "users/ann@acme.example/messages"
        );
        assert_eq!(
            events_resource("o'brien@acme.example"),
            "users/o'brien@acme.example/events"
        );
        // An address cannot reach another user's resource or add a query.
        assert_eq!(
            messages_resource("x/../bob@acme.example?$x=1#y"),
            "users/x%2F..%2Fbob@acme.example%3F$x=1%23y/messages"
        );
    }

    #[test]
    fn expirations_are_utc_within_graph_s_limits() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let expiration = expiration_from(now);
        assert_eq!(graph_instant(expiration), "2026-12-09T08:00:00.250Z");
        let minutes = (expiration - now).num_minutes();
        assert!(
            minutes < 4_230,
            "under both the old and the current limit: {minutes}"
        );
    }

    #[test]
    fn client_states_never_reach_debug_output() {
        let request = NewSubscription {
            resource: messages_resource("a@b.example"),
            notification_url: "https://t.example/push".into(),
            lifecycle_notification_url: "https://t.example/push/lifecycle".into(),
            client_state: "SECRET-STATE".into(),
            expiration: Utc::now(),
        };
        assert!(!format!("{request:?}").contains("SECRET-STATE"));
    }
}
