//! Credentials at rest: AES-256-GCM under a master key, with the tenant id as associated
//! data so a ciphertext copied to another tenant's row does not decrypt.

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "TRIBUTARY_MASTER_KEY";
/// The key file created in the data directory when the environment has no key.
pub const MASTER_KEY_FILE: &str = "master.key";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("master key is not base64 of {KEY_LEN} bytes")]
    MalformedKey,
    #[error("cannot read or create the key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored nonce is not {NONCE_LEN} bytes")]
    MalformedNonce,
    #[error("decryption failed: wrong key, wrong tenant or tampered ciphertext")]
    Decryption,
    #[error("encryption failed")]
    Encryption,
}

/// Secret bytes (a service-account key, a client secret); `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A sealed secret: what the `connections` table stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
}

/// The key that encrypts every credential at rest.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(Key::<Aes256Gcm>::generate())
    }

    /// A key from its base64 text form.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| SecretError::MalformedKey)?;
        let key =
            Key::<Aes256Gcm>::try_from(bytes.as_slice()).map_err(|_| SecretError::MalformedKey)?;
        Ok(Self(key))
    }

    /// The base64 text form, for the key file or the environment.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_slice())
    }

    /// The key from `TRIBUTARY_MASTER_KEY` when set, else from `master.key` in `dir`,
    /// created (mode 0600) with a random key when missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, SecretError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_base64(&text),
            _ => Self::load_or_create_file(&dir.join(MASTER_KEY_FILE)),
        }
    }

    /// The key in `path`, created (mode 0600) with a random key when missing.
    pub fn load_or_create_file(path: &Path) -> Result<Self, SecretError> {
        let io_error = |source| SecretError::KeyFile {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                let mut file = create_private_file(path).map_err(io_error)?;
                writeln!(file, "{}", key.to_base64()).map_err(io_error)?;
                file.sync_all().map_err(io_error)?;
                Ok(key)
            }
            Err(error) => Err(io_error(error)),
        }
    }

    /// Encrypts `plaintext` for `tenant` with a fresh random nonce.
    pub fn seal(&self, tenant: &str, plaintext: &SecretBytes) -> Result<Sealed, SecretError> {
        let nonce = Nonce::generate();
        let payload = Payload {
            msg: plaintext.expose(),
            aad: tenant.as_bytes(),
        };
        let ciphertext = self
            .cipher()
            .encrypt(&nonce, payload)
            .map_err(|_| SecretError::Encryption)?;
        Ok(Sealed {
            ciphertext,
            nonce: nonce.to_vec(),
        })
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same tenant.
    pub fn open(&self, tenant: &str, sealed: &Sealed) -> Result<SecretBytes, SecretError> {
        let nonce =
            Nonce::try_from(sealed.nonce.as_slice()).map_err(|_| SecretError::MalformedNonce)?;
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: tenant.as_bytes(),
        };
        self.cipher()
            .decrypt(&nonce, payload)
            .map(SecretBytes)
            .map_err(|_| SecretError::Decryption)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0)
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    // create_new: never overwrite a key another process just wrote.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretBytes {
        SecretBytes::new(b"{\"private_key\":\"-----BEGIN\"}".to_vec())
    }

    #[test]
    fn seal_then_open_round_trips() {
        let key = MasterKey::generate();
        let sealed = key.seal("acme", &secret()).unwrap();
        assert_ne!(sealed.ciphertext, secret().expose());
        assert_eq!(key.open("acme", &sealed).unwrap(), secret());
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = MasterKey::generate();
        let first = key.seal("acme", &secret()).unwrap();
        let second = key.seal("acme", &secret()).unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let key = MasterKey::generate();
        let mut sealed = key.seal("acme", &secret()).unwrap();
        sealed.ciphertext[0] ^= 1;
        assert!(matches!(
            key.open("acme", &sealed),
            Err(SecretError::Decryption)
        ));
    }

    #[test]
    fn another_tenant_cannot_open_it() {
        let key = MasterKey::generate();
        let sealed = key.seal("acme", &secret()).unwrap();
        assert!(matches!(
            key.open("globex", &sealed),
            Err(SecretError::Decryption)
        ));
    }

    #[test]
    fn another_key_cannot_open_it() {
        let sealed = MasterKey::generate().seal("acme", &secret()).unwrap();
        assert!(MasterKey::generate().open("acme", &sealed).is_err());
    }

    #[test]
    fn debug_output_is_redacted() {
        assert_eq!(format!("{:?}", secret()), "[redacted]");
        assert_eq!(format!("{:?}", MasterKey::generate()), "[redacted]");
    }

    #[test]
    fn base64_form_round_trips_and_rejects_short_keys() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&key.to_base64()).unwrap();
        let sealed = key.seal("acme", &secret()).unwrap();
        assert_eq!(again.open("acme", &sealed).unwrap(), secret());
        assert!(matches!(
            MasterKey::from_base64(&BASE64.encode([0u8; 16])),
            Err(SecretError::MalformedKey)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        let created = MasterKey::load_or_create_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let reloaded = MasterKey::load_or_create_file(&path).unwrap();
        assert_eq!(reloaded.to_base64(), created.to_base64());
    }
}
