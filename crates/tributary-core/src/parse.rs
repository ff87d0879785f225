//! Header parsing: a [`MessageRecord`]'s raw headers turned into addresses, identifiers,
//! a date and a subject, with every problem found reported rather than guessed around.

use crate::address::{AddressError, EmailAddress};
use crate::classify::Role;
use crate::message::{HeaderField, MessageRecord};
use mail_parser::parsers::MessageStream;
use mail_parser::{Addr, Address, HeaderValue};
use serde::Serialize;

/// An address read from an address header, with its decoded display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedAddress {
    pub address: EmailAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What kind of problem a header had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A mailbox entry with a display name or comment but no address.
    MissingAddress,
    /// Something in address position that is not a usable address.
    InvalidAddress,
    /// A Date header that does not parse as an RFC 5322 date.
    InvalidDate,
    /// A Message-ID header with no identifier in it.
    InvalidMessageId,
    /// No From header, or one without any address.
    MissingFrom,
    /// A header that must appear at most once appears several times.
    RepeatedHeader,
}

/// One problem found while parsing a message's headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseProblem {
    pub header: HeaderField,
    pub kind: ProblemKind,
    /// The offending text as parsed (decoded), empty when there is none.
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The parsed headers of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedHeaders {
    pub from: Vec<NamedAddress>,
    pub sender: Vec<NamedAddress>,
    pub reply_to: Vec<NamedAddress>,
    pub to: Vec<NamedAddress>,
    pub cc: Vec<NamedAddress>,
    pub bcc: Vec<NamedAddress>,
    /// The Date header as Unix seconds, when present and valid.
    pub date: Option<i64>,
    /// The decoded Subject, whitespace runs collapsed to one space, trimmed.
    pub subject: Option<String>,
    /// The normalized Message-ID (no `<>`, lowercase).
    pub message_id: Option<String>,
    /// The normalized first Message-ID of In-Reply-To.
    pub in_reply_to: Option<String>,
    /// The normalized first Message-ID of References.
    pub first_reference: Option<String>,
    pub has_list_id: bool,
    pub has_list_unsubscribe: bool,
    /// The Precedence value, trimmed and lowercased.
    pub precedence: Option<String>,
    /// The Auto-Submitted keyword (before any `;` parameter), trimmed and lowercased.
    pub auto_submitted: Option<String>,
    pub problems: Vec<ParseProblem>,
}

impl ParsedHeaders {
    /// Parses every captured header of a record. Never panics, whatever the bytes.
    pub fn parse(record: &MessageRecord) -> Self {
        let mut parsed = Self::default();
        let mut seen_once = SeenOnce::default();
        for header in &record.headers {
            let value = header.value();
            match header.field {
                HeaderField::From => {
                    seen_once.note(header.field, &mut parsed.problems);
                    parse_addresses(header.field, value, &mut parsed.from, &mut parsed.problems)
                }
                HeaderField::Sender => parse_addresses(
                    header.field,
                    value,
                    &mut parsed.sender,
                    &mut parsed.problems,
                ),
                HeaderField::ReplyTo => parse_addresses(
                    header.field,
                    value,
                    &mut parsed.reply_to,
                    &mut parsed.problems,
                ),
                HeaderField::To => {
                    parse_addresses(header.field, value, &mut parsed.to, &mut parsed.problems)
                }
                HeaderField::Cc => {
                    parse_addresses(header.field, value, &mut parsed.cc, &mut parsed.problems)
                }
                HeaderField::Bcc => {
                    parse_addresses(header.field, value, &mut parsed.bcc, &mut parsed.problems)
                }
                HeaderField::Date => {
                    if seen_once.note(header.field, &mut parsed.problems) {
                        parsed.date = parse_date(value, &mut parsed.problems);
                    }
                }
                HeaderField::Subject => {
                    if seen_once.note(header.field, &mut parsed.problems) {
                        parsed.subject = parse_subject(value);
                    }
                }
                HeaderField::MessageId => {
                    if seen_once.note(header.field, &mut parsed.problems) {
                        parsed.message_id = first_message_id(value);
                        if parsed.message_id.is_none() && !lossy_trimmed(value).is_empty() {
                            parsed.problems.push(ParseProblem {
                                header: header.field,
                                kind: ProblemKind::InvalidMessageId,
                                text: lossy_trimmed(value),
                                detail: None,
                            });
                        }
                    }
                }
                HeaderField::InReplyTo => {
                    if parsed.in_reply_to.is_none() {
                        parsed.in_reply_to = first_message_id(value);
                    }
                }
                HeaderField::References => {
                    if parsed.first_reference.is_none() {
                        parsed.first_reference = first_message_id(value);
                    }
                }
                HeaderField::ListId => parsed.has_list_id = true,
                HeaderField::ListUnsubscribe => parsed.has_list_unsubscribe = true,
                HeaderField::Precedence => {
                    if parsed.precedence.is_none() {
                        parsed.precedence = Some(lossy_trimmed(value).to_ascii_lowercase());
                    }
                }
                HeaderField::AutoSubmitted => {
                    if parsed.auto_submitted.is_none() {
                        parsed.auto_submitted = Some(auto_submitted_keyword(value));
                    }
                }
            }
        }
        if parsed.from.is_empty()
            && !parsed
                .problems
                .iter()
                .any(|problem| problem.header == HeaderField::From)
        {
            parsed.problems.push(ParseProblem {
                header: HeaderField::From,
                kind: ProblemKind::MissingFrom,
                text: String::new(),
                detail: None,
            });
        }
        parsed
    }
}

