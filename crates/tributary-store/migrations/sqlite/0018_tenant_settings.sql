-- The tenant's own settings, kept apart from any connection so that an admin can set
-- them before a key or app registration exists: the capture policy form (moved here
-- from `connections.policy`) and whether Rebuild starts newly matched users.
CREATE TABLE tenant_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id),
    policy TEXT NOT NULL DEFAULT '{}',
    auto_connect INTEGER NOT NULL DEFAULT 1
);

-- Carry each tenant's policy over from the connection the runtime used: Microsoft
-- 365's when there is one, else Google's.
INSERT INTO tenant_settings (tenant_id, policy)
SELECT c.tenant_id, c.policy FROM connections c
WHERE c.kind = 'microsoft'
   OR (c.kind = 'google' AND NOT EXISTS (
       SELECT 1 FROM connections m WHERE m.tenant_id = c.tenant_id AND m.kind = 'microsoft'));

-- The policy now lives on the tenant: a copy on the connection could only disagree.
ALTER TABLE connections DROP COLUMN policy;
