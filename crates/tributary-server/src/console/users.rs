//! The Users page: every mailbox link with its status in colour and words, the
//! provider's message and what to do about it, the last sync and what it did, captured
//! against the provider's counts; bulk Start, Unlink and Retry; Rebuild user matching
//! with its last result; a status filter. The table body refreshes itself every two
//! seconds from `/users/rows` while syncs run.

use super::error::PageError;
use super::forms::SignedForm;
use super::layout::{self, Notice, Section, csrf_field, empty, status_badge, status_words, time};
use super::session::{Admin, Viewer};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;
use tributary_store::{LabelReconciliation, LinkId, LinkStatus, LinkView};
use tributary_sync::{DelegationReport, RuntimeError};

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// A status name (`idle`, `unauthorized` …); anything else shows every link.
    #[serde(default)]
    pub status: Option<String>,
}

impl Filter {
    fn status(&self) -> Option<LinkStatus> {
        self.status.as_deref().and_then(LinkStatus::from_name)
    }

    fn query(&self) -> String {
        match self.status() {
            Some(status) => format!("?status={}", status.as_str()),
            None => String::new(),
        }
    }
}

/// A link and what the table shows beside it.
struct Row {
    link: LinkView,
    labels: Vec<LabelReconciliation>,
}

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, PageError> {
    render(&state, &viewer, &filter, &[]).await
}

/// The table body alone, for the page's live refresh.
pub async fn rows(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let rows = load_rows(&state, &viewer, &filter).await?;
    Ok(Html(table_body(&rows).into_string()))
}

/// Bulk Start, Unlink or Retry of the ticked links.
pub async fn act(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
    form: SignedForm,
) -> Result<Html<String>, PageError> {
    let viewer = form.viewer.require_admin()?;
    let links = form
        .fields
        .all("link")
        .map(|id| id.parse().map(LinkId))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PageError::BadRequest("a selected link id is not a number".to_owned()))?;
    if links.is_empty() {
        let notice = Notice::warning("Tick at least one user first.");
        return render(&state, &viewer, &filter, &[notice]).await;
    }
    let runtime = &state.runtime;
    let (tenant, actor) = (&viewer.tenant, viewer.email.as_str());
    let result = match form.fields.get("action") {
        Some("start") => runtime
            .start_links(tenant, &links, actor)
            .await
            .map(|n| (n, "started")),
        Some("unlink") => runtime
            .unlink_links(tenant, &links, actor)
            .await
            .map(|n| (n, "unlinked")),
        Some("retry") => runtime
            .retry_links(tenant, &links, actor)
            .await
            .map(|n| (n, "retried")),
        _ => {
            return Err(PageError::BadRequest(
                "choose Start, Unlink or Retry".to_owned(),
            ));
        }
    };
    let notice = match result {
        Ok((changed, verb)) => action_notice(changed, links.len(), verb),
        Err(RuntimeError::UnknownLink(id)) => {
            return Err(PageError::NotFound(format!(
                "mailbox link {id} is not in this tenant"
            )));
        }
        Err(other) => return Err(other.into()),
    };
    render(&state, &viewer, &filter, &[notice]).await
}

fn action_notice(changed: usize, selected: usize, verb: &str) -> Notice {
    let unchanged = selected - changed.min(selected);
    let mut text = format!("{changed} of {selected} selected mailbox(es) {verb}.");
    if unchanged > 0 {
        text.push_str(&format!(
            " {unchanged} did not change: their status does not allow it."
        ));
    }
    Notice::success(text)
}

