//! One mailbox through Graph (`Mail.ReadBasic.All` or `Mail.Read`): its folders, per
//! folder message delta, and the Internet headers the automated-mail rules read.
//!
//! Every request asks for immutable ids (`Prefer: IdType="ImmutableId"`), so a message
//! keeps its id when it moves between folders, and the same id comes back from every
//! folder's delta.

use crate::api::{Api, decode_answer, required};
use crate::batch::{self, BatchRequest, BatchResponse, MAX_BATCH_REQUESTS};
use crate::error::GraphCall;
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use tributary_core::message::RawHeader;
use tributary_core::{HeaderField, MessageRecord, ProviderDetail, ProviderError};

/// Graph's request preference for ids that survive moves.
const IMMUTABLE_IDS: &str = "IdType=\"ImmutableId\"";
/// What delta selects: what capture reads and nothing else (no body, no preview, so
/// `Mail.ReadBasic.All` is enough).
const MESSAGE_SELECT: &str = "id,internetMessageId,from,sender,toRecipients,ccRecipients,\
bccRecipients,replyTo,receivedDateTime,sentDateTime,subject,conversationId,parentFolderId,isDraft";
const HEADERS_SELECT: &str = "internetMessageHeaders";
/// Folders per page (Graph's maximum is 1000).
const FOLDER_PAGE: &str = "250";
/// Folder trees deeper than this are not walked (Outlook allows about 300 levels, which
/// nobody files mail in; a cycle in a broken answer must not loop forever either).
const MAX_FOLDER_DEPTH: usize = 16;
/// Concurrent requests per mailbox Outlook allows an app; batch lanes never exceed it.
pub const MAILBOX_CONCURRENCY: usize = 4;

/// Well-known folder names capture policies refer to, in the order they are resolved.
pub const WELL_KNOWN_FOLDERS: [&str; 7] = [
    "inbox",
    "sentitems",
    "drafts",
    "deleteditems",
    "junkemail",
    "archive",
    "outbox",
];

/// Graph for one mailbox.
#[derive(Debug, Clone)]
pub struct MailClient {
    api: Arc<Api>,
    user: String,
}

/// A mail folder with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MailFolder {
    pub id: String,
    #[serde(default)]
    pub display_name: String,
    pub parent_folder_id: Option<String>,
    #[serde(default)]
    pub child_folder_count: u64,
    #[serde(default)]
    pub total_item_count: u64,
    #[serde(default)]
    pub unread_item_count: u64,
    #[serde(default)]
    pub is_hidden: bool,
    /// `inbox`, `sentitems`, …: set by [`MailClient::list_folders`] for well-known ones.
    #[serde(skip)]
    pub well_known_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct FoldersAnswer {
    #[serde(default)]
    value: Vec<MailFolder>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// A name and address as Graph gives them (`{"emailAddress":{"name","address"}}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct EmailAddress {
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: EmailAddress,
}

/// One Internet header, its value as Graph gives it (undecoded).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InternetHeader {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageJson {
    id: String,
    internet_message_id: Option<String>,
    from: Option<Recipient>,
    sender: Option<Recipient>,
    #[serde(default)]
    to_recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    cc_recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    bcc_recipients: Option<Vec<Recipient>>,
    #[serde(default)]
    reply_to: Option<Vec<Recipient>>,
    received_date_time: Option<DateTime<Utc>>,
    sent_date_time: Option<DateTime<Utc>>,
    subject: Option<String>,
    conversation_id: Option<String>,
    parent_folder_id: Option<String>,
    #[serde(default)]
    is_draft: Option<bool>,
    #[serde(default)]
    internet_message_headers: Option<Vec<InternetHeader>>,
}

/// A message as delta gives it: what capture reads, decoded by Graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphMessage {
    /// The immutable id.
    pub id: String,
    /// The RFC 5322 Message-ID, angle brackets included; `None` when the message has none.
    pub internet_message_id: Option<String>,
    pub from: Option<EmailAddress>,
    pub sender: Option<EmailAddress>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    /// Only on the sender's own copy.
    pub bcc: Vec<EmailAddress>,
    pub reply_to: Vec<EmailAddress>,
    pub received: Option<DateTime<Utc>>,
    pub sent: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    pub conversation_id: Option<String>,
    pub parent_folder_id: Option<String>,
    pub is_draft: bool,
    /// `None` when Graph gave no headers: a later delta round may omit them, and copies
    /// in Sent Items have none (fetch them with [`MailClient::batch_get_headers`]).
    pub internet_message_headers: Option<Vec<InternetHeader>>,
}

