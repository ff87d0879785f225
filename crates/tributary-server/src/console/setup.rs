//! The setup: a choice of provider (Google Workspace here, Microsoft 365 in
//! `setup_microsoft`), and the Google wizard: upload the service-account key, copy the
//! client ID and scopes into Google's Domain-Wide Delegation page, test the connection,
//! and turn capture on or off (which mails the tenant's admins, whatever the provider).
//! The private key is never shown.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::{SignedForm, SignedUpload};
use super::layout::{self, Notice, Section, copy_button, csrf_field, status_badge};
use super::session::{Admin, Viewer, tenant_admin_emails};
use crate::AppState;
use crate::notify::{self, Delivery};
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use tributary_store::LinkStatus;
use tributary_sync::runtime::KeyReplacement;
use tributary_sync::{ConnectionCheck, GoogleSetup, RuntimeError};

/// The form field holding the key file.
pub const KEY_FILE_FIELD: &str = "key_file";

/// The checkbox that replaces a stored key even when the new one fails its test.
pub const REPLACE_ANYWAY_FIELD: &str = "replace_anyway";

/// The page's query: only the outcome of the form posted just before.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    flash: Option<String>,
    /// What the admin typed into a Microsoft form that was refused, shown again (IDs
    /// only: never a secret).
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

impl PageQuery {
    pub fn flash(&self) -> Option<&str> {
        self.flash.as_deref()
    }

    /// The refused form's (directory ID, client ID), if the page shows one again.
    pub fn typed_ids(&self) -> Option<(&str, &str)> {
        match (&self.tenant_id, &self.client_id) {
            (None, None) => None,
            (tenant, client) => Some((
                tenant.as_deref().unwrap_or_default(),
                client.as_deref().unwrap_or_default(),
            )),
        }
    }
}

/// The connected provider's setup: Microsoft 365's once an app registration is
/// stored, Google's otherwise (both offer the other through the provider switch).
pub async fn page(
    state: State<AppState>,
    admin: Admin,
    query: Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    if state
        .runtime
        .microsoft_setup(&admin.0.tenant)
        .await?
        .is_some()
    {
        return super::setup_microsoft::page(state, admin, query).await;
    }
    google_page(state, admin, query).await
}

pub async fn google_page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let outcome = flash::take(&viewer, query.flash.as_deref());
    render(&state, &viewer, &outcome.notices, outcome.check).await
}

/// Links to each provider's setup, the one shown marked.
pub fn provider_switch(microsoft: bool) -> Markup {
    html! {
        nav.provider-switch #provider-switch aria-label="Provider" {
            a href="/setup/google" aria-current=[(!microsoft).then_some("page")] { "Google Workspace" }
            a href="/setup/microsoft" aria-current=[microsoft.then_some("page")] { "Microsoft 365" }
        }
    }
}

/// Every setup form answers 303 to the page, which shows the outcome once.
fn back(viewer: &Viewer, outcome: Outcome) -> Response {
    flash::redirect(viewer, "/setup", outcome)
}

pub async fn upload_key(
    State(state): State<AppState>,
    upload: SignedUpload,
) -> Result<Response, PageError> {
    let viewer = upload.viewer.require_admin()?;
    let admin_email = upload.fields.get("admin_email").unwrap_or_default().trim();
    let key = upload
        .files
        .iter()
        .find(|(name, content)| name == KEY_FILE_FIELD && !content.is_empty());
    let Some((_, key)) = key else {
        let notice = Notice::error("Choose the service account's .json key file to upload.");
        return Ok(back(&viewer, Outcome::notice(notice)));
    };
    let replacement = if upload.fields.checked(REPLACE_ANYWAY_FIELD) {
        KeyReplacement::Anyway
    } else {
        KeyReplacement::IfItWorks
    };
    let notice = match state
        .runtime
        .upload_google_key(&viewer.tenant, key, admin_email, &viewer.email, replacement)
        .await
    {
        Ok(setup) => Notice::success(format!(
            "Key uploaded for {}. Now delegate the scopes below in Google's Admin console, then test the connection.",
            setup.client_email
        )),
        Err(
            error @ (RuntimeError::KeyFile(_)
            | RuntimeError::AdminEmail(_)
            | RuntimeError::AdminDomain { .. }),
        ) => Notice::error(format!(
            "{}. Nothing was stored.",
            capitalized(&error.to_string())
        )),
        Err(RuntimeError::KeyNotReplaced { check }) => key_not_replaced(&check),
        Err(other) => return Err(other.into()),
    };
    Ok(back(&viewer, Outcome::notice(notice)))
}