/// *Rebuild*: User Delegation Sync now.
pub async fn rebuild(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Html<String>, PageError> {
    let viewer = form.viewer.require_admin()?;
    let filter = Filter::default();
    let notice = match state.runtime.rebuild(&viewer.tenant, &viewer.email).await {
        Ok(report) => Notice::success(format!(
            "User matching rebuilt: {} matched, {} not matched, {} unlinked.",
            report.matched.len(),
            report.unmatched.len(),
            report.unlinked.len()
        )),
        Err(RuntimeError::NotConnected) => {
            Notice::error("Upload a service-account key on the Google setup page first.")
        }
        Err(RuntimeError::Provider { status, message }) => Notice::error(format!(
            "Google refused ({status}): {message} — {}",
            status.fix_hint()
        )),
        Err(other) => return Err(other.into()),
    };
    render(&state, &viewer, &filter, &[notice]).await
}

async fn load_rows(
    state: &AppState,
    viewer: &Viewer,
    filter: &Filter,
) -> Result<Vec<Row>, PageError> {
    let store = state.store();
    let wanted = filter.status();
    let mut rows = Vec::new();
    for link in store.links(&viewer.tenant).await? {
        if wanted.is_some_and(|status| status != link.status) {
            continue;
        }
        let labels = store.label_reconciliation(&viewer.tenant, link.id).await?;
        rows.push(Row { link, labels });
    }
    Ok(rows)
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    filter: &Filter,
    notices: &[Notice],
) -> Result<Html<String>, PageError> {
    let rows = load_rows(state, viewer, filter).await?;
    let report = state.runtime.delegation_report(&viewer.tenant).await?;
    let capture = state.runtime.capture_enabled(&viewer.tenant).await?;
    let mut notices = notices.to_vec();
    if !capture {
        notices.push(Notice::warning(
            "Capture is off: started mailboxes wait until it is enabled on the Google setup page.",
        ));
    }
    let body = html! {
        (rebuild_card(viewer, report.as_ref()))
        section.card {
            div.toolbar {
                form.filter method="get" action="/users" {
                    label {
                        span { "Status" }
                        select name="status" data-autosubmit {
                            option value="" selected[filter.status().is_none()] { "All statuses" }
                            @for status in LinkStatus::ALL {
                                option value=(status.as_str()) selected[filter.status() == Some(status)] {
                                    (status_words(status))
                                }
                            }
                        }
                    }
                    noscript { button type="submit" { "Filter" } }
                }
                span.live #live-state { "Live" }
            }
            form #bulk method="post" action={ "/users" (filter.query()) } {
                (csrf_field(viewer))
                div.actions {
                    span.muted #selected-count { "0 selected" }
                    button type="submit" name="action" value="start" { "Start" }
                    button type="submit" name="action" value="retry" { "Retry" }
                    button.danger type="submit" name="action" value="unlink" { "Unlink" }
                }
                table.users {
                    thead {
                        tr {
                            th.check { input type="checkbox" #select-all aria-label="Select all"; }
                            th { "User" }
                            th { "Status" }
                            th { "Last sync" }
                            th { "Last run" }
                            th { "Captured / Google" }
                        }
                    }
                    tbody #user-rows data-refresh={ "/users/rows" (filter.query()) } {
                        (table_body(&rows))
                    }
                }
                p.muted.caption {
                    "Captured / Google: per synced label, the messages Tributary accounts for "
                    "against Google's own count of the label (all time, so older mail outside "
                    "the backfill window makes Google's number larger)."
                }
            }
        }
    };
    Ok(layout::page(
        viewer,
        Section::Users,
        "Users",
        &notices,
        body,
    ))
}

fn table_body(rows: &[Row]) -> Markup {
    html! {
        @if rows.is_empty() {
            tr { td colspan="6" { (empty("No mailbox matches. Rebuild user matching to read the directory.")) } }
        }
        @for row in rows { (user_row(row)) }
    }
}

fn user_row(row: &Row) -> Markup {
    let link = &row.link;
    html! {
        tr data-link=(link.id.0) data-status=(link.status.as_str()) {
            td.check {
                input type="checkbox" name="link" value=(link.id.0)
                    aria-label={ "Select " (link.mailbox) };
            }
            td {
                a.member href=(layout::link("members", &link.member)) { (link.member) }
                @if link.mailbox != link.member { div.muted { (link.mailbox) } }
            }
            td.status {
                (status_badge(link.status))
                (problem(link))
            }
            td { (time(link.last_success_ms)) }
            td { (summary(link.last_summary.as_ref())) }
            td { (label_counts(&row.labels)) }
        }
    }
}

