//! Activity views: companies ranked by activity with who at our company knows them
//! best, a company's and a contact's timeline of contact points, a member's page, and
//! search by address, name or domain.
//!
//! An administrator sees the whole tenant. A member sees what the tenant's policy lets
//! members see (`member_visibility`, see [`tributary_store::ReadScope`]): by default the
//! activities they took part in, the contacts and companies met there, and their own
//! relationships; anything else answers "not found", never "forbidden", so a member
//! learns nothing of what exists outside their view. Scores are shown with a legend and
//! a link to the page explaining them (`/help/relationship-score`).
//!
//! People are shown by name beside their address: a member's directory name, else the
//! most recent name captured headers gave the address (`Store::display_names`); a
//! company by the name derived from its domain. Search matches addresses (local parts
//! word by word: `jane doe` finds `jane.doe@…`) and names. Each activity says which
//! mailboxes captured it and from which provider; a member's mailbox shows the last
//! sync that changed something and when it was last checked. Each view asks the store
//! for what it shows and no more:
//! the ranking a page of companies at a time (`?page=`), timelines newest first a page
//! at a time (`?before=`, an opaque cursor), searches the first matches and a count.

use super::error::PageError;
use super::help;
use super::layout::{self, Section, date, empty, link, plural, status_badge, time};
use super::meetings::{self, MeetingsFor};
use super::session::Viewer;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;
use tributary_core::settings::MemberVisibility;
use tributary_store::{
    ActivityView, LinkView, MemberStrength, ParticipantView, ReadScope, TimelineCursor, TimelineOf,
    TimelinePage,
};

/// Display names by address, for the people a page shows.
type Names = HashMap<String, String>;

/// The display names of `addresses`, one query.
async fn names_of<'a>(
    state: &AppState,
    viewer: &Viewer,
    addresses: impl IntoIterator<Item = &'a str>,
) -> Result<Names, PageError> {
    let addresses: Vec<&str> = addresses.into_iter().collect();
    Ok(state
        .store()
        .display_names(&viewer.tenant, &addresses)
        .await?)
}

/// A person as lists show them: the name, then the address (muted); the address alone
/// when no name is known.
fn person(name: Option<&str>, address: &str) -> Markup {
    html! {
        @match name {
            Some(name) => { span.name { (name) } " " span.address.muted { "<" (address) ">" } },
            None => span.address { (address) },
        }
    }
}

/// A company's derived name, shown before its domain (the domain stays the link text:
/// it is what identifies the company, and a derived name can be wrong).
fn company_name(domain: &str) -> Markup {
    html! {
        @if let Some(name) = tributary_core::company_display_name(domain) {
            span.name { (name) } " "
        }
    }
}

/// Timeline entries shown on one page.
const TIMELINE_LIMIT: usize = 200;
/// Companies on one page of the ranking.
const RANKING_PAGE: usize = 50;
/// Members shown as knowing a company or contact.
const STRENGTHS_SHOWN: usize = 10;
/// A company's contacts listed on its page.
const CONTACTS_SHOWN: usize = 200;
/// A member's relationships listed on its page.
const RELATIONSHIPS_SHOWN: usize = 25;
/// Matches listed per kind in a search.
const SEARCH_SHOWN: usize = 100;

/// What the signed-in viewer may see of the activity views.
#[derive(Debug, Clone)]
struct Access {
    scope: ReadScope,
    /// The primary address of the member the viewer is (by primary address or alias).
    own: Option<String>,
}

impl Access {
    /// Whether the viewer may open the page of the member with primary address `email`:
    /// an admin any, a member their own.
    fn may_open_member(&self, email: &str) -> bool {
        self.scope == ReadScope::Tenant || self.own.as_deref() == Some(email)
    }

    /// A member by name and address, as a link to their page when the viewer may open
    /// it.
    fn member(&self, names: &Names, email: &str) -> Markup {
        let shown = person(names.get(email).map(String::as_str), email);
        if self.may_open_member(email) {
            html! { a href=(link("members", email)) { (shown) } }
        } else {
            shown
        }
    }
}