impl From<MessageJson> for GraphMessage {
    fn from(json: MessageJson) -> Self {
        let list = |r: Option<Vec<Recipient>>| {
            r.unwrap_or_default()
                .into_iter()
                .map(|r| r.email_address)
                .collect()
        };
        GraphMessage {
            id: json.id,
            internet_message_id: json.internet_message_id.filter(|m| !m.trim().is_empty()),
            from: json.from.map(|r| r.email_address),
            sender: json.sender.map(|r| r.email_address),
            to: list(json.to_recipients),
            cc: list(json.cc_recipients),
            bcc: list(json.bcc_recipients),
            reply_to: list(json.reply_to),
            received: json.received_date_time,
            sent: json.sent_date_time,
            subject: json.subject,
            conversation_id: json.conversation_id,
            parent_folder_id: json.parent_folder_id,
            is_draft: json.is_draft.unwrap_or(false),
            internet_message_headers: json.internet_message_headers.filter(|h| !h.is_empty()),
        }
    }
}

/// Headers Graph has no property for, taken from `internetMessageHeaders`: threading and
/// the automated-mail rules (List-Id, List-Unsubscribe, Precedence, Auto-Submitted).
const HEADER_ONLY_FIELDS: [HeaderField; 6] = [
    HeaderField::InReplyTo,
    HeaderField::References,
    HeaderField::ListId,
    HeaderField::ListUnsubscribe,
    HeaderField::Precedence,
    HeaderField::AutoSubmitted,
];

impl GraphMessage {
    /// Whether the headers the automated-mail rules read came with the message.
    pub fn has_internet_headers(&self) -> bool {
        self.internet_message_headers.is_some()
    }

    /// The provider-neutral record of this sighting in `mailbox` (the user's address).
    /// Addresses, date, subject and Message-ID come from Graph's properties (the only
    /// source for Bcc, and present for Sent Items copies, which have no Internet
    /// headers); the other captured headers from `internetMessageHeaders`.
    pub fn to_record(&self, mailbox: &str) -> MessageRecord {
        let mut headers = Vec::new();
        let mut single = |field, value: Option<String>| {
            if let Some(value) = value {
                headers.push(RawHeader::new(field, value));
            }
        };
        single(
            HeaderField::From,
            self.from.as_ref().and_then(format_mailbox),
        );
        single(
            HeaderField::Sender,
            self.sender.as_ref().and_then(format_mailbox),
        );
        single(HeaderField::ReplyTo, format_list(&self.reply_to));
        single(HeaderField::To, format_list(&self.to));
        single(HeaderField::Cc, format_list(&self.cc));
        single(HeaderField::Bcc, format_list(&self.bcc));
        single(
            HeaderField::Date,
            self.sent.or(self.received).map(|d| d.to_rfc2822()),
        );
        single(HeaderField::Subject, self.subject.clone());
        single(HeaderField::MessageId, self.internet_message_id.clone());
        for header in self.internet_message_headers.iter().flatten() {
            if let Some(field) = HeaderField::from_name(&header.name)
                && HEADER_ONLY_FIELDS.contains(&field)
            {
                headers.push(RawHeader::new(field, &header.value));
            }
        }
        MessageRecord {
            mailbox: Some(mailbox.to_string()),
            provider_message_id: Some(self.id.clone()),
            provider_thread_id: self.conversation_id.clone(),
            labels: self.parent_folder_id.iter().cloned().collect(),
            internal_date_ms: self.received.map(|d| d.timestamp_millis()),
            snippet: None,
            headers,
        }
    }
}

/// `"Name" <address>`, or the bare address when there is no other name. The name is
/// quoted so commas and other specials in it cannot split the address list.
fn format_mailbox(address: &EmailAddress) -> Option<String> {
    let addr = address
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())?;
    let name = address
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(addr));
    Some(match name {
        Some(name) => {
            let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\" <{addr}>")
        }
        None => addr.to_string(),
    })
}