/// A new key failed its test while a key is stored: what Google said, what to do, and
/// how to replace the stored key anyway when it is the one that no longer works.
fn key_not_replaced(check: &ConnectionCheck) -> Notice {
    let hint = check
        .hint
        .map(|hint| format!(" What to do: {hint}"))
        .unwrap_or_default();
    Notice::error(format!(
        "The new key failed the connection test, so the stored key was kept. Google said: {}.{hint} \
         If the stored key no longer works either, tick \"Replace the stored key even if the new one fails the test\" and upload again.",
        check.message.trim_end_matches('.')
    ))
}

pub async fn test_connection(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let tested = state
        .runtime
        .test_connection(&viewer.tenant, &viewer.email)
        .await;
    let outcome = tested_outcome(
        tested,
        "Upload a service-account key before testing the connection.",
    )?;
    Ok(back(&viewer, outcome))
}

/// What a connection test shows, for every provider: its check, or `not_connected`
/// when there is nothing to test yet.
pub fn tested_outcome(
    tested: Result<ConnectionCheck, RuntimeError>,
    not_connected: &str,
) -> Result<Outcome, PageError> {
    match tested {
        Ok(check) => Ok(Outcome {
            check: Some(check),
            ..Outcome::default()
        }),
        Err(RuntimeError::NotConnected) => Ok(Outcome::notice(Notice::error(not_connected))),
        Err(other) => Err(other.into()),
    }
}

pub async fn set_capture(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let enable = form.fields.get("enabled") == Some("on");
    match state
        .runtime
        .set_capture_enabled(&viewer.tenant, enable, &viewer.email)
        .await
    {
        Ok(()) => {}
        Err(RuntimeError::NotConnected) => {
            let notice = Notice::error("Upload a service-account key before turning capture on.");
            return Ok(back(&viewer, Outcome::notice(notice)));
        }
        Err(other) => return Err(other.into()),
    }
    if !enable {
        let notice = Notice::success("Capture is off: no mailbox is synced until it is on again.");
        return Ok(back(&viewer, Outcome::notice(notice)));
    }
    let mut notices = vec![Notice::success(
        "Capture is on: every linked mailbox is being synced.",
    )];
    notices.push(notify_admins(&state, &viewer).await?);
    Ok(back(&viewer, Outcome::notices(notices)))
}

/// Mails the "capture is on" notice and says how delivery went.
async fn notify_admins(state: &AppState, viewer: &Viewer) -> Result<Notice, PageError> {
    let recipients = tenant_admin_emails(state, &viewer.tenant).await?;
    let tenant_name = state
        .store()
        .tenant_name(&viewer.tenant)
        .await?
        .unwrap_or_else(|| viewer.tenant.as_str().to_owned());
    let notice = notify::CaptureNotice {
        tenant: &tenant_name,
        enabled_by: &viewer.email,
        console_url: &state.config.public_url,
    };
    Ok(
        match notify::send_capture_enabled(state.config.smtp.as_ref(), &recipients, &notice).await {
            Delivery::Sent(to) => Notice::success(format!(
                "The tenant's admins were notified by email: {}.",
                to.join(", ")
            )),
            Delivery::NotConfigured => Notice::warning(
                "No SMTP server is configured, so the tenant's admins were not notified by email.",
            ),
            Delivery::NoRecipients => Notice::warning("No admin has an email address to notify."),
            Delivery::Failed(reason) => Notice::error(format!(
                "Mail delivery failed, so the admins were not notified: {reason}"
            )),
        },
    )
}

pub fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    notices: &[Notice],
    check: Option<ConnectionCheck>,
) -> Result<Html<String>, PageError> {
    let setup = state.runtime.google_setup(&viewer.tenant).await?;
    let banner = super::banner::connection_banner(state.store(), &viewer.tenant).await?;
    let body = html! {
        (banner)
        (provider_switch(false))
        p.lead {
            "Tributary reads mail metadata through a Google Cloud service account with "
            "domain-wide delegation. Four steps, once per organization."
        }
        (upload_step(viewer, setup.as_ref()))
        @if let Some(setup) = &setup {
            (delegation_step(setup))
            (test_step(viewer, check.as_ref()))
            (capture_step(viewer, setup.capture_enabled, 4))
            (super::disconnect::card(tributary_store::ConnectionKind::Google))
        } @else {
            section.card.step.disabled {
                h2 { span.num { "2" } "Delegate, test and enable" }
                p.muted { "Available once a key is uploaded." }
            }
        }
    };
    Ok(layout::page(
        viewer,
        Section::Setup,
        "Google Workspace setup",
        notices,
        body,
    ))
}

