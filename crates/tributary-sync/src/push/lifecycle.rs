//! The channel lifecycle, written once for every provider (docs/push.md, "Lifecycle"):
//! after each successful sync of a link the engine opens the channels the link lacks and
//! renews those falling due ([`maintain_channels`]), and records whether the link is on
//! push or polling, and why; unlinking and disconnecting close them ([`close_channels`]).
//! A channel call that fails never fails the sync: the link stays on polling with the
//! provider's words as the reason, and the next sync tries again.

use super::{OpenedChannel, PushLink, PushStream, PushTarget};
use crate::connector::Connector;
use crate::error::SyncError;
use std::time::Duration;
use tokio::task::JoinSet;
use tributary_store::{
    ConnectionKind, LinkId, PushChannelRecord, PushMode, Store, StoreError, TenantId, secret_hash,
};

/// The longest a channel is left before it is renewed: a day, as Google recommends for
/// its 7-day watches. A channel with a shorter life is renewed once half of it is left.
pub const RENEWAL_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// The reason shown for a link whose channels were closed because it was unlinked (or
/// its provider disconnected).
pub const UNLINKED_REASON: &str = "unlinked";

/// Longest provider message kept as a link's reason.
const MAX_REASON_CHARS: usize = 500;

/// Channels closed at once when many links are unlinked together.
const CLOSE_CONCURRENCY: usize = 8;

/// Push as a runtime runs it: on when the server has a public URL providers deliver to
/// (`--push` with `--public-url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// The server's public URL, without a trailing slash.
    public_url: String,
}

/// A public URL push cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the public URL {0:?} cannot receive push: give the http(s) address providers reach, \
     with a host and without a query or fragment (https:// for Google and Microsoft)"
)]
pub struct PublicUrlError(pub String);

impl PushSettings {
    /// Push delivered under `public_url` (`https://crm.example.com`; `http://` is for
    /// the emulators on loopback).
    pub fn new(public_url: &str) -> Result<Self, PublicUrlError> {
        let trimmed = public_url.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"));
        let host = rest
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let usable = !host.is_empty()
            && !host.contains('@')
            && !trimmed.contains(['?', '#'])
            && !trimmed.chars().any(char::is_whitespace)
            && trimmed.len() <= 2_000;
        if !usable {
            return Err(PublicUrlError(public_url.to_owned()));
        }
        Ok(PushSettings {
            public_url: trimmed.to_owned(),
        })
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Where `tenant`'s notifications are delivered.
    pub fn target(&self, tenant: &TenantId) -> PushTarget {
        PushTarget::new(&self.public_url, tenant)
    }
}

/// What the lifecycle step left a link in, for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRun {
    pub mode: PushMode,
    /// When the first of the link's channels falls due for renewal: its next sync
    /// should run by then.
    pub renew_due_ms: Option<i64>,
}

/// When `channel` falls due for renewal: [`RENEWAL_MARGIN`] before it lapses, or half
/// way through a shorter life; at once when marked due (`expires_ms` 0).
pub fn renew_due_ms(channel: &PushChannelRecord) -> i64 {
    if channel.expires_ms <= 0 {
        return 0;
    }
    let life = channel.expires_ms.saturating_sub(channel.renewed_ms).max(0);
    let margin = i64::try_from(RENEWAL_MARGIN.as_millis()).unwrap_or(i64::MAX);
    channel.expires_ms.saturating_sub(margin.min(life / 2))
}

