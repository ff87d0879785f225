//! Properties of extraction that must hold for any input.

use proptest::prelude::*;
use tributary_core::classify::Participant;
use tributary_core::relationship::{RelationshipBook, Touch};
use tributary_core::{
    CapturePolicy, EmailAddress, Extraction, Extractor, FreeMailList, HeaderField, MessageRecord,
    TenantDirectory,
};

const DAY_MS: i64 = 86_400_000;

fn extractor() -> Extractor {
    let mut tenant = TenantDirectory::new();
    tenant.add_domain("acme.com").unwrap();
    tenant.add_domain("acme.co.uk").unwrap();
    tenant
        .add_member("ann@acme.com", ["ann.lee@acme.co.uk", "al@acme.com"])
        .unwrap();
    tenant.add_member("carl@acme.com", []).unwrap();
    Extractor::new(tenant, FreeMailList::default(), CapturePolicy::default())
}

/// Bytes that exercise header syntax far more often than uniform random bytes do.
fn header_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"From:".to_vec()),
        Just(b"To:".to_vec()),
        Just(b"Cc: ".to_vec()),
        Just(b"Date: ".to_vec()),
        Just(b"Message-ID:".to_vec()),
        Just(b"References:".to_vec()),
        Just(b"Subject: ".to_vec()),
        Just(b"=?UTF-8?B?".to_vec()),
        Just(b"=?iso-8859-1?Q?".to_vec()),
        Just(b"?=".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n ".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        Just(b"ann@acme.com".to_vec()),
        Just("jörg@bücher.de".as_bytes().to_vec()),
        Just(b"xn--".to_vec()),
        prop::sample::select(b"<>@,;:\"()\\[]. \t=?".to_vec()).prop_map(|b| vec![b]),
        prop::collection::vec(any::<u8>(), 1..6),
        "[a-zA-Z0-9]{1,8}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(token, 0..40).prop_map(|parts| parts.concat())
}