fn upload_step(viewer: &Viewer, setup: Option<&GoogleSetup>) -> Markup {
    html! {
        section.card.step #step-key {
            h2 { span.num { "1" } "Upload the service-account key" }
            @if let Some(setup) = setup {
                p {
                    "A key is stored for " strong { (setup.client_email) }
                    " (key id " code { (setup.private_key_id) } "). "
                    "Its private key is sealed and never shown again. Upload a new file to replace it."
                }
            } @else {
                p {
                    "In Google Cloud, open IAM & Admin › Service accounts, pick (or create) the "
                    "service account, then Keys › Add key › JSON, and upload that file here."
                }
            }
            form.stack method="post" action="/setup/key" enctype="multipart/form-data" {
                (csrf_field(viewer))
                label {
                    span { "Key file (.json)" }
                    input type="file" name=(KEY_FILE_FIELD) accept=".json,application/json" required;
                }
                label {
                    span { "Workspace admin address" }
                    input type="email" name="admin_email" required
                        placeholder="admin@yourcompany.com"
                        value=(setup.map_or(viewer.email.as_str(), |s| s.admin_email.as_str()));
                    small { "An administrator Tributary impersonates to read the user directory." }
                }
                @if setup.is_some() {
                    label.switch {
                        input type="checkbox" name=(REPLACE_ANYWAY_FIELD);
                        span {
                            strong { "Replace the stored key even if the new one fails the test" }
                            " — the new key is tested first and, when the test fails, the stored key is kept. "
                            "Tick this only when the stored key no longer works either."
                        }
                    }
                }
                button.primary type="submit" { "Upload key" }
            }
        }
    }
}

fn delegation_step(setup: &GoogleSetup) -> Markup {
    html! {
        section.card.step #step-delegation {
            h2 { span.num { "2" } "Delegate the scopes in Google's Admin console" }
            p {
                "Open " a href=(setup.delegation_url) target="_blank" rel="noopener noreferrer" {
                    "Security › API controls › Domain-wide delegation"
                }
                ", choose Add new, and paste these two values."
            }
            dl.copyable {
                dt { "Client ID" }
                dd {
                    code #client-id { (setup.client_id) }
                    (copy_button("client-id"))
                }
                dt { "OAuth scopes (comma-delimited)" }
                dd {
                    code #scopes { (setup.scopes_csv) }
                    (copy_button("scopes"))
                }
            }
            details {
                summary { "What each scope is for (" (setup.scopes.len()) ")" }
                ul.scopes { @for scope in &setup.scopes { li { code { (scope) } } } }
            }
        }
    }
}

fn test_step(viewer: &Viewer, check: Option<&ConnectionCheck>) -> Markup {
    let step = TestStep {
        number: 3,
        explains: "Mints a token with every scope and reads the first page of the directory.",
        action: "/setup/test",
        provider: "Google",
    };
    step.render(viewer, check)
}

/// A provider's "Test the connection" step: what the test does, where its form posts,
/// and who answers.
pub struct TestStep {
    pub number: u8,
    pub explains: &'static str,
    pub action: &'static str,
    pub provider: &'static str,
}

impl TestStep {
    pub fn render(&self, viewer: &Viewer, check: Option<&ConnectionCheck>) -> Markup {
        html! {
            section.card.step #step-test {
                h2 { span.num { (self.number) } "Test the connection" }
                p { (self.explains) }
                form method="post" action=(self.action) {
                    (csrf_field(viewer))
                    button type="submit" { "Test connection" }
                }
                @if let Some(check) = check {
                    (check_result(check, self.provider))
                }
            }
        }
    }
}

/// A connection test's outcome: what succeeded, or the status, what `provider` said
/// (escaped like any text) and what to do.
pub fn check_result(check: &ConnectionCheck, provider: &str) -> Markup {
    html! {
        div.check class=(if check.ok { "check ok" } else { "check failed" }) #connection-check {
            @if check.ok {
                p { span.badge.status-idle { "Connected" } " " (check.message) }
                @if let Some(seen) = check.accounts_seen {
                    p.muted { (seen) " directory accounts on the first page." }
                }
            } @else {
                p {
                    @if let Some(status) = check.status {
                        (status_badge(LinkStatus::from(status)))
                    }
                }
                p { strong { (provider) " said: " } span.provider-message { (check.message) } }
                @if let Some(hint) = check.hint {
                    p.hint { strong { "What to do: " } (hint) }
                }
            }
        }
    }
}

/// The capture switch, the same for every provider.
pub fn capture_step(viewer: &Viewer, capture_enabled: bool, step: u8) -> Markup {
    html! {
        section.card.step #step-capture {
            h2 { span.num { (step) } "Capture" }
            @if capture_enabled {
                p { span.badge.status-idle #capture-state { "On" } " Linked mailboxes are synced continuously." }
                form method="post" action="/setup/capture" {
                    (csrf_field(viewer))
                    input type="hidden" name="enabled" value="off";
                    button.danger type="submit" { "Turn capture off" }
                }
            } @else {
                p {
                    span.badge.status-unlinked #capture-state { "Off" }
                    " Nothing is synced. Turning capture on notifies the tenant's admins by email."
                }
                form method="post" action="/setup/capture" {
                    (csrf_field(viewer))
                    input type="hidden" name="enabled" value="on";
                    button.primary type="submit" { "Enable capture" }
                }
            }
        }
    }
}
