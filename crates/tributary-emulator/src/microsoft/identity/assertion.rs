//! Client assertions (certificate credentials): a JWT signed with the certificate's key,
//! RS256 with `x5t` (SHA-1 thumbprint, what msal sends given a thumbprint) or PS256 with
//! `x5t#S256` (what the docs show and msal sends given the public certificate).
//! NumericDate claims may be floats (msal sends `exp: 1796178915.288`).

use super::errors::{self, AadError};
use super::registry::{AppRegistration, CertCredential};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use rsa::signature::Verifier;
use serde_json::Value;
use sha2::Sha256;

/// Tolerated clock skew, as the identity platform allows.
const SKEW_SECONDS: f64 = 300.0;

fn decode(segment: &str) -> Option<Vec<u8>> {
    let trimmed = segment.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE.decode(segment))
        .ok()
}

fn json_segment(segment: &str) -> Option<Value> {
    serde_json::from_slice(&decode(segment)?).ok()
}

/// A NumericDate claim as seconds, integer or float.
fn numeric_date(claims: &Value, name: &str) -> Option<f64> {
    claims.get(name).and_then(Value::as_f64)
}

struct Parsed<'a> {
    header: Value,
    claims: Value,
    signed: &'a str,
    signature: Vec<u8>,
}

fn parse(assertion: &str) -> Option<Parsed<'_>> {
    let mut parts = assertion.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(Parsed {
        header: json_segment(h)?,
        claims: json_segment(c)?,
        signed: &assertion[..h.len() + 1 + c.len()],
        signature: decode(s)?,
    })
}

/// The registered certificate the header names by thumbprint.
fn credential<'a>(
    app: &'a AppRegistration,
    header: &Value,
) -> Result<&'a CertCredential, AadError> {
    let by = |name: &str| header.get(name).and_then(Value::as_str).and_then(decode);
    let found = match (by("x5t#S256"), by("x5t")) {
        (Some(sha256), _) => app.certificates.iter().find(|c| c.sha256 == sha256),
        (None, Some(sha1)) => app.certificates.iter().find(|c| c.sha1 == sha1),
        (None, None) => return Err(errors::bad_assertion("The key was not found.")),
    };
    found.ok_or_else(|| errors::bad_assertion("The key was not found."))
}

fn signature_verifies(parsed: &Parsed<'_>, credential: &CertCredential) -> bool {
    let key = credential.public_key.clone();
    match parsed.header.get("alg").and_then(Value::as_str) {
        Some("RS256") => {
            rsa::pkcs1v15::Signature::try_from(parsed.signature.as_slice()).is_ok_and(|sig| {
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                    .verify(parsed.signed.as_bytes(), &sig)
                    .is_ok()
            })
        }
        Some("PS256") => {
            rsa::pss::Signature::try_from(parsed.signature.as_slice()).is_ok_and(|sig| {
                rsa::pss::VerifyingKey::<Sha256>::new(key)
                    .verify(parsed.signed.as_bytes(), &sig)
                    .is_ok()
            })
        }
        _ => false,
    }
}

fn check_claims(
    claims: &Value,
    client_id: &str,
    audiences: &[String],
    now: f64,
) -> Result<(), AadError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("");
    if !audiences.iter().any(|a| a == text("aud")) {
        return Err(AadError::invalid_client(
            700_021,
            format!(
                "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials. Audience: {}",
                text("aud")
            ),
        ));
    }
    if !text("iss").eq_ignore_ascii_case(client_id) || !text("sub").eq_ignore_ascii_case(client_id)
    {
        return Err(AadError::invalid_client(
            700_023,
            "Client assertion audience claim does not match Realm issuer or the subject and issuer are not the client id.",
        ));
    }
    let exp = numeric_date(claims, "exp")
        .ok_or_else(|| errors::assertion_time("The 'exp' claim is missing."))?;
    if exp + SKEW_SECONDS < now {
        return Err(errors::assertion_time(&format!(
            "Current time: {now}, expiry time of assertion {exp}."
        )));
    }
    if numeric_date(claims, "nbf").is_some_and(|nbf| nbf - SKEW_SECONDS > now) {
        return Err(errors::assertion_time("The assertion is not yet valid."));
    }
    Ok(())
}

