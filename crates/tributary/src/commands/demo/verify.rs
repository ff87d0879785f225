//! Does the store hold exactly what the emulator's ground truth says a correct capture
//! produces? Mail: activities (keys, direction, participants with roles, mailboxes),
//! contacts with their company, companies with their contact counts, and relationships
//! with their counts. Meetings: every captured and every upcoming meeting (identity,
//! times, direction, title, participants with their answers, the calendars that saw
//! it), against the emulator's meeting truth at the instant of the check. (The test
//! suite compares every field, times and scores included.) People met only in captured
//! meetings are contacts too; the mail truth does not know them, so they are left out of
//! the contact comparison.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use tributary_emulator::org::meetings_truth::{MeetingsTruth, TruthMeeting};
use tributary_emulator::server::app::parse_rfc3339_ms;
use tributary_emulator::truth::GroundTruth;
use tributary_store::{
    MeetingCursor, MeetingFilter, MeetingPage, MeetingView, MeetingsOf, Store, StoreError, TenantId,
};

/// How many differences are listed (all are counted).
const LISTED: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct CaptureCheck {
    /// Mail and (when checked) meetings both equal their truth.
    pub equal: bool,
    pub differences: usize,
    /// The first few, in words.
    pub examples: Vec<String>,
    /// Whether meetings were compared (the policy captures every member's calendar).
    pub meetings_checked: bool,
}

#[derive(Default)]
struct Report {
    count: usize,
    examples: Vec<String>,
}

impl Report {
    fn compare<K: Ord + Debug, V: PartialEq + Debug>(
        &mut self,
        what: &str,
        stored: &BTreeMap<K, V>,
        truth: &BTreeMap<K, V>,
    ) {
        for (key, expected) in truth {
            match stored.get(key) {
                None => self.add(format!("{what} {key:?} missing")),
                Some(found) if found != expected => {
                    self.add(format!(
                        "{what} {key:?}: stored {found:?}, truth {expected:?}"
                    ));
                }
                Some(_) => {}
            }
        }
        for key in stored.keys().filter(|k| !truth.contains_key(k)) {
            self.add(format!("{what} {key:?} not in the truth"));
        }
    }

    fn add(&mut self, text: String) {
        self.count += 1;
        if self.examples.len() < LISTED {
            self.examples.push(text);
        }
    }
}

type ActivityShape = (String, BTreeSet<(String, String)>, BTreeSet<String>);

/// Compares the mail capture with the mail truth.
pub async fn check(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
) -> Result<CaptureCheck, StoreError> {
    check_with_meetings(store, tenant, truth, None).await
}

/// Compares the capture with the mail truth and, when given, the meeting truth.
pub async fn check_with_meetings(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    meetings: Option<&MeetingsTruth>,
) -> Result<CaptureCheck, StoreError> {
    let mut report = Report::default();
    check_mail(store, tenant, truth, &mut report).await?;
    if let Some(meetings) = meetings {
        check_meetings(store, tenant, meetings, &mut report).await?;
    }
    Ok(CaptureCheck {
        equal: report.count == 0,
        differences: report.count,
        examples: report.examples,
        meetings_checked: meetings.is_some(),
    })
}

async fn check_mail(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
    report: &mut Report,
) -> Result<(), StoreError> {
    let stored_activities: BTreeMap<String, ActivityShape> = store
        .activities(tenant)
        .await?
        .into_iter()
        .map(|a| {
            let participants = a
                .participants
                .into_iter()
                .map(|p| (p.address, p.role))
                .collect();
            let mailboxes = a
                .sightings
                .into_iter()
                .map(|(mailbox, _, _)| mailbox)
                .collect();
            (a.dedupe_key, (a.direction, participants, mailboxes))
        })
        .collect();
    let truth_activities: BTreeMap<String, ActivityShape> = truth
        .activities
        .iter()
        .map(|a| {
            let participants = a
                .participants
                .iter()
                .map(|p| (p.address.clone(), name_of(&p.role)))
                .collect();
            let mailboxes = a.mailboxes.iter().cloned().collect();
            (
                a.dedupe_key.clone(),
                (name_of(&a.direction), participants, mailboxes),
            )
        })
        .collect();
    report.compare("activity", &stored_activities, &truth_activities);

    let mut stored_contacts: BTreeMap<String, Option<String>> = store
        .contacts(tenant)
        .await?
        .into_iter()
        .map(|c| (c.address, c.company))
        .collect();
    let truth_contacts = truth
        .contacts
        .iter()
        .map(|c| (c.address.clone(), c.company.clone()))
        .collect();
    let met = meeting_only_contacts(store, tenant, &stored_contacts, &truth_contacts).await?;
    stored_contacts.retain(|address, _| !met.contains_key(address));
    report.compare("contact", &stored_contacts, &truth_contacts);

    let mut stored_companies: BTreeMap<String, i64> = store
        .companies(tenant)
        .await?
        .into_iter()
        .map(|c| (c.domain, c.contacts))
        .collect();
    for company in met.values().flatten() {
        if let Some(count) = stored_companies.get_mut(company) {
            *count -= 1;
        }
    }
    stored_companies.retain(|_, count| *count > 0);
    let truth_companies = truth
        .companies
        .iter()
        .map(|c| {
            (
                c.domain.clone(),
                i64::try_from(c.contacts).unwrap_or(i64::MAX),
            )
        })
        .collect();
    report.compare("company", &stored_companies, &truth_companies);

    let stored_relationships: BTreeMap<(String, String), (i64, i64, i64)> = store
        .relationships(tenant)
        .await?
        .into_iter()
        .map(|r| ((r.member, r.contact), (r.sent, r.received, r.total)))
        .collect();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let truth_relationships = truth
        .relationships
        .iter()
        .map(|r| {
            (
                (r.member.clone(), r.contact.clone()),
                (count(r.sent), count(r.received), count(r.total)),
            )
        })
        .collect();
    report.compare("relationship", &stored_relationships, &truth_relationships);
    Ok(())
}

