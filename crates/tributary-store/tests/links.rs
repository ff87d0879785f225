//! Which connection (provider) a mailbox link belongs to.

mod common;

use common::Acme;
use sqlx::{AssertSqlSafe, Executor};
use tributary_store::{ConnectionKind, LinkId, Store, StoreError};

on_both_backends!(
    links_belong_to_google_until_moved,
    a_link_moves_to_another_provider,
    unknown_provider_names_are_refused,
    provider_of_another_tenants_link_is_refused,
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
