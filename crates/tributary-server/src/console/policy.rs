//! The capture policy form: what is synced for everyone, how far back, and what is
//! never captured. Validation errors name the field and keep what was typed.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::{Fields, SignedForm};
use super::layout::{self, Notice, Section, csrf_field};
use super::session::{Admin, Viewer};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use tributary_core::settings::MemberVisibility;
use tributary_core::{MAX_BACKFILL_DAYS, PolicySettings, PrivacyMode};
use tributary_sync::RuntimeError;

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
    let settings = state.runtime.policy(&viewer.tenant).await?;
    let mut notices = outcome.notices;
    if state.runtime.google_setup(&viewer.tenant).await?.is_none() {
        // The policy is kept with the connection (tributary-sync): say so up front
        // rather than after the form was filled in.
        notices.push(Notice::warning(
            "These are the defaults. The policy is saved with the Google connection: upload a service-account key on the Google setup page first, then save it here.",
        ));
    }
    Ok(render(&viewer, &settings, &notices))
}

/// Saves and answers 303 to the page (Post/Redirect/Get). A refused form is shown
/// again as typed instead: nothing changed, and what was typed is kept for fixing.
pub async fn save(State(state): State<AppState>, form: SignedForm) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let settings = match settings_from(&form.fields) {
        Ok(settings) => settings,
        Err(problem) => {
            let current = state.runtime.policy(&viewer.tenant).await?;
            return Ok(render(&viewer, &current, &[Notice::error(problem)]).into_response());
        }
    };
    let notice = match state
        .runtime
        .set_policy(&viewer.tenant, &settings, &viewer.email)
        .await
    {
        Ok(()) => Notice::success("Policy saved. Syncs use it from their next run."),
        Err(RuntimeError::Policy(problem)) => {
            let notice = Notice::error(format!("Not saved: {problem}. Fix it and save again."));
            return Ok(render(&viewer, &settings, &[notice]).into_response());
        }
        Err(RuntimeError::NotConnected) => {
            Notice::error("Not saved: upload a service-account key on the Google setup page first.")
        }
        Err(other) => return Err(other.into()),
    };
    Ok(flash::redirect(&viewer, "/policy", Outcome::notice(notice)))
}

/// The form as settings; a field that does not parse is named.
fn settings_from(fields: &Fields) -> Result<PolicySettings, String> {
    let days = fields.get("backfill_days").unwrap_or_default().trim();
    let backfill_days = days
        .parse()
        .map_err(|_| format!("Not saved: the backfill window `{days}` is not a number of days."))?;
    let privacy: PrivacyMode = fields
        .get("privacy")
        .unwrap_or("subject")
        .parse()
        .map_err(|e| format!("Not saved: {e}."))?;
    // Absent (an older form): members see their own only, the safe default.
    let visibility = fields.get("member_visibility").unwrap_or("own");
    let member_visibility = MemberVisibility::parse(visibility)
        .ok_or_else(|| format!("Not saved: `{visibility}` is not a choice of what members see."))?;
    Ok(PolicySettings {
        sync_inbox: fields.checked("sync_inbox"),
        sync_sent: fields.checked("sync_sent"),
        backfill_days,
        exclude_internal: fields.checked("exclude_internal"),
        exclude_automated: fields.checked("exclude_automated"),
        privacy,
        blocklist: lines(fields.get("blocklist")),
        extra_free_mail_domains: lines(fields.get("extra_free_mail_domains")),
        removed_free_mail_domains: lines(fields.get("removed_free_mail_domains")),
        member_visibility,
    })
}

/// One entry per line or comma, blanks dropped.
fn lines(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split(['\n', ','])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

fn privacy_name(mode: PrivacyMode) -> &'static str {
    match mode {
        PrivacyMode::Metadata => "metadata",
        PrivacyMode::Subject => "subject",
        PrivacyMode::Snippet => "snippet",
    }
}

