//! The connector against the emulator over loopback HTTP: tokens, the Directory, Gmail
//! lists, metadata (single and batched), history.

mod common;

use common::{connector_for, key_file_json, start_fixture};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, LineEnding};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use tributary_core::HeaderField;
use tributary_emulator::server::auth::TRIBUTARY_SCOPES;
use tributary_google::{
    ConnectorOptions, GoogleConnector, GoogleEndpoints, HistoryChangeKind, HistoryQuery,
    MessageListQuery, ServiceAccountKey, scopes,
};

#[tokio::test]
async fn tokens_are_cached_per_subject_and_scopes() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let tokens = fixture.connector.tokens();
    let first = tokens
        .token(&user, &[scopes::GMAIL_READONLY])
        .await
        .expect("a token");

    // With the key deleted, any new token request would fail: the second call must be
    // answered from the cache, whatever the order the scopes are listed in.
    let key_id = fixture.connector.key_info().private_key_id.clone();
    fixture
        .control
        .delete(&format!("/service-account/keys/{key_id}"))
        .await;
    let again = tokens
        .token(
            &user.to_uppercase(),
            &[scopes::GMAIL_READONLY, scopes::GMAIL_READONLY],
        )
        .await
        .expect("the cached token");
    assert_eq!(again.secret(), first.secret());

    let other_scopes = tokens
        .token(&user, &[scopes::GMAIL_READONLY, scopes::CALENDAR_READONLY])
        .await
        .unwrap_err();
    assert_eq!(other_scopes.message(), "Invalid JWT Signature.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_token_request() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let connector = fixture.connector.clone();
        let user = user.clone();
        calls.spawn(async move {
            let token = connector
                .tokens()
                .token(&user, &[scopes::GMAIL_READONLY])
                .await;
            token.expect("a token").secret().to_string()
        });
    }
    // Every mint gets a new random token from the emulator: one value means one mint.
    let distinct: BTreeSet<String> = calls.join_all().await.into_iter().collect();
    assert_eq!(distinct.len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_without_an_error() {
    let fixture = start_fixture().await;
    let gmail = fixture.connector.gmail(&fixture.member());
    let before = gmail.get_profile().await.expect("a profile");
    fixture.control.post("/tokens/expire", json!({})).await;
    let after = gmail
        .get_profile()
        .await
        .expect("a profile with a new token");
    assert_eq!(after.email_address, before.email_address);
}

#[tokio::test]
async fn a_batch_sent_with_an_expired_token_is_resent_once() {
    let fixture = start_fixture().await;
    let gmail = fixture.connector.gmail(&fixture.member());
    let ids: Vec<String> = gmail
        .list_messages(&MessageListQuery {
            max_results: Some(4),
            ..MessageListQuery::default()
        })
        .await
        .unwrap()
        .messages
        .into_iter()
        .map(|m| m.id)
        .collect();
    fixture.control.post("/tokens/expire", json!({})).await;
    let fetched = gmail
        .batch_get_metadata(&ids, &[HeaderField::Subject])
        .await
        .expect("a batch answer");
    for (id, result) in ids.iter().zip(fetched) {
        assert_eq!(&result.expect("no part error").expect("present").id, id);
    }
}

#[tokio::test]
async fn a_pkcs1_copy_of_the_key_signs_valid_assertions() {
    let fixture = start_fixture().await;
    let mut file: Value = serde_json::from_slice(&key_file_json(&fixture.emulator)).unwrap();
    let pkcs8 = file["private_key"].as_str().unwrap();
    let pkcs1 = RsaPrivateKey::from_pkcs8_pem(pkcs8)
        .unwrap()
        .to_pkcs1_pem(LineEnding::LF)
        .unwrap()
        .to_string();
    assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    file["private_key"] = json!(pkcs1);
    let key = ServiceAccountKey::from_json(file.to_string().as_bytes()).expect("PKCS#1 loads");
    let connector = GoogleConnector::new(
        key,
        ConnectorOptions {
            endpoints: GoogleEndpoints::from_base_url(&fixture.emulator.base_url),
            ..ConnectorOptions::default()
        },
    )
    .unwrap();
    let profile = connector.gmail(&fixture.member()).get_profile().await;
    assert!(profile.is_ok(), "{profile:?}");
}

#[tokio::test]
async fn tributary_scopes_are_all_delegated_by_the_emulator() {
    for scope in scopes::ALL {
        assert!(
            TRIBUTARY_SCOPES.contains(&scope),
            "{scope} is not delegated"
        );
    }
    let fixture = start_fixture().await;
    let token = fixture
        .connector
        .tokens()
        .token(&fixture.admin(), &scopes::ALL)
        .await;
    assert!(token.is_ok(), "{token:?}");
}

#[tokio::test]
async fn the_directory_lists_every_user_of_the_organization() {
    let fixture = start_fixture().await;
    let accounts = fixture
        .connector
        .directory(&fixture.admin())
        .list_users()
        .await
        .expect("the users");

    let expected: Vec<(String, String, bool, bool, bool, bool)> = {
        let org = fixture.emulator.state.org();
        let mut users: Vec<_> = org
            .users
            .iter()
            .filter(|u| !u.deleted)
            .map(|u| {
                (
                    u.id.clone(),
                    u.primary_email.clone(),
                    u.suspended,
                    u.archived,
                    u.is_admin,
                    u.is_mailbox_setup,
                )
            })
            .collect();
        users.sort();
        users
    };
    let mut listed: Vec<_> = accounts
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                a.primary_email.clone(),
                a.suspended,
                a.archived,
                a.is_admin,
                a.has_mailbox,
            )
        })
        .collect();
    listed.sort();
    assert_eq!(listed, expected);
    assert!(accounts.iter().all(|a| a.full_name.is_some()));

    let org = fixture.emulator.state.org();
    for account in &accounts {
        let user = org.find_user(&account.primary_email).unwrap();
        for alias in &user.aliases {
            assert!(account.aliases.contains(alias), "{alias} missing");
        }
    }
}

