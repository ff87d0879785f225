//! `users`: list (`$select`, `$top` 1–999 default 100, `$filter` on the fields a
//! connector needs, opaque `$skiptoken` paging with links that keep the query) and get by
//! id or user principal name. Without `$select` only Graph's default properties come back.
//! `directoryRoles`: the activated Global Administrator role, found by
//! `$filter=roleTemplateId eq '…'`, and its members (the organization's administrators),
//! readable with `RoleManagement.Read.Directory` or `Directory.Read.All`.

use super::access::{self, require_directory};
use super::envelope::{self, GraphError, RequestIds, json_response};
use super::query::QueryOptions;
use super::state::MicrosoftState;
use super::tenant::EntraUser;
use axum::Router;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 999;
/// What the counters file directory calls under.
pub const DIRECTORY: &str = "directory";

pub fn routes() -> Router<Arc<MicrosoftState>> {
    Router::new()
        .route("/v1.0/users", get(list))
        .route("/v1.0/users/{user}", get(get_one))
        .route("/v1.0/directoryRoles", get(list_roles))
        .route("/v1.0/directoryRoles/{role}/members", get(role_members))
}

/// The Global Administrator role's template id, the same in every tenant.
pub const GLOBAL_ADMIN_TEMPLATE: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Roles that may read directory role memberships.
const ROLE_READERS: &[&str] = &[
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The activated role's id in this tenant (a role object's id differs per tenant).
fn global_admin_role_id(state: &MicrosoftState) -> String {
    super::ids::guid(&state.tenant().tenant_id, "directoryRole/global-admin")
}

fn require_role_reader(state: &MicrosoftState, headers: &HeaderMap) -> Result<(), GraphError> {
    let grant = access::authenticate(state, headers)?;
    if ROLE_READERS.iter().any(|r| grant.roles.contains(*r)) {
        Ok(())
    } else {
        Err(envelope::directory_role_missing())
    }
}

