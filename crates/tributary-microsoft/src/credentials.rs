//! The app registration's credentials: a client secret, or a certificate credential (the
//! recommended one for app-only access: nothing secret crosses the wire, only a signed
//! client assertion).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use sha1::Digest as _;
use std::fmt;
use std::sync::Arc;

/// The client secret's value. Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(Arc<str>);

impl ClientSecret {
    pub fn new(value: impl Into<String>) -> Self {
        ClientSecret(Arc::from(value.into()))
    }

    pub(crate) fn value(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// How a client assertion is signed and names its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256 and the certificate's SHA-256 thumbprint in `x5t#S256`:
    /// what Microsoft's certificate-credentials page documents.
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and the SHA-1 thumbprint in `x5t`: what msal sends
    /// when given only a thumbprint, for setups that registered it that way.
    Rs256,
}

/// Why a certificate credential could not be read. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)")]
    Certificate,
    #[error("the private key is not an RSA private key in PEM (PKCS #8 or PKCS #1)")]
    PrivateKey,
}

/// A certificate credential: the private key and the certificate's thumbprints. The
/// certificate itself is registered on the app in Entra ID.
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<RsaPrivateKey>,
    sha1: [u8; 20],
    sha256: [u8; 32],
    algorithm: AssertionAlgorithm,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint_sha1", &self.thumbprint_sha1())
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl CertificateCredential {
    /// The credential from the certificate (the first `CERTIFICATE` block of
    /// `certificate_pem`, which may hold a chain or the key too) and its RSA private key.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, CredentialError> {
        let der = first_certificate_der(certificate_pem).ok_or(CredentialError::Certificate)?;
        let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem.trim())
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(private_key_pem.trim()))
            .map_err(|_| CredentialError::PrivateKey)?;
        Ok(CertificateCredential {
            key: Arc::new(key),
            sha1: sha1::Sha1::digest(&der).into(),
            sha256: sha2::Sha256::digest(&der).into(),
            algorithm: AssertionAlgorithm::default(),
        })
    }

    pub fn with_algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn algorithm(&self) -> AssertionAlgorithm {
        self.algorithm
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Entra portal lists it.
    pub fn thumbprint_sha1(&self) -> String {
        self.sha1.iter().map(|b| format!("{b:02X}")).collect()
    }

    pub(crate) fn key(&self) -> &RsaPrivateKey {
        &self.key
    }

    /// The JOSE header's algorithm and thumbprint parameter.
    pub(crate) fn header_fields(&self) -> (&'static str, &'static str, String) {
        match self.algorithm {
            AssertionAlgorithm::Ps256 => ("PS256", "x5t#S256", URL_SAFE_NO_PAD.encode(self.sha256)),
            AssertionAlgorithm::Rs256 => ("RS256", "x5t", URL_SAFE_NO_PAD.encode(self.sha1)),
        }
    }
}

fn first_certificate_der(pem: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)?;
    let end = pem[start..].find(END)? + start + END.len();
    let (label, der) = pem_rfc7468::decode_vec(&pem.as_bytes()[start..end]).ok()?;
    (label == "CERTIFICATE" && !der.is_empty()).then_some(der)
}

/// How the app proves who it is.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    Secret(ClientSecret),
    Certificate(CertificateCredential),
}

/// One customer's app-only access: the tenant (its GUID, as admin consent returned it,
/// or a verified domain) and the app registration's client id and credential.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub tenant: String,
    pub client_id: String,
    pub credential: ClientCredential,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_the_field_named() {
        let error = CertificateCredential::from_pem("not pem", "not pem").unwrap_err();
        assert_eq!(error, CredentialError::Certificate);
        assert!(error.to_string().contains("certificate"));
        let certificate = "-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n";
        let error = CertificateCredential::from_pem(
            certificate,
            "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert_eq!(error, CredentialError::PrivateKey);
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = ClientSecret::new("s3cr3t");
        assert_eq!(format!("{secret:?}"), "ClientSecret([redacted])");
        let credentials = AppCredentials {
            tenant: "t".into(),
            client_id: "c".into(),
            credential: ClientCredential::Secret(secret),
        };
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
    }
}
