//! The admin console: server-rendered pages (maud), a session cookie, a CSRF token in
//! every form, and two roles. An admin manages the tenant; a member sees only their own
//! mailbox settings. Every page reads and writes through the signed-in tenant only.

mod accounts;
mod activity;
mod assets;
mod audit;
pub mod banner;
mod disconnect;
mod error;
mod flash;
mod forms;
mod help;
mod layout;
mod me;
mod meetings;
mod policy;
mod session;
mod setup;
pub(crate) mod setup_microsoft;
mod users;

pub use audit::sentence as audit_sentence;
pub use session::{SESSION_COOKIE, SIGNIN_COOKIE};

use crate::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(session::home))
        .route("/signin", get(session::signin_page).post(session::signin))
        .route("/signout", post(session::signout))
        .route("/setup", get(setup::page))
        .route("/setup/key", post(setup::upload_key))
        .route("/setup/test", post(setup::test_connection))
        .route("/setup/capture", post(setup::set_capture))
        .route("/setup/google", get(setup::google_page))
        .route(
            disconnect::PATH,
            get(disconnect::confirm_page).post(disconnect::disconnect),
        )
        .route(setup_microsoft::PAGE, get(setup_microsoft::page))
        .route("/setup/microsoft/app", post(setup_microsoft::save_app))
        .route(
            "/setup/microsoft/test",
            post(setup_microsoft::test_connection),
        )
        .route(
            setup_microsoft::CONSENT_RETURN,
            get(setup_microsoft::consent_return),
        )
        .route("/users", get(users::page).post(users::act))
        .route("/users/rows", get(users::rows))
        .route("/users/banner", get(users::banner_slot))
        .route("/users/rebuild", post(users::rebuild))
        .route("/policy", get(policy::page).post(policy::save))
        .route("/policy/new-users", post(policy::save_auto_connect))
        .route(
            "/members/{email}/labels",
            get(me::member_labels_page).post(me::save_member_labels),
        )
        .route("/me", get(me::page).post(me::save_labels))
        .route("/companies", get(activity::companies))
        .route("/companies/{domain}", get(activity::company))
        .route("/contacts/{address}", get(activity::contact))
        .route("/members/{email}", get(activity::member))
        .route("/search", get(activity::search))
        .route("/help/relationship-score", get(help::relationship_score))
        .route("/audit", get(audit::page))
        .route("/accounts", get(accounts::page).post(accounts::act))
        .route("/static/{file}", get(assets::serve))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::map_response(security_headers))
}

/// Pages load only this origin's script and style, cannot be framed (clickjacking),
/// post forms only here, and are not kept in shared caches.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
