//! Counters the control API reports: requests and quota units per user and method, and
//! rate-limit answers given.

use super::quota::GmailMethod;

#[derive(Debug, Default)]
pub struct Counters {}

impl Counters {
    /// One request answered (successfully or not) for `user`.
    pub fn record_request(&self, _user: &str, _method: GmailMethod, _units: u32) {}
    /// One rate-limit answer given (403 rate limit or 429).
    pub fn record_rate_limited(&self, _user: &str, _method: GmailMethod) {}
}
