-- Copies of a message that on their own look internal (a recipient's copy whose only
-- external participant is a Bcc the sender's copy carries), kept by dedupe key until
-- another mailbox's copy captures the activity; then they become its sightings.
CREATE TABLE held_sightings (
    tenant_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    provider_message_id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, dedupe_key, link_id, provider_message_id),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
