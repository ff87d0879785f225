//! The tenant's directory as capture sees it: the domains it owns and its members with
//! every address they receive mail at.

use crate::address::{AddressError, EmailAddress, domain_and_parents, normalize_domain};
use foldhash::{HashMap, HashSet};
use serde::Serialize;
use thiserror::Error;

/// Why a domain or member cannot join a directory.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TenantError {
    #[error("invalid domain `{domain}`: {source}")]
    InvalidDomain {
        domain: String,
        source: AddressError,
    },
    #[error("invalid member address `{address}`: {source}")]
    InvalidAddress {
        address: String,
        source: AddressError,
    },
    /// One address can identify one member only.
    #[error("address `{address}` already belongs to member `{member}`")]
    AddressTaken { address: String, member: String },
}

/// A member: a CRM user whose mailbox is captured, known by a primary address and aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub primary: EmailAddress,
    pub aliases: Vec<EmailAddress>,
}

/// How an address relates to the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AddressClass {
    /// One of a member's addresses; `member` is that member's primary address.
    Member { member: EmailAddress },
    /// On a tenant domain (or a subdomain of one) but not a member's address.
    Internal,
    /// Anywhere else: a contact.
    External,
}

impl AddressClass {
    /// True for members and other internal addresses.
    pub fn is_tenant_side(&self) -> bool {
        !matches!(self, AddressClass::External)
    }
}

/// The tenant's domains and members, indexed for constant-time lookups.
#[derive(Debug, Clone, Default)]
pub struct TenantDirectory {
    domains: HashSet<String>,
    members: Vec<Member>,
    member_by_address: HashMap<String, usize>,
}

impl TenantDirectory {
    /// An empty directory: every address is external.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a domain the tenant owns; its subdomains count as the tenant's too.
    pub fn add_domain(&mut self, domain: &str) -> Result<(), TenantError> {
        let normalized = normalize_domain(domain).map_err(|source| TenantError::InvalidDomain {
            domain: domain.to_owned(),
            source,
        })?;
        self.domains.insert(normalized);
        Ok(())
    }

    /// Adds a member by primary address and aliases. Repeating one of the member's own
    /// addresses is harmless; claiming another member's address is an error.
    pub fn add_member<'a>(
        &mut self,
        primary: &str,
        aliases: impl IntoIterator<Item = &'a str>,
    ) -> Result<&Member, TenantError> {
        let parse = |raw: &str| {
            EmailAddress::parse(raw).map_err(|source| TenantError::InvalidAddress {
                address: raw.to_owned(),
                source,
            })
        };
        let primary = parse(primary)?;
        let mut addresses = vec![primary.clone()];
        for alias in aliases {
            let alias = parse(alias)?;
            if !addresses.contains(&alias) {
                addresses.push(alias);
            }
        }
        let taken = addresses.iter().find_map(|address| {
            let holder = self.member_by_address.get(address.as_str())?;
            Some((address, &self.members[*holder].primary))
        });
        if let Some((address, holder)) = taken {
            return Err(TenantError::AddressTaken {
                address: address.to_string(),
                member: holder.to_string(),
            });
        }
        let index = self.members.len();
        for address in &addresses {
            self.member_by_address
                .insert(address.as_str().to_owned(), index);
        }
        addresses.remove(0);
        self.members.push(Member {
            primary,
            aliases: addresses,
        });
        Ok(&self.members[index])
    }

    /// The member owning this address (primary or alias).
    pub fn member_for(&self, address: &EmailAddress) -> Option<&Member> {
        self.member_by_address
            .get(address.as_str())
            .map(|&index| &self.members[index])
    }

    /// True when the domain is a tenant domain or a subdomain of one.
    pub fn owns_domain(&self, domain: &str) -> bool {
        !self.domains.is_empty()
            && domain_and_parents(domain).any(|candidate| self.domains.contains(candidate))
    }

    /// Classifies an address: member, internal or external.
    pub fn classify(&self, address: &EmailAddress) -> AddressClass {
        if let Some(member) = self.member_for(address) {
            AddressClass::Member {
                member: member.primary.clone(),
            }
        } else if self.owns_domain(address.domain()) {
            AddressClass::Internal
        } else {
            AddressClass::External
        }
    }

    /// The tenant's domains, in no particular order.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.domains.iter().map(String::as_str)
    }

    /// The members, in the order they were added.
    pub fn members(&self) -> &[Member] {
        &self.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(raw: &str) -> EmailAddress {
        EmailAddress::parse(raw).unwrap()
    }

    fn directory() -> TenantDirectory {
        let mut directory = TenantDirectory::new();
        directory.add_domain("Acme.com").unwrap();
        directory
            .add_member("ann@acme.com", ["Ann.Lee@ACME.com", "ann@acme-old.example"])
            .unwrap();
        directory
    }

    #[test]
    fn members_match_on_every_address_case_insensitively() {
        let directory = directory();
        let ann = AddressClass::Member {
            member: address("ann@acme.com"),
        };
        assert_eq!(directory.classify(&address("ANN@acme.com")), ann);
        assert_eq!(directory.classify(&address("ann.lee@acme.COM")), ann);
        assert_eq!(directory.classify(&address("Ann@Acme-Old.example")), ann);
    }

    #[test]
    fn tenant_domains_and_subdomains_are_internal() {
        let directory = directory();
        assert_eq!(
            directory.classify(&address("sales@acme.com")),
            AddressClass::Internal
        );
        assert_eq!(
            directory.classify(&address("bob@eu.mail.acme.com")),
            AddressClass::Internal
        );
        assert_eq!(
            directory.classify(&address("bob@notacme.com")),
            AddressClass::External
        );
        assert_eq!(
            directory.classify(&address("bob@acme.com.evil.example")),
            AddressClass::External
        );
    }

    #[test]
    fn an_address_belongs_to_one_member() {
        let mut directory = directory();
        let error = directory
            .add_member("bob@acme.com", ["ann.lee@acme.com"])
            .unwrap_err();
        assert_eq!(
            error,
            TenantError::AddressTaken {
                address: "ann.lee@acme.com".into(),
                member: "ann@acme.com".into()
            }
        );
        assert!(directory.member_for(&address("bob@acme.com")).is_none());
    }
}