fn format_list(addresses: &[EmailAddress]) -> Option<String> {
    let list: Vec<String> = addresses.iter().filter_map(format_mailbox).collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// How a message delta round starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaOptions {
    /// `Prefer: odata.maxpagesize` (Graph's default is 10).
    pub page_size: Option<u32>,
    /// Only messages received at or after this instant (a backfill window), kept by the
    /// links for every later round.
    pub received_since: Option<DateTime<Utc>>,
    /// Select `internetMessageHeaders` too. Graph gives them in a first round; messages
    /// that arrive without them need [`MailClient::batch_get_headers`].
    pub with_headers: bool,
}

impl Default for DeltaOptions {
    fn default() -> Self {
        DeltaOptions {
            page_size: Some(100),
            received_since: None,
            with_headers: true,
        }
    }
}

/// Where a delta round stands after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaLink {
    /// More pages in this round: follow it now.
    Next(String),
    /// The round is complete: store it, and follow it later for what changed since.
    Delta(String),
}

impl DeltaLink {
    pub fn as_str(&self) -> &str {
        match self {
            DeltaLink::Next(link) | DeltaLink::Delta(link) => link,
        }
    }
}

/// One page of a message delta round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaPage {
    /// Messages created in, moved into (or changed in) the folder. Replays are normal.
    pub messages: Vec<GraphMessage>,
    /// Ids of messages deleted or moved out of the folder (`@removed`).
    pub removed: Vec<String>,
    pub link: DeltaLink,
}

#[derive(Debug, Deserialize)]
struct DeltaAnswer {
    #[serde(default)]
    value: Vec<serde_json::Value>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HeadersJson {
    #[serde(default, rename = "internetMessageHeaders")]
    headers: Option<Vec<InternetHeader>>,
}

/// The headers of one message: `Ok(None)` when the message is gone, `Ok(Some(vec![]))`
/// when it has none (a Sent Items copy).
pub type HeadersResult = Result<Option<Vec<InternetHeader>>, ProviderError>;

impl MailClient {
    pub(crate) fn new(api: Arc<Api>, user: &str) -> Self {
        MailClient {
            api,
            user: user.to_string(),
        }
    }

    /// The mailbox's user (id or principal name).
    pub fn user(&self) -> &str {
        &self.user
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["users", self.user.as_str()];
        all.extend_from_slice(segments);
        self.api.endpoints.graph(&all)
    }

    fn prefer(page_size: Option<u32>) -> Vec<(&'static str, String)> {
        let mut headers = vec![("prefer", IMMUTABLE_IDS.to_string())];
        if let Some(size) = page_size {
            headers.push(("prefer", format!("odata.maxpagesize={size}")));
        }
        headers
    }

    /// One folder by id or well-known name; `None` if there is no such folder.
    pub async fn get_folder(&self, folder: &str) -> Result<Option<MailFolder>, ProviderError> {
        let url = self.url(&["mailFolders", folder]);
        let mut found: Option<MailFolder> = self
            .api
            .get_json(
                url,
                &Self::prefer(None),
                GraphCall::EntityGet,
                "mailFolders.get",
            )
            .await?;
        if let Some(found) = found.as_mut()
            && WELL_KNOWN_FOLDERS.contains(&folder.to_ascii_lowercase().as_str())
        {
            found.well_known_name = Some(folder.to_ascii_lowercase());
        }
        Ok(found)
    }

    async fn folder_pages(&self, first: Url) -> Result<Vec<MailFolder>, ProviderError> {
        let mut folders = Vec::new();
        let mut url = first;
        loop {
            let answer: FoldersAnswer = required(
                self.api
                    .get_json(
                        url,
                        &Self::prefer(None),
                        GraphCall::Other,
                        "mailFolders.list",
                    )
                    .await?,
                "mailFolders.list",
            )?;
            folders.extend(answer.value);
            match answer.next_link.filter(|l| !l.is_empty()) {
                Some(link) => url = self.api.graph_link(&link, "mailFolders next")?,
                None => return Ok(folders),
            }
        }
    }

