//! User Delegation Sync: the organization's directory, read as the admin, becomes the
//! tenant's members and mailbox links. Every active user with a mailbox is linked; the
//! others are skipped with the reason, never silently.

use crate::error::SyncError;
use crate::pacing::{Pacer, units};
use serde::Serialize;
use std::collections::BTreeSet;
use tributary_core::{
    CapturePolicy, DirectoryAccount, Extractor, FreeMailList, TenantDirectory, TenantError,
};
use tributary_google::GoogleConnector;
use tributary_store::{LinkId, MemberRole, Store, TenantId};

/// Why a directory account gets no mailbox link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Suspended,
    Archived,
    NoMailbox,
}

impl SkipReason {
    /// Why `account` is not synced, if it is not.
    pub fn of(account: &DirectoryAccount) -> Option<Self> {
        if account.suspended {
            Some(SkipReason::Suspended)
        } else if account.archived {
            Some(SkipReason::Archived)
        } else if !account.has_mailbox {
            Some(SkipReason::NoMailbox)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedAccount {
    pub email: String,
    pub reason: SkipReason,
}

/// A linked mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxLink {
    pub link: LinkId,
    pub mailbox: String,
}

/// What a delegation sync found and did.
#[derive(Debug, Clone)]
pub struct DelegationOutcome {
    /// The tenant as extraction classifies against it: its domains and synced members.
    pub directory: TenantDirectory,
    pub links: Vec<MailboxLink>,
    pub skipped: Vec<SkippedAccount>,
}

impl DelegationOutcome {
    /// The extractor for this tenant.
    pub fn extractor(&self, free_mail: FreeMailList, policy: CapturePolicy) -> Extractor {
        Extractor::new(self.directory.clone(), free_mail, policy)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("the directory lists an unusable address: {0}")]
    Directory(#[from] TenantError),
}

/// Lists the directory as `admin_email`, adds every synced account as a member (primary
/// address and aliases) with a mailbox link, and builds the tenant directory from the
/// organization's `domains` plus every domain an account address uses.
pub async fn sync_users(
    store: &Store,
    tenant: &TenantId,
    connector: &GoogleConnector,
    admin_email: &str,
    domains: &[String],
    pacer: &Pacer,
) -> Result<DelegationOutcome, DelegationError> {
    let directory_client = connector.directory(admin_email);
    let accounts = pacer
        .call(admin_email, units::DIRECTORY, || {
            directory_client.list_users()
        })
        .await
        .map_err(SyncError::from)?;
    let mut directory = TenantDirectory::new();
    for domain in tenant_domains(domains, &accounts) {
        directory.add_domain(&domain)?;
    }
    let mut links = Vec::new();
    let mut skipped = Vec::new();
    for account in &accounts {
        if let Some(reason) = SkipReason::of(account) {
            skipped.push(SkippedAccount {
                email: account.primary_email.clone(),
                reason,
            });
            continue;
        }
        directory.add_member(
            &account.primary_email,
            account.aliases.iter().map(String::as_str),
        )?;
        links.push(link_account(store, tenant, account).await?);
    }
    Ok(DelegationOutcome {
        directory,
        links,
        skipped,
    })
}

async fn link_account(
    store: &Store,
    tenant: &TenantId,
    account: &DirectoryAccount,
) -> Result<MailboxLink, SyncError> {
    let aliases: Vec<&str> = account.aliases.iter().map(String::as_str).collect();
    let role = if account.is_admin {
        MemberRole::Admin
    } else {
        MemberRole::Member
    };
    let member = store
        .add_member(tenant, &account.primary_email, &aliases, role)
        .await?;
    let link = store
        .link_mailbox(tenant, member, &account.primary_email)
        .await?;
    Ok(MailboxLink {
        link,
        mailbox: account.primary_email.to_lowercase(),
    })
}

/// The given domains and the domain of every address in the directory, lowercased.
fn tenant_domains(domains: &[String], accounts: &[DirectoryAccount]) -> BTreeSet<String> {
    let from_accounts = accounts
        .iter()
        .flat_map(DirectoryAccount::addresses)
        .filter_map(|address| address.rsplit_once('@').map(|(_, domain)| domain));
    domains
        .iter()
        .map(String::as_str)
        .chain(from_accounts)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(email: &str, aliases: &[&str]) -> DirectoryAccount {
        DirectoryAccount {
            id: "1".into(),
            primary_email: email.into(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
            suspended: false,
            archived: false,
            is_admin: false,
            has_mailbox: true,
            full_name: None,
        }
    }

    #[test]
    fn skips_suspended_archived_and_mailboxless_accounts_with_the_reason() {
        let active = account("ann@acme.example", &[]);
        assert_eq!(SkipReason::of(&active), None);
        let suspended = DirectoryAccount {
            suspended: true,
            archived: true,
            ..active.clone()
        };
        assert_eq!(SkipReason::of(&suspended), Some(SkipReason::Suspended));
        let archived = DirectoryAccount {
            archived: true,
            ..active.clone()
        };
        assert_eq!(SkipReason::of(&archived), Some(SkipReason::Archived));
        let no_mailbox = DirectoryAccount {
            has_mailbox: false,
            ..active
        };
        assert_eq!(SkipReason::of(&no_mailbox), Some(SkipReason::NoMailbox));
    }

    #[test]
    fn domains_come_from_the_organization_and_every_address() {
        let accounts = [account("Ann@Acme.example", &["ann@acme-labs.example"])];
        let domains = tenant_domains(&["unused.example".to_owned()], &accounts);
        let expected: BTreeSet<String> = ["acme-labs.example", "acme.example", "unused.example"]
            .map(String::from)
            .into();
        assert_eq!(domains, expected);
    }
}
