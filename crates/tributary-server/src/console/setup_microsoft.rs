//! The Microsoft 365 setup: register an app in Entra ID with the permissions listed,
//! give its directory (tenant) ID, application (client) ID and a client secret or a
//! certificate, grant admin consent (Microsoft redirects back here), test the
//! connection, and turn capture on. The secret and the private key are never shown.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::{SignedForm, SignedUpload};
use super::layout::{self, Notice, Section, copy_button, csrf_field};
use super::session::{Admin, Viewer};
use super::setup::{
    PageQuery, TestStep, capitalized, capture_step, provider_switch, tested_outcome,
};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use sha2::{Digest, Sha256};
use tributary_sync::RuntimeError;
use tributary_sync::runtime::{
    ConsentOutcome, ConsentRecord, CredentialView, MicrosoftCredential, MicrosoftSetup,
};

/// Where the console's pages for Microsoft live.
pub const PAGE: &str = "/setup/microsoft";

/// Where Microsoft's admin-consent page sends the admin back.
pub const CONSENT_RETURN: &str = "/setup/microsoft/consent";

/// The scope app-only consent asks for: every application permission of the app on
/// Graph (Microsoft's name for Graph, whatever address it is reached at).
const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

pub const CERTIFICATE_FIELD: &str = "certificate_file";
pub const PRIVATE_KEY_FIELD: &str = "private_key_file";

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let outcome = flash::take(&viewer, query.flash());
    let setup = state.runtime.microsoft_setup(&viewer.tenant).await?;
    let banner = super::banner::connection_banner(state.store(), &viewer.tenant).await?;
    let page = Shown {
        setup: setup.as_ref(),
        banner,
        typed: query.typed_ids(),
        notices: &outcome.notices,
        check: outcome.check.as_ref(),
    };
    Ok(render(&state, &viewer, &page))
}

fn back(viewer: &Viewer, outcome: Outcome) -> Response {
    flash::redirect(viewer, PAGE, outcome)
}

/// Saves the app registration: IDs and a secret, or a certificate and its key.
pub async fn save_app(
    State(state): State<AppState>,
    upload: SignedUpload,
) -> Result<Response, PageError> {
    let viewer = upload.viewer.require_admin()?;
    let fields = &upload.fields;
    let credential = match credential_from(
        fields.get("credential"),
        fields.get("client_secret"),
        &upload.files,
    ) {
        Ok(credential) => credential,
        Err(message) => return Ok(back(&viewer, Outcome::notice(Notice::error(message)))),
    };
    let notice = match state
        .runtime
        .connect_microsoft(
            &viewer.tenant,
            fields.get("tenant_id").unwrap_or_default(),
            fields.get("client_id").unwrap_or_default(),
            credential,
            &viewer.email,
        )
        .await
    {
        Ok(()) => Notice::success(
            "App registration saved. Now grant admin consent, then test the connection.",
        ),
        Err(RuntimeError::MicrosoftField { field, reason }) => {
            let notice = Notice::error(format!(
                "{} is not usable: {reason}. Nothing was stored.",
                field_label(field)
            ));
            let again = typed_again(fields.get("tenant_id"), fields.get("client_id"));
            return Ok(flash::redirect(&viewer, &again, Outcome::notice(notice)));
        }
        Err(error @ RuntimeError::MicrosoftConnector(_)) => Notice::error(format!(
            "{}. Nothing was stored.",
            capitalized(&error.to_string())
        )),
        Err(other) => return Err(other.into()),
    };
    Ok(back(&viewer, Outcome::notice(notice)))
}

/// The private key's PEM block out of a file that holds the certificate too (what
/// `openssl req -x509 -nodes -keyout same.pem -out same.pem` writes), or the whole text
/// when there is none, so that the key's own check names what is missing.
pub fn private_key_block(pem: &str) -> String {
    for label in ["PRIVATE KEY", "RSA PRIVATE KEY"] {
        let (begin, end) = (
            format!("-----BEGIN {label}-----"),
            format!("-----END {label}-----"),
        );
        let Some(start) = pem.find(&begin) else {
            continue;
        };
        if let Some(length) = pem[start..].find(&end) {
            return pem[start..start + length + end.len()].to_owned();
        }
    }
    pem.to_owned()
}