/// Opens the channels `link` lacks among `streams` and renews those falling due, at
/// most two provider calls per stream (a renewal the provider refuses is followed by
/// one open); closes channels of streams no longer wanted (a calendar no longer
/// captured); records the link's push mode. Only a store failure is an error.
pub async fn maintain_channels(
    store: &Store,
    connector: &Connector,
    link: &PushLink,
    target: &PushTarget,
    streams: &[PushStream],
    now_ms: i64,
) -> Result<PushRun, StoreError> {
    let tenant = &link.tenant;
    let stored = store.push_channels(tenant, link.link).await?;
    for unwanted in stored.iter().filter(|channel| {
        PushStream::from_name(&channel.stream).is_none_or(|stream| !streams.contains(&stream))
    }) {
        close_one(store, connector, link, unwanted).await?;
    }
    let mut failures = Vec::new();
    let mut renew_due: Option<i64> = None;
    for &stream in streams {
        let existing = stored.iter().find(|c| c.stream == stream.as_str());
        let kept = match existing {
            Some(channel) if renew_due_ms(channel) > now_ms => Ok(channel.clone()),
            Some(channel) => renew(connector, link, channel, target, now_ms).await,
            None => open(connector, link, stream, target, now_ms).await,
        };
        match kept {
            Ok(channel) => {
                if existing != Some(&channel) {
                    store.save_push_channel(tenant, &channel).await?;
                }
                let due = renew_due_ms(&channel);
                renew_due = Some(renew_due.map_or(due, |d| d.min(due)));
            }
            Err(error) => {
                let message = error.message();
                tracing::warn!(
                    tenant = %tenant.as_str(), mailbox = ?link.mailbox, stream = stream.as_str(),
                    error = ?message, "push channel not opened or renewed; the link is polled"
                );
                failures.push(format!("{}: {message}", stream.as_str()));
            }
        }
    }
    let mode = if failures.is_empty() {
        PushMode::Push
    } else {
        PushMode::Polling
    };
    let reason = (!failures.is_empty()).then(|| bounded(&failures.join("; ")));
    store
        .set_link_push(tenant, link.link, mode, reason.as_deref(), now_ms)
        .await?;
    Ok(PushRun {
        mode,
        renew_due_ms: renew_due,
    })
}

/// Records that a provider without push polls `link`, and why (no rows without push
/// configured at all: see [`PushSettings`]).
pub async fn record_no_push(
    store: &Store,
    tenant: &TenantId,
    link: LinkId,
    provider: ConnectionKind,
    now_ms: i64,
) -> Result<PushRun, StoreError> {
    let reason = format!("{} push is not available yet", provider_name(provider));
    store
        .set_link_push(tenant, link, PushMode::Polling, Some(&reason), now_ms)
        .await?;
    Ok(PushRun {
        mode: PushMode::Polling,
        renew_due_ms: None,
    })
}

fn provider_name(provider: ConnectionKind) -> &'static str {
    match provider {
        ConnectionKind::Google => "Google",
        ConnectionKind::Microsoft => "Microsoft 365",
        ConnectionKind::Imap => "IMAP",
    }
}

async fn open(
    connector: &Connector,
    link: &PushLink,
    stream: PushStream,
    target: &PushTarget,
    now_ms: i64,
) -> Result<PushChannelRecord, SyncError> {
    let opened = connector.open_push(link, stream, target).await?;
    Ok(record_of(link.link, opened, now_ms))
}

/// Renews `channel`; when the provider refuses (the channel gone there, say), opens a
/// new one in its place.
async fn renew(
    connector: &Connector,
    link: &PushLink,
    channel: &PushChannelRecord,
    target: &PushTarget,
    now_ms: i64,
) -> Result<PushChannelRecord, SyncError> {
    match connector.renew_push(link, channel, target).await {
        Ok(renewed) => Ok(renewed_record(link.link, channel, renewed, now_ms)),
        // A transient refusal leaves the channel live at the provider: opening another
        // would leave two delivering until the first lapses. The next sync renews it.
        Err(SyncError::Provider(error)) if error.is_transient() => Err(error.into()),
        Err(error) => {
            let Some(stream) = PushStream::from_name(&channel.stream) else {
                return Err(error);
            };
            tracing::info!(
                tenant = %link.tenant.as_str(), mailbox = ?link.mailbox, stream = stream.as_str(),
                error = ?error.message(), "push channel not renewed; opening a new one"
            );
            open(connector, link, stream, target, now_ms).await
        }
    }
}

/// The record of a renewed channel. A renewal that kept the channel (Graph's `PATCH`)
/// cannot answer its secret, which is stored only as a hash: the stored hash stays.
fn renewed_record(
    link: LinkId,
    channel: &PushChannelRecord,
    renewed: OpenedChannel,
    now_ms: i64,
) -> PushChannelRecord {
    let kept = renewed.channel_id == channel.channel_id && renewed.secret.is_none();
    let previous_hash = channel.secret_hash.clone();
    let mut record = record_of(link, renewed, now_ms);
    if kept {
        record.secret_hash = previous_hash;
    }
    record
}

