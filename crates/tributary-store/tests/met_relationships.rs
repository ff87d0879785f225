//! People met but never mailed in the relationship lists, on both backends: "who knows
//! them best" for a contact and a company, and the company ranking's best member, count
//! the captured meetings a member and a contact shared (`Store::meeting_ties`) beside
//! mail, including pairs with no mail (and so no relationship row) at all.

mod common;

use common::Acme;
use common::calendar::{NOW, ann_meets, person};
use tributary_core::{Meeting, Response};
use tributary_store::{CalendarSighting, ReadScope, Store};

on_both_backends!(met_but_never_mailed_counts_in_every_relationship_list);

const MAIL_TO_BOB: &str = "From: Ann <ann@acme.com>\r\nTo: bob@globex.com\r\n\
     Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@acme.com>\r\nSubject: Hello\r\n\r\n";

async fn met_but_never_mailed_counts_in_every_relationship_list(store: Store) {
    let acme = Acme::create(&store, "acme").await;
    let page = acme.page(vec![acme.sighting(MAIL_TO_BOB, "p1", &["SENT"])]);
    store
        .commit_page(&acme.tenant, acme.ann_link, &page, None)
        .await
        .unwrap();
    // Ann met Bob (whom she mailed) and Dora (whom nobody mailed).
    let occurrence = ann_meets(
        "met",
        -3,
        vec![
            person("bob@globex.com", Response::Accepted),
            person("dora@initech.com", Response::Accepted),
        ],
        "ann@acme.com",
    );
    let meeting: Meeting = acme.extractor.meeting(&occurrence, NOW).unwrap();
    assert!(meeting.is_captured());
    let sightings = [CalendarSighting {
        meeting,
        provider_event_id: "e1".into(),
    }];
    store
        .commit_calendar_page(&acme.tenant, acme.ann_link, &sightings, None)
        .await
        .unwrap();

    let relationships = store.relationships(&acme.tenant).await.unwrap();
    assert!(
        relationships
            .iter()
            .all(|r| r.contact != "dora@initech.com"),
        "no mail, no relationship row: {relationships:?}"
    );
    let mail = relationships
        .iter()
        .find(|r| r.contact == "bob@globex.com")
        .expect("Ann mailed Bob");
    let pairs = [
        ("ann@acme.com".to_owned(), "bob@globex.com".to_owned()),
        ("ann@acme.com".to_owned(), "dora@initech.com".to_owned()),
    ];
    let ties = store.meeting_ties(&acme.tenant, &pairs).await.unwrap();
    let dora_tie = ties[&pairs[1]];
    let (_, bob_last, bob_score) = ties[&pairs[0]].combined_with(mail);

    // Who knows Dora best: Ann, from the meeting alone; no message.
    let dora = store
        .contact_strengths(&acme.tenant, "dora@initech.com", 5)
        .await
        .unwrap();
    assert_eq!(dora.len(), 1, "{dora:?}");
    assert_eq!(dora[0].member, "ann@acme.com");
    assert_eq!(dora[0].total, 0);
    assert_eq!(dora[0].last_ms, dora_tie.last_ms);
    assert!((dora[0].score - dora_tie.score_at_last).abs() < 1e-9);

    // Bob: mail and the meeting together.
    let bob = store
        .contact_strengths(&acme.tenant, "bob@globex.com", 5)
        .await
        .unwrap();
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert_eq!((bob[0].total, bob[0].last_ms), (mail.total, bob_last));
    assert!((bob[0].score - bob_score).abs() < 1e-9);
    assert!(
        bob[0].score > mail.score_at_last,
        "the meeting adds to the mail"
    );

    // The company lists and ranking.
    let initech = store
        .company_strengths(&acme.tenant, "initech.com", 5)
        .await
        .unwrap();
    assert_eq!(initech, dora);
    let ranking = store.ranked_companies(&acme.tenant, 0, 10).await.unwrap();
    let ranked = ranking
        .companies
        .iter()
        .find(|c| c.domain == "initech.com")
        .expect("Initech is ranked");
    assert_eq!(ranked.best.as_ref(), dora.first());
    let globex = ranking
        .companies
        .iter()
        .find(|c| c.domain == "globex.com")
        .expect("Globex is ranked");
    assert_eq!(globex.best.as_ref(), bob.first());

    // A member sees only their own ties: Carl was not there.
    let carl = ReadScope::Own(acme.carl);
    let seen = store
        .contact_strengths_scoped(&acme.tenant, "dora@initech.com", 5, carl)
        .await
        .unwrap();
    assert!(seen.is_empty(), "{seen:?}");
    let ann = ReadScope::Own(acme.ann);
    let seen = store
        .company_strengths_scoped(&acme.tenant, "initech.com", 5, ann)
        .await
        .unwrap();
    assert_eq!(seen, dora);
}
