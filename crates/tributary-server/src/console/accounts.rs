//! The Accounts page (admins): every console account of the tenant with its role,
//! whether it is active, when it was created and last signed in; per account, forms to
//! disable or enable it, make it admin or member, reset its password (the new one is
//! shown once, on the answer page) and remove it (a ticked confirmation); and a form to
//! create one with a generated password.
//!
//! An account's role is the only role there is: it decides what the account may do at
//! its next request. The store refuses to take the last active admin away; the page says
//! so instead of failing.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::SignedForm;
use super::layout::{self, Notice, Section, copy_button, csrf_field, date, empty, time};
use super::session::{Admin, Viewer};
use crate::AppState;
use crate::api::accounts::{MAX_EMAIL_CHARS, generate_password};
use crate::auth::PasswordError;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use tributary_store::{AccountError, MemberRole, UserId, UserView};

/// The page's query: only the outcome of the form posted just before.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    flash: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let outcome = flash::take(&viewer, query.flash.as_deref());
    let shown = outcome
        .password
        .map(|(email, password)| OneTimePassword { email, password });
    render(&state, &viewer, &outcome.notices, shown).await
}

/// Every form answers 303 to the page, which shows the outcome (and a new password)
/// once: a reload repeats nothing and shows no password again.
fn back(viewer: &Viewer, notice: Notice, shown: Option<OneTimePassword>) -> Response {
    let outcome = Outcome {
        notices: vec![notice],
        password: shown.map(|shown| (shown.email, shown.password)),
        ..Outcome::default()
    };
    flash::redirect(viewer, "/accounts", outcome)
}

/// What an action asked for, read from the posted form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Disable,
    Enable,
    MakeAdmin,
    MakeMember,
    ResetPassword,
    Remove,
}

impl Action {
    fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "disable" => Action::Disable,
            "enable" => Action::Enable,
            "make_admin" => Action::MakeAdmin,
            "make_member" => Action::MakeMember,
            "reset_password" => Action::ResetPassword,
            "remove" => Action::Remove,
            _ => return None,
        })
    }

    /// The verb for "You cannot … the last active admin".
    fn verb(self) -> &'static str {
        match self {
            Action::Disable => "disable",
            Action::MakeMember => "demote",
            Action::Remove => "remove",
            _ => "change",
        }
    }

    /// Whether doing it to oneself ends one's admin session.
    fn ends_own_admin_rights(self) -> bool {
        matches!(self, Action::Disable | Action::MakeMember | Action::Remove)
    }
}

/// A password just set: shown once, on this answer only.
struct OneTimePassword {
    email: String,
    password: String,
}

/// Every form of the page posts here: `action` and `account` (an id), or `create`.
pub async fn act(State(state): State<AppState>, form: SignedForm) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    if form.fields.get("action") == Some("create") {
        let email = form.fields.get("email").unwrap_or_default();
        let role = role_field(form.fields.get("role"))?;
        return create(&state, &viewer, email, role).await;
    }
    let action = form
        .fields
        .get("action")
        .and_then(Action::parse)
        .ok_or_else(|| PageError::BadRequest("choose an action for the account".to_owned()))?;
    let id: i64 = form
        .fields
        .get("account")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| PageError::BadRequest("the account id is not a number".to_owned()))?;
    let account = state
        .store()
        .user(&viewer.tenant, UserId(id))
        .await?
        .ok_or_else(|| PageError::NotFound(format!("account {id} is not in this tenant")))?;
    // Ids may be reused after a removal (SQLite): the form names the email it was for.
    if form
        .fields
        .get("email")
        .is_some_and(|email| email != account.email)
    {
        let notice = Notice::warning(
            "The accounts changed since this page was shown: nothing was done. Check the list and try again.",
        );
        return Ok(back(&viewer, notice, None));
    }
    if action == Action::Remove && !form.fields.checked("confirm") {
        let notice = Notice::warning(format!(
            "Tick the confirmation to remove {}: nothing was removed.",
            account.email
        ));
        return Ok(back(&viewer, notice, None));
    }
    let outcome = apply(&state, &viewer, action, &account).await;
    let (notice, shown) = match outcome {
        Ok(shown) => {
            if account.email == viewer.email && action.ends_own_admin_rights() {
                // The session is a member's (or gone) from now on: start over from home.
                return Ok(Redirect::to("/").into_response());
            }
            (Notice::success(done_text(action, &account.email)), shown)
        }
        Err(PasswordError::Account(AccountError::LastAdmin { .. })) => (
            Notice::error(format!(
                "You cannot {} the last active admin ({}): make another account admin first.",
                action.verb(),
                account.email
            )),
            None,
        ),
        Err(PasswordError::Account(AccountError::UnknownUser { .. })) => {
            return Err(PageError::NotFound(format!(
                "account {id} is not in this tenant"
            )));
        }
        Err(PasswordError::Account(AccountError::Store(error))) => return Err(error.into()),
        Err(PasswordError::Account(other)) => (Notice::error(sentence(&other.to_string())), None),
        // A generated password is never weak: hashing itself failed.
        Err(other) => return Err(PageError::BadRequest(other.to_string())),
    };
    Ok(back(&viewer, notice, shown))
}

