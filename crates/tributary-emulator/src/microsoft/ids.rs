//! Identifiers as Microsoft's look: GUIDs for tenants, apps, users and requests;
//! base64 Exchange ids (`AAMkA…`) for folders and messages, derived from a seed so a
//! generated tenant is reproducible.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use sha2::{Digest, Sha256};

/// A deterministic GUID from a namespace and a name (SHA-256 based, version 8 bits set).
pub fn guid(namespace: &str, name: &str) -> String {
    let digest = Sha256::new()
        .chain_update(namespace.as_bytes())
        .chain_update([0])
        .chain_update(name.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A random GUID (request ids, trace ids).
pub fn random_guid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// An Exchange-style id: `AAMkA` followed by url-safe base64 of a digest of `parts`,
/// as long as real ids (which clients must treat as opaque and case-sensitive).
pub fn exchange_id(kind: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new().chain_update(kind.as_bytes());
    for part in parts {
        hasher.update([0]);
        hasher.update(part.as_bytes());
    }
    let first = hasher.finalize();
    let second = Sha256::digest(first);
    let mut bytes = Vec::with_capacity(64);
    bytes.extend_from_slice(&first);
    bytes.extend_from_slice(&second);
    format!("AAMkA{}", URL_SAFE.encode(&bytes[..51]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_deterministic_and_well_formed() {
        let a = guid("tenant", "1");
        assert_eq!(a, guid("tenant", "1"));
        assert_ne!(a, guid("tenant", "2"));
        assert_eq!(a.len(), 36);
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn exchange_ids_differ_by_part() {
        let a = exchange_id("message", &["u", "1"]);
        assert!(a.starts_with("AAMkA"));
        assert_ne!(a, exchange_id("message", &["u", "2"]));
    }
}
