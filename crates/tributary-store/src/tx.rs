//! Steps that more than one write transaction takes (a mail page, a calendar page):
//! written once so that both check links, name participant kinds and key their locks
//! alike.

use crate::error::StoreError;
use crate::store::{LinkId, TenantId};
use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};
use tributary_core::AddressClass;

/// Fails with [`StoreError::UnknownLink`] unless the tenant has this link, so a page
/// never writes rows that name a link of another tenant (or none).
pub(crate) async fn ensure_link(
    tx: &mut Transaction<'static, Any>,
    tenant: &TenantId,
    link: LinkId,
) -> Result<(), StoreError> {
    let found = sqlx::query("SELECT id FROM mailbox_links WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(link.0)
        .fetch_optional(&mut **tx)
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownLink {
            tenant: tenant.0.clone(),
            link: link.0,
        }),
    }
}

/// A participant's `kind` column.
pub(crate) fn kind_name(class: &AddressClass) -> &'static str {
    match class {
        AddressClass::Member { .. } => "member",
        AddressClass::Internal => "internal",
        AddressClass::External => "external",
    }
}

/// A stable 64-bit PostgreSQL advisory lock key for `parts` (the same in every process
/// and release, unlike `std`'s hasher).
pub(crate) fn lock_key(parts: &[&str]) -> i64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}
