//! Tributary's Microsoft 365 connector (see `docs/microsoft-connector.md`).
//!
//! One app registration, consented to by a tenant's administrator, reaches the whole
//! organization with app-only tokens (client credentials, with a client secret or a
//! certificate): [`MicrosoftConnector::directory`] lists its users with every SMTP
//! address, [`MicrosoftConnector::mailbox`] reads one mailbox's folders and per
//! folder message delta, and [`MicrosoftConnector::calendar`] its primary calendar by
//! `calendarView` delta; [`MicrosoftConnector::subscriptions`] makes the change
//! notification subscriptions push rests on. Every failure is a
//! [`tributary_core::ProviderError`] carrying Microsoft's own code and message.
//!
//! The connector does no pacing and no retrying beyond one token refresh when Graph
//! refuses a cached token: the sync engine drives it, and schedules retries from each
//! error's kind and `retry_after`. It never touches a store.

mod api;
pub mod batch;
pub mod calendar;
pub mod credentials;
pub mod directory;
pub mod endpoints;
mod error;
pub mod mail;
pub mod subscriptions;
pub mod token;

pub use batch::{BatchRequest, BatchResponse, MAX_BATCH_REQUESTS};
pub use calendar::{
    CALENDAR_PERMISSION_FIX, CalendarClient, CalendarEvent, CalendarPage, CalendarWindow,
    SkippedEvent, WindowError,
};
pub use credentials::{
    AppCredentials, AssertionAlgorithm, CertificateCredential, ClientCredential, ClientSecret,
    CredentialError,
};
pub use directory::{DirectoryClient, DirectoryUser, UsersPage};
pub use endpoints::{
    EndpointError, GRAPH_DEFAULT_SCOPE, MICROSOFT_AUTHORITY_HOST, MICROSOFT_GRAPH_BASE,
    MicrosoftEndpoints,
};
pub use mail::{
    DeltaLink, DeltaOptions, DeltaPage, EmailAddress, GraphMessage, HeadersResult, InternetHeader,
    MAILBOX_CONCURRENCY, MailClient, MailFolder, WELL_KNOWN_FOLDERS,
};
pub use subscriptions::{
    MAX_CLIENT_STATE_CHARS, NewSubscription, SUBSCRIPTION_LIFETIME_MINUTES, Subscription,
    SubscriptionClient, events_resource, expiration_from, messages_resource,
};
pub use token::{AccessToken, DEFAULT_REFRESH_MARGIN, TokenProvider};

use api::Api;
use endpoints::ParsedEndpoints;
use std::sync::Arc;
use std::time::Duration;
use tributary_core::ProviderError;

/// How the connector reaches Microsoft.
#[derive(Debug, Clone)]
pub struct ConnectorOptions {
    pub endpoints: MicrosoftEndpoints,
    /// Limit on one HTTP exchange, answer included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Refresh cached tokens this long before they expire.
    pub token_refresh_margin: Duration,
    /// Extra CA certificates (PEM) to trust besides the system's: the emulator's CA, or
    /// an operator's TLS-inspecting proxy.
    pub extra_root_certificates: Vec<String>,
}

impl Default for ConnectorOptions {
    fn default() -> Self {
        ConnectorOptions {
            endpoints: MicrosoftEndpoints::default(),
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            token_refresh_margin: DEFAULT_REFRESH_MARGIN,
            extra_root_certificates: Vec::new(),
        }
    }
}

/// Why a connector could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("an extra root certificate is not a PEM certificate: {0}")]
    RootCertificate(reqwest::Error),
    #[error("cannot set up the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// One tenant's connection: the app's credentials, its token cache and an HTTP client,
/// shared by every client it hands out. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MicrosoftConnector {
    api: Arc<Api>,
}

impl MicrosoftConnector {
    pub fn new(app: AppCredentials, options: ConnectorOptions) -> Result<Self, ConnectorError> {
        let endpoints = ParsedEndpoints::parse(&options.endpoints)?;
        let http = http_client(&options)?;
        let token_url = endpoints.token_url(&app.tenant);
        let tokens = TokenProvider::new(app, http.clone(), token_url)
            .with_refresh_margin(options.token_refresh_margin);
        Ok(MicrosoftConnector {
            api: Arc::new(Api {
                http,
                tokens,
                endpoints,
            }),
        })
    }

    /// The token cache, e.g. to test the credentials by asking for a token.
    pub fn tokens(&self) -> &TokenProvider {
        &self.api.tokens
    }

    /// Checks the credentials and consent: a Graph token for the tenant.
    pub async fn check_credentials(&self) -> Result<(), ProviderError> {
        self.api.tokens.token(GRAPH_DEFAULT_SCOPE).await.map(drop)
    }

    pub fn directory(&self) -> DirectoryClient {
        DirectoryClient::new(Arc::clone(&self.api))
    }

    /// One mailbox, by the user's id (preferred: it survives renames) or principal name.
    pub fn mailbox(&self, user: &str) -> MailClient {
        MailClient::new(Arc::clone(&self.api), user)
    }

    /// One user's primary calendar, by id or principal name; its occurrences are
    /// attributed to `owner`, the user's address.
    pub fn calendar(&self, user: &str, owner: tributary_core::EmailAddress) -> CalendarClient {
        CalendarClient::new(Arc::clone(&self.api), user, owner)
    }

    /// The app's change notification subscriptions (push).
    pub fn subscriptions(&self) -> SubscriptionClient {
        SubscriptionClient::new(Arc::clone(&self.api))
    }

    /// Up to [`MAX_BATCH_REQUESTS`] GETs in one `$batch`; the answers in request order
    /// (`None` where Graph answered nothing for one). Each answer is an HTTP answer of
    /// its own (status, headers, body) that the caller classifies.
    pub async fn batch(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<Option<BatchResponse>>, ProviderError> {
        batch::send(&self.api, requests).await
    }
}

/// rustls, no redirects (Graph and the identity platform never redirect an API call;
/// following one would send the request, token or secret included, wherever the answer
/// says), timeouts.
fn http_client(options: &ConnectorOptions) -> Result<reqwest::Client, ConnectorError> {
    let mut roots = Vec::new();
    for pem in &options.extra_root_certificates {
        roots.push(
            reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(ConnectorError::RootCertificate)?,
        );
    }
    let mut builder = tributary_http::client_builder()
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")));
    if !roots.is_empty() {
        builder = builder.tls_certs_merge(roots);
    }
    Ok(builder.build()?)
}
