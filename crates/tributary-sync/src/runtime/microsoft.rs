//! Microsoft 365 in the runtime: connecting a tenant with its app registration (client
//! id and a secret or a certificate, validated and sealed like Google's key, nothing
//! stored on error) and building the tenant's Graph connector from what was sealed.
//! Where Microsoft is (the identity platform and Graph, or the emulator with its CA)
//! is the operator's configuration, never the tenant's input.

use super::{Runtime, RuntimeError, audit};
use crate::connector::Connector;
use serde::{Deserialize, Serialize};
use tributary_core::PolicySettings;
use tributary_microsoft::{
    AppCredentials, CertificateCredential, ClientCredential, ClientSecret, ConnectorOptions,
    MicrosoftConnector, MicrosoftEndpoints,
};
use tributary_store::{ConnectionKind, SecretBytes, TenantId};

/// Where Microsoft is, from operator configuration.
#[derive(Debug, Clone, Default)]
pub struct MicrosoftSettings {
    pub endpoints: MicrosoftEndpoints,
    /// Extra CA certificates (PEM) to trust besides the system's: the emulator's CA, or
    /// an operator's TLS-inspecting proxy.
    pub extra_root_certificates: Vec<String>,
}

impl MicrosoftSettings {
    /// Microsoft at `base_url` (the emulator's root), trusting `extra_root_certificates`.
    pub fn at(base_url: &str, extra_root_certificates: Vec<String>) -> Self {
        MicrosoftSettings {
            endpoints: MicrosoftEndpoints::from_base_url(base_url),
            extra_root_certificates,
        }
    }
}

/// A Graph connector for an app registration, reaching Microsoft where `settings`
/// say: what the runtime builds from a sealed connection, for tools and tests that hold
/// the credential themselves. A wrong field is named.
pub fn microsoft_connector(
    tenant_id: &str,
    client_id: &str,
    credential: MicrosoftCredential,
    settings: &MicrosoftSettings,
) -> Result<Connector, RuntimeError> {
    let app = SealedApp::new(tenant_id, client_id, credential)?;
    Ok(graph_connector(&app, settings)?.into())
}

fn graph_connector(
    app: &SealedApp,
    settings: &MicrosoftSettings,
) -> Result<MicrosoftConnector, RuntimeError> {
    let options = ConnectorOptions {
        endpoints: settings.endpoints.clone(),
        extra_root_certificates: settings.extra_root_certificates.clone(),
        ..ConnectorOptions::default()
    };
    Ok(MicrosoftConnector::new(app.credentials()?, options)?)
}

/// The app registration's credential, as the admin gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MicrosoftCredential {
    Secret(String),
    /// The certificate uploaded to the app registration and its private key, PEM.
    Certificate {
        certificate_pem: String,
        private_key_pem: String,
    },
}

/// What is sealed for a Microsoft connection. The field names are stored: keep them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SealedApp {
    pub(super) tenant_id: String,
    pub(super) client_id: String,
    pub(super) credential: MicrosoftCredential,
}

/// Longest client secret accepted (Entra ID's are 40 characters).
const MAX_SECRET_LEN: usize = 1024;

fn refused(field: &'static str, reason: &str) -> RuntimeError {
    RuntimeError::MicrosoftField {
        field,
        reason: reason.to_owned(),
    }
}

/// A directory (tenant) id: a GUID or a verified domain such as `contoso.onmicrosoft.com`.
fn check_tenant_id(value: &str) -> Result<(), RuntimeError> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !value.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(refused(
            "tenant_id",
            "give the Directory (tenant) ID from the app's overview in Entra ID: a GUID or the tenant's domain",
        ))
    }
}

