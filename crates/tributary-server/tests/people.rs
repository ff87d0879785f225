//! People made visible (issue #17), after a real sync of an emulated organization: the
//! API's participants carry a display name and name the member they resolve to (with
//! the directory's name), contacts carry the newest name headers gave them, companies a
//! name derived from the domain, relationships both names; every activity says which
//! mailboxes captured it and from which provider; the console shows the same, and a
//! member's page keeps the last sync that changed something with "checked … ago" for a
//! later run that found nothing. On both backends.

mod api_support;
mod console_support;

use api_support::{Backend, Server, TestStore};
use console_support::{BACKENDS, Browser, escaped};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tributary_store::MemberRole;

/// An admin with a console password (the console support's).
const CONSOLE_ADMIN: &str = "people@acme-admin.test";

/// Every page of an API list.
async fn all_pages(api: &api_support::Api, path: &str, field: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=100&cursor={c}"),
            None => format!("{path}?limit=100"),
        };
        let page = api.get(&url).await.expect(200);
        items.extend(page[field].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

#[tokio::test]
async fn people_are_named_and_activities_say_who_captured_them() {
    for backend in BACKENDS {
        case(backend).await;
    }
}

async fn case(backend: Backend) {
    let Some(store) = TestStore::open(backend).await else {
        return;
    };
    let emulated = api_support::emulator(5, 20).await;
    let member_email = api_support::ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member_email).await;
    server.connect_and_sync(&emulated).await;
    let admin = &server.admin;
    let tenant = &server.acme;

    // The directory's names, by every address of each account.
    let directory: BTreeMap<String, String> = emulated
        .state
        .org()
        .users
        .iter()
        .map(|u| {
            let name = u
                .full_name()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (u.primary_email.to_lowercase(), name)
        })
        .collect();
    let links = server.store().links(tenant).await.unwrap();
    let mailboxes: BTreeSet<&str> = links.iter().map(|l| l.mailbox.as_str()).collect();

    // Participants: a member's directory name, and the member they resolve to.
    let activities = all_pages(admin, "/activities", "activities").await;
    assert!(!activities.is_empty());
    let mut member_participants = 0;
    let mut named_outsiders: BTreeMap<String, String> = BTreeMap::new();
    for activity in &activities {
        let captured_by = activity["captured_by"].as_array().unwrap();
        assert!(!captured_by.is_empty(), "{activity:#}");
        for by in captured_by {
            assert_eq!(by["provider"], "google", "{activity:#}");
            assert!(
                mailboxes.contains(by["mailbox"].as_str().unwrap()),
                "a linked mailbox captured it: {activity:#}"
            );
        }
        for p in activity["participants"].as_array().unwrap() {
            if let Some(member) = p["member"].as_str() {
                member_participants += 1;
                assert_eq!(
                    p["display_name"].as_str(),
                    directory.get(member).map(String::as_str),
                    "a member is named as the directory names them: {p}"
                );
            } else if p["kind"] == "external"
                && let Some(name) = p["display_name"].as_str()
            {
                assert!(!name.trim().is_empty() && !name.contains('@'), "{p}");
                named_outsiders.insert(p["address"].as_str().unwrap().to_owned(), name.to_owned());
            }
        }
    }
    assert!(member_participants > 0, "some participants are members");
    assert!(
        !named_outsiders.is_empty(),
        "the generated mail names some outside people"
    );

    // Contacts carry the same name their participants show.
    let contacts = all_pages(admin, "/contacts", "contacts").await;
    for contact in &contacts {
        let address = contact["address"].as_str().unwrap();
        assert_eq!(
            contact["display_name"].as_str(),
            named_outsiders.get(address).map(String::as_str),
            "{contact}"
        );
    }

    // Companies: a name from the domain.
    let companies = all_pages(admin, "/companies", "companies").await;
    assert!(!companies.is_empty());
    for company in &companies {
        let domain = company["domain"].as_str().unwrap();
        let name = company["display_name"].as_str().unwrap_or_default();
        let as_label = name.to_lowercase().replace(' ', "-");
        assert!(
            domain.split('.').any(|label| label == as_label),
            "the name is a label of the domain: {company}"
        );
        assert!(
            name.chars().next().is_some_and(char::is_uppercase),
            "{company}"
        );
    }

    // Relationships: both names.
    let relationships = all_pages(admin, "/relationships", "relationships").await;
    assert!(!relationships.is_empty());
    for r in &relationships {
        let member = r["member"].as_str().unwrap();
        assert_eq!(
            r["member_display_name"].as_str(),
            directory.get(member).map(String::as_str),
            "{r}"
        );
        let contact = r["contact"].as_str().unwrap();
        assert_eq!(
            r["contact_display_name"].as_str(),
            named_outsiders.get(contact).map(String::as_str),
            "{r}"
        );
    }

    // A second run that finds nothing keeps the summary of the first.
    let link = links
        .iter()
        .find(|l| l.mailbox == member_email)
        .expect("the member's mailbox is linked");
    let first = link.last_summary.clone().expect("the first run's summary");
    assert!(first["added"].as_u64().unwrap_or(0) + first["fetched"].as_u64().unwrap_or(0) > 0);
    let engine = server.runtime.engine(tenant).await.unwrap().unwrap();
    engine.sync_link(link.id, &link.mailbox).await.unwrap();
    let after = server
        .store()
        .links(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.id == link.id)
        .unwrap();
    assert_eq!(
        after.last_summary.as_ref(),
        Some(&first),
        "an empty run keeps it"
    );
    assert!(
        after.last_success_ms > link.last_success_ms,
        "and is when it checked"
    );

    // The console shows the same.
    let hash = tributary_server::auth::hash_password(console_support::PASSWORD)
        .await
        .unwrap();
    server
        .store()
        .create_user(tenant, CONSOLE_ADMIN, MemberRole::Admin, &hash, "test")
        .await
        .unwrap();
    let mut browser = Browser::new(&server.url);
    browser.sign_in(CONSOLE_ADMIN).await;
    let page = browser.get(&format!("/members/{member_email}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let member_name = &directory[&member_email];
    assert!(
        page.body.contains(&escaped(&format!(
            "Member · {member_name} <{member_email}>"
        ))),
        "the member page is titled with the directory's name: {}",
        page.body
    );
    assert!(page.body.contains("Last change"), "{}", page.body);
    assert!(
        page.body.contains(" · checked ") && page.body.contains(", nothing new"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("(Google)"),
        "each activity names its provider"
    );

    let (address, name) = named_outsiders.iter().next().unwrap();
    let page = browser.get(&format!("/contacts/{address}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&escaped(&format!("Contact · {name} <{address}>"))),
        "{}",
        page.body
    );
    assert!(page.body.contains("Captured from"), "{}", page.body);

    // Search finds a contact by a word of its name.
    let word = name
        .split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap()
        .to_ascii_lowercase();
    let found = browser
        .get(&format!(
            "/search?q={}",
            form_urlencoded::byte_serialize(word.as_bytes()).collect::<String>()
        ))
        .await;
    assert!(
        found.body.contains(&format!("/contacts/{address}")),
        "`{word}` finds {address}: {}",
        found.body
    );
    server.stop().await;
}
