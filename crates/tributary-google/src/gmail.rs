//! The Gmail API v1, read-only, for one impersonated user: profile, labels, message
//! lists, message metadata (one by one or batched), and history.

use crate::api::{Api, decode_answer, join, required};
use crate::batch::{self, BatchPart, MAX_BATCH_PARTS, PartAnswer};
use crate::error::{ApiCall, unreadable_answer};
use crate::scopes;
use crate::token::AccessToken;
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Deserializer};
use std::sync::Arc;
use tributary_core::{HeaderField, MessageRecord, ProviderDetail, ProviderError};

const GMAIL_SCOPES: &[&str] = &[scopes::GMAIL_READONLY];

/// Gmail for one user, as that user (domain-wide delegation).
#[derive(Debug, Clone)]
pub struct GmailClient {
    api: Arc<Api>,
    user: String,
}

/// `users.getProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub email_address: String,
    #[serde(default)]
    pub messages_total: u64,
    #[serde(default)]
    pub threads_total: u64,
    #[serde(deserialize_with = "int64")]
    pub history_id: u64,
}

/// A mailbox's watch, as `users.watch` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Watch {
    /// The mailbox's history id when the watch started.
    #[serde(deserialize_with = "int64")]
    pub history_id: u64,
    /// When the watch lapses unless renewed, Unix milliseconds (7 days on).
    #[serde(rename = "expiration", deserialize_with = "int64_ms")]
    pub expiration_ms: i64,
}

/// Whether Gmail or the user made the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelKind {
    System,
    User,
}

/// A label as `labels.list` gives it; `labels.get` adds the counts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Option<LabelKind>,
    pub messages_total: Option<u64>,
    pub messages_unread: Option<u64>,
    pub threads_total: Option<u64>,
    pub threads_unread: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct LabelsAnswer {
    #[serde(default)]
    labels: Vec<Label>,
}

/// What `messages.list` should return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageListQuery {
    /// A message must carry every one of these.
    pub label_ids: Vec<String>,
    /// Gmail search syntax, e.g. `after:1709251200` (epoch seconds) to bound a backfill.
    pub query: Option<String>,
    pub page_token: Option<String>,
    /// 1–500; Gmail's default is 100.
    pub max_results: Option<u32>,
    pub include_spam_trash: bool,
}

/// A message id and its thread.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub id: String,
    pub thread_id: String,
}

/// One page of `messages.list`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub result_size_estimate: u64,
}

/// A message as `messages.get?format=metadata` gives it: identifiers, labels, dates and
/// the requested headers, undecoded and in message order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    pub snippet: Option<String>,
    pub history_id: Option<u64>,
    /// When Gmail accepted the message, Unix milliseconds.
    pub internal_date_ms: Option<i64>,
    pub size_estimate: Option<u64>,
    pub headers: Vec<(String, String)>,
}

