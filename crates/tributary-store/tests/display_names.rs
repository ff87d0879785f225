//! People made visible (migration `0019`): the display name kept per address is the most
//! recent non-empty one captured headers gave it, whatever order mail is synced in; a
//! member's directory name comes first; reads carry the names; and a link's summary is
//! that of the last run that changed something. On both backends.

mod common;

use common::Acme;
use serde_json::json;
use tributary_store::{ActivityFilter, ContactFilter, ParticipantView, Store};

on_both_backends!(
    the_newest_name_wins_whatever_order_mail_is_synced_in,
    empty_quoted_and_encoded_names,
    excluded_mail_leaves_no_name,
    a_members_directory_name_comes_before_header_names,
    last_summary_is_the_last_run_that_changed_something,
);

/// Bob writes to Ann on `date`, calling himself `name`.
fn bob_writes(name: &str, id: u32, date: &str) -> String {
    format!(
        "From: {name} <bob@mail.globex.co.uk>\nTo: ann@acme.com\nSubject: Hello\n\
         Message-ID: <{id}@globex.co.uk>\nDate: {date}\n"
    )
}

const JULY_1: &str = "Tue, 01 Jul 2025 10:00:00 +0000";
const JULY_2: &str = "Wed, 02 Jul 2025 10:00:00 +0000";
const JULY_3: &str = "Thu, 03 Jul 2025 10:00:00 +0000";
const BOB: &str = "bob@mail.globex.co.uk";

async fn commit(store: &Store, acme: &Acme, headers: &[String]) {
    let sightings = headers
        .iter()
        .enumerate()
        .map(|(i, h)| acme.sighting(h, &format!("m{i}-{}", h.len()), &["INBOX"]))
        .collect();
    store
        .commit_page(&acme.tenant, acme.ann_link, &acme.page(sightings), None)
        .await
        .unwrap();
}

async fn contact_name(store: &Store, acme: &Acme, address: &str) -> Option<String> {
    store
        .contact(&acme.tenant, address)
        .await
        .unwrap()
        .expect("the contact exists")
        .display_name
}

/// Every participant of every activity, as the whole-tenant read and the API's paged
/// read give them: both must agree.
async fn participants(store: &Store, acme: &Acme) -> Vec<ParticipantView> {
    let mut whole: Vec<ParticipantView> = store
        .activities(&acme.tenant)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|a| a.participants)
        .collect();
    let mut paged: Vec<ParticipantView> = store
        .activities_page(&acme.tenant, &ActivityFilter::default(), None, 100)
        .await
        .unwrap()
        .activities
        .into_iter()
        .flat_map(|a| a.participants)
        .collect();
    whole.sort();
    paged.sort();
    assert_eq!(whole, paged, "both reads name participants alike");
    whole
}

fn participant<'a>(all: &'a [ParticipantView], address: &str) -> &'a ParticipantView {
    all.iter()
        .find(|p| p.address == address)
        .unwrap_or_else(|| panic!("{address} is a participant"))
}

/// The name a participant is shown with in the reads.
fn shown_name<'a>(all: &'a [ParticipantView], address: &str) -> Option<&'a str> {
    participant(all, address).display_name.as_deref()
}

/// Gives Ann `name` in the directory, then reads the participants again.
async fn name_ann(store: &Store, acme: &Acme, name: &str) -> Vec<ParticipantView> {
    store
        .set_member_display_name(&acme.tenant, acme.ann, Some(name))
        .await
        .unwrap();
    participants(store, acme).await
}

async fn the_newest_name_wins_whatever_order_mail_is_synced_in(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    // A backfill reads newest first: the July 2 name arrives, then an older one.
    commit(&store, &acme, &[bob_writes("Robert Smith", 2, JULY_2)]).await;
    commit(&store, &acme, &[bob_writes("Bob S.", 1, JULY_1)]).await;
    assert_eq!(
        contact_name(&store, &acme, BOB).await.as_deref(),
        Some("Robert Smith"),
        "an older message synced later does not bring its name back"
    );
    // Within one page, too, the newest wins whatever its place.
    commit(
        &store,
        &acme,
        &[
            bob_writes("Robert J. Smith", 3, JULY_3),
            bob_writes("Bobby", 4, JULY_1),
        ],
    )
    .await;
    assert_eq!(
        contact_name(&store, &acme, BOB).await.as_deref(),
        Some("Robert J. Smith")
    );
    let all = participants(&store, &acme).await;
    assert!(
        all.iter()
            .filter(|p| p.address == BOB)
            .all(|p| p.display_name.as_deref() == Some("Robert J. Smith")),
        "every activity shows the name chosen for the address: {all:?}"
    );
    let page = store
        .contacts_page(&acme.tenant, &ContactFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        page.contacts[0].display_name.as_deref(),
        Some("Robert J. Smith")
    );
}

