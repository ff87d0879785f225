//! Meetings on the console's pages: a contact's, company's or member's meetings with
//! their attendees and answers, the last and next meeting, and a member's Calendar card
//! (status of each calendar, last sync, what it brought in, upcoming meetings).
//!
//! An administrator sees every meeting of the tenant; a member only the meetings they
//! took part in (organized, or were invited and did not decline), whatever the policy's
//! `member_visibility`: a meeting sits in someone's own calendar. A private event shows
//! no title.

use super::error::PageError;
use super::layout::{date, empty, link, plural, status_badge, time};
use super::session::Viewer;
use crate::AppState;
use maud::{Markup, html};
use std::collections::HashMap;
use tributary_core::{Audience, FailureCause, FailureSite};
use tributary_store::{
    CalendarState, LinkView, MeetingFilter, MeetingPage, MeetingView, MemberId, ReadScope,
};
use tributary_sync::runtime::resume::{error_status, hint_provider};

/// Captured meetings listed on a page.
pub(super) const MEETINGS_SHOWN: u32 = 20;
/// Upcoming meetings listed on a page.
pub(super) const UPCOMING_SHOWN: u32 = 10;

/// Whose meetings a page lists.
#[derive(Debug, Clone)]
pub(super) enum MeetingsFor {
    Contact(String),
    Company(String),
    Member(MemberId),
}

/// The meetings a viewer with `scope` may see of `of`; `None` when they may see none.
pub(super) fn filter_for(of: &MeetingsFor, scope: ReadScope) -> Option<MeetingFilter> {
    let viewer = match scope {
        ReadScope::Tenant => None,
        ReadScope::Own(member) | ReadScope::Organization(member) => Some(member),
        ReadScope::Nothing => return None,
    };
    let mut filter = MeetingFilter {
        viewer,
        ..MeetingFilter::default()
    };
    match of {
        MeetingsFor::Contact(address) => filter.contact = Some(address.clone()),
        MeetingsFor::Company(domain) => filter.company = Some(domain.clone()),
        MeetingsFor::Member(member) => filter.member = Some(*member),
    }
    Some(filter)
}

/// The captured (latest first) and upcoming (soonest first) meetings a page shows.
#[derive(Debug, Clone, Default)]
pub(super) struct Meetings {
    pub captured: Vec<MeetingView>,
    pub more_captured: bool,
    pub upcoming: Vec<MeetingView>,
    pub more_upcoming: bool,
}

impl Meetings {
    pub(super) fn last(&self) -> Option<&MeetingView> {
        self.captured.first()
    }

    pub(super) fn next(&self) -> Option<&MeetingView> {
        self.upcoming.first()
    }

    /// Every participant's address, for the page's display names.
    pub(super) fn addresses(&self) -> impl Iterator<Item = &str> {
        self.captured
            .iter()
            .chain(&self.upcoming)
            .flat_map(|m| m.participants.iter().map(|p| p.address.as_str()))
    }
}

pub(super) async fn load(
    state: &AppState,
    viewer: &Viewer,
    of: &MeetingsFor,
    scope: ReadScope,
    now_ms: i64,
) -> Result<Meetings, PageError> {
    let Some(filter) = filter_for(of, scope) else {
        return Ok(Meetings::default());
    };
    let store = state.store();
    let captured: MeetingPage = store
        .meetings_page(&viewer.tenant, &filter, None, MEETINGS_SHOWN)
        .await?;
    let upcoming = store
        .upcoming_page(&viewer.tenant, &filter, now_ms, None, UPCOMING_SHOWN)
        .await?;
    Ok(Meetings {
        more_captured: captured.next.is_some(),
        captured: captured.meetings,
        more_upcoming: upcoming.next.is_some(),
        upcoming: upcoming.meetings,
    })
}

/// "Last meeting … · Next meeting …" for a contact's or company's page.
pub(super) fn last_and_next(meetings: &Meetings) -> Markup {
    html! {
        p.meeting-summary {
            "Last meeting: "
            @match meetings.last() {
                Some(m) => { (time(Some(m.start_ms))) " — " (title(m)) },
                None => span.muted { "none yet" },
            }
            br;
            "Next meeting: "
            @match meetings.next() {
                Some(m) => { (time(Some(m.start_ms))) " — " (title(m)) },
                None => span.muted { "none planned" },
            }
        }
    }
}

