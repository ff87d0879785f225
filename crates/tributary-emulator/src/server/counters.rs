//! Counters the control API reports: requests and quota units per user and method, and
//! rate-limit answers given. (Refusals by kind are tallied by the quota limiter and
//! injected faults by the fault switch; the control API reports all three together.)

use super::quota::GmailMethod;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

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

impl MethodCounts {
    fn add(&mut self, other: &MethodCounts) {
        self.requests += other.requests;
        self.units += other.units;
        self.rate_limited += other.rate_limited;
    }
}

type UserCounts = [MethodCounts; GmailMethod::ALL.len()];

/// One user's counts, per method (by Google's method name) and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserCountsSnapshot {
    pub total: MethodCounts,
    pub methods: BTreeMap<&'static str, MethodCounts>,
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
    users: Mutex<HashMap<String, UserCounts>>,
}

impl Counters {
    fn with_user(&self, user: &str, update: impl FnOnce(&mut UserCounts)) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        // Look up by reference first so the common case allocates nothing.
        match users.get_mut(user) {
            Some(counts) => update(counts),
            None => update(users.entry(user.to_string()).or_default()),
        }
    }

    /// One request answered (successfully or not) for `user`, charged `units`.
    pub fn record_request(&self, user: &str, method: GmailMethod, units: u32) {
        self.with_user(user, |counts| {
            let entry = &mut counts[method.index()];
            entry.requests += 1;
            entry.units += u64::from(units);
        });
    }

    /// One rate-limit answer given (403 rate limit or 429).
    pub fn record_rate_limited(&self, user: &str, method: GmailMethod) {
        self.with_user(user, |counts| counts[method.index()].rate_limited += 1);
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let mut snapshot = CountersSnapshot::default();
        for (user, counts) in users.iter() {
            let mut per_user = UserCountsSnapshot::default();
            for (method, entry) in GmailMethod::ALL.iter().zip(counts) {
                if *entry == MethodCounts::default() {
                    continue;
                }
                per_user.total.add(entry);
                per_user.methods.insert(method.api_name(), *entry);
                snapshot
                    .methods
                    .entry(method.api_name())
                    .or_default()
                    .add(entry);
            }
            snapshot.total.add(&per_user.total);
            snapshot.users.insert(user.clone(), per_user);
        }
        snapshot
    }

    pub fn reset(&self) {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
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
        counters.record_rate_limited("b@x.example", GmailMethod::MessagesGet);

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
