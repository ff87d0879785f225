-- Tributary store, SQLite. Every table carries tenant_id; every query filters on it.
-- Integers are 64-bit; JSON is TEXT; times are Unix milliseconds.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE connections (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL CHECK (kind IN ('google', 'microsoft', 'imap')),
    admin_email TEXT NOT NULL,
    credentials_ciphertext BLOB,
    credentials_nonce BLOB,
    features TEXT NOT NULL DEFAULT '[]',
    policy TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, kind)
);

CREATE TABLE members (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    active INTEGER NOT NULL DEFAULT 1,
    UNIQUE (tenant_id, email),
    UNIQUE (tenant_id, id)
);

-- Every address a member owns (primary and aliases), so matching is one lookup.
CREATE TABLE member_addresses (
    tenant_id TEXT NOT NULL,
    address TEXT NOT NULL,
    member_id INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, address),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members(tenant_id, id)
);

CREATE TABLE mailbox_links (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    member_id INTEGER NOT NULL,
    mailbox TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unlinked' CHECK (status IN
        ('pending', 'syncing', 'idle', 'authentication_error', 'unauthorized', 'linkage_error', 'unlinked')),
    provider_message TEXT,
    last_success_ms INTEGER,
    last_summary TEXT,
    next_attempt_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, mailbox),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members(tenant_id, id)
);

CREATE TABLE cursors (
    tenant_id TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, link_id, stream),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    dedupe_key TEXT NOT NULL,
    thread_key TEXT,
    time_ms INTEGER,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    subject TEXT,
    is_reply INTEGER NOT NULL,
    captured_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, dedupe_key),
    UNIQUE (tenant_id, id)
);
CREATE INDEX activities_by_thread ON activities (tenant_id, thread_key);
CREATE INDEX activities_by_time ON activities (tenant_id, time_ms);

CREATE TABLE companies (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    domain TEXT NOT NULL,
    UNIQUE (tenant_id, domain),
    UNIQUE (tenant_id, id)
);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    address TEXT NOT NULL,
    company_id INTEGER,
    UNIQUE (tenant_id, address),
    UNIQUE (tenant_id, id),
    FOREIGN KEY (tenant_id, company_id) REFERENCES companies(tenant_id, id)
);
CREATE INDEX contacts_by_company ON contacts (tenant_id, company_id);

CREATE TABLE activity_participants (
    tenant_id TEXT NOT NULL,
    activity_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('from', 'to', 'cc', 'bcc')),
    kind TEXT NOT NULL CHECK (kind IN ('member', 'internal', 'external')),
    member_id INTEGER,
    contact_id INTEGER,
    PRIMARY KEY (tenant_id, activity_id, address, role),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities(tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members(tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id)
);
CREATE INDEX participants_by_member ON activity_participants (tenant_id, member_id);
CREATE INDEX participants_by_contact ON activity_participants (tenant_id, contact_id);

CREATE TABLE activity_sightings (
    tenant_id TEXT NOT NULL,
    activity_id INTEGER NOT NULL,
    link_id INTEGER NOT NULL,
    provider_message_id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '[]',
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, activity_id, link_id, provider_message_id),
    FOREIGN KEY (tenant_id, activity_id) REFERENCES activities(tenant_id, id),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
CREATE INDEX sightings_by_link ON activity_sightings (tenant_id, link_id, provider_message_id);

CREATE TABLE relationships (
    tenant_id TEXT NOT NULL,
    member_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    received INTEGER NOT NULL,
    total INTEGER NOT NULL,
    score_at_last DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, member_id, contact_id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members(tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id)
);
CREATE INDEX relationships_by_contact ON relationships (tenant_id, contact_id);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    link_id INTEGER,
    run_at_ms INTEGER NOT NULL,
    leased_by TEXT,
    lease_expires_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
CREATE INDEX jobs_due ON jobs (run_at_ms, lease_expires_ms);
-- One pending (unleased) job of a kind per link: enqueueing again only brings it
-- forward; a request arriving while a job runs waits as the next pending one.
CREATE UNIQUE INDEX jobs_one_pending_per_link ON jobs (tenant_id, kind, link_id)
    WHERE leased_by IS NULL;
CREATE INDEX jobs_by_link ON jobs (tenant_id, link_id);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    at_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_time ON audit_events (tenant_id, at_ms);

-- Captured activity is immutable: the database refuses what no code path should do.
CREATE TRIGGER activities_captured_immutable
BEFORE UPDATE OF tenant_id, dedupe_key, thread_key, time_ms, direction, subject, is_reply, captured_ms
ON activities
BEGIN
    SELECT RAISE(ABORT, 'captured activity is immutable');
END;

CREATE TRIGGER activities_never_deleted
BEFORE DELETE ON activities
BEGIN
    SELECT RAISE(ABORT, 'captured activity is immutable: it is never deleted');
END;

CREATE TRIGGER participants_immutable
BEFORE UPDATE ON activity_participants
BEGIN
    SELECT RAISE(ABORT, 'activity participants are immutable');
END;

CREATE TRIGGER participants_never_deleted
BEFORE DELETE ON activity_participants
BEGIN
    SELECT RAISE(ABORT, 'activity participants are immutable: they are never deleted');
END;
