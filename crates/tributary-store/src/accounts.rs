//! Console accounts, sign-in sessions and API tokens.
//!
//! The store keeps hashes only. Passwords arrive already hashed (an argon2 PHC string
//! made by the server, which owns the password algorithm); session tokens and API token
//! secrets are generated here, handed out once, and kept as SHA-256 hex: they are 256
//! random bits, so a fast hash is enough and a lookup by hash leaks nothing useful.
//! An email belongs to one account across all tenants, so sign-in needs no tenant.
//!
//! An account (a console sign-in) is what decides access: its role and whether it is
//! active are read from its row on every session and API token lookup, so a change
//! takes effect on the next request. Disabling an account also ends its sessions and
//! revokes its tokens in the same transaction. A tenant always keeps one active admin:
//! removing, disabling or demoting the last one is refused inside the transaction
//! that would do it. Member records (`members`, the owners of captured mailboxes)
//! decide nothing about access.

use crate::error::StoreError;
use crate::links::{AuditEvent, insert_audit};
use crate::store::{Backend, MemberId, MemberRole, Store, TenantId, WriteTransaction, now_ms};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;
use tributary_core::EmailAddress;

/// What every API token secret starts with, so leaked tokens are easy to scan for.
pub const API_TOKEN_PREFIX: &str = "trb_";

/// How stale `last_used_ms` may get before a use is written again.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

/// Characters of a token secret kept in clear for display (prefix included).
const DISPLAY_PREFIX_CHARS: usize = 12;

/// A console account's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// An API token's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiTokenId(pub i64);

/// A console account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    pub id: UserId,
    pub tenant: TenantId,
    pub email: String,
    pub role: MemberRole,
    pub created_ms: i64,
    /// False once disabled: it cannot sign in, and has no sessions or live tokens.
    pub active: bool,
    /// When a session was last opened for it.
    pub last_signin_ms: Option<i64>,
}

/// An account with its password hash, for the server to verify a password against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCredentials {
    pub user: UserView,
    /// The argon2 PHC string.
    pub password_hash: String,
}

/// A live sign-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub user: UserView,
    /// The token every form of this session must carry back.
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// A new session: the token to set as the cookie (shown once, stored hashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub token: String,
    pub csrf_token: String,
    pub expires_ms: i64,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenView {
    pub id: ApiTokenId,
    pub tenant: TenantId,
    pub user: UserId,
    /// The account's email, whose role the token acts with.
    pub user_email: String,
    pub name: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// A token just created: its secret is returned here and never again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub token: ApiTokenView,
    pub secret: String,
}

/// What a presented API token authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenAuth {
    pub token: ApiTokenView,
    pub user: UserView,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with email {0} already exists: pick another address")]
    EmailTaken(String),
    #[error("`{0}` is not an email address")]
    InvalidEmail(String),
    #[error("tenant {0} does not exist: create it first")]
    UnknownTenant(String),
    #[error("account {user} does not belong to tenant {tenant}")]
    UnknownUser { tenant: String, user: i64 },
    #[error("API token {token} does not belong to tenant {tenant}")]
    UnknownToken { tenant: String, token: i64 },
    #[error("the token name is empty: name it after what uses it")]
    EmptyTokenName,
    #[error(
        "{email} is the last active admin of tenant {tenant}: make another account admin first"
    )]
    LastAdmin { tenant: String, email: String },
    #[error("account {email} is disabled: enable it first")]
    Disabled { email: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AccountError {
    fn from(error: sqlx::Error) -> Self {
        AccountError::Store(StoreError::Database(error))
    }
}

/// SHA-256 of `secret` as lowercase hex: how session and API tokens are stored.
pub fn token_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 32 random bytes from the operating system, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Admin => "admin",
        MemberRole::Member => "member",
    }
}

fn role_from_name(name: &str) -> MemberRole {
    if name == "admin" {
        MemberRole::Admin
    } else {
        MemberRole::Member
    }
}

/// The columns [`user_view`] reads, in its order; queries append theirs after them.
const USER_COLUMNS: &str =
    "u.id, u.tenant_id, u.email, u.role, u.created_ms, u.disabled_ms, u.last_signin_ms";
