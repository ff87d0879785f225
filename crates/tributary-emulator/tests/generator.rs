//! Integration tests of the organization generator and its ground truth.
//!
//! The central test re-derives the whole truth from the *rendered* mailboxes (headers
//! parsed with mail-parser, companies from the public suffix list, the contract's rules
//! re-implemented here) and compares it with the truth the generator computed from its
//! structured plan: renderer and truth check each other.

use std::collections::{BTreeMap, BTreeSet};

use mail_parser::{Address, MessageParser};
use sha2::{Digest, Sha256};
use tributary_emulator::model::{Organization, StoredMessage};
use tributary_emulator::org::{
    LiveMessage, NamedAddress, OrgConfig, deliver_live, generate, render_message,
};
use tributary_emulator::truth::{
    Activity, Company, Contact, Direction, ExcludedActivity, GroundTruth, LabelCounts, Participant,
    ParticipantKind, Relationship, Role,
};

const DAY_MS: i64 = 86_400_000;
/// The free-mail domains the issue allows the generator to use.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "yahoo.co.uk",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "gmx.de",
    "yahoo.co.jp",
    "bigpond.com",
];

fn small(seed: u64, users: usize, messages_per_user: usize) -> OrgConfig {
    OrgConfig {
        seed,
        users,
        messages_per_user,
        ..OrgConfig::default()
    }
}

fn all_stored(org: &Organization) -> impl Iterator<Item = (&str, &StoredMessage)> {
    org.mailboxes
        .iter()
        .flat_map(|(email, mailbox)| mailbox.messages.values().map(move |m| (email.as_str(), m)))
}

fn header<'m>(stored: &'m StoredMessage, name: &str) -> Option<&'m str> {
    stored
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

// ----- an independent reading of the rendered mail, following the contract -----

/// What the contract extracts from one stored copy.
#[derive(Debug, Clone)]
struct Reading {
    key: String,
    from: String,
    date_seconds: Option<i64>,
    subject: Option<String>,
    participants: BTreeSet<(Role, String)>,
    automated: Option<&'static str>,
}

fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .map(|addr| {
                    addr.address()
                        .expect("every generated address parses")
                        .trim()
                        .to_lowercase()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read(stored: &StoredMessage) -> Reading {
    let message = MessageParser::default()
        .parse(&stored.raw[..])
        .expect("every generated message parses");
    let from = addresses(message.from());
    let to = addresses(message.to());
    let cc = addresses(message.cc());
    let bcc = addresses(message.bcc());
    let date_seconds = message.date().map(|d| d.to_timestamp());
    // The contract's one subject form: whitespace runs collapsed, trimmed.
    let subject = message
        .subject()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "));
    let key = match message.message_id().map(|id| id.trim().to_lowercase()) {
        Some(id) if !id.is_empty() => format!("mid:{id}"),
        _ => {
            let recipients: BTreeSet<&String> = to.iter().chain(&cc).collect();
            let recipients: Vec<&str> = recipients.into_iter().map(String::as_str).collect();
            let normalized_subject = subject.clone().unwrap_or_default();
            let text = format!(
                "{}\n{}\n{}\n{}",
                from.first().map_or("", String::as_str),
                date_seconds.map(|d| d.to_string()).unwrap_or_default(),
                normalized_subject,
                recipients.join(",")
            );
            format!("hash:{}", hex::encode(Sha256::digest(text.as_bytes())))
        }
    };
    let mut participants = BTreeSet::new();
    for (role, list) in [
        (Role::From, &from),
        (Role::To, &to),
        (Role::Cc, &cc),
        (Role::Bcc, &bcc),
    ] {
        for address in list {
            participants.insert((role, address.clone()));
        }
    }
    let from = from.first().cloned().unwrap_or_default();
    Reading {
        key,
        automated: automated_reason(stored, &from),
        from,
        date_seconds,
        subject,
        participants,
    }
}

fn automated_reason(stored: &StoredMessage, from: &str) -> Option<&'static str> {
    if header(stored, "List-Unsubscribe").is_some() {
        return Some("list-unsubscribe");
    }
    if header(stored, "List-Id").is_some() {
        return Some("list-id");
    }
    if header(stored, "Precedence")
        .is_some_and(|p| matches!(p.trim().to_lowercase().as_str(), "bulk" | "list" | "junk"))
    {
        return Some("precedence");
    }
    if header(stored, "Auto-Submitted").is_some_and(|a| a.trim().to_lowercase() != "no") {
        return Some("auto-submitted");
    }
    let local = from.split('@').next().unwrap_or_default();
    let local = local.split('+').next().unwrap_or_default();
    let listed = [
        "noreply",
        "no-reply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "do_not_reply",
        "mailer-daemon",
        "postmaster",
        "bounce",
        "bounces",
    ];
    if listed.contains(&local) || local.starts_with("noreply-") || local.starts_with("no-reply-") {
        return Some("no-reply-sender");
    }
    None
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .expect("valid instant")
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn company_of(address: &str) -> Option<String> {
    let domain = address.rsplit_once('@').map(|(_, d)| d)?;
    let free = FREE_MAIL
        .iter()
        .any(|f| domain == *f || domain.ends_with(&format!(".{f}")));
    if free {
        return None;
    }
    psl::domain_str(domain).map(str::to_string)
}

struct Sighting {
    reading: Reading,
    mailboxes: BTreeSet<String>,
    earliest_ms: i64,
    participants: BTreeSet<(Role, String)>,
}

/// The truth as the contract defines it, computed from the organization's stored mail.
fn rederive(org: &Organization) -> GroundTruth {
    let members: BTreeMap<String, String> = org
        .users
        .iter()
        .filter(|u| !u.suspended && !u.archived && u.is_mailbox_setup && !u.deleted)
        .flat_map(|u| {
            let primary = u.primary_email.to_lowercase();
            std::iter::once(primary.clone())
                .chain(u.aliases.iter().map(|a| a.to_lowercase()))
                .map(move |a| (a, primary.clone()))
        })
        .collect();
    let synced: BTreeSet<&String> = members.values().collect();
    let window_start = org.now_ms - 365 * DAY_MS;
    let in_window = |ms: i64| ms >= window_start && ms <= org.now_ms;
    let seen_label =
        |m: &StoredMessage| m.label_ids.contains("INBOX") || m.label_ids.contains("SENT");

    let mut keys: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let mut sightings: BTreeMap<String, Sighting> = BTreeMap::new();
    for (email, stored) in all_stored(org) {
        if !synced.contains(&email.to_string()) {
            continue;
        }
        let reading = read(stored);
        keys.insert((email, stored.id.as_str()), reading.key.clone());
        if !(seen_label(stored) && in_window(stored.internal_date_ms)) {
            continue;
        }
        let sighting = sightings
            .entry(reading.key.clone())
            .or_insert_with(|| Sighting {
                reading: reading.clone(),
                mailboxes: BTreeSet::new(),
                earliest_ms: i64::MAX,
                participants: BTreeSet::new(),
            });
        sighting.mailboxes.insert(email.to_string());
        sighting.earliest_ms = sighting.earliest_ms.min(stored.internal_date_ms);
        sighting
            .participants
            .extend(reading.participants.iter().cloned());
    }

    let classify = |address: &str| -> (ParticipantKind, Option<String>) {
        if let Some(primary) = members.get(address) {
            return (ParticipantKind::Member, Some(primary.clone()));
        }
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
        if org
            .domains
            .iter()
            .any(|own| domain == own || domain.ends_with(&format!(".{own}")))
        {
            (ParticipantKind::Internal, None)
        } else {
            (ParticipantKind::External, None)
        }
    };

    let mut activities = Vec::new();
    let mut times = Vec::new();
    let mut excluded = Vec::new();
    for (key, sighting) in &sightings {
        let participants: Vec<Participant> = sighting
            .participants
            .iter()
            .map(|(role, address)| {
                let (kind, member) = classify(address);
                Participant {
                    address: address.clone(),
                    role: *role,
                    kind,
                    member,
                }
            })
            .collect();
        let external = participants
            .iter()
            .any(|p| p.kind == ParticipantKind::External);
        let from_kind = classify(&sighting.reading.from).0;
        let direction = if !external {
            Direction::Internal
        } else if from_kind != ParticipantKind::External {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let automated = sighting.reading.automated;
        if automated.is_some() || direction == Direction::Internal {
            excluded.push(ExcludedActivity {
                dedupe_key: key.clone(),
                automated: automated.map(str::to_string),
                internal: direction == Direction::Internal,
            });
            continue;
        }
        let time_ms = sighting
            .reading
            .date_seconds
            .map_or(sighting.earliest_ms, |s| s * 1000);
        times.push(time_ms);
        activities.push(Activity {
            dedupe_key: key.clone(),
            time: rfc3339(time_ms),
            direction,
            subject: sighting.reading.subject.clone(),
            participants,
            mailboxes: sighting.mailboxes.iter().cloned().collect(),
        });
    }

    let contacts: Vec<Contact> = activities
        .iter()
        .flat_map(|a| &a.participants)
        .filter(|p| p.kind == ParticipantKind::External)
        .map(|p| p.address.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|address| Contact {
            company: company_of(&address),
            address,
        })
        .collect();
    let mut per_company: BTreeMap<String, usize> = BTreeMap::new();
    for contact in &contacts {
        if let Some(company) = &contact.company {
            *per_company.entry(company.clone()).or_default() += 1;
        }
    }
    let companies = per_company
        .into_iter()
        .map(|(domain, contacts)| Company { domain, contacts })
        .collect();

    /// (sent, received, total, first, last) per (member, contact).
    type Tally = (usize, usize, usize, i64, i64);
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (activity, time_ms) in activities.iter().zip(&times) {
        let from = activity
            .participants
            .iter()
            .find(|p| p.role == Role::From)
            .expect("a From");
        let mut people: BTreeMap<(bool, String), bool> = BTreeMap::new();
        for p in &activity.participants {
            let (is_member, id) = match (&p.kind, &p.member) {
                (ParticipantKind::Member, Some(m)) => (true, m.clone()),
                (ParticipantKind::External, _) => (false, p.address.clone()),
                _ => continue,
            };
            *people.entry((is_member, id)).or_default() |= p.role != Role::From;
        }
        for ((is_member, member), member_recipient) in &people {
            if !is_member {
                continue;
            }
            for ((is_member, contact), contact_recipient) in &people {
                if *is_member {
                    continue;
                }
                let t = tallies
                    .entry((member.clone(), contact.clone()))
                    .or_insert((0, 0, 0, *time_ms, *time_ms));
                if from.member.as_ref() == Some(member) && *contact_recipient {
                    t.0 += 1;
                }
                if &from.address == contact && *member_recipient {
                    t.1 += 1;
                }
                t.2 += 1;
                t.3 = t.3.min(*time_ms);
                t.4 = t.4.max(*time_ms);
            }
        }
    }
    let relationships = tallies
        .into_iter()
        .map(
            |((member, contact), (sent, received, total, first, last))| Relationship {
                member,
                contact,
                sent,
                received,
                total,
                first: rfc3339(first),
                last: rfc3339(last),
            },
        )
        .collect();

    let captured: BTreeSet<&str> = activities.iter().map(|a| a.dedupe_key.as_str()).collect();
    let mut mailbox_counts: BTreeMap<String, BTreeMap<String, LabelCounts>> = BTreeMap::new();
    for primary in &synced {
        let counts = mailbox_counts.entry((*primary).clone()).or_default();
        for label in ["INBOX", "SENT"] {
            let mut count = LabelCounts::default();
            for stored in org.mailboxes[*primary].messages.values() {
                if !stored.label_ids.contains(label) {
                    continue;
                }
                count.total += 1;
                if in_window(stored.internal_date_ms) {
                    count.in_window += 1;
                    let key = &keys[&(primary.as_str(), stored.id.as_str())];
                    if captured.contains(key.as_str()) {
                        count.captured += 1;
                    }
                }
            }
            counts.insert(label.to_string(), count);
        }
    }

    GroundTruth {
        activities,
        excluded,
        contacts,
        companies,
        relationships,
        mailbox_counts,
        ..GroundTruth::default()
    }
}

fn assert_truth_matches_rederivation(config: &OrgConfig) {
    let generated = generate(config);
    let truth = &generated.truth;
    let derived = rederive(&generated.org);
    let context = format!("seed {} users {}", config.seed, config.users);
    assert_eq!(
        truth.activities.len(),
        derived.activities.len(),
        "{context}"
    );
    for (expected, found) in truth.activities.iter().zip(&derived.activities) {
        assert_eq!(expected, found, "{context}");
    }
    assert_eq!(truth.excluded, derived.excluded, "{context}");
    assert_eq!(truth.contacts, derived.contacts, "{context}");
    assert_eq!(truth.companies, derived.companies, "{context}");
    assert_eq!(truth.relationships, derived.relationships, "{context}");
    assert_eq!(truth.mailbox_counts, derived.mailbox_counts, "{context}");
}

#[test]
fn the_truth_matches_an_independent_reading_of_the_default_organization() {
    assert_truth_matches_rederivation(&OrgConfig::default());
}

#[test]
fn the_truth_matches_an_independent_reading_of_small_organizations() {
    for (seed, users, messages) in [(1, 3, 20), (2, 4, 30), (3, 5, 50), (4, 6, 40), (5, 8, 60)] {
        assert_truth_matches_rederivation(&small(seed, users, messages));
    }
}

// ----- determinism -----

/// (id, thread id, labels, internalDate, history id, raw bytes).
type MessagePrint = (String, String, Vec<String>, i64, u64, Vec<u8>);
/// (address, history id, messages).
type MailboxPrint = (String, u64, Vec<MessagePrint>);

/// Everything observable about an organization's mail, for comparisons.
fn fingerprint(org: &Organization) -> Vec<MailboxPrint> {
    org.mailboxes
        .iter()
        .map(|(email, mailbox)| {
            let messages = mailbox
                .messages
                .values()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.thread_id.clone(),
                        m.label_ids.iter().cloned().collect(),
                        m.internal_date_ms,
                        m.history_id,
                        m.raw.to_vec(),
                    )
                })
                .collect();
            (email.clone(), mailbox.history_id, messages)
        })
        .collect()
}

