//! Counters the control API reports: requests and quota units per user and method, and
//! rate-limit answers given. The counting is the kit's ([`crate::kit::counters`]); this
//! module keys it by Gmail method and renders it in the Google report's shape. (Refusals
//! by kind are also tallied by the quota limiter and injected faults by the fault
//! switch; the control API reports all three together.)

use super::quota::GmailMethod;
use crate::kit::RefusalKind;
use crate::kit::counters::{self as kit, SubjectCounts};
use serde::Serialize;
use std::collections::BTreeMap;

/// Counts for one (user, method).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MethodCounts {
    /// Requests answered, successfully or not (rate-limited ones included).
    pub requests: u64,
    /// Quota units charged.
    pub units: u64,
    /// Rate-limit answers given (403 rate limit or 429).
    pub rate_limited: u64,
}

impl From<kit::MethodCounts> for MethodCounts {
    fn from(counts: kit::MethodCounts) -> Self {
        MethodCounts {
            requests: counts.requests,
            units: counts.units,
            rate_limited: counts.refused,
        }
    }
}

/// One user's counts, per method (by Google's method name) and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserCountsSnapshot {
    pub total: MethodCounts,
    pub methods: BTreeMap<&'static str, MethodCounts>,
}

impl From<&SubjectCounts> for UserCountsSnapshot {
    fn from(counts: &SubjectCounts) -> Self {
        UserCountsSnapshot {
            total: counts.total().into(),
            methods: methods(&counts.methods),
        }
    }
}

fn methods(
    counts: &BTreeMap<&'static str, kit::MethodCounts>,
) -> BTreeMap<&'static str, MethodCounts> {
    counts
        .iter()
        .map(|(method, counts)| (*method, MethodCounts::from(*counts)))
        .collect()
}

/// Everything counted since start (or the last reset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CountersSnapshot {
    pub total: MethodCounts,
    /// Per method over all users.
    pub methods: BTreeMap<&'static str, MethodCounts>,
    /// Keyed by the user address the handlers reported.
    pub users: BTreeMap<String, UserCountsSnapshot>,
}

#[derive(Debug, Default)]
pub struct Counters {
    inner: kit::Counters,
}

impl Counters {
    /// One request answered (successfully or not) for `user`, charged `units`.
    pub fn record_request(&self, user: &str, method: GmailMethod, units: u32) {
        self.inner.record_request(user, method.api_name(), units);
    }

    /// One rate-limit answer given (403 rate limit or 429) by the limit of `kind`.
    pub fn record_rate_limited(&self, user: &str, method: GmailMethod, kind: RefusalKind) {
        self.inner
            .record_refusal(user, Some(method.api_name()), kind);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let snapshot = self.inner.snapshot();
        CountersSnapshot {
            total: snapshot.total().into(),
            methods: methods(&snapshot.methods()),
            users: snapshot
                .subjects
                .iter()
                .map(|(user, counts)| (user.clone(), counts.into()))
                .collect(),
        }
    }

    pub fn reset(&self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_user_and_method_with_totals() {
        let counters = Counters::default();
        counters.record_request("a@x.example", GmailMethod::MessagesGet, 5);
        counters.record_request("a@x.example", GmailMethod::MessagesGet, 5);
        counters.record_request("a@x.example", GmailMethod::HistoryList, 2);
        counters.record_request("b@x.example", GmailMethod::MessagesGet, 0);
        counters.record_rate_limited("b@x.example", GmailMethod::MessagesGet, RefusalKind::Window);

        let snapshot = counters.snapshot();
        let a = &snapshot.users["a@x.example"];
        assert_eq!(
            a.methods["users.messages.get"],
            MethodCounts {
                requests: 2,
                units: 10,
                rate_limited: 0
            }
        );
        assert_eq!(a.total.units, 12);
        assert_eq!(
            snapshot.methods["users.messages.get"],
            MethodCounts {
                requests: 3,
                units: 10,
                rate_limited: 1
            }
        );
        assert_eq!(
            snapshot.total,
            MethodCounts {
                requests: 4,
                units: 12,
                rate_limited: 1
            }
        );
        assert!(!a.methods.contains_key("users.getProfile"));
    }

    #[test]
    fn reset_forgets_everything() {
        let counters = Counters::default();
        counters.record_request("a@x.example", GmailMethod::GetProfile, 1);
        counters.reset();
        assert_eq!(counters.snapshot(), CountersSnapshot::default());
    }
}
