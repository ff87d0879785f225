//! `GET /users/{id}/mailFolders/{id}/messages/delta`: a first round listing the folder
//! page by page (`@odata.nextLink` with `$skiptoken`) up to an `@odata.deltaLink`
//! (`$deltatoken`); later rounds report items created or moved in and, as `@removed`,
//! items moved out or deleted. Links are absolute, opaque, and keep the first request's
//! `$select` and page size. A state issued before the mailbox's sync state was expired
//! answers 410 `SyncStateNotFound`.

use super::super::access::PermitHolder;
use super::super::access::reads_bodies;
use super::super::envelope::{self, GraphError, RequestIds, json_response};
use super::super::query::{Preferences, QueryOptions};
use super::super::state::MicrosoftState;
use super::messages::applied;
use super::render::{RenderOptions, message_json};
use super::store::{ExoMailbox, Touched};
use super::token::{ChangeType, DeltaState, Phase, ReceivedFilter};
use super::{admit, finish};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;

/// Graph's default page for message delta.
pub const DEFAULT_PAGE: usize = 10;

fn invalid_token() -> GraphError {
    GraphError::bad_request(
        "ErrorInvalidSyncStateData",
        "The SyncStateData is not valid.",
    )
}

/// `$filter` on message delta: only `receivedDateTime ge|gt <instant>`, as on Graph.
fn received_filter(query: &QueryOptions) -> Result<Option<ReceivedFilter>, GraphError> {
    let Some(filter) = query.get("$filter") else {
        return Ok(None);
    };
    let unsupported = || {
        GraphError::bad_request(
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        )
    };
    let parts: Vec<&str> = filter.split_whitespace().collect();
    let [field, operator, value] = parts.as_slice() else {
        return Err(unsupported());
    };
    if !field.eq_ignore_ascii_case("receivedDateTime") {
        return Err(unsupported());
    }
    let strict = match operator.to_ascii_lowercase().as_str() {
        "ge" => false,
        "gt" => true,
        _ => return Err(unsupported()),
    };
    let instant = chrono::DateTime::parse_from_rfc3339(value.trim_matches('\''))
        .map_err(|_| unsupported())?;
    Ok(Some(ReceivedFilter {
        since_ms: instant.timestamp_millis(),
        strict,
    }))
}

fn change_type(query: &QueryOptions) -> Result<Option<ChangeType>, GraphError> {
    match query
        .get("changetype")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => Ok(None),
        Some("created") => Ok(Some(ChangeType::Created)),
        Some("updated") => Ok(Some(ChangeType::Updated)),
        Some("deleted") => Ok(Some(ChangeType::Deleted)),
        Some(other) => Err(GraphError::bad_request(
            "ErrorInvalidUrlQuery",
            format!("The value '{other}' of changeType is not valid."),
        )),
    }
}

/// The state a request continues from, or a fresh first round.
fn requested_state(
    mailbox: &ExoMailbox,
    folder_id: &str,
    query: &QueryOptions,
    preferences: &Preferences,
    key: &str,
) -> Result<DeltaState, GraphError> {
    let token = query.get("$skiptoken").or_else(|| query.get("$deltatoken"));
    let Some(token) = token else {
        return Ok(DeltaState {
            user_id: mailbox.user_id.clone(),
            folder_id: folder_id.to_string(),
            generation: mailbox.sync_generation,
            phase: Phase::Initial {
                upto: mailbox.seq,
                after: 0,
            },
            select: query.select(),
            page_size: preferences.max_page_size,
            received_filter: received_filter(query)?,
            change_type: change_type(query)?,
        });
    };
    let state = DeltaState::decode(token, key).ok_or_else(invalid_token)?;
    if state.user_id != mailbox.user_id || state.folder_id != folder_id {
        return Err(invalid_token());
    }
    if state.generation != mailbox.sync_generation {
        return Err(envelope::sync_state_not_found(
            state.generation,
            mailbox.sync_generation,
        ));
    }
    Ok(state)
}

/// One page's entries (present items or removals) and where the round stands after it.
enum Entry<'a> {
    Present(&'a super::store::Item),
    Removed {
        immutable_id: String,
        rest_id: String,
    },
}

/// Whether an item in the folder is reported: it passes the received filter, and the
/// change type asks for items (a creation or a move in counts as `created`; the
/// emulator models no updates).
fn keeps_item(state: &DeltaState, item: &super::store::Item) -> bool {
    let kind_ok = matches!(state.change_type, None | Some(ChangeType::Created));
    kind_ok
        && state
            .received_filter
            .is_none_or(|f: ReceivedFilter| f.keeps(item.received_ms))
}

fn keeps_touched(mailbox: &ExoMailbox, state: &DeltaState, touched: &Touched) -> bool {
    match touched {
        Touched::Present(id) => mailbox.items.get(id).is_some_and(|i| keeps_item(state, i)),
        Touched::Removed { .. } => matches!(state.change_type, None | Some(ChangeType::Deleted)),
    }
}

