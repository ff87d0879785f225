//! A member added later claims its part in mail captured before (migration `0011`,
//! `membership.rs`), on both backends: the result does not depend on when the member
//! was added, and the database permits no other change of a participant.

mod common;

use common::{Acme, OUTBOUND, received};
use sqlx::{AssertSqlSafe, Executor, Row};
use tributary_core::{CapturePolicy, Extractor, FreeMailList, MessageRecord, TenantDirectory};
use tributary_store::{
    ActivityView, Backend, CapturePage, CapturedSighting, LinkId, MemberId, MemberRole,
    RelationshipView, Store, TenantId,
};

on_both_backends!(
    member_added_later_ends_as_if_it_had_been_a_member_from_the_start,
    sweep_claims_rows_a_stale_extraction_committed_after_the_member_was_added,
    database_permits_only_a_member_claiming_its_internal_rows,
    a_member_made_active_again_claims_the_mail_of_its_suspension,
);

const XENA: &str = "xena@acme.com";
const XENA_ALIAS: &str = "x.wu@acme.com";

/// Ann writes to Bob, copying Xena.
const ANN_TO_BOB_CC_XENA: &str = "From: ann@acme.com\nTo: bob@mail.globex.co.uk\n\
    Cc: xena@acme.com\nSubject: Kickoff\nMessage-ID: <x1@acme.com>\n\
    Date: Tue, 01 Jul 2025 10:00:00 +0000\n";

/// Xena, from her alias, writes to Bob and Dana, copying Ann.
const XENA_ALIAS_TO_BOB: &str = "From: x.wu@acme.com\nTo: bob@mail.globex.co.uk, dana@gmail.com\n\
    Cc: ann@acme.com\nSubject: Plan\nMessage-ID: <x2@acme.com>\n\
    Date: Wed, 02 Jul 2025 10:00:00 +0000\n";

/// Bob answers Xena, copying Carl.
const BOB_TO_XENA: &str = "From: bob@mail.globex.co.uk\nTo: xena@acme.com\n\
    Cc: carl@acme.com\nSubject: Re: Plan\nMessage-ID: <x3@globex.co.uk>\n\
    In-Reply-To: <x2@acme.com>\nDate: Thu, 03 Jul 2025 10:00:00 +0000\n";

/// Erin writes to Xena, Ann and Carl without a Date header: timed by the earliest copy.
const UNDATED_FROM_ERIN: &str = "From: erin@initech.com\n\
    To: xena@acme.com, ann@acme.com, carl@acme.com\nSubject: Undated\n\
    Message-ID: <x4@initech.com>\n";

/// Carl writes to Xena, copying Erin; his sent copy also has Frank on Bcc.
const CARL_TO_XENA: &str = "From: carl@acme.com\nTo: xena@acme.com\nCc: erin@initech.com\n\
    Subject: Pricing\nMessage-ID: <x5@acme.com>\nDate: Fri, 04 Jul 2025 10:00:00 +0000\n";
const CARL_TO_XENA_SENDER_COPY: &str = "From: carl@acme.com\nTo: xena@acme.com\n\
    Cc: erin@initech.com\nBcc: frank@hooli.com\n\
    Subject: Pricing\nMessage-ID: <x5@acme.com>\nDate: Fri, 04 Jul 2025 10:00:00 +0000\n";

/// Bob writes to Xena after she became a member.
const BOB_TO_XENA_LATER: &str = "From: bob@mail.globex.co.uk\nTo: xena@acme.com\n\
    Subject: Follow-up\nMessage-ID: <x6@globex.co.uk>\n\
    Date: Mon, 07 Jul 2025 10:00:00 +0000\n";

/// A tenant's extractor: ann (alias ann.lee@), carl, and xena (alias x.wu@) when
/// `with_xena`.
fn extractor(with_xena: bool) -> Extractor {
    let mut directory = TenantDirectory::new();
    directory.add_domain("acme.com").unwrap();
    directory
        .add_member("ann@acme.com", ["ann.lee@acme.com"])
        .unwrap();
    directory.add_member("carl@acme.com", []).unwrap();
    if with_xena {
        directory.add_member(XENA, [XENA_ALIAS]).unwrap();
    }
    Extractor::new(directory, FreeMailList::default(), CapturePolicy::default())
}

