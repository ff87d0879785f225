-- Labels a member syncs on top of the tenant policy's. `label` is kept as given (a Gmail
-- label id such as `Label_12`, or a system id such as `IMPORTANT`); `label_key` is its
-- lowercase form, so one label cannot be listed twice in different case.
CREATE TABLE member_labels (
    tenant_id TEXT NOT NULL,
    member_id INTEGER NOT NULL,
    label_key TEXT NOT NULL,
    label TEXT NOT NULL,
    added_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, member_id, label_key),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members(tenant_id, id)
);

-- Per (link, label): what the provider listed for the label against what the store
-- accounts for, since the label's last backfill (see docs/sync.md, "Reconciliation").
CREATE TABLE label_reconciliations (
    tenant_id TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    label_key TEXT NOT NULL,
    label TEXT NOT NULL,
    provider_total INTEGER,
    listed INTEGER NOT NULL,
    captured INTEGER NOT NULL,
    policy_excluded INTEGER NOT NULL,
    not_seen INTEGER NOT NULL,
    gone INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, link_id, label_key),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);

-- Reconciliation asks which listed ids a link holds, held copies included.
CREATE INDEX held_sightings_by_link ON held_sightings (tenant_id, link_id, provider_message_id);
