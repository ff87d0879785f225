//! Request counters per mailbox (user id, or `directory` for directory calls), method
//! and outcome, and refusals per mailbox and kind. The counting is the kit's
//! ([`crate::kit::counters`]); this module adds token requests and renders the report
//! in the Microsoft control API's shape.

use crate::kit::RefusalKind;
use crate::kit::counters::{self as kit, SubjectCounts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MailboxCounts {
    /// Requests answered, by method (e.g. `messages.delta`).
    pub requests: BTreeMap<String, u64>,
    /// Requests refused by throttling, by kind (`concurrency`, `window`).
    pub throttled: BTreeMap<String, u64>,
    /// Error answers other than throttling, by Graph error code.
    pub errors: BTreeMap<String, u64>,
}

impl From<&SubjectCounts> for MailboxCounts {
    fn from(counts: &SubjectCounts) -> Self {
        MailboxCounts {
            requests: counts
                .methods
                .iter()
                .map(|(method, counts)| (method.to_string(), counts.requests))
                .collect(),
            throttled: counts.refused.by_name(),
            errors: counts.errors.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CountersSnapshot {
    pub total_requests: u64,
    pub total_throttled: u64,
    pub token_requests: u64,
    pub mailboxes: BTreeMap<String, MailboxCounts>,
}

#[derive(Debug, Default)]
pub struct Counters {
    inner: kit::Counters,
    token_requests: AtomicU64,
}

impl Counters {
    pub fn record_request(&self, mailbox: &str, method: &'static str) {
        self.inner.record_request(mailbox, method, 0);
    }

    pub fn record_throttled(&self, mailbox: &str, kind: RefusalKind) {
        self.inner.record_refusal(mailbox, None, kind);
    }

    pub fn record_error(&self, mailbox: &str, code: &str) {
        self.inner.record_error(mailbox, code);
    }

    pub fn record_token_request(&self) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let snapshot = self.inner.snapshot();
        CountersSnapshot {
            total_requests: snapshot.total().requests,
            total_throttled: snapshot.refused().total(),
            token_requests: self.token_requests.load(Ordering::Relaxed),
            mailboxes: snapshot
                .subjects
                .iter()
                .map(|(mailbox, counts)| (mailbox.clone(), counts.into()))
                .collect(),
        }
    }

    pub fn reset(&self) {
        self.inner.reset();
        self.token_requests.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_count_methods_throttling_kinds_and_error_codes() {
        let counters = Counters::default();
        counters.record_request("u1", "messages.delta");
        counters.record_throttled("u1", RefusalKind::Concurrency);
        counters.record_request("u1", "messages.delta");
        counters.record_request("directory", "users.list");
        counters.record_error("directory", "Authorization_RequestDenied");
        counters.record_token_request();

        let snapshot = counters.snapshot();
        assert_eq!(snapshot.total_requests, 3);
        assert_eq!(snapshot.total_throttled, 1);
        assert_eq!(snapshot.token_requests, 1);
        let u1 = &snapshot.mailboxes["u1"];
        assert_eq!(u1.requests["messages.delta"], 2);
        assert_eq!(u1.throttled, BTreeMap::from([("concurrency".into(), 1)]));
        assert!(u1.errors.is_empty());
        assert_eq!(
            snapshot.mailboxes["directory"].errors["Authorization_RequestDenied"],
            1
        );
        assert_eq!(
            serde_json::to_value(&snapshot).unwrap()["mailboxes"]["u1"]["throttled"],
            serde_json::json!({"concurrency": 1})
        );

        counters.reset();
        assert_eq!(counters.snapshot(), CountersSnapshot::default());
    }
}
