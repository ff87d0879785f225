//! Link status, audit trail and job leases on both backends.

mod common;

use common::Acme;
use serde_json::json;
use sqlx::Executor;
use tributary_core::LinkErrorStatus;
use tributary_store::{AuditEvent, LinkStatus, MemberRole, Store, StoreError, TenantId};

on_both_backends!(
    link_failure_and_success_are_recorded_and_audited,
    link_status_is_checked_by_the_database,
    audit_events_are_tenant_scoped_newest_first,
    enqueueing_twice_keeps_one_job_brought_forward,
    lease_excludes_other_workers_until_it_expires,
    request_during_a_run_waits_for_the_run,
    retried_job_runs_again_later,
    concurrent_leases_take_different_jobs,
    members_are_listed_with_their_aliases,
);

const NOW: i64 = 1_750_000_000_000;
const MINUTE: i64 = 60_000;

async fn link_failure_and_success_are_recorded_and_audited(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    store
        .set_link_status(&acme.tenant, acme.ann_link, LinkStatus::Syncing, "system")
        .await
        .unwrap();
    store
        .record_link_failure(
            &acme.tenant,
            acme.ann_link,
            LinkErrorStatus::Unauthorized,
            "unauthorized_client: scope not delegated",
            None,
        )
        .await
        .unwrap();
    let link = store.links(&acme.tenant).await.unwrap().remove(0);
    assert_eq!(link.mailbox, "ann@acme.com");
    assert_eq!(link.status, LinkStatus::Unauthorized);
    assert_eq!(
        link.provider_message.as_deref(),
        Some("unauthorized_client: scope not delegated")
    );
    assert_eq!((link.attempts, link.last_success_ms), (1, None));
    assert_eq!(link.status_reason, None);
    // The provider's cause code is kept beside its words, for the cause's hint.
    let failure = tributary_store::LinkFailure {
        status: LinkErrorStatus::Unauthorized,
        message: "Client is unauthorized to retrieve access tokens",
        reason: Some("unauthorized_client"),
    };
    store
        .record_link_failure_with_reason(&acme.tenant, acme.ann_link, failure, None)
        .await
        .unwrap();
    let link = store.links(&acme.tenant).await.unwrap().remove(0);
    assert_eq!(link.status_reason.as_deref(), Some("unauthorized_client"));
    assert_eq!(link.attempts, 2);

    let summary = json!({"added": 12, "removed": 0});
    store
        .record_link_success(&acme.tenant, acme.ann_link, &summary, NOW)
        .await
        .unwrap();
    let link = store.links(&acme.tenant).await.unwrap().remove(0);
    assert_eq!(link.status, LinkStatus::Idle);
    assert_eq!(link.provider_message, None);
    assert_eq!(link.status_reason, None, "a success clears the cause");
    assert_eq!(link.attempts, 0);
    assert_eq!(link.last_success_ms, Some(NOW));
    assert_eq!(link.last_summary, Some(summary));

    let changes: Vec<_> = store
        .audit_events(&acme.tenant, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "link.status")
        .map(|e| (e.detail["from"].clone(), e.detail["to"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            (json!("unauthorized"), json!("idle")),
            (json!("syncing"), json!("unauthorized")),
            (json!("pending"), json!("syncing")),
        ]
    );
    // Another tenant cannot touch the link.
    let other = TenantId::new("other");
    store.create_tenant(&other, "Other").await.unwrap();
    let error = store
        .set_link_status(&other, acme.ann_link, LinkStatus::Unlinked, "mallory")
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnknownLink { .. }), "{error:?}");
}

async fn link_status_is_checked_by_the_database(store: Store) {
    Acme::create(&store, "acme").await;
    let outcome = store
        .pool()
        .execute("UPDATE mailbox_links SET status = 'healthy'")
        .await;
    assert!(outcome.is_err(), "a status outside the seven was accepted");
    for status in LinkStatus::ALL {
        assert_eq!(LinkStatus::from_name(status.as_str()), Some(status));
    }
}

