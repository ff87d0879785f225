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
                 exists under IAM & Admin > Service accounts > Keys (Upload a new key on the \
                 Google setup page if it was deleted) and that the user still exists in the \
                 directory, then press Retry on the Users page."
            }
            LinkErrorStatus::Unauthorized => {
                "Google refused access: in the Admin console under Security > Access and data \
                 control > API controls > Domain-wide delegation, add the client ID with \
                 every scope Tributary lists; check that API access is not restricted and \
                 that the user has Gmail enabled, then press Retry on the Users page."
            }
            LinkErrorStatus::LinkageError => {
                "Google did not answer as expected; Tributary retries with backoff. If it \
                 persists, check the provider message."
            }
        }
    }

    /// What an administrator should do about a Microsoft 365 failure: the cause's own
    /// hint when Microsoft's code (`reason`: `AADSTS…` or Graph's `error.code`) names
    /// one, else the status's. `ErrorAccessDenied` covers two causes that only its
    /// message tells apart: a missing mail permission and an application access policy.
    pub fn microsoft_fix_hint(self, reason: Option<&str>, message: &str) -> &'static str {
        let cause = FailureCause::classify(
            HintProvider::Microsoft,
            FailureSite::Mailbox,
            self,
            reason,
            message,
        );
        match cause {
            FailureCause::Unexpected => MICROSOFT_LINKAGE_HINT,
            cause => cause.hint(Audience::Admin),
        }
    }
}

const MICROSOFT_AUTH_HINT: &str = "Microsoft refused the app's credentials or the user: check \
     the tenant ID, client ID and secret or certificate in Tributary's Microsoft 365 setup, \
     that admin consent is granted, and that the user still exists in Entra ID, then press \
     Retry on the Users page.";

const MICROSOFT_ACCESS_HINT: &str = "Microsoft refused access: check that the app has the \
     User.Read.All and Mail.ReadBasic.All application permissions with admin consent granted, \
     that no application access policy excludes the mailbox, and that the user has an \
     Exchange Online mailbox, then press Retry on the Users page.";

const MICROSOFT_LINKAGE_HINT: &str = "Microsoft did not answer as expected; Tributary retries \
     with backoff, honouring Retry-After. If it persists, check the provider message.";

const MICROSOFT_ACCESS_POLICY_HINT: &str = "An Exchange application access policy (or an RBAC \
     for Applications scope) excludes this mailbox: add the mailbox to the policy's group, \
     or remove the policy (Test-ApplicationAccessPolicy shows the result; changes take up \
     to 30 minutes), then press Retry on the Users page.";

/// The fix for each Microsoft cause (which codes name which cause: `MICROSOFT_CAUSES`).
const MS_SECRET_WRONG_HINT: &str = "The client secret is wrong: in Entra ID under App \
     registrations > Tributary > Certificates & secrets, create a new client secret and enter \
     its Value (not its Secret ID) in Tributary's Microsoft 365 setup, then press Retry on the \
     Users page.";

const MS_SECRET_EXPIRED_HINT: &str = "The client secret has expired: create a new one under \
     App registrations > Tributary > Certificates & secrets and enter it in Tributary's \
     Microsoft 365 setup (or upload a certificate instead), then press Retry on the Users \
     page.";

const MS_CERTIFICATE_REFUSED_HINT: &str = "Microsoft refused the certificate: check that the \
     certificate in Tributary's Microsoft 365 setup is the one registered under App \
     registrations > Tributary > Certificates & secrets (the thumbprints must match) and has \
     not expired, and that this server's clock is right, then press Retry on the Users page.";

const MS_CONSENT_MISSING_HINT: &str = "Admin consent is missing or was revoked: a Global or \
     Privileged Role Administrator must grant it again with Grant admin consent in Tributary's \
     Microsoft 365 setup, then press Retry on the Users page.";

const MS_UNKNOWN_APP_HINT: &str = "Microsoft does not know this application in this tenant: \
     check the client ID and tenant ID in Tributary's Microsoft 365 setup and grant admin \
     consent in this tenant, then press Retry on the Users page.";

const MS_APP_DISABLED_HINT: &str = "The application is disabled: in Entra ID under Enterprise \
     applications > Tributary > Properties, set Enabled for users to sign-in to Yes, then \
     press Retry on the Users page.";

const MS_UNKNOWN_TENANT_HINT: &str = "Microsoft does not know this tenant: check the tenant ID \
     (or domain) in Tributary's Microsoft 365 setup, then press Retry on the Users page.";

const MS_DIRECTORY_DENIED_HINT: &str = "The app may not read the directory: add the \
     User.Read.All application permission under App registrations > Tributary > API \
     permissions and grant admin consent, then press Retry on the Users page.";

const MS_MAIL_DENIED_HINT: &str = "The app may not read mail: add the Mail.ReadBasic.All (or \
     Mail.Read) application permission under App registrations > Tributary > API permissions \
     and grant admin consent, then press Retry on the Users page.";

