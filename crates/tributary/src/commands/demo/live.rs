//! New mail while the demo serves: every few seconds an external contact writes to a
//! synced member, delivered into the emulated organization as Gmail would (INBOX copy,
//! history record), so the console shows it captured within a poll interval.

use rand::seq::SliceRandom;
use tokio::sync::watch;
use tributary_emulator::org::{LiveMessage, NamedAddress, deliver_live};
use tributary_emulator::server::RunningEmulator;
use tributary_emulator::truth::GroundTruth;

/// Stops delivering when dropped or when `stop` turns true.
pub struct Delivery(Option<tokio::task::JoinHandle<()>>);

impl Drop for Delivery {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

pub fn spawn_delivery(
    emulator: &RunningEmulator,
    truth: &GroundTruth,
    every_seconds: u64,
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
    let state = emulator.state.clone();
    let mut stop = stop.clone();
    let task = tokio::spawn(async move {
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
                message_id: Some(format!("live-demo-{number}-{now}@tributary.demo")),
                in_reply_to: None,
                references: Vec::new(),
                body: "Sent by tributary demo to show capture as it happens.".to_owned(),
            };
            deliver_live(&mut state.org_mut(), &message, now);
            eprintln!("    delivered #{number}: {from} -> {to}");
        }
    });
    Delivery(Some(task))
}
