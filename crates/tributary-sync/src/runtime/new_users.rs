//! "Connect new users automatically": whether *Rebuild* starts the users it newly
//! matches. On (the default, as in Planhat) a new link is `pending` and syncs at once
//! while capture is on; off, Rebuild still matches and links every user but leaves the
//! new links unlinked, so that an admin starts the ones wanted (per row or in bulk)
//! instead of unlinking everyone else.

use super::{Runtime, RuntimeError, audit};
use crate::delegation::DelegationReport;
use tributary_store::{LinkId, LinkStatus, TenantId};

/// The audit action of new links Rebuild left unstarted.
pub const NEW_LINKS_HELD: &str = "delegation.new_links_held";

impl Runtime {
    /// Whether Rebuild starts newly matched users.
    pub async fn auto_connect(&self, tenant: &TenantId) -> Result<bool, RuntimeError> {
        Ok(self.store().tenant_settings(tenant).await?.auto_connect)
    }

    /// Turns "connect new users automatically" on or off, audited. Links that exist
    /// keep their status: the setting decides only what the next Rebuild does.
    pub async fn set_auto_connect(
        &self,
        tenant: &TenantId,
        enabled: bool,
        actor: &str,
    ) -> Result<(), RuntimeError> {
        Ok(self
            .store()
            .set_auto_connect(tenant, enabled, actor)
            .await?)
    }

    /// After Rebuild linked `report`'s users: while the tenant does not connect new
    /// users automatically, its new links are unlinked (audited once), so nothing
    /// starts them. Answers how many were held.
    pub(super) async fn hold_new_links(
        &self,
        tenant: &TenantId,
        report: &DelegationReport,
        actor: &str,
    ) -> Result<usize, RuntimeError> {
        if self.auto_connect(tenant).await? {
            return Ok(0);
        }
        let new: Vec<_> = report.matched.iter().filter(|m| m.new_link).collect();
        if new.is_empty() {
            return Ok(0);
        }
        let store = self.store();
        for matched in &new {
            store
                .set_link_status(tenant, LinkId(matched.link), LinkStatus::Unlinked, actor)
                .await?;
        }
        let detail = serde_json::json!({
            "count": new.len(),
            "mailboxes": new.iter().map(|m| &m.mailbox).collect::<Vec<_>>(),
        });
        store
            .record_audit(tenant, &audit(actor, NEW_LINKS_HELD, None, detail))
            .await?;
        Ok(new.len())
    }
}
