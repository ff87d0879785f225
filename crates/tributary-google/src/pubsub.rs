//! The few Cloud Pub/Sub admin calls Gmail push needs, made with the service account's
//! own token (no `sub`: Pub/Sub is its Cloud project's API, not a user's), so that the
//! admin only grants the service account Pub/Sub rights once (see `with_fix`): the
//! tenant's topic
//! ([`GMAIL_TOPIC`]), Gmail's right to publish to it, and the push subscription
//! ([`GMAIL_SUBSCRIPTION`]) delivering to Tributary's endpoint with an OIDC token signed
//! for the service account. See `docs/push.md` and `docs/emulator-push.md`.

use crate::api::{Answer, Api, decode_answer, join};
use crate::error::{ApiCall, unreadable_answer};
use crate::scopes;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tributary_core::{ProviderDetail, ProviderError};

const PUBSUB_SCOPES: &[&str] = &[scopes::PUBSUB];

/// The topic Gmail publishes a tenant's mailbox changes to, in the key's project.
pub const GMAIL_TOPIC: &str = "tributary-gmail";
/// The push subscription delivering that topic to Tributary.
pub const GMAIL_SUBSCRIPTION: &str = "tributary-gmail-push";
/// The account Gmail publishes watch notifications as: it must be a publisher.
pub const GMAIL_PUSH_MEMBER: &str = "serviceAccount:gmail-api-push@system.gserviceaccount.com";
const PUBLISHER_ROLE: &str = "roles/pubsub.publisher";
/// Pub/Sub's default; a push endpoint answers long before it.
const ACK_DEADLINE_SECONDS: u32 = 10;

/// Cloud Pub/Sub in the service account's own project.
#[derive(Debug, Clone)]
pub struct PubSubClient {
    api: Arc<Api>,
    project: String,
    /// Who the calls are made as: the service account itself, except in the tests that
    /// show a member's delegated token is refused.
    subject: Option<String>,
}