#[test]
fn the_same_seed_and_instant_give_the_same_organization_and_truth() {
    let config = small(7, 6, 40);
    let first = generate(&config);
    let second = generate(&config);
    assert_eq!(first.truth, second.truth);
    assert_eq!(fingerprint(&first.org), fingerprint(&second.org));
    assert_eq!(first.org.customer_id, second.org.customer_id);
    let ids = |g: &tributary_emulator::org::Generated| -> Vec<String> {
        g.org.users.iter().map(|u| u.id.clone()).collect()
    };
    assert_eq!(ids(&first), ids(&second));

    let other = generate(&small(8, 6, 40));
    assert_ne!(first.truth.activities, other.truth.activities);
}

#[test]
fn the_truth_survives_a_json_round_trip() {
    let generated = generate(&small(3, 5, 30));
    let json = generated.truth.to_json_pretty();
    let back: GroundTruth = serde_json::from_str(&json).expect("truth JSON parses");
    assert_eq!(back, generated.truth);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    for field in [
        "policy",
        "reference_time",
        "domains",
        "members",
        "activities",
        "contacts",
        "companies",
        "mailbox_counts",
        "relationships",
        "stats",
    ] {
        assert!(value.get(field).is_some(), "missing {field}");
    }
}

// ----- the directory -----

