//! `commit_page` on both backends: idempotence, sightings, later participants, crash
//! safety and tenant isolation.

mod common;

use common::{
    Acme, DATELESS, NEWSLETTER, OUTBOUND, REPLY, TO_ANN_BCC_ERIN, TO_ANN_BCC_ERIN_SENDER_COPY,
    TO_ERIN, TO_ERIN_SENDER_COPY, UNDATED_TO_ANN_BCC_ERIN, UNDATED_TO_ANN_BCC_ERIN_SENDER_COPY,
    received,
};
use sqlx::{AssertSqlSafe, Executor};
use tributary_core::{EmailAddress, MessageRecord, RelationshipBook, Touch};
use tributary_store::{
    ActivityView, Backend, CapturePage, CompanyView, ContactView, CursorAdvance, LinkId,
    PageSummary, RelationshipView, Store, StoreError, TenantId,
};

on_both_backends!(
    page_is_stored_with_contacts_companies_and_relationships,
    committing_a_page_twice_changes_nothing,
    one_message_in_two_mailboxes_is_one_activity_with_two_sightings,
    later_sighting_adds_bcc_without_touching_captured_fields,
    failing_page_rolls_back_everything_including_the_cursor,
    tenants_are_isolated,
    relationship_counts_do_not_depend_on_page_order,
    relationships_match_core_relationship_book,
    internal_looking_copy_seen_first_joins_the_activity_captured_later,
    internal_looking_copy_seen_last_joins_the_captured_activity,
    concurrent_commits_sharing_contacts_lose_no_relationship_update,
    dateless_message_takes_its_earliest_copys_time_whatever_order_copies_arrive,
    held_dateless_copy_received_first_times_its_activity,
);

fn cursor(value: &str) -> CursorAdvance {
    CursorAdvance {
        stream: "INBOX".into(),
        value: value.into(),
    }
}

/// Everything a page can change, for before/after comparisons.
#[derive(Debug, PartialEq)]
struct Snapshot {
    activities: Vec<ActivityView>,
    contacts: Vec<ContactView>,
    companies: Vec<CompanyView>,
    relationships: Vec<RelationshipView>,
}

async fn snapshot(store: &Store, tenant: &TenantId) -> Snapshot {
    Snapshot {
        activities: store.activities(tenant).await.unwrap(),
        contacts: store.contacts(tenant).await.unwrap(),
        companies: store.companies(tenant).await.unwrap(),
        relationships: store.relationships(tenant).await.unwrap(),
    }
}

fn relationship<'a>(snapshot: &'a Snapshot, member: &str, contact: &str) -> &'a RelationshipView {
    snapshot
        .relationships
        .iter()
        .find(|r| r.member == member && r.contact == contact)
        .unwrap_or_else(|| panic!("no relationship {member} – {contact}"))
}

