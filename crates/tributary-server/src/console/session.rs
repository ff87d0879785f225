//! Signing in and out, the session cookie, and who is looking: the [`Viewer`]
//! extractor (any signed-in user) and [`Admin`] (administrators only).
//!
//! The session cookie holds a random token; the store keeps only its hash, with the
//! session's CSRF token, which every form must echo. The sign-in form itself is
//! protected by a double-submit token (a short-lived cookie equal to a form field), so
//! no other site can sign a browser into an account of its choosing. Cookie names and
//! flags come from [`crate::cookies::CookiePolicy`].
//!
//! Failed sign-ins are throttled per email address typed and per client address
//! ([`crate::throttle`]): once either has spent its budget, attempts are answered 429
//! without looking at the password.

use super::error::PageError;
use super::forms::{CSRF_FIELD, SignedForm, constant_time_eq};
use super::layout;
use crate::AppState;
use crate::cookies::CookiePolicy;
use crate::throttle::{ClientAddress, Throttled};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rand::RngCore;
use tributary_store::TenantId;

pub use crate::cookies::{SESSION_COOKIE, SIGNIN_COOKIE};

/// The console roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Member,
}

/// The signed-in user a request comes from.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub tenant: TenantId,
    pub email: String,
    pub role: Role,
    /// The session's CSRF token: every form carries it.
    pub csrf: String,
    /// The session cookie's value (to end the session).
    pub(super) token: String,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn role_name(&self) -> &'static str {
        match self.role {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// This viewer when an administrator; the "admins only" page otherwise.
    pub fn require_admin(self) -> Result<Viewer, PageError> {
        if self.is_admin() {
            Ok(self)
        } else {
            Err(PageError::AdminOnly)
        }
    }
}

/// A signed-in administrator.
#[derive(Debug, Clone)]
pub struct Admin(pub Viewer);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(token) = cookie(&parts.headers, cookies(state).session_cookie()) else {
            return Err(to_signin());
        };
        match accounts::session(state, token).await {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => Err(to_signin()),
            Err(error) => Err(error.into_response()),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        viewer
            .require_admin()
            .map(Admin)
            .map_err(IntoResponse::into_response)
    }
}

fn to_signin() -> Response {
    Redirect::to("/signin").into_response()
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// This console's cookie names and flags.
fn cookies(state: &AppState) -> CookiePolicy {
    state.config.cookies()
}

/// A fresh random token, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `/`: the admin's users page (the Google setup while nothing is connected: a new
/// admin starts there), a member's own page.
pub async fn home(State(state): State<AppState>, viewer: Viewer) -> Result<Redirect, PageError> {
    if !viewer.is_admin() {
        return Ok(Redirect::to("/me"));
    }
    let connected = state.runtime.google_setup(&viewer.tenant).await?.is_some();
    Ok(Redirect::to(if connected { "/users" } else { "/setup" }))
}

pub async fn signin_page(State(state): State<AppState>) -> Response {
    // A store failure here must not hide the form: the hint is only a help.
    let first_run = state
        .store()
        .installation()
        .await
        .is_ok_and(|installation| installation.needs_first_admin());
    signin_form_page(&state, StatusCode::OK, None, first_run)
}

fn signin_form(state: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    signin_form_page(state, status, problem, false)
}

/// What a fresh installation's sign-in page says: no account exists, and how the
/// server's operator creates the first admin.
fn first_admin_hint() -> maud::Markup {
    html! {
        div.notice.warning #first-run role="status" {
            p { strong { "No account exists yet." } " Create the first admin on the server, with the data directory (or database) "
                code { "tributary serve" } " uses:" }
            p { code { "tributary admin create-tenant acme --name \"Acme Inc\" --data-dir DIR" } }
            p { code { "tributary admin create-user acme you@acme.com --role admin --data-dir DIR" } }
            p.muted { "The password is printed once; then sign in here and follow the setup (Google Workspace or Microsoft 365)." }
        }
    }
}