fn sighting(extractor: &Extractor, record: MessageRecord, id: &str) -> CapturedSighting {
    CapturedSighting {
        extraction: extractor.extract(&record),
        provider_message_id: id.to_owned(),
        labels: vec!["INBOX".to_owned()],
    }
}

fn record(headers: &str) -> MessageRecord {
    MessageRecord::from_rfc5322(headers.as_bytes())
}

/// Mail captured before Xena is a member (in the late tenant), as (link, page).
fn first_pages(acme: &Acme, extractor: &Extractor) -> Vec<(LinkId, CapturePage)> {
    let ann = vec![
        sighting(extractor, record(ANN_TO_BOB_CC_XENA), "a1"),
        sighting(extractor, record(XENA_ALIAS_TO_BOB), "a2"),
        sighting(
            extractor,
            received(UNDATED_FROM_ERIN, 1_752_000_000_000),
            "a4",
        ),
    ];
    let carl = vec![
        sighting(extractor, record(BOB_TO_XENA), "c3"),
        sighting(extractor, record(CARL_TO_XENA), "c5"),
    ];
    vec![
        (acme.ann_link, CapturePage { sightings: ann }),
        (acme.carl_link, CapturePage { sightings: carl }),
    ]
}

/// Mail captured after: an earlier copy of the undated message, Carl's sent copy with a
/// Bcc, and new mail to Xena.
fn second_pages(acme: &Acme, extractor: &Extractor) -> Vec<(LinkId, CapturePage)> {
    let carl = vec![
        sighting(
            extractor,
            received(UNDATED_FROM_ERIN, 1_751_000_000_000),
            "c4",
        ),
        sighting(extractor, record(CARL_TO_XENA_SENDER_COPY), "c5s"),
    ];
    let ann = vec![sighting(extractor, record(BOB_TO_XENA_LATER), "a6")];
    vec![
        (acme.carl_link, CapturePage { sightings: carl }),
        (acme.ann_link, CapturePage { sightings: ann }),
    ]
}

async fn commit(store: &Store, acme: &Acme, pages: Vec<(LinkId, CapturePage)>) {
    for (link, page) in pages {
        store
            .commit_page(&acme.tenant, link, &page, None)
            .await
            .unwrap();
    }
}

async fn add_xena(store: &Store, tenant: &TenantId, aliases: &[&str]) -> MemberId {
    store
        .add_member(tenant, XENA, aliases, MemberRole::Member)
        .await
        .unwrap()
}

/// Every participant of the tenant: (dedupe key, address, role, kind, member's email).
type ParticipantRow = (String, String, String, String, Option<String>);

async fn participants(store: &Store, tenant: &TenantId) -> Vec<ParticipantRow> {
    sqlx::query(
        "SELECT a.dedupe_key, p.address, p.role, p.kind, m.email
         FROM activity_participants p
         JOIN activities a ON a.tenant_id = p.tenant_id AND a.id = p.activity_id
         LEFT JOIN members m ON m.tenant_id = p.tenant_id AND m.id = p.member_id
         WHERE p.tenant_id = $1
         ORDER BY a.dedupe_key, p.address, p.role",
    )
    .bind(tenant.as_str())
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| {
        (
            row.try_get(0).unwrap(),
            row.try_get(1).unwrap(),
            row.try_get(2).unwrap(),
            row.try_get(3).unwrap(),
            row.try_get(4).unwrap(),
        )
    })
    .collect()
}

/// The participant rows of `address`: (kind, member's email).
fn rows_of<'a>(
    rows: &'a [ParticipantRow],
    address: &'a str,
) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
    rows.iter()
        .filter(move |row| row.1 == address)
        .map(|row| (row.3.as_str(), row.4.as_deref()))
}

/// Activities without their ids, which differ between tenants.
async fn activities(store: &Store, tenant: &TenantId) -> Vec<ActivityView> {
    let mut activities = store.activities(tenant).await.unwrap();
    for activity in &mut activities {
        activity.id = 0;
    }
    activities
}

