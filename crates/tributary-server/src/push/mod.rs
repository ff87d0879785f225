//! Provider push: the endpoints providers deliver change notifications to, under the
//! server's public URL (docs/push.md). They exist only when push is configured
//! ([`crate::ServerConfig::push`]); a notification never runs a sync itself, it brings
//! the mailbox's sync forward so that a worker runs it next.

pub mod google;
pub mod google_calendar;
pub mod microsoft;

use crate::AppState;
use axum::Router;
use axum::routing::post;

/// The push routes, or none when push is not configured.
pub fn router(state: &AppState) -> Router<AppState> {
    let router = Router::new();
    if state.config.push.is_none() {
        return router;
    }
    router
        .route(google::ROUTE, post(google::receive))
        .route(google_calendar::ROUTE, post(google_calendar::receive))
        .route(microsoft::ROUTE, post(microsoft::receive))
        .route(
            microsoft::LIFECYCLE_ROUTE,
            post(microsoft::receive_lifecycle),
        )
}