impl ParsedHeaders {
    /// Moves the participant address lists out (From, To, Cc, Bcc), leaving them empty.
    pub fn take_address_lists(&mut self) -> [(Role, Vec<NamedAddress>); 4] {
        [
            (Role::From, std::mem::take(&mut self.from)),
            (Role::To, std::mem::take(&mut self.to)),
            (Role::Cc, std::mem::take(&mut self.cc)),
            (Role::Bcc, std::mem::take(&mut self.bcc)),
        ]
    }
}

/// Tracks the headers RFC 5322 allows once, reporting a repeat the first time it occurs.
#[derive(Default)]
struct SeenOnce {
    seen: Vec<(HeaderField, usize)>,
}

impl SeenOnce {
    /// Records one occurrence; true when it is the first.
    fn note(&mut self, field: HeaderField, problems: &mut Vec<ParseProblem>) -> bool {
        match self.seen.iter_mut().find(|(seen, _)| *seen == field) {
            None => {
                self.seen.push((field, 1));
                true
            }
            Some((_, count)) => {
                *count += 1;
                if *count == 2 {
                    problems.push(ParseProblem {
                        header: field,
                        kind: ProblemKind::RepeatedHeader,
                        text: String::new(),
                        detail: None,
                    });
                }
                false
            }
        }
    }
}

fn parse_addresses(
    field: HeaderField,
    value: &[u8],
    out: &mut Vec<NamedAddress>,
    problems: &mut Vec<ParseProblem>,
) {
    match MessageStream::new(value).parse_address() {
        HeaderValue::Address(Address::List(list)) => {
            for addr in &list {
                push_address(field, addr, out, problems);
            }
        }
        HeaderValue::Address(Address::Group(groups)) => {
            // An empty group (`undisclosed-recipients:;`) rightly contributes nothing.
            for addr in groups.iter().flat_map(|group| &group.addresses) {
                push_address(field, addr, out, problems);
            }
        }
        _ => {
            // mail-parser found nothing; anything but whitespace was not an address.
            let text = lossy_trimmed(value);
            if !text.is_empty() {
                problems.push(ParseProblem {
                    header: field,
                    kind: ProblemKind::MissingAddress,
                    text,
                    detail: None,
                });
            }
        }
    }
}

fn push_address(
    field: HeaderField,
    addr: &Addr<'_>,
    out: &mut Vec<NamedAddress>,
    problems: &mut Vec<ParseProblem>,
) {
    let name = addr
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let Some(raw) = addr.address.as_deref() else {
        problems.push(ParseProblem {
            header: field,
            kind: ProblemKind::MissingAddress,
            text: name.unwrap_or_default().to_owned(),
            detail: None,
        });
        return;
    };
    match EmailAddress::parse(raw).and_then(reject_unquoted_at) {
        Ok(address) => out.push(NamedAddress {
            address,
            name: name.map(str::to_owned),
        }),
        Err(error) => problems.push(ParseProblem {
            header: field,
            kind: ProblemKind::InvalidAddress,
            text: raw.to_owned(),
            detail: Some(error.to_string()),
        }),
    }
}

