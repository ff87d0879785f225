//! Gmail and Google Calendar push behind the contract of [`crate::push`].
//!
//! - Mail: a Gmail watch per mailbox publishing to the tenant's Pub/Sub topic, whose
//!   push subscription delivers to [`PushTarget::google_mail_url`]. The topic, Gmail's
//!   publisher grant and the subscription are made by the service account itself, once
//!   per connector and endpoint, before the first watch. The channel id is the mailbox
//!   (notifications name it); renewing is watching again; closing is `users.stop`.
//! - Calendar: an `events.watch` web-hook channel on the primary calendar, delivering to
//!   [`PushTarget::google_calendar_url`] with a random token as its secret. Channels do
//!   not renew: a new one is opened and the old one stopped. `channels.stop` needs
//!   Google's resource id besides the channel id, so the stored channel id is
//!   [`channel_key`]'s `"{channel id} {resource id}"`, which is also what the server
//!   looks a notification up by (its `X-Goog-Channel-ID` and `X-Goog-Resource-ID`).
//!
//! Each call spends its quota units through the link's pacer, as the sync's calls do.

use super::GmailSource;
use crate::error::SyncError;
use crate::push::{OpenedChannel, PushLink, PushStream, PushTarget};
use rand::Rng;
use rand::distributions::Alphanumeric;
use tributary_core::{ProviderDetail, ProviderError};
#[cfg(doc)]
use tributary_google::calendar::channel_key;
use tributary_google::calendar::split_channel_key;
use tributary_store::PushChannelRecord;

/// Quota units of the push calls (Gmail's published costs; a Calendar call is one).
mod units {
    pub const WATCH: u32 = 100;
    pub const STOP: u32 = 50;
    pub const EVENTS_WATCH: u32 = 1;
    pub const CHANNELS_STOP: u32 = 1;
}

/// Length of a Calendar channel's token (Google allows 256 characters).
const CHANNEL_TOKEN_LEN: usize = 43;

impl GmailSource {
    /// The streams whose changes this provider pushes.
    pub fn push_streams(&self) -> &'static [PushStream] {
        &[PushStream::Mail, PushStream::Calendar]
    }

    /// Opens (or replaces) the channel of `link`'s `stream`, delivering to `target`.
    pub async fn open_push(
        &self,
        link: &PushLink,
        stream: PushStream,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        match stream {
            PushStream::Mail => self.watch_mailbox(link, target).await,
            PushStream::Calendar => self.open_calendar_channel(link, target).await,
        }
    }

    /// Renews `channel` before it lapses: a Gmail watch is made again; a Calendar
    /// channel is replaced by a new one, and the old one stopped.
    pub async fn renew_push(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        match stream_of(channel)? {
            PushStream::Mail => self.watch_mailbox(link, target).await,
            PushStream::Calendar => {
                let opened = self.open_calendar_channel(link, target).await?;
                // The new channel works: an old one that will not stop only lapses.
                if let Err(error) = self.stop_calendar_channel(link, channel).await {
                    tracing::info!(mailbox = ?link.mailbox, error = ?error.to_string(), "the replaced calendar channel did not stop");
                }
                Ok(opened)
            }
        }
    }

    /// Stops `channel`; one the provider no longer has is stopped already.
    pub async fn close_push(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
    ) -> Result<(), SyncError> {
        match stream_of(channel)? {
            PushStream::Mail => {
                let gmail = self.connector().gmail(&link.mailbox);
                link.pacer
                    .call(&link.mailbox, units::STOP, || gmail.stop())
                    .await?;
                Ok(())
            }
            PushStream::Calendar => self.stop_calendar_channel(link, channel).await,
        }
    }

    /// Makes sure the tenant's topic and subscription deliver to `target`, then watches
    /// the mailbox (every change: the sync applies the link's labels).
    async fn watch_mailbox(
        &self,
        link: &PushLink,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        let pubsub = self.connector().pubsub()?;
        let topic = pubsub.ensure_gmail_push(&target.google_mail_url()).await?;
        let gmail = self.connector().gmail(&link.mailbox);
        let watched = link
            .pacer
            .call(&link.mailbox, units::WATCH, || gmail.watch(&topic, &[]))
            .await;
        let watch = match watched {
            Ok(watch) => watch,
            Err(error) => {
                // The topic or its grant may be gone since it was made: check it again
                // next time rather than trust what this connector remembers.
                if !error.is_transient() {
                    pubsub.forget_gmail_push().await;
                }
                return Err(error.into());
            }
        };
        Ok(OpenedChannel {
            stream: PushStream::Mail,
            channel_id: link.mailbox.clone(),
            expires_ms: watch.expiration_ms,
            secret: None,
        })
    }

    async fn open_calendar_channel(
        &self,
        link: &PushLink,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        let calendar = self.connector().calendar(&link.mailbox);
        let (id, token) = (random_uuid(), random_token());
        let address = target.google_calendar_url();
        let channel = link
            .pacer
            .call(&link.mailbox, units::EVENTS_WATCH, || {
                calendar.watch_events(&id, &address, &token)
            })
            .await?;
        Ok(OpenedChannel {
            stream: PushStream::Calendar,
            channel_id: channel.key(),
            expires_ms: channel.expiration_ms,
            secret: Some(token),
        })
    }

    async fn stop_calendar_channel(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
    ) -> Result<(), SyncError> {
        let Some((id, resource_id)) = split_channel_key(&channel.channel_id) else {
            return Err(ProviderError::other(ProviderDetail::new(format!(
                "the stored calendar channel {:?} has no resource id: it lapses by itself",
                channel.channel_id
            )))
            .into());
        };
        let calendar = self.connector().calendar(&link.mailbox);
        link.pacer
            .call(&link.mailbox, units::CHANNELS_STOP, || {
                calendar.stop_channel(id, resource_id)
            })
            .await?;
        Ok(())
    }
}

fn stream_of(channel: &PushChannelRecord) -> Result<PushStream, SyncError> {
    PushStream::from_name(&channel.stream).ok_or_else(|| {
        ProviderError::other(ProviderDetail::new(format!(
            "unknown push stream {:?}",
            channel.stream
        )))
        .into()
    })
}

/// A random (version 4) UUID: a channel id Google accepts and nobody can guess.
fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::thread_rng().r#gen();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A channel's secret token: 43 random letters and digits (over 250 bits).
fn random_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(CHANNEL_TOKEN_LEN)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_are_v4_uuids_and_tokens_differ() {
        let id = random_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert!(!id.contains(' '));
        assert_ne!(random_uuid(), id);
        let token = random_token();
        assert_eq!(token.len(), CHANNEL_TOKEN_LEN);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random_token(), token);
    }
}