async fn empty_quoted_and_encoded_names(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    commit(
        &store,
        &acme,
        &[format!(
            "From: \"Lee, Dana\" <dana@initech.com>\nTo: ann@acme.com\n\
             Cc: =?UTF-8?B?SsO2cmcgTcO8bGxlcg==?= <jorg@initech.com>\nSubject: x\n\
             Message-ID: <q1@initech.com>\nDate: {JULY_1}\n"
        )],
    )
    .await;
    // Later mail naming nobody (a bare address, a blank name) takes nothing away.
    commit(
        &store,
        &acme,
        &[format!(
            "From: dana@initech.com\nTo: ann@acme.com\nCc: \"\" <jorg@initech.com>\n\
             Subject: y\nMessage-ID: <q2@initech.com>\nDate: {JULY_3}\n"
        )],
    )
    .await;
    assert_eq!(
        contact_name(&store, &acme, "dana@initech.com")
            .await
            .as_deref(),
        Some("Lee, Dana")
    );
    assert_eq!(
        contact_name(&store, &acme, "jorg@initech.com")
            .await
            .as_deref(),
        Some("Jörg Müller")
    );
    // An address never named has no name, not its address as one.
    commit(
        &store,
        &acme,
        &[bob_writes("\"bob@mail.globex.co.uk\"", 9, JULY_1)],
    )
    .await;
    assert_eq!(contact_name(&store, &acme, BOB).await, None);
}

async fn excluded_mail_leaves_no_name(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let newsletter = format!(
        "From: Globex News <news@globex.co.uk>\nTo: Ann Lee <ann@acme.com>\n\
         List-Unsubscribe: <mailto:unsub@globex.co.uk>\nSubject: News\n\
         Message-ID: <n1@globex.co.uk>\nDate: {JULY_3}\n"
    );
    commit(&store, &acme, &[newsletter]).await;
    let names = store
        .display_names(&acme.tenant, &["news@globex.co.uk", "ann@acme.com"])
        .await
        .unwrap();
    assert!(names.is_empty(), "{names:?}");
}

async fn a_members_directory_name_comes_before_header_names(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    // Ann signs from her alias as "Ann L."; Carl is named only by headers.
    commit(
        &store,
        &acme,
        &[format!(
            "From: Ann L. <ann.lee@acme.com>\nTo: Bob <bob@mail.globex.co.uk>\n\
             Cc: Carl Diaz <carl@acme.com>\nSubject: z\nMessage-ID: <d1@acme.com>\n\
             Date: {JULY_1}\n"
        )],
    )
    .await;
    let all = participants(&store, &acme).await;
    assert_eq!(shown_name(&all, "ann.lee@acme.com"), Some("Ann L."));
    assert_eq!(
        participant(&all, "ann.lee@acme.com").member.as_deref(),
        Some("ann@acme.com"),
        "the alias names the member it resolves to"
    );

    let all = name_ann(&store, &acme, "  Ann   Lee ").await;
    assert_eq!(
        shown_name(&all, "ann.lee@acme.com"),
        Some("Ann Lee"),
        "the directory's name, cleaned, for any of the member's addresses"
    );
    assert_eq!(shown_name(&all, "carl@acme.com"), Some("Carl Diaz"));
    let names = store
        .display_names(
            &acme.tenant,
            &[
                "ANN@acme.com",
                "carl@acme.com",
                "bob@mail.globex.co.uk",
                "x@y.z",
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        names.get("ann@acme.com").map(String::as_str),
        Some("Ann Lee")
    );
    assert_eq!(
        names.get("carl@acme.com").map(String::as_str),
        Some("Carl Diaz")
    );
    assert_eq!(names.get(BOB).map(String::as_str), Some("Bob"));
    assert_eq!(names.len(), 3, "{names:?}");

    // A directory without a name gives the headers' name back.
    let all = name_ann(&store, &acme, " ").await;
    assert_eq!(shown_name(&all, "ann.lee@acme.com"), Some("Ann L."));
}

async fn last_summary_is_the_last_run_that_changed_something(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let link = |store: Store, tenant| async move {
        store
            .links(&tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|l| l.mailbox == "ann@acme.com")
            .unwrap()
    };
    let changed =
        json!({"mode": "incremental", "fetched": 3, "added": 2, "gone": 1, "at_ms": 1_000});
    store
        .record_link_success(&acme.tenant, acme.ann_link, &changed, 1_000)
        .await
        .unwrap();
    let empty =
        json!({"mode": "incremental", "fetched": 0, "added": 0, "gone": 0, "at_ms": 61_000});
    store
        .record_link_success(&acme.tenant, acme.ann_link, &empty, 61_000)
        .await
        .unwrap();
    let view = link(store.clone(), acme.tenant.clone()).await;
    assert_eq!(
        view.last_summary,
        Some(changed),
        "an empty poll keeps the change"
    );
    assert_eq!(
        view.last_success_ms,
        Some(61_000),
        "and says when it checked"
    );

    let removed =
        json!({"mode": "incremental", "fetched": 0, "added": 0, "gone": 4, "at_ms": 90_000});
    store
        .record_link_success(&acme.tenant, acme.ann_link, &removed, 90_000)
        .await
        .unwrap();
    let view = link(store.clone(), acme.tenant.clone()).await;
    assert_eq!(view.last_summary, Some(removed), "a removal is a change");

    // A first run that found nothing is still the only summary there is.
    store
        .record_link_success(&acme.tenant, acme.carl_link, &empty, 5_000)
        .await
        .unwrap();
    let carl = store
        .links(&acme.tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.mailbox == "carl@acme.com")
        .unwrap();
    assert_eq!(carl.last_summary, Some(empty));
}