/// Longest typed ID carried back to the form (a domain name's limit).
const MAX_TYPED_ID: usize = 253;

/// The page again with what the admin typed in the ID fields (never the secret).
fn typed_again(tenant_id: Option<&str>, client_id: Option<&str>) -> String {
    let bounded = |text: Option<&str>| -> String {
        text.unwrap_or_default()
            .trim()
            .chars()
            .take(MAX_TYPED_ID)
            .collect()
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("tenant_id", &bounded(tenant_id))
        .append_pair("client_id", &bounded(client_id))
        .finish();
    format!("{PAGE}?{query}")
}

/// A refused field as the form labels it.
fn field_label(field: &str) -> &str {
    match field {
        "tenant_id" => "Directory (tenant) ID",
        "client_id" => "Application (client) ID",
        "client_secret" => "Client secret",
        "certificate" => "Certificate",
        other => other,
    }
}

/// The credential the form chose, or what to fix. A PEM file may hold the certificate
/// and the key together, so the key file is optional.
fn credential_from(
    kind: Option<&str>,
    secret: Option<&str>,
    files: &[(String, axum::body::Bytes)],
) -> Result<MicrosoftCredential, String> {
    let file = |name: &str| {
        files
            .iter()
            .find(|(field, content)| field == name && !content.is_empty())
            .map(|(_, content)| String::from_utf8_lossy(content).into_owned())
    };
    match kind {
        Some("certificate") => {
            let certificate_pem = file(CERTIFICATE_FIELD).ok_or(
                "Choose the certificate file (.pem) that is uploaded to the app registration.",
            )?;
            let private_key_pem =
                file(PRIVATE_KEY_FIELD).unwrap_or_else(|| private_key_block(&certificate_pem));
            Ok(MicrosoftCredential::Certificate {
                certificate_pem,
                private_key_pem,
            })
        }
        Some("secret") | None => Ok(MicrosoftCredential::Secret(
            secret.unwrap_or_default().to_owned(),
        )),
        Some(_) => Err("Choose a client secret or a certificate.".to_owned()),
    }
}

pub async fn test_connection(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let tested = state
        .runtime
        .test_microsoft_connection(&viewer.tenant, &viewer.email)
        .await;
    let outcome = tested_outcome(
        tested,
        "Save the app registration before testing the connection.",
    )?;
    Ok(back(&viewer, outcome))
}

/// What Microsoft's admin-consent page sends back.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ConsentAnswer {
    pub admin_consent: Option<String>,
    pub tenant: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The return from Microsoft's admin-consent page: only for the session that left
/// from the setup page (`state`), recorded, then the connection tested.
pub async fn consent_return(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(answer): Query<ConsentAnswer>,
) -> Result<Response, PageError> {
    let expected = consent_state(&viewer);
    let from_this_session = answer
        .state
        .as_deref()
        .is_some_and(|given| super::forms::constant_time_eq(given.as_bytes(), expected.as_bytes()));
    if !from_this_session {
        let notice = Notice::error(
            "This consent answer did not start from your setup page, so it was ignored. \
             Use the Grant admin consent button below.",
        );
        return Ok(back(&viewer, Outcome::notice(notice)));
    }
    let Some(outcome) = consent_outcome(&answer) else {
        let notice = Notice::error(
            "Microsoft's answer said neither that consent was granted nor why not. Try Grant admin consent again.",
        );
        return Ok(back(&viewer, Outcome::notice(notice)));
    };
    let record = match state
        .runtime
        .record_microsoft_consent(&viewer.tenant, outcome, &viewer.email)
        .await
    {
        Ok(record) => record,
        Err(RuntimeError::MicrosoftField { reason, .. }) => {
            let notice = Notice::error(format!(
                "{}. Consent was not recorded.",
                capitalized(&reason)
            ));
            return Ok(back(&viewer, Outcome::notice(notice)));
        }
        Err(RuntimeError::NotConnected) => {
            let notice = Notice::error("Save the app registration before granting consent.");
            return Ok(back(&viewer, Outcome::notice(notice)));
        }
        Err(other) => return Err(other.into()),
    };
    if !record.granted {
        let notice = Notice::error(format!(
            "Microsoft did not grant consent: {}",
            consent_failure(&record)
        ));
        return Ok(back(&viewer, Outcome::notice(notice)));
    }
    let check = state
        .runtime
        .test_microsoft_connection(&viewer.tenant, &viewer.email)
        .await?;
    let notice =
        Notice::success("Admin consent granted. The connection was tested right away: see step 4.");
    Ok(back(
        &viewer,
        Outcome {
            notices: vec![notice],
            check: Some(check),
            ..Outcome::default()
        },
    ))
}

/// An `error` wins over `admin_consent=True` (v2 sends both when the admin declined).
pub fn consent_outcome(answer: &ConsentAnswer) -> Option<ConsentOutcome> {
    if let Some(error) = answer.error.as_deref().filter(|e| !e.trim().is_empty()) {
        return Some(ConsentOutcome::Refused {
            error: error.to_owned(),
            description: answer.error_description.clone().unwrap_or_default(),
        });
    }
    let granted = answer
        .admin_consent
        .as_deref()
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    match (&answer.tenant, granted) {
        (Some(directory), true) => Some(ConsentOutcome::Granted {
            directory: directory.clone(),
        }),
        _ => None,
    }
}

fn consent_failure(record: &ConsentRecord) -> String {
    let error = record.error.as_deref().unwrap_or_default();
    match record
        .error_description
        .as_deref()
        .filter(|d| !d.is_empty())
    {
        Some(description) => format!("{error}: {description}"),
        None => error.to_owned(),
    }
}

/// The `state` a consent round trip carries: derived from the session's CSRF secret,
/// so only the session that left can come back, and the secret itself never travels.
fn consent_state(viewer: &Viewer) -> String {
    let mut hash = Sha256::new();
    hash.update(b"tributary.microsoft.admin-consent\n");
    hash.update(viewer.csrf.as_bytes());
    hex::encode(hash.finalize())
}

/// Microsoft's v2 admin-consent URL for the app, on the operator's identity platform
/// (never a host a tenant typed: the directory is one escaped path segment).
pub fn consent_url(
    authority: &str,
    setup: &MicrosoftSetup,
    redirect_uri: &str,
    state: &str,
) -> String {
    let directory: String = form_urlencoded::byte_serialize(setup.tenant_id.as_bytes()).collect();
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &setup.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("scope", GRAPH_DEFAULT_SCOPE)
        .finish();
    format!(
        "{}/{directory}/v2.0/adminconsent?{query}",
        authority.trim_end_matches('/')
    )
}

/// Where Microsoft sends the admin back: this console's own address.
pub fn consent_redirect_uri(state: &AppState) -> String {
    format!(
        "{}{CONSENT_RETURN}",
        state.config.public_url.trim_end_matches('/')
    )
}

/// What the page shows.
struct Shown<'a> {
    setup: Option<&'a MicrosoftSetup>,
    /// The connection's banner when links wait for the connection to be fixed.
    banner: Markup,
    /// The IDs of a refused form, shown again in its fields.
    typed: Option<(&'a str, &'a str)>,
    notices: &'a [Notice],
    check: Option<&'a tributary_sync::ConnectionCheck>,
}

