//! Members: list, create, update (active), CSV import, and each member's extra
//! labels and the labels its mailbox has to choose from (a member's token may read and
//! set its own).
//!
//! A member is a captured mailbox's owner, not a sign-in: it has no role here. Roles
//! belong to console accounts (`/api/v1/accounts`), the only thing that decides access;
//! a request that sets a member's role is refused with 400 naming that route.

use super::extract::{ApiJson, ApiPath, CsvBody, not_null};
use crate::AppState;
use crate::auth::{AdminCaller, ApiCaller};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use tributary_core::EmailAddress;
use tributary_store::{AuditEvent, MemberId, MemberRole, MemberView};
use tributary_sync::{RuntimeError, label_choices};

pub(crate) fn role_str(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Admin => "admin",
        MemberRole::Member => "member",
    }
}

/// `members` as the API shows them, each with its display name (the directory's, else
/// the latest one headers gave its address; `null` when none is known): one read of
/// the names for all of them.
async fn members_json(
    state: &AppState,
    caller: &ApiCaller,
    members: &[MemberView],
) -> Result<Vec<Value>, ApiError> {
    let addresses: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
    let names = state
        .store()
        .display_names(&caller.tenant, &addresses)
        .await?;
    Ok(members
        .iter()
        .map(|member| member_json(member, names.get(&member.email).map(String::as_str)))
        .collect())
}

fn member_json(member: &MemberView, display_name: Option<&str>) -> Value {
    json!({
        "id": member.id.0,
        "email": member.email,
        "display_name": display_name,
        "aliases": member.aliases,
        "active": member.active,
    })
}

/// One member as the API shows it (see [`members_json`]).
async fn one_member_json(
    state: &AppState,
    caller: &ApiCaller,
    member: &MemberView,
) -> Result<Value, ApiError> {
    let names = state
        .store()
        .display_names(&caller.tenant, &[member.email.as_str()])
        .await?;
    Ok(member_json(
        member,
        names.get(&member.email).map(String::as_str),
    ))
}

/// What a member role write answers: roles live on accounts.
const NO_MEMBER_ROLE: &str = "members have no role: a role belongs to a console account and \
     decides its access; change it with PATCH /api/v1/accounts/{id}";

fn refuse_member_role(role: Option<&Value>) -> Result<(), ApiError> {
    match role {
        None => Ok(()),
        Some(_) => {
            Err(ApiError::bad_request("role_is_per_account", NO_MEMBER_ROLE).with_field("role"))
        }
    }
}

pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let members = state.store().members(&caller.tenant).await?;
    let members = members_json(&state, &caller, &members).await?;
    Ok(Json(json!({ "members": members })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    email: String,
    #[serde(default)]
    aliases: Vec<String>,
    /// Refused when present: see [`NO_MEMBER_ROLE`].
    #[serde(default, deserialize_with = "not_null")]
    role: Option<Value>,
}

/// Most aliases one member may be created with.
pub(crate) const MAX_ALIASES: usize = 100;

/// A typed address, checked by the one validator of typed addresses
/// ([`EmailAddress::parse_mailbox`]: at most 254 characters).
fn parse_address(raw: &str, field: &str) -> Result<String, String> {
    EmailAddress::parse_mailbox(raw)
        .map(|a| a.as_str().to_owned())
        .map_err(|e| format!("{field}: `{}` is not an email address: {e}", shown(raw)))
}

/// At most the first 80 characters of what a client sent, for an error message.
pub(crate) fn shown(raw: &str) -> String {
    const SHOWN: usize = 80;
    match raw.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}

/// Every address of the tenant's members, to the member owning it.
fn owners(members: &[MemberView]) -> HashMap<String, MemberId> {
    members
        .iter()
        .flat_map(|m| {
            std::iter::once(m.email.clone())
                .chain(m.aliases.iter().cloned())
                .map(move |a| (a, m.id))
        })
        .collect()
}

pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    refuse_member_role(request.role.as_ref())?;
    let email = parse_address(&request.email, "email")
        .map_err(|m| ApiError::unprocessable("invalid_email", m).with_field("email"))?;
    if request.aliases.len() > MAX_ALIASES {
        return Err(ApiError::unprocessable(
            "invalid_email",
            format!(
                "aliases: at most {MAX_ALIASES}, not {}",
                request.aliases.len()
            ),
        )
        .with_field("aliases"));
    }
    let aliases = request
        .aliases
        .iter()
        .map(|a| parse_address(a, "aliases"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| ApiError::unprocessable("invalid_email", m).with_field("aliases"))?;
    let store = state.store();
    let members = store.members(&caller.tenant).await?;
    let owners = owners(&members);
    if let Some(taken) = std::iter::once(&email)
        .chain(&aliases)
        .find(|a| owners.contains_key(*a))
    {
        return Err(ApiError::conflict(
            "address_taken",
            format!("{taken} already belongs to a member"),
        ));
    }
    let alias_refs: Vec<&str> = aliases.iter().map(String::as_str).collect();
    let id = store
        .add_member(&caller.tenant, &email, &alias_refs, MemberRole::Member)
        .await?;
    audit(
        &state,
        &caller,
        "member.created",
        &email,
        json!({ "member": id.0 }),
    )
    .await?;
    let member = find_member(&state, &caller, id).await?;
    let shown = one_member_json(&state, &caller, &member).await?;
    Ok((StatusCode::CREATED, Json(shown)))
}

async fn audit(
    state: &AppState,
    caller: &ApiCaller,
    action: &str,
    subject: &str,
    detail: Value,
) -> Result<(), ApiError> {
    let event = AuditEvent {
        at_ms: now_ms(),
        actor: caller.actor.clone(),
        action: action.to_owned(),
        subject: Some(subject.to_owned()),
        detail,
    };
    Ok(state.store().record_audit(&caller.tenant, &event).await?)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn find_member(
    state: &AppState,
    caller: &ApiCaller,
    id: MemberId,
) -> Result<MemberView, ApiError> {
    state
        .store()
        .members(&caller.tenant)
        .await?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_member",
                format!("member {} does not exist in this tenant", id.0),
            )
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// Refused when present: see [`NO_MEMBER_ROLE`].
    #[serde(default, deserialize_with = "not_null")]
    role: Option<Value>,
    #[serde(default, deserialize_with = "not_null")]
    active: Option<bool>,
}

pub async fn update(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    refuse_member_role(request.role.as_ref())?;
    let member = find_member(&state, &caller, MemberId(id)).await?;
    let store = state.store();
    if let Some(active) = request.active
        && active != member.active
    {
        store
            .set_member_active(&caller.tenant, member.id, active)
            .await?;
        audit(
            &state,
            &caller,
            "member.active",
            &member.email,
            json!({ "member": id, "active": active }),
        )
        .await?;
    }
    let member = find_member(&state, &caller, member.id).await?;
    Ok(Json(one_member_json(&state, &caller, &member).await?))
}

/// One valid row of an import.
#[derive(Debug)]
struct ImportRow {
    email: String,
    aliases: Vec<String>,
}

/// Imports members from CSV with the header `email,aliases` (or the older
/// `email,role,aliases` with the role column empty: members have no role); aliases are
/// separated by `;` or spaces. Every row is checked before anything is written: one
/// bad row changes nothing.
pub async fn import(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    CsvBody(text): CsvBody,
) -> Result<Json<Value>, ApiError> {
    let rows = parse_csv(&text).map_err(|m| ApiError::unprocessable("invalid_csv", m))?;
    let store = state.store();
    let members = store.members(&caller.tenant).await?;
    let owners = owners(&members);
    let by_email: HashMap<&str, &MemberView> =
        members.iter().map(|m| (m.email.as_str(), m)).collect();
    for (line, row) in rows.iter().enumerate() {
        let own = owners.get(&row.email).copied();
        for alias in &row.aliases {
            if let Some(owner) = owners.get(alias)
                && Some(*owner) != own
            {
                return Err(ApiError::unprocessable(
                    "invalid_csv",
                    format!(
                        "line {}: alias {alias} already belongs to another member",
                        line + 2
                    ),
                ));
            }
        }
    }
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    for row in &rows {
        let aliases: Vec<&str> = row.aliases.iter().map(String::as_str).collect();
        match by_email.get(row.email.as_str()) {
            None => {
                store
                    .add_member(&caller.tenant, &row.email, &aliases, MemberRole::Member)
                    .await?;
                created += 1;
            }
            Some(existing) => {
                let new_alias = row.aliases.iter().any(|a| !existing.aliases.contains(a));
                if new_alias {
                    store
                        .add_member(&caller.tenant, &row.email, &aliases, existing.role)
                        .await?;
                    updated += 1;
                } else {
                    unchanged += 1;
                }
            }
        }
    }
    audit(
        &state,
        &caller,
        "member.imported",
        "csv",
        json!({ "created": created, "updated": updated, "unchanged": unchanged }),
    )
    .await?;
    Ok(Json(
        json!({ "created": created, "updated": updated, "unchanged": unchanged }),
    ))
}

fn parse_csv(text: &str) -> Result<Vec<ImportRow>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("the CSV is empty: its first line must be `email,aliases`".to_owned());
    };
    let header: Vec<String> = split_csv_line(header)?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    // The older header had a role column; it is accepted while the column is empty.
    let with_role = header == ["email", "role", "aliases"];
    if !with_role && header != ["email", "aliases"] {
        return Err(format!(
            "line 1: the header must be `email,aliases`, not `{}`",
            header.join(",")
        ));
    }
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let fields = split_csv_line(line).map_err(|m| format!("line {number}: {m}"))?;
        if fields.len() != header.len() {
            return Err(format!(
                "line {number}: expected {} fields ({}), found {}",
                header.len(),
                header.join(","),
                fields.len()
            ));
        }
        let email =
            parse_address(&fields[0], "email").map_err(|m| format!("line {number}: {m}"))?;
        if !seen.insert(email.clone()) {
            return Err(format!("line {number}: {email} is listed twice"));
        }
        if with_role && !fields[1].trim().is_empty() {
            return Err(format!("line {number}: {NO_MEMBER_ROLE}"));
        }
        let aliases = fields[header.len() - 1]
            .split([';', ' '])
            .filter(|a| !a.trim().is_empty())
            .map(|a| parse_address(a, "aliases").map_err(|m| format!("line {number}: {m}")))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(ImportRow { email, aliases });
    }
    Ok(rows)
}

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.trim().is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".to_owned());
    }
    fields.push(field);
    Ok(fields)
}

