//! Activity views: companies ranked by activity with who at our company knows them
//! best, a company's and a contact's timeline of contact points, a member's page, and
//! search by address, name or domain.
//!
//! The store has no display names, so "name" search matches an address's local part
//! (`jane` finds `jane.doe@…`). Views are computed from the tenant's activities as the
//! store returns them, which suits the console's scale; the API pages through them.

use super::error::PageError;
use super::layout::{self, Section, date, empty, link, plural, status_badge, time};
use super::session::{Admin, Viewer};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use tributary_store::{ActivityView, RelationshipView};

/// Timeline entries shown on one page.
const TIMELINE_LIMIT: usize = 200;

/// What the views are computed from.
struct Index {
    activities: Vec<ActivityView>,
    /// Contact address → company domain.
    company_of: HashMap<String, Option<String>>,
    relationships: Vec<RelationshipView>,
}

impl Index {
    async fn load(state: &AppState, viewer: &Viewer) -> Result<Self, PageError> {
        let store = state.store();
        let tenant = &viewer.tenant;
        Ok(Index {
            activities: store.activities(tenant).await?,
            company_of: store
                .contacts(tenant)
                .await?
                .into_iter()
                .map(|c| (c.address, c.company))
                .collect(),
            relationships: store.relationships(tenant).await?,
        })
    }

    fn company(&self, address: &str) -> Option<&str> {
        self.company_of.get(address).and_then(Option::as_deref)
    }

    /// Activities any of whose participants passes `involves`, newest first.
    fn timeline(&self, involves: impl Fn(&str) -> bool) -> Vec<&ActivityView> {
        let mut found: Vec<&ActivityView> = self
            .activities
            .iter()
            .filter(|a| a.participants.iter().any(|p| involves(&p.address)))
            .collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.time_ms));
        found
    }

    /// Relationships with contacts passing `of`, summed per member, strongest first.
    fn best_known_by(&self, of: impl Fn(&str) -> bool) -> Vec<MemberStrength> {
        let mut by_member: BTreeMap<&str, MemberStrength> = BTreeMap::new();
        for relationship in self.relationships.iter().filter(|r| of(&r.contact)) {
            let entry = by_member
                .entry(&relationship.member)
                .or_insert_with(|| MemberStrength {
                    member: relationship.member.clone(),
                    score: 0.0,
                    total: 0,
                    last_ms: relationship.last_ms,
                });
            entry.score += relationship.score_at_last;
            entry.total += relationship.total;
            entry.last_ms = entry.last_ms.max(relationship.last_ms);
        }
        let mut ranked: Vec<MemberStrength> = by_member.into_values().collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.total.cmp(&a.total)));
        ranked
    }
}

/// How well one member knows a contact or a company.
struct MemberStrength {
    member: String,
    score: f64,
    total: i64,
    last_ms: i64,
}

/// A company's line in the ranking.
struct CompanyRank {
    domain: String,
    activities: usize,
    contacts: usize,
    last_ms: Option<i64>,
    best: Option<MemberStrength>,
}

