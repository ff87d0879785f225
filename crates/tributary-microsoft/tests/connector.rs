//! The connector against the Microsoft 365 emulator (in-process, HTTPS with its own CA):
//! tokens with a secret and a certificate, cached; users across pages; folders; a full
//! message delta of the Inbox, then live mail, a move and an expiry through its delta
//! link; headers by `$batch`; throttling and outages as transient failures.

mod common;

use common::Emulator;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_core::{HeaderField, ProviderErrorKind};
use tributary_emulator::kit::WindowConfig;
use tributary_microsoft::{AssertionAlgorithm, DeltaLink, DeltaOptions, DeltaPage, MailClient};

/// Follows a round from its first page to its delta link: (pages, delta link).
async fn finish_round(
    mail: &MailClient,
    mut page: DeltaPage,
    page_size: u32,
) -> (Vec<DeltaPage>, String) {
    let mut pages = Vec::new();
    loop {
        let link = page.link.clone();
        pages.push(page);
        match link {
            DeltaLink::Delta(delta) => return (pages, delta),
            DeltaLink::Next(next) => {
                page = mail
                    .delta_follow(&next, Some(page_size))
                    .await
                    .expect("the next page")
            }
        }
    }
}

#[tokio::test]
async fn tokens_come_with_a_secret_or_a_certificate_and_are_cached() {
    let emulator = Emulator::start().await;
    let before = emulator.token_requests().await;
    let credentials = [
        emulator.secret(),
        emulator.certificate(AssertionAlgorithm::Ps256),
        emulator.certificate(AssertionAlgorithm::Rs256),
    ];
    let mut connectors = Vec::new();
    for credential in credentials {
        let connector = emulator.connector_with(credential);
        connector
            .check_credentials()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        connectors.push(connector);
    }
    assert_eq!(emulator.token_requests().await, before + 3);
    // Cached per (tenant, scope): more calls, no more token requests.
    for connector in &connectors {
        connector.check_credentials().await.unwrap();
        connector.directory().list_users_page(None).await.unwrap();
    }
    assert_eq!(emulator.token_requests().await, before + 3);
}

#[tokio::test]
async fn an_expired_token_is_replaced_once_transparently() {
    let emulator = Emulator::start().await;
    let connector = emulator.connector();
    connector.directory().list_users_page(None).await.unwrap();
    let before = emulator.token_requests().await;
    emulator.control("POST", "/tokens/expire", json!({})).await;
    connector.directory().list_users_page(None).await.unwrap();
    assert_eq!(emulator.token_requests().await, before + 1);
}

#[tokio::test]
async fn users_come_across_pages_with_every_smtp_address() {
    let emulator = Emulator::start().await;
    let directory = emulator.connector().directory().with_page_size(2);
    let first = directory.list_users_page(None).await.unwrap();
    assert_eq!(first.users.len(), 2);
    assert!(first.next_link.is_some(), "more than one page");
    let users = directory.list_users().await.unwrap();
    let tenant = emulator.running.state.tenant();
    let live: Vec<_> = tenant.users.iter().filter(|u| !u.deleted).collect();
    assert_eq!(users.len(), live.len());
    for truth in live {
        let user = users.iter().find(|u| u.id == truth.id).expect("listed");
        let account = user.to_account();
        assert_eq!(account.has_mailbox, truth.mail.is_some(), "{}", truth.id);
        assert_eq!(account.suspended, !truth.account_enabled);
        let Some(mail) = &truth.mail else {
            assert_eq!(account.primary_email, truth.user_principal_name);
            continue;
        };
        assert_eq!(&account.primary_email, mail);
        let aliases: Vec<&str> = truth
            .proxy_addresses
            .iter()
            .filter_map(|p| p.strip_prefix("smtp:"))
            .collect();
        assert_eq!(account.aliases, aliases, "{mail}");
    }
}

