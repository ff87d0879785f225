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
    ConnectionKind, LinkId, LinkStatus, LinkView, MemberId, MemberRole, MemberView, SYSTEM_ACTOR,
    Store, TenantId,
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
    /// The member's mailbox is now synced under another address (it moved to another
    /// connected provider): the old link stops.
    MailboxMoved,
}

impl SkipReason {
    /// The reason in the console's words, as the account's provider calls it.
    pub fn describe(self, provider: ConnectionKind) -> &'static str {
        use ConnectionKind::{Google, Imap, Microsoft};
        match (self, provider) {
            (SkipReason::Suspended, Google) => "suspended in Google Workspace",
            (SkipReason::Suspended, Microsoft) => {
                "disabled in Microsoft Entra ID (sign-in blocked)"
            }
            (SkipReason::Suspended, Imap) => "disabled on the mail server",
            (SkipReason::Archived, Google) => "archived in Google Workspace",
            (SkipReason::Archived, Microsoft) => "inactive (archived) mailbox in Exchange Online",
            (SkipReason::Archived, Imap) => "archived on the mail server",
            (SkipReason::NoMailbox, Google) => "has no Gmail mailbox (mail service not set up)",
            (SkipReason::NoMailbox, Microsoft) => {
                "has no Exchange Online mailbox (no license with Exchange)"
            }
            (SkipReason::NoMailbox, Imap) => "has no mailbox on the mail server",
            (SkipReason::NotInDirectory, _) => "no directory account has this address or alias",
            (SkipReason::MailboxMoved, _) => "its mailbox is now synced under another address",
        }
    }
}

/// The provider of an entry in a stored report (`google`, `microsoft`).
fn provider_named(name: &str) -> ConnectionKind {
    match name {
        "microsoft" => ConnectionKind::Microsoft,
        "imap" => ConnectionKind::Imap,
        _ => ConnectionKind::Google,
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
    /// The directory that listed the account (`google`, `microsoft`), whose words
    /// describe the reason.
    #[serde(default = "google")]
    pub provider: String,
}

impl SkippedAccount {
    fn new(email: String, reason: SkipReason, provider: ConnectionKind) -> Self {
        SkippedAccount {
            email,
            reason,
            provider: provider.as_str().to_owned(),
        }
    }

    /// Why the account is not synced, in its provider's words.
    pub fn describe(&self) -> &'static str {
        self.reason.describe(provider_named(&self.provider))
    }
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
            skipped.push(SkippedAccount::new(
                account.primary_email.clone(),
                reason,
                connector.kind(),
            ));
            continue;
        }
        directory.add_member(
            &account.primary_email,
            account.aliases.iter().map(String::as_str),
        )?;
        links.push(link_account(store, tenant, account, connector.kind()).await?);
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
    /// The provider whose mailbox the link syncs, as links record it (`google`,
    /// `microsoft`).
    #[serde(default = "google")]
    pub provider: String,
    /// Why that provider, when another connected provider also has a mailbox for the
    /// member (also kept on the link as its `provider_reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reason: Option<String>,
}

/// Reports stored before providers were recorded are Google's.
fn google() -> String {
    ConnectionKind::Google.as_str().to_owned()
}

/// One connected provider's directory, as *Rebuild* reads it.
#[derive(Debug, Clone, Copy)]
pub struct ProviderDirectory<'a> {
    pub connector: &'a Connector,
    /// Whom the directory is read as (Google impersonates an admin; Graph names the
    /// pacing bucket).
    pub admin_email: &'a str,
    pub pacer: &'a Pacer,
}

/// One directory a *Rebuild* read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRead {
    /// As links record it (`google`, `microsoft`).
    pub provider: String,
    pub admin_email: String,
    pub accounts: usize,
}

/// A member whose link this run stopped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlinkedMember {
    pub member: String,
    pub reason: SkipReason,
    /// The provider whose directory gave the reason (`google`, `microsoft`).
    #[serde(default = "google")]
    pub provider: String,
}