    /// The top-level folders (children of the hidden root), all pages.
    pub async fn top_folders(&self) -> Result<Vec<MailFolder>, ProviderError> {
        let mut url = self.url(&["mailFolders"]);
        url.query_pairs_mut().append_pair("$top", FOLDER_PAGE);
        self.folder_pages(url).await
    }

    /// A folder's direct children, all pages.
    pub async fn child_folders(&self, folder: &str) -> Result<Vec<MailFolder>, ProviderError> {
        let mut url = self.url(&["mailFolders", folder, "childFolders"]);
        url.query_pairs_mut().append_pair("$top", FOLDER_PAGE);
        self.folder_pages(url).await
    }

    /// Every folder of the mailbox, parents before their children, the well-known ones
    /// named (resolved with one `$batch`): what an admin picks capture folders from.
    pub async fn list_folders(&self) -> Result<Vec<MailFolder>, ProviderError> {
        let mut folders = self.top_folders().await?;
        let mut level_start = 0;
        for _ in 0..MAX_FOLDER_DEPTH {
            let parents: Vec<String> = folders[level_start..]
                .iter()
                .filter(|f| f.child_folder_count > 0)
                .map(|f| f.id.clone())
                .collect();
            level_start = folders.len();
            if parents.is_empty() {
                break;
            }
            for parent in parents {
                let children = self.child_folders(&parent).await?;
                folders.extend(children);
            }
        }
        let named = self.well_known_ids().await?;
        for folder in &mut folders {
            folder.well_known_name = named.get(&folder.id).cloned();
        }
        Ok(folders)
    }

    /// The ids of the well-known folders this mailbox has, by one `$batch` of gets. A
    /// well-known folder a mailbox lacks (no archive) is simply absent.
    async fn well_known_ids(&self) -> Result<HashMap<String, String>, ProviderError> {
        let requests: Vec<BatchRequest> = WELL_KNOWN_FOLDERS
            .iter()
            .map(|name| {
                let mut url = self.url(&["mailFolders", name]);
                url.query_pairs_mut().append_pair("$select", "id");
                let mut request = BatchRequest::get(
                    *name,
                    batch::relative_url(&self.api.endpoints.graph_base, &url),
                );
                request
                    .headers
                    .insert("Prefer".into(), IMMUTABLE_IDS.into());
                request
            })
            .collect();
        let mut named = HashMap::new();
        // At most four at a time: the lanes keep a batch within the mailbox's
        // concurrency limit.
        for (request, answer) in requests.iter().zip(self.batch_in_lanes(&requests).await?) {
            #[derive(Deserialize)]
            struct Id {
                id: String,
            }
            let Some(answer) = answer else { continue };
            let decoded: Option<Id> = decode_answer(
                answer.status,
                &answer.headers,
                &answer.body,
                GraphCall::EntityGet,
                "mailFolders.get",
            )?;
            if let Some(Id { id }) = decoded {
                named.insert(id, request.id.clone());
            }
        }
        Ok(named)
    }

