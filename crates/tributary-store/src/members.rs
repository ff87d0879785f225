//! Lookups of one member and of its links, so that callers need not list every member
//! or link of a tenant to find one.

use crate::api_reads::Bindings;
use crate::error::StoreError;
use crate::links::{LINK_COLUMNS, LinkView, link_view};
use crate::read::name_of;
use crate::store::{MemberId, MemberRole, MemberView, Store, TenantId};
use sqlx::{AssertSqlSafe, Row};
use std::collections::{BTreeSet, HashMap};

impl Store {
    /// The member with this id, with its aliases (sorted as [`Store::members`] sorts
    /// them); `None` for a member of another tenant.
    pub async fn member(
        &self,
        tenant: &TenantId,
        member: MemberId,
    ) -> Result<Option<MemberView>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.email, m.role, m.active, a.address
             FROM members m
             LEFT JOIN member_addresses a
                 ON a.tenant_id = m.tenant_id AND a.member_id = m.id AND a.address <> m.email
             WHERE m.tenant_id = $1 AND m.id = $2 ORDER BY a.address",
        )
        .bind(tenant.as_str())
        .bind(member.0)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let role: String = first.try_get(2)?;
        let mut view = MemberView {
            id: MemberId(first.try_get(0)?),
            email: first.try_get(1)?,
            aliases: Vec::new(),
            role: if role == "admin" {
                MemberRole::Admin
            } else {
                MemberRole::Member
            },
            active: first.try_get::<i64, _>(3)? != 0,
        };
        for row in &rows {
            if let Some(alias) = row.try_get::<Option<String>, _>(4)? {
                view.aliases.push(alias);
            }
        }
        Ok(Some(view))
    }

    /// The member one of whose addresses (primary or alias) is `address` (trimmed and
    /// lowercased). Should two members claim it, the one whose primary address it is
    /// wins (its owner signs in with it), then the first by primary address.
    pub async fn member_by_address(
        &self,
        tenant: &TenantId,
        address: &str,
    ) -> Result<Option<MemberView>, StoreError> {
        let address = address.trim().to_lowercase();
        let row = sqlx::query(
            // `CROSS JOIN` keeps SQLite to the (at most two) matches, where it would
            // otherwise walk every member in address order to skip the sort.
            "SELECT m.id FROM (
                 SELECT id AS member_id FROM members WHERE tenant_id = $1 AND email = $2
                 UNION
                 SELECT member_id FROM member_addresses WHERE tenant_id = $1 AND address = $2
             ) x CROSS JOIN members m
             WHERE m.tenant_id = $1 AND m.id = x.member_id
             ORDER BY CASE WHEN m.email = $2 THEN 0 ELSE 1 END, m.email LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(&address)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => self.member(tenant, MemberId(row.try_get(0)?)).await,
            None => Ok(None),
        }
    }

    /// Sets the member's name as the directory gives it (cleaned as core's `clean_name`
    /// cleans names; `None` or an empty name clears it, so the headers' name shows).
    pub async fn set_member_display_name(
        &self,
        tenant: &TenantId,
        member: MemberId,
        name: Option<&str>,
    ) -> Result<(), StoreError> {
        let name = name.and_then(tributary_core::display_name::clean_name);
        sqlx::query("UPDATE members SET display_name = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(member.0)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The display names of `addresses` (each trimmed and lowercased) that have one: a
    /// member's directory name for any of its addresses, else the most recent name
    /// captured headers gave the address. One query, for a page's worth of addresses.
    pub async fn display_names(
        &self,
        tenant: &TenantId,
        addresses: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        let wanted: BTreeSet<String> = addresses.iter().map(|a| a.trim().to_lowercase()).collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let mut b = Bindings::new(tenant);
        let values: Vec<String> = wanted
            .iter()
            .map(|address| format!("SELECT {} AS address", b.text(address.as_str())))
            .collect();
        let sql = format!(
            "SELECT x.address, {} FROM ({}) x",
            name_of("$1", "x.address"),
            values.join(" UNION ALL ")
        );
        let mut names = HashMap::new();
        for row in b.query(sql).fetch_all(&self.pool).await? {
            if let Some(name) = row.try_get::<Option<String>, _>(1)? {
                names.insert(row.try_get(0)?, name);
            }
        }
        Ok(names)
    }

    /// The member's mailbox links, by mailbox (as [`Store::links`] orders them).
    pub async fn links_of_member(
        &self,
        tenant: &TenantId,
        member: MemberId,
    ) -> Result<Vec<LinkView>, StoreError> {
        let sql = format!(
            "{LINK_COLUMNS} WHERE l.tenant_id = $1 AND l.member_id = $2 ORDER BY l.mailbox"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(member.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(link_view).collect()
    }
}
