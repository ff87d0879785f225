//! Test fixtures: a small hand-built organization, an emulator started on loopback port
//! 0, and a JWT signer independent of the emulator's verifier.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tributary_emulator::model::{
    DirectoryUser, Label, LabelKind, Mailbox, Organization, StoredMessage, parse_header_fields,
};
use tributary_emulator::server::auth::scopes;
use tributary_emulator::server::quota::QuotaConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};

pub const DOMAIN: &str = "acme.example";
pub const ADMIN: &str = "ann@acme.example";
pub const BOB: &str = "bob@acme.example";
pub const BOB_ALIAS: &str = "robert@acme.example";
pub const SUSPENDED: &str = "carol@acme.example";
pub const DELETED: &str = "dave@acme.example";
pub const MAIL_DISABLED: &str = "erin@acme.example";
pub const NO_MAILBOX: &str = "frank@acme.example";
pub const BIG: &str = "gina@acme.example";
pub const GOOGLE_AUD: &str = "https://oauth2.googleapis.com/token";
/// Messages in the big mailbox (more than one page of 500).
pub const BIG_MAILBOX_SIZE: usize = 620;
/// Bob's mailbox history starts here; the backlog sits below.
pub const FIRST_HISTORY_ID: u64 = 5000;
/// 2024-03-01T00:00:00Z.
pub const BASE_MS: i64 = 1_709_251_200_000;
pub const DAY_MS: i64 = 86_400_000;

fn user(n: u32, email: &str, given: &str, family: &str) -> DirectoryUser {
    DirectoryUser {
        id: format!("1{n:020}"),
        primary_email: email.to_string(),
        given_name: given.to_string(),
        family_name: family.to_string(),
        aliases: Vec::new(),
        non_editable_aliases: Vec::new(),
        suspended: false,
        archived: false,
        is_admin: false,
        is_mailbox_setup: true,
        org_unit_path: "/".to_string(),
        creation_time: "2020-01-01T00:00:00.000Z".to_string(),
        deleted: false,
    }
}

/// A stored message with a small RFC 5322 body.
pub fn message(
    id: &str,
    thread: &str,
    labels: &[&str],
    date_ms: i64,
    subject: &str,
) -> StoredMessage {
    let raw = format!(
        "From: Pat Partner <pat@partner.example>\r\nTo: Bob Baker <bob@acme.example>\r\n\
         Subject: {subject}\r\nDate: Fri, 1 Mar 2024 10:00:00 +0000\r\n\
         Message-ID: <{id}@partner.example>\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n\
         Hello about {subject}.\r\n"
    );
    let raw: Arc<[u8]> = Arc::from(raw.into_bytes());
    StoredMessage {
        id: id.to_string(),
        thread_id: thread.to_string(),
        label_ids: labels
            .iter()
            .map(|l| l.to_string())
            .collect::<BTreeSet<_>>(),
        internal_date_ms: date_ms,
        history_id: 0,
        headers: Arc::new(parse_header_fields(&raw)),
        raw,
        snippet: format!("Hello about {subject}."),
    }
}

/// Bob's backlog (no history) and then live changes (history records).
fn bob_mailbox() -> Mailbox {
    let mut mailbox = Mailbox::new(BOB, FIRST_HISTORY_ID);
    mailbox.labels.insert(
        "Label_1".into(),
        Label {
            id: "Label_1".into(),
            name: "Customers".into(),
            kind: LabelKind::User,
        },
    );
    let backlog = [
        (
            "00000000000000a1",
            "t1",
            &["INBOX", "UNREAD"][..],
            0,
            "first",
        ),
        (
            "00000000000000a2",
            "t1",
            &["INBOX", "Label_1"][..],
            1,
            "second",
        ),
        ("00000000000000a3", "t3", &["SENT"][..], 2, "sent one"),
        (
            "00000000000000a4",
            "t4",
            &["INBOX", "UNREAD", "Label_1"][..],
            3,
            "third",
        ),
        ("00000000000000a5", "t5", &["SPAM", "UNREAD"][..], 4, "spam"),
        ("00000000000000a6", "t6", &["TRASH"][..], 5, "trashed"),
        ("00000000000000a7", "t7", &["INBOX"][..], 6, "latest"),
    ];
    for (id, thread, labels, day, subject) in backlog {
        mailbox.add_message_silently(message(id, thread, labels, BASE_MS + day * DAY_MS, subject));
    }
    mailbox
}

/// Records live history in Bob's mailbox: 2 added, a label added and removed, a deletion.
pub fn record_bob_history(mailbox: &mut Mailbox) -> Vec<u64> {
    vec![
        mailbox.add_message(message(
            "00000000000000b1",
            "t8",
            &["INBOX", "UNREAD"],
            BASE_MS + 10 * DAY_MS,
            "live one",
        )),
        mailbox.add_message(message(
            "00000000000000b2",
            "t9",
            &["SENT"],
            BASE_MS + 11 * DAY_MS,
            "live two",
        )),
        mailbox
            .add_labels("00000000000000b1", &["Label_1".into()])
            .unwrap(),
        mailbox
            .remove_labels("00000000000000b1", &["UNREAD".into()])
            .unwrap(),
        mailbox.delete_message("00000000000000b2").unwrap(),
    ]
}