fn list_directory_roles(
    state: &MicrosoftState,
    headers: &HeaderMap,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    require_role_reader(state, headers)?;
    let role = json!({
        "id": global_admin_role_id(state),
        "displayName": "Global Administrator",
        "description": "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities.",
        "roleTemplateId": GLOBAL_ADMIN_TEMPLATE,
    });
    let wanted = match query.get("$filter") {
        None => true,
        Some(filter) => match clause(filter)? {
            Clause::Equals(field, value) if field.eq_ignore_ascii_case("roleTemplateId") => {
                value.eq_ignore_ascii_case(GLOBAL_ADMIN_TEMPLATE)
            }
            _ => return Err(unsupported()),
        },
    };
    let value: Vec<Value> = wanted.then_some(role).into_iter().collect();
    let body = json!({
        "@odata.context": format!("{}/$metadata#directoryRoles", state.graph_url()),
        "value": value,
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn list_role_members(
    state: &MicrosoftState,
    headers: &HeaderMap,
    role: &str,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    require_role_reader(state, headers)?;
    if !role.eq_ignore_ascii_case(&global_admin_role_id(state)) {
        return Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{role}' does not exist or one of its queried reference-property objects are not present."
            ),
        ));
    }
    let select = query.select();
    let tenant = state.tenant();
    let value: Vec<Value> = tenant
        .users
        .iter()
        .filter(|u| u.global_admin && !u.deleted)
        .map(|u| {
            let mut member = user_json(u, select.as_deref());
            member["@odata.type"] = json!("#microsoft.graph.user");
            member
        })
        .collect();
    let body = json!({
        "@odata.context": format!("{}/$metadata#directoryObjects", state.graph_url()),
        "value": value,
    });
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn list_roles(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = list_directory_roles(&state, &headers, &query);
    finish(&state, &ids, "directoryRoles.list", result)
}

pub async fn role_members(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Path(role): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = list_role_members(&state, &headers, &role, &query);
    finish(&state, &ids, "directoryRoles.members", result)
}

fn all_properties(user: &EntraUser) -> Map<String, Value> {
    let nickname = user.user_principal_name.split('@').next().unwrap_or("");
    let value = json!({
        "id": user.id,
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": user.given_name,
        "jobTitle": null,
        "mail": user.mail,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": "en-US",
        "surname": user.surname,
        "userPrincipalName": user.user_principal_name,
        "accountEnabled": user.account_enabled,
        "proxyAddresses": user.proxy_addresses,
        "userType": user.user_type,
        "createdDateTime": user.created,
        "mailNickname": nickname,
        "otherMails": [],
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

pub fn user_json(user: &EntraUser, select: Option<&[String]>) -> Value {
    let all = all_properties(user);
    let wanted: Vec<&str> = match select {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_PROPERTIES.to_vec(),
    };
    let mut out = Map::new();
    for name in wanted {
        if let Some((key, value)) = all.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            out.insert(key.clone(), value.clone());
        }
    }
    Value::Object(out)
}

/// One `$filter` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    Equals(String, String),
    StartsWith(String, String),
    ProxyAddress(String),
}

fn unsupported() -> GraphError {
    GraphError::bad_request("Request_UnsupportedQuery", "Unsupported Query.")
}

fn literal(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Some(inner.replace("''", "'"));
    }
    matches!(text, "true" | "false").then(|| text.to_string())
}

fn clause(text: &str) -> Result<Clause, GraphError> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("proxyaddresses/any(") {
        let inner = text
            .split_once(':')
            .map(|(_, rest)| rest)
            .ok_or_else(unsupported)?;
        let (_, value) = inner
            .trim_end_matches(')')
            .split_once(" eq ")
            .ok_or_else(unsupported)?;
        return Ok(Clause::ProxyAddress(
            literal(value).ok_or_else(unsupported)?,
        ));
    }
    if lower.starts_with("startswith(") {
        let args = &text["startswith(".len()..text.len().saturating_sub(1)];
        let (field, value) = args.split_once(',').ok_or_else(unsupported)?;
        return Ok(Clause::StartsWith(
            field.trim().to_string(),
            literal(value).ok_or_else(unsupported)?,
        ));
    }
    let (field, value) = text.split_once(" eq ").ok_or_else(unsupported)?;
    Ok(Clause::Equals(
        field.trim().to_string(),
        literal(value).ok_or_else(unsupported)?,
    ))
}

fn parse_filter(filter: &str) -> Result<Vec<Clause>, GraphError> {
    filter.split(" and ").map(clause).collect()
}

fn field_text(user: &EntraUser, field: &str) -> Result<Option<String>, GraphError> {
    Ok(match field.to_ascii_lowercase().as_str() {
        "id" => Some(user.id.clone()),
        "mail" => user.mail.clone(),
        "userprincipalname" => Some(user.user_principal_name.clone()),
        "displayname" => Some(user.display_name.clone()),
        "usertype" => Some(user.user_type.clone()),
        "accountenabled" => Some(user.account_enabled.to_string()),
        "givenname" => Some(user.given_name.clone()),
        "surname" => Some(user.surname.clone()),
        _ => return Err(unsupported()),
    })
}

fn matches(user: &EntraUser, clauses: &[Clause]) -> Result<bool, GraphError> {
    for clause in clauses {
        let hit = match clause {
            Clause::Equals(field, value) => {
                field_text(user, field)?.is_some_and(|v| v.eq_ignore_ascii_case(value))
            }
            Clause::StartsWith(field, value) => field_text(user, field)?.is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with(&value.to_ascii_lowercase())
            }),
            Clause::ProxyAddress(value) => user
                .proxy_addresses
                .iter()
                .any(|p| p.eq_ignore_ascii_case(value)),
        };
        if !hit {
            return Ok(false);
        }
    }
    Ok(true)
}

fn page_size(query: &QueryOptions) -> Result<usize, GraphError> {
    let Some(text) = query.get("$top") else {
        return Ok(DEFAULT_PAGE);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        _ => Err(GraphError::bad_request(
            "Request_UnsupportedQuery",
            format!(
                "Invalid page size specified: '{text}'. Must be between 1 and {MAX_PAGE} inclusive."
            ),
        )),
    }
}

