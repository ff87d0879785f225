//! Push (docs/push.md): the provider-neutral half. A provider opens a *channel* per
//! stream of a link (a Gmail watch, a Google Calendar channel, a Graph subscription)
//! that delivers change notifications to the tenant's endpoint under the server's
//! public URL; a notification only brings the link's sync forward. The engine opens
//! missing channels and renews expiring ones after each sync of a link, and closes
//! them when the link is unlinked or its provider disconnected; the store keeps them
//! ([`tributary_store::PushChannelRecord`]) and whether each link is on push or
//! polling, and why.

use std::sync::Arc;

use crate::pacing::Pacer;
use tributary_store::{LinkId, TenantId};

/// Which of a link's streams a channel covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushStream {
    Mail,
    Calendar,
}

impl PushStream {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PushStream::Mail => "mail",
            PushStream::Calendar => "calendar",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "mail" => Some(PushStream::Mail),
            "calendar" => Some(PushStream::Calendar),
            _ => None,
        }
    }
}

/// Where a tenant's notifications are delivered: its endpoints under the server's
/// public URL (never the tenant's to choose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The server's public URL, without a trailing slash.
    pub public_url: String,
    pub tenant: TenantId,
}

impl PushTarget {
    pub fn new(public_url: &str, tenant: &TenantId) -> Self {
        PushTarget {
            public_url: public_url.trim_end_matches('/').to_owned(),
            tenant: tenant.clone(),
        }
    }

    /// Gmail's Pub/Sub push subscription delivers here (and the OIDC audience is this).
    pub fn google_mail_url(&self) -> String {
        format!("{}/push/google/{}", self.public_url, self.tenant.as_str())
    }

    /// Google Calendar channels deliver here.
    pub fn google_calendar_url(&self) -> String {
        format!(
            "{}/push/google/{}/calendar",
            self.public_url,
            self.tenant.as_str()
        )
    }

    /// Graph change notifications are delivered here.
    pub fn microsoft_url(&self) -> String {
        format!(
            "{}/push/microsoft/{}",
            self.public_url,
            self.tenant.as_str()
        )
    }

    /// Graph lifecycle notifications are delivered here.
    pub fn microsoft_lifecycle_url(&self) -> String {
        format!(
            "{}/push/microsoft/{}/lifecycle",
            self.public_url,
            self.tenant.as_str()
        )
    }
}

/// The link a channel is opened, renewed or closed for: less than a
/// [`LinkContext`](crate::link::LinkContext), since unlinking needs no extractor.
#[derive(Debug, Clone)]
pub struct PushLink {
    pub tenant: TenantId,
    pub link: LinkId,
    /// The mailbox's address, lowercased.
    pub mailbox: String,
    /// The tenant's pacer: watch and subscription calls spend quota like any other.
    pub pacer: Arc<Pacer>,
}

/// A channel the provider made or renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedChannel {
    pub stream: PushStream,
    /// The provider's id for it: a Graph subscription id, a Calendar channel id; for a
    /// Gmail watch (one per mailbox, named by its address in notifications) the mailbox.
    pub channel_id: String,
    /// When it lapses unless renewed, Unix milliseconds.
    pub expires_ms: i64,
    /// The secret each notification carries (Graph's `clientState`, a Calendar
    /// channel's token), made at random per channel; `None` for Gmail (its pushes are
    /// signed instead). Stored only as a hash.
    pub secret: Option<String>,
}

pub mod lifecycle;

pub use lifecycle::{PublicUrlError, PushRun, PushSettings};
