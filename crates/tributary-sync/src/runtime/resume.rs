//! Links stopped by the connection resume once the connection is fixed. A cause that is
//! the connection's (a deleted key, delegation or consent removed, API access
//! restricted, the directory admin no longer an admin: see
//! [`FailureCause::is_connection_wide`]) stops every link alike, and nothing about one
//! mailbox has to change for it to run again. So when a connection test passes
//! afterwards, or a new key passes the test it gets before replacing the stored one,
//! those links go back to `pending` (synced at once while capture is on), and one audit
//! event says so. Links stopped by a cause of their own (a suspended user, Gmail off)
//! keep waiting for an admin.

use super::{ConnectionCheck, Runtime, RuntimeError, audit};
use tributary_core::{FailureCause, FailureSite, HintProvider, LinkErrorStatus};
use tributary_store::{ConnectionKind, LinkId, LinkStatus, LinkView, TenantId};

/// The audit action of links resumed after the connection was fixed.
pub const LINKS_RESUMED: &str = "links.resumed";

/// The error status of a link in one, `None` otherwise.
pub fn error_status(status: LinkStatus) -> Option<LinkErrorStatus> {
    match status {
        LinkStatus::AuthenticationError => Some(LinkErrorStatus::AuthenticationError),
        LinkStatus::Unauthorized => Some(LinkErrorStatus::Unauthorized),
        LinkStatus::LinkageError => Some(LinkErrorStatus::LinkageError),
        _ => None,
    }
}

/// Whose words a connection's failures are in.
pub fn hint_provider(kind: ConnectionKind) -> HintProvider {
    match kind {
        ConnectionKind::Google => HintProvider::Google,
        ConnectionKind::Microsoft => HintProvider::Microsoft,
        ConnectionKind::Imap => HintProvider::Imap,
    }
}

/// The cause of a link's failure, from the status, cause code and message it keeps;
/// `None` for a link that is not in an error status.
pub fn link_cause(link: &LinkView) -> Option<FailureCause> {
    let status = error_status(link.status)?;
    Some(FailureCause::classify(
        hint_provider(link.provider),
        FailureSite::Mailbox,
        status,
        link.status_reason.as_deref(),
        link.provider_message.as_deref().unwrap_or(""),
    ))
}

/// Whether a link is stopped by its connection's failure rather than its own.
pub fn waits_for_connection(link: &LinkView) -> bool {
    link_cause(link).is_some_and(FailureCause::is_connection_wide)
}

impl Runtime {
    /// After a connection test of `kind`: when it passed, resumes the links a
    /// connection-wide cause stopped (see [`Runtime::resume_connection_links`]).
    /// Answers how many resumed.
    pub async fn resume_after_check(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        check: Option<&ConnectionCheck>,
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        if !check.is_some_and(|check| check.ok) {
            return Ok(0);
        }
        self.resume_connection_links(tenant, kind, actor).await
    }

    /// Puts every link of `kind` that waits for the connection back to `pending`
    /// (synced now while capture is on), audited once as "links resumed after the
    /// connection was fixed" with the mailboxes and the causes they had. Call it once
    /// the connection is known to work again. Answers how many resumed.
    pub async fn resume_connection_links(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        let waiting: Vec<LinkView> = self
            .store()
            .links(tenant)
            .await?
            .into_iter()
            .filter(|link| link.provider == kind && waits_for_connection(link))
            .collect();
        if waiting.is_empty() {
            return Ok(0);
        }
        let ids: Vec<LinkId> = waiting.iter().map(|link| link.id).collect();
        let resumed = self
            .restart_links(tenant, &ids, actor, |status| error_status(status).is_some())
            .await?;
        let mut causes: Vec<FailureCause> = waiting.iter().filter_map(link_cause).collect();
        causes.sort_by_key(|cause| format!("{cause:?}"));
        causes.dedup();
        let detail = serde_json::json!({
            "count": resumed,
            "provider": kind.as_str(),
            "mailboxes": waiting.iter().map(|link| &link.mailbox).collect::<Vec<_>>(),
            "causes": causes,
            "summary": "links resumed after the connection was fixed",
        });
        self.store()
            .record_audit(tenant, &audit(actor, LINKS_RESUMED, None, detail))
            .await?;
        Ok(resumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(status: LinkStatus, reason: Option<&str>, message: &str) -> LinkView {
        LinkView {
            id: LinkId(1),
            member: "ann@acme.test".into(),
            mailbox: "ann@acme.test".into(),
            status,
            provider_message: Some(message.into()),
            status_reason: reason.map(str::to_owned),
            last_success_ms: None,
            last_summary: None,
            next_attempt_ms: None,
            attempts: 1,
            provider: ConnectionKind::Google,
            provider_reason: None,
        }
    }

    #[test]
    fn only_links_stopped_by_the_connection_wait_for_it() {
        let key = link(
            LinkStatus::AuthenticationError,
            Some("invalid_grant"),
            "Invalid JWT Signature.",
        );
        assert_eq!(link_cause(&key), Some(FailureCause::KeyRejected));
        assert!(waits_for_connection(&key));
        let restricted = link(LinkStatus::Unauthorized, Some("admin_policy_enforced"), "");
        assert!(waits_for_connection(&restricted));
        let suspended = link(
            LinkStatus::Unauthorized,
            Some("failedPrecondition"),
            "Precondition check failed.",
        );
        assert!(!waits_for_connection(&suspended));
        let throttled = link(LinkStatus::LinkageError, Some("userRateLimitExceeded"), "");
        assert!(!waits_for_connection(&throttled));
        // A link that is not in an error status has no cause, whatever it kept.
        let idle = link(
            LinkStatus::Idle,
            Some("invalid_grant"),
            "Invalid JWT Signature.",
        );
        assert_eq!(link_cause(&idle), None);
        assert!(!waits_for_connection(&idle));
    }
}