impl UnlinkedMember {
    /// Why the link stopped, in its provider's words.
    pub fn describe(&self) -> &'static str {
        self.reason.describe(provider_named(&self.provider))
    }
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
    /// Every directory read, in the order the providers were connected (a tenant
    /// mid-migration has two).
    #[serde(default)]
    pub directories: Vec<DirectoryRead>,
}

/// Reads the directory of every connected provider (in the order they were connected)
/// and brings members and links in line with them: accounts match existing members by
/// any address (primary or alias) or become new members; accounts of several providers
/// sharing an address are one member, linked once, at the provider that hosts its
/// mailbox (the first connected, when both list one: the link's `provider_reason`
/// says so); a member whose accounts are all suspended, archived, mailbox-less or gone
/// is marked inactive and its link unlinked; a member whose account is active again
/// gets its link back. An administrator's own unlink of an active member stays.
pub async fn rebuild_links(
    store: &Store,
    tenant: &TenantId,
    directories: &[ProviderDirectory<'_>],
) -> Result<DelegationReport, SyncError> {
    let mut listed: Vec<(ConnectionKind, DirectoryAccount)> = Vec::new();
    let mut reads = Vec::new();
    for directory in directories {
        let provider = directory.connector.kind();
        let accounts = directory
            .connector
            .accounts(directory.admin_email, directory.pacer)
            .await?;
        reads.push(DirectoryRead {
            provider: provider.as_str().to_owned(),
            admin_email: directory.admin_email.to_owned(),
            accounts: accounts.len(),
        });
        listed.extend(accounts.into_iter().map(|account| (provider, account)));
    }
    let members = store.members(tenant).await?;
    let links = store.links(tenant).await?;
    let by_address = members_by_address(&members);
    let all_accounts: Vec<DirectoryAccount> = listed.iter().map(|(_, a)| a.clone()).collect();
    let mut report = DelegationReport {
        at_ms: clock_ms(),
        admin_email: directories
            .first()
            .map_or_else(String::new, |d| d.admin_email.to_owned()),
        directory_accounts: listed.len(),
        domains: tenant_domains(&[], &all_accounts).into_iter().collect(),
        matched: Vec::new(),
        unmatched: Vec::new(),
        unlinked: Vec::new(),
        directories: reads,
    };
    let connected: Vec<ConnectionKind> = directories.iter().map(|d| d.connector.kind()).collect();
    let mut seen_members = BTreeSet::new();
    for group in group_accounts(&listed, &by_address) {
        let existing = group
            .iter()
            .flat_map(|(_, account)| account.addresses())
            .find_map(|a| by_address.get(a.to_lowercase().as_str()).copied());
        if let Some(member) = existing {
            seen_members.insert(member.id);
        }
        let hosting: Vec<&(ConnectionKind, DirectoryAccount)> = group
            .iter()
            .copied()
            .filter(|(_, account)| SkipReason::of(account).is_none())
            .collect();
        if hosting.is_empty() {
            let mut first_reason = None;
            for (provider, account) in &group {
                let reason = SkipReason::of(account).unwrap_or(SkipReason::NoMailbox);
                first_reason.get_or_insert((reason, *provider));
                report.unmatched.push(SkippedAccount::new(
                    account.primary_email.to_lowercase(),
                    reason,
                    *provider,
                ));
            }
            if let (Some(member), Some((reason, provider))) = (existing, first_reason) {
                let why = (reason, Some(provider));
                stop_member(store, tenant, member, &links, why, &mut report).await?;
            }
            continue;
        }
        let addresses = group_addresses(&group);
        let current = links
            .iter()
            .find(|l| addresses.iter().any(|a| a.eq_ignore_ascii_case(&l.mailbox)))
            .map(|l| l.provider);
        let (target, account) = choose_host(&hosting, current, &connected);
        let matched =
            match_account(store, tenant, account, &addresses, existing, &links, target).await?;
        stop_other_links(store, tenant, &matched, &links, &mut report).await?;
        report.matched.push(matched);
    }
    for member in members.iter().filter(|m| !seen_members.contains(&m.id)) {
        let linked_at = links
            .iter()
            .find(|l| l.member == member.email)
            .map_or(ConnectionKind::Google, |l| l.provider);
        report.unmatched.push(SkippedAccount::new(
            member.email.clone(),
            SkipReason::NotInDirectory,
            linked_at,
        ));
        let why = (SkipReason::NotInDirectory, None);
        stop_member(store, tenant, member, &links, why, &mut report).await?;
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

/// The directory accounts of one person, across providers: accounts sharing an address
/// (primary or alias), or matching the same member, in the order listed.
fn group_accounts<'a>(
    listed: &'a [(ConnectionKind, DirectoryAccount)],
    by_address: &HashMap<&str, &MemberView>,
) -> Vec<Vec<&'a (ConnectionKind, DirectoryAccount)>> {
    let mut groups: Vec<Vec<&(ConnectionKind, DirectoryAccount)>> = Vec::new();
    let mut group_of_address: HashMap<String, usize> = HashMap::new();
    let mut group_of_member: HashMap<MemberId, usize> = HashMap::new();
    for entry in listed {
        let addresses: Vec<String> = entry.1.addresses().map(str::to_lowercase).collect();
        let member = addresses
            .iter()
            .find_map(|a| by_address.get(a.as_str()).map(|m| m.id));
        let known = member
            .and_then(|m| group_of_member.get(&m).copied())
            .or_else(|| {
                addresses
                    .iter()
                    .find_map(|a| group_of_address.get(a).copied())
            });
        let index = known.unwrap_or_else(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(entry);
        if let Some(member) = member {
            group_of_member.entry(member).or_insert(index);
        }
        for address in addresses {
            group_of_address.entry(address).or_insert(index);
        }
    }
    groups
}

/// Every address of a person's accounts, once, in the order listed.
fn group_addresses<'a>(group: &[&'a (ConnectionKind, DirectoryAccount)]) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    group
        .iter()
        .flat_map(|(_, account)| account.addresses())
        .filter(|a| seen.insert(a.to_lowercase()))
        .collect()
}