/// Who may see and set `member`'s labels: admins, and the member itself.
async fn label_access(
    state: &AppState,
    caller: &ApiCaller,
    id: i64,
) -> Result<MemberView, ApiError> {
    let member = find_member(state, caller, MemberId(id)).await?;
    if !caller.is_admin() && caller.own_member(state.store()).await? != Some(member.id) {
        return Err(ApiError::forbidden());
    }
    Ok(member)
}

async fn labels_json(
    state: &AppState,
    caller: &ApiCaller,
    member: &MemberView,
) -> Result<Value, ApiError> {
    let labels = state
        .store()
        .member_labels(&caller.tenant, member.id)
        .await?;
    let policy_labels = state.runtime.policy(&caller.tenant).await?.synced_labels();
    Ok(json!({
        "member_id": member.id.0,
        "email": member.email,
        "labels": labels,
        "policy_labels": policy_labels,
    }))
}

pub async fn labels(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let member = label_access(&state, &caller, id).await?;
    Ok(Json(labels_json(&state, &caller, &member).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    labels: Vec<String>,
}

pub async fn set_labels(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(request): ApiJson<LabelsRequest>,
) -> Result<Json<Value>, ApiError> {
    let member = label_access(&state, &caller, id).await?;
    state
        .runtime
        .save_member_labels(&caller.tenant, member.id, &request.labels, &caller.actor)
        .await
        .map_err(|error| match error {
            RuntimeError::Labels(refused) => {
                ApiError::unprocessable("invalid_label", refused.to_string()).with_field("labels")
            }
            other => ApiError::from(other),
        })?;
    Ok(Json(labels_json(&state, &caller, &member).await?))
}

/// The labels `id`'s mailbox has now (Gmail `labels.list`), as the member's settings
/// offer them: pickable labels by name with whether each is chosen, minus those the
/// policy syncs for everyone, then chosen ids the mailbox no longer has.
pub async fn mailbox_labels(
    State(state): State<AppState>,
    caller: ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    let member = label_access(&state, &caller, id).await?;
    let mailbox = state
        .runtime
        .mailbox_labels(&caller.tenant, member.id)
        .await
        .map_err(|error| {
            ApiError::from(error)
                .at_mailbox()
                .while_doing("could not read the mailbox's labels")
        })?;
    let chosen = state
        .store()
        .member_labels(&caller.tenant, member.id)
        .await?;
    let policy_labels = state.runtime.policy(&caller.tenant).await?.synced_labels();
    let choices = label_choices(&mailbox, &policy_labels, &chosen);
    Ok(Json(json!({
        "member_id": member.id.0,
        "email": member.email,
        "labels": choices,
        "policy_labels": policy_labels,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_parse_with_quotes_and_aliases() {
        let rows = parse_csv(
            "email,aliases\nAda@Acme.test,\"a@acme.test; ada@acme.test\"\nbo@acme.test,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].email, "ada@acme.test");
        assert_eq!(rows[0].aliases, ["a@acme.test", "ada@acme.test"]);
        assert!(rows[1].aliases.is_empty());
        // The older header, its role column empty.
        let older = parse_csv("email,role,aliases\nbo@acme.test,,b@acme.test\n").unwrap();
        assert_eq!(older[0].aliases, ["b@acme.test"]);
    }

    #[test]
    fn a_member_role_in_csv_is_refused_naming_accounts() {
        let refused = parse_csv("email,role,aliases\nx@acme.test,admin,\n").unwrap_err();
        assert!(
            refused.contains("line 2") && refused.contains("/api/v1/accounts"),
            "{refused}"
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let wrong_header = parse_csv("mail,role\nx@acme.test,member").unwrap_err();
        assert!(wrong_header.starts_with("line 1:"), "{wrong_header}");
        let short = parse_csv("email,aliases\nx@acme.test\n").unwrap_err();
        assert!(short.contains("line 2"), "{short}");
        let bad_email =
            parse_csv("email,role,aliases\nx@acme.test,,\nnot-an-address,,\n").unwrap_err();
        assert!(bad_email.contains("line 3"), "{bad_email}");
        let twice = parse_csv("email,role,aliases\nx@acme.test,,\nX@acme.test,,\n").unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        assert!(split_csv_line("\"open,").is_err());
    }
}
