//! Email addresses in the one normalized form the capture contract compares: trimmed,
//! lowercased in full, internationalized domains in their ASCII (punycode) form.

use serde::{Serialize, Serializer};
use std::fmt;
use thiserror::Error;

/// Why a string is not a usable email address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// Nothing but whitespace.
    #[error("empty address")]
    Empty,
    /// No `@`, so no domain to classify the address by.
    #[error("no `@` in address")]
    MissingAt,
    /// Nothing before the last `@`.
    #[error("empty local part")]
    EmptyLocalPart,
    /// Nothing after the last `@`.
    #[error("empty domain")]
    EmptyDomain,
    /// Whitespace or control characters inside the address.
    #[error("whitespace or control character inside the address")]
    InvalidCharacter,
    /// Bytes that are not UTF-8 (decoded as U+FFFD): the real address is unknown.
    #[error("bytes that are not valid UTF-8 in the address")]
    InvalidEncoding,
    /// The domain has no valid ASCII (IDNA) form.
    #[error("invalid domain `{0}`")]
    InvalidDomain(String),
    /// Longer than an address may be ([`MAX_ADDRESS_LEN`], or 64 before the `@`).
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    /// Parses, but is not an address a mailbox could have (see [`EmailAddress::parse_mailbox`]).
    #[error("not a mailbox address: {0}")]
    NotAMailbox(&'static str),
}

/// The longest address a person may enter (RFC 5321: a 256-octet path less its `<>`).
pub const MAX_ADDRESS_LEN: usize = 254;

/// The longest local part (before the `@`) RFC 5321 allows.
pub const MAX_LOCAL_PART_LEN: usize = 64;

/// A normalized email address: `local@domain`, lowercased, domain in ASCII form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    normalized: String,
    at: usize,
}

impl EmailAddress {
    /// Parses and normalizes a bare address (`addr-spec`, no display name).
    pub fn parse(raw: &str) -> Result<Self, AddressError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AddressError::InvalidCharacter);
        }
        if trimmed.contains(char::REPLACEMENT_CHARACTER) {
            return Err(AddressError::InvalidEncoding);
        }
        // The last `@` separates the domain: a quoted local part may itself hold one.
        let at = trimmed.rfind('@').ok_or(AddressError::MissingAt)?;
        let (local, domain) = (&trimmed[..at], &trimmed[at + 1..]);
        if local.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if domain.is_empty() {
            return Err(AddressError::EmptyDomain);
        }
        let mut normalized = String::with_capacity(trimmed.len());
        push_lowercase(&mut normalized, local);
        // Lowercasing can change a non-ASCII local part's length: index the result.
        let normalized_at = normalized.len();
        normalized.push('@');
        push_ascii_domain(&mut normalized, domain)?;
        Ok(Self {
            normalized,
            at: normalized_at,
        })
    }

    /// Parses an address a person entered for a mailbox, an account or an alias: the
    /// one validator for typed addresses (members, aliases, console users, API token
    /// owners, the Workspace admin). Stricter than [`EmailAddress::parse`], which must
    /// take whatever a header holds: at most [`MAX_ADDRESS_LEN`] characters (64 before
    /// the `@`), an unquoted local part of RFC 5322 `atext` and single inner dots, and a
    /// domain of at least two dot-separated labels of letters, digits and inner hyphens
    /// (internationalized domains in their punycode form).
    pub fn parse_mailbox(raw: &str) -> Result<Self, AddressError> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong {
                max: MAX_ADDRESS_LEN,
            });
        }
        let address = Self::parse(trimmed)?;
        check_local_part(address.local_part())?;
        check_domain(address.domain())?;
        if address.as_str().len() > MAX_ADDRESS_LEN {
            // Punycode made the domain longer than the address may be.
            return Err(AddressError::TooLong {
                max: MAX_ADDRESS_LEN,
            });
        }
        Ok(address)
    }

    /// The whole normalized address.
    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        &self.normalized[..self.at]
    }

    /// The ASCII, lowercase domain.
    pub fn domain(&self) -> &str {
        &self.normalized[self.at + 1..]
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.normalized)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// RFC 5322 `dot-atom`: `atext` runs joined by single dots; non-ASCII letters are
/// allowed (RFC 6531), quoted local parts are not (no mailbox provider hands them out).
fn check_local_part(local: &str) -> Result<(), AddressError> {
    if local.chars().count() > MAX_LOCAL_PART_LEN {
        return Err(AddressError::TooLong {
            max: MAX_LOCAL_PART_LEN,
        });
    }
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local
        .split('.')
        .any(|run| run.is_empty() || !run.chars().all(atext))
    {
        return Err(AddressError::NotAMailbox(
            "the part before the @ holds a character or dot an address cannot have",
        ));
    }
    Ok(())
}

/// A host name in ASCII form: two or more labels of letters, digits and inner hyphens,
/// each at most 63 characters.
fn check_domain(domain: &str) -> Result<(), AddressError> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|label| label_ok(label)) {
        return Err(AddressError::NotAMailbox(
            "the domain must be a host name such as example.com",
        ));
    }
    Ok(())
}

