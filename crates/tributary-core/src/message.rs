//! The provider-neutral input of extraction: one sighting of a message in one mailbox.
//!
//! Only the headers capture reads are kept, undecoded, so a record built from a raw
//! RFC 5322 message and one built from Gmail's `format=metadata` header list go through
//! exactly the same parsing.

use mail_parser::{HeaderName, MessageParser};
use serde::Serialize;
use std::sync::LazyLock;

/// A header capture reads. Every other header is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderField {
    From,
    Sender,
    ReplyTo,
    To,
    Cc,
    Bcc,
    Date,
    Subject,
    MessageId,
    InReplyTo,
    References,
    ListId,
    ListUnsubscribe,
    Precedence,
    AutoSubmitted,
}

impl HeaderField {
    /// Every header capture reads.
    pub const ALL: [HeaderField; 15] = [
        HeaderField::From,
        HeaderField::Sender,
        HeaderField::ReplyTo,
        HeaderField::To,
        HeaderField::Cc,
        HeaderField::Bcc,
        HeaderField::Date,
        HeaderField::Subject,
        HeaderField::MessageId,
        HeaderField::InReplyTo,
        HeaderField::References,
        HeaderField::ListId,
        HeaderField::ListUnsubscribe,
        HeaderField::Precedence,
        HeaderField::AutoSubmitted,
    ];

    /// The header's canonical name, as written in messages.
    pub fn name(self) -> &'static str {
        match self {
            HeaderField::From => "From",
            HeaderField::Sender => "Sender",
            HeaderField::ReplyTo => "Reply-To",
            HeaderField::To => "To",
            HeaderField::Cc => "Cc",
            HeaderField::Bcc => "Bcc",
            HeaderField::Date => "Date",
            HeaderField::Subject => "Subject",
            HeaderField::MessageId => "Message-ID",
            HeaderField::InReplyTo => "In-Reply-To",
            HeaderField::References => "References",
            HeaderField::ListId => "List-Id",
            HeaderField::ListUnsubscribe => "List-Unsubscribe",
            HeaderField::Precedence => "Precedence",
            HeaderField::AutoSubmitted => "Auto-Submitted",
        }
    }

    /// The field for a header name (case-insensitive), if capture reads it.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        // Names longer than any captured one (most `X-…` and `DKIM-…` headers) are
        // rejected before comparing.
        if name.len() > "list-unsubscribe".len() {
            return None;
        }
        Self::ALL.into_iter().find(|field| {
            let known = field.name();
            known.len() == name.len() && known.eq_ignore_ascii_case(name)
        })
    }
}

/// One header as it appeared in the message: its value undecoded (RFC 2047 words and
/// folding intact), always ending with a line feed as the header parsers expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    pub field: HeaderField,
    value: Vec<u8>,
}

impl RawHeader {
    /// A header from an unfolded value, as providers' APIs return them. Line breaks
    /// inside the value become spaces so a stray one cannot cut the value short.
    pub fn new(field: HeaderField, value: impl AsRef<[u8]>) -> Self {
        let value = value.as_ref();
        let mut framed = Vec::with_capacity(value.len() + 1);
        framed.extend_from_slice(value);
        for byte in framed.iter_mut().filter(|b| matches!(b, b'\r' | b'\n')) {
            *byte = b' ';
        }
        framed.push(b'\n');
        Self {
            field,
            value: framed,
        }
    }

    /// The value bytes, ending with `\n`.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// One sighting of a message: the mailbox it was seen in, the provider's identifiers and
/// labels, and the headers capture reads. Bodies are never part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageRecord {
    /// The address of the mailbox this sighting comes from.
    pub mailbox: Option<String>,
    /// The provider's id of the message in that mailbox.
    pub provider_message_id: Option<String>,
    /// The provider's thread id, used when no header identifies the thread.
    pub provider_thread_id: Option<String>,
    /// Labels (Gmail) or folders (Microsoft, IMAP) the message carries.
    pub labels: Vec<String>,
    /// The provider's receipt time, Unix milliseconds (Gmail's `internalDate`).
    pub internal_date_ms: Option<i64>,
    /// The provider's plain-text snippet; kept only in `snippet` privacy mode.
    pub snippet: Option<String>,
    /// Captured headers in message order; repeated headers stay repeated.
    pub headers: Vec<RawHeader>,
}

