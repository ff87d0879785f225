//! Admin SDK Directory API: `users.list`, for a token that impersonates an administrator.

use super::call::{QueryParams, authenticate, charged, json_response};
use super::error::ApiError;
use super::quota::GmailMethod;
use super::state::EmulatorState;
use crate::model::{DirectoryUser, Organization};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;
use std::sync::Arc;

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 500;
const NOT_AUTHORIZED: &str = "Not Authorized to access this resource/api";

pub(crate) fn routes() -> Router<Arc<EmulatorState>> {
    Router::new().route("/admin/directory/v1/users", get(users_list))
}

async fn users_list(
    State(state): State<Arc<EmulatorState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let subject = match directory_caller(&state, &headers) {
        Ok(subject) => subject,
        Err(error) => return error.into_response(),
    };
    let params = QueryParams::parse(query.as_deref());
    charged(&state, &subject, GmailMethod::DirectoryUsersList, |org| {
        list_users(org, &params)
    })
    .await
}

/// Token and scope checks; the impersonated user must be an administrator.
fn directory_caller(state: &EmulatorState, headers: &HeaderMap) -> Result<Arc<str>, ApiError> {
    let grant = authenticate(state, headers)?;
    if !grant.access.directory_users_read {
        return Err(ApiError::insufficient_permissions());
    }
    let subject = grant
        .subject
        .ok_or_else(|| ApiError::forbidden(NOT_AUTHORIZED))?;
    let org = state.org();
    let is_admin = org
        .find_user(&subject)
        .is_some_and(|u| u.is_admin && !u.suspended && !u.deleted);
    if !is_admin {
        return Err(ApiError::forbidden(NOT_AUTHORIZED));
    }
    Ok(subject)
}

fn invalid_input(detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid",
        format!("Invalid Input: {detail}"),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderBy {
    Email,
    GivenName,
    FamilyName,
}

impl OrderBy {
    fn key(self, user: &DirectoryUser) -> String {
        match self {
            OrderBy::Email => user.primary_email.to_ascii_lowercase(),
            OrderBy::GivenName => user.given_name.to_lowercase(),
            OrderBy::FamilyName => user.family_name.to_lowercase(),
        }
    }
}

/// The users a request selects, in the order it asks for.
fn selected_users<'o>(
    org: &'o Organization,
    params: &QueryParams<'_>,
) -> Result<Vec<(String, &'o DirectoryUser)>, ApiError> {
    let customer = params.get("customer");
    let domain = params.get("domain");
    if let Some(customer) = customer
        && customer != "my_customer"
        && customer != org.customer_id
    {
        return Err(ApiError::forbidden(NOT_AUTHORIZED));
    }
    if let Some(domain) = domain
        && !org.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Err(ApiError::forbidden(NOT_AUTHORIZED));
    }
    if customer.is_none() && domain.is_none() {
        return Err(ApiError::bad_request("Bad Request"));
    }
    if params.get("query").is_some_and(|q| !q.is_empty()) {
        return Err(invalid_input("the emulator does not support query"));
    }
    let order_by = match params
        .get("orderBy")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("email") => OrderBy::Email,
        Some("givenname") => OrderBy::GivenName,
        Some("familyname") => OrderBy::FamilyName,
        Some(_) => return Err(invalid_input("orderBy")),
    };
    let descending = match params
        .get("sortOrder")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("ASCENDING") => false,
        Some("DESCENDING") => true,
        Some(_) => return Err(invalid_input("sortOrder")),
    };
    let show_deleted = params.flag("showDeleted")?;
    let domain_suffix = domain.map(|d| format!("@{}", d.to_ascii_lowercase()));

    let mut users: Vec<(String, &DirectoryUser)> = org
        .users
        .iter()
        .filter(|u| u.deleted == show_deleted)
        .filter(|u| {
            domain_suffix
                .as_deref()
                .is_none_or(|s| u.primary_email.to_ascii_lowercase().ends_with(s))
        })
        .map(|u| (order_by.key(u), u))
        .collect();
    users.sort_by(|a, b| compare(a, b, descending));
    Ok(users)
}

fn compare(
    a: &(String, &DirectoryUser),
    b: &(String, &DirectoryUser),
    descending: bool,
) -> Ordering {
    let ordering = (&a.0, &a.1.primary_email).cmp(&(&b.0, &b.1.primary_email));
    if descending {
        ordering.reverse()
    } else {
        ordering
    }
}

