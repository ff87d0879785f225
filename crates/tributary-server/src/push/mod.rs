//! Provider push: the endpoints providers deliver change notifications to, under the
//! server's public URL (docs/push.md). They exist only when push is configured
//! ([`crate::ServerConfig::push`]); a notification never runs a sync itself, it brings
//! the mailbox's sync forward so that a worker runs it next.

pub mod google;

use crate::AppState;
use axum::Router;
use axum::routing::post;

/// The push routes, or none when push is not configured.
pub fn router(state: &AppState) -> Router<AppState> {
    let router = Router::new();
    if state.google_push.is_none() {
        return router;
    }
    router.route(google::ROUTE, post(google::receive))
}
