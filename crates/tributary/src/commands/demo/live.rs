//! New mail while the demo serves: every few seconds an external contact writes to a
//! synced member, delivered into the emulated organization as its provider would (Gmail:
//! INBOX copy and history record; Exchange: Inbox item and delta change), so the console
//! shows it captured: within a second or two when the mailbox is on push, else at its
//! next poll. Each delivery is followed until its activity is in the store, and the time
//! it took printed.

use super::emulators::LiveMail;
use rand::seq::SliceRandom;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tributary_emulator::org::{LiveMessage, NamedAddress};
use tributary_emulator::truth::GroundTruth;
use tributary_store::{ActivityFilter, Store, StoreError, TenantId};

/// How often a delivered message is looked for in the store, and for how long.
const CAPTURE_CHECK: Duration = Duration::from_millis(250);
const CAPTURE_PATIENCE: Duration = Duration::from_secs(900);

/// Stops delivering when dropped or when `stop` turns true.
pub struct Delivery(Option<tokio::task::JoinHandle<()>>);

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Where delivered messages are looked for.
pub struct CaptureWatch {
    pub store: Store,
    pub tenant: TenantId,
}

pub fn spawn_delivery(
    mail: LiveMail,
    truth: &GroundTruth,
    every_seconds: u64,
    watch: CaptureWatch,
    stop: &watch::Receiver<bool>,
) -> Delivery {
    let senders: Vec<String> = truth
        .contacts
        .iter()
        .filter(|c| c.company.is_some())
        .map(|c| c.address.clone())
        .collect();
    let members: Vec<String> = truth.members.iter().map(|m| m.primary.clone()).collect();
    if every_seconds == 0 || senders.is_empty() || members.is_empty() {
        return Delivery(None);
    }
    let mut stop = stop.clone();
    let task = tokio::spawn(async move {
        // Dropped with this task, so aborting the delivery stops the watchers too.
        let mut watchers = JoinSet::new();
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(every_seconds));
        interval.tick().await;
        for number in 1.. {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = interval.tick() => {}
            }
            let (from, to) = {
                let mut rng = rand::thread_rng();
                (
                    senders.choose(&mut rng).cloned().unwrap_or_default(),
                    members.choose(&mut rng).cloned().unwrap_or_default(),
                )
            };
            let now = tributary_emulator::server::app::now_ms();
            let message_id = format!("live-demo-{number}-{now}@tributary.demo");
            let message = LiveMessage {
                from: NamedAddress {
                    name: None,
                    address: from.clone(),
                },
                to: vec![NamedAddress {
                    name: None,
                    address: to.clone(),
                }],
                cc: Vec::new(),
                bcc: Vec::new(),
                subject: Some(format!("Live demo message #{number}")),
                date_ms: now,
                message_id: Some(message_id.clone()),
                in_reply_to: None,
                references: Vec::new(),
                body: "Sent by tributary demo to show capture as it happens.".to_owned(),
            };
            mail.deliver(&message, now);
            eprintln!("    delivered #{number}: {from} -> {to}");
            watchers.spawn(report_capture(
                watch.store.clone(),
                watch.tenant.clone(),
                number,
                from,
                message_id,
                now,
            ));
            while watchers.try_join_next().is_some() {}
        }
    });
    Delivery(Some(task))
}

/// Prints when the activity of delivered message `number` is in the store.
async fn report_capture(
    store: Store,
    tenant: TenantId,
    number: u64,
    from: String,
    message_id: String,
    delivered_ms: i64,
) {
    let started = Instant::now();
    while started.elapsed() < CAPTURE_PATIENCE {
        tokio::time::sleep(CAPTURE_CHECK).await;
        let captured = is_captured(&store, &tenant, &from, &message_id, delivered_ms).await;
        if captured.unwrap_or(false) {
            eprintln!(
                "    captured  #{number} after {:.1} s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
    }
    eprintln!(
        "    #{number} not captured after {} s: see the Users page for its mailbox's status",
        CAPTURE_PATIENCE.as_secs()
    );
}

/// Whether the message `message_id` (its RFC 5322 Message-ID) that `from` sent, dated
/// `date_ms`, is readable as an activity: the query the REST API's activity list runs.
pub async fn is_captured(
    store: &Store,
    tenant: &TenantId,
    from: &str,
    message_id: &str,
    date_ms: i64,
) -> Result<bool, StoreError> {
    let filter = ActivityFilter {
        contact: Some(from.to_owned()),
        since_ms: Some(date_ms - 1_000),
        ..ActivityFilter::default()
    };
    let page = store.activities_page(tenant, &filter, None, 50).await?;
    Ok(page
        .activities
        .iter()
        .any(|a| a.dedupe_key.contains(message_id)))
}
