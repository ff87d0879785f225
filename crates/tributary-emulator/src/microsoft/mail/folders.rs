//! `mailFolders`: the top-level folders (children of the hidden root), one folder by id
//! or well-known name, `childFolders`; `$top`/`$skip` paging (default 10).

use super::super::access::PermitHolder;
use super::super::envelope::{self, GraphError, RequestIds, json_response};
use super::super::query::QueryOptions;
use super::super::state::MicrosoftState;
use super::store::{ExoMailbox, Folder};
use super::{admit, finish};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

const DEFAULT_PAGE: usize = 10;
const MAX_PAGE: usize = 1000;

pub fn folder_json(mailbox: &ExoMailbox, folder: &Folder) -> Value {
    let (total, unread) = mailbox.counts(&folder.id);
    json!({
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_id,
        "childFolderCount": mailbox.children(&folder.id).len(),
        "unreadItemCount": unread,
        "totalItemCount": total,
        "sizeInBytes": total * 4096,
        "isHidden": false,
    })
}

fn page_bounds(query: &QueryOptions) -> Result<(usize, usize), GraphError> {
    let parse = |name: &str, default: usize| -> Result<usize, GraphError> {
        match query.get(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                GraphError::bad_request(
                    "ErrorInvalidUrlQuery",
                    format!("The value of {name} is not valid."),
                )
            }),
        }
    };
    let top = parse("$top", DEFAULT_PAGE)?;
    if top == 0 || top > MAX_PAGE {
        return Err(GraphError::bad_request(
            "ErrorInvalidUrlQuery",
            format!("The value of $top must be between 1 and {MAX_PAGE}."),
        ));
    }
    Ok((top, parse("$skip", 0)?))
}

/// A page of folders with a `$skip` next link.
fn folder_page(
    state: &MicrosoftState,
    path: &str,
    mailbox: &ExoMailbox,
    folders: &[&Folder],
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let (top, skip) = page_bounds(query)?;
    let value: Vec<Value> = folders
        .iter()
        .skip(skip)
        .take(top)
        .map(|f| folder_json(mailbox, f))
        .collect();
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#users('{}')/mailFolders", state.graph_url(), mailbox.user_id),
        "value": value,
    });
    if skip + top < folders.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}{path}?%24top={top}&%24skip={}",
            state.graph_url(),
            skip + top
        ));
    }
    Ok(json_response(StatusCode::OK, &body))
}

pub(super) fn with_mailbox<T>(
    state: &MicrosoftState,
    user_id: &str,
    f: impl FnOnce(&ExoMailbox) -> Result<T, GraphError>,
) -> Result<T, GraphError> {
    let tenant = state.tenant();
    let mailbox = tenant
        .mailboxes
        .get(user_id)
        .ok_or_else(envelope::mailbox_not_enabled)?;
    f(mailbox)
}

pub async fn list_top(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path(user): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = admit(&state, &headers, &user, &holder).and_then(|(_, call)| {
        with_mailbox(&state, &call.user_id, |mailbox| {
            let root = mailbox.well_known_id("msgfolderroot");
            let folders = mailbox.children(&root);
            let path = format!("/users/{}/mailFolders", call.user_id);
            folder_page(&state, &path, mailbox, &folders, &query)
        })
    });
    finish(&state, &ids, &user, "mailFolders.list", result)
}

pub async fn get_one(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path((user, folder)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let result = admit(&state, &headers, &user, &holder).and_then(|(_, call)| {
        with_mailbox(&state, &call.user_id, |mailbox| {
            let folder = mailbox
                .folder(&folder)
                .ok_or_else(envelope::item_not_found)?;
            let mut body = folder_json(mailbox, folder);
            body["@odata.context"] = json!(format!(
                "{}/$metadata#users('{}')/mailFolders/$entity",
                state.graph_url(),
                call.user_id
            ));
            Ok(json_response(StatusCode::OK, &body))
        })
    });
    finish(&state, &ids, &user, "mailFolders.get", result)
}

pub async fn list_children(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path((user, folder)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = admit(&state, &headers, &user, &holder).and_then(|(_, call)| {
        with_mailbox(&state, &call.user_id, |mailbox| {
            let parent = mailbox
                .folder(&folder)
                .ok_or_else(envelope::item_not_found)?;
            let children = mailbox.children(&parent.id);
            let path = format!(
                "/users/{}/mailFolders/{}/childFolders",
                call.user_id, parent.id
            );
            folder_page(&state, &path, mailbox, &children, &query)
        })
    });
    finish(&state, &ids, &user, "mailFolders.childFolders", result)
}
