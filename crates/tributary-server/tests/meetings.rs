//! Meetings in the product, on both backends: the console's contact, company and member
//! pages show meetings with attendees and answers, the last and next meeting and the
//! member's Calendar card; `/api/v1/meetings` and `/meetings/upcoming` list them with
//! filters and pages; relationships count meetings; a member never sees a meeting they
//! did not take part in; a private event never shows its title. Meetings are committed
//! through the store as the engine commits them.

mod api_support;
mod console_support;

use api_support::{Backend, Server, TestStore};
use console_support::Browser;
use serde_json::Value;
use tributary_core::{
    Attendee, CapturePolicy, EmailAddress, EventType, Extractor, FreeMailList, MessageRecord,
    Occurrence, Response, TenantDirectory,
};
use tributary_store::{
    CalendarSighting, CapturePage, CapturedSighting, ConnectionKind, LinkId, MemberRole, Store,
    TenantId,
};

/// Carl: a member (role member) with an API token, invited to the review only.
const CARL: &str = "carl@acme.com";
const HOUR_MS: i64 = 3_600_000;

const REVIEW: &str = "Quarterly review";
const SECRET: &str = "Secret merger talks";
const RENEWAL: &str = "Renewal call";
const DANA_ONLY: &str = "Dana and Initech";

#[tokio::test]
async fn meetings_in_the_console_and_the_api() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(store) = TestStore::open(backend).await else {
            continue;
        };
        case(Server::start(store, None, CARL).await).await;
    }
}

fn address(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).unwrap()
}

fn person(raw: &str, response: Response) -> Attendee {
    Attendee {
        address: address(raw),
        name: None,
        response,
        resource: false,
    }
}

