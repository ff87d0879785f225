//! The audit log: what people did, newest first, as sentences ("ana@acme.com started 3
//! mailboxes"), with the raw action code kept small beside each for search. The engine's
//! own status changes outnumber people's actions by far, so they are behind the "Who"
//! filter; actor, action and target filter too. Pages are keyset pages read in SQL
//! (`Store::audit_page`): "Older" carries where the page ended.

use super::error::PageError;
use super::layout::{self, Section, empty, status_words, time};
use super::session::Admin;
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tributary_store::{
    AuditActors, AuditCursor, AuditEntry, AuditEvent, AuditFilter, LinkStatus, SYSTEM_ACTOR,
};

/// Events per console page.
const PAGE_SIZE: usize = 100;

/// Rows of one action by one actor this close in time read as one sentence.
const GROUP_WINDOW_MS: i64 = 5_000;

/// Longest filter value taken (an address is at most this long).
const MAX_FILTER_CHARS: usize = 320;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// `people` (default), `system` or `all`.
    #[serde(default)]
    who: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<String>,
    /// Where the previous page ended: `<at_ms>.<id>`.
    #[serde(default)]
    after: Option<String>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, PageError> {
        let text = |value: &Option<String>| -> Result<Option<String>, PageError> {
            let Some(value) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            if value.chars().count() > MAX_FILTER_CHARS {
                return Err(PageError::BadRequest(format!(
                    "a filter is longer than {MAX_FILTER_CHARS} characters"
                )));
            }
            Ok(Some(value.to_owned()))
        };
        Ok(AuditFilter {
            actors: self
                .who
                .as_deref()
                .and_then(AuditActors::from_name)
                .unwrap_or_default(),
            actor: text(&self.actor)?,
            action: text(&self.action)?,
            target: text(&self.target)?,
        })
    }

    fn cursor(&self) -> Result<Option<AuditCursor>, PageError> {
        let Some(after) = self.after.as_deref().filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        parse_cursor(after)
            .map(Some)
            .ok_or_else(|| PageError::BadRequest("the page position is not valid".to_owned()))
    }
}

/// `<at_ms>.<id>`, as [`format_cursor`] writes it.
fn parse_cursor(text: &str) -> Option<AuditCursor> {
    let (at, id) = text.split_once('.')?;
    Some(AuditCursor {
        at_ms: at.parse().ok()?,
        id: id.parse().ok()?,
    })
}

fn format_cursor(cursor: AuditCursor) -> String {
    format!("{}.{}", cursor.at_ms, cursor.id)
}

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, PageError> {
    let filter = query.filter()?;
    let after = query.cursor()?;
    let store = state.store();
    let page = store
        .audit_page(&viewer.tenant, &filter, after, PAGE_SIZE)
        .await?;
    let actions = store.audit_actions(&viewer.tenant).await?;
    let groups = group(&page.entries);
    let body = html! {
        section.card {
            (filter_form(&filter, &actions))
            @if groups.is_empty() {
                (empty(if after.is_some() { "No older events." } else { "Nothing matches: no event of this kind yet." }))
            } @else {
                table.data #audit {
                    thead { tr { th { "When" } th { "What happened" } } }
                    tbody {
                        @for group in &groups { (group_row(group)) }
                    }
                }
            }
            nav.pager {
                @if after.is_some() {
                    a #newest href={ "/audit" (filter_query(&filter)) } { "← Newest" }
                }
                @if let Some(next) = page.next {
                    " "
                    a #older href={ "/audit" (filter_query(&filter)) (if filter_query(&filter).is_empty() { "?" } else { "&" }) "after=" (format_cursor(next)) } { "Older →" }
                }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Audit,
        "Audit log",
        &[],
        body,
    ))
}

/// The filter as a query string (`?who=all&actor=…`), escaped; empty for the default.
fn filter_query(filter: &AuditFilter) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if filter.actors != AuditActors::People {
        query.append_pair("who", filter.actors.as_str());
    }
    for (name, value) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("target", &filter.target),
    ] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        query
    } else {
        format!("?{query}")
    }
}

