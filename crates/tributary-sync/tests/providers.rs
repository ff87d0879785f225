//! What holds for every provider, written once and run per provider and backend
//! (`on_every_provider!`): a full sync equals the organization's ground truth, a gone
//! cursor resyncs without duplicates, revoked access gives the status the admin must
//! see, and a crashed full sync resumes to the truth.

mod common;

use common::{Provider, assert_store_matches, test_pacing};
use std::time::Duration;
use tributary_store::{ConnectionKind, LinkStatus, Store};
use tributary_sync::{EngineConfig, LinkOutcome, SyncMode, SyncSummary};

on_every_provider!(
    full_sync_equals_truth,
    a_gone_cursor_resyncs_without_duplicates,
    revoked_access_gives_the_status_the_admin_sees,
    a_crashed_full_sync_resumes_to_the_truth,
    links_of_another_provider_are_left_alone,
);

fn config() -> EngineConfig {
    EngineConfig {
        pacing: test_pacing(),
        ..EngineConfig::default()
    }
}

/// Every link's summary, or a panic naming the link that failed.
fn summaries(outcomes: Vec<LinkOutcome>) -> Vec<(tributary_store::LinkId, SyncSummary)> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            LinkOutcome::Synced { link, summary } => (link, summary),
            failed => panic!("a link failed: {failed:?}"),
        })
        .collect()
}

async fn full_sync_equals_truth(provider: Provider, store: Store) {
    let emulated = provider.emulator(6, 40).await;
    let tenant = provider.connect(&emulated, &store, config()).await;
    let links = store.links(&tenant.id).await.unwrap();
    assert_eq!(links.len(), tenant.delegation.links.len());
    for link in &links {
        // The link records which connection it belongs to.
        assert_eq!(link.provider, provider.kind(), "{link:?}");
    }
    assert_eq!(tenant.engine.connector().kind(), provider.kind());

    let synced = summaries(tenant.engine.sync_all().await.unwrap());
    assert_eq!(synced.len(), links.len());
    for (_, summary) in &synced {
        assert_eq!(summary.mode, SyncMode::Full);
        assert_eq!(summary.unaccounted, 0, "{summary:?}");
    }
    assert_store_matches(
        &store,
        &tenant.id,
        emulated.truth(),
        emulated.time_precision_ms(),
    )
    .await;
    let streams = tenant.engine.connector().cursor_streams();
    assert!(!streams.is_empty());
    for link in store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
        assert_eq!(link.last_summary.unwrap()["mode"], "full");
        // Every stream the provider keeps is committed, namespaced by the provider.
        for stream in streams {
            assert!(stream.contains('.'), "{stream} is not namespaced");
            let cursor = store.cursor(&tenant.id, link.id, stream).await.unwrap();
            assert!(cursor.is_some(), "{}: no {stream} cursor", link.mailbox);
        }
    }

    // Nothing changed: the next run is incremental and adds nothing.
    let before = store.count_activities(&tenant.id).await.unwrap();
    for (_, summary) in summaries(tenant.engine.sync_all().await.unwrap()) {
        assert_eq!(summary.mode, SyncMode::Incremental);
        assert_eq!(summary.added, 0);
    }
    assert_eq!(store.count_activities(&tenant.id).await.unwrap(), before);
}

async fn a_gone_cursor_resyncs_without_duplicates(provider: Provider, store: Store) {
    let emulated = provider.emulator(6, 40).await;
    let tenant = provider.connect(&emulated, &store, config()).await;
    summaries(tenant.engine.sync_all().await.unwrap());
    let before = store.count_activities(&tenant.id).await.unwrap();
    let gone = tenant.delegation.links[0].clone();
    provider.expire_cursor(&emulated, &gone.mailbox).await;

    for (link, summary) in summaries(tenant.engine.sync_all().await.unwrap()) {
        if link == gone.link {
            assert_eq!(summary.mode, SyncMode::Resync, "{summary:?}");
            // Everything was listed again and found known: nothing new, nothing lost.
            assert!(summary.already_known > 0, "{summary:?}");
            assert_eq!(summary.added, 0, "{summary:?}");
            assert_eq!(summary.unaccounted, 0, "{summary:?}");
        } else {
            assert_eq!(summary.mode, SyncMode::Incremental, "{summary:?}");
        }
    }
    assert_eq!(store.count_activities(&tenant.id).await.unwrap(), before);
    assert_store_matches(
        &store,
        &tenant.id,
        emulated.truth(),
        emulated.time_precision_ms(),
    )
    .await;
    // Another run (a resync again for the emulated Gmail, whose current history id
    // stays gone until new mail arrives) still adds nothing.
    for (_, summary) in summaries(tenant.engine.sync_all().await.unwrap()) {
        assert_eq!(summary.added, 0, "{summary:?}");
    }
    assert_eq!(store.count_activities(&tenant.id).await.unwrap(), before);
}