fn render(state: &AppState, viewer: &Viewer, shown: &Shown<'_>) -> Html<String> {
    let Shown {
        setup,
        ref banner,
        typed,
        notices,
        check,
    } = *shown;
    let body = html! {
        (banner)
        (provider_switch(true))
        p.lead {
            "Tributary reads mail metadata through an app registration in Microsoft Entra ID, "
            "with application permissions an administrator consents to once for the whole organization."
        }
        (register_step())
        (app_step(viewer, setup, typed))
        @if let Some(setup) = setup {
            (consent_step(state, viewer, setup))
            (test_step(viewer, check))
            (capture_step(viewer, setup.capture_enabled, 5))
            (super::disconnect::card(tributary_store::ConnectionKind::Microsoft))
        } @else {
            section.card.step.disabled {
                h2 { span.num { "3" } "Consent, test and enable" }
                p.muted { "Available once the app registration is saved." }
            }
        }
    };
    layout::page(viewer, Section::Setup, "Microsoft 365 setup", notices, body)
}

fn register_step() -> Markup {
    let permissions = tributary_sync::runtime::MICROSOFT_PERMISSIONS;
    html! {
        section.card.step #step-register {
            h2 { span.num { "1" } "Register an app in Microsoft Entra ID" }
            p {
                "In the Entra admin center, open App registrations › New registration "
                "(single tenant). Under API permissions, choose Add a permission › Microsoft Graph › "
                strong { "Application permissions" } " and add exactly these:"
            }
            table.permissions #permissions {
                thead { tr { th { "Permission" } th { "Why" } } }
                tbody {
                    @for permission in permissions {
                        tr { td { code { (permission.name) } } td { (permission.purpose) } }
                    }
                }
            }
            p.muted {
                "Then, under Certificates & secrets, add a client secret (copy its Value) or "
                "upload a certificate (recommended: nothing secret crosses the wire)."
            }
        }
    }
}

