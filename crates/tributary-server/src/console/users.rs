//! The Users page: every mailbox link with its member's display name, its status in
//! colour and words, the provider's message and what to do about it, the last sync that
//! changed something (and when a later, empty one checked), captured against the
//! provider's counts; bulk Start, Unlink and Retry; Rebuild user matching
//! with its last result; a status filter with the count of each status, problems
//! sorted first. A failure that is the connection's shows once, as the banner above
//! the table (see [`super::banner`]); its rows only say they wait for the connection.
//! The table body refreshes itself every two seconds from `/users/rows` while syncs run.
//! A backfilling row says how far it is and the time left at the quota, a row whose
//! worker stopped says so and when another takes over, and while any mailbox is not yet
//! backfilled the organization's progress shows above (refreshed with the banner).

use super::activity::last_sync;
use super::banner::{self, WAITING_FOR_CONNECTION};
use super::error::PageError;
use super::flash::{self, Outcome};
use super::forms::{Fields, SignedForm};
use super::layout::{self, Notice, Section, csrf_field, empty, status_badge, status_words, time};
use super::session::{Admin, Viewer};
use crate::AppState;
use crate::api::link_push::{PushView, TenantPush};
use crate::progress::{Backfill, BackfillState, OrgProgress, QuotaRates, RunState, TenantProgress};
use axum::extract::{Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use tributary_core::{Audience, FailureCause, FailureSite, HintProvider};
use tributary_store::{LabelReconciliation, LinkId, LinkStatus, LinkView, PushMode, RunningLink};
use tributary_sync::runtime::MAX_LINKS_PER_ACTION;
use tributary_sync::runtime::resume::waits_for_connection;
use tributary_sync::{DelegationReport, RuntimeError};

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// A status name (`idle`, `unauthorized` …); anything else shows every link.
    #[serde(default)]
    pub status: Option<String>,
    /// The outcome of the form posted just before (Post/Redirect/Get).
    #[serde(default)]
    pub flash: Option<String>,
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
    push: PushView,
    progress: RowProgress,
}

/// How far a row's backfill is and who runs it.
#[derive(Debug, Default)]
struct RowProgress {
    backfill: Option<Backfill>,
    running: Option<RunningLink>,
    /// At the per-user budget.
    seconds_left: Option<u64>,
}

/// The table's rows (filtered and sorted), the banner's links (all of them) and how
/// many links are in each status.
struct Table {
    rows: Vec<Row>,
    all: Vec<LinkView>,
    counts: HashMap<LinkStatus, usize>,
    /// The rows' members' display names (the directory's), by address.
    names: HashMap<String, String>,
    /// The organization's backfill, over every link.
    org: OrgProgress,
}

/// Where a status sorts: problems first (an admin's action is needed), then links at
/// work, then the quiet ones.
fn status_rank(status: LinkStatus) -> u8 {
    match status {
        LinkStatus::AuthenticationError | LinkStatus::Unauthorized => 0,
        LinkStatus::LinkageError => 1,
        LinkStatus::Syncing | LinkStatus::Pending => 2,
        LinkStatus::Idle => 3,
        LinkStatus::Unlinked => 4,
    }
}

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let outcome = flash::take(&viewer, filter.flash.as_deref());
    render(&state, &viewer, &filter, &outcome.notices).await
}