#[tokio::test]
async fn folders_list_the_tree_with_well_known_names_and_counts() {
    let emulator = Emulator::start().await;
    let (user, _, inbox_count) = emulator.mailbox_user();
    let mail = emulator.connector().mailbox(&user);
    let folders = mail.list_folders().await.unwrap();
    let named = |name: &str| {
        folders
            .iter()
            .find(|f| f.well_known_name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {folders:#?}"))
    };
    let inbox = named("inbox");
    assert_eq!(inbox.id, emulator.folder_id(&user, "inbox"));
    assert_eq!(inbox.total_item_count as usize, inbox_count);
    assert_eq!(
        named("sentitems").id,
        emulator.folder_id(&user, "sentitems")
    );
    let ids: BTreeSet<&str> = folders.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids.len(), folders.len(), "each folder once");
    // The whole tree under the hidden root, child folders included.
    let truth: BTreeSet<String> = {
        let tenant = emulator.running.state.tenant();
        let mailbox = &tenant.mailboxes[&user];
        let root = mailbox.well_known_id("msgfolderroot");
        mailbox
            .folders
            .iter()
            .filter(|f| f.id != root)
            .map(|f| f.id.clone())
            .collect()
    };
    assert_eq!(
        ids.iter().map(|id| id.to_string()).collect::<BTreeSet<_>>(),
        truth
    );
    assert!(
        folders
            .iter()
            .any(|f| f.parent_folder_id.as_deref() == Some(inbox.id.as_str())),
        "a child folder of the Inbox is listed"
    );
    // Children come after their parents (child folders are walked).
    for (index, folder) in folders.iter().enumerate() {
        if let Some(parent) = &folder.parent_folder_id
            && let Some(at) = folders.iter().position(|f| &f.id == parent)
        {
            assert!(at < index, "{} before {}", parent, folder.id);
        }
    }
    let got = mail.get_folder("Inbox").await.unwrap().unwrap();
    assert_eq!(got.id, inbox.id);
    assert_eq!(got.well_known_name.as_deref(), Some("inbox"));
    assert_eq!(mail.get_folder("AAMkAnothing").await.unwrap(), None);
}

#[tokio::test]
async fn a_full_inbox_delta_then_live_mail_a_move_and_an_expiry() {
    let emulator = Emulator::start().await;
    let (user, address, _) = emulator.mailbox_user();
    let mail = emulator.connector().mailbox(&user);
    let options = DeltaOptions {
        page_size: Some(7),
        ..DeltaOptions::default()
    };
    let first = mail.delta_start("inbox", &options).await.unwrap();
    let (pages, delta) = finish_round(&mail, first, 7).await;
    assert!(pages.len() > 1, "across pages");
    let seen: Vec<String> = pages
        .iter()
        .flat_map(|p| p.messages.iter().map(|m| m.id.clone()))
        .collect();
    let truth: BTreeSet<String> = {
        let tenant = emulator.running.state.tenant();
        let mailbox = &tenant.mailboxes[&user];
        mailbox
            .items_in(&mailbox.well_known_id("inbox"))
            .iter()
            .map(|i| i.immutable_id.clone())
            .collect()
    };
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        truth,
        "immutable ids, each one"
    );
    assert_eq!(seen.len(), truth.len());
    let inbox_id = emulator.folder_id(&user, "inbox");
    for message in pages.iter().flat_map(|p| &p.messages) {
        let record = message.to_record(&address);
        assert!(
            record.header_values(HeaderField::From).next().is_some(),
            "{message:?}"
        );
        assert_eq!(record.labels, std::slice::from_ref(&inbox_id));
        assert!(
            message.has_internet_headers(),
            "first-round headers: {message:?}"
        );
    }

    // Nothing changed: an empty round.
    let quiet = mail.delta_follow(&delta, None).await.unwrap();
    assert!(quiet.messages.is_empty() && quiet.removed.is_empty());
    let DeltaLink::Delta(delta) = quiet.link else {
        panic!("one page")
    };

    // Live delivery, seen through the delta link with its headers.
    emulator
        .control(
            "POST",
            "/messages/deliver",
            json!({"from": {"name": "Pat Partner", "address": "pat@partner.example"},
                "to": [address], "subject": "Live one", "body": "hello",
                "message_id": "<live-1@partner.example>"}),
        )
        .await;
    let page = mail.delta_follow(&delta, None).await.unwrap();
    let (pages, delta) = finish_round(&mail, page, 10).await;
    let live: Vec<_> = pages.iter().flat_map(|p| &p.messages).collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        live[0].internet_message_id.as_deref(),
        Some("<live-1@partner.example>")
    );
    assert_eq!(live[0].subject.as_deref(), Some("Live one"));
    let record = live[0].to_record(&address);
    assert_eq!(
        record.header_values(HeaderField::From).next().unwrap(),
        b"\"Pat Partner\" <pat@partner.example>\n"
    );

    // A move out of the Inbox is reported as removed, by the same immutable id.
    let moved = seen[0].clone();
    emulator
        .control(
            "POST",
            &format!("/users/{user}/messages/{moved}/move"),
            json!({"folder": "archive"}),
        )
        .await;
    let page = mail.delta_follow(&delta, None).await.unwrap();
    let (pages, delta) = finish_round(&mail, page, 10).await;
    let removed: Vec<&String> = pages.iter().flat_map(|p| &p.removed).collect();
    assert_eq!(removed, [&moved]);

    // The state expires: the delta link is a gone cursor, and a new round starts over.
    emulator
        .control("POST", &format!("/users/{user}/delta/expire"), json!({}))
        .await;
    let gone = mail.delta_follow(&delta, None).await.unwrap_err();
    assert_eq!(gone.kind(), ProviderErrorKind::CursorGone, "{gone}");
    assert_eq!(gone.status(), Some(410));
    assert_eq!(gone.reason(), Some("SyncStateNotFound"));
    assert!(gone.message().contains("sync state"), "{gone}");
    let again = mail.delta_start("inbox", &options).await.unwrap();
    let (pages, _) = finish_round(&mail, again, 7).await;
    let count: usize = pages.iter().map(|p| p.messages.len()).sum();
    assert_eq!(count, truth.len(), "one moved out, one delivered");
}