/// A one-hour meeting organized by `organizer`, starting `hours` from now.
fn meeting(
    uid: &str,
    hours: i64,
    organizer: &str,
    attendees: Vec<Attendee>,
    title: &str,
    private: bool,
) -> Occurrence {
    let start = now_ms() + hours * HOUR_MS;
    Occurrence {
        ical_uid: uid.into(),
        original_start_ms: None,
        start_ms: start,
        end_ms: start + HOUR_MS,
        all_day: false,
        cancelled: false,
        event_type: EventType::Default,
        shows_as_out_of_office: false,
        organizer: Some(person(organizer, Response::Accepted)),
        attendees,
        private,
        title: Some(title.into()),
        calendar_owner: address(organizer),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

struct Acme {
    links: Vec<(String, LinkId)>,
    extractor: Extractor,
}

/// Members Ann (directory admin), Carl and Dana, each with a linked mailbox.
async fn members(store: &Store, tenant: &TenantId) -> Acme {
    let mut directory = TenantDirectory::new();
    directory.add_domain("acme.com").unwrap();
    let mut links = Vec::new();
    for (email, role) in [
        ("ann@acme.com", MemberRole::Admin),
        (CARL, MemberRole::Member),
        ("dana@acme.com", MemberRole::Member),
    ] {
        let member = store.add_member(tenant, email, &[], role).await.unwrap();
        let link = store
            .link_mailbox(tenant, member, email, ConnectionKind::Google)
            .await
            .unwrap();
        directory.add_member(email, []).unwrap();
        links.push((email.to_owned(), link));
    }
    let extractor = Extractor::new(directory, FreeMailList::default(), CapturePolicy::default());
    Acme { links, extractor }
}

impl Acme {
    fn link(&self, email: &str) -> LinkId {
        self.links.iter().find(|(e, _)| e == email).unwrap().1
    }

    /// Commits `occurrence` as the calendar of its organizer lists it.
    async fn commit(&self, store: &Store, tenant: &TenantId, occurrence: &Occurrence) {
        let meeting = self.extractor.meeting(occurrence, now_ms()).unwrap();
        assert!(
            meeting.is_captured() || meeting.is_upcoming(),
            "{meeting:?}"
        );
        let sighting = CalendarSighting {
            meeting,
            provider_event_id: format!("event-{}", occurrence.ical_uid),
        };
        let link = self.link(occurrence.calendar_owner.as_str());
        store
            .commit_calendar_page(tenant, link, &[sighting], None)
            .await
            .unwrap();
    }

    /// One mail from Ann to Bob, so that the pair has a relationship row.
    async fn mail(&self, store: &Store, tenant: &TenantId) {
        let headers = "From: Ann <ann@acme.com>\r\nTo: Bob <bob@globex.com>\r\n\
                       Date: Mon, 2 Jun 2025 10:00:00 +0000\r\nSubject: Hello\r\n\
                       Message-ID: <hello@acme.com>\r\n\r\n";
        let page = CapturePage {
            sightings: vec![CapturedSighting {
                extraction: self
                    .extractor
                    .extract(&MessageRecord::from_rfc5322(headers.as_bytes())),
                provider_message_id: "m1".into(),
                labels: vec!["SENT".into()],
            }],
        };
        store
            .commit_page(tenant, self.link("ann@acme.com"), &page, None)
            .await
            .unwrap();
    }
}

fn titles(page: &Value) -> Vec<Option<String>> {
    page["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["title"].as_str().map(str::to_owned))
        .collect()
}

async fn case(server: Server) {
    let store = server.store();
    let tenant = &server.acme;
    let acme = members(store, tenant).await;
    acme.mail(store, tenant).await;
    let bob = |r| person("bob@globex.com", r);
    acme.commit(
        store,
        tenant,
        &meeting(
            "review",
            -72,
            "ann@acme.com",
            vec![bob(Response::Accepted), person(CARL, Response::Tentative)],
            REVIEW,
            false,
        ),
    )
    .await;
    acme.commit(
        store,
        tenant,
        &meeting(
            "secret",
            -48,
            "ann@acme.com",
            vec![bob(Response::Accepted)],
            SECRET,
            true,
        ),
    )
    .await;
    acme.commit(
        store,
        tenant,
        &meeting(
            "renewal",
            48,
            "ann@acme.com",
            vec![bob(Response::NeedsAction)],
            RENEWAL,
            false,
        ),
    )
    .await;
    acme.commit(
        store,
        tenant,
        &meeting(
            "initech",
            -24,
            "dana@acme.com",
            vec![person("eve@initech.com", Response::Accepted)],
            DANA_ONLY,
            false,
        ),
    )
    .await;

    api(&server).await;
    console(&server).await;
}

async fn api(server: &Server) {
    // The admin: every captured meeting, latest first; the private one without title.
    let all = server.admin.get("/meetings").await.expect(200);
    assert_eq!(
        titles(&all),
        [Some(DANA_ONLY.to_owned()), None, Some(REVIEW.to_owned())]
    );
    let secret = &all["meetings"][1];
    assert_eq!(secret["private"], true);
    assert!(
        !all.to_string().contains(SECRET),
        "a private title never shows"
    );
    let review = &all["meetings"][2];
    let answers: Vec<(String, String, bool)> = review["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap().to_owned(),
                p["response"].as_str().unwrap().to_owned(),
                p["organizer"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            ("ann@acme.com".into(), "accepted".into(), true),
            ("bob@globex.com".into(), "accepted".into(), false),
            (CARL.into(), "tentative".into(), false),
        ]
    );
    assert_eq!(review["calendars"][0], "ann@acme.com");

    // Filters, and pages that add up to the whole list.
    for filter in ["contact=bob@globex.com", "company=globex.com"] {
        let page = server
            .admin
            .get(&format!("/meetings?{filter}"))
            .await
            .expect(200);
        assert_eq!(titles(&page), [None, Some(REVIEW.to_owned())], "{filter}");
    }
    let carls = server
        .admin
        .get(&format!("/meetings?member={CARL}"))
        .await
        .expect(200);
    assert_eq!(titles(&carls), [Some(REVIEW.to_owned())]);
    let mut paged = Vec::new();
    let mut path = "/meetings?limit=1".to_owned();
    loop {
        let page = server.admin.get(&path).await.expect(200);
        paged.extend(titles(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/meetings?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, titles(&all));
    server
        .admin
        .get("/meetings?cursor=not-ours")
        .await
        .expect_error(400, "invalid_cursor");

    let upcoming = server.admin.get("/meetings/upcoming").await.expect(200);
    assert_eq!(titles(&upcoming), [Some(RENEWAL.to_owned())]);
    let renewal = &upcoming["meetings"][0];
    assert_eq!(renewal["participants"][1]["response"], "needs_action");

    // Relationships count meetings, and the score includes them.
    let ann_bob = server
        .admin
        .get("/relationships?member=ann@acme.com&contact=bob@globex.com")
        .await
        .expect(200);
    let row = &ann_bob["relationships"][0];
    assert_eq!(row["total"], 1, "mail alone");
    assert_eq!(row["meetings"], 2, "the review and the private meeting");
    let mail_only = store_score(server).await;
    assert!(row["score_at_last"].as_f64().unwrap() > mail_only);

    // Carl (a member) sees only the meeting he took part in, whatever he asks for.
    let mine = server.member.get("/meetings").await.expect(200);
    assert_eq!(titles(&mine), [Some(REVIEW.to_owned())]);
    for asked in [
        "/meetings?contact=bob@globex.com",
        "/meetings?member=ann@acme.com",
        "/meetings?company=initech.com",
        "/meetings/upcoming",
    ] {
        let page = server.member.get(asked).await.expect(200);
        let text = page.to_string();
        assert!(
            !text.contains(DANA_ONLY)
                && !text.contains(RENEWAL)
                && !text.contains("\"private\":true"),
            "{asked}: {text}"
        );
    }
    // Another tenant sees none of them.
    let other = server.other_tenant.get("/meetings").await.expect(200);
    assert_eq!(titles(&other), Vec::<Option<String>>::new());
}

/// Ann and Bob's mail-only score, from the store's relationship row.
async fn store_score(server: &Server) -> f64 {
    server
        .store()
        .relationships(&server.acme)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.member == "ann@acme.com" && r.contact == "bob@globex.com")
        .unwrap()
        .score_at_last
}

async fn console(server: &Server) {
    let mut admin = Browser::new(&server.url);
    sign_in(&mut admin, api_support::ACME_ADMIN).await;

    let contact = admin.get("/contacts/bob@globex.com").await;
    assert_eq!(contact.status, 200, "{}", contact.body);
    assert!(contact.body.contains("Last meeting"));
    assert!(contact.body.contains(RENEWAL), "the next meeting");
    assert!(contact.body.contains(REVIEW));
    assert!(contact.body.contains("(private meeting)"));
    assert!(!contact.body.contains(SECRET));
    assert!(contact.body.contains("tentative") && contact.body.contains("no answer"));

    let company = admin.get("/companies/globex.com").await;
    assert_eq!(company.status, 200, "{}", company.body);
    assert!(company.body.contains("Next meeting") && company.body.contains(RENEWAL));
    assert!(!company.body.contains(DANA_ONLY));

    let ann = admin.get("/members/ann@acme.com").await;
    assert_eq!(ann.status, 200, "{}", ann.body);
    assert!(ann.body.contains("Calendar"));
    assert!(ann.body.contains("2 meetings captured"), "{}", ann.body);
    assert!(ann.body.contains("1 upcoming"));
    assert!(ann.body.contains(RENEWAL));
    assert!(ann.body.contains("<th class=\"num\">Meetings</th>"));

    policy(server, &mut admin).await;

    // Carl, signed in as a member: his own meeting, nothing of the others'.
    let mut carl = Browser::new(&server.url);
    sign_in(&mut carl, CARL).await;
    let own = carl.get(&format!("/members/{CARL}")).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body.contains(REVIEW));
    let me = carl.get("/me").await;
    assert!(me.body.contains("Calendar"), "{}", me.body);
    let contact = carl.get("/contacts/bob@globex.com").await;
    assert_eq!(contact.status, 200, "{}", contact.body);
    assert!(contact.body.contains(REVIEW));
    for hidden in [RENEWAL, DANA_ONLY, "(private meeting)"] {
        assert!(!contact.body.contains(hidden), "{hidden}");
        assert!(!own.body.contains(hidden), "{hidden}");
    }
}

/// The policy page's "Meetings" fieldset: shown with the stored values, a bad value
/// refused with what to fix (nothing saved), good values saved.
async fn policy(server: &Server, admin: &mut Browser) {
    let page = admin.get("/policy").await;
    assert!(page.body.contains("Capture meetings") && page.body.contains("Calendar sync"));
    assert!(page.body.contains("name=\"meetings_horizon_days\""));
    let csrf = page.csrf();
    let form = |horizon: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("sync_inbox", "on".to_owned()),
            ("sync_sent", "on".to_owned()),
            ("backfill_days", "365".to_owned()),
            ("privacy", "subject".to_owned()),
            ("meetings_form", "1".to_owned()),
            ("meetings_backfill_days", "90".to_owned()),
            ("meetings_horizon_days", horizon.to_owned()),
            ("meetings_large_attendees", "12".to_owned()),
            ("calendar_sync", "admins".to_owned()),
        ]
    };
    let refused = form("400");
    let refused: Vec<(&str, &str)> = refused.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = admin.post("/policy", &refused).await;
    assert!(
        answer.body.contains("at most 366 days ahead, not 400"),
        "{}",
        answer.body
    );
    let stored = server.runtime.policy(&server.acme).await.unwrap().meetings;
    assert_eq!(stored, tributary_core::MeetingSettings::default());

    let saved = form("14");
    let saved: Vec<(&str, &str)> = saved.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = admin.post("/policy", &saved).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let stored = server.runtime.policy(&server.acme).await.unwrap().meetings;
    assert_eq!(
        stored,
        tributary_core::MeetingSettings {
            capture: false,
            backfill_days: 90,
            horizon_days: 14,
            large_meeting_attendees: 12,
            calendar_sync: tributary_core::CalendarSync::Admins,
        }
    );
    let shown = admin.get("/policy").await;
    assert!(
        shown.body.contains("value=\"admins\" checked"),
        "the stored choice is shown"
    );
}

/// Signs in with the API test accounts' password.
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