/// Relationships equal field by field, scores within 1e-9.
fn assert_same_relationships(actual: &[RelationshipView], expected: &[RelationshipView]) {
    let keys = |rows: &[RelationshipView]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.member.clone(), r.contact.clone()))
            .collect()
    };
    assert_eq!(keys(actual), keys(expected));
    for (a, e) in actual.iter().zip(expected) {
        let pair = format!("{} – {}", e.member, e.contact);
        assert_eq!(a.first_ms, e.first_ms, "first of {pair}");
        assert_eq!(a.last_ms, e.last_ms, "last of {pair}");
        assert_eq!(a.sent, e.sent, "sent of {pair}");
        assert_eq!(a.received, e.received, "received of {pair}");
        assert_eq!(a.total, e.total, "total of {pair}");
        assert!(
            (a.score_at_last - e.score_at_last).abs() <= 1e-9,
            "score of {pair}: {} ≠ {}",
            a.score_at_last,
            e.score_at_last
        );
    }
}

/// Relationships after a rebuild from scratch equal `rows`.
async fn assert_rebuild_agrees(store: &Store, tenant: &TenantId, rows: &[RelationshipView]) {
    store.rebuild_relationships(tenant).await.unwrap();
    assert_same_relationships(&store.relationships(tenant).await.unwrap(), rows);
}

/// Xena is a member of `early` before any mail is captured, and becomes one of `late`
/// after the first pages (her primary address, then her alias): both tenants end with
/// the same participants and relationships.
async fn member_added_later_ends_as_if_it_had_been_a_member_from_the_start(store: Store) {
    let early = Acme::create(&store, "early").await;
    add_xena(&store, &early.tenant, &[XENA_ALIAS]).await;
    let with_xena = extractor(true);
    commit(&store, &early, first_pages(&early, &with_xena)).await;
    commit(&store, &early, second_pages(&early, &with_xena)).await;

    let late = Acme::create(&store, "late").await;
    commit(&store, &late, first_pages(&late, &extractor(false))).await;
    let before = participants(&store, &late.tenant).await;
    assert!(rows_of(&before, XENA).count() >= 3);
    assert!(rows_of(&before, XENA).all(|row| row == ("internal", None)));
    let relationships_before = store.relationships(&late.tenant).await.unwrap();
    assert!(relationships_before.iter().all(|r| r.member != XENA));

    // Her primary address first: only its rows become hers.
    add_xena(&store, &late.tenant, &[]).await;
    let primary_only = participants(&store, &late.tenant).await;
    assert!(rows_of(&primary_only, XENA).all(|row| row == ("member", Some(XENA))));
    assert_eq!(
        rows_of(&primary_only, XENA_ALIAS).collect::<Vec<_>>(),
        [("internal", None)]
    );
    // Then her alias, as delegation sync adds one to an existing member.
    add_xena(&store, &late.tenant, &[XENA_ALIAS]).await;
    let claimed = participants(&store, &late.tenant).await;
    assert_eq!(
        rows_of(&claimed, XENA_ALIAS).collect::<Vec<_>>(),
        [("member", Some(XENA))]
    );
    // Nothing else changed: every other row is as it was.
    let others = |rows: &[ParticipantRow]| -> Vec<ParticipantRow> {
        rows.iter()
            .filter(|row| row.1 != XENA && row.1 != XENA_ALIAS)
            .cloned()
            .collect()
    };
    assert_eq!(others(&claimed), others(&before));
    // Another claim finds nothing left.
    let xena = store
        .member_by_address(&late.tenant, XENA)
        .await
        .unwrap()
        .unwrap()
        .id;
    assert_eq!(
        store
            .claim_member_participants(&late.tenant, xena)
            .await
            .unwrap(),
        0
    );

    commit(&store, &late, second_pages(&late, &with_xena)).await;
    assert_eq!(
        participants(&store, &late.tenant).await,
        participants(&store, &early.tenant).await
    );
    assert_eq!(
        activities(&store, &late.tenant).await,
        activities(&store, &early.tenant).await
    );
    let expected = store.relationships(&early.tenant).await.unwrap();
    assert!(expected.iter().any(|r| r.member == XENA && r.sent > 0));
    assert!(expected.iter().any(|r| r.member == XENA && r.received > 0));
    let actual = store.relationships(&late.tenant).await.unwrap();
    assert_same_relationships(&actual, &expected);
    assert_rebuild_agrees(&store, &late.tenant, &actual).await;
    assert_rebuild_agrees(&store, &early.tenant, &expected).await;
}