/// The fixture organization.
pub fn organization() -> Organization {
    let mut ann = user(1, ADMIN, "Ann", "Admin");
    ann.is_admin = true;
    let mut bob = user(2, BOB, "Bob", "Baker");
    bob.aliases = vec![BOB_ALIAS.to_string()];
    let mut carol = user(3, SUSPENDED, "Carol", "Cole");
    carol.suspended = true;
    let mut dave = user(4, DELETED, "Dave", "Dunn");
    dave.deleted = true;
    let erin = user(5, MAIL_DISABLED, "Erin", "Eve");
    let mut frank = user(6, NO_MAILBOX, "Frank", "Fox");
    frank.is_mailbox_setup = false;
    let gina = user(7, BIG, "Gina", "Grant");

    let mut bob_box = bob_mailbox();
    record_bob_history(&mut bob_box);
    let mut erin_box = Mailbox::new(MAIL_DISABLED, 100);
    erin_box.mail_enabled = false;
    let mut gina_box = Mailbox::new(BIG, 100);
    for i in 0..BIG_MAILBOX_SIZE {
        let id = format!("{:016x}", 0xc000 + i);
        gina_box.add_message_silently(message(
            &id,
            &id,
            &["INBOX"],
            BASE_MS + i as i64 * 60_000,
            "bulk",
        ));
    }
    let mailboxes = [
        (ADMIN.to_string(), Mailbox::new(ADMIN, 100)),
        (BOB.to_string(), bob_box),
        (SUSPENDED.to_string(), Mailbox::new(SUSPENDED, 100)),
        (MAIL_DISABLED.to_string(), erin_box),
        (BIG.to_string(), gina_box),
    ]
    .into_iter()
    .collect();
    Organization {
        customer_id: "C01abc23d".into(),
        domains: vec![DOMAIN.into(), "acme-alias.example".into()],
        users: vec![ann, bob, carol, dave, erin, frank, gina],
        mailboxes,
        now_ms: BASE_MS + 30 * DAY_MS,
    }
}

/// A running emulator with an HTTP client.
pub struct TestEmulator {
    pub running: RunningEmulator,
    pub http: reqwest::Client,
    pub key: RsaPrivateKey,
}

/// The default test configuration: the fixture organization, no quota limits.
pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        organization: OrgSource::Ready(Box::new(organization())),
        quota: QuotaConfig::unlimited(),
        ..EmulatorConfig::default()
    }
}

pub async fn emulator() -> TestEmulator {
    emulator_with(config()).await
}

pub async fn emulator_with(config: EmulatorConfig) -> TestEmulator {
    let running = start(config).await.expect("emulator starts");
    let key = RsaPrivateKey::from_pkcs8_pem(&running.key_file.private_key).expect("PKCS#8 key");
    TestEmulator {
        running,
        http: reqwest::Client::new(),
        key,
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `claims` with RS256 under `header`.
pub fn sign_jwt(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    sign_segments(key, &encode(header), &encode(claims))
}

/// Signs already encoded segments, for encoders that pad or use another alphabet: the
/// signing input is the segments exactly as sent.
pub fn sign_segments(key: &RsaPrivateKey, header: &str, claims: &str) -> String {
    let signing_input = format!("{header}.{claims}");
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    )
}

impl TestEmulator {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.base_url, path)
    }

    pub fn client_email(&self) -> &str {
        &self.running.key_file.client_email
    }

    pub fn client_id(&self) -> &str {
        &self.running.key_file.client_id
    }

    /// Claims as google-auth builds them for domain-wide delegation.
    pub fn claims(&self, subject: &str, scope: &str) -> Value {
        let now = unix_now();
        json!({
            "iss": self.client_email(),
            "sub": subject,
            "scope": scope,
            "aud": GOOGLE_AUD,
            "iat": now,
            "exp": now + 3600,
        })
    }

    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": self.running.key_file.private_key_id})
    }

    pub fn assertion(&self, claims: &Value) -> String {
        sign_jwt(&self.key, &self.header(), claims)
    }

    /// Posts an assertion to the token endpoint as google-auth does (form-encoded).
    pub async fn token_response(&self, assertion: &str) -> (StatusCode, Value) {
        let body = format!(
            "grant_type={}&assertion={}",
            "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer", assertion
        );
        let response = self
            .http
            .post(&self.running.key_file.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// An access token impersonating `subject` with `scope`.
    pub async fn token(&self, subject: &str, scope: &str) -> String {
        let (status, body) = self
            .token_response(&self.assertion(&self.claims(subject, scope)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn gmail_token(&self, subject: &str) -> String {
        self.token(subject, scopes::GMAIL_READONLY).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Asserts Google's error envelope with `code`, `reason` and (if given) `message`.
pub fn assert_api_error(
    status: StatusCode,
    body: &Value,
    code: u16,
    reason: &str,
    message: Option<&str>,
) {
    assert_eq!(status.as_u16(), code, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["errors"][0]["reason"], reason, "{body}");
    if let Some(message) = message {
        assert_eq!(body["error"]["message"], message, "{body}");
        assert_eq!(body["error"]["errors"][0]["message"], message, "{body}");
    }
}