/// mail-parser joins adjacent angle-addresses missing a comma (`<a@x> <b@y>`) into one
/// string; an unquoted `@` in the local part is how that shows, and accepting it would
/// invent an address.
fn reject_unquoted_at(address: EmailAddress) -> Result<EmailAddress, AddressError> {
    let local = address.local_part();
    let quoted = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    if local.contains('@') && !quoted {
        Err(AddressError::InvalidCharacter)
    } else {
        Ok(address)
    }
}

fn parse_date(value: &[u8], problems: &mut Vec<ParseProblem>) -> Option<i64> {
    match MessageStream::new(value).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => Some(date.to_timestamp()),
        _ => {
            problems.push(ParseProblem {
                header: HeaderField::Date,
                kind: ProblemKind::InvalidDate,
                text: lossy_trimmed(value),
                detail: None,
            });
            None
        }
    }
}

fn parse_subject(value: &[u8]) -> Option<String> {
    match MessageStream::new(value).parse_unstructured() {
        HeaderValue::Text(text) => Some(collapse_whitespace(&text)),
        _ => None,
    }
}

/// Every run of whitespace turned into one space, trimmed.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The first Message-ID of a header, normalized: without `<>`, lowercased.
fn first_message_id(value: &[u8]) -> Option<String> {
    let id = match MessageStream::new(value).parse_id() {
        HeaderValue::Text(id) => id.trim().to_lowercase(),
        HeaderValue::TextList(ids) => ids.first()?.trim().to_lowercase(),
        // An unclosed bracket defeats mail-parser; fall back to the contract's literal rule.
        _ => normalize_message_id(&String::from_utf8_lossy(value))?,
    };
    (!id.is_empty()).then_some(id)
}

/// The contract's Message-ID normalization: surrounding whitespace and the enclosing
/// `<` `>` removed, lowercased; `None` when nothing remains.
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let inner = trimmed.strip_prefix('<').unwrap_or(trimmed);
    let inner = inner.strip_suffix('>').unwrap_or(inner).trim();
    (!inner.is_empty()).then(|| inner.to_lowercase())
}

fn auto_submitted_keyword(value: &[u8]) -> String {
    let text = lossy_trimmed(value);
    let keyword = text.split(';').next().unwrap_or_default();
    keyword.trim().to_ascii_lowercase()
}

