//! The audit log, paged and filtered in SQL: newest first by (time, id), keyset pages,
//! so reading the thousandth page costs what the first does. People's actions and the
//! engine's own status changes ([`SYSTEM_ACTOR`]) are told apart here, since the engine
//! writes many more rows than people do and would bury them.

use crate::api_reads::{Bindings, contains, split_page};
use crate::error::StoreError;
use crate::links::{AuditEvent, SYSTEM_ACTOR};
use crate::store::{Store, TenantId};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Whose events to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuditActors {
    /// Every actor but the engine: what people did (the default view).
    #[default]
    People,
    /// The engine's own changes only.
    System,
    /// Everyone.
    All,
}

impl AuditActors {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "people" => AuditActors::People,
            "system" => AuditActors::System,
            "all" => AuditActors::All,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditActors::People => "people",
            AuditActors::System => "system",
            AuditActors::All => "all",
        }
    }
}

/// Which audit events to list; every set field must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actors: AuditActors,
    /// The actor, exactly (compared lowercased).
    pub actor: Option<String>,
    /// The action code, exactly (`account.disabled`), or a family ending in a dot
    /// (`account.`).
    pub action: Option<String>,
    /// Part of the subject (the mailbox, account or member the event is about).
    pub target: Option<String>,
}

/// Where an audit page ended: the next page starts after this event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    pub at_ms: i64,
    pub id: i64,
}

/// An audit event with its row id (the tie-breaker of its time).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub event: AuditEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// Newest first, then by id descending.
    pub entries: Vec<AuditEntry>,
    /// Set when more events may follow.
    pub next: Option<AuditCursor>,
}

impl Store {
    /// One page of the tenant's audit events matching `filter`, after `after`.
    pub async fn audit_page(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        after: Option<AuditCursor>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let limit = limit.max(1);
        let mut b = Bindings::new(tenant);
        let mut conditions = vec!["tenant_id = $1".to_owned()];
        match filter.actors {
            AuditActors::People => conditions.push(format!("actor <> {}", b.text(SYSTEM_ACTOR))),
            AuditActors::System => conditions.push(format!("actor = {}", b.text(SYSTEM_ACTOR))),
            AuditActors::All => {}
        }
        if let Some(actor) = &filter.actor {
            conditions.push(format!("actor = {}", b.text(actor.trim().to_lowercase())));
        }
        if let Some(action) = &filter.action {
            let action = action.trim();
            if action.ends_with('.') {
                // A family: `substr` rather than LIKE, whose `_` is a wildcard.
                let prefix = b.text(action);
                conditions.push(format!("substr(action, 1, length({prefix})) = {prefix}"));
            } else {
                conditions.push(format!("action = {}", b.text(action)));
            }
        }
        if let Some(target) = &filter.target {
            let needle = b.text(target.trim().to_lowercase());
            conditions.push(contains(
                self.backend(),
                "lower(coalesce(subject, ''))",
                &needle,
            ));
        }
        if let Some(after) = after {
            let (at, id) = (b.int(after.at_ms), b.int(after.id));
            conditions.push(format!("(at_ms < {at} OR (at_ms = {at} AND id < {id}))"));
        }
        let sql = format!(
            "SELECT id, at_ms, actor, action, subject, detail FROM audit_events
             WHERE {} ORDER BY at_ms DESC, id DESC LIMIT {}",
            conditions.join(" AND "),
            b.count(limit + 1)
        );
        let rows = b.query(sql).fetch_all(&self.pool).await?;
        let (rows, more) = split_page(rows, limit);
        let entries = rows
            .iter()
            .map(audit_entry)
            .collect::<Result<Vec<_>, _>>()?;
        let next = more
            .then(|| entries.last())
            .flatten()
            .map(|last| AuditCursor {
                at_ms: last.event.at_ms,
                id: last.id,
            });
        Ok(AuditPage { entries, next })
    }

    /// The action codes the tenant's audit log holds, in byte order: the choices of a
    /// filter.
    pub async fn audit_actions(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let rows = Bindings::new(tenant)
            .query("SELECT DISTINCT action FROM audit_events WHERE tenant_id = $1".to_owned())
            .fetch_all(&self.pool)
            .await?;
        let mut actions = rows
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here: PostgreSQL refuses a collated ORDER BY beside DISTINCT.
        actions.sort();
        Ok(actions)
    }
}

fn audit_entry(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let detail: String = row.try_get(5)?;
    Ok(AuditEntry {
        id: row.try_get(0)?,
        event: AuditEvent {
            at_ms: row.try_get(1)?,
            actor: row.try_get(2)?,
            action: row.try_get(3)?,
            subject: row.try_get(4)?,
            detail: serde_json::from_str(&detail)?,
        },
    })
}
