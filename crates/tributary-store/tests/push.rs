//! Push channels and each link's push mode (issue 16), on both backends.

mod common;

use common::Acme;
use tributary_store::{LinkId, PushChannelRecord, PushMode, Store, secret_hash};

on_both_backends!(
    a_channel_per_stream_is_replaced_not_added,
    channels_are_found_by_id_only_in_their_tenant,
    expiring_and_due_channels_come_soonest_first,
    push_modes_are_recorded_per_link,
);

const NOW: i64 = 1_750_000_000_000;
const DAY: i64 = 86_400_000;

fn channel(link: LinkId, stream: &str, id: &str, expires_ms: i64) -> PushChannelRecord {
    PushChannelRecord {
        link,
        stream: stream.to_owned(),
        channel_id: id.to_owned(),
        expires_ms,
        secret_hash: Some(secret_hash(&format!("secret of {id}"))),
        renewed_ms: NOW,
    }
}

async fn a_channel_per_stream_is_replaced_not_added(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let mail = channel(acme.ann_link, "mail", "sub-1", NOW + 3 * DAY);
    let calendar = channel(acme.ann_link, "calendar", "sub-2", NOW + 3 * DAY);
    store.save_push_channel(&acme.tenant, &mail).await.unwrap();
    store
        .save_push_channel(&acme.tenant, &calendar)
        .await
        .unwrap();
    let renewed = channel(acme.ann_link, "mail", "sub-3", NOW + 6 * DAY);
    store
        .save_push_channel(&acme.tenant, &renewed)
        .await
        .unwrap();

    let stored = store
        .push_channels(&acme.tenant, acme.ann_link)
        .await
        .unwrap();
    assert_eq!(stored, [calendar.clone(), renewed]);
    assert!(
        store
            .push_channels(&acme.tenant, acme.carl_link)
            .await
            .unwrap()
            .is_empty()
    );

    store
        .delete_push_channel(&acme.tenant, acme.ann_link, "mail")
        .await
        .unwrap();
    assert_eq!(
        store
            .push_channels(&acme.tenant, acme.ann_link)
            .await
            .unwrap(),
        [calendar]
    );
}

async fn channels_are_found_by_id_only_in_their_tenant(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let globex = Acme::create(&store, "globex").await;
    let mail = channel(acme.ann_link, "mail", "sub-1", NOW + DAY);
    store.save_push_channel(&acme.tenant, &mail).await.unwrap();

    assert_eq!(
        store
            .push_channel_by_id(&acme.tenant, "sub-1")
            .await
            .unwrap(),
        Some(mail.clone())
    );
    assert_eq!(
        store
            .push_channel_by_id(&globex.tenant, "sub-1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .push_channel_by_id(&acme.tenant, "sub-2")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        mail.secret_hash.as_deref(),
        Some(secret_hash("secret of sub-1").as_str())
    );
    assert_ne!(
        secret_hash("secret of sub-1"),
        secret_hash("secret of sub-2")
    );
}

async fn expiring_and_due_channels_come_soonest_first(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let soon = channel(acme.ann_link, "mail", "soon", NOW + DAY / 2);
    let later = channel(acme.carl_link, "mail", "later", NOW + 5 * DAY);
    let calendar = channel(acme.ann_link, "calendar", "cal", NOW + DAY / 4);
    for c in [&soon, &later, &calendar] {
        store.save_push_channel(&acme.tenant, c).await.unwrap();
    }

    let expiring = store
        .push_channels_expiring(&acme.tenant, NOW + DAY, 10)
        .await
        .unwrap();
    assert_eq!(expiring, [calendar.clone(), soon.clone()]);
    let first = store
        .push_channels_expiring(&acme.tenant, NOW + DAY, 1)
        .await
        .unwrap();
    assert_eq!(first, [calendar]);

    assert!(
        store
            .mark_push_channel_due(&acme.tenant, "later")
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_push_channel_due(&acme.tenant, "unknown")
            .await
            .unwrap()
    );
    let expiring = store
        .push_channels_expiring(&acme.tenant, NOW + DAY, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = expiring.iter().map(|c| c.channel_id.as_str()).collect();
    assert_eq!(ids, ["later", "cal", "soon"]);
}

async fn push_modes_are_recorded_per_link(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    assert!(
        store
            .link_push_modes(&acme.tenant)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .set_link_push(&acme.tenant, acme.ann_link, PushMode::Push, None, NOW)
        .await
        .unwrap();
    store
        .set_link_push(
            &acme.tenant,
            acme.carl_link,
            PushMode::Polling,
            Some("User not authorized to perform this action."),
            NOW,
        )
        .await
        .unwrap();
    store
        .set_link_push(
            &acme.tenant,
            acme.ann_link,
            PushMode::Polling,
            Some("watch expired"),
            NOW + 1,
        )
        .await
        .unwrap();

    let modes = store.link_push_modes(&acme.tenant).await.unwrap();
    let ann = modes.iter().find(|m| m.link == acme.ann_link).unwrap();
    assert_eq!(ann.mode, PushMode::Polling);
    assert_eq!(ann.reason.as_deref(), Some("watch expired"));
    assert_eq!(ann.updated_ms, NOW + 1);
    let carl = modes.iter().find(|m| m.link == acme.carl_link).unwrap();
    assert_eq!(carl.mode, PushMode::Polling);
    assert_eq!(modes.len(), 2);
    assert_eq!(PushMode::from_name("push"), PushMode::Push);
    assert_eq!(PushMode::from_name("anything"), PushMode::Polling);
}

#[test]
fn only_the_secret_itself_matches_its_hash() {
    let stored = secret_hash("s3cret-client-state");
    assert!(tributary_store::secret_matches(
        "s3cret-client-state",
        &stored
    ));
    assert!(!tributary_store::secret_matches(
        "s3cret-client-statf",
        &stored
    ));
    assert!(!tributary_store::secret_matches("", &stored));
    assert!(!tributary_store::secret_matches("s3cret-client-state", ""));
}