impl MessageMeta {
    /// The provider-neutral record of this sighting in `mailbox` (the user's address).
    pub fn to_record(&self, mailbox: &str) -> MessageRecord {
        MessageRecord {
            mailbox: Some(mailbox.to_string()),
            provider_message_id: Some(self.id.clone()),
            provider_thread_id: Some(self.thread_id.clone()),
            labels: self.label_ids.clone(),
            internal_date_ms: self.internal_date_ms,
            snippet: self.snippet.clone(),
            ..MessageRecord::from_header_pairs(
                self.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
            )
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageJson {
    id: String,
    #[serde(default)]
    thread_id: String,
    #[serde(default)]
    label_ids: Vec<String>,
    snippet: Option<String>,
    #[serde(default, deserialize_with = "optional_int64")]
    history_id: Option<u64>,
    #[serde(default, deserialize_with = "optional_int64")]
    internal_date: Option<u64>,
    size_estimate: Option<u64>,
    payload: Option<PayloadJson>,
}

#[derive(Debug, Deserialize)]
struct PayloadJson {
    #[serde(default)]
    headers: Vec<HeaderJson>,
}

#[derive(Debug, Deserialize)]
struct HeaderJson {
    name: String,
    #[serde(default)]
    value: String,
}

impl From<MessageJson> for MessageMeta {
    fn from(message: MessageJson) -> Self {
        MessageMeta {
            id: message.id,
            thread_id: message.thread_id,
            label_ids: message.label_ids,
            snippet: message.snippet,
            history_id: message.history_id,
            internal_date_ms: message.internal_date.and_then(|ms| i64::try_from(ms).ok()),
            size_estimate: message.size_estimate,
            headers: message
                .payload
                .map(|p| p.headers.into_iter().map(|h| (h.name, h.value)).collect())
                .unwrap_or_default(),
        }
    }
}

/// The kinds of change history records carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryChangeKind {
    MessageAdded,
    MessageDeleted,
    LabelsAdded,
    LabelsRemoved,
}

impl HistoryChangeKind {
    /// The `historyTypes` parameter value.
    fn api_name(self) -> &'static str {
        match self {
            HistoryChangeKind::MessageAdded => "messageAdded",
            HistoryChangeKind::MessageDeleted => "messageDeleted",
            HistoryChangeKind::LabelsAdded => "labelAdded",
            HistoryChangeKind::LabelsRemoved => "labelRemoved",
        }
    }
}

/// What `history.list` should return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Changes after this history id (a profile's, a message's or a page's `historyId`).
    pub start_history_id: u64,
    /// Only changes touching this label.
    pub label_id: Option<String>,
    /// Only these kinds of change; empty means all.
    pub kinds: Vec<HistoryChangeKind>,
    pub page_token: Option<String>,
    /// Gmail's default is 100, its maximum 500.
    pub max_results: Option<u32>,
}

/// A message as a history record shows it: its labels right after the change.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryMessage {
    pub id: String,
    #[serde(default)]
    pub thread_id: String,
    #[serde(default)]
    pub label_ids: Vec<String>,
}

/// One change to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryChange {
    pub kind: HistoryChangeKind,
    pub message: HistoryMessage,
    /// The labels added or removed (empty for added and deleted messages).
    pub changed_label_ids: Vec<String>,
}

/// One history record: its id and the changes it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRecord {
    pub id: u64,
    pub changes: Vec<HistoryChange>,
}

