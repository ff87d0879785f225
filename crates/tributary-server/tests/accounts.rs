//! Accounts decide access, through the API and the console over real HTTP on loopback
//! (SQLite, and PostgreSQL when reachable): an admin lists, creates, demotes, disables,
//! resets and removes accounts; a demoted account's token is a member's at its next
//! request, a disabled one's stops at once; the last active admin stays; another
//! tenant's account ids are not found; member records have no role.

mod api_support;
mod console_support;

use api_support::{ACME_ADMIN, Backend, GLOBEX_ADMIN, Server, TestStore};
use console_support::{BACKENDS, Browser, Console, emulator};
use serde_json::{Value, json};
use tributary_store::MemberRole;

const MEMBER: &str = "mia@acme.test";

fn account<'a>(list: &'a Value, email: &str) -> Option<&'a Value> {
    list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["email"] == email)
}

async fn account_id(server: &Server, email: &str) -> i64 {
    server
        .store()
        .user_by_email(&server.acme, email)
        .await
        .unwrap()
        .unwrap()
        .id
        .0
}

async fn api_case(backend: Backend) {
    let Some(store) = TestStore::open(backend).await else {
        return;
    };
    let server = Server::start(store, None, MEMBER).await;
    let admin = &server.admin;

    // The list: this tenant's accounts only, with role and status; admins only.
    let listed = admin.get("/accounts").await.expect(200);
    assert_eq!(account(&listed, ACME_ADMIN).unwrap()["role"], "admin");
    assert_eq!(account(&listed, MEMBER).unwrap()["role"], "member");
    assert_eq!(account(&listed, MEMBER).unwrap()["active"], true);
    assert!(account(&listed, GLOBEX_ADMIN).is_none());
    server
        .member
        .get("/accounts")
        .await
        .expect_error(403, "forbidden");

    // Create: a generated password, in the answer only; refusals say why.
    let created = admin
        .post(
            "/accounts",
            &json!({ "email": "Second@Acme.test", "role": "admin" }),
        )
        .await
        .expect(201);
    assert_eq!(created["email"], "second@acme.test");
    assert_eq!(created["role"], "admin");
    let password = created["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 20);
    let second = created["id"].as_i64().unwrap();
    admin
        .post("/accounts", &json!({ "email": "second@acme.test" }))
        .await
        .expect_error(409, "email_taken");
    admin
        .post(
            "/accounts",
            &json!({ "email": "weak@acme.test", "password": "password1234" }),
        )
        .await
        .expect_error(422, "weak_password");
    let given = admin
        .post(
            "/accounts",
            &json!({ "email": "given@acme.test", "password": "violet tractor sings at midnight" }),
        )
        .await
        .expect(201);
    assert!(
        given.get("password").is_none(),
        "a given password is not echoed"
    );
    admin
        .post(
            "/accounts",
            &json!({ "email": "x@acme.test", "role": "owner" }),
        )
        .await
        .expect_error(422, "invalid_body");

    // The new admin's token works as an admin's, until it is demoted: then the same
    // token is a member's at its next request.
    let secret = admin
        .post(
            "/tokens",
            &json!({ "name": "second", "user": "second@acme.test" }),
        )
        .await
        .expect(201)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_api = admin.with_token(&secret);
    second_api.get("/accounts").await.expect(200);
    let demoted = admin
        .patch(&format!("/accounts/{second}"), &json!({ "role": "member" }))
        .await
        .expect(200);
    assert_eq!(demoted["role"], "member");
    second_api
        .get("/accounts")
        .await
        .expect_error(403, "forbidden");
    second_api.get("/links").await.expect(200);

    // Disabled: the token stops at once.
    let disabled = admin
        .patch(&format!("/accounts/{second}"), &json!({ "active": false }))
        .await
        .expect(200);
    assert_eq!(disabled["active"], false);
    second_api
        .get("/links")
        .await
        .expect_error(401, "unauthorized");
    let reenabled = admin
        .patch(&format!("/accounts/{second}"), &json!({ "active": true }))
        .await
        .expect(200);
    assert_eq!(reenabled["active"], true);
    second_api
        .get("/links")
        .await
        .expect_error(401, "unauthorized");

    // The last active admin cannot be demoted, disabled or removed.
    let root = account_id(&server, ACME_ADMIN).await;
    admin
        .patch(&format!("/accounts/{root}"), &json!({ "role": "member" }))
        .await
        .expect_error(409, "last_admin");
    admin
        .patch(&format!("/accounts/{root}"), &json!({ "active": false }))
        .await
        .expect_error(409, "last_admin");
    admin
        .delete(&format!("/accounts/{root}"))
        .await
        .expect_error(409, "last_admin");
    admin.get("/accounts").await.expect(200);

    // Another tenant's admin: acme's ids are not found, and nothing changes.
    let globex = &server.other_tenant;
    let mia = account_id(&server, MEMBER).await;
    globex
        .patch(&format!("/accounts/{mia}"), &json!({ "active": false }))
        .await
        .expect_error(404, "unknown_user");
    globex
        .post_empty(&format!("/accounts/{mia}/password-reset"))
        .await
        .expect_error(404, "unknown_user");
    globex
        .delete(&format!("/accounts/{mia}"))
        .await
        .expect_error(404, "unknown_user");
    assert!(account(&globex.get("/accounts").await.expect(200), MEMBER).is_none());
    server.member.get("/links").await.expect(200);

    // A password reset: a new password, once; the old one stops.
    let reset = admin
        .post_empty(&format!("/accounts/{mia}/password-reset"))
        .await
        .expect(200);
    let new_password = reset["password"].as_str().unwrap();
    let store = server.store();
    let signs_in = |password: String| async move {
        tributary_server::auth::authenticate(store, MEMBER, &password)
            .await
            .unwrap()
            .is_some()
    };
    assert!(signs_in(new_password.to_owned()).await);
    assert!(!signs_in(api_support::PASSWORD.to_owned()).await);

    // Removal: gone from the list, its token with it; the email may come back.
    admin
        .delete(&format!("/accounts/{second}"))
        .await
        .expect(204);
    assert!(
        account(
            &admin.get("/accounts").await.expect(200),
            "second@acme.test"
        )
        .is_none()
    );
    admin
        .delete(&format!("/accounts/{second}"))
        .await
        .expect_error(404, "unknown_user");
    admin
        .post("/accounts", &json!({ "email": "second@acme.test" }))
        .await
        .expect(201);

    // Members have no role: a role write names the accounts route.
    let member = admin
        .post("/members", &json!({ "email": "person@acme.test" }))
        .await
        .expect(201);
    assert!(member.get("role").is_none(), "{member}");
    let id = member["id"].as_i64().unwrap();
    let refused = admin
        .patch(&format!("/members/{id}"), &json!({ "role": "admin" }))
        .await;
    refused.expect_error(400, "role_is_per_account");
    assert!(
        refused.text.contains("/api/v1/accounts"),
        "{}",
        refused.text
    );
    admin
        .post(
            "/members",
            &json!({ "email": "other@acme.test", "role": "admin" }),
        )
        .await
        .expect_error(400, "role_is_per_account");
    for listed in admin.get("/members").await.expect(200)["members"]
        .as_array()
        .unwrap()
    {
        assert!(listed.get("role").is_none(), "{listed}");
    }

    // Every change is audited, without a password.
    let audit = admin.get("/audit?limit=1000").await;
    for action in [
        "account.created",
        "account.role",
        "account.disabled",
        "account.enabled",
        "account.password_reset",
        "account.removed",
    ] {
        assert!(audit.text.contains(action), "{action} is audited");
    }
    assert!(!audit.text.contains(&password));
    assert!(!audit.text.contains(new_password));
    server.stop().await;
}

#[tokio::test]
async fn accounts_are_managed_through_the_api_on_sqlite() {
    api_case(Backend::Sqlite).await;
}

#[tokio::test]
async fn accounts_are_managed_through_the_api_on_postgres() {
    api_case(Backend::Postgres).await;
}

const ADMIN: &str = "ops@console.test";
const SECOND: &str = "second@console.test";
const MIA: &str = "mia@console.test";

/// Posts an account form as it is on `/accounts` (with the page's CSRF token).
async fn act(browser: &mut Browser, id: i64, email: &str, action: &str) -> String {
    let page = browser.get("/accounts").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let id = id.to_string();
    let mut form = vec![
        ("csrf", page.csrf()),
        ("account", id),
        ("email", email.to_owned()),
        ("action", action.to_owned()),
    ];
    if action == "remove" {
        form.push(("confirm", "yes".to_owned()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = browser.submit("/accounts", &form).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

async fn console_case(backend: Backend) {
    let emulated = emulator(2, 2).await;
    let Some(console) = Console::start_with(backend, &emulated, None).await else {
        return;
    };
    let tenant = console.tenant.clone();
    for (email, role) in [
        (ADMIN, MemberRole::Admin),
        (SECOND, MemberRole::Admin),
        (MIA, MemberRole::Member),
    ] {
        console.add_user(&tenant, email, role).await;
    }
    let id = |email: &'static str| {
        let store = console.store().clone();
        let tenant = tenant.clone();
        async move {
            store
                .user_by_email(&tenant, email)
                .await
                .unwrap()
                .unwrap()
                .id
                .0
        }
    };
    let mut admin = Browser::new(&console.url);
    admin.sign_in(ADMIN).await;
    let mut second = Browser::new(&console.url);
    second.sign_in(SECOND).await;
    let mut mia = Browser::new(&console.url);
    mia.sign_in(MIA).await;

    let page = admin.get("/accounts").await;
    assert_eq!(page.status, 200);
    for email in [ADMIN, SECOND, MIA] {
        assert!(page.body.contains(email), "{email} is listed");
    }
    assert!(
        page.body.contains("href=\"/accounts\""),
        "in the navigation"
    );
    assert_eq!(mia.get("/accounts").await.status, 403);

    // Demoted: the same session is a member's at its next request.
    assert_eq!(second.get("/users").await.status, 200);
    let body = act(&mut admin, id(SECOND).await, SECOND, "make_member").await;
    assert!(body.contains("is now a member"), "{body}");
    assert_eq!(second.get("/users").await.status, 403);
    assert_eq!(second.get("/accounts").await.status, 403);

    // Disabled: the session ends at once.
    act(&mut admin, id(SECOND).await, SECOND, "disable").await;
    let gone = second.get("/me").await;
    assert_eq!(gone.status, 303);
    assert_eq!(gone.location.as_deref(), Some("/signin"));

    // The last active admin: refused, said in the page.
    let body = act(&mut admin, id(ADMIN).await, ADMIN, "make_member").await;
    assert!(
        body.contains("You cannot demote the last active admin"),
        "{body}"
    );
    let body = act(&mut admin, id(ADMIN).await, ADMIN, "disable").await;
    assert!(body.contains("You cannot disable the last active admin"));
    assert_eq!(admin.get("/users").await.status, 200);

    // A reset password is shown once and signs in; the old session ended.
    let body = act(&mut admin, id(MIA).await, MIA, "reset_password").await;
    let marker = "id=\"new-password\">";
    let start = body.find(marker).expect("the new password is shown") + marker.len();
    let password = &body[start..start + body[start..].find('<').unwrap()];
    assert_eq!(mia.get("/me").await.status, 303, "the old session ended");
    assert!(
        tributary_server::auth::authenticate(console.store(), MIA, password)
            .await
            .unwrap()
            .is_some()
    );
    assert!(!admin.get("/accounts").await.body.contains(password));

    // Remove: needs the confirmation; then gone.
    let page = admin.get("/accounts").await;
    let mia_id = id(MIA).await.to_string();
    let unconfirmed = admin
        .submit(
            "/accounts",
            &[
                ("csrf", &page.csrf()),
                ("account", &mia_id),
                ("action", "remove"),
            ],
        )
        .await;
    assert!(unconfirmed.body.contains("Tick the confirmation"));
    let body = act(&mut admin, id(MIA).await, MIA, "remove").await;
    assert!(body.contains("is removed"), "{body}");
    assert!(
        console
            .store()
            .user_by_email(&tenant, MIA)
            .await
            .unwrap()
            .is_none()
    );

    // Without the session's CSRF token nothing happens.
    let refused = admin
        .post(
            "/accounts",
            &[
                ("csrf", "forged"),
                ("account", &id(SECOND).await.to_string()),
                ("action", "enable"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    console.stop();
}

#[tokio::test]
async fn accounts_are_managed_in_the_console() {
    for backend in BACKENDS {
        console_case(backend).await;
    }
}
