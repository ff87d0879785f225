//! The tenant's identity state: the app registration (secrets, certificate credentials,
//! disabled flag, the application permissions it asks for), its service principal (which
//! exists once consent is granted, with the roles granted), application access policies,
//! and the access tokens issued.

use super::super::ids::random_guid;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The application permissions Tributary's app asks for (Graph app roles).
pub const TRIBUTARY_ROLES: &[&str] = &[
    "User.Read.All",
    "Mail.Read",
    "Calendars.Read",
    "Contacts.Read",
    "Tasks.Read.All",
    "RoleManagement.Read.Directory",
];

/// A client secret. Its value is what clients send; the id is what the portal shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub id: String,
    #[serde(skip)]
    pub value: String,
    pub expired: bool,
}

/// A registered certificate credential: its thumbprints and public key.
#[derive(Debug, Clone)]
pub struct CertCredential {
    pub sha1: Vec<u8>,
    pub sha256: Vec<u8>,
    pub public_key: RsaPublicKey,
}

#[derive(Debug, Clone)]
pub struct AppRegistration {
    pub client_id: String,
    pub display_name: String,
    pub secrets: Vec<Secret>,
    pub certificates: Vec<CertCredential>,
    pub disabled: bool,
    /// What admin consent grants.
    pub required_roles: BTreeSet<String>,
}

/// How an access policy treats the members of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessRight {
    /// Only the group's mailboxes are accessible.
    RestrictAccess,
    /// The group's mailboxes are not accessible.
    DenyAccess,
}

/// `New-ApplicationAccessPolicy`: a mail-enabled group the app is restricted to or denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// User ids.
    pub members: BTreeSet<String>,
    pub right: AccessRight,
}

impl AccessPolicy {
    pub fn allows(&self, user_id: &str) -> bool {
        let member = self.members.contains(user_id);
        match self.right {
            AccessRight::RestrictAccess => member,
            AccessRight::DenyAccess => !member,
        }
    }
}

/// What an access token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub roles: BTreeSet<String>,
    /// Unix seconds.
    pub expires_at: u64,
}

#[derive(Debug, Default)]
pub struct Identity {
    pub apps: Vec<AppRegistration>,
    /// Service principals by client id: the roles granted.
    pub principals: HashMap<String, BTreeSet<String>>,
    pub policies: HashMap<String, AccessPolicy>,
    /// Admin consent answers with an error while this is set.
    pub decline_consent: bool,
    tokens: HashMap<String, Grant>,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A new client secret value: 40 characters, like the portal's.
pub fn new_secret_value() -> String {
    let bytes: [u8; 30] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes).replace(['-', '_'], "~")
}

impl Identity {
    pub fn app(&self, client_id: &str) -> Option<&AppRegistration> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn app_mut(&mut self, client_id: &str) -> Option<&mut AppRegistration> {
        self.apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    /// Grants consent: the service principal exists with the app's required roles.
    pub fn consent(&mut self, client_id: &str) -> bool {
        let Some(roles) = self.app(client_id).map(|a| a.required_roles.clone()) else {
            return false;
        };
        self.principals.insert(client_id.to_string(), roles);
        true
    }

    /// Issues a JWT-shaped access token (clients must treat it as opaque; Graph looks it
    /// up here). `lifetime` is how long it is valid.
    pub fn issue(
        &mut self,
        tenant_id: &str,
        client_id: &str,
        lifetime: Duration,
    ) -> (String, Grant) {
        let roles = self.principals.get(client_id).cloned().unwrap_or_default();
        let now = unix_now();
        let grant = Grant {
            client_id: client_id.to_string(),
            roles,
            expires_at: now + lifetime.as_secs(),
        };
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": "tributary-emulator"});
        let mut claims = json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{tenant_id}/"),
            "iat": now, "nbf": now, "exp": grant.expires_at,
            "appid": client_id, "idtyp": "app", "tid": tenant_id,
            "oid": random_guid(), "sub": random_guid(), "uti": random_guid(),
            "ver": "1.0",
        });
        if !grant.roles.is_empty() {
            claims["roles"] = json!(grant.roles);
        }
        let signature: [[u8; 32]; 2] = rand::random();
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(signature.concat())
        );
        self.tokens.insert(token.clone(), grant.clone());
        (token, grant)
    }

    pub fn lookup(&self, token: &str) -> Option<&Grant> {
        self.tokens.get(token)
    }

    /// Every issued token expires now.
    pub fn expire_tokens(&mut self) {
        let past = unix_now().saturating_sub(1);
        for grant in self.tokens.values_mut() {
            grant.expires_at = past;
        }
    }

    /// Whether the app may read `user_id`'s mailbox under its access policy.
    pub fn policy_allows(&self, client_id: &str, user_id: &str) -> bool {
        self.policies
            .get(client_id)
            .is_none_or(|p| p.allows(user_id))
    }
}
