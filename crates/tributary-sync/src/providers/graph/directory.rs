//! Graph's users as the directory source: every user with every SMTP address, read
//! with the app's own token (the admin's address only names the pacing bucket).

use super::{GRAPH_REQUEST_UNITS, GraphSource};
use crate::error::SyncError;
use crate::pacing::Pacer;
use crate::source::DirectorySource;
use tributary_core::DirectoryAccount;

impl DirectorySource for GraphSource {
    async fn accounts(
        &self,
        admin_email: &str,
        pacer: &Pacer,
    ) -> Result<Vec<DirectoryAccount>, SyncError> {
        let directory = self.connector.directory();
        let users = pacer
            .call(admin_email, GRAPH_REQUEST_UNITS, || directory.list_users())
            .await?;
        Ok(users.iter().map(|user| user.to_account()).collect())
    }
}
