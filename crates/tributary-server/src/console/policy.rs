//! The capture policy form: what is synced for everyone, how far back, and what is
//! never captured; and whether Rebuild connects new users automatically. Both are the
//! tenant's, editable before any key or connection exists. Validation errors name the
//! field and keep what was typed.

use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::{Fields, SignedForm};
use super::layout::{self, Notice, Section, csrf_field};
use super::session::{Admin, Viewer};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use tributary_core::settings::{
    MAX_LARGE_MEETING_ATTENDEES, MAX_MEETING_HORIZON_DAYS, MemberVisibility,
};
use tributary_core::{
    CalendarSync, MAX_BACKFILL_DAYS, MeetingSettings, PolicyError, PolicySettings, PrivacyMode,
};
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
    let auto_connect = state.runtime.auto_connect(&viewer.tenant).await?;
    Ok(render(&viewer, &settings, auto_connect, &outcome.notices))
}

/// Saves "Connect new users automatically" and answers 303 to the page.
pub async fn save_auto_connect(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let enabled = form.fields.checked("auto_connect");
    state
        .runtime
        .set_auto_connect(&viewer.tenant, enabled, &viewer.email)
        .await?;
    let notice = Notice::success(if enabled {
        "Saved: Rebuild starts the users it newly matches."
    } else {
        "Saved: Rebuild links new users without starting them; start the ones to capture on the Users page."
    });
    Ok(flash::redirect(&viewer, "/policy", Outcome::notice(notice)))
}

/// Saves and answers 303 to the page (Post/Redirect/Get). A refused form is shown
/// again as typed instead: nothing changed, and what was typed is kept for fixing.
pub async fn save(State(state): State<AppState>, form: SignedForm) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let stored = state.runtime.policy(&viewer.tenant).await?.meetings;
    let settings = match settings_from(&form.fields, stored) {
        Ok(settings) => settings,
        Err(problem) => {
            let current = state.runtime.policy(&viewer.tenant).await?;
            let auto_connect = state.runtime.auto_connect(&viewer.tenant).await?;
            let notices = [Notice::error(problem)];
            return Ok(render(&viewer, &current, auto_connect, &notices).into_response());
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
            let auto_connect = state.runtime.auto_connect(&viewer.tenant).await?;
            return Ok(render(&viewer, &settings, auto_connect, &[notice]).into_response());
        }
        Err(other) => return Err(other.into()),
    };
    Ok(flash::redirect(&viewer, "/policy", Outcome::notice(notice)))
}

/// The form as settings; a field that does not parse is named. A form without the
/// meeting fields (one rendered before they existed) keeps the `stored` meeting settings.
fn settings_from(fields: &Fields, stored: MeetingSettings) -> Result<PolicySettings, String> {
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
        meetings: meetings_from(fields, stored)?,
    })
}

/// The "Meetings" fieldset, checked here so each problem is said in the form's words.
fn meetings_from(fields: &Fields, stored: MeetingSettings) -> Result<MeetingSettings, String> {
    if fields.get("meetings_form").is_none() {
        return Ok(stored);
    }
    let choice = fields.get("calendar_sync").unwrap_or("everyone");
    let calendar_sync = CalendarSync::parse(choice).ok_or_else(|| {
        format!("Not saved: `{choice}` is not a choice of whose calendars are captured.")
    })?;
    let settings = MeetingSettings {
        capture: fields.checked("meetings_capture"),
        backfill_days: number(fields, "meetings_backfill_days", "meeting backfill window")?,
        horizon_days: number(fields, "meetings_horizon_days", "upcoming meetings horizon")?,
        large_meeting_attendees: number(
            fields,
            "meetings_large_attendees",
            "large-meeting threshold",
        )?,
        calendar_sync,
    };
    settings.meeting_policy().map_err(|problem| match problem {
        PolicyError::MeetingBackfillDays(days) => format!(
            "Not saved: the meeting backfill window must be between 1 and {MAX_BACKFILL_DAYS} days, not {days}."
        ),
        PolicyError::MeetingHorizonDays(days) => format!(
            "Not saved: upcoming meetings can be shown at most {MAX_MEETING_HORIZON_DAYS} days ahead, not {days}."
        ),
        PolicyError::LargeMeetingAttendees(count) => format!(
            "Not saved: the large-meeting threshold must be between 1 and {MAX_LARGE_MEETING_ATTENDEES} participants, not {count}."
        ),
        other => format!("Not saved: {other}."),
    })?;
    Ok(settings)
}

