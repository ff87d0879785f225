//! What a page answers when it cannot show what was asked: a small page with the
//! status and what to do. Internal failures are logged with their detail and shown
//! without it.

use super::layout;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tributary_store::StoreError;
use tributary_sync::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("this page is for administrators; members can open their own settings only")]
    AdminOnly,
    #[error("the form expired or did not come from this console: reload the page and try again")]
    Csrf,
    #[error("{0}")]
    NotFound(String),
    #[error(
        "this address only takes a form's answer: open the page from the console and use its buttons"
    )]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::AdminOnly | PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PageError::Store(_) | PageError::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the page says, as a sentence: internal detail stays in the log.
    fn public_message(&self) -> String {
        let text = match self {
            PageError::Store(_) | PageError::Runtime(_) => {
                "something went wrong on the server; the details are in its log".to_owned()
            }
            other => other.to_string(),
        };
        let mut chars = text.chars();
        let Some(first) = chars.next() else {
            return text;
        };
        format!("{}{}.", first.to_uppercase(), chars.as_str())
    }
}

/// The console's answer to an address it does not have.
pub async fn not_found() -> PageError {
    PageError::NotFound("there is no page at this address".to_owned())
}

/// The console's answer to a method an address does not take (opening a form's target,
/// such as `/users/rebuild`, in the address bar).
pub async fn method_not_allowed() -> PageError {
    PageError::MethodNotAllowed
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // Debug-formatted: user text in the error cannot start a log line of its own.
            tracing::error!(error = ?self.to_string(), "console page failed");
        }
        let page = layout::bare(
            status.canonical_reason().unwrap_or("Error"),
            maud::html! {
                div.card.narrow {
                    h1 { (status.as_u16()) " · " (status.canonical_reason().unwrap_or("Error")) }
                    p { (self.public_message()) }
                    p { a #back href="/" { "Back to the console" } }
                }
            },
        );
        (status, page).into_response()
    }
}