#[tokio::test]
async fn headers_come_by_batch_in_lanes_and_singly() {
    let emulator = Emulator::start().await;
    let (user, _, _) = emulator.mailbox_user();
    let mail = emulator.connector().mailbox(&user);
    let options = DeltaOptions {
        page_size: Some(30),
        with_headers: false,
        ..DeltaOptions::default()
    };
    let page = mail.delta_start("inbox", &options).await.unwrap();
    assert!(page.messages.iter().all(|m| !m.has_internet_headers()));
    let mut ids: Vec<String> = page.messages.iter().map(|m| m.id.clone()).collect();
    assert!(ids.len() > 5);
    ids.insert(1, "AAMkAgone".to_string());
    let answers = mail.batch_get_headers(&ids).await.unwrap();
    assert_eq!(answers.len(), ids.len());
    assert_eq!(
        answers[1],
        Ok(None),
        "a missing message is gone, not an error"
    );
    // The lane after the missing one stops: its next request never ran (424).
    let blocked = answers[5].as_ref().unwrap_err();
    assert_eq!(blocked.kind(), ProviderErrorKind::Transient, "{blocked}");
    assert_eq!(blocked.status(), Some(424));
    let single = mail.get_message_headers(&ids[0]).await.unwrap().unwrap();
    let batched = answers[0].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(batched, &single);
    assert!(
        single
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("Message-ID"))
    );
    assert_eq!(mail.get_message_headers("AAMkAgone").await.unwrap(), None);
}

