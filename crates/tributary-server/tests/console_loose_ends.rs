//! Issue #17's loose ends, seen from outside after a real sync of an emulated Google
//! organization (SQLite, and PostgreSQL when reachable): the Users page names members
//! by their directory name and shows the last change; Disconnect, in the console and
//! through the API, stops capture, forgets the key and keeps everything captured, and
//! the audit log says so in a sentence; the API's members carry their display names.

mod api_support;
mod console_support;

use api_support::{Backend, Server, TestStore, ordinary_user};
use console_support::{BACKENDS, Browser, Console, emulator, some_mailbox_user};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tributary_emulator::server::RunningEmulator;
use tributary_store::{ConnectionKind, LinkStatus, MemberRole, Store, TenantId};

const ADMIN: &str = "ops@console.test";

/// The directory's full name of every user, by lowercase primary address.
fn directory_names(emulated: &RunningEmulator) -> HashMap<String, String> {
    emulated
        .state
        .org()
        .users
        .iter()
        .map(|u| (u.primary_email.to_lowercase(), u.full_name()))
        .collect()
}

async fn wait_all_idle(store: &Store, tenant: &TenantId) {
    for _ in 0..300 {
        let links = store.links(tenant).await.unwrap();
        if !links.is_empty() && links.iter().all(|l| l.status == LinkStatus::Idle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("links did not all become idle");
}

/// Timeline entries on a console page.
fn entries(body: &str) -> usize {
    body.matches("<div class=\"when\">").count()
}

/// A contact with the most captured activities, and how many it has.
async fn busiest_contact(store: &Store, tenant: &TenantId) -> (String, usize) {
    let contacts = store.contacts(tenant).await.unwrap();
    let mut best: Option<(String, usize)> = None;
    for contact in contacts {
        let timeline = store
            .timeline_page(
                tenant,
                &tributary_store::TimelineOf::Contact(contact.address.clone()),
                None,
                200,
            )
            .await
            .unwrap();
        let count = timeline.activities.len();
        if best.as_ref().is_none_or(|(_, most)| count > *most) {
            best = Some((contact.address, count));
        }
    }
    best.expect("the sync captured contacts")
}

#[tokio::test]
async fn disconnect_in_the_console_stops_capture_and_keeps_the_timeline() {
    for backend in BACKENDS {
        console_case(backend).await;
    }
}

async fn console_case(backend: Backend) {
    let emulated = emulator(4, 12).await;
    let Some(console) = Console::start_with(backend, &emulated, None).await else {
        return;
    };
    let (store, tenant) = (console.store(), &console.tenant);
    console.add_user(tenant, ADMIN, MemberRole::Admin).await;
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let csrf = admin.connect_google(&emulated).await;
    wait_all_idle(store, tenant).await;
    let links = store.links(tenant).await.unwrap();

    // The Users page: each member by its directory name (the address beside it), and
    // the last sync's change.
    let names = directory_names(&emulated);
    let users = admin.get("/users").await;
    for link in &links {
        let name = &names[&link.member];
        assert!(
            users.body.contains(&format!(">{name}</a>")),
            "{name} on the Users page"
        );
    }
    assert!(
        users.body.contains("Last change"),
        "the last change is shown"
    );

    // A member can neither see nor post Disconnect.
    let member_email = some_mailbox_user(&emulated, &emulated.info.admin_email);
    console
        .add_user(tenant, &member_email, MemberRole::Member)
        .await;
    let mut member = Browser::new(&console.url);
    member.sign_in(&member_email).await;
    let member_csrf = member.get("/me").await.csrf();
    assert_eq!(
        member.get("/setup/disconnect?provider=google").await.status,
        403
    );
    let refused = member
        .post(
            "/setup/disconnect",
            &[("csrf", &member_csrf), ("provider", "google")],
        )
        .await;
    assert_eq!(refused.status, 403);
    // Nor can a form without the session's token.
    let forged = admin
        .post("/setup/disconnect", &[("provider", "google")])
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        store
            .connection(tenant, ConnectionKind::Google)
            .await
            .unwrap()
            .is_some(),
        "a refused form changes nothing"
    );

    // The setup page leads to a confirmation that says what will happen.
    let setup = admin.get("/setup").await;
    assert!(
        setup
            .body
            .contains("href=\"/setup/disconnect?provider=google\""),
        "the setup page offers Disconnect"
    );
    let confirm = admin.get("/setup/disconnect?provider=google").await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains(&format!("{} mailboxes", links.len())));
    assert!(confirm.body.contains("keeps everything captured so far"));
    assert_eq!(
        admin.get("/setup/disconnect?provider=gmail").await.status,
        400
    );

    let activities = store.activities(tenant).await.unwrap().len();
    let (contact, before) = busiest_contact(store, tenant).await;
    let contact_path = format!("/contacts/{contact}");
    assert_eq!(entries(&admin.get(&contact_path).await.body), before);

    let done = admin
        .submit(
            "/setup/disconnect",
            &[("csrf", &csrf), ("provider", "google")],
        )
        .await;
    assert!(
        done.body.contains("Google Workspace is disconnected"),
        "{}",
        done.body
    );
    assert!(!done.body.contains("href=\"/setup/disconnect"));

    // The key is gone, capture stopped, and what was captured stays.
    assert!(
        store
            .connection(tenant, ConnectionKind::Google)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        console
            .runtime
            .google_setup(tenant)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.activities(tenant).await.unwrap().len(), activities);
    let timeline = admin.get(&contact_path).await;
    assert_eq!(timeline.status, 200);
    assert_eq!(entries(&timeline.body), before, "the timeline is kept");

    // Turning "connect new users automatically" off reads as a sentence too.
    admin.post("/policy/new-users", &[("csrf", &csrf)]).await;
    let audit = admin.get("/audit").await;
    assert!(
        audit.body.contains(&format!(
            "{ADMIN} turned “Connect new users automatically” off"
        )),
        "{}",
        audit.body
    );
    assert!(
        audit.body.contains(&format!(
            "{ADMIN} disconnected Google Workspace: its credentials were deleted and {} \
             mailboxes unlinked; captured activity is kept",
            links.len()
        )),
        "{}",
        audit.body
    );
    // Posted again (a reload): nothing to do, said as such; the links stay unlinked.
    let again = admin
        .submit(
            "/setup/disconnect",
            &[("csrf", &csrf), ("provider", "google")],
        )
        .await;
    assert!(again.body.contains("Google Workspace was not connected"));
    assert_eq!(
        admin.get("/setup/disconnect?provider=google").await.status,
        404
    );
    let after = store.links(tenant).await.unwrap();
    assert_eq!(after.len(), links.len());
    assert!(
        after.iter().all(|l| l.status == LinkStatus::Unlinked),
        "{after:?}"
    );
}