/// A meeting's title as shown: never one for a private event.
fn title(meeting: &MeetingView) -> Markup {
    html! {
        @match meeting.title.as_deref().filter(|t| !meeting.private && !t.is_empty()) {
            Some(title) => strong { (title) },
            None if meeting.private => span.muted { "(private meeting)" },
            None => span.muted { "(title not kept)" },
        }
    }
}

/// The "Meetings" card: upcoming meetings (unless the page shows them in its Calendar
/// card already), then captured ones.
pub(super) fn card(
    meetings: &Meetings,
    names: &HashMap<String, String>,
    with_upcoming: bool,
) -> Markup {
    html! {
        section.card #meetings {
            h2 { "Meetings" }
            @if with_upcoming {
                h3 { "Upcoming" }
                @if meetings.upcoming.is_empty() {
                    (empty("No upcoming meetings."))
                } @else {
                    (list(&meetings.upcoming, names, true))
                    @if meetings.more_upcoming { p.muted { "Showing the next " (meetings.upcoming.len()) "." } }
                }
            }
            h3 { "Took place" }
            @if meetings.captured.is_empty() {
                (empty("No meetings captured yet."))
            } @else {
                (list(&meetings.captured, names, false))
                @if meetings.more_captured { p.muted { "Showing the latest " (meetings.captured.len()) "." } }
            }
        }
    }
}