fn signin_form_page(
    state: &AppState,
    status: StatusCode,
    problem: Option<&str>,
    first_run: bool,
) -> Response {
    let token = random_token();
    let page = layout::bare(
        "Sign in",
        html! {
            div.card.narrow.signin {
                h1 { "Sign in to Tributary" }
                @if first_run { (first_admin_hint()) }
                @if let Some(problem) = problem {
                    div.notice.error role="alert" { (problem) }
                }
                form.stack method="post" action="/signin" {
                    input type="hidden" name=(CSRF_FIELD) value=(token);
                    label {
                        span { "Email" }
                        input type="email" name="email" autocomplete="username" required autofocus;
                    }
                    label {
                        span { "Password" }
                        input type="password" name="password" autocomplete="current-password" required;
                    }
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    );
    let policy = cookies(state);
    let cookie = policy.set_cookie(policy.signin_cookie(), &token, Some(900));
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

/// The sign-in form again, 429, with when to try again (page and `Retry-After`).
fn throttled_form(state: &AppState, throttled: Throttled) -> Response {
    let seconds = throttled.retry_after_secs();
    let problem = format!("Too many sign-in attempts; try again in {seconds} s.");
    let mut response = signin_form(state, StatusCode::TOO_MANY_REQUESTS, Some(&problem));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[derive(Debug, serde::Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn signin(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SigninForm>,
) -> Result<Response, PageError> {
    let policy = cookies(&state);
    let expected = cookie(&headers, policy.signin_cookie()).unwrap_or_default();
    if !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        // Nothing is checked: a fresh form (and token) is all the user gets.
        return Ok(signin_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or did not come from this console: sign in again."),
        ));
    }
    let email = form.email.trim();
    let opened = match accounts::sign_in(&state, email, &form.password, address).await? {
        Opened::Session(token) => token,
        Opened::Throttled(throttled) => return Ok(throttled_form(&state, throttled)),
        Opened::Refused => {
            return Ok(signin_form(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("That email and password do not match an account."),
            ));
        }
    };
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        policy.set_cookie(policy.session_cookie(), &opened, None),
    );
    headers.append(
        header::SET_COOKIE,
        policy.set_cookie(policy.signin_cookie(), "", Some(0)),
    );
    Ok(response)
}

pub async fn signout(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    accounts::sign_out(&state, &form.viewer).await?;
    let mut response = Redirect::to("/signin").into_response();
    let policy = cookies(&state);
    response.headers_mut().append(
        header::SET_COOKIE,
        policy.set_cookie(policy.session_cookie(), "", Some(0)),
    );
    Ok(response)
}

/// The addresses of the tenant's console admins: who is told when capture turns on.
pub async fn tenant_admin_emails(
    state: &AppState,
    tenant: &TenantId,
) -> Result<Vec<String>, PageError> {
    accounts::admin_emails(state, tenant).await
}

/// What a sign-in attempt opened.
enum Opened {
    /// A session: the cookie value.
    Session(String),
    Refused,
    Throttled(Throttled),
}

/// The bridge to the store's console accounts (passwords through [`crate::auth`]).
mod accounts {
    use super::{Opened, Role, Viewer};
    use crate::AppState;
    use crate::auth::SignIn;
    use crate::console::error::PageError;
    use std::net::IpAddr;
    use tributary_store::{AccountError, MemberRole, TenantId};

    /// How long a sign-in lasts.
    const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

    /// The signed-in user of session `token`, if it is live.
    pub async fn session(state: &AppState, token: &str) -> Result<Option<Viewer>, PageError> {
        let Some(session) = state.store().session_by_token(token).await? else {
            return Ok(None);
        };
        Ok(Some(Viewer {
            tenant: session.user.tenant,
            email: session.user.email,
            role: match session.user.role {
                MemberRole::Admin => Role::Admin,
                MemberRole::Member => Role::Member,
            },
            csrf: session.csrf_token,
            token: token.to_owned(),
        }))
    }

    /// Checks the password (when the throttle lets it be checked) and opens a session.
    pub async fn sign_in(
        state: &AppState,
        email: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<Opened, PageError> {
        let store = state.store();
        let user =
            match crate::auth::sign_in(store, &state.throttle, email, password, address).await? {
                SignIn::Accepted(user) => user,
                SignIn::Refused => return Ok(Opened::Refused),
                SignIn::Throttled(throttled) => return Ok(Opened::Throttled(throttled)),
            };
        let session = store
            .create_session(&user.tenant, user.id, SESSION_TTL_MS)
            .await
            .map_err(|error| match error {
                AccountError::Store(store) => PageError::Store(store),
                other => PageError::BadRequest(other.to_string()),
            })?;
        Ok(Opened::Session(session.token))
    }

    pub async fn sign_out(state: &AppState, viewer: &Viewer) -> Result<(), PageError> {
        Ok(state.store().delete_session(&viewer.token).await?)
    }

    pub async fn admin_emails(
        state: &AppState,
        tenant: &TenantId,
    ) -> Result<Vec<String>, PageError> {
        Ok(state.store().active_admin_emails(tenant).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers_and_pairs() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; tributary_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "missing"), None);
        headers.append(header::COOKIE, HeaderValue::from_static("empty="));
        assert_eq!(cookie(&headers, "empty"), None);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
