//! Key-file validation: every field's error names the field, both PEM forms of an RSA
//! key load, and the private key never shows in Debug output or errors.

use rand::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{Value, json};
use std::sync::OnceLock;
use tributary_google::{KeyFileError, ServiceAccountKey};

/// RFC 8410's example Ed25519 key: PKCS#8, but not RSA.
const ED25519_PKCS8: &str = "-----BEGIN PRIVATE KEY-----\n\
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
-----END PRIVATE KEY-----\n";

fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key")
    })
}

fn pkcs8_pem() -> String {
    rsa_key().to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
}

fn pkcs1_pem() -> String {
    rsa_key().to_pkcs1_pem(LineEnding::LF).unwrap().to_string()
}

/// A key file as Google's console writes it.
fn key_file() -> Value {
    json!({
        "type": "service_account",
        "project_id": "acme-crm",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pkcs8_pem(),
        "client_email": "tributary@acme-crm.iam.gserviceaccount.com",
        "client_id": "112233445566778899001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
        "universe_domain": "googleapis.com"
    })
}

fn load(value: &Value) -> Result<ServiceAccountKey, KeyFileError> {
    ServiceAccountKey::from_json(value.to_string().as_bytes())
}

fn with(field: &str, value: Value) -> Value {
    let mut file = key_file();
    file[field] = value;
    file
}

fn without(field: &str) -> Value {
    let mut file = key_file();
    file.as_object_mut().unwrap().remove(field);
    file
}

#[test]
fn a_console_key_file_loads_with_its_public_metadata() {
    let key = load(&key_file()).expect("loads");
    let info = key.info();
    assert_eq!(info.project_id.as_deref(), Some("acme-crm"));
    assert_eq!(
        info.client_email,
        "tributary@acme-crm.iam.gserviceaccount.com"
    );
    assert_eq!(key.client_id(), "112233445566778899001");
    assert_eq!(
        key.private_key_id(),
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(key.token_uri(), "https://oauth2.googleapis.com/token");
}

#[test]
fn pkcs1_keys_load_too() {
    let key = load(&with("private_key", json!(pkcs1_pem()))).expect("PKCS#1 loads");
    assert_eq!(key.client_id(), "112233445566778899001");
}

#[test]
fn keys_pasted_with_escaped_newlines_load() {
    let escaped = pkcs8_pem().replace('\n', "\\n");
    assert!(load(&with("private_key", json!(escaped))).is_ok());
}

#[test]
fn the_private_key_never_shows_in_debug_output() {
    let key = load(&key_file()).unwrap();
    let printed = format!("{key:?}");
    assert!(printed.contains("[redacted]"), "{printed}");
    let body_line = pkcs8_pem().lines().nth(1).unwrap().to_string();
    assert!(!printed.contains(&body_line), "{printed}");
    assert!(!printed.contains("BEGIN"), "{printed}");
}

#[test]
fn each_missing_field_is_named() {
    for field in [
        "type",
        "client_email",
        "client_id",
        "private_key",
        "private_key_id",
        "token_uri",
    ] {
        let error = load(&without(field)).unwrap_err();
        assert_eq!(error, KeyFileError::Missing(field));
        assert_eq!(error.field(), Some(field));
        assert!(error.to_string().contains(&format!("`{field}`")), "{error}");
    }
}

#[test]
fn empty_and_mistyped_fields_are_named() {
    assert_eq!(
        load(&with("client_email", json!("  "))).unwrap_err(),
        KeyFileError::Empty("client_email")
    );
    assert_eq!(
        load(&with("client_id", json!(112233))).unwrap_err(),
        KeyFileError::NotAString("client_id")
    );
}

#[test]
fn project_id_is_optional() {
    let key = load(&without("project_id")).unwrap();
    assert_eq!(key.info().project_id, None);
}

#[test]
fn not_json_or_not_an_object_is_said_plainly() {
    let error = ServiceAccountKey::from_json(b"-----BEGIN PRIVATE KEY-----").unwrap_err();
    assert!(matches!(error, KeyFileError::NotJson(_)), "{error}");
    assert_eq!(error.field(), None);
    assert_eq!(
        ServiceAccountKey::from_json(b"[1, 2]").unwrap_err(),
        KeyFileError::NotAnObject
    );
}

#[test]
fn other_credential_types_are_refused_by_type() {
    let error = load(&with("type", json!("authorized_user"))).unwrap_err();
    assert_eq!(
        error,
        KeyFileError::NotServiceAccount("authorized_user".into())
    );
    assert_eq!(error.field(), Some("type"));
}

#[test]
fn client_id_must_be_the_numeric_id_delegation_uses() {
    let error = load(&with(
        "client_id",
        json!("tributary@acme-crm.iam.gserviceaccount.com"),
    ))
    .unwrap_err();
    assert_eq!(error.field(), Some("client_id"));
    let message = error.to_string();
    assert!(message.contains("numeric client ID"), "{message}");
    assert!(message.contains("domain-wide delegation"), "{message}");
}

#[test]
fn client_email_must_be_an_address() {
    let error = load(&with("client_email", json!("tributary"))).unwrap_err();
    assert_eq!(error, KeyFileError::InvalidClientEmail("tributary".into()));
}

#[test]
fn token_uri_must_be_an_http_url() {
    for bad in [
        "oauth2.googleapis.com/token",
        "file:///etc/passwd",
        "https://",
    ] {
        let error = load(&with("token_uri", json!(bad))).unwrap_err();
        assert_eq!(error.field(), Some("token_uri"), "{bad}: {error}");
    }
}

#[test]
fn private_keys_that_are_not_pem_rsa_are_refused_by_kind() {
    let not_pem = load(&with(
        "private_key",
        json!("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    ));
    assert_eq!(not_pem.unwrap_err(), KeyFileError::PrivateKeyNotPem);

    let ed25519 = load(&with("private_key", json!(ED25519_PKCS8))).unwrap_err();
    assert!(
        matches!(&ed25519, KeyFileError::PrivateKeyNotRsa(what) if what.contains("1.3.101.112")),
        "{ed25519}"
    );
    assert!(ed25519.to_string().contains("BEGIN RSA PRIVATE KEY"));

    let certificate = ED25519_PKCS8.replace("PRIVATE KEY", "CERTIFICATE");
    let error = load(&with("private_key", json!(certificate))).unwrap_err();
    assert!(
        matches!(&error, KeyFileError::PrivateKeyNotRsa(what) if what.contains("CERTIFICATE")),
        "{error}"
    );

    let encrypted = ED25519_PKCS8.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
    assert_eq!(
        load(&with("private_key", json!(encrypted))).unwrap_err(),
        KeyFileError::PrivateKeyEncrypted
    );
}

#[test]
fn a_damaged_rsa_key_is_refused_without_quoting_it() {
    // An RSA PKCS#1 label around bytes that are not an RSA key.
    let damaged = ED25519_PKCS8.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let error = load(&with("private_key", json!(damaged))).unwrap_err();
    assert!(
        matches!(error, KeyFileError::PrivateKeyInvalid(_)),
        "{error}"
    );
    assert_eq!(error.field(), Some("private_key"));
    assert!(!error.to_string().contains("MC4CAQAw"), "{error}");
}
