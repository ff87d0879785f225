//! Recognizing automated mail (newsletters, notifications, auto-replies, bounces), which
//! capture excludes by default. The rules and their order are the capture contract's.

use crate::parse::ParsedHeaders;
use serde::Serialize;

/// Why a message counts as automated: the first rule that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutomatedReason {
    /// A List-Unsubscribe header is present.
    ListUnsubscribe,
    /// A List-Id header is present.
    ListId,
    /// Precedence is `bulk`, `list` or `junk`.
    Precedence,
    /// Auto-Submitted is present and not `no`.
    AutoSubmitted,
    /// A From local part that only machines use (`noreply`, `mailer-daemon`, …).
    NoReplySender,
}

/// From local parts (lowercased, `+tag` removed) that mark a machine sender.
const NO_REPLY_LOCAL_PARTS: [&str; 10] = [
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "mailer-daemon",
    "postmaster",
    "bounce",
    "bounces",
];

/// Local-part prefixes that mark a machine sender (`noreply-billing@…`).
const NO_REPLY_PREFIXES: [&str; 2] = ["noreply-", "no-reply-"];

/// The reason a message is automated, or `None` for mail a person sent.
pub fn automated_reason(headers: &ParsedHeaders) -> Option<AutomatedReason> {
    if headers.has_list_unsubscribe {
        Some(AutomatedReason::ListUnsubscribe)
    } else if headers.has_list_id {
        Some(AutomatedReason::ListId)
    } else if matches!(
        headers.precedence.as_deref(),
        Some("bulk" | "list" | "junk")
    ) {
        Some(AutomatedReason::Precedence)
    } else if headers
        .auto_submitted
        .as_deref()
        .is_some_and(|keyword| keyword != "no")
    {
        Some(AutomatedReason::AutoSubmitted)
    } else if headers
        .from
        .iter()
        .any(|from| is_no_reply_local_part(from.address.local_part()))
    {
        Some(AutomatedReason::NoReplySender)
    } else {
        None
    }
}

/// True for a local part (already lowercase) that only machines send from.
pub fn is_no_reply_local_part(local_part: &str) -> bool {
    let untagged = local_part.split('+').next().unwrap_or(local_part);
    NO_REPLY_LOCAL_PARTS.contains(&untagged)
        || NO_REPLY_PREFIXES
            .iter()
            .any(|prefix| untagged.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageRecord;

    fn reason(raw: &str) -> Option<AutomatedReason> {
        automated_reason(&ParsedHeaders::parse(&MessageRecord::from_rfc5322(
            raw.as_bytes(),
        )))
    }

    #[test]
    fn person_to_person_mail_is_not_automated() {
        assert_eq!(reason("From: ann@x.com\nPrecedence: first-class\n"), None);
        assert_eq!(reason("From: ann@x.com\nAuto-Submitted: No\n"), None);
        assert_eq!(reason("From: noreplying@x.com\n"), None);
    }

    #[test]
    fn first_matching_rule_wins() {
        assert_eq!(
            reason("From: noreply@x.com\nList-Id: <a>\nList-Unsubscribe: <mailto:u@x.com>\n"),
            Some(AutomatedReason::ListUnsubscribe)
        );
        assert_eq!(
            reason("From: noreply@x.com\nList-Id: <a.x.com>\nPrecedence: bulk\n"),
            Some(AutomatedReason::ListId)
        );
        assert_eq!(
            reason("From: noreply@x.com\nPrecedence: JUNK\nAuto-Submitted: auto-generated\n"),
            Some(AutomatedReason::Precedence)
        );
        assert_eq!(
            reason("From: noreply@x.com\nAuto-Submitted: auto-replied\n"),
            Some(AutomatedReason::AutoSubmitted)
        );
    }

    #[test]
    fn no_reply_senders_are_recognized_with_tags_and_prefixes() {
        for from in [
            "NoReply@x.com",
            "no-reply+abc@x.com",
            "do_not_reply@x.com",
            "MAILER-DAEMON@x.com",
            "bounces+123@x.com",
            "noreply-billing@x.com",
            "no-reply-alerts@x.com",
        ] {
            assert_eq!(
                reason(&format!("From: {from}\n")),
                Some(AutomatedReason::NoReplySender),
                "{from}"
            );
        }
    }
}