/// A meeting as compared: start, end, direction, title, participants (address,
/// organizer, answer) and the calendars that saw it.
type MeetingShape = (
    i64,
    i64,
    String,
    Option<String>,
    BTreeSet<(String, bool, String)>,
    BTreeSet<String>,
);

async fn check_meetings(
    store: &Store,
    tenant: &TenantId,
    truth: &MeetingsTruth,
    report: &mut Report,
) -> Result<(), StoreError> {
    let now_ms = truth.policy.now_ms;
    let captured = all_meetings(store, tenant, None).await?;
    report.compare(
        "meeting",
        &stored_meetings(&captured),
        &truth_meetings(&truth.meetings),
    );
    let upcoming = all_meetings(store, tenant, Some(now_ms)).await?;
    report.compare(
        "upcoming meeting",
        &stored_meetings(&upcoming),
        &truth_meetings(&truth.upcoming),
    );
    Ok(())
}

/// Every captured meeting of the tenant, or with `upcoming_at` every upcoming meeting
/// not ended by then, an administrator's view, page by page.
pub async fn all_meetings(
    store: &Store,
    tenant: &TenantId,
    upcoming_at: Option<i64>,
) -> Result<Vec<MeetingView>, StoreError> {
    let filter = MeetingFilter::default();
    let mut meetings = Vec::new();
    let mut after: Option<MeetingCursor> = None;
    loop {
        let page: MeetingPage = match upcoming_at {
            None => {
                store
                    .meetings_page(tenant, &filter, after.as_ref(), 500)
                    .await?
            }
            Some(now_ms) => {
                store
                    .upcoming_page(tenant, &filter, now_ms, after.as_ref(), 500)
                    .await?
            }
        };
        meetings.extend(page.meetings);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(meetings),
        }
    }
}

fn stored_meetings(meetings: &[MeetingView]) -> BTreeMap<String, MeetingShape> {
    meetings
        .iter()
        .map(|m| {
            let participants = m
                .participants
                .iter()
                .map(|p| {
                    (
                        p.address.clone(),
                        p.organizer,
                        p.response.as_str().to_owned(),
                    )
                })
                .collect();
            let shape = (
                m.start_ms,
                m.end_ms,
                m.direction.clone(),
                m.title.clone(),
                participants,
                m.calendars.iter().cloned().collect(),
            );
            (m.key.clone(), shape)
        })
        .collect()
}

fn truth_meetings(meetings: &[TruthMeeting]) -> BTreeMap<String, MeetingShape> {
    meetings
        .iter()
        .map(|m| {
            let participants = m
                .participants
                .iter()
                .map(|p| {
                    let answer = match name_of(&p.response).as_str() {
                        "needsAction" => "needs_action".to_owned(),
                        other => other.to_owned(),
                    };
                    (p.email.to_lowercase(), p.organizer, answer)
                })
                .collect();
            let shape = (
                instant_ms(&m.start),
                instant_ms(&m.end),
                m.direction.to_owned(),
                m.title.clone(),
                participants,
                m.calendars.iter().map(|c| c.to_lowercase()).collect(),
            );
            let key = format!("ical:{}:{}", instant_ms(&m.original_start), m.ical_uid);
            (key, shape)
        })
        .collect()
}

/// The truth's RFC 3339 instants are the emulator's own rendering, always valid; an
/// unreadable one compares as the epoch (and so shows up as a difference).
fn instant_ms(rfc3339: &str) -> i64 {
    parse_rfc3339_ms(rfc3339).unwrap_or_default()
}

/// Stored contacts the mail truth does not know that a captured meeting has.
async fn meeting_only_contacts(
    store: &Store,
    tenant: &TenantId,
    stored: &BTreeMap<String, Option<String>>,
    mail: &BTreeMap<String, Option<String>>,
) -> Result<BTreeMap<String, Option<String>>, StoreError> {
    let mut met = BTreeMap::new();
    for (address, company) in stored.iter().filter(|(a, _)| !mail.contains_key(*a)) {
        let of = MeetingsOf::Contact(address.clone());
        if !store.meetings_of(tenant, &of, 1).await?.is_empty() {
            met.insert(address.clone(), company.clone());
        }
    }
    Ok(met)
}

/// The JSON name of a truth enum (`inbound`, `to`, …), as the store writes it.
fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}
