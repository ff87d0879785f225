//! A tenant's settings: its own (the policy form and whether Rebuild starts newly
//! matched users, kept on the tenant so they can be set before any connection exists)
//! and each connection's beside its credentials (capture on or off, the organization's
//! domains), the last User Delegation Sync result, and the configuration version
//! workers watch to rebuild their engines.

use crate::error::StoreError;
use crate::links::{AuditEvent, insert_audit};
use crate::store::{ConnectionKind, MemberId, Store, TenantId, WriteTransaction, now_ms};
use sqlx::Row;

/// What is stored about a connection, credentials excepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionView {
    pub kind: ConnectionKind,
    pub admin_email: String,
    pub capture_enabled: bool,
    /// The tenant's policy form ([`TenantSettings::policy`]): kept on the tenant, shown
    /// here for the connection's readers.
    pub policy: serde_json::Value,
    /// The organization's domains as the last delegation sync saw them.
    pub domains: Vec<String>,
    pub created_ms: i64,
}

/// A tenant's own settings, whatever its connections.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSettings {
    /// The policy form as saved (JSON, `{}` until an admin saves one).
    pub policy: serde_json::Value,
    /// Whether Rebuild starts newly matched users (Planhat's default: on).
    pub auto_connect: bool,
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            policy: serde_json::json!({}),
            auto_connect: true,
        }
    }
}

impl Store {
    /// The tenant's connection of `kind`, if one was saved.
    pub async fn connection(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
    ) -> Result<Option<ConnectionView>, StoreError> {
        let row = sqlx::query(
            "SELECT c.admin_email, c.capture_enabled, COALESCE(s.policy, '{}'), c.domains,
                    c.created_ms
             FROM connections c LEFT JOIN tenant_settings s ON s.tenant_id = c.tenant_id
             WHERE c.tenant_id = $1 AND c.kind = $2",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let policy: String = row.try_get(2)?;
        let domains: String = row.try_get(3)?;
        Ok(Some(ConnectionView {
            kind,
            admin_email: row.try_get(0)?,
            capture_enabled: row.try_get::<i64, _>(1)? != 0,
            policy: serde_json::from_str(&policy)?,
            domains: serde_json::from_str(&domains)?,
            created_ms: row.try_get(4)?,
        }))
    }

    /// Turns capture on or off, audited.
    pub async fn set_capture_enabled(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        enabled: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let detail = serde_json::json!({ "kind": kind.as_str(), "enabled": enabled });
        self.update_connection(
            tenant,
            kind,
            "UPDATE connections SET capture_enabled = $3 WHERE tenant_id = $1 AND kind = $2",
            i64::from(enabled),
            (actor, "capture.set", detail),
        )
        .await
    }

    /// Saves the tenant's policy form (already validated by the caller), audited. The
    /// policy is the tenant's, whatever its connections: `kind` is kept for callers
    /// written when it lived on a connection, and no connection is needed.
    pub async fn set_policy(
        &self,
        tenant: &TenantId,
        _kind: ConnectionKind,
        policy: &serde_json::Value,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.set_tenant_policy(tenant, policy, actor).await
    }

    /// Records the organization's domains (not audited: the delegation result is).
    pub async fn set_connection_domains(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        domains: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let current: Option<String> =
            sqlx::query("SELECT domains FROM connections WHERE tenant_id = $1 AND kind = $2")
                .bind(tenant.as_str())
                .bind(kind.as_str())
                .fetch_optional(&mut **tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
        let Some(current) = current else {
            return Err(no_connection(tenant, kind));
        };
        let domains = serde_json::to_string(domains)?;
        if current == domains {
            return tx.commit().await;
        }
        sqlx::query("UPDATE connections SET domains = $3 WHERE tenant_id = $1 AND kind = $2")
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(domains)
            .execute(&mut **tx)
            .await?;
        bump_config_version(&mut tx, tenant).await?;
        tx.commit().await
    }

    async fn update_connection<T>(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        sql: &'static str,
        value: T,
        (actor, action, detail): (&str, &str, serde_json::Value),
    ) -> Result<(), StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(kind.as_str())
            .bind(value)
            .execute(&mut **tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Err(no_connection(tenant, kind));
        }
        let event = AuditEvent {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: None,
            detail,
        };
        insert_audit(&mut tx, tenant, &event).await?;
        bump_config_version(&mut tx, tenant).await?;
        tx.commit().await
    }

    /// The tenant's own settings; the defaults until an admin saves any.
    pub async fn tenant_settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        let row =
            sqlx::query("SELECT policy, auto_connect FROM tenant_settings WHERE tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(TenantSettings::default());
        };
        let policy: String = row.try_get(0)?;
        Ok(TenantSettings {
            policy: serde_json::from_str(&policy)?,
            auto_connect: row.try_get::<i64, _>(1)? != 0,
        })
    }

    /// Saves the tenant's policy form (already validated by the caller), audited; the
    /// configuration version moves so that engines pick it up.
    pub async fn set_tenant_policy(
        &self,
        tenant: &TenantId,
        policy: &serde_json::Value,
        actor: &str,
    ) -> Result<(), StoreError> {
        let detail = serde_json::json!({ "policy": policy });
        self.update_tenant_settings(
            tenant,
            "INSERT INTO tenant_settings (tenant_id, policy) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET policy = excluded.policy",
            policy.to_string(),
            (actor, "policy.set", detail),
        )
        .await
    }