/// A page extracted before Xena was added (an engine still built from the old
/// directory) and committed after her claim leaves her rows `internal`; the sweep over
/// active members claims them.
async fn sweep_claims_rows_a_stale_extraction_committed_after_the_member_was_added(store: Store) {
    let early = Acme::create(&store, "early").await;
    add_xena(&store, &early.tenant, &[XENA_ALIAS]).await;
    commit(&store, &early, first_pages(&early, &extractor(true))).await;

    let late = Acme::create(&store, "late").await;
    let stale = first_pages(&late, &extractor(false));
    add_xena(&store, &late.tenant, &[XENA_ALIAS]).await;
    commit(&store, &late, stale).await;
    let stale_rows = participants(&store, &late.tenant).await;
    assert!(rows_of(&stale_rows, XENA).all(|row| row == ("internal", None)));

    let claimed = store
        .claim_unclaimed_participants(&late.tenant)
        .await
        .unwrap();
    let rows = participants(&store, &late.tenant).await;
    let xena_rows = rows_of(&rows, XENA).count() + rows_of(&rows, XENA_ALIAS).count();
    assert_eq!(claimed, xena_rows as u64);
    assert_eq!(rows, participants(&store, &early.tenant).await);
    let actual = store.relationships(&late.tenant).await.unwrap();
    assert_same_relationships(&actual, &store.relationships(&early.tenant).await.unwrap());
    assert_rebuild_agrees(&store, &late.tenant, &actual).await;
    assert_eq!(
        store
            .claim_unclaimed_participants(&late.tenant)
            .await
            .unwrap(),
        0
    );
}

/// Runs `statement` with `member` as $1; the database must refuse it as a change of a
/// captured participant.
async fn assert_refused(store: &Store, statement: &str, member: MemberId) {
    let outcome = store
        .pool()
        .execute(sqlx::query(AssertSqlSafe(statement)).bind(member.0))
        .await;
    match outcome {
        Ok(_) => panic!("the database accepted: {statement} (with {member:?})"),
        Err(error) => assert!(
            error.to_string().contains("immutable"),
            "{statement} failed for another reason: {error}"
        ),
    }
}

