//! The REST API over real HTTP on loopback, against the Google emulator and a real
//! store (SQLite, and PostgreSQL when reachable): every endpoint, authorization by role
//! and tenant, bad input, and the OpenAPI document against the router.

mod api_support;

use api_support::{
    ACME_ADMIN, Backend, GLOBEX_ADMIN, MAX_BODY_BYTES, Server, SmtpSink, TestStore, emulator,
    key_file, ordinary_user,
};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tributary_server::openapi::OPERATIONS;

/// Every page of a cursor-paged list, following `next_cursor`.
async fn all_pages(api: &api_support::Api, path: &str, field: &str, limit: usize) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit={limit}&cursor={c}"),
            None => format!("{path}{separator}limit={limit}"),
        };
        let page = api.get(&url).await.expect(200);
        let batch = page[field].as_array().unwrap().clone();
        assert!(batch.len() <= limit, "a page holds at most `limit` items");
        items.extend(batch);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("paging did not end");
}

async fn admin_flow(backend: Backend) {
    let Some(store) = TestStore::open(backend).await else {
        return;
    };
    let emulated = emulator(6, 12).await;
    let member_email = ordinary_user(&emulated);
    let smtp = SmtpSink::start().await;
    let server =
        Server::start_with(store, Some(&emulated), &member_email, Some(smtp.config())).await;
    let api = &server.admin;
    let key = key_file(&emulated);
    let private_key = key["private_key"].as_str().unwrap().to_owned();
    let admin_email = emulated.info.admin_email.clone();

    // Connection: nothing yet; a key without `private_key` is refused, naming it, and
    // stores nothing; the right one answers what to paste into Google, never the key.
    api.get("/connection").await.expect_error(404, "not_found");
    let mut incomplete = key.clone();
    incomplete.as_object_mut().unwrap().remove("private_key");
    let refused = api
        .post(
            "/connection",
            &json!({ "key_file": incomplete.to_string(), "admin_email": admin_email }),
        )
        .await;
    refused.expect_error(422, "invalid_key_file");
    assert_eq!(refused.body["error"]["field"], "private_key");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("private_key")
    );
    api.get("/connection").await.expect_error(404, "not_found");
    api.post(
        "/connection",
        &json!({ "key_file": key, "admin_email": "not an address" }),
    )
    .await
    .expect_error(422, "invalid_admin_email");
    api.get("/connection").await.expect_error(404, "not_found");
    let setup = api
        .post(
            "/connection",
            &json!({ "key_file": key.to_string(), "admin_email": admin_email }),
        )
        .await
        .expect(200);
    assert_eq!(setup["client_id"], key["client_id"]);
    assert_eq!(setup["admin_email"], admin_email.to_lowercase());
    let scopes: Vec<&str> = setup["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        scopes.contains(&"https://www.googleapis.com/auth/gmail.readonly"),
        "{scopes:?}"
    );
    assert_eq!(setup["scopes_csv"], scopes.join(","));
    assert_eq!(api.get("/connection").await.expect(200), setup);
    let check = api.post_empty("/connection/test").await.expect(200);
    assert_eq!(check["ok"], true, "{check}");

    // Capture starts off; the policy validates before it saves.
    assert_eq!(
        api.get("/capture").await.expect(200),
        json!({ "enabled": false })
    );
    let mut policy = api.get("/policy").await.expect(200);
    assert_eq!(policy["sync_inbox"], true);
    policy["backfill_days"] = json!(0);
    api.put("/policy", &policy)
        .await
        .expect_error(422, "invalid_policy");
    policy["backfill_days"] = json!(3650);
    policy["blocklist"] = json!(["lawfirm.example"]);
    assert_eq!(api.put("/policy", &policy).await.expect(200), policy);
    assert_eq!(api.get("/policy").await.expect(200), policy);

    // Delegation: no result, then a rebuild that links the directory's users.
    assert_eq!(
        api.get("/delegation").await.expect(200),
        json!({ "last_result": null })
    );
    let report = api.post_empty("/delegation/rebuild").await.expect(200);
    let matched = report["matched"].as_array().unwrap().len();
    assert!(matched >= 2, "{report}");
    assert_eq!(
        api.get("/delegation").await.expect(200)["last_result"],
        report
    );
    let links = api.get("/links").await.expect(200)["links"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        links.len(),
        server.store().links(&server.acme).await.unwrap().len()
    );
    assert!(!links.is_empty());

    // Capture on: the admins are mailed, links sync, and the list shows them idle with
    // their summary and counts.
    let enabled = api
        .put("/capture", &json!({ "enabled": true }))
        .await
        .expect(200);
    assert_eq!(enabled["enabled"], true);
    assert_eq!(
        enabled["notification"],
        json!({ "delivery": "sent", "recipients": [ACME_ADMIN] })
    );
    let mails = smtp.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].0, [ACME_ADMIN]);
    assert!(mails[0].1.contains("capture is on"), "{}", mails[0].1);
    // Already on: no second notice.
    assert_eq!(
        api.put("/capture", &json!({ "enabled": true }))
            .await
            .expect(200),
        json!({ "enabled": true })
    );
    assert_eq!(smtp.mails.lock().unwrap().len(), 1);
    assert_eq!(
        api.get("/capture").await.expect(200),
        json!({ "enabled": true })
    );
    server.run_jobs().await;
    let links = api.get("/links").await.expect(200)["links"]
        .as_array()
        .unwrap()
        .clone();
    let idle: Vec<&Value> = links.iter().filter(|l| l["status"] == "idle").collect();
    assert!(!idle.is_empty(), "{links:?}");
    for link in &idle {
        assert!(link["last_success_ms"].is_i64(), "{link}");
        assert!(link["last_summary"].is_object(), "{link}");
        assert!(link["fix_hint"].is_null(), "{link}");
    }
    let captured: u64 = links
        .iter()
        .map(|l| l["counts"]["captured"].as_u64().unwrap())
        .sum();
    assert!(captured > 0, "{links:?}");
    let filtered = api.get("/links?status=idle").await.expect(200);
    assert_eq!(filtered["links"].as_array().unwrap().len(), idle.len());
    api.get("/links?status=sleepy")
        .await
        .expect_error(400, "invalid_status");

    // Link actions, one and many; an id not in the tenant is 404 and changes nothing.
    let first = idle[0]["id"].as_i64().unwrap();
    let second = idle.get(1).map(|l| l["id"].as_i64().unwrap());
    assert_eq!(
        api.post_empty(&format!("/links/{first}/unlink"))
            .await
            .expect(200)["changed"],
        1
    );
    let unlinked = api.get("/links?status=unlinked").await.expect(200);
    assert!(
        unlinked["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == first)
    );
    api.post("/links/start", &json!({ "links": [first, 99_999_999] }))
        .await
        .expect_error(404, "unknown_link");
    assert_eq!(
        api.get("/links?status=unlinked").await.expect(200)["links"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.post("/links/start", &json!({ "links": [first] }))
            .await
            .expect(200)["changed"],
        1
    );
    assert_eq!(
        api.post_empty(&format!("/links/{first}/start"))
            .await
            .expect(200)["changed"],
        0
    );
    if let Some(second) = second {
        let retried = api
            .post("/links/retry", &json!({ "links": [second] }))
            .await
            .expect(200);
        assert_eq!(retried, json!({ "requested": 1, "changed": 1 }));
        assert_eq!(
            api.post("/links/unlink", &json!({ "links": [second] }))
                .await
                .expect(200)["changed"],
            1
        );
        assert_eq!(
            api.post_empty(&format!("/links/{second}/retry"))
                .await
                .expect(200)["changed"],
            0
        );
        assert_eq!(
            api.post_empty(&format!("/links/{second}/start"))
                .await
                .expect(200)["changed"],
            1
        );
    }
    api.post("/links/retry", &json!({ "links": [] }))
        .await
        .expect_error(422, "invalid_body");
    server.run_jobs().await;

    // Members: list, create, conflict, update, labels.
    let members = api.get("/members").await.expect(200)["members"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        members.len(),
        server.store().members(&server.acme).await.unwrap().len()
    );
    let created = api
        .post(
            "/members",
            &json!({ "email": "New.Person@Example.COM", "aliases": ["np@example.com"] }),
        )
        .await
        .expect(201);
    assert_eq!(created["email"], "new.person@example.com");
    assert!(
        created.get("role").is_none(),
        "members have no role: accounts do"
    );
    assert_eq!(created["aliases"], json!(["np@example.com"]));
    api.post(
        "/members",
        &json!({ "email": "someone@example.com", "aliases": ["np@example.com"] }),
    )
    .await
    .expect_error(409, "address_taken");
    api.post("/members", &json!({ "email": "nobody" }))
        .await
        .expect_error(422, "invalid_email");
    let id = created["id"].as_i64().unwrap();
    let updated = api
        .patch(&format!("/members/{id}"), &json!({ "active": false }))
        .await
        .expect(200);
    assert_eq!(updated["active"], json!(false));
    api.patch("/members/99999999", &json!({ "active": true }))
        .await
        .expect_error(404, "unknown_member");
    let labels = api
        .put(
            &format!("/members/{id}/labels"),
            // This member has no mailbox, so only system labels every mailbox has can
            // be chosen (tests/bounds.rs checks labels against a real mailbox).
            &json!({ "labels": ["STARRED", "IMPORTANT", "starred"] }),
        )
        .await
        .expect(200);
    assert_eq!(labels["labels"], json!(["IMPORTANT", "STARRED"]));
    assert_eq!(labels["policy_labels"], json!(["INBOX", "SENT"]));
    assert_eq!(
        api.get(&format!("/members/{id}/labels")).await.expect(200),
        labels
    );
    api.put(
        &format!("/members/{id}/labels"),
        &json!({ "labels": ["  "] }),
    )
    .await
    .expect_error(422, "invalid_label");

    // CSV import: all rows or nothing.
    let before = server.store().members(&server.acme).await.unwrap();
    let bad = "email,aliases\nok@example.com,\nbroken,\n";
    let refused = api
        .raw(Method::POST, "/members/import", "text/csv", bad.as_bytes())
        .await;
    refused.expect_error(422, "invalid_csv");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3")
    );
    assert_eq!(server.store().members(&server.acme).await.unwrap(), before);
    let csv = "email,aliases\nann@example.com,a@example.com;ann.b@example.com\nbob@example.com,\nnew.person@example.com,np2@example.com\n";
    let imported = api
        .raw(
            Method::POST,
            "/members/import",
            "text/csv; charset=utf-8",
            csv.as_bytes(),
        )
        .await
        .expect(200);
    assert_eq!(
        imported,
        json!({ "created": 2, "updated": 1, "unchanged": 0 })
    );
    let after = server.store().members(&server.acme).await.unwrap();
    let ann = after.iter().find(|m| m.email == "ann@example.com").unwrap();
    assert_eq!(ann.aliases, ["a@example.com", "ann.b@example.com"]);
    assert_eq!(after.len(), before.len() + 2);

    // Activities: every page once, newest first, and the filters hold.
    let total = server.store().count_activities(&server.acme).await.unwrap();
    assert!(total > 0);
    let activities = all_pages(api, "/activities", "activities", 7).await;
    assert_eq!(activities.len() as i64, total);
    let ids: HashSet<i64> = activities
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), activities.len(), "no activity twice");
    let times: Vec<i64> = activities
        .iter()
        .map(|a| a["time_ms"].as_i64().unwrap_or(0))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let stored = server.store().activities(&server.acme).await.unwrap();
    let by_id: BTreeMap<i64, &tributary_store::ActivityView> =
        stored.iter().map(|a| (a.id, a)).collect();
    for activity in &activities {
        let truth = by_id[&activity["id"].as_i64().unwrap()];
        assert_eq!(activity["dedupe_key"], truth.dedupe_key);
        assert_eq!(
            activity["participants"].as_array().unwrap().len(),
            truth.participants.len()
        );
        assert_eq!(
            activity["sightings"].as_array().unwrap().len(),
            truth.sightings.len()
        );
    }
    let member = &member_email;
    let mine = all_pages(
        api,
        &format!("/activities?member={member}"),
        "activities",
        50,
    )
    .await;
    let expected_mine = stored
        .iter()
        .filter(|a| {
            a.participants
                .iter()
                .any(|p| p.address == *member && p.kind == "member")
                || a.sightings.iter().any(|(mailbox, _, _)| mailbox == member)
        })
        .count();
    assert_eq!(mine.len(), expected_mine);
    assert!(!mine.is_empty());
    let contact = stored
        .iter()
        .flat_map(|a| a.participants.iter())
        .find(|p| p.kind == "external")
        .expect("an external participant")
        .address
        .clone();
    let with_contact = all_pages(
        api,
        &format!("/activities?contact={contact}"),
        "activities",
        50,
    )
    .await;
    let expected_contact = stored
        .iter()
        .filter(|a| a.participants.iter().any(|p| p.address == contact))
        .count();
    assert_eq!(with_contact.len(), expected_contact);
    let contacts = server.store().contacts(&server.acme).await.unwrap();
    if let Some(company) = contacts.iter().find_map(|c| c.company.clone()) {
        let at_company: BTreeSet<&str> = contacts
            .iter()
            .filter(|c| c.company.as_deref() == Some(company.as_str()))
            .map(|c| c.address.as_str())
            .collect();
        let expected = stored
            .iter()
            .filter(|a| {
                a.participants
                    .iter()
                    .any(|p| at_company.contains(p.address.as_str()))
            })
            .count();
        let found = all_pages(
            api,
            &format!("/activities?company={company}"),
            "activities",
            50,
        )
        .await;
        assert_eq!(found.len(), expected);
    }
    let middle = times[times.len() / 2];
    let since = all_pages(
        api,
        &format!("/activities?since={middle}"),
        "activities",
        50,
    )
    .await;
    assert_eq!(
        since.len(),
        stored
            .iter()
            .filter(|a| a.time_ms.is_some_and(|t| t >= middle))
            .count()
    );
    let until = all_pages(
        api,
        &format!("/activities?until={middle}"),
        "activities",
        50,
    )
    .await;
    assert_eq!(
        until.len(),
        stored
            .iter()
            .filter(|a| a.time_ms.is_some_and(|t| t < middle))
            .count()
    );
    api.get("/activities?cursor=%21%21")
        .await
        .expect_error(400, "invalid_cursor");
    api.get("/activities?since=yesterday")
        .await
        .expect_error(400, "invalid_query");
    let nobody = api
        .get("/activities?member=nobody@nowhere.test")
        .await
        .expect(200);
    assert_eq!(nobody["activities"], json!([]));

    // Contacts, companies, relationships: every one once, in pages.
    let paged_contacts = all_pages(api, "/contacts", "contacts", 5).await;
    let addresses: BTreeSet<String> = paged_contacts
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paged_contacts.len(), contacts.len());
    assert_eq!(
        addresses,
        contacts.iter().map(|c| c.address.clone()).collect()
    );
    let companies = server.store().companies(&server.acme).await.unwrap();
    let paged_companies = all_pages(api, "/companies", "companies", 3).await;
    assert_eq!(paged_companies.len(), companies.len());
    if let Some(company) = companies.first() {
        let found = api
            .get(&format!("/companies?q={}", company.domain))
            .await
            .expect(200);
        assert!(
            found["companies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["domain"] == company.domain && c["contacts"] == company.contacts)
        );
        let at = api
            .get(&format!("/contacts?company={}", company.domain))
            .await
            .expect(200);
        assert_eq!(
            at["contacts"].as_array().unwrap().len() as i64,
            company.contacts
        );
    }
    let relationships = server.store().relationships(&server.acme).await.unwrap();
    let paged_relationships = all_pages(api, "/relationships", "relationships", 4).await;
    assert_eq!(paged_relationships.len(), relationships.len());
    let of_member = all_pages(
        api,
        &format!("/relationships?member={member}"),
        "relationships",
        100,
    )
    .await;
    assert_eq!(
        of_member.len(),
        relationships.iter().filter(|r| r.member == *member).count()
    );

    // Pages follow the documented order (byte order of the address; member then
    // contact), and the filters hold across pages.
    let mut by_address: Vec<&str> = contacts.iter().map(|c| c.address.as_str()).collect();
    by_address.sort_unstable();
    let paged: Vec<&str> = paged_contacts
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(paged, by_address);
    let mut domains: Vec<&str> = companies.iter().map(|c| c.domain.as_str()).collect();
    domains.sort_unstable();
    let paged: Vec<&str> = paged_companies
        .iter()
        .map(|c| c["domain"].as_str().unwrap())
        .collect();
    assert_eq!(paged, domains);
    let mut pairs: Vec<(&str, &str)> = relationships
        .iter()
        .map(|r| (r.member.as_str(), r.contact.as_str()))
        .collect();
    pairs.sort_unstable();
    let paged: Vec<(&str, &str)> = paged_relationships
        .iter()
        .map(|r| {
            (
                r["member"].as_str().unwrap(),
                r["contact"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(paged, pairs);
    let with_a = all_pages(api, "/contacts?q=A", "contacts", 2).await;
    assert_eq!(
        with_a.len(),
        contacts
            .iter()
            .filter(|c| c.address.contains('a')
                || c.company.as_deref().is_some_and(|d| d.contains('a')))
            .count()
    );
    if let Some(first) = relationships.first() {
        let of_contact = all_pages(
            api,
            &format!("/relationships?contact={}", first.contact),
            "relationships",
            1,
        )
        .await;
        assert_eq!(
            of_contact.len(),
            relationships
                .iter()
                .filter(|r| r.contact == first.contact)
                .count()
        );
    }
    // A relationship cursor is a (member, contact) pair: other text was not made here.
    api.get("/relationships?cursor=bm8tc2VwYXJhdG9y")
        .await
        .expect_error(400, "invalid_cursor");
    api.get("/contacts?cursor=%21%21")
        .await
        .expect_error(400, "invalid_cursor");

    // Audit: what this test did is there.
    let events = api.get("/audit?limit=1000").await.expect(200)["events"]
        .as_array()
        .unwrap()
        .clone();
    let actions: BTreeSet<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "connection.google.key_uploaded",
        "connection.google.tested",
        "policy.set",
        "capture.set",
        "delegation.rebuilt",
        "member.created",
        "member.active",
        "member.labels",
        "member.imported",
    ] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| e["actor"].as_str().unwrap().starts_with(ACME_ADMIN))
    );
    assert_eq!(
        api.get("/audit?limit=2").await.expect(200)["events"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Capture off.
    assert_eq!(
        api.put("/capture", &json!({ "enabled": false }))
            .await
            .expect(200),
        json!({ "enabled": false })
    );

    // The private key never left the server.
    let pem_body: String = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for body in api.seen() {
        assert!(
            !body.contains("PRIVATE KEY"),
            "a response held the key: {body}"
        );
        assert!(
            !body.contains(&pem_body[..40]),
            "a response held the key: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_works_on_sqlite() {
    admin_flow(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_works_on_postgres() {
    admin_flow(Backend::Postgres).await;
}

/// A member's token, another tenant's token, no token, a revoked token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_reach_only_their_tenant_and_role() {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let emulated = emulator(4, 4).await;
    let member_email = ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member_email).await;
    let admin = &server.admin;
    admin
        .post(
            "/connection",
            &json!({ "key_file": key_file(&emulated), "admin_email": emulated.info.admin_email }),
        )
        .await
        .expect(200);
    admin.post_empty("/delegation/rebuild").await.expect(200);
    let links = admin.get("/links").await.expect(200)["links"]
        .as_array()
        .unwrap()
        .clone();
    assert!(links.len() >= 2);
    let members = server.store().members(&server.acme).await.unwrap();
    let own = members.iter().find(|m| m.email == member_email).unwrap();
    let other = members.iter().find(|m| m.email != member_email).unwrap();
    let other_link = links
        .iter()
        .find(|l| l["member"] != member_email.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();

    // No token, a malformed header, an unknown token: 401 everywhere but the document.
    server
        .anonymous
        .get("/links")
        .await
        .expect_error(401, "unauthorized");
    server
        .anonymous
        .with_token("trb_not-a-real-token")
        .get("/links")
        .await
        .expect_error(401, "unauthorized");
    server.anonymous.get("/openapi.json").await.expect(200);

    // The member: its own links and labels only; every admin operation is 403.
    let member = &server.member;
    let visible = member.get("/links").await.expect(200)["links"]
        .as_array()
        .unwrap()
        .clone();
    assert!(!visible.is_empty());
    assert!(
        visible.iter().all(|l| l["member"] == member_email.as_str()),
        "{visible:?}"
    );
    member
        .get(&format!("/members/{}/labels", own.id.0))
        .await
        .expect(200);
    let set = member
        .put(
            &format!("/members/{}/labels", own.id.0),
            &json!({ "labels": ["Label_3"] }),
        )
        .await
        .expect(200);
    assert_eq!(set["labels"], json!(["Label_3"]));
    member
        .get(&format!("/members/{}/labels", other.id.0))
        .await
        .expect_error(403, "forbidden");
    member
        .put(
            &format!("/members/{}/labels", other.id.0),
            &json!({ "labels": ["X"] }),
        )
        .await
        .expect_error(403, "forbidden");
    for op in OPERATIONS.iter().filter(|op| !op.member_allowed) {
        let path = op.path.replace("{id}", &other_link.to_string());
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let reply = match op.body {
            tributary_server::openapi::Body::Json(_) => {
                member
                    .json(method, &path, &json!({ "links": [other_link] }))
                    .await
            }
            tributary_server::openapi::Body::Csv => {
                member
                    .raw(method, &path, "text/csv", b"email,role,aliases\n")
                    .await
            }
            tributary_server::openapi::Body::None => member.send(method, &path, None).await,
        };
        assert_eq!(
            reply.status, 403,
            "{} {} answered a member with {}",
            op.method, op.path, reply.text
        );
        assert_eq!(reply.code(), "forbidden");
    }
    assert_eq!(
        server
            .store()
            .links(&server.acme)
            .await
            .unwrap()
            .iter()
            .filter(|l| l.status == tributary_store::LinkStatus::Unlinked)
            .count(),
        0
    );

    // Another tenant: acme's ids are not found, its lists are empty.
    let globex = &server.other_tenant;
    assert_eq!(globex.get("/links").await.expect(200)["links"], json!([]));
    assert_eq!(
        globex.get("/members").await.expect(200)["members"],
        json!([])
    );
    globex
        .get("/connection")
        .await
        .expect_error(404, "not_found");
    globex
        .post_empty(&format!("/links/{other_link}/unlink"))
        .await
        .expect_error(404, "unknown_link");
    globex
        .post("/links/start", &json!({ "links": [other_link] }))
        .await
        .expect_error(404, "unknown_link");
    globex
        .patch(
            &format!("/members/{}", own.id.0),
            &json!({ "active": false }),
        )
        .await
        .expect_error(404, "unknown_member");
    globex
        .get(&format!("/members/{}/labels", own.id.0))
        .await
        .expect_error(404, "unknown_member");
    globex
        .put(
            &format!("/members/{}/labels", own.id.0),
            &json!({ "labels": [] }),
        )
        .await
        .expect_error(404, "unknown_member");
    assert_eq!(
        globex.get("/activities").await.expect(200)["activities"],
        json!([])
    );
    let globex_audit = globex.get("/audit").await.expect(200).to_string();
    assert!(
        !globex_audit.contains(ACME_ADMIN) && !globex_audit.contains(&member_email),
        "{globex_audit}"
    );
    assert!(globex_audit.contains(GLOBEX_ADMIN), "{globex_audit}");
    assert_eq!(server.store().members(&server.acme).await.unwrap(), members);

    // Tokens: created with the secret once, listed without it, revoked for good.
    let created = admin
        .post("/tokens", &json!({ "name": "crm", "user": member_email }))
        .await
        .expect(201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("trb_") && secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["role"], "member");
    let listed = admin.get("/tokens").await.expect(200);
    assert!(!listed.to_string().contains(&secret));
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 3);
    let crm = admin.with_token(&secret);
    crm.get("/links").await.expect(200);
    crm.get("/members").await.expect_error(403, "forbidden");
    assert!(
        admin.get("/tokens").await.expect(200)["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "crm" && t["last_used_ms"].is_i64())
    );
    globex
        .delete(&format!("/tokens/{}", created["id"]))
        .await
        .expect_error(404, "unknown_token");
    crm.get("/links").await.expect(200);
    assert_eq!(
        admin
            .delete(&format!("/tokens/{}", created["id"]))
            .await
            .status,
        204
    );
    crm.get("/links").await.expect_error(401, "unauthorized");
    admin
        .post(
            "/tokens",
            &json!({ "name": "x", "user": "root@globex-admin.test" }),
        )
        .await
        .expect_error(404, "unknown_user");
    admin
        .post("/tokens", &json!({ "name": " " }))
        .await
        .expect_error(422, "invalid_token_name");
    // Secrets appear only in the creation answer.
    let with_secret = admin.seen().iter().filter(|b| b.contains(&secret)).count();
    assert_eq!(with_secret, 1);
    server.stop().await;
}

/// Malformed, mistyped, oversized: 4xx with a stable code, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let emulated = emulator(3, 2).await;
    let server = Server::start(store, Some(&emulated), &ordinary_user(&emulated)).await;
    let api = &server.admin;
    let admin_email = emulated.info.admin_email.clone();

    api.raw(
        Method::POST,
        "/connection",
        "application/json",
        b"{\"key_file\": ",
    )
    .await
    .expect_error(400, "malformed_json");
    api.raw(Method::POST, "/connection", "text/plain", b"{}")
        .await
        .expect_error(415, "unsupported_media_type");
    api.post(
        "/connection",
        &json!({ "key_file": key_file(&emulated), "admin_email": admin_email, "extra": 1 }),
    )
    .await
    .expect_error(422, "invalid_body");
    api.post(
        "/connection",
        &json!({ "key_file": 42, "admin_email": admin_email }),
    )
    .await
    .expect_error(422, "invalid_key_file");
    api.post(
        "/connection",
        &json!({ "key_file": "{\"type\": \"service_account\"", "admin_email": admin_email }),
    )
    .await
    .expect_error(422, "invalid_key_file");
    // An upload over the limit: the key padded with a huge field.
    let mut padded = key_file(&emulated);
    padded["padding"] = json!("x".repeat(MAX_BODY_BYTES * 2));
    api.post(
        "/connection",
        &json!({ "key_file": padded, "admin_email": admin_email }),
    )
    .await
    .expect_error(413, "payload_too_large");
    let huge_csv = format!(
        "email,role,aliases\n{}",
        "a@example.com,member,\n".repeat(MAX_BODY_BYTES / 10)
    );
    api.raw(
        Method::POST,
        "/members/import",
        "text/csv",
        huge_csv.as_bytes(),
    )
    .await
    .expect_error(413, "payload_too_large");
    assert!(
        server
            .store()
            .members(&server.acme)
            .await
            .unwrap()
            .is_empty()
    );
    api.get("/connection").await.expect_error(404, "not_found");
    assert!(
        server
            .runtime
            .google_setup(&server.acme)
            .await
            .unwrap()
            .is_none()
    );

    // Before a connection exists, what needs one says so.
    api.put("/capture", &json!({ "enabled": true }))
        .await
        .expect_error(409, "not_connected");
    api.post_empty("/connection/test")
        .await
        .expect_error(409, "not_connected");
    api.post_empty("/delegation/rebuild")
        .await
        .expect_error(409, "not_connected");
    // (The policy needs no connection: it is the tenant's, see console_control.rs.)
    api.put("/capture", &json!({ "enabled": "yes" }))
        .await
        .expect_error(422, "invalid_body");
    api.put("/policy", &json!({ "backfil_days": 30 }))
        .await
        .expect_error(422, "invalid_body");
    api.patch("/members/abc", &json!({}))
        .await
        .expect_error(404, "not_found");
    api.get("/links?unknown=1")
        .await
        .expect_error(400, "invalid_query");
    api.get("/nothing-here").await;
    let audit = server
        .store()
        .audit_events(&server.acme, 100)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .all(|e| e.action == "account.created" || e.action == "api_token.created"),
        "{audit:?}"
    );
    server.stop().await;
}

/// The OpenAPI document is well formed, lists exactly the routes the router serves,
/// and each documented route answers (401 without a token, not 404 or 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_router() {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let server = Server::start(store, None, "someone@acme.test").await;
    let document = server.anonymous.get("/openapi.json").await.expect(200);
    assert_eq!(document["openapi"], "3.1.0");

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = tributary_server::api::routes()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, routed, "documented vs routed");

    // Every $ref resolves, every operation id is unique and has a success response.
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.strip_prefix('#').expect("local reference");
        assert!(
            document.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
    let mut ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &document["paths"][path][method.to_lowercase()];
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_owned()),
            "{method} {path}"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} has no success"
        );
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let templated: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        assert_eq!(
            params, templated,
            "{method} {path} documents its path parameters"
        );
    }

    for (method, path) in &routed {
        let url = path.replace("{id}", "1");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = server.anonymous.send(method.clone(), &url, None).await;
        if path == "/openapi.json" {
            assert_eq!(reply.status, 200);
        } else {
            reply.expect_error(401, "unauthorized");
        }
    }
    validate_with_openapi_spec_validator(&document);

    // And a route that is not there is not served.
    server
        .anonymous
        .get("/no-such-route")
        .await
        .expect_error(404, "not_found");
    server
        .admin
        .delete("/links")
        .await
        .expect_error(405, "method_not_allowed");
    server.stop().await;
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                if key == "$ref" {
                    refs.push(item.as_str().unwrap().to_owned());
                } else {
                    collect_refs(item, refs);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

/// Validates the document against the OpenAPI 3.1 schema with the Python
/// `openapi-spec-validator`: the pinned one in the project's `.venv` (scripts/test.sh
/// installs it from tests/conformance/requirements.txt), else a system one; without
/// either the test says it skipped this part.
fn validate_with_openapi_spec_validator(document: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec(document).unwrap()).unwrap();
    let script = "import json, sys\n\
        try:\n    from openapi_spec_validator import validate\n\
        except ImportError:\n    sys.exit(3)\n\
        validate(json.load(open(sys.argv[1])))\n";
    let venv_python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let python = if std::path::Path::new(venv_python).exists() {
        venv_python
    } else {
        "python3"
    };
    let outcome = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output();
    let Ok(output) = outcome else {
        eprintln!("skipped: python3 is not installed, the OpenAPI schema check did not run");
        return;
    };
    if output.status.code() == Some(3) {
        eprintln!("skipped: openapi-spec-validator is not installed");
        return;
    }
    assert!(
        output.status.success(),
        "the OpenAPI document is invalid: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A link Google refuses shows Google's words and what to do; *Retry* recovers it once
/// the cause is fixed; *Test connection* reports a removed delegation the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_errors_show_the_providers_words_and_a_fix() {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let emulated = emulator(4, 4).await;
    let control = tributary_emulator::testing::ControlClient::new(&emulated.info.control_url);
    let member_email = ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member_email).await;
    let api = &server.admin;
    api.post(
        "/connection",
        &json!({ "key_file": key_file(&emulated), "admin_email": emulated.info.admin_email }),
    )
    .await
    .expect(200);
    api.post_empty("/delegation/rebuild").await.expect(200);
    control
        .post(
            &format!("/users/{member_email}/mail-service"),
            json!({ "enabled": false }),
        )
        .await;
    api.put("/capture", &json!({ "enabled": true }))
        .await
        .expect(200);
    server.run_jobs().await;

    let failing = api.get("/links?status=unauthorized").await.expect(200)["links"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(failing.len(), 1, "{failing:?}");
    let link = &failing[0];
    assert_eq!(link["mailbox"], member_email.as_str());
    assert!(
        link["provider_message"]
            .as_str()
            .unwrap()
            .contains("Mail service not enabled"),
        "{link}"
    );
    // The hint is the cause's (Gmail off for the user), not the status's catch-all.
    assert_eq!(link["cause"], "gmail_not_enabled", "{link}");
    assert_eq!(
        link["fix_hint"],
        tributary_core::FailureCause::GmailNotEnabled.hint(tributary_core::Audience::Admin)
    );
    // The member sees the same status about its own mailbox, with its own part to play.
    let own = server.member.get("/links").await.expect(200);
    assert_eq!(own["links"][0]["status"], "unauthorized");
    assert_eq!(
        own["links"][0]["fix_hint"],
        tributary_core::FailureCause::GmailNotEnabled.hint(tributary_core::Audience::Member)
    );

    control
        .post(
            &format!("/users/{member_email}/mail-service"),
            json!({ "enabled": true }),
        )
        .await;
    let id = link["id"].as_i64().unwrap();
    assert_eq!(
        api.post_empty(&format!("/links/{id}/retry"))
            .await
            .expect(200)["changed"],
        1
    );
    server.run_jobs().await;
    let recovered = api.get("/links?status=idle").await.expect(200);
    assert!(
        recovered["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == id && l["fix_hint"].is_null() && l["provider_message"].is_null()),
        "{recovered}"
    );

    control.put("/delegation", json!({ "scopes": [] })).await;
    let check = api.post_empty("/connection/test").await.expect(200);
    assert_eq!(check["ok"], false, "{check}");
    assert_eq!(check["status"], "unauthorized");
    assert_eq!(
        check["hint"],
        tributary_core::FailureCause::ScopeNotDelegated.hint(tributary_core::Audience::Admin)
    );
    // A rebuild Google refuses is a 502 with Google's words.
    api.post_empty("/delegation/rebuild")
        .await
        .expect_error(502, "provider_error");
    server.stop().await;
}

/// The user labels (id → name) of `mailbox` as the emulator holds them.
fn emulated_user_labels(
    emulated: &tributary_emulator::server::RunningEmulator,
    mailbox: &str,
) -> BTreeMap<String, String> {
    let org = emulated.state.org();
    org.mailboxes[mailbox]
        .labels
        .values()
        .filter(|l| l.kind == tributary_emulator::model::LabelKind::User)
        .map(|l| (l.id.clone(), l.name.clone()))
        .collect()
}

/// What members may pick is their mailbox's own labels (Gmail `labels.list`), by name:
/// exactly the user labels the emulated mailbox has, one made just now among them, with
/// chosen ones marked and a chosen label the mailbox lacks kept; a member reads only its
/// own, another tenant none; a refusal is a 502 with Google's words and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_labels_are_the_mailboxs_own_by_name() {
    let store = TestStore::open(Backend::Sqlite).await.unwrap();
    let emulated = emulator(4, 4).await;
    let control = tributary_emulator::testing::ControlClient::new(&emulated.info.control_url);
    let member_email = ordinary_user(&emulated);
    let server = Server::start(store, Some(&emulated), &member_email).await;
    let admin = &server.admin;

    // Another tenant's member, before that tenant connects Google: 409, nothing to read.
    let outsider = server
        .other_tenant
        .post("/members", &json!({ "email": "someone@globex.test" }))
        .await
        .expect(201);
    server
        .other_tenant
        .get(&format!("/members/{}/mailbox-labels", outsider["id"]))
        .await
        .expect_error(409, "not_connected");

    admin
        .post(
            "/connection",
            &json!({ "key_file": key_file(&emulated), "admin_email": emulated.info.admin_email }),
        )
        .await
        .expect(200);
    admin.post_empty("/delegation/rebuild").await.expect(200);
    let members = server.store().members(&server.acme).await.unwrap();
    let own = members.iter().find(|m| m.email == member_email).unwrap();
    let other = members.iter().find(|m| m.email != member_email).unwrap();
    let path = format!("/members/{}/mailbox-labels", own.id.0);

    let created = control
        .post(
            &format!("/users/{member_email}/labels"),
            json!({ "name": "Projects/Atlas" }),
        )
        .await;
    let created_id = created["id"].as_str().unwrap().to_owned();
    admin
        .put(
            &format!("/members/{}/labels", own.id.0),
            &json!({ "labels": [created_id] }),
        )
        .await
        .expect(200);
    // A label chosen before the mailbox lost it (saving refuses one it does not have).
    let chosen = [created_id.clone(), "Label_999999".to_owned()];
    server
        .store()
        .set_member_labels(&server.acme, own.id, &chosen, "test")
        .await
        .unwrap();

    let listed = admin.get(&path).await.expect(200);
    assert_eq!(listed["member_id"], own.id.0);
    let labels = listed["labels"].as_array().unwrap();
    let user_labels: BTreeMap<String, String> = labels
        .iter()
        .filter(|l| l["type"] == "user")
        .map(|l| {
            assert_eq!(l["in_mailbox"], true, "{l}");
            (
                l["id"].as_str().unwrap().to_owned(),
                l["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let truth = emulated_user_labels(&emulated, &member_email);
    assert_eq!(user_labels, truth, "listed user labels vs the mailbox's");
    assert_eq!(truth[&created_id], "Projects/Atlas");
    let by_id = |id: &str| labels.iter().find(|l| l["id"] == id);
    assert_eq!(by_id(&created_id).unwrap()["chosen"], true);
    let gone = by_id("Label_999999").expect("a chosen label the mailbox lacks stays");
    assert_eq!(
        (&gone["chosen"], &gone["in_mailbox"], &gone["type"]),
        (&json!(true), &json!(false), &Value::Null)
    );
    // What the policy syncs for everyone, and drafts or trash, are not offered.
    let policy: Vec<&str> = listed["policy_labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(!policy.is_empty());
    for hidden in policy.iter().copied().chain(["DRAFT", "TRASH"]) {
        assert!(by_id(hidden).is_none(), "{hidden} is offered: {listed}");
    }
    assert!(by_id("STARRED").is_some_and(|l| l["chosen"] == false));

    // The member reads its own (the same answer), not another's; another tenant: 404.
    assert_eq!(server.member.get(&path).await.expect(200), listed);
    server
        .member
        .get(&format!("/members/{}/mailbox-labels", other.id.0))
        .await
        .expect_error(403, "forbidden");
    server
        .other_tenant
        .get(&path)
        .await
        .expect_error(404, "unknown_member");

    // Gmail refuses the mailbox: 502 with the taxonomy status, Google's words, a fix.
    control
        .post(
            &format!("/users/{member_email}/mail-service"),
            json!({ "enabled": false }),
        )
        .await;
    let refused = server.member.get(&path).await;
    refused.expect_error(502, "provider_error");
    let error = &refused.body["error"];
    assert_eq!(error["status"], "unauthorized", "{error}");
    let said = error["provider_message"].as_str().unwrap();
    assert!(said.contains("Mail service not enabled"), "{error}");
    assert!(error["message"].as_str().unwrap().contains(said), "{error}");
    // The hint is the cause's (Gmail off for this user), not the status's catch-all.
    let cause = tributary_core::FailureCause::GmailNotEnabled;
    assert_eq!(error["cause"], json!(cause), "{error}");
    assert_eq!(
        error["hint"],
        cause.hint(tributary_core::Audience::Admin),
        "{error}"
    );
    server.stop().await;
}
