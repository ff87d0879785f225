//! The audit log: who did what, when, newest first.

use super::error::PageError;
use super::layout::{self, Section, empty, time};
use super::session::Admin;
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::{Markup, html};
use serde::Deserialize;

const DEFAULT_LIMIT: i64 = 200;
const MAX_LIMIT: i64 = 2_000;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
}

pub async fn page(
    State(state): State<AppState>,
    Admin(viewer): Admin,
    Query(query): Query<AuditQuery>,
) -> Result<Html<String>, PageError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let events = state.store().audit_events(&viewer.tenant, limit).await?;
    let body = html! {
        section.card {
            @if events.is_empty() { (empty("Nothing has happened yet.")) } @else {
                table.data #audit {
                    thead { tr { th { "When" } th { "Who" } th { "What" } th { "Subject" } th { "Detail" } } }
                    tbody {
                        @for event in &events {
                            tr {
                                td.nowrap { (time(Some(event.at_ms))) }
                                td { (event.actor) }
                                td { code { (event.action) } }
                                td { (event.subject.as_deref().unwrap_or("")) }
                                td.detail { (detail(&event.detail)) }
                            }
                        }
                    }
                }
                @if events.len() as i64 == limit {
                    p.muted { "Showing the latest " (limit) ". " a href={ "/audit?limit=" (MAX_LIMIT) } { "Show more" } }
                }
            }
        }
    };
    Ok(layout::page(
        &viewer,
        Section::Audit,
        "Audit log",
        &[],
        body,
    ))
}

/// An event's detail as `key: value` pairs (nested values as compact JSON).
fn detail(value: &serde_json::Value) -> Markup {
    let Some(object) = value.as_object() else {
        return html! { (value.to_string()) };
    };
    html! {
        @for (key, value) in object {
            @if !value.is_null() {
                span.kv {
                    span.k { (key) } " "
                    @match value.as_str() {
                        Some(text) => (text),
                        None => (value.to_string()),
                    }
                }
            }
        }
    }
}
