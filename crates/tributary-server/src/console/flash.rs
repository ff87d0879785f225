//! Post/Redirect/Get: a form's handler does its work, keeps what the page should say
//! about it here, and answers 303 to the page with `?flash=<id>`. The page takes the
//! outcome once, so a reload (or Back) shows the plain page and repeats nothing.
//!
//! Outcomes are kept in this process's memory, for the session that posted only, for a
//! few minutes: the URL carries a random id, never the text (which may hold what a user
//! typed, or a one-time password). Behind several console processes without sticky
//! sessions an outcome may be missed: the action is still done and the page shows its
//! result (the audit log has it too).

use super::layout::Notice;
use super::session::{Viewer, random_token};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};
use tributary_sync::ConnectionCheck;

/// The query parameter naming an outcome.
pub const FLASH_PARAM: &str = "flash";

/// How long an outcome waits for its page.
const TTL: Duration = Duration::from_secs(300);

/// Outcomes kept at most; the oldest go first (a page that never came).
const MAX_KEPT: usize = 10_000;

/// What a page shows once after a form was posted.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub notices: Vec<Notice>,
    /// The setup page's connection test result.
    pub check: Option<ConnectionCheck>,
    /// A password generated for (account email, password): shown once.
    pub password: Option<(String, String)>,
}

impl Outcome {
    pub fn notice(notice: Notice) -> Self {
        Outcome {
            notices: vec![notice],
            ..Outcome::default()
        }
    }

    pub fn notices(notices: Vec<Notice>) -> Self {
        Outcome {
            notices,
            ..Outcome::default()
        }
    }
}

struct Kept {
    session: String,
    at: Instant,
    outcome: Outcome,
}

static KEPT: LazyLock<Mutex<HashMap<String, Kept>>> = LazyLock::new(Mutex::default);

fn kept() -> std::sync::MutexGuard<'static, HashMap<String, Kept>> {
    // A panic while holding the lock cannot leave the map half-changed.
    KEPT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Keeps `outcome` for `viewer`'s session and answers 303 to `path` (which may carry a
/// query of its own) with the outcome's id.
pub fn redirect(viewer: &Viewer, path: &str, outcome: Outcome) -> Response {
    let id = random_token();
    {
        let mut kept = kept();
        let now = Instant::now();
        kept.retain(|_, entry| now.duration_since(entry.at) < TTL);
        if kept.len() >= MAX_KEPT
            && let Some(oldest) = kept
                .iter()
                .min_by_key(|(_, entry)| entry.at)
                .map(|(id, _)| id.clone())
        {
            kept.remove(&oldest);
        }
        kept.insert(
            id.clone(),
            Kept {
                session: viewer.token.clone(),
                at: now,
                outcome,
            },
        );
    }
    let separator = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{separator}{FLASH_PARAM}={id}")).into_response()
}

/// The outcome `id` names, once, if it was kept for `viewer`'s session.
pub fn take(viewer: &Viewer, id: Option<&str>) -> Outcome {
    let Some(id) = id else {
        return Outcome::default();
    };
    let mut kept = kept();
    match kept.get(id) {
        Some(entry) if entry.session == viewer.token && entry.at.elapsed() < TTL => kept
            .remove(id)
            .map(|entry| entry.outcome)
            .unwrap_or_default(),
        _ => Outcome::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::session::Role;
    use tributary_store::TenantId;

    fn viewer(token: &str) -> Viewer {
        Viewer {
            tenant: TenantId("t".into()),
            email: "ana@example.com".into(),
            role: Role::Admin,
            csrf: "c".into(),
            token: token.into(),
        }
    }

    fn flash_id(response: &Response) -> String {
        let location = response.headers()["location"].to_str().unwrap();
        location.split("flash=").nth(1).unwrap().to_owned()
    }

    #[test]
    fn an_outcome_is_shown_once_and_to_its_session_only() {
        let ana = viewer("session-a");
        let response = redirect(
            &ana,
            "/users?status=idle",
            Outcome::notice(Notice::success("done")),
        );
        assert_eq!(response.status(), 303);
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with("/users?status=idle&flash="),
            "{location}"
        );
        let id = flash_id(&response);
        assert!(take(&viewer("session-b"), Some(&id)).notices.is_empty());
        assert_eq!(take(&ana, Some(&id)).notices[0].text, "done");
        assert!(take(&ana, Some(&id)).notices.is_empty());
        assert!(take(&ana, None).notices.is_empty());
    }
}