/// A whole number typed in field `name`, described as `what` when it is not one.
fn number(fields: &Fields, name: &str, what: &str) -> Result<u32, String> {
    let text = fields.get(name).unwrap_or_default().trim();
    text.parse()
        .map_err(|_| format!("Not saved: the {what} `{text}` is not a whole number."))
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

fn render(
    viewer: &Viewer,
    settings: &PolicySettings,
    auto_connect: bool,
    notices: &[Notice],
) -> Html<String> {
    let body = html! {
        (new_users_form(viewer, auto_connect))
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
            (meetings_fieldset(&settings.meetings))
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

/// "Meetings": capture on or off, its window, the large-meeting threshold, and the
/// "Calendar sync" permission.
fn meetings_fieldset(meetings: &MeetingSettings) -> Markup {
    html! {
        fieldset #meetings {
            legend { "Meetings" }
            input type="hidden" name="meetings_form" value="1";
            (switch("meetings_capture", "Capture meetings", "Meetings in members' calendars with people outside the organization become contact points once they have taken place; meetings still ahead are shown as upcoming.", meetings.capture))
            label.inline {
                span { "Meeting backfill window" }
                input type="number" name="meetings_backfill_days" min="1" max=(MAX_BACKFILL_DAYS)
                    value=(meetings.backfill_days) required;
                span { "days back" }
            }
            label.inline {
                span { "Upcoming meetings" }
                input type="number" name="meetings_horizon_days" min="0" max=(MAX_MEETING_HORIZON_DAYS)
                    value=(meetings.horizon_days) required;
                span { "days ahead" }
            }
            label.inline {
                span { "Large-meeting threshold" }
                input type="number" name="meetings_large_attendees" min="1" max=(MAX_LARGE_MEETING_ATTENDEES)
                    value=(meetings.large_meeting_attendees) required;
                span { "participants" }
            }
            p.muted { "A meeting with more participants than this counts for the company, not for personal relationships." }
            p { strong { "Calendar sync" } " — whose calendars are captured:" }
            @for (choice, title, text) in [
                (CalendarSync::Everyone, "Every member", "Each linked member's calendar."),
                (CalendarSync::Admins, "Administrators only", "Only members the directory marks as administrators (the role on the Users page)."),
                (CalendarSync::Nobody, "Nobody", "Mail only; meetings already captured stay."),
            ] {
                label.radio {
                    input type="radio" name="calendar_sync" value=(choice.as_str()) checked[meetings.calendar_sync == choice];
                    span { strong { (title) } " — " (text) }
                }
            }
        }
    }
}

/// "Connect new users automatically": its own form, saved on its own.
fn new_users_form(viewer: &Viewer, auto_connect: bool) -> Markup {
    html! {
        form.card.stack #new-users method="post" action="/policy/new-users" {
            (csrf_field(viewer))
            h2 { "New users" }
            (switch(
                "auto_connect",
                "Connect new users automatically",
                "Rebuild starts every user it newly matches. Off: Rebuild still matches them, but leaves them unstarted until you press Start on the Users page.",
                auto_connect,
            ))
            div.form-actions { button type="submit" { "Save" } }
        }
    }
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

    fn settings_from_form(fields: &Fields) -> Result<PolicySettings, String> {
        settings_from(fields, MeetingSettings::default())
    }

    #[test]
    fn without_meeting_fields_the_stored_meeting_settings_stay() {
        let stored = MeetingSettings {
            capture: false,
            horizon_days: 7,
            ..MeetingSettings::default()
        };
        let form = fields(&[("backfill_days", "30"), ("privacy", "subject")]);
        assert_eq!(settings_from(&form, stored).unwrap().meetings, stored);
    }

    #[test]
    fn meeting_fields_are_read_and_each_problem_is_named() {
        let base = [
            ("backfill_days", "30"),
            ("meetings_form", "1"),
            ("meetings_backfill_days", "90"),
            ("meetings_horizon_days", "14"),
            ("meetings_large_attendees", "40"),
            ("calendar_sync", "admins"),
        ];
        let off = settings_from_form(&fields(&base)).unwrap().meetings;
        assert_eq!(
            off,
            MeetingSettings {
                capture: false,
                backfill_days: 90,
                horizon_days: 14,
                large_meeting_attendees: 40,
                calendar_sync: CalendarSync::Admins,
            }
        );
        let mut on = base.to_vec();
        on.push(("meetings_capture", "on"));
        assert!(settings_from_form(&fields(&on)).unwrap().meetings.capture);
        let with = |name: &str, value: &'static str| {
            let mut form: Vec<(&str, &str)> =
                base.iter().copied().filter(|(k, _)| *k != name).collect();
            form.push((name, value));
            settings_from_form(&fields(&form)).unwrap_err()
        };
        assert!(
            with("meetings_backfill_days", "0")
                .contains("meeting backfill window must be between 1 and 3650 days, not 0")
        );
        assert!(with("meetings_horizon_days", "400").contains("at most 366 days ahead, not 400"));
        assert!(
            with("meetings_large_attendees", "0")
                .contains("large-meeting threshold must be between 1 and 5000")
        );
        assert!(
            with("meetings_large_attendees", "many")
                .contains("large-meeting threshold `many` is not a whole number")
        );
        assert!(with("calendar_sync", "all").contains("`all` is not a choice"));
    }

    #[test]
    fn what_members_see_is_own_unless_the_form_says_organization() {
        let base = [("backfill_days", "30"), ("privacy", "subject")];
        let absent = settings_from_form(&fields(&base)).unwrap();
        assert_eq!(absent.member_visibility, MemberVisibility::Own);
        let open = settings_from_form(&fields(&[
            base[0],
            base[1],
            ("member_visibility", "organization"),
        ]))
        .unwrap();
        assert_eq!(open.member_visibility, MemberVisibility::Organization);
        let unknown =
            settings_from_form(&fields(&[base[0], base[1], ("member_visibility", "all")]));
        assert!(unknown.unwrap_err().contains("`all`"));
    }

    #[test]
    fn unticked_boxes_are_off_and_lists_split_by_line_or_comma() {
        let settings = settings_from_form(&fields(&[
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
        let error = settings_from_form(&fields(&[("backfill_days", "soon")])).unwrap_err();
        assert!(error.contains("`soon`"), "{error}");
    }
}
