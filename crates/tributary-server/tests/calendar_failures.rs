//! A calendar that failed alone, on the member's Calendar card, on both backends: the
//! calendar's own cause and fix (Google: the calendar scope missing from Domain-wide
//! delegation), never the mail permission's hint, for the admin; the member is told their
//! meetings wait for an administrator. Statuses are stored as the engine stores them.

mod api_support;
mod console_support;

use api_support::{Backend, Server, TestStore};
use console_support::Browser;
use tributary_core::{Audience, FailureCause};
use tributary_store::{ConnectionKind, LinkStatus, MemberRole};

const CARL: &str = "carl@acme.com";
const REFUSED: &str = "Client is unauthorized to retrieve access tokens using this method, or \
     client not authorized for any of the scopes requested.";

#[tokio::test]
async fn the_calendar_card_names_the_calendar_s_fix() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(store) = TestStore::open(backend).await else {
            continue;
        };
        case(Server::start(store, None, CARL).await).await;
    }
}

async fn sign_in(browser: &mut Browser, email: &str) {
    let form = browser.get("/signin").await;
    let csrf = form.csrf();
    let signed = browser
        .post(
            "/signin",
            &[
                ("email", email),
                ("password", api_support::PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "sign-in refused: {}", signed.body);
}

async fn case(server: Server) {
    let store = server.store();
    let tenant = &server.acme;
    let member = store
        .add_member(tenant, CARL, &[], MemberRole::Member)
        .await
        .unwrap();
    let link = store
        .link_mailbox(tenant, member, CARL, ConnectionKind::Google)
        .await
        .unwrap();
    store
        .set_calendar_status(
            tenant,
            link,
            LinkStatus::Unauthorized,
            Some(REFUSED),
            Some("unauthorized_client"),
        )
        .await
        .unwrap();
    let calendar_fix = FailureCause::CalendarScopeNotDelegated.hint(Audience::Admin);
    let mail_fix = FailureCause::ScopeNotDelegated.hint(Audience::Admin);

    let mut admin = Browser::new(&server.url);
    sign_in(&mut admin, api_support::ACME_ADMIN).await;
    let page = admin.get(&format!("/members/{CARL}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("data-cause=\"calendar_scope_not_delegated\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("calendar.readonly"), "{}", page.body);
    assert!(
        page.body.contains(&html_escape(calendar_fix)),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&html_escape(mail_fix)), "{}", page.body);

    let mut carl = Browser::new(&server.url);
    sign_in(&mut carl, CARL).await;
    let me = carl.get("/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    let member_words = FailureCause::CalendarScopeNotDelegated.hint(Audience::Member);
    assert!(me.body.contains(&html_escape(member_words)), "{}", me.body);
    assert!(!me.body.contains("calendar.readonly"), "{}", me.body);

    // Once the calendar synced again, no hint is left.
    store
        .set_calendar_status(tenant, link, LinkStatus::Idle, None, None)
        .await
        .unwrap();
    let page = admin.get(&format!("/members/{CARL}")).await;
    assert!(!page.body.contains("data-cause="), "{}", page.body);
}

/// The hint as the page writes it (maud escapes `&`, `<`, `>`, `"`).
fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