#[tokio::test]
async fn listing_and_batch_fetching_the_inbox_matches_its_count() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);

    let inbox = gmail
        .get_label("INBOX")
        .await
        .expect("labels.get")
        .expect("an INBOX");
    let mut ids = Vec::new();
    let mut query = MessageListQuery {
        label_ids: vec!["INBOX".to_string()],
        max_results: Some(7),
        ..MessageListQuery::default()
    };
    loop {
        let page = gmail.list_messages(&query).await.expect("messages.list");
        ids.extend(page.messages.into_iter().map(|m| m.id));
        match page.next_page_token {
            Some(token) => query.page_token = Some(token),
            None => break,
        }
    }
    assert!(ids.len() > 7, "the test needs several pages");
    assert_eq!(Some(ids.len() as u64), inbox.messages_total);
    let listed: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(listed, fixture.message_ids_with_label(&user, "INBOX"));

    let fetched = gmail
        .batch_get_metadata(&ids, &HeaderField::ALL)
        .await
        .expect("a batch answer");
    assert_eq!(fetched.len(), ids.len());
    for (id, result) in ids.iter().zip(&fetched) {
        let meta = result
            .as_ref()
            .expect("no part error")
            .as_ref()
            .expect("present");
        assert_eq!(&meta.id, id);
        assert!(meta.label_ids.iter().any(|l| l == "INBOX"));
        let record = meta.to_record(&user);
        assert_eq!(record.mailbox.as_deref(), Some(user.as_str()));
        assert_eq!(record.provider_message_id.as_deref(), Some(id.as_str()));
        // Exactly the captured headers the stored message has, in message order.
        let (expected_headers, expected_date) = fixture.stored_headers(&user, id);
        assert_eq!(meta.headers, expected_headers);
        assert_eq!(record.internal_date_ms, Some(expected_date));
        let fields: Vec<HeaderField> = record.headers.iter().map(|h| h.field).collect();
        let expected_fields: Vec<HeaderField> = expected_headers
            .iter()
            .filter_map(|(name, _)| HeaderField::from_name(name))
            .collect();
        assert_eq!(fields, expected_fields);
    }

    // One by one gives the same.
    let single = gmail
        .get_message_metadata(&ids[0], &HeaderField::ALL)
        .await
        .expect("messages.get")
        .expect("present");
    assert_eq!(Some(&single), fetched[0].as_ref().unwrap().as_ref());
}

