//! Which connection (provider) a mailbox link belongs to.

mod common;

use common::Acme;
use sqlx::{AssertSqlSafe, Executor};
use tributary_core::LinkErrorStatus;
use tributary_store::{ConnectionKind, LinkId, LinkStatus, Store, StoreError};

on_both_backends!(
    links_belong_to_google_until_moved,
    a_link_moves_to_another_provider,
    unknown_provider_names_are_refused,
    provider_of_another_tenants_link_is_refused,
    a_run_ending_after_an_unlink_leaves_the_link_unlinked,
);

/// Links made before providers were recorded, and links made as they always were, are
/// Google Workspace links.
async fn links_belong_to_google_until_moved(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    for view in store.links(&acme.tenant).await.unwrap() {
        assert_eq!(view.provider, ConnectionKind::Google, "{view:?}");
    }
    let provider = store.link_provider(&acme.tenant, acme.ann_link).await;
    assert_eq!(provider.unwrap(), ConnectionKind::Google);
}

async fn a_link_moves_to_another_provider(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    store
        .set_link_provider(&acme.tenant, acme.carl_link, ConnectionKind::Microsoft)
        .await
        .unwrap();
    let provider = store.link_provider(&acme.tenant, acme.carl_link).await;
    assert_eq!(provider.unwrap(), ConnectionKind::Microsoft);
    // Only that link moved, and the views say so too.
    let views = store.links(&acme.tenant).await.unwrap();
    let of = |link: LinkId| views.iter().find(|v| v.id == link).unwrap().provider;
    assert_eq!(of(acme.carl_link), ConnectionKind::Microsoft);
    assert_eq!(of(acme.ann_link), ConnectionKind::Google);
    let view = store.link(&acme.tenant, acme.carl_link).await.unwrap();
    assert_eq!(view.unwrap().provider, ConnectionKind::Microsoft);
}

async fn unknown_provider_names_are_refused(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let statement = format!(
        "UPDATE mailbox_links SET provider = 'exchange' WHERE id = {}",
        acme.ann_link.0
    );
    let refused = store.pool().execute(AssertSqlSafe(statement)).await;
    assert!(
        refused.is_err(),
        "the database accepted an unknown provider"
    );
    for name in ["google", "microsoft", "imap"] {
        let kind = ConnectionKind::from_name(name).unwrap();
        assert_eq!(kind.as_str(), name);
    }
    assert_eq!(ConnectionKind::from_name("exchange"), None);
}

async fn provider_of_another_tenants_link_is_refused(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let other = Acme::create(&store, "other").await;
    let read = store.link_provider(&other.tenant, acme.ann_link).await;
    assert!(
        matches!(read, Err(StoreError::UnknownLink { .. })),
        "{read:?}"
    );
    let moved = store
        .set_link_provider(&other.tenant, acme.ann_link, ConnectionKind::Imap)
        .await;
    assert!(
        matches!(moved, Err(StoreError::UnknownLink { .. })),
        "{moved:?}"
    );
    let provider = store.link_provider(&acme.tenant, acme.ann_link).await;
    assert_eq!(provider.unwrap(), ConnectionKind::Google);
}

/// An admin unlinked the mailbox while its sync ran: the run's end, success or failure,
/// does not bring the link back.
async fn a_run_ending_after_an_unlink_leaves_the_link_unlinked(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let status = |views: Vec<tributary_store::LinkView>, link: LinkId| {
        views.iter().find(|v| v.id == link).unwrap().status
    };
    for link in [acme.ann_link, acme.carl_link] {
        store
            .set_link_status(&acme.tenant, link, LinkStatus::Syncing, "system")
            .await
            .unwrap();
        store
            .set_link_status(&acme.tenant, link, LinkStatus::Unlinked, "admin@acme.com")
            .await
            .unwrap();
    }
    store
        .record_link_success(&acme.tenant, acme.ann_link, &serde_json::json!({}), 1)
        .await
        .unwrap();
    store
        .record_link_failure(
            &acme.tenant,
            acme.carl_link,
            LinkErrorStatus::LinkageError,
            "Backend Error",
            Some(2),
        )
        .await
        .unwrap();
    let views = store.links(&acme.tenant).await.unwrap();
    assert_eq!(status(views.clone(), acme.ann_link), LinkStatus::Unlinked);
    assert_eq!(status(views, acme.carl_link), LinkStatus::Unlinked);
}