async fn page_is_stored_with_contacts_companies_and_relationships(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = acme.page(vec![
        acme.sighting(OUTBOUND, "m1", &["SENT"]),
        acme.sighting(REPLY, "m2", &["INBOX"]),
        acme.sighting(NEWSLETTER, "m3", &["INBOX"]),
    ]);
    let summary = store
        .commit_page(&acme.tenant, acme.ann_link, &page, Some(&cursor("100")))
        .await
        .unwrap();
    assert_eq!(
        summary,
        PageSummary {
            added: 2,
            already_known: 0,
            excluded: 1
        }
    );
    let state = snapshot(&store, &acme.tenant).await;
    let keys: Vec<_> = state
        .activities
        .iter()
        .map(|a| a.dedupe_key.as_str())
        .collect();
    assert_eq!(keys, ["mid:1@acme.com", "mid:2@globex.co.uk"]);
    let outbound = &state.activities[0];
    assert_eq!(outbound.direction, "outbound");
    assert_eq!(outbound.subject.as_deref(), Some("Renewal"));
    assert_eq!(outbound.time_ms, acme.extract(OUTBOUND).time_ms);
    assert_eq!(outbound.participants.len(), 4);
    assert_eq!(
        outbound.sightings,
        [("ann@acme.com".into(), "m1".into(), vec!["SENT".into()])]
    );
    let contacts: Vec<_> = state
        .contacts
        .iter()
        .map(|c| (c.address.as_str(), c.company.as_deref()))
        .collect();
    assert_eq!(
        contacts,
        [
            ("bob@mail.globex.co.uk", Some("globex.co.uk")),
            ("dana@gmail.com", None)
        ]
    );
    assert_eq!(
        state.companies,
        [CompanyView {
            domain: "globex.co.uk".into(),
            contacts: 1
        }]
    );
    let ann_bob = relationship(&state, "ann@acme.com", "bob@mail.globex.co.uk");
    assert_eq!((ann_bob.sent, ann_bob.received, ann_bob.total), (1, 1, 2));
    assert_eq!(Some(ann_bob.first_ms), acme.extract(OUTBOUND).time_ms);
    assert_eq!(Some(ann_bob.last_ms), acme.extract(REPLY).time_ms);
    // Carl was only copied: co-present, neither sent nor received.
    let carl_bob = relationship(&state, "carl@acme.com", "bob@mail.globex.co.uk");
    assert_eq!(
        (carl_bob.sent, carl_bob.received, carl_bob.total),
        (0, 0, 1)
    );
    assert_eq!(
        store
            .cursor(&acme.tenant, acme.ann_link, "INBOX")
            .await
            .unwrap(),
        Some("100".into())
    );
}

async fn committing_a_page_twice_changes_nothing(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = acme.page(vec![
        acme.sighting(OUTBOUND, "m1", &["SENT"]),
        acme.sighting(REPLY, "m2", &["INBOX"]),
    ]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, Some(&cursor("100")))
        .await
        .unwrap();
    let first = snapshot(&store, &acme.tenant).await;
    let again = store
        .commit_page(&acme.tenant, acme.ann_link, &page, Some(&cursor("100")))
        .await
        .unwrap();
    assert_eq!(
        again,
        PageSummary {
            added: 0,
            already_known: 2,
            excluded: 0
        }
    );
    assert_eq!(snapshot(&store, &acme.tenant).await, first);
}

async fn one_message_in_two_mailboxes_is_one_activity_with_two_sightings(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let ann_page = acme.page(vec![acme.sighting(OUTBOUND, "a-1", &["SENT"])]);
    let carl_page = acme.page(vec![acme.sighting(OUTBOUND, "c-9", &["INBOX"])]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &ann_page, None)
        .await
        .unwrap();
    let summary = store
        .commit_page(&acme.tenant, acme.carl_link, &carl_page, None)
        .await
        .unwrap();
    assert_eq!(summary.already_known, 1);
    assert_eq!(store.count_activities(&acme.tenant).await.unwrap(), 1);
    let activity = &store.activities(&acme.tenant).await.unwrap()[0];
    assert_eq!(
        activity.sightings,
        [
            ("ann@acme.com".into(), "a-1".into(), vec!["SENT".into()]),
            ("carl@acme.com".into(), "c-9".into(), vec!["INBOX".into()]),
        ]
    );
    // The same copy seen again with another label keeps both labels.
    let relabelled = acme.page(vec![acme.sighting(OUTBOUND, "c-9", &["IMPORTANT"])]);
    store
        .commit_page(&acme.tenant, acme.carl_link, &relabelled, None)
        .await
        .unwrap();
    let activity = &store.activities(&acme.tenant).await.unwrap()[0];
    assert_eq!(activity.sightings[1].2, ["IMPORTANT", "INBOX"]);
}

