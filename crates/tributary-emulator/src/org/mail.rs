//! The structured model of the generated mail: every RFC message with its header values as
//! structured data, and which mailboxes hold a copy with which labels. The ground truth is
//! computed from this model; the rendered bytes are derived from it.

use std::collections::BTreeSet;

/// Index into [`crate::org::people::Population::people`].
pub type PersonId = usize;

/// One address as it appears in a header: the person it belongs to and the exact
/// spelling used (an alias, or mixed case, as a sender may have typed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    pub person: PersonId,
    pub address: String,
}

/// One entry of a To or Cc header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    One(Addressee),
    /// RFC 5322 group syntax: `name: a@x, b@y;`. An empty group renders as `name:;`.
    Group {
        name: String,
        members: Vec<Addressee>,
    },
}

impl Recipient {
    pub fn addressees(&self) -> &[Addressee] {
        match self {
            Recipient::One(one) => std::slice::from_ref(one),
            Recipient::Group { members, .. } => members,
        }
    }
}

/// The valid RFC 5322 Date forms the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// `Tue, 4 Mar 2025 09:15:02 +0900`
    Standard,
    /// `Tue, 04 Mar 2025 09:15:02 +0900`
    PaddedDay,
    /// `4 Mar 2025 09:15:02 +0900`
    NoWeekday,
    /// `Tue, 04 Mar 2025 00:15:02 +0000 (UTC)`, always in UTC.
    UtcComment,
    /// `Tue, 4 Mar 2025 00:15:02 GMT` (obsolete zone), always in UTC.
    Gmt,
    /// `Tue, 4 Mar 2025 09:15 +0900`: seconds are optional.
    NoSeconds,
}

/// A Date header: the instant it denotes (whole seconds) and how it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderDate {
    pub unix_seconds: i64,
    pub utc_offset_minutes: i32,
    pub style: DateStyle,
}

/// Headers that mark mail as automated. Values are written exactly as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Automation {
    pub list_unsubscribe: Option<String>,
    pub list_id: Option<String>,
    pub precedence: Option<&'static str>,
    pub auto_submitted: Option<&'static str>,
}

/// The software that wrote a message: decides Message-ID shape, header order and
/// spelling, X-Mailer and Date style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailer {
    Gmail,
    Outlook,
    AppleMail,
    Thunderbird,
    /// A free-mail provider's web client other than Gmail and Outlook.
    Webmail,
    /// A script or old client: terse headers, sometimes no Message-ID.
    Script,
    /// A bulk-mail service sending newsletters.
    Campaign,
}

/// One mailbox's copy of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCopy {
    /// The mailbox owner's primary address (lowercase).
    pub mailbox: String,
    pub labels: BTreeSet<String>,
    pub internal_date_ms: i64,
    /// Only the sender's own copy carries the Bcc header.
    pub carries_bcc: bool,
    /// The address the copy was delivered to (recipients' copies only).
    pub delivered_to: Option<String>,
}

/// One RFC 5322 message, structured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMessage {
    /// The conversation it belongs to (generator-wide thread number).
    pub thread: usize,
    pub from: Addressee,
    pub reply_to: Option<Addressee>,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub bcc: Vec<Addressee>,
    /// Decoded; `None` writes no Subject header.
    pub subject: Option<String>,
    /// `None` writes no Date header.
    pub date: Option<HeaderDate>,
    /// Without angle brackets; `None` writes no Message-ID header.
    pub message_id: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub automation: Automation,
    pub mailer: Mailer,
    pub body: String,
    pub copies: Vec<PlannedCopy>,
}

impl PlannedMessage {
    /// Every To and Cc address, group members included, in header order.
    pub fn to_and_cc(&self) -> impl Iterator<Item = &Addressee> {
        self.to
            .iter()
            .chain(&self.cc)
            .flat_map(Recipient::addressees)
    }
}

/// Everything the generator planned.
#[derive(Debug, Clone, Default)]
pub struct MailPlan {
    pub messages: Vec<PlannedMessage>,
}
