//! `tributary admin …`: headless setup of tenants, their console accounts and API
//! tokens, for scripts and first deployments, and account management without SQL:
//! list, change a role, disable or enable, reset a password, remove.
//!
//! An account's email names it across tenants (an email signs in to one tenant), so
//! the account commands take the email alone. The store flags (`--data-dir`,
//! `--database-url`, `--master-key-file`) are accepted before or after the subcommand.

use super::setup::StoreArgs;
use super::signal::async_runtime;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use rand::Rng;
use rand::distributions::Alphanumeric;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use tributary_store::{MemberRole, Store, TenantId, UserView};

/// The actor headless setup is audited as.
const ADMIN_ACTOR: &str = "tributary admin";

/// Characters of a generated password.
const GENERATED_PASSWORD_CHARS: usize = 24;

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    pub store: AdminStoreArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// [`StoreArgs`], global: the flags may follow the subcommand
/// (`tributary admin set-role EMAIL admin --data-dir DIR`).
#[derive(Args, Debug)]
pub struct AdminStoreArgs {
    /// Directory of the embedded SQLite database and the generated master key file.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_DATA_DIR",
        default_value = "tributary-data"
    )]
    pub data_dir: PathBuf,
    /// A postgres:// URL: use PostgreSQL instead of the embedded SQLite file in the data
    /// directory.
    #[arg(long, global = true, env = "TRIBUTARY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File with the base64 master key that encrypts credentials at rest (default:
    /// master.key in the data directory). The TRIBUTARY_MASTER_KEY variable, when set,
    /// is the key itself and wins.
    #[arg(long, global = true, env = "TRIBUTARY_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
}

impl AdminStoreArgs {
    fn store_args(self) -> StoreArgs {
        StoreArgs {
            data_dir: self.data_dir,
            database_url: self.database_url,
            master_key_file: self.master_key_file,
        }
    }
}

// The subcommand names (create-tenant, create-user, create-api-token) are the interface.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a tenant (an organization); doing it again changes nothing.
    CreateTenant {
        /// Short id used in URLs and API calls (letters, digits, `-`).
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a console account for a tenant. The password is read from the first line
    /// of standard input with --password-stdin, else generated and printed once.
    CreateUser {
        /// The tenant's id.
        tenant: String,
        /// The account's email address: what it signs in with.
        email: String,
        /// What the account may do: an admin manages the tenant, a member sees only
        /// their own mailbox settings.
        #[arg(long, value_enum, default_value_t = Role::Member)]
        role: Role,
        /// Read the password from standard input (at least 12 characters, hard to guess).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token acting as an existing console account (with that account's
    /// role). The secret is printed once; only its hash is stored.
    CreateApiToken {
        /// The tenant's id.
        tenant: String,
        /// The console account the token acts as.
        #[arg(long)]
        user: String,
        /// What uses the token (shown in the console's token list).
        #[arg(long)]
        name: String,
    },
    /// List a tenant's console accounts: email, role, active or disabled, created and
    /// last sign-in (UTC), one per line.
    ListUsers {
        /// The tenant's id.
        tenant: String,
    },
    /// Change an account's role; it holds from the account's next request. The tenant's
    /// last active admin cannot be demoted.
    SetRole {
        /// The account's email address.
        email: String,
        /// The new role.
        #[arg(value_enum)]
        role: Role,
    },
    /// Disable an account: it cannot sign in, its sessions end and its API tokens are
    /// revoked at once. The tenant's last active admin cannot be disabled.
    DisableUser {
        /// The account's email address.
        email: String,
    },
    /// Enable a disabled account: it can sign in again (revoked tokens stay revoked).
    EnableUser {
        /// The account's email address.
        email: String,
    },
    /// Give an account a new generated password, printed once; its sessions end.
    ResetPassword {
        /// The account's email address.
        email: String,
    },
    /// Remove an account: its sessions end and its API tokens are revoked and deleted;
    /// the audit log keeps what it did. The tenant's last active admin cannot be removed.
    RemoveUser {
        /// The account's email address.
        email: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Admin,
    Member,
}

impl From<Role> for MemberRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => MemberRole::Admin,
            Role::Member => MemberRole::Member,
        }
    }
}

pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let store_args = args.store.store_args();
    async_runtime()?.block_on(async move {
        let store = store_args.open().await?;
        let outcome = dispatch(&store, args.command).await;
        store.close().await;
        outcome?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn dispatch(store: &Store, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateTenant { id, name } => {
            let tenant = tenant_id(&id)?;
            store
                .create_tenant(&tenant, name.as_deref().unwrap_or(&id))
                .await?;
            println!("tenant {id} ready");
        }
        AdminCommand::CreateUser {
            tenant,
            email,
            role,
            password_stdin,
        } => create_user(store, &tenant_id(&tenant)?, &email, role, password_stdin).await?,
        AdminCommand::CreateApiToken { tenant, user, name } => {
            let tenant = tenant_id(&tenant)?;
            let account = store
                .user_by_email(&tenant, &user)
                .await?
                .with_context(|| format!("no console user {user} in tenant {}", tenant.0))?;
            let created = store
                .create_api_token(&tenant, account.id, &name, ADMIN_ACTOR)
                .await?;
            println!("{}", created.secret);
            eprintln!(
                "API token {:?} for {user} created; the secret above is shown only once",
                created.token.name
            );
        }
        AdminCommand::ListUsers { tenant } => list_users(store, &tenant_id(&tenant)?).await?,
        AdminCommand::SetRole { email, role } => {
            let account = account(store, &email).await?;
            let changed = store
                .set_user_role(&account.tenant, account.id, role.into(), ADMIN_ACTOR)
                .await?;
            eprintln!("{} is now {}", changed.email, role_name(changed.role));
        }
        AdminCommand::DisableUser { email } => {
            let account = account(store, &email).await?;
            store
                .set_user_active(&account.tenant, account.id, false, ADMIN_ACTOR)
                .await?;
            eprintln!(
                "{} is disabled: its sessions ended and its API tokens are revoked",
                account.email
            );
        }
        AdminCommand::EnableUser { email } => {
            let account = account(store, &email).await?;
            store
                .set_user_active(&account.tenant, account.id, true, ADMIN_ACTOR)
                .await?;
            eprintln!("{} is enabled", account.email);
        }
        AdminCommand::ResetPassword { email } => reset_password(store, &email).await?,
        AdminCommand::RemoveUser { email } => {
            let account = account(store, &email).await?;
            store
                .remove_user(&account.tenant, account.id, ADMIN_ACTOR)
                .await?;
            eprintln!("{} is removed", account.email);
        }
    }
    Ok(())
}

/// A tenant id: 1 to 63 letters, digits or `-`.
pub fn tenant_id(id: &str) -> anyhow::Result<TenantId> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    anyhow::ensure!(
        valid,
        "tenant id `{id}` must be 1 to 63 letters, digits or `-`"
    );
    Ok(TenantId::new(id))
}

/// The account with `email`, in whichever tenant it is.
async fn account(store: &Store, email: &str) -> anyhow::Result<UserView> {
    store.account_by_email(email).await?.with_context(|| {
        format!("no console account {email}: `tributary admin list-users TENANT` lists them")
    })
}

fn role_name(role: MemberRole) -> &'static str {
    match role {
        MemberRole::Admin => "admin",
        MemberRole::Member => "member",
    }
}

async fn list_users(store: &Store, tenant: &TenantId) -> anyhow::Result<()> {
    anyhow::ensure!(
        store.tenant_name(tenant).await?.is_some(),
        "tenant {} does not exist: create it with `tributary admin create-tenant`",
        tenant.0
    );
    for user in store.users(tenant).await? {
        println!(
            "{}\t{}\t{}\tcreated {}\tlast sign-in {}",
            user.email,
            role_name(user.role),
            if user.active { "active" } else { "disabled" },
            utc(Some(user.created_ms)),
            utc(user.last_signin_ms),
        );
    }
    Ok(())
}

/// A Unix-milliseconds time as `YYYY-MM-DD HH:MM UTC`, `never` when absent.
fn utc(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "never".to_owned();
    };
    let (days, day_ms) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let minutes = day_ms / 60_000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn generated_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(GENERATED_PASSWORD_CHARS)
        .map(char::from)
        .collect()
}

async fn reset_password(store: &Store, email: &str) -> anyhow::Result<()> {
    let account = account(store, email).await?;
    let password = generated_password();
    let hash = tributary_server::auth::hash_new_password(&password, &[&account.email]).await?;
    store
        .reset_user_password(&account.tenant, account.id, &hash, true, ADMIN_ACTOR)
        .await?;
    println!("{password}");
    eprintln!(
        "{} has a new password; the password above is shown only once and its sessions ended",
        account.email
    );
    Ok(())
}

async fn create_user(
    store: &Store,
    tenant: &TenantId,
    email: &str,
    role: Role,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (generated_password(), true)
    };
    tributary_server::auth::create_user(store, tenant, email, role.into(), &password, ADMIN_ACTOR)
        .await?;
    if generated {
        println!("{password}");
        eprintln!("user {email} created; the generated password above is shown only once");
    } else {
        eprintln!("user {email} created");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(utc(None), "never");
        assert_eq!(utc(Some(0)), "1970-01-01 00:00 UTC");
        // 2024-02-29 13:45:10 UTC, a leap day.
        assert_eq!(utc(Some(1_709_214_310_000)), "2024-02-29 13:45 UTC");
        assert_eq!(utc(Some(-86_400_000)), "1969-12-31 00:00 UTC");
    }
}