#[test]
fn the_directory_has_admins_aliases_and_unsynced_users() {
    let generated = generate(&OrgConfig::default());
    let org = &generated.org;
    let users = &org.users;
    assert_eq!(users.len(), 25);
    assert!(users[0].is_admin, "the first user is the admin");
    assert!(users.iter().filter(|u| u.is_admin).count() >= 2);
    for user in users {
        assert_eq!(user.id.len(), 21, "{}", user.id);
        assert!(user.id.bytes().all(|b| b.is_ascii_digit()));
        assert!(
            user.primary_email
                .ends_with(&format!("@{}", org.domains[0]))
        );
    }
    let unique_ids: BTreeSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(unique_ids.len(), users.len());
    let with_alias = users.iter().filter(|u| !u.aliases.is_empty()).count();
    assert!(with_alias >= 3, "{with_alias} users with aliases");
    assert!(
        users
            .iter()
            .flat_map(|u| &u.aliases)
            .any(|a| a.ends_with(&format!("@{}", org.domains[1])))
    );

    let suspended: Vec<_> = users.iter().filter(|u| u.suspended).collect();
    let archived: Vec<_> = users.iter().filter(|u| u.archived).collect();
    let no_mailbox: Vec<_> = users.iter().filter(|u| !u.is_mailbox_setup).collect();
    assert_eq!(
        (suspended.len(), archived.len(), no_mailbox.len()),
        (1, 1, 1)
    );
    let members: BTreeSet<&str> = generated
        .truth
        .members
        .iter()
        .map(|m| m.primary.as_str())
        .collect();
    for user in suspended.iter().chain(&archived).chain(&no_mailbox) {
        assert!(!members.contains(user.primary_email.as_str()));
        assert!(!user.is_admin);
    }
    assert_eq!(members.len(), 22);
    // Suspended and archived users keep their old mail; the mailbox-less user has a
    // mail-disabled, empty mailbox.
    assert!(
        !org.mailboxes[&suspended[0].primary_email]
            .messages
            .is_empty()
    );
    assert!(
        !org.mailboxes[&archived[0].primary_email]
            .messages
            .is_empty()
    );
    let disabled = &org.mailboxes[&no_mailbox[0].primary_email];
    assert!(!disabled.mail_enabled && disabled.messages.is_empty());
}

