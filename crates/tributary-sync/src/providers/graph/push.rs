//! Microsoft Graph push behind the contract of [`crate::push`]: one change notification
//! subscription per stream of a link, on every message of the mailbox (every folder: a
//! move is an update, never a deletion) and on every event of its calendars. Each is
//! made with a `clientState` secret of its own, checked by the server's endpoint on
//! every notification (`crates/tributary-server/src/push/microsoft.rs`), renewed with a
//! `PATCH` of its expiration and deleted when the link goes.

use super::{GRAPH_REQUEST_UNITS, GraphSource};
use crate::error::SyncError;
use crate::push::{OpenedChannel, PushLink, PushStream, PushTarget};
use chrono::Utc;
use rand::Rng;
use rand::distributions::Alphanumeric;
use tributary_core::{ProviderDetail, ProviderError};
use tributary_microsoft::{
    NewSubscription, Subscription, events_resource, expiration_from, messages_resource,
};
use tributary_store::PushChannelRecord;

/// Characters of a subscription's `clientState`: 48 alphanumerics are 285 bits of
/// randomness, within Graph's 128 characters.
const CLIENT_STATE_CHARS: usize = 48;

impl GraphSource {
    /// The streams whose changes this provider pushes.
    pub fn push_streams(&self) -> &'static [PushStream] {
        &[PushStream::Mail, PushStream::Calendar]
    }

    /// Makes a subscription for `link`'s `stream` delivering to `target`; Graph checks
    /// both endpoints with its validation handshake before it answers. The channel's
    /// secret is the subscription's new `clientState`.
    pub async fn open_push(
        &self,
        link: &PushLink,
        stream: PushStream,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        let request = NewSubscription {
            resource: resource(stream, &link.mailbox),
            notification_url: target.microsoft_url(),
            lifecycle_notification_url: target.microsoft_lifecycle_url(),
            client_state: client_state(),
            expiration: expiration_from(Utc::now()),
        };
        let subscriptions = self.connector().subscriptions();
        let made = link
            .pacer
            .call(&link.mailbox, GRAPH_REQUEST_UNITS, || {
                subscriptions.create(&request)
            })
            .await?;
        Ok(opened(stream, made, Some(request.client_state)))
    }

    /// Extends `channel`'s subscription with a `PATCH` (which also answers a
    /// `reauthorizationRequired`). The answer's `secret` is `None`: the subscription
    /// keeps its `clientState`, so the stored hash stays as it is. A subscription Graph
    /// no longer has (expired, or removed) is made again, with a new id and secret.
    pub async fn renew_push(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        let stream = stored_stream(channel)?;
        let subscriptions = self.connector().subscriptions();
        let expiration = expiration_from(Utc::now());
        let renewed = link
            .pacer
            .call(&link.mailbox, GRAPH_REQUEST_UNITS, || {
                subscriptions.renew(&channel.channel_id, expiration)
            })
            .await?;
        match renewed {
            Some(subscription) => Ok(opened(stream, subscription, None)),
            None => {
                tracing::info!(mailbox = ?link.mailbox, stream = stream.as_str(),
                    "the Graph subscription is gone; making a new one");
                self.open_push(link, stream, target).await
            }
        }
    }

    /// Deletes `channel`'s subscription; one Graph no longer has is deleted already.
    pub async fn close_push(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
    ) -> Result<(), SyncError> {
        let subscriptions = self.connector().subscriptions();
        link.pacer
            .call(&link.mailbox, GRAPH_REQUEST_UNITS, || {
                subscriptions.delete(&channel.channel_id)
            })
            .await?;
        Ok(())
    }
}

/// What a stream's subscription watches.
fn resource(stream: PushStream, mailbox: &str) -> String {
    match stream {
        PushStream::Mail => messages_resource(mailbox),
        PushStream::Calendar => events_resource(mailbox),
    }
}

fn opened(stream: PushStream, subscription: Subscription, secret: Option<String>) -> OpenedChannel {
    OpenedChannel {
        stream,
        channel_id: subscription.id,
        expires_ms: subscription.expiration.timestamp_millis(),
        secret,
    }
}

/// A new random `clientState`.
fn client_state() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(CLIENT_STATE_CHARS)
        .map(char::from)
        .collect()
}

fn stored_stream(channel: &PushChannelRecord) -> Result<PushStream, SyncError> {
    PushStream::from_name(&channel.stream).ok_or_else(|| {
        ProviderError::other(ProviderDetail::new(format!(
            "the stored push channel has an unknown stream {:?}",
            channel.stream
        )))
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_states_are_long_random_and_within_graph_s_limit() {
        let (one, two) = (client_state(), client_state());
        assert_eq!(one.len(), CLIENT_STATE_CHARS);
        assert!(one.len() >= 32 && one.len() <= tributary_microsoft::MAX_CLIENT_STATE_CHARS);
        assert!(one.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(one, two);
    }

    #[test]
    fn mail_watches_every_folder_and_calendar_every_event() {
        assert_eq!(
            resource(PushStream::Mail, "ann@acme.example"),
            "users/ann@acme.example/messages"
        );
        assert_eq!(
            resource(PushStream::Calendar, "ann@acme.example"),
            "users/ann@acme.example/events"
        );
    }
}