fn page<'a>(mailbox: &'a ExoMailbox, state: &DeltaState, size: usize) -> (Vec<Entry<'a>>, Phase) {
    match state.phase {
        Phase::Initial { upto, after } => {
            let rest: Vec<_> = mailbox
                .items_in(&state.folder_id)
                .into_iter()
                .filter(|i| i.created_seq > after && keeps_item(state, i))
                .collect();
            let more = rest.len() > size;
            let taken: Vec<_> = rest.into_iter().take(size).collect();
            let next = match (more, taken.last()) {
                (true, Some(last)) => Phase::Initial {
                    upto,
                    after: last.created_seq,
                },
                _ => Phase::Delta { at: upto },
            };
            (taken.into_iter().map(Entry::Present).collect(), next)
        }
        Phase::Delta { at } => page(
            mailbox,
            &DeltaState {
                phase: Phase::Changes {
                    from: at,
                    upto: mailbox.seq,
                    after: at,
                },
                ..state.clone()
            },
            size,
        ),
        Phase::Changes { from, upto, after } => {
            let touched: Vec<_> = mailbox
                .touched(&state.folder_id, from, upto)
                .into_iter()
                .filter(|(seq, touched)| *seq > after && keeps_touched(mailbox, state, touched))
                .collect();
            let more = touched.len() > size;
            let taken: Vec<_> = touched.into_iter().take(size).collect();
            let next = match (more, taken.last()) {
                (true, Some((seq, _))) => Phase::Changes {
                    from,
                    upto,
                    after: *seq,
                },
                _ => Phase::Delta { at: upto },
            };
            let entries = taken
                .into_iter()
                .filter_map(|(_, touched)| match touched {
                    Touched::Present(id) => mailbox.items.get(&id).map(Entry::Present),
                    Touched::Removed {
                        immutable_id,
                        rest_id,
                    } => Some(Entry::Removed {
                        immutable_id,
                        rest_id,
                    }),
                })
                .collect();
            (entries, next)
        }
    }
}

fn entry_json(entry: &Entry<'_>, folder_id: &str, options: RenderOptions<'_>) -> Value {
    match entry {
        Entry::Present(item) => {
            let mut value = message_json(item, folder_id, options);
            value["@odata.type"] = json!("#microsoft.graph.message");
            value
        }
        Entry::Removed {
            immutable_id,
            rest_id,
        } => {
            let id = if options.immutable_ids {
                immutable_id
            } else {
                rest_id
            };
            json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}})
        }
    }
}

fn delta_page(
    state: &MicrosoftState,
    headers: &HeaderMap,
    holder: &PermitHolder,
    user: &str,
    folder: &str,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let preferences = Preferences::from_headers(headers);
    let (grant, call) = admit(state, headers, user, holder)?;
    let tenant = state.tenant();
    let key = tenant.tenant_id.clone();
    let mailbox = tenant
        .mailboxes
        .get(&call.user_id)
        .ok_or_else(envelope::mailbox_not_enabled)?;
    let folder_id = mailbox
        .folder(folder)
        .ok_or_else(envelope::item_not_found)?
        .id
        .clone();
    let delta_state =
        requested_state(mailbox, &folder_id, query, &preferences, &key).map_err(|mut error| {
            if error.status == StatusCode::GONE {
                // Graph points at a fresh first round.
                error.location = Some(format!(
                    "{}/users/{}/mailFolders/{folder_id}/messages/delta",
                    state.graph_url(),
                    call.user_id
                ));
            }
            error
        })?;
    let size = preferences
        .max_page_size
        .or(delta_state.page_size)
        .unwrap_or(DEFAULT_PAGE)
        .max(1);
    let (entries, next) = page(mailbox, &delta_state, size);
    let options = RenderOptions {
        select: delta_state.select.as_deref(),
        immutable_ids: preferences.immutable_ids,
        bodies: reads_bodies(&grant),
    };
    let value: Vec<Value> = entries
        .iter()
        .map(|e| entry_json(e, &folder_id, options))
        .collect();
    let link_kind = if matches!(next, Phase::Delta { .. }) {
        ("@odata.deltaLink", "$deltatoken")
    } else {
        ("@odata.nextLink", "$skiptoken")
    };
    let token = DeltaState {
        phase: next,
        ..delta_state.clone()
    }
    .encode(&key);
    let link = format!(
        "{}/users/{}/mailFolders/{}/messages/delta?{}={token}",
        state.graph_url(),
        call.user_id,
        folder_id,
        link_kind.1
    );
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#Collection(message)", state.graph_url()),
        "value": value,
    });
    body[link_kind.0] = json!(link);
    Ok(applied(
        json_response(StatusCode::OK, &body),
        &preferences,
        preferences.max_page_size,
    ))
}

pub async fn delta(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Extension(holder): Extension<PermitHolder>,
    Path((user, folder)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = delta_page(&state, &headers, &holder, &user, &folder, &query);
    finish(&state, &ids, &user, "messages.delta", result)
}
