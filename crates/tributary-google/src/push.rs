//! Gmail push through a Cloud Pub/Sub push subscription: what Tributary's receiving
//! endpoint needs to trust a delivery (the OIDC token Pub/Sub signs, checked against
//! Google's certificates) and to read it (the envelope's `{emailAddress, historyId}`).
//! See `docs/push.md`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Where Google serves the keys that sign Pub/Sub's push tokens (JWKS).
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Google's two spellings of the issuer of its ID tokens.
const ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];

/// Google rotates its keys about daily and serves each for longer: an hour's cache
/// follows a rotation well before the old key is retired.
const CERTS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// A token naming a key we do not hold refetches the certificates at most this often, so
/// forged `kid`s cannot make us hammer Google.
const UNKNOWN_KEY_REFETCH: Duration = Duration::from_secs(60);

/// Largest push body read (Gmail's envelope is a few hundred bytes).
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// Why a push delivery is not trusted.
#[derive(Debug, thiserror::Error)]
pub enum PushAuthError {
    #[error("the push request has no bearer token")]
    MissingToken,
    #[error("the push token is not a signed RS256 JWT with a key id")]
    Malformed,
    #[error("the push token is signed by a key Google does not list")]
    UnknownKey,
    #[error("the push token does not verify: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("the push token is for another audience")]
    WrongAudience,
    #[error("the push token is not from the service account this tenant's subscription uses")]
    WrongSender,
    #[error("the push token's email is not verified")]
    Unverified,
    #[error("cannot read Google's push certificates: {0}")]
    Certificates(String),
}

impl PushAuthError {
    /// Whether the sender proved who it is but is not the one we expect (403), rather
    /// than not proving anything (401). A certificate outage is neither: the caller
    /// answers 5xx so that Pub/Sub retries.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            PushAuthError::WrongAudience | PushAuthError::WrongSender | PushAuthError::Unverified
        )
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, PushAuthError::Certificates(_))
    }
}

/// The claims of a verified push token that we look at.
#[derive(Debug, Clone, Deserialize)]
struct PushClaims {
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
}

#[derive(Debug)]
struct CachedCerts {
    keys: JwkSet,
    fetched_at: Instant,
}

/// Verifies Pub/Sub push tokens against Google's certificates, cached.
#[derive(Debug)]
pub struct PushVerifier {
    http: reqwest::Client,
    certs_url: String,
    certs: Mutex<Option<CachedCerts>>,
}

impl PushVerifier {
    /// A verifier reading certificates at `certs_url` (the operator's setting: Google's
    /// [`GOOGLE_CERTS_URL`], or an emulator's `/oauth2/v3/certs`).
    pub fn new(certs_url: &str) -> Result<Self, reqwest::Error> {
        let http = tributary_http::client_builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("tributary/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(PushVerifier {
            http,
            certs_url: certs_url.to_owned(),
            certs: Mutex::new(None),
        })
    }

    /// Checks `token` (the `Authorization: Bearer` value): signed by one of Google's
    /// keys with RS256, issued by Google, for `audience`, by `sender` (the service
    /// account the push subscription signs as) with a verified email, not expired.
    pub async fn verify(
        &self,
        token: &str,
        audience: &str,
        sender: &str,
    ) -> Result<(), PushAuthError> {
        let header = decode_header(token).map_err(|_| PushAuthError::Malformed)?;
        let kid = match (header.alg, header.kid) {
            (Algorithm::RS256, Some(kid)) => kid,
            _ => return Err(PushAuthError::Malformed),
        };
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&ISSUERS);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = decode::<PushClaims>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidAudience => PushAuthError::WrongAudience,
                _ => PushAuthError::Invalid(e),
            })?
            .claims;
        let email = claims.email.ok_or(PushAuthError::WrongSender)?;
        if !email.eq_ignore_ascii_case(sender) {
            return Err(PushAuthError::WrongSender);
        }
        if !claims.email_verified {
            return Err(PushAuthError::Unverified);
        }
        Ok(())
    }

    /// The decoding key `kid`, from the cache while fresh; refetched when stale, or when
    /// `kid` is unknown and the last fetch is not too recent.
    async fn key(&self, kid: &str) -> Result<DecodingKey, PushAuthError> {
        let mut certs = self.certs.lock().await;
        let (found, age) = match certs.as_ref() {
            Some(cached) => (
                cached.keys.find(kid).cloned(),
                Some(cached.fetched_at.elapsed()),
            ),
            None => (None, None),
        };
        let refetch = match (&found, age) {
            (_, None) => true,
            (Some(_), Some(age)) => age > CERTS_MAX_AGE,
            (None, Some(age)) => age > UNKNOWN_KEY_REFETCH,
        };
        let jwk = if refetch {
            let keys = self.fetch().await?;
            let jwk = keys.find(kid).cloned();
            *certs = Some(CachedCerts {
                keys,
                fetched_at: Instant::now(),
            });
            jwk
        } else {
            found
        };
        let jwk = jwk.ok_or(PushAuthError::UnknownKey)?;
        DecodingKey::from_jwk(&jwk).map_err(|_| PushAuthError::UnknownKey)
    }

    async fn fetch(&self) -> Result<JwkSet, PushAuthError> {
        let failed = |what: String| PushAuthError::Certificates(what);
        let response = self
            .http
            .get(&self.certs_url)
            .send()
            .await
            .map_err(|e| failed(tributary_http::transport_failure(&e).message().to_owned()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!("the certificates URL answered {status}")));
        }
        response
            .json::<JwkSet>()
            .await
            .map_err(|_| failed("the certificates are not a JWKS document".to_owned()))
    }
}