#[test]
fn small_organizations_scale_down_the_special_users() {
    for users in 3..=6 {
        let generated = generate(&small(11, users, 20));
        let directory = &generated.org.users;
        assert_eq!(directory.len(), users);
        assert_eq!(directory.iter().filter(|u| u.suspended).count(), 1);
        assert_eq!(
            directory.iter().filter(|u| !u.is_mailbox_setup).count(),
            usize::from(users >= 4)
        );
        assert_eq!(
            directory.iter().filter(|u| u.archived).count(),
            usize::from(users >= 6)
        );
        assert!(directory[0].is_admin);
        assert!(!generated.truth.activities.is_empty());
        assert!(generated.truth.members.len() >= 2);
    }
}

// ----- the mail -----

#[test]
fn every_activity_is_seen_in_each_of_its_mailboxes_within_the_window() {
    let generated = generate(&small(21, 6, 50));
    let org = &generated.org;
    let window_start = org.now_ms - 365 * DAY_MS;
    let mut copies: BTreeMap<(String, String), Vec<&StoredMessage>> = BTreeMap::new();
    for (email, stored) in all_stored(org) {
        copies
            .entry((email.to_string(), read(stored).key))
            .or_default()
            .push(stored);
    }
    for activity in &generated.truth.activities {
        for mailbox in &activity.mailboxes {
            let found = copies
                .get(&(mailbox.clone(), activity.dedupe_key.clone()))
                .expect("a copy in each listed mailbox");
            assert!(found.iter().any(|m| {
                (m.label_ids.contains("INBOX") || m.label_ids.contains("SENT"))
                    && m.internal_date_ms >= window_start
            }));
        }
    }
}

#[test]
fn automated_and_internal_mail_never_becomes_an_activity() {
    let generated = generate(&OrgConfig::default());
    let truth = &generated.truth;
    let reasons: BTreeSet<&str> = truth
        .excluded
        .iter()
        .filter_map(|e| e.automated.as_deref())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            "list-unsubscribe",
            "list-id",
            "precedence",
            "auto-submitted",
            "no-reply-sender"
        ])
    );
    assert!(
        truth
            .excluded
            .iter()
            .any(|e| e.internal && e.automated.is_none())
    );
    let excluded: BTreeSet<&str> = truth
        .excluded
        .iter()
        .map(|e| e.dedupe_key.as_str())
        .collect();
    for activity in &truth.activities {
        assert!(!excluded.contains(activity.dedupe_key.as_str()));
        assert_ne!(activity.direction, Direction::Internal);
        assert!(
            activity
                .participants
                .iter()
                .any(|p| p.kind == ParticipantKind::External)
        );
    }
    // Every stored message carrying an automation header or a no-reply sender stays out.
    let activities: BTreeSet<&str> = truth
        .activities
        .iter()
        .map(|a| a.dedupe_key.as_str())
        .collect();
    for (_, stored) in all_stored(&generated.org) {
        let reading = read(stored);
        if reading.automated.is_some() {
            assert!(
                !activities.contains(reading.key.as_str()),
                "{}",
                reading.key
            );
        }
    }
}

