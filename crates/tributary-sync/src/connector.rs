//! The one place that picks the provider. [`Connector`] is a closed enum: adding a
//! provider adds a variant, and the compiler then names every `match` below that must
//! learn it (they are the only ones in the engine). See ARCHITECTURE.md, "Adding a
//! provider".

use crate::calendar::{CalendarPage, CalendarRequest, CalendarSource};
use crate::error::SyncError;
use crate::link::LinkContext;
use crate::pacing::Pacer;
use crate::providers::gmail::GmailSource;
use crate::providers::graph::GraphSource;
use crate::push::{OpenedChannel, PushLink, PushStream, PushTarget};
use crate::source::{DirectorySource, LinkRun, MailSource};
use tributary_core::DirectoryAccount;
use tributary_google::GoogleConnector;
use tributary_microsoft::MicrosoftConnector;
use tributary_store::{ConnectionKind, PushChannelRecord};

/// A tenant's connection to one provider, as the engine and User Delegation Sync use it.
#[derive(Debug, Clone)]
pub enum Connector {
    Google(GmailSource),
    Microsoft(GraphSource),
}

impl From<GoogleConnector> for Connector {
    fn from(connector: GoogleConnector) -> Self {
        Connector::Google(GmailSource::new(connector))
    }
}

impl From<MicrosoftConnector> for Connector {
    fn from(connector: MicrosoftConnector) -> Self {
        Connector::Microsoft(GraphSource::new(connector))
    }
}

impl Connector {
    /// The provider, as connections and links record it.
    pub fn kind(&self) -> ConnectionKind {
        match self {
            Connector::Google(source) => source.kind(),
            Connector::Microsoft(source) => source.kind(),
        }
    }

    /// The cursor streams the provider keeps per link.
    pub fn cursor_streams(&self) -> &'static [&'static str] {
        match self {
            Connector::Google(source) => source.cursor_streams(),
            Connector::Microsoft(source) => source.cursor_streams(),
        }
    }

    /// Syncs one link's mailbox (see [`MailSource::sync`]).
    pub async fn sync(&self, link: &LinkContext) -> Result<LinkRun, SyncError> {
        match self {
            Connector::Google(source) => source.sync(link).await,
            Connector::Microsoft(source) => source.sync(link).await,
        }
    }

    /// The organization's accounts (see [`DirectorySource::accounts`]).
    pub async fn accounts(
        &self,
        admin_email: &str,
        pacer: &Pacer,
    ) -> Result<Vec<DirectoryAccount>, SyncError> {
        match self {
            Connector::Google(source) => source.accounts(admin_email, pacer).await,
            Connector::Microsoft(source) => source.accounts(admin_email, pacer).await,
        }
    }

    /// The calendar's cursor stream; `None` for a provider without a calendar source
    /// (the engine then leaves the link's calendar alone).
    pub fn calendar_stream(&self) -> Option<&'static str> {
        match self {
            Connector::Google(source) => Some(source.calendar_stream()),
            Connector::Microsoft(source) => Some(source.calendar_stream()),
        }
    }

    /// One page of a link's calendar (see [`CalendarSource::calendar_page`]).
    pub async fn calendar_page(
        &self,
        link: &LinkContext,
        request: &CalendarRequest,
    ) -> Result<CalendarPage, SyncError> {
        match self {
            Connector::Google(source) => source.calendar_page(link, request).await,
            Connector::Microsoft(source) => source.calendar_page(link, request).await,
        }
    }

    /// The streams whose changes the provider pushes (none: its links are polled).
    pub fn push_streams(&self) -> &'static [PushStream] {
        match self {
            Connector::Google(source) => source.push_streams(),
            Connector::Microsoft(source) => source.push_streams(),
        }
    }

    /// Opens (or replaces) the push channel of a link's stream.
    pub async fn open_push(
        &self,
        link: &PushLink,
        stream: PushStream,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        match self {
            Connector::Google(source) => source.open_push(link, stream, target).await,
            Connector::Microsoft(source) => source.open_push(link, stream, target).await,
        }
    }

    /// Renews a link's push channel before it lapses.
    pub async fn renew_push(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
        target: &PushTarget,
    ) -> Result<OpenedChannel, SyncError> {
        match self {
            Connector::Google(source) => source.renew_push(link, channel, target).await,
            Connector::Microsoft(source) => source.renew_push(link, channel, target).await,
        }
    }

    /// Stops a link's push channel.
    pub async fn close_push(
        &self,
        link: &PushLink,
        channel: &PushChannelRecord,
    ) -> Result<(), SyncError> {
        match self {
            Connector::Google(source) => source.close_push(link, channel).await,
            Connector::Microsoft(source) => source.close_push(link, channel).await,
        }
    }
}