async fn later_sighting_adds_bcc_without_touching_captured_fields(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let recipient_copy = acme.page(vec![acme.sighting(TO_ERIN, "a-7", &["INBOX"])]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &recipient_copy, None)
        .await
        .unwrap();
    let before = store.activities(&acme.tenant).await.unwrap().remove(0);
    assert!(before.participants.iter().all(|p| p.role != "bcc"));
    let before_relationships = store.relationships(&acme.tenant).await.unwrap();
    assert!(
        before_relationships
            .iter()
            .all(|r| r.member != "ann@acme.com")
    );

    let sender_copy = acme.page(vec![acme.sighting(TO_ERIN_SENDER_COPY, "c-7", &["SENT"])]);
    store
        .commit_page(&acme.tenant, acme.carl_link, &sender_copy, None)
        .await
        .unwrap();
    let after = store.activities(&acme.tenant).await.unwrap().remove(0);
    assert_eq!(
        (
            &after.id,
            &after.dedupe_key,
            &after.thread_key,
            &after.time_ms,
            &after.direction,
            &after.subject
        ),
        (
            &before.id,
            &before.dedupe_key,
            &before.thread_key,
            &before.time_ms,
            &before.direction,
            &before.subject
        )
    );
    let bcc: Vec<_> = after
        .participants
        .iter()
        .filter(|p| p.role == "bcc")
        .map(|p| p.address.as_str())
        .collect();
    assert_eq!(bcc, ["ann@acme.com"]);
    assert_eq!(after.sightings.len(), 2);
    // Ann now shares the activity with Erin, so the pair exists.
    let state = snapshot(&store, &acme.tenant).await;
    let ann_erin = relationship(&state, "ann@acme.com", "erin@initech.com");
    assert_eq!(
        (ann_erin.sent, ann_erin.received, ann_erin.total),
        (0, 0, 1)
    );
}

async fn failing_page_rolls_back_everything_including_the_cursor(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let first = acme.page(vec![acme.sighting(OUTBOUND, "m1", &["SENT"])]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &first, Some(&cursor("100")))
        .await
        .unwrap();
    let committed = snapshot(&store, &acme.tenant).await;
    inject_failure_on_provider_id(&store, "poison").await;

    // New activity, new contact, new company, an extra sighting, then the failure.
    let failing = acme.page(vec![
        acme.sighting(TO_ERIN, "m4", &["INBOX"]),
        acme.sighting(OUTBOUND, "m1-again", &["INBOX"]),
        acme.sighting(REPLY, "poison", &["INBOX"]),
    ]);
    let error = store
        .commit_page(&acme.tenant, acme.ann_link, &failing, Some(&cursor("200")))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    assert_eq!(snapshot(&store, &acme.tenant).await, committed);
    assert_eq!(
        store
            .cursor(&acme.tenant, acme.ann_link, "INBOX")
            .await
            .unwrap(),
        Some("100".into())
    );
}

/// A trigger that makes inserting a sighting with `provider_id` fail mid-page.
async fn inject_failure_on_provider_id(store: &Store, provider_id: &str) {
    let statements = match store.backend() {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER inject_failure BEFORE INSERT ON activity_sightings
             WHEN NEW.provider_message_id = '{provider_id}'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.provider_message_id = '{provider_id}' THEN
                         RAISE EXCEPTION 'injected failure';
                     END IF;
                     RETURN NEW;
                 END; $$"
            ),
            "CREATE TRIGGER inject_failure BEFORE INSERT ON activity_sightings
             FOR EACH ROW EXECUTE FUNCTION inject_failure()"
                .to_owned(),
        ],
    };
    for statement in statements {
        store
            .pool()
            .execute(AssertSqlSafe(statement))
            .await
            .unwrap();
    }
}