/// An admin sees the tenant; a member what the policy's `member_visibility` says, and
/// nothing when no member of the tenant has their address.
async fn access(state: &AppState, viewer: &Viewer) -> Result<Access, PageError> {
    let own = state
        .store()
        .member_by_address(&viewer.tenant, &viewer.email)
        .await?;
    let own_email = own.as_ref().map(|m| m.email.clone());
    if viewer.is_admin() {
        return Ok(Access {
            scope: ReadScope::Tenant,
            own: own_email,
        });
    }
    let Some(member) = own else {
        return Ok(Access {
            scope: ReadScope::Nothing,
            own: None,
        });
    };
    let scope = match state
        .runtime
        .policy(&viewer.tenant)
        .await?
        .member_visibility
    {
        MemberVisibility::Own => ReadScope::Own(member.id),
        MemberVisibility::Organization => ReadScope::Organization(member.id),
    };
    Ok(Access {
        scope,
        own: own_email,
    })
}

#[derive(Debug, Deserialize)]
pub struct RankingQuery {
    /// 1-based.
    page: Option<usize>,
}

pub async fn companies(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<RankingQuery>,
) -> Result<Html<String>, PageError> {
    let access = access(&state, &viewer).await?;
    let page = query.page.unwrap_or(1).max(1);
    let offset = (page - 1).saturating_mul(RANKING_PAGE);
    let ranking = state
        .store()
        .ranked_companies_scoped(&viewer.tenant, offset, RANKING_PAGE, access.scope)
        .await?;
    let ranked = &ranking.companies;
    let names = names_of(
        &state,
        &viewer,
        ranked
            .iter()
            .filter_map(|c| c.best.as_ref().map(|b| b.member.as_str())),
    )
    .await?;
    let body = html! {
        section.card {
            @if ranked.is_empty() && page == 1 {
                (empty("No companies yet: they appear as mail with outside participants is captured."))
            } @else if ranked.is_empty() {
                (empty("No more companies."))
            } @else {
                p.muted { "Ranked by activities (most first). " (help::score_legend()) }
                table.data #companies {
                    thead { tr {
                        th.num { "#" } th { "Company" } th.num { "Activities" } th.num { "Contacts" }
                        th { "Last contact" } th { "Knows them best (score)" }
                    } }
                    tbody {
                        @for (rank, company) in ranked.iter().enumerate() {
                            tr {
                                td.num { (offset + rank + 1) }
                                td { (company_name(&company.domain)) a href=(link("companies", &company.domain)) { (company.domain) } }
                                td.num { (company.activities) }
                                td.num { (company.contacts) }
                                td.nowrap { @match company.last_ms { Some(ms) => (date(ms)), None => span.muted { "—" } } }
                                td {
                                    @if let Some(best) = &company.best {
                                        (access.member(&names, &best.member))
                                        " " span.score title="relationship score" { (score(best.score)) }
                                        span.muted { " · " (plural(best.total, "message", "messages")) }
                                    } @else { span.muted { "—" } }
                                }
                            }
                        }
                    }
                }
            }
            @if page > 1 || ranking.more {
                p.pager {
                    @if page > 1 { a rel="prev" href={ "/companies?page=" (page - 1) } { "← Previous" } " " }
                    @if ranking.more { a rel="next" href={ "/companies?page=" (page + 1) } { "Next →" } }
                }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Companies,
        "Companies",
        &[],
        body,
    ))
}

#[derive(Debug, Deserialize)]
pub struct TimelineQuery {
    /// Where the previous timeline page ended (opaque, from an "Older" link).
    before: Option<String>,
}

impl TimelineQuery {
    fn cursor(&self) -> Result<Option<TimelineCursor>, PageError> {
        self.before
            .as_deref()
            .map(decode_timeline_cursor)
            .transpose()
    }
}

/// `time:dedupe_key` (time empty when the activity has none), URL-safe base64.
fn encode_timeline_cursor(cursor: &TimelineCursor) -> String {
    let time = cursor.time_ms.map(|t| t.to_string()).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{time}:{}", cursor.dedupe_key))
}