/// The table body alone, for the page's live refresh.
pub async fn rows(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, PageError> {
    let table = load_table(&state, &viewer, &filter).await?;
    Ok(Html(table_body(&table, now_ms()).into_string()))
}

/// The connection's banner alone: the live refresh brings it (and takes it away) with
/// the rows, so a connection-wide failure shows without a reload.
pub async fn banner_slot(
    State(state): State<AppState>,
    Admin(viewer): Admin,
) -> Result<Html<String>, PageError> {
    let links = state.runtime.store().links(&viewer.tenant).await?;
    let progress = load_progress(&state, &viewer).await?;
    let org = progress.organization(&links);
    Ok(Html(banner_slot_body(&links, &org).into_string()))
}

/// What the banner slot holds: the connection's banner and the organization's backfill.
fn banner_slot_body(links: &[LinkView], org: &OrgProgress) -> Markup {
    html! {
        (banner::for_links(links))
        (org_line(org))
    }
}

async fn load_progress(state: &AppState, viewer: &Viewer) -> Result<TenantProgress, PageError> {
    let rates = QuotaRates::of(&state.runtime.config().engine.pacing);
    Ok(TenantProgress::load(state.store(), &viewer.tenant, rates, now_ms()).await?)
}

/// Bulk Start, Unlink or Retry of the ticked links; answers 303 to the page, which
/// says what changed once.
pub async fn act(
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let back = format!("/users{}", filter.query());
    // A row's own button names its action and link; the bulk buttons act on the ticks.
    let (action, links) = match form.fields.get("row") {
        Some(row) => row_action(row)?,
        None => {
            let action = form
                .fields
                .get("action")
                .and_then(Action::from_name)
                .ok_or_else(|| PageError::BadRequest("choose Start, Unlink or Retry".to_owned()))?;
            (action, selected_links(&form.fields)?)
        }
    };
    if links.is_empty() {
        let notice = Notice::warning("Tick at least one user first.");
        return Ok(flash::redirect(&viewer, &back, Outcome::notice(notice)));
    }
    let runtime = &state.runtime;
    let (tenant, actor) = (&viewer.tenant, viewer.email.as_str());
    // The statuses before acting say why a selected link did not change.
    let before: HashMap<LinkId, LinkStatus> = state
        .store()
        .links(tenant)
        .await?
        .into_iter()
        .map(|link| (link.id, link.status))
        .collect();
    let result = match action {
        Action::Start => runtime.start_links(tenant, &links, actor).await,
        Action::Unlink => runtime.unlink_links(tenant, &links, actor).await,
        Action::Retry => runtime.retry_links(tenant, &links, actor).await,
    };
    let notice = match result {
        Ok(changed) => {
            let unchanged: Vec<LinkStatus> = links
                .iter()
                .filter_map(|link| before.get(link).copied())
                .filter(|status| !action.applies(*status))
                .collect();
            action_notice(action, changed, &unchanged)
        }
        Err(RuntimeError::UnknownLink(id)) => {
            return Err(PageError::NotFound(format!(
                "mailbox link {id} is not in this tenant"
            )));
        }
        Err(other) => return Err(other.into()),
    };
    Ok(flash::redirect(&viewer, &back, Outcome::notice(notice)))
}

/// What a Users page button does to a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Start,
    Unlink,
    Retry,
}

impl Action {
    const ALL: [Action; 3] = [Action::Start, Action::Retry, Action::Unlink];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Unlink => "unlink",
            Action::Retry => "retry",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Action::Start => "Start",
            Action::Unlink => "Unlink",
            Action::Retry => "Retry",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Action::Start => "started",
            Action::Unlink => "unlinked",
            Action::Retry => "retried",
        }
    }

    /// Whether the action changes a link in `status`: the runtime's own rules
    /// (`start_links`, `retry_links`, `unlink_links`), so that a row offers only
    /// buttons that do something and the notice can say why others did not.
    fn applies(self, status: LinkStatus) -> bool {
        match self {
            Action::Start => !matches!(status, LinkStatus::Syncing | LinkStatus::Pending),
            Action::Retry => matches!(
                status,
                LinkStatus::AuthenticationError
                    | LinkStatus::Unauthorized
                    | LinkStatus::LinkageError
                    | LinkStatus::Idle
            ),
            Action::Unlink => status != LinkStatus::Unlinked,
        }
    }

    /// The buttons a row in `status` shows: Start for a stopped link, Retry for a
    /// failed one, Unlink for any linked one.
    fn for_row(status: LinkStatus) -> Vec<Action> {
        let start = status == LinkStatus::Unlinked;
        let retry = matches!(
            status,
            LinkStatus::AuthenticationError | LinkStatus::Unauthorized | LinkStatus::LinkageError
        );
        let unlink = status != LinkStatus::Unlinked;
        [
            (Action::Start, start),
            (Action::Retry, retry),
            (Action::Unlink, unlink),
        ]
        .into_iter()
        .filter_map(|(action, shown)| shown.then_some(action))
        .collect()
    }
}

/// A row button's value, `start:7`: the action and the one link.
fn row_action(value: &str) -> Result<(Action, Vec<LinkId>), PageError> {
    let bad = || PageError::BadRequest(format!("`{value}` is not a row action"));
    let (name, id) = value.split_once(':').ok_or_else(bad)?;
    let action = Action::from_name(name).ok_or_else(bad)?;
    let id = id.parse().map_err(|_| bad())?;
    Ok((action, vec![LinkId(id)]))
}