#[tokio::test]
async fn a_message_deleted_before_fetching_is_gone_not_an_error() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    let page = gmail
        .list_messages(&MessageListQuery {
            max_results: Some(2),
            ..MessageListQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<String> = page.messages.into_iter().map(|m| m.id).collect();
    fixture
        .control
        .delete(&format!("/users/{user}/messages/{}", ids[0]))
        .await;

    let single = gmail.get_message_metadata(&ids[0], &HeaderField::ALL).await;
    assert_eq!(single, Ok(None));
    let batch = gmail
        .batch_get_metadata(&ids, &HeaderField::ALL)
        .await
        .unwrap();
    assert_eq!(batch[0], Ok(None));
    assert!(matches!(&batch[1], Ok(Some(meta)) if meta.id == ids[1]));
}

#[tokio::test]
async fn batches_larger_than_google_allows_are_split() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    let page = gmail
        .list_messages(&MessageListQuery {
            max_results: Some(3),
            ..MessageListQuery::default()
        })
        .await
        .unwrap();
    // The same ids over and over: 250 calls need three batches.
    let ids: Vec<String> = page
        .messages
        .iter()
        .map(|m| m.id.clone())
        .cycle()
        .take(250)
        .collect();
    let fetched = gmail
        .batch_get_metadata(&ids, &[HeaderField::MessageId])
        .await
        .unwrap();
    assert_eq!(fetched.len(), 250);
    for (id, result) in ids.iter().zip(fetched) {
        assert_eq!(&result.unwrap().unwrap().id, id);
    }
}

#[tokio::test]
async fn labels_and_profile_describe_the_mailbox() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    let profile = gmail.get_profile().await.unwrap();
    assert_eq!(profile.email_address, user);
    let total = fixture.emulator.state.org().mailboxes[&user].messages.len();
    assert_eq!(profile.messages_total, total as u64);

    let labels = gmail.list_labels().await.unwrap();
    let ids: Vec<&str> = labels.iter().map(|l| l.id.as_str()).collect();
    for system in ["INBOX", "SENT", "TRASH", "SPAM"] {
        assert!(ids.contains(&system), "{system} missing from {ids:?}");
    }
    assert_eq!(gmail.get_label("Label_does_not_exist").await, Ok(None));
}

#[tokio::test]
async fn history_reports_a_live_delivery() {
    let fixture = start_fixture().await;
    let user = fixture.member();
    let gmail = fixture.connector.gmail(&user);
    let start = gmail.get_profile().await.unwrap().history_id;

    let delivered = fixture
        .control
        .post(
            "/messages/deliver",
            json!({
                "from": "Pat Partner <pat@partner.example>",
                "to": [user.clone()],
                "subject": "Live one",
                "body": "hello",
            }),
        )
        .await;
    let copy = &delivered["copies"][0];
    let message_id = copy["id"].as_str().unwrap();

    let page = gmail
        .list_history(&HistoryQuery {
            start_history_id: start,
            label_id: Some("INBOX".to_string()),
            ..HistoryQuery::default()
        })
        .await
        .expect("history.list");
    assert!(page.history_id > start);
    let added: Vec<_> = page
        .records
        .iter()
        .flat_map(|r| &r.changes)
        .filter(|c| c.kind == HistoryChangeKind::MessageAdded)
        .collect();
    assert_eq!(added.len(), 1, "{page:?}");
    assert_eq!(added[0].message.id, message_id);
    assert_eq!(
        added[0].message.thread_id,
        copy["thread_id"].as_str().unwrap()
    );
    assert!(added[0].message.label_ids.iter().any(|l| l == "INBOX"));
    assert_eq!(page.records[0].id, copy["history_id"].as_u64().unwrap());

    let meta = gmail
        .get_message_metadata(message_id, &HeaderField::ALL)
        .await
        .unwrap()
        .unwrap();
    let record = meta.to_record(&user);
    assert_eq!(
        record.header_values(HeaderField::Subject).next(),
        Some(&b"Live one\n"[..])
    );

    let quiet = gmail
        .list_history(&HistoryQuery {
            start_history_id: page.history_id,
            kinds: vec![HistoryChangeKind::MessageAdded],
            ..HistoryQuery::default()
        })
        .await
        .unwrap();
    assert!(quiet.records.is_empty());
    assert_eq!(quiet.history_id, page.history_id);
}

#[tokio::test]
async fn a_fresh_connector_for_the_same_key_works_independently() {
    let fixture = start_fixture().await;
    let second = connector_for(&fixture.emulator);
    let user = fixture.member();
    let a = fixture.connector.gmail(&user).get_profile().await.unwrap();
    let b = second.gmail(&user).get_profile().await.unwrap();
    assert_eq!(a, b);
}
