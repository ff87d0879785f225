//! The OIDC tokens Pub/Sub puts in `Authorization: Bearer` of a push request: RS256
//! JWTs signed by the emulator's own key, issued by `https://accounts.google.com` for the
//! subscription's audience and service account, verifiable against the JWKS served at
//! `/oauth2/v3/certs` (Google's `https://www.googleapis.com/oauth2/v3/certs`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// Google's issuer claim.
pub const ISSUER: &str = "https://accounts.google.com";
/// Google signs push tokens valid for an hour.
const LIFETIME_SECONDS: i64 = 3600;
const KEY_BITS: usize = 2048;

struct Key {
    kid: String,
    signer: SigningKey<Sha256>,
    jwk: Value,
}

/// The emulator's token signing key, made on first use (key generation is slow and most
/// emulators never push).
#[derive(Default)]
pub struct OidcSigner {
    key: OnceLock<Key>,
}

impl std::fmt::Debug for OidcSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSigner")
            .field("kid", &self.key.get().map(|k| k.kid.as_str()))
            .finish()
    }
}

/// What a push token says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims<'a> {
    pub audience: &'a str,
    pub email: &'a str,
    /// The service account's numeric client id (`sub` and `azp`).
    pub subject: &'a str,
}

impl OidcSigner {
    fn key(&self) -> &Key {
        self.key.get_or_init(|| {
            let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
                .expect("RSA key generation with the OS's randomness");
            let n = private.n().to_bytes_be();
            let e = private.e().to_bytes_be();
            let kid = hex::encode(&Sha256::digest(&n)[..20]);
            let jwk = json!({
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(&n),
                "e": URL_SAFE_NO_PAD.encode(&e),
            });
            Key {
                kid,
                signer: SigningKey::<Sha256>::new(private),
                jwk,
            }
        })
    }

    /// The JWKS document (`{"keys":[…]}`).
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.key().jwk.clone()]})
    }

    /// A token issued now.
    pub fn token(&self, claims: &TokenClaims<'_>, now_seconds: i64) -> String {
        let key = self.key();
        let header = json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"});
        let body = json!({
            "aud": claims.audience,
            "azp": claims.subject,
            "email": claims.email,
            "email_verified": true,
            "exp": now_seconds + LIFETIME_SECONDS,
            "iat": now_seconds,
            "iss": ISSUER,
            "sub": claims.subject,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(body.to_string())
        );
        let signature = key.signer.sign(signing_input.as_bytes()).to_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    use rsa::{BigUint, RsaPublicKey};

    #[test]
    fn tokens_verify_against_the_served_key_and_carry_the_claims() {
        let signer = OidcSigner::default();
        let claims = TokenClaims {
            audience: "https://crm.example/push",
            email: "sa@p.iam.gserviceaccount.com",
            subject: "123",
        };
        let token = signer.token(&claims, 1_700_000_000);
        let jwk = &signer.jwks()["keys"][0];
        let decode = |field: &str| {
            BigUint::from_bytes_be(
                &URL_SAFE_NO_PAD
                    .decode(jwk[field].as_str().unwrap())
                    .unwrap(),
            )
        };
        let public = RsaPublicKey::new(decode("n"), decode("e")).unwrap();
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature =
            Signature::try_from(&URL_SAFE_NO_PAD.decode(signature).unwrap()[..]).unwrap();
        let verifier = VerifyingKey::<Sha256>::new(public);
        verifier.verify(input.as_bytes(), &signature).unwrap();
        let tampered = input.replacen('e', "f", 1);
        assert!(verifier.verify(tampered.as_bytes(), &signature).is_err());
        let body: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(input.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(body["iss"], ISSUER);
        assert_eq!(body["aud"], "https://crm.example/push");
        assert_eq!(body["email_verified"], true);
        assert_eq!(body["exp"], 1_700_003_600);
    }
}
