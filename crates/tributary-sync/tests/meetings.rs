//! Meetings from every provider's calendars, written once (issue 15, "Engine"): a full
//! listing equals the emulator's meeting truth (captured and upcoming, same "now"), a
//! live reschedule and a cancellation are picked up incrementally, an expired cursor
//! lists again without duplicates, a meeting moves from upcoming to captured when it
//! ends, a calendar backfill stopped mid-way resumes to the same state, and a calendar
//! that fails alone (Google: the calendar scope not delegated;
//! Microsoft: `Calendars.Read` removed) leaves mail syncing.

mod common;

use common::{
    AnyEmulated, Provider, Tenant, assert_meetings_match, test_pacing, truth_meeting_key,
};
use tributary_core::{CalendarSync, CapturePolicy, FreeMailList, MeetingPolicy};
use tributary_emulator::testing::truth_time_ms;
use tributary_store::{LinkStatus, MeetingsOf, MemberRole, Store};
use tributary_sync::{EngineConfig, LinkOutcome, SyncEngine};

on_every_provider!(
    a_full_sync_equals_the_meeting_truth,
    a_live_reschedule_and_cancel_are_picked_up_incrementally,
    an_expired_calendar_cursor_lists_again_without_duplicates,
    a_meeting_moves_from_upcoming_to_captured_when_it_ends,
    a_calendar_failing_alone_leaves_mail_syncing,
    a_crashed_calendar_backfill_resumes_to_the_truth,
    the_calendar_sync_permission_decides_whose_calendars_are_read,
);

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn config() -> EngineConfig {
    EngineConfig {
        pacing: test_pacing(),
        // Small pages: listings span several.
        page_size: 7,
        ..EngineConfig::default()
    }
}

async fn setup(provider: Provider, store: &Store) -> (AnyEmulated, Tenant) {
    let emulated = provider.emulator(4, 5).await;
    let tenant = provider.connect(&emulated, store, config()).await;
    (emulated, tenant)
}

/// Syncs every link and checks mail and calendar both ended healthy.
async fn sync_healthy(tenant: &Tenant) {
    for outcome in tenant.engine.sync_all().await.unwrap() {
        assert!(
            matches!(outcome, LinkOutcome::Synced { .. }),
            "mail failed: {outcome:?}"
        );
    }
    for link in tenant.store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
        let calendar = tenant
            .store
            .calendar_state(&tenant.id, link.id)
            .await
            .unwrap();
        assert_eq!(
            calendar.status,
            LinkStatus::Idle,
            "{}: {calendar:?}",
            link.mailbox
        );
        assert!(
            calendar.cursor.is_some(),
            "{}: no calendar cursor",
            link.mailbox
        );
    }
}

/// The same tenant's engine with "now" at `now_ms`.
fn engine_at(tenant: &Tenant, now_ms: i64) -> SyncEngine {
    engine_with(tenant, now_ms, CapturePolicy::default())
}

/// The same tenant's engine with "now" at `now_ms` and `policy`.
fn engine_with(tenant: &Tenant, now_ms: i64, policy: CapturePolicy) -> SyncEngine {
    let extractor = tenant.delegation.extractor(FreeMailList::default(), policy);
    SyncEngine::new(
        tenant.store.clone(),
        tenant.engine.connector().clone(),
        tenant.id.clone(),
        extractor,
        EngineConfig {
            reference_now_ms: Some(now_ms),
            ..config()
        },
    )
}

async fn a_full_sync_equals_the_meeting_truth(provider: Provider, store: Store) {
    let (emulated, tenant) = setup(provider, &store).await;
    let now = emulated.now_ms();
    let truth = emulated.meetings_truth(now);
    assert!(
        truth.meetings.len() > 10,
        "a realistic calendar: {}",
        truth.meetings.len()
    );
    assert!(!truth.upcoming.is_empty());
    assert!(
        truth.meetings.iter().any(|m| m.large),
        "the all-company briefing"
    );
    assert!(truth.meetings.iter().any(|m| m.private));

    sync_healthy(&tenant).await;
    assert_meetings_match(&store, &tenant.id, &truth).await;

    // Nothing changed: the next run changes nothing.
    sync_healthy(&tenant).await;
    assert_meetings_match(&store, &tenant.id, &truth).await;
}

