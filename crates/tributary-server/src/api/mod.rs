//! The REST API under `/api/v1`: bearer API tokens (see [`crate::auth`]), JSON in and
//! out, errors as `{"error": {"code", "message"}}` (see [`crate::error`]). Every handler
//! is scoped to the token's tenant; an id of another tenant is simply not found.
//! Tokens act with their account's role: an admin's token manages the tenant, a
//! member's token reads only its own links and labels (403 elsewhere).
//!
//! The routes are listed once, in [`routes`], which builds the router and tells the
//! OpenAPI test what must be documented.

pub(crate) mod accounts;
mod connections;
mod extract;
pub(crate) mod link_push;
pub(crate) mod links;
pub(crate) mod meetings;
pub(crate) mod members;
mod progress;
pub(crate) mod reads;
mod settings;
mod setup;
pub(crate) mod tokens;

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodFilter, on};

/// One route of the API, relative to `/api/v1`, in axum's path syntax (`/links/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiRoute {
    pub method: Method,
    pub path: &'static str,
}

/// The router and the list of what it routes, built together so they cannot differ.
struct Routes {
    router: Router<AppState>,
    list: Vec<ApiRoute>,
}

impl Routes {
    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.route(path, on(filter, handler));
        self.list.push(ApiRoute { method, path });
        self
    }
}

fn build() -> Routes {
    let routes = Routes {
        router: Router::new(),
        list: Vec::new(),
    };
    routes
        .add(Method::GET, "/openapi.json", crate::openapi::serve)
        .add(Method::GET, "/connection", setup::connection)
        .add(Method::POST, "/connection", setup::connect)
        .add(
            Method::DELETE,
            "/connection",
            connections::disconnect_google,
        )
        .add(Method::POST, "/connection/test", setup::test_connection)
        .add(
            Method::GET,
            "/microsoft/connection",
            setup::microsoft_connection,
        )
        .add(
            Method::POST,
            "/microsoft/connection",
            setup::connect_microsoft,
        )
        .add(
            Method::DELETE,
            "/microsoft/connection",
            connections::disconnect_microsoft,
        )
        .add(
            Method::POST,
            "/microsoft/connection/test",
            setup::test_microsoft,
        )
        .add(
            Method::POST,
            "/microsoft/consent-link",
            setup::microsoft_consent_link,
        )
        .add(Method::POST, "/microsoft/consent", setup::microsoft_consent)
        .add(Method::GET, "/capture", setup::capture)
        .add(Method::PUT, "/capture", setup::set_capture)
        .add(Method::GET, "/policy", setup::policy)
        .add(Method::PUT, "/policy", setup::set_policy)
        .add(Method::GET, "/settings", settings::get)
        .add(Method::PUT, "/settings", settings::put)
        .add(Method::GET, "/delegation", setup::delegation)
        .add(Method::POST, "/delegation/rebuild", setup::rebuild)
        .add(Method::GET, "/members", members::list)
        .add(Method::POST, "/members", members::create)
        .add(Method::PATCH, "/members/{id}", members::update)
        .add(Method::POST, "/members/import", members::import)
        .add(Method::GET, "/members/{id}/labels", members::labels)
        .add(Method::PUT, "/members/{id}/labels", members::set_labels)
        .add(
            Method::GET,
            "/members/{id}/mailbox-labels",
            members::mailbox_labels,
        )
        .add(Method::GET, "/links", links::list)
        .add(Method::GET, "/links/{id}", links::show)
        .add(Method::POST, "/links/start", links::start_many)
        .add(Method::POST, "/links/unlink", links::unlink_many)
        .add(Method::POST, "/links/retry", links::retry_many)
        .add(Method::POST, "/links/{id}/start", links::start_one)
        .add(Method::POST, "/links/{id}/unlink", links::unlink_one)
        .add(Method::POST, "/links/{id}/retry", links::retry_one)
        .add(Method::GET, "/progress", progress::organization)
        .add(Method::GET, "/activities", reads::activities)
        .add(Method::GET, "/contacts", reads::contacts)
        .add(Method::GET, "/companies", reads::companies)
        .add(Method::GET, "/relationships", reads::relationships)
        .add(Method::GET, "/meetings", meetings::list)
        .add(Method::GET, "/meetings/upcoming", meetings::upcoming)
        .add(Method::GET, "/audit", reads::audit)
        .add(Method::GET, "/tokens", tokens::list)
        .add(Method::POST, "/tokens", tokens::create)
        .add(Method::DELETE, "/tokens/{id}", tokens::revoke)
        .add(Method::GET, "/accounts", accounts::list)
        .add(Method::POST, "/accounts", accounts::create)
        .add(Method::PATCH, "/accounts/{id}", accounts::update)
        .add(Method::DELETE, "/accounts/{id}", accounts::remove)
        .add(
            Method::POST,
            "/accounts/{id}/password-reset",
            accounts::reset_password,
        )
}

/// The API's router; unknown paths and methods answer in the API's JSON error shape.
/// Every answer, errors included, carries `Cache-Control: no-store`: they hold tenant
/// data (and once a token's secret) that no cache may keep.
pub fn router() -> Router<AppState> {
    build()
        .router
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_method)
        .layer(axum::middleware::map_response(no_store))
}

async fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("no such API route: see /api/v1/openapi.json")
}

async fn unknown_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method: see /api/v1/openapi.json",
    )
}

/// Every route [`router`] serves.
pub fn routes() -> Vec<ApiRoute> {
    build().list
}

/// Page sizes: the default, and the most a caller may ask for.
pub(crate) const DEFAULT_PAGE: usize = 100;
pub(crate) const MAX_PAGE: usize = 1000;

/// The page size asked for, or the default; outside 1..=[`MAX_PAGE`] it is refused
/// (400 `invalid_query`) rather than quietly changed, as the OpenAPI document says.
pub(crate) fn page_size(asked: Option<usize>) -> Result<usize, ApiError> {
    match asked {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}, not {limit}"),
        )),
    }
}
