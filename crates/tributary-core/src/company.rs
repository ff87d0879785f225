//! Companies: the registrable domain (public suffix list) of an external contact's
//! domain, except for free-mail providers and the tenant's own domains.

use crate::address::{domain_and_parents, normalize_domain};
use crate::tenant::TenantDirectory;
use foldhash::{HashSet, HashSetExt};
use psl::Psl;

/// The default free-mail list shipped with Tributary (`data/free-mail-domains.txt`).
pub const DEFAULT_FREE_MAIL_DOMAINS: &str = include_str!("../data/free-mail-domains.txt");

/// Domains anyone can get a mailbox on, so they say nothing about an employer. A domain
/// is free-mail when it or one of its parent domains is on the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeMailList {
    domains: HashSet<String>,
}

impl Default for FreeMailList {
    /// The shipped default list.
    fn default() -> Self {
        Self::from_list_text(DEFAULT_FREE_MAIL_DOMAINS)
    }
}

impl FreeMailList {
    /// An empty list: every domain can be a company.
    pub fn empty() -> Self {
        Self {
            domains: HashSet::new(),
        }
    }

    /// A list from text in the shipped file's format: one domain per line, `#` comments.
    /// Lines that are not domains are skipped.
    pub fn from_list_text(text: &str) -> Self {
        let domains = text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .filter_map(|line| normalize_domain(line).ok())
            .collect();
        Self { domains }
    }

    /// Adds a domain (a tenant's extension of the list). False if it was not a domain.
    pub fn insert(&mut self, domain: &str) -> bool {
        match normalize_domain(domain) {
            Ok(domain) => {
                self.domains.insert(domain);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes a domain (a tenant's trim of the list). True if it was on the list.
    pub fn remove(&mut self, domain: &str) -> bool {
        normalize_domain(domain).is_ok_and(|domain| self.domains.remove(&domain))
    }

    /// True when the domain (normalized) or a parent domain is on the list.
    pub fn is_free_mail(&self, domain: &str) -> bool {
        domain_and_parents(domain).any(|candidate| self.domains.contains(candidate))
    }

    /// Number of domains on the list.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// True when the list has no domain.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The listed domains, sorted.
    pub fn domains(&self) -> Vec<&str> {
        let mut domains: Vec<&str> = self.domains.iter().map(String::as_str).collect();
        domains.sort_unstable();
        domains
    }
}

/// The registrable domain of a (normalized) domain per the public suffix list, ICANN and
/// private sections: `mail.acme.co.uk` → `acme.co.uk`. `None` for a public suffix itself,
/// a single label or a domain literal.
pub fn registrable_domain(domain: &str) -> Option<&str> {
    if domain.starts_with('[') {
        return None;
    }
    let registrable = psl::List.domain(domain.as_bytes())?.trim();
    std::str::from_utf8(registrable.as_bytes()).ok()
}

/// The company of an external contact's domain, if it has one.
pub fn company_domain<'d>(
    domain: &'d str,
    free_mail: &FreeMailList,
    tenant: &TenantDirectory,
) -> Option<&'d str> {
    if free_mail.is_free_mail(domain) {
        return None;
    }
    let company = registrable_domain(domain)?;
    (!tenant.owns_domain(company)).then_some(company)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrable_domain_follows_the_public_suffix_list() {
        assert_eq!(registrable_domain("mail.acme.co.uk"), Some("acme.co.uk"));
        assert_eq!(registrable_domain("sales.kogyo.co.jp"), Some("kogyo.co.jp"));
        assert_eq!(registrable_domain("acme.com"), Some("acme.com"));
        // Private section: each github.io site is its own registrable domain.
        assert_eq!(registrable_domain("a.b.github.io"), Some("b.github.io"));
        assert_eq!(registrable_domain("co.uk"), None);
        assert_eq!(registrable_domain("localhost"), None);
        assert_eq!(registrable_domain("[192.0.2.1]"), None);
    }

    #[test]
    fn default_list_holds_the_domains_the_generator_uses() {
        let list = FreeMailList::default();
        for domain in [
            "gmail.com",
            "yahoo.co.uk",
            "outlook.com",
            "hotmail.com",
            "icloud.com",
            "gmx.de",
            "yahoo.co.jp",
            "bigpond.com",
        ] {
            assert!(list.is_free_mail(domain), "{domain}");
        }
        assert!((60..=150).contains(&list.len()), "{}", list.len());
    }

    #[test]
    fn free_mail_covers_subdomains_and_can_be_changed() {
        let mut list = FreeMailList::default();
        assert!(list.is_free_mail("mail.gmail.com"));
        assert!(!list.is_free_mail("notgmail.com"));
        assert!(list.remove("GMAIL.com"));
        assert!(!list.is_free_mail("gmail.com"));
        assert!(list.insert("example-free.org"));
        assert!(list.is_free_mail("eu.example-free.org"));
        assert!(!list.insert("not a domain"));
    }

    #[test]
    fn no_company_for_free_mail_or_the_tenants_domains() {
        let free_mail = FreeMailList::default();
        let mut tenant = TenantDirectory::new();
        tenant.add_domain("acme.com").unwrap();
        assert_eq!(
            company_domain("mail.globex.co.uk", &free_mail, &tenant),
            Some("globex.co.uk")
        );
        assert_eq!(company_domain("gmail.com", &free_mail, &tenant), None);
        assert_eq!(company_domain("yahoo.co.jp", &free_mail, &tenant), None);
        assert_eq!(company_domain("acme.com", &free_mail, &tenant), None);
    }
}
