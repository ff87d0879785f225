-- People made visible (issue #17). A member's name as the directory gives it (Google's
-- name.fullName, Graph's displayName), set by User Delegation Sync.
ALTER TABLE members ADD COLUMN display_name TEXT NULL;

-- The display name shown for an address: the most recent non-empty name captured
-- headers gave it ("Ann Lee <ann@acme.example>"), chosen by tributary-core's
-- display_name module. `seen_ms` is the activity time of the message that gave it, so
-- an older message synced later never replaces a newer name (ties: the greater name).
-- Names are metadata of captured activity only; excluded mail leaves none.
CREATE TABLE display_names (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    address TEXT NOT NULL,
    name TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, address)
);
