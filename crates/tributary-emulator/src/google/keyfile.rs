//! Service-account key files: what Google's console downloads, with an RSA key the
//! emulator generates (deterministically from a seed, so runs are reproducible).

use rand::{CryptoRng, Rng, RngCore};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};

/// RSA modulus size Google uses for service-account keys.
pub const KEY_BITS: usize = 2048;

/// A service-account key file, field for field as Google's console writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountKeyFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub project_id: String,
    pub private_key_id: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: String,
    pub client_email: String,
    /// Numeric string: what an administrator authorizes for domain-wide delegation.
    pub client_id: String,
    pub auth_uri: String,
    pub token_uri: String,
    pub auth_provider_x509_cert_url: String,
    pub client_x509_cert_url: String,
    pub universe_domain: String,
}

/// Who a service account is, independently of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountIdentity {
    pub project_id: String,
    pub client_email: String,
    pub client_id: String,
}

impl ServiceAccountIdentity {
    /// A plausible identity: `tributary-sync@<project>.iam.gserviceaccount.com` with a
    /// 21-digit client id, as Google assigns them.
    pub fn generate(rng: &mut impl Rng) -> Self {
        let project_id = format!("tributary-emulator-{:06}", rng.gen_range(0..1_000_000));
        let client_email = format!("tributary-sync@{project_id}.iam.gserviceaccount.com");
        let mut client_id = String::from("1");
        for _ in 0..20 {
            client_id.push(char::from(b'0' + rng.gen_range(0..10u8)));
        }
        ServiceAccountIdentity {
            project_id,
            client_email,
            client_id,
        }
    }
}

/// A private key and the id Google would give it.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// 40 lowercase hex digits.
    pub private_key_id: String,
    pub private_key: RsaPrivateKey,
}

impl GeneratedKey {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Self, rsa::Error> {
        let mut id = [0u8; 20];
        rng.fill_bytes(&mut id);
        let private_key = RsaPrivateKey::new(rng, KEY_BITS)?;
        Ok(GeneratedKey {
            private_key_id: hex::encode(id),
            private_key,
        })
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.private_key.to_public_key()
    }

    /// The key file a client would download for this key.
    pub fn key_file(
        &self,
        identity: &ServiceAccountIdentity,
        token_uri: &str,
    ) -> Result<ServiceAccountKeyFile, rsa::pkcs8::Error> {
        let pem = self.private_key.to_pkcs8_pem(LineEnding::LF)?;
        let encoded_email: String =
            form_urlencoded::byte_serialize(identity.client_email.as_bytes()).collect();
        Ok(ServiceAccountKeyFile {
            kind: "service_account".into(),
            project_id: identity.project_id.clone(),
            private_key_id: self.private_key_id.clone(),
            private_key: pem.to_string(),
            client_email: identity.client_email.clone(),
            client_id: identity.client_id.clone(),
            auth_uri: "https://accounts.google.com/o/oauth2/auth".into(),
            token_uri: token_uri.to_string(),
            auth_provider_x509_cert_url: "https://www.googleapis.com/oauth2/v1/certs".into(),
            client_x509_cert_url: format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{encoded_email}"
            ),
            universe_domain: "googleapis.com".into(),
        })
    }
}