/// The one change a participant permits: an `internal` row without a member becomes a
/// `member` row of the member owning its address, every other column unchanged. Any
/// other update (alone or along with a permitted claim) and any delete is refused.
async fn database_permits_only_a_member_claiming_its_internal_rows(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = acme.page(vec![
        acme.sighting(OUTBOUND, "m1", &["SENT"]),
        acme.sighting(ANN_TO_BOB_CC_XENA, "m2", &["SENT"]),
    ]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    // Xena owns her address, but her rows are not claimed yet: a member inserted as
    // add_member would, without its claim.
    let xena = MemberId(
        sqlx::query(
            "INSERT INTO members (tenant_id, email, role) VALUES ('acme', $1, 'member')
             RETURNING id",
        )
        .bind(XENA)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap(),
    );
    sqlx::query(
        "INSERT INTO member_addresses (tenant_id, address, member_id) VALUES ('acme', $1, $2)",
    )
    .bind(XENA)
    .bind(xena.0)
    .execute(store.pool())
    .await
    .unwrap();
    let before = participants(&store, &acme.tenant).await;

    let xena_row = "WHERE address = 'xena@acme.com'";
    for (statement, member) in [
        // A claim changing anything else too.
        (
            format!(
                "UPDATE activity_participants SET member_id = $1, kind = 'member', role = 'to' {xena_row}"
            ),
            xena,
        ),
        (
            format!(
                "UPDATE activity_participants SET member_id = $1, kind = 'member', address = 'xw@acme.com' {xena_row}"
            ),
            xena,
        ),
        (
            format!(
                "UPDATE activity_participants SET member_id = $1, kind = 'member', activity_id = activity_id + 1 {xena_row}"
            ),
            xena,
        ),
        (
            format!(
                "UPDATE activity_participants SET member_id = $1, kind = 'member', tenant_id = 'other' {xena_row}"
            ),
            xena,
        ),
        (
            format!(
                "UPDATE activity_participants SET member_id = $1, kind = 'member', contact_id = (SELECT MIN(id) FROM contacts) {xena_row}"
            ),
            xena,
        ),
        // Half a claim.
        (
            format!("UPDATE activity_participants SET member_id = $1 {xena_row}"),
            xena,
        ),
        (
            format!("UPDATE activity_participants SET kind = 'member' {xena_row} AND $1 > 0"),
            xena,
        ),
        // Another member claiming an address that is not its own.
        (
            format!("UPDATE activity_participants SET member_id = $1, kind = 'member' {xena_row}"),
            acme.ann,
        ),
        // An external participant made a member.
        (
            "UPDATE activity_participants SET member_id = $1, kind = 'member', contact_id = NULL
          WHERE address = 'bob@mail.globex.co.uk'"
                .to_owned(),
            acme.ann,
        ),
        // A member's row given to another member, or taken from it.
        (
            "UPDATE activity_participants SET member_id = $1 WHERE address = 'carl@acme.com'"
                .to_owned(),
            acme.ann,
        ),
        (
            "UPDATE activity_participants SET member_id = NULL, kind = 'internal'
          WHERE address = 'carl@acme.com' AND $1 > 0"
                .to_owned(),
            acme.carl,
        ),
        (
            "DELETE FROM activity_participants WHERE $1 > 0".to_owned(),
            xena,
        ),
    ] {
        assert_refused(&store, &statement, member).await;
    }
    assert_eq!(participants(&store, &acme.tenant).await, before);

    // The permitted claim, by the member owning the address.
    let claimed = sqlx::query(AssertSqlSafe(format!(
        "UPDATE activity_participants SET member_id = $1, kind = 'member' {xena_row}"
    )))
    .bind(xena.0)
    .execute(store.pool())
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(claimed, 1);
    let after = participants(&store, &acme.tenant).await;
    assert_eq!(
        rows_of(&after, XENA).collect::<Vec<_>>(),
        [("member", Some(XENA))]
    );
    // Claimed rows are member rows: they can be neither given back nor claimed again.
    for statement in [
        format!(
            "UPDATE activity_participants SET member_id = NULL, kind = 'internal' {xena_row} AND $1 > 0"
        ),
        format!("UPDATE activity_participants SET member_id = NULL {xena_row} AND $1 > 0"),
        format!("UPDATE activity_participants SET member_id = $1, kind = 'member' {xena_row}"),
    ] {
        assert_refused(&store, &statement, xena).await;
    }
    if store.backend() == Backend::Postgres {
        let truncate = store.pool().execute("TRUNCATE activity_participants").await;
        assert!(truncate.is_err_and(|error| error.to_string().contains("immutable")));
    }
    assert_eq!(participants(&store, &acme.tenant).await, after);
}

/// While suspended a member is not in the engine's directory, so mail captured then
/// names it `internal`; made active again, it claims those rows.
async fn a_member_made_active_again_claims_the_mail_of_its_suspension(store: Store) {
    let early = Acme::create(&store, "early").await;
    add_xena(&store, &early.tenant, &[XENA_ALIAS]).await;
    commit(&store, &early, first_pages(&early, &extractor(true))).await;

    let suspended = Acme::create(&store, "suspended").await;
    let xena = add_xena(&store, &suspended.tenant, &[XENA_ALIAS]).await;
    store
        .set_member_active(&suspended.tenant, xena, false)
        .await
        .unwrap();
    commit(
        &store,
        &suspended,
        first_pages(&suspended, &extractor(false)),
    )
    .await;
    let rows = participants(&store, &suspended.tenant).await;
    assert!(rows_of(&rows, XENA).all(|row| row == ("internal", None)));

    store
        .set_member_active(&suspended.tenant, xena, true)
        .await
        .unwrap();
    assert_eq!(
        participants(&store, &suspended.tenant).await,
        participants(&store, &early.tenant).await
    );
    let actual = store.relationships(&suspended.tenant).await.unwrap();
    assert_same_relationships(&actual, &store.relationships(&early.tenant).await.unwrap());
    assert_rebuild_agrees(&store, &suspended.tenant, &actual).await;
}
