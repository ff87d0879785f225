//! A member's own page: the status of their mailbox and the labels they sync on top of
//! the policy's. This is all a member can see or change.
//!
//! The label choices are the labels the member's mailbox has now (Gmail `labels.list`
//! through the runtime), shown by name, minus those the policy syncs for everyone, plus
//! chosen ones the mailbox no longer has; which Gmail labels are never offered, and why,
//! is in `tributary_sync::MailboxLabel::pickable`. When Google refuses the listing, the
//! page says why and what to do, and the chosen labels can still be kept or dropped.
//! Saving checks every newly chosen label against the mailbox (see
//! `Runtime::save_member_labels`): an unknown one is refused with the labels that exist,
//! and while the mailbox cannot be listed only Gmail's universal system labels can be
//! added.
//!
//! An admin edits any member's labels on `/members/{email}/labels` with the same page
//! and the same checks, reached from the member's row on the Users page.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::Fields;
use super::forms::SignedForm;
use super::layout::{self, Notice, Section, csrf_field, empty, status_badge, time};
use super::meetings::{self, MeetingsFor};
use super::session::{Admin, Viewer};
use crate::AppState;
use crate::api::links::link_hint;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use tributary_core::{Audience, FailureCause, FailureSite, HintProvider};
use tributary_store::{LinkView, MemberView, ReadScope, StoreError};
use tributary_sync::{LabelChoice, MailboxLabelKind, RuntimeError, label_choices};

/// The page's query: only the outcome of the form posted just before.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    flash: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let outcome = flash::take(&viewer, query.flash.as_deref());
    render(&state, &viewer, &outcome.notices).await
}

/// Saves the labels and answers 303 to the page, which says what was saved once.
pub async fn save_labels(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer;
    let Some(member) = own_member(&state, &viewer).await? else {
        return Err(PageError::NotFound(
            "no mailbox of this organization has your address".to_owned(),
        ));
    };
    save(&state, &viewer, &member, &form.fields, "/me").await
}

/// Where an admin edits `member`'s labels.
pub fn labels_path(member: &str) -> String {
    format!("{}/labels", layout::link("members", member))
}

/// An admin's view of a member's mailbox and labels: the member's own page, its
/// hints for the admin.
pub async fn member_labels_page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Path(email): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let member = named_member(&state, &viewer, &email).await?;
    let outcome = flash::take(&viewer, query.flash.as_deref());
    let page = MemberPage {
        action: labels_path(&member.email),
        section: Section::Users,
        title: format!("Mailbox of {}", member.email),
        own: false,
    };
    render_member(&state, &viewer, &member, &page, &outcome.notices).await
}

/// An admin saves a member's labels: checked as the member's own save is.
pub async fn save_member_labels(
    State(state): State<AppState>,
    Path(email): Path<String>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let member = named_member(&state, &viewer, &email).await?;
    save(
        &state,
        &viewer,
        &member,
        &form.fields,
        &labels_path(&member.email),
    )
    .await
}

/// The member with `email` (primary or alias) in the viewer's tenant.
async fn named_member(
    state: &AppState,
    viewer: &Viewer,
    email: &str,
) -> Result<MemberView, PageError> {
    state
        .store()
        .member_by_address(&viewer.tenant, &email.to_lowercase())
        .await?
        .ok_or_else(|| PageError::NotFound(format!("no member has the address {email}")))
}

/// Saves the posted labels of `member` and answers 303 to `back`, which says what was
/// saved, or why nothing was (unknown labels with those that exist).
async fn save(
    state: &AppState,
    viewer: &Viewer,
    member: &MemberView,
    fields: &Fields,
    back: &str,
) -> Result<Response, PageError> {
    let mut labels: Vec<String> = fields.all("label").map(str::to_owned).collect();
    labels.extend(
        fields
            .get("other_labels")
            .unwrap_or_default()
            .split(['\n', ','])
            .map(str::trim)
            .filter(|label| !label.is_empty())
            .map(str::to_owned),
    );
    let saved = state
        .runtime
        .save_member_labels(&viewer.tenant, member.id, &labels, &viewer.email)
        .await;
    let labels = match saved {
        Ok(labels) => labels,
        Err(RuntimeError::Labels(refused)) => {
            let notice = Notice::error(format!("Not saved: {refused}."));
            return Ok(flash::redirect(viewer, back, Outcome::notice(notice)));
        }
        Err(RuntimeError::Store(StoreError::InvalidLabel { .. })) => {
            let notice = Notice::error("Not saved: a label name is empty.");
            return Ok(flash::redirect(viewer, back, Outcome::notice(notice)));
        }
        Err(other) => return Err(other.into()),
    };
    let notice = Notice::success(if labels.is_empty() {
        "Saved: only the labels the policy syncs for everyone are synced.".to_owned()
    } else {
        format!(
            "Saved: {} extra label(s) are synced from the next run.",
            labels.len()
        )
    });
    Ok(flash::redirect(viewer, back, Outcome::notice(notice)))
}

