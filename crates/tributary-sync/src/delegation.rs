//! User Delegation Sync: the organization's directory, read as the admin, becomes the
//! tenant's members and mailbox links. Every active user with a mailbox is linked; the
//! others are skipped with the reason, never silently.

use crate::connector::Connector;
use crate::engine::clock_ms;
use crate::error::SyncError;
use crate::pacing::Pacer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use tributary_core::{
    CapturePolicy, DirectoryAccount, Extractor, FreeMailList, TenantDirectory, TenantError,
};
use tributary_store::{
    LinkId, LinkStatus, LinkView, MemberRole, MemberView, SYSTEM_ACTOR, Store, TenantId,
};

/// Why a directory account or a member gets no mailbox link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Suspended,
    Archived,
    NoMailbox,
    /// A member no directory account matches, by primary address or alias (never
    /// created there, or deleted since).
    NotInDirectory,
}

impl SkipReason {
    /// The reason in the console's words.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Suspended => "suspended in Google Workspace",
            SkipReason::Archived => "archived in Google Workspace",
            SkipReason::NoMailbox => "has no Gmail mailbox (mail service not set up)",
            SkipReason::NotInDirectory => "no directory account has this address or alias",
        }
    }
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    connector: &Connector,
    admin_email: &str,
    domains: &[String],
    pacer: &Pacer,
) -> Result<DelegationOutcome, DelegationError> {
    let accounts = connector.accounts(admin_email, pacer).await?;
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

/// A member matched to a directory account, with its mailbox link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedMember {
    /// The member's primary address in Tributary.
    pub member: String,
    /// The account's primary address: the mailbox synced.
    pub mailbox: String,
    pub link: i64,
    /// True when this run created the link.
    pub new_link: bool,
}

/// A member whose link this run stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkedMember {
    pub member: String,
    pub reason: SkipReason,
}

/// The stored and shown result of a User Delegation Sync (*Rebuild*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegationReport {
    pub at_ms: i64,
    /// Whom the directory was read as.
    pub admin_email: String,
    pub directory_accounts: usize,
    /// The organization's domains, from every address in the directory.
    pub domains: Vec<String>,
    pub matched: Vec<MatchedMember>,
    /// Accounts and members left without a link, with the reason.
    pub unmatched: Vec<SkippedAccount>,
    /// Links this run stopped because their account was suspended, archived, lost its
    /// mailbox or left the directory.
    pub unlinked: Vec<UnlinkedMember>,
}

/// Reads the directory and brings members and links in line with it: accounts match
/// existing members by any address (primary or alias) or become new members; every
/// active account with a mailbox gets a link; a member whose account is suspended,
/// archived, mailbox-less or gone is marked inactive and its link unlinked; a member
/// whose account is active again gets its link back. An administrator's own unlink of
/// an active member stays.
pub async fn rebuild_links(
    store: &Store,
    tenant: &TenantId,
    connector: &Connector,
    admin_email: &str,
    pacer: &Pacer,
) -> Result<DelegationReport, SyncError> {
    let accounts = connector.accounts(admin_email, pacer).await?;
    let members = store.members(tenant).await?;
    let links = store.links(tenant).await?;
    let by_address = members_by_address(&members);
    let mut report = DelegationReport {
        at_ms: clock_ms(),
        admin_email: admin_email.to_owned(),
        directory_accounts: accounts.len(),
        domains: tenant_domains(&[], &accounts).into_iter().collect(),
        matched: Vec::new(),
        unmatched: Vec::new(),
        unlinked: Vec::new(),
    };
    let mut seen_members = BTreeSet::new();
    for account in &accounts {
        let existing = account
            .addresses()
            .find_map(|a| by_address.get(a.to_lowercase().as_str()).copied());
        if let Some(member) = existing {
            seen_members.insert(member.id);
        }
        if let Some(reason) = SkipReason::of(account) {
            report.unmatched.push(SkippedAccount {
                email: account.primary_email.to_lowercase(),
                reason,
            });
            if let Some(member) = existing {
                stop_member(store, tenant, member, &links, reason, &mut report).await?;
            }
            continue;
        }
        let matched = match_account(store, tenant, account, existing, &links).await?;
        report.matched.push(matched);
    }
    for member in members.iter().filter(|m| !seen_members.contains(&m.id)) {
        report.unmatched.push(SkippedAccount {
            email: member.email.clone(),
            reason: SkipReason::NotInDirectory,
        });
        stop_member(
            store,
            tenant,
            member,
            &links,
            SkipReason::NotInDirectory,
            &mut report,
        )
        .await?;
    }
    // New members claimed their earlier mail as they were added; this catches pages
    // that engines built from the previous directory committed since (they still name
    // a new member `internal`). Finding nothing to claim is one query.
    store.claim_unclaimed_participants(tenant).await?;
    Ok(report)
}

fn members_by_address(members: &[MemberView]) -> HashMap<&str, &MemberView> {
    members
        .iter()
        .flat_map(|m| {
            std::iter::once(m.email.as_str())
                .chain(m.aliases.iter().map(String::as_str))
                .map(move |address| (address, m))
        })
        .collect()
}

/// Links an active account, to the member it matched or a new one.
async fn match_account(
    store: &Store,
    tenant: &TenantId,
    account: &DirectoryAccount,
    existing: Option<&MemberView>,
    links: &[LinkView],
) -> Result<MatchedMember, SyncError> {
    let addresses: Vec<&str> = account.addresses().collect();
    let primary = existing.map_or(account.primary_email.as_str(), |m| m.email.as_str());
    let member = store
        .add_member(tenant, primary, &addresses, role_of(account))
        .await?;
    let mailbox = account.primary_email.to_lowercase();
    let previous = links.iter().find(|l| l.mailbox == mailbox);
    let link = store.link_mailbox(tenant, member, &mailbox).await?;
    if existing.is_some_and(|m| !m.active) {
        // Back from suspension: undo what the suspension did.
        store.set_member_active(tenant, member, true).await?;
        if previous.is_some_and(|l| l.status == LinkStatus::Unlinked) {
            store
                .set_link_status(tenant, link, LinkStatus::Pending, SYSTEM_ACTOR)
                .await?;
        }
    }
    Ok(MatchedMember {
        member: primary.to_lowercase(),
        mailbox,
        link: link.0,
        new_link: previous.is_none(),
    })
}

/// Marks a member inactive and unlinks its running link, recording why.
async fn stop_member(
    store: &Store,
    tenant: &TenantId,
    member: &MemberView,
    links: &[LinkView],
    reason: SkipReason,
    report: &mut DelegationReport,
) -> Result<(), SyncError> {
    if member.active {
        store.set_member_active(tenant, member.id, false).await?;
    }
    for link in links
        .iter()
        .filter(|l| l.member == member.email && l.status != LinkStatus::Unlinked)
    {
        store
            .set_link_status(tenant, link.id, LinkStatus::Unlinked, SYSTEM_ACTOR)
            .await?;
        report.unlinked.push(UnlinkedMember {
            member: member.email.clone(),
            reason,
        });
    }
    Ok(())
}

fn role_of(account: &DirectoryAccount) -> MemberRole {
    if account.is_admin {
        MemberRole::Admin
    } else {
        MemberRole::Member
    }
}

async fn link_account(
    store: &Store,
    tenant: &TenantId,
    account: &DirectoryAccount,
) -> Result<MailboxLink, SyncError> {
    let aliases: Vec<&str> = account.aliases.iter().map(String::as_str).collect();
    let member = store
        .add_member(tenant, &account.primary_email, &aliases, role_of(account))
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
