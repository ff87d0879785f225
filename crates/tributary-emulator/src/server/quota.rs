//! Per-method quota units, per-user and per-project budgets per (time-scaled) minute, and
//! a per-user concurrency cap, answering as Gmail does when a budget is spent.
//! Owned by the quota/faults/control work; the request handlers only call `admit`.

use super::error::ApiError;

/// The Gmail methods the emulator charges for, with Google's published unit costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GmailMethod {
    GetProfile,
    LabelsList,
    LabelsGet,
    MessagesList,
    MessagesGet,
    HistoryList,
    /// Directory `users.list` (not charged against Gmail budgets).
    DirectoryUsersList,
}

impl GmailMethod {
    pub fn units(self) -> u32 {
        match self {
            GmailMethod::GetProfile | GmailMethod::LabelsList | GmailMethod::LabelsGet => 1,
            GmailMethod::MessagesList | GmailMethod::MessagesGet => 5,
            GmailMethod::HistoryList => 2,
            GmailMethod::DirectoryUsersList => 0,
        }
    }
}

/// Held while a request runs; dropping it frees the user's concurrency slot.
#[derive(Debug)]
pub struct QuotaPermit {}

/// Quota state shared by all requests.
#[derive(Debug, Default)]
pub struct QuotaLimiter {}

impl QuotaLimiter {
    /// Charges `method` to `user`, or answers the error Gmail would give
    /// (403 `userRateLimitExceeded` / `rateLimitExceeded`, 429 for concurrency).
    pub fn admit(&self, _user: &str, _method: GmailMethod) -> Result<QuotaPermit, ApiError> {
        Ok(QuotaPermit {})
    }
}