/// The provider whose name the console shows.
fn provider_name(provider: ConnectionKind) -> &'static str {
    match provider {
        ConnectionKind::Google => "Google Workspace",
        ConnectionKind::Microsoft => "Microsoft 365",
        ConnectionKind::Imap => "IMAP",
    }
}

/// Which of the accounts hosting a person's mailbox (in the order the providers were
/// connected; at least one) gets the link, and why when there was a choice. The rule
/// is deterministic and never flips a mailbox between providers while both list it:
/// a link already at one of them stays there; a new one goes to the provider connected
/// first. A link at a provider the tenant is not connected to (nothing was read there)
/// is left where it is.
fn choose_host<'a>(
    hosting: &[&'a (ConnectionKind, DirectoryAccount)],
    current: Option<ConnectionKind>,
    connected: &[ConnectionKind],
) -> (LinkTarget, &'a DirectoryAccount) {
    let first = hosting[0];
    if let Some(provider) = current.filter(|p| !connected.contains(p)) {
        let target = LinkTarget {
            provider,
            reason: None,
        };
        return (target, &first.1);
    }
    let kept = current.and_then(|p| hosting.iter().copied().find(|(k, _)| *k == p));
    let chosen = kept.unwrap_or(first);
    let others: Vec<String> = hosting
        .iter()
        .filter(|(provider, _)| *provider != chosen.0)
        .map(|(provider, account)| {
            format!(
                "{} ({})",
                provider_name(*provider),
                account.primary_email.to_lowercase()
            )
        })
        .collect();
    let why = if kept.is_some() {
        "where it was linked first"
    } else {
        "the provider connected first"
    };
    let reason = (!others.is_empty()).then(|| {
        format!(
            "also has a mailbox at {}; synced at {}, {why}",
            others.join(", "),
            provider_name(chosen.0)
        )
    });
    let target = LinkTarget {
        provider: chosen.0,
        reason,
    };
    (target, &chosen.1)
}