/// The ticked links, each once, at most [`MAX_LINKS_PER_ACTION`].
fn selected_links(fields: &Fields) -> Result<Vec<LinkId>, PageError> {
    let mut seen = HashSet::new();
    let mut links = Vec::new();
    for id in fields.all("link") {
        let id = id
            .parse()
            .map_err(|_| PageError::BadRequest("a selected link id is not a number".to_owned()))?;
        if seen.insert(id) {
            links.push(LinkId(id));
        }
    }
    if links.len() > MAX_LINKS_PER_ACTION {
        return Err(PageError::BadRequest(format!(
            "at most {MAX_LINKS_PER_ACTION} mailboxes can be selected at once, not {}",
            links.len()
        )));
    }
    Ok(links)
}

/// What an action changed, and for the links it did not change, why (their status):
/// "2 started; 3 were already pending". Green only when something changed.
fn action_notice(action: Action, changed: usize, unchanged: &[LinkStatus]) -> Notice {
    let mut by_status: Vec<(LinkStatus, usize)> = Vec::new();
    for status in unchanged {
        match by_status.iter_mut().find(|(known, _)| known == status) {
            Some((_, count)) => *count += 1,
            None => by_status.push((*status, 1)),
        }
    }
    let reasons: Vec<String> = by_status
        .iter()
        .map(|(status, count)| unchanged_reason(action, *status, *count))
        .collect();
    let mut text = format!("{changed} {}", action.past());
    if !reasons.is_empty() {
        text.push_str("; ");
        text.push_str(&reasons.join("; "));
    }
    text.push('.');
    if changed == 0 {
        return Notice::warning(format!("Nothing changed: {text}"));
    }
    Notice::success(text)
}

/// Why `count` links in `status` were left as they were.
fn unchanged_reason(action: Action, status: LinkStatus, count: usize) -> String {
    let were = if count == 1 { "was" } else { "were" };
    match (action, status) {
        (_, LinkStatus::Pending) => {
            format!("{count} {were} already pending (waiting to run; they run once capture is on)")
        }
        (_, LinkStatus::Syncing) => format!("{count} {were} already running"),
        (Action::Unlink, LinkStatus::Unlinked) => format!("{count} {were} already unlinked"),
        (Action::Retry, LinkStatus::Unlinked) => {
            format!("{count} {were} unlinked (use Start to link them again)")
        }
        (_, status) => format!(
            "{count} {were} {} and cannot be {}",
            status_words(status),
            action.past()
        ),
    }
}

/// *Rebuild*: User Delegation Sync now.
pub async fn rebuild(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    let viewer = form.viewer.require_admin()?;
    let notice = match state.runtime.rebuild(&viewer.tenant, &viewer.email).await {
        Ok(report) => {
            let auto_connect = state.runtime.auto_connect(&viewer.tenant).await?;
            rebuild_notice(&report, auto_connect)
        }
        Err(RuntimeError::NotConnected) => {
            Notice::error("Connect Google Workspace or Microsoft 365 on the setup page first.")
        }
        Err(RuntimeError::Provider { status, message }) => {
            // Rebuild reads the directory as the admin address: the hint is for that.
            let cause = FailureCause::classify(
                HintProvider::Google,
                FailureSite::Directory,
                status,
                None,
                &message,
            );
            Notice::error(format!(
                "Google refused ({status}): {message} — {}",
                cause.hint(Audience::Admin)
            ))
        }
        Err(other) => return Err(other.into()),
    };
    Ok(flash::redirect(&viewer, "/users", Outcome::notice(notice)))
}

/// What Rebuild did; with "connect new users automatically" off, that the new users
/// wait to be started.
fn rebuild_notice(report: &DelegationReport, auto_connect: bool) -> Notice {
    let mut text = format!(
        "User matching rebuilt, sync is completed: {} matched, {} not matched (the reasons \
         are under \"Not matched and unlinked\"), {} unlinked.",
        report.matched.len(),
        report.unmatched.len(),
        report.unlinked.len()
    );
    let new = report.matched.iter().filter(|m| m.new_link).count();
    if !auto_connect && new > 0 {
        text.push_str(&format!(
            " {new} new user(s) were not started, as \"Connect new users automatically\" is \
             off on the Policy page: press Start on the ones to capture."
        ));
    }
    Notice::success(text)
}