async fn revoked_access_gives_the_status_the_admin_sees(provider: Provider, store: Store) {
    let emulated = provider.emulator(6, 40).await;
    let tenant = provider.connect(&emulated, &store, config()).await;
    summaries(tenant.engine.sync_all().await.unwrap());
    let revoked = provider.revoke_access(&emulated).await;

    let outcomes = tenant.engine.sync_all().await.unwrap();
    assert_eq!(outcomes.len(), tenant.delegation.links.len());
    for outcome in &outcomes {
        let LinkOutcome::Failed {
            status, message, ..
        } = outcome
        else {
            panic!("expected a failure: {outcome:?}");
        };
        assert_eq!(*status, revoked.status);
        assert!(message.contains(revoked.message), "{message}");
    }
    for link in store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::from(revoked.status), "{link:?}");
        let message = link.provider_message.as_deref().unwrap_or_default();
        assert!(message.contains(revoked.message), "{link:?}");
        // An admin must act: no retry on a timer, and the next run leaves it alone.
        assert_eq!(link.next_attempt_ms, None, "{link:?}");
        // What was captured before stays, as does the last success.
        assert!(link.last_success_ms.is_some(), "{link:?}");
    }
    assert!(tenant.engine.sync_all().await.unwrap().is_empty());
    assert_store_matches(
        &store,
        &tenant.id,
        emulated.truth(),
        emulated.time_precision_ms(),
    )
    .await;
}

/// The engine's task is dropped in the middle of a full sync, as a killed process
/// would stop: only committed pages (each with its cursor) survive. The next run
/// resumes from the progress cursor and ends equal to the truth, without duplicates.
async fn a_crashed_full_sync_resumes_to_the_truth(provider: Provider, store: Store) {
    let emulated = provider.emulator(6, 40).await;
    let config = EngineConfig {
        page_size: 5,
        concurrency: 1,
        ..config()
    };
    let tenant = provider.connect(&emulated, &store, config).await;
    let engine = tenant.engine.clone();
    let running = tokio::spawn(async move { engine.sync_all().await });
    while store.count_activities(&tenant.id).await.unwrap() == 0 {
        assert!(!running.is_finished(), "the sync ended before any commit");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    running.abort();
    assert!(
        running.await.is_err_and(|e| e.is_cancelled()),
        "not stopped mid-sync"
    );

    let interrupted: Vec<_> = store
        .links(&tenant.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|l| l.status == LinkStatus::Syncing)
        .collect();
    assert_eq!(
        interrupted.len(),
        1,
        "one link was mid-sync: {interrupted:?}"
    );
    let progress = store
        .cursor(&tenant.id, interrupted[0].id, provider.progress_stream())
        .await
        .unwrap();
    assert!(progress.is_some(), "the interrupted link left no progress");

    for (_, summary) in summaries(tenant.engine.sync_all().await.unwrap()) {
        assert_eq!(summary.mode, SyncMode::Full);
    }
    assert_store_matches(
        &store,
        &tenant.id,
        emulated.truth(),
        emulated.time_precision_ms(),
    )
    .await;
    for link in store.links(&tenant.id).await.unwrap() {
        assert_eq!(link.status, LinkStatus::Idle, "{link:?}");
    }
}

/// A tenant mid-migration has links of several providers; an engine syncs only those of
/// its own connection's provider.
async fn links_of_another_provider_are_left_alone(provider: Provider, store: Store) {
    let emulated = provider.emulator(6, 40).await;
    let tenant = provider.connect(&emulated, &store, config()).await;
    let moved = tenant.delegation.links[0].link;
    let other = ConnectionKind::ALL
        .into_iter()
        .find(|kind| *kind != provider.kind())
        .unwrap();
    store
        .set_link_provider(&tenant.id, moved, other)
        .await
        .unwrap();

    let synced = summaries(tenant.engine.sync_all().await.unwrap());
    assert_eq!(synced.len(), tenant.delegation.links.len() - 1);
    assert!(synced.iter().all(|(link, _)| *link != moved));
    let view = store.link(&tenant.id, moved).await.unwrap().unwrap();
    assert_eq!(view.status, LinkStatus::Pending, "{view:?}");
    assert_eq!(view.last_success_ms, None, "{view:?}");
    assert_eq!(view.provider, other);
}
