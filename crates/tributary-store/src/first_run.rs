//! What a fresh installation has: whether any tenant and any console account exist, so
//! that `serve` and the sign-in page can say how to create the first admin.

use crate::error::StoreError;
use crate::store::Store;
use sqlx::Row;

/// How far a fresh installation has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Installation {
    pub tenants: i64,
    /// Console accounts of every tenant, disabled ones included.
    pub accounts: i64,
}

impl Installation {
    /// No account can sign in yet: someone must create the first admin.
    pub fn needs_first_admin(&self) -> bool {
        self.accounts == 0
    }
}

impl Store {
    /// Counts tenants and accounts across the whole database.
    pub async fn installation(&self) -> Result<Installation, StoreError> {
        let row =
            sqlx::query("SELECT (SELECT COUNT(*) FROM tenants), (SELECT COUNT(*) FROM users)")
                .fetch_one(&self.pool)
                .await?;
        Ok(Installation {
            tenants: row.try_get(0)?,
            accounts: row.try_get(1)?,
        })
    }
}
