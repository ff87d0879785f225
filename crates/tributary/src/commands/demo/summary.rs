//! The demo's closing table (or JSON with `--json`).

use super::verify::CaptureCheck;
use super::{DemoArgs, Login};
use serde::Serialize;
use std::collections::BTreeMap;
use tributary_emulator::server::RunningEmulator;
use tributary_store::{Store, StoreError, TenantId};

pub struct Inputs<'a> {
    pub args: &'a DemoArgs,
    pub store: &'a Store,
    pub tenant: &'a TenantId,
    pub emulator: &'a RunningEmulator,
    pub check: CaptureCheck,
    pub sync_seconds: f64,
    pub total_seconds: f64,
    pub console_url: &'a str,
    pub logins: &'a [Login],
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub organization: Organization,
    pub members_linked: usize,
    pub links_by_status: BTreeMap<String, usize>,
    /// Metadata reads answered by Gmail (messages looked at).
    pub messages_scanned: u64,
    pub activities: i64,
    pub contacts: usize,
    pub companies: usize,
    pub relationships: usize,
    pub top_relationships: Vec<TopRelationship>,
    /// Gmail quota units the sync spent, and how many requests were told to slow down.
    pub quota_units: u64,
    pub rate_limited: u64,
    pub sync_seconds: f64,
    pub messages_per_second: f64,
    pub total_seconds: f64,
    pub ground_truth: CaptureCheck,
    pub console_url: String,
    pub logins: Vec<Login>,
}

#[derive(Debug, Serialize)]
pub struct Organization {
    pub users: usize,
    pub messages_per_user: usize,
    pub seed: u64,
}

#[derive(Debug, Serialize)]
pub struct TopRelationship {
    pub member: String,
    pub contact: String,
    pub messages: i64,
    pub score: f64,
}

impl Summary {
    pub async fn collect(inputs: Inputs<'_>) -> Result<Self, StoreError> {
        let Inputs {
            args,
            store,
            tenant,
            emulator,
            check,
            sync_seconds,
            total_seconds,
            console_url,
            logins,
        } = inputs;
        let links = store.links(tenant).await?;
        let mut links_by_status = BTreeMap::new();
        for link in &links {
            *links_by_status
                .entry(link.status.as_str().to_owned())
                .or_default() += 1;
        }
        let mut relationships = store.relationships(tenant).await?;
        relationships.sort_by(|a, b| b.score_at_last.total_cmp(&a.score_at_last));
        let counters = emulator.state.counters.snapshot();
        let messages_scanned = counters
            .methods
            .get("users.messages.get")
            .map_or(0, |m| m.requests);
        Ok(Summary {
            organization: Organization {
                users: args.users,
                messages_per_user: args.messages_per_user,
                seed: args.seed,
            },
            members_linked: links.len(),
            links_by_status,
            messages_scanned,
            activities: store.count_activities(tenant).await?,
            contacts: store.contacts(tenant).await?.len(),
            companies: store.companies(tenant).await?.len(),
            relationships: relationships.len(),
            top_relationships: relationships
                .iter()
                .take(5)
                .map(|r| TopRelationship {
                    member: r.member.clone(),
                    contact: r.contact.clone(),
                    messages: r.total,
                    score: (r.score_at_last * 100.0).round() / 100.0,
                })
                .collect(),
            quota_units: counters.total.units,
            rate_limited: counters.total.rate_limited,
            sync_seconds: round2(sync_seconds),
            messages_per_second: round2(messages_scanned as f64 / sync_seconds.max(0.001)),
            total_seconds: round2(total_seconds),
            ground_truth: check,
            console_url: console_url.to_owned(),
            logins: logins.to_vec(),
        })
    }

    pub fn print(&self) {
        let statuses: Vec<String> = self
            .links_by_status
            .iter()
            .map(|(status, n)| format!("{n} {status}"))
            .collect();
        let rows = [
            (
                "members linked",
                format!("{} ({})", self.members_linked, statuses.join(", ")),
            ),
            ("messages scanned", self.messages_scanned.to_string()),
            ("activities", self.activities.to_string()),
            ("contacts", self.contacts.to_string()),
            ("companies", self.companies.to_string()),
            ("relationships", self.relationships.to_string()),
            (
                "quota units spent",
                format!(
                    "{} ({} rate-limited answers)",
                    self.quota_units, self.rate_limited
                ),
            ),
            (
                "sync time",
                format!(
                    "{:.1} s, {:.0} messages/s",
                    self.sync_seconds, self.messages_per_second
                ),
            ),
        ];
        println!();
        println!("Summary");
        for (name, value) in rows {
            println!("  {name:<18} {value}");
        }
        println!("  top relationships");
        for top in &self.top_relationships {
            println!(
                "    {:<34} {:<34} {:>4} messages  score {:.2}",
                top.member, top.contact, top.messages, top.score
            );
        }
        if self.ground_truth.equal {
            println!("  ground truth       EQUAL: the capture matches the emulator's ground truth");
        } else {
            println!(
                "  ground truth       DIFFERENT: {} differences",
                self.ground_truth.differences
            );
            for example in &self.ground_truth.examples {
                println!("    {example}");
            }
        }
    }
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