/// An application (client) id: a GUID.
pub(super) fn is_guid(value: &str) -> bool {
    let groups: Vec<&str> = value.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

impl SealedApp {
    /// Validates what the admin gave, naming the field at fault.
    fn new(
        tenant_id: &str,
        client_id: &str,
        credential: MicrosoftCredential,
    ) -> Result<Self, RuntimeError> {
        let tenant_id = tenant_id.trim().to_owned();
        check_tenant_id(&tenant_id)?;
        let client_id = client_id.trim().to_ascii_lowercase();
        if !is_guid(&client_id) {
            return Err(refused(
                "client_id",
                "give the Application (client) ID from the app's overview in Entra ID: a GUID",
            ));
        }
        let credential = match credential {
            MicrosoftCredential::Secret(secret) => {
                let secret = secret.trim().to_owned();
                if secret.is_empty()
                    || secret.len() > MAX_SECRET_LEN
                    || secret.chars().any(char::is_control)
                {
                    return Err(refused(
                        "client_secret",
                        "give the secret's Value (not its ID) from Certificates & secrets",
                    ));
                }
                MicrosoftCredential::Secret(secret)
            }
            certificate @ MicrosoftCredential::Certificate { .. } => certificate,
        };
        let app = SealedApp {
            tenant_id,
            client_id,
            credential,
        };
        app.credentials()?;
        Ok(app)
    }

    fn credentials(&self) -> Result<AppCredentials, RuntimeError> {
        let credential = match &self.credential {
            MicrosoftCredential::Secret(secret) => {
                ClientCredential::Secret(ClientSecret::new(secret.clone()))
            }
            MicrosoftCredential::Certificate {
                certificate_pem,
                private_key_pem,
            } => ClientCredential::Certificate(
                CertificateCredential::from_pem(certificate_pem, private_key_pem)
                    .map_err(|e| refused("certificate", &e.to_string()))?,
            ),
        };
        Ok(AppCredentials {
            tenant: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            credential,
        })
    }
}

impl Runtime {
    /// Connects `tenant` to Microsoft 365 with its app registration: validates the
    /// directory id, client id and credential (the field named when one is wrong,
    /// nothing stored), then seals and saves them, keeping a saved policy and capture
    /// switch. A tenant also connected to Google keeps it (a migration under way):
    /// *Rebuild* then reads both directories and each link syncs at its own provider.
    pub async fn connect_microsoft(
        &self,
        tenant: &TenantId,
        tenant_id: &str,
        client_id: &str,
        credential: MicrosoftCredential,
        actor: &str,
    ) -> Result<(), RuntimeError> {
        let app = SealedApp::new(tenant_id, client_id, credential)?;
        // Also refuses an operator configuration that cannot reach Microsoft.
        self.graph_connector(&app)?;
        let store = self.store();
        let existing = store.connection(tenant, ConnectionKind::Microsoft).await?;
        let policy = match existing {
            Some(existing) => existing.policy,
            None => serde_json::to_value(PolicySettings::default())
                .map_err(RuntimeError::StoredPolicy)?,
        };
        let sealed = serde_json::to_vec(&app).map_err(RuntimeError::StoredPolicy)?;
        // Graph is read with the app's own token: no admin is impersonated. The column
        // records who connected, and names the directory read's pacing bucket.
        store
            .save_connection(
                tenant,
                ConnectionKind::Microsoft,
                actor,
                &SecretBytes::new(sealed),
                &policy,
                &self.inner.key,
            )
            .await?;
        let kind = match app.credential {
            MicrosoftCredential::Secret(_) => "secret",
            MicrosoftCredential::Certificate { .. } => "certificate",
        };
        let detail = serde_json::json!({
            "tenant_id": app.tenant_id,
            "client_id": app.client_id,
            "credential": kind,
        });
        store
            .record_audit(
                tenant,
                &audit(actor, "connection.microsoft.connected", None, detail),
            )
            .await?;
        Ok(())
    }

    pub(super) fn graph_connector(
        &self,
        app: &SealedApp,
    ) -> Result<MicrosoftConnector, RuntimeError> {
        graph_connector(app, &self.inner.microsoft)
    }

    /// The tenant's Graph connector from its sealed app registration, and who
    /// connected it.
    pub(crate) async fn microsoft_connector(
        &self,
        tenant: &TenantId,
    ) -> Result<(Connector, String), RuntimeError> {
        let store = self.store();
        let connection = store
            .connection(tenant, ConnectionKind::Microsoft)
            .await?
            .ok_or(RuntimeError::NotConnected)?;
        let sealed = store
            .connection_credentials(tenant, ConnectionKind::Microsoft, &self.inner.key)
            .await?;
        let app: SealedApp =
            serde_json::from_slice(sealed.expose()).map_err(RuntimeError::StoredPolicy)?;
        Ok((self.graph_connector(&app)?.into(), connection.admin_email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

    fn field_of(outcome: Result<SealedApp, RuntimeError>) -> &'static str {
        match outcome {
            Err(RuntimeError::MicrosoftField { field, .. }) => field,
            other => panic!("expected a refused field: {other:?}"),
        }
    }

    #[test]
    fn each_wrong_field_is_named() {
        let secret = || MicrosoftCredential::Secret("s3cr3t~value".into());
        assert_eq!(field_of(SealedApp::new("", CLIENT, secret())), "tenant_id");
        assert_eq!(
            field_of(SealedApp::new("contoso.com/x", CLIENT, secret())),
            "tenant_id"
        );
        assert_eq!(
            field_of(SealedApp::new("contoso.com", "not-a-guid", secret())),
            "client_id"
        );
        assert_eq!(
            field_of(SealedApp::new(
                "contoso.com",
                CLIENT,
                MicrosoftCredential::Secret("  ".into())
            )),
            "client_secret"
        );
        let certificate = MicrosoftCredential::Certificate {
            certificate_pem: "not a certificate".into(),
            private_key_pem: "not a key".into(),
        };
        assert_eq!(
            field_of(SealedApp::new("contoso.com", CLIENT, certificate)),
            "certificate"
        );
        assert!(SealedApp::new("contoso.com", CLIENT, secret()).is_ok());
    }
}
