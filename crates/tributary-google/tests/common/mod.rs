//! Fixtures: a small emulated organization on loopback, a connector pointed at it, and
//! the emulator's control API.

#![allow(dead_code)]

use std::collections::BTreeSet;
use tributary_core::HeaderField;
use tributary_emulator::org::OrgConfig;
use tributary_emulator::server::{EmulatorConfig, OrgSource, RunningEmulator, start};
pub use tributary_emulator::testing::ControlClient as Control;
use tributary_google::{ConnectorOptions, GoogleConnector, GoogleEndpoints, ServiceAccountKey};

pub struct Fixture {
    pub emulator: RunningEmulator,
    pub connector: GoogleConnector,
    pub control: Control,
}

/// An emulator with 5 users and about 30 messages each, and a connector using its key.
pub async fn start_fixture() -> Fixture {
    let emulator = start(EmulatorConfig {
        organization: OrgSource::Generate(OrgConfig {
            users: 5,
            messages_per_user: 30,
            ..OrgConfig::default()
        }),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator starts");
    let connector = connector_for(&emulator);
    let control = Control::new(&emulator.info.control_url);
    Fixture {
        emulator,
        connector,
        control,
    }
}

/// The emulator's key file, as an administrator would upload it.
pub fn key_file_json(emulator: &RunningEmulator) -> Vec<u8> {
    serde_json::to_vec(&emulator.key_file).expect("the key file serializes")
}

/// A new connector (so a cold token cache) for the emulator.
pub fn connector_for(emulator: &RunningEmulator) -> GoogleConnector {
    let key = ServiceAccountKey::from_json(&key_file_json(emulator)).expect("the key loads");
    GoogleConnector::new(
        key,
        ConnectorOptions {
            endpoints: GoogleEndpoints::from_base_url(&emulator.base_url),
            ..ConnectorOptions::default()
        },
    )
    .expect("the connector builds")
}

impl Fixture {
    pub fn admin(&self) -> String {
        self.emulator.info.admin_email.clone()
    }

    /// An active, non-admin user whose mailbox works.
    pub fn member(&self) -> String {
        let org = self.emulator.state.org();
        org.users
            .iter()
            .find(|u| {
                !u.is_admin
                    && !u.suspended
                    && !u.archived
                    && !u.deleted
                    && u.is_mailbox_setup
                    && org
                        .mailboxes
                        .get(&u.primary_email.to_ascii_lowercase())
                        .is_some_and(|m| m.mail_enabled && !m.messages.is_empty())
            })
            .map(|u| u.primary_email.clone())
            .expect("the organization has an ordinary member")
    }

    /// The captured headers of a stored message, as its raw bytes have them, and its
    /// `internalDate`.
    pub fn stored_headers(&self, user: &str, id: &str) -> (Vec<(String, String)>, i64) {
        let org = self.emulator.state.org();
        let message = &org.mailboxes[&user.to_ascii_lowercase()].messages[id];
        let headers = message
            .headers
            .iter()
            .filter(|(name, _)| HeaderField::from_name(name).is_some())
            .cloned()
            .collect();
        (headers, message.internal_date_ms)
    }

    /// The ids of the messages in `user`'s mailbox carrying `label`, from the emulator's
    /// own state.
    pub fn message_ids_with_label(&self, user: &str, label: &str) -> BTreeSet<String> {
        let org = self.emulator.state.org();
        org.mailboxes[&user.to_ascii_lowercase()]
            .messages
            .values()
            .filter(|m| m.label_ids.contains(label))
            .map(|m| m.id.clone())
            .collect()
    }
}
