-- Push (issue 16, docs/push.md). Mirrors migrations/sqlite.
--
-- `push_channels`: the watches and subscriptions a provider holds for a link, one per
-- stream ('mail', 'calendar'): Gmail's users.watch (its id is the mailbox), a Graph
-- subscription (its id is Graph's). `secret_hash` is the SHA-256 (hex) of the secret the
-- provider echoes in each notification (Graph's clientState): a notification is checked
-- against it, and the secret itself is never stored.
--
-- `link_push`: whether a link is on push or on polling, and why, for the Users page.

CREATE TABLE push_channels (
    tenant_id TEXT NOT NULL,
    link_id BIGINT NOT NULL,
    stream TEXT NOT NULL CHECK (stream IN ('mail', 'calendar')),
    channel_id TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    secret_hash TEXT,
    renewed_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, link_id, stream),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
CREATE INDEX push_channels_by_channel ON push_channels (tenant_id, channel_id);
CREATE INDEX push_channels_by_expiry ON push_channels (tenant_id, expires_ms);

CREATE TABLE link_push (
    tenant_id TEXT NOT NULL,
    link_id BIGINT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('push', 'polling')),
    reason TEXT,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, link_id),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
