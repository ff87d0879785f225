//! Request counters every provider keeps the same way: per subject (a user or mailbox,
//! or a provider's own bucket such as Graph's `directory`), per method (the provider's
//! method names), quota units charged, refusals by neutral kind, and error answers by
//! the provider's error code. Each provider renders a snapshot in its own report shape.

use super::bucket::RefusalKind;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// Counts for one method (of one subject, or summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MethodCounts {
    /// Requests answered, successfully or not (refused ones included).
    pub requests: u64,
    /// Quota units charged (providers without units charge 0).
    pub units: u64,
    /// Requests refused by a limit.
    pub refused: u64,
}

impl MethodCounts {
    pub fn add(&mut self, other: &MethodCounts) {
        self.requests += other.requests;
        self.units += other.units;
        self.refused += other.refused;
    }
}

/// Refusals by the limit that refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefusalCounts {
    pub concurrency: u64,
    pub window: u64,
    pub shared: u64,
}

impl RefusalCounts {
    pub fn get(&self, kind: RefusalKind) -> u64 {
        match kind {
            RefusalKind::Concurrency => self.concurrency,
            RefusalKind::Window => self.window,
            RefusalKind::Shared => self.shared,
        }
    }

    fn bump(&mut self, kind: RefusalKind) {
        match kind {
            RefusalKind::Concurrency => self.concurrency += 1,
            RefusalKind::Window => self.window += 1,
            RefusalKind::Shared => self.shared += 1,
        }
    }

    pub fn add(&mut self, other: &RefusalCounts) {
        self.concurrency += other.concurrency;
        self.window += other.window;
        self.shared += other.shared;
    }

    pub fn total(&self) -> u64 {
        self.concurrency + self.window + self.shared
    }

    /// The kinds with a count, by name (`concurrency`, `window`, `shared`).
    pub fn by_name(&self) -> BTreeMap<String, u64> {
        RefusalKind::ALL
            .into_iter()
            .filter(|kind| self.get(*kind) > 0)
            .map(|kind| (kind.name().to_string(), self.get(kind)))
            .collect()
    }
}

/// Everything counted for one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectCounts {
    pub methods: BTreeMap<&'static str, MethodCounts>,
    pub refused: RefusalCounts,
    /// Error answers other than refusals, by the provider's error code.
    pub errors: BTreeMap<String, u64>,
}

impl SubjectCounts {
    /// Summed over the methods.
    pub fn total(&self) -> MethodCounts {
        let mut total = MethodCounts::default();
        for counts in self.methods.values() {
            total.add(counts);
        }
        total
    }
}

/// Everything counted since start (or the last reset), by subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CountersSnapshot {
    pub subjects: BTreeMap<String, SubjectCounts>,
}

impl CountersSnapshot {
    /// Summed over subjects and methods.
    pub fn total(&self) -> MethodCounts {
        let mut total = MethodCounts::default();
        for subject in self.subjects.values() {
            total.add(&subject.total());
        }
        total
    }

    /// Per method, summed over subjects.
    pub fn methods(&self) -> BTreeMap<&'static str, MethodCounts> {
        let mut methods = BTreeMap::<&'static str, MethodCounts>::new();
        for subject in self.subjects.values() {
            for (method, counts) in &subject.methods {
                methods.entry(method).or_default().add(counts);
            }
        }
        methods
    }

    /// Refusals by kind, summed over subjects.
    pub fn refused(&self) -> RefusalCounts {
        let mut refused = RefusalCounts::default();
        for subject in self.subjects.values() {
            refused.add(&subject.refused);
        }
        refused
    }
}

#[derive(Debug, Default)]
pub struct Counters {
    subjects: Mutex<HashMap<String, SubjectCounts>>,
}

impl Counters {
    fn with_subject(&self, subject: &str, update: impl FnOnce(&mut SubjectCounts)) {
        let mut subjects = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        // Look up by reference first so the common case allocates nothing.
        match subjects.get_mut(subject) {
            Some(counts) => update(counts),
            None => update(subjects.entry(subject.to_string()).or_default()),
        }
    }

    /// One request answered (successfully or not) for `subject`, charged `units`.
    pub fn record_request(&self, subject: &str, method: &'static str, units: u32) {
        self.with_subject(subject, |counts| {
            let entry = counts.methods.entry(method).or_default();
            entry.requests += 1;
            entry.units += u64::from(units);
        });
    }

    /// One request refused by a limit of `kind`; `method` when the refusal is known to
    /// concern one (the request itself is counted by [`Counters::record_request`]).
    pub fn record_refusal(&self, subject: &str, method: Option<&'static str>, kind: RefusalKind) {
        self.with_subject(subject, |counts| {
            counts.refused.bump(kind);
            if let Some(method) = method {
                counts.methods.entry(method).or_default().refused += 1;
            }
        });
    }

    /// One error answer (other than a refusal) with the provider's `code`.
    pub fn record_error(&self, subject: &str, code: &str) {
        self.with_subject(subject, |counts| match counts.errors.get_mut(code) {
            Some(count) => *count += 1,
            None => {
                counts.errors.insert(code.to_string(), 1);
            }
        });
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let subjects = self.subjects.lock().unwrap_or_else(PoisonError::into_inner);
        CountersSnapshot {
            subjects: subjects
                .iter()
                .map(|(subject, counts)| (subject.clone(), counts.clone()))
                .collect(),
        }
    }

    pub fn reset(&self) {
        self.subjects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_subject_method_refusal_kind_and_error_code() {
        let counters = Counters::default();
        counters.record_request("a", "get", 5);
        counters.record_request("a", "get", 5);
        counters.record_request("a", "list", 2);
        counters.record_refusal("a", Some("get"), RefusalKind::Window);
        counters.record_request("a", "get", 0);
        counters.record_refusal("b", None, RefusalKind::Concurrency);
        counters.record_request("b", "get", 0);
        counters.record_error("b", "ErrorItemNotFound");
        counters.record_error("b", "ErrorItemNotFound");

        let snapshot = counters.snapshot();
        let a = &snapshot.subjects["a"];
        assert_eq!(
            a.methods["get"],
            MethodCounts {
                requests: 3,
                units: 10,
                refused: 1
            }
        );
        assert_eq!(a.total().units, 12);
        assert_eq!(a.refused.window, 1);
        let b = &snapshot.subjects["b"];
        assert_eq!(b.methods["get"].refused, 0, "no method was named");
        assert_eq!(
            b.refused.by_name(),
            BTreeMap::from([("concurrency".into(), 1)])
        );
        assert_eq!(b.errors["ErrorItemNotFound"], 2);
        assert_eq!(
            snapshot.methods()["get"],
            MethodCounts {
                requests: 4,
                units: 10,
                refused: 1
            }
        );
        assert_eq!(snapshot.total().requests, 5);
        assert_eq!(snapshot.refused().total(), 2);
    }

    #[test]
    fn reset_forgets_everything() {
        let counters = Counters::default();
        counters.record_request("a", "get", 1);
        counters.record_error("a", "x");
        counters.reset();
        assert_eq!(counters.snapshot(), CountersSnapshot::default());
    }
}