/// Where a matched account's link goes.
struct LinkTarget {
    provider: ConnectionKind,
    reason: Option<String>,
}

/// Unlinks a matched member's other links: its mailbox moved to another address (at
/// another provider), and the old mailbox is no longer the one to sync.
async fn stop_other_links(
    store: &Store,
    tenant: &TenantId,
    matched: &MatchedMember,
    links: &[LinkView],
    report: &mut DelegationReport,
) -> Result<(), SyncError> {
    for link in links.iter().filter(|l| {
        l.member == matched.member && l.id.0 != matched.link && l.status != LinkStatus::Unlinked
    }) {
        store
            .set_link_status(tenant, link.id, LinkStatus::Unlinked, SYSTEM_ACTOR)
            .await?;
        report.unlinked.push(UnlinkedMember {
            member: matched.member.clone(),
            reason: SkipReason::MailboxMoved,
            provider: link.provider.as_str().to_owned(),
        });
    }
    Ok(())
}

/// Links an active account, to the member it matched or a new one, with every address
/// the member's accounts have.
async fn match_account(
    store: &Store,
    tenant: &TenantId,
    account: &DirectoryAccount,
    addresses: &[&str],
    existing: Option<&MemberView>,
    links: &[LinkView],
    target: LinkTarget,
) -> Result<MatchedMember, SyncError> {
    let primary = existing.map_or(account.primary_email.as_str(), |m| m.email.as_str());
    let member = store
        .add_member(tenant, primary, addresses, role_of(account))
        .await?;
    store
        .set_member_display_name(tenant, member, account.full_name.as_deref())
        .await?;
    let mailbox = account.primary_email.to_lowercase();
    let previous = links.iter().find(|l| l.mailbox == mailbox);
    let link = store
        .link_mailbox_with_reason(
            tenant,
            member,
            &mailbox,
            target.provider,
            target.reason.as_deref(),
        )
        .await?;
    if previous.is_some_and(|l| l.provider != target.provider && l.status != LinkStatus::Unlinked) {
        // The mailbox moved provider: its full sync there is due now (the store keeps
        // what both sides saw as one activity).
        store
            .set_link_status(tenant, link, LinkStatus::Pending, SYSTEM_ACTOR)
            .await?;
    }
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
        provider: target.provider.as_str().to_owned(),
        provider_reason: target.reason,
    })
}

