//! A stored item as Graph's `message` resource: recipients as
//! `{"emailAddress":{"name","address"}}`, dates in UTC with `Z`, `internetMessageHeaders`
//! only when selected, bodies only with a role that reads them, `$select` honoured.

use super::super::query::selects;
use super::store::Item;
use crate::model::parse_header_fields;
use chrono::{DateTime, SecondsFormat, Utc};
use mail_parser::{Address, HeaderValue as MailHeader, MessageParser};
use serde_json::{Map, Value, json};

/// Properties a message has without `$select` (internetMessageHeaders and uniqueBody
/// need `$select`).
pub const DEFAULT_PROPERTIES: &[&str] = &[
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
];

/// Properties Mail.ReadBasic.All does not return.
const BODY_PROPERTIES: &[&str] = &["body", "bodyPreview", "uniqueBody"];

/// How to render: which properties, which ids, whether bodies are allowed.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions<'a> {
    pub select: Option<&'a [String]>,
    pub immutable_ids: bool,
    pub bodies: bool,
}

pub fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn email_address(name: Option<&str>, address: &str) -> Value {
    let name = name.filter(|n| !n.is_empty()).unwrap_or(address);
    json!({"emailAddress": {"name": name, "address": address}})
}

fn recipients(address: Option<&Address<'_>>) -> Value {
    let list: Vec<Value> = address
        .map(|a| {
            a.iter()
                .filter_map(|addr| Some(email_address(addr.name(), addr.address()?)))
                .collect()
        })
        .unwrap_or_default();
    Value::Array(list)
}

fn first_recipient(address: Option<&Address<'_>>) -> Value {
    match recipients(address) {
        Value::Array(mut list) if !list.is_empty() => list.remove(0),
        _ => Value::Null,
    }
}

/// The id clients see: immutable with `Prefer: IdType="ImmutableId"`, else the REST id.
pub fn visible_id(item: &Item, immutable_ids: bool) -> &str {
    if immutable_ids {
        &item.immutable_id
    } else {
        &item.rest_id
    }
}

fn headers_value(raw: &[u8]) -> Value {
    let list: Vec<Value> = parse_header_fields(raw)
        .into_iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    Value::Array(list)
}

/// Every property this emulator knows for the item (the caller keeps the selected ones).
fn all_properties(item: &Item, parent_folder_id: &str, immutable_ids: bool) -> Map<String, Value> {
    let parsed = MessageParser::default().parse(&item.raw[..]);
    let message = parsed.as_ref();
    let header =
        |f: &dyn Fn(&mail_parser::Message<'_>) -> Value| message.map(f).unwrap_or(Value::Null);
    let received = iso(item.received_ms);
    let sent = message
        .and_then(|m| m.date())
        .map(|d| iso(d.to_timestamp() * 1000))
        .unwrap_or_else(|| received.clone());
    let message_id = message
        .and_then(|m| m.message_id())
        .map(|id| Value::String(format!("<{id}>")))
        .unwrap_or(Value::Null);
    let subject = message.and_then(|m| m.subject()).unwrap_or("").to_string();
    let from = header(&|m| first_recipient(m.from()));
    let sender = match message.map(|m| m.header("Sender")) {
        Some(Some(MailHeader::Address(address))) => first_recipient(Some(address)),
        _ => from.clone(),
    };
    let body_text = message
        .and_then(|m| m.body_text(0).map(|b| b.into_owned()))
        .unwrap_or_default();
    let change_key = format!("CQAAABYAAAD{}", item.change_seq);
    let mut map = Map::new();
    let mut put = |name: &str, value: Value| {
        map.insert(name.to_string(), value);
    };
    put("id", json!(visible_id(item, immutable_ids)));
    put("createdDateTime", json!(received));
    put("lastModifiedDateTime", json!(received));
    put("changeKey", json!(change_key));
    put("categories", json!([]));
    put("receivedDateTime", json!(received));
    put("sentDateTime", json!(sent));
    put("hasAttachments", json!(false));
    put("internetMessageId", message_id);
    put("subject", json!(subject));
    put("bodyPreview", json!(item.preview));
    put("importance", json!("normal"));
    put("parentFolderId", json!(parent_folder_id));
    put("conversationId", json!(item.conversation_id));
    put("conversationIndex", json!("AQHZ"));
    put("isDeliveryReceiptRequested", json!(false));
    put("isReadReceiptRequested", json!(false));
    put("isRead", json!(item.is_read));
    put("isDraft", json!(item.is_draft));
    put(
        "webLink",
        json!(format!(
            "https://outlook.office365.com/owa/?ItemID={}&exvsurl=1&viewmodel=ReadMessageItem",
            item.rest_id
        )),
    );
    put("inferenceClassification", json!("focused"));
    put("body", json!({"contentType": "text", "content": body_text}));
    put(
        "uniqueBody",
        json!({"contentType": "text", "content": body_text}),
    );
    put("sender", sender);
    put("from", from);
    put("toRecipients", header(&|m| recipients(m.to())));
    put("ccRecipients", header(&|m| recipients(m.cc())));
    put("bccRecipients", header(&|m| recipients(m.bcc())));
    put("replyTo", header(&|m| recipients(m.reply_to())));
    put("flag", json!({"flagStatus": "notFlagged"}));
    put("internetMessageHeaders", headers_value(&item.raw));
    map
}

/// The message as Graph answers it, `@odata.etag` first.
pub fn message_json(item: &Item, parent_folder_id: &str, options: RenderOptions<'_>) -> Value {
    let mut all = all_properties(item, parent_folder_id, options.immutable_ids);
    let wanted: Vec<String> = match options.select {
        Some(list) => {
            let mut list = list.to_vec();
            if !selects(Some(&list), "id") {
                list.push("id".into());
            }
            list
        }
        None => DEFAULT_PROPERTIES
            .iter()
            .map(|p| (*p).to_string())
            .collect(),
    };
    let mut out = Map::new();
    out.insert(
        "@odata.etag".into(),
        json!(format!("W/\"CQAAABYAAAD{}\"", item.change_seq)),
    );
    for name in wanted {
        let Some((key, value)) = all.remove_entry(name.as_str()).or_else(|| {
            let key = all.keys().find(|k| k.eq_ignore_ascii_case(&name))?.clone();
            all.remove_entry(&key)
        }) else {
            continue;
        };
        if !options.bodies && BODY_PROPERTIES.contains(&key.as_str()) {
            continue;
        }
        out.insert(key, value);
    }
    Value::Object(out)
}
