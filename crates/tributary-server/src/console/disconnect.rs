//! Disconnect: the end of a provider's Connect → progress → "completed" → Disconnect.
//! The setup page offers it (see [`card`]); a confirmation page says what happens
//! before anything does; the posted form calls [`tributary_sync::Runtime::disconnect`]:
//! capture of that provider stops (its links are unlinked), its sealed credentials are
//! deleted, and everything captured so far stays (captured activity is immutable).
//! The store audits it. Admins only, CSRF-checked, Post/Redirect/Get.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::SignedForm;
use super::layout::{self, Notice, Section, csrf_field, plural};
use super::session::{Admin, Viewer};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use serde::Deserialize;
use tributary_store::{ConnectionKind, LinkStatus};
use tributary_sync::RuntimeError;

/// Where the confirmation page and its form live.
pub const PATH: &str = "/setup/disconnect";

/// The form (and query) field naming the provider.
const PROVIDER_FIELD: &str = "provider";

#[derive(Debug, Deserialize)]
pub struct ConfirmQuery {
    #[serde(default)]
    provider: Option<String>,
}

/// The provider a request names (`google`, `microsoft`).
fn provider(name: Option<&str>) -> Result<ConnectionKind, PageError> {
    let name = name.unwrap_or_default();
    ConnectionKind::from_name(name).ok_or_else(|| {
        PageError::BadRequest(format!(
            "`{}` is not a provider: choose google or microsoft",
            shown(name)
        ))
    })
}

/// At most the first 40 characters of a typed name, for a message.
fn shown(name: &str) -> String {
    name.chars().take(40).collect()
}

/// A provider as admins name the product.
pub fn product(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Google => "Google Workspace",
        ConnectionKind::Microsoft => "Microsoft 365",
        ConnectionKind::Imap => "IMAP",
    }
}

/// What Disconnect forgets, as the admin knows it.
fn credentials(kind: ConnectionKind) -> &'static str {
    match kind {
        ConnectionKind::Google => "the service-account key",
        ConnectionKind::Microsoft => "the app registration (with its client secret or certificate)",
        ConnectionKind::Imap => "the stored password",
    }
}

/// The setup page's last card: what Disconnect does and the way to its confirmation.
pub fn card(kind: ConnectionKind) -> Markup {
    html! {
        section.card.step #step-disconnect {
            h2 { "Disconnect" }
            p {
                "Stops capturing " (product(kind)) " mailboxes and deletes " (credentials(kind))
                ". Everything captured so far is kept."
            }
            a.button #disconnect href={ (PATH) "?" (PROVIDER_FIELD) "=" (kind.as_str()) } {
                "Disconnect " (product(kind)) "…"
            }
        }
    }
}

/// The confirmation: what Disconnect stops, deletes and keeps, and the button that
/// does it.
pub async fn confirm_page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<ConfirmQuery>,
) -> Result<Html<String>, PageError> {
    let kind = provider(query.provider.as_deref())?;
    let store = state.store();
    if store.connection(&viewer.tenant, kind).await?.is_none() {
        return Err(PageError::NotFound(format!(
            "{} is not connected: there is nothing to disconnect",
            product(kind)
        )));
    }
    let linked = store
        .links(&viewer.tenant)
        .await?
        .iter()
        .filter(|link| link.provider == kind && link.status != LinkStatus::Unlinked)
        .count();
    let title = format!("Disconnect {}", product(kind));
    Ok(layout::page(
        &viewer,
        Section::Setup,
        &title,
        &[],
        confirmation(&viewer, kind, linked),
    ))
}

fn confirmation(viewer: &Viewer, kind: ConnectionKind, linked: usize) -> Markup {
    let count = i64::try_from(linked).unwrap_or(i64::MAX);
    html! {
        section.card #disconnect-confirm {
            p { "Disconnecting " strong { (product(kind)) } ":" }
            ul {
                li {
                    "stops capture: " strong { (plural(count, "mailbox", "mailboxes")) }
                    " that are linked now become unlinked and are no longer synced;"
                }
                li { "deletes " (credentials(kind)) " from Tributary (it is never shown again);" }
                li {
                    "keeps everything captured so far: activities, contacts, companies and "
                    "relationships stay, and timelines show them as before."
                }
            }
            p.muted {
                "To capture again later, connect again on the setup page and start the mailboxes on the Users page."
            }
            form method="post" action=(PATH) {
                (csrf_field(viewer))
                input type="hidden" name=(PROVIDER_FIELD) value=(kind.as_str());
                div.actions {
                    button.danger type="submit" { "Disconnect " (product(kind)) }
                    " "
                    a href="/setup" { "Cancel" }
                }
            }
        }
    }
}

/// Disconnects the provider the confirmation named and answers 303 to the setup page,
/// which says what happened once.
pub async fn disconnect(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let kind = provider(form.fields.get(PROVIDER_FIELD))?;
    let notice = match state
        .runtime
        .disconnect(&viewer.tenant, kind, &viewer.email)
        .await
    {
        Ok(unlinked) => disconnected_notice(kind, unlinked),
        // A second post (a reload, another admin first): nothing left to do.
        Err(RuntimeError::NotConnected) => Notice::warning(format!(
            "{} was not connected: nothing changed.",
            product(kind)
        )),
        Err(other) => return Err(other.into()),
    };
    Ok(flash::redirect(&viewer, "/setup", Outcome::notice(notice)))
}

fn disconnected_notice(kind: ConnectionKind, unlinked: usize) -> Notice {
    let count = i64::try_from(unlinked).unwrap_or(i64::MAX);
    let were = if count == 1 { "was" } else { "were" };
    Notice::success(format!(
        "{} is disconnected: {} was deleted and {} {were} unlinked. Everything captured so \
         far is kept.",
        product(kind),
        credentials(kind),
        plural(count, "mailbox", "mailboxes")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_providers_are_taken() {
        assert_eq!(provider(Some("google")).unwrap(), ConnectionKind::Google);
        assert_eq!(
            provider(Some("microsoft")).unwrap(),
            ConnectionKind::Microsoft
        );
        for refused in [None, Some(""), Some("Google"), Some("<b>x</b>")] {
            assert!(provider(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn the_notice_says_what_was_deleted_and_what_is_kept() {
        let notice = disconnected_notice(ConnectionKind::Google, 3);
        assert_eq!(
            notice.text,
            "Google Workspace is disconnected: the service-account key was deleted and 3 \
             mailboxes were unlinked. Everything captured so far is kept."
        );
        let one = disconnected_notice(ConnectionKind::Microsoft, 1);
        assert!(one.text.contains("1 mailbox was unlinked"), "{}", one.text);
    }
}