const MS_NO_MAILBOX_HINT: &str = "The user has no Exchange Online mailbox (unlicensed, \
     inactive, soft-deleted or on-premises): assign an Exchange Online license in the \
     Microsoft 365 admin center under Users > Active users > Licenses and apps, then press \
     Retry on the Users page; or Unlink the mailbox.";

const MS_USER_GONE_HINT: &str = "The user no longer exists in Entra ID: restore the user \
     (Deleted users, within 30 days) and press Retry, or press Rebuild on the Users page to \
     drop the mailbox from capture.";

const CALENDAR_SCOPE_HINT: &str = "Google refused the calendar while mail reads: the \
     calendar scope (https://www.googleapis.com/auth/calendar.readonly) is missing from the \
     client ID's entry in the Google Admin console under Security > Access and data control > \
     API controls > Domain-wide delegation. Edit that entry to add the scope (keep the ones it \
     has), then tick the member on the Users page and press Retry; mail keeps syncing \
     meanwhile.";

const CALENDAR_API_HINT: &str = "The Google Calendar API is off in the service account's \
     Cloud project: enable it under APIs & Services > Library > Google Calendar API, then \
     tick the member on the Users page and press Retry; mail keeps syncing meanwhile.";

const MS_CALENDAR_DENIED_HINT: &str = "Microsoft denied the calendar while mail reads: add \
     the Calendars.Read application permission under App registrations > Tributary > API \
     permissions, grant admin consent (Grant admin consent in Tributary's Microsoft 365 \
     setup), then tick the member on the Users page and press Retry; mail keeps syncing \
     meanwhile.";

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

/// Which provider's failure a hint explains: the same code can mean different things to
/// Google and Microsoft, and each fix names the provider's own console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HintProvider {
    Google,
    Microsoft,
    Imap,
}

/// Who reads a hint: an administrator can fix the cause, a member can only wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Admin,
    Member,
}

/// Where a failure was met. Google answers "Invalid email or User ID" both for a deleted
/// member and for a directory admin address that is not in Workspace: only the place
/// tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureSite {
    /// Reading a member's mailbox (a link's run, a label listing).
    Mailbox,
    /// Reading the directory as the admin address (Test connection, Rebuild).
    Directory,
    /// Reading a member's calendar (the calendar stream of a link's run): a permission
    /// refused here is the calendar's own (its scope, API or application permission),
    /// while mail may be fine.
    Calendar,
}

/// The cause codes the engine itself stores for failures that are not the provider's
/// answer: a run that left labels the mailbox lacks, or other gaps.
pub const MISSING_LABEL_CODE: &str = "missing_label";
pub const INCOMPLETE_RUN_CODE: &str = "incomplete_run";

/// One distinct cause of a failure, each with its own explanation and fix
/// ([`FailureCause::hint`]). Found by [`FailureCause::classify`] from the provider's
/// reason code and message, which a link keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCause {
    /// The service-account key was deleted or is not the issuer's (`Invalid JWT Signature.`).
    KeyRejected,
    /// The service account is disabled (`Robot is disabled.`, `disabled_client`).
    ServiceAccountDisabled,
    /// The server's clock is off (`Token must be a short-lived token`).
    ClockSkew,
    /// Domain-wide delegation missing, or a scope not delegated (`unauthorized_client`).
    ScopeNotDelegated,
    /// The Workspace admin restricted the app's API access (`admin_policy_enforced`).
    AppRestricted,
    /// An API is off in the Cloud project (`accessNotConfigured`).
    ApiNotEnabled,
    /// The directory admin address is not a user of the Workspace domain.
    AdminNotInWorkspace,
    /// The directory admin address is not an administrator.
    AdminNotAdministrator,
    /// The member's account was deleted or does not exist in Workspace.
    UserGone,
    /// The member is suspended (Gmail's `Precondition check failed.`).
    UserSuspended,
    /// Gmail is not enabled for the member (`Mail service not enabled`).
    GmailNotEnabled,
    /// Google refused for another credential reason.
    GoogleAuthOther,
    /// Google refused access for another reason.
    GoogleAccessOther,
    /// Quota or rate limits, still refused after the engine's retries.
    Throttled,
    /// 5xx, timeouts, connection failures beyond the engine's retries.
    ProviderUnavailable,
    /// A label (folder) chosen for capture that the mailbox does not have.
    MissingLabel,
    /// A run that could not account for every listed message.
    IncompleteRun,
    /// Anything else: an unexpected or unreadable answer.
    Unexpected,
    MsSecretWrong,
    MsSecretExpired,
    MsCertificateRefused,
    MsConsentMissing,
    MsUnknownApp,
    MsAppDisabled,
    MsUnknownTenant,
    MsDirectoryDenied,
    MsMailDenied,
    MsAccessPolicy,
    MsNoMailbox,
    MsUserGone,
    MsAuthOther,
    MsAccessOther,
    /// The IMAP server refused the login or the mailbox.
    ImapLoginRefused,
    /// Google: the calendar scope is not in the client ID's domain-wide delegation
    /// (`unauthorized_client`, `insufficientPermissions` on the calendar alone).
    CalendarScopeNotDelegated,
    /// Google: the Calendar API is off in the service account's Cloud project.
    CalendarApiNotEnabled,
    /// Microsoft: the app lacks the Calendars.Read application permission (or its
    /// admin consent), so Graph denies the calendar while mail reads.
    MsCalendarDenied,
}

