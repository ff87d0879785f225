//! The capture policy form: what is synced for everyone, how far back, and what is
//! never captured. Validation errors name the field and keep what was typed.

use super::error::PageError;
use super::forms::{Fields, SignedForm};
use super::layout::{self, Notice, Section, csrf_field};
use super::session::{Admin, Viewer};
use crate::AppState;
use axum::extract::State;
use axum::response::Html;
use maud::{Markup, html};
use tributary_core::{MAX_BACKFILL_DAYS, PolicySettings, PrivacyMode};
use tributary_sync::RuntimeError;

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
) -> Result<Html<String>, PageError> {
    let settings = state.runtime.policy(&viewer.tenant).await?;
    Ok(render(&viewer, &settings, &[]))
}

pub async fn save(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Html<String>, PageError> {
    let viewer = form.viewer.require_admin()?;
    let settings = match settings_from(&form.fields) {
        Ok(settings) => settings,
        Err(problem) => {
            let current = state.runtime.policy(&viewer.tenant).await?;
            return Ok(render(&viewer, &current, &[Notice::error(problem)]));
        }
    };
    let notice = match state
        .runtime
        .set_policy(&viewer.tenant, &settings, &viewer.email)
        .await
    {
        Ok(()) => Notice::success("Policy saved. Syncs use it from their next run."),
        Err(RuntimeError::Policy(problem)) => {
            Notice::error(format!("Not saved: {problem}. Fix it and save again."))
        }
        Err(RuntimeError::NotConnected) => {
            Notice::error("Not saved: upload a service-account key on the Google setup page first.")
        }
        Err(other) => return Err(other.into()),
    };
    Ok(render(&viewer, &settings, &[notice]))
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
