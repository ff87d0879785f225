//! Test support for crates that run the emulator in their own tests (feature `testing`).

use serde_json::Value;

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
