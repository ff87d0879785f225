//! Member extra labels, per-(link, label) reconciliation rows and the sighted-ids
//! lookup reconciliation relies on, on both backends.

mod common;

use common::{Acme, NEWSLETTER, OUTBOUND, TO_ANN_BCC_ERIN};
use tributary_store::{LabelReconciliation, LinkId, MemberId, Store, StoreError, TenantId};

on_both_backends!(
    member_labels_are_kept_as_given_and_compared_case_insensitively,
    changing_member_labels_is_audited,
    member_labels_are_checked,
    reconciliation_rows_are_set_added_and_pruned,
    reconciliation_is_per_link_and_tenant,
    sighted_ids_are_the_links_sightings_and_held_copies,
);

const NOW: i64 = 1_750_000_000_000;

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn member_labels_are_kept_as_given_and_compared_case_insensitively(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    assert!(
        store
            .member_labels(&acme.tenant, acme.ann)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .set_member_labels(
            &acme.tenant,
            acme.ann,
            &labels(&[" Label_12 ", "IMPORTANT", "label_12", "Label_3"]),
            "admin@acme.com",
        )
        .await
        .unwrap();
    assert_eq!(
        store.member_labels(&acme.tenant, acme.ann).await.unwrap(),
        ["IMPORTANT", "Label_12", "Label_3"]
    );
    assert_eq!(
        store
            .link_labels(&acme.tenant, acme.ann_link)
            .await
            .unwrap(),
        ["IMPORTANT", "Label_12", "Label_3"]
    );
    assert!(
        store
            .link_labels(&acme.tenant, acme.carl_link)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .link_member(&acme.tenant, acme.carl_link)
            .await
            .unwrap(),
        acme.carl
    );

    store
        .set_member_labels(
            &acme.tenant,
            acme.ann,
            &labels(&["important"]),
            "admin@acme.com",
        )
        .await
        .unwrap();
    assert_eq!(
        store.member_labels(&acme.tenant, acme.ann).await.unwrap(),
        ["important"]
    );
    store
        .set_member_labels(&acme.tenant, acme.ann, &[], "admin@acme.com")
        .await
        .unwrap();
    assert!(
        store
            .member_labels(&acme.tenant, acme.ann)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn changing_member_labels_is_audited(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let set = |names: &'static [&'static str]| {
        let store = store.clone();
        let tenant = acme.tenant.clone();
        let ann = acme.ann;
        async move {
            store
                .set_member_labels(&tenant, ann, &labels(names), "admin@acme.com")
                .await
                .unwrap();
        }
    };
    set(&["Label_1"]).await;
    // The same set again changes nothing and is not audited again.
    set(&["Label_1"]).await;
    set(&["Label_1", "Label_2"]).await;
    let events: Vec<_> = store
        .audit_events(&acme.tenant, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "member.labels")
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].actor, "admin@acme.com");
    assert_eq!(events[0].subject.as_deref(), Some("ann@acme.com"));
    assert_eq!(events[0].detail["from"], serde_json::json!(["Label_1"]));
    assert_eq!(
        events[0].detail["to"],
        serde_json::json!(["Label_1", "Label_2"])
    );
    assert_eq!(events[1].detail["from"], serde_json::json!([]));
}

async fn member_labels_are_checked(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let empty = store
        .set_member_labels(&acme.tenant, acme.ann, &labels(&["INBOX", "  "]), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(empty, StoreError::InvalidLabel { .. }),
        "{empty:?}"
    );
    assert!(
        store
            .member_labels(&acme.tenant, acme.ann)
            .await
            .unwrap()
            .is_empty()
    );

    let other = TenantId::new("globex");
    store.create_tenant(&other, "Globex").await.unwrap();
    let foreign = store
        .set_member_labels(&other, acme.ann, &labels(&["INBOX"]), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(foreign, StoreError::UnknownMember { .. }),
        "{foreign:?}"
    );
    let unknown = store
        .set_member_labels(&acme.tenant, MemberId(9_999), &labels(&["INBOX"]), "a")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, StoreError::UnknownMember { .. }),
        "{unknown:?}"
    );
    let link = store.link_member(&other, acme.ann_link).await.unwrap_err();
    assert!(matches!(link, StoreError::UnknownLink { .. }), "{link:?}");
}

fn reconciliation(label: &str, counts: [u64; 5], at_ms: i64) -> LabelReconciliation {
    let [listed, captured, excluded, not_seen, gone] = counts;
    LabelReconciliation {
        label: label.to_owned(),
        provider_total: Some(listed + 10),
        listed,
        captured,
        excluded,
        not_seen,
        gone,
        at_ms,
    }
}