#[test]
fn companies_are_registrable_domains_and_never_free_mail() {
    let generated = generate(&OrgConfig::default());
    let truth = &generated.truth;
    for company in &truth.companies {
        assert!(!FREE_MAIL.contains(&company.domain.as_str()));
        assert_eq!(
            psl::domain_str(&company.domain),
            Some(company.domain.as_str())
        );
    }
    for contact in &truth.contacts {
        let domain = contact.address.rsplit_once('@').expect("address").1;
        if FREE_MAIL.contains(&domain) {
            assert_eq!(contact.company, None, "{}", contact.address);
        } else {
            assert!(contact.company.is_some(), "{}", contact.address);
        }
    }
    // People writing from a subdomain roll up to their company.
    let subdomain_contacts: Vec<&Contact> = truth
        .contacts
        .iter()
        .filter(|c| {
            let domain = c.address.rsplit_once('@').expect("address").1;
            c.company
                .as_deref()
                .is_some_and(|company| company != domain)
        })
        .collect();
    assert!(!subdomain_contacts.is_empty());
    for contact in subdomain_contacts {
        let company = contact.company.as_deref().expect("company");
        assert!(contact.address.ends_with(&format!(".{company}")));
    }
    for suffix in [".co.uk", ".com.au", ".co.jp", ".de", ".io"] {
        assert!(
            truth.companies.iter().any(|c| c.domain.ends_with(suffix)),
            "no company under {suffix}"
        );
    }
    assert!(truth.contacts.iter().any(|c| c.company.is_none()));
    assert!((20..=40).contains(&truth.companies.len()));
}

#[test]
fn the_edge_cases_are_all_present() {
    let generated = generate(&OrgConfig::default());
    let truth = &generated.truth;
    assert!(
        truth
            .activities
            .iter()
            .any(|a| a.dedupe_key.starts_with("hash:"))
    );
    assert!(truth.activities.iter().any(|a| a.mailboxes.len() >= 2));
    assert!(
        truth
            .activities
            .iter()
            .any(|a| a.direction == Direction::Outbound)
    );
    assert!(
        truth
            .activities
            .iter()
            .any(|a| a.direction == Direction::Inbound)
    );
    assert!(
        truth
            .activities
            .iter()
            .flat_map(|a| &a.participants)
            .any(|p| p.role == Role::Bcc)
    );
    assert!(
        truth
            .activities
            .iter()
            .flat_map(|a| &a.participants)
            .any(|p| p.kind == ParticipantKind::Member && p.member.as_ref() != Some(&p.address)),
        "a member addressed at an alias"
    );
    assert!(
        truth
            .activities
            .iter()
            .flat_map(|a| &a.participants)
            .any(|p| p.kind == ParticipantKind::Internal),
        "a group or unsynced colleague"
    );

    let mut raw_headers = String::new();
    let mut labels = BTreeSet::new();
    let mut without_message_id = 0;
    let mut archived = 0;
    for (_, stored) in all_stored(&generated.org) {
        labels.extend(stored.label_ids.iter().cloned());
        if header(stored, "Message-ID").is_none() {
            without_message_id += 1;
        }
        if stored
            .label_ids
            .iter()
            .all(|l| !matches!(l.as_str(), "INBOX" | "SENT" | "SPAM" | "TRASH" | "DRAFT"))
        {
            archived += 1;
        }
        for (name, value) in stored.headers.iter() {
            raw_headers.push_str(&format!("{name}: {value}\n"));
        }
    }
    for label in [
        "INBOX",
        "SENT",
        "SPAM",
        "TRASH",
        "DRAFT",
        "UNREAD",
        "IMPORTANT",
        "Label_1",
    ] {
        assert!(labels.contains(label), "no message labelled {label}");
    }
    assert!(archived > 0, "archived mail (no INBOX) exists");
    assert!(without_message_id > 0);
    for needle in [
        "=?UTF-8?B?",
        "=?UTF-8?Q?",
        "\"",
        ", ",
        "undisclosed-recipients:;",
        "team: ",
        "List-Unsubscribe: <https://",
        "Precedence: bulk",
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "In-Reply-To: <",
        "References: <",
        "Message-Id: <",
        "CC: ",
        " GMT\n",
        "(UTC)\n",
        "+0900\n",
        "Reply-To: ",
    ] {
        assert!(
            raw_headers.contains(needle),
            "no header contains {needle:?}"
        );
    }
    assert!(
        raw_headers
            .lines()
            .any(|l| l.starts_with("From: \"") && l.contains(", ")),
        "a quoted display name with a comma"
    );
    assert!(
        raw_headers
            .lines()
            .any(|l| l.starts_with("Message-ID: <CA") && l.chars().any(|c| c.is_ascii_lowercase())),
        "mixed-case Message-IDs"
    );
}