/// Verifies a client assertion for `app`; `audiences` are the token endpoint URLs the
/// request may have used.
pub fn verify(
    assertion: &str,
    app: &AppRegistration,
    audiences: &[String],
    now: f64,
) -> Result<(), AadError> {
    let parsed = parse(assertion)
        .ok_or_else(|| AadError::invalid_client(50_027, "JWT token is invalid or malformed."))?;
    let credential = credential(app, &parsed.header)?;
    if !signature_verifies(&parsed, credential) {
        return Err(errors::bad_assertion(
            "The provided signature value did not match the expected signature value.",
        ));
    }
    check_claims(&parsed.claims, &app.client_id, audiences, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    use rsa::{RsaPrivateKey, RsaPublicKey};
    use sha1::Digest as _;
    use std::collections::BTreeSet;

    fn key() -> RsaPrivateKey {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        RsaPrivateKey::new(&mut rng, 1024).unwrap()
    }

    fn app(public: RsaPublicKey, cert: &[u8]) -> AppRegistration {
        AppRegistration {
            client_id: "app".into(),
            display_name: "Tributary".into(),
            secrets: vec![],
            certificates: vec![CertCredential {
                sha1: sha1::Sha1::digest(cert).to_vec(),
                sha256: sha2::Sha256::digest(cert).to_vec(),
                public_key: public,
            }],
            disabled: false,
            required_roles: BTreeSet::new(),
        }
    }

    fn jwt(header: Value, claims: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn claims(exp: f64) -> Value {
        serde_json::json!({"aud": "https://e/t/oauth2/v2.0/token", "iss": "app", "sub": "app", "jti": "1", "iat": exp - 600.0, "exp": exp})
    }

    #[test]
    fn rs256_with_x5t_and_float_dates_verifies_and_a_wrong_key_does_not() {
        let private = key();
        let cert = b"certificate der";
        let registered = app(private.to_public_key(), cert);
        let x5t = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(cert));
        let signer = SigningKey::<Sha256>::new(private.clone());
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": x5t});
        let token = jwt(header.clone(), claims(2_000_000_000.5), |b| {
            signer.sign(b).to_vec()
        });
        let audiences = vec!["https://e/t/oauth2/v2.0/token".to_string()];
        assert_eq!(
            verify(&token, &registered, &audiences, 1_999_999_000.25),
            Ok(())
        );

        let other =
            SigningKey::<Sha256>::new(RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap());
        let forged = jwt(header, claims(2_000_000_000.5), |b| other.sign(b).to_vec());
        let error = verify(&forged, &registered, &audiences, 1_999_999_000.0).unwrap_err();
        assert_eq!(error.code, 700_027);
    }

    #[test]
    fn ps256_with_x5t_s256_verifies_and_expiry_is_checked() {
        let private = key();
        let cert = b"certificate der";
        let registered = app(private.to_public_key(), cert);
        let x5t = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(cert));
        let signer = rsa::pss::SigningKey::<Sha256>::new(private);
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t});
        let sign = |b: &[u8]| signer.sign_with_rng(&mut rand::thread_rng(), b).to_vec();
        let audiences = vec!["https://e/t/oauth2/v2.0/token".to_string()];
        let token = jwt(header.clone(), claims(2_000_000_000.0), sign);
        assert_eq!(
            verify(&token, &registered, &audiences, 1_999_999_999.0),
            Ok(())
        );
        let error = verify(&token, &registered, &audiences, 2_000_001_000.0).unwrap_err();
        assert_eq!(error.code, 700_024);
        let unknown =
            serde_json::json!({"alg": "PS256", "x5t#S256": URL_SAFE_NO_PAD.encode([1u8; 32])});
        let token = jwt(unknown, claims(2_000_000_000.0), sign);
        assert_eq!(
            verify(&token, &registered, &audiences, 1_999_999_999.0)
                .unwrap_err()
                .code,
            700_027
        );
    }
}