fn record_of(link: LinkId, opened: OpenedChannel, now_ms: i64) -> PushChannelRecord {
    PushChannelRecord {
        link,
        stream: opened.stream.as_str().to_owned(),
        channel_id: opened.channel_id,
        expires_ms: opened.expires_ms,
        secret_hash: opened.secret.as_deref().map(secret_hash),
        renewed_ms: now_ms,
    }
}

/// Stops `channel` at the provider (a failure is logged: the channel lapses on its
/// own) and forgets it.
async fn close_one(
    store: &Store,
    connector: &Connector,
    link: &PushLink,
    channel: &PushChannelRecord,
) -> Result<(), StoreError> {
    if let Err(error) = connector.close_push(link, channel).await {
        tracing::warn!(
            tenant = %link.tenant.as_str(), mailbox = ?link.mailbox, stream = ?channel.stream,
            error = ?error.message(), "push channel not stopped; it lapses at its expiry"
        );
    }
    store
        .delete_push_channel(&link.tenant, link.link, &channel.stream)
        .await
}

/// Stops `channels` (each with its link) at the provider, a few at a time, and
/// forgets them. A provider's refusal never stops the others; `connector` `None` (the
/// connection is gone) only forgets them. Answers how many were closed.
pub async fn close_channels(
    store: &Store,
    connector: Option<&Connector>,
    channels: Vec<(PushLink, PushChannelRecord)>,
) -> Result<usize, StoreError> {
    let closed = channels.len();
    let Some(connector) = connector else {
        for (link, channel) in &channels {
            store
                .delete_push_channel(&link.tenant, link.link, &channel.stream)
                .await?;
        }
        return Ok(closed);
    };
    let mut tasks = JoinSet::new();
    let mut pending = channels.into_iter();
    loop {
        while tasks.len() < CLOSE_CONCURRENCY {
            let Some((link, channel)) = pending.next() else {
                break;
            };
            let (store, connector) = (store.clone(), connector.clone());
            tasks.spawn(async move { close_one(&store, &connector, &link, &channel).await });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        match done {
            Ok(result) => result?,
            Err(error) => tracing::warn!(%error, "a push channel's close task died"),
        }
    }
    Ok(closed)
}

/// `text` cut to [`MAX_REASON_CHARS`] characters.
fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(expires_ms: i64, renewed_ms: i64) -> PushChannelRecord {
        PushChannelRecord {
            link: LinkId(1),
            stream: "mail".into(),
            channel_id: "c".into(),
            expires_ms,
            secret_hash: None,
            renewed_ms,
        }
    }

    const DAY: i64 = 24 * 3600 * 1000;

    #[test]
    fn a_week_long_channel_is_renewed_a_day_before_it_lapses() {
        let week = channel(8 * DAY, DAY);
        assert_eq!(renew_due_ms(&week), 7 * DAY);
    }

    #[test]
    fn a_short_channel_is_renewed_half_way_and_a_marked_one_at_once() {
        let hour = 3_600_000;
        assert_eq!(renew_due_ms(&channel(10 * hour, 8 * hour)), 9 * hour);
        assert_eq!(renew_due_ms(&channel(0, 8 * hour)), 0);
        // A channel recorded as lapsing before it was made is due at its expiry.
        assert_eq!(renew_due_ms(&channel(5, 10)), 5);
    }

    #[test]
    fn public_urls_need_a_host_and_no_query() {
        let settings = PushSettings::new("https://crm.example.com/").unwrap();
        assert_eq!(settings.public_url(), "https://crm.example.com");
        assert_eq!(
            settings.target(&TenantId::new("acme")).google_mail_url(),
            "https://crm.example.com/push/google/acme"
        );
        assert!(PushSettings::new("http://127.0.0.1:8080").is_ok());
        for bad in [
            "crm.example.com",
            "https://",
            "ftp://crm.example.com",
            "https://crm.example.com/?a=1",
            "https://user@crm.example.com",
            "https://crm example.com",
        ] {
            let error = PushSettings::new(bad).unwrap_err();
            assert!(error.to_string().contains("public URL"), "{bad}: {error}");
        }
    }

    #[test]
    fn long_reasons_are_cut() {
        let long = "é".repeat(MAX_REASON_CHARS + 10);
        assert_eq!(bounded(&long).chars().count(), MAX_REASON_CHARS + 1);
        assert_eq!(bounded("short"), "short");
    }
}
