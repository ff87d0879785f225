//! Tributary's server: the admin console (HTML pages under `/`) and the REST API
//! (`/api/v1`, bearer tokens, OpenAPI at `/api/v1/openapi.json`). Every handler works
//! through the sync runtime and the store, scoped to the signed-in tenant; nothing here
//! calls a provider directly.

pub mod api;
pub mod auth;
pub mod console;
pub mod cookies;
pub mod error;
pub mod notify;
pub mod openapi;
pub mod progress;
pub mod push;
mod state;
pub mod throttle;

pub use cookies::CookiePolicy;
pub use state::{AppState, PushConfig, ServerConfig, SmtpConfig};
pub use throttle::{FailureLimit, SignInLimits};

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Every route: the API under `/api/v1`, the console everywhere else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/api/v1", api::router())
        .merge(push::router(&state))
        .merge(console::router())
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes. Each request carries its
/// TCP peer's address (`ConnectInfo`): the sign-in throttle counts failures by it.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