fn render(viewer: &Viewer, settings: &PolicySettings, notices: &[Notice]) -> Html<String> {
    let body = html! {
        form.card.stack.policy method="post" action="/policy" {
            (csrf_field(viewer))
            fieldset {
                legend { "Synced for everyone" }
                (switch("sync_inbox", "Inbox", "Mail received into each member's Inbox.", settings.sync_inbox))
                (switch("sync_sent", "Sent", "Mail each member sent.", settings.sync_sent))
                p.muted { "Members can add further labels of their own mailbox on their settings page." }
                label.inline {
                    span { "Backfill window" }
                    input type="number" name="backfill_days" min="1" max=(MAX_BACKFILL_DAYS)
                        value=(settings.backfill_days) required;
                    span { "days" }
                }
            }
            fieldset {
                legend { "Skipped" }
                (switch("exclude_internal", "Internal mail", "Mail with no participant outside the organization.", settings.exclude_internal))
                (switch("exclude_automated", "Automated mail", "Newsletters, notifications and auto-replies.", settings.exclude_automated))
            }
            fieldset {
                legend { "Privacy" }
                @for (mode, title, text) in [
                    (PrivacyMode::Metadata, "Metadata only", "Participants, time and thread; no subject."),
                    (PrivacyMode::Subject, "Subject", "Metadata plus the subject line."),
                    (PrivacyMode::Snippet, "Snippet", "Subject plus Gmail's short preview text."),
                ] {
                    label.radio {
                        input type="radio" name="privacy" value=(privacy_name(mode)) checked[settings.privacy == mode];
                        span { strong { (title) } " — " (text) }
                    }
                }
            }
            fieldset {
                legend { "What members see" }
                @for (visibility, title, text) in [
                    (MemberVisibility::Own, "Their own", "Members see the contact points they took part in, the contacts and companies they met there, and their own relationships."),
                    (MemberVisibility::Organization, "The organization's contact points", "Members also see every contact, company and relationship, and every activity's time, direction and participants; the subject and mailboxes only of activities they took part in."),
                ] {
                    label.radio {
                        input type="radio" name="member_visibility" value=(visibility.as_str()) checked[settings.member_visibility == visibility];
                        span { strong { (title) } " — " (text) }
                    }
                }
                p.muted { "Administrators always see everything." }
            }
            fieldset {
                legend { "Lists" }
                (list_field("blocklist", "Blocklist", "Addresses or domains never captured, one per line.", &settings.blocklist))
                (list_field("extra_free_mail_domains", "Extra free-mail domains", "Treated as personal mail, never as companies.", &settings.extra_free_mail_domains))
                (list_field("removed_free_mail_domains", "Free-mail domains treated as companies", "Shipped free-mail domains this organization treats as companies.", &settings.removed_free_mail_domains))
            }
            div.form-actions { button.primary type="submit" { "Save policy" } }
        }
    };
    layout::page(viewer, Section::Policy, "Capture policy", notices, body)
}

fn switch(name: &str, title: &str, text: &str, on: bool) -> Markup {
    html! {
        label.switch {
            input type="checkbox" name=(name) checked[on];
            span { strong { (title) } " — " (text) }
        }
    }
}

fn list_field(name: &str, title: &str, text: &str, entries: &[String]) -> Markup {
    html! {
        label {
            span { (title) }
            textarea name=(name) rows="3" { (entries.join("\n")) }
            small { (text) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let encoded: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        crate::console::forms::parse_urlencoded(encoded.join("&").as_bytes())
    }

    #[test]
    fn what_members_see_is_own_unless_the_form_says_organization() {
        let base = [("backfill_days", "30"), ("privacy", "subject")];
        let absent = settings_from(&fields(&base)).unwrap();
        assert_eq!(absent.member_visibility, MemberVisibility::Own);
        let open = settings_from(&fields(&[
            base[0],
            base[1],
            ("member_visibility", "organization"),
        ]))
        .unwrap();
        assert_eq!(open.member_visibility, MemberVisibility::Organization);
        let unknown = settings_from(&fields(&[base[0], base[1], ("member_visibility", "all")]));
        assert!(unknown.unwrap_err().contains("`all`"));
    }

    #[test]
    fn unticked_boxes_are_off_and_lists_split_by_line_or_comma() {
        let settings = settings_from(&fields(&[
            ("sync_sent", "on"),
            ("backfill_days", "30"),
            ("privacy", "metadata"),
            (
                "blocklist",
                "ceo%40acme.com%0Alawfirm.example, other.example",
            ),
        ]))
        .unwrap();
        assert!(!settings.sync_inbox);
        assert!(settings.sync_sent);
        assert_eq!(settings.backfill_days, 30);
        assert_eq!(settings.privacy, PrivacyMode::Metadata);
        assert_eq!(
            settings.blocklist,
            ["ceo@acme.com", "lawfirm.example", "other.example"]
        );
    }

    #[test]
    fn a_bad_number_is_named() {
        let error = settings_from(&fields(&[("backfill_days", "soon")])).unwrap_err();
        assert!(error.contains("`soon`"), "{error}");
    }
}
