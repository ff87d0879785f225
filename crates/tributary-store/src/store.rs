//! Opening the store and the tenant-side setup rows: tenants, connections, members,
//! mailbox links and cursors.

use crate::error::StoreError;
use crate::secrets::{MasterKey, Sealed, SecretBytes};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The SQLite file `Store::open_in_data_dir` uses.
pub const DATABASE_FILE: &str = "tributary.db";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A tenant's id (its stable slug); also the associated data of its sealed secrets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub String);

impl TenantId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A member's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId(pub i64);

/// A mailbox link's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    Admin,
    Member,
}

impl MemberRole {
    fn as_str(self) -> &'static str {
        match self {
            MemberRole::Admin => "admin",
            MemberRole::Member => "member",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    Google,
    Microsoft,
    Imap,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Google => "google",
            ConnectionKind::Microsoft => "microsoft",
            ConnectionKind::Imap => "imap",
        }
    }
}

/// A member with every address it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub id: MemberId,
    pub email: String,
    /// Other addresses of the member, sorted.
    pub aliases: Vec<String>,
    pub role: MemberRole,
    pub active: bool,
}

/// The store: a connection pool on one backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time: this process's writers queue here, without
    /// holding a pooled connection or polling against the busy timeout.
    write_turn: Arc<Mutex<()>>,
}

/// A write transaction, holding this process's write turn on SQLite until it ends.
pub(crate) struct WriteTransaction {
    // Declared first so the transaction ends before the turn is handed on.
    tx: Transaction<'static, Any>,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTransaction {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        let WriteTransaction { tx, _turn } = self;
        tx.commit().await?;
        Ok(())
    }
}

