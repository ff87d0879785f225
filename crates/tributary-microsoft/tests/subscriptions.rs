//! Change notification subscriptions against the emulator: made only once both
//! endpoints pass Graph's validation handshake, notifying with our `clientState` for
//! mail in any folder (a move is an update, not a deletion), renewed by PATCH, deleted
//! (twice is fine), and a subscription Graph no longer has reads as gone. Redirects are
//! not followed and bodies that are not Graph's are not echoed.

mod common;

use chrono::{Duration as Minutes, Utc};
use common::Emulator;
use serde_json::{Value, json};
use tributary_core::ProviderErrorKind;
use tributary_emulator::testing::PushReceiver;
use tributary_emulator::testing::trap::{Canned, Trap};
use tributary_microsoft::{
    AppCredentials, ClientCredential, ClientSecret, ConnectorOptions, MicrosoftConnector,
    MicrosoftEndpoints, NewSubscription, expiration_from, messages_resource,
};

const STATE: &str = "a-client-state-of-forty-characters-0123";

/// The next notification's entries.
async fn next_entries(receiver: &mut PushReceiver) -> Vec<Value> {
    let posted = receiver.next().await;
    assert_eq!(posted.path, "/notify", "{posted:?}");
    posted.body["value"].as_array().cloned().unwrap_or_default()
}

fn request(user: &str, receiver: &PushReceiver) -> NewSubscription {
    NewSubscription {
        resource: messages_resource(user),
        notification_url: format!("{}/notify", receiver.url()),
        lifecycle_notification_url: format!("{}/lifecycle", receiver.url()),
        client_state: STATE.to_owned(),
        expiration: expiration_from(Utc::now()),
    }
}

/// The emulator's record of subscription `id`, if it has one.
async fn recorded(emulator: &Emulator, id: &str) -> Option<Value> {
    let all = emulator.control("GET", "/subscriptions", json!(null)).await;
    all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .cloned()
}

#[tokio::test]
async fn a_subscription_notifies_every_folder_is_renewed_and_deleted() {
    let emulator = Emulator::start().await;
    let connector = emulator.connector();
    let subscriptions = connector.subscriptions();
    let (_, address, _) = emulator.mailbox_user();
    let mut receiver = PushReceiver::start().await;

    let asked = request(&address, &receiver);
    let made = subscriptions.create(&asked).await.unwrap();
    assert!(!made.id.is_empty());
    assert_eq!(made.resource, asked.resource);
    let drift = (made.expiration - asked.expiration).num_seconds().abs();
    assert!(drift <= 1, "{} vs {}", made.expiration, asked.expiration);
    let record = recorded(&emulator, &made.id).await.expect("Graph keeps it");
    assert_eq!(record["resource"], format!("users/{address}/messages"));
    assert_eq!(
        record["lifecycle_notification_url"],
        format!("{}/lifecycle", receiver.url())
    );

    // New mail: one notification per copy, all with our client state.
    let delivered = emulator
        .control(
            "POST",
            "/messages/deliver",
            json!({"from": {"name": "Pat", "address": "pat@partner.example"},
                   "to": [address], "subject": "Pushed", "body": "Hi"}),
        )
        .await;
    let entries = next_entries(&mut receiver).await;
    assert!(!entries.is_empty());
    for entry in &entries {
        assert_eq!(entry["subscriptionId"], made.id.as_str());
        assert_eq!(entry["clientState"], STATE);
        assert_eq!(entry["changeType"], "created");
    }
    // Moved to another folder: still watched, and an update rather than a deletion.
    let copy = delivered["delivered"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["folder"] == "inbox")
        .expect("an Inbox copy")["rest_id"]
        .as_str()
        .unwrap()
        .to_owned();
    emulator
        .control(
            "POST",
            &format!("/users/{address}/messages/{copy}/move"),
            json!({"folder": "archive"}),
        )
        .await;
    let moved = next_entries(&mut receiver).await;
    assert!(
        moved.iter().all(|e| e["changeType"] == "updated"),
        "{moved:?}"
    );

    // Renewed further out.
    let later = Utc::now() + Minutes::minutes(4_000);
    let renewed = subscriptions
        .renew(&made.id, later)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(renewed.id, made.id);
    assert!((renewed.expiration - later).num_seconds().abs() <= 1);
    let earlier = Utc::now() + Minutes::minutes(60);
    subscriptions.renew(&made.id, earlier).await.unwrap();
    let record = recorded(&emulator, &made.id).await.unwrap();
    let stored: chrono::DateTime<Utc> = record["expiration"].as_str().unwrap().parse().unwrap();
    assert!((stored - earlier).num_seconds().abs() <= 1, "{record}");

    // Deleted: gone at Graph; deleting again is fine, renewing finds nothing.
    subscriptions.delete(&made.id).await.unwrap();
    assert_eq!(recorded(&emulator, &made.id).await, None);
    subscriptions.delete(&made.id).await.unwrap();
    assert_eq!(subscriptions.renew(&made.id, later).await.unwrap(), None);
}