/// Does `action` to `account`; a reset password comes back to be shown once.
async fn apply(
    state: &AppState,
    viewer: &Viewer,
    action: Action,
    account: &UserView,
) -> Result<Option<OneTimePassword>, PasswordError> {
    let (store, tenant, actor) = (state.store(), &viewer.tenant, viewer.email.as_str());
    match action {
        Action::Disable | Action::Enable => {
            let active = action == Action::Enable;
            store
                .set_user_active(tenant, account.id, active, actor)
                .await?;
        }
        Action::MakeAdmin | Action::MakeMember => {
            let role = if action == Action::MakeAdmin {
                MemberRole::Admin
            } else {
                MemberRole::Member
            };
            store.set_user_role(tenant, account.id, role, actor).await?;
        }
        Action::ResetPassword => {
            let password = generate_password();
            let hash = crate::auth::hash_new_password(&password, &[&account.email]).await?;
            store
                .reset_user_password(tenant, account.id, &hash, true, actor)
                .await?;
            return Ok(Some(OneTimePassword {
                email: account.email.clone(),
                password,
            }));
        }
        Action::Remove => {
            store.remove_user(tenant, account.id, actor).await?;
        }
    }
    Ok(None)
}

fn done_text(action: Action, email: &str) -> String {
    match action {
        Action::Disable => {
            format!("{email} is disabled: its sessions ended and its API tokens are revoked.")
        }
        Action::Enable => format!("{email} is enabled: it can sign in again."),
        Action::MakeAdmin => format!("{email} is now an admin."),
        Action::MakeMember => format!("{email} is now a member: it lost admin rights."),
        Action::ResetPassword => {
            format!("{email} has a new password (below, shown once); its sessions ended.")
        }
        Action::Remove => format!("{email} is removed; the audit log keeps what it did."),
    }
}

fn role_field(value: Option<&str>) -> Result<MemberRole, PageError> {
    match value.unwrap_or("member") {
        "admin" => Ok(MemberRole::Admin),
        "member" => Ok(MemberRole::Member),
        other => Err(PageError::BadRequest(format!(
            "`{other}` is neither admin nor member"
        ))),
    }
}

/// Creates an account with a generated password, shown once.
async fn create(
    state: &AppState,
    viewer: &Viewer,
    email: &str,
    role: MemberRole,
) -> Result<Response, PageError> {
    let email = email.trim();
    if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS {
        let notice = Notice::error(format!(
            "Give the account an email address (at most {MAX_EMAIL_CHARS} characters)."
        ));
        return Ok(back(viewer, notice, None));
    }
    let password = generate_password();
    let created = crate::auth::create_user(
        state.store(),
        &viewer.tenant,
        email,
        role,
        &password,
        &viewer.email,
    )
    .await;
    match created {
        Ok(_) => {
            let email = email.to_lowercase();
            let notice = Notice::success(format!(
                "{email} can sign in with the password below (shown once)."
            ));
            let shown = OneTimePassword { email, password };
            Ok(back(viewer, notice, Some(shown)))
        }
        Err(PasswordError::Account(AccountError::Store(error))) => Err(error.into()),
        Err(PasswordError::Account(error)) => {
            let notice = Notice::error(sentence(&error.to_string()));
            Ok(back(viewer, notice, None))
        }
        Err(other) => Err(PageError::BadRequest(other.to_string())),
    }
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    notices: &[Notice],
    shown: Option<OneTimePassword>,
) -> Result<Html<String>, PageError> {
    let accounts = state.store().users(&viewer.tenant).await?;
    let body = html! {
        @if let Some(shown) = &shown { (one_time_password(shown)) }
        section.card {
            p.muted {
                "Accounts are who may sign in to this console or use its API, and their role "
                "decides what they may do: an admin manages the tenant, a member sees only "
                "their own mailbox settings. Members on the Users page are the people whose "
                "mail is captured; they have no role."
            }
            @if accounts.is_empty() { (empty("No accounts yet.")) } @else {
                table.data #accounts {
                    thead { tr {
                        th { "Email" } th { "Role" } th { "Status" } th { "Created" }
                        th { "Last sign-in" } th { "Actions" }
                    } }
                    tbody { @for account in &accounts { (account_row(viewer, account)) } }
                }
            }
        }
        (create_form(viewer))
    };
    Ok(layout::page(
        viewer,
        Section::Accounts,
        "Accounts",
        notices,
        body,
    ))
}

