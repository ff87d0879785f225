//! Rendering structured messages to RFC 5322 bytes (CRLF): RFC 2047 encoded words,
//! address lists with group syntax, Date forms, MIME bodies, and each mailer's header order.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, FixedOffset, Utc};

use super::mail::{Addressee, DateStyle, HeaderDate, Mailer, PlannedMessage, Recipient};
use super::people::{NameStyle, Population};

/// Encoded words may be at most 75 characters (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;
const ENCODED_WORD_OVERHEAD: usize = "=?UTF-8?B??=".len();
/// Where address lists and long encoded values are folded.
const FOLD_AT: usize = 76;

/// `=?UTF-8?B?...?=` words, split on character boundaries, separated by folding white
/// space (which decoders drop between adjacent encoded words).
pub fn encode_words_b(text: &str) -> String {
    // 4 base64 characters carry 3 bytes.
    let max_bytes = (MAX_ENCODED_WORD - ENCODED_WORD_OVERHEAD) / 4 * 3;
    split_by_bytes(text, max_bytes)
        .map(|chunk| format!("=?UTF-8?B?{}?=", BASE64.encode(chunk.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// `=?UTF-8?Q?...?=` words. Only letters and digits stay literal; a space becomes `_`.
pub fn encode_words_q(text: &str) -> String {
    let budget = MAX_ENCODED_WORD - ENCODED_WORD_OVERHEAD;
    let mut words = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        let mut piece = String::new();
        if ch == ' ' {
            piece.push('_');
        } else if ch.is_ascii_alphanumeric() {
            piece.push(ch);
        } else {
            let mut buffer = [0u8; 4];
            for byte in ch.encode_utf8(&mut buffer).bytes() {
                piece.push_str(&format!("={byte:02X}"));
            }
        }
        if current.len() + piece.len() > budget {
            words.push(std::mem::take(&mut current));
        }
        current.push_str(&piece);
    }
    if !current.is_empty() || words.is_empty() {
        words.push(current);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?Q?{w}?="))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn split_by_bytes(text: &str, max_bytes: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max_bytes);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

fn is_atext(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(ch)
}

/// A display name as a phrase: atoms when possible, else a quoted string.
pub fn phrase(name: &str) -> String {
    if !name.is_empty()
        && name
            .split(' ')
            .all(|w| !w.is_empty() && w.chars().all(is_atext))
    {
        return name.to_string();
    }
    let escaped: String = name
        .chars()
        .flat_map(|ch| match ch {
            '"' | '\\' => vec!['\\', ch],
            _ => vec![ch],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// One mailbox (`name-addr` or `addr-spec`) in the person's style.
pub fn format_mailbox(display_name: Option<&str>, style: NameStyle, address: &str) -> String {
    match (display_name, style) {
        (None, NameStyle::AngleOnly) => format!("<{address}>"),
        (None, _) | (_, NameStyle::Bare) => address.to_string(),
        (Some(_), NameStyle::AngleOnly) => format!("<{address}>"),
        (Some(name), NameStyle::Comment) => format!("{address} ({name})"),
        (Some(name), NameStyle::EncodedB) => format!("{} <{address}>", encode_words_b(name)),
        (Some(name), NameStyle::EncodedQ) => format!("{} <{address}>", encode_words_q(name)),
        (Some(name), NameStyle::Phrase) if name.is_ascii() => {
            format!("{} <{address}>", phrase(name))
        }
        (Some(name), NameStyle::Phrase) => format!("{} <{address}>", encode_words_q(name)),
    }
}

/// A display name for mail composed outside the generator: encoded when not ASCII.
pub fn format_named_address(name: Option<&str>, address: &str) -> String {
    let style = match name {
        Some(n) if !n.is_ascii() => NameStyle::EncodedQ,
        _ => NameStyle::Phrase,
    };
    format_mailbox(name, style, address)
}

fn format_addressee(population: &Population, addressee: &Addressee) -> String {
    let person = &population.people[addressee.person];
    format_mailbox(
        person.display_name.as_deref(),
        person.name_style,
        &addressee.address,
    )
}

fn format_recipient(population: &Population, recipient: &Recipient) -> String {
    match recipient {
        Recipient::One(one) => format_addressee(population, one),
        Recipient::Group { name, members } => {
            let list: Vec<String> = members
                .iter()
                .map(|m| format_addressee(population, m))
                .collect();
            if list.is_empty() {
                format!("{}:;", phrase(name))
            } else {
                let name = phrase(name);
                format!("{name}: {};", fold_list(&format!("To: {name}"), &list))
            }
        }
    }
}

/// Joins list items, folding between items so that lines stay short.
fn fold_list(header_name: &str, items: &[String]) -> String {
    let mut out = String::new();
    let mut line_len = header_name.len() + 2;
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            let first_line_len = item.split("\r\n").next().map_or(0, str::len);
            if line_len + 2 + first_line_len > FOLD_AT {
                out.push_str(",\r\n ");
                line_len = 1;
            } else {
                out.push_str(", ");
                line_len += 2;
            }
        }
        out.push_str(item);
        line_len = match item.rfind("\r\n") {
            Some(pos) => item.len() - pos - 2,
            None => line_len + item.len(),
        };
    }
    out
}

/// The Date header value.
pub fn format_date(date: &HeaderDate) -> String {
    let utc = DateTime::<Utc>::from_timestamp(date.unix_seconds, 0).unwrap_or_default();
    let offset = FixedOffset::east_opt(date.utc_offset_minutes * 60)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
    let local = utc.with_timezone(&offset);
    match date.style {
        DateStyle::Standard => local.format("%a, %-d %b %Y %H:%M:%S %z").to_string(),
        DateStyle::PaddedDay => local.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
        DateStyle::NoWeekday => local.format("%-d %b %Y %H:%M:%S %z").to_string(),
        DateStyle::NoSeconds => local.format("%a, %-d %b %Y %H:%M %z").to_string(),
        DateStyle::UtcComment => utc.format("%a, %d %b %Y %H:%M:%S +0000 (UTC)").to_string(),
        DateStyle::Gmt => utc.format("%a, %-d %b %Y %H:%M:%S GMT").to_string(),
    }
}

/// A subject header value: plain when ASCII, otherwise encoded words (B for mostly
/// non-Latin text, Q otherwise), as mail clients do.
pub fn format_subject(subject: &str) -> String {
    if subject.is_ascii() {
        return subject.to_string();
    }
    let non_ascii = subject.chars().filter(|c| !c.is_ascii()).count();
    if non_ascii * 3 > subject.chars().count() {
        encode_words_b(subject)
    } else {
        encode_words_q(subject)
    }
}

/// Gmail's snippet: the start of the text body, whitespace collapsed, HTML-escaped.
pub fn snippet(body: &str) -> String {
    let collapsed = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = collapsed.chars().take(140).collect();
    html_escape(&cut)
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// What a header field is, independent of how a mailer spells its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    MimeVersion,
    Date,
    MessageId,
    Subject,
    From,
    ReplyTo,
    To,
    Cc,
    Bcc,
    InReplyTo,
    References,
    ListId,
    ListUnsubscribe,
    ListUnsubscribePost,
    Precedence,
    AutoSubmitted,
    Agent,
    ThreadTopic,
    OutlookFlags,
    ContentType,
    ContentTransferEncoding,
}

use Field as F;

fn field_order(mailer: Mailer) -> &'static [Field] {
    match mailer {
        Mailer::Gmail => &[
            F::MimeVersion,
            F::Date,
            F::References,
            F::InReplyTo,
            F::MessageId,
            F::Subject,
            F::From,
            F::ReplyTo,
            F::To,
            F::Cc,
            F::Bcc,
            F::AutoSubmitted,
            F::ListId,
            F::ListUnsubscribe,
            F::ListUnsubscribePost,
            F::Precedence,
            F::Agent,
            F::ThreadTopic,
            F::OutlookFlags,
            F::ContentType,
            F::ContentTransferEncoding,
        ],
        Mailer::Outlook => &[
            F::From,
            F::ReplyTo,
            F::To,
            F::Cc,
            F::Bcc,
            F::Subject,
            F::ThreadTopic,
            F::Date,
            F::MessageId,
            F::References,
            F::InReplyTo,
            F::AutoSubmitted,
            F::OutlookFlags,
            F::ListId,
            F::ListUnsubscribe,
            F::ListUnsubscribePost,
            F::Precedence,
            F::Agent,
            F::ContentType,
            F::ContentTransferEncoding,
            F::MimeVersion,
        ],
        Mailer::AppleMail => &[
            F::ContentType,
            F::MimeVersion,
            F::Subject,
            F::From,
            F::ReplyTo,
            F::InReplyTo,
            F::Date,
            F::Cc,
            F::Bcc,
            F::ContentTransferEncoding,
            F::MessageId,
            F::References,
            F::To,
            F::AutoSubmitted,
            F::ListId,
            F::ListUnsubscribe,
            F::ListUnsubscribePost,
            F::Precedence,
            F::ThreadTopic,
            F::OutlookFlags,
            F::Agent,
        ],
        Mailer::Thunderbird | Mailer::Webmail => &[
            F::MessageId,
            F::Date,
            F::MimeVersion,
            F::Agent,
            F::Subject,
            F::To,
            F::Cc,
            F::Bcc,
            F::References,
            F::From,
            F::ReplyTo,
            F::InReplyTo,
            F::AutoSubmitted,
            F::ListId,
            F::ListUnsubscribe,
            F::ListUnsubscribePost,
            F::Precedence,
            F::ThreadTopic,
            F::OutlookFlags,
            F::ContentType,
            F::ContentTransferEncoding,
        ],
        Mailer::Script | Mailer::Campaign => &[
            F::From,
            F::ReplyTo,
            F::To,
            F::Cc,
            F::Bcc,
            F::Subject,
            F::Date,
            F::MessageId,
            F::InReplyTo,
            F::References,
            F::ListUnsubscribe,
            F::ListUnsubscribePost,
            F::ListId,
            F::Precedence,
            F::AutoSubmitted,
            F::Agent,
            F::ThreadTopic,
            F::OutlookFlags,
            F::MimeVersion,
            F::ContentType,
            F::ContentTransferEncoding,
        ],
    }
}

/// How a mailer spells a header name (names are case-insensitive; clients differ).
fn field_name(mailer: Mailer, field: Field) -> &'static str {
    match (field, mailer) {
        (F::MimeVersion, Mailer::AppleMail) => "Mime-Version",
        (F::MimeVersion, _) => "MIME-Version",
        (F::Date, _) => "Date",
        (F::MessageId, Mailer::AppleMail) => "Message-Id",
        (F::MessageId, _) => "Message-ID",
        (F::Subject, _) => "Subject",
        (F::From, _) => "From",
        (F::ReplyTo, _) => "Reply-To",
        (F::To, _) => "To",
        (F::Cc, Mailer::Outlook) => "CC",
        (F::Cc, _) => "Cc",
        (F::Bcc, Mailer::Outlook) => "BCC",
        (F::Bcc, _) => "Bcc",
        (F::InReplyTo, _) => "In-Reply-To",
        (F::References, _) => "References",
        (F::ListId, _) => "List-Id",
        (F::ListUnsubscribe, _) => "List-Unsubscribe",
        (F::ListUnsubscribePost, _) => "List-Unsubscribe-Post",
        (F::Precedence, _) => "Precedence",
        (F::AutoSubmitted, _) => "Auto-Submitted",
        (F::Agent, Mailer::Thunderbird) => "User-Agent",
        (F::Agent, _) => "X-Mailer",
        (F::ThreadTopic, _) => "Thread-Topic",
        (F::OutlookFlags, _) => "X-MS-Has-Attach",
        (F::ContentType, _) => "Content-Type",
        (F::ContentTransferEncoding, _) => "Content-Transfer-Encoding",
    }
}

fn agent(mailer: Mailer) -> Option<&'static str> {
    match mailer {
        Mailer::Gmail => None,
        Mailer::Outlook => Some("Microsoft Outlook 16.0"),
        Mailer::AppleMail => Some("Apple Mail (2.3774.500.171.1.1)"),
        Mailer::Thunderbird => Some("Mozilla Thunderbird"),
        Mailer::Webmail => Some("WebService/1.1.22645 YMailNorrin"),
        Mailer::Script => Some("PHPMailer 6.8.1 (https://github.com/PHPMailer/PHPMailer)"),
        Mailer::Campaign => Some("Campaigns 4.2"),
    }
}

/// A message's body, MIME-encoded, with the Content-Type (and transfer encoding) it needs.
#[derive(Debug, Clone)]
struct MimeBody {
    content_type: String,
    transfer_encoding: Option<&'static str>,
    bytes: Vec<u8>,
}

fn text_part(text: &str) -> (Option<&'static str>, String) {
    if text.is_ascii() {
        (Some("7bit"), crlf(text))
    } else {
        (Some("base64"), wrapped_base64(text.as_bytes()))
    }
}

fn crlf(text: &str) -> String {
    let mut out = text.replace("\r\n", "\n").replace('\n', "\r\n");
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out
}

fn wrapped_base64(bytes: &[u8]) -> String {
    let encoded = BASE64.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

fn html_of(text: &str) -> String {
    let lines: Vec<String> = text.lines().map(html_escape).collect();
    format!("<div dir=\"ltr\">{}</div>\n", lines.join("<br>"))
}

/// Gmail and bulk senders write `multipart/alternative` (text and HTML); others plain text.
fn mime_body(multipart: bool, text: &str, boundary_seed: u64) -> MimeBody {
    if !multipart {
        let (encoding, body) = text_part(text);
        return MimeBody {
            content_type: "text/plain; charset=\"UTF-8\"".into(),
            transfer_encoding: encoding,
            bytes: body.into_bytes(),
        };
    }
    let boundary = format!("0000000000{:016x}", boundary_seed);
    let mut out = String::new();
    for (subtype, content) in [("plain", text.to_string()), ("html", html_of(text))] {
        let (encoding, encoded) = text_part(&content);
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/{subtype}; charset=\"UTF-8\"\r\n"
        ));
        if let Some(encoding) = encoding {
            out.push_str(&format!("Content-Transfer-Encoding: {encoding}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&encoded);
        out.push_str("\r\n");
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    MimeBody {
        content_type: format!("multipart/alternative; boundary=\"{boundary}\""),
        transfer_encoding: None,
        bytes: out.into_bytes(),
    }
}

/// A message rendered once; each mailbox copy is then assembled from it.
#[derive(Debug, Clone)]
pub struct RenderedMessage {
    fields: Vec<(&'static str, Field, String)>,
    body: Vec<u8>,
    pub snippet: String,
}

/// Per-copy trace headers Gmail adds on delivery.
#[derive(Debug, Clone)]
pub struct DeliveryTrace<'a> {
    pub delivered_to: &'a str,
    pub received_ms: i64,
    pub smtp_id: u64,
}

impl RenderedMessage {
    /// The copy's bytes: trace headers first (recipients' copies), Bcc only when asked.
    pub fn copy_bytes(&self, trace: Option<&DeliveryTrace<'_>>, include_bcc: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 1024);
        if let Some(trace) = trace {
            let received = format_date(&HeaderDate {
                unix_seconds: trace.received_ms.div_euclid(1000),
                utc_offset_minutes: 0,
                style: DateStyle::UtcComment,
            });
            out.extend_from_slice(format!("Delivered-To: {}\r\n", trace.delivered_to).as_bytes());
            out.extend_from_slice(
                format!(
                    "Received: by 2002:a05:6a10:{:x}:b0:{:x} with SMTP id {:x}csp{};\r\n        {received}\r\n",
                    (trace.smtp_id >> 48) & 0xffff,
                    (trace.smtp_id >> 32) & 0xfff,
                    (trace.smtp_id >> 16) & 0xffff,
                    trace.smtp_id % 10_000_000,
                )
                .as_bytes(),
            );
        }
        for (name, field, value) in &self.fields {
            if *field == F::Bcc && !include_bcc {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Header values of one message before ordering.
#[derive(Debug, Default)]
struct Values {
    date: Option<String>,
    message_id: Option<String>,
    subject: Option<String>,
    from: Option<String>,
    reply_to: Option<String>,
    to: Option<String>,
    cc: Option<String>,
    bcc: Option<String>,
    in_reply_to: Option<String>,
    references: Option<String>,
    list_id: Option<String>,
    list_unsubscribe: Option<String>,
    list_unsubscribe_post: Option<String>,
    precedence: Option<String>,
    auto_submitted: Option<String>,
    thread_topic: Option<String>,
}

fn assemble(mailer: Mailer, values: Values, body: &str, mime: MimeBody) -> RenderedMessage {
    let mut fields = Vec::new();
    for field in field_order(mailer) {
        let value = match field {
            F::MimeVersion => Some("1.0".to_string()),
            F::Date => values.date.clone(),
            F::MessageId => values.message_id.clone(),
            F::Subject => values.subject.clone(),
            F::From => values.from.clone(),
            F::ReplyTo => values.reply_to.clone(),
            F::To => values.to.clone(),
            F::Cc => values.cc.clone(),
            F::Bcc => values.bcc.clone(),
            F::InReplyTo => values.in_reply_to.clone(),
            F::References => values.references.clone(),
            F::ListId => values.list_id.clone(),
            F::ListUnsubscribe => values.list_unsubscribe.clone(),
            F::ListUnsubscribePost => values.list_unsubscribe_post.clone(),
            F::Precedence => values.precedence.clone(),
            F::AutoSubmitted => values.auto_submitted.clone(),
            F::Agent => agent(mailer).map(str::to_string),
            F::ThreadTopic => values.thread_topic.clone(),
            F::OutlookFlags => (mailer == Mailer::Outlook).then(String::new),
            F::ContentType => Some(mime.content_type.clone()),
            F::ContentTransferEncoding => mime.transfer_encoding.map(str::to_string),
        };
        if let Some(value) = value {
            fields.push((field_name(mailer, *field), *field, value));
        }
    }
    RenderedMessage {
        fields,
        body: mime.bytes,
        snippet: snippet(body),
    }
}

fn angle(id: &str) -> String {
    format!("<{id}>")
}

fn references_value(ids: &[String]) -> Option<String> {
    if ids.is_empty() {
        return None;
    }
    Some(
        ids.iter()
            .map(|id| angle(id))
            .collect::<Vec<_>>()
            .join("\r\n "),
    )
}

fn recipients_value(name: &str, items: Vec<String>) -> Option<String> {
    (!items.is_empty()).then(|| fold_list(name, &items))
}

/// Renders a planned message (every copy is assembled from the result).
pub fn render_planned(
    population: &Population,
    message: &PlannedMessage,
    seed: u64,
) -> RenderedMessage {
    let mailer = message.mailer;
    let list = |recipients: &[Recipient]| -> Vec<String> {
        recipients
            .iter()
            .map(|r| format_recipient(population, r))
            .collect()
    };
    let automation = &message.automation;
    let values = Values {
        date: message.date.as_ref().map(format_date),
        message_id: message.message_id.as_deref().map(angle),
        subject: message.subject.as_deref().map(format_subject),
        from: Some(format_addressee(population, &message.from)),
        reply_to: message
            .reply_to
            .as_ref()
            .map(|r| format_addressee(population, r)),
        to: recipients_value("To", list(&message.to)),
        cc: recipients_value("Cc", list(&message.cc)),
        bcc: recipients_value(
            "Bcc",
            message
                .bcc
                .iter()
                .map(|b| format_addressee(population, b))
                .collect(),
        ),
        in_reply_to: message.in_reply_to.as_deref().map(angle),
        references: references_value(&message.references),
        list_id: automation.list_id.clone(),
        list_unsubscribe: automation.list_unsubscribe.clone(),
        list_unsubscribe_post: automation
            .list_unsubscribe
            .as_ref()
            .map(|_| "List-Unsubscribe=One-Click".to_string()),
        precedence: automation.precedence.map(str::to_string),
        auto_submitted: automation.auto_submitted.map(str::to_string),
        thread_topic: (mailer == Mailer::Outlook)
            .then(|| message.subject.as_deref().map(thread_topic))
            .flatten(),
    };
    let multipart = matches!(mailer, Mailer::Gmail | Mailer::Campaign);
    let mime = mime_body(multipart, &message.body, seed);
    assemble(mailer, values, &message.body, mime)
}

/// Outlook's Thread-Topic: the subject without reply prefixes.
fn thread_topic(subject: &str) -> String {
    let mut topic = subject;
    loop {
        let trimmed = ["Re: ", "RE: ", "Fwd: ", "FW: "]
            .iter()
            .find_map(|p| topic.strip_prefix(p));
        match trimmed {
            Some(rest) => topic = rest,
            None => break,
        }
    }
    format_subject(topic)
}

/// One address of a message composed outside the generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedAddress {
    pub name: Option<String>,
    pub address: String,
}

impl NamedAddress {
    pub fn new(name: Option<&str>, address: &str) -> Self {
        NamedAddress {
            name: name.map(str::to_string),
            address: address.to_string(),
        }
    }
}

/// A simple message for live delivery (the control API): Gmail-like headers, a
/// `text/plain` body, the Date in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveMessage {
    pub from: NamedAddress,
    pub to: Vec<NamedAddress>,
    pub cc: Vec<NamedAddress>,
    pub bcc: Vec<NamedAddress>,
    /// `None` writes no Subject header.
    pub subject: Option<String>,
    /// The Date header's instant (epoch ms; written in whole seconds).
    pub date_ms: i64,
    /// Without angle brackets; `None` writes no Message-ID header.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub body: String,
}

impl LiveMessage {
    pub(crate) fn rendered(&self) -> RenderedMessage {
        let list = |addresses: &[NamedAddress]| -> Vec<String> {
            addresses
                .iter()
                .map(|a| format_named_address(a.name.as_deref(), &a.address))
                .collect()
        };
        let values = Values {
            date: Some(format_date(&HeaderDate {
                unix_seconds: self.date_ms.div_euclid(1000),
                utc_offset_minutes: 0,
                style: DateStyle::Standard,
            })),
            message_id: self.message_id.as_deref().map(angle),
            subject: self.subject.as_deref().map(format_subject),
            from: Some(format_named_address(
                self.from.name.as_deref(),
                &self.from.address,
            )),
            to: recipients_value("To", list(&self.to)),
            cc: recipients_value("Cc", list(&self.cc)),
            bcc: recipients_value("Bcc", list(&self.bcc)),
            in_reply_to: self.in_reply_to.as_deref().map(angle),
            references: references_value(&self.references),
            ..Values::default()
        };
        // Live mail keeps a single text part: simplest for clients that read `full`.
        let mime = mime_body(false, &self.body, 0);
        assemble(Mailer::Gmail, values, &self.body, mime)
    }
}

/// Renders a live message. The sender's copy includes Bcc; recipients' copies do not.
pub fn render_message(message: &LiveMessage, include_bcc: bool) -> Vec<u8> {
    message.rendered().copy_bytes(None, include_bcc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b_words_stay_within_75_characters_and_split_on_characters() {
        let text = "山田 太郎 山田 太郎 山田 太郎 山田 太郎 山田 太郎";
        let encoded = encode_words_b(text);
        let words: Vec<&str> = encoded.split("\r\n ").collect();
        assert!(words.len() > 1);
        let mut decoded = Vec::new();
        for word in words {
            assert!(word.len() <= MAX_ENCODED_WORD, "{word}");
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .expect("encoded word");
            decoded.extend(BASE64.decode(inner).expect("base64"));
        }
        assert_eq!(String::from_utf8(decoded).expect("utf-8"), text);
    }

    #[test]
    fn q_words_encode_everything_but_letters_digits_and_space() {
        assert_eq!(
            encode_words_q("Zoë Müller"),
            "=?UTF-8?Q?Zo=C3=AB_M=C3=BCller?="
        );
        assert_eq!(encode_words_q("a_b=c?"), "=?UTF-8?Q?a=5Fb=3Dc=3F?=");
    }

    #[test]
    fn phrases_are_quoted_only_when_needed() {
        assert_eq!(phrase("Ann Lee"), "Ann Lee");
        assert_eq!(phrase("Lee, Ann"), "\"Lee, Ann\"");
        assert_eq!(phrase("A. Lee"), "\"A. Lee\"");
        assert_eq!(phrase("O'Connor"), "O'Connor");
        assert_eq!(phrase("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn dates_render_in_each_style() {
        let date = |style, offset| HeaderDate {
            unix_seconds: 1_741_047_302, // 2025-03-04T00:15:02Z
            utc_offset_minutes: offset,
            style,
        };
        assert_eq!(
            format_date(&date(DateStyle::Standard, 540)),
            "Tue, 4 Mar 2025 09:15:02 +0900"
        );
        assert_eq!(
            format_date(&date(DateStyle::PaddedDay, -300)),
            "Mon, 03 Mar 2025 19:15:02 -0500"
        );
        assert_eq!(
            format_date(&date(DateStyle::NoWeekday, 0)),
            "4 Mar 2025 00:15:02 +0000"
        );
        assert_eq!(
            format_date(&date(DateStyle::UtcComment, 540)),
            "Tue, 04 Mar 2025 00:15:02 +0000 (UTC)"
        );
        assert_eq!(
            format_date(&date(DateStyle::Gmt, 60)),
            "Tue, 4 Mar 2025 00:15:02 GMT"
        );
        assert_eq!(
            format_date(&date(DateStyle::NoSeconds, 60)),
            "Tue, 4 Mar 2025 01:15 +0100"
        );
    }

    #[test]
    fn address_lists_fold_between_items() {
        let items: Vec<String> = (0..8)
            .map(|i| format!("Person Number{i} <person.number{i}@example.com>"))
            .collect();
        let folded = fold_list("To", &items);
        assert!(folded.contains(",\r\n "));
        for line in folded.split("\r\n") {
            assert!(line.len() <= FOLD_AT, "{line}");
        }
        assert_eq!(folded.replace(",\r\n ", ", "), items.join(", "));
    }

    #[test]
    fn snippets_collapse_whitespace_and_escape_html() {
        assert_eq!(
            snippet("Hi Ann,\r\n\r\nIt's  <fine> & \"ok\""),
            "Hi Ann, It&#39;s &lt;fine&gt; &amp; &quot;ok&quot;"
        );
    }

    #[test]
    fn live_messages_render_bcc_only_in_the_senders_copy() {
        let message = LiveMessage {
            from: NamedAddress::new(Some("Zoë Müller"), "zoe@larkspur-trading.com"),
            to: vec![NamedAddress::new(Some("Lee, Ann"), "ann@acme.example")],
            cc: vec![],
            bcc: vec![NamedAddress::new(None, "boss@larkspur-trading.com")],
            subject: Some("Quote".into()),
            date_ms: 1_741_047_302_000,
            message_id: Some("live-1@larkspur-trading.com".into()),
            in_reply_to: None,
            references: vec![],
            body: "Hello".into(),
        };
        let sender = String::from_utf8(render_message(&message, true)).expect("utf-8");
        let recipient = String::from_utf8(render_message(&message, false)).expect("utf-8");
        assert!(sender.contains("\r\nBcc: boss@larkspur-trading.com\r\n"));
        assert!(!recipient.contains("Bcc:"));
        assert!(
            sender
                .contains("From: =?UTF-8?Q?Zo=C3=AB_M=C3=BCller?= <zoe@larkspur-trading.com>\r\n")
        );
        assert!(sender.contains("To: \"Lee, Ann\" <ann@acme.example>\r\n"));
        assert!(sender.contains("Date: Tue, 4 Mar 2025 00:15:02 +0000\r\n"));
        assert!(sender.contains("Content-Type: text/plain; charset=\"UTF-8\"\r\n"));
        assert!(sender.ends_with("\r\n\r\nHello\r\n"));
    }
}