/// Microsoft's codes for each cause (`AADSTS…` or Graph's `error.code`).
const MICROSOFT_CAUSES: &[(&[&str], FailureCause)] = &[
    (&["AADSTS7000215"], FailureCause::MsSecretWrong),
    (&["AADSTS7000222"], FailureCause::MsSecretExpired),
    (
        &[
            "AADSTS700027",
            "AADSTS700024",
            "AADSTS700021",
            "AADSTS700023",
            "AADSTS50027",
        ],
        FailureCause::MsCertificateRefused,
    ),
    (
        &["AADSTS7000229", "AADSTS65001", "AADSTS65004"],
        FailureCause::MsConsentMissing,
    ),
    (&["AADSTS700016"], FailureCause::MsUnknownApp),
    (&["AADSTS7000112"], FailureCause::MsAppDisabled),
    (&["AADSTS90002"], FailureCause::MsUnknownTenant),
    (
        &["Authorization_RequestDenied"],
        FailureCause::MsDirectoryDenied,
    ),
    (
        &["ErrorAccessDenied", "AccessDenied"],
        FailureCause::MsMailDenied,
    ),
    (
        &[
            "MailboxNotEnabledForRESTAPI",
            "MailboxNotSupportedForRESTAPI",
        ],
        FailureCause::MsNoMailbox,
    ),
    (
        &[
            "ResourceNotFound",
            "Request_ResourceNotFound",
            "ErrorInvalidUser",
        ],
        FailureCause::MsUserGone,
    ),
    (
        &[
            "TooManyRequests",
            "ApplicationThrottled",
            "MailboxConcurrency",
        ],
        FailureCause::Throttled,
    ),
    (
        &[
            "ServiceNotAvailable",
            "serviceNotAvailable",
            "generalException",
            "transient",
        ],
        FailureCause::ProviderUnavailable,
    ),
];

/// The member's words when an administrator must act: nothing for them to do.
const MEMBER_WAITS_FOR_ADMIN: &str = "Capture of your mailbox is paused until an \
     administrator fixes this; your administrators see it on the Users page. Nothing \
     captured so far is lost, and capture resumes where it stopped.";

impl FailureCause {
    /// The cause of a failure from what a link keeps: its error status, the provider's
    /// reason code (or the engine's own, [`MISSING_LABEL_CODE`] …) and the provider's message.
    pub fn classify(
        provider: HintProvider,
        site: FailureSite,
        status: LinkErrorStatus,
        reason: Option<&str>,
        message: &str,
    ) -> FailureCause {
        let reason = reason.unwrap_or("");
        match reason {
            MISSING_LABEL_CODE => return FailureCause::MissingLabel,
            INCOMPLETE_RUN_CODE => return FailureCause::IncompleteRun,
            _ => {}
        }
        if site == FailureSite::Calendar
            && let Some(cause) = calendar_cause(provider, reason, message)
        {
            return cause;
        }
        match provider {
            HintProvider::Google => google_cause(site, status, reason, message),
            HintProvider::Microsoft => microsoft_cause(status, reason, message),
            HintProvider::Imap => match status {
                _ if reason == "transient" => FailureCause::ProviderUnavailable,
                LinkErrorStatus::LinkageError => FailureCause::Unexpected,
                _ => FailureCause::ImapLoginRefused,
            },
        }
    }

    /// Whether fixing the cause is the administrator's job (the member can only wait).
    pub fn needs_admin(self) -> bool {
        !matches!(
            self,
            FailureCause::Throttled
                | FailureCause::ProviderUnavailable
                | FailureCause::MissingLabel
        )
    }

    /// Whether the cause is the connection's, not one mailbox's: a key, an app
    /// registration, delegation or consent, API access, or the directory admin. Every
    /// link meets it alike, so the console shows it once, and links stopped by it
    /// resume once a connection test passes. Causes that only their message could
    /// place (`…AuthOther`, `…AccessOther`) are not counted: they may be one user's.
    pub fn is_connection_wide(self) -> bool {
        use FailureCause::*;
        matches!(
            self,
            KeyRejected
                | ServiceAccountDisabled
                | ClockSkew
                | ScopeNotDelegated
                | AppRestricted
                | ApiNotEnabled
                | AdminNotInWorkspace
                | AdminNotAdministrator
                | MsSecretWrong
                | MsSecretExpired
                | MsCertificateRefused
                | MsConsentMissing
                | MsUnknownApp
                | MsAppDisabled
                | MsUnknownTenant
                | MsDirectoryDenied
                | MsMailDenied
                | CalendarScopeNotDelegated
                | CalendarApiNotEnabled
                | MsCalendarDenied
        )
    }

