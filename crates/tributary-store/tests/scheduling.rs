//! What the scheduler asks of the job queue, on both backends: fresh mail before
//! backfills, turns between tenants, jobs given back by a stopping worker, and the live
//! workers that share a project budget.

mod common;

use common::Acme;
use serde_json::json;
use tributary_store::{HeldLeases, LeaseScope, Store, TenantId};

on_both_backends!(
    incremental_jobs_are_leased_before_queued_backfills,
    tenants_take_turns,
    a_released_job_is_leased_again_at_once,
    heartbeats_count_live_workers,
    a_stopped_workers_links_say_so_until_taken_over,
    held_leases_count_each_workers_part_of_a_tenants_live_jobs,
);

const NOW: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

async fn incremental_jobs_are_leased_before_queued_backfills(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    // Ann's mailbox completed a sync once: its jobs are incremental. Carl's never did.
    store
        .record_link_success(&acme.tenant, acme.ann_link, &json!({}), NOW - MINUTE)
        .await
        .unwrap();
    let backfill = store
        .enqueue_job(
            &acme.tenant,
            "sync",
            Some(acme.carl_link),
            NOW - 10 * MINUTE,
        )
        .await
        .unwrap();
    let incremental = store
        .enqueue_job(&acme.tenant, "sync", Some(acme.ann_link), NOW)
        .await
        .unwrap();
    let first = store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert_eq!((first.id, first.backfill), (incremental, false));
    // A worker whose backfill slots are full leaves the backfill queued.
    let fresh_only = store
        .lease_job_in("w1", NOW, MINUTE, LeaseScope::FreshMailOnly)
        .await
        .unwrap();
    assert_eq!(fresh_only, None);
    let second = store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert_eq!((second.id, second.backfill), (backfill, true));
    let held = store.held_jobs(NOW).await.unwrap();
    assert_eq!(held.len(), 2);
    assert!(held.iter().all(|job| job.worker == "w1"), "{held:?}");
}

async fn tenants_take_turns(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let globex = Acme::create(&store, "globex").await;
    for (link, due) in [(acme.ann_link, NOW - 20), (acme.carl_link, NOW - 10)] {
        store
            .enqueue_job(&acme.tenant, "sync", Some(link), due)
            .await
            .unwrap();
    }
    store
        .enqueue_job(&globex.tenant, "sync", Some(globex.ann_link), NOW)
        .await
        .unwrap();
    let first = store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert_eq!(first.tenant, acme.tenant);
    // Acme holds a lease now: Globex's job goes before Acme's older one.
    let second = store.lease_job("w2", NOW, MINUTE).await.unwrap().unwrap();
    assert_eq!(second.tenant, globex.tenant);
    let third = store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert_eq!(third.link, Some(acme.carl_link));
}