#[tokio::test]
async fn an_endpoint_that_fails_the_handshake_gets_no_subscription() {
    let emulator = Emulator::start().await;
    let subscriptions = emulator.connector().subscriptions();
    let (_, address, _) = emulator.mailbox_user();
    let silent = PushReceiver::start().await;
    silent.echo_validation(false);
    let error = subscriptions
        .create(&request(&address, &silent))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Other, "{error}");
    assert_eq!(error.status(), Some(400));
    assert!(error.message().contains("validation"), "{error}");
    let all = emulator.control("GET", "/subscriptions", json!(null)).await;
    assert_eq!(all["subscriptions"], json!([]));

    // Beyond Graph's maximum lifetime is refused, not shortened.
    let echoing = PushReceiver::start().await;
    let mut too_long = request(&address, &echoing);
    too_long.expiration = Utc::now() + Minutes::minutes(10_081);
    let error = subscriptions.create(&too_long).await.unwrap_err();
    assert_eq!(error.status(), Some(400), "{error}");

    // A client state over Graph's limit is refused before any request.
    let mut long_state = request(&address, &echoing);
    long_state.client_state = "x".repeat(129);
    let error = subscriptions.create(&long_state).await.unwrap_err();
    assert!(error.message().contains("128"), "{error}");
}

const TOKEN_ANSWER: &str = r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"trap-token"}"#;
const MARKER: &str = "INTERNAL-PAGE-MARKER";

async fn trap(answer: Canned) -> Trap {
    Trap::routed(
        vec![("/oauth2/v2.0/token".into(), Canned::json(200, TOKEN_ANSWER))],
        answer,
    )
    .await
}

fn trapped(base_url: &str) -> MicrosoftConnector {
    MicrosoftConnector::new(
        AppCredentials {
            tenant: "contoso.example".into(),
            client_id: "app".into(),
            credential: ClientCredential::Secret(ClientSecret::new("the-secret")),
        },
        ConnectorOptions {
            endpoints: MicrosoftEndpoints::from_base_url(base_url),
            ..ConnectorOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn redirects_are_not_followed_and_foreign_bodies_not_echoed() {
    let elsewhere = trap(Canned::json(201, r#"{"id":"x"}"#)).await;
    let graph = trap(Canned::redirect(
        307,
        &format!("{}/v1.0/subscriptions", elsewhere.url),
    ))
    .await;
    let receiver = PushReceiver::start().await;
    let subscriptions = trapped(&graph.url).subscriptions();
    let error = subscriptions
        .create(&request("a@b.example", &receiver))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(307), "{error}");
    let error = subscriptions.delete("sub").await.unwrap_err();
    assert_eq!(error.status(), Some(307), "{error}");
    assert_eq!(
        elsewhere.seen(),
        [],
        "nothing reaches the redirect's target"
    );

    let page = format!("<html><body>{MARKER}</body></html>");
    for status in [403, 502] {
        let graph = trap(Canned::html(status, &page)).await;
        let subscriptions = trapped(&graph.url).subscriptions();
        let renew = subscriptions
            .renew("sub", expiration_from(Utc::now()))
            .await
            .unwrap_err();
        let delete = subscriptions.delete("sub").await.unwrap_err();
        for error in [renew, delete] {
            assert_eq!(error.status(), Some(status));
            assert!(!error.to_string().contains(MARKER), "{error}");
        }
    }
    // A 404 from whatever answers is the subscription gone, never an echo either.
    let graph = trap(Canned::html(404, &page)).await;
    let subscriptions = trapped(&graph.url).subscriptions();
    subscriptions.delete("sub").await.unwrap();
    let seen = graph.seen();
    let last = seen.last().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("DELETE", "/v1.0/subscriptions/sub")
    );
}