async fn tenants_are_isolated(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let other = Acme::create(&store, "acme-subsidiary").await;
    for tenant in [&acme, &other] {
        let page = tenant.page(vec![tenant.sighting(OUTBOUND, "m1", &["SENT"])]);
        let summary = store
            .commit_page(&tenant.tenant, tenant.ann_link, &page, None)
            .await
            .unwrap();
        assert_eq!(
            summary.added, 1,
            "the same dedupe key is new in each tenant"
        );
    }
    let only_acme = acme.page(vec![acme.sighting(REPLY, "m2", &["INBOX"])]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &only_acme, None)
        .await
        .unwrap();
    assert_eq!(store.count_activities(&acme.tenant).await.unwrap(), 2);
    assert_eq!(store.count_activities(&other.tenant).await.unwrap(), 1);
    let other_state = snapshot(&store, &other.tenant).await;
    assert_eq!(other_state.activities[0].dedupe_key, "mid:1@acme.com");
    assert_ne!(
        other_state.activities[0].id,
        store.activities(&acme.tenant).await.unwrap()[0].id
    );
    let ann_bob = relationship(&other_state, "ann@acme.com", "bob@mail.globex.co.uk");
    assert_eq!((ann_bob.sent, ann_bob.received), (1, 0));
    // A tenant cannot write through another tenant's mailbox link.
    let error = store
        .commit_page(&other.tenant, acme.ann_link, &only_acme, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnknownLink { .. }), "{error:?}");
}

async fn relationship_counts_do_not_depend_on_page_order(store: Store) {
    let forward = Acme::create(&store, "forward").await;
    let backward = Acme::create(&store, "backward").await;
    let sightings = |acme: &Acme| {
        vec![
            acme.page(vec![acme.sighting(OUTBOUND, "m1", &["SENT"])]),
            acme.page(vec![acme.sighting(REPLY, "m2", &["INBOX"])]),
            acme.page(vec![acme.sighting(TO_ERIN, "m4", &["INBOX"])]),
            acme.page(vec![acme.sighting(TO_ERIN_SENDER_COPY, "m5", &["SENT"])]),
        ]
    };
    for page in sightings(&forward) {
        store
            .commit_page(&forward.tenant, forward.ann_link, &page, None)
            .await
            .unwrap();
    }
    for page in sightings(&backward).into_iter().rev() {
        store
            .commit_page(&backward.tenant, backward.ann_link, &page, None)
            .await
            .unwrap();
    }
    let forward_relationships = store.relationships(&forward.tenant).await.unwrap();
    assert!(!forward_relationships.is_empty());
    assert_eq!(
        forward_relationships,
        store.relationships(&backward.tenant).await.unwrap()
    );
}

async fn relationships_match_core_relationship_book(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let pages = [
        (
            acme.ann_link,
            vec![acme.sighting(OUTBOUND, "m1", &["SENT"])],
        ),
        (acme.ann_link, vec![acme.sighting(REPLY, "m2", &["INBOX"])]),
        (
            acme.ann_link,
            vec![acme.sighting(TO_ERIN, "m4", &["INBOX"])],
        ),
        (
            acme.carl_link,
            vec![acme.sighting(TO_ERIN_SENDER_COPY, "c4", &["SENT"])],
        ),
    ];
    for (link, sightings) in pages {
        store
            .commit_page(&acme.tenant, link, &acme.page(sightings), None)
            .await
            .unwrap();
    }
    // Core's book over the same messages, each recorded once with all its sightings.
    let records = |raws: &[&str]| -> Vec<MessageRecord> {
        raws.iter()
            .map(|raw| MessageRecord::from_rfc5322(raw.as_bytes()))
            .collect()
    };
    let extractions = [
        acme.extractor.extract_sightings(&records(&[OUTBOUND])),
        acme.extractor.extract_sightings(&records(&[REPLY])),
        acme.extractor
            .extract_sightings(&records(&[TO_ERIN, TO_ERIN_SENDER_COPY])),
    ];
    let mut book = RelationshipBook::new();
    for extraction in &extractions {
        book.record(&Touch::from_extraction(extraction).unwrap());
    }
    assert_relationships_match_book(&store, &acme.tenant, &book).await;
}

