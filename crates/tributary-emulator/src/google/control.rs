//! The control API (`/control/...`): lets tests and the demo change the organization while
//! the emulator runs (users, aliases, live mail, labels, deletions, history expiry,
//! service-account keys and delegation), set quotas and faults, and read counters.
//! Unauthenticated by design: it must only ever listen on loopback.
//! Reference: `docs/emulator-control.md`.

use super::auth::{AuthControlError, ServiceAccountSummary};
use super::counters::CountersSnapshot;
use super::faults::{FaultConfig, FaultSwitch, FaultTotals};
use super::quota::{BudgetSnapshot, QuotaConfig, QuotaLimiter, RefusalTotals};
use super::state::EmulatorState;
use crate::model::{DirectoryUser, Mailbox, Organization, parse_header_fields};
use crate::org::{
    LiveMessage, NamedAddress, deliver_live, gmail_message_id, render, stored_message,
};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLockWriteGuard};

/// The control routes, to be nested under `/control` by the app.
pub fn router() -> Router<Arc<EmulatorState>> {
    Router::new()
        .route("/state", get(get_state))
        .route("/users", post(add_user))
        .route("/users/{email}", delete(delete_user))
        .route("/users/{email}/suspend", post(suspend_user))
        .route("/users/{email}/unsuspend", post(unsuspend_user))
        .route("/users/{email}/aliases", post(add_alias))
        .route("/users/{email}/mail-service", post(set_mail_service))
        .route("/users/{email}/labels", post(create_label))
        .route("/users/{email}/messages/{id}", delete(delete_message))
        .route("/users/{email}/messages/{id}/labels", post(change_labels))
        .route("/users/{email}/history/expire", post(expire_user_history))
        .route("/history/expire", post(expire_all_history))
        .route("/messages/deliver", post(deliver))
        .route("/quota", settings_routes(|s: &EmulatorState| &s.quotas))
        .route("/faults", settings_routes(|s: &EmulatorState| &s.faults))
        .route("/counters", get(get_counters))
        .route("/counters/reset", post(reset_counters))
        .route("/service-accounts", get(list_service_accounts))
        .route("/service-account/keys", post(add_key))
        .route("/service-account/keys/{key_id}", delete(delete_key))
        .route("/service-account/disable", post(disable_service_account))
        .route("/delegation", put(set_delegation))
        .route("/api-access", post(set_api_access))
        .route("/tokens/expire", post(expire_tokens))
}

// ---------------------------------------------------------------------------------------
// Errors and extractors

use crate::kit::ScenarioTarget;
pub use crate::kit::control::ControlError;
use crate::kit::control::{Answer, Body, created, json_rejection, ok, settings_routes};

fn write_org(state: &EmulatorState) -> RwLockWriteGuard<'_, Organization> {
    state.org_mut()
}

// ---------------------------------------------------------------------------------------
// Lookups

/// The index of the live (not deleted) user owning `address` (primary or alias).
fn live_user_index(org: &Organization, address: &str) -> Result<usize, ControlError> {
    let address = address.to_ascii_lowercase();
    org.users
        .iter()
        .position(|u| !u.deleted && u.owns_address(&address))
        .ok_or_else(|| ControlError::not_found(format!("no user {address}")))
}

/// The mailbox of the live user owning `address`.
fn mailbox_mut<'a>(
    org: &'a mut Organization,
    address: &str,
) -> Result<&'a mut Mailbox, ControlError> {
    let index = live_user_index(org, address)?;
    let key = org.users[index].primary_email.to_ascii_lowercase();
    org.mailboxes
        .get_mut(&key)
        .ok_or_else(|| ControlError::not_found(format!("user {key} has no mailbox")))
}

fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|d| !d.is_empty())
}

/// Checks that a new address is on one of the organization's domains and nobody's yet.
fn check_new_address(org: &Organization, address: &str) -> Result<String, ControlError> {
    let address = address.trim().to_ascii_lowercase();
    let domain = domain_of(&address)
        .ok_or_else(|| ControlError::bad_request(format!("{address:?} is not an address")))?;
    if !org.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return Err(ControlError::bad_request(format!(
            "{domain} is not a domain of the organization ({})",
            org.domains.join(", ")
        )));
    }
    if let Some(owner) = org.users.iter().find(|u| u.owns_address(&address)) {
        let deleted = if owner.deleted { " (deleted)" } else { "" };
        return Err(ControlError::conflict(format!(
            "{address} already belongs to {}{deleted}",
            owner.primary_email
        )));
    }
    Ok(address)
}

// ---------------------------------------------------------------------------------------
// State summary

