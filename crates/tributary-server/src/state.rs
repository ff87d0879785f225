//! What every handler shares.

use std::sync::Arc;
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
    /// The URL users reach the console at (links in mail, cookie scope).
    pub public_url: String,
    /// Mark cookies `Secure` (off only for plain-HTTP loopback use).
    pub secure_cookies: bool,
    pub smtp: Option<SmtpConfig>,
    /// Largest request body accepted (key files are a few kilobytes).
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_url: "http://127.0.0.1:8080".to_owned(),
            secure_cookies: false,
            smtp: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Handler state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub runtime: Runtime,
    pub config: Arc<ServerConfig>,
}

impl AppState {
    pub fn new(runtime: Runtime, config: ServerConfig) -> Self {
        AppState {
            runtime,
            config: Arc::new(config),
        }
    }

    pub fn store(&self) -> &Store {
        self.runtime.store()
    }
}
