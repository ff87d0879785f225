//! Microsoft 365 setup as an admin walks it: what to grant the app registration, what is
//! stored (never the secret itself), the admin-consent outcome Microsoft redirected
//! back with, and *Test connection* (a Graph token, then one page of users).
//!
//! Consent outcomes are kept as audit events: the redirect is only Microsoft's word
//! relayed by a browser, so it is a record of what happened, never a grant of access;
//! *Test connection* (a token from the tenant's own token endpoint) is the proof.

use super::microsoft::{MicrosoftCredential, SealedApp};
use super::{ConnectionCheck, Runtime, RuntimeError, audit};
use serde::Serialize;
use tributary_core::{Audience, FailureCause, FailureSite, HintProvider, ProviderError};
use tributary_microsoft::{CertificateCredential, MicrosoftConnector};
use tributary_store::{AuditActors, AuditFilter, ConnectionKind, ConnectionView, TenantId};

/// An application permission (Graph app role) the app registration needs, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MicrosoftPermission {
    pub name: &'static str,
    pub purpose: &'static str,
}

/// The least the connector needs: the directory, mail metadata without bodies, calendars,
/// and who the administrators are.
pub const MICROSOFT_PERMISSIONS: &[MicrosoftPermission] = &[
    MicrosoftPermission {
        name: "User.Read.All",
        purpose: "list the organization's users with every SMTP address, to match members",
    },
    MicrosoftPermission {
        name: "Mail.ReadBasic.All",
        purpose: "read mail metadata (senders, recipients, dates, subjects, headers) and folders; \
                  never bodies or attachments (Mail.Read works too, but reads more than capture needs)",
    },
    MicrosoftPermission {
        name: "Calendars.Read",
        purpose: "read members' calendars (calendarView delta) to capture meetings with people \
                  outside the organization; without it mail syncs and each Calendar card says so",
    },
    MicrosoftPermission {
        name: "RoleManagement.Read.Directory",
        purpose: "read who holds the Global Administrator role, for the policy's \
                  \"Calendar sync: administrators only\" (Directory.Read.All works too, but \
                  reads more); without it nobody is marked administrator",
    },
];

/// The audit action family of consent outcomes; the newest is the one shown.
const CONSENT_ACTIONS: &str = "connection.microsoft.consent.";

/// Longest `error` / `error_description` kept from a consent redirect.
const MAX_CONSENT_TEXT: usize = 2_000;

/// The stored credential as it may be shown: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialView {
    /// The secret's last characters, so an admin can tell which one is stored.
    Secret {
        ending: String,
    },
    Certificate {
        thumbprint_sha1: String,
    },
}

/// What Microsoft's admin-consent redirect said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentOutcome {
    /// `admin_consent=True&tenant=<directory id>` with no `error`.
    Granted { directory: String },
    /// `error` and `error_description`, as Microsoft wrote them.
    Refused { error: String, description: String },
}

/// A recorded consent outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentRecord {
    pub granted: bool,
    pub at_ms: i64,
    /// Who came back from Microsoft's consent page.
    pub by: String,
    /// The directory consent was granted in.
    pub directory: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the Microsoft 365 setup shows once an app registration is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MicrosoftSetup {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: CredentialView,
    pub permissions: &'static [MicrosoftPermission],
    /// The latest consent outcome for this client id, if any.
    pub consent: Option<ConsentRecord>,
    pub connected_by: String,
    pub capture_enabled: bool,
}

impl Runtime {
    /// The identity platform's root from operator configuration: where admin consent
    /// and tokens are asked for, whatever a tenant typed.
    pub fn microsoft_authority(&self) -> &str {
        &self.inner.microsoft.endpoints.authority_host
    }

