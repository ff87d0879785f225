//! Keys that make one activity of one RFC message however many mailboxes see it
//! (dedupe key), and group messages into conversations (thread key).

use crate::parse::ParsedHeaders;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// One activity per RFC message across a tenant's mailboxes: `mid:<normalized
/// Message-ID>`, or `hash:<sha256>` of sender, date, subject and recipients without one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DedupeKey(String);

impl DedupeKey {
    /// The key of a parsed message, as the capture contract defines it.
    pub fn for_headers(headers: &ParsedHeaders) -> Self {
        match &headers.message_id {
            Some(id) => Self(format!("mid:{id}")),
            None => Self::content_hash(headers),
        }
    }

    /// The key of a message without Message-ID: the lowercase hex SHA-256 of
    /// `FROM \n DATE \n SUBJECT \n RECIPIENTS` (first From address; Date in Unix seconds;
    /// decoded subject with whitespace collapsed; distinct To and Cc addresses sorted
    /// bytewise and joined with `,`; each part empty when missing). Bcc is left out
    /// because only the sender's copy carries it.
    pub fn content_hash(headers: &ParsedHeaders) -> Self {
        let mut recipients: Vec<&str> = headers
            .to
            .iter()
            .chain(&headers.cc)
            .map(|recipient| recipient.address.as_str())
            .collect();
        recipients.sort_unstable();
        recipients.dedup();

        let mut hasher = Sha256::new();
        if let Some(from) = headers.from.first() {
            hasher.update(from.address.as_str());
        }
        hasher.update("\n");
        if let Some(date) = headers.date {
            hasher.update(date.to_string());
        }
        hasher.update("\n");
        if let Some(subject) = &headers.subject {
            hasher.update(subject);
        }
        hasher.update("\n");
        hasher.update(recipients.join(","));
        Self(format!("hash:{}", hex::encode(hasher.finalize())))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The conversation a message belongs to: `mid:` + the thread's root Message-ID as the
/// headers name it, else `provider:` + the provider's thread id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ThreadKey(String);

impl ThreadKey {
    /// First Message-ID of References, else In-Reply-To's, else the message's own,
    /// else the provider's thread id; `None` when there is none of them.
    pub fn for_headers(headers: &ParsedHeaders, provider_thread_id: Option<&str>) -> Option<Self> {
        let root = headers
            .first_reference
            .as_ref()
            .or(headers.in_reply_to.as_ref())
            .or(headers.message_id.as_ref());
        if let Some(id) = root {
            return Some(Self(format!("mid:{id}")));
        }
        provider_thread_id
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| Self(format!("provider:{id}")))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ThreadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageRecord;

    fn headers(raw: &str) -> ParsedHeaders {
        ParsedHeaders::parse(&MessageRecord::from_rfc5322(raw.as_bytes()))
    }

    #[test]
    fn message_id_key_is_normalized() {
        let parsed = headers("From: a@x.com\nMessage-ID: <CAF+x@Mail.Example.COM>\n");
        assert_eq!(
            DedupeKey::for_headers(&parsed).as_str(),
            "mid:caf+x@mail.example.com"
        );
    }

    #[test]
    fn hash_key_matches_the_contract_formula() {
        let parsed = headers(
            "From: Ann <Ann@X.com>, b@y.com\nDate: Tue, 01 Jul 2025 10:00:00 +0200\n\
             Subject:  Hello \t  world \nTo: Zed@z.com, a2@x.com\nCc: a2@x.com\nBcc: hidden@h.com\n",
        );
        let preimage = "ann@x.com\n1751356800\nHello world\na2@x.com,zed@z.com";
        let expected = format!("hash:{}", hex::encode(Sha256::digest(preimage)));
        assert_eq!(DedupeKey::for_headers(&parsed).as_str(), expected);
    }

    #[test]
    fn hash_key_ignores_bcc_and_recipient_order() {
        let sender_copy = headers("From: a@x.com\nTo: b@y.com, c@z.com\nBcc: d@w.com\n");
        let recipient_copy = headers("From: a@x.com\nTo: C@Z.com,  b@y.com\n");
        assert_eq!(
            DedupeKey::for_headers(&sender_copy),
            DedupeKey::for_headers(&recipient_copy)
        );
    }

    #[test]
    fn hash_key_of_an_empty_message_hashes_empty_parts() {
        let expected = format!("hash:{}", hex::encode(Sha256::digest("\n\n\n")));
        assert_eq!(DedupeKey::for_headers(&headers("")).as_str(), expected);
    }

    #[test]
    fn thread_key_prefers_references_then_in_reply_to_then_own_id() {
        let all = headers("Message-ID: <m@x>\nIn-Reply-To: <p@x>\nReferences: <Root@X> <p@x>\n");
        assert_eq!(
            ThreadKey::for_headers(&all, Some("t1")).unwrap().as_str(),
            "mid:root@x"
        );
        let reply = headers("Message-ID: <m@x>\nIn-Reply-To: <p@x>\n");
        assert_eq!(
            ThreadKey::for_headers(&reply, None).unwrap().as_str(),
            "mid:p@x"
        );
        let first = headers("Message-ID: <m@x>\n");
        assert_eq!(
            ThreadKey::for_headers(&first, None).unwrap().as_str(),
            "mid:m@x"
        );
        let bare = headers("Subject: hi\n");
        assert_eq!(
            ThreadKey::for_headers(&bare, Some("18c2f"))
                .unwrap()
                .as_str(),
            "provider:18c2f"
        );
        assert_eq!(ThreadKey::for_headers(&bare, None), None);
    }
}