fn one_time_password(shown: &OneTimePassword) -> Markup {
    html! {
        section.card #one-time-password {
            h2 { "New password for " (shown.email) }
            p {
                code #new-password { (shown.password) }
                " " (copy_button("new-password"))
            }
            p.muted { "Give it to its owner now: it is not stored and will not be shown again." }
        }
    }
}

fn account_row(viewer: &Viewer, account: &UserView) -> Markup {
    let id = account.id.0.to_string();
    let role = match account.role {
        MemberRole::Admin => "admin",
        MemberRole::Member => "member",
    };
    html! {
        tr data-account=(id) {
            td { (account.email) @if account.email == viewer.email { " " span.muted { "(you)" } } }
            td { (role) }
            td {
                @if account.active { span.badge.status-idle { "Active" } }
                @else { span.badge.status-unlinked { "Disabled" } }
            }
            td { (date(account.created_ms)) }
            td { (time(account.last_signin_ms)) }
            td.actions {
                @if account.active {
                    (action_form(viewer, account, "disable", "Disable"))
                } @else {
                    (action_form(viewer, account, "enable", "Enable"))
                }
                @if account.role == MemberRole::Admin {
                    (action_form(viewer, account, "make_member", "Make member"))
                } @else {
                    (action_form(viewer, account, "make_admin", "Make admin"))
                }
                (action_form(viewer, account, "reset_password", "Reset password"))
                details {
                    summary { "Remove…" }
                    form method="post" action="/accounts" {
                        (csrf_field(viewer))
                        input type="hidden" name="account" value=(id);
                        input type="hidden" name="email" value=(account.email);
                        label {
                            input type="checkbox" name="confirm" value="yes" required;
                            " Remove " (account.email) " for good: its sessions end and its API tokens stop working"
                        }
                        button.danger type="submit" name="action" value="remove" { "Remove" }
                    }
                }
            }
        }
    }
}

fn action_form(viewer: &Viewer, account: &UserView, action: &str, label: &str) -> Markup {
    html! {
        form method="post" action="/accounts" {
            (csrf_field(viewer))
            input type="hidden" name="account" value=(account.id.0);
            input type="hidden" name="email" value=(account.email);
            button type="submit" name="action" value=(action) { (label) }
        }
    }
}

fn create_form(viewer: &Viewer) -> Markup {
    html! {
        section.card #create-account {
            h2 { "Add an account" }
            form.stack method="post" action="/accounts" {
                (csrf_field(viewer))
                label {
                    span { "Email" }
                    input type="email" name="email" required maxlength=(MAX_EMAIL_CHARS);
                }
                label {
                    span { "Role" }
                    select name="role" {
                        option value="member" selected { "Member" }
                        option value="admin" { "Admin" }
                    }
                }
                button.primary type="submit" name="action" value="create" { "Add with a generated password" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_name_what_the_guard_refuses() {
        assert_eq!(Action::parse("make_member"), Some(Action::MakeMember));
        assert_eq!(Action::parse("drop_table"), None);
        assert_eq!(Action::MakeMember.verb(), "demote");
        assert!(Action::Remove.ends_own_admin_rights());
        assert!(!Action::ResetPassword.ends_own_admin_rights());
    }
}
