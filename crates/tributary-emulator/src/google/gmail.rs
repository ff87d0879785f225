//! Gmail API v1, read side: `getProfile`, `labels.list`, `labels.get`, `messages.list`,
//! `messages.get`, `history.list`. Responses follow Google's JSON conventions: int64 as
//! strings, empty lists and the last `nextPageToken` omitted.

use super::auth::AccessGrant;
use super::call::{Int64, QueryParams, Uint64, authenticate, charged, json_response};
use super::error::ApiError;
use super::mime;
use super::quota::GmailMethod;
use super::state::EmulatorState;
use crate::model::{HistoryChange, HistoryRecord, LabelKind, Mailbox, Organization, StoredMessage};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{FixedOffset, NaiveDate, TimeZone};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;

pub(crate) fn routes() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route("/gmail/v1/users/{user_id}/profile", get(get_profile))
        .route("/gmail/v1/users/{user_id}/labels", get(labels_list))
        .route(
            "/gmail/v1/users/{user_id}/labels/{label_id}",
            get(labels_get),
        )
        .route("/gmail/v1/users/{user_id}/messages", get(messages_list))
        .route(
            "/gmail/v1/users/{user_id}/messages/{message_id}",
            get(messages_get),
        )
        .route("/gmail/v1/users/{user_id}/history", get(history_list))
}

/// The authenticated caller of a Gmail request.
pub(crate) struct GmailCaller {
    pub(crate) grant: AccessGrant,
    /// The impersonated user's primary email, lowercase.
    pub(crate) subject: Arc<str>,
}

/// Token, scope, and `userId` checks shared by every Gmail method.
fn gmail_caller(
    state: &EmulatorState,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<GmailCaller, ApiError> {
    let grant = authenticate(state, headers)?;
    if !grant.access.gmail_read {
        return Err(ApiError::insufficient_permissions());
    }
    let subject = grant
        .subject
        .clone()
        .ok_or_else(ApiError::precondition_failed)?;
    let own_address = user_id == "me" || user_id.eq_ignore_ascii_case(&subject);
    if !own_address {
        let org = state.org();
        let is_alias = org
            .find_user(&subject)
            .is_some_and(|u| u.owns_address(&user_id.to_ascii_lowercase()));
        if !is_alias {
            return Err(ApiError::forbidden(format!(
                "Delegation denied for {subject}"
            )));
        }
    }
    Ok(GmailCaller { grant, subject })
}

/// The caller's mailbox, or `failedPrecondition` when Gmail is not enabled for it.
fn mailbox<'o>(org: &'o Organization, subject: &str) -> Result<&'o Mailbox, ApiError> {
    match org.mailboxes.get(subject) {
        Some(mailbox) if mailbox.mail_enabled => Ok(mailbox),
        _ => Err(ApiError::mail_service_not_enabled()),
    }
}

/// Runs a Gmail method: caller checks, then the charged handler.
pub(crate) async fn gmail_call<F>(
    state: &EmulatorState,
    headers: &HeaderMap,
    user_id: &str,
    method: GmailMethod,
    handler: F,
) -> Response
where
    F: FnOnce(&GmailCaller, &Mailbox) -> Result<Response, ApiError>,
{
    let caller = match gmail_caller(state, headers, user_id) {
        Ok(caller) => caller,
        Err(error) => return error.into_response(),
    };
    charged(state, &caller.subject, method, |org| {
        let mailbox = mailbox(org, &caller.subject)?;
        handler(&caller, mailbox)
    })
    .await
}

// ---------------------------------------------------------------------------------------
// getProfile, labels

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProfileView<'a> {
    email_address: &'a str,
    messages_total: usize,
    threads_total: usize,
    history_id: Uint64,
}

async fn get_profile(
    State(state): State<Arc<EmulatorState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::GetProfile,
        |_, mailbox| {
            let threads: HashSet<&str> = mailbox
                .messages
                .values()
                .map(|m| m.thread_id.as_str())
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &ProfileView {
                    email_address: &mailbox.email,
                    messages_total: mailbox.messages.len(),
                    threads_total: threads.len(),
                    history_id: Uint64(mailbox.history_id),
                },
            ))
        },
    )
    .await
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelView<'a> {
    id: &'a str,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_list_visibility: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label_list_visibility: Option<&'static str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    counts: Option<LabelCounts>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelCounts {
    messages_total: usize,
    messages_unread: usize,
    threads_total: usize,
    threads_unread: usize,
}