fn credential_summary(setup: &MicrosoftSetup) -> Markup {
    html! {
        @match &setup.credential {
            CredentialView::Secret { ending } => {
                "a client secret ending " code #secret-ending { "…" (ending) }
            }
            CredentialView::Certificate { thumbprint_sha1 } => {
                "a certificate, thumbprint " code #certificate-thumbprint { (thumbprint_sha1) }
            }
        }
    }
}

fn app_step(
    viewer: &Viewer,
    setup: Option<&MicrosoftSetup>,
    typed: Option<(&str, &str)>,
) -> Markup {
    // The IDs typed into a refused form first, else the stored ones.
    let ids = typed.or(setup.map(|s| (s.tenant_id.as_str(), s.client_id.as_str())));
    html! {
        section.card.step #step-app {
            h2 {
                span.num { "2" }
                @if setup.is_some() { "App registration" } @else { "Enter the app registration" }
            }
            @if let Some(setup) = setup {
                p #stored-app {
                    "Stored: directory " code { (setup.tenant_id) } ", application "
                    code { (setup.client_id) } ", with " (credential_summary(setup)) ". "
                    "The secret and private key are sealed and never shown again."
                }
            } @else {
                p { "Both IDs are on the app's Overview page." }
            }
            @if setup.is_some() {
                details #replace-app open[typed.is_some()] {
                    summary { "Replace the app registration or its credential" }
                    (app_form(viewer, ids))
                }
            } @else {
                (app_form(viewer, ids))
            }
        }
    }
}

