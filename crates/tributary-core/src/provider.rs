//! What every connector (Google, Microsoft, IMAP) hands the sync engine besides message
//! records: the provider-neutral error taxonomy and directory accounts. Pure: no I/O.
//!
//! Each error keeps the provider's own words (its message, and the HTTP status and
//! reason code when there was one), because that text is what lets an administrator fix
//! the cause; the kind decides what the engine does and which link status the admin sees.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// The provider's own account of a failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProviderDetail {
    /// The provider's message, verbatim (Google's `error_description` or `error.message`).
    pub message: String,
    /// The HTTP status, when the failure was an HTTP answer.
    pub status: Option<u16>,
    /// The provider's machine-readable code: Google's `error` (`invalid_grant`) or
    /// `errors[].reason` (`userRateLimitExceeded`), Graph's `error.code`.
    pub reason: Option<String>,
}

impl ProviderDetail {
    pub fn new(message: impl Into<String>) -> Self {
        ProviderDetail {
            message: message.into(),
            status: None,
            reason: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

impl fmt::Display for ProviderDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.status, &self.reason) {
            (Some(status), Some(reason)) => write!(f, " (HTTP {status}, {reason})"),
            (Some(status), None) => write!(f, " (HTTP {status})"),
            (None, Some(reason)) => write!(f, " ({reason})"),
            (None, None) => Ok(()),
        }
    }
}

/// A connector failure, classified by what it takes to get past it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProviderError {
    /// The credentials themselves are rejected: a deleted or malformed key, a disabled
    /// service account, an impersonated user who does not exist (any more). Retrying
    /// cannot help; an administrator must act.
    #[error("authentication failed: {0}")]
    AuthenticationError(ProviderDetail),
    /// The credentials are valid but not allowed to do this: a scope not delegated, the
    /// app restricted by the admin, the mail service off for the user.
    #[error("not authorized: {0}")]
    Unauthorized(ProviderDetail),
    /// Worth retrying later: 5xx, throttling, timeouts, connection failures.
    /// `retry_after` is the provider's hint, when it gave one.
    #[error("temporary failure: {detail}{}", RetryHint(*.retry_after))]
    Transient {
        detail: ProviderDetail,
        retry_after: Option<Duration>,
    },
    /// The incremental cursor (history id, delta link, sync token) is no longer valid:
    /// the stream needs a full resync, after which everything is fine again.
    #[error("sync cursor no longer valid: {0}")]
    CursorGone(ProviderDetail),
    /// Anything else: a malformed answer, a request the provider refused as invalid.
    #[error("provider error: {0}")]
    Other(ProviderDetail),
}

struct RetryHint(Option<Duration>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(wait) => write!(f, "; retry after {:.3} s", wait.as_secs_f64()),
            None => Ok(()),
        }
    }
}

/// The kind of a [`ProviderError`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderErrorKind {
    AuthenticationError,
    Unauthorized,
    Transient,
    CursorGone,
    Other,
}

/// The error statuses of a mailbox link, as the admin console shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkErrorStatus {
    AuthenticationError,
    Unauthorized,
    LinkageError,
}

impl LinkErrorStatus {
    /// The status as stored and shown: `authentication_error`, `unauthorized`,
    /// `linkage_error`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkErrorStatus::AuthenticationError => "authentication_error",
            LinkErrorStatus::Unauthorized => "unauthorized",
            LinkErrorStatus::LinkageError => "linkage_error",
        }
    }

    /// Whether the link stays stopped until an administrator restarts it (the first two),
    /// rather than being retried with backoff (`linkage_error`).
    pub fn needs_admin(self) -> bool {
        !matches!(self, LinkErrorStatus::LinkageError)
    }

    /// What an administrator should do about it (Google Workspace wording).
    pub fn fix_hint(self) -> &'static str {
        match self {
            LinkErrorStatus::AuthenticationError => {
                "Google refused the service account or the user: check that the key still \
                 exists under IAM & Admin > Service accounts > Keys (upload a new key if it \
                 was deleted) and that the user still exists in the directory, then restart \
                 the link."
            }
            LinkErrorStatus::Unauthorized => {
                "Google refused access: in the Admin console under Security > Access and data \
                 control > API controls > Domain-wide delegation, add the client ID with \
                 every scope Tributary lists; check that API access is not restricted and \
                 that the user has Gmail enabled, then restart the link."
            }
            LinkErrorStatus::LinkageError => {
                "Google did not answer as expected; Tributary retries with backoff. If it \
                 persists, check the provider message."
            }
        }
    }
}

impl fmt::Display for LinkErrorStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderError {
    pub fn authentication(detail: ProviderDetail) -> Self {
        ProviderError::AuthenticationError(detail)
    }

    pub fn unauthorized(detail: ProviderDetail) -> Self {
        ProviderError::Unauthorized(detail)
    }

    pub fn transient(detail: ProviderDetail, retry_after: Option<Duration>) -> Self {
        ProviderError::Transient {
            detail,
            retry_after,
        }
    }

    pub fn cursor_gone(detail: ProviderDetail) -> Self {
        ProviderError::CursorGone(detail)
    }

    pub fn other(detail: ProviderDetail) -> Self {
        ProviderError::Other(detail)
    }

    pub fn kind(&self) -> ProviderErrorKind {
        match self {
            ProviderError::AuthenticationError(_) => ProviderErrorKind::AuthenticationError,
            ProviderError::Unauthorized(_) => ProviderErrorKind::Unauthorized,
            ProviderError::Transient { .. } => ProviderErrorKind::Transient,
            ProviderError::CursorGone(_) => ProviderErrorKind::CursorGone,
            ProviderError::Other(_) => ProviderErrorKind::Other,
        }
    }

