//! What a member (role member) sees of the CRM, through the console and the API, after
//! a real sync of an emulated organization: their own relationships with scores, the
//! timelines of what they took part in, search over that, "not found" for the rest;
//! with the policy's `member_visibility: organization` also the organization's contact
//! points without subjects or mailboxes; never another tenant's. And what everyone
//! sees: the score's legend and help page, alias links leading to the member, and the
//! mailboxes (and provider) that captured each activity.

mod api_support;
mod console_support;

use api_support::Backend;
use console_support::{BACKENDS, Browser, Console, emulator, some_mailbox_user};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_core::PolicySettings;
use tributary_core::settings::MemberVisibility;
use tributary_store::{
    ActivityFilter, ContactFilter, LinkStatus, MemberRole, ReadScope, Store, TenantId, TimelineOf,
};

const ADMIN: &str = "ops@console.test";

/// The legend shown beside every score (from the real half-life).
const LEGEND: &str = "halves every 90 days without contact";

async fn wait_all_idle(console: &Console) {
    for _ in 0..300 {
        let links = console.store().links(&console.tenant).await.unwrap();
        if !links.is_empty() && links.iter().all(|l| l.status == LinkStatus::Idle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("links did not all become idle");
}

/// Every contact of the tenant, split into those `scope` lists and the others.
async fn contacts_split(
    store: &Store,
    tenant: &TenantId,
    scope: ReadScope,
) -> (Vec<String>, Vec<String>) {
    let all = store.contacts(tenant).await.unwrap();
    let seen: BTreeSet<String> = store
        .contacts_page_scoped(tenant, &ContactFilter::default(), None, 10_000, scope)
        .await
        .unwrap()
        .contacts
        .into_iter()
        .map(|c| c.address)
        .collect();
    all.into_iter()
        .map(|c| c.address)
        .partition(|address| seen.contains(address))
}

/// Timeline entries on a console page.
fn entries(body: &str) -> usize {
    body.matches("<div class=\"when\">").count()
}

#[tokio::test]
async fn a_member_sees_their_own_crm_in_the_console() {
    for backend in BACKENDS {
        console_case(backend).await;
    }
}

async fn console_case(backend: Backend) {
    let emulated = emulator(5, 20).await;
    let Some(console) = Console::start_with(backend, &emulated, None).await else {
        return;
    };
    console
        .add_user(&console.tenant, ADMIN, MemberRole::Admin)
        .await;
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let setup = admin.get("/setup").await;
    let csrf = setup.csrf();
    let key = serde_json::to_vec(&emulated.key_file).unwrap();
    admin
        .post_multipart(
            "/setup/key",
            &[("csrf", &csrf), ("admin_email", &emulated.info.admin_email)],
            ("key_file", &key),
        )
        .await;
    admin.post("/users/rebuild", &[("csrf", &csrf)]).await;
    admin
        .post("/setup/capture", &[("csrf", &csrf), ("enabled", "on")])
        .await;
    wait_all_idle(&console).await;
    let store = console.store();
    let tenant = &console.tenant;

    let member_email = some_mailbox_user(&emulated, &emulated.info.admin_email);
    console
        .add_user(tenant, &member_email, MemberRole::Member)
        .await;
    let members = store.members(tenant).await.unwrap();
    let own = members.iter().find(|m| m.email == member_email).unwrap();
    let other = members.iter().find(|m| m.email != member_email).unwrap();
    let scope = ReadScope::Own(own.id);
    let (visible, hidden) = contacts_split(store, tenant, scope).await;
    assert!(
        !visible.is_empty() && !hidden.is_empty(),
        "the member met some contacts, not all"
    );

    let mut member = Browser::new(&console.url);
    member.sign_in(&member_email).await;

    // Their own relationships with scores and the legend; their page from the nav.
    let me = member.get(&format!("/members/{member_email}")).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(
        me.body.contains("My relationships"),
        "the member's navigation"
    );
    let strongest = store.member_relationships(tenant, own.id, 1).await.unwrap();
    assert!(!strongest.is_empty(), "the member has relationships");
    assert!(me.body.contains(&strongest[0].contact));
    assert!(
        me.body
            .contains(&format!("{:.1}", strongest[0].score_at_last))
    );
    assert!(me.body.contains(LEGEND) && me.body.contains("href=\"/help/relationship-score\""));
    assert!(
        me.body.contains("Captured from"),
        "each activity names its mailboxes"
    );
    // The role shown is the signed-in account's, the one that decides access.
    assert!(
        me.body.contains("Console account: <strong>member</strong>"),
        "the member page shows the account's role"
    );

    // Another member's page does not exist for them; neither does a contact they never met.
    let theirs = member.get(&format!("/members/{}", other.email)).await;
    assert_eq!(theirs.status, 404);
    let unmet = &hidden[0];
    assert_eq!(member.get(&format!("/contacts/{unmet}")).await.status, 404);
    assert_eq!(admin.get(&format!("/contacts/{unmet}")).await.status, 200);

    // A contact they met: only the contact points they took part in.
    let met = &visible[0];
    let page = member.get(&format!("/contacts/{met}")).await;
    assert_eq!(page.status, 200);
    let scoped = store
        .timeline_page_scoped(tenant, &TimelineOf::Contact(met.clone()), None, 200, scope)
        .await
        .unwrap();
    assert_eq!(entries(&page.body), scoped.activities.len());
    for activity in &scoped.activities {
        let addresses: Vec<&str> = activity
            .participants
            .iter()
            .map(|p| p.address.as_str())
            .collect();
        assert!(
            addresses.contains(&own.email.as_str())
                || own.aliases.iter().any(|a| addresses.contains(&a.as_str())),
            "{addresses:?}"
        );
    }

    // Companies and search: theirs only.
    let companies = member.get("/companies").await;
    assert_eq!(companies.status, 200);
    assert!(companies.body.contains(LEGEND));
    let ranking = store
        .ranked_companies_scoped(tenant, 0, 1000, scope)
        .await
        .unwrap();
    let all_ranked = store.ranked_companies(tenant, 0, 1000).await.unwrap();
    for company in &all_ranked.companies {
        let shown = companies.body.contains(&format!(">{}</a>", company.domain));
        let theirs = ranking.companies.iter().any(|c| c.domain == company.domain);
        assert_eq!(shown, theirs, "{}", company.domain);
    }
    let found = member.get(&format!("/search?q={met}")).await;
    assert_eq!(found.status, 200);
    assert!(found.body.contains("Contacts (1)"), "{}", found.body);
    let not_found = member.get(&format!("/search?q={unmet}")).await;
    assert!(not_found.body.contains("Contacts (0)"));

    // Under "organization": the unmet contact's contact points, as metadata only.
    let policy = PolicySettings {
        member_visibility: MemberVisibility::Organization,
        ..console.runtime.policy(tenant).await.unwrap()
    };
    console
        .runtime
        .set_policy(tenant, &policy, ADMIN)
        .await
        .unwrap();
    let open = member.get(&format!("/contacts/{unmet}")).await;
    assert_eq!(open.status, 200);
    let all = store
        .timeline_page(tenant, &TimelineOf::Contact(unmet.clone()), None, 200)
        .await
        .unwrap();
    assert_eq!(entries(&open.body), all.activities.len());
    assert!(open.body.contains("(subject not shown)"));
    assert!(
        !open.body.contains("Captured from"),
        "no mailboxes of others' mail"
    );
    for activity in &all.activities {
        if let Some(subject) = activity.subject.as_deref().filter(|s| s.len() > 12) {
            assert!(!open.body.contains(subject), "{subject} is withheld");
        }
    }
    assert_eq!(
        member
            .get(&format!("/members/{}", other.email))
            .await
            .status,
        404
    );

    // Everyone: an alias leads to the member's page; the score is explained.
    let aliased = members
        .iter()
        .find(|m| !m.aliases.is_empty())
        .expect("a member with an alias");
    let alias = admin.get(&format!("/members/{}", aliased.aliases[0])).await;
    assert_eq!(alias.status, 303);
    assert_eq!(
        alias.location.as_deref(),
        Some(format!("/members/{}", aliased.email).as_str())
    );
    let help = member.get("/help/relationship-score").await;
    assert_eq!(help.status, 200);
    assert!(help.body.contains(LEGEND) && help.body.contains("2^(−age / 90 days)"));
    let ranked = admin.get("/companies").await;
    let best = all_ranked.companies[0].best.as_ref().unwrap();
    assert!(
        ranked.body.contains(&format!("{:.1}", best.score)),
        "the ranking's score is shown"
    );

    // A member of another tenant sees none of this one.
    let globex = TenantId::new("globex");
    store.create_tenant(&globex, "Globex").await.unwrap();
    store
        .add_member(&globex, "kim@globex.test", &[], MemberRole::Member)
        .await
        .unwrap();
    console
        .add_user(&globex, "kim@globex.test", MemberRole::Member)
        .await;
    let mut outsider = Browser::new(&console.url);
    outsider.sign_in("kim@globex.test").await;
    assert_eq!(outsider.get(&format!("/contacts/{met}")).await.status, 404);
    assert_eq!(
        outsider
            .get(&format!("/members/{member_email}"))
            .await
            .status,
        404
    );
    let empty = outsider.get("/companies").await;
    assert!(empty.body.contains("No companies yet"));
    console.stop();
}

/// Every page of an API list.
async fn all_pages(api: &api_support::Api, path: &str, field: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit=50&cursor={c}"),
            None => format!("{path}{separator}limit=50"),
        };
        let page = api.get(&url).await.expect(200);
        items.extend(page[field].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn took_part(activity: &Value, member: &str) -> bool {
    activity["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["member"] == member)
}

#[tokio::test]
async fn a_members_token_reads_only_what_the_policy_lets_them() {
    for backend in BACKENDS {
        api_case(backend).await;
    }
}

async fn api_case(backend: Backend) {
    let Some(store) = api_support::TestStore::open(backend).await else {
        return;
    };
    let emulated = api_support::emulator(5, 20).await;
    let member_email = api_support::ordinary_user(&emulated);
    let server = api_support::Server::start(store, Some(&emulated), &member_email).await;
    let admin = &server.admin;
    admin
        .post(
            "/connection",
            &json!({ "key_file": api_support::key_file(&emulated), "admin_email": emulated.info.admin_email }),
        )
        .await
        .expect(200);
    admin.post_empty("/delegation/rebuild").await.expect(200);
    admin
        .put("/capture", &json!({ "enabled": true }))
        .await
        .expect(200);
    server.run_jobs().await;
    let tenant = &server.acme;
    let own = server
        .store()
        .member_by_address(tenant, &member_email)
        .await
        .unwrap()
        .unwrap();

    // Admin: everything; participants name their member, activities their mailboxes.
    let everything = all_pages(admin, "/activities", "activities").await;
    assert!(!everything.is_empty());
    assert!(everything.iter().all(|a| a["withheld"] == false));
    assert!(everything.iter().any(|a| took_part(a, &member_email)));
    assert!(everything.iter().any(|a| !took_part(a, &member_email)));
    for activity in &everything {
        let captured = activity["captured_by"].as_array().unwrap();
        assert!(!captured.is_empty());
        assert!(
            captured
                .iter()
                .all(|c| c["provider"] == "google" && c["mailbox"].is_string())
        );
        assert!(
            activity["sightings"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["provider"] == "google")
        );
    }
    let participant = everything
        .iter()
        .flat_map(|a| a["participants"].as_array().unwrap().clone())
        .find(|p| p["member"] == member_email.as_str())
        .unwrap();
    assert!(participant["address"].is_string());

    // The member, "own only" (the default): what they took part in, no more.
    let member = &server.member;
    let theirs = all_pages(member, "/activities", "activities").await;
    let expected: Vec<&Value> = everything
        .iter()
        .filter(|a| took_part(a, &member_email))
        .collect();
    assert_eq!(theirs.iter().collect::<Vec<_>>(), expected);
    let relationships = all_pages(member, "/relationships", "relationships").await;
    assert!(!relationships.is_empty());
    assert!(
        relationships
            .iter()
            .all(|r| r["member"] == member_email.as_str())
    );
    let contacts = all_pages(member, "/contacts", "contacts").await;
    let all_contacts = all_pages(admin, "/contacts", "contacts").await;
    assert!(!contacts.is_empty() && contacts.len() < all_contacts.len());
    let scoped = server
        .store()
        .contacts_page_scoped(
            tenant,
            &ContactFilter::default(),
            None,
            10_000,
            ReadScope::Own(own.id),
        )
        .await
        .unwrap();
    let addresses: Vec<&str> = contacts
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = scoped.contacts.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(addresses, expected);
    let companies = all_pages(member, "/companies", "companies").await;
    assert!(companies.len() <= all_pages(admin, "/companies", "companies").await.len());
    // Asking for someone else's activities finds nothing rather than being refused.
    let other = everything
        .iter()
        .find(|a| !took_part(a, &member_email))
        .unwrap();
    let stranger = other["participants"][0]["address"].as_str().unwrap();
    let asked = member
        .get(&format!("/activities?contact={stranger}"))
        .await
        .expect(200);
    assert!(
        asked["activities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| took_part(a, &member_email))
    );

    // "organization", set through the API's policy: every activity, others' withheld.
    let mut policy = admin.get("/policy").await.expect(200);
    assert_eq!(policy["member_visibility"], "own");
    policy["member_visibility"] = json!("organization");
    admin.put("/policy", &policy).await.expect(200);
    let open = all_pages(member, "/activities", "activities").await;
    assert_eq!(open.len(), everything.len());
    for activity in &open {
        let mine = took_part(activity, &member_email);
        assert_eq!(activity["withheld"], !mine);
        if !mine {
            assert!(activity["subject"].is_null());
            assert!(activity["sightings"].as_array().unwrap().is_empty());
            assert!(activity["captured_by"].as_array().unwrap().is_empty());
            assert!(!activity["participants"].as_array().unwrap().is_empty());
        }
    }
    assert_eq!(
        all_pages(member, "/contacts", "contacts").await.len(),
        all_contacts.len()
    );

    // Another tenant's token sees none of it.
    let outside = server.other_tenant.get("/activities").await.expect(200);
    assert!(outside["activities"].as_array().unwrap().is_empty());
    let unscoped = server
        .store()
        .activities_page_scoped(
            &server.globex,
            &ActivityFilter::default(),
            None,
            10,
            ReadScope::Own(own.id),
        )
        .await
        .unwrap();
    assert!(unscoped.activities.is_empty());
    server.stop().await;
}