fn filter_form(filter: &AuditFilter, actions: &[String]) -> Markup {
    html! {
        form.filter.toolbar #audit-filter method="get" action="/audit" {
            label {
                span { "Who" }
                select name="who" {
                    @for (value, words) in [(AuditActors::People, "People"), (AuditActors::System, "System (sync engine)"), (AuditActors::All, "Everyone")] {
                        option value=(value.as_str()) selected[filter.actors == value] { (words) }
                    }
                }
            }
            label {
                span { "Actor" }
                input type="text" name="actor" placeholder="ana@acme.com" value=[filter.actor.as_deref()];
            }
            label {
                span { "Action" }
                select name="action" {
                    option value="" selected[filter.action.is_none()] { "Any action" }
                    @for action in actions {
                        option value=(action) selected[filter.action.as_deref() == Some(action.as_str())] { (action) }
                    }
                }
            }
            label {
                span { "Target" }
                input type="text" name="target" placeholder="a mailbox, account or member" value=[filter.target.as_deref()];
            }
            button type="submit" { "Filter" }
        }
    }
}

/// Consecutive events one sentence tells: the same actor doing the same thing to several
/// targets at once (a bulk Start).
struct Group<'a> {
    entries: Vec<&'a AuditEntry>,
}

fn group(entries: &[AuditEntry]) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for entry in entries {
        if let Some(last) = groups.last_mut() {
            let first = last.entries[0];
            // A mailbox already in the group starts another action: two Retries a
            // second apart stay two sentences.
            let joinable = group_verb(&entry.event).is_some()
                && group_verb(&entry.event) == group_verb(&first.event)
                && entry.event.actor == first.event.actor
                && (first.event.at_ms - entry.event.at_ms).abs() <= GROUP_WINDOW_MS
                && !last
                    .entries
                    .iter()
                    .any(|seen| seen.event.subject == entry.event.subject);
            if joinable {
                last.entries.push(entry);
                continue;
            }
        }
        groups.push(Group {
            entries: vec![entry],
        });
    }
    groups
}