fn skip_of(query: &QueryOptions) -> Result<usize, GraphError> {
    let Some(token) = query.get("$skiptoken") else {
        return Ok(0);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid_skiptoken())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid_skiptoken())?;
    text.strip_prefix("users:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(invalid_skiptoken)
}

fn invalid_skiptoken() -> GraphError {
    GraphError::bad_request("Request_BadRequest", "Invalid skip token.")
}

/// The next link: the original query options with a new `$skiptoken`.
fn next_link(state: &MicrosoftState, query: &QueryOptions, next: usize) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for name in ["$select", "$top", "$filter", "$count"] {
        if let Some(value) = query.get(name) {
            serializer.append_pair(name, value);
        }
    }
    serializer.append_pair(
        "$skiptoken",
        &URL_SAFE_NO_PAD.encode(format!("users:{next}")),
    );
    format!("{}/users?{}", state.graph_url(), serializer.finish())
}

fn list_users(
    state: &MicrosoftState,
    headers: &HeaderMap,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let grant = access::authenticate(state, headers)?;
    require_directory(&grant)?;
    let size = page_size(query)?;
    let skip = skip_of(query)?;
    let clauses = match query.get("$filter") {
        Some(filter) => parse_filter(filter)?,
        None => Vec::new(),
    };
    let select = query.select();
    let tenant = state.tenant();
    let mut matching = Vec::new();
    for user in tenant.users.iter().filter(|u| !u.deleted) {
        if matches(user, &clauses)? {
            matching.push(user);
        }
    }
    let value: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(size)
        .map(|u| user_json(u, select.as_deref()))
        .collect();
    let context = match &select {
        Some(list) => format!("{}/$metadata#users({})", state.graph_url(), list.join(",")),
        None => format!("{}/$metadata#users", state.graph_url()),
    };
    let mut body = json!({"@odata.context": context, "value": value});
    if skip + size < matching.len() {
        body["@odata.nextLink"] = json!(next_link(state, query, skip + size));
    }
    Ok(json_response(StatusCode::OK, &body))
}

fn finish(
    state: &MicrosoftState,
    ids: &RequestIds,
    method: &'static str,
    result: Result<Response, GraphError>,
) -> Response {
    state.counters.record_request(DIRECTORY, method);
    result.unwrap_or_else(|error| {
        state.counters.record_error(DIRECTORY, &error.code);
        error.render(ids)
    })
}

pub async fn list(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = list_users(&state, &headers, &query);
    finish(&state, &ids, "users.list", result)
}

fn get_user(
    state: &MicrosoftState,
    headers: &HeaderMap,
    user: &str,
    query: &QueryOptions,
) -> Result<Response, GraphError> {
    let grant = access::authenticate(state, headers)?;
    require_directory(&grant)?;
    let tenant = state.tenant();
    let found = tenant
        .user(user)
        .ok_or_else(|| envelope::user_not_found(user))?;
    let select = query.select();
    let mut body = user_json(found, select.as_deref());
    body["@odata.context"] = json!(format!("{}/$metadata#users/$entity", state.graph_url()));
    Ok(json_response(StatusCode::OK, &body))
}

pub async fn get_one(
    State(state): State<Arc<MicrosoftState>>,
    Extension(ids): Extension<RequestIds>,
    Path(user): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = QueryOptions::parse(query.as_deref());
    let result = get_user(&state, &headers, &user, &query);
    finish(&state, &ids, "users.get", result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_the_connector_s_clauses() {
        let clauses = parse_filter(
            "accountEnabled eq true and proxyAddresses/any(x:x eq 'smtp:a@b.example')",
        )
        .unwrap();
        assert_eq!(
            clauses,
            vec![
                Clause::Equals("accountEnabled".into(), "true".into()),
                Clause::ProxyAddress("smtp:a@b.example".into())
            ]
        );
        assert!(
            parse_filter("department eq 'x' or 1").is_err() || parse_filter("foo gt 3").is_err()
        );
        assert!(parse_filter("foo gt 3").is_err());
    }
}
