//! The organization as a Microsoft 365 tenant: Entra ID users (from the generator's
//! directory users) and their Exchange mailboxes (from their Gmail mailboxes, labels
//! turned into folders by [`super::mail::store`]).

use super::ids::guid;
use super::mail::store::ExoMailbox;
use crate::model::{DirectoryUser, Organization};
use std::collections::BTreeMap;

/// An Entra ID user as Graph describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraUser {
    /// A GUID.
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub given_name: String,
    pub surname: String,
    /// The primary SMTP address; `None` for users without an Exchange mailbox.
    pub mail: Option<String>,
    /// `SMTP:` primary first, then `smtp:` aliases; empty without a mailbox.
    pub proxy_addresses: Vec<String>,
    pub account_enabled: bool,
    /// `Member` (the generator has no guests).
    pub user_type: String,
    /// RFC 3339.
    pub created: String,
    /// Deleted users are gone from Graph (404) but keep their id here.
    pub deleted: bool,
    /// A member of the Global Administrator directory role (the org's administrators).
    pub global_admin: bool,
}

impl EntraUser {
    /// Whether `address` (lowercase) is one of the user's SMTP addresses.
    pub fn owns_address(&self, address: &str) -> bool {
        self.user_principal_name.eq_ignore_ascii_case(address)
            || self.proxy_addresses.iter().any(|p| {
                p.split_once(':')
                    .is_some_and(|(_, a)| a.eq_ignore_ascii_case(address))
            })
    }

    /// The SMTP aliases (without the primary), lowercase.
    pub fn aliases(&self) -> Vec<String> {
        self.proxy_addresses
            .iter()
            .filter_map(|p| p.strip_prefix("smtp:"))
            .map(str::to_ascii_lowercase)
            .collect()
    }
}

/// The tenant: directory and mailboxes.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// A GUID.
    pub tenant_id: String,
    pub display_name: String,
    /// Verified domains, the default (primary) first.
    pub domains: Vec<String>,
    /// In directory order.
    pub users: Vec<EntraUser>,
    /// Keyed by user id. Users without a mailbox have a disabled one.
    pub mailboxes: BTreeMap<String, ExoMailbox>,
    /// The organization's reference instant (epoch ms).
    pub now_ms: i64,
}

/// The proxy addresses Exchange would list for a Google user's addresses.
fn proxy_addresses(user: &DirectoryUser) -> Vec<String> {
    let mut list = vec![format!("SMTP:{}", user.primary_email.to_ascii_lowercase())];
    for alias in user.aliases.iter().chain(&user.non_editable_aliases) {
        let entry = format!("smtp:{}", alias.to_ascii_lowercase());
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
    list
}

/// The Entra ID user for a directory user. `has_mailbox` decides `mail` and `proxyAddresses`.
pub fn entra_user(tenant_id: &str, user: &DirectoryUser, has_mailbox: bool) -> EntraUser {
    EntraUser {
        id: guid(tenant_id, &format!("user/{}", user.id)),
        user_principal_name: user.primary_email.to_ascii_lowercase(),
        display_name: user.full_name(),
        given_name: user.given_name.clone(),
        surname: user.family_name.clone(),
        mail: has_mailbox.then(|| user.primary_email.to_ascii_lowercase()),
        proxy_addresses: if has_mailbox {
            proxy_addresses(user)
        } else {
            Vec::new()
        },
        account_enabled: !user.suspended && !user.archived,
        user_type: "Member".into(),
        created: user.creation_time.clone(),
        deleted: user.deleted,
        global_admin: user.is_admin,
    }
}

impl Tenant {
    /// The tenant serving `org`; `seed` makes its ids reproducible.
    pub fn from_organization(org: &Organization, seed: u64) -> Tenant {
        let tenant_id = guid("tenant", &format!("{}/{seed}", org.customer_id));
        let mut users = Vec::with_capacity(org.users.len());
        let mut mailboxes = BTreeMap::new();
        for user in &org.users {
            let email = user.primary_email.to_ascii_lowercase();
            let gmail = org.mailboxes.get(&email);
            let has_mailbox = gmail.is_some_and(|m| m.mail_enabled);
            let entra = entra_user(&tenant_id, user, has_mailbox);
            let mailbox = match gmail {
                Some(gmail) if has_mailbox => ExoMailbox::from_gmail(&entra.id, gmail),
                _ => ExoMailbox::disabled(&entra.id),
            };
            mailboxes.insert(entra.id.clone(), mailbox);
            users.push(entra);
        }
        Tenant {
            tenant_id,
            display_name: org.primary_domain().to_string(),
            domains: org.domains.clone(),
            users,
            mailboxes,
            now_ms: org.now_ms,
        }
    }

    /// A live (not deleted) user by id or user principal name, case-insensitively.
    pub fn user(&self, id_or_upn: &str) -> Option<&EntraUser> {
        self.users.iter().find(|u| {
            !u.deleted
                && (u.id.eq_ignore_ascii_case(id_or_upn)
                    || u.user_principal_name.eq_ignore_ascii_case(id_or_upn))
        })
    }

    /// A live user owning `address` (primary or alias).
    pub fn user_by_address(&self, address: &str) -> Option<&EntraUser> {
        let address = address.to_ascii_lowercase();
        self.users
            .iter()
            .find(|u| !u.deleted && u.owns_address(&address))
    }

    pub fn user_mut(&mut self, id_or_upn: &str) -> Option<&mut EntraUser> {
        self.users.iter_mut().find(|u| {
            !u.deleted
                && (u.id.eq_ignore_ascii_case(id_or_upn)
                    || u.user_principal_name.eq_ignore_ascii_case(id_or_upn))
        })
    }

    /// Whether `domain` is one of the tenant's (an authority may name a domain).
    pub fn owns_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }
}