async fn load_table(
    state: &AppState,
    viewer: &Viewer,
    filter: &Filter,
) -> Result<Table, PageError> {
    let store = state.store();
    let wanted = filter.status();
    let all = store.links(&viewer.tenant).await?;
    let mut counts: HashMap<LinkStatus, usize> = HashMap::new();
    for link in &all {
        *counts.entry(link.status).or_default() += 1;
    }
    let mut shown: Vec<LinkView> = all
        .iter()
        .filter(|link| wanted.is_none_or(|status| status == link.status))
        .cloned()
        .collect();
    // Stable: within a rank, links stay in the store's mailbox order.
    shown.sort_by_key(|link| status_rank(link.status));
    let members: Vec<&str> = shown.iter().map(|link| link.member.as_str()).collect();
    let names = store.display_names(&viewer.tenant, &members).await?;
    let push = TenantPush::load(state, &viewer.tenant).await?;
    let tenant_progress = load_progress(state, viewer).await?;
    let mut rows = Vec::with_capacity(shown.len());
    for link in shown {
        let labels = store.label_reconciliation(&viewer.tenant, link.id).await?;
        let push = push.of(&link);
        let backfill = tenant_progress.backfill(link.id).copied();
        let progress = RowProgress {
            seconds_left: backfill
                .and_then(|b| tenant_progress.rates.seconds_left(link.provider, &b)),
            backfill,
            running: tenant_progress.running(link.id).cloned(),
        };
        rows.push(Row {
            link,
            labels,
            push,
            progress,
        });
    }
    let org = tenant_progress.organization(&all);
    Ok(Table {
        rows,
        all,
        counts,
        names,
        org,
    })
}

