//! Signing in and out, the session cookie, and who is looking: the [`Viewer`]
//! extractor (any signed-in user) and [`Admin`] (administrators only).
//!
//! The session cookie holds a random token; the store keeps only its hash, with the
//! session's CSRF token, which every form must echo. The sign-in form itself is
//! protected by a double-submit token (a short-lived cookie equal to a form field), so
//! no other site can sign a browser into an account of its choosing.

use super::error::PageError;
use super::forms::{CSRF_FIELD, SignedForm, constant_time_eq};
use super::layout;
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rand::RngCore;
use tributary_store::TenantId;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tributary_session";
/// The sign-in form's double-submit cookie.
pub const SIGNIN_COOKIE: &str = "tributary_signin";

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
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
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

/// A `Set-Cookie` value: HTTP-only, same-site lax, `Secure` when configured;
/// `max_age` zero clears it.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if state.config.secure_cookies {
        text.push_str("; Secure");
    }
    // Names and values are our own ASCII (hex tokens).
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A fresh random token, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `/`: the admin's users page, a member's own page.
pub async fn home(viewer: Viewer) -> Redirect {
    if viewer.is_admin() {
        Redirect::to("/users")
    } else {
        Redirect::to("/me")
    }
}

pub async fn signin_page(State(state): State<AppState>) -> Response {
    signin_form(&state, StatusCode::OK, None)
}

fn signin_form(state: &AppState, status: StatusCode, problem: Option<&str>) -> Response {
    let token = random_token();
    let page = layout::bare(
        "Sign in",
        html! {
            div.card.narrow.signin {
                h1 { "Sign in to Tributary" }
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
    let cookie = set_cookie(state, SIGNIN_COOKIE, &token, Some(900));
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
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
    headers: HeaderMap,
    axum::Form(form): axum::Form<SigninForm>,
) -> Result<Response, PageError> {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if !constant_time_eq(form.csrf.as_bytes(), expected.as_bytes()) {
        // Nothing is checked: a fresh form (and token) is all the user gets.
        return Ok(signin_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or did not come from this console: sign in again."),
        ));
    }
    let Some(opened) = accounts::sign_in(&state, form.email.trim(), &form.password).await? else {
        return Ok(signin_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That email and password do not match an account."),
        ));
    };
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &opened, None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SIGNIN_COOKIE, "", Some(0)),
    );
    Ok(response)
}

pub async fn signout(
    State(state): State<AppState>,
    form: SignedForm,
) -> Result<Response, PageError> {
    accounts::sign_out(&state, &form.viewer).await?;
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", Some(0)),
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

/// The bridge to the store's console accounts (passwords through [`crate::auth`]).
mod accounts {
    use super::{Role, Viewer};
    use crate::AppState;
    use crate::console::error::PageError;
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

    /// Checks the password and opens a session: the cookie value.
    pub async fn sign_in(
        state: &AppState,
        email: &str,
        password: &str,
    ) -> Result<Option<String>, PageError> {
        let store = state.store();
        let Some(user) = crate::auth::authenticate(store, email, password).await? else {
            return Ok(None);
        };
        let session = store
            .create_session(&user.tenant, user.id, SESSION_TTL_MS)
            .await
            .map_err(|error| match error {
                AccountError::Store(store) => PageError::Store(store),
                other => PageError::BadRequest(other.to_string()),
            })?;
        Ok(Some(session.token))
    }

    pub async fn sign_out(state: &AppState, viewer: &Viewer) -> Result<(), PageError> {
        Ok(state.store().delete_session(&viewer.token).await?)
    }

    pub async fn admin_emails(
        state: &AppState,
        tenant: &TenantId,
    ) -> Result<Vec<String>, PageError> {
        Ok(state
            .store()
            .users(tenant)
            .await?
            .into_iter()
            .filter(|user| user.role == MemberRole::Admin)
            .map(|user| user.email)
            .collect())
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
