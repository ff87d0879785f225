//! What every handler shares.

use crate::cookies::CookiePolicy;
use crate::throttle::{SignInLimits, SignInThrottle};
use std::sync::Arc;
use tributary_google::push::PushVerifier;
use tributary_store::Store;
use tributary_sync::Runtime;

/// Where the server sends mail (the "capture is on" notice to admins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// The sender address.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Plain SMTP without TLS (a local relay, or a test listener).
    pub plaintext: bool,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL users reach the console at (links in mail). Its scheme decides the
    /// cookies: `https://` makes them `Secure` and `__Host-` named (see
    /// [`CookiePolicy::for_public_url`]).
    pub public_url: String,
    pub smtp: Option<SmtpConfig>,
    /// Largest request body accepted (key files are a few kilobytes).
    pub max_body_bytes: usize,
    /// Failed sign-ins (console passwords, API tokens) allowed per account and address.
    pub sign_in_limits: SignInLimits,
    /// Receiving provider push (docs/push.md); `None`: the push routes do not exist and
    /// mailboxes are polled as before.
    pub push: Option<PushConfig>,
}

/// How the server checks provider push deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// Where the keys that sign Pub/Sub's push tokens are served (JWKS): Google's
    /// `https://www.googleapis.com/oauth2/v3/certs`, or the emulator's.
    pub google_certs_url: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            google_certs_url: tributary_google::push::GOOGLE_CERTS_URL.to_owned(),
        }
    }
}

impl ServerConfig {
    /// The console's cookie names and flags, from [`Self::public_url`].
    pub fn cookies(&self) -> CookiePolicy {
        CookiePolicy::for_public_url(&self.public_url)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_url: "http://127.0.0.1:8080".to_owned(),
            smtp: None,
            max_body_bytes: 1024 * 1024,
            sign_in_limits: SignInLimits::default(),
            push: None,
        }
    }
}

/// Handler state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub runtime: Runtime,
    pub config: Arc<ServerConfig>,
    /// Failed sign-ins counted per account and client address.
    pub throttle: Arc<SignInThrottle>,
    /// Verifies Gmail push tokens (its certificates cached); set when push is configured.
    pub google_push: Option<Arc<PushVerifier>>,
}

impl AppState {
    pub fn new(runtime: Runtime, config: ServerConfig) -> Self {
        // The routes that receive push and the runtime that opens channels for them are
        // configured together (`serve --push`): one without the other is a wiring slip.
        let runtime_push = runtime.config().push.as_ref();
        if config.push.is_some() != runtime_push.is_some() {
            tracing::warn!(
                server = config.push.is_some(),
                runtime = runtime_push.is_some(),
                "push is configured on only one of the server and the runtime"
            );
        }
        // Building the HTTP client fails only when TLS cannot be set up at all, which
        // every other request of the server would hit first.
        let google_push = config.push.as_ref().map(|push| {
            Arc::new(
                PushVerifier::new(&push.google_certs_url)
                    .expect("the push certificates client builds"),
            )
        });
        AppState {
            runtime,
            google_push,
            throttle: Arc::new(SignInThrottle::new(config.sign_in_limits)),
            config: Arc::new(config),
        }
    }

    pub fn store(&self) -> &Store {
        self.runtime.store()
    }
}