async fn reconciliation_rows_are_set_added_and_pruned(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let (tenant, link) = (&acme.tenant, acme.ann_link);
    store
        .set_label_reconciliation(
            tenant,
            link,
            &[
                reconciliation("SENT", [20, 15, 3, 1, 1], NOW),
                reconciliation("INBOX", [120, 100, 17, 0, 0], NOW),
            ],
        )
        .await
        .unwrap();
    let rows = store.label_reconciliation(tenant, link).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], reconciliation("INBOX", [120, 100, 17, 0, 0], NOW));
    assert_eq!(rows[0].unaccounted(), 3);
    assert_eq!(rows[1].unaccounted(), 0);

    // An incremental run adds its counts; a row it creates is a new label's.
    let mut added = reconciliation("inbox", [2, 1, 1, 0, 0], NOW + 1);
    added.provider_total = None;
    store
        .add_label_reconciliation(
            tenant,
            link,
            &[added, reconciliation("Label_7", [1, 1, 0, 0, 0], NOW + 1)],
        )
        .await
        .unwrap();
    let rows = store.label_reconciliation(tenant, link).await.unwrap();
    let inbox = &rows[0];
    assert_eq!(
        (
            inbox.label.as_str(),
            inbox.listed,
            inbox.captured,
            inbox.excluded
        ),
        ("inbox", 122, 101, 18)
    );
    assert_eq!(inbox.provider_total, Some(130), "kept when not asked again");
    assert_eq!((inbox.at_ms, inbox.unaccounted()), (NOW + 1, 3));
    assert_eq!(rows[1].label, "Label_7");

    // A backfill replaces the row.
    store
        .set_label_reconciliation(
            tenant,
            link,
            &[reconciliation("INBOX", [5, 5, 0, 0, 0], NOW + 2)],
        )
        .await
        .unwrap();
    let rows = store.label_reconciliation(tenant, link).await.unwrap();
    assert_eq!(rows[0], reconciliation("INBOX", [5, 5, 0, 0, 0], NOW + 2));

    // Labels no longer synced lose their rows.
    store
        .retain_label_reconciliation(tenant, link, &labels(&["inbox", "SENT"]))
        .await
        .unwrap();
    let kept: Vec<String> = store
        .label_reconciliation(tenant, link)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.label)
        .collect();
    assert_eq!(kept, ["INBOX", "SENT"]);
}

async fn reconciliation_is_per_link_and_tenant(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let globex = Acme::create(&store, "globex").await;
    store
        .set_label_reconciliation(
            &acme.tenant,
            acme.ann_link,
            &[reconciliation("INBOX", [1, 1, 0, 0, 0], NOW)],
        )
        .await
        .unwrap();
    assert!(
        store
            .label_reconciliation(&acme.tenant, acme.carl_link)
            .await
            .unwrap()
            .is_empty()
    );
    // Another tenant sees nothing of the link and cannot write to it.
    assert!(
        store
            .label_reconciliation(&globex.tenant, acme.ann_link)
            .await
            .unwrap()
            .is_empty()
    );
    let error = store
        .set_label_reconciliation(
            &acme.tenant,
            LinkId(globex.carl_link.0 + 1_000),
            &[reconciliation("INBOX", [1, 1, 0, 0, 0], NOW)],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnknownLink { .. }), "{error:?}");
    let error = store
        .add_label_reconciliation(
            &acme.tenant,
            globex.ann_link,
            &[reconciliation("INBOX", [1, 1, 0, 0, 0], NOW)],
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::UnknownLink { .. }), "{error:?}");
}

async fn sighted_ids_are_the_links_sightings_and_held_copies(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = acme.page(vec![
        acme.sighting(OUTBOUND, "out-1", &["SENT"]),
        acme.sighting(NEWSLETTER, "news-1", &["INBOX"]),
        // Internal on its own and its activity not captured: held.
        acme.sighting(TO_ANN_BCC_ERIN, "held-1", &["INBOX"]),
    ]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    let carl = acme.page(vec![acme.sighting(OUTBOUND, "carl-1", &["INBOX"])]);
    store
        .commit_page(&acme.tenant, acme.carl_link, &carl, None)
        .await
        .unwrap();

    // More ids than one query takes.
    let mut ids: Vec<String> = (0..1_200).map(|n| format!("absent-{n}")).collect();
    ids.extend(labels(&["news-1", "carl-1", "held-1"]));
    ids.insert(700, "out-1".to_owned());
    let sighted = store
        .sighted_message_ids(&acme.tenant, acme.ann_link, &ids)
        .await
        .unwrap();
    let mut sighted: Vec<String> = sighted.into_iter().collect();
    sighted.sort();
    assert_eq!(sighted, ["held-1", "out-1"]);
    let carl = store
        .sighted_message_ids(&acme.tenant, acme.carl_link, &ids)
        .await
        .unwrap();
    assert_eq!(carl.into_iter().collect::<Vec<_>>(), ["carl-1"]);
    let other = TenantId::new("globex");
    assert!(
        store
            .sighted_message_ids(&other, acme.ann_link, &ids)
            .await
            .unwrap()
            .is_empty()
    );
}
