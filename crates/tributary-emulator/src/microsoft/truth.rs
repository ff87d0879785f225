//! The ground truth as the Microsoft tenant presents it: the same content as the Google
//! one (same activities, contacts, companies, relationships and counts), with the synced
//! folders' well-known names in place of the synced labels: `INBOX` → `inbox`,
//! `SENT` → `sentitems` (in `policy.labels` and as the keys of `mailbox_counts`). The
//! mailbox model puts exactly the `INBOX` copies in Inbox and the `SENT` copies in Sent
//! Items, so the counts carry over (a test checks it against the served mailboxes).

use crate::truth::GroundTruth;

/// (label, folder) pairs of the default policy.
pub const SYNCED_FOLDERS: [(&str, &str); 2] = [("INBOX", "inbox"), ("SENT", "sentitems")];

pub fn folder_name(label: &str) -> String {
    SYNCED_FOLDERS
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, f)| (*f).to_string())
        .unwrap_or_else(|| label.to_string())
}

/// The Google truth with folders in place of labels.
pub fn folder_truth(google: &GroundTruth) -> GroundTruth {
    let mut truth = google.clone();
    truth.policy.labels = truth.policy.labels.iter().map(|l| folder_name(l)).collect();
    for counts in truth.mailbox_counts.values_mut() {
        *counts = std::mem::take(counts)
            .into_iter()
            .map(|(label, count)| (folder_name(&label), count))
            .collect();
    }
    truth
}
