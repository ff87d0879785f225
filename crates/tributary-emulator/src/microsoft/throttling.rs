//! Graph's rendering of the kit's neutral refusals: 429 `ApplicationThrottled` with
//! `Retry-After` (Outlook's per app and mailbox limits).

use super::envelope::GraphError;
use crate::kit::{Refusal, RefusalKind};
use axum::http::StatusCode;

pub fn throttled(refusal: &Refusal) -> GraphError {
    let message = match refusal.kind {
        RefusalKind::Concurrency => "Application is over its MailboxConcurrency limit.",
        RefusalKind::Window => "Application is over its MailboxRequests limit.",
        RefusalKind::Shared => "Application is over its request limit.",
    };
    let mut error = GraphError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "ApplicationThrottled",
        message,
    );
    error.retry_after = Some(refusal.retry_after_seconds());
    error
}

/// The limiter key of an app and a mailbox.
pub fn key(client_id: &str, user_id: &str) -> String {
    format!("{client_id}/{user_id}")
}