    /// Starts a delta round over `folder` (id or well-known name).
    pub async fn delta_start(
        &self,
        folder: &str,
        options: &DeltaOptions,
    ) -> Result<DeltaPage, ProviderError> {
        let mut url = self.url(&["mailFolders", folder, "messages", "delta"]);
        {
            let mut query = url.query_pairs_mut();
            let select = if options.with_headers {
                format!("{MESSAGE_SELECT},{HEADERS_SELECT}")
            } else {
                MESSAGE_SELECT.to_string()
            };
            query.append_pair("$select", &select);
            if let Some(since) = options.received_since {
                query.append_pair(
                    "$filter",
                    &format!(
                        "receivedDateTime ge {}",
                        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                );
            }
        }
        self.delta_page(url, options.page_size).await
    }

    /// Follows a next link (the rest of a round) or a stored delta link (what changed
    /// since). Links are opaque; they keep the round's `$select` and filter. A delta
    /// link whose state Graph no longer keeps is [`ProviderError::CursorGone`]: start a
    /// new round with [`MailClient::delta_start`].
    pub async fn delta_follow(
        &self,
        link: &str,
        page_size: Option<u32>,
    ) -> Result<DeltaPage, ProviderError> {
        let url = self.api.graph_link(link, "delta")?;
        self.delta_page(url, page_size).await
    }

    async fn delta_page(
        &self,
        url: Url,
        page_size: Option<u32>,
    ) -> Result<DeltaPage, ProviderError> {
        let answer: DeltaAnswer = required(
            self.api
                .get_json(
                    url,
                    &Self::prefer(page_size),
                    GraphCall::Other,
                    "messages.delta",
                )
                .await?,
            "messages.delta",
        )?;
        let mut messages = Vec::new();
        let mut removed = Vec::new();
        for item in answer.value {
            if item.get("@removed").is_some() {
                if let Some(id) = item.get("id").and_then(|v| v.as_str()) {
                    removed.push(id.to_string());
                }
                continue;
            }
            // serde's message would quote the answer; only the kind of problem is kept.
            let message: MessageJson = serde_json::from_value(item).map_err(|_| {
                crate::error::unreadable_answer(
                    "messages.delta",
                    "a message of an unexpected shape",
                )
            })?;
            messages.push(message.into());
        }
        let link = match (answer.next_link, answer.delta_link) {
            (Some(next), _) if !next.is_empty() => DeltaLink::Next(next),
            (_, Some(delta)) if !delta.is_empty() => DeltaLink::Delta(delta),
            _ => {
                return Err(crate::error::unreadable_answer(
                    "messages.delta",
                    "neither a next link nor a delta link",
                ));
            }
        };
        Ok(DeltaPage {
            messages,
            removed,
            link,
        })
    }

    fn headers_url(&self, id: &str) -> Url {
        let mut url = self.url(&["messages", id]);
        url.query_pairs_mut().append_pair("$select", HEADERS_SELECT);
        url
    }

    /// One message's Internet headers.
    pub async fn get_message_headers(&self, id: &str) -> HeadersResult {
        let answer: Option<HeadersJson> = self
            .api
            .get_json(
                self.headers_url(id),
                &Self::prefer(None),
                GraphCall::EntityGet,
                "messages.get",
            )
            .await?;
        Ok(answer.map(|a| a.headers.unwrap_or_default()))
    }

    /// The Internet headers of many messages through `$batch`, 20 per HTTP request in
    /// four lanes (each request depends on the one four places before it), so no more
    /// than Outlook's four concurrent requests per mailbox run at once. The answer has
    /// one entry per id, in order; a request that never ran because an earlier one in
    /// its lane failed is a transient error (424). A failure of a whole batch is the
    /// outer error.
    pub async fn batch_get_headers(
        &self,
        ids: &[String],
    ) -> Result<Vec<HeadersResult>, ProviderError> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_BATCH_REQUESTS) {
            let requests: Vec<BatchRequest> = chunk
                .iter()
                .enumerate()
                .map(|(index, id)| {
                    let url =
                        batch::relative_url(&self.api.endpoints.graph_base, &self.headers_url(id));
                    let mut request = BatchRequest::get(index.to_string(), url);
                    request
                        .headers
                        .insert("Prefer".into(), IMMUTABLE_IDS.into());
                    request
                })
                .collect();
            let answers = self.batch_in_lanes(&requests).await?;
            results.extend(answers.into_iter().zip(chunk).map(|(answer, id)| {
                let Some(answer) = answer else {
                    return Err(ProviderError::other(ProviderDetail::new(format!(
                        "the batch answer has no response for message {id}"
                    ))));
                };
                let decoded: Option<HeadersJson> = decode_answer(
                    answer.status,
                    &answer.headers,
                    &answer.body,
                    GraphCall::EntityGet,
                    "messages.get",
                )?;
                Ok(decoded.map(|h| h.headers.unwrap_or_default()))
            }));
        }
        Ok(results)
    }