async fn audit_events_are_tenant_scoped_newest_first(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let other = Acme::create(&store, "other").await;
    for (at_ms, action) in [(NOW, "member.invite"), (NOW + 1, "connection.save")] {
        let event = AuditEvent {
            at_ms,
            actor: "ann@acme.com".into(),
            action: action.into(),
            subject: Some("carl@acme.com".into()),
            detail: json!({"role": "member"}),
        };
        store.record_audit(&acme.tenant, &event).await.unwrap();
    }
    let events = store.audit_events(&acme.tenant, 10).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["connection.save", "member.invite"]);
    assert_eq!(events[0].detail, json!({"role": "member"}));
    assert!(
        store
            .audit_events(&other.tenant, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn enqueueing_twice_keeps_one_job_brought_forward(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let link = Some(acme.ann_link);
    let first = store
        .enqueue_job(&acme.tenant, "sync", link, NOW + 10 * MINUTE)
        .await
        .unwrap();
    let earlier = store
        .enqueue_job(&acme.tenant, "sync", link, NOW)
        .await
        .unwrap();
    let later = store
        .enqueue_job(&acme.tenant, "sync", link, NOW + 20 * MINUTE)
        .await
        .unwrap();
    assert_eq!((earlier, later), (first, first));
    let leased = store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert_eq!(leased.id, first);
    assert_eq!(leased.tenant, acme.tenant);
    assert_eq!(leased.link, link);
    assert_eq!(leased.kind, "sync");
    assert_eq!(leased.lease_expires_ms, NOW + MINUTE);
}

async fn lease_excludes_other_workers_until_it_expires(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    assert_eq!(store.lease_job("w1", NOW, MINUTE).await.unwrap(), None);
    let job = store
        .enqueue_job(&acme.tenant, "sync", Some(acme.ann_link), NOW)
        .await
        .unwrap();
    assert_eq!(store.lease_job("w1", NOW - 1, MINUTE).await.unwrap(), None);
    assert!(store.lease_job("w1", NOW, MINUTE).await.unwrap().is_some());
    assert_eq!(store.lease_job("w2", NOW + 1, MINUTE).await.unwrap(), None);
    // w1 died: its lease expires and w2 takes over; w1's late completion is refused.
    let taken = store
        .lease_job("w2", NOW + MINUTE, MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, job);
    assert!(!store.complete_job(job, "w1").await.unwrap());
    assert!(store.complete_job(job, "w2").await.unwrap());
    assert_eq!(
        store
            .lease_job("w3", NOW + 10 * MINUTE, MINUTE)
            .await
            .unwrap(),
        None
    );
}

async fn request_during_a_run_waits_for_the_run(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let link = Some(acme.ann_link);
    let running = store
        .enqueue_job(&acme.tenant, "sync", link, NOW)
        .await
        .unwrap();
    store
        .lease_job("w1", NOW, 5 * MINUTE)
        .await
        .unwrap()
        .unwrap();
    // A push notification asks for another sync of the same mailbox meanwhile.
    let requested = store
        .enqueue_job(&acme.tenant, "sync", link, NOW + 1)
        .await
        .unwrap();
    assert_ne!(requested, running);
    assert_eq!(store.lease_job("w2", NOW + 2, MINUTE).await.unwrap(), None);
    assert!(store.complete_job(running, "w1").await.unwrap());
    let next = store
        .lease_job("w2", NOW + 3, MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, requested);
}

async fn retried_job_runs_again_later(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let job = store
        .enqueue_job(&acme.tenant, "sync", Some(acme.ann_link), NOW)
        .await
        .unwrap();
    store.lease_job("w1", NOW, MINUTE).await.unwrap().unwrap();
    assert!(!store.retry_job(job, "w2", NOW + MINUTE).await.unwrap());
    assert!(store.retry_job(job, "w1", NOW + 5 * MINUTE).await.unwrap());
    assert_eq!(
        store.lease_job("w1", NOW + MINUTE, MINUTE).await.unwrap(),
        None
    );
    let again = store
        .lease_job("w1", NOW + 5 * MINUTE, MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.id, again.attempts), (job, 1));
}

async fn concurrent_leases_take_different_jobs(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    for link in [acme.ann_link, acme.carl_link] {
        store
            .enqueue_job(&acme.tenant, "sync", Some(link), NOW)
            .await
            .unwrap();
    }
    let (first, second) = tokio::join!(
        store.lease_job("w1", NOW, MINUTE),
        store.lease_job("w2", NOW, MINUTE)
    );
    let (first, second) = (first.unwrap().unwrap(), second.unwrap().unwrap());
    assert_ne!(first.id, second.id);
    assert_ne!(first.link, second.link);
}

async fn members_are_listed_with_their_aliases(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let other = Acme::create(&store, "other").await;
    store
        .add_member(&other.tenant, "zoe@acme.com", &[], MemberRole::Member)
        .await
        .unwrap();
    let members = store.members(&acme.tenant).await.unwrap();
    let listed: Vec<_> = members
        .iter()
        .map(|m| (m.id, m.email.as_str(), m.aliases.clone(), m.role, m.active))
        .collect();
    assert_eq!(
        listed,
        [
            (
                acme.ann,
                "ann@acme.com",
                vec!["ann.lee@acme.com".to_owned()],
                MemberRole::Admin,
                true
            ),
            (acme.carl, "carl@acme.com", vec![], MemberRole::Member, true),
        ]
    );
    assert_eq!(store.members(&other.tenant).await.unwrap().len(), 3);
}