#[test]
fn only_the_senders_copy_carries_bcc_and_copies_share_their_headers() {
    let generated = generate(&OrgConfig::default());
    let org = &generated.org;
    let mut by_message_id: BTreeMap<String, Vec<(&str, &StoredMessage)>> = BTreeMap::new();
    let mut with_bcc = 0;
    for (email, stored) in all_stored(org) {
        if header(stored, "Bcc")
            .or_else(|| header(stored, "BCC"))
            .is_some()
        {
            with_bcc += 1;
            let from = read(stored).from;
            let owner = org.find_user(&from).expect("Bcc only on users' own mail");
            assert_eq!(owner.primary_email, email);
            assert!(stored.label_ids.contains("SENT") || stored.label_ids.contains("DRAFT"));
        }
        if let Some(id) = header(stored, "Message-ID") {
            by_message_id
                .entry(id.to_string())
                .or_default()
                .push((email, stored));
        }
    }
    assert!(with_bcc > 0);
    let trace = ["delivered-to", "received", "bcc"];
    let mut shared = 0;
    for copies in by_message_id.values().filter(|c| c.len() > 1) {
        shared += 1;
        let strip = |m: &StoredMessage| -> Vec<(String, String)> {
            m.headers
                .iter()
                .filter(|(n, _)| !trace.contains(&n.to_lowercase().as_str()))
                .cloned()
                .collect()
        };
        let first = strip(copies[0].1);
        for (_, copy) in &copies[1..] {
            assert_eq!(strip(copy), first);
        }
        let mailboxes: BTreeSet<&str> = copies.iter().map(|(e, _)| *e).collect();
        assert_eq!(mailboxes.len(), copies.len(), "one copy per mailbox");
    }
    assert!(shared > 100, "{shared} messages in several mailboxes");
}

#[test]
fn drafts_stay_in_their_authors_mailbox() {
    let generated = generate(&OrgConfig::default());
    let org = &generated.org;
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    let mut drafts = Vec::new();
    for (email, stored) in all_stored(org) {
        if let Some(id) = header(stored, "Message-ID") {
            *copies.entry(id.to_string()).or_default() += 1;
            if stored.label_ids.contains("DRAFT") {
                drafts.push((email, id.to_string(), read(stored).from));
            }
        }
    }
    assert!(!drafts.is_empty());
    for (email, id, from) in drafts {
        assert_eq!(copies[&id], 1);
        assert_eq!(org.find_user(&from).expect("author").primary_email, email);
    }
}

#[test]
fn internal_dates_keep_clear_of_the_backfill_boundary() {
    let generated = generate(&OrgConfig::default());
    let now = generated.org.now_ms;
    let boundary = now - 365 * DAY_MS;
    for (_, stored) in all_stored(&generated.org) {
        let date = stored.internal_date_ms;
        assert!((boundary - date).abs() >= 2 * DAY_MS, "{date}");
        assert!(date <= now && date >= now - 730 * DAY_MS, "{date}");
    }
}

#[test]
fn message_and_thread_ids_look_like_gmails() {
    let generated = generate(&small(5, 6, 60));
    for mailbox in generated.org.mailboxes.values() {
        let mut thread_starts: BTreeMap<&str, i64> = BTreeMap::new();
        for stored in mailbox.messages.values() {
            assert_eq!(stored.id.len(), 16);
            assert!(
                stored
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            let root = mailbox
                .messages
                .get(&stored.thread_id)
                .expect("a thread id is a message id in the same mailbox");
            assert_eq!(root.thread_id, root.id);
            let start = thread_starts
                .entry(stored.thread_id.as_str())
                .or_insert(i64::MAX);
            *start = (*start).min(stored.internal_date_ms);
        }
        for (thread_id, start) in thread_starts {
            assert_eq!(mailbox.messages[thread_id].internal_date_ms, start);
        }
        // The backlog predates the history the mailbox keeps.
        assert!(mailbox.history.is_empty());
        assert_eq!(mailbox.oldest_history_id, mailbox.history_id);
    }
}

#[test]
fn label_totals_match_a_scan_of_the_mailboxes() {
    let generated = generate(&small(9, 5, 50));
    for (email, labels) in &generated.truth.mailbox_counts {
        let mailbox = &generated.org.mailboxes[email];
        for (label, counts) in labels {
            let scanned = mailbox
                .messages
                .values()
                .filter(|m| m.label_ids.contains(label))
                .count();
            assert_eq!(counts.total, scanned, "{email} {label}");
            assert!(counts.captured <= counts.in_window && counts.in_window <= counts.total);
        }
    }
}

#[test]
fn stored_messages_carry_parsed_headers_and_a_snippet() {
    let generated = generate(&small(12, 4, 30));
    for (_, stored) in all_stored(&generated.org) {
        assert_eq!(
            *stored.headers,
            tributary_emulator::model::parse_header_fields(&stored.raw)
        );
        assert!(!stored.snippet.is_empty());
        let text = std::str::from_utf8(&stored.raw).expect("generated mail is UTF-8");
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "bare LF in {}",
            stored.id
        );
    }
}