/// How many columns [`USER_COLUMNS`] is.
const USER_COLUMN_COUNT: usize = 7;

fn user_view(row: &AnyRow) -> Result<UserView, StoreError> {
    let role: String = row.try_get(3)?;
    let disabled_ms: Option<i64> = row.try_get(5)?;
    Ok(UserView {
        id: UserId(row.try_get(0)?),
        tenant: TenantId(row.try_get(1)?),
        email: row.try_get(2)?,
        role: role_from_name(&role),
        created_ms: row.try_get(4)?,
        active: disabled_ms.is_none(),
        last_signin_ms: row.try_get(6)?,
    })
}

const TOKEN_SELECT: &str = "
    SELECT t.id, t.tenant_id, t.user_id, u.email, t.name, t.prefix, t.created_ms,
           t.last_used_ms, t.revoked_ms
    FROM api_tokens t JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id";

fn token_view(row: &AnyRow) -> Result<ApiTokenView, StoreError> {
    Ok(ApiTokenView {
        id: ApiTokenId(row.try_get(0)?),
        tenant: TenantId(row.try_get(1)?),
        user: UserId(row.try_get(2)?),
        user_email: row.try_get(3)?,
        name: row.try_get(4)?,
        prefix: row.try_get(5)?,
        created_ms: row.try_get(6)?,
        last_used_ms: row.try_get(7)?,
        revoked_ms: row.try_get(8)?,
    })
}