#[tokio::test]
async fn disconnect_through_the_api_and_members_with_names() {
    for backend in BACKENDS {
        api_case(backend).await;
    }
}

async fn api_case(backend: Backend) {
    let Some(database) = TestStore::open(backend).await else {
        return;
    };
    let emulated = emulator(4, 12).await;
    let member_email = ordinary_user(&emulated);
    let server = Server::start(database, Some(&emulated), &member_email).await;
    server.connect_and_sync(&emulated).await;
    let api = &server.admin;
    let store = server.store();
    let linked = store
        .links(&server.acme)
        .await
        .unwrap()
        .iter()
        .filter(|l| l.status != LinkStatus::Unlinked)
        .count();
    assert!(linked > 0);

    // Members carry the directory's name.
    let names = directory_names(&emulated);
    let members = api.get("/members").await.expect(200);
    let members = members["members"].as_array().unwrap();
    assert!(!members.is_empty());
    for member in members {
        let email = member["email"].as_str().unwrap();
        assert_eq!(
            member["display_name"].as_str(),
            names.get(email).map(String::as_str),
            "{member}"
        );
    }

    let activities = api.get("/activities?limit=1000").await.expect(200)["activities"]
        .as_array()
        .unwrap()
        .len();
    assert!(activities > 0);

    // Only the tenant's admin disconnects; another tenant has no such connection.
    api.delete("/microsoft/connection")
        .await
        .expect_error(404, "not_found");
    server
        .member
        .delete("/connection")
        .await
        .expect_error(403, "forbidden");
    server
        .other_tenant
        .delete("/connection")
        .await
        .expect_error(404, "not_found");
    api.get("/connection").await.expect(200);

    let answer = api.delete("/connection").await.expect(200);
    assert_eq!(answer, json!({ "provider": "google", "unlinked": linked }));
    api.get("/connection").await.expect_error(404, "not_found");
    api.delete("/connection")
        .await
        .expect_error(404, "not_found");
    assert!(
        store
            .links(&server.acme)
            .await
            .unwrap()
            .iter()
            .all(|l| l.status == LinkStatus::Unlinked)
    );
    let kept = api.get("/activities?limit=1000").await.expect(200)["activities"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(kept, activities, "captured activity is kept");

    let audit = api
        .get("/audit?action=connection.google.disconnected")
        .await
        .expect(200);
    let events: &Vec<Value> = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["detail"]["unlinked"], json!(linked));
    assert!(
        events[0]["text"]
            .as_str()
            .unwrap()
            .contains("disconnected Google Workspace"),
        "{audit}"
    );
    server.stop().await;
}

/// The Microsoft 365 setup offers the same Disconnect, which deletes the app
/// registration and says so in the audit log.
#[tokio::test]
async fn microsoft_365_disconnects_the_same_way() {
    let emulated = tributary_emulator::microsoft::start(Default::default())
        .await
        .expect("the Microsoft emulator starts");
    let console = Console::start_microsoft(&emulated, None).await;
    let tenant = &console.tenant;
    console.add_user(tenant, ADMIN, MemberRole::Admin).await;
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let app = &emulated.app;
    let csrf = admin.get("/setup/microsoft").await.csrf();
    let saved = admin
        .submit_multipart(
            "/setup/microsoft/app",
            &[
                ("csrf", &csrf),
                ("tenant_id", &app.tenant_id),
                ("client_id", &app.client_id),
                ("credential", "secret"),
                ("client_secret", &app.client_secret),
            ],
            ("certificate_file", b""),
        )
        .await;
    assert!(
        saved
            .body
            .contains("href=\"/setup/disconnect?provider=microsoft\""),
        "{}",
        saved.body
    );
    let confirm = admin.get("/setup/disconnect?provider=microsoft").await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Disconnect Microsoft 365"));

    let done = admin
        .submit(
            "/setup/disconnect",
            &[("csrf", &csrf), ("provider", "microsoft")],
        )
        .await;
    assert!(
        done.body.contains("Microsoft 365 is disconnected"),
        "{}",
        done.body
    );
    assert!(
        console
            .runtime
            .microsoft_setup(tenant)
            .await
            .unwrap()
            .is_none()
    );
    let audit = admin.get("/audit").await;
    assert!(
        audit
            .body
            .contains(&format!("{ADMIN} disconnected Microsoft 365")),
        "{}",
        audit.body
    );
}
