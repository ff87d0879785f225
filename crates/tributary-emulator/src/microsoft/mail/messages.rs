//! Messages: one by id (immutable or REST id, in the mailbox or a given folder) and the
//! messages of a folder (`$top`/`$skip`, default 10). `$select` and
//! `Prefer: IdType="ImmutableId"` apply.

use super::super::access::PermitHolder;
use super::super::access::reads_bodies;
use super::super::envelope::{self, GraphError, RequestIds, json_response};
use super::super::query::{Preferences, QueryOptions};
use super::super::state::MicrosoftState;
use super::folders::with_mailbox as read_mailbox;
use super::render::{RenderOptions, message_json};
use super::{admit, finish};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

/// Marks the answer when ids were immutable, as Graph does.
pub fn applied(
    mut response: Response,
    preferences: &Preferences,
    page_size: Option<usize>,
) -> Response {
    let mut parts = Vec::new();
    if let Some(size) = page_size {
        parts.push(format!("odata.maxpagesize={size}"));
    }
    if preferences.immutable_ids {
        parts.push("IdType=\"ImmutableId\"".to_string());
    }
    if !parts.is_empty()
        && let Ok(value) = HeaderValue::from_str(&parts.join(","))
    {
        response.headers_mut().insert("preference-applied", value);
    }
    response
}

fn get_message(
    state: &MicrosoftState,
    headers: &HeaderMap,
    holder: &PermitHolder,
    user: &str,
    folder: Option<&str>,
    id: &str,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let preferences = Preferences::from_headers(headers);
    let (grant, call) = admit(state, headers, user, holder)?;
    read_mailbox(state, &call.user_id, |mailbox| {
        let item = mailbox.item(id).ok_or_else(envelope::item_not_found)?;
        if let Some(folder) = folder {
            let folder = mailbox
                .folder(folder)
                .ok_or_else(envelope::item_not_found)?;
            if folder.id != item.folder_id {
                return Err(envelope::item_not_found());
            }
        }
        let select = query.select();
        let options = RenderOptions {
            select: select.as_deref(),
            immutable_ids: preferences.immutable_ids,
            bodies: reads_bodies(&grant),
        };
        let mut body = message_json(item, &item.folder_id, options);
        body["@odata.context"] = json!(format!(
            "{}/$metadata#users('{}')/messages/$entity",
            state.graph_url(),
            call.user_id
        ));
        Ok(applied(
            json_response(StatusCode::OK, &body),
            &preferences,
            None,
        ))
    })
}

pub async fn get_one(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path((user, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = get_message(&state, &headers, &holder, &user, None, &id, &query);
    finish(&state, &ids, &user, "messages.get", result)
}

pub async fn get_in_folder(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path((user, folder, id)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = get_message(&state, &headers, &holder, &user, Some(&folder), &id, &query);
    finish(&state, &ids, &user, "messages.get", result)
}

const DEFAULT_PAGE: usize = 10;

fn list(
    state: &MicrosoftState,
    headers: &HeaderMap,
    holder: &PermitHolder,
    user: &str,
    folder: &str,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let preferences = Preferences::from_headers(headers);
    let (grant, call) = admit(state, headers, user, holder)?;
    let top: usize = query
        .get("$top")
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, 1000);
    let skip: usize = query.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    read_mailbox(state, &call.user_id, |mailbox| {
        let folder = mailbox
            .folder(folder)
            .ok_or_else(envelope::item_not_found)?;
        let select = query.select();
        let options = RenderOptions {
            select: select.as_deref(),
            immutable_ids: preferences.immutable_ids,
            bodies: reads_bodies(&grant),
        };
        let items = mailbox.items_in(&folder.id);
        let value: Vec<Value> = items
            .iter()
            .skip(skip)
            .take(top)
            .map(|item| message_json(item, &folder.id, options))
            .collect();
        let mut body = json!({
            "@odata.context": format!("{}/$metadata#users('{}')/mailFolders('{}')/messages", state.graph_url(), call.user_id, folder.id),
            "value": value,
        });
        if skip + top < items.len() {
            let mut link = format!(
                "{}/users/{}/mailFolders/{}/messages?%24top={top}&%24skip={}",
                state.graph_url(),
                call.user_id,
                folder.id,
                skip + top
            );
            if let Some(select) = &select {
                link.push_str(&format!("&%24select={}", select.join(",")));
            }
            body["@odata.nextLink"] = json!(link);
        }
        Ok(applied(
            json_response(StatusCode::OK, &body),
            &preferences,
            None,
        ))
    })
}

pub async fn list_in_folder(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path((user, folder)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = list(&state, &headers, &holder, &user, &folder, &query);
    finish(&state, &ids, &user, "messages.list", result)
}