#[derive(Debug, Serialize)]
struct MailboxSummary {
    messages: usize,
    history_id: u64,
    oldest_history_id: u64,
    history_records: usize,
    mail_enabled: bool,
    labels: usize,
}

#[derive(Debug, Serialize)]
struct UserSummary {
    id: String,
    primary_email: String,
    aliases: Vec<String>,
    is_admin: bool,
    suspended: bool,
    deleted: bool,
    mailbox: Option<MailboxSummary>,
}

fn summarize_user(org: &Organization, user: &DirectoryUser) -> UserSummary {
    let mailbox = org
        .mailboxes
        .get(&user.primary_email.to_ascii_lowercase())
        .map(|m| MailboxSummary {
            messages: m.messages.len(),
            history_id: m.history_id,
            oldest_history_id: m.oldest_history_id,
            history_records: m.history.len(),
            mail_enabled: m.mail_enabled,
            labels: m.labels.len(),
        });
    UserSummary {
        id: user.id.clone(),
        primary_email: user.primary_email.clone(),
        aliases: user.aliases.clone(),
        is_admin: user.is_admin,
        suspended: user.suspended,
        deleted: user.deleted,
        mailbox,
    }
}

async fn get_state(State(state): State<Arc<EmulatorState>>) -> Answer {
    let org = state.org();
    let users: Vec<UserSummary> = org.users.iter().map(|u| summarize_user(&org, u)).collect();
    let messages: usize = org.mailboxes.values().map(|m| m.messages.len()).sum();
    ok(json!({
        "customer_id": org.customer_id,
        "domains": org.domains,
        "now_ms": org.now_ms,
        "totals": {"users": users.len(), "mailboxes": org.mailboxes.len(), "messages": messages},
        "users": users,
        "service_accounts": state.auth.service_accounts(),
    }))
}

// ---------------------------------------------------------------------------------------
// Users

/// First history id of a mailbox created at run time.
const NEW_MAILBOX_FIRST_HISTORY_ID: u64 = 1_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    primary_email: String,
    given_name: String,
    family_name: String,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    org_unit_path: Option<String>,
}

/// A 21-digit id above every existing numeric one, as Google's user ids look.
fn next_user_id(org: &Organization) -> String {
    let highest = org
        .users
        .iter()
        .filter_map(|u| u.id.parse::<u128>().ok())
        .max()
        .unwrap_or(100_000_000_000_000_000_000);
    (highest + 1).to_string()
}

async fn add_user(State(state): State<Arc<EmulatorState>>, Body(new): Body<NewUser>) -> Answer {
    let mut org = write_org(&state);
    let primary_email = check_new_address(&org, &new.primary_email)?;
    let mut aliases = Vec::new();
    for alias in &new.aliases {
        let alias = check_new_address(&org, alias)?;
        if alias == primary_email || aliases.contains(&alias) {
            return Err(ControlError::bad_request(format!(
                "{alias} is listed twice"
            )));
        }
        aliases.push(alias);
    }
    let user = DirectoryUser {
        id: next_user_id(&org),
        primary_email: primary_email.clone(),
        given_name: new.given_name,
        family_name: new.family_name,
        aliases,
        non_editable_aliases: Vec::new(),
        suspended: false,
        archived: false,
        is_admin: new.is_admin,
        is_mailbox_setup: true,
        org_unit_path: new.org_unit_path.unwrap_or_else(|| "/".to_string()),
        creation_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        deleted: false,
    };
    org.mailboxes.insert(
        primary_email.clone(),
        Mailbox::new(&primary_email, NEW_MAILBOX_FIRST_HISTORY_ID),
    );
    let summary = summarize_user(&org, &user);
    org.users.push(user);
    created(summary)
}

/// Applies `change` to the live user owning `email` and answers their summary.
fn update_user(
    state: &EmulatorState,
    email: &str,
    change: impl FnOnce(&mut DirectoryUser),
) -> Answer {
    let mut org = write_org(state);
    let index = live_user_index(&org, email)?;
    change(&mut org.users[index]);
    ok(summarize_user(&org, &org.users[index]))
}

async fn suspend_user(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
) -> Answer {
    let answer = update_user(&state, &email, |u| u.suspended = true)?;
    revoke_tokens(&state, &email);
    Ok(answer)
}

async fn unsuspend_user(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
) -> Answer {
    update_user(&state, &email, |u| u.suspended = false)
}

