//! Relationship rows, recomputed for one (member, contact) pair over every activity the
//! pair shares, so the order in which pages and sightings arrive does not matter.
//!
//! Counts and first/last come from SQL aggregates (the capture contract's definitions);
//! the score replays the same activities through core's `RelationshipBook`, so the store
//! and core agree on the formula.

use crate::error::StoreError;
use sqlx::{Any, AssertSqlSafe, Row, Transaction};
use tributary_core::{
    AddressClass, Contact, EmailAddress, Participant, RelationshipBook, Role, Touch,
};

/// The activities ($2 member, $3 contact) share in tenant $1, one row each, with who
/// sent and who received. Driven from the contact's participant rows: the unary `+`
/// keeps SQLite from scanning every activity of the member instead (a member is on far
/// more activities than any one contact).
const SHARED: &str = "
    SELECT c.activity_id,
        MAX(CASE WHEN m.role = 'from' THEN 1 ELSE 0 END) AS member_from,
        MAX(CASE WHEN m.role <> 'from' THEN 1 ELSE 0 END) AS member_recipient,
        MAX(CASE WHEN c.role = 'from' THEN 1 ELSE 0 END) AS contact_from,
        MAX(CASE WHEN c.role <> 'from' THEN 1 ELSE 0 END) AS contact_recipient
    FROM activity_participants c
    JOIN activity_participants m ON m.tenant_id = c.tenant_id AND m.activity_id = c.activity_id
    WHERE c.tenant_id = $1 AND c.contact_id = $3 AND +m.member_id = $2
    GROUP BY c.activity_id";

/// The capture contract's relationship counts over the shared activities that have a
/// time (as core's `Touch` requires).
fn aggregate_sql() -> String {
    format!(
        "SELECT
            COUNT(*) AS total,
            MIN(a.time_ms) AS first_ms,
            MAX(a.time_ms) AS last_ms,
            CAST(COALESCE(SUM(CASE WHEN s.member_from = 1 AND s.contact_recipient = 1
                THEN 1 ELSE 0 END), 0) AS BIGINT) AS sent,
            CAST(COALESCE(SUM(CASE WHEN s.contact_from = 1 AND s.member_recipient = 1
                THEN 1 ELSE 0 END), 0) AS BIGINT) AS received
         FROM ({SHARED}) s
         JOIN activities a ON a.tenant_id = $1 AND a.id = s.activity_id
         WHERE a.time_ms IS NOT NULL"
    )
}

/// Every participant of the shared activities, replayed in (time, dedupe key) order so
/// the float sum is the same whatever order rows were inserted in.
fn shared_participants_sql() -> String {
    format!(
        "SELECT a.id, a.time_ms, a.is_reply, p.address, p.role, mm.email
         FROM ({SHARED}) s
         JOIN activities a ON a.tenant_id = $1 AND a.id = s.activity_id
         JOIN activity_participants p ON p.tenant_id = a.tenant_id AND p.activity_id = a.id
         LEFT JOIN members mm ON mm.tenant_id = p.tenant_id AND mm.id = p.member_id
         WHERE a.time_ms IS NOT NULL
         ORDER BY a.time_ms, a.dedupe_key"
    )
}

pub(crate) async fn recompute_relationship(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: i64,
    contact: i64,
) -> Result<(), StoreError> {
    let row = sqlx::query(AssertSqlSafe(aggregate_sql()))
        .bind(tenant)
        .bind(member)
        .bind(contact)
        .fetch_one(&mut **tx)
        .await?;
    let total: i64 = row.try_get("total")?;
    if total == 0 {
        return Ok(());
    }
    let score = score_at_last(tx, tenant, member, contact).await?;
    sqlx::query(
        "INSERT INTO relationships
             (tenant_id, member_id, contact_id, first_ms, last_ms, sent, received, total, score_at_last)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, member_id, contact_id) DO UPDATE SET
             first_ms = excluded.first_ms, last_ms = excluded.last_ms,
             sent = excluded.sent, received = excluded.received, total = excluded.total,
             score_at_last = excluded.score_at_last",
    )
    .bind(tenant)
    .bind(member)
    .bind(contact)
    .bind(row.try_get::<i64, _>("first_ms")?)
    .bind(row.try_get::<i64, _>("last_ms")?)
    .bind(row.try_get::<i64, _>("sent")?)
    .bind(row.try_get::<i64, _>("received")?)
    .bind(total)
    .bind(score)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One shared activity, rebuilt as core sees it.
struct SharedActivity {
    time_ms: i64,
    is_reply: bool,
    participants: Vec<Participant>,
}

/// The pair's decayed score as of its last touch, by core's formula.
async fn score_at_last(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: i64,
    contact: i64,
) -> Result<f64, StoreError> {
    let member_email: String =
        sqlx::query("SELECT email FROM members WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(member)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    let contact_address: String =
        sqlx::query("SELECT address FROM contacts WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(contact)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    let (Ok(member_email), Ok(contact_address)) = (
        EmailAddress::parse(&member_email),
        EmailAddress::parse(&contact_address),
    ) else {
        return Ok(0.0);
    };
    let rows = sqlx::query(AssertSqlSafe(shared_participants_sql()))
        .bind(tenant)
        .bind(member)
        .bind(contact)
        .fetch_all(&mut **tx)
        .await?;
    let mut activities: Vec<(i64, SharedActivity)> = Vec::new();
    for row in rows {
        let id: i64 = row.try_get(0)?;
        if activities.last().is_none_or(|(last, _)| *last != id) {
            let activity = SharedActivity {
                time_ms: row.try_get(1)?,
                is_reply: row.try_get::<i64, _>(2)? != 0,
                participants: Vec::new(),
            };
            activities.push((id, activity));
        }
        let Some((_, activity)) = activities.last_mut() else {
            continue;
        };
        if let Some(participant) = participant(
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            &contact_address,
        ) {
            activity.participants.push(participant);
        }
    }
    let contacts = [Contact {
        address: contact_address.clone(),
        company: None,
    }];
    let mut book = RelationshipBook::new();
    for (_, activity) in &activities {
        book.record(&Touch {
            time_ms: activity.time_ms,
            is_reply: activity.is_reply,
            participants: &activity.participants,
            contacts: &contacts,
        });
    }
    Ok(book
        .get(&member_email, &contact_address)
        .map_or(0.0, |stats| stats.score_at_last))
}

/// A stored participant as core's `Participant`. Only the member's identity and the
/// contact's address matter to the score; other addresses count as internal or external
/// only for the audience size, which does not depend on their class.
fn participant(
    address: String,
    role: String,
    member_email: Option<String>,
    contact: &EmailAddress,
) -> Option<Participant> {
    let address = EmailAddress::parse(&address).ok()?;
    let role = match role.as_str() {
        "from" => Role::From,
        "to" => Role::To,
        "cc" => Role::Cc,
        "bcc" => Role::Bcc,
        _ => return None,
    };
    let class = match member_email.map(|email| EmailAddress::parse(&email)) {
        Some(Ok(member)) => AddressClass::Member { member },
        _ if address == *contact => AddressClass::External,
        _ => AddressClass::Internal,
    };
    Some(Participant {
        address,
        name: None,
        role,
        class,
    })
}
