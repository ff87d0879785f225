//! The app registration's credentials: a client secret and a certificate credential (an
//! RSA key and a self-signed certificate whose thumbprints the tenant registers), the
//! key seeded so runs are reproducible.

use super::identity::registry::{
    AppRegistration, CertCredential, Secret, TRIBUTARY_ROLES, new_secret_value,
};
use super::ids::guid;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use sha1::Digest as _;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot generate the RSA key: {0}")]
    Rsa(#[from] rsa::Error),
    #[error("cannot encode the key: {0}")]
    Pkcs8(#[from] rsa::pkcs8::Error),
    #[error("cannot make the certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// A certificate credential as the client holds it.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub thumbprint_sha1: String,
    pub thumbprint_sha256: String,
    pub credential: CertCredential,
}

/// Generating a 2048-bit key takes a while and depends only on the seed: remembered for
/// the life of the process.
fn seeded_key(seed: u64) -> Result<RsaPrivateKey, CredentialError> {
    static CACHE: OnceLock<Mutex<HashMap<u64, RsaPrivateKey>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(key) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&seed)
    {
        return Ok(key.clone());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4d53_4150_5043_4552);
    let key = RsaPrivateKey::new(&mut rng, 2048)?;
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(seed, key.clone());
    Ok(key)
}

pub fn client_certificate(
    seed: u64,
    client_id: &str,
) -> Result<ClientCertificate, CredentialError> {
    let key = seeded_key(seed)?;
    let private_key_pem = key.to_pkcs8_pem(LineEnding::LF)?.to_string();
    let key_pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&private_key_pem, &rcgen::PKCS_RSA_SHA256)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("Tributary {client_id}"));
    let certificate = params.self_signed(&key_pair)?;
    let der: &[u8] = certificate.der();
    let sha1 = sha1::Sha1::digest(der).to_vec();
    let sha256 = sha2::Sha256::digest(der).to_vec();
    Ok(ClientCertificate {
        certificate_pem: certificate.pem(),
        private_key_pem,
        thumbprint_sha1: hex::encode_upper(&sha1),
        thumbprint_sha256: hex::encode_upper(&sha256),
        credential: CertCredential {
            sha1,
            sha256,
            public_key: key.to_public_key(),
        },
    })
}

/// `x5t` for a SHA-1 thumbprint (base64url of the digest).
pub fn x5t(sha1: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha1)
}

/// The app registration's client id in a tenant.
pub fn app_client_id(tenant_id: &str, seed: u64) -> String {
    guid("app", &format!("{tenant_id}/{seed}"))
}

/// Tributary's app registration with one secret and the certificate.
pub fn tributary_app(
    tenant_id: &str,
    seed: u64,
    certificate: &ClientCertificate,
) -> AppRegistration {
    AppRegistration {
        client_id: app_client_id(tenant_id, seed),
        display_name: "Tributary".into(),
        secrets: vec![Secret {
            id: guid("secret", &format!("{tenant_id}/{seed}/1")),
            value: new_secret_value(),
            expired: false,
        }],
        certificates: vec![certificate.credential.clone()],
        disabled: false,
        required_roles: TRIBUTARY_ROLES.iter().map(|r| (*r).to_string()).collect(),
    }
}
