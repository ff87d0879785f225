//! Push (docs/push.md): the watches and subscriptions a provider holds for each link
//! ([`PushChannelRecord`]), and whether each link is on push or on polling, and why
//! ([`LinkPush`]). A channel's secret (Graph's `clientState`) is kept only as its
//! SHA-256, enough to check a notification and useless to forge one.

use crate::error::StoreError;
use crate::store::{LinkId, Store, TenantId};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

/// One watch or subscription of a link's stream (`mail` or `calendar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushChannelRecord {
    pub link: LinkId,
    /// `mail` or `calendar`.
    pub stream: String,
    /// The provider's id for it: a Graph subscription id; for a Gmail watch, the mailbox.
    pub channel_id: String,
    pub expires_ms: i64,
    /// [`secret_hash`] of the secret notifications carry, when the provider echoes one.
    pub secret_hash: Option<String>,
    /// When it was made or last renewed.
    pub renewed_ms: i64,
}

impl PushChannelRecord {
    /// Whether a notification's secret (`clientState`, a channel token) is this
    /// channel's. A channel stored without one verifies nothing.
    pub fn secret_matches(&self, given: &str) -> bool {
        self.secret_hash
            .as_deref()
            .is_some_and(|stored| secret_matches(given, stored))
    }
}

/// Whether a link's new mail arrives through push or only through polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    Push,
    Polling,
}

impl PushMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PushMode::Push => "push",
            PushMode::Polling => "polling",
        }
    }

    /// The mode a stored name is; anything else (the schema allows nothing else) is
    /// polling, which is what a link without push does.
    pub fn from_name(name: &str) -> Self {
        match name {
            "push" => PushMode::Push,
            _ => PushMode::Polling,
        }
    }
}

/// A link's push mode as last recorded, with the reason when it is polling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPush {
    pub link: LinkId,
    pub mode: PushMode,
    pub reason: Option<String>,
    pub updated_ms: i64,
}

/// The hex SHA-256 a channel's secret is stored and compared as.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn channel_from(row: &AnyRow) -> Result<PushChannelRecord, StoreError> {
    Ok(PushChannelRecord {
        link: LinkId(row.try_get(0)?),
        stream: row.try_get(1)?,
        channel_id: row.try_get(2)?,
        expires_ms: row.try_get(3)?,
        secret_hash: row.try_get(4)?,
        renewed_ms: row.try_get(5)?,
    })
}

/// Whether `given` is the secret whose [`secret_hash`] is `stored_hash`. The hashes are
/// compared without an early exit, so timing does not tell how close a guess was.
pub fn secret_matches(given: &str, stored_hash: &str) -> bool {
    let given = secret_hash(given);
    given.len() == stored_hash.len()
        && given
            .bytes()
            .zip(stored_hash.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

impl Store {
    /// Records a link's channel for its stream, replacing the one it had.
    pub async fn save_push_channel(
        &self,
        tenant: &TenantId,
        channel: &PushChannelRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO push_channels
                 (tenant_id, link_id, stream, channel_id, expires_ms, secret_hash, renewed_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, link_id, stream) DO UPDATE SET
                 channel_id = excluded.channel_id, expires_ms = excluded.expires_ms,
                 secret_hash = excluded.secret_hash, renewed_ms = excluded.renewed_ms",
        )
        .bind(tenant.as_str())
        .bind(channel.link.0)
        .bind(&channel.stream)
        .bind(&channel.channel_id)
        .bind(channel.expires_ms)
        .bind(channel.secret_hash.as_deref())
        .bind(channel.renewed_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The link's channels, by stream.
    pub async fn push_channels(
        &self,
        tenant: &TenantId,
        link: LinkId,
    ) -> Result<Vec<PushChannelRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT link_id, stream, channel_id, expires_ms, secret_hash, renewed_ms FROM push_channels
             WHERE tenant_id = $1 AND link_id = $2 ORDER BY stream",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_from).collect()
    }

    /// The tenant's channel with the provider's id `channel_id` (a notification names it).
    pub async fn push_channel_by_id(
        &self,
        tenant: &TenantId,
        channel_id: &str,
    ) -> Result<Option<PushChannelRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT link_id, stream, channel_id, expires_ms, secret_hash, renewed_ms FROM push_channels
             WHERE tenant_id = $1 AND channel_id = $2 LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(channel_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(channel_from).transpose()
    }

    /// The tenant's channels that expire before `before_ms`, soonest first, at most `limit`.
    pub async fn push_channels_expiring(
        &self,
        tenant: &TenantId,
        before_ms: i64,
        limit: u32,
    ) -> Result<Vec<PushChannelRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT link_id, stream, channel_id, expires_ms, secret_hash, renewed_ms FROM push_channels
             WHERE tenant_id = $1 AND expires_ms < $2 ORDER BY expires_ms LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(before_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(channel_from).collect()
    }

    /// Marks the channel `channel_id` due for renewal now (the provider asked for it:
    /// Graph's `reauthorizationRequired`): the next sync of its link renews it.
    pub async fn mark_push_channel_due(
        &self,
        tenant: &TenantId,
        channel_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE push_channels SET expires_ms = 0 WHERE tenant_id = $1 AND channel_id = $2",
        )
        .bind(tenant.as_str())
        .bind(channel_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the link's channel for `stream` (stopped, or found gone at the provider).
    pub async fn delete_push_channel(
        &self,
        tenant: &TenantId,
        link: LinkId,
        stream: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM push_channels WHERE tenant_id = $1 AND link_id = $2 AND stream = $3",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(stream)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records whether `link` is on push or polling, and why.
    pub async fn set_link_push(
        &self,
        tenant: &TenantId,
        link: LinkId,
        mode: PushMode,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO link_push (tenant_id, link_id, mode, reason, updated_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, link_id) DO UPDATE SET
                 mode = excluded.mode, reason = excluded.reason, updated_ms = excluded.updated_ms",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(mode.as_str())
        .bind(reason)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every link's recorded push mode in `tenant` (links never recorded are absent:
    /// they are polled).
    pub async fn link_push_modes(&self, tenant: &TenantId) -> Result<Vec<LinkPush>, StoreError> {
        let rows = sqlx::query(
            "SELECT link_id, mode, reason, updated_ms FROM link_push
             WHERE tenant_id = $1 ORDER BY link_id",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let mode: String = row.try_get(1)?;
                Ok(LinkPush {
                    link: LinkId(row.try_get(0)?),
                    mode: PushMode::from_name(&mode),
                    reason: row.try_get(2)?,
                    updated_ms: row.try_get(3)?,
                })
            })
            .collect()
    }
}