/// The wall clock, for "checked 5 min ago".
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A filter choice: the status's words and how many links are in it.
fn filter_option(status: LinkStatus, counts: &HashMap<LinkStatus, usize>) -> String {
    let count = counts.get(&status).copied().unwrap_or(0);
    format!("{} ({count})", status_words(status))
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    filter: &Filter,
    notices: &[Notice],
) -> Result<Html<String>, PageError> {
    let table = load_table(state, viewer, filter).await?;
    let (all, counts) = (&table.all, &table.counts);
    let report = state.runtime.delegation_report(&viewer.tenant).await?;
    let capture = state.runtime.capture_enabled(&viewer.tenant).await?;
    let mut notices = notices.to_vec();
    if !capture {
        notices.push(Notice::warning(
            "Capture is off: started mailboxes wait until it is enabled on the setup page.",
        ));
    }
    let body = html! {
        div #banner-slot data-refresh="/users/banner" { (banner_slot_body(all, &table.org)) }
        (rebuild_card(viewer, report.as_ref()))
        section.card {
            div.toolbar {
                form.filter method="get" action="/users" {
                    label {
                        span { "Status" }
                        select name="status" data-autosubmit {
                            option value="" selected[filter.status().is_none()] {
                                "All statuses (" (all.len()) ")"
                            }
                            @for status in sorted_statuses() {
                                option value=(status.as_str()) selected[filter.status() == Some(status)] {
                                    (filter_option(status, counts))
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
                            th { "Push" }
                            th { "Captured / provider" }
                        }
                    }
                    tbody #user-rows data-refresh={ "/users/rows" (filter.query()) } {
                        (table_body(&table, now_ms()))
                    }
                }
                p.muted.caption {
                    "Captured / provider: per synced label (Google) or folder (Microsoft 365), "
                    "the messages Tributary accounts for against the provider's own count (all "
                    "time, so older mail outside the backfill window makes the provider's number "
                    "larger)."
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

fn table_body(table: &Table, now_ms: i64) -> Markup {
    html! {
        @if table.rows.is_empty() {
            tr { td colspan="6" { (empty("No mailbox matches. Rebuild user matching to read the directory.")) } }
        }
        @for row in &table.rows {
            (user_row(row, table.names.get(&row.link.member).map(String::as_str), now_ms))
        }
    }
}

/// A link's row; `name` is its member's display name when the directory gave one.
fn user_row(row: &Row, name: Option<&str>, now_ms: i64) -> Markup {
    let link = &row.link;
    html! {
        tr data-link=(link.id.0) data-status=(link.status.as_str()) {
            td.check {
                input type="checkbox" name="link" value=(link.id.0)
                    aria-label={ "Select " (link.mailbox) };
            }
            td {
                a.member href=(layout::link("members", &link.member)) { (name.unwrap_or(&link.member)) }
                @if name.is_some() { div.muted.address { (link.member) } }
                @if link.mailbox != link.member { div.muted { (link.mailbox) } }
                div { a.small href=(super::me::labels_path(&link.member)) { "Labels" } }
            }
            td.status {
                (run_status(link, &row.progress))
                (problem(link))
                (row_buttons(link))
            }
            td {
                (last_sync(link, now_ms))
                (run_detail(link.last_summary.as_ref()))
            }
            td.push { (push_cell(&row.push)) }
            td { (label_counts(&row.labels)) }
        }
    }
}

/// The status badge, but a link whose worker stopped says so (and when another worker
/// takes its job over) instead of a bare "Syncing"; a backfilling link how far it is.
fn run_status(link: &LinkView, progress: &RowProgress) -> Markup {
    let stopped = progress
        .running
        .as_ref()
        .filter(|_| RunState::of(link, progress.running.as_ref()) == RunState::WorkerStopped);
    let backfilling = progress
        .backfill
        .filter(|b| BackfillState::of(link, Some(b)) == BackfillState::Backfilling);
    html! {
        @match stopped {
            Some(run) => {
                span.badge.status-pending { "Worker stopped" }
                div.worker-stopped {
                    "Worker " code { (run.worker) } " stopped at "
                    (clock(run.worker_stopped_ms.unwrap_or(run.lease_expires_ms)))
                    "; another worker takes over after " (clock(run.lease_expires_ms))
                }
            }
            None => (status_badge(link.status)),
        }
        @if let Some(backfill) = backfilling {
            div.backfill { (backfill_words(&backfill, progress.seconds_left)) }
        }
    }
}

/// "Backfilling: 1,234 of ~5,000 listed · about 3 min left".
fn backfill_words(backfill: &Backfill, seconds_left: Option<u64>) -> String {
    let mut text = format!("Backfilling: {}", thousands(backfill.listed));
    if let Some(total) = backfill.provider_total {
        text.push_str(&format!(" of ~{}", thousands(total)));
    }
    text.push_str(&format!(
        " listed, {} captured",
        thousands(backfill.captured)
    ));
    if let Some(seconds) = seconds_left {
        text.push_str(&format!(" · {} left", about(seconds)));
    }
    text
}

/// The organization's backfill above the table while any mailbox is not backfilled:
/// "38 of 107 mailboxes backfilled · 41,200 of ~88,000 messages listed · about 12 min
/// left at the quota"; nothing once all are.
fn org_line(org: &OrgProgress) -> Markup {
    if org.unfinished() == 0 {
        return html! {};
    }
    let mut text = format!(
        "{} of {} mailboxes backfilled · {}",
        thousands(org.backfilled as u64),
        thousands(org.mailboxes as u64),
        thousands(org.listed)
    );
    if let Some(total) = org.expected_total {
        text.push_str(&format!(" of ~{}", thousands(total)));
    }
    text.push_str(" messages listed");
    if let Some(seconds) = org.estimated_seconds_left {
        text.push_str(&format!(" · {} left at the quota", about(seconds)));
        if org.estimated_mailboxes < org.unfinished() {
            text.push_str(&format!(
                " for the {} mailboxes sized so far",
                org.estimated_mailboxes
            ));
        }
    }
    if org.error > 0 {
        text.push_str(&format!(" · {} stopped by an error", org.error));
    }
    if org.worker_stopped > 0 {
        text.push_str(&format!(
            " · {} waiting for a stopped worker's job to be taken over",
            org.worker_stopped
        ));
    }
    html! {
        section.card #org-progress {
            strong { "Organization backfill" }
            " "
            progress value=(org.backfilled) max=(org.mailboxes) {}
            p { (text) }
        }
    }
}

/// `1234567` as "1,234,567".
fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut text = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// A time left in words: "about 3 min", "about 2 h 5 min", "less than a minute".
fn about(seconds: u64) -> String {
    if seconds < 60 {
        return "less than a minute".to_owned();
    }
    let minutes = seconds.div_ceil(60);
    if minutes < 60 {
        return format!("about {minutes} min");
    }
    format!("about {} h {} min", minutes / 60, minutes % 60)
}

/// A Unix-milliseconds time as "HH:MM UTC" (the full date in its title).
fn clock(ms: i64) -> Markup {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => html! {
            time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC")) { (at.format("%H:%M UTC")) }
        },
        None => html! { "an unknown time" },
    }
}

/// "Push" or "Polling", with why it is polled (maud escapes the provider's words).
fn push_cell(push: &PushView) -> Markup {
    let reason = push.reason.as_deref();
    html! {
        @match push.mode {
            PushMode::Push => span.badge.status-idle.push-mode title=[reason] { "Push" },
            PushMode::Polling => span.badge.status-unlinked.push-mode title=[reason] { "Polling" },
        }
        @if let Some(reason) = reason {
            div.muted.small.push-reason { (reason) }
        }
    }
}

/// The row's own Start / Retry / Unlink, only those that apply to its status. They
/// submit the surrounding bulk form (its CSRF token) with `row=<action>:<id>`, which
/// acts on this link alone whatever is ticked.
fn row_buttons(link: &LinkView) -> Markup {
    html! {
        div.row-actions {
            @for action in Action::for_row(link.status) {
                button.small.danger[action == Action::Unlink] type="submit" name="row"
                    value={ (action.name()) ":" (link.id.0) }
                    aria-label={ (action.label()) " " (link.mailbox) } {
                    (action.label())
                }
            }
        }
    }
}

/// The provider's words and the hint for the failure's cause, for a link in an error
/// status.
fn problem(link: &LinkView) -> Markup {
    if waits_for_connection(link) {
        return html! { div.hint.waiting { (WAITING_FOR_CONNECTION) } };
    }
    let hint = crate::api::links::link_hint(link, Audience::Admin);
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

/// The statuses in the order the table sorts them, problems first.
fn sorted_statuses() -> Vec<LinkStatus> {
    let mut statuses = LinkStatus::ALL.to_vec();
    statuses.sort_by_key(|status| status_rank(*status));
    statuses
}

/// How the run that [`last_sync`] describes went: its mode and what it fetched and
/// left out (its added and removed counts are in the sentence above).
fn run_detail(summary: Option<&serde_json::Value>) -> Markup {
    let Some(summary) = summary else {
        return html! {};
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
        div.muted.run-detail { (mode) ", " (count("fetched")) " fetched, " (count("excluded")) " excluded by policy" }
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
                    button type="submit" data-busy="Matching the directory…" { "Rebuild" }
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
                        li { code { (skipped.email) } " — " (skipped.describe()) }
                    }
                    @for unlinked in &report.unlinked {
                        li { code { (unlinked.member) } " — unlinked: " (unlinked.describe()) }
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
    fn the_action_notice_says_what_changed_and_why_the_rest_did_not() {
        use crate::console::layout::NoticeKind;
        let notice = action_notice(
            Action::Start,
            2,
            &[
                LinkStatus::Syncing,
                LinkStatus::Syncing,
                LinkStatus::Syncing,
            ],
        );
        assert_eq!(notice.text, "2 started; 3 were already running.");
        assert_eq!(notice.kind, NoticeKind::Success);
        let unlinked = action_notice(Action::Unlink, 1, &[]);
        assert_eq!(unlinked.text, "1 unlinked.");
        // Start on pending users changes nothing: no green notice, and the reason.
        let pending = action_notice(Action::Start, 0, &[LinkStatus::Pending]);
        assert_ne!(pending.kind, NoticeKind::Success);
        assert!(
            pending
                .text
                .starts_with("Nothing changed: 0 started; 1 was already pending"),
            "{}",
            pending.text
        );
    }

    #[test]
    fn rows_offer_only_the_actions_that_apply() {
        use Action::*;
        let cases = [
            (LinkStatus::Unlinked, vec![Start]),
            (LinkStatus::Pending, vec![Unlink]),
            (LinkStatus::Syncing, vec![Unlink]),
            (LinkStatus::Idle, vec![Unlink]),
            (LinkStatus::AuthenticationError, vec![Retry, Unlink]),
            (LinkStatus::Unauthorized, vec![Retry, Unlink]),
            (LinkStatus::LinkageError, vec![Retry, Unlink]),
        ];
        for (status, actions) in cases {
            assert_eq!(Action::for_row(status), actions, "{status:?}");
            // Every offered button changes the link.
            assert!(
                actions.iter().all(|action| action.applies(status)),
                "{status:?}"
            );
        }
        assert_eq!(row_action("retry:7").unwrap(), (Retry, vec![LinkId(7)]));
        assert!(row_action("drop:7").is_err() && row_action("start:x").is_err());
    }

    #[test]
    fn selected_links_are_counted_once_and_capped() {
        let form = |ids: &[String]| {
            let encoded: Vec<String> = ids.iter().map(|id| format!("link={id}")).collect();
            crate::console::forms::parse_urlencoded(encoded.join("&").as_bytes())
        };
        let repeated = vec!["7".to_owned(); 30_000];
        assert_eq!(selected_links(&form(&repeated)).unwrap(), [LinkId(7)]);
        let many: Vec<String> = (0..=MAX_LINKS_PER_ACTION).map(|i| i.to_string()).collect();
        let refused = selected_links(&form(&many)).unwrap_err();
        assert!(refused.to_string().contains("at most 1000"), "{refused}");
        assert!(selected_links(&form(&["x".to_owned()])).is_err());
    }

    #[test]
    fn problems_sort_first_and_the_filter_counts_each_status() {
        let statuses = sorted_statuses();
        assert_eq!(statuses.len(), LinkStatus::ALL.len());
        assert_eq!(
            &statuses[..3],
            [
                LinkStatus::AuthenticationError,
                LinkStatus::Unauthorized,
                LinkStatus::LinkageError
            ]
        );
        assert_eq!(statuses.last(), Some(&LinkStatus::Unlinked));
        let counts = HashMap::from([(LinkStatus::Idle, 7)]);
        assert_eq!(
            filter_option(LinkStatus::Idle, &counts),
            "Idle · up to date (7)"
        );
        assert_eq!(
            filter_option(LinkStatus::Unauthorized, &counts),
            "Unauthorized (0)"
        );
    }

    fn idle_link(last_success_ms: i64, summary: serde_json::Value) -> LinkView {
        LinkView {
            id: LinkId(7),
            member: "ann@acme.test".into(),
            mailbox: "ann@acme.test".into(),
            status: LinkStatus::Idle,
            provider_message: None,
            status_reason: None,
            last_success_ms: Some(last_success_ms),
            last_summary: Some(summary),
            next_attempt_ms: None,
            attempts: 0,
            provider: tributary_store::ConnectionKind::Google,
            provider_reason: None,
        }
    }

    /// The last sync shows the last run that changed something, and "checked … ago"
    /// when a later run found nothing; the member by its directory name.
    #[test]
    fn a_row_keeps_the_last_change_and_says_when_it_was_checked() {
        const MINUTE: i64 = 60_000;
        let changed_at = 1_752_000_000_000;
        let summary = serde_json::json!({
            "at_ms": changed_at, "mode": "incremental", "added": 4, "gone": 1, "fetched": 5,
        });
        let row = Row {
            link: idle_link(changed_at + 20 * MINUTE, summary.clone()),
            labels: Vec::new(),
            push: on_push(),
            progress: RowProgress::default(),
        };
        let now = changed_at + 25 * MINUTE;
        let html = user_row(&row, Some("Ann Lee"), now).into_string();
        assert!(html.contains("+4 added · −1 removed"), "{html}");
        assert!(html.contains("checked 5 min ago, nothing new"), "{html}");
        assert!(html.contains("incremental, 5 fetched"), "{html}");
        assert!(html.contains(">Ann Lee</a>"), "{html}");
        assert!(html.contains("ann@acme.test"), "the address stays: {html}");

        // The run that changed something is the latest: no "checked" note.
        let fresh = Row {
            link: idle_link(changed_at, summary),
            labels: Vec::new(),
            push: on_push(),
            progress: RowProgress::default(),
        };
        let html = user_row(&fresh, None, now).into_string();
        assert!(
            html.contains("+4 added") && !html.contains("checked"),
            "{html}"
        );
        assert!(html.contains(">ann@acme.test</a>"), "{html}");
    }

    fn on_push() -> PushView {
        PushView {
            mode: PushMode::Push,
            reason: None,
            channels: vec![("mail".into(), 1_752_000_000_000)],
        }
    }

    /// The Push column: the mode's badge, and why a mailbox is polled in the provider's
    /// words, escaped.
    #[test]
    fn the_push_column_shows_the_mode_and_the_escaped_reason() {
        let html = push_cell(&on_push()).into_string();
        assert!(html.contains(">Push</span>"), "{html}");
        assert!(
            !html.contains("Polling") && !html.contains("push-reason"),
            "{html}"
        );
        let refused = PushView {
            mode: PushMode::Polling,
            reason: Some("mail: <script>alert(1)</script> \"denied\"".into()),
            channels: Vec::new(),
        };
        let html = push_cell(&refused).into_string();
        assert!(html.contains(">Polling</span>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("mail: &lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("title=\"mail: &lt;script&gt;"), "{html}");
    }

    fn syncing_row(progress: RowProgress) -> Row {
        let mut link = idle_link(1_752_000_000_000, serde_json::json!({}));
        link.status = LinkStatus::Syncing;
        Row {
            link,
            labels: Vec::new(),
            push: on_push(),
            progress,
        }
    }

    /// A backfilling row says how far it is; a row whose worker stopped names the
    /// worker (escaped), when it stopped and when another takes over, not "Syncing".
    #[test]
    fn a_row_shows_its_backfill_and_a_stopped_worker() {
        let backfill = Backfill {
            listed: 1_234,
            captured: 1_200,
            provider_total: Some(5_000),
            done: false,
            updated_ms: 0,
        };
        let row = syncing_row(RowProgress {
            backfill: Some(backfill),
            running: None,
            seconds_left: Some(170),
        });
        let html = user_row(&row, None, 0).into_string();
        assert!(
            html.contains("Backfilling: 1,234 of ~5,000 listed, 1,200 captured · about 3 min left"),
            "{html}"
        );
        assert!(html.contains(">Syncing</span>"), "{html}");
        // 12:00 and 12:05 UTC on 2025-07-08.
        let stopped_at = 1_751_976_000_000;
        let row = syncing_row(RowProgress {
            backfill: Some(Backfill {
                done: true,
                ..backfill
            }),
            running: Some(RunningLink {
                link: LinkId(7),
                worker: "<b>w1</b>".into(),
                lease_expires_ms: stopped_at + 5 * 60_000,
                worker_stopped_ms: Some(stopped_at),
            }),
            seconds_left: None,
        });
        let html = user_row(&row, None, 0).into_string();
        assert!(!html.contains("<b>w1"), "{html}");
        assert!(
            html.contains("Worker <code>&lt;b&gt;w1&lt;/b&gt;</code> stopped at"),
            "{html}"
        );
        assert!(
            html.contains(">12:00 UTC</time>; another worker takes over after"),
            "{html}"
        );
        assert!(html.contains(">12:05 UTC</time>"), "{html}");
        assert!(
            !html.contains(">Syncing</span>") && !html.contains("Backfilling"),
            "{html}"
        );
    }

    #[test]
    fn the_organization_line_shows_while_a_backfill_is_unfinished() {
        let org = OrgProgress {
            mailboxes: 107,
            backfilled: 38,
            backfilling: 60,
            not_started: 9,
            listed: 41_200,
            captured: 41_000,
            expected_total: Some(88_000),
            estimated_seconds_left: Some(700),
            estimated_mailboxes: 60,
            ..OrgProgress::default()
        };
        let html = org_line(&org).into_string();
        assert!(
            html.contains("38 of 107 mailboxes backfilled · 41,200 of ~88,000 messages listed · about 12 min left at the quota for the 60 mailboxes sized so far"),
            "{html}"
        );
        assert!(html.contains("Organization backfill"), "{html}");
        let done = OrgProgress {
            mailboxes: 107,
            backfilled: 107,
            ..OrgProgress::default()
        };
        assert_eq!(org_line(&done).into_string(), "");
        assert_eq!(about(59), "less than a minute");
        assert_eq!(about(3_700), "about 1 h 2 min");
        assert_eq!(
            (thousands(0), thousands(999), thousands(1_000_000)),
            ("0".into(), "999".into(), "1,000,000".into())
        );
    }

    #[test]
    fn the_filter_keeps_only_known_statuses() {
        let known = Filter {
            status: Some("idle".into()),
            flash: None,
        };
        assert_eq!(known.query(), "?status=idle");
        let unknown = Filter {
            status: Some("<script>".into()),
            flash: None,
        };
        assert_eq!(unknown.query(), "");
    }
}