/// Deleted users leave the directory, but stay known so that the token endpoint can
/// answer "The account has been deleted"; their mailbox is kept. Their tokens are revoked
/// (as for suspension), so API calls already authorized get 401.
async fn delete_user(State(state): State<Arc<EmulatorState>>, Path(email): Path<String>) -> Answer {
    let answer = update_user(&state, &email, |u| u.deleted = true)?;
    revoke_tokens(&state, &email);
    Ok(answer)
}

/// Revokes the tokens issued for the user owning `address`.
fn revoke_tokens(state: &EmulatorState, address: &str) {
    let address = address.to_ascii_lowercase();
    let primary = state
        .org()
        .users
        .iter()
        .find(|u| u.owns_address(&address))
        .map(|u| u.primary_email.clone());
    if let Some(primary) = primary {
        state.auth.revoke_tokens_of(&primary);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAlias {
    alias: String,
}

async fn add_alias(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
    Body(new): Body<NewAlias>,
) -> Answer {
    let mut org = write_org(&state);
    let index = live_user_index(&org, &email)?;
    let alias = check_new_address(&org, &new.alias)?;
    org.users[index].aliases.push(alias);
    ok(summarize_user(&org, &org.users[index]))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MailService {
    enabled: bool,
}

async fn set_mail_service(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
    Body(setting): Body<MailService>,
) -> Answer {
    let mut org = write_org(&state);
    let mailbox = mailbox_mut(&mut org, &email)?;
    mailbox.mail_enabled = setting.enabled;
    ok(json!({"mailbox": mailbox.email, "mail_enabled": mailbox.mail_enabled}))
}

// ---------------------------------------------------------------------------------------
// Labels, deletions, history

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLabel {
    name: String,
}

async fn create_label(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
    Body(new): Body<NewLabel>,
) -> Answer {
    let name = new.name.trim().to_string();
    if name.is_empty() {
        return Err(ControlError::bad_request("a label needs a name"));
    }
    let mut org = write_org(&state);
    let mailbox = mailbox_mut(&mut org, &email)?;
    if let Some(existing) = mailbox
        .labels
        .values()
        .find(|l| l.name.eq_ignore_ascii_case(&name))
    {
        return Err(ControlError::conflict(format!(
            "label {name:?} exists already as {}",
            existing.id
        )));
    }
    let number = mailbox
        .labels
        .keys()
        .filter_map(|id| id.strip_prefix("Label_")?.parse::<u64>().ok())
        .max()
        .map_or(1, |n| n + 1);
    let id = format!("Label_{number}");
    mailbox.add_user_label(&id, &name);
    created(json!({"mailbox": mailbox.email, "id": id, "name": name}))
}

fn check_labels_exist(mailbox: &Mailbox, label_ids: &[String]) -> Result<(), ControlError> {
    match label_ids.iter().find(|l| !mailbox.labels.contains_key(*l)) {
        Some(missing) => Err(ControlError::bad_request(format!(
            "mailbox {} has no label {missing}",
            mailbox.email
        ))),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelChange {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// Adds then removes, as Gmail's `messages.modify` does; each non-empty effective change
/// is one history record.
async fn change_labels(
    State(state): State<Arc<EmulatorState>>,
    Path((email, id)): Path<(String, String)>,
    Body(change): Body<LabelChange>,
) -> Answer {
    let mut org = write_org(&state);
    let mailbox = mailbox_mut(&mut org, &email)?;
    if !mailbox.messages.contains_key(&id) {
        return Err(ControlError::not_found(format!(
            "{} has no message {id}",
            mailbox.email
        )));
    }
    check_labels_exist(mailbox, &change.add)?;
    check_labels_exist(mailbox, &change.remove)?;
    mailbox.add_labels(&id, &change.add);
    mailbox.remove_labels(&id, &change.remove);
    let message = &mailbox.messages[&id];
    ok(json!({
        "mailbox": mailbox.email,
        "id": id,
        "label_ids": message.label_ids,
        "message_history_id": message.history_id,
        "history_id": mailbox.history_id,
    }))
}

async fn delete_message(
    State(state): State<Arc<EmulatorState>>,
    Path((email, id)): Path<(String, String)>,
) -> Answer {
    let mut org = write_org(&state);
    let mailbox = mailbox_mut(&mut org, &email)?;
    let history_id = mailbox
        .delete_message(&id)
        .ok_or_else(|| ControlError::not_found(format!("{} has no message {id}", mailbox.email)))?;
    ok(json!({"mailbox": mailbox.email, "id": id, "history_id": history_id}))
}

fn expiry(mailbox: &mut Mailbox) -> Value {
    mailbox.expire_all_history();
    json!({
        "mailbox": mailbox.email,
        "history_id": mailbox.history_id,
        "oldest_history_id": mailbox.oldest_history_id,
    })
}

async fn expire_user_history(
    State(state): State<Arc<EmulatorState>>,
    Path(email): Path<String>,
) -> Answer {
    let mut org = write_org(&state);
    let mailbox = mailbox_mut(&mut org, &email)?;
    ok(expiry(mailbox))
}

async fn expire_all_history(State(state): State<Arc<EmulatorState>>) -> Answer {
    let mut org = write_org(&state);
    let mailboxes: Vec<Value> = org.mailboxes.values_mut().map(expiry).collect();
    ok(json!({"mailboxes": mailboxes}))
}

// ---------------------------------------------------------------------------------------
// Live mail

/// `POST /messages/deliver` takes either a message to compose and deliver, or an exact
/// RFC 822 message (`raw`) to insert into one mailbox.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delivery {
    from: String,
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
    #[serde(default)]
    bcc: Vec<String>,
    subject: String,
    #[serde(default)]
    body: String,
    message_id: Option<String>,
    in_reply_to: Option<String>,
    /// RFC 3339 or RFC 2822; also the copies' `internalDate`. Default: now.
    date: Option<String>,
    /// Label ids added to every inbox copy right after delivery.
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInsertion {
    /// Base64 (standard or URL-safe, padding optional).
    raw: String,
    mailbox: String,
    /// Default `["INBOX", "UNREAD"]`.
    labels: Option<Vec<String>>,
    /// Default: now.
    internal_date_ms: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Copy {
    mailbox: String,
    id: String,
    thread_id: String,
    /// The `messageAdded` record.
    history_id: u64,
}

#[derive(Debug, Serialize)]
struct Skipped {
    address: String,
    reason: &'static str,
}

async fn deliver(
    State(state): State<Arc<EmulatorState>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Answer {
    let Json(value) = body.map_err(json_rejection)?;
    let bad = |e: serde_json::Error| ControlError::bad_request(e.to_string());
    if value.get("raw").is_some() {
        let insertion: RawInsertion = serde_json::from_value(value).map_err(bad)?;
        insert_raw(&state, insertion)
    } else {
        let delivery: Delivery = serde_json::from_value(value).map_err(bad)?;
        deliver_composed(&state, delivery)
    }
}

/// The primary address of the mailbox receiving mail for `user`, or why there is none.
/// Mirrors the generator's live delivery (`org::deliver_live`), which does the delivering.
fn receiving_mailbox(org: &Organization, user: &DirectoryUser) -> Result<String, &'static str> {
    let email = user.primary_email.to_ascii_lowercase();
    match org.mailboxes.get(&email) {
        _ if user.deleted => Err("deleted"),
        _ if user.suspended => Err("suspended"),
        _ if user.archived => Err("archived"),
        Some(mailbox) if user.is_mailbox_setup && mailbox.mail_enabled => Ok(email),
        Some(_) if user.is_mailbox_setup => Err("mail service not enabled"),
        _ => Err("no mailbox"),
    }
}

/// The internal recipients' receiving mailboxes, and the internal recipients who get
/// nothing. External addresses are in neither.
fn internal_recipients<'a>(
    org: &Organization,
    addresses: impl Iterator<Item = &'a NamedAddress>,
) -> (Vec<String>, Vec<Skipped>) {
    let mut receiving = Vec::new();
    let mut skipped = Vec::new();
    for address in addresses {
        let Some(user) = org.find_user(&address.address) else {
            continue;
        };
        match receiving_mailbox(org, user) {
            Ok(email) if !receiving.contains(&email) => receiving.push(email),
            Ok(_) => {}
            Err(reason) => skipped.push(Skipped {
                address: address.address.clone(),
                reason,
            }),
        }
    }
    (receiving, skipped)
}

fn deliver_composed(state: &EmulatorState, delivery: Delivery) -> Answer {
    let Delivery {
        from,
        to,
        cc,
        bcc,
        subject,
        body,
        message_id,
        in_reply_to,
        date,
        labels,
    } = delivery;
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err(ControlError::bad_request(
            "a message needs at least one recipient",
        ));
    }
    let from = named_address(&from)?;
    let date_ms = match &date {
        Some(text) => parse_date(text)?.timestamp_millis(),
        None => chrono::Utc::now().timestamp_millis(),
    };
    let message_id = message_id
        .as_deref()
        .map(bare_message_id)
        .unwrap_or_else(|| generated_message_id(&from.address));
    let in_reply_to = in_reply_to.as_deref().map(bare_message_id);
    let message = LiveMessage {
        from,
        to: named_addresses(&to)?,
        cc: named_addresses(&cc)?,
        bcc: named_addresses(&bcc)?,
        subject: Some(subject),
        date_ms,
        message_id: Some(message_id.clone()),
        references: in_reply_to.iter().cloned().collect(),
        in_reply_to,
        body,
    };

    let mut org = write_org(state);
    let recipients = message.to.iter().chain(&message.cc).chain(&message.bcc);
    let (receiving, skipped) = internal_recipients(&org, recipients);
    for email in &receiving {
        check_labels_exist(&org.mailboxes[email], &labels)?;
    }
    let copies: Vec<Copy> = deliver_live(&mut org, &message, date_ms)
        .into_iter()
        .map(|copy| Copy {
            mailbox: copy.mailbox,
            id: copy.message_id,
            thread_id: copy.thread_id,
            history_id: copy.history_id,
        })
        .collect();
    if !labels.is_empty() {
        add_inbox_labels(&mut org, &copies, &labels);
    }
    created(json!({"message_id": format!("<{message_id}>"), "copies": copies, "skipped": skipped}))
}

/// Adds `labels` to the inbox copies (not the sender's SENT-only copy), as a filter
/// would, recording `labelsAdded`.
fn add_inbox_labels(org: &mut Organization, copies: &[Copy], labels: &[String]) {
    for copy in copies {
        let Some(mailbox) = org.mailboxes.get_mut(&copy.mailbox) else {
            continue;
        };
        let in_inbox = mailbox
            .messages
            .get(&copy.id)
            .is_some_and(|m| m.label_ids.contains("INBOX"));
        if in_inbox {
            mailbox.add_labels(&copy.id, labels);
        }
    }
}

fn insert_raw(state: &EmulatorState, insertion: RawInsertion) -> Answer {
    let raw = decode_base64(&insertion.raw)
        .ok_or_else(|| ControlError::bad_request("raw is not base64"))?;
    if parse_header_fields(&raw).is_empty() {
        return Err(ControlError::bad_request("raw has no header fields"));
    }
    let labels = insertion
        .labels
        .unwrap_or_else(|| vec!["INBOX".to_string(), "UNREAD".to_string()]);
    let internal_date_ms = insertion
        .internal_date_ms
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let mut org = write_org(state);
    let mailbox = mailbox_mut(&mut org, &insertion.mailbox)?;
    check_labels_exist(mailbox, &labels)?;
    let copy = store(mailbox, raw, labels.into_iter().collect(), internal_date_ms);
    created(json!({"copies": [copy]}))
}

/// Inserts one copy of an exact message with a fresh Gmail id, threaded with a message
/// it answers (`In-Reply-To`, `References`) if that is in the mailbox, recording
/// `messageAdded`.
fn store(
    mailbox: &mut Mailbox,
    raw: Vec<u8>,
    labels: BTreeSet<String>,
    internal_date_ms: i64,
) -> Copy {
    let mut rng = rand::thread_rng();
    let id = loop {
        let id = gmail_message_id(internal_date_ms, rng.r#gen());
        if !mailbox.messages.contains_key(&id) {
            break id;
        }
    };
    let headers = parse_header_fields(&raw);
    let parents: Vec<String> = ["In-Reply-To", "References"]
        .iter()
        .filter_map(|name| header(&headers, name))
        .flat_map(str::split_whitespace)
        .map(bare_message_id)
        .collect();
    let thread_id = thread_of(mailbox, &parents).unwrap_or_else(|| id.clone());
    let snippet = render::snippet(&String::from_utf8_lossy(body_of(&raw)));
    let message = stored_message(
        raw,
        id.clone(),
        thread_id.clone(),
        labels,
        internal_date_ms,
        snippet,
    );
    let history_id = mailbox.add_message(message);
    Copy {
        mailbox: mailbox.email.clone(),
        id,
        thread_id,
        history_id,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The thread of the first message whose `Message-ID` is one of `parents` (bare ids).
fn thread_of(mailbox: &Mailbox, parents: &[String]) -> Option<String> {
    if parents.is_empty() {
        return None;
    }
    mailbox.messages.values().find_map(|m| {
        let own = bare_message_id(header(&m.headers, "Message-ID")?);
        parents.contains(&own).then(|| m.thread_id.clone())
    })
}

/// What follows the header block.
fn body_of(raw: &[u8]) -> &[u8] {
    let split = |separator: &[u8]| {
        raw.windows(separator.len())
            .position(|w| w == separator)
            .map(|at| at + separator.len())
    };
    let start = split(b"\r\n\r\n").or_else(|| split(b"\n\n"));
    start.map_or(&[][..], |at| &raw[at..])
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .collect();
    URL_SAFE_NO_PAD
        .decode(&trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(&trimmed))
        .ok()
}

/// `Name <addr>`, `"Name" <addr>` or a bare `addr`.
fn named_address(entry: &str) -> Result<NamedAddress, ControlError> {
    let bad = || ControlError::bad_request(format!("{entry:?} is not an address"));
    let entry = entry.trim();
    let (name, address) = match (entry.rfind('<'), entry.rfind('>')) {
        (Some(open), Some(close)) if open < close => (
            entry[..open].trim().trim_matches('"').trim(),
            &entry[open + 1..close],
        ),
        _ => ("", entry),
    };
    let address = address.trim();
    let (local, domain) = address.split_once('@').ok_or_else(bad)?;
    if local.is_empty() || domain.is_empty() || address.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(NamedAddress::new(
        (!name.is_empty()).then_some(name),
        address,
    ))
}

fn named_addresses(entries: &[String]) -> Result<Vec<NamedAddress>, ControlError> {
    entries.iter().map(|e| named_address(e)).collect()
}

/// A Message-ID without its angle brackets.
fn bare_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

fn generated_message_id(sender: &str) -> String {
    let domain = domain_of(sender).unwrap_or("emulator.invalid");
    let token: u64 = rand::thread_rng().r#gen();
    format!("{token:016x}.control@{domain}")
}

fn parse_date(text: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, ControlError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_rfc2822(text))
        .map_err(|_| {
            ControlError::bad_request(format!("date {text:?} is neither RFC 3339 nor RFC 2822"))
        })
}

// ---------------------------------------------------------------------------------------
// Quota, faults, counters

/// What `GET /control/counters` answers.
#[derive(Debug, Clone, Serialize)]
pub struct CountersReport {
    /// Requests, units and rate-limit answers per user and method, and totals.
    #[serde(flatten)]
    pub requests: CountersSnapshot,
    /// Refusals by limit (429 concurrency, 403 user rate, 403 project rate).
    pub rate_limited_by_kind: RefusalTotals,
    pub faults_injected: FaultTotals,
    /// The budgets in force, in real-time terms.
    pub quota: BudgetSnapshot,
}

/// Every counter the emulator keeps, as the control API reports them.
pub fn counters_report(state: &EmulatorState) -> CountersReport {
    CountersReport {
        requests: state.counters.snapshot(),
        rate_limited_by_kind: state.quotas.refusals(),
        faults_injected: state.faults.totals(),
        quota: state.quotas.budget_snapshot(),
    }
}

/// Zeroes every counter (budgets are left as they are).
pub fn reset_all_counters(state: &EmulatorState) {
    state.counters.reset();
    state.quotas.reset_refusals();
    state.faults.reset_totals();
}

async fn get_counters(State(state): State<Arc<EmulatorState>>) -> Answer {
    ok(counters_report(&state))
}

async fn reset_counters(State(state): State<Arc<EmulatorState>>) -> Answer {
    reset_all_counters(&state);
    ok(counters_report(&state))
}

// ---------------------------------------------------------------------------------------
// Service accounts, delegation, API access

impl From<AuthControlError> for ControlError {
    fn from(error: AuthControlError) -> Self {
        match error {
            AuthControlError::KeyGeneration(_) => ControlError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: error.to_string(),
            },
            _ => ControlError::not_found(error.to_string()),
        }
    }
}

/// The account named by `client_email`, or the only registered one.
fn service_account(
    state: &EmulatorState,
    client_email: Option<&str>,
) -> Result<ServiceAccountSummary, ControlError> {
    let accounts = state.auth.service_accounts();
    match client_email {
        Some(email) => accounts
            .into_iter()
            .find(|a| a.client_email.eq_ignore_ascii_case(email))
            .ok_or_else(|| ControlError::not_found(format!("no service account {email}"))),
        None if accounts.len() == 1 => Ok(accounts.into_iter().next().expect("one account")),
        None if accounts.is_empty() => {
            Err(ControlError::not_found("no service account is registered"))
        }
        None => Err(ControlError::bad_request(
            "several service accounts are registered: name one with client_email",
        )),
    }
}

/// The client id named, or the only registered account's.
fn client_id(state: &EmulatorState, client_id: Option<String>) -> Result<String, ControlError> {
    match client_id {
        Some(id) => Ok(id),
        None => Ok(service_account(state, None)?.client_id),
    }
}

async fn list_service_accounts(State(state): State<Arc<EmulatorState>>) -> Answer {
    ok(state.auth.service_accounts())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AccountChoice {
    client_email: Option<String>,
}

/// Creates a key as "Add key" in Google's console does and answers its key file.
/// The body is optional.
async fn add_key(State(state): State<Arc<EmulatorState>>, body: axum::body::Bytes) -> Answer {
    let choice: AccountChoice = if body.iter().all(u8::is_ascii_whitespace) {
        AccountChoice::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ControlError::bad_request(e.to_string()))?
    };
    let account = service_account(&state, choice.client_email.as_deref())?;
    let worker = Arc::clone(&state);
    // RSA key generation takes a while: keep it off the async workers.
    let key_file =
        tokio::task::spawn_blocking(move || worker.auth.create_key(&account.client_email))
            .await
            .map_err(|e| ControlError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("key generation failed: {e}"),
            })??;
    created(key_file)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct KeyQuery {
    client_email: Option<String>,
}

/// Deletes a key from the named account, or from whichever account holds it.
async fn delete_key(
    State(state): State<Arc<EmulatorState>>,
    Path(key_id): Path<String>,
    Query(query): Query<KeyQuery>,
) -> Answer {
    let holder = match query.client_email {
        Some(email) => email,
        None => state
            .auth
            .service_accounts()
            .into_iter()
            .find(|a| a.key_ids.contains(&key_id))
            .map(|a| a.client_email)
            .ok_or_else(|| {
                ControlError::not_found(format!("no service account has key {key_id}"))
            })?,
    };
    state.auth.delete_key(&holder, &key_id)?;
    ok(service_account(&state, Some(&holder))?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Disable {
    #[serde(default)]
    client_email: Option<String>,
    disabled: bool,
}

async fn disable_service_account(
    State(state): State<Arc<EmulatorState>>,
    Body(request): Body<Disable>,
) -> Answer {
    let account = service_account(&state, request.client_email.as_deref())?;
    state
        .auth
        .set_disabled(&account.client_email, request.disabled)?;
    ok(service_account(&state, Some(&account.client_email))?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delegation {
    #[serde(default)]
    client_id: Option<String>,
    scopes: Vec<String>,
}

/// Sets the client id's domain-wide delegation to exactly `scopes` (empty removes it).
async fn set_delegation(
    State(state): State<Arc<EmulatorState>>,
    Body(request): Body<Delegation>,
) -> Answer {
    let client_id = client_id(&state, request.client_id)?;
    state.auth.set_delegation(&client_id, request.scopes);
    let scopes = state.auth.delegation(&client_id).unwrap_or_default();
    ok(json!({"client_id": client_id, "scopes": scopes}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiAccessRestriction {
    #[serde(default)]
    client_id: Option<String>,
    restricted: bool,
}

async fn set_api_access(
    State(state): State<Arc<EmulatorState>>,
    Body(request): Body<ApiAccessRestriction>,
) -> Answer {
    let client_id = client_id(&state, request.client_id)?;
    state
        .auth
        .set_api_access_restricted(&client_id, request.restricted);
    ok(json!({"client_id": client_id, "restricted": request.restricted}))
}

/// Every access token issued so far expires now (the next API call with one gets 401).
async fn expire_tokens(State(state): State<Arc<EmulatorState>>) -> Answer {
    state.auth.expire_all_tokens();
    ok(json!({"expired": true}))
}

// ---------------------------------------------------------------------------------------
// Scenario files

/// Start-up settings from a JSON file, in the kit's format (see [`crate::kit::scenario`]):
/// `{"quota": {..QuotaConfig}, "faults": {..FaultConfig}, "time_scale": 60,
/// "mail_disabled": ["user@domain"]}`. Every part is optional; unknown fields are errors
/// naming the field. `Scenario::from_path` reads and validates a file,
/// `Scenario::apply(&state)` applies it.
pub type Scenario = crate::kit::Scenario<QuotaConfig, FaultConfig>;

pub use crate::kit::ScenarioError;

/// How a scenario applies to the Google emulator: quota and faults as the control API
/// sets them, and "Mail service not enabled" on the mailboxes it names.
impl ScenarioTarget for EmulatorState {
    type Limits = QuotaLimiter;
    type Faults = FaultSwitch;

    fn limits(&self) -> &QuotaLimiter {
        &self.quotas
    }

    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn disable_mail(&self, addresses: &[String]) -> Result<(), ScenarioError> {
        let mut org = write_org(self);
        // Check every address before changing anything.
        for address in addresses {
            mailbox_mut(&mut org, address)
                .map_err(|_| ScenarioError::UnknownMailbox(address.clone()))?;
        }
        for address in addresses {
            if let Ok(mailbox) = mailbox_mut(&mut org, address) {
                mailbox.mail_enabled = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::google::quota::QuotaConfigError;
    use crate::kit::control::merged;

    #[test]
    fn addresses_are_taken_from_either_form() {
        let named = named_address("\"Lee, Ann\" <ann@x.example>").unwrap();
        assert_eq!(named, NamedAddress::new(Some("Lee, Ann"), "ann@x.example"));
        let bare = named_address(" ann@x.example ").unwrap();
        assert_eq!(bare, NamedAddress::new(None, "ann@x.example"));
        assert!(named_address("not an address").is_err());
        assert!(named_address("Ann <@x.example>").is_err());
    }

    #[test]
    fn raw_messages_decode_from_either_base64_alphabet() {
        let raw = b"Subject: ?>?\r\n\r\n\xff";
        let standard = base64::engine::general_purpose::STANDARD.encode(raw);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        assert_ne!(standard, url_safe);
        assert_eq!(decode_base64(&standard).as_deref(), Some(&raw[..]));
        assert_eq!(decode_base64(&url_safe).as_deref(), Some(&raw[..]));
    }

    #[test]
    fn stored_copies_get_unique_gmail_ids_and_a_snippet() {
        let mut mailbox = Mailbox::new("a@x.example", 1);
        let date = 1_700_000_000_000;
        for _ in 0..50 {
            store(
                &mut mailbox,
                b"Subject: s\r\n\r\nIt's   here\r\n".to_vec(),
                BTreeSet::new(),
                date,
            );
        }
        assert_eq!(mailbox.messages.len(), 50);
        assert!(mailbox.messages.keys().all(|id| {
            id.len() == 16
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }));
        let message = mailbox.messages.values().next().unwrap();
        assert_eq!(message.snippet, "It&#39;s here");
    }

    #[test]
    fn replies_join_the_parent_thread() {
        let mut mailbox = Mailbox::new("a@x.example", 1);
        let parent = store(
            &mut mailbox,
            b"Message-ID: <p@x.example>\r\n\r\nhi".to_vec(),
            BTreeSet::new(),
            1,
        );
        let reply = store(
            &mut mailbox,
            b"Message-ID: <r@x.example>\r\nReferences: <o@x.example> <p@x.example>\r\n\r\nre"
                .to_vec(),
            BTreeSet::new(),
            2,
        );
        assert_eq!(reply.thread_id, parent.thread_id);
        assert!(reply.history_id > parent.history_id);
    }

    #[test]
    fn scenarios_parse_partially_and_name_unknown_fields() {
        let scenario: Scenario = serde_json::from_str(
            r#"{"quota": {"time_scale": 60, "per_user_units_per_minute": 600},
                "faults": {"backend_error_probability": 0.05, "seed": 3},
                "mail_disabled": ["bob@x.example"]}"#,
        )
        .unwrap();
        let quota = scenario.quota.unwrap();
        assert_eq!(quota.time_scale, 60.0);
        assert_eq!(quota.per_project_units_per_minute, 1_200_000);
        assert_eq!(scenario.faults.unwrap().seed, Some(3));
        assert_eq!(scenario.mail_disabled, vec!["bob@x.example".to_string()]);

        let error = serde_json::from_str::<Scenario>(r#"{"faults": {"latency": 5}}"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `latency`"),
            "{error}"
        );
    }

    #[test]
    fn scenario_files_report_their_path_and_invalid_values() {
        let path = std::env::temp_dir().join(format!("scenario-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"quota": {"time_scale": -1}}"#).unwrap();
        let error = Scenario::from_path(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        let ScenarioError::Invalid { part, source } = &error else {
            panic!("{error}");
        };
        assert_eq!(*part, "quota");
        assert!(matches!(
            source.downcast_ref::<QuotaConfigError>(),
            Some(QuotaConfigError::TimeScale(_))
        ));
        assert!(
            error
                .to_string()
                .starts_with("invalid scenario quota: time_scale")
        );

        let missing =
            Scenario::from_path(std::path::Path::new("/nonexistent/scenario.json")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/scenario.json"));
    }

    #[test]
    fn patches_change_only_the_given_fields() {
        let current = QuotaConfig {
            time_scale: 10.0,
            ..QuotaConfig::default()
        };
        let patched: QuotaConfig =
            merged(&current, json!({"per_user_units_per_minute": 600})).unwrap();
        assert_eq!(patched.time_scale, 10.0);
        assert_eq!(patched.per_user_units_per_minute, 600);
        let error = merged::<QuotaConfig>(&current, json!({"bogus": 1})).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("bogus"));
    }
}