impl Deref for WriteTransaction {
    type Target = Transaction<'static, Any>;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl Store {
    /// Opens `postgres://…` / `postgresql://…`, or `sqlite://PATH` / a plain `PATH` (the
    /// file is created 0600 and its missing directories 0700, in WAL mode, with foreign
    /// keys and recursive triggers on and a busy timeout), and applies pending migrations.
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        sqlx_drivers();
        if url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://") {
            Self::open_postgres(url_or_path).await
        } else {
            let path = url_or_path
                .strip_prefix("sqlite://")
                .or_else(|| url_or_path.strip_prefix("sqlite:"))
                .unwrap_or(url_or_path);
            Self::open_sqlite(Path::new(path)).await
        }
    }

    /// Opens (creating it if needed) the embedded SQLite store of a data directory.
    pub async fn open_in_data_dir(data_dir: &Path) -> Result<Self, StoreError> {
        sqlx_drivers();
        Self::open_sqlite(&data_dir.join(DATABASE_FILE)).await
    }

    async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|connection, _| Box::pin(no_delay::set(connection)))
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Self {
            pool,
            backend: Backend::Postgres,
            write_turn: Arc::default(),
        })
    }

    async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        let file_error = |source| StoreError::DatabaseFile {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::files::create_private_dir(parent).map_err(file_error)?;
        }
        // Created here, 0600, before SQLite opens it: SQLite would create it 0644 under the
        // usual umask, and gives the -wal and -shm files the database file's mode.
        crate::files::create_private_file(path).map_err(file_error)?;
        let url = format!("sqlite://{}?mode=rwc", url_path(path)?);
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    // Per-connection settings: enforce references, wait for the writer,
                    // and with WAL sync at checkpoints rather than every commit: a killed
                    // process loses nothing; a power cut may lose the last pages, which
                    // the cursor committed with them makes the next run fetch again.
                    // `recursive_triggers` makes the rows a REPLACE (or INSERT OR
                    // REPLACE) deletes fire the delete triggers, so the immutability
                    // triggers refuse it; without it SQLite deletes them silently. The
                    // capture path's inserts (ON CONFLICT DO NOTHING) delete nothing and
                    // no trigger writes, so nothing else changes.
                    connection
                        .execute(
                            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                             PRAGMA synchronous = NORMAL; PRAGMA recursive_triggers = ON;",
                        )
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // WAL is a property of the file: readers never block the one writer.
        pool.execute("PRAGMA journal_mode = WAL").await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            write_turn: Arc::default(),
        })
    }

    /// Begins a transaction that will write. On SQLite it waits for this process's write
    /// turn and then takes the database's write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads and then writes fails with "database is locked"
    /// when another connection committed in between, instead of waiting for the busy
    /// timeout (which still covers other processes).
    pub(crate) async fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = Arc::clone(&self.write_turn).lock_owned().await;
                WriteTransaction {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => WriteTransaction {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for maintenance and tests; captured rows stay protected by triggers.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates a tenant; creating it again is a no-op.
    pub async fn create_tenant(&self, tenant: &TenantId, name: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenants (id, name, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds a member with its primary address and aliases (all lowercased), or returns
    /// the existing member with that primary address.
    pub async fn add_member(
        &self,
        tenant: &TenantId,
        primary: &str,
        aliases: &[&str],
        role: MemberRole,
    ) -> Result<MemberId, StoreError> {
        let primary = primary.trim().to_lowercase();
        let mut tx = self.begin_write().await?;
        let mut inserted = sqlx::query(
            "INSERT INTO members (tenant_id, email, role) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, email) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(&primary)
        .bind(role.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let id: i64 = sqlx::query("SELECT id FROM members WHERE tenant_id = $1 AND email = $2")
            .bind(tenant.as_str())
            .bind(&primary)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
        for address in
            std::iter::once(primary.clone()).chain(aliases.iter().map(|a| a.trim().to_lowercase()))
        {
            inserted += sqlx::query(
                "INSERT INTO member_addresses (tenant_id, address, member_id) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, address) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(address)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
        // Engines are rebuilt on a new version: only a real change should cause that.
        if inserted > 0 {
            crate::settings::bump_config_version(&mut tx, tenant).await?;
            crate::membership::claim_participants(&mut tx, self.backend, tenant, MemberId(id))
                .await?;
        }
        tx.commit().await?;
        Ok(MemberId(id))
    }

    /// Every member of the tenant with its aliases, by primary address: what
    /// `tributary_core::TenantDirectory` is built from.
    pub async fn members(&self, tenant: &TenantId) -> Result<Vec<MemberView>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.email, m.role, m.active, a.address
             FROM members m
             LEFT JOIN member_addresses a
                 ON a.tenant_id = m.tenant_id AND a.member_id = m.id AND a.address <> m.email
             WHERE m.tenant_id = $1 ORDER BY m.email, a.address",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut members: Vec<MemberView> = Vec::new();
        for row in rows {
            let id = MemberId(row.try_get(0)?);
            if members.last().is_none_or(|m| m.id != id) {
                let role: String = row.try_get(2)?;
                members.push(MemberView {
                    id,
                    email: row.try_get(1)?,
                    aliases: Vec::new(),
                    role: if role == "admin" {
                        MemberRole::Admin
                    } else {
                        MemberRole::Member
                    },
                    active: row.try_get::<i64, _>(3)? != 0,
                });
            }
            if let (Some(member), Some(alias)) =
                (members.last_mut(), row.try_get::<Option<String>, _>(4)?)
            {
                member.aliases.push(alias);
            }
        }
        Ok(members)
    }

    /// The cursor of a link's stream, if one was committed.
    pub async fn cursor(
        &self,
        tenant: &TenantId,
        link: LinkId,
        stream: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT value FROM cursors WHERE tenant_id = $1 AND link_id = $2 AND stream = $3",
        )
        .bind(tenant.as_str())
        .bind(link.0)
        .bind(stream)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Saves the tenant's connection of `kind`, its credentials sealed under `key` with
    /// the tenant id as associated data. Replaces an earlier one of the same kind.
    /// `policy` is the tenant's policy only while it has none: a policy saved before
    /// (even before any connection) is kept.
    pub async fn save_connection(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        admin_email: &str,
        credentials: &SecretBytes,
        policy: &serde_json::Value,
        key: &MasterKey,
    ) -> Result<(), StoreError> {
        let sealed = key.seal(tenant.as_str(), credentials)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO connections
                 (tenant_id, kind, admin_email, credentials_ciphertext, credentials_nonce, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, kind) DO UPDATE SET
                 admin_email = excluded.admin_email,
                 credentials_ciphertext = excluded.credentials_ciphertext,
                 credentials_nonce = excluded.credentials_nonce",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .bind(admin_email)
        .bind(sealed.ciphertext)
        .bind(sealed.nonce)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO tenant_settings (tenant_id, policy) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(policy.to_string())
        .execute(&mut **tx)
        .await?;
        crate::settings::bump_config_version(&mut tx, tenant).await?;
        tx.commit().await
    }

    /// The decrypted credentials of the tenant's connection of `kind`.
    pub async fn connection_credentials(
        &self,
        tenant: &TenantId,
        kind: ConnectionKind,
        key: &MasterKey,
    ) -> Result<SecretBytes, StoreError> {
        let row = sqlx::query(
            "SELECT credentials_ciphertext, credentials_nonce FROM connections
             WHERE tenant_id = $1 AND kind = $2",
        )
        .bind(tenant.as_str())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NoConnection {
            tenant: tenant.0.clone(),
            kind: kind.as_str(),
        })?;
        let sealed = Sealed {
            ciphertext: row.try_get(0)?,
            nonce: row.try_get(1)?,
        };
        Ok(key.open(tenant.as_str(), &sealed)?)
    }
}

/// `path` as sqlx's SQLite URL expects it: percent-decoded there, so `%`, `?` and `#`
/// must be escaped here.
fn url_path(path: &Path) -> Result<String, StoreError> {
    let text = path.to_str().ok_or_else(|| StoreError::DatabaseFile {
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })?;
    Ok(text
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('#', "%23"))
}

/// Turns Nagle's algorithm off on a PostgreSQL connection's socket, as libpq does.
///
/// sqlx 0.9.0 stopped setting `TCP_NODELAY` (launchbadge/sqlx#4335, fixed by #4336 after
/// that release). Without it a message written in more than one piece (every TLS record
/// is one write; a page's multi-row `INSERT`s span several) waits for the server's
/// delayed ACK: about 40 ms per large statement, which measured as most of a page's
/// commit time. sqlx exposes no socket, so the socket is found among this process's
/// open descriptors by its two ports, which the server reports. Remove this once the
/// sqlx in use sets the option itself.
mod no_delay {
    use sqlx::{AnyConnection, Row};

    pub(super) async fn set(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
        // NULL over a Unix-domain socket, where Nagle does not apply.
        let row = sqlx::query(
            "SELECT CAST(inet_client_port() AS BIGINT), CAST(inet_server_port() AS BIGINT)",
        )
        .fetch_one(connection)
        .await?;
        let client: Option<i64> = row.try_get(0)?;
        let server: Option<i64> = row.try_get(1)?;
        if let (Some(client), Some(server)) = (client, server) {
            let ports = (u16::try_from(client), u16::try_from(server));
            if let (Ok(client), Ok(server)) = ports {
                // Best effort: a socket not found only keeps the delay.
                set_on_socket(client, server);
            }
        }
        Ok(())
    }

    /// Sets `TCP_NODELAY` on this process's TCP socket from local port `local` to remote
    /// port `remote`; whether it found one.
    #[cfg(target_os = "linux")]
    fn set_on_socket(local: u16, remote: u16) -> bool {
        use std::mem::ManuallyDrop;
        use std::os::fd::FromRawFd;
        let Ok(descriptors) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        for entry in descriptors.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
            if !is_socket {
                continue;
            }
            // SAFETY: the descriptor is only borrowed: `ManuallyDrop` never closes it, and
            // `local_addr`, `peer_addr` and `set_nodelay` are getsockname, getpeername and
            // setsockopt, which fail harmlessly on a descriptor closed or reused meanwhile.
            let stream = ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
            let ports = (stream.local_addr(), stream.peer_addr());
            if let (Ok(here), Ok(there)) = ports
                && (here.port(), there.port()) == (local, remote)
            {
                return stream.set_nodelay(true).is_ok();
            }
        }
        false
    }

    #[cfg(not(target_os = "linux"))]
    fn set_on_socket(_local: u16, _remote: u16) -> bool {
        false
    }
}

fn sqlx_drivers() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(sqlx::any::install_default_drivers);
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
