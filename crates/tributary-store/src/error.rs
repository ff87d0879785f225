use crate::secrets::SecretError;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the database file {path}: {source}")]
    DatabaseFile {
        path: String,
        source: std::io::Error,
    },
    #[error("mailbox link {link} does not belong to tenant {tenant}")]
    UnknownLink { tenant: String, link: i64 },
    #[error("member {member} does not belong to tenant {tenant}")]
    UnknownMember { tenant: String, member: i64 },
    #[error("label name {label:?} is empty: give a label id such as INBOX or Label_12")]
    InvalidLabel { label: String },
    #[error("tenant {tenant} has no {kind} connection")]
    NoConnection { tenant: String, kind: &'static str },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("stored JSON is invalid: {0}")]
    Json(#[from] serde_json::Error),
}
