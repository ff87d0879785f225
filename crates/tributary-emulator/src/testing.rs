//! Test support for crates that run the emulator in their own tests (feature `testing`).

pub mod push_receiver;
pub mod trap;

pub use push_receiver::{Delivery, PushReceiver};

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Up to this many differences of each kind are shown.
const SHOWN: usize = 15;

/// A client of the emulator's control API (`docs/emulator-control.md`) for tests: every
/// call must succeed, and a failing one panics with the emulator's answer.
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
}

impl ControlClient {
    /// A client of the control API at `control_url` (`emulator.json`'s `control_url`).
    pub fn new(control_url: &str) -> Self {
        ControlClient {
            http: reqwest::Client::new(),
            base: control_url.trim_end_matches('/').to_string(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.expect("the control API answers");
        let status = response.status();
        let body: Value = response.json().await.expect("the control API answers JSON");
        assert!(status.is_success(), "control call failed: {status} {body}");
        body
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Value {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.send(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Value {
        self.send(self.http.put(self.url(path)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.send(self.http.patch(self.url(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Value {
        self.send(self.http.delete(self.url(path))).await
    }
}

/// Differences from the ground truth, collected by kind and reported all at once, so a
/// failing comparison shows the whole picture rather than its first mismatch.
#[derive(Debug, Default)]
pub struct Differences(BTreeMap<&'static str, Vec<String>>);

impl Differences {
    pub fn add(&mut self, kind: &'static str, detail: String) {
        self.0.entry(kind).or_default().push(detail);
    }

    /// Records a difference of `kind` for `key` when `got` is not `expected`.
    pub fn compare<T: PartialEq + Debug>(
        &mut self,
        kind: &'static str,
        key: &str,
        got: T,
        expected: T,
    ) {
        if got != expected {
            self.add(kind, format!("{key}: got {got:?}, truth {expected:?}"));
        }
    }

    /// Panics with every difference found; `subject` names what was compared.
    pub fn assert_none(&self, subject: &str) {
        if self.0.is_empty() {
            return;
        }
        let mut report = format!("{subject} differs from the ground truth:\n");
        for (kind, details) in &self.0 {
            report.push_str(&format!("- {kind}: {} difference(s)\n", details.len()));
            for detail in details.iter().take(SHOWN) {
                report.push_str(&format!("    {detail}\n"));
            }
        }
        panic!("{report}");
    }
}

/// A ground-truth time (RFC 3339) in Unix milliseconds.
pub fn truth_time_ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("truth time {rfc3339:?}: {e}"))
        .timestamp_millis()
}

/// A value's JSON form as text: a JSON string unquoted, anything else as JSON. Compares
/// enums of two crates by the names they serialize to.
pub fn json_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value).expect("serializes") {
        Value::String(s) => s,
        other => other.to_string(),
    }
}