    /// The tenant's stored app registration as it may be shown, `None` before one is.
    pub async fn microsoft_setup(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<MicrosoftSetup>, RuntimeError> {
        let Some((connection, app)) = self.sealed_app(tenant).await? else {
            return Ok(None);
        };
        let consent = self.latest_consent(tenant, &app.client_id).await?;
        Ok(Some(MicrosoftSetup {
            credential: credential_view(&app.credential),
            tenant_id: app.tenant_id,
            client_id: app.client_id,
            permissions: MICROSOFT_PERMISSIONS,
            consent,
            connected_by: connection.admin_email,
            capture_enabled: connection.capture_enabled,
        }))
    }

    /// *Test connection* for Microsoft 365: a Graph token for the tenant (the secret or
    /// certificate, and consent), then one page of users (the directory permission).
    pub async fn test_microsoft_connection(
        &self,
        tenant: &TenantId,
        actor: &str,
    ) -> Result<ConnectionCheck, RuntimeError> {
        let (_, app) = self
            .sealed_app(tenant)
            .await?
            .ok_or(RuntimeError::NotConnected)?;
        let check = check_graph(&self.graph_connector(&app)?).await;
        let detail = serde_json::to_value(&check).unwrap_or_default();
        self.store()
            .record_audit(
                tenant,
                &audit(actor, "connection.microsoft.tested", None, detail),
            )
            .await?;
        Ok(check)
    }

    /// Records what Microsoft's admin-consent redirect said. A grant in a directory
    /// other than the connected one is refused (and not recorded): the admin consented
    /// in the wrong organization.
    pub async fn record_microsoft_consent(
        &self,
        tenant: &TenantId,
        outcome: ConsentOutcome,
        actor: &str,
    ) -> Result<ConsentRecord, RuntimeError> {
        let (_, app) = self
            .sealed_app(tenant)
            .await?
            .ok_or(RuntimeError::NotConnected)?;
        let record = match outcome {
            ConsentOutcome::Granted { directory } => {
                check_consent_directory(&app.tenant_id, directory.trim())?;
                ConsentRecord {
                    granted: true,
                    at_ms: crate::engine::clock_ms(),
                    by: actor.to_owned(),
                    directory: Some(directory.trim().to_ascii_lowercase()),
                    error: None,
                    error_description: None,
                }
            }
            ConsentOutcome::Refused { error, description } => ConsentRecord {
                granted: false,
                at_ms: crate::engine::clock_ms(),
                by: actor.to_owned(),
                directory: None,
                error: Some(bounded(&error)),
                error_description: Some(bounded(&description)),
            },
        };
        let action = if record.granted {
            "connection.microsoft.consent.granted"
        } else {
            "connection.microsoft.consent.refused"
        };
        let mut detail = serde_json::to_value(&record).map_err(RuntimeError::StoredPolicy)?;
        detail["client_id"] = serde_json::json!(app.client_id);
        self.store()
            .record_audit(tenant, &audit(actor, action, None, detail))
            .await?;
        Ok(record)
    }

    async fn sealed_app(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<(ConnectionView, SealedApp)>, RuntimeError> {
        let store = self.store();
        let Some(connection) = store.connection(tenant, ConnectionKind::Microsoft).await? else {
            return Ok(None);
        };
        let sealed = store
            .connection_credentials(tenant, ConnectionKind::Microsoft, &self.inner.key)
            .await?;
        let app = serde_json::from_slice(sealed.expose()).map_err(RuntimeError::StoredPolicy)?;
        Ok(Some((connection, app)))
    }

    /// The newest consent outcome recorded for `client_id` (a new app registration
    /// needs consent of its own).
    async fn latest_consent(
        &self,
        tenant: &TenantId,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, RuntimeError> {
        let filter = AuditFilter {
            actors: AuditActors::All,
            action: Some(CONSENT_ACTIONS.to_owned()),
            ..AuditFilter::default()
        };
        let page = self.store().audit_page(tenant, &filter, None, 1).await?;
        let Some(entry) = page.entries.into_iter().next() else {
            return Ok(None);
        };
        let detail = &entry.event.detail;
        if detail["client_id"].as_str() != Some(client_id) {
            return Ok(None);
        }
        let text = |name: &str| detail[name].as_str().map(str::to_owned);
        Ok(Some(ConsentRecord {
            granted: detail["granted"].as_bool().unwrap_or(false),
            at_ms: entry.event.at_ms,
            by: entry.event.actor,
            directory: text("directory"),
            error: text("error"),
            error_description: text("error_description"),
        }))
    }
}

fn credential_view(credential: &MicrosoftCredential) -> CredentialView {
    match credential {
        MicrosoftCredential::Secret(secret) => {
            // Entra ID secrets are about 40 characters: three say which one it is and
            // give nothing away.
            let tail: String = secret.chars().rev().take(3).collect();
            CredentialView::Secret {
                ending: tail.chars().rev().collect(),
            }
        }
        MicrosoftCredential::Certificate {
            certificate_pem,
            private_key_pem,
        } => CredentialView::Certificate {
            thumbprint_sha1: CertificateCredential::from_pem(certificate_pem, private_key_pem)
                .map(|c| c.thumbprint_sha1())
                .unwrap_or_default(),
        },
    }
}

/// A grant must come from the connected directory when it is named by its GUID; a
/// directory named by a domain cannot be compared and is recorded as Microsoft said.
fn check_consent_directory(connected: &str, directory: &str) -> Result<(), RuntimeError> {
    if !super::microsoft::is_guid(&directory.to_ascii_lowercase()) {
        return Err(RuntimeError::MicrosoftField {
            field: "tenant",
            reason: "Microsoft's consent answer did not name the directory (tenant) ID".to_owned(),
        });
    }
    if super::microsoft::is_guid(&connected.to_ascii_lowercase())
        && !connected.eq_ignore_ascii_case(directory)
    {
        return Err(RuntimeError::MicrosoftField {
            field: "tenant",
            reason: format!(
                "consent was granted in directory {directory}, but this connection is for directory \
                 {connected}: sign in to Microsoft as an administrator of {connected} and grant consent again"
            ),
        });
    }
    Ok(())
}

fn bounded(text: &str) -> String {
    text.chars().take(MAX_CONSENT_TEXT).collect()
}

/// A token, then the first page of users.
async fn check_graph(connector: &MicrosoftConnector) -> ConnectionCheck {
    if let Err(error) = connector.check_credentials().await {
        return failed_check(&error);
    }
    match connector.directory().list_users_page(None).await {
        Err(error) => failed_check(&error),
        Ok(page) => ConnectionCheck {
            ok: true,
            status: None,
            message: "Microsoft issued a Graph token and the directory can be read.".to_owned(),
            hint: None,
            accounts_seen: Some(page.users.len()),
        },
    }
}

fn failed_check(error: &ProviderError) -> ConnectionCheck {
    let status = error.link_status();
    let cause = FailureCause::classify(
        HintProvider::Microsoft,
        FailureSite::Directory,
        status,
        error.reason(),
        error.message(),
    );
    ConnectionCheck {
        ok: false,
        status: Some(status),
        message: error.message().to_owned(),
        hint: Some(cause.hint(Audience::Admin)),
        accounts_seen: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECTED: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    #[test]
    fn consent_from_another_directory_is_refused() {
        assert!(check_consent_directory(CONNECTED, &CONNECTED.to_uppercase()).is_ok());
        let other = "11111111-2222-3333-4444-555555555555";
        match check_consent_directory(CONNECTED, other) {
            Err(RuntimeError::MicrosoftField { field, reason }) => {
                assert_eq!(field, "tenant");
                assert!(reason.contains(other) && reason.contains(CONNECTED));
            }
            other => panic!("expected a refusal: {other:?}"),
        }
        assert!(check_consent_directory(CONNECTED, "contoso.com").is_err());
        assert!(check_consent_directory("contoso.onmicrosoft.com", other).is_ok());
    }

    #[test]
    fn only_the_secrets_last_characters_are_shown() {
        let view = credential_view(&MicrosoftCredential::Secret("abcdefghijkl~xyz".into()));
        assert_eq!(
            view,
            CredentialView::Secret {
                ending: "xyz".into()
            }
        );
    }
}
