//! Who may call what: the bearer token (401 `InvalidAuthenticationToken`), the app roles
//! it carries (403), and for mailbox calls the user, the mailbox, the application access
//! policy and Outlook's throttling.

use super::envelope::{self, GraphError};
use super::identity::registry::{Grant, unix_now};
use super::state::MicrosoftState;
use super::throttling;
use crate::kit::Permit;
use axum::http::{HeaderMap, StatusCode, header};
use std::sync::{Arc, Mutex, PoisonError};

/// Roles that allow reading users.
const DIRECTORY_ROLES: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
/// Roles that allow reading mail (ReadBasic without bodies).
const MAIL_ROLES: &[&str] = &[
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.ReadBasic.All",
    "Mail.ReadBasic",
];

/// Roles that allow reading calendars.
const CALENDAR_ROLES: &[&str] = &[
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.ReadBasic.All",
];

fn invalid_token(message: &str) -> GraphError {
    let mut error = GraphError::new(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    error.www_authenticate = Some(
        "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"".into(),
    );
    error
}

/// The grant behind the request's bearer token.
pub fn authenticate(state: &MicrosoftState, headers: &HeaderMap) -> Result<Grant, GraphError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .unwrap_or("")
        .trim();
    if token.is_empty() {
        return Err(invalid_token("Access token is empty."));
    }
    let grant = state
        .identity()
        .lookup(token)
        .cloned()
        .ok_or_else(|| invalid_token("Access token validation failure. Invalid audience."))?;
    if grant.expires_at <= unix_now() {
        return Err(invalid_token(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    Ok(grant)
}

fn has_any(grant: &Grant, roles: &[&str]) -> bool {
    roles.iter().any(|r| grant.roles.contains(*r))
}

/// A directory call: needs a user-reading role.
pub fn require_directory(grant: &Grant) -> Result<(), GraphError> {
    if has_any(grant, DIRECTORY_ROLES) {
        Ok(())
    } else {
        Err(envelope::directory_role_missing())
    }
}

/// Whether the grant may read bodies (Mail.ReadBasic.All alone may not).
pub fn reads_bodies(grant: &Grant) -> bool {
    has_any(grant, &["Mail.Read", "Mail.ReadWrite"])
}

/// An admitted mailbox call: the user's id and the throttling permit.
#[derive(Debug)]
pub struct MailboxCall {
    pub user_id: String,
    pub permit: Permit,
}

/// Where a request's throttling permit waits until its answer leaves (after any
/// injected latency), so slow answers occupy the mailbox's concurrency as on Graph.
#[derive(Debug, Clone, Default)]
pub struct PermitHolder(Arc<Mutex<Vec<Permit>>>);

impl PermitHolder {
    pub fn keep(&self, permit: Permit) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(permit);
    }

    /// Frees the permits now (they are also freed when the last clone drops).
    pub fn release(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Checks a mailbox call for `user` (id or UPN) in the order Graph does: role, user,
/// mailbox, access policy, then throttling.
pub fn open_mailbox(
    state: &MicrosoftState,
    grant: &Grant,
    user: &str,
) -> Result<MailboxCall, GraphError> {
    open_with_roles(state, grant, user, MAIL_ROLES)
}

/// [`open_mailbox`] for a calendar call: needs a calendar role instead of a mail role.
pub fn open_calendar(
    state: &MicrosoftState,
    grant: &Grant,
    user: &str,
) -> Result<MailboxCall, GraphError> {
    open_with_roles(state, grant, user, CALENDAR_ROLES)
}

fn open_with_roles(
    state: &MicrosoftState,
    grant: &Grant,
    user: &str,
    roles: &[&str],
) -> Result<MailboxCall, GraphError> {
    if !has_any(grant, roles) {
        return Err(envelope::mail_role_missing());
    }
    let user_id = {
        let tenant = state.tenant();
        let entra = tenant
            .user(user)
            .ok_or_else(envelope::mailbox_user_not_found)?;
        let enabled = tenant.mailboxes.get(&entra.id).is_some_and(|m| m.enabled);
        if !enabled {
            return Err(envelope::mailbox_not_enabled());
        }
        entra.id.clone()
    };
    if !state.identity().policy_allows(&grant.client_id, &user_id) {
        return Err(envelope::access_policy_denied());
    }
    let permit = state
        .throttling
        .admit(&throttling::key(&grant.client_id, &user_id))
        .map_err(|refusal| {
            state.counters.record_throttled(&user_id, refusal.kind);
            throttling::throttled(&refusal)
        })?;
    Ok(MailboxCall { user_id, permit })
}