    /// The explanation and fix for this reader.
    pub fn hint(self, audience: Audience) -> &'static str {
        match audience {
            Audience::Admin => self.admin_hint(),
            Audience::Member => self.member_hint(),
        }
    }

    fn member_hint(self) -> &'static str {
        use FailureCause::*;
        match self {
            Throttled | ProviderUnavailable => {
                "Your provider is busy or did not answer; Tributary retries by itself. \
                 Nothing to do."
            }
            MissingLabel => {
                "A label you chose for capture does not exist in your mailbox (renamed or \
                 deleted?): remove it or pick another under Labels on this page and press \
                 Save labels."
            }
            UserSuspended | GmailNotEnabled | MsNoMailbox => {
                "Your account has no usable mailbox right now (suspended, or mail not \
                 enabled for it). Your administrators see this on the Users page; ask them \
                 if you expected your mail to be captured."
            }
            CalendarScopeNotDelegated | CalendarApiNotEnabled | MsCalendarDenied => {
                "Your organization's connection may not read calendars yet, so your \
                 meetings are not captured; your mail is not affected. Your administrators \
                 see this on your Calendar card and can fix it; nothing to do on your side."
            }
            _ => MEMBER_WAITS_FOR_ADMIN,
        }
    }

    fn admin_hint(self) -> &'static str {
        use FailureCause::*;
        match self {
            KeyRejected => {
                "Google refused the service-account key: it was deleted or is not this \
                 service account's (Invalid JWT Signature). Create a key under IAM & Admin > \
                 Service accounts > Keys, use Upload a new key on the Google setup page, press \
                 Test connection, then Retry on the Users page."
            }
            ServiceAccountDisabled => {
                "The service account is disabled: enable it under IAM & Admin > Service \
                 accounts in the Google Cloud console, press Test connection on the Google \
                 setup page, then Retry on the Users page."
            }
            ClockSkew => {
                "Google refused the token's times: this server's clock is off. Correct the \
                 clock (NTP), press Test connection on the Google setup page, then Retry on \
                 the Users page."
            }
            ScopeNotDelegated => {
                "Domain-wide delegation is missing a scope (unauthorized_client): in the \
                 Google Admin console under Security > Access and data control > API controls \
                 > Domain-wide delegation, add the client ID with every scope the Google setup \
                 page lists, press Test connection, then Retry on the Users page."
            }
            AppRestricted => {
                "A Workspace admin restricted this app's API access (admin_policy_enforced): \
                 in the Google Admin console under Security > Access and data control > API \
                 controls > Manage third-party app access, mark the client ID Trusted, press \
                 Test connection, then Retry on the Users page."
            }
            ApiNotEnabled => {
                "An API this needs is off in the service account's Cloud project: enable the \
                 Gmail API and Admin SDK API under APIs & Services > Library, press Test \
                 connection on the Google setup page, then Retry on the Users page."
            }
            AdminNotInWorkspace => {
                "The directory admin address is not a user of your Workspace domain: on the \
                 Google setup page enter the address of an existing administrator, then press \
                 Test connection."
            }
            AdminNotAdministrator => {
                "The directory admin address is not an administrator, so it may not read the \
                 user directory: enter a (super) administrator's address on the Google setup \
                 page, or give this user an admin role in the Google Admin console under \
                 Account > Admin roles, then press Test connection."
            }
            UserGone => {
                "This user no longer exists in Workspace (deleted or renamed): restore the \
                 user in the Google Admin console and press Retry, or press Rebuild on the \
                 Users page to drop the mailbox from capture."
            }
            UserSuspended => {
                "Google refused to open this mailbox (Precondition check failed), which it \
                 does for a suspended user: reactivate the user in the Google Admin console \
                 under Directory > Users, then press Retry; or Unlink the mailbox."
            }
            GmailNotEnabled => {
                "Gmail is not enabled for this user: turn Gmail on for the user's \
                 organizational unit in the Google Admin console under Apps > Google Workspace \
                 > Gmail (or assign a license with Gmail), then press Retry; or Unlink the \
                 mailbox."
            }
            GoogleAuthOther => LinkErrorStatus::AuthenticationError.fix_hint(),
            GoogleAccessOther => LinkErrorStatus::Unauthorized.fix_hint(),
            Throttled => {
                "The provider's quota or rate limit still refused after Tributary's retries; \
                 it tries again by itself with backoff. If it persists, lower the sync pace \
                 or raise the project's quota, or press Retry later."
            }
            ProviderUnavailable => {
                "The provider did not answer (server errors or timeouts beyond Tributary's \
                 retries); Tributary tries again by itself with backoff. Nothing to fix \
                 unless it persists; then check this server's network."
            }
            MissingLabel => {
                "A label chosen for capture does not exist in this mailbox: fix the labels \
                 on the Policy page (for everyone) or ask the member to edit theirs on My \
                 mailbox; the next run picks it up, or press Retry."
            }
            IncompleteRun => {
                "The run could not account for every message the provider listed; Tributary \
                 retries by itself. If it persists, press Retry and check the provider message."
            }
            Unexpected => LinkErrorStatus::LinkageError.fix_hint(),
            MsSecretWrong => MS_SECRET_WRONG_HINT,
            MsSecretExpired => MS_SECRET_EXPIRED_HINT,
            MsCertificateRefused => MS_CERTIFICATE_REFUSED_HINT,
            MsConsentMissing => MS_CONSENT_MISSING_HINT,
            MsUnknownApp => MS_UNKNOWN_APP_HINT,
            MsAppDisabled => MS_APP_DISABLED_HINT,
            MsUnknownTenant => MS_UNKNOWN_TENANT_HINT,
            MsDirectoryDenied => MS_DIRECTORY_DENIED_HINT,
            MsMailDenied => MS_MAIL_DENIED_HINT,
            MsNoMailbox => MS_NO_MAILBOX_HINT,
            MsUserGone => MS_USER_GONE_HINT,
            MsAccessPolicy => MICROSOFT_ACCESS_POLICY_HINT,
            MsAuthOther => MICROSOFT_AUTH_HINT,
            MsAccessOther => MICROSOFT_ACCESS_HINT,
            ImapLoginRefused => {
                "The mail server refused the login or the mailbox: check the IMAP account's \
                 address, password and server on the setup page, then press Retry on the \
                 Users page."
            }
            CalendarScopeNotDelegated => CALENDAR_SCOPE_HINT,
            CalendarApiNotEnabled => CALENDAR_API_HINT,
            MsCalendarDenied => MS_CALENDAR_DENIED_HINT,
        }
    }
}

