//! The demo's closing table (or JSON with `--json`).

use super::emulators::{DemoProvider, ProviderUsage};
use super::verify::{CaptureCheck, all_meetings};
use super::{DemoArgs, Login};
use serde::Serialize;
use std::collections::BTreeMap;
use tributary_emulator::org::meetings::rfc3339;
use tributary_store::{LinkView, MeetingView, PushMode, Store, StoreError, TenantId};

/// How many upcoming meetings the summary names.
const NEXT_MEETINGS: usize = 3;

pub struct Inputs<'a> {
    pub args: &'a DemoArgs,
    pub store: &'a Store,
    pub tenant: &'a TenantId,
    /// What each provider's emulator counted.
    pub usage: Vec<ProviderUsage>,
    pub check: CaptureCheck,
    /// The instant meetings were judged at: upcoming means not ended by then.
    pub now_ms: i64,
    pub sync_seconds: f64,
    pub total_seconds: f64,
    pub console_url: &'a str,
    pub logins: &'a [Login],
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub provider: DemoProvider,
    pub organization: Organization,
    pub members_linked: usize,
    pub links_by_status: BTreeMap<String, usize>,
    /// Links per provider (`google`, `microsoft`).
    pub links_by_provider: BTreeMap<String, usize>,
    /// Message copies captured: one per message and mailbox it was synced from (an
    /// activity seen in two mailboxes counts twice).
    pub messages_captured: u64,
    pub activities: i64,
    pub contacts: usize,
    pub companies: usize,
    pub relationships: usize,
    pub top_relationships: Vec<TopRelationship>,
    pub meetings: Meetings,
    /// Whether new mail reaches the mailboxes through push or only through polling.
    pub push: Push,
    /// Gmail quota units the sync spent (0 without Google), and how many requests
    /// every provider told to slow down.
    pub quota_units: u64,
    pub rate_limited: u64,
    /// What each provider's emulator counted.
    pub providers: Vec<ProviderUsage>,
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

/// What the calendars brought in.
#[derive(Debug, Serialize)]
pub struct Meetings {
    /// Meetings that took place, captured as contact points (each once, however many
    /// calendars held it).
    pub captured: i64,
    /// Meetings ahead (not ended at `at_ms`) within the policy's horizon.
    pub upcoming: usize,
    /// The next few upcoming meetings, soonest first.
    pub next: Vec<NextMeeting>,
    /// When these were counted (epoch ms).
    pub at_ms: i64,
}

/// The mailboxes' push modes, as their last sync left them (docs/push.md).
#[derive(Debug, Serialize)]
pub struct Push {
    /// Mailboxes whose provider pushes their changes (they are still polled, slowly).
    pub on_push: usize,
    /// Mailboxes only polled: the provider refused a channel, or none was opened yet.
    pub polling: usize,
    /// Why mailboxes are polled, with how many: a provider's message, or, as the Users
    /// page says, that push starts after the next successful sync (nothing recorded).
    pub polling_reasons: BTreeMap<String, usize>,
}

impl Push {
    async fn collect(
        store: &Store,
        tenant: &TenantId,
        links: &[LinkView],
    ) -> Result<Self, StoreError> {
        let modes = store.link_push_modes(tenant).await?;
        let mut push = Push {
            on_push: 0,
            polling: 0,
            polling_reasons: BTreeMap::new(),
        };
        for link in links {
            let recorded = modes.iter().find(|m| m.link == link.id);
            match recorded {
                Some(mode) if mode.mode == PushMode::Push => push.on_push += 1,
                _ => {
                    push.polling += 1;
                    let reason = recorded.and_then(|m| m.reason.clone()).unwrap_or_else(|| {
                        "push starts after the mailbox's next successful sync".to_owned()
                    });
                    *push.polling_reasons.entry(reason).or_default() += 1;
                }
            }
        }
        Ok(push)
    }

    /// One line of the summary table.
    fn describe(&self) -> String {
        let total = self.on_push + self.polling;
        let mut text = format!("{} of {total} mailboxes on push", self.on_push);
        for (reason, count) in &self.polling_reasons {
            text.push_str(&format!("; {count} polled: {}", printable(reason)));
        }
        text
    }
}

#[derive(Debug, Serialize)]
pub struct NextMeeting {
    /// RFC 3339, UTC.
    pub start: String,
    /// `None` for a private meeting (only its time and participants are kept).
    pub title: Option<String>,
    pub direction: String,
    /// Everyone invited, organizer first.
    pub participants: Vec<String>,
}

