//! The calls Tributary makes to set push up, against the emulator: the Pub/Sub topic,
//! Gmail's publisher grant and the push subscription made with the service account's
//! own token, idempotently (a second setup changes nothing, a changed public URL
//! replaces the subscription); `users.watch` answering the mailbox's history id and a
//! 7-day expiration, `users.stop`; Calendar `events.watch` and `channels.stop`.

mod common;

use common::{Fixture, connector_for, start_fixture};
use tributary_core::ProviderErrorKind;
use tributary_google::pubsub::{GMAIL_PUSH_MEMBER, GMAIL_SUBSCRIPTION, GMAIL_TOPIC};

const DAY_MS: i64 = 86_400_000;

fn endpoint(host: &str) -> String {
    format!("http://{host}/push/google/acme")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// (topics, subscriptions (name, endpoint, audience, signer)) the emulator keeps.
type PubSubState = (
    Vec<(String, Vec<String>)>,
    Vec<(String, String, String, String)>,
);

fn pubsub_state(fixture: &Fixture) -> PubSubState {
    let pubsub = fixture.emulator.state.push.pubsub();
    let topics = pubsub
        .topics
        .values()
        .map(|t| {
            let publishers = t
                .bindings
                .iter()
                .filter(|b| b.role == "roles/pubsub.publisher")
                .flat_map(|b| b.members.clone())
                .collect();
            (t.name.clone(), publishers)
        })
        .collect();
    let subscriptions = pubsub
        .subscriptions
        .values()
        .map(|s| {
            (
                s.name.clone(),
                s.endpoint.to_string(),
                s.audience(),
                s.oidc
                    .as_ref()
                    .map(|o| o.service_account_email.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    (topics, subscriptions)
}

#[tokio::test]
async fn push_is_set_up_once_and_follows_the_public_url() {
    let fixture = start_fixture().await;
    let pubsub = fixture.connector.pubsub().unwrap();
    let project = fixture.emulator.key_file.project_id.clone();
    let first = endpoint("127.0.0.1:9");
    let topic = pubsub.ensure_gmail_push(&first).await.unwrap();
    assert_eq!(topic, format!("projects/{project}/topics/{GMAIL_TOPIC}"));
    let sa = fixture.emulator.key_file.client_email.clone();
    let subscription = format!("projects/{project}/subscriptions/{GMAIL_SUBSCRIPTION}");
    let expected: PubSubState = (
        vec![(topic.clone(), vec![GMAIL_PUSH_MEMBER.to_owned()])],
        vec![(
            subscription.clone(),
            first.clone(),
            first.clone(),
            sa.clone(),
        )],
    );
    assert_eq!(pubsub_state(&fixture), expected);

    // Again, from a new connector (nothing remembered): no error, nothing duplicated.
    let again = connector_for(&fixture.emulator).pubsub().unwrap();
    assert_eq!(again.ensure_gmail_push(&first).await.unwrap(), topic);
    assert_eq!(pubsub_state(&fixture), expected);

    // The public URL changed: the subscription now delivers there, signed for it.
    let moved = endpoint("127.0.0.2:9");
    again.ensure_gmail_push(&moved).await.unwrap();
    let (topics, subscriptions) = pubsub_state(&fixture);
    assert_eq!(topics, expected.0);
    assert_eq!(
        subscriptions,
        vec![(subscription, moved.clone(), moved, sa)]
    );
}

#[tokio::test]
async fn other_grants_on_the_topic_are_kept() {
    let fixture = start_fixture().await;
    let pubsub = fixture.connector.pubsub().unwrap();
    pubsub.ensure_topic(GMAIL_TOPIC).await.unwrap();
    {
        let name = pubsub.gmail_topic_name();
        let mut state = fixture.emulator.state.push.pubsub();
        let topic = state.topics.get_mut(&name).unwrap();
        topic.bindings = vec![tributary_emulator::google::push::pubsub::Binding {
            role: "roles/pubsub.viewer".into(),
            members: vec!["user:ops@acme.example".into()],
        }];
    }
    pubsub
        .ensure_gmail_push(&endpoint("127.0.0.1:9"))
        .await
        .unwrap();
    let state = fixture.emulator.state.push.pubsub();
    let bindings = &state.topics[&pubsub.gmail_topic_name()].bindings;
    assert_eq!(bindings.len(), 2, "{bindings:?}");
    assert_eq!(bindings[0].role, "roles/pubsub.viewer");
    assert_eq!(bindings[1].members, vec![GMAIL_PUSH_MEMBER.to_owned()]);
}

#[tokio::test]
async fn a_watch_answers_history_and_expiry_and_stops() {
    let fixture = start_fixture().await;
    let member = fixture.member();
    let gmail = fixture.connector.gmail(&member);
    let pubsub = fixture.connector.pubsub().unwrap();

    // No topic yet: Gmail's own refusal, kept.
    let missing = gmail
        .watch(&pubsub.gmail_topic_name(), &[])
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404), "{missing}");
    assert!(missing.message().contains("not found"), "{missing}");

    let topic = pubsub
        .ensure_gmail_push(&endpoint("127.0.0.1:9"))
        .await
        .unwrap();
    let before = now_ms();
    let watch = gmail.watch(&topic, &[]).await.unwrap();
    let history_id =
        fixture.emulator.state.org().mailboxes[&member.to_ascii_lowercase()].history_id;
    assert_eq!(watch.history_id, history_id);
    assert!(
        (before + 7 * DAY_MS - 60_000..=now_ms() + 7 * DAY_MS).contains(&watch.expiration_ms),
        "{watch:?}"
    );
    assert!(
        fixture
            .emulator
            .state
            .push
            .watches()
            .contains_key(&member.to_ascii_lowercase())
    );

    gmail.stop().await.unwrap();
    assert!(fixture.emulator.state.push.watches().is_empty());
    // Stopping what is stopped is fine.
    gmail.stop().await.unwrap();
}

#[tokio::test]
async fn calendar_channels_open_and_stop() {
    let fixture = start_fixture().await;
    let member = fixture.member();
    let calendar = fixture.connector.calendar(&member);
    let address = "http://127.0.0.1:9/push/google/acme/calendar";
    let channel = calendar
        .watch_events("c-0b8f", address, "s3cret")
        .await
        .unwrap();
    assert_eq!(channel.id, "c-0b8f");
    assert!(channel.expiration_ms > now_ms() + 6 * DAY_MS, "{channel:?}");
    {
        let channels = fixture.emulator.state.push.channels();
        let kept = &channels["c-0b8f"];
        assert_eq!(kept.resource_id, channel.resource_id);
        assert_eq!(kept.token.as_deref(), Some("s3cret"));
        assert_eq!(kept.address, address);
    }
    // A channel id is single-use: Google's refusal is the error.
    let reused = calendar
        .watch_events("c-0b8f", address, "s3cret")
        .await
        .unwrap_err();
    assert_eq!(reused.status(), Some(400), "{reused}");

    calendar
        .stop_channel(&channel.id, &channel.resource_id)
        .await
        .unwrap();
    assert!(fixture.emulator.state.push.channels().is_empty());
    // Gone already (stopped, or lapsed): stopped.
    calendar
        .stop_channel(&channel.id, &channel.resource_id)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_key_without_pubsub_rights_gets_the_fix() {
    let fixture = start_fixture().await;
    // The key of another project: Pub/Sub refuses the service account there, as it
    // does in a project where it holds no Pub/Sub role.
    let mut key: serde_json::Value =
        serde_json::from_slice(&common::key_file_json(&fixture.emulator)).unwrap();
    key["project_id"] = "someone-elses".into();
    let key = tributary_google::ServiceAccountKey::from_json(key.to_string().as_bytes()).unwrap();
    let connector = tributary_google::GoogleConnector::new(
        key,
        tributary_google::ConnectorOptions {
            endpoints: tributary_google::GoogleEndpoints::from_base_url(&fixture.emulator.base_url),
            ..Default::default()
        },
    )
    .unwrap();
    let error = connector
        .pubsub()
        .unwrap()
        .ensure_gmail_push(&endpoint("127.0.0.1:9"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unauthorized, "{error}");
    assert_eq!(error.status(), Some(403));
    assert!(error.message().contains("User not authorized"), "{error}");
    assert!(error.message().contains("roles/pubsub.admin"), "{error}");
    assert!(error.message().contains("someone-elses"), "{error}");
    assert!(fixture.emulator.state.push.pubsub().topics.is_empty());
}

#[tokio::test]
async fn pubsub_follows_no_redirect_and_echoes_no_body() {
    use tributary_emulator::testing::trap::{Canned, Trap};
    const MARKER: &str = "TRAP-MARKER-5c1e";
    let fixture = start_fixture().await;
    let with_pubsub_at = |base: &str| {
        let key = tributary_google::ServiceAccountKey::from_json(&common::key_file_json(
            &fixture.emulator,
        ))
        .unwrap();
        tributary_google::GoogleConnector::new(
            key,
            tributary_google::ConnectorOptions {
                endpoints: tributary_google::GoogleEndpoints {
                    pubsub_base: base.to_owned(),
                    ..tributary_google::GoogleEndpoints::from_base_url(&fixture.emulator.base_url)
                },
                ..Default::default()
            },
        )
        .unwrap()
    };
    let target = Trap::start(Canned::json(200, "{}")).await;
    let redirector = Trap::start(Canned::redirect(307, &target.url)).await;
    let error = with_pubsub_at(&redirector.url)
        .pubsub()
        .unwrap()
        .ensure_gmail_push(&endpoint("127.0.0.1:9"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(307), "{error}");
    assert!(error.message().contains("redirect"), "{error}");
    assert_eq!(redirector.seen().len(), 1);
    assert_eq!(target.seen(), []);

    let page = format!("<html><p>{MARKER}</p></html>");
    let proxy = Trap::start(Canned::html(403, &page)).await;
    let error = with_pubsub_at(&proxy.url)
        .pubsub()
        .unwrap()
        .ensure_gmail_push(&endpoint("127.0.0.1:9"))
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(MARKER), "{shown}");
    assert!(error.message().contains("text/html"), "{error}");
    // The trap was asked once (a 403 is no token refusal), for the key's project.
    let project = &fixture.emulator.key_file.project_id;
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "PUT");
    assert_eq!(
        seen[0].path,
        format!("/v1/projects/{project}/topics/{GMAIL_TOPIC}")
    );
    assert!(
        seen[0]
            .authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer "))
    );
}