/// The calendar's own permission causes; `None` for the rest (throttling, a user gone,
/// rejected credentials), which are classified as for the mailbox.
fn calendar_cause(provider: HintProvider, reason: &str, message: &str) -> Option<FailureCause> {
    let says = |words: &str| message.to_ascii_lowercase().contains(words);
    let any = |codes: &[&str]| codes.iter().any(|c| c.eq_ignore_ascii_case(reason));
    match provider {
        HintProvider::Google if any(&["accessNotConfigured", "SERVICE_DISABLED"]) => {
            Some(FailureCause::CalendarApiNotEnabled)
        }
        HintProvider::Google
            if any(&[
                "unauthorized_client",
                "invalid_scope",
                "insufficientPermissions",
            ]) || (reason.is_empty()
                && (says("client is unauthorized")
                    || says("insufficient authentication scopes"))) =>
        {
            Some(FailureCause::CalendarScopeNotDelegated)
        }
        HintProvider::Google if reason.is_empty() && says("calendar api has not been used") => {
            Some(FailureCause::CalendarApiNotEnabled)
        }
        // Graph's ErrorAccessDenied for an application access policy is the mailbox's
        // cause (the policy excludes the whole mailbox), not a calendar permission.
        HintProvider::Microsoft
            if any(&["ErrorAccessDenied", "AccessDenied"]) && !message.contains("OData") =>
        {
            Some(FailureCause::MsCalendarDenied)
        }
        _ => None,
    }
}

fn google_cause(
    site: FailureSite,
    status: LinkErrorStatus,
    reason: &str,
    message: &str,
) -> FailureCause {
    let says = |words: &str| {
        message
            .to_ascii_lowercase()
            .contains(&words.to_ascii_lowercase())
    };
    let user_missing = says("Invalid email or User ID") || says("account has been deleted");
    // Google's words name some causes on their own: they decide when the reason code was
    // not kept (a refusal met outside a link's run carries only the status and message).
    if reason.is_empty() {
        let by_words = [
            ("Invalid JWT Signature", "invalid_grant"),
            ("Invalid email or User ID", "invalid_grant"),
            ("account has been deleted", "invalid_grant"),
            ("Robot is disabled", "invalid_grant"),
            ("Client is unauthorized", "unauthorized_client"),
            ("Mail service not enabled", "failedPrecondition"),
            ("Precondition check failed", "failedPrecondition"),
            (
                "insufficient authentication scopes",
                "insufficientPermissions",
            ),
        ];
        if let Some((_, reason)) = by_words.iter().find(|(words, _)| says(words)) {
            return google_cause(site, status, reason, message);
        }
    }
    match reason {
        "invalid_grant" if user_missing => match site {
            FailureSite::Directory => FailureCause::AdminNotInWorkspace,
            FailureSite::Mailbox | FailureSite::Calendar => FailureCause::UserGone,
        },
        "invalid_grant" if says("Robot is disabled") => FailureCause::ServiceAccountDisabled,
        "invalid_grant" if says("short-lived token") || says("reasonable timeframe") => {
            FailureCause::ClockSkew
        }
        "invalid_grant" | "invalid_client" => FailureCause::KeyRejected,
        "disabled_client" => FailureCause::ServiceAccountDisabled,
        "unauthorized_client" | "invalid_scope" | "insufficientPermissions" => {
            FailureCause::ScopeNotDelegated
        }
        "admin_policy_enforced" | "access_denied" | "domainPolicy" => FailureCause::AppRestricted,
        "accessNotConfigured" | "SERVICE_DISABLED" => FailureCause::ApiNotEnabled,
        "failedPrecondition" if says("Mail service not enabled") => FailureCause::GmailNotEnabled,
        "failedPrecondition" => FailureCause::UserSuspended,
        "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded" | "dailyLimitExceeded" => {
            FailureCause::Throttled
        }
        "backendError"
        | "internal_failure"
        | "server_error"
        | "temporarily_unavailable"
        | "internalError"
        | "transient" => FailureCause::ProviderUnavailable,
        _ if says("Not Authorized to access this resource/api") => {
            FailureCause::AdminNotAdministrator
        }
        _ => match status {
            LinkErrorStatus::AuthenticationError => FailureCause::GoogleAuthOther,
            LinkErrorStatus::Unauthorized => FailureCause::GoogleAccessOther,
            LinkErrorStatus::LinkageError => FailureCause::Unexpected,
        },
    }
}