/// Marks a member inactive and unlinks its running link, recording why: the reason,
/// and the provider whose directory gave it (`None`: the link's own).
async fn stop_member(
    store: &Store,
    tenant: &TenantId,
    member: &MemberView,
    links: &[LinkView],
    (reason, provider): (SkipReason, Option<ConnectionKind>),
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
            provider: provider.unwrap_or(link.provider).as_str().to_owned(),
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
    provider: ConnectionKind,
) -> Result<MailboxLink, SyncError> {
    let aliases: Vec<&str> = account.aliases.iter().map(String::as_str).collect();
    let member = store
        .add_member(tenant, &account.primary_email, &aliases, role_of(account))
        .await?;
    let link = store
        .link_mailbox(tenant, member, &account.primary_email, provider)
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
    fn skip_reasons_are_worded_as_the_accounts_provider_calls_them() {
        let google = SkippedAccount::new(
            "a@x.example".into(),
            SkipReason::Suspended,
            ConnectionKind::Google,
        );
        assert_eq!(google.describe(), "suspended in Google Workspace");
        let microsoft = SkippedAccount::new(
            "a@x.example".into(),
            SkipReason::Suspended,
            ConnectionKind::Microsoft,
        );
        assert_eq!(
            microsoft.describe(),
            "disabled in Microsoft Entra ID (sign-in blocked)"
        );
        let mailboxless = SkippedAccount::new(
            "b@x.example".into(),
            SkipReason::NoMailbox,
            ConnectionKind::Microsoft,
        );
        assert!(
            mailboxless
                .describe()
                .contains("has no Exchange Online mailbox")
        );
        assert!(!mailboxless.describe().contains("Gmail"));
        assert!(
            SkipReason::NoMailbox
                .describe(ConnectionKind::Google)
                .contains("has no Gmail mailbox")
        );
        for reason in [
            SkipReason::Suspended,
            SkipReason::Archived,
            SkipReason::NoMailbox,
        ] {
            let words = reason.describe(ConnectionKind::Microsoft);
            assert!(
                !words.contains("Google") && !words.contains("Gmail"),
                "{words}"
            );
        }
        // Reports stored before providers were recorded are Google's.
        let stored: UnlinkedMember =
            serde_json::from_str(r#"{"member":"c@x.example","reason":"no_mailbox"}"#).unwrap();
        assert_eq!(stored.provider, "google");
        assert!(stored.describe().contains("Gmail"));
        let roundtrip: SkippedAccount =
            serde_json::from_value(serde_json::to_value(&microsoft).unwrap()).unwrap();
        assert_eq!(roundtrip, microsoft);
    }

    #[test]
    fn a_mailbox_at_two_providers_goes_to_the_first_connected_or_stays_where_it_is() {
        let google = (ConnectionKind::Google, account("ann@acme.example", &[]));
        let microsoft = (
            ConnectionKind::Microsoft,
            account("ann@acme.onmicrosoft.com", &["ann@acme.example"]),
        );
        let hosting = [&google, &microsoft];
        let connected = [ConnectionKind::Google, ConnectionKind::Microsoft];

        let (target, chosen) = choose_host(&hosting, None, &connected);
        assert_eq!(target.provider, ConnectionKind::Google);
        assert_eq!(chosen.primary_email, "ann@acme.example");
        assert_eq!(
            target.reason.as_deref(),
            Some(
                "also has a mailbox at Microsoft 365 (ann@acme.onmicrosoft.com); synced at \
                 Google Workspace, the provider connected first"
            )
        );

        let (kept, chosen) = choose_host(&hosting, Some(ConnectionKind::Microsoft), &connected);
        assert_eq!(kept.provider, ConnectionKind::Microsoft);
        assert_eq!(chosen.primary_email, "ann@acme.onmicrosoft.com");
        assert!(kept.reason.unwrap().ends_with("where it was linked first"));

        let (alone, _) = choose_host(&[&microsoft], Some(ConnectionKind::Google), &connected);
        assert_eq!(alone.provider, ConnectionKind::Microsoft);
        assert_eq!(alone.reason, None);

        let (untouched, _) = choose_host(&[&google], Some(ConnectionKind::Imap), &connected);
        assert_eq!(untouched.provider, ConnectionKind::Imap);
    }

    #[test]
    fn accounts_sharing_an_address_across_providers_are_one_person() {
        let listed = vec![
            (ConnectionKind::Google, account("ann@acme.example", &[])),
            (ConnectionKind::Google, account("bob@acme.example", &[])),
            (
                ConnectionKind::Microsoft,
                account("ann@acme.onmicrosoft.com", &["Ann@Acme.example"]),
            ),
            (ConnectionKind::Microsoft, account("cy@acme.example", &[])),
        ];
        let groups = group_accounts(&listed, &HashMap::new());
        let emails: Vec<Vec<&str>> = groups
            .iter()
            .map(|g| g.iter().map(|(_, a)| a.primary_email.as_str()).collect())
            .collect();
        assert_eq!(
            emails,
            vec![
                vec!["ann@acme.example", "ann@acme.onmicrosoft.com"],
                vec!["bob@acme.example"],
                vec!["cy@acme.example"],
            ]
        );
        assert_eq!(
            group_addresses(&groups[0]),
            vec!["ann@acme.example", "ann@acme.onmicrosoft.com"]
        );
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