#[tokio::test]
async fn throttling_is_transient_with_retry_after_and_other_mailboxes_go_on() {
    let emulator = Emulator::start_with(WindowConfig {
        requests_per_window: 2,
        window_seconds: 600.0,
        ..WindowConfig::default()
    })
    .await;
    let users = emulator.mailbox_users();
    let connector = emulator.connector();
    let busy = connector.mailbox(&users[0].0);
    for _ in 0..2 {
        busy.get_folder("inbox").await.unwrap();
    }
    let throttled = busy.get_folder("inbox").await.unwrap_err();
    assert_eq!(
        throttled.kind(),
        ProviderErrorKind::Transient,
        "{throttled}"
    );
    assert_eq!(throttled.status(), Some(429));
    assert_eq!(throttled.reason(), Some("ApplicationThrottled"));
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(300)));
    connector
        .mailbox(&users[1].0)
        .get_folder("inbox")
        .await
        .expect("another mailbox is not throttled");
}

#[tokio::test]
async fn outages_are_transient_with_microsoft_s_retry_after() {
    let emulator = Emulator::start().await;
    let connector = emulator.connector();
    connector.check_credentials().await.unwrap();
    emulator
        .control("PUT", "/faults", json!({"server_error_probability": 1.0}))
        .await;
    let error = connector
        .directory()
        .list_users_page(None)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.reason(), Some("ServiceNotAvailable"));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    emulator
        .control(
            "PUT",
            "/faults",
            json!({"server_error_probability": 0.0, "token_error_probability": 1.0}),
        )
        .await;
    let fresh = emulator.connector();
    let error = fresh.check_credentials().await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.reason(), Some("AADSTS90033"));
}

#[tokio::test]
async fn a_backfill_window_leaves_older_mail_out() {
    let emulator = Emulator::start().await;
    let (user, _, _) = emulator.mailbox_user();
    let (since, expected) = {
        let tenant = emulator.running.state.tenant();
        let mailbox = &tenant.mailboxes[&user];
        let mut received: Vec<i64> = mailbox
            .items_in(&mailbox.well_known_id("inbox"))
            .iter()
            .map(|i| i.received_ms)
            .collect();
        received.sort_unstable();
        // Whole seconds, as the filter is written.
        let since = received[received.len() / 2] / 1000 * 1000;
        let expected = received.iter().filter(|&&ms| ms >= since).count();
        (since, expected)
    };
    assert!(expected > 0);
    let mail = emulator.connector().mailbox(&user);
    let options = DeltaOptions {
        received_since: chrono::DateTime::from_timestamp_millis(since),
        page_size: Some(5),
        ..DeltaOptions::default()
    };
    let first = mail.delta_start("inbox", &options).await.unwrap();
    let (pages, _) = finish_round(&mail, first, 5).await;
    let got: Vec<_> = pages.iter().flat_map(|p| &p.messages).collect();
    assert_eq!(got.len(), expected);
    assert!(
        got.iter()
            .all(|m| m.received.unwrap().timestamp_millis() >= since)
    );
}

#[tokio::test]
async fn mail_read_basic_all_carries_everything_capture_reads() {
    let emulator = Emulator::start().await;
    emulator
        .control(
            "PUT",
            "/permissions",
            json!({"roles": ["User.Read.All", "Mail.ReadBasic.All"]}),
        )
        .await;
    let (user, address, _) = emulator.mailbox_user();
    let connector = emulator.connector();
    connector.directory().list_users().await.unwrap();
    let mail = connector.mailbox(&user);
    mail.list_folders().await.unwrap();
    let page = mail
        .delta_start("inbox", &DeltaOptions::default())
        .await
        .unwrap();
    let message = &page.messages[0];
    assert!(message.has_internet_headers(), "{message:?}");
    assert!(message.internet_message_id.is_some() && message.from.is_some());
    let record = message.to_record(&address);
    assert!(record.header_values(HeaderField::To).next().is_some());
    let headers = mail
        .batch_get_headers(std::slice::from_ref(&message.id))
        .await
        .unwrap();
    assert!(matches!(&headers[0], Ok(Some(h)) if !h.is_empty()));
}
