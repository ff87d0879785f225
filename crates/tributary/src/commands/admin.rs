//! `tributary admin …`: headless setup of tenants and their console users and API
//! tokens, for scripts and first deployments.

use super::setup::StoreArgs;
use super::signal::async_runtime;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use rand::Rng;
use rand::distributions::Alphanumeric;
use std::io::BufRead;
use std::process::ExitCode;
use tributary_store::{MemberRole, Store, TenantId};

/// The actor headless setup is audited as.
const ADMIN_ACTOR: &str = "tributary admin";

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
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
    /// Create a console sign-in for a tenant. The password is read from the first line
    /// of standard input with --password-stdin, else generated and printed once.
    CreateUser {
        tenant: String,
        email: String,
        #[arg(long, value_enum, default_value_t = Role::Member)]
        role: Role,
        /// Read the password (at least 12 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an API token acting as an existing console user (with that user's role).
    /// The secret is printed once; only its hash is stored.
    CreateApiToken {
        tenant: String,
        /// The console user the token acts as.
        #[arg(long)]
        user: String,
        /// What uses the token (shown in the console's token list).
        #[arg(long)]
        name: String,
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
    async_runtime()?.block_on(async move {
        let store = args.store.open().await?;
        match args.command {
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
            } => create_user(&store, &tenant_id(&tenant)?, &email, role, password_stdin).await?,
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
        }
        store.close().await;
        Ok(ExitCode::SUCCESS)
    })
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
        let password: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(20)
            .map(char::from)
            .collect();
        (password, true)
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