fn label_view<'a>(label: &'a crate::model::Label, counts: Option<LabelCounts>) -> LabelView<'a> {
    let user = label.kind == LabelKind::User;
    LabelView {
        id: &label.id,
        name: &label.name,
        kind: if user { "user" } else { "system" },
        message_list_visibility: user.then_some("show"),
        label_list_visibility: user.then_some("labelShow"),
        counts,
    }
}

fn label_counts(mailbox: &Mailbox, label_id: &str) -> LabelCounts {
    let mut counts = LabelCounts {
        messages_total: 0,
        messages_unread: 0,
        threads_total: 0,
        threads_unread: 0,
    };
    let mut threads = HashSet::new();
    let mut unread_threads = HashSet::new();
    for message in mailbox
        .messages
        .values()
        .filter(|m| m.label_ids.contains(label_id))
    {
        counts.messages_total += 1;
        threads.insert(message.thread_id.as_str());
        if message.label_ids.contains("UNREAD") {
            counts.messages_unread += 1;
            unread_threads.insert(message.thread_id.as_str());
        }
    }
    counts.threads_total = threads.len();
    counts.threads_unread = unread_threads.len();
    counts
}

#[derive(Serialize)]
struct LabelListView<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<LabelView<'a>>,
}

async fn labels_list(
    State(state): State<Arc<EmulatorState>>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::LabelsList,
        |_, mailbox| {
            let labels = mailbox
                .labels
                .values()
                .map(|l| label_view(l, None))
                .collect();
            Ok(json_response(StatusCode::OK, &LabelListView { labels }))
        },
    )
    .await
}

async fn labels_get(
    State(state): State<Arc<EmulatorState>>,
    Path((user_id, label_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::LabelsGet,
        |_, mailbox| {
            let label = mailbox
                .labels
                .get(&label_id)
                .ok_or_else(ApiError::not_found)?;
            let counts = label_counts(mailbox, &label.id);
            Ok(json_response(
                StatusCode::OK,
                &label_view(label, Some(counts)),
            ))
        },
    )
    .await
}

// ---------------------------------------------------------------------------------------
// messages.list

/// Which messages a `messages.list` call asks for.
#[derive(Debug, Default)]
struct MessageFilter {
    /// A message must carry all of these.
    label_ids: Vec<String>,
    /// `internalDate` bounds in epoch ms: `after` inclusive, `before` exclusive.
    after_ms: Option<i64>,
    before_ms: Option<i64>,
    include_spam_trash: bool,
}

impl MessageFilter {
    fn matches(&self, message: &StoredMessage) -> bool {
        if !self.include_spam_trash
            && (message.label_ids.contains("SPAM") || message.label_ids.contains("TRASH"))
        {
            return false;
        }
        self.label_ids.iter().all(|l| message.label_ids.contains(l))
            && self.after_ms.is_none_or(|t| message.internal_date_ms >= t)
            && self.before_ms.is_none_or(|t| message.internal_date_ms < t)
    }

    /// Adds the constraints of a Gmail search query. Supported: `after:`, `before:`
    /// (`YYYY/MM/DD`, midnight Pacific Standard Time as Gmail reads it, or epoch
    /// seconds), `in:`, `label:`, `is:`, `category:`. Anything else is refused with 400
    /// rather than silently ignored.
    fn add_query(&mut self, q: &str, mailbox: &Mailbox) -> Result<(), ApiError> {
        for term in q.split_whitespace() {
            let unsupported = || {
                ApiError::invalid_argument(format!(
                    "Unsupported search term in the emulator: {term}"
                ))
            };
            let (operator, value) = term.split_once(':').ok_or_else(unsupported)?;
            match operator.to_ascii_lowercase().as_str() {
                "after" => {
                    let t = parse_query_date(value).ok_or_else(unsupported)?;
                    self.after_ms = Some(self.after_ms.map_or(t, |a| a.max(t)));
                }
                "before" => {
                    let t = parse_query_date(value).ok_or_else(unsupported)?;
                    self.before_ms = Some(self.before_ms.map_or(t, |b| b.min(t)));
                }
                "in" if value.eq_ignore_ascii_case("anywhere") => self.include_spam_trash = true,
                "in" | "is" | "label" => {
                    self.label_ids.push(resolve_label(mailbox, value));
                }
                "category" => {
                    self.label_ids
                        .push(format!("CATEGORY_{}", value.to_ascii_uppercase()));
                }
                _ => return Err(unsupported()),
            }
        }
        Ok(())
    }
}

/// A label named in a query, by id or name (case-insensitive, `-` for spaces). An
/// unknown name matches nothing, as in Gmail.
fn resolve_label(mailbox: &Mailbox, value: &str) -> String {
    let wanted = value.replace('-', " ");
    mailbox
        .labels
        .values()
        .find(|l| {
            l.id.eq_ignore_ascii_case(value)
                || l.name.eq_ignore_ascii_case(value)
                || l.name.replace('-', " ").eq_ignore_ascii_case(&wanted)
        })
        .map(|l| l.id.clone())
        .unwrap_or_else(|| format!("\u{0}unknown:{value}"))
}

/// `after:`/`before:` values: epoch seconds, or a date read as midnight PST (UTC-8).
fn parse_query_date(value: &str) -> Option<i64> {
    if let Ok(seconds) = value.parse::<i64>() {
        return seconds.checked_mul(1000);
    }
    let date = NaiveDate::parse_from_str(value, "%Y/%m/%d")
        .or_else(|_| NaiveDate::parse_from_str(value, "%Y-%m-%d"))
        .ok()?;
    let pst = FixedOffset::west_opt(8 * 3600)?;
    let midnight = pst
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .single()?;
    Some(midnight.timestamp_millis())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageRef<'a> {
    id: &'a str,
    thread_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageListView<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    messages: Vec<MessageRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
    result_size_estimate: usize,
}

/// Page tokens of `messages.list` name the last message returned, so a page stays
/// right when mail arrives between calls.
fn message_page_token(message: &StoredMessage) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", message.internal_date_ms, message.id))
}

