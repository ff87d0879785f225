//! Exchange mail through Graph: folders, messages, per-folder message delta. Every call
//! goes through [`super::access::open_mailbox`] (role, user, mailbox, access policy,
//! throttling) and is counted per mailbox and method.

pub mod delta;
pub mod folders;
pub mod live;
pub mod messages;
pub mod render;
pub mod store;
pub mod token;

use super::access::{self, PermitHolder};
use super::envelope::{GraphError, RequestIds};
use super::identity::registry::Grant;
use super::state::MicrosoftState;
use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use std::sync::Arc;

pub fn routes() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route("/v1.0/users/{user}/mailFolders", get(folders::list_top))
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}",
            get(folders::get_one),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/childFolders",
            get(folders::list_children),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages",
            get(messages::list_in_folder),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages/delta",
            get(delta::delta),
        )
        // The OData function-call form the Graph SDKs send.
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages/delta()",
            get(delta::delta),
        )
        .route(
            "/v1.0/users/{user}/mailFolders/{folder}/messages/{id}",
            get(messages::get_in_folder),
        )
        .route("/v1.0/users/{user}/messages/{id}", get(messages::get_one))
}

/// Authenticates and admits a mailbox call, answering the grant and the mailbox's user
/// id; the throttling permit goes to `holder` (held until the answer leaves).
pub fn admit(
    state: &MicrosoftState,
    headers: &HeaderMap,
    user: &str,
    holder: &PermitHolder,
) -> Result<(Grant, Admitted), GraphError> {
    let grant = access::authenticate(state, headers)?;
    let call = access::open_mailbox(state, &grant, user)?;
    holder.keep(call.permit);
    Ok((
        grant,
        Admitted {
            user_id: call.user_id,
        },
    ))
}

/// An admitted mailbox call (its permit is in the request's [`PermitHolder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub user_id: String,
}

/// Counts the call under the mailbox it names and renders an error with the ids.
pub fn finish(
    state: &MicrosoftState,
    ids: &RequestIds,
    user: &str,
    method: &'static str,
    result: Result<Response, GraphError>,
) -> Response {
    let mailbox = state
        .tenant()
        .user(user)
        .map(|u| u.id.clone())
        .unwrap_or_else(|| user.to_ascii_lowercase());
    state.counters.record_request(&mailbox, method);
    match result {
        Ok(response) => response,
        Err(error) => {
            if error.code != "ApplicationThrottled" {
                state.counters.record_error(&mailbox, &error.code);
            }
            error.render(ids)
        }
    }
}