/// One page of `history.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub records: Vec<HistoryRecord>,
    /// The mailbox's current history id: the next start once every page is read.
    pub history_id: u64,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryAnswer {
    #[serde(default)]
    history: Vec<HistoryJson>,
    #[serde(deserialize_with = "int64")]
    history_id: u64,
    next_page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryJson {
    #[serde(deserialize_with = "int64")]
    id: u64,
    #[serde(default)]
    messages_added: Vec<MessageChangeJson>,
    #[serde(default)]
    messages_deleted: Vec<MessageChangeJson>,
    #[serde(default)]
    labels_added: Vec<MessageChangeJson>,
    #[serde(default)]
    labels_removed: Vec<MessageChangeJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageChangeJson {
    message: HistoryMessage,
    #[serde(default)]
    label_ids: Vec<String>,
}

impl From<HistoryJson> for HistoryRecord {
    fn from(record: HistoryJson) -> Self {
        let groups = [
            (HistoryChangeKind::MessageAdded, record.messages_added),
            (HistoryChangeKind::MessageDeleted, record.messages_deleted),
            (HistoryChangeKind::LabelsAdded, record.labels_added),
            (HistoryChangeKind::LabelsRemoved, record.labels_removed),
        ];
        let changes = groups
            .into_iter()
            .flat_map(|(kind, changes)| {
                changes.into_iter().map(move |change| HistoryChange {
                    kind,
                    message: change.message,
                    changed_label_ids: change.label_ids,
                })
            })
            .collect();
        HistoryRecord {
            id: record.id,
            changes,
        }
    }
}

/// Gmail writes int64 values as JSON strings; accept numbers too.
fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int64 {
        Text(String),
        Number(u64),
    }
    match Int64::deserialize(deserializer)? {
        Int64::Number(n) => Ok(n),
        Int64::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn int64_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = int64(deserializer)?;
    i64::try_from(value).map_err(serde::de::Error::custom)
}

fn optional_int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    int64(deserializer).map(Some)
}

impl GmailClient {
    pub(crate) fn new(api: Arc<Api>, user: &str) -> Self {
        GmailClient {
            api,
            user: user.to_string(),
        }
    }

    /// The impersonated user's address.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// `base/users/me/…`: the token says who "me" is.
    fn url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["users", "me"];
        all.extend_from_slice(segments);
        join(&self.api.endpoints.gmail_base, &all)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        call: ApiCall,
        what: &str,
    ) -> Result<Option<T>, ProviderError> {
        self.api
            .get_json(&self.user, GMAIL_SCOPES, url, call, what)
            .await
    }

    /// `users.getProfile`: address, totals and the current history id.
    pub async fn get_profile(&self) -> Result<Profile, ProviderError> {
        let url = self.url(&["profile"]);
        required(
            self.get(url, ApiCall::Other, "getProfile").await?,
            "getProfile",
        )
    }

    /// `labels.list`: every label, without counts.
    pub async fn list_labels(&self) -> Result<Vec<Label>, ProviderError> {
        let url = self.url(&["labels"]);
        let answer: LabelsAnswer = required(
            self.get(url, ApiCall::Other, "labels.list").await?,
            "labels.list",
        )?;
        Ok(answer.labels)
    }

    /// `labels.get`: one label with its message and thread counts; `None` if the label
    /// does not exist (any more).
    pub async fn get_label(&self, label_id: &str) -> Result<Option<Label>, ProviderError> {
        let url = self.url(&["labels", label_id]);
        self.get(url, ApiCall::EntityGet, "labels.get").await
    }

    /// `messages.list`: one page of message ids, newest first.
    pub async fn list_messages(
        &self,
        query: &MessageListQuery,
    ) -> Result<MessagePage, ProviderError> {
        let mut url = self.url(&["messages"]);
        {
            let mut pairs = url.query_pairs_mut();
            for label in &query.label_ids {
                pairs.append_pair("labelIds", label);
            }
            if let Some(q) = &query.query {
                pairs.append_pair("q", q);
            }
            if let Some(token) = &query.page_token {
                pairs.append_pair("pageToken", token);
            }
            if let Some(max) = query.max_results {
                pairs.append_pair("maxResults", &max.to_string());
            }
            if query.include_spam_trash {
                pairs.append_pair("includeSpamTrash", "true");
            }
        }
        let mut page: MessagePage = required(
            self.get(url, ApiCall::Other, "messages.list").await?,
            "messages.list",
        )?;
        page.next_page_token = page.next_page_token.filter(|t| !t.is_empty());
        Ok(page)
    }

    fn metadata_url(&self, id: &str, headers: &[HeaderField]) -> Url {
        let mut url = self.url(&["messages", id]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("format", "metadata");
            for header in headers {
                pairs.append_pair("metadataHeaders", header.name());
            }
        }
        url
    }

    /// `messages.get?format=metadata` with the given headers (capture reads
    /// [`HeaderField::ALL`]). `None` if the message no longer exists: a message deleted
    /// between listing and fetching is not an error for a sync.
    pub async fn get_message_metadata(
        &self,
        id: &str,
        headers: &[HeaderField],
    ) -> Result<Option<MessageMeta>, ProviderError> {
        let url = self.metadata_url(id, headers);
        let message: Option<MessageJson> =
            self.get(url, ApiCall::EntityGet, "messages.get").await?;
        Ok(message.map(Into::into))
    }

    /// `history.list`: one page of changes after `start_history_id`. A start id Gmail no
    /// longer keeps history for is [`ProviderError::CursorGone`]: resync in full.
    pub async fn list_history(&self, query: &HistoryQuery) -> Result<HistoryPage, ProviderError> {
        let mut url = self.url(&["history"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("startHistoryId", &query.start_history_id.to_string());
            if let Some(label) = &query.label_id {
                pairs.append_pair("labelId", label);
            }
            for kind in &query.kinds {
                pairs.append_pair("historyTypes", kind.api_name());
            }
            if let Some(token) = &query.page_token {
                pairs.append_pair("pageToken", token);
            }
            if let Some(max) = query.max_results {
                pairs.append_pair("maxResults", &max.to_string());
            }
        }
        let answer: HistoryAnswer = required(
            self.get(url, ApiCall::HistoryList, "history.list").await?,
            "history.list",
        )?;
        Ok(HistoryPage {
            records: answer.history.into_iter().map(Into::into).collect(),
            history_id: answer.history_id,
            next_page_token: answer.next_page_token.filter(|t| !t.is_empty()),
        })
    }

    /// `users.watch` (100 quota units): Gmail publishes the mailbox's changes to
    /// `topic_name` (`projects/P/topics/T`, in the key's own project) until the answer's
    /// expiration; only changes touching `label_ids` when any are given. Watching again
    /// replaces the mailbox's watch.
    pub async fn watch(
        &self,
        topic_name: &str,
        label_ids: &[String],
    ) -> Result<Watch, ProviderError> {
        let mut body = serde_json::json!({ "topicName": topic_name });
        if !label_ids.is_empty() {
            body["labelIds"] = serde_json::json!(label_ids);
            body["labelFilterBehavior"] = serde_json::json!("include");
        }
        let url = self.url(&["watch"]);
        let answer = self
            .api
            .send(&self.user, GMAIL_SCOPES, |http| {
                http.post(url.clone()).json(&body)
            })
            .await?;
        required(
            decode_answer(
                answer.status,
                &answer.headers,
                &answer.body,
                ApiCall::Other,
                "users.watch",
            )?,
            "users.watch",
        )
    }

    /// `users.stop` (50 quota units): no more notifications for the mailbox. A mailbox
    /// Gmail no longer has (404) has no watch left: stopped.
    pub async fn stop(&self) -> Result<(), ProviderError> {
        let url = self.url(&["stop"]);
        let answer = self
            .api
            .send(&self.user, GMAIL_SCOPES, |http| http.post(url.clone()))
            .await?;
        if answer.status.is_success() {
            return Ok(());
        }
        decode_answer::<serde_json::Value>(
            answer.status,
            &answer.headers,
            &answer.body,
            ApiCall::EntityGet,
            "users.stop",
        )
        .map(drop)
    }

    /// The metadata of many messages through Gmail's batch endpoint, up to
    /// [`MAX_BATCH_PARTS`] per HTTP request (more ids are sent as several batches, one
    /// after another). The answer has one entry per id, in order: the message, `None` if
    /// it no longer exists, or that call's own error. Every call is charged its own quota
    /// units. A failure of a whole batch (refused credentials, the batch endpoint down)
    /// is the outer error.
    pub async fn batch_get_metadata(
        &self,
        ids: &[String],
        headers: &[HeaderField],
    ) -> Result<Vec<Result<Option<MessageMeta>, ProviderError>>, ProviderError> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH_PARTS) {
            results.extend(self.batch_chunk(chunk, headers).await?);
        }
        Ok(results)
    }

    async fn batch_chunk(
        &self,
        ids: &[String],
        headers: &[HeaderField],
    ) -> Result<Vec<Result<Option<MessageMeta>, ProviderError>>, ProviderError> {
        let (mut answers, token) = self.send_batch(ids, headers).await?;
        // Parts refused for their token get one more try with a new one, as
        // google-api-python-client does; a second refusal is final.
        let refused: Vec<usize> = (0..ids.len())
            .filter(|&i| matches!(&answers[i], Some(a) if a.status == StatusCode::UNAUTHORIZED))
            .collect();
        if !refused.is_empty() {
            self.api
                .tokens
                .invalidate(&self.user, GMAIL_SCOPES, &token)
                .await;
            let retry_ids: Vec<String> = refused.iter().map(|&i| ids[i].clone()).collect();
            let (retried, _) = self.send_batch(&retry_ids, headers).await?;
            for (index, answer) in refused.into_iter().zip(retried) {
                answers[index] = answer;
            }
        }
        Ok(answers
            .into_iter()
            .zip(ids)
            .map(|(answer, id)| match answer {
                Some(answer) => decode_answer::<MessageJson>(
                    answer.status,
                    &answer.headers,
                    &answer.body,
                    ApiCall::EntityGet,
                    "messages.get",
                )
                .map(|message| message.map(Into::into)),
                None => Err(ProviderError::other(ProviderDetail::new(format!(
                    "the batch answer has no part for message {id}"
                )))),
            })
            .collect())
    }

    /// Sends one batch; the answers are in the order of `ids` (`None` where the batch
    /// answer had no part for that id), with the token used. A 401 on the whole batch is
    /// retried once with a new token by the request path.
    async fn send_batch(
        &self,
        ids: &[String],
        headers: &[HeaderField],
    ) -> Result<(Vec<Option<PartAnswer>>, AccessToken), ProviderError> {
        let batch_id = batch::new_boundary();
        let parts: Vec<BatchPart> = ids
            .iter()
            .enumerate()
            .map(|(index, id)| {
                let url = self.metadata_url(id, headers);
                let path_and_query = match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_string(),
                };
                BatchPart {
                    content_id: format!("{batch_id}+{index}"),
                    path_and_query,
                }
            })
            .collect();
        let boundary = batch::new_boundary();
        let body = batch::request_body(&boundary, &parts);
        let batch_url = self.api.endpoints.batch_url.clone();
        let content_type = format!("multipart/mixed; boundary={boundary}");
        let answer = self
            .api
            .send(&self.user, GMAIL_SCOPES, |http| {
                http.post(batch_url.clone())
                    .header(CONTENT_TYPE, content_type.as_str())
                    .body(body.clone())
            })
            .await?;
        if !answer.status.is_success() {
            // Not a batch answer but an ordinary error for the whole request.
            return Err(decode_answer::<serde_json::Value>(
                answer.status,
                &answer.headers,
                &answer.body,
                ApiCall::Other,
                "batch",
            )
            .err()
            .unwrap_or_else(|| unreadable_answer("batch", "no parts")));
        }
        let content_type = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let part_answers = batch::parse_response(content_type, &answer.body)
            .map_err(|e| unreadable_answer("batch", &e.to_string()))?;
        Ok((
            match_parts(ids.len(), &batch_id, part_answers),
            answer.token,
        ))
    }
}