impl Store {
    /// The tenant's display name, if the tenant exists.
    pub async fn tenant_name(&self, tenant: &TenantId) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT name FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Creates a console account (email lowercased) with an argon2 PHC `password_hash`
    /// made by the caller, audited as done by `actor`.
    pub async fn create_user(
        &self,
        tenant: &TenantId,
        email: &str,
        role: MemberRole,
        password_hash: &str,
        actor: &str,
    ) -> Result<UserId, AccountError> {
        // The one validator of typed addresses, so every way an account is made (API,
        // console, CLI) accepts the same addresses.
        let email = match EmailAddress::parse_mailbox(email) {
            Ok(address) => address.as_str().to_owned(),
            Err(_) => return Err(AccountError::InvalidEmail(shortened(email))),
        };
        let mut tx = self.begin_write().await?;
        let tenant_exists = sqlx::query("SELECT id FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if !tenant_exists {
            return Err(AccountError::UnknownTenant(tenant.0.clone()));
        }
        let taken = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(&mut **tx)
            .await?
            .is_some();
        if taken {
            return Err(AccountError::EmailTaken(email));
        }
        let at_ms = now_ms();
        let id: i64 = sqlx::query(
            "INSERT INTO users (tenant_id, email, role, password_hash, created_ms)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(&email)
        .bind(role_name(role))
        .bind(password_hash)
        .bind(at_ms)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        let event = AuditEvent {
            at_ms,
            actor: actor.to_owned(),
            action: "account.created".to_owned(),
            subject: Some(email),
            detail: serde_json::json!({ "role": role_name(role) }),
        };
        insert_audit(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        Ok(UserId(id))
    }

    /// The active account with `email` (any tenant) and its password hash, for
    /// sign-in: a disabled account is not found.
    pub async fn user_credentials(
        &self,
        email: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u
             WHERE u.email = $1 AND u.disabled_ms IS NULL"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(UserCredentials {
                user: user_view(&row)?,
                password_hash: row.try_get(USER_COLUMN_COUNT)?,
            })
        })
        .transpose()
    }

    /// The tenant's account with `email`.
    pub async fn user_by_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Option<UserView>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.email = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_view).transpose()
    }

    /// The account with `email` in any tenant, active or not: how the command line
    /// names an account (an email belongs to one tenant).
    pub async fn account_by_email(&self, email: &str) -> Result<Option<UserView>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_view).transpose()
    }

    /// The tenant's account `user`; another tenant's id is not found.
    pub async fn user(
        &self,
        tenant: &TenantId,
        user: UserId,
    ) -> Result<Option<UserView>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_view).transpose()
    }

    /// Every account of the tenant (disabled ones too), by email.
    pub async fn users(&self, tenant: &TenantId) -> Result<Vec<UserView>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 ORDER BY u.email");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_view).collect()
    }

    /// The addresses of the tenant's active admin accounts: who is told when capture
    /// turns on (a disabled admin is told nothing).
    pub async fn active_admin_emails(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .users(tenant)
            .await?
            .into_iter()
            .filter(|user| user.active && user.role == MemberRole::Admin)
            .map(|user| user.email)
            .collect())
    }

    /// Replaces an account's password hash and ends its sessions.
    pub async fn set_user_password(
        &self,
        tenant: &TenantId,
        user: UserId,
        password_hash: &str,
    ) -> Result<(), AccountError> {
        let mut tx = self.begin_write().await?;
        let updated =
            sqlx::query("UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(user.0)
                .bind(password_hash)
                .execute(&mut **tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(unknown_user(tenant, user));
        }
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .execute(&mut **tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The member whose primary address is the account's email, if any: what a
    /// member-role account may see and manage.
    pub async fn member_of_user(&self, user: &UserView) -> Result<Option<MemberId>, StoreError> {
        let row = sqlx::query("SELECT id FROM members WHERE tenant_id = $1 AND email = $2")
            .bind(user.tenant.as_str())
            .bind(&user.email)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get(0).map(MemberId)).transpose()?)
    }

    /// Starts a session for `user` lasting `ttl_ms`. The returned token is the only
    /// copy; the store keeps its hash.
    pub async fn create_session(
        &self,
        tenant: &TenantId,
        user: UserId,
        ttl_ms: i64,
    ) -> Result<NewSession, AccountError> {
        let session = NewSession {
            token: random_token(),
            csrf_token: random_token(),
            expires_ms: now_ms().saturating_add(ttl_ms),
        };
        let mut tx = self.begin_write().await?;
        let account = locked_user(&mut tx, self.backend(), tenant, user).await?;
        if !account.active {
            return Err(AccountError::Disabled {
                email: account.email,
            });
        }
        sqlx::query("UPDATE users SET last_signin_ms = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
        // Expired sessions go whenever a new one starts: no sweeper needed.
        sqlx::query("DELETE FROM sessions WHERE expires_ms <= $1")
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, tenant_id, user_id, csrf_token, created_ms, expires_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash(&session.token))
        .bind(tenant.as_str())
        .bind(user.0)
        .bind(&session.csrf_token)
        .bind(now_ms())
        .bind(session.expires_ms)
        .execute(&mut **tx)
        .await?;
        tx.commit().await?;
        Ok(session)
    }

    /// The live (unexpired) session of `token`, with its account as it is now (role
    /// and all); a disabled account's session is not found.
    pub async fn session_by_token(&self, token: &str) -> Result<Option<SessionView>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_ms FROM sessions s
             JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_ms > $2 AND u.disabled_ms IS NULL"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash(token))
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(SessionView {
                user: user_view(&row)?,
                csrf_token: row.try_get(USER_COLUMN_COUNT)?,
                expires_ms: row.try_get(USER_COLUMN_COUNT + 1)?,
            })
        })
        .transpose()
    }

    /// Ends the session of `token` (signing out); unknown tokens are ignored.
    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates an API token acting as `user` (with that account's role), audited as
    /// done by `actor`. The secret is in the answer and nowhere else.
    pub async fn create_api_token(
        &self,
        tenant: &TenantId,
        user: UserId,
        name: &str,
        actor: &str,
    ) -> Result<NewApiToken, AccountError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AccountError::EmptyTokenName);
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", random_token());
        let prefix: String = secret.chars().take(DISPLAY_PREFIX_CHARS).collect();
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let account = locked_user(&mut tx, self.backend(), tenant, user).await?;
        if !account.active {
            return Err(AccountError::Disabled {
                email: account.email,
            });
        }
        let email = account.email;
        let id: i64 = sqlx::query(
            "INSERT INTO api_tokens (tenant_id, user_id, name, prefix, secret_hash, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(tenant.as_str())
        .bind(user.0)
        .bind(name)
        .bind(&prefix)
        .bind(token_hash(&secret))
        .bind(at_ms)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
        let event = AuditEvent {
            at_ms,
            actor: actor.to_owned(),
            action: "api_token.created".to_owned(),
            subject: Some(email.clone()),
            detail: serde_json::json!({ "token": id, "name": name, "prefix": prefix }),
        };
        insert_audit(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        Ok(NewApiToken {
            token: ApiTokenView {
                id: ApiTokenId(id),
                tenant: tenant.clone(),
                user,
                user_email: email,
                name: name.to_owned(),
                prefix,
                created_ms: at_ms,
                last_used_ms: None,
                revoked_ms: None,
            },
            secret,
        })
    }

    /// The unrevoked token whose secret is `secret`, and its account as it is now
    /// (the role the token acts with); records the use. A disabled account's token is
    /// not found.
    pub async fn api_token_by_secret(
        &self,
        secret: &str,
    ) -> Result<Option<ApiTokenAuth>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, t.id, t.name, t.prefix, t.created_ms, t.last_used_ms,
                    t.revoked_ms
             FROM api_tokens t JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id
             WHERE t.secret_hash = $1 AND t.revoked_ms IS NULL AND u.disabled_ms IS NULL"
        );
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash(secret))
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let user = user_view(&row)?;
        let column = |offset: usize| USER_COLUMN_COUNT + offset;
        let token = ApiTokenView {
            id: ApiTokenId(row.try_get(column(0))?),
            tenant: user.tenant.clone(),
            user: user.id,
            user_email: user.email.clone(),
            name: row.try_get(column(1))?,
            prefix: row.try_get(column(2))?,
            created_ms: row.try_get(column(3))?,
            last_used_ms: row.try_get(column(4))?,
            revoked_ms: row.try_get(column(5))?,
        };
        // At most one write a minute per token: a busy client must not queue a write
        // behind every read.
        sqlx::query(
            "UPDATE api_tokens SET last_used_ms = $2
             WHERE id = $1 AND (last_used_ms IS NULL OR last_used_ms < $3)",
        )
        .bind(token.id.0)
        .bind(now_ms())
        .bind(now_ms() - LAST_USED_GRANULARITY_MS)
        .execute(&self.pool)
        .await?;
        Ok(Some(ApiTokenAuth { token, user }))
    }

    /// Revokes a token of the tenant (again is a no-op), audited.
    pub async fn revoke_api_token(
        &self,
        tenant: &TenantId,
        token: ApiTokenId,
        actor: &str,
    ) -> Result<(), AccountError> {
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT name FROM api_tokens WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(token.0)
            .fetch_optional(&mut **tx)
            .await?;
        let Some(found) = found else {
            return Err(AccountError::UnknownToken {
                tenant: tenant.0.clone(),
                token: token.0,
            });
        };
        let name: String = found.try_get(0)?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_ms = $3
             WHERE tenant_id = $1 AND id = $2 AND revoked_ms IS NULL",
        )
        .bind(tenant.as_str())
        .bind(token.0)
        .bind(at_ms)
        .execute(&mut **tx)
        .await?;
        let event = AuditEvent {
            at_ms,
            actor: actor.to_owned(),
            action: "api_token.revoked".to_owned(),
            subject: None,
            detail: serde_json::json!({ "token": token.0, "name": name }),
        };
        insert_audit(&mut tx, tenant, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every API token of the tenant (revoked ones too), oldest first.
    pub async fn api_tokens(&self, tenant: &TenantId) -> Result<Vec<ApiTokenView>, StoreError> {
        let sql = format!("{TOKEN_SELECT} WHERE t.tenant_id = $1 ORDER BY t.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(token_view).collect()
    }

    /// Disables (`active` false) or enables an account, audited. Disabling ends its
    /// sessions and revokes its API tokens in the same transaction; enabling gives
    /// neither back (it signs in again, an admin makes new tokens). The tenant's last
    /// active admin cannot be disabled. Setting what already holds changes nothing.
    pub async fn set_user_active(
        &self,
        tenant: &TenantId,
        user: UserId,
        active: bool,
        actor: &str,
    ) -> Result<UserView, AccountError> {
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let admins = lock_active_admins(&mut tx, self.backend(), tenant).await?;
        let mut account = locked_user(&mut tx, self.backend(), tenant, user).await?;
        if account.active == active {
            return Ok(account);
        }
        let detail = if active {
            sqlx::query("UPDATE users SET disabled_ms = NULL WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(user.0)
                .execute(&mut **tx)
                .await?;
            serde_json::json!({ "account": user.0 })
        } else {
            guard_last_admin(tenant, &account, &admins)?;
            sqlx::query("UPDATE users SET disabled_ms = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(user.0)
                .bind(at_ms)
                .execute(&mut **tx)
                .await?;
            let ended = end_access(&mut tx, tenant, user, at_ms).await?;
            serde_json::json!({
                "account": user.0,
                "sessions_ended": ended.sessions,
                "tokens_revoked": ended.tokens,
            })
        };
        let action = if active {
            "account.enabled"
        } else {
            "account.disabled"
        };
        audit_account(
            &mut tx,
            tenant,
            actor,
            action,
            &account.email,
            detail,
            at_ms,
        )
        .await?;
        tx.commit().await?;
        account.active = active;
        Ok(account)
    }

    /// Changes an account's role, audited. The change holds from the account's next
    /// request: sessions and tokens read the role from the account row, so they are
    /// kept. The tenant's last active admin cannot be demoted.
    pub async fn set_user_role(
        &self,
        tenant: &TenantId,
        user: UserId,
        role: MemberRole,
        actor: &str,
    ) -> Result<UserView, AccountError> {
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let admins = lock_active_admins(&mut tx, self.backend(), tenant).await?;
        let mut account = locked_user(&mut tx, self.backend(), tenant, user).await?;
        if account.role == role {
            return Ok(account);
        }
        if role != MemberRole::Admin {
            guard_last_admin(tenant, &account, &admins)?;
        }
        sqlx::query("UPDATE users SET role = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .bind(role_name(role))
            .execute(&mut **tx)
            .await?;
        let detail = serde_json::json!({
            "account": user.0,
            "from": role_name(account.role),
            "to": role_name(role),
        });
        audit_account(
            &mut tx,
            tenant,
            actor,
            "account.role",
            &account.email,
            detail,
            at_ms,
        )
        .await?;
        tx.commit().await?;
        account.role = role;
        Ok(account)
    }

    /// Replaces an account's password hash with one an admin reset it to, ends its
    /// sessions, and audits it (whether the password was generated, never the
    /// password).
    pub async fn reset_user_password(
        &self,
        tenant: &TenantId,
        user: UserId,
        password_hash: &str,
        generated: bool,
        actor: &str,
    ) -> Result<UserView, AccountError> {
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let account = locked_user(&mut tx, self.backend(), tenant, user).await?;
        sqlx::query("UPDATE users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .bind(password_hash)
            .execute(&mut **tx)
            .await?;
        let sessions = delete_sessions(&mut tx, tenant, user).await?;
        let detail = serde_json::json!({
            "account": user.0,
            "generated": generated,
            "sessions_ended": sessions,
        });
        audit_account(
            &mut tx,
            tenant,
            actor,
            "account.password_reset",
            &account.email,
            detail,
            at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Removes an account, audited: its sessions end, its API tokens stop working and
    /// are deleted with it (the audit trail keeps their creation and this removal), and
    /// its email may be given to a new account later. The tenant's last active admin
    /// cannot be removed.
    pub async fn remove_user(
        &self,
        tenant: &TenantId,
        user: UserId,
        actor: &str,
    ) -> Result<UserView, AccountError> {
        let at_ms = now_ms();
        let mut tx = self.begin_write().await?;
        let admins = lock_active_admins(&mut tx, self.backend(), tenant).await?;
        let account = locked_user(&mut tx, self.backend(), tenant, user).await?;
        guard_last_admin(tenant, &account, &admins)?;
        let ended = end_access(&mut tx, tenant, user, at_ms).await?;
        let tokens = sqlx::query("DELETE FROM api_tokens WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .execute(&mut **tx)
            .await?;
        let detail = serde_json::json!({
            "account": user.0,
            "role": role_name(account.role),
            "sessions_ended": ended.sessions,
            "tokens_revoked": ended.tokens,
            "tokens_deleted": tokens,
        });
        audit_account(
            &mut tx,
            tenant,
            actor,
            "account.removed",
            &account.email,
            detail,
            at_ms,
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }
}

/// The tenant's active admins, locked on PostgreSQL until the transaction ends (SQLite's
/// write transaction already keeps every other writer out). Every account change takes
/// these locks first, in id order: two changes cannot both count an admin the other is
/// taking away, and never wait on each other in a cycle.
async fn lock_active_admins(
    tx: &mut WriteTransaction,
    backend: Backend,
    tenant: &TenantId,
) -> Result<Vec<UserId>, StoreError> {
    let sql = match backend {
        Backend::Sqlite => {
            "SELECT id FROM users
             WHERE tenant_id = $1 AND role = 'admin' AND disabled_ms IS NULL ORDER BY id"
        }
        Backend::Postgres => {
            "SELECT id FROM users
             WHERE tenant_id = $1 AND role = 'admin' AND disabled_ms IS NULL ORDER BY id
             FOR UPDATE"
        }
    };
    let rows = sqlx::query(sql)
        .bind(tenant.as_str())
        .fetch_all(&mut ***tx)
        .await?;
    rows.iter().map(|row| Ok(UserId(row.try_get(0)?))).collect()
}

/// The tenant's account `user`, its row locked on PostgreSQL; another tenant's id is
/// unknown.
async fn locked_user(
    tx: &mut WriteTransaction,
    backend: Backend,
    tenant: &TenantId,
    user: UserId,
) -> Result<UserView, AccountError> {
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let sql =
        format!("SELECT {USER_COLUMNS} FROM users u WHERE u.tenant_id = $1 AND u.id = $2{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.as_str())
        .bind(user.0)
        .fetch_optional(&mut ***tx)
        .await?;
    match row {
        Some(row) => Ok(user_view(&row)?),
        None => Err(unknown_user(tenant, user)),
    }
}

/// Refuses to take admin rights from `account` when it is the last of `admins` (the
/// tenant's active admins, locked).
fn guard_last_admin(
    tenant: &TenantId,
    account: &UserView,
    admins: &[UserId],
) -> Result<(), AccountError> {
    if admins.contains(&account.id) && admins.len() <= 1 {
        return Err(AccountError::LastAdmin {
            tenant: tenant.0.clone(),
            email: account.email.clone(),
        });
    }
    Ok(())
}

/// What ending an account's access did.
struct EndedAccess {
    sessions: u64,
    tokens: u64,
}

/// Ends every session of `user` and revokes its live API tokens.
async fn end_access(
    tx: &mut WriteTransaction,
    tenant: &TenantId,
    user: UserId,
    at_ms: i64,
) -> Result<EndedAccess, StoreError> {
    let sessions = delete_sessions(tx, tenant, user).await?;
    let tokens = sqlx::query(
        "UPDATE api_tokens SET revoked_ms = $3
         WHERE tenant_id = $1 AND user_id = $2 AND revoked_ms IS NULL",
    )
    .bind(tenant.as_str())
    .bind(user.0)
    .bind(at_ms)
    .execute(&mut ***tx)
    .await?
    .rows_affected();
    Ok(EndedAccess { sessions, tokens })
}

async fn delete_sessions(
    tx: &mut WriteTransaction,
    tenant: &TenantId,
    user: UserId,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.as_str())
            .bind(user.0)
            .execute(&mut ***tx)
            .await?
            .rows_affected(),
    )
}

async fn audit_account(
    tx: &mut WriteTransaction,
    tenant: &TenantId,
    actor: &str,
    action: &str,
    email: &str,
    detail: serde_json::Value,
    at_ms: i64,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        at_ms,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: Some(email.to_owned()),
        detail,
    };
    insert_audit(tx, tenant, &event).await
}

fn unknown_user(tenant: &TenantId, user: UserId) -> AccountError {
    AccountError::UnknownUser {
        tenant: tenant.0.clone(),
        user: user.0,
    }
}

/// At most the first 80 characters of a rejected input, for its error message.
fn shortened(raw: &str) -> String {
    const SHOWN: usize = 80;
    let raw = raw.trim();
    match raw.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.to_owned(),
    }
}