    /// Sends up to 20 requests as one batch, each depending on the one
    /// [`MAILBOX_CONCURRENCY`] places before it.
    async fn batch_in_lanes(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<Option<BatchResponse>>, ProviderError> {
        let mut laned = requests.to_vec();
        for index in MAILBOX_CONCURRENCY..laned.len() {
            let before = laned[index - MAILBOX_CONCURRENCY].id.clone();
            laned[index].depends_on = vec![before];
        }
        batch::send(&self.api, &laned).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_core::HeaderField;

    fn message(json: serde_json::Value) -> GraphMessage {
        serde_json::from_value::<MessageJson>(json).unwrap().into()
    }

    #[test]
    fn delta_messages_become_records_with_the_headers_capture_reads() {
        let m = message(serde_json::json!({
            "id": "AAkALgImm", "internetMessageId": "<a1@partner.example>",
            "from": {"emailAddress": {"name": "Pat, Partner", "address": "pat@partner.example"}},
            "sender": {"emailAddress": {"name": "pat@partner.example", "address": "pat@partner.example"}},
            "toRecipients": [{"emailAddress": {"name": "Bob", "address": "bob@acme.example"}},
                             {"emailAddress": {"name": "Q \"the\" one", "address": "q@acme.example"}}],
            "ccRecipients": [], "bccRecipients": [], "replyTo": [],
            "receivedDateTime": "2024-03-01T10:00:05Z", "sentDateTime": "2024-03-01T10:00:00Z",
            "subject": "Quarterly", "conversationId": "conv-1", "parentFolderId": "inbox-id",
            "isDraft": false,
            "internetMessageHeaders": [
                {"name": "From", "value": "ignored: Graph's property wins"},
                {"name": "List-Unsubscribe", "value": "<mailto:u@partner.example>"},
                {"name": "In-Reply-To", "value": "<a0@acme.example>"},
                {"name": "X-Other", "value": "dropped"}]
        }));
        assert!(m.has_internet_headers());
        let record = m.to_record("bob@acme.example");
        assert_eq!(record.provider_message_id.as_deref(), Some("AAkALgImm"));
        assert_eq!(record.provider_thread_id.as_deref(), Some("conv-1"));
        assert_eq!(record.labels, ["inbox-id"]);
        assert_eq!(record.internal_date_ms, Some(1_709_287_205_000));
        let value = |field| {
            record
                .header_values(field)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            value(HeaderField::From),
            ["\"Pat, Partner\" <pat@partner.example>\n"]
        );
        assert_eq!(value(HeaderField::Sender), ["pat@partner.example\n"]);
        assert_eq!(
            value(HeaderField::To),
            ["\"Bob\" <bob@acme.example>, \"Q \\\"the\\\" one\" <q@acme.example>\n"]
        );
        assert!(value(HeaderField::Cc).is_empty());
        assert_eq!(
            value(HeaderField::Date),
            ["Fri, 1 Mar 2024 10:00:00 +0000\n"]
        );
        assert_eq!(value(HeaderField::MessageId), ["<a1@partner.example>\n"]);
        assert_eq!(
            value(HeaderField::ListUnsubscribe),
            ["<mailto:u@partner.example>\n"]
        );
        assert_eq!(value(HeaderField::InReplyTo), ["<a0@acme.example>\n"]);
        // The extraction pipeline reads them like any other record.
        let parsed = tributary_core::parse::ParsedHeaders::parse(&record);
        assert_eq!(parsed.from[0].address.as_str(), "pat@partner.example");
        assert_eq!(parsed.to.len(), 2);
        assert!(parsed.has_list_unsubscribe);
    }

    #[test]
    fn a_sent_copy_without_headers_still_has_its_addresses() {
        let m = message(serde_json::json!({
            "id": "x", "internetMessageId": null,
            "from": {"emailAddress": {"name": "Ann", "address": "ann@acme.example"}},
            "toRecipients": [{"emailAddress": {"name": "p@partner.example", "address": "p@partner.example"}}],
            "bccRecipients": [{"emailAddress": {"address": "hidden@outside.example"}}],
            "receivedDateTime": "2024-03-01T10:00:05Z"
        }));
        assert!(!m.has_internet_headers());
        let record = m.to_record("ann@acme.example");
        assert_eq!(
            record.header_values(HeaderField::Bcc).next().unwrap(),
            b"hidden@outside.example\n"
        );
        assert!(
            record
                .header_values(HeaderField::MessageId)
                .next()
                .is_none()
        );
        assert_eq!(record.provider_thread_id, None);
    }
}