async fn a_live_reschedule_and_cancel_are_picked_up_incrementally(
    provider: Provider,
    store: Store,
) {
    let (emulated, tenant) = setup(provider, &store).await;
    let now = emulated.now_ms();
    sync_healthy(&tenant).await;

    let before = emulated.meetings_truth(now);
    let (moved, cancelled) = {
        let calendars = emulated.calendars().read();
        let uid_of = |m: &common::TruthMeeting| {
            calendars
                .meetings
                .iter()
                .find(|meeting| meeting.ical_uid == m.ical_uid)
                .cloned()
                .expect("a truth meeting is in the calendars")
        };
        let single = before
            .upcoming
            .iter()
            .map(uid_of)
            .find(|m| m.recurrence.is_none())
            .expect("an upcoming single meeting");
        let occurrence = before
            .upcoming
            .iter()
            .find(|m| uid_of(m).recurrence.is_some())
            .expect("an upcoming occurrence of a series");
        (
            single,
            (
                uid_of(occurrence),
                truth_time_ms(&occurrence.original_start),
            ),
        )
    };
    {
        let mut calendars = emulated.calendars().write();
        // A day later, same length: a new start, so a new key for a single event.
        calendars
            .reschedule(
                &moved.id,
                None,
                moved.start_ms + 24 * HOUR,
                moved.end_ms + 24 * HOUR,
                now,
            )
            .unwrap();
        calendars
            .cancel(&cancelled.0.id, Some(cancelled.1), now)
            .unwrap();
    }
    let after = emulated.meetings_truth(now);
    assert_ne!(
        before.upcoming, after.upcoming,
        "the changes show in the truth"
    );

    sync_healthy(&tenant).await;
    // A full listing would leave the cancelled occurrence's upcoming copy behind: only
    // the incremental changes (with their cancelled items) bring the store to the truth.
    assert_meetings_match(&store, &tenant.id, &after).await;
    let gone = before
        .upcoming
        .iter()
        .find(|m| {
            m.ical_uid == cancelled.0.ical_uid && truth_time_ms(&m.original_start) == cancelled.1
        })
        .map(truth_meeting_key)
        .unwrap();
    let listed = upcoming_keys(&tenant, now).await;
    assert!(!listed.contains(&gone), "{gone} was cancelled");
}

/// Every upcoming meeting the store lists at `now_ms`, by key, read per member.
async fn upcoming_keys(tenant: &Tenant, now_ms: i64) -> Vec<String> {
    let mut keys = Vec::new();
    for member in tenant.store.members(&tenant.id).await.unwrap() {
        for view in tenant
            .store
            .upcoming_meetings_of(&tenant.id, &MeetingsOf::Member(member.id), now_ms, 500)
            .await
            .unwrap()
        {
            keys.push(view.key);
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

async fn an_expired_calendar_cursor_lists_again_without_duplicates(
    provider: Provider,
    store: Store,
) {
    let (emulated, tenant) = setup(provider, &store).await;
    let now = emulated.now_ms();
    sync_healthy(&tenant).await;
    let captured = store.count_meetings(&tenant.id).await.unwrap();
    let upcoming = upcoming_keys(&tenant, now).await;

    provider.expire_calendar_cursors(&emulated);
    sync_healthy(&tenant).await;
    assert_eq!(store.count_meetings(&tenant.id).await.unwrap(), captured);
    assert_eq!(upcoming_keys(&tenant, now).await, upcoming);
    assert_meetings_match(&store, &tenant.id, &emulated.meetings_truth(now)).await;

    // A meeting cancelled while no cursor followed the calendars: the listing after the
    // gone cursor no longer holds it, and it must not stay upcoming.
    let before = emulated.meetings_truth(now);
    let cancelled = {
        let calendars = emulated.calendars().read();
        before
            .upcoming
            .iter()
            .filter_map(|m| calendars.meetings.iter().find(|c| c.ical_uid == m.ical_uid))
            .find(|m| m.recurrence.is_none())
            .expect("an upcoming single meeting")
            .clone()
    };
    provider.expire_calendar_cursors(&emulated);
    emulated
        .calendars()
        .write()
        .cancel(&cancelled.id, None, now)
        .unwrap();
    provider.expire_calendar_cursors(&emulated);
    sync_healthy(&tenant).await;
    let after = emulated.meetings_truth(now);
    assert_eq!(after.upcoming.len() + 1, before.upcoming.len());
    assert_meetings_match(&store, &tenant.id, &after).await;
    assert_eq!(store.count_meetings(&tenant.id).await.unwrap(), captured);
}

async fn a_meeting_moves_from_upcoming_to_captured_when_it_ends(provider: Provider, store: Store) {
    let (emulated, tenant) = setup(provider, &store).await;
    let now = emulated.now_ms();
    sync_healthy(&tenant).await;
    let truth = emulated.meetings_truth(now);
    let first = truth
        .upcoming
        .iter()
        .min_by_key(|m| truth_time_ms(&m.end))
        .expect("an upcoming meeting");
    let key = truth_meeting_key(first);
    let end = truth_time_ms(&first.end);
    assert!(upcoming_keys(&tenant, now).await.contains(&key));
    let ended_by = |at: i64| {
        truth
            .upcoming
            .iter()
            .filter(|m| truth_time_ms(&m.end) <= at)
            .count()
    };
    let captured = store.count_meetings(&tenant.id).await.unwrap();

    // The provider reports no change: time alone moves the meeting.
    let later = end + MINUTE;
    let outcomes = engine_at(&tenant, later).sync_all().await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LinkOutcome::Synced { .. }))
    );
    assert!(!upcoming_keys(&tenant, later).await.contains(&key));
    assert_eq!(
        store.count_meetings(&tenant.id).await.unwrap(),
        captured + i64::try_from(ended_by(later)).unwrap()
    );
    let member = first.members.first().expect("a member took part");
    let member = store
        .member_by_address(&tenant.id, member)
        .await
        .unwrap()
        .unwrap();
    let meetings = store
        .meetings_of(&tenant.id, &MeetingsOf::Member(member.id), 500)
        .await
        .unwrap();
    let stored = meetings
        .iter()
        .find(|m| m.key == key)
        .expect("the ended meeting is captured");
    assert_eq!(stored.end_ms, end);
    assert_eq!(stored.title, first.title);
    let mut calendars = first.calendars.clone();
    calendars.sort();
    assert_eq!(stored.calendars, calendars);
}