/// The parts of a subscription compared with the one wanted.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionView {
    #[serde(default)]
    topic: String,
    #[serde(default)]
    push_config: PushConfigView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushConfigView {
    #[serde(default)]
    push_endpoint: String,
    oidc_token: Option<OidcTokenView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OidcTokenView {
    #[serde(default)]
    service_account_email: String,
    #[serde(default)]
    audience: String,
}

impl PubSubClient {
    pub(crate) fn new(api: Arc<Api>, project: &str) -> Self {
        PubSubClient {
            api,
            project: project.to_owned(),
            subject: None,
        }
    }

    /// The project the topic and subscription live in.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// `projects/{project}/topics/{GMAIL_TOPIC}`: what `users.watch` names.
    pub fn gmail_topic_name(&self) -> String {
        format!("projects/{}/topics/{GMAIL_TOPIC}", self.project)
    }

    /// Makes sure Gmail push for this key reaches `endpoint`: the topic, Gmail's publisher
    /// grant on it and the push subscription (OIDC audience = `endpoint`), each left
    /// alone when already right. Done once per connector and endpoint: later calls answer
    /// at once until [`PubSubClient::forget_gmail_push`]. Answers the topic's name.
    pub async fn ensure_gmail_push(&self, endpoint: &str) -> Result<String, ProviderError> {
        // Held across the calls, so that links opening at once set it up once.
        let mut ready = self.api.gmail_push_ready.lock().await;
        if ready.as_deref() == Some(endpoint) {
            return Ok(self.gmail_topic_name());
        }
        self.ensure_topic(GMAIL_TOPIC).await?;
        self.ensure_publisher(GMAIL_TOPIC, GMAIL_PUSH_MEMBER)
            .await?;
        let own = self.api.tokens.key().client_email().to_owned();
        self.ensure_push_subscription(GMAIL_SUBSCRIPTION, GMAIL_TOPIC, endpoint, &own)
            .await?;
        *ready = Some(endpoint.to_owned());
        Ok(self.gmail_topic_name())
    }

    /// Forgets that push was set up (a watch found the topic or its grant gone), so the
    /// next [`PubSubClient::ensure_gmail_push`] checks again.
    pub async fn forget_gmail_push(&self) {
        *self.api.gmail_push_ready.lock().await = None;
    }

    /// `projects.topics.create`; a topic that exists already is fine.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), ProviderError> {
        let url = self.url(&["topics", topic]);
        let answer = self.call(Method::PUT, url, Some(json!({}))).await?;
        if answer.status == StatusCode::CONFLICT {
            return Ok(());
        }
        self.decode::<Value>(answer, "topics.create").map(drop)
    }

    /// Adds `member` as a publisher of `topic` unless its policy has it already, keeping
    /// every other binding (and the policy's etag, so a concurrent change is refused
    /// rather than lost).
    pub async fn ensure_publisher(&self, topic: &str, member: &str) -> Result<(), ProviderError> {
        let action = format!("{topic}:getIamPolicy");
        let answer = self
            .call(Method::GET, self.url(&["topics", &action]), None)
            .await?;
        let mut policy: Value = self.decode(answer, "topics.getIamPolicy")?;
        if !add_publisher(&mut policy, member)? {
            return Ok(());
        }
        let action = format!("{topic}:setIamPolicy");
        let answer = self
            .call(
                Method::POST,
                self.url(&["topics", &action]),
                Some(json!({ "policy": policy })),
            )
            .await?;
        self.decode::<Value>(answer, "topics.setIamPolicy")
            .map(drop)
    }

    /// `projects.subscriptions.create` of a push subscription of `topic` to `endpoint`,
    /// its OIDC token for `service_account` with `endpoint` as audience. One that exists
    /// with another endpoint, audience, signer or topic (the public URL changed, the
    /// topic was remade) is replaced.
    pub async fn ensure_push_subscription(
        &self,
        subscription: &str,
        topic: &str,
        endpoint: &str,
        service_account: &str,
    ) -> Result<(), ProviderError> {
        let topic_name = format!("projects/{}/topics/{topic}", self.project);
        let body = json!({
            "topic": topic_name,
            "pushConfig": {
                "pushEndpoint": endpoint,
                "oidcToken": {"serviceAccountEmail": service_account, "audience": endpoint},
            },
            "ackDeadlineSeconds": ACK_DEADLINE_SECONDS,
        });
        let url = self.url(&["subscriptions", subscription]);
        let answer = self
            .call(Method::PUT, url.clone(), Some(body.clone()))
            .await?;
        if answer.status != StatusCode::CONFLICT {
            return self
                .decode::<Value>(answer, "subscriptions.create")
                .map(drop);
        }
        let answer = self.call(Method::GET, url.clone(), None).await?;
        let existing: SubscriptionView = self.decode(answer, "subscriptions.get")?;
        if is_wanted(&existing, &topic_name, endpoint, service_account) {
            return Ok(());
        }
        tracing::info!(project = ?self.project, subscription, "push subscription differs: replacing it");
        let answer = self.call(Method::DELETE, url.clone(), None).await?;
        if answer.status != StatusCode::NOT_FOUND {
            self.decode::<Value>(answer, "subscriptions.delete")?;
        }
        let answer = self.call(Method::PUT, url, Some(body)).await?;
        self.decode::<Value>(answer, "subscriptions.create")
            .map(drop)
    }

    /// `base/v1/projects/{project}/{segments…}`.
    fn url(&self, segments: &[&str]) -> Url {
        let mut all = vec!["v1", "projects", self.project.as_str()];
        all.extend_from_slice(segments);
        join(&self.api.endpoints.pubsub_base, &all)
    }

    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Answer, ProviderError> {
        self.api
            .send_as(self.subject.as_deref(), PUBSUB_SCOPES, |http| {
                let request = http.request(method.clone(), url.clone());
                match &body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await
            .map_err(|e| self.with_fix(e))
    }

    /// A success decoded, or the failure mapped as every Google call's is, with the
    /// admin's fix when Pub/Sub refuses the service account.
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        answer: Answer,
        what: &str,
    ) -> Result<T, ProviderError> {
        decode_answer(
            answer.status,
            &answer.headers,
            &answer.body,
            ApiCall::Other,
            what,
        )
        .map_err(|e| self.with_fix(e))?
        .ok_or_else(|| unreadable_answer(what, "not found"))
    }

    /// Pub/Sub refusing the service account (no Pub/Sub role, the API off, a token that
    /// is not the service account's own) needs the admin: the message says what to grant.
    /// Making the topic and subscription needs Pub/Sub Editor's rights; granting Gmail the
    /// right to publish needs `pubsub.topics.setIamPolicy` (Pub/Sub Admin); a push
    /// subscription signing its tokens as the service account needs
    /// `iam.serviceAccounts.actAs` on it (Service Account User).
    fn with_fix(&self, error: ProviderError) -> ProviderError {
        let ProviderError::Unauthorized(detail) = &error else {
            return error;
        };
        ProviderError::unauthorized(ProviderDetail {
            message: format!(
                "{} — for Gmail push, enable the Cloud Pub/Sub API in project {project} and \
                 grant the service account {account} the Pub/Sub Admin role \
                 (roles/pubsub.admin) there and the Service Account User role \
                 (roles/iam.serviceAccountUser) on itself",
                detail.message,
                project = self.project,
                account = self.api.tokens.key().client_email(),
            ),
            ..detail.clone()
        })
    }
}

/// Adds `member` to the policy's unconditional publisher binding; false when it has it
/// already (or a role that includes publishing).
fn add_publisher(policy: &mut Value, member: &str) -> Result<bool, ProviderError> {
    let Some(object) = policy.as_object_mut() else {
        return Err(unreadable_answer("topics.getIamPolicy", "not a policy"));
    };
    let bindings = object
        .entry("bindings")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(bindings) = bindings.as_array_mut() else {
        return Err(unreadable_answer(
            "topics.getIamPolicy",
            "bindings is not a list",
        ));
    };
    let publishes = |binding: &Value| {
        matches!(
            binding["role"].as_str(),
            Some(PUBLISHER_ROLE | "roles/pubsub.editor" | "roles/pubsub.admin")
        ) && binding.get("condition").is_none()
    };
    let has_member = |binding: &Value| {
        binding["members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m.as_str() == Some(member)))
    };
    if bindings.iter().any(|b| publishes(b) && has_member(b)) {
        return Ok(false);
    }
    let existing = bindings.iter_mut().find(|b| {
        b["role"].as_str() == Some(PUBLISHER_ROLE)
            && b.get("condition").is_none()
            && b["members"].is_array()
    });
    match existing {
        Some(binding) => {
            if let Some(members) = binding["members"].as_array_mut() {
                members.push(json!(member));
            }
        }
        None => bindings.push(json!({"role": PUBLISHER_ROLE, "members": [member]})),
    }
    Ok(true)
}

fn is_wanted(
    existing: &SubscriptionView,
    topic_name: &str,
    endpoint: &str,
    service_account: &str,
) -> bool {
    let push = &existing.push_config;
    existing.topic == topic_name
        && push.push_endpoint == endpoint
        && push.oidc_token.as_ref().is_some_and(|oidc| {
            oidc.service_account_email
                .eq_ignore_ascii_case(service_account)
                && (oidc.audience == endpoint || oidc.audience.is_empty())
        })
}

#[cfg(test)]
impl PubSubClient {
    /// The same calls made with `member`'s delegated token.
    fn impersonating(mut self, member: &str) -> Self {
        self.subject = Some(member.to_owned());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectorOptions, GoogleConnector, GoogleEndpoints, ServiceAccountKey};
    use tributary_core::ProviderErrorKind;
    use tributary_emulator::org::OrgConfig;
    use tributary_emulator::server::{EmulatorConfig, OrgSource, start};

    /// A member's delegated token, even with the Pub/Sub scope delegated, is no identity
    /// in the Cloud project: Pub/Sub refuses it, and the error says what to grant.
    #[tokio::test]
    async fn a_delegated_token_is_refused_with_the_fix() {
        let emulator = start(EmulatorConfig {
            organization: OrgSource::Generate(OrgConfig {
                users: 2,
                messages_per_user: 1,
                ..OrgConfig::default()
            }),
            ..EmulatorConfig::default()
        })
        .await
        .unwrap();
        let client_id = emulator.key_file.client_id.clone();
        let mut delegated = emulator.state.auth.delegation(&client_id).unwrap();
        delegated.insert(scopes::PUBSUB.to_owned());
        emulator.state.auth.set_delegation(&client_id, delegated);
        let key =
            ServiceAccountKey::from_json(&serde_json::to_vec(&emulator.key_file).unwrap()).unwrap();
        let options = ConnectorOptions {
            endpoints: GoogleEndpoints::from_base_url(&emulator.base_url),
            ..ConnectorOptions::default()
        };
        let connector = GoogleConnector::new(key, options).unwrap();
        let member = emulator.info.admin_email.clone();
        let pubsub = connector.pubsub().unwrap().impersonating(&member);
        let error = pubsub.ensure_topic(GMAIL_TOPIC).await.unwrap_err();
        assert_eq!(error.kind(), ProviderErrorKind::Unauthorized, "{error}");
        assert_eq!(error.status(), Some(403), "{error}");
        assert_eq!(error.reason(), Some("PERMISSION_DENIED"), "{error}");
        assert!(
            error
                .message()
                .starts_with("User not authorized to perform this action. — for Gmail push, enable the Cloud Pub/Sub API"),
            "{error}"
        );
        assert!(error.message().contains("roles/pubsub.admin"), "{error}");
        assert!(
            error.message().contains("roles/iam.serviceAccountUser"),
            "{error}"
        );
        assert!(emulator.state.push.pubsub().topics.is_empty());
        // The service account itself may.
        connector
            .pubsub()
            .unwrap()
            .ensure_topic(GMAIL_TOPIC)
            .await
            .unwrap();
        assert_eq!(emulator.state.push.pubsub().topics.len(), 1);
    }

    #[test]
    fn the_publisher_is_added_once_keeping_other_bindings() {
        let mut policy = json!({"etag": "BwX1", "bindings": [
            {"role": "roles/pubsub.viewer", "members": ["user:a@x.example"]},
        ]});
        assert!(add_publisher(&mut policy, GMAIL_PUSH_MEMBER).unwrap());
        assert_eq!(policy["etag"], "BwX1");
        assert_eq!(policy["bindings"][0]["role"], "roles/pubsub.viewer");
        assert_eq!(policy["bindings"][1]["role"], PUBLISHER_ROLE);
        assert_eq!(policy["bindings"][1]["members"][0], GMAIL_PUSH_MEMBER);
        assert!(!add_publisher(&mut policy, GMAIL_PUSH_MEMBER).unwrap());
        let mut empty = json!({"etag": "ACAB"});
        assert!(add_publisher(&mut empty, GMAIL_PUSH_MEMBER).unwrap());
        assert_eq!(empty["bindings"].as_array().unwrap().len(), 1);
        // A conditional grant may not hold when Gmail publishes.
        let mut conditional = json!({"bindings": [{"role": PUBLISHER_ROLE,
            "members": [GMAIL_PUSH_MEMBER], "condition": {"expression": "false"}}]});
        assert!(add_publisher(&mut conditional, GMAIL_PUSH_MEMBER).unwrap());
        assert_eq!(conditional["bindings"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_subscription_is_kept_only_when_it_delivers_where_wanted() {
        let view = |endpoint: &str, audience: &str| SubscriptionView {
            topic: "projects/p/topics/t".into(),
            push_config: PushConfigView {
                push_endpoint: endpoint.into(),
                oidc_token: Some(OidcTokenView {
                    service_account_email: "sa@p.iam.gserviceaccount.com".into(),
                    audience: audience.into(),
                }),
            },
        };
        let sa = "sa@p.iam.gserviceaccount.com";
        let wanted = "https://crm.example/push/google/acme";
        assert!(is_wanted(
            &view(wanted, wanted),
            "projects/p/topics/t",
            wanted,
            sa
        ));
        assert!(!is_wanted(
            &view("https://old.example/push/google/acme", wanted),
            "projects/p/topics/t",
            wanted,
            sa
        ));
        assert!(!is_wanted(
            &view(wanted, "other"),
            "projects/p/topics/t",
            wanted,
            sa
        ));
        assert!(!is_wanted(
            &view(wanted, wanted),
            "_deleted-topic_",
            wanted,
            sa
        ));
        assert!(!is_wanted(
            &view(wanted, wanted),
            "projects/p/topics/t",
            wanted,
            "x@y"
        ));
    }
}