fn extract_pairs(extractor: &Extractor, pairs: &[(HeaderField, Vec<u8>)]) -> Extraction {
    extractor.extract(&MessageRecord::from_header_pairs(
        pairs.iter().map(|(field, value)| (field.name(), value)),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_raw_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let extraction = extractor().extract(&MessageRecord::from_rfc5322(&bytes));
        serde_json::to_string(&extraction).unwrap();
    }

    #[test]
    fn header_like_bytes_never_panic(bytes in header_soup()) {
        let extraction = extractor().extract(&MessageRecord::from_rfc5322(&bytes));
        serde_json::to_string(&extraction).unwrap();
    }

    #[test]
    fn arbitrary_header_values_never_panic(
        pairs in prop::collection::vec(
            (prop::sample::select(HeaderField::ALL.to_vec()), header_soup()),
            0..12,
        )
    ) {
        let extraction = extract_pairs(&extractor(), &pairs);
        serde_json::to_string(&extraction).unwrap();
    }
}

/// An address and the same address with random case and surrounding whitespace.
fn address_variants() -> impl Strategy<Value = (String, String)> {
    let local = "[a-z][a-z0-9._+-]{0,10}[a-z0-9]";
    let domain = prop_oneof![
        Just("acme.com".to_owned()),
        Just("eu.acme.co.uk".to_owned()),
        Just("gmail.com".to_owned()),
        Just("mail.globex.co.uk".to_owned()),
        Just("bücher.de".to_owned()),
        "[a-z]{2,8}\\.(com|org|co\\.jp)",
    ];
    let member = prop::sample::select(vec![
        "ann@acme.com",
        "ann.lee@acme.co.uk",
        "al@acme.com",
        "carl@acme.com",
    ])
    .prop_map(str::to_owned);
    let address = prop_oneof![
        member,
        (local, domain).prop_map(|(local, domain)| format!("{local}@{domain}")),
    ];
    let whitespace = prop::sample::select(vec!["", " ", "  ", "\t", " \t ", "\r\n "]);
    (
        address,
        prop::collection::vec(any::<bool>(), 40),
        (whitespace.clone(), whitespace.clone()),
        (whitespace.clone(), whitespace),
        any::<bool>(),
    )
        .prop_map(
            |(address, upper, (before, after), (inside_before, inside_after), angle)| {
                let recased: String = address
                    .chars()
                    .zip(upper.iter().cycle())
                    .map(|(c, &up)| {
                        if up {
                            c.to_uppercase().collect()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                let varied = if angle {
                    format!("{before}Someone <{inside_before}{recased}{inside_after}>{after}")
                } else {
                    format!("{before}{recased}{after}")
                };
                (address, varied)
            },
        )
}

fn classification(participants: &[Participant]) -> Vec<(String, String)> {
    participants
        .iter()
        .map(|p| {
            (
                p.address.to_string(),
                serde_json::to_string(&(&p.role, &p.class)).unwrap(),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn classification_is_stable_under_case_and_whitespace(
        from in address_variants(),
        to in prop::collection::vec(address_variants(), 1..4),
        cc in prop::collection::vec(address_variants(), 0..3),
    ) {
        let extractor = extractor();
        let header = |list: &[(String, String)], varied: bool| {
            list.iter()
                .map(|(plain, variant)| if varied { variant.clone() } else { plain.clone() })
                .collect::<Vec<_>>()
                .join(",")
        };
        let message = |varied: bool| {
            format!(
                "From:{}\r\nTo:{}\r\nCc:{}\r\nSubject: hello\r\n\r\n",
                header(std::slice::from_ref(&from), varied),
                header(&to, varied),
                header(&cc, varied),
            )
        };
        let plain = extractor.extract(&MessageRecord::from_rfc5322(message(false).as_bytes()));
        let varied = extractor.extract(&MessageRecord::from_rfc5322(message(true).as_bytes()));
        prop_assert!(varied.problems.is_empty(), "{:?}", varied.problems);
        prop_assert_eq!(classification(&plain.participants), classification(&varied.participants));
        prop_assert_eq!(plain.direction, varied.direction);
        prop_assert_eq!(&plain.dedupe_key, &varied.dedupe_key);
        prop_assert_eq!(&plain.companies, &varied.companies);
        prop_assert_eq!(plain.decision, varied.decision);
    }
}

/// A captured one-to-one activity between Ann and Bob at a given day.
fn activity(day: i64, ann_sends: bool, reply: bool, extra_recipients: usize) -> Extraction {
    let (from, to) = if ann_sends {
        ("ann@acme.com", "bob@globex.com")
    } else {
        ("bob@globex.com", "ann@acme.com")
    };
    let others: String = (0..extra_recipients)
        .map(|i| format!(", other{i}@initech.com"))
        .collect();
    let reply_header = if reply { "In-Reply-To: <p@x>\n" } else { "" };
    let raw = format!("From: {from}\nTo: {to}{others}\n{reply_header}");
    let mut record = MessageRecord::from_rfc5322(raw.as_bytes());
    record.internal_date_ms = Some(day * DAY_MS);
    extractor().extract(&record)
}

fn score(activities: &[Extraction], now_day: i64) -> f64 {
    let mut book = RelationshipBook::new();
    for extraction in activities {
        book.record(&Touch::from_extraction(extraction).expect("captured"));
    }
    let ann = EmailAddress::parse("ann@acme.com").unwrap();
    let bob = EmailAddress::parse("bob@globex.com").unwrap();
    book.get(&ann, &bob)
        .map_or(0.0, |stats| stats.score_at(now_day * DAY_MS))
}

fn arbitrary_activity() -> impl Strategy<Value = (i64, bool, bool, usize)> {
    (0i64..1000, any::<bool>(), any::<bool>(), 0usize..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn score_is_monotonic_in_recency(
        history in prop::collection::vec(arbitrary_activity(), 0..6),
        (day, ann_sends, reply, extra) in arbitrary_activity(),
        later_by in 0i64..500,
    ) {
        let now = 1500;
        let base: Vec<Extraction> = history
            .iter()
            .map(|&(d, s, r, e)| activity(d, s, r, e))
            .collect();
        let mut older = base.clone();
        older.push(activity(day, ann_sends, reply, extra));
        let mut newer = base;
        newer.push(activity(day + later_by, ann_sends, reply, extra));
        prop_assert!(score(&newer, now) >= score(&older, now) * (1.0 - 1e-12));
    }

    #[test]
    fn score_is_monotonic_in_volume(
        history in prop::collection::vec(arbitrary_activity(), 1..8),
        (day, ann_sends, reply, extra) in arbitrary_activity(),
        now in 1000i64..3000,
    ) {
        let mut activities: Vec<Extraction> = history
            .iter()
            .map(|&(d, s, r, e)| activity(d, s, r, e))
            .collect();
        let before = score(&activities, now);
        activities.push(activity(day, ann_sends, reply, extra));
        let after = score(&activities, now);
        prop_assert!(after > before, "{after} <= {before}");
    }
}
