//! Test support (feature `testing`, never a production path): a store on a fresh SQLite
//! file or on a fresh, uniquely named PostgreSQL database that is dropped afterwards.
//! Every crate's tests use this one, so "skipped: PostgreSQL not reachable" means the
//! same thing everywhere.

use crate::store::{Backend, Store};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// Overrides [`DEFAULT_POSTGRES_URL`]: a server where the tests may create databases.
pub const POSTGRES_URL_ENV: &str = "TRIBUTARY_TEST_POSTGRES_URL";
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A store and what must outlive it: its directory, or the database to drop. Dropped
/// without [`TestDatabase::close`] (a test that panicked), it still drops its
/// PostgreSQL database, from a thread of its own.
pub struct TestDatabase {
    pub store: Store,
    dir: Option<TempDir>,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin: PgConnection,
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// A store on `backend`; `None` (after saying so) when PostgreSQL is not reachable.
    pub async fn open(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A store in a new temporary data directory.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open_in_data_dir(dir.path())
            .await
            .expect("the SQLite store opens");
        TestDatabase {
            store,
            dir: Some(dir),
            postgres: None,
        }
    }

    /// A store on a new, uniquely named PostgreSQL database; `None` (after printing
    /// "skipped: PostgreSQL not reachable at …") when there is no server.
    pub async fn postgres() -> Option<Self> {
        let admin_url =
            std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let connected =
            tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url)).await;
        let Ok(Ok(mut admin)) = connected else {
            eprintln!("skipped: PostgreSQL not reachable at {admin_url}");
            return None;
        };
        let name = unique_database_name();
        // The name is generated here from digits and underscores.
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("the test database is created");
        let url = database_url(&admin_url, &name);
        let store = Store::open(&url).await.expect("the PostgreSQL store opens");
        Some(TestDatabase {
            store,
            dir: None,
            postgres: Some(PostgresDatabase {
                admin,
                admin_url,
                name,
                url,
            }),
        })
    }

    /// The PostgreSQL URL of this store, for another process to open.
    pub fn url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|p| p.url.as_str())
    }

    /// The SQLite store's data directory.
    pub fn data_dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// Closes the store and drops its PostgreSQL database (its directory goes with it).
    pub async fn close(mut self) {
        self.store.close().await;
        if let Some(PostgresDatabase {
            mut admin, name, ..
        }) = self.postgres.take()
        {
            sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .expect("the test database is dropped");
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(PostgresDatabase {
            admin_url, name, ..
        }) = self.postgres.take()
        else {
            return;
        };
        // The test's runtime may be ending or panicking: use a runtime of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}

fn unique_database_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "tributary_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database name replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rfind('/').map_or(base, |slash| &base[..slash]);
    match query {
        Some(query) => format!("{prefix}/{name}?{query}"),
        None => format!("{prefix}/{name}"),
    }
}