/// The provider's words and the fix hint, for a link in an error status.
fn problem(link: &LinkView) -> Markup {
    let hint = match link.status {
        LinkStatus::AuthenticationError => {
            Some(tributary_core::LinkErrorStatus::AuthenticationError.fix_hint())
        }
        LinkStatus::Unauthorized => Some(tributary_core::LinkErrorStatus::Unauthorized.fix_hint()),
        LinkStatus::LinkageError => Some(tributary_core::LinkErrorStatus::LinkageError.fix_hint()),
        _ => None,
    };
    html! {
        @if let Some(message) = &link.provider_message {
            @if hint.is_some() {
                div.provider-message { (message) }
            }
        }
        @if let Some(hint) = hint {
            div.hint { strong { "What to do: " } (hint) }
            @if link.attempts > 0 {
                div.muted {
                    (link.attempts) " failed attempt(s); "
                    @match link.next_attempt_ms {
                        Some(ms) => { "next try " (time(Some(ms))) }
                        None => "waits for an admin to Retry",
                    }
                }
            }
        }
    }
}

fn summary(summary: Option<&serde_json::Value>) -> Markup {
    let Some(summary) = summary else {
        return html! { span.muted { "—" } };
    };
    let count = |field: &str| {
        summary
            .get(field)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let mode = summary
        .get("mode")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("sync");
    html! {
        span.added title="new activities" { "+" (count("added")) " added" }
        " · "
        span.removed title="messages deleted before they could be read" { "−" (count("gone")) " removed" }
        div.muted { (mode) ", " (count("fetched")) " fetched, " (count("excluded")) " excluded by policy" }
    }
}

fn label_counts(labels: &[LabelReconciliation]) -> Markup {
    if labels.is_empty() {
        return html! { span.muted { "—" } };
    }
    html! {
        ul.counts {
            @for label in labels {
                li title=(breakdown(label)) {
                    span.label { (label.label) } " "
                    strong { (label.captured) }
                    " / "
                    @match label.provider_total {
                        Some(total) => (total),
                        None => "?",
                    }
                    @if label.unaccounted() > 0 {
                        " " span.badge.status-linkage_error { (label.unaccounted()) " unaccounted" }
                    }
                }
            }
        }
    }
}

/// What the provider listed for a label and where each message went.
fn breakdown(label: &LabelReconciliation) -> String {
    format!(
        "{} listed in the backfill window or named by history: {} captured, {} excluded by policy, {} outside the window or synced labels, {} deleted before they could be read",
        label.listed, label.captured, label.excluded, label.not_seen, label.gone
    )
}

fn rebuild_card(viewer: &Viewer, report: Option<&DelegationReport>) -> Markup {
    html! {
        section.card #rebuild {
            div.card-head {
                h2 { "User matching" }
                form method="post" action="/users/rebuild" {
                    (csrf_field(viewer))
                    button type="submit" { "Rebuild" }
                }
            }
            @match report {
                None => p.muted { "Not run yet. Rebuild reads the Google directory and links every active mailbox." },
                Some(report) => (report_summary(report)),
            }
        }
    }
}

fn report_summary(report: &DelegationReport) -> Markup {
    html! {
        p #rebuild-result {
            "Last run " (time(Some(report.at_ms))) " as " (report.admin_email) ": "
            strong { (report.directory_accounts) } " directory accounts, "
            strong.ok-text { (report.matched.len()) " matched" } ", "
            strong { (report.unmatched.len()) " not matched" } ", "
            strong { (report.unlinked.len()) " unlinked" } "."
        }
        @if !report.unmatched.is_empty() || !report.unlinked.is_empty() {
            details {
                summary { "Not matched and unlinked, with the reason" }
                ul.reasons {
                    @for skipped in &report.unmatched {
                        li { code { (skipped.email) } " — " (skipped.reason.describe()) }
                    }
                    @for unlinked in &report.unlinked {
                        li { code { (unlinked.member) } " — unlinked: " (unlinked.reason.describe()) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_notice_counts_what_changed() {
        assert_eq!(
            action_notice(2, 3, "started").text,
            "2 of 3 selected mailbox(es) started. 1 did not change: their status does not allow it."
        );
        assert_eq!(
            action_notice(1, 1, "unlinked").text,
            "1 of 1 selected mailbox(es) unlinked."
        );
    }

    #[test]
    fn the_filter_keeps_only_known_statuses() {
        let known = Filter {
            status: Some("idle".into()),
        };
        assert_eq!(known.query(), "?status=idle");
        let unknown = Filter {
            status: Some("<script>".into()),
        };
        assert_eq!(unknown.query(), "");
    }
}
