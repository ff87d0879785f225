//! Tributary's Google Workspace connector (see `docs/google-connector.md`).
//!
//! One service-account key with domain-wide delegation reaches the whole organization:
//! [`GoogleConnector::directory`] lists its users as an administrator, and
//! [`GoogleConnector::gmail`] reads any user's mail metadata as that user. Every failure
//! is a [`tributary_core::ProviderError`] carrying Google's own message.
//!
//! The connector does no pacing and no retrying beyond one token refresh when an API
//! refuses a cached token: the sync engine drives it, and schedules retries from each
//! error's kind and `retry_after`. It never touches a store.

mod api;
mod batch;
pub mod calendar;
pub mod directory;
mod error;
pub mod gmail;
pub mod keyfile;
pub mod pubsub;
pub mod push;
pub mod token;

pub use api::{EndpointError, GOOGLE_TOKEN_URL, GoogleEndpoints};
pub use batch::MAX_BATCH_PARTS;
pub use calendar::{CalendarChannel, CalendarClient, CalendarOccurrence, EventsPage, EventsQuery};
pub use directory::{DirectoryClient, DirectoryPage};
pub use gmail::{
    GmailClient, HistoryChange, HistoryChangeKind, HistoryMessage, HistoryPage, HistoryQuery,
    HistoryRecord, Label, LabelKind, MessageListQuery, MessageMeta, MessagePage, MessageRef,
    Profile, Watch,
};
pub use keyfile::{KeyFileError, ServiceAccountInfo, ServiceAccountKey};
pub use pubsub::PubSubClient;
pub use token::{AccessToken, DEFAULT_REFRESH_MARGIN, TokenProvider};

use api::{Api, ParsedEndpoints};
use std::sync::Arc;
use std::time::Duration;
use tributary_core::{ProviderDetail, ProviderError};

/// The OAuth scopes Tributary asks an administrator to delegate to its client ID.
pub mod scopes {
    pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
    pub const DIRECTORY_USER_READONLY: &str =
        "https://www.googleapis.com/auth/admin.directory.user.readonly";
    pub const CALENDAR_READONLY: &str = "https://www.googleapis.com/auth/calendar.readonly";
    pub const CONTACTS_READONLY: &str = "https://www.googleapis.com/auth/contacts.readonly";

    /// Every scope to delegate. Each API call asks only for the scope it needs, so a
    /// feature whose scope is missing fails alone.
    pub const ALL: [&str; 4] = [
        GMAIL_READONLY,
        DIRECTORY_USER_READONLY,
        CALENDAR_READONLY,
        CONTACTS_READONLY,
    ];

    /// Cloud Pub/Sub, asked for by the service account for itself (never delegated):
    /// Gmail push's topic and subscription live in its own project.
    pub const PUBSUB: &str = "https://www.googleapis.com/auth/pubsub";
}

/// How the connector reaches Google.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    pub endpoints: GoogleEndpoints,
    /// Limit on one HTTP exchange, answer included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Refresh cached tokens this long before they expire.
    pub token_refresh_margin: Duration,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        ConnectorOptions {
            endpoints: GoogleEndpoints::default(),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            token_refresh_margin: DEFAULT_REFRESH_MARGIN,
        }
    }
}

/// Why a connector could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// One organization's connection: a key, its token cache and an HTTP client, shared by
/// every client it hands out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GoogleConnector {
    api: Arc<Api>,
}

impl GoogleConnector {
    pub fn new(key: ServiceAccountKey, options: ConnectorOptions) -> Result<Self, ConnectorError> {
        let endpoints = ParsedEndpoints::parse(&options.endpoints)?;
        // Google's APIs and token endpoint never redirect: the client follows none.
        let http = tributary_http::client_builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let tokens = TokenProvider::new(Arc::new(key), http.clone(), endpoints.token_url.clone())
            .with_refresh_margin(options.token_refresh_margin);
        Ok(GoogleConnector {
            api: Arc::new(Api {
                http,
                tokens,
                endpoints,
                gmail_push_ready: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// What may be shown about the key (no private key).
    pub fn key_info(&self) -> &ServiceAccountInfo {
        self.api.tokens.key().info()
    }

    /// The token cache, e.g. to check that every scope is delegated by asking for a token
    /// with [`scopes::ALL`].
    pub fn tokens(&self) -> &TokenProvider {
        &self.api.tokens
    }

    /// The Directory, read as `admin_email` (must be an administrator).
    pub fn directory(&self, admin_email: &str) -> DirectoryClient {
        DirectoryClient::new(Arc::clone(&self.api), admin_email)
    }

    /// The primary calendar of `user_email`, as that user.
    pub fn calendar(&self, user_email: &str) -> CalendarClient {
        CalendarClient::new(Arc::clone(&self.api), user_email)
    }

    /// Gmail as `user_email`.
    pub fn gmail(&self, user_email: &str) -> GmailClient {
        GmailClient::new(Arc::clone(&self.api), user_email)
    }

    /// Cloud Pub/Sub in the key's own project, as the service account itself. The
    /// project is the key's `project_id` (or, in a key without one, the project its
    /// `client_email` names).
    pub fn pubsub(&self) -> Result<PubSubClient, ProviderError> {
        let info = self.key_info();
        let project = info
            .project_id
            .clone()
            .filter(|p| !p.trim().is_empty())
            .or_else(|| project_of(&info.client_email))
            .ok_or_else(|| {
                ProviderError::unauthorized(ProviderDetail::new(
                    "the service-account key names no Cloud project (project_id): upload the \
                     key file as Google Cloud gives it",
                ))
            })?;
        Ok(PubSubClient::new(Arc::clone(&self.api), &project))
    }
}

/// `PROJECT` of `name@PROJECT.iam.gserviceaccount.com`.
fn project_of(client_email: &str) -> Option<String> {
    let (_, domain) = client_email.split_once('@')?;
    let project = domain.strip_suffix(".iam.gserviceaccount.com")?;
    (!project.is_empty()).then(|| project.to_owned())
}