fn push_lowercase(out: &mut String, text: &str) {
    if text.is_ascii() {
        out.extend(text.chars().map(|c| c.to_ascii_lowercase()));
    } else {
        out.push_str(&text.to_lowercase());
    }
}

fn push_ascii_domain(out: &mut String, domain: &str) -> Result<(), AddressError> {
    // Domain literals (`[192.0.2.1]`) and plain ASCII names need no IDNA processing,
    // which is by far the common case and the expensive one to do needlessly.
    if domain.is_ascii() {
        push_lowercase(out, domain);
        return Ok(());
    }
    let ascii = idna::domain_to_ascii(domain)
        .map_err(|_| AddressError::InvalidDomain(domain.to_owned()))?;
    if ascii.is_empty() {
        return Err(AddressError::InvalidDomain(domain.to_owned()));
    }
    out.push_str(&ascii);
    Ok(())
}

/// Normalizes a domain name the way addresses are: lowercase ASCII (punycode), without
/// surrounding whitespace, a leading `@` or a trailing dot.
pub fn normalize_domain(raw: &str) -> Result<String, AddressError> {
    let trimmed = raw.trim().trim_start_matches('@').trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    if trimmed
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '@')
    {
        return Err(AddressError::InvalidDomain(trimmed.to_owned()));
    }
    let mut out = String::with_capacity(trimmed.len());
    push_ascii_domain(&mut out, trimmed)?;
    Ok(out)
}

/// The domain itself, then each parent domain: `a.b.c` → `a.b.c`, `b.c`, `c`.
pub fn domain_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| {
        d.split_once('.').map(|(_, parent)| parent)
    })
    .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_local_part_and_domain() {
        let address = EmailAddress::parse("  Ann.Lee@Acme.COM ").unwrap();
        assert_eq!(address.as_str(), "ann.lee@acme.com");
        assert_eq!(address.local_part(), "ann.lee");
        assert_eq!(address.domain(), "acme.com");
    }

    #[test]
    fn converts_internationalized_domain_to_punycode() {
        let address = EmailAddress::parse("Jörg@Bücher.DE").unwrap();
        assert_eq!(address.as_str(), "jörg@xn--bcher-kva.de");
        assert_eq!(address.domain(), "xn--bcher-kva.de");
    }

    #[test]
    fn splits_at_the_last_at_sign() {
        let address = EmailAddress::parse("\"a@b\"@example.com").unwrap();
        assert_eq!(address.local_part(), "\"a@b\"");
        assert_eq!(address.domain(), "example.com");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        assert_eq!(EmailAddress::parse(" "), Err(AddressError::Empty));
        assert_eq!(EmailAddress::parse("ann"), Err(AddressError::MissingAt));
        assert_eq!(
            EmailAddress::parse("@x.com"),
            Err(AddressError::EmptyLocalPart)
        );
        assert_eq!(EmailAddress::parse("ann@"), Err(AddressError::EmptyDomain));
        assert_eq!(
            EmailAddress::parse("ann lee@x.com"),
            Err(AddressError::InvalidCharacter)
        );
        assert_eq!(
            EmailAddress::parse("j\u{FFFD}rg@x.com"),
            Err(AddressError::InvalidEncoding)
        );
    }

    #[test]
    fn mailbox_addresses_are_checked_strictly() {
        let ok = EmailAddress::parse_mailbox(" Ann.Lee+crm@Mail.Acme.COM ").unwrap();
        assert_eq!(ok.as_str(), "ann.lee+crm@mail.acme.com");
        assert!(EmailAddress::parse_mailbox("jörg@bücher.de").is_ok());
        for bad in [
            "ann@localhost",
            "ann@-acme.com",
            "ann@acme..com",
            "\"a b\"@acme.com",
            ".ann@acme.com",
            "ann..lee@acme.com",
            "ann@[192.0.2.1]",
            "x\nFORGED@acme.com",
        ] {
            assert!(EmailAddress::parse_mailbox(bad).is_err(), "{bad}");
        }
        let long_local = format!("{}@acme.com", "a".repeat(65));
        assert_eq!(
            EmailAddress::parse_mailbox(&long_local),
            Err(AddressError::TooLong { max: 64 })
        );
        let huge = format!("{}@acme.com", "a".repeat(100_000));
        assert_eq!(
            EmailAddress::parse_mailbox(&huge),
            Err(AddressError::TooLong { max: 254 })
        );
        let longest = format!("{}@{}.com", "a".repeat(64), "b".repeat(63));
        assert!(EmailAddress::parse_mailbox(&longest).is_ok());
    }

    #[test]
    fn normalizes_domains() {
        assert_eq!(normalize_domain(" @Acme.COM. ").unwrap(), "acme.com");
        assert_eq!(normalize_domain("bücher.de").unwrap(), "xn--bcher-kva.de");
        assert!(normalize_domain("a b.com").is_err());
    }

    #[test]
    fn lists_domain_then_parents() {
        let chain: Vec<_> = domain_and_parents("mail.acme.co.uk").collect();
        assert_eq!(chain, ["mail.acme.co.uk", "acme.co.uk", "co.uk", "uk"]);
    }
}
