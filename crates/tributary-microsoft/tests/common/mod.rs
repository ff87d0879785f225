//! The Microsoft 365 emulator in-process over HTTPS with its own CA, a connector pointed
//! at it, and a client of its control API.

#![allow(dead_code)] // each test binary uses a different part of this module

use serde_json::{Value, json};
use tributary_emulator::kit::WindowConfig;
use tributary_emulator::microsoft::{MicrosoftConfig, RunningMicrosoft, TenantSource, start};
use tributary_emulator::org::OrgConfig;
use tributary_microsoft::{
    AppCredentials, AssertionAlgorithm, CertificateCredential, ClientCredential, ClientSecret,
    ConnectorOptions, MicrosoftConnector, MicrosoftEndpoints,
};

pub struct Emulator {
    pub running: RunningMicrosoft,
    control: reqwest::Client,
}

pub fn small_org() -> OrgConfig {
    OrgConfig {
        seed: 11,
        users: 6,
        messages_per_user: 40,
        ..OrgConfig::default()
    }
}

impl Emulator {
    pub async fn start() -> Emulator {
        Self::start_with(WindowConfig::default()).await
    }

    pub async fn start_with(throttling: WindowConfig) -> Emulator {
        let running = start(MicrosoftConfig {
            organization: TenantSource::Generate(small_org()),
            throttling,
            ..MicrosoftConfig::default()
        })
        .await
        .expect("the emulator starts");
        let control = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(running.ca_pem.as_bytes()).unwrap()])
            .build()
            .unwrap();
        Emulator { running, control }
    }

    pub fn options(&self) -> ConnectorOptions {
        ConnectorOptions {
            endpoints: MicrosoftEndpoints::from_base_url(&self.running.base_url),
            extra_root_certificates: vec![self.running.ca_pem.clone()],
            ..ConnectorOptions::default()
        }
    }

    pub fn credentials(&self, credential: ClientCredential) -> AppCredentials {
        AppCredentials {
            tenant: self.running.app.tenant_id.clone(),
            client_id: self.running.app.client_id.clone(),
            credential,
        }
    }

    pub fn secret(&self) -> ClientCredential {
        ClientCredential::Secret(ClientSecret::new(self.running.app.client_secret.clone()))
    }

    pub fn certificate(&self, algorithm: AssertionAlgorithm) -> ClientCredential {
        let certificate = &self.running.certificate;
        ClientCredential::Certificate(
            CertificateCredential::from_pem(
                &certificate.certificate_pem,
                &certificate.private_key_pem,
            )
            .expect("the emulator's certificate reads")
            .with_algorithm(algorithm),
        )
    }

    /// A connector with the app's client secret.
    pub fn connector(&self) -> MicrosoftConnector {
        self.connector_with(self.secret())
    }

    pub fn connector_with(&self, credential: ClientCredential) -> MicrosoftConnector {
        MicrosoftConnector::new(self.credentials(credential), self.options())
            .expect("the connector is set up")
    }

    /// A control API call that must succeed.
    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.running.info.control_url);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .control
            .request(method, url)
            .json(&body)
            .send()
            .await
            .expect("the control API answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "control {path}: {status} {body}");
        body
    }

    pub async fn token_requests(&self) -> u64 {
        let counters = self.control("GET", "/counters", json!(null)).await;
        counters["token_requests"]
            .as_u64()
            .unwrap_or_else(|| panic!("token_requests in {counters}"))
    }

    /// Users with an enabled mailbox and Inbox mail: (id, primary address, Inbox count).
    pub fn mailbox_users(&self) -> Vec<(String, String, usize)> {
        let tenant = self.running.state.tenant();
        tenant
            .users
            .iter()
            .filter(|u| !u.deleted && u.mail.is_some())
            .filter_map(|u| {
                let mailbox = tenant.mailboxes.get(&u.id)?;
                let inbox = mailbox.counts(&mailbox.well_known_id("inbox")).0;
                (mailbox.enabled && inbox > 3)
                    .then(|| (u.id.clone(), u.mail.clone().unwrap_or_default(), inbox))
            })
            .collect()
    }

    /// A user with an enabled mailbox and some Inbox mail.
    pub fn mailbox_user(&self) -> (String, String, usize) {
        self.mailbox_users()
            .into_iter()
            .next()
            .expect("a user with mail")
    }

    /// The id of a well-known folder of `user`'s mailbox.
    pub fn folder_id(&self, user: &str, name: &str) -> String {
        let tenant = self.running.state.tenant();
        tenant.mailboxes[user].well_known_id(name).to_string()
    }
}