/// The tenant's stored relationships equal `book`'s: counts and first/last exactly, the
/// score to within floating-point rounding.
async fn assert_relationships_match_book(
    store: &Store,
    tenant: &TenantId,
    book: &RelationshipBook,
) {
    let stored = store.relationships(tenant).await.unwrap();
    assert_eq!(stored.len(), book.len());
    for row in &stored {
        let member = EmailAddress::parse(&row.member).unwrap();
        let contact = EmailAddress::parse(&row.contact).unwrap();
        let expected = book.get(&member, &contact).unwrap();
        let counts = (row.first_ms, row.last_ms, row.sent, row.received, row.total);
        let expected_counts = (
            expected.first_ms,
            expected.last_ms,
            i64::try_from(expected.sent).unwrap(),
            i64::try_from(expected.received).unwrap(),
            i64::try_from(expected.total).unwrap(),
        );
        assert_eq!(counts, expected_counts, "{row:?}");
        assert!(
            (row.score_at_last - expected.score_at_last).abs() <= 1e-12 * expected.score_at_last,
            "{row:?} vs {expected:?}"
        );
        assert!(row.score_at_last > 0.0);
    }
}

/// The sightings each order of Ann's internal-looking copy and Carl's sent copy must
/// end with.
fn pricing_sightings() -> Vec<(String, String, Vec<String>)> {
    vec![
        ("ann@acme.com".into(), "a-5".into(), vec!["INBOX".into()]),
        ("carl@acme.com".into(), "c-5".into(), vec!["SENT".into()]),
    ]
}