    /// Whether Rebuild starts the users it newly matches (on) or leaves their links
    /// unlinked for an admin to start one by one (off); audited.
    pub async fn set_auto_connect(
        &self,
        tenant: &TenantId,
        enabled: bool,
        actor: &str,
    ) -> Result<(), StoreError> {
        let detail = serde_json::json!({ "enabled": enabled });
        self.update_tenant_settings(
            tenant,
            "INSERT INTO tenant_settings (tenant_id, auto_connect) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET auto_connect = excluded.auto_connect",
            i64::from(enabled),
            (actor, "settings.auto_connect", detail),
        )
        .await
    }

    /// Writes one tenant setting with `sql` (`$1` the tenant, `$2` the value) and its
    /// audit event in one transaction.
    async fn update_tenant_settings<T>(
        &self,
        tenant: &TenantId,
        sql: &'static str,
        value: T,
        (actor, action, detail): (&str, &str, serde_json::Value),
    ) -> Result<(), StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + 'static,
    {
        let mut tx = self.begin_write().await?;
        sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(value)
            .execute(&mut **tx)
            .await?;
        let event = AuditEvent {
            at_ms: now_ms(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: None,
            detail,
        };
        insert_audit(&mut tx, tenant, &event).await?;
        bump_config_version(&mut tx, tenant).await?;
        tx.commit().await
    }

    /// Saves the result of a User Delegation Sync, replacing the previous one.
    pub async fn save_delegation_result(
        &self,
        tenant: &TenantId,
        result: &serde_json::Value,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO delegation_results (tenant_id, at_ms, result) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET at_ms = excluded.at_ms, result = excluded.result",
        )
        .bind(tenant.as_str())
        .bind(at_ms)
        .bind(result.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The last User Delegation Sync's result and when it ran.
    pub async fn delegation_result(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
        let row = sqlx::query("SELECT at_ms, result FROM delegation_results WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let result: String = row.try_get(1)?;
            Ok((row.try_get(0)?, serde_json::from_str(&result)?))
        })
        .transpose()
    }

    /// Marks a member active or inactive (suspended or gone from the directory).
    pub async fn set_member_active(
        &self,
        tenant: &TenantId,
        member: MemberId,
        active: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let changed = sqlx::query(
            "UPDATE members SET active = $3 WHERE tenant_id = $1 AND id = $2 AND active <> $3",
        )
        .bind(tenant.as_str())
        .bind(member.0)
        .bind(i64::from(active))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if changed > 0 {
            bump_config_version(&mut tx, tenant).await?;
            if active {
                // Mail captured while it was inactive names it `internal`.
                crate::membership::claim_participants(&mut tx, self.backend(), tenant, member)
                    .await?;
            }
        }
        tx.commit().await
    }

    /// A number that grows whenever the tenant's members, policy or credentials change.
    pub async fn config_version(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT config_version FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or(0))
    }

    /// Every tenant id, in order.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows = sqlx::query("SELECT id FROM tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok(TenantId(row.try_get(0)?)))
            .collect()
    }
}

pub(crate) async fn bump_config_version(
    tx: &mut WriteTransaction,
    tenant: &TenantId,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET config_version = config_version + 1 WHERE id = $1")
        .bind(tenant.as_str())
        .execute(&mut ***tx)
        .await?;
    Ok(())
}

fn no_connection(tenant: &TenantId, kind: ConnectionKind) -> StoreError {
    StoreError::NoConnection {
        tenant: tenant.0.clone(),
        kind: kind.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestDatabase;
    use crate::{Backend, ConnectionKind, MasterKey, SecretBytes, TenantId};
    use serde_json::json;

    /// The policy and the new-users switch are the tenant's: saved before any
    /// connection, kept when one is saved, audited, on both backends.
    #[tokio::test]
    async fn tenant_settings_come_before_any_connection_and_outlive_it() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let Some(db) = TestDatabase::open(backend).await else {
                continue;
            };
            let store = &db.store;
            let tenant = TenantId::new("acme");
            store.create_tenant(&tenant, "Acme").await.unwrap();
            let defaults = store.tenant_settings(&tenant).await.unwrap();
            assert_eq!(defaults.policy, json!({}));
            assert!(defaults.auto_connect, "Planhat's default: on");

            let policy = json!({ "backfill_days": 45 });
            store
                .set_tenant_policy(&tenant, &policy, "ann")
                .await
                .unwrap();
            store.set_auto_connect(&tenant, false, "ann").await.unwrap();
            let version = store.config_version(&tenant).await.unwrap();
            assert!(version >= 2, "engines see the change");

            // A connection saved afterwards starts with the tenant's policy, not its own.
            store
                .save_connection(
                    &tenant,
                    ConnectionKind::Google,
                    "admin@acme.test",
                    &SecretBytes::new(b"{}".to_vec()),
                    &json!({}),
                    &MasterKey::generate(),
                )
                .await
                .unwrap();
            let settings = store.tenant_settings(&tenant).await.unwrap();
            assert_eq!(settings.policy, policy);
            assert!(!settings.auto_connect);
            let connection = store
                .connection(&tenant, ConnectionKind::Google)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(connection.policy, policy);

            let actions: Vec<String> = store
                .audit_events(&tenant, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.actor == "ann")
                .map(|e| e.action)
                .collect();
            assert!(actions.contains(&"policy.set".to_owned()), "{actions:?}");
            assert!(
                actions.contains(&"settings.auto_connect".to_owned()),
                "{actions:?}"
            );
        }
    }
}