/// What a Gmail push says: this mailbox's history reached `history_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GmailNotification {
    pub email_address: String,
    pub history_id: u64,
}

/// Why a push body is not a Gmail notification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("the push body is larger than {MAX_ENVELOPE_BYTES} bytes")]
    TooLarge,
    #[error("the push body is not a Pub/Sub envelope: {0}")]
    NotAnEnvelope(String),
    #[error("the Pub/Sub message data is not base64")]
    NotBase64,
    #[error("the Pub/Sub message data is not a Gmail notification: {0}")]
    NotGmail(String),
}

#[derive(Deserialize)]
struct Envelope {
    message: EnvelopeMessage,
}

#[derive(Deserialize)]
struct EnvelopeMessage {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GmailData {
    email_address: String,
    history_id: HistoryId,
}

/// Google's guide shows `historyId` as a string; a number is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum HistoryId {
    Text(String),
    Number(u64),
}

/// Reads a Pub/Sub push body carrying a Gmail notification.
pub fn parse_envelope(body: &[u8]) -> Result<GmailNotification, EnvelopeError> {
    if body.len() > MAX_ENVELOPE_BYTES {
        return Err(EnvelopeError::TooLarge);
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| EnvelopeError::NotAnEnvelope(e.to_string()))?;
    let data = envelope.message.data.trim();
    let decoded = STANDARD
        .decode(data)
        .or_else(|_| URL_SAFE.decode(data))
        .map_err(|_| EnvelopeError::NotBase64)?;
    let gmail: GmailData =
        serde_json::from_slice(&decoded).map_err(|e| EnvelopeError::NotGmail(e.to_string()))?;
    let history_id = match gmail.history_id {
        HistoryId::Number(n) => n,
        HistoryId::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| EnvelopeError::NotGmail("historyId is not a number".to_owned()))?,
    };
    let email_address = gmail.email_address.trim().to_owned();
    if email_address.is_empty() || email_address.len() > 320 {
        return Err(EnvelopeError::NotGmail(
            "emailAddress is empty or too long".to_owned(),
        ));
    }
    Ok(GmailNotification {
        email_address,
        history_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(data: &str) -> Vec<u8> {
        serde_json::json!({"message": {"data": data, "messageId": "1"}, "subscription": "s"})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn envelopes_carry_the_mailbox_and_history_id_as_string_or_number() {
        let text = STANDARD.encode(r#"{"emailAddress":"bob@acme.example","historyId":"5012"}"#);
        assert_eq!(
            parse_envelope(&envelope(&text)),
            Ok(GmailNotification {
                email_address: "bob@acme.example".into(),
                history_id: 5012
            })
        );
        let number = STANDARD.encode(r#"{"emailAddress":"bob@acme.example","historyId":7}"#);
        assert_eq!(parse_envelope(&envelope(&number)).unwrap().history_id, 7);
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        assert!(matches!(
            parse_envelope(b"{}"),
            Err(EnvelopeError::NotAnEnvelope(_))
        ));
        assert_eq!(
            parse_envelope(&envelope("***")),
            Err(EnvelopeError::NotBase64)
        );
        let other = STANDARD.encode(r#"{"hello":1}"#);
        assert!(matches!(
            parse_envelope(&envelope(&other)),
            Err(EnvelopeError::NotGmail(_))
        ));
        let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(parse_envelope(&big), Err(EnvelopeError::TooLarge));
    }

    /// Serves `jwks` as the answer to every request on a loopback port, counting them.
    async fn serve_certs(jwks: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&served);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                    jwks.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, served)
    }

    struct Signer {
        key: jsonwebtoken::EncodingKey,
        jwks: String,
    }

    fn new_signer(kid: &str) -> Signer {
        use rsa::pkcs8::EncodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let jwks = serde_json::json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": b64.encode(private.n().to_bytes_be()),
            "e": b64.encode(private.e().to_bytes_be()),
        }]});
        Signer {
            key: jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwks: jwks.to_string(),
        }
    }

    fn sign(signer: &Signer, kid: &str, claims: serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &signer.key).unwrap()
    }

    fn claims(change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = serde_json::json!({
            "iss": "https://accounts.google.com", "aud": "https://crm.example/push/google/acme",
            "email": "sync@project.iam.gserviceaccount.com", "email_verified": true,
            "iat": now, "exp": now + 3600,
        });
        change(&mut claims);
        claims
    }

    #[tokio::test]
    async fn each_claim_of_a_push_token_is_checked_and_the_certificates_cached() {
        let signer = new_signer("k1");
        let (url, served) = serve_certs(signer.jwks.clone()).await;
        let verifier = PushVerifier::new(&url).unwrap();
        let verify = |token: String| {
            let verifier = &verifier;
            async move {
                verifier
                    .verify(
                        &token,
                        "https://crm.example/push/google/acme",
                        "SYNC@project.iam.gserviceaccount.com",
                    )
                    .await
            }
        };
        verify(sign(&signer, "k1", claims(|_| {}))).await.unwrap();
        let bare_issuer = claims(|c| c["iss"] = "accounts.google.com".into());
        verify(sign(&signer, "k1", bare_issuer)).await.unwrap();

        let now = jsonwebtoken::get_current_timestamp();
        let refused = [
            (
                claims(|c| c["iss"] = "https://evil.example".into()),
                "Invalid",
            ),
            (claims(|c| c["exp"] = (now - 3600).into()), "Invalid"),
            (
                claims(|c| c["aud"] = "https://crm.example/push/google/other".into()),
                "WrongAudience",
            ),
            (
                claims(|c| c["email"] = "someone@else.example".into()),
                "WrongSender",
            ),
            (claims(|c| c["email_verified"] = false.into()), "Unverified"),
        ];
        for (claims, expected) in refused {
            let error = verify(sign(&signer, "k1", claims)).await.unwrap_err();
            assert!(
                format!("{error:?}").starts_with(expected),
                "{expected}: {error:?}"
            );
        }
        // Another key under the listed key id: the signature does not verify.
        let forger = new_signer("k1");
        let forged = verify(sign(&forger, "k1", claims(|_| {})))
            .await
            .unwrap_err();
        assert!(matches!(forged, PushAuthError::Invalid(_)), "{forged:?}");
        // An unknown key id: refused, and no refetch within the minute.
        let unknown = verify(sign(&signer, "k9", claims(|_| {})))
            .await
            .unwrap_err();
        assert!(matches!(unknown, PushAuthError::UnknownKey), "{unknown:?}");
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn tokens_that_are_not_signed_jwts_are_refused_before_any_fetch() {
        // Port 9 on loopback: a fetch would fail with a certificates error instead.
        let verifier = PushVerifier::new("http://127.0.0.1:9/certs").unwrap();
        for token in ["", "abc", "eyJhbGciOiJub25lIn0.eyJhIjoxfQ."] {
            let error = verifier.verify(token, "aud", "sa@x").await.unwrap_err();
            assert!(
                matches!(error, PushAuthError::Malformed),
                "{token}: {error}"
            );
        }
    }
}