fn page_token(key: &str, email: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{key}\n{email}"))
}

fn parse_page_token(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || invalid_input("pageToken");
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let (key, email) = text.split_once('\n').ok_or_else(invalid)?;
    Ok((key.to_string(), email.to_string()))
}

fn list_users(org: &Organization, params: &QueryParams<'_>) -> Result<Response, ApiError> {
    let max = match params.get("maxResults") {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| invalid_input("maxResults"))?,
    } as usize;
    let users = selected_users(org, params)?;
    let descending = params
        .get("sortOrder")
        .is_some_and(|s| s.eq_ignore_ascii_case("DESCENDING"));
    let start = match params.get("pageToken").filter(|t| !t.is_empty()) {
        Some(token) => {
            let (key, email) = parse_page_token(token)?;
            users.partition_point(|(k, u)| {
                let ordering = (k, &u.primary_email).cmp(&(&key, &email));
                if descending {
                    ordering != Ordering::Less
                } else {
                    ordering != Ordering::Greater
                }
            })
        }
        None => 0,
    };
    let page = &users[start..(start + max).min(users.len())];
    let has_more = start + page.len() < users.len();
    let view = UserListView {
        kind: "admin#directory#users",
        etag: etag(&format!("{}:{}:{}", org.customer_id, start, users.len())),
        users: page.iter().map(|(_, u)| user_view(org, u)).collect(),
        next_page_token: has_more
            .then(|| page.last().map(|(k, u)| page_token(k, &u.primary_email)))
            .flatten(),
    };
    Ok(json_response(StatusCode::OK, &view))
}

/// Google's etags look like `"<opaque>"`, quotes included.
fn etag(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..20]))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserListView<'a> {
    kind: &'static str,
    etag: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<UserView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NameView<'a> {
    given_name: &'a str,
    family_name: &'a str,
    full_name: String,
}

#[derive(Serialize)]
struct EmailView<'a> {
    address: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    primary: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserView<'a> {
    kind: &'static str,
    id: &'a str,
    etag: String,
    primary_email: &'a str,
    name: NameView<'a>,
    is_admin: bool,
    is_delegated_admin: bool,
    last_login_time: &'static str,
    creation_time: &'a str,
    agreed_to_terms: bool,
    suspended: bool,
    archived: bool,
    change_password_at_next_login: bool,
    ip_whitelisted: bool,
    emails: Vec<EmailView<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    aliases: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    non_editable_aliases: &'a [String],
    customer_id: &'a str,
    org_unit_path: &'a str,
    is_mailbox_setup: bool,
    #[serde(rename = "isEnrolledIn2Sv")]
    is_enrolled_in_2sv: bool,
    #[serde(rename = "isEnforcedIn2Sv")]
    is_enforced_in_2sv: bool,
    include_in_global_address_list: bool,
}

fn user_view<'a>(org: &'a Organization, user: &'a DirectoryUser) -> UserView<'a> {
    let emails = std::iter::once(EmailView {
        address: &user.primary_email,
        primary: true,
    })
    .chain(
        user.aliases
            .iter()
            .chain(&user.non_editable_aliases)
            .map(|a| EmailView {
                address: a,
                primary: false,
            }),
    )
    .collect();
    UserView {
        kind: "admin#directory#user",
        id: &user.id,
        etag: etag(&format!("{}:{}:{}", user.id, user.suspended, user.archived)),
        primary_email: &user.primary_email,
        name: NameView {
            given_name: &user.given_name,
            family_name: &user.family_name,
            full_name: user.full_name(),
        },
        is_admin: user.is_admin,
        is_delegated_admin: false,
        // Google's value for "never logged in".
        last_login_time: "1970-01-01T00:00:00.000Z",
        creation_time: &user.creation_time,
        agreed_to_terms: true,
        suspended: user.suspended,
        archived: user.archived,
        change_password_at_next_login: false,
        ip_whitelisted: false,
        emails,
        aliases: &user.aliases,
        non_editable_aliases: &user.non_editable_aliases,
        customer_id: &org.customer_id,
        org_unit_path: &user.org_unit_path,
        is_mailbox_setup: user.is_mailbox_setup,
        is_enrolled_in_2sv: false,
        is_enforced_in_2sv: false,
        include_in_global_address_list: true,
    }
}