impl NextMeeting {
    fn of(view: &MeetingView) -> Self {
        let mut participants: Vec<&tributary_store::MeetingParticipantView> =
            view.participants.iter().collect();
        participants.sort_by_key(|p| !p.organizer);
        NextMeeting {
            start: rfc3339(view.start_ms),
            title: view.title.clone(),
            direction: view.direction.clone(),
            participants: participants.iter().map(|p| p.address.clone()).collect(),
        }
    }
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
            usage,
            check,
            now_ms,
            sync_seconds,
            total_seconds,
            console_url,
            logins,
        } = inputs;
        let upcoming = all_meetings(store, tenant, Some(now_ms)).await?;
        let meetings = Meetings {
            captured: store.count_meetings(tenant).await?,
            upcoming: upcoming.len(),
            next: upcoming
                .iter()
                .take(NEXT_MEETINGS)
                .map(NextMeeting::of)
                .collect(),
            at_ms: now_ms,
        };
        let links = store.links(tenant).await?;
        let mut links_by_status = BTreeMap::new();
        let mut links_by_provider = BTreeMap::new();
        for link in &links {
            *links_by_status
                .entry(link.status.as_str().to_owned())
                .or_default() += 1;
            *links_by_provider
                .entry(link.provider.as_str().to_owned())
                .or_default() += 1;
        }
        let mut relationships = store.relationships(tenant).await?;
        relationships.sort_by(|a, b| b.score_at_last.total_cmp(&a.score_at_last));
        let messages_captured = store
            .activities(tenant)
            .await?
            .iter()
            .map(|a| a.sightings.len() as u64)
            .sum::<u64>();
        Ok(Summary {
            provider: args.provider,
            organization: Organization {
                users: args.users,
                messages_per_user: args.messages_per_user,
                seed: args.seed,
            },
            members_linked: links.len(),
            links_by_status,
            links_by_provider,
            messages_captured,
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
            meetings,
            push: Push::collect(store, tenant, &links).await?,
            quota_units: usage.iter().filter_map(|u| u.quota_units).sum(),
            rate_limited: usage.iter().map(|u| u.rate_limited).sum(),
            providers: usage,
            sync_seconds: round2(sync_seconds),
            messages_per_second: round2(messages_captured as f64 / sync_seconds.max(0.001)),
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
        let providers: Vec<String> = self
            .links_by_provider
            .iter()
            .map(|(provider, n)| format!("{n} at {provider}"))
            .collect();
        let mut rows = vec![
            (
                "members linked",
                format!(
                    "{} ({}; {})",
                    self.members_linked,
                    statuses.join(", "),
                    providers.join(", ")
                ),
            ),
            ("messages captured", self.messages_captured.to_string()),
            ("activities", self.activities.to_string()),
            ("contacts", self.contacts.to_string()),
            ("companies", self.companies.to_string()),
            ("relationships", self.relationships.to_string()),
            ("meetings", self.meetings.captured.to_string()),
            ("upcoming meetings", self.meetings.upcoming.to_string()),
            ("push", self.push.describe()),
        ];
        for usage in &self.providers {
            rows.push(("requests", usage.describe()));
        }
        rows.push((
            "sync time",
            format!(
                "{:.1} s, {:.0} messages/s",
                self.sync_seconds, self.messages_per_second
            ),
        ));
        println!();
        println!("Summary ({})", self.provider.name());
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
        println!("  next meetings");
        for next in &self.meetings.next {
            println!(
                "    {}  {:<40} {}",
                next.start,
                next.title.as_deref().map_or("(private)".into(), printable),
                with_whom(&next.participants)
            );
        }
        let compared = if self.ground_truth.meetings_checked {
            "mail and meetings"
        } else {
            "mail"
        };
        if self.ground_truth.equal {
            println!(
                "  ground truth       EQUAL: the capture ({compared}) matches the emulator's ground truth"
            );
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

/// A provider's text for the terminal: control characters escaped, so that a meeting
/// title cannot move the cursor or recolour the screen.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The first few participants, and how many more.
fn with_whom(participants: &[String]) -> String {
    const SHOWN: usize = 3;
    let shown = participants.iter().take(SHOWN).map(|p| printable(p));
    let mut text = shown.collect::<Vec<_>>().join(", ");
    if participants.len() > SHOWN {
        text.push_str(&format!(" and {} more", participants.len() - SHOWN));
    }
    text
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
