//! The connection's banner: when links fail for a cause that is the connection's (a
//! deleted key, delegation or consent removed, API access restricted, the directory
//! admin no longer an admin), every mailbox fails alike, and twenty rows saying the
//! same thing hide the one thing to fix. The banner says it once: the cause, the
//! provider's own words, the fix, and that the mailboxes resume by themselves once a
//! connection test passes. The rows of those links only say they wait for it.
//!
//! The Users page builds it from the links it already read ([`for_links`]); other
//! pages (the setup page) call [`connection_banner`] with the store and tenant.

use maud::{Markup, html};
use tributary_core::{Audience, FailureCause};
use tributary_store::{ConnectionKind, LinkView, Store, StoreError, TenantId};
use tributary_sync::runtime::resume::{link_cause, waits_for_connection};

/// What a row of a link that waits for the connection says instead of its own hint.
pub const WAITING_FOR_CONNECTION: &str = "Waiting for the connection: see the banner above. \
     This mailbox resumes by itself once the connection is fixed.";

/// The tenant's connection banner, or nothing when no link waits for the connection.
pub async fn connection_banner(store: &Store, tenant: &TenantId) -> Result<Markup, StoreError> {
    Ok(for_links(&store.links(tenant).await?))
}

/// One connection-wide cause and the links it stopped.
struct Stopped<'a> {
    cause: FailureCause,
    provider: ConnectionKind,
    /// The provider's words, from the first link it stopped.
    message: Option<&'a str>,
    count: usize,
}

/// The connection-wide causes among `links`, in the order first met.
fn stopped(links: &[LinkView]) -> Vec<Stopped<'_>> {
    let mut causes: Vec<Stopped<'_>> = Vec::new();
    for link in links.iter().filter(|link| waits_for_connection(link)) {
        let Some(cause) = link_cause(link) else {
            continue;
        };
        match causes
            .iter_mut()
            .find(|s| s.cause == cause && s.provider == link.provider)
        {
            Some(known) => known.count += 1,
            None => causes.push(Stopped {
                cause,
                provider: link.provider,
                message: link.provider_message.as_deref(),
                count: 1,
            }),
        }
    }
    causes
}

/// The banner for `links`: empty when none waits for the connection.
pub fn for_links(links: &[LinkView]) -> Markup {
    let causes = stopped(links);
    if causes.is_empty() {
        return html! {};
    }
    let total: usize = causes.iter().map(|s| s.count).sum();
    html! {
        section.card.banner #connection-banner role="alert" {
            h2 {
                "The connection is failing: "
                (mailboxes(total)) " wait for it"
            }
            @for stopped in &causes {
                div.banner-cause data-cause=(cause_code(stopped.cause)) {
                    p { strong { (cause_title(stopped.cause)) } " (" (mailboxes(stopped.count)) ")" }
                    @if let Some(message) = stopped.message {
                        p { (provider_name(stopped.provider)) " said: " span.provider-message { (message) } }
                    }
                    p.hint { strong { "What to do: " } (stopped.cause.hint(Audience::Admin)) }
                }
            }
            p.muted {
                "Nothing captured is lost. Once a connection test passes (Test connection on "
                a href="/setup" { "the setup page" }
                ", or a new key that passes its test), these mailboxes resume by themselves."
            }
        }
    }
}

fn mailboxes(count: usize) -> String {
    if count == 1 {
        "1 mailbox".to_owned()
    } else {
        format!("{count} mailboxes")
    }
}

fn provider_name(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Google => "Google",
        ConnectionKind::Microsoft => "Microsoft",
        ConnectionKind::Imap => "The mail server",
    }
}

/// The cause's stable code (as the API names it), for tests and scripts.
fn cause_code(cause: FailureCause) -> String {
    serde_json::to_value(cause)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The cause in a few words, as the banner's headline for it.
fn cause_title(cause: FailureCause) -> &'static str {
    use FailureCause::*;
    match cause {
        KeyRejected => "The service-account key was rejected",
        ServiceAccountDisabled => "The service account is disabled",
        ClockSkew => "This server's clock is off",
        ScopeNotDelegated => "Domain-wide delegation is missing or incomplete",
        AppRestricted => "API access for the app is restricted",
        ApiNotEnabled => "An API is off in the Cloud project",
        AdminNotInWorkspace => "The directory admin address is not in Workspace",
        AdminNotAdministrator => "The directory admin address is no longer an administrator",
        MsSecretWrong => "The client secret is wrong",
        MsSecretExpired => "The client secret has expired",
        MsCertificateRefused => "The certificate was refused",
        MsConsentMissing => "Admin consent is missing or was revoked",
        MsUnknownApp => "Microsoft does not know the app in this tenant",
        MsAppDisabled => "The app is disabled",
        MsUnknownTenant => "Microsoft does not know the tenant",
        MsDirectoryDenied => "The app may not read the directory",
        MsMailDenied => "The app may not read mail",
        _ => "The connection was refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::{LinkId, LinkStatus};

    fn link(id: i64, status: LinkStatus, reason: &str, message: &str) -> LinkView {
        LinkView {
            id: LinkId(id),
            member: format!("user{id}@acme.test"),
            mailbox: format!("user{id}@acme.test"),
            status,
            provider_message: Some(message.into()),
            status_reason: Some(reason.into()),
            last_success_ms: None,
            last_summary: None,
            next_attempt_ms: None,
            attempts: 1,
            provider: ConnectionKind::Google,
            provider_reason: None,
        }
    }

    #[test]
    fn one_banner_for_every_link_the_connection_stopped() {
        let key = |id| {
            link(
                id,
                LinkStatus::AuthenticationError,
                "invalid_grant",
                "Invalid JWT Signature.",
            )
        };
        let suspended = link(
            9,
            LinkStatus::Unauthorized,
            "failedPrecondition",
            "Precondition check failed.",
        );
        let links = vec![key(1), key(2), key(3), suspended];
        let html = for_links(&links).into_string();
        assert_eq!(
            html.matches("id=\"connection-banner\"").count(),
            1,
            "{html}"
        );
        assert!(html.contains("3 mailboxes wait for it"), "{html}");
        assert!(html.contains("Invalid JWT Signature."), "{html}");
        let fix = maud::html! { (FailureCause::KeyRejected.hint(Audience::Admin)) }.into_string();
        assert_eq!(html.matches(&fix).count(), 1, "{html}");
        // The suspended user's own cause is its row's business, not the banner's.
        assert!(!html.contains("Precondition"), "{html}");
    }

    #[test]
    fn no_banner_without_a_connection_wide_failure() {
        let links = vec![link(
            1,
            LinkStatus::Unauthorized,
            "failedPrecondition",
            "Mail service not enabled",
        )];
        assert!(for_links(&links).into_string().is_empty());
        assert!(for_links(&[]).into_string().is_empty());
    }

    #[test]
    fn the_provider_s_words_are_escaped() {
        let links = vec![link(
            1,
            LinkStatus::Unauthorized,
            "admin_policy_enforced",
            "<script>x</script>",
        )];
        let html = for_links(&links).into_string();
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
    }
}
