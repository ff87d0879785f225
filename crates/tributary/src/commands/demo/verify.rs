//! Does the store hold exactly what the emulator's ground truth says a correct capture
//! produces? Activities (keys, direction, participants with roles, mailboxes), contacts
//! with their company, companies with their contact counts, and relationships with their
//! counts. (The test suite compares every field, times and scores included.)

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use tributary_emulator::truth::GroundTruth;
use tributary_store::{Store, StoreError, TenantId};

/// How many differences are listed (all are counted).
const LISTED: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct CaptureCheck {
    pub equal: bool,
    pub differences: usize,
    /// The first few, in words.
    pub examples: Vec<String>,
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

pub async fn check(
    store: &Store,
    tenant: &TenantId,
    truth: &GroundTruth,
) -> Result<CaptureCheck, StoreError> {
    let mut report = Report::default();
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

    let stored_contacts: BTreeMap<String, Option<String>> = store
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
    report.compare("contact", &stored_contacts, &truth_contacts);

    let stored_companies: BTreeMap<String, i64> = store
        .companies(tenant)
        .await?
        .into_iter()
        .map(|c| (c.domain, c.contacts))
        .collect();
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

    Ok(CaptureCheck {
        equal: report.count == 0,
        differences: report.count,
        examples: report.examples,
    })
}

/// The JSON name of a truth enum (`inbound`, `to`, …), as the store writes it.
fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        other => format!("{other:?}"),
    }
}
