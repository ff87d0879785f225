//! The bridge between the emulator's model and core's records, in one place: the
//! extractor a correctly connected tenant would build for an emulated organization, and
//! the records the sync engine builds from `messages.get?format=metadata`. Tests,
//! benchmarks and the capture cross-check use it; the emulator itself never depends on
//! core (its ground truth must stay independent), and production never depends on this.

use tributary_core::{CapturePolicy, Extractor, FreeMailList, MessageRecord, TenantDirectory};
use tributary_emulator::model::{DirectoryUser, Mailbox, Organization};

/// Whether User Delegation Sync links this user's mailbox (active, with Gmail).
pub fn is_synced(user: &DirectoryUser) -> bool {
    !user.suspended && !user.archived && user.is_mailbox_setup && !user.deleted
}

/// The organization as extraction classifies against it: its domains and every synced
/// user with all aliases, under the default policy and free-mail list.
pub fn extractor_for(organization: &Organization) -> Extractor {
    let mut tenant = TenantDirectory::new();
    for domain in &organization.domains {
        tenant
            .add_domain(domain)
            .expect("generated domains are valid");
    }
    for user in organization.users.iter().filter(|u| is_synced(u)) {
        let aliases = user
            .aliases
            .iter()
            .chain(&user.non_editable_aliases)
            .map(String::as_str);
        tenant
            .add_member(&user.primary_email, aliases)
            .expect("generated members are valid");
    }
    Extractor::new(tenant, FreeMailList::default(), CapturePolicy::default())
}

/// Every message of `mailbox` as the sync engine builds it from Gmail's metadata: the
/// header fields plus Gmail's ids, labels and receipt time.
pub fn records(mailbox: &Mailbox) -> Vec<MessageRecord> {
    mailbox
        .messages
        .values()
        .map(|message| {
            let mut record = MessageRecord::from_header_pairs(
                message
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str())),
            );
            record.mailbox = Some(mailbox.email.clone());
            record.provider_message_id = Some(message.id.clone());
            record.provider_thread_id = Some(message.thread_id.clone());
            record.labels = message.label_ids.iter().cloned().collect();
            record.internal_date_ms = Some(message.internal_date_ms);
            record
        })
        .collect()
}
