//! The two independent implementations of `docs/capture-contract.md` check each other:
//! `tributary-core` extracts every synced mailbox of a generated organization from the
//! header fields Gmail would return, and the result must equal the emulator's ground
//! truth, which is computed from the generator's structured model.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tributary_core::relationship::{RelationshipBook, Touch};
use tributary_core::{Extraction, Extractor, MessageRecord};
use tributary_emulator::model::{DirectoryUser, Organization};
use tributary_emulator::org::{self, DEFAULT_NOW_MS, OrgConfig};
use tributary_emulator::testing::{Differences, json_text, truth_time_ms};
use tributary_emulator::truth::GroundTruth;
use tributary_testkit::{extractor_for, is_synced, records};

/// (member, contact) → (sent, received, total, first ms, last ms)
type Relationships = BTreeMap<(String, String), (u64, u64, u64, i64, i64)>;

/// What core captures of the organization, in the truth's terms.
struct Capture {
    activities: BTreeMap<String, Extraction>,
    excluded: BTreeMap<String, Extraction>,
    /// mailbox → label → (in_window, captured)
    label_counts: BTreeMap<String, BTreeMap<String, (usize, usize)>>,
}

fn capture(org: &Organization, extractor: &Extractor) -> Capture {
    let synced: Vec<&DirectoryUser> = org.users.iter().filter(|u| is_synced(u)).collect();
    let mut groups: BTreeMap<String, Vec<MessageRecord>> = BTreeMap::new();
    for user in &synced {
        let mailbox = &org.mailboxes[&user.primary_email.to_ascii_lowercase()];
        for record in records(mailbox) {
            if !extractor.policy.sees(&record, org.now_ms) {
                continue;
            }
            let key = extractor.extract(&record).dedupe_key.to_string();
            groups.entry(key).or_default().push(record);
        }
    }
    let mut activities = BTreeMap::new();
    let mut excluded = BTreeMap::new();
    for (key, group) in &groups {
        let extraction = extractor.extract_sightings(group);
        assert_eq!(
            extraction.dedupe_key.as_str(),
            key,
            "merging sightings changed the key"
        );
        if extraction.is_captured() {
            activities.insert(key.clone(), extraction);
        } else {
            excluded.insert(key.clone(), extraction);
        }
    }
    let mut label_counts: BTreeMap<String, BTreeMap<String, (usize, usize)>> = BTreeMap::new();
    for (key, group) in &groups {
        for record in group {
            let mailbox = record.mailbox.clone().expect("set above");
            for label in ["INBOX", "SENT"] {
                if !record.labels.iter().any(|l| l == label) {
                    continue;
                }
                let counts = label_counts
                    .entry(mailbox.clone())
                    .or_default()
                    .entry(label.into())
                    .or_default();
                counts.0 += 1;
                counts.1 += usize::from(activities.contains_key(key));
            }
        }
    }
    Capture {
        activities,
        excluded,
        label_counts,
    }
}

/// A participant as (role, address, kind, member), from core's JSON form.
fn participant_tuples(
    extraction: &Extraction,
) -> BTreeSet<(String, String, String, Option<String>)> {
    extraction
        .participants
        .iter()
        .map(|p| {
            let json = serde_json::to_value(p).expect("participants serialize");
            let field = |name: &str| json.get(name).and_then(Value::as_str).map(str::to_owned);
            (
                field("role").expect("role"),
                field("address").expect("address"),
                field("kind").expect("kind"),
                field("member"),
            )
        })
        .collect()
}

fn compare_activities(truth: &GroundTruth, capture: &Capture, diffs: &mut Differences) {
    let expected: BTreeSet<&str> = truth
        .activities
        .iter()
        .map(|a| a.dedupe_key.as_str())
        .collect();
    let got: BTreeSet<&str> = capture.activities.keys().map(String::as_str).collect();
    for key in expected.difference(&got) {
        let why = capture.excluded.get(*key).map(|e| json_text(&e.decision));
        diffs.add("activity missing", format!("{key} (core: {why:?})"));
    }
    for key in got.difference(&expected) {
        diffs.add("activity not in truth", (*key).to_string());
    }
    for activity in &truth.activities {
        let Some(extraction) = capture.activities.get(&activity.dedupe_key) else {
            continue;
        };
        let key = &activity.dedupe_key;
        if json_text(&extraction.direction) != json_text(&activity.direction) {
            diffs.add(
                "direction",
                format!(
                    "{key}: core {:?}, truth {:?}",
                    extraction.direction, activity.direction
                ),
            );
        }
        if extraction.time_ms != Some(truth_time_ms(&activity.time)) {
            diffs.add(
                "time",
                format!(
                    "{key}: core {:?}, truth {}",
                    extraction.time_ms, activity.time
                ),
            );
        }
        if extraction.subject != activity.subject {
            diffs.add(
                "subject",
                format!(
                    "{key}: core {:?}, truth {:?}",
                    extraction.subject, activity.subject
                ),
            );
        }
        let mut mailboxes = extraction.mailboxes.clone();
        mailboxes.sort();
        if mailboxes != activity.mailboxes {
            diffs.add(
                "mailboxes",
                format!("{key}: core {mailboxes:?}, truth {:?}", activity.mailboxes),
            );
        }
        let expected: BTreeSet<_> = activity
            .participants
            .iter()
            .map(|p| {
                (
                    json_text(&p.role),
                    p.address.clone(),
                    json_text(&p.kind),
                    p.member.clone(),
                )
            })
            .collect();
        let got = participant_tuples(extraction);
        if got != expected {
            let missing: Vec<_> = expected.difference(&got).collect();
            let extra: Vec<_> = got.difference(&expected).collect();
            diffs.add(
                "participants",
                format!("{key}: missing {missing:?}, extra {extra:?}"),
            );
        }
    }
    let expected_excluded: BTreeSet<&str> = truth
        .excluded
        .iter()
        .map(|e| e.dedupe_key.as_str())
        .collect();
    let got_excluded: BTreeSet<&str> = capture.excluded.keys().map(String::as_str).collect();
    for key in expected_excluded.symmetric_difference(&got_excluded) {
        diffs.add("excluded set", (*key).to_string());
    }
}

