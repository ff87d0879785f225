//! Google's Directory API as the directory source: every user, read as the admin.

use super::GmailSource;
use crate::error::SyncError;
use crate::pacing::{Pacer, units};
use crate::source::DirectorySource;
use tributary_core::DirectoryAccount;

impl DirectorySource for GmailSource {
    async fn accounts(
        &self,
        admin_email: &str,
        pacer: &Pacer,
    ) -> Result<Vec<DirectoryAccount>, SyncError> {
        let directory = self.connector.directory(admin_email);
        Ok(pacer
            .call(admin_email, units::DIRECTORY, || directory.list_users())
            .await?)
    }
}