/// The app registration's fields, prefilled with `ids` (never the secret).
fn app_form(viewer: &Viewer, ids: Option<(&str, &str)>) -> Markup {
    html! {
        form.stack method="post" action="/setup/microsoft/app" enctype="multipart/form-data" {
            (csrf_field(viewer))
            label {
                span { "Directory (tenant) ID" }
                input type="text" name="tenant_id" required maxlength="253" autocomplete="off"
                    placeholder="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
                    value=[ids.map(|(tenant, _)| tenant)];
            }
            label {
                span { "Application (client) ID" }
                input type="text" name="client_id" required maxlength="36" autocomplete="off"
                    placeholder="11111111-2222-3333-4444-555555555555"
                    value=[ids.map(|(_, client)| client)];
            }
            fieldset #credential {
                legend { "Credential" }
                label.radio {
                    input type="radio" name="credential" value="secret" checked;
                    span { "Client secret" }
                }
                label {
                    span { "Secret value" }
                    input type="password" name="client_secret" maxlength="1024" autocomplete="off";
                    small { "The secret's Value, not its Secret ID." }
                }
                label.radio {
                    input type="radio" name="credential" value="certificate";
                    span { "Certificate" }
                }
                label {
                    span { "Certificate (.pem)" }
                    input type="file" name=(CERTIFICATE_FIELD) accept=".pem,.crt,.cer";
                }
                label {
                    span { "Private key (.pem)" }
                    input type="file" name=(PRIVATE_KEY_FIELD) accept=".pem,.key";
                    small { "Not needed when the certificate file holds the key too." }
                }
            }
            button.primary type="submit" { "Save app registration" }
        }
    }
}

fn consent_step(state: &AppState, viewer: &Viewer, setup: &MicrosoftSetup) -> Markup {
    let url = consent_url(
        state.runtime.microsoft_authority(),
        setup,
        &consent_redirect_uri(state),
        &consent_state(viewer),
    );
    html! {
        section.card.step #step-consent {
            h2 { span.num { "3" } "Grant admin consent" }
            p {
                "First register this redirect URI on the app (Authentication › Add a platform › Web): "
                "Microsoft sends you back only to a registered address. Then sign in to Microsoft as an "
                "administrator of the directory and accept the permissions; you come back here."
            }
            dl.copyable {
                dt { "Redirect URI" }
                dd { code #redirect-uri { (consent_redirect_uri(state)) } (copy_button("redirect-uri")) }
            }
            p { a.button.primary #grant-consent href=(url) rel="noopener noreferrer" { "Grant admin consent" } }
            @if let Some(consent) = &setup.consent {
                div #consent-state class=(if consent.granted { "check ok" } else { "check failed" }) {
                    @if consent.granted {
                        p {
                            span.badge.status-idle { "Consent granted" } " in directory "
                            code { (consent.directory.as_deref().unwrap_or_default()) }
                            " by " (consent.by) ", " (layout::time(Some(consent.at_ms)))
                        }
                    } @else {
                        p { span.badge.status-unauthorized { "Not granted" } " by " (consent.by) ", " (layout::time(Some(consent.at_ms))) }
                        p { strong { "Microsoft said: " } span.provider-message { (consent_failure(consent)) } }
                    }
                }
            }
        }
    }
}

fn test_step(viewer: &Viewer, check: Option<&tributary_sync::ConnectionCheck>) -> Markup {
    let step = TestStep {
        number: 4,
        explains: "Asks Microsoft for a Graph token with the app's credential, then reads the first page of users.",
        action: "/setup/microsoft/test",
        provider: "Microsoft",
    };
    step.render(viewer, check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(pairs: &[(&str, &str)]) -> ConsentAnswer {
        let text = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        ConsentAnswer {
            admin_consent: text("admin_consent"),
            tenant: text("tenant"),
            state: None,
            error: text("error"),
            error_description: text("error_description"),
        }
    }

    #[test]
    fn an_error_wins_over_admin_consent_true() {
        let declined = answer(&[
            ("admin_consent", "True"),
            ("error", "consent_required"),
            ("error_description", "AADSTS65004: User declined"),
        ]);
        assert_eq!(
            consent_outcome(&declined),
            Some(ConsentOutcome::Refused {
                error: "consent_required".into(),
                description: "AADSTS65004: User declined".into()
            })
        );
        let granted = answer(&[("admin_consent", "True"), ("tenant", "t-1")]);
        assert_eq!(
            consent_outcome(&granted),
            Some(ConsentOutcome::Granted {
                directory: "t-1".into()
            })
        );
        assert_eq!(
            consent_outcome(&answer(&[("admin_consent", "False")])),
            None
        );
    }
}