fn list(meetings: &[MeetingView], names: &HashMap<String, String>, upcoming: bool) -> Markup {
    html! {
        ol.timeline.meetings {
            @for meeting in meetings {
                li {
                    div.when.meeting { (time(Some(meeting.start_ms))) }
                    div.what {
                        span class={ "direction " (meeting.direction) } { (meeting.direction) }
                        " "
                        @if upcoming { span.badge.upcoming { "upcoming" } " " }
                        @if meeting.large { span.badge.large title="counts for the company, not for relationships" { "large" } " " }
                        (title(meeting))
                        span.muted { " · " (duration(meeting)) }
                        div.people {
                            @for p in &meeting.participants {
                                span.person {
                                    span.role { @if p.organizer { "organizer" } @else { "attendee" } }
                                    @let name = p.name.as_deref().or(names.get(&p.address).map(String::as_str));
                                    @let shown = html! {
                                        @match name {
                                            Some(name) => { span.name { (name) } " " span.address.muted { "<" (p.address) ">" } },
                                            None => span.address { (p.address) },
                                        }
                                    };
                                    @if p.kind == "external" {
                                        a href=(link("contacts", &p.address)) { (shown) }
                                    } @else {
                                        (shown)
                                    }
                                    " " span class={ "answer answer-" (p.response.as_str()) } { (answer(p.response)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn answer(response: tributary_core::Response) -> &'static str {
    match response {
        tributary_core::Response::Accepted => "accepted",
        tributary_core::Response::Tentative => "tentative",
        tributary_core::Response::Declined => "declined",
        tributary_core::Response::NeedsAction => "no answer",
    }
}

fn duration(meeting: &MeetingView) -> String {
    if meeting.all_day {
        return "all day".to_owned();
    }
    let minutes = (meeting.end_ms - meeting.start_ms).max(0) / 60_000;
    match minutes {
        0..=59 => format!("{minutes} min"),
        _ if minutes % 60 == 0 => format!("{} h", minutes / 60),
        _ => format!("{} h {} min", minutes / 60, minutes % 60),
    }
}

/// The member's Calendar card: each linked calendar's status, last sync and what it
/// brought in, then the member's upcoming meetings.
pub(super) async fn calendar_card(
    state: &AppState,
    viewer: &Viewer,
    links: &[LinkView],
    upcoming: &[MeetingView],
    names: &HashMap<String, String>,
) -> Result<Markup, PageError> {
    let policy = state.runtime.policy(&viewer.tenant).await?.meetings;
    let audience = if viewer.is_admin() {
        Audience::Admin
    } else {
        Audience::Member
    };
    let store = state.store();
    let mut calendars = Vec::with_capacity(links.len());
    for link in links {
        let calendar = store.calendar_state(&viewer.tenant, link.id).await?;
        let counts = store.calendar_counts(&viewer.tenant, link.id).await?;
        calendars.push((link, calendar, counts));
    }
    Ok(html! {
        section.card #calendar {
            h2 { "Calendar" }
            @if !policy.capture {
                p.muted { "Meeting capture is off in the capture policy." }
            }
            @if calendars.is_empty() { (empty("No calendar linked.")) }
            @for (link, calendar, counts) in &calendars {
                p { strong { (link.mailbox) } " " (status_badge(calendar.status)) }
                @if let Some(message) = &calendar.provider_message {
                    p.muted { "The provider said: " (message) }
                }
                @if let Some(cause) = calendar_cause(link, calendar) {
                    p.fix-hint data-cause=(cause_code(cause)) { (cause.hint(audience)) }
                }
                p.muted.last-sync {
                    "Last calendar sync " (time(calendar.last_success_ms))
                    " · " (plural(counts.captured, "meeting", "meetings")) " captured"
                    @if let Some(at) = counts.last_added_ms { ", last added " (date(at)) }
                    " · " (counts.upcoming) " upcoming"
                }
            }
            h3 { "Upcoming meetings" }
            @if upcoming.is_empty() {
                (empty("No upcoming meetings."))
            } @else {
                (list(upcoming, names, true))
            }
        }
    })
}

/// Why a calendar failed, from the status, cause code and message its run kept, read as
/// the calendar's (a permission refused for the calendar alone is not mail's); `None`
/// while it is not in an error status.
fn calendar_cause(link: &LinkView, calendar: &CalendarState) -> Option<FailureCause> {
    let status = error_status(calendar.status)?;
    Some(FailureCause::classify(
        hint_provider(link.provider),
        FailureSite::Calendar,
        status,
        calendar.status_reason.as_deref(),
        calendar.provider_message.as_deref().unwrap_or(""),
    ))
}

/// The cause's stable code (as the API names it), for tests and scripts.
fn cause_code(cause: FailureCause) -> String {
    serde_json::to_value(cause)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::{ConnectionKind, LinkId, LinkStatus};

    fn link(provider: ConnectionKind) -> LinkView {
        LinkView {
            id: LinkId(1),
            member: "ann@acme.test".into(),
            mailbox: "ann@acme.test".into(),
            // Mail is fine: the calendar failed alone.
            status: LinkStatus::Idle,
            provider_message: None,
            status_reason: None,
            last_success_ms: None,
            last_summary: None,
            next_attempt_ms: None,
            attempts: 0,
            provider,
            provider_reason: None,
        }
    }

    fn calendar(status: LinkStatus, reason: Option<&str>, message: &str) -> CalendarState {
        CalendarState {
            status,
            provider_message: Some(message.into()),
            status_reason: reason.map(str::to_owned),
            cursor: None,
            last_success_ms: None,
        }
    }

    /// Each calendar refusal the engine stores gets the calendar's cause (and so its
    /// fix), never the mail permission's hint.
    #[test]
    fn a_calendar_refused_alone_is_explained_as_the_calendar_s() {
        use ConnectionKind::*;
        let cases = [
            (
                Google,
                Some("unauthorized_client"),
                "Client is unauthorized to retrieve access tokens using this method.",
                FailureCause::CalendarScopeNotDelegated,
            ),
            (
                Google,
                Some("accessNotConfigured"),
                "Google Calendar API has not been used in project 7 before or it is disabled.",
                FailureCause::CalendarApiNotEnabled,
            ),
            (
                Microsoft,
                Some("ErrorAccessDenied"),
                "Access is denied. Check credentials and try again.",
                FailureCause::MsCalendarDenied,
            ),
        ];
        for (provider, reason, message, wanted) in cases {
            let state = calendar(LinkStatus::Unauthorized, reason, message);
            let cause = calendar_cause(&link(provider), &state);
            assert_eq!(cause, Some(wanted), "{message}");
            let hint = wanted.hint(Audience::Admin);
            assert!(!hint.contains("Mail.ReadBasic.All"), "{hint}");
            assert_eq!(cause_code(wanted), serde_json::to_value(wanted).unwrap());
        }
        let healthy = calendar(LinkStatus::Idle, None, "");
        assert_eq!(calendar_cause(&link(Google), &healthy), None);
    }
}