// One parser for all records: only header boundaries are needed here (each captured
// value is parsed later, the same way for both input forms), so every header is skipped
// rather than parsed. The explicit `Received` entry makes the map non-empty, which is
// what makes mail-parser use the default (ignore) function for every header.
static HEADER_SPLITTER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .default_header_ignore()
        .ignore_header(HeaderName::Received)
});

impl MessageRecord {
    /// A record from a raw RFC 5322 message or its header block; any body is ignored.
    pub fn from_rfc5322(raw: &[u8]) -> Self {
        let mut record = Self::default();
        let Some(message) = HEADER_SPLITTER.parse_headers(raw) else {
            return record;
        };
        for header in message.root_part().headers() {
            let Some(field) = HeaderField::from_name(header.name()) else {
                continue;
            };
            let start = header.offset_start() as usize;
            let end = header.offset_end() as usize;
            let Some(value) = raw.get(start..end) else {
                continue;
            };
            let mut value = value.to_vec();
            // The last header of a block without a trailing newline ends at end of input.
            if value.last() != Some(&b'\n') {
                value.push(b'\n');
            }
            record.headers.push(RawHeader { field, value });
        }
        record
    }

    /// A record from (name, value) pairs with undecoded values, as Gmail's
    /// `format=metadata` returns them. Headers capture does not read are dropped.
    pub fn from_header_pairs<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let headers = pairs
            .into_iter()
            .filter_map(|(name, value)| {
                HeaderField::from_name(name.as_ref()).map(|field| RawHeader::new(field, value))
            })
            .collect();
        Self {
            headers,
            ..Self::default()
        }
    }

    /// Every value of one header, in message order.
    pub fn header_values(&self, field: HeaderField) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |header| header.field == field)
            .map(RawHeader::value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_captured_headers_from_raw_message_and_skips_body() {
        let raw = b"Received: from x by y\r\nFrom: Ann <ann@x.com>\r\nTo: bob@y.com,\r\n carl@z.com\r\nX-Other: 1\r\n\r\nFrom: body@x.com\r\n";
        let record = MessageRecord::from_rfc5322(raw);
        let fields: Vec<_> = record.headers.iter().map(|h| h.field).collect();
        assert_eq!(fields, [HeaderField::From, HeaderField::To]);
        assert_eq!(
            record.header_values(HeaderField::To).next().unwrap(),
            b" bob@y.com,\r\n carl@z.com\r\n"
        );
    }

    #[test]
    fn header_names_match_case_insensitively() {
        let record = MessageRecord::from_header_pairs([
            ("message-id", "<a@b>"),
            ("AUTO-SUBMITTED", "auto-replied"),
            ("X-Mailer", "x"),
        ]);
        let fields: Vec<_> = record.headers.iter().map(|h| h.field).collect();
        assert_eq!(fields, [HeaderField::MessageId, HeaderField::AutoSubmitted]);
    }

    #[test]
    fn pair_values_are_framed_and_stray_line_breaks_neutralized() {
        let record = MessageRecord::from_header_pairs([("To", "a@x.com,\r\nb@y.com")]);
        assert_eq!(
            record.header_values(HeaderField::To).next().unwrap(),
            b"a@x.com,  b@y.com\n"
        );
    }

    #[test]
    fn last_header_without_newline_is_kept() {
        let record = MessageRecord::from_rfc5322(b"Subject: hi\nTo: a@x.com");
        assert_eq!(
            record.header_values(HeaderField::To).next().unwrap(),
            b" a@x.com\n"
        );
    }
}