fn decode_timeline_cursor(text: &str) -> Result<TimelineCursor, PageError> {
    let invalid =
        || PageError::BadRequest("that timeline link is not one this console made".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (time, key) = text.split_once(':').ok_or_else(invalid)?;
    let time_ms = match time {
        "" => None,
        time => Some(time.parse().map_err(|_| invalid())?),
    };
    Ok(TimelineCursor {
        time_ms,
        dedupe_key: key.to_owned(),
    })
}

async fn load_timeline(
    state: &AppState,
    viewer: &Viewer,
    access: &Access,
    of: TimelineOf,
    query: &TimelineQuery,
) -> Result<TimelinePage, PageError> {
    Ok(state
        .store()
        .timeline_page_scoped(
            &viewer.tenant,
            &of,
            query.cursor()?.as_ref(),
            TIMELINE_LIMIT,
            access.scope,
        )
        .await?)
}

/// A page's history of one company, contact or member: its timeline page and its
/// meetings (the last, the next and the list), read alike for each.
async fn history(
    state: &AppState,
    viewer: &Viewer,
    access: &Access,
    timeline_of: TimelineOf,
    meetings_for: MeetingsFor,
    query: &TimelineQuery,
) -> Result<(TimelinePage, meetings::Meetings), PageError> {
    let timeline = load_timeline(state, viewer, access, timeline_of, query).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let meetings = meetings::load(state, viewer, &meetings_for, access.scope, now).await?;
    Ok((timeline, meetings))
}

pub async fn company(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(domain): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Result<Html<String>, PageError> {
    let access = access(&state, &viewer).await?;
    let domain = domain.to_lowercase();
    let store = state.store();
    let contacts = store
        .company_contacts_scoped(&viewer.tenant, &domain, CONTACTS_SHOWN, access.scope)
        .await?;
    if contacts.total == 0 {
        return Err(PageError::NotFound(format!(
            "no company `{domain}` in this organization"
        )));
    }
    let best = store
        .company_strengths_scoped(&viewer.tenant, &domain, STRENGTHS_SHOWN, access.scope)
        .await?;
    let (timeline, company_meetings) = history(
        &state,
        &viewer,
        &access,
        TimelineOf::Company(domain.clone()),
        MeetingsFor::Company(domain.clone()),
        &query,
    )
    .await?;
    let names = names_of(
        &state,
        &viewer,
        best.iter()
            .map(|s| s.member.as_str())
            .chain(contacts.items.iter().map(String::as_str))
            .chain(company_meetings.addresses()),
    )
    .await?;
    let here = link("companies", &domain);
    let body = html! {
        section.card { (meetings::last_and_next(&company_meetings)) }
        div.columns {
            section.card {
                h2 { "Who knows them best" }
                (strengths(&access, &names, &best))
            }
            section.card {
                h2 { "Contacts (" (contacts.total) ")" }
                ul.plain {
                    @for address in &contacts.items {
                        li { a href=(link("contacts", address)) { (person(names.get(address).map(String::as_str), address)) } }
                    }
                }
                (more_note(contacts.total, contacts.items.len()))
            }
        }
        (meetings::card(&company_meetings, &names, true))
        section.card {
            h2 { "Timeline" }
            (timeline_list(&access, &timeline, &here, query.before.is_some()))
        }
    };
    let title = match tributary_core::company_display_name(&domain) {
        Some(name) => format!("Company · {name} ({domain})"),
        None => format!("Company · {domain}"),
    };
    Ok(layout::page(&viewer, Section::Companies, &title, &[], body))
}

pub async fn contact(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(address): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Result<Html<String>, PageError> {
    let access = access(&state, &viewer).await?;
    let address = address.to_lowercase();
    let store = state.store();
    let Some(contact) = store
        .contact_scoped(&viewer.tenant, &address, access.scope)
        .await?
    else {
        return Err(PageError::NotFound(format!(
            "no contact `{address}` in this organization"
        )));
    };
    let best = store
        .contact_strengths_scoped(&viewer.tenant, &address, STRENGTHS_SHOWN, access.scope)
        .await?;
    let (timeline, contact_meetings) = history(
        &state,
        &viewer,
        &access,
        TimelineOf::Contact(address.clone()),
        MeetingsFor::Contact(address.clone()),
        &query,
    )
    .await?;
    let names = names_of(
        &state,
        &viewer,
        best.iter()
            .map(|s| s.member.as_str())
            .chain(contact_meetings.addresses()),
    )
    .await?;
    let here = link("contacts", &address);
    let body = html! {
        section.card {
            p {
                "Company: "
                @match &contact.company {
                    Some(domain) => { (company_name(domain)) a href=(link("companies", domain)) { (domain) } },
                    None => span.muted { "personal address (free mail)" },
                }
            }
            (meetings::last_and_next(&contact_meetings))
            h2 { "Who knows them" }
            (strengths(&access, &names, &best))
        }
        (meetings::card(&contact_meetings, &names, true))
        section.card {
            h2 { "Timeline" }
            (timeline_list(&access, &timeline, &here, query.before.is_some()))
        }
    };
    let title = match &contact.display_name {
        Some(name) => format!("Contact · {name} <{address}>"),
        None => format!("Contact · {address}"),
    };
    Ok(layout::page(&viewer, Section::Companies, &title, &[], body))
}

pub async fn member(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(email): Path<String>,
    Query(query): Query<TimelineQuery>,
) -> Result<Response, PageError> {
    let access = access(&state, &viewer).await?;
    let email = email.to_lowercase();
    let store = state.store();
    // A member other than the viewer's own is "not found" for a member, as one that
    // does not exist.
    let Some(member) = store
        .member_by_address(&viewer.tenant, &email)
        .await?
        .filter(|m| access.may_open_member(&m.email))
    else {
        return Err(PageError::NotFound(format!(
            "no member `{email}` in this organization"
        )));
    };
    // The page is a member's by primary address: an alias (as timelines show it) leads
    // there.
    if member.email != email {
        return Ok(Redirect::to(&link("members", &member.email)).into_response());
    }
    let links = store.links_of_member(&viewer.tenant, member.id).await?;
    let labels = store.member_labels(&viewer.tenant, member.id).await?;
    // Only a console account has a role that decides access; a member record has none.
    let account = store.user_by_email(&viewer.tenant, &member.email).await?;
    let contacts = store
        .member_relationships(&viewer.tenant, member.id, RELATIONSHIPS_SHOWN)
        .await?;
    let (timeline, member_meetings) = history(
        &state,
        &viewer,
        &access,
        TimelineOf::Member(member.id),
        MeetingsFor::Member(member.id),
        &query,
    )
    .await?;
    let pairs: Vec<(String, String)> = contacts
        .iter()
        .map(|r| (r.member.clone(), r.contact.clone()))
        .collect();
    let ties = store.meeting_ties(&viewer.tenant, &pairs).await?;
    let names = names_of(
        &state,
        &viewer,
        std::iter::once(member.email.as_str())
            .chain(contacts.iter().map(|r| r.contact.as_str()))
            .chain(member_meetings.addresses()),
    )
    .await?;
    let calendar =
        meetings::calendar_card(&state, &viewer, &links, &member_meetings.upcoming, &names).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let here = link("members", &member.email);
    let body = html! {
        div.columns.wide-right {
            section.card {
                h2 { "Mailbox" }
                @if links.is_empty() { (empty("Not linked.")) }
                @for link in &links {
                    p { strong { (link.mailbox) } " " (status_badge(link.status)) }
                    (last_sync(link, now))
                }
                p {
                    @match &account {
                        Some(account) => {
                            "Console account: " strong { (if account.role == tributary_store::MemberRole::Admin { "admin" } else { "member" }) }
                            @if !account.active { " (disabled)" }
                        }
                        None => { span.muted { "No console account" } }
                    }
                    @if !member.active { " · " span.badge.status-unlinked { "inactive" } }
                }
                @if !member.aliases.is_empty() { p.muted { "Also: " (member.aliases.join(", ")) } }
                p { "Extra labels: " @if labels.is_empty() { span.muted { "none" } } @for l in &labels { span.label { (l) } " " } }
            }
            section.card {
                h2 { "Strongest relationships" }
                @if contacts.is_empty() { (empty("No relationships yet.")) } @else {
                    p.muted { "Strongest first. " (help::score_legend()) }
                    table.data {
                        thead { tr { th { "Contact" } th.num { "Sent" } th.num { "Received" } th.num { "Meetings" } th { "Last" } th.num { "Score" } } }
                        tbody {
                            @for r in &contacts {
                                @let tie = ties.get(&(r.member.clone(), r.contact.clone()));
                                @let (_, last_ms, with_meetings) = tie.map_or((r.first_ms, r.last_ms, r.score_at_last), |t| t.combined_with(r));
                                tr {
                                    td { a href=(link("contacts", &r.contact)) { (person(names.get(&r.contact).map(String::as_str), &r.contact)) } }
                                    td.num { (r.sent) } td.num { (r.received) }
                                    td.num { (tie.map_or(0, |t| t.meetings)) }
                                    td.nowrap { (date(last_ms)) }
                                    td.num { (score(with_meetings)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        (calendar)
        (meetings::card(&member_meetings, &names, false))
        section.card {
            h2 { "Timeline" }
            (timeline_list(&access, &timeline, &here, query.before.is_some()))
        }
    };
    let title = match names.get(&member.email) {
        Some(name) => format!("Member · {name} <{}>", member.email),
        None => format!("Member · {}", member.email),
    };
    let section = if viewer.is_admin() {
        Section::Users
    } else {
        Section::Relationships
    };
    Ok(layout::page(&viewer, section, &title, &[], body).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<SearchQuery>,
) -> Result<Html<String>, PageError> {
    let access = access(&state, &viewer).await?;
    let scope = access.scope;
    let needle = query.q.trim().to_lowercase();
    let store = state.store();
    let tenant = &viewer.tenant;
    let found = if needle.is_empty() {
        None
    } else {
        Some((
            store
                .search_companies_scoped(tenant, &needle, SEARCH_SHOWN, scope)
                .await?,
            store
                .search_contacts_scoped(tenant, &needle, SEARCH_SHOWN, scope)
                .await?,
            store
                .search_members_scoped(tenant, &needle, SEARCH_SHOWN, scope)
                .await?,
        ))
    };
    let names = match &found {
        Some((_, contacts, members)) => {
            names_of(
                &state,
                &viewer,
                contacts
                    .items
                    .iter()
                    .chain(&members.items)
                    .map(String::as_str),
            )
            .await?
        }
        None => Names::new(),
    };
    let name = |address: &str| names.get(address).map(String::as_str);
    let body = html! {
        form.card.searchbar method="get" action="/search" {
            input type="search" name="q" value=(query.q) placeholder="Address, name or domain" autofocus;
            button.primary type="submit" { "Search" }
        }
        @if let Some((companies, contacts, members)) = &found {
            div.columns.three {
                section.card {
                    h2 { "Companies (" (companies.total) ")" }
                    @if companies.items.is_empty() { (empty("No company matches.")) }
                    ul.plain { @for c in &companies.items { li { (company_name(&c.domain)) a href=(link("companies", &c.domain)) { (c.domain) } span.muted { " · " (plural(c.contacts, "contact", "contacts")) } } } }
                    (more_note(companies.total, companies.items.len()))
                }
                section.card {
                    h2 { "Contacts (" (contacts.total) ")" }
                    @if contacts.items.is_empty() { (empty("No contact matches.")) }
                    ul.plain { @for c in &contacts.items { li { a href=(link("contacts", c)) { (person(name(c), c)) } } } }
                    (more_note(contacts.total, contacts.items.len()))
                }
                section.card {
                    h2 { "Members (" (members.total) ")" }
                    @if members.items.is_empty() { (empty("No member matches.")) }
                    ul.plain { @for m in &members.items { li { a href=(link("members", m)) { (person(name(m), m)) } } } }
                    (more_note(members.total, members.items.len()))
                }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Companies,
        "Search",
        &[],
        body,
    ))
}

/// Says that only the first matches are listed, when there are more.
fn more_note(total: i64, shown: usize) -> Markup {
    html! {
        @if total > i64::try_from(shown).unwrap_or(i64::MAX) {
            p.muted { "Showing the first " (shown) " of " (total) "." }
        }
    }
}

/// A relationship score as shown: one decimal.
fn score(value: f64) -> String {
    format!("{value:.1}")
}

/// Who knows a company or contact, strongest first, each with the score it is ranked by.
fn strengths(access: &Access, names: &Names, ranked: &[MemberStrength]) -> Markup {
    if ranked.is_empty() {
        return empty(if access.scope == ReadScope::Tenant {
            "Nobody in the organization has corresponded with them yet."
        } else {
            "You have not corresponded with them yet."
        });
    }
    html! {
        p.muted { "Strongest first. " (help::score_legend()) }
        ol.strengths {
            @for s in ranked {
                li {
                    (access.member(names, &s.member))
                    " " span.score title="relationship score" { "score " (score(s.score)) }
                    span.muted { " · " (plural(s.total, "message", "messages")) ", last " (date(s.last_ms)) }
                }
            }
        }
    }
}

/// The mailboxes that hold a copy of the activity and the provider each was captured
/// from; nothing when they are withheld from the viewer.
fn captured_by(activity: &ActivityView) -> Markup {
    html! {
        @if activity.withheld {
            div.captured.muted { "Someone else's contact point: subject and mailboxes are not shown to you." }
        } @else if !activity.captured_by.is_empty() {
            div.captured.muted {
                "Captured from "
                @for (i, c) in activity.captured_by.iter().enumerate() {
                    @if i > 0 { ", " }
                    span.mailbox { (c.mailbox) } " (" (provider_name(&c.provider)) ")"
                }
            }
        }
    }
}

/// A mailbox's last sync as a person reads it: what the last run that changed something
/// did and when, then when the mailbox was last checked if a later run found nothing.
pub(crate) fn last_sync(link: &LinkView, now_ms: i64) -> Markup {
    let count = |field: &str| {
        link.last_summary
            .as_ref()
            .and_then(|s| s.get(field))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let changed = link.last_change_ms();
    let checked_later = link
        .last_success_ms
        .filter(|checked| changed.is_none_or(|changed| *checked > changed));
    html! {
        p.muted.last-sync {
            @match changed {
                Some(at) => {
                    "Last change " (time(Some(at))) ": +" (count("added")) " added · −" (count("gone")) " removed"
                }
                None => { "Last sync " (time(link.last_success_ms)) }
            }
            @if let Some(checked) = checked_later {
                " · checked " (ago(now_ms, checked)) ", nothing new"
            }
        }
    }
}

/// How long before `now_ms` the time `at_ms` was, in the largest whole unit.
pub(crate) fn ago(now_ms: i64, at_ms: i64) -> String {
    let minutes = now_ms.saturating_sub(at_ms).max(0) / 60_000;
    match minutes {
        0 => "just now".to_owned(),
        1..=59 => format!("{minutes} min ago"),
        60..=2879 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// A link's provider as people name it.
fn provider_name(provider: &str) -> &str {
    match provider {
        "google" => "Google",
        "microsoft" => "Microsoft",
        "imap" => "IMAP",
        other => other,
    }
}

/// A timeline page, with a link to the next (older) one; `here` is the page's path and
/// `paged` says whether this is a later page (which links back to the newest).
/// Participants as a mail client lists them: From, To, Cc, Bcc (the store keeps them
/// by address).
fn in_header_order(participants: &[ParticipantView]) -> Vec<&ParticipantView> {
    let rank = |role: &str| match role {
        "from" => 0,
        "to" => 1,
        "cc" => 2,
        "bcc" => 3,
        _ => 4,
    };
    let mut ordered: Vec<&ParticipantView> = participants.iter().collect();
    ordered.sort_by_key(|p| rank(&p.role));
    ordered
}

fn timeline_list(access: &Access, timeline: &TimelinePage, here: &str, paged: bool) -> Markup {
    html! {
        @if timeline.activities.is_empty() {
            (empty(if paged { "No older contact points." } else { "No contact points captured yet." }))
        } @else {
            ol.timeline {
                @for activity in &timeline.activities {
                    li {
                        div.when { (time(activity.time_ms)) }
                        div.what {
                            span class={ "direction " (activity.direction) } { (activity.direction) }
                            " "
                            @match &activity.subject {
                                Some(subject) if !subject.is_empty() => strong { (subject) },
                                _ if activity.withheld => span.muted { "(subject not shown)" },
                                _ => span.muted { "(subject not kept)" },
                            }
                            div.people {
                                @for p in in_header_order(&activity.participants) {
                                    span.person {
                                        span.role { (p.role) }
                                        @let shown = person(p.display_name.as_deref(), &p.address);
                                        @if p.kind == "external" && timeline.contacts.contains(&p.address) {
                                            a href=(link("contacts", &p.address)) { (shown) }
                                        } @else if let Some(member) = p.member.as_deref().filter(|m| access.may_open_member(m)) {
                                            a href=(link("members", member)) title=(member) { (shown) }
                                        } @else {
                                            (shown)
                                        }
                                    }
                                }
                            }
                            (captured_by(activity))
                        }
                    }
                }
            }
        }
        @if paged || timeline.next.is_some() {
            p.pager {
                @if paged { a href=(here) { "← Newest" } " " }
                @if let Some(next) = &timeline.next {
                    a rel="next" href={ (here) "?before=" (encode_timeline_cursor(next)) } { "Older contact points →" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::address_matches;

    #[test]
    fn participants_are_listed_from_first_then_to_cc_bcc() {
        let person = |address: &str, role: &str| ParticipantView {
            address: address.to_owned(),
            role: role.to_owned(),
            kind: "external".to_owned(),
            member: None,
            display_name: None,
        };
        let stored = [
            person("a@x.example", "cc"),
            person("b@x.example", "to"),
            person("c@x.example", "from"),
            person("d@x.example", "to"),
            person("e@x.example", "bcc"),
        ];
        let listed: Vec<&str> = in_header_order(&stored)
            .iter()
            .map(|p| p.address.as_str())
            .collect();
        assert_eq!(
            listed,
            [
                "c@x.example",
                "b@x.example",
                "d@x.example",
                "a@x.example",
                "e@x.example"
            ]
        );
    }

    #[test]
    fn timeline_cursors_survive_the_round_trip_and_strangers_are_refused() {
        for cursor in [
            TimelineCursor {
                time_ms: Some(-5),
                dedupe_key: "mid:a:b@x".into(),
            },
            TimelineCursor {
                time_ms: None,
                dedupe_key: "fp:ab".into(),
            },
        ] {
            let text = encode_timeline_cursor(&cursor);
            assert_eq!(decode_timeline_cursor(&text).unwrap(), cursor);
        }
        for stranger in ["!!", "bm8tY29sb24", "eDox"] {
            assert!(matches!(
                decode_timeline_cursor(stranger),
                Err(PageError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn ago_says_minutes_hours_then_days() {
        let now = 10 * 86_400_000;
        assert_eq!(ago(now, now - 30_000), "just now");
        assert_eq!(ago(now, now + 5_000), "just now");
        assert_eq!(ago(now, now - 7 * 60_000), "7 min ago");
        assert_eq!(ago(now, now - 3 * 3_600_000), "3 h ago");
        assert_eq!(ago(now, now - 3 * 86_400_000), "3 days ago");
    }

    #[test]
    fn people_show_their_name_then_their_address() {
        let named = person(Some("Ann <Lee>"), "ann@acme.example").into_string();
        assert!(named.contains("Ann &lt;Lee&gt;"), "escaped: {named}");
        assert!(named.contains("&lt;ann@acme.example&gt;"), "{named}");
        let bare = person(None, "ann@acme.example").into_string();
        assert!(
            bare.contains("ann@acme.example") && !bare.contains("&lt;"),
            "{bare}"
        );
    }

    #[test]
    fn names_match_local_parts_word_by_word() {
        assert!(address_matches("jane.doe@acme.com", "jane"));
        assert!(address_matches("jane.doe@acme.com", "jane doe"));
        assert!(address_matches("jane.doe@acme.com", "acme.com"));
        assert!(!address_matches("jane.doe@acme.com", "john doe"));
    }
}