fn parse_message_page_token(token: &str) -> Result<(i64, String), ApiError> {
    let invalid = || ApiError::invalid_argument("Invalid pageToken");
    let decoded = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (date, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok((date.parse().map_err(|_| invalid())?, id.to_string()))
}

fn list_messages(
    caller: &GmailCaller,
    mailbox: &Mailbox,
    params: &QueryParams<'_>,
) -> Result<Response, ApiError> {
    let mut filter = MessageFilter {
        label_ids: params.all("labelIds").map(str::to_string).collect(),
        include_spam_trash: params.flag("includeSpamTrash")?,
        ..MessageFilter::default()
    };
    if let Some(q) = params.get("q") {
        if caller.grant.access.gmail_metadata {
            return Err(ApiError::forbidden(
                "Metadata scope does not support 'q' parameter",
            ));
        }
        filter.add_query(q, mailbox)?;
    }
    if filter.label_ids.iter().any(|l| l == "SPAM" || l == "TRASH") {
        filter.include_spam_trash = true;
    }
    let max = params.max_results(DEFAULT_PAGE, MAX_PAGE)?;

    let mut matching: Vec<&StoredMessage> = mailbox
        .messages
        .values()
        .filter(|m| filter.matches(m))
        .collect();
    // Newest first, as Gmail lists.
    matching.sort_unstable_by(|a, b| (b.internal_date_ms, &b.id).cmp(&(a.internal_date_ms, &a.id)));
    let start = match params.get("pageToken").filter(|t| !t.is_empty()) {
        Some(token) => {
            let (date, id) = parse_message_page_token(token)?;
            matching.partition_point(|m| (m.internal_date_ms, m.id.as_str()) >= (date, id.as_str()))
        }
        None => 0,
    };
    let page = &matching[start..(start + max).min(matching.len())];
    let has_more = start + page.len() < matching.len();
    let view = MessageListView {
        messages: page
            .iter()
            .map(|m| MessageRef {
                id: &m.id,
                thread_id: &m.thread_id,
            })
            .collect(),
        next_page_token: has_more
            .then(|| page.last().map(|m| message_page_token(m)))
            .flatten(),
        result_size_estimate: matching.len(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn messages_list(
    State(state): State<Arc<EmulatorState>>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = QueryParams::parse(query.as_deref());
    gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::MessagesList,
        |caller, mailbox| list_messages(caller, mailbox, &params),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// messages.get

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MessageFormat {
    Minimal,
    Metadata,
    Full,
    Raw,
}

impl MessageFormat {
    fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("full") => Ok(MessageFormat::Full),
            Some("minimal") => Ok(MessageFormat::Minimal),
            Some("metadata") => Ok(MessageFormat::Metadata),
            Some("raw") => Ok(MessageFormat::Raw),
            Some(other) => Err(ApiError::invalid_argument(format!(
                "Invalid value at 'format' ({other})"
            ))),
        }
    }
}

#[derive(Serialize)]
struct HeaderView<'a> {
    name: &'a str,
    value: &'a str,
}

/// The `payload` of `format=metadata`: the top-level part's headers only.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetadataPayload<'a> {
    part_id: &'static str,
    mime_type: String,
    filename: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<HeaderView<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Metadata(MetadataPayload<'a>),
    Full(mime::Part),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageView<'a> {
    id: &'a str,
    thread_id: &'a str,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    label_ids: &'a BTreeSet<String>,
    snippet: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Payload<'a>>,
    size_estimate: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
    history_id: Uint64,
    internal_date: Int64,
}

fn metadata_payload<'a>(message: &'a StoredMessage, wanted: &[&str]) -> MetadataPayload<'a> {
    let headers = message
        .headers
        .iter()
        .filter(|(name, _)| {
            wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(name))
        })
        .map(|(name, value)| HeaderView { name, value })
        .collect();
    MetadataPayload {
        part_id: "",
        mime_type: mime::top_level_type(&message.headers),
        filename: "",
        headers,
    }
}

