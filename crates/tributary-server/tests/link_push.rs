//! The `push` field of links in the API (docs/push.md, "Per-link state"): the mode the
//! sync's lifecycle step recorded, the reason a mailbox is polled, the open channels by
//! stream and expiry, and never a channel's id or secret hash. A server without push
//! shows every link as polled; an unlinked link as polled, "unlinked".

use serde_json::Value;
use tokio::net::TcpListener;
use tributary_server::{AppState, PushConfig, ServerConfig};
use tributary_store::testing::TestDatabase;
use tributary_store::{
    ConnectionKind, LinkId, MasterKey, MemberRole, PushChannelRecord, PushMode, Store, TenantId,
    secret_hash,
};
use tributary_sync::push::PushSettings;
use tributary_sync::{Runtime, RuntimeConfig};

const ADMIN: &str = "root@acme.test";
const PASSWORD: &str = "a long enough password";
const SECRET: &str = "the client state Graph echoes";
/// 2026-12-13T15:00:00Z
const EXPIRES_MS: i64 = 1_797_174_000_000;

/// A server over `store` whose runtime has push as `push` says; answers its URL.
async fn serve(store: &Store, push: Option<PushSettings>) -> String {
    let server_push = push.as_ref().map(|_| PushConfig::default());
    let config = RuntimeConfig {
        push,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(store.clone(), MasterKey::generate(), config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ServerConfig {
        public_url: url.clone(),
        push: server_push,
        ..ServerConfig::default()
    };
    tokio::spawn(tributary_server::serve(
        listener,
        AppState::new(runtime, config),
        std::future::pending(),
    ));
    url
}

async fn get(url: &str, token: &str, path: &str) -> (String, Value) {
    let response = reqwest::Client::new()
        .get(format!("{url}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap();
    (text, json)
}

fn push_of(links: &Value, id: LinkId) -> &Value {
    &links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|link| link["id"] == id.0)
        .unwrap_or_else(|| panic!("no link {}: {links}", id.0))["push"]
}

async fn links_show_their_push_state(store: Store) {
    let tenant = TenantId::new("acme");
    store.create_tenant(&tenant, "Acme").await.unwrap();
    let admin = tributary_server::auth::create_user(
        &store,
        &tenant,
        ADMIN,
        MemberRole::Admin,
        PASSWORD,
        "t",
    )
    .await
    .unwrap();
    let token = store
        .create_api_token(&tenant, admin, "tests", "t")
        .await
        .unwrap()
        .secret;
    let mut links = Vec::new();
    for name in ["ann", "bob", "cy", "dee"] {
        let address = format!("{name}@acme.test");
        let member = store
            .add_member(&tenant, &address, &[], MemberRole::Member)
            .await
            .unwrap();
        let link = store
            .link_mailbox(&tenant, member, &address, ConnectionKind::Microsoft)
            .await
            .unwrap();
        links.push(link);
    }
    let (on_push, refused, fresh, unlinked) = (links[0], links[1], links[2], links[3]);
    // What the lifecycle step records: a mail and a calendar channel, the mail one's
    // secret kept as its hash.
    for (stream, expires_ms) in [("mail", EXPIRES_MS), ("calendar", 0)] {
        let channel = PushChannelRecord {
            link: on_push,
            stream: stream.into(),
            channel_id: format!("subscription-{stream}"),
            expires_ms,
            secret_hash: Some(secret_hash(SECRET)),
            renewed_ms: EXPIRES_MS - 7 * 86_400_000,
        };
        store.save_push_channel(&tenant, &channel).await.unwrap();
    }
    let now = EXPIRES_MS - 86_400_000;
    store
        .set_link_push(&tenant, on_push, PushMode::Push, None, now)
        .await
        .unwrap();
    let words = "mail: Subscription validation request failed. <b>Response</b> not 200.";
    store
        .set_link_push(&tenant, refused, PushMode::Polling, Some(words), now)
        .await
        .unwrap();
    store
        .set_link_push(&tenant, unlinked, PushMode::Push, None, now)
        .await
        .unwrap();
    store
        .set_link_status(
            &tenant,
            unlinked,
            tributary_store::LinkStatus::Unlinked,
            "t",
        )
        .await
        .unwrap();

    let url = serve(
        &store,
        Some(PushSettings::new("https://crm.example.com").unwrap()),
    )
    .await;
    let (text, list) = get(&url, &token, "/links").await;
    assert!(!text.contains(&secret_hash(SECRET)), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("subscription-mail"), "{text}");
    let push = push_of(&list, on_push);
    assert_eq!(push["mode"], "push", "{push}");
    assert!(push["reason"].is_null(), "{push}");
    assert_eq!(
        push["channels"],
        serde_json::json!([
            {"stream": "calendar", "expires_at": null},
            {"stream": "mail", "expires_at": "2026-12-13T15:00:00Z"},
        ]),
        "{push}"
    );
    let push = push_of(&list, refused);
    assert_eq!(push["mode"], "polling", "{push}");
    assert_eq!(push["reason"], words, "{push}");
    assert_eq!(push["channels"], serde_json::json!([]));
    let push = push_of(&list, fresh);
    assert_eq!(push["mode"], "polling", "{push}");
    assert_eq!(
        push["reason"],
        "push starts after the mailbox's next successful sync"
    );
    let push = push_of(&list, unlinked);
    assert_eq!(push["mode"], "polling", "{push}");
    assert_eq!(push["reason"], "unlinked", "{push}");

    // One link reads the same, without its secret either.
    let (text, shown) = get(&url, &token, &format!("/links/{}", on_push.0)).await;
    assert!(!text.contains(&secret_hash(SECRET)), "{text}");
    assert_eq!(shown["push"], *push_of(&list, on_push));

    // A server without push: every link is polled, whatever was recorded.
    let url = serve(&store, None).await;
    let (_, list) = get(&url, &token, "/links").await;
    for link in [on_push, refused, fresh] {
        let push = push_of(&list, link);
        assert_eq!(push["mode"], "polling", "{push}");
        assert_eq!(
            push["reason"],
            "push is not configured on this server (--push with --public-url)"
        );
        assert_eq!(push["channels"], serde_json::json!([]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_show_their_push_state_on_sqlite() {
    let database = TestDatabase::sqlite().await;
    links_show_their_push_state(database.store.clone()).await;
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_show_their_push_state_on_postgres() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    links_show_their_push_state(database.store.clone()).await;
    database.close().await;
}