fn microsoft_cause(status: LinkErrorStatus, reason: &str, message: &str) -> FailureCause {
    // ErrorAccessDenied covers two causes only the message tells apart.
    if reason.eq_ignore_ascii_case("ErrorAccessDenied") && message.contains("OData") {
        return FailureCause::MsAccessPolicy;
    }
    let known = MICROSOFT_CAUSES
        .iter()
        .find(|(codes, _)| codes.iter().any(|c| c.eq_ignore_ascii_case(reason)))
        .map(|(_, cause)| *cause);
    known.unwrap_or(match status {
        LinkErrorStatus::AuthenticationError => FailureCause::MsAuthOther,
        LinkErrorStatus::Unauthorized => FailureCause::MsAccessOther,
        LinkErrorStatus::LinkageError => FailureCause::Unexpected,
    })
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
    fn microsoft_hints_name_the_cause_from_microsoft_s_code() {
        use LinkErrorStatus::*;
        let hint = |status: LinkErrorStatus, reason: &str, message: &str| {
            status.microsoft_fix_hint(Some(reason), message)
        };
        let cases = [
            (AuthenticationError, "AADSTS7000215", "", "secret is wrong"),
            (AuthenticationError, "AADSTS7000222", "", "has expired"),
            (AuthenticationError, "AADSTS700027", "", "certificate"),
            (AuthenticationError, "AADSTS7000229", "", "consent"),
            (
                AuthenticationError,
                "AADSTS700016",
                "",
                "does not know this application",
            ),
            (AuthenticationError, "AADSTS7000112", "", "disabled"),
            (
                AuthenticationError,
                "AADSTS90002",
                "",
                "does not know this tenant",
            ),
            (
                Unauthorized,
                "Authorization_RequestDenied",
                "",
                "User.Read.All",
            ),
            (
                Unauthorized,
                "ErrorAccessDenied",
                "Access is denied.",
                "Mail.ReadBasic.All",
            ),
            (
                Unauthorized,
                "ErrorAccessDenied",
                "Access to OData is disabled.",
                "access policy",
            ),
            (
                Unauthorized,
                "MailboxNotEnabledForRESTAPI",
                "",
                "Exchange Online",
            ),
            (
                AuthenticationError,
                "ResourceNotFound",
                "",
                "no longer exists",
            ),
        ];
        for (status, reason, message, wanted) in cases {
            let text = hint(status, reason, message);
            assert!(text.contains(wanted), "{reason}: {text}");
        }
        // Codes without a hint of their own get the status's, in Microsoft's words.
        for status in [AuthenticationError, Unauthorized, LinkageError] {
            let fallback = status.microsoft_fix_hint(Some("SomethingNew"), "");
            assert_eq!(fallback, status.microsoft_fix_hint(None, ""));
            assert!(fallback.contains("Microsoft") && !fallback.contains("Google"));
        }
    }

    /// Each Google cause, from the reason and message Google gives, to its own hint,
    /// which names a button or page that exists.
    #[test]
    fn each_google_cause_gets_its_own_hint() {
        use FailureCause::*;
        use FailureSite::*;
        use LinkErrorStatus::*;
        let cases: &[(FailureSite, LinkErrorStatus, &str, &str, FailureCause, &str)] = &[
            (
                Mailbox,
                AuthenticationError,
                "invalid_grant",
                "Invalid JWT Signature.",
                KeyRejected,
                "Upload a new key",
            ),
            (
                Directory,
                AuthenticationError,
                "invalid_grant",
                "Invalid email or User ID",
                AdminNotInWorkspace,
                "Test connection",
            ),
            (
                Mailbox,
                AuthenticationError,
                "invalid_grant",
                "Invalid email or User ID",
                UserGone,
                "Rebuild",
            ),
            (
                Mailbox,
                AuthenticationError,
                "invalid_grant",
                "The account has been deleted",
                UserGone,
                "Retry",
            ),
            (
                Mailbox,
                AuthenticationError,
                "invalid_grant",
                "Robot is disabled.",
                ServiceAccountDisabled,
                "Test connection",
            ),
            (
                Mailbox,
                AuthenticationError,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
                ClockSkew,
                "clock",
            ),
            (
                Mailbox,
                Unauthorized,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens",
                ScopeNotDelegated,
                "Domain-wide delegation",
            ),
            (
                Mailbox,
                Unauthorized,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
                ScopeNotDelegated,
                "Test connection",
            ),
            (
                Mailbox,
                Unauthorized,
                "admin_policy_enforced",
                "restricted",
                AppRestricted,
                "Trusted",
            ),
            (
                Mailbox,
                Unauthorized,
                "accessNotConfigured",
                "Gmail API has not been used",
                ApiNotEnabled,
                "APIs & Services",
            ),
            (
                Directory,
                Unauthorized,
                "forbidden",
                "Not Authorized to access this resource/api",
                AdminNotAdministrator,
                "Admin roles",
            ),
            (
                Mailbox,
                Unauthorized,
                "failedPrecondition",
                "Precondition check failed.",
                UserSuspended,
                "reactivate",
            ),
            (
                Mailbox,
                Unauthorized,
                "failedPrecondition",
                "Mail service not enabled",
                GmailNotEnabled,
                "Gmail is not enabled",
            ),
            (
                Mailbox,
                LinkageError,
                "userRateLimitExceeded",
                "User-rate limit exceeded.",
                Throttled,
                "quota",
            ),
            (
                Mailbox,
                LinkageError,
                "backendError",
                "Backend Error",
                ProviderUnavailable,
                "did not answer",
            ),
            (
                Mailbox,
                LinkageError,
                "transient",
                "operation timed out",
                ProviderUnavailable,
                "did not answer",
            ),
            (
                Mailbox,
                LinkageError,
                MISSING_LABEL_CODE,
                "Label_9: the mailbox has no such label",
                MissingLabel,
                "Policy page",
            ),
            (
                Mailbox,
                LinkageError,
                INCOMPLETE_RUN_CODE,
                "INBOX: 2 unaccounted",
                IncompleteRun,
                "Retry",
            ),
        ];
        for (site, status, reason, message, cause, words) in cases {
            let found =
                FailureCause::classify(HintProvider::Google, *site, *status, Some(reason), message);
            assert_eq!(found, *cause, "{reason}: {message}");
            let hint = found.hint(Audience::Admin);
            assert!(hint.contains(words), "{cause:?}: {hint}");
            assert!(!hint.contains("restart the link"), "{hint}");
        }
        // Without the reason code, Google's distinctive words still name the cause.
        let words_only = |site, message| {
            FailureCause::classify(HintProvider::Google, site, Unauthorized, None, message)
        };
        assert_eq!(
            words_only(Directory, "Invalid email or User ID"),
            AdminNotInWorkspace
        );
        assert_eq!(
            words_only(Mailbox, "Mail service not enabled"),
            GmailNotEnabled
        );
        // Distinct causes, distinct hints: the deleted key is not the fix for a
        // missing admin, a suspended user or a non-administrator.
        let key = KeyRejected.hint(Audience::Admin);
        for other in [
            AdminNotInWorkspace,
            AdminNotAdministrator,
            UserSuspended,
            UserGone,
        ] {
            assert_ne!(other.hint(Audience::Admin), key, "{other:?}");
        }
    }

    #[test]
    fn members_are_told_what_they_can_do_not_the_admins_fix() {
        for cause in [KEY, SCOPE, ADMIN] {
            let hint = cause.hint(Audience::Member);
            assert!(hint.contains("administrator"), "{hint}");
            assert!(
                !hint.contains("Admin console") && !hint.contains("Upload"),
                "{hint}"
            );
        }
        let label = FailureCause::MissingLabel.hint(Audience::Member);
        assert!(label.contains("Save labels"), "{label}");
        assert!(
            FailureCause::Throttled
                .hint(Audience::Member)
                .contains("Nothing to do")
        );
    }

    #[test]
    fn connection_causes_are_told_from_one_mailbox_s() {
        use FailureCause::*;
        for cause in [
            KeyRejected,
            ScopeNotDelegated,
            AppRestricted,
            AdminNotAdministrator,
            MsConsentMissing,
            MsSecretExpired,
        ] {
            assert!(cause.is_connection_wide(), "{cause:?}");
            assert!(cause.needs_admin(), "{cause:?}");
        }
        for cause in [
            UserGone,
            UserSuspended,
            GmailNotEnabled,
            MsNoMailbox,
            MsAccessPolicy,
            GoogleAuthOther,
            Throttled,
            MissingLabel,
            ImapLoginRefused,
        ] {
            assert!(!cause.is_connection_wide(), "{cause:?}");
        }
    }

    /// A calendar refused alone gets the calendar's fix, not the mail permission's,
    /// cause by cause, for the admin and the member; the same answer met on the mailbox
    /// keeps the mailbox's cause.
    #[test]
    fn each_calendar_cause_gets_its_own_hint() {
        use FailureCause::*;
        use HintProvider::*;
        use LinkErrorStatus::*;
        /// Provider, reason, message, the calendar's cause, the mailbox's, the fix's words.
        type Case = (
            HintProvider,
            Option<&'static str>,
            &'static str,
            FailureCause,
            FailureCause,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                Google,
                Some("unauthorized_client"),
                "Client is unauthorized to retrieve access tokens using this method",
                CalendarScopeNotDelegated,
                ScopeNotDelegated,
                "calendar.readonly",
            ),
            (
                Google,
                None,
                "Client is unauthorized to retrieve access tokens using this method",
                CalendarScopeNotDelegated,
                ScopeNotDelegated,
                "Domain-wide delegation",
            ),
            (
                Google,
                Some("insufficientPermissions"),
                "Request had insufficient authentication scopes.",
                CalendarScopeNotDelegated,
                ScopeNotDelegated,
                "calendar.readonly",
            ),
            (
                Google,
                Some("accessNotConfigured"),
                "Google Calendar API has not been used in project 1 before or it is disabled.",
                CalendarApiNotEnabled,
                ApiNotEnabled,
                "Google Calendar API",
            ),
            (
                Microsoft,
                Some("ErrorAccessDenied"),
                "Access is denied. Check credentials and try again.",
                MsCalendarDenied,
                MsMailDenied,
                "Calendars.Read",
            ),
        ];
        for (provider, reason, message, calendar, mailbox, words) in cases {
            let at = |site| FailureCause::classify(*provider, site, Unauthorized, *reason, message);
            assert_eq!(
                at(FailureSite::Calendar),
                *calendar,
                "{reason:?}: {message}"
            );
            assert_eq!(at(FailureSite::Mailbox), *mailbox, "{reason:?}: {message}");
            let admin = calendar.hint(Audience::Admin);
            assert!(admin.contains(words), "{calendar:?}: {admin}");
            assert!(admin.contains("Retry"), "{admin}");
            assert!(
                !admin.contains("Mail.ReadBasic") && !admin.contains("Gmail API"),
                "{admin}"
            );
            assert_ne!(admin, mailbox.hint(Audience::Admin));
            let member = calendar.hint(Audience::Member);
            assert!(member.contains("meetings") && member.contains("administrators"));
            assert!(!member.contains("Admin console") && !member.contains("API permissions"));
        }
        // On the calendar, what is not a calendar permission keeps its own cause.
        let calendar = |provider, status, reason, message| {
            FailureCause::classify(
                provider,
                FailureSite::Calendar,
                status,
                Some(reason),
                message,
            )
        };
        assert_eq!(
            calendar(Google, LinkageError, "userRateLimitExceeded", ""),
            Throttled
        );
        assert_eq!(
            calendar(
                Google,
                AuthenticationError,
                "invalid_grant",
                "Invalid email or User ID"
            ),
            UserGone
        );
        assert_eq!(
            calendar(
                Microsoft,
                Unauthorized,
                "ErrorAccessDenied",
                "Access to OData is disabled."
            ),
            MsAccessPolicy
        );
        assert_eq!(
            calendar(Microsoft, LinkageError, INCOMPLETE_RUN_CODE, "gap"),
            IncompleteRun
        );
    }

    const KEY: FailureCause = FailureCause::KeyRejected;
    const SCOPE: FailureCause = FailureCause::ScopeNotDelegated;
    const ADMIN: FailureCause = FailureCause::AdminNotAdministrator;

    #[test]
    fn unknown_codes_fall_back_to_the_status_s_hint_in_the_provider_s_words() {
        let google = |status| {
            FailureCause::classify(HintProvider::Google, FailureSite::Mailbox, status, None, "")
        };
        assert_eq!(
            google(LinkErrorStatus::AuthenticationError).hint(Audience::Admin),
            LinkErrorStatus::AuthenticationError.fix_hint()
        );
        assert_eq!(
            google(LinkErrorStatus::LinkageError),
            FailureCause::Unexpected
        );
        let microsoft = FailureCause::classify(
            HintProvider::Microsoft,
            FailureSite::Mailbox,
            LinkErrorStatus::Unauthorized,
            Some("invalid_grant"),
            "Invalid JWT Signature.",
        );
        assert_eq!(microsoft, FailureCause::MsAccessOther);
        assert!(microsoft.hint(Audience::Admin).contains("Microsoft"));
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