async fn a_calendar_failing_alone_leaves_mail_syncing(provider: Provider, store: Store) {
    let (emulated, tenant) = setup(provider, &store).await;
    let revoked = provider.revoke_calendar(&emulated).await;

    let outcomes = tenant.engine.sync_all().await.unwrap();
    assert!(!outcomes.is_empty());
    for outcome in &outcomes {
        assert!(
            matches!(outcome, LinkOutcome::Synced { .. }),
            "mail keeps syncing: {outcome:?}"
        );
    }
    common::assert_store_matches(
        &store,
        &tenant.id,
        emulated.truth(),
        emulated.time_precision_ms(),
    )
    .await;
    for link in store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Idle, "mail stays idle: {link:?}");
        let calendar = store.calendar_state(&tenant.id, link.id).await.unwrap();
        assert_eq!(
            calendar.status,
            revoked.status.into(),
            "{}: {calendar:?}",
            link.mailbox
        );
        let message = calendar.provider_message.unwrap_or_default();
        assert!(message.contains(revoked.message), "{message}");
        assert!(
            message.to_lowercase().contains("calendar"),
            "the fix names the calendar permission: {message}"
        );
    }
    assert_eq!(store.count_meetings(&tenant.id).await.unwrap(), 0);
}

async fn a_crashed_calendar_backfill_resumes_to_the_truth(provider: Provider, store: Store) {
    let emulated = provider.emulator(4, 5).await;
    let config = EngineConfig {
        page_size: 3,
        concurrency: 1,
        ..config()
    };
    let tenant = provider.connect(&emulated, &store, config).await;
    let engine = tenant.engine.clone();
    let running = tokio::spawn(async move { engine.sync_all().await });
    // Stopped once the first calendar page is in, as a killed worker would be.
    while store.count_meetings(&tenant.id).await.unwrap() == 0 {
        assert!(!running.is_finished(), "the sync ended before any meeting");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    running.abort();
    assert!(
        running.await.is_err_and(|e| e.is_cancelled()),
        "not stopped mid-sync"
    );

    sync_healthy(&tenant).await;
    assert_meetings_match(
        &store,
        &tenant.id,
        &emulated.meetings_truth(emulated.now_ms()),
    )
    .await;
}

async fn the_calendar_sync_permission_decides_whose_calendars_are_read(
    provider: Provider,
    store: Store,
) {
    // Enough users that some linked members are directory administrators and some not.
    let emulated = provider.emulator(10, 2).await;
    let tenant = provider.connect(&emulated, &store, config()).await;
    let now = emulated.now_ms();
    let with = |calendar_sync| CapturePolicy {
        meetings: MeetingPolicy {
            calendar_sync,
            ..MeetingPolicy::default()
        },
        ..CapturePolicy::default()
    };
    let links = store.links(&tenant.id).await.unwrap();
    let read = async |link: &tributary_store::LinkView| {
        store
            .calendar_state(&tenant.id, link.id)
            .await
            .unwrap()
            .cursor
            .is_some()
    };

    engine_with(&tenant, now, with(CalendarSync::Nobody))
        .sync_all()
        .await
        .unwrap();
    for link in &links {
        assert!(
            !read(link).await,
            "{}: read with nobody's allowed",
            link.mailbox
        );
    }
    assert_eq!(store.count_meetings(&tenant.id).await.unwrap(), 0);

    engine_with(&tenant, now, with(CalendarSync::Admins))
        .sync_all()
        .await
        .unwrap();
    let mut admins = 0;
    for link in &links {
        let member = store
            .member_by_address(&tenant.id, &link.mailbox)
            .await
            .unwrap()
            .expect("a linked member");
        let admin = member.role == MemberRole::Admin;
        admins += usize::from(admin);
        assert_eq!(read(link).await, admin, "{}", link.mailbox);
    }
    // Both directories mark administrators (Google's `isAdmin`, Microsoft's Global
    // Administrator role members), so "administrators only" reads some calendars, not all.
    assert!(
        admins > 0 && admins < links.len(),
        "{provider:?}: {admins} of {}",
        links.len()
    );
}
