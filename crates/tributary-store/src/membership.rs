//! A member claims its part in mail captured before it was a member.
//!
//! Extraction classifies an address as `member` only when the tenant's directory says so
//! at capture time. A colleague linked later (User Delegation Sync adds new directory
//! users hourly), or an alias added to a member, was captured until then as an
//! `internal` participant without a member, so the member's relationships would miss
//! every message captured from colleagues' mailboxes before. The capture contract (and
//! the emulator's ground truth) assumes everyone was a member from the start: the result
//! must not depend on when a member was added.
//!
//! The claim turns those rows into the member's (`member_id` NULL → the member, `kind`
//! `internal` → `member`: the one change migration `0011` lets triggers permit on
//! participants) and recomputes, in the same transaction, every (member, contact) pair
//! of the activities it claimed. Nothing else depends on the class of a tenant address:
//! direction and the capture decision treat `member` and `internal` alike (both are
//! the tenant's side), and another member's weight with a contact depends on the
//! audience's addresses, not their classes. So those pairs are the only derived rows
//! that change, and after the recompute they equal what a capture with the member
//! present from the start would have written.

use crate::capture::{advisory_locks, relationship_lock_key};
use crate::error::StoreError;
use crate::relationship::recompute_relationship;
use crate::store::{Backend, MemberId, Store, TenantId};
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};

/// The member's unclaimed rows: `internal` participants without a member whose address
/// is one of the member's ($2) addresses in tenant $1. The same condition, row by row,
/// as the trigger of migration `0011` checks.
const UNCLAIMED: &str = "p.tenant_id = $1 AND p.member_id IS NULL AND p.kind = 'internal'
    AND p.address IN (SELECT address FROM member_addresses WHERE tenant_id = $1 AND member_id = $2)";

/// Claims, in `tx`, the rows of every address of `member` (primary and aliases, as
/// `member_addresses` holds them) captured as `internal`, and recomputes the member's
/// relationships with the contacts of the activities it claimed. Returns how many
/// participant rows it claimed; 0 costs one indexed read.
pub(crate) async fn claim_participants(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    tenant: &TenantId,
    member: MemberId,
) -> Result<u64, StoreError> {
    let tenant = tenant.as_str();
    let expected = contacts_by_activity(tx, tenant, member).await?;
    if expected.is_empty() {
        return Ok(0);
    }
    let mut contacts: BTreeSet<i64> = expected.values().flatten().copied().collect();
    if backend == Backend::Postgres {
        // The pair locks a commit touching these pairs takes, before any row changes:
        // this transaction then never holds a claimed row while waiting for a commit.
        lock_pairs(tx, tenant, member, &contacts).await?;
    }
    let claimed = claim_rows(tx, tenant, member).await?;
    // On PostgreSQL a commit may have added an unclaimed row between the read and the
    // update (SQLite holds the write lock throughout): its activity's contacts are
    // looked up now and locked after the others, a rare order a deadlock check resolves.
    let mut late = BTreeSet::new();
    for activity in claimed.keys().filter(|a| !expected.contains_key(a)) {
        late.extend(contacts_of_activity(tx, tenant, *activity).await?);
    }
    late.retain(|contact| !contacts.contains(contact));
    if backend == Backend::Postgres {
        lock_pairs(tx, tenant, member, &late).await?;
    }
    contacts.extend(late);
    for contact in &contacts {
        recompute_relationship(tx, tenant, member.0, *contact).await?;
    }
    Ok(claimed.values().sum())
}

/// The activities on which `member` has unclaimed rows, each with its contacts.
async fn contacts_by_activity(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: MemberId,
) -> Result<BTreeMap<i64, BTreeSet<i64>>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT p.activity_id, c.contact_id
         FROM activity_participants p
         LEFT JOIN activity_participants c
           ON c.tenant_id = p.tenant_id AND c.activity_id = p.activity_id
          AND c.contact_id IS NOT NULL
         WHERE {UNCLAIMED}"
    )))
    .bind(tenant)
    .bind(member.0)
    .fetch_all(&mut **tx)
    .await?;
    let mut activities: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for row in rows {
        let contacts = activities.entry(row.try_get(0)?).or_default();
        if let Some(contact) = row.try_get::<Option<i64>, _>(1)? {
            contacts.insert(contact);
        }
    }
    Ok(activities)
}

/// The contacts of one activity.
async fn contacts_of_activity(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    activity: i64,
) -> Result<BTreeSet<i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT contact_id FROM activity_participants
         WHERE tenant_id = $1 AND activity_id = $2 AND contact_id IS NOT NULL",
    )
    .bind(tenant)
    .bind(activity)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| Ok(row.try_get(0)?))
        .collect::<Result<_, StoreError>>()
}

/// The claim itself; returns the claimed rows counted by activity.
async fn claim_rows(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: MemberId,
) -> Result<BTreeMap<i64, u64>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE activity_participants AS p SET member_id = $2, kind = 'member'
         WHERE {UNCLAIMED}
         RETURNING activity_id"
    )))
    .bind(tenant)
    .bind(member.0)
    .fetch_all(&mut **tx)
    .await?;
    let mut claimed: BTreeMap<i64, u64> = BTreeMap::new();
    for row in rows {
        *claimed.entry(row.try_get(0)?).or_default() += 1;
    }
    Ok(claimed)
}

/// Takes the advisory locks of the (member, contact) pairs, as `commit_page` keys them.
async fn lock_pairs(
    tx: &mut Transaction<'static, Any>,
    tenant: &str,
    member: MemberId,
    contacts: &BTreeSet<i64>,
) -> Result<(), StoreError> {
    let keys = contacts
        .iter()
        .map(|contact| relationship_lock_key(tenant, member.0, *contact))
        .collect();
    advisory_locks(tx, keys).await
}

impl Store {
    /// Lets `member` claim the rows its addresses were captured with as `internal`
    /// before they were its, and corrects its relationships, in one transaction.
    /// [`Store::add_member`] does this whenever it adds a member or an address; this is
    /// for the other ways an address becomes a member's (a member made active again)
    /// and for maintenance. Returns how many participant rows were claimed.
    pub async fn claim_member_participants(
        &self,
        tenant: &TenantId,
        member: MemberId,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let claimed = claim_participants(&mut tx, self.backend(), tenant, member).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Lets every active member claim its unclaimed rows, in one transaction: a page
    /// extracted before a member was added (by an engine built from the previous
    /// directory) and committed after the member's claim still names it `internal`.
    /// Returns how many participant rows were claimed.
    pub async fn claim_unclaimed_participants(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(
            "SELECT DISTINCT m.id FROM members m
             JOIN member_addresses a ON a.tenant_id = m.tenant_id AND a.member_id = m.id
             WHERE m.tenant_id = $1 AND m.active = 1 AND EXISTS (
                 SELECT 1 FROM activity_participants p
                 WHERE p.tenant_id = a.tenant_id AND p.address = a.address
                   AND p.member_id IS NULL AND p.kind = 'internal')
             ORDER BY m.id",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut **tx)
        .await?;
        let mut claimed = 0;
        for row in rows {
            let member = MemberId(row.try_get(0)?);
            claimed += claim_participants(&mut tx, self.backend(), tenant, member).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