    pub fn detail(&self) -> &ProviderDetail {
        match self {
            ProviderError::AuthenticationError(detail)
            | ProviderError::Unauthorized(detail)
            | ProviderError::Transient { detail, .. }
            | ProviderError::CursorGone(detail)
            | ProviderError::Other(detail) => detail,
        }
    }

    /// The provider's own message.
    pub fn message(&self) -> &str {
        &self.detail().message
    }

    pub fn status(&self) -> Option<u16> {
        self.detail().status
    }

    pub fn reason(&self) -> Option<&str> {
        self.detail().reason.as_deref()
    }

    /// The provider's hint for when to retry a transient failure.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProviderError::Transient { .. })
    }

    /// The link status the admin sees when this error ends a sync run. A transient
    /// failure only gets here once the engine's retries are spent, and a gone cursor only
    /// when the full resync it calls for failed too: both are `linkage_error`, retried
    /// with backoff, like failures nobody classified.
    pub fn link_status(&self) -> LinkErrorStatus {
        match self {
            ProviderError::AuthenticationError(_) => LinkErrorStatus::AuthenticationError,
            ProviderError::Unauthorized(_) => LinkErrorStatus::Unauthorized,
            ProviderError::Transient { .. }
            | ProviderError::CursorGone(_)
            | ProviderError::Other(_) => LinkErrorStatus::LinkageError,
        }
    }
}

/// A user account in the provider's directory (Google Workspace Directory, Entra ID).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryAccount {
    /// The provider's immutable id of the account (survives renames).
    pub id: String,
    pub primary_email: String,
    /// Every other address the account receives mail at.
    pub aliases: Vec<String>,
    pub suspended: bool,
    pub archived: bool,
    pub is_admin: bool,
    /// Whether the account has a mailbox to read.
    pub has_mailbox: bool,
    pub full_name: Option<String>,
}

impl DirectoryAccount {
    /// The primary address, then the aliases.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.primary_email.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail() -> ProviderDetail {
        ProviderDetail::new("Invalid JWT Signature.")
            .with_status(400)
            .with_reason("invalid_grant")
    }

    #[test]
    fn every_kind_maps_to_the_status_the_admin_sees() {
        let cases = [
            (
                ProviderError::authentication(detail()),
                ProviderErrorKind::AuthenticationError,
                "authentication_error",
            ),
            (
                ProviderError::unauthorized(detail()),
                ProviderErrorKind::Unauthorized,
                "unauthorized",
            ),
            (
                ProviderError::transient(detail(), None),
                ProviderErrorKind::Transient,
                "linkage_error",
            ),
            (
                ProviderError::cursor_gone(detail()),
                ProviderErrorKind::CursorGone,
                "linkage_error",
            ),
            (
                ProviderError::other(detail()),
                ProviderErrorKind::Other,
                "linkage_error",
            ),
        ];
        for (error, kind, status) in cases {
            assert_eq!(error.kind(), kind);
            assert_eq!(error.link_status().as_str(), status);
            assert_eq!(error.message(), "Invalid JWT Signature.");
        }
    }

    #[test]
    fn only_credential_and_permission_failures_wait_for_an_admin() {
        assert!(LinkErrorStatus::AuthenticationError.needs_admin());
        assert!(LinkErrorStatus::Unauthorized.needs_admin());
        assert!(!LinkErrorStatus::LinkageError.needs_admin());
    }

    #[test]
    fn display_keeps_the_providers_message_status_and_reason() {
        let error = ProviderError::authentication(detail());
        assert_eq!(
            error.to_string(),
            "authentication failed: Invalid JWT Signature. (HTTP 400, invalid_grant)"
        );
        let bare = ProviderError::other(ProviderDetail::new("connection reset"));
        assert_eq!(bare.to_string(), "provider error: connection reset");
    }

    #[test]
    fn retry_hint_belongs_to_transient_failures_only() {
        let throttled = ProviderError::transient(
            ProviderDetail::new("User-rate limit exceeded.")
                .with_status(403)
                .with_reason("userRateLimitExceeded"),
            Some(Duration::from_millis(1500)),
        );
        assert!(throttled.is_transient());
        assert_eq!(throttled.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(throttled.reason(), Some("userRateLimitExceeded"));
        assert_eq!(throttled.status(), Some(403));
        assert!(throttled.to_string().ends_with("; retry after 1.500 s"));
        assert_eq!(ProviderError::unauthorized(detail()).retry_after(), None);
        assert!(!ProviderError::cursor_gone(detail()).is_transient());
    }

    #[test]
    fn link_statuses_serialize_as_shown() {
        let json = serde_json::to_string(&LinkErrorStatus::LinkageError).unwrap();
        assert_eq!(json, "\"linkage_error\"");
        assert_eq!(
            LinkErrorStatus::Unauthorized.to_string(),
            LinkErrorStatus::Unauthorized.as_str()
        );
    }

    #[test]
    fn account_addresses_start_with_the_primary() {
        let account = DirectoryAccount {
            id: "1".into(),
            primary_email: "ann@acme.example".into(),
            aliases: vec!["a@acme.example".into()],
            suspended: false,
            archived: false,
            is_admin: true,
            has_mailbox: true,
            full_name: Some("Ann Admin".into()),
        };
        let addresses: Vec<_> = account.addresses().collect();
        assert_eq!(addresses, ["ann@acme.example", "a@acme.example"]);
    }
}
