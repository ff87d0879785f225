//! The link's containers as Graph folders: the policy's Gmail-spelled `INBOX` and
//! `SENT` are the well-known folders `inbox` and `sentitems`; anything else a member
//! adds is a folder id (or a well-known name) from the mailbox's own folder list.

use super::{GRAPH_REQUEST_UNITS, GraphLink};
use crate::error::SyncError;
use crate::link::ContainerTally;

/// The Graph folder a policy container names.
pub(super) fn folder_of(container: &str) -> String {
    if container.eq_ignore_ascii_case("INBOX") {
        "inbox".to_owned()
    } else if container.eq_ignore_ascii_case("SENT") {
        "sentitems".to_owned()
    } else {
        container.to_owned()
    }
}

impl GraphLink<'_> {
    /// A container's counts before its first delta page: the folder's `totalItemCount`,
    /// or `missing` when the mailbox has no such folder.
    pub(super) async fn start_folder(&self, container: &str) -> Result<ContainerTally, SyncError> {
        let folder = folder_of(container);
        let found = self
            .link
            .pacer
            .call(self.mail.user(), GRAPH_REQUEST_UNITS, || {
                self.mail.get_folder(&folder)
            })
            .await?;
        Ok(ContainerTally {
            missing: found.is_none(),
            provider_total: found.map(|f| f.total_item_count),
            ..ContainerTally::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::folder_of;

    #[test]
    fn policy_containers_map_to_well_known_folders() {
        assert_eq!(folder_of("INBOX"), "inbox");
        assert_eq!(folder_of("sent"), "sentitems");
        assert_eq!(folder_of("AAMkAGI2-folder"), "AAMkAGI2-folder");
    }
}
