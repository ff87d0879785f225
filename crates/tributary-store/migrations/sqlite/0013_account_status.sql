-- Accounts are what decide access: an account can be disabled (it cannot sign in, and
-- its sessions and API tokens stop working) and its last sign-in is kept for the
-- console's accounts page. A member record (a captured mailbox's owner) has no say.
ALTER TABLE users ADD COLUMN disabled_ms INTEGER;
ALTER TABLE users ADD COLUMN last_signin_ms INTEGER;
-- The last-admin guard counts a tenant's active admins.
CREATE INDEX users_by_tenant_role ON users (tenant_id, role);
