//! The service-account key file an administrator downloads from Google Cloud's console,
//! validated field by field so a bad upload says exactly what is wrong with it.

use crate::api::GoogleEndpoints;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, PrivateKeyInfo, SecretDocument};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::fmt;
use thiserror::Error;

/// Why a key file cannot be used. Every variant names the field at fault; none ever
/// quotes the private key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyFileError {
    #[error(
        "the key file is not JSON ({0}): upload the .json key file downloaded from Google Cloud"
    )]
    NotJson(String),
    #[error(
        "the key file is not a JSON object: upload the .json key file downloaded from Google Cloud"
    )]
    NotAnObject,
    #[error("the key file has no `{0}` field")]
    Missing(&'static str),
    #[error("the key file's `{0}` field is empty")]
    Empty(&'static str),
    #[error("the key file's `{0}` field is not a string")]
    NotAString(&'static str),
    #[error(
        "the key file's `type` is {0:?}, not \"service_account\": create a key for a service account (IAM → Service accounts → Keys)"
    )]
    NotServiceAccount(String),
    #[error("the key file's `client_email` {0:?} is not an email address")]
    InvalidClientEmail(String),
    #[error(
        "the key file's `client_id` {0:?} is not numeric: domain-wide delegation is granted to the service account's numeric client ID"
    )]
    ClientIdNotNumeric(String),
    #[error("the key file's `token_uri` {0:?} is not an http(s) URL")]
    InvalidTokenUri(String),
    #[error(
        "the key file's `token_uri` {found:?} is not Google's token endpoint ({expected}): upload the key file exactly as Google Cloud issued it"
    )]
    UntrustedTokenUri { found: String, expected: String },
    #[error("the key file's `private_key` is not a PEM private key (-----BEGIN PRIVATE KEY-----)")]
    PrivateKeyNotPem,
    #[error(
        "the key file's `private_key` is encrypted; Google's key files hold an unencrypted key"
    )]
    PrivateKeyEncrypted,
    #[error(
        "the key file's `private_key` is not an RSA key ({0}): service-account keys are RSA, as PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`"
    )]
    PrivateKeyNotRsa(String),
    #[error("the key file's `private_key` is not a valid RSA private key: {0}")]
    PrivateKeyInvalid(String),
}

impl KeyFileError {
    /// The key-file field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            KeyFileError::NotJson(_) | KeyFileError::NotAnObject => None,
            KeyFileError::Missing(field)
            | KeyFileError::Empty(field)
            | KeyFileError::NotAString(field) => Some(field),
            KeyFileError::NotServiceAccount(_) => Some("type"),
            KeyFileError::InvalidClientEmail(_) => Some("client_email"),
            KeyFileError::ClientIdNotNumeric(_) => Some("client_id"),
            KeyFileError::InvalidTokenUri(_) | KeyFileError::UntrustedTokenUri { .. } => {
                Some("token_uri")
            }
            KeyFileError::PrivateKeyNotPem
            | KeyFileError::PrivateKeyEncrypted
            | KeyFileError::PrivateKeyNotRsa(_)
            | KeyFileError::PrivateKeyInvalid(_) => Some("private_key"),
        }
    }
}

/// What may be shown about a key: everything but the private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountInfo {
    pub project_id: Option<String>,
    pub client_email: String,
    /// The numeric id the administrator authorizes for domain-wide delegation.
    pub client_id: String,
    pub private_key_id: String,
    /// As written in the key file: shown, checked at upload, never requested.
    pub token_uri: String,
}

/// The RSA signing key, kept out of every `Debug` output, log line and error.
#[derive(Clone)]
pub struct PrivateKey(SigningKey<Sha256>);

impl PrivateKey {
    pub(crate) fn signing_key(&self) -> &SigningKey<Sha256> {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A validated service-account key.
#[derive(Debug, Clone)]
pub struct ServiceAccountKey {
    info: ServiceAccountInfo,
    private_key: PrivateKey,
}

impl ServiceAccountKey {
    /// Parses and validates a key file's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyFileError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| KeyFileError::NotJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(KeyFileError::NotAnObject);
        };
        let kind = required(&fields, "type")?;
        if kind != "service_account" {
            return Err(KeyFileError::NotServiceAccount(kind.to_string()));
        }
        let client_email = required(&fields, "client_email")?;
        if !looks_like_email(client_email) {
            return Err(KeyFileError::InvalidClientEmail(client_email.to_string()));
        }
        let client_id = required(&fields, "client_id")?;
        if !client_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(KeyFileError::ClientIdNotNumeric(client_id.to_string()));
        }
        let private_key = parse_private_key(required(&fields, "private_key")?)?;
        let private_key_id = required(&fields, "private_key_id")?;
        let token_uri = required(&fields, "token_uri")?;
        if !is_http_url(token_uri) {
            return Err(KeyFileError::InvalidTokenUri(token_uri.to_string()));
        }
        let project_id = optional(&fields, "project_id")?;
        Ok(ServiceAccountKey {
            info: ServiceAccountInfo {
                project_id,
                client_email: client_email.to_string(),
                client_id: client_id.to_string(),
                private_key_id: private_key_id.to_string(),
                token_uri: token_uri.to_string(),
            },
            private_key,
        })
    }

    /// Parses and validates a key file an administrator uploads to a server that reaches
    /// Google at `endpoints`: on top of [`ServiceAccountKey::from_json`], its `token_uri`
    /// must be that server's token endpoint. The connector never posts to a key's
    /// `token_uri`, but a key naming another one is not Google's key as issued, and
    /// refusing it at upload says so while nothing is stored.
    pub fn from_upload(bytes: &[u8], endpoints: &GoogleEndpoints) -> Result<Self, KeyFileError> {
        let key = Self::from_json(bytes)?;
        if !endpoints.accepts_token_uri(key.token_uri()) {
            return Err(KeyFileError::UntrustedTokenUri {
                found: key.token_uri().to_string(),
                expected: endpoints.token_url.clone(),
            });
        }
        Ok(key)
    }

    /// The public part of the key, for display.
    pub fn info(&self) -> &ServiceAccountInfo {
        &self.info
    }

    pub fn client_id(&self) -> &str {
        &self.info.client_id
    }

    pub fn client_email(&self) -> &str {
        &self.info.client_email
    }

    pub fn private_key_id(&self) -> &str {
        &self.info.private_key_id
    }

    pub fn token_uri(&self) -> &str {
        &self.info.token_uri
    }

    pub(crate) fn private_key(&self) -> &PrivateKey {
        &self.private_key
    }
}