/// The member whose primary address or alias is the viewer's.
async fn own_member(state: &AppState, viewer: &Viewer) -> Result<Option<MemberView>, PageError> {
    Ok(state
        .store()
        .member_by_address(&viewer.tenant, &viewer.email)
        .await?)
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    notices: &[Notice],
) -> Result<Html<String>, PageError> {
    let Some(member) = own_member(state, viewer).await? else {
        let body = html! {
            section.card { (empty("No mailbox of this organization has your address, so there is nothing to set up here.")) }
        };
        return Ok(layout::page(
            viewer,
            Section::Me,
            "My mailbox",
            notices,
            body,
        ));
    };
    let page = MemberPage {
        action: "/me".to_owned(),
        section: Section::Me,
        title: "My mailbox".to_owned(),
        own: true,
    };
    render_member(state, viewer, &member, &page, notices).await
}

/// Where a mailbox page sits and whose it is.
struct MemberPage {
    /// Where the labels form posts.
    action: String,
    section: Section,
    title: String,
    /// The viewer's own mailbox (worded "your"), or an admin's view of a member's.
    own: bool,
}

async fn render_member(
    state: &AppState,
    viewer: &Viewer,
    member: &MemberView,
    page: &MemberPage,
    notices: &[Notice],
) -> Result<Html<String>, PageError> {
    let store = state.store();
    let links: Vec<LinkView> = store.links_of_member(&viewer.tenant, member.id).await?;
    let chosen = store.member_labels(&viewer.tenant, member.id).await?;
    let everyone = state.runtime.policy(&viewer.tenant).await?.synced_labels();
    let listing = label_listing(state, viewer, member, &everyone, &chosen).await?;
    let audience = audience(viewer);
    let mut notices = notices.to_vec();
    notices.extend(listing.problem.clone());
    let calendar = calendar(state, viewer, member, &links).await?;
    let body = html! {
        section.card {
            h2 { "Mailbox" }
            @if links.is_empty() {
                @if page.own {
                    (empty("Your mailbox is not linked yet; an administrator links it."))
                } @else {
                    (empty("This mailbox is not linked yet: Rebuild on the Users page links it."))
                }
            }
            @for link in &links {
                div.mailbox {
                    strong { (link.mailbox) } " " (status_badge(link.status))
                    p.muted { "Last sync " (time(link.last_success_ms)) }
                    @if let Some(message) = &link.provider_message { p.provider-message { (message) } }
                    @if let Some(hint) = link_hint(link, audience) {
                        p.hint { strong { "What to do: " } (hint) }
                    }
                }
            }
        }
        (calendar)
        (labels_form(viewer, &page.action, &everyone, &listing))
    };
    Ok(layout::page(
        viewer,
        page.section,
        &page.title,
        &notices,
        body,
    ))
}

/// The member's Calendar card: the member's own meetings only, whoever looks.
async fn calendar(
    state: &AppState,
    viewer: &Viewer,
    member: &MemberView,
    links: &[LinkView],
) -> Result<Markup, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    let of = MeetingsFor::Member(member.id);
    let meetings = meetings::load(state, viewer, &of, ReadScope::Own(member.id), now).await?;
    let names = state
        .store()
        .display_names(&viewer.tenant, &meetings.addresses().collect::<Vec<_>>())
        .await?;
    meetings::calendar_card(state, viewer, links, &meetings.upcoming, &names).await
}

/// Who reads the hints on this page: an admin reading their own mailbox can fix the
/// cause; a member can only wait for an admin or fix their labels.
fn audience(viewer: &Viewer) -> Audience {
    if viewer.is_admin() {
        Audience::Admin
    } else {
        Audience::Member
    }
}

/// What the labels form offers, and why the mailbox could not be read if it could not.
struct LabelListing {
    choices: Vec<LabelChoice>,
    /// Whether the mailbox answered: only then can a chosen label be known to be gone.
    listed: bool,
    problem: Option<Notice>,
}

