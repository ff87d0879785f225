-- Connection settings the runtime reads: whether capture is on, and the organization's
-- domains as the last User Delegation Sync saw them.
ALTER TABLE connections ADD COLUMN capture_enabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN domains TEXT NOT NULL DEFAULT '[]';

-- Bumped by every change that alters how a tenant's mail is extracted (members,
-- policy, credentials), so long-running workers know to rebuild their engine.
ALTER TABLE tenants ADD COLUMN config_version BIGINT NOT NULL DEFAULT 0;

-- The last User Delegation Sync's result (matched, unmatched and why), as shown.
CREATE TABLE delegation_results (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    at_ms BIGINT NOT NULL,
    result TEXT NOT NULL
);