fn get_message(
    caller: &GmailCaller,
    mailbox: &Mailbox,
    message_id: &str,
    params: &QueryParams<'_>,
) -> Result<Response, ApiError> {
    let format = MessageFormat::parse(params.get("format"))?;
    if caller.grant.access.gmail_metadata {
        match format {
            MessageFormat::Full => {
                return Err(ApiError::forbidden(
                    "Metadata scope doesn't allow format FULL",
                ));
            }
            MessageFormat::Raw => {
                return Err(ApiError::forbidden(
                    "Metadata scope doesn't allow format RAW",
                ));
            }
            _ => {}
        }
    }
    let message = mailbox
        .messages
        .get(message_id)
        .ok_or_else(ApiError::not_found)?;
    let (payload, raw) = match format {
        MessageFormat::Minimal => (None, None),
        MessageFormat::Metadata => {
            let wanted: Vec<&str> = params.all("metadataHeaders").collect();
            (
                Some(Payload::Metadata(metadata_payload(message, &wanted))),
                None,
            )
        }
        MessageFormat::Full => (
            Some(Payload::Full(mime::parse_part(&message.raw, ""))),
            None,
        ),
        MessageFormat::Raw => (None, Some(URL_SAFE.encode(&message.raw))),
    };
    let view = MessageView {
        id: &message.id,
        thread_id: &message.thread_id,
        label_ids: &message.label_ids,
        snippet: &message.snippet,
        payload,
        size_estimate: message.raw.len(),
        raw,
        history_id: Uint64(message.history_id),
        internal_date: Int64(message.internal_date_ms),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn messages_get(
    State(state): State<Arc<EmulatorState>>,
    Path((user_id, message_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = QueryParams::parse(query.as_deref());
    gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::MessagesGet,
        |caller, mailbox| get_message(caller, mailbox, &message_id, &params),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// history.list

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HistoryType {
    MessageAdded,
    MessageDeleted,
    LabelAdded,
    LabelRemoved,
}

impl HistoryType {
    fn parse(value: &str) -> Result<Self, ApiError> {
        match value.to_ascii_lowercase().as_str() {
            "messageadded" => Ok(HistoryType::MessageAdded),
            "messagedeleted" => Ok(HistoryType::MessageDeleted),
            "labeladded" => Ok(HistoryType::LabelAdded),
            "labelremoved" => Ok(HistoryType::LabelRemoved),
            _ => Err(ApiError::invalid_argument(format!(
                "Invalid value for historyTypes: {value}"
            ))),
        }
    }

    fn of(change: &HistoryChange) -> Self {
        match change {
            HistoryChange::MessageAdded { .. } => HistoryType::MessageAdded,
            HistoryChange::MessageDeleted { .. } => HistoryType::MessageDeleted,
            HistoryChange::LabelsAdded { .. } => HistoryType::LabelAdded,
            HistoryChange::LabelsRemoved { .. } => HistoryType::LabelRemoved,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryMessage<'a> {
    id: &'a str,
    thread_id: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    label_ids: &'a [String],
}

#[derive(Serialize)]
struct MessageChange<'a> {
    message: HistoryMessage<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelChange<'a> {
    message: HistoryMessage<'a>,
    label_ids: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryView<'a> {
    id: Uint64,
    messages: [MessageRef<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    messages_added: Option<[MessageChange<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages_deleted: Option<[MessageChange<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels_added: Option<[LabelChange<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels_removed: Option<[LabelChange<'a>; 1]>,
}

fn history_view(record: &HistoryRecord) -> HistoryView<'_> {
    let (message_id, changed_labels) = match &record.change {
        HistoryChange::MessageAdded { message_id }
        | HistoryChange::MessageDeleted { message_id } => (message_id.as_str(), &[][..]),
        HistoryChange::LabelsAdded {
            message_id,
            label_ids,
        }
        | HistoryChange::LabelsRemoved {
            message_id,
            label_ids,
        } => (message_id.as_str(), label_ids.as_slice()),
    };
    let message = || HistoryMessage {
        id: message_id,
        thread_id: &record.thread_id,
        label_ids: &record.message_labels,
    };
    let mut view = HistoryView {
        id: Uint64(record.id),
        messages: [MessageRef {
            id: message_id,
            thread_id: &record.thread_id,
        }],
        messages_added: None,
        messages_deleted: None,
        labels_added: None,
        labels_removed: None,
    };
    match HistoryType::of(&record.change) {
        HistoryType::MessageAdded => {
            view.messages_added = Some([MessageChange { message: message() }])
        }
        HistoryType::MessageDeleted => {
            view.messages_deleted = Some([MessageChange { message: message() }])
        }
        HistoryType::LabelAdded => {
            view.labels_added = Some([LabelChange {
                message: message(),
                label_ids: changed_labels,
            }])
        }
        HistoryType::LabelRemoved => {
            view.labels_removed = Some([LabelChange {
                message: message(),
                label_ids: changed_labels,
            }])
        }
    }
    view
}

/// Whether a record concerns `label_id`: the message carries it after the change, or
/// the change added or removed it.
fn record_has_label(record: &HistoryRecord, label_id: &str) -> bool {
    let changed = match &record.change {
        HistoryChange::LabelsAdded { label_ids, .. }
        | HistoryChange::LabelsRemoved { label_ids, .. } => label_ids.iter().any(|l| l == label_id),
        _ => false,
    };
    changed || record.message_labels.iter().any(|l| l == label_id)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryListView<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<HistoryView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
    history_id: Uint64,
}

fn parse_history_id(value: Option<&str>) -> Result<u64, ApiError> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| ApiError::invalid_argument("Missing/invalid parameter: startHistoryId"))
}

fn list_history(mailbox: &Mailbox, params: &QueryParams<'_>) -> Result<Response, ApiError> {
    let start = parse_history_id(params.get("startHistoryId"))?;
    let types = params
        .all("historyTypes")
        .map(HistoryType::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let label = params.get("labelId");
    let max = params.max_results(DEFAULT_PAGE, MAX_PAGE)?;
    if start < mailbox.oldest_history_id {
        return Err(ApiError::not_found());
    }
    // The page token is the id of the last record returned.
    let after = match params.get("pageToken").filter(|t| !t.is_empty()) {
        Some(token) => {
            let decoded = URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| ApiError::invalid_argument("Invalid pageToken"))?;
            decoded.max(start)
        }
        None => start,
    };
    let first = mailbox.history.partition_point(|r| r.id <= after);
    let mut selected = mailbox.history[first..].iter().filter(|r| {
        (types.is_empty() || types.contains(&HistoryType::of(&r.change)))
            && label.is_none_or(|l| record_has_label(r, l))
    });
    let page: Vec<&HistoryRecord> = selected.by_ref().take(max).collect();
    let has_more = page.len() == max && selected.next().is_some();
    let view = HistoryListView {
        next_page_token: has_more
            .then(|| {
                page.last()
                    .map(|r| URL_SAFE_NO_PAD.encode(r.id.to_string()))
            })
            .flatten(),
        history: page.into_iter().map(history_view).collect(),
        history_id: Uint64(mailbox.history_id),
    };
    Ok(json_response(StatusCode::OK, &view))
}

async fn history_list(
    State(state): State<Arc<EmulatorState>>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = QueryParams::parse(query.as_deref());
    gmail_call(
        &state,
        &headers,
        &user_id,
        GmailMethod::HistoryList,
        |_, mailbox| list_history(mailbox, &params),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_dates_are_midnight_pacific_standard_time() {
        // 2024-01-02T00:00:00-08:00
        assert_eq!(parse_query_date("2024/01/02"), Some(1_704_182_400_000));
        assert_eq!(parse_query_date("1704182400"), Some(1_704_182_400_000));
        assert_eq!(parse_query_date("yesterday"), None);
    }

    #[test]
    fn formats_parse_case_insensitively() {
        assert_eq!(
            MessageFormat::parse(Some("METADATA")).unwrap(),
            MessageFormat::Metadata
        );
        assert_eq!(MessageFormat::parse(None).unwrap(), MessageFormat::Full);
        assert!(MessageFormat::parse(Some("bogus")).is_err());
    }
}