async fn internal_looking_copy_seen_first_joins_the_activity_captured_later(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let ann_copy = acme.sighting(TO_ANN_BCC_ERIN, "a-5", &["INBOX"]);
    assert!(!ann_copy.extraction.is_captured());
    let held = store
        .commit_page(
            &acme.tenant,
            acme.ann_link,
            &acme.page(vec![ann_copy]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(held.excluded, 1);
    assert_eq!(store.count_activities(&acme.tenant).await.unwrap(), 0);

    let carl_copy = acme.sighting(TO_ANN_BCC_ERIN_SENDER_COPY, "c-5", &["SENT"]);
    store
        .commit_page(
            &acme.tenant,
            acme.carl_link,
            &acme.page(vec![carl_copy]),
            None,
        )
        .await
        .unwrap();
    let activities = store.activities(&acme.tenant).await.unwrap();
    assert_eq!(activities.len(), 1);
    assert_eq!(activities[0].sightings, pricing_sightings());
}

async fn internal_looking_copy_seen_last_joins_the_captured_activity(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let carl_copy = acme.sighting(TO_ANN_BCC_ERIN_SENDER_COPY, "c-5", &["SENT"]);
    store
        .commit_page(
            &acme.tenant,
            acme.carl_link,
            &acme.page(vec![carl_copy]),
            None,
        )
        .await
        .unwrap();
    let before = snapshot(&store, &acme.tenant).await;

    let ann_copy = acme.sighting(TO_ANN_BCC_ERIN, "a-5", &["INBOX"]);
    let attached = store
        .commit_page(
            &acme.tenant,
            acme.ann_link,
            &acme.page(vec![ann_copy]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        attached,
        PageSummary {
            added: 0,
            already_known: 1,
            excluded: 0
        }
    );
    let after = snapshot(&store, &acme.tenant).await;
    assert_eq!(after.activities[0].sightings, pricing_sightings());
    // Only the sighting is new: participants, contacts and relationships are unchanged.
    assert_eq!(
        after.activities[0].participants,
        before.activities[0].participants
    );
    assert_eq!(
        (&after.contacts, &after.relationships),
        (&before.contacts, &before.relationships)
    );
}

/// Ann's message `index` to Bob, Dana and Erin (named in a different order each time),
/// copying Carl.
fn update_message(index: usize) -> String {
    let to = if index.is_multiple_of(2) {
        "bob@mail.globex.co.uk, dana@gmail.com, erin@initech.com"
    } else {
        "erin@initech.com, dana@gmail.com, bob@mail.globex.co.uk"
    };
    format!(
        "From: ann@acme.com\nTo: {to}\nCc: carl@acme.com\nSubject: Update {index}\n\
         Message-ID: <update-{index}@acme.com>\nDate: Tue, 01 Jul 2025 10:{index:02}:00 +0000\n"
    )
}

/// Many pages of both mailboxes, naming the same contacts and messages in opposite
/// orders, committed at once: none deadlocks, is refused as locked, or loses another's
/// relationship update.
async fn concurrent_commits_sharing_contacts_lose_no_relationship_update(store: Store) {
    const MESSAGES: usize = 24;
    let acme = Acme::create(&store, "acme").await;
    let mut pages = Vec::new();
    for first in (0..MESSAGES).step_by(2) {
        let (a, b) = (update_message(first), update_message(first + 1));
        let ann = vec![
            acme.sighting(&a, &format!("a-{first}"), &["SENT"]),
            acme.sighting(&b, &format!("a-{}", first + 1), &["SENT"]),
        ];
        let carl = vec![
            acme.sighting(&b, &format!("c-{}", first + 1), &["INBOX"]),
            acme.sighting(&a, &format!("c-{first}"), &["INBOX"]),
        ];
        pages.push((acme.ann_link, acme.page(ann)));
        pages.push((acme.carl_link, acme.page(carl)));
    }
    let mut commits = tokio::task::JoinSet::new();
    for (link, page) in pages {
        let (store, tenant) = (store.clone(), acme.tenant.clone());
        commits.spawn(async move { store.commit_page(&tenant, link, &page, None).await });
    }
    while let Some(committed) = commits.join_next().await {
        committed.unwrap().unwrap();
    }
    let state = snapshot(&store, &acme.tenant).await;
    assert_eq!(state.activities.len(), MESSAGES);
    assert!(state.activities.iter().all(|a| a.sightings.len() == 2));
    assert_eq!(state.contacts.len(), 3);
    for contact in [
        "bob@mail.globex.co.uk",
        "dana@gmail.com",
        "erin@initech.com",
    ] {
        let expected = i64::try_from(MESSAGES).unwrap();
        let ann = relationship(&state, "ann@acme.com", contact);
        assert_eq!(
            (ann.sent, ann.total),
            (expected, expected),
            "ann – {contact}"
        );
        let carl = relationship(&state, "carl@acme.com", contact);
        assert_eq!(carl.total, expected, "carl – {contact}");
    }
}

/// When the copies of [`DATELESS`] (and of the undated Bcc message) were received:
/// Ann's on 15 June 2025, Carl's on 8 July, around Bob's dated reply of 2 July.
const ANN_RECEIVED_MS: i64 = 1_750_000_000_000;
const CARL_RECEIVED_MS: i64 = 1_752_000_000_000;

/// The incrementally kept relationships equal a rebuild from every activity: counts
/// and first/last exactly, the score to within floating-point rounding. Leaves the
/// rebuilt rows in place (they are the same).
async fn assert_relationships_equal_a_rebuild(store: &Store, tenant: &TenantId) {
    let incremental = store.relationships(tenant).await.unwrap();
    store.rebuild_relationships(tenant).await.unwrap();
    let rebuilt = store.relationships(tenant).await.unwrap();
    assert_eq!(incremental.len(), rebuilt.len());
    for (kept, expected) in incremental.iter().zip(&rebuilt) {
        assert_eq!(
            (&kept.member, &kept.contact, kept.first_ms, kept.last_ms),
            (
                &expected.member,
                &expected.contact,
                expected.first_ms,
                expected.last_ms
            )
        );
        assert_eq!(
            (kept.sent, kept.received, kept.total),
            (expected.sent, expected.received, expected.total),
            "{kept:?}"
        );
        assert!(
            (kept.score_at_last - expected.score_at_last).abs() <= 1e-12 * expected.score_at_last,
            "{kept:?} vs {expected:?}"
        );
    }
}

fn activity<'a>(snapshot: &'a Snapshot, dedupe_key: &str) -> &'a ActivityView {
    snapshot
        .activities
        .iter()
        .find(|a| a.dedupe_key == dedupe_key)
        .unwrap_or_else(|| panic!("no activity {dedupe_key}"))
}

/// A message without a Date header is timed by its earliest copy's `internalDate`
/// (capture contract), in whichever order the mailboxes holding its copies are synced:
/// a copy received earlier than the stored time lowers it, and relationships follow.
async fn dateless_message_takes_its_earliest_copys_time_whatever_order_copies_arrive(store: Store) {
    let latest_first = Acme::create(&store, "latest-first").await;
    let earliest_first = Acme::create(&store, "earliest-first").await;
    // Ann's page also holds Bob's dated reply, received "early": a Date header wins.
    let ann_page = |acme: &Acme| {
        acme.page(vec![
            acme.received(REPLY, "a-2", &["INBOX"], 1_000),
            acme.received(DATELESS, "a-6", &["INBOX"], ANN_RECEIVED_MS),
        ])
    };
    let carl_page = |acme: &Acme| {
        acme.page(vec![acme.received(
            DATELESS,
            "c-6",
            &["INBOX"],
            CARL_RECEIVED_MS,
        )])
    };
    let commit = |acme: &Acme, link: LinkId, page: CapturePage| {
        let (store, tenant) = (store.clone(), acme.tenant.clone());
        async move { store.commit_page(&tenant, link, &page, None).await.unwrap() }
    };
    commit(
        &latest_first,
        latest_first.carl_link,
        carl_page(&latest_first),
    )
    .await;
    let captured_late = snapshot(&store, &latest_first.tenant).await;
    assert_eq!(
        activity(&captured_late, "mid:6@globex.co.uk").time_ms,
        Some(CARL_RECEIVED_MS)
    );
    let summary = commit(
        &latest_first,
        latest_first.ann_link,
        ann_page(&latest_first),
    )
    .await;
    assert_eq!(
        summary,
        PageSummary {
            added: 1,
            already_known: 1,
            excluded: 0
        }
    );
    commit(
        &earliest_first,
        earliest_first.ann_link,
        ann_page(&earliest_first),
    )
    .await;
    commit(
        &earliest_first,
        earliest_first.carl_link,
        carl_page(&earliest_first),
    )
    .await;

    let reply_ms = acme_reply_ms(&latest_first);
    let dateless = records_received(&[(DATELESS, ANN_RECEIVED_MS), (DATELESS, CARL_RECEIVED_MS)]);
    let mut book = RelationshipBook::new();
    for extraction in [
        latest_first.extractor.extract_sightings(&dateless),
        latest_first
            .extractor
            .extract_sightings(&records_received(&[(REPLY, 1_000)])),
    ] {
        book.record(&Touch::from_extraction(&extraction).unwrap());
    }
    for acme in [&latest_first, &earliest_first] {
        let state = snapshot(&store, &acme.tenant).await;
        let undated = activity(&state, "mid:6@globex.co.uk");
        assert_eq!(
            undated.time_ms,
            Some(ANN_RECEIVED_MS),
            "{}",
            acme.tenant.as_str()
        );
        assert_eq!(undated.sightings.len(), 2);
        assert_eq!(
            activity(&state, "mid:2@globex.co.uk").time_ms,
            Some(reply_ms)
        );
        let ann_bob = relationship(&state, "ann@acme.com", "bob@mail.globex.co.uk");
        assert_eq!(
            (
                ann_bob.first_ms,
                ann_bob.last_ms,
                ann_bob.received,
                ann_bob.total
            ),
            (ANN_RECEIVED_MS, reply_ms, 2, 2)
        );
        let carl_bob = relationship(&state, "carl@acme.com", "bob@mail.globex.co.uk");
        assert_eq!(
            (carl_bob.first_ms, carl_bob.last_ms, carl_bob.total),
            (ANN_RECEIVED_MS, ANN_RECEIVED_MS, 1)
        );
        assert_relationships_match_book(&store, &acme.tenant, &book).await;
        assert_relationships_equal_a_rebuild(&store, &acme.tenant).await;
    }
    // A later copy seen again never raises the time.
    let before = snapshot(&store, &latest_first.tenant).await;
    commit(
        &latest_first,
        latest_first.carl_link,
        carl_page(&latest_first),
    )
    .await;
    assert_eq!(snapshot(&store, &latest_first.tenant).await, before);
}

/// Bob's reply's Date header, as the store keeps it.
fn acme_reply_ms(acme: &Acme) -> i64 {
    acme.extract(REPLY).time_ms.unwrap()
}

/// Records of the given headers, each received at its time.
fn records_received(copies: &[(&str, i64)]) -> Vec<MessageRecord> {
    copies
        .iter()
        .map(|(headers, ms)| received(headers, *ms))
        .collect()
}

/// A Date-less copy that looks internal on its own still counts among the activity's
/// copies: received first, it times the activity whether it is held until the sender's
/// copy captures the activity or joins the captured activity afterwards.
async fn held_dateless_copy_received_first_times_its_activity(store: Store) {
    let held_first = Acme::create(&store, "held-first").await;
    let held_last = Acme::create(&store, "held-last").await;
    let ann_copy = |acme: &Acme| {
        acme.page(vec![acme.received(
            UNDATED_TO_ANN_BCC_ERIN,
            "a-7",
            &["INBOX"],
            ANN_RECEIVED_MS,
        )])
    };
    let carl_copy = |acme: &Acme| {
        acme.page(vec![acme.received(
            UNDATED_TO_ANN_BCC_ERIN_SENDER_COPY,
            "c-7",
            &["SENT"],
            CARL_RECEIVED_MS,
        )])
    };
    let held = store
        .commit_page(
            &held_first.tenant,
            held_first.ann_link,
            &ann_copy(&held_first),
            None,
        )
        .await
        .unwrap();
    assert_eq!(held.excluded, 1);
    store
        .commit_page(
            &held_first.tenant,
            held_first.carl_link,
            &carl_copy(&held_first),
            None,
        )
        .await
        .unwrap();
    store
        .commit_page(
            &held_last.tenant,
            held_last.carl_link,
            &carl_copy(&held_last),
            None,
        )
        .await
        .unwrap();
    let joined = store
        .commit_page(
            &held_last.tenant,
            held_last.ann_link,
            &ann_copy(&held_last),
            None,
        )
        .await
        .unwrap();
    assert_eq!(joined.already_known, 1);

    let extraction = held_first.extractor.extract_sightings(&records_received(&[
        (UNDATED_TO_ANN_BCC_ERIN, ANN_RECEIVED_MS),
        (UNDATED_TO_ANN_BCC_ERIN_SENDER_COPY, CARL_RECEIVED_MS),
    ]));
    let mut book = RelationshipBook::new();
    book.record(&Touch::from_extraction(&extraction).unwrap());
    for acme in [&held_first, &held_last] {
        let state = snapshot(&store, &acme.tenant).await;
        let undated = activity(&state, "mid:7@acme.com");
        assert_eq!(
            undated.time_ms,
            Some(ANN_RECEIVED_MS),
            "{}",
            acme.tenant.as_str()
        );
        assert_eq!(undated.sightings.len(), 2);
        for member in ["ann@acme.com", "carl@acme.com"] {
            let pair = relationship(&state, member, "erin@initech.com");
            assert_eq!(
                (pair.first_ms, pair.last_ms),
                (ANN_RECEIVED_MS, ANN_RECEIVED_MS)
            );
        }
        assert_relationships_match_book(&store, &acme.tenant, &book).await;
        assert_relationships_equal_a_rebuild(&store, &acme.tenant).await;
    }
}
