//! Whether each mailbox link is on push or polling, and why (docs/push.md, "Per-link
//! state"), as the API's `push` field and the Users page's column show it. Read from
//! what the sync's lifecycle step recorded; a channel's secret hash is never shown.

use crate::AppState;
use serde_json::{Value, json};
use std::collections::HashMap;
use tributary_store::{
    LinkId, LinkPush, LinkStatus, LinkView, PushChannelRecord, PushMode, StoreError, TenantId,
};

/// Most channels read for one page or answer (two streams per link at most).
const MAX_CHANNELS_READ: u32 = 100_000;

/// Why a link with nothing recorded is polled, while push is on.
pub const NOT_YET: &str = "push starts after the mailbox's next successful sync";

/// Why every link is polled while this server has no push.
pub const PUSH_OFF: &str = "push is not configured on this server (--push with --public-url)";

/// Why an unlinked link is not on push.
pub const UNLINKED: &str = tributary_sync::push::lifecycle::UNLINKED_REASON;

/// One link's push state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushView {
    pub mode: PushMode,
    pub reason: Option<String>,
    /// `(stream, expires_ms)`; `expires_ms` 0 is a channel marked due for renewal.
    pub channels: Vec<(String, i64)>,
}

impl PushView {
    pub fn json(&self) -> Value {
        let channels: Vec<Value> = self
            .channels
            .iter()
            .map(|(stream, expires_ms)| {
                json!({ "stream": stream, "expires_at": expires_at(*expires_ms) })
            })
            .collect();
        json!({
            "mode": self.mode.as_str(),
            "reason": self.reason,
            "channels": channels,
        })
    }
}

/// RFC 3339, or `None` for a channel marked due for renewal (or an unreadable time).
fn expires_at(expires_ms: i64) -> Option<String> {
    if expires_ms <= 0 {
        return None;
    }
    chrono::DateTime::from_timestamp_millis(expires_ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The tenant's recorded push modes and channels, read once for many links.
pub struct TenantPush {
    push_on: bool,
    modes: HashMap<LinkId, LinkPush>,
    channels: HashMap<LinkId, Vec<PushChannelRecord>>,
}

impl TenantPush {
    pub async fn load(state: &AppState, tenant: &TenantId) -> Result<Self, StoreError> {
        let store = state.store();
        let modes = store
            .link_push_modes(tenant)
            .await?
            .into_iter()
            .map(|mode| (mode.link, mode))
            .collect();
        let mut channels: HashMap<LinkId, Vec<PushChannelRecord>> = HashMap::new();
        for channel in store
            .push_channels_expiring(tenant, i64::MAX, MAX_CHANNELS_READ)
            .await?
        {
            channels.entry(channel.link).or_default().push(channel);
        }
        Ok(TenantPush {
            push_on: state.runtime.config().push.is_some(),
            modes,
            channels,
        })
    }

    /// `link`'s state: unlinked links and every link of a server without push are
    /// polled whatever was recorded before.
    pub fn of(&self, link: &LinkView) -> PushView {
        let polling = |reason: &str| PushView {
            mode: PushMode::Polling,
            reason: Some(reason.to_owned()),
            channels: Vec::new(),
        };
        if link.status == LinkStatus::Unlinked {
            return polling(UNLINKED);
        }
        if !self.push_on {
            return polling(PUSH_OFF);
        }
        let Some(recorded) = self.modes.get(&link.id) else {
            return polling(NOT_YET);
        };
        let mut channels: Vec<(String, i64)> = self
            .channels
            .get(&link.id)
            .map(|channels| {
                channels
                    .iter()
                    .map(|c| (c.stream.clone(), c.expires_ms))
                    .collect()
            })
            .unwrap_or_default();
        channels.sort();
        PushView {
            mode: recorded.mode,
            reason: recorded.reason.clone(),
            channels,
        }
    }
}