fn group_row(group: &Group<'_>) -> Markup {
    let first = &group.entries[0].event;
    let system = first.actor == SYSTEM_ACTOR;
    html! {
        tr.system[system] data-action=(first.action) data-events=(group.entries.len()) {
            td.nowrap { (time(Some(first.at_ms))) }
            td {
                @if group.entries.len() == 1 {
                    span.sentence { (sentence(first)) }
                    " " code.action title="the action's code, for search" { (first.action) }
                } @else {
                    span.sentence { (group_sentence(first, group.entries.len())) }
                    " " code.action title="the action's code, for search" { (first.action) }
                    details {
                        summary { "Which" }
                        ul.targets {
                            @for entry in &group.entries {
                                li { (entry.event.subject.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a person or the engine did, as one sentence.
pub fn sentence(event: &AuditEvent) -> String {
    let actor = who(&event.actor);
    let subject = event.subject.as_deref().unwrap_or("");
    let detail = &event.detail;
    let text = |field: &str| detail.get(field).and_then(Value::as_str).unwrap_or("");
    let count = |field: &str| detail.get(field).and_then(Value::as_u64).unwrap_or(0);
    if let Some(kind) = disconnected(&event.action) {
        return format!(
            "{actor} disconnected {}: its credentials were deleted and {} unlinked; \
             captured activity is kept",
            provider_name(kind),
            mailboxes(count("unlinked"))
        );
    }
    match event.action.as_str() {
        "link.status" => link_sentence(event),
        "link.provider" => {
            let reason = text("reason");
            let because = if reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", reason.trim_end_matches('.'))
            };
            format!(
                "{} moved from {} to {}{because}",
                or_a_mailbox(subject),
                provider_name(text("from")),
                provider_name(text("to"))
            )
        }
        "links.resumed" => format!(
            "{} resumed after {actor} found the {} connection working again",
            mailboxes(count("count")),
            provider_name(text("provider"))
        ),
        "capture.set" => match detail.get("enabled").and_then(Value::as_bool) {
            Some(true) => format!("Capture turned on by {actor}"),
            _ => format!("Capture turned off by {actor}"),
        },
        "policy.set" => format!("{actor} saved the capture policy"),
        "settings.auto_connect" => match detail.get("enabled").and_then(Value::as_bool) {
            Some(false) => {
                format!("{actor} turned “Connect new users automatically” off")
            }
            _ => format!("{actor} turned “Connect new users automatically” on"),
        },
        "connection.google.key_uploaded" => {
            format!("{actor} uploaded a service-account key (directory admin {subject})")
        }
        "connection.google.key_replacement_refused" => {
            format!("{actor} uploaded a key that failed its test; the stored key was kept")
        }
        "connection.google.tested" => match detail.get("ok").and_then(Value::as_bool) {
            Some(true) => format!("{actor} tested the connection: it works"),
            _ => format!(
                "{actor} tested the connection: Google refused ({})",
                text("message").trim_end_matches('.')
            ),
        },
        "connection.microsoft.connected" => format!(
            "{actor} saved the Microsoft 365 app registration {} (directory {}, {})",
            text("client_id"),
            text("tenant_id"),
            text("credential")
        ),
        "connection.microsoft.consent.granted" => format!(
            "{actor} granted admin consent in Microsoft directory {}",
            text("directory")
        ),
        "connection.microsoft.consent.refused" => format!(
            "{actor} came back from Microsoft's consent page without consent ({}: {})",
            text("error"),
            text("error_description")
        ),
        "connection.microsoft.tested" => match detail.get("ok").and_then(Value::as_bool) {
            Some(true) => format!("{actor} tested the Microsoft 365 connection: it works"),
            _ => format!(
                "{actor} tested the Microsoft 365 connection: Microsoft refused ({})",
                text("message").trim_end_matches('.')
            ),
        },
        "delegation.new_links_held" => format!(
            "{actor}'s Rebuild matched {} new and left them unstarted, as “Connect new \
             users automatically” is off",
            mailboxes(count("count"))
        ),
        "delegation.rebuilt" => format!(
            "{actor} rebuilt user matching: {} matched, {} not matched, {} unlinked",
            count("matched"),
            count("unmatched"),
            count("unlinked")
        ),
        "account.created" => format!(
            "{subject}'s account created by {actor} (role {})",
            text("role")
        ),
        "account.disabled" => format!("{subject}'s account disabled by {actor}"),
        "account.enabled" => format!("{subject}'s account enabled by {actor}"),
        "account.role" => format!("{subject} made {} by {actor}", role_of(detail)),
        "account.password_reset" => format!("{subject}'s password reset by {actor}"),
        "account.removed" => format!("{subject}'s account removed by {actor}"),
        "api_token.created" => format!(
            "{actor} created the API token “{}” for {subject}",
            text("name")
        ),
        "api_token.revoked" => format!("{actor} revoked the API token “{}”", text("name")),
        "member.created" => format!("{actor} added the member {subject}"),
        "member.imported" => format!(
            "{actor} imported members: {} created, {} updated",
            count("created"),
            count("updated")
        ),
        "member.active" => match detail.get("active").and_then(Value::as_bool) {
            Some(false) => format!("{actor} deactivated the member {subject}"),
            _ => format!("{actor} activated the member {subject}"),
        },
        "member.labels" => format!("{actor} changed the labels synced for {subject}"),
        other if subject.is_empty() => format!("{actor}: {other}"),
        other => format!("{actor}: {other} ({subject})"),
    }
}

/// The provider of a `connection.<kind>.disconnected` action.
fn disconnected(action: &str) -> Option<&str> {
    action
        .strip_prefix("connection.")?
        .strip_suffix(".disconnected")
}

/// A connection kind (`google`) as admins name the product.
fn provider_name(kind: &str) -> &str {
    match kind {
        "google" => "Google Workspace",
        "microsoft" => "Microsoft 365",
        "imap" => "IMAP",
        "" => "provider",
        other => other,
    }
}

/// "1 mailbox", "3 mailboxes".
fn mailboxes(count: u64) -> String {
    match count {
        1 => "1 mailbox".to_owned(),
        count => format!("{count} mailboxes"),
    }
}

fn or_a_mailbox(subject: &str) -> &str {
    if subject.is_empty() {
        "a mailbox"
    } else {
        subject
    }
}

fn role_of(detail: &Value) -> &str {
    ["to", "role"]
        .iter()
        .find_map(|field| detail.get(*field).and_then(Value::as_str))
        .unwrap_or("another role")
}

/// The actor as the sentence names it.
fn who(actor: &str) -> &str {
    if actor == SYSTEM_ACTOR {
        "Tributary"
    } else {
        actor
    }
}

/// The statuses of a `link.status` event.
fn link_change(event: &AuditEvent) -> (Option<LinkStatus>, Option<LinkStatus>) {
    let status = |field: &str| {
        event
            .detail
            .get(field)
            .and_then(Value::as_str)
            .and_then(LinkStatus::from_name)
    };
    (status("from"), status("to"))
}

/// What a person did to a link, as a verb (`started`): the key events are grouped by.
fn group_verb(event: &AuditEvent) -> Option<&'static str> {
    if event.action != "link.status" {
        return None;
    }
    let (from, to) = link_change(event);
    if event.actor == SYSTEM_ACTOR {
        return to.map(status_words);
    }
    Some(match (from, to) {
        (_, Some(LinkStatus::Unlinked)) => "unlinked",
        (Some(LinkStatus::Unlinked), Some(LinkStatus::Pending)) => "started",
        (_, Some(LinkStatus::Pending)) => "retried",
        _ => "changed",
    })
}

fn link_sentence(event: &AuditEvent) -> String {
    let subject = event.subject.as_deref().unwrap_or("a mailbox");
    let (from, to) = link_change(event);
    let words = |status: Option<LinkStatus>| status.map_or("unknown", status_words);
    if event.actor == SYSTEM_ACTOR {
        return format!("{subject}: {} → {}", words(from), words(to));
    }
    match group_verb(event) {
        Some("changed") | None => format!(
            "{} moved {subject} from {} to {}",
            event.actor,
            words(from),
            words(to)
        ),
        Some(verb) => format!("{} {verb} {subject}", event.actor),
    }
}

/// One sentence for `count` grouped events like `first`.
fn group_sentence(first: &AuditEvent, count: usize) -> String {
    let verb = group_verb(first).unwrap_or("changed");
    if first.actor == SYSTEM_ACTOR {
        return format!("{count} mailboxes became {verb}");
    }
    format!("{} {verb} {count} mailboxes", first.actor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(actor: &str, action: &str, subject: Option<&str>, detail: Value) -> AuditEvent {
        AuditEvent {
            at_ms: 1_000,
            actor: actor.into(),
            action: action.into(),
            subject: subject.map(str::to_owned),
            detail,
        }
    }

    #[test]
    fn events_read_as_sentences() {
        let capture = event(
            "ana@acme.com",
            "capture.set",
            None,
            json!({"enabled": true}),
        );
        assert_eq!(sentence(&capture), "Capture turned on by ana@acme.com");
        let disabled = event(
            "ana@acme.com",
            "account.disabled",
            Some("bob@acme.com"),
            json!({}),
        );
        assert_eq!(
            sentence(&disabled),
            "bob@acme.com's account disabled by ana@acme.com"
        );
        let started = event(
            "ana@acme.com",
            "link.status",
            Some("carl@acme.com"),
            json!({"from": "unlinked", "to": "pending"}),
        );
        assert_eq!(sentence(&started), "ana@acme.com started carl@acme.com");
        let unknown = event("ana@acme.com", "new.thing", Some("x"), json!({}));
        assert_eq!(sentence(&unknown), "ana@acme.com: new.thing (x)");
    }

    #[test]
    fn connection_and_setting_events_read_as_sentences() {
        let cases = [
            (
                event(
                    "ana@acme.com",
                    "links.resumed",
                    None,
                    json!({"count": 3, "provider": "google", "mailboxes": ["a@acme.com"]}),
                ),
                "3 mailboxes resumed after ana@acme.com found the Google Workspace connection \
                 working again",
            ),
            (
                event(
                    SYSTEM_ACTOR,
                    "links.resumed",
                    None,
                    json!({"count": 1, "provider": "microsoft"}),
                ),
                "1 mailbox resumed after Tributary found the Microsoft 365 connection working \
                 again",
            ),
            (
                event(
                    "ana@acme.com",
                    "delegation.new_links_held",
                    None,
                    json!({"count": 2, "mailboxes": ["a@acme.com", "b@acme.com"]}),
                ),
                "ana@acme.com's Rebuild matched 2 mailboxes new and left them unstarted, as \
                 “Connect new users automatically” is off",
            ),
            (
                event(
                    "ana@acme.com",
                    "settings.auto_connect",
                    None,
                    json!({"enabled": false}),
                ),
                "ana@acme.com turned “Connect new users automatically” off",
            ),
            (
                event(
                    "ana@acme.com",
                    "settings.auto_connect",
                    None,
                    json!({"enabled": true}),
                ),
                "ana@acme.com turned “Connect new users automatically” on",
            ),
            (
                event(
                    SYSTEM_ACTOR,
                    "link.provider",
                    Some("carl@acme.com"),
                    json!({"link": 4, "from": "google", "to": "microsoft", "reason": null}),
                ),
                "carl@acme.com moved from Google Workspace to Microsoft 365",
            ),
            (
                event(
                    SYSTEM_ACTOR,
                    "link.provider",
                    Some("carl@acme.com"),
                    json!({"from": "microsoft", "to": "google", "reason": "hosted at Google."}),
                ),
                "carl@acme.com moved from Microsoft 365 to Google Workspace (hosted at Google)",
            ),
            (
                event(
                    "ana@acme.com",
                    "connection.google.disconnected",
                    None,
                    json!({"unlinked": 4}),
                ),
                "ana@acme.com disconnected Google Workspace: its credentials were deleted and \
                 4 mailboxes unlinked; captured activity is kept",
            ),
            (
                event(
                    "ana@acme.com",
                    "connection.microsoft.disconnected",
                    None,
                    json!({"unlinked": 0}),
                ),
                "ana@acme.com disconnected Microsoft 365: its credentials were deleted and \
                 0 mailboxes unlinked; captured activity is kept",
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(sentence(&event), expected, "{}", event.action);
        }
    }

    /// Every action the store, the runtime and the API write has its own sentence:
    /// none falls through to the raw code.
    #[test]
    fn every_emitted_action_has_a_sentence() {
        let emitted = [
            "link.status",
            "link.provider",
            "links.resumed",
            "capture.set",
            "policy.set",
            "settings.auto_connect",
            "connection.google.key_uploaded",
            "connection.google.key_replacement_refused",
            "connection.google.tested",
            "connection.google.disconnected",
            "connection.microsoft.connected",
            "connection.microsoft.consent.granted",
            "connection.microsoft.consent.refused",
            "connection.microsoft.tested",
            "connection.microsoft.disconnected",
            "delegation.rebuilt",
            "delegation.new_links_held",
            "account.created",
            "account.disabled",
            "account.enabled",
            "account.role",
            "account.password_reset",
            "account.removed",
            "api_token.created",
            "api_token.revoked",
            "member.created",
            "member.imported",
            "member.active",
            "member.labels",
        ];
        for action in emitted {
            let text = sentence(&event(
                "ana@acme.com",
                action,
                Some("x@acme.com"),
                json!({}),
            ));
            assert!(!text.contains(action), "{action} has no sentence: {text}");
        }
    }

    #[test]
    fn a_bulk_action_is_one_sentence() {
        let entries: Vec<AuditEntry> = (0..3)
            .map(|id| AuditEntry {
                id,
                event: event(
                    "ana@acme.com",
                    "link.status",
                    Some(&format!("m{id}@acme.com")),
                    json!({"from": "unlinked", "to": "pending"}),
                ),
            })
            .chain(std::iter::once(AuditEntry {
                id: 9,
                event: event("ana@acme.com", "policy.set", None, json!({})),
            }))
            .collect();
        let groups = group(&entries);
        assert_eq!(groups.len(), 2);
        let twice: Vec<AuditEntry> = entries[..1].iter().chain(&entries[..1]).cloned().collect();
        assert_eq!(
            group(&twice).len(),
            2,
            "the same mailbox twice is two actions"
        );
        assert_eq!(
            group_sentence(&groups[0].entries[0].event, groups[0].entries.len()),
            "ana@acme.com started 3 mailboxes"
        );
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let cursor = AuditCursor { at_ms: 17, id: 4 };
        assert_eq!(parse_cursor(&format_cursor(cursor)), Some(cursor));
        assert_eq!(parse_cursor("17"), None);
        assert_eq!(parse_cursor("a.b"), None);
    }
}