// ----- live delivery -----

#[test]
fn live_mail_is_delivered_with_history_and_joins_its_thread() {
    let mut generated = generate(&small(13, 5, 20));
    let org = &mut generated.org;
    let member = org.users[0].primary_email.clone();
    let colleague = org.users[1].primary_email.clone();
    let suspended = org
        .users
        .iter()
        .find(|u| u.suspended)
        .expect("a suspended user")
        .primary_email
        .clone();
    let now = org.now_ms;
    let before = org.mailboxes[&member].history_id;
    let inbound = LiveMessage {
        from: NamedAddress::new(Some("Lee, Ann"), "ann.lee@example-partner.co.uk"),
        to: vec![NamedAddress::new(None, &member)],
        cc: vec![NamedAddress::new(None, &suspended)],
        bcc: vec![],
        subject: Some("Live quote".into()),
        date_ms: now + 60_000,
        message_id: Some("Live-1@Example-Partner.co.uk".into()),
        in_reply_to: None,
        references: vec![],
        body: "Hello".into(),
    };
    let delivered = deliver_live(org, &inbound, now + 61_000);
    assert_eq!(delivered.len(), 1, "the suspended user gets nothing");
    assert_eq!(delivered[0].mailbox, member);
    assert!(delivered[0].history_id > before);
    let stored = &org.mailboxes[&member].messages[&delivered[0].message_id];
    assert!(stored.label_ids.contains("INBOX"));
    assert_eq!(org.mailboxes[&member].history.len(), 1);

    let reply = LiveMessage {
        from: NamedAddress::new(None, &member),
        to: vec![NamedAddress::new(None, "ann.lee@example-partner.co.uk")],
        cc: vec![],
        bcc: vec![NamedAddress::new(None, &colleague)],
        subject: Some("Re: Live quote".into()),
        date_ms: now + 120_000,
        message_id: Some("live-2@larkspur-trading.com".into()),
        in_reply_to: Some("Live-1@Example-Partner.co.uk".into()),
        references: vec!["Live-1@Example-Partner.co.uk".into()],
        body: "Thanks".into(),
    };
    let delivered = deliver_live(org, &reply, now + 121_000);
    assert_eq!(delivered.len(), 2);
    let sender_copy = delivered
        .iter()
        .find(|d| d.mailbox == member)
        .expect("sender");
    let bcc_copy = delivered
        .iter()
        .find(|d| d.mailbox == colleague)
        .expect("bcc");
    let sent = &org.mailboxes[&member].messages[&sender_copy.message_id];
    assert!(sent.label_ids.contains("SENT"));
    assert_eq!(
        sent.thread_id,
        org.mailboxes[&member].messages[&sent.thread_id].id
    );
    assert_ne!(
        sent.thread_id, sent.id,
        "the reply joins the inbound thread"
    );
    assert!(header(sent, "Bcc").is_some());
    let received = &org.mailboxes[&colleague].messages[&bcc_copy.message_id];
    assert!(header(received, "Bcc").is_none());
    assert_eq!(header(received, "Delivered-To"), Some(colleague.as_str()));

    let rendered = String::from_utf8(render_message(&reply, false)).expect("UTF-8");
    assert!(rendered.contains("In-Reply-To: <Live-1@Example-Partner.co.uk>\r\n"));
}