fn compare_contacts_and_companies(truth: &GroundTruth, capture: &Capture, diffs: &mut Differences) {
    let mut contacts: BTreeMap<String, Option<String>> = BTreeMap::new();
    for extraction in capture.activities.values() {
        for contact in &extraction.contacts {
            contacts.insert(contact.address.to_string(), contact.company.clone());
        }
    }
    let expected: BTreeMap<String, Option<String>> = truth
        .contacts
        .iter()
        .map(|c| (c.address.clone(), c.company.clone()))
        .collect();
    if contacts != expected {
        for (address, company) in &expected {
            if contacts.get(address) != Some(company) {
                diffs.add(
                    "contact",
                    format!(
                        "{address}: core {:?}, truth {company:?}",
                        contacts.get(address)
                    ),
                );
            }
        }
        for address in contacts.keys().filter(|a| !expected.contains_key(*a)) {
            diffs.add("contact not in truth", address.clone());
        }
    }
    let mut companies: BTreeMap<String, usize> = BTreeMap::new();
    for company in contacts.values().flatten() {
        *companies.entry(company.clone()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = truth
        .companies
        .iter()
        .map(|c| (c.domain.clone(), c.contacts))
        .collect();
    if companies != expected {
        diffs.add(
            "companies",
            format!("core {companies:?}\n    truth {expected:?}"),
        );
    }
}

fn compare_relationships(truth: &GroundTruth, capture: &Capture, diffs: &mut Differences) {
    let mut book = RelationshipBook::new();
    for extraction in capture.activities.values() {
        let touch = Touch::from_extraction(extraction).expect("captured activities have a time");
        book.record(&touch);
    }
    let got: Relationships = book
        .iter()
        .map(|(member, contact, s)| {
            (
                (member.to_string(), contact.to_string()),
                (s.sent, s.received, s.total, s.first_ms, s.last_ms),
            )
        })
        .collect();
    let expected: Relationships = truth
        .relationships
        .iter()
        .map(|r| {
            let counts = (
                r.sent as u64,
                r.received as u64,
                r.total as u64,
                truth_time_ms(&r.first),
                truth_time_ms(&r.last),
            );
            ((r.member.clone(), r.contact.clone()), counts)
        })
        .collect();
    for (pair, counts) in &expected {
        if got.get(pair) != Some(counts) {
            diffs.add(
                "relationship",
                format!("{pair:?}: core {:?}, truth {counts:?}", got.get(pair)),
            );
        }
    }
    for pair in got.keys().filter(|p| !expected.contains_key(*p)) {
        diffs.add("relationship not in truth", format!("{pair:?}"));
    }
}

fn compare_label_counts(
    org: &Organization,
    truth: &GroundTruth,
    capture: &Capture,
    diffs: &mut Differences,
) {
    for (mailbox, labels) in &truth.mailbox_counts {
        for (label, counts) in labels {
            let got = capture
                .label_counts
                .get(mailbox)
                .and_then(|l| l.get(label))
                .copied()
                .unwrap_or_default();
            if got != (counts.in_window, counts.captured) {
                diffs.add(
                    "label counts",
                    format!(
                        "{mailbox} {label}: core (in_window, captured) {got:?}, truth {counts:?}"
                    ),
                );
            }
            let total = org.mailboxes[mailbox]
                .messages
                .values()
                .filter(|m| m.label_ids.contains(label))
                .count();
            if total != counts.total {
                diffs.add(
                    "label total",
                    format!("{mailbox} {label}: mailbox {total}, truth {}", counts.total),
                );
            }
        }
    }
}

fn check(config: OrgConfig) {
    let generated = org::generate(&config);
    let (org, truth) = (&generated.org, &generated.truth);
    let extractor = extractor_for(org);
    let members: Vec<String> = extractor
        .tenant
        .members()
        .iter()
        .map(|m| m.primary.to_string())
        .collect();
    let expected_members: Vec<String> = truth.members.iter().map(|m| m.primary.clone()).collect();
    assert_eq!(
        members.iter().collect::<BTreeSet<_>>(),
        expected_members.iter().collect::<BTreeSet<_>>(),
        "synced members"
    );

    let capture = capture(org, &extractor);
    assert!(!capture.activities.is_empty(), "nothing captured");
    let mut diffs = Differences::default();
    compare_activities(truth, &capture, &mut diffs);
    compare_contacts_and_companies(truth, &capture, &mut diffs);
    compare_relationships(truth, &capture, &mut diffs);
    compare_label_counts(org, truth, &capture, &mut diffs);
    diffs.assert_none(&format!("core's capture of {config:?}"));
}

#[test]
fn default_organization_capture_equals_ground_truth() {
    check(OrgConfig {
        now_ms: DEFAULT_NOW_MS,
        ..OrgConfig::default()
    });
}

#[test]
fn small_organizations_capture_equals_ground_truth() {
    for (seed, users) in [(2, 3), (3, 5), (4, 8)] {
        check(OrgConfig {
            seed,
            users,
            messages_per_user: 60,
            now_ms: DEFAULT_NOW_MS + seed as i64 * 86_400_000,
        });
    }
}