fn rank_companies(index: &Index) -> Vec<CompanyRank> {
    let mut activities: HashMap<&str, (usize, Option<i64>)> = HashMap::new();
    for activity in &index.activities {
        let mut domains: Vec<&str> = activity
            .participants
            .iter()
            .filter_map(|p| index.company(&p.address))
            .collect();
        domains.sort_unstable();
        domains.dedup();
        for domain in domains {
            let entry = activities.entry(domain).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(activity.time_ms);
        }
    }
    let mut contacts: HashMap<&str, usize> = HashMap::new();
    for domain in index.company_of.values().flatten() {
        *contacts.entry(domain).or_default() += 1;
    }
    let mut ranked: Vec<CompanyRank> = contacts
        .iter()
        .map(|(domain, contacts)| {
            let (count, last_ms) = activities.get(domain).copied().unwrap_or_default();
            CompanyRank {
                domain: (*domain).to_owned(),
                activities: count,
                contacts: *contacts,
                last_ms,
                best: index
                    .best_known_by(|contact| index.company(contact) == Some(domain))
                    .into_iter()
                    .next(),
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.activities
            .cmp(&a.activities)
            .then_with(|| a.domain.cmp(&b.domain))
    });
    ranked
}

pub async fn companies(
    State(state): State<AppState>,
    Admin(viewer): Admin,
) -> Result<Html<String>, PageError> {
    let index = Index::load(&state, &viewer).await?;
    let ranked = rank_companies(&index);
    let body = html! {
        section.card {
            @if ranked.is_empty() {
                (empty("No companies yet: they appear as mail with outside participants is captured."))
            } @else {
                table.data #companies {
                    thead { tr {
                        th.num { "#" } th { "Company" } th.num { "Activities" } th.num { "Contacts" }
                        th { "Last contact" } th { "Knows them best" }
                    } }
                    tbody {
                        @for (rank, company) in ranked.iter().enumerate() {
                            tr {
                                td.num { (rank + 1) }
                                td { a href=(link("companies", &company.domain)) { (company.domain) } }
                                td.num { (company.activities) }
                                td.num { (company.contacts) }
                                td.nowrap { @match company.last_ms { Some(ms) => (date(ms)), None => span.muted { "—" } } }
                                td {
                                    @if let Some(best) = &company.best {
                                        a href=(link("members", &best.member)) { (best.member) }
                                        span.muted { " · " (plural(best.total, "message", "messages")) }
                                    } @else { span.muted { "—" } }
                                }
                            }
                        }
                    }
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

pub async fn company(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Path(domain): Path<String>,
) -> Result<Html<String>, PageError> {
    let domain = domain.to_lowercase();
    let index = Index::load(&state, &viewer).await?;
    let contacts: Vec<&String> = {
        let mut found: Vec<&String> = index
            .company_of
            .iter()
            .filter(|(_, company)| company.as_deref() == Some(domain.as_str()))
            .map(|(address, _)| address)
            .collect();
        found.sort();
        found
    };
    if contacts.is_empty() {
        return Err(PageError::NotFound(format!(
            "no company `{domain}` in this organization"
        )));
    }
    let in_company = |address: &str| index.company(address) == Some(domain.as_str());
    let timeline = index.timeline(in_company);
    let best = index.best_known_by(in_company);
    let body = html! {
        div.columns {
            section.card {
                h2 { "Who knows them best" }
                (strengths(&best))
            }
            section.card {
                h2 { "Contacts (" (contacts.len()) ")" }
                ul.plain {
                    @for address in &contacts {
                        li { a href=(link("contacts", address)) { (address) } }
                    }
                }
            }
        }
        section.card {
            h2 { "Timeline" }
            (timeline_list(&index, &timeline))
        }
    };
    let title = format!("Company · {domain}");
    Ok(layout::page(&viewer, Section::Companies, &title, &[], body))
}

pub async fn contact(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Path(address): Path<String>,
) -> Result<Html<String>, PageError> {
    let address = address.to_lowercase();
    let index = Index::load(&state, &viewer).await?;
    let Some(company) = index.company_of.get(&address) else {
        return Err(PageError::NotFound(format!(
            "no contact `{address}` in this organization"
        )));
    };
    let timeline = index.timeline(|a| a == address);
    let best = index.best_known_by(|c| c == address);
    let body = html! {
        section.card {
            p {
                "Company: "
                @match company {
                    Some(domain) => a href=(link("companies", domain)) { (domain) },
                    None => span.muted { "personal address (free mail)" },
                }
            }
            h2 { "Who knows them" }
            (strengths(&best))
        }
        section.card {
            h2 { "Timeline" }
            (timeline_list(&index, &timeline))
        }
    };
    let title = format!("Contact · {address}");
    Ok(layout::page(&viewer, Section::Companies, &title, &[], body))
}

pub async fn member(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Path(email): Path<String>,
) -> Result<Html<String>, PageError> {
    let email = email.to_lowercase();
    let store = state.store();
    let Some(member) = store
        .members(&viewer.tenant)
        .await?
        .into_iter()
        .find(|m| m.email == email)
    else {
        return Err(PageError::NotFound(format!(
            "no member `{email}` in this organization"
        )));
    };
    let links: Vec<_> = store
        .links(&viewer.tenant)
        .await?
        .into_iter()
        .filter(|l| l.member == member.email)
        .collect();
    let labels = store.member_labels(&viewer.tenant, member.id).await?;
    let index = Index::load(&state, &viewer).await?;
    let mut contacts: Vec<&RelationshipView> = index
        .relationships
        .iter()
        .filter(|r| r.member == member.email)
        .collect();
    contacts.sort_by(|a, b| b.score_at_last.total_cmp(&a.score_at_last));
    let mut addresses = vec![member.email.clone()];
    addresses.extend(member.aliases.iter().cloned());
    let timeline = index.timeline(|a| addresses.iter().any(|m| m == a));
    let body = html! {
        div.columns.wide-right {
            section.card {
                h2 { "Mailbox" }
                @if links.is_empty() { (empty("Not linked.")) }
                @for link in &links {
                    p { strong { (link.mailbox) } " " (status_badge(link.status)) }
                    p.muted { "Last sync " (time(link.last_success_ms)) }
                }
                p {
                    "Role " strong { (if member.role == tributary_store::MemberRole::Admin { "admin" } else { "member" }) }
                    @if !member.active { " · " span.badge.status-unlinked { "inactive" } }
                }
                @if !member.aliases.is_empty() { p.muted { "Also: " (member.aliases.join(", ")) } }
                p { "Extra labels: " @if labels.is_empty() { span.muted { "none" } } @for l in &labels { span.label { (l) } " " } }
            }
            section.card {
                h2 { "Strongest relationships" }
                @if contacts.is_empty() { (empty("No relationships yet.")) } @else {
                    table.data {
                        thead { tr { th { "Contact" } th.num { "Sent" } th.num { "Received" } th { "Last" } th.num { "Score" } } }
                        tbody {
                            @for r in contacts.iter().take(25) {
                                tr {
                                    td { a href=(link("contacts", &r.contact)) { (r.contact) } }
                                    td.num { (r.sent) } td.num { (r.received) }
                                    td.nowrap { (date(r.last_ms)) }
                                    td.num { (format!("{:.1}", r.score_at_last)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Timeline" }
            (timeline_list(&index, &timeline))
        }
    };
    let title = format!("Member · {}", member.email);
    Ok(layout::page(&viewer, Section::Users, &title, &[], body))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

pub async fn search(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<SearchQuery>,
) -> Result<Html<String>, PageError> {
    let needle = query.q.trim().to_lowercase();
    let store = state.store();
    let (mut members, mut contacts, mut companies) = (Vec::new(), Vec::new(), Vec::new());
    if !needle.is_empty() {
        members = store
            .members(&viewer.tenant)
            .await?
            .into_iter()
            .filter(|m| {
                address_matches(&m.email, &needle)
                    || m.aliases.iter().any(|a| address_matches(a, &needle))
            })
            .collect();
        contacts = store
            .contacts(&viewer.tenant)
            .await?
            .into_iter()
            .filter(|c| address_matches(&c.address, &needle))
            .collect();
        companies = store
            .companies(&viewer.tenant)
            .await?
            .into_iter()
            .filter(|c| c.domain.contains(&needle))
            .collect();
    }
    let body = html! {
        form.card.searchbar method="get" action="/search" {
            input type="search" name="q" value=(query.q) placeholder="Address, name or domain" autofocus;
            button.primary type="submit" { "Search" }
        }
        @if !needle.is_empty() {
            div.columns.three {
                section.card {
                    h2 { "Companies (" (companies.len()) ")" }
                    @if companies.is_empty() { (empty("No company matches.")) }
                    ul.plain { @for c in &companies { li { a href=(link("companies", &c.domain)) { (c.domain) } span.muted { " · " (plural(c.contacts, "contact", "contacts")) } } } }
                }
                section.card {
                    h2 { "Contacts (" (contacts.len()) ")" }
                    @if contacts.is_empty() { (empty("No contact matches.")) }
                    ul.plain { @for c in contacts.iter().take(100) { li { a href=(link("contacts", &c.address)) { (c.address) } } } }
                }
                section.card {
                    h2 { "Members (" (members.len()) ")" }
                    @if members.is_empty() { (empty("No member matches.")) }
                    ul.plain { @for m in &members { li { a href=(link("members", &m.email)) { (m.email) } } } }
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

/// True when `needle` is in the address, its local part or its domain.
fn address_matches(address: &str, needle: &str) -> bool {
    if address.contains(needle) {
        return true;
    }
    // "Jane Doe" finds jane.doe@…: names are not stored, local parts carry them.
    let local = address.split('@').next().unwrap_or_default();
    let words: Vec<&str> = needle.split_whitespace().collect();
    words.len() > 1 && words.iter().all(|w| local.contains(w))
}

fn strengths(ranked: &[MemberStrength]) -> Markup {
    if ranked.is_empty() {
        return empty("Nobody in the organization has corresponded with them yet.");
    }
    html! {
        ol.strengths {
            @for s in ranked.iter().take(10) {
                li {
                    a href=(link("members", &s.member)) { (s.member) }
                    span.muted { " · " (plural(s.total, "message", "messages")) ", last " (date(s.last_ms)) }
                }
            }
        }
    }
}

fn timeline_list(index: &Index, activities: &[&ActivityView]) -> Markup {
    if activities.is_empty() {
        return empty("No contact points captured yet.");
    }
    html! {
        ol.timeline {
            @for activity in activities.iter().take(TIMELINE_LIMIT) {
                li {
                    div.when { (time(activity.time_ms)) }
                    div.what {
                        span class={ "direction " (activity.direction) } { (activity.direction) }
                        " "
                        @match &activity.subject {
                            Some(subject) if !subject.is_empty() => strong { (subject) },
                            _ => span.muted { "(subject not kept)" },
                        }
                        div.people {
                            @for p in &activity.participants {
                                span.person {
                                    span.role { (p.role) }
                                    @if p.kind == "external" && index.company_of.contains_key(&p.address) {
                                        a href=(link("contacts", &p.address)) { (p.address) }
                                    } @else if p.kind == "member" {
                                        a href=(link("members", &p.address)) { (p.address) }
                                    } @else {
                                        (p.address)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if activities.len() > TIMELINE_LIMIT {
            p.muted { "Showing the latest " (TIMELINE_LIMIT) " of " (activities.len()) "." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_local_parts_word_by_word() {
        assert!(address_matches("jane.doe@acme.com", "jane"));
        assert!(address_matches("jane.doe@acme.com", "jane doe"));
        assert!(address_matches("jane.doe@acme.com", "acme.com"));
        assert!(!address_matches("jane.doe@acme.com", "john doe"));
    }
}
