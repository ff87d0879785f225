//! The page shell (header, navigation, notices) and the small pieces pages share:
//! status badges, times, counts.

use super::session::Viewer;
use axum::response::Html;
use maud::{DOCTYPE, Markup, html};
use tributary_store::LinkStatus;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Setup,
    Users,
    Policy,
    Companies,
    Audit,
    Accounts,
    Me,
    /// A member's own page (relationships and timeline), as members reach it.
    Relationships,
}

/// A message at the top of a page after an action.
#[derive(Debug, Clone)]
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Success,
    Warning,
    Error,
}

impl Notice {
    pub fn success(text: impl Into<String>) -> Self {
        Notice {
            kind: NoticeKind::Success,
            text: text.into(),
        }
    }

    pub fn warning(text: impl Into<String>) -> Self {
        Notice {
            kind: NoticeKind::Warning,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Notice {
            kind: NoticeKind::Error,
            text: text.into(),
        }
    }

    fn class(&self) -> &'static str {
        match self.kind {
            NoticeKind::Success => "notice success",
            NoticeKind::Warning => "notice warning",
            NoticeKind::Error => "notice error",
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Tributary" }
            link rel="stylesheet" href="/static/console.css";
            script src="/static/console.js" defer {}
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body.bare {
                    div.brand-bar { span.logo { "≋" } " Tributary" }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A signed-in page: navigation for the viewer's role, the notices, then `body`.
pub fn page(
    viewer: &Viewer,
    section: Section,
    title: &str,
    notices: &[Notice],
    body: Markup,
) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header.topbar {
                        a.brand href="/" { span.logo { "≋" } " Tributary" }
                        nav { (navigation(viewer, section)) }
                        div.who {
                            span.user { (viewer.email) }
                            span.role { (viewer.role_name()) }
                            form method="post" action="/signout" {
                                (csrf_field(viewer))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                    main {
                        h1 { (title) }
                        @for notice in notices {
                            div class=(notice.class()) role="status" { (notice.text) }
                        }
                        (body)
                    }
                }
            }
        }
        .into_string(),
    )
}

fn navigation(viewer: &Viewer, current: Section) -> Markup {
    let entries: Vec<(Section, String, &str)> = if viewer.is_admin() {
        vec![
            (Section::Setup, "/setup".into(), "Setup"),
            (Section::Users, "/users".into(), "Users"),
            (Section::Policy, "/policy".into(), "Policy"),
            (Section::Companies, "/companies".into(), "Companies"),
            (Section::Audit, "/audit".into(), "Audit log"),
            (Section::Accounts, "/accounts".into(), "Accounts"),
        ]
    } else {
        // A member's own CRM: their relationships (their page, reached by the address
        // they sign in with), the companies they know, and search over those.
        vec![
            (Section::Me, "/me".into(), "My mailbox"),
            (
                Section::Relationships,
                link("members", &viewer.email),
                "My relationships",
            ),
            (Section::Companies, "/companies".into(), "Companies"),
        ]
    };
    html! {
        @for (section, href, label) in &entries {
            a href=(href) class=[(*section == current).then_some("current")] { (label) }
        }
        form.search method="get" action="/search" {
            input type="search" name="q" placeholder="Search…" title="Search by address, name or domain" aria-label="Search";
        }
    }
}

/// The hidden field every POST form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A link status in colour and words.
pub fn status_badge(status: LinkStatus) -> Markup {
    html! { span class={ "badge status-" (status.as_str()) } { (status_words(status)) } }
}

pub fn status_words(status: LinkStatus) -> &'static str {
    match status {
        LinkStatus::Pending => "Pending",
        LinkStatus::Syncing => "Syncing",
        LinkStatus::Idle => "Idle · up to date",
        LinkStatus::AuthenticationError => "Authentication error",
        LinkStatus::Unauthorized => "Unauthorized",
        LinkStatus::LinkageError => "Linkage error",
        LinkStatus::Unlinked => "Unlinked",
    }
}

/// A Unix-milliseconds time as UTC text.
pub fn time(ms: Option<i64>) -> Markup {
    let Some(ms) = ms else {
        return html! { span.muted { "never" } };
    };
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => html! {
            time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
        },
        None => html! { span.muted { "—" } },
    }
}

/// A Unix-milliseconds day as UTC text (narrow table columns).
pub fn date(ms: i64) -> Markup {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(at) => html! {
            time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M UTC")) { (at.format("%Y-%m-%d")) }
        },
        None => html! { span.muted { "—" } },
    }
}

/// `count` and the noun, singular or plural.
pub fn plural(count: i64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The console path `/{section}/{key}`, the key percent-encoded (addresses may hold
/// `/`, `?` or `#`).
pub fn link(section: &str, key: &str) -> String {
    let mut path = format!("/{section}/");
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"@.-_~+".contains(&byte) {
            path.push(char::from(byte));
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

/// A copy-to-clipboard button for the element with id `target`.
pub fn copy_button(target: &str) -> Markup {
    html! {
        button.copy type="button" data-copy=(target) { "Copy" }
    }
}

/// An empty-state line.
pub fn empty(text: &str) -> Markup {
    html! { p.empty { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_what_would_end_a_path_segment() {
        assert_eq!(
            link("contacts", "ann+news@acme.com"),
            "/contacts/ann+news@acme.com"
        );
        assert_eq!(
            link("contacts", "a/b?c#d@x.y"),
            "/contacts/a%2Fb%3Fc%23d@x.y"
        );
        assert_eq!(link("contacts", "zoë@x.y"), "/contacts/zo%C3%AB@x.y");
    }
}