fn lossy_trimmed(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> ParsedHeaders {
        ParsedHeaders::parse(&MessageRecord::from_rfc5322(raw.as_bytes()))
    }

    fn addresses(list: &[NamedAddress]) -> Vec<&str> {
        list.iter().map(|a| a.address.as_str()).collect()
    }

    #[test]
    fn decodes_rfc2047_names_in_base64_and_q_encoding() {
        let parsed = parse(
            "From: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <joerg@example.de>\n\
             To: =?iso-8859-1?Q?Andr=E9_Pirard?= <PIRARD@vm1.ulg.ac.be>\n",
        );
        assert_eq!(parsed.from[0].name.as_deref(), Some("Jörg Müller"));
        assert_eq!(parsed.to[0].name.as_deref(), Some("André Pirard"));
        assert_eq!(addresses(&parsed.to), ["pirard@vm1.ulg.ac.be"]);
    }

    #[test]
    fn quoted_names_with_commas_stay_one_address() {
        let parsed = parse("To: \"Lee, Ann\" <ann@x.com>, \"Doe, Bob\" <bob@y.com>\n");
        assert_eq!(addresses(&parsed.to), ["ann@x.com", "bob@y.com"]);
        assert_eq!(parsed.to[0].name.as_deref(), Some("Lee, Ann"));
    }

    #[test]
    fn comments_are_not_addresses() {
        let parsed = parse("From: ann@x.com (Ann Lee)\nCc: (team) <bob@y.com>\n");
        assert_eq!(addresses(&parsed.from), ["ann@x.com"]);
        assert_eq!(addresses(&parsed.cc), ["bob@y.com"]);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn groups_contribute_their_members_and_empty_groups_nothing() {
        let parsed = parse(
            "From: a@x.example\n\
             To: Team: a@x.example, b@y.example;, c@z.example\n\
             Cc: undisclosed-recipients:;\n",
        );
        assert_eq!(
            addresses(&parsed.to),
            ["a@x.example", "b@y.example", "c@z.example"]
        );
        assert!(parsed.cc.is_empty());
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    }

    #[test]
    fn internationalized_domain_becomes_punycode() {
        let parsed = parse("From: Jörg <jörg@bücher.de>\n");
        assert_eq!(addresses(&parsed.from), ["jörg@xn--bcher-kva.de"]);
    }

    #[test]
    fn unparseable_addresses_are_reported_not_dropped() {
        let parsed = parse("From: a@x.com\nTo: Ann Lee, bob, <a@x.com> <b@y.com>\n");
        assert!(parsed.to.is_empty());
        let kinds: Vec<_> = parsed
            .problems
            .iter()
            .map(|p| (p.kind, &p.text[..]))
            .collect();
        assert_eq!(
            kinds,
            [
                (ProblemKind::MissingAddress, "Ann Lee"),
                (ProblemKind::MissingAddress, "bob"),
                (ProblemKind::InvalidAddress, "a@x.comb@y.com"),
            ]
        );
    }

    #[test]
    fn addresses_with_undecodable_bytes_are_reported() {
        let parsed = ParsedHeaders::parse(&MessageRecord::from_rfc5322(
            b"From: J\xf6rg <j\xf6rg@x.com>\n",
        ));
        assert!(parsed.from.is_empty());
        assert_eq!(parsed.problems[0].kind, ProblemKind::InvalidAddress);
    }

    #[test]
    fn missing_and_repeated_from_are_reported() {
        assert_eq!(
            parse("To: a@x.com\n").problems[0].kind,
            ProblemKind::MissingFrom
        );
        let parsed = parse("From: a@x.com\nFrom: b@y.com\n");
        assert_eq!(addresses(&parsed.from), ["a@x.com", "b@y.com"]);
        assert_eq!(parsed.problems[0].kind, ProblemKind::RepeatedHeader);
    }

    #[test]
    fn message_ids_are_normalized() {
        let parsed = parse(
            "From: a@x.com\nMessage-ID:  <CAF+x@Mail.Example.COM> \n\
             In-Reply-To: <P1@X> (from Ann)\nReferences: <R1@X>\n <R2@X>\n",
        );
        assert_eq!(parsed.message_id.as_deref(), Some("caf+x@mail.example.com"));
        assert_eq!(parsed.in_reply_to.as_deref(), Some("p1@x"));
        assert_eq!(parsed.first_reference.as_deref(), Some("r1@x"));
    }

    #[test]
    fn unclosed_message_id_falls_back_to_literal_rule() {
        let parsed = parse("From: a@x.com\nMessage-ID: <Abc@X\n");
        assert_eq!(parsed.message_id.as_deref(), Some("abc@x"));
    }

    #[test]
    fn date_and_subject() {
        let parsed = parse(
            "From: a@x.com\nDate: Tue, 01 Jul 2025 10:00:00 +0200\n\
             Subject: =?UTF-8?Q?Caf=C3=A9?=   talk\n\tagain \n",
        );
        assert_eq!(parsed.date, Some(1_751_356_800));
        assert_eq!(parsed.subject.as_deref(), Some("Café talk again"));
        let bad = parse("From: a@x.com\nDate: yesterday\n");
        assert_eq!(bad.date, None);
        assert_eq!(bad.problems[0].kind, ProblemKind::InvalidDate);
    }

    #[test]
    fn automated_markers_are_read() {
        let parsed = parse(
            "From: a@x.com\nPrecedence:  Bulk \nAuto-Submitted: Auto-Replied; owner=x\n\
             List-Id: <l.x.com>\n",
        );
        assert_eq!(parsed.precedence.as_deref(), Some("bulk"));
        assert_eq!(parsed.auto_submitted.as_deref(), Some("auto-replied"));
        assert!(parsed.has_list_id && !parsed.has_list_unsubscribe);
    }
}
