//! Tributary's server: the admin console (HTML pages under `/`) and the REST API
//! (`/api/v1`, bearer tokens, OpenAPI at `/api/v1/openapi.json`). Every handler works
//! through the sync runtime and the store, scoped to the signed-in tenant; nothing here
//! calls a provider directly.

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod notify;
pub mod openapi;
mod state;

pub use state::{AppState, ServerConfig, SmtpConfig};

use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

/// Every route: the API under `/api/v1`, the console everywhere else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(console::router())
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