fn field<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'a str>, KeyFileError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Err(KeyFileError::Empty(name)),
        Some(Value::String(text)) => Ok(Some(text.trim())),
        Some(_) => Err(KeyFileError::NotAString(name)),
    }
}

fn required<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, KeyFileError> {
    field(fields, name)?.ok_or(KeyFileError::Missing(name))
}

fn optional(
    fields: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, KeyFileError> {
    Ok(field(fields, name)?.map(str::to_string))
}

fn looks_like_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
    })
}

fn is_http_url(text: &str) -> bool {
    reqwest::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// Reads a PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1 (`BEGIN RSA
/// PRIVATE KEY`) RSA key. Errors describe the problem, never the key material.
fn parse_private_key(pem: &str) -> Result<PrivateKey, KeyFileError> {
    // Keys pasted through environment variables often arrive with literal `\n`.
    let unescaped;
    let pem = if !pem.contains('\n') && pem.contains("\\n") {
        unescaped = pem.replace("\\n", "\n");
        unescaped.as_str()
    } else {
        pem
    };
    let (label, document) =
        SecretDocument::from_pem(pem).map_err(|_| KeyFileError::PrivateKeyNotPem)?;
    let key = match label {
        "PRIVATE KEY" => {
            let info: PrivateKeyInfo<'_> = document
                .decode_msg()
                .map_err(|e| KeyFileError::PrivateKeyInvalid(e.to_string()))?;
            if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
                return Err(KeyFileError::PrivateKeyNotRsa(format!(
                    "PKCS#8 algorithm {}",
                    info.algorithm.oid
                )));
            }
            RsaPrivateKey::from_pkcs8_der(document.as_bytes())
                .map_err(|e| KeyFileError::PrivateKeyInvalid(e.to_string()))?
        }
        "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(document.as_bytes())
            .map_err(|e| KeyFileError::PrivateKeyInvalid(e.to_string()))?,
        "ENCRYPTED PRIVATE KEY" => return Err(KeyFileError::PrivateKeyEncrypted),
        other => return Err(KeyFileError::PrivateKeyNotRsa(format!("a PEM {other}"))),
    };
    Ok(PrivateKey(SigningKey::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_key_prints_nothing_of_itself() {
        assert_eq!(
            format!("{:?}", PrivateKey(SigningKey::new(test_key()))),
            "[redacted]"
        );
    }

    #[test]
    fn field_checks_trim_and_distinguish_missing_from_empty() {
        let fields: Map<String, Value> =
            serde_json::from_str(r#"{"a": " x ", "b": "  ", "c": 3, "d": null}"#).unwrap();
        assert_eq!(required(&fields, "a"), Ok("x"));
        assert_eq!(required(&fields, "b"), Err(KeyFileError::Empty("b")));
        assert_eq!(required(&fields, "c"), Err(KeyFileError::NotAString("c")));
        assert_eq!(required(&fields, "d"), Err(KeyFileError::Missing("d")));
        assert_eq!(optional(&fields, "e"), Ok(None));
    }

    #[test]
    fn urls_and_addresses_are_checked_loosely_but_usefully() {
        assert!(is_http_url("https://oauth2.googleapis.com/token"));
        assert!(is_http_url("http://127.0.0.1:8085/token"));
        assert!(!is_http_url("oauth2.googleapis.com/token"));
        assert!(!is_http_url("ftp://x/token"));
        assert!(looks_like_email("sync@p.iam.gserviceaccount.com"));
        assert!(!looks_like_email("sync"));
        assert!(!looks_like_email("a b@c.d"));
    }

    fn test_key() -> RsaPrivateKey {
        use rand::SeedableRng;
        // A small key keeps this unit test fast; it never signs anything.
        RsaPrivateKey::new(&mut rand::rngs::StdRng::seed_from_u64(1), 512).unwrap()
    }
}