/// Puts part answers in request order by their `Content-ID` (`<batch>+<index>`); answers
/// without a usable one fill the remaining places in the order they came.
fn match_parts(count: usize, batch_id: &str, answers: Vec<PartAnswer>) -> Vec<Option<PartAnswer>> {
    let mut slots: Vec<Option<PartAnswer>> = (0..count).map(|_| None).collect();
    let mut unmatched = Vec::new();
    let prefix = format!("{batch_id}+");
    for answer in answers {
        let index = answer
            .content_id
            .as_deref()
            .and_then(|id| id.strip_prefix(&prefix))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&i| i < count && slots[i].is_none());
        match index {
            Some(i) => slots[i] = Some(answer),
            None => unmatched.push(answer),
        }
    }
    let mut unmatched = unmatched.into_iter();
    for slot in slots.iter_mut().filter(|s| s.is_none()) {
        *slot = unmatched.next();
    }
    slots
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn metadata_answers_become_records() {
        let json: MessageJson = serde_json::from_str(
            r#"{"id": "18e", "threadId": "18d", "labelIds": ["INBOX", "UNREAD"],
                "snippet": "hi", "historyId": "12345", "internalDate": "1709287200000",
                "sizeEstimate": 1024,
                "payload": {"partId": "", "headers": [
                    {"name": "From", "value": "Pat <pat@partner.example>"},
                    {"name": "To", "value": "bob@acme.example"},
                    {"name": "X-Other", "value": "ignored"}]}}"#,
        )
        .unwrap();
        let meta = MessageMeta::from(json);
        assert_eq!(meta.history_id, Some(12345));
        assert_eq!(meta.internal_date_ms, Some(1_709_287_200_000));
        let record = meta.to_record("bob@acme.example");
        assert_eq!(record.mailbox.as_deref(), Some("bob@acme.example"));
        assert_eq!(record.provider_message_id.as_deref(), Some("18e"));
        assert_eq!(record.provider_thread_id.as_deref(), Some("18d"));
        assert_eq!(record.labels, ["INBOX", "UNREAD"]);
        assert_eq!(record.internal_date_ms, Some(1_709_287_200_000));
        let fields: Vec<_> = record.headers.iter().map(|h| h.field).collect();
        assert_eq!(fields, [HeaderField::From, HeaderField::To]);
        assert_eq!(
            record.header_values(HeaderField::From).next().unwrap(),
            b"Pat <pat@partner.example>\n"
        );
    }

    #[test]
    fn history_records_flatten_into_changes() {
        let answer: HistoryAnswer = serde_json::from_str(
            r#"{"history": [
                {"id": "101", "messages": [{"id": "a", "threadId": "t"}],
                 "messagesAdded": [{"message": {"id": "a", "threadId": "t", "labelIds": ["INBOX"]}}]},
                {"id": "105", "labelsRemoved": [{"message": {"id": "a", "threadId": "t", "labelIds": []},
                                                 "labelIds": ["INBOX"]}],
                 "messagesDeleted": [{"message": {"id": "b", "threadId": "u"}}]}],
               "historyId": "110", "nextPageToken": "n"}"#,
        )
        .unwrap();
        let records: Vec<HistoryRecord> = answer.history.into_iter().map(Into::into).collect();
        assert_eq!(answer.history_id, 110);
        assert_eq!(records[0].id, 101);
        assert_eq!(records[0].changes[0].kind, HistoryChangeKind::MessageAdded);
        assert_eq!(records[0].changes[0].message.label_ids, ["INBOX"]);
        let kinds: Vec<_> = records[1].changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                HistoryChangeKind::MessageDeleted,
                HistoryChangeKind::LabelsRemoved
            ]
        );
        assert_eq!(records[1].changes[1].changed_label_ids, ["INBOX"]);
    }

    #[test]
    fn watch_answers_parse_strings_and_numbers() {
        let watch: Watch =
            serde_json::from_str(r#"{"historyId":"5012","expiration":"1765000000000"}"#).unwrap();
        assert_eq!(watch.history_id, 5012);
        assert_eq!(watch.expiration_ms, 1_765_000_000_000);
        let numbers: Watch =
            serde_json::from_str(r#"{"historyId":7,"expiration":1765000000000}"#).unwrap();
        assert_eq!(
            numbers,
            Watch {
                history_id: 7,
                ..watch
            }
        );
    }

    #[test]
    fn empty_answers_parse_as_gmail_writes_them() {
        let page: MessagePage = serde_json::from_str(r#"{"resultSizeEstimate": 0}"#).unwrap();
        assert!(page.messages.is_empty() && page.next_page_token.is_none());
        let history: HistoryAnswer = serde_json::from_str(r#"{"historyId": "7"}"#).unwrap();
        assert!(history.history.is_empty());
        assert_eq!(history.history_id, 7);
    }

    fn part(content_id: Option<&str>, status: u16) -> PartAnswer {
        PartAnswer {
            content_id: content_id.map(str::to_string),
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }

    #[test]
    fn parts_are_matched_by_content_id_then_order() {
        let answers = vec![
            part(Some("B+2"), 404),
            part(None, 500),
            part(Some("B+0"), 200),
            part(Some("other+1"), 401),
        ];
        let slots = match_parts(4, "B", answers);
        let statuses: Vec<_> = slots
            .iter()
            .map(|s| s.as_ref().map(|a| a.status.as_u16()))
            .collect();
        assert_eq!(statuses, [Some(200), Some(500), Some(404), Some(401)]);
        let short = match_parts(2, "B", vec![part(Some("B+1"), 200)]);
        assert!(short[0].is_none());
    }
}