async fn a_released_job_is_leased_again_at_once(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let job = store
        .enqueue_job(&acme.tenant, "sync", Some(acme.ann_link), NOW)
        .await
        .unwrap();
    store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert!(!store.release_job(job, "w2", NOW).await.unwrap());
    assert!(store.release_job(job, "w1", NOW).await.unwrap());
    let again = store
        .lease_job("w2", NOW + 1, MINUTE)
        .await
        .unwrap()
        .unwrap();
    // Not a failure: no attempt counted.
    assert_eq!((again.id, again.attempts), (job, 0));
    // Given back while a newer request waits: the two merge into the waiting one.
    let waiting = store
        .enqueue_job(&acme.tenant, "sync", Some(acme.ann_link), NOW + 5 * MINUTE)
        .await
        .unwrap();
    assert!(store.release_job(job, "w2", NOW + 2).await.unwrap());
    let merged = store
        .lease_job("w3", NOW + 3, MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((merged.id, merged.attempts), (waiting, 0));
}

async fn heartbeats_count_live_workers(store: Store) {
    let first = store
        .worker_heartbeat("w1", NOW, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!((first.count, first.joined), (1, true));
    let second = store
        .worker_heartbeat("w2", NOW + 1, NOW + 10)
        .await
        .unwrap();
    assert_eq!((second.count, second.joined), (2, true));
    let renewed = store
        .worker_heartbeat("w1", NOW + 2, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!((renewed.count, renewed.joined), (2, false));
    // w2 stopped renewing: its share returns once its row expires.
    let alone = store
        .worker_heartbeat("w1", NOW + 10, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!(alone.count, 1);
    store
        .worker_heartbeat("w3", NOW + 11, NOW + MINUTE)
        .await
        .unwrap();
    store.worker_stopped("w3").await.unwrap();
    let last = store
        .worker_heartbeat("w1", NOW + 12, NOW + MINUTE)
        .await
        .unwrap();
    assert_eq!(last.count, 1);
}

async fn a_stopped_workers_links_say_so_until_taken_over(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    for link in [acme.ann_link, acme.carl_link] {
        store
            .enqueue_job(&acme.tenant, "sync", Some(link), NOW)
            .await
            .unwrap();
    }
    // Two workers with 60-s leases, renewed every 20 s.
    store
        .worker_heartbeat("alive", NOW, NOW + MINUTE)
        .await
        .unwrap();
    store
        .worker_heartbeat("killed", NOW, NOW + MINUTE)
        .await
        .unwrap();
    store
        .lease_job("alive", NOW, MINUTE)
        .await
        .unwrap()
        .unwrap();
    let taken = store
        .lease_job("killed", NOW, MINUTE)
        .await
        .unwrap()
        .unwrap();
    // 45 s later: "alive" renewed its heartbeat and lease, "killed" did neither.
    let later = NOW + 45_000;
    store
        .worker_heartbeat("alive", later, later + MINUTE)
        .await
        .unwrap();
    let runs = store.running_links(&acme.tenant, later).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        if run.worker == "killed" {
            assert_eq!(run.link, taken.link.unwrap());
            assert_eq!(run.worker_stopped_ms, Some(NOW));
            assert_eq!(run.lease_expires_ms, NOW + MINUTE);
        } else {
            assert_eq!(run.worker_stopped_ms, None, "{run:?}");
        }
    }
    // Once the lease expired the link is no longer running anywhere.
    let runs = store
        .running_links(&acme.tenant, NOW + MINUTE)
        .await
        .unwrap();
    assert!(runs.iter().all(|run| run.worker == "alive"), "{runs:?}");
}

async fn held_leases_count_each_workers_part_of_a_tenants_live_jobs(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let globex = Acme::create(&store, "globex").await;
    for worker in ["w1", "w2"] {
        store
            .worker_heartbeat(worker, NOW, NOW + MINUTE)
            .await
            .unwrap();
    }
    // "dead" renews its heartbeat no more after NOW + 10.
    store.worker_heartbeat("dead", NOW, NOW + 10).await.unwrap();
    for (tenant, link) in [
        (&acme.tenant, acme.ann_link),
        (&acme.tenant, acme.carl_link),
        (&globex.tenant, globex.carl_link),
    ] {
        store
            .enqueue_job(tenant, "sync", Some(link), NOW)
            .await
            .unwrap();
    }
    // Round robin between tenants: w1 takes Acme's first job, w2 Globex's, w1 Acme's
    // second.
    for (worker, tenant) in [
        ("w1", &acme.tenant),
        ("w2", &globex.tenant),
        ("w1", &acme.tenant),
    ] {
        let job = store.lease_job(worker, NOW, MINUTE).await.unwrap().unwrap();
        assert_eq!(&job.tenant, tenant);
    }
    store
        .enqueue_job(&globex.tenant, "sync", Some(globex.ann_link), NOW)
        .await
        .unwrap();
    store.lease_job("dead", NOW, MINUTE).await.unwrap().unwrap();
    let held = |tenant: &TenantId, mine, live| HeldLeases {
        tenant: tenant.clone(),
        mine,
        live,
    };
    assert_eq!(
        store.held_leases("w1", NOW + 1).await.unwrap(),
        [held(&acme.tenant, 2, 2), held(&globex.tenant, 0, 2)]
    );
    assert_eq!(
        store.held_leases("w2", NOW + 1).await.unwrap(),
        [held(&acme.tenant, 0, 2), held(&globex.tenant, 1, 2)]
    );
    // "dead"'s heartbeat expired: its lease, still live, spends nothing, so w2 has
    // Globex's whole share.
    assert_eq!(
        store.held_leases("w2", NOW + 20).await.unwrap(),
        [held(&acme.tenant, 0, 2), held(&globex.tenant, 1, 1)]
    );
    // A worker holding nothing anywhere sees the others' jobs.
    assert_eq!(
        store.held_leases("w3", NOW + 20).await.unwrap(),
        [held(&acme.tenant, 0, 2), held(&globex.tenant, 0, 1)]
    );
}