/// The mailbox's labels as choices; when Google refuses or the tenant is not connected,
/// only the chosen labels, with a notice saying why (Google's words and what to do).
async fn label_listing(
    state: &AppState,
    viewer: &Viewer,
    member: &MemberView,
    everyone: &[String],
    chosen: &[String],
) -> Result<LabelListing, PageError> {
    let audience = audience(viewer);
    let problem = match state
        .runtime
        .mailbox_labels(&viewer.tenant, member.id)
        .await
    {
        Ok(mailbox) => {
            return Ok(LabelListing {
                choices: label_choices(&mailbox, everyone, chosen),
                listed: true,
                problem: None,
            });
        }
        Err(RuntimeError::Provider { status, message }) => {
            let cause = FailureCause::classify(
                HintProvider::Google,
                FailureSite::Mailbox,
                status,
                None,
                &message,
            );
            Notice::error(format!(
                "Could not read your labels: {message} — {}",
                cause.hint(audience)
            ))
        }
        Err(RuntimeError::NotConnected) => Notice::warning(
            "Your organization has not connected Google Workspace yet, so your mailbox's \
             labels cannot be listed; you can still type label ids below.",
        ),
        Err(other) => return Err(other.into()),
    };
    Ok(LabelListing {
        choices: label_choices(&[], everyone, chosen),
        listed: false,
        problem: Some(problem),
    })
}

fn labels_form(
    viewer: &Viewer,
    action: &str,
    everyone: &[String],
    listing: &LabelListing,
) -> Markup {
    html! {
        form.card.stack method="post" action=(action) #labels {
            (csrf_field(viewer))
            h2 { "Labels" }
            p {
                "Synced for everyone by the policy: "
                @for label in everyone { span.label { (label) } " " }
                @if everyone.is_empty() { span.muted { "none" } }
            }
            @if listing.listed {
                p.muted { "Pick further labels of the mailbox to sync." }
            } @else {
                p.muted { "The mailbox's labels could not be listed; the labels already chosen are kept below." }
            }
            div.choices {
                @for choice in &listing.choices {
                    label.choice title=(choice.id) {
                        input type="checkbox" name="label" value=(choice.id) checked[choice.chosen];
                        span.label { (display_name(choice)) }
                        @if listing.listed && !choice.in_mailbox {
                            " " small.muted { "not in mailbox" }
                        }
                    }
                }
                @if listing.listed && listing.choices.is_empty() {
                    span.muted { "The mailbox has no further labels to pick." }
                }
            }
            label {
                span { "Other labels" }
                input type="text" name="other_labels" placeholder="Label_12, Label_40";
                small { "Label names or ids of the mailbox, comma-separated." }
            }
            div.form-actions { button.primary type="submit" { "Save labels" } }
        }
    }
}

/// A label as the member knows it: a user label by its name (`Projects/Atlas`), a
/// system one readably (`STARRED` as "Starred", `CATEGORY_UPDATES` as "Category:
/// Updates"), a label the mailbox does not have by its id.
fn display_name(choice: &LabelChoice) -> String {
    if choice.kind != Some(MailboxLabelKind::System) {
        return choice.name.clone();
    }
    match choice.name.strip_prefix("CATEGORY_") {
        Some(category) => format!("Category: {}", capitalized(category)),
        None => capitalized(&choice.name),
    }
}

fn capitalized(word: &str) -> String {
    let lower = word.to_lowercase();
    let mut chars = lower.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(name: &str, kind: Option<MailboxLabelKind>) -> LabelChoice {
        LabelChoice {
            id: "id".into(),
            name: name.into(),
            kind,
            chosen: false,
            in_mailbox: kind.is_some(),
        }
    }

    #[test]
    fn user_labels_show_their_name_and_system_ones_read_as_words() {
        let user = choice("Projects/Atlas", Some(MailboxLabelKind::User));
        assert_eq!(display_name(&user), "Projects/Atlas");
        let upper_user = choice("CATEGORY_X", Some(MailboxLabelKind::User));
        assert_eq!(display_name(&upper_user), "CATEGORY_X");
        let starred = choice("STARRED", Some(MailboxLabelKind::System));
        assert_eq!(display_name(&starred), "Starred");
        let updates = choice("CATEGORY_UPDATES", Some(MailboxLabelKind::System));
        assert_eq!(display_name(&updates), "Category: Updates");
        let gone = choice("Label_9", None);
        assert_eq!(display_name(&gone), "Label_9");
    }
}
