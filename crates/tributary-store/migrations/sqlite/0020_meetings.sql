-- Meetings captured from calendars (issue 15, docs/store.md "Meetings"). Mirrors
-- migrations/postgres.
--
-- A meeting that has ended is a contact point: `meetings`, its `meeting_participants`
-- and the calendars that saw it (`meeting_sightings`) are written once and never updated
-- or deleted, like captured mail (0001, 0012); a later calendar only adds its sighting
-- and the participants it lists that were missing. A meeting still ahead may move or be
-- cancelled, so it lives in `upcoming_meetings` (one row per calendar that lists it) and
-- `upcoming_participants`, replaced on every sync and removed when it is cancelled or
-- captured. `calendar_links` keeps each link's calendar cursor and status apart from its
-- mail status.

CREATE TABLE meetings (
    id INTEGER PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    meeting_key TEXT NOT NULL,
    ical_uid TEXT NOT NULL,
    original_start_ms INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    all_day INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    title TEXT,
    private INTEGER NOT NULL,
    large INTEGER NOT NULL,
    captured_ms INTEGER NOT NULL,
    UNIQUE (tenant_id, meeting_key),
    UNIQUE (tenant_id, id)
);
CREATE INDEX meetings_by_start ON meetings (tenant_id, start_ms);

CREATE TABLE meeting_participants (
    tenant_id TEXT NOT NULL,
    meeting_id INTEGER NOT NULL,
    address TEXT NOT NULL,
    name TEXT,
    organizer INTEGER NOT NULL,
    response TEXT NOT NULL CHECK (response IN ('accepted', 'tentative', 'declined', 'needs_action')),
    kind TEXT NOT NULL CHECK (kind IN ('member', 'internal', 'external')),
    member_id INTEGER,
    contact_id INTEGER,
    took_part INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, meeting_id, address),
    FOREIGN KEY (tenant_id, meeting_id) REFERENCES meetings(tenant_id, id),
    FOREIGN KEY (tenant_id, member_id) REFERENCES members(tenant_id, id),
    FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts(tenant_id, id)
);
CREATE INDEX meeting_participants_by_member ON meeting_participants (tenant_id, member_id);
CREATE INDEX meeting_participants_by_contact ON meeting_participants (tenant_id, contact_id);

CREATE TABLE meeting_sightings (
    tenant_id TEXT NOT NULL,
    meeting_id INTEGER NOT NULL,
    link_id INTEGER NOT NULL,
    provider_event_id TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, meeting_id, link_id),
    FOREIGN KEY (tenant_id, meeting_id) REFERENCES meetings(tenant_id, id),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
CREATE INDEX meeting_sightings_by_link ON meeting_sightings (tenant_id, link_id);

CREATE TABLE upcoming_meetings (
    tenant_id TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    meeting_key TEXT NOT NULL,
    ical_uid TEXT NOT NULL,
    original_start_ms INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    all_day INTEGER NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    title TEXT,
    private INTEGER NOT NULL,
    large INTEGER NOT NULL,
    provider_event_id TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, link_id, meeting_key),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);
CREATE INDEX upcoming_meetings_by_end ON upcoming_meetings (tenant_id, end_ms);
CREATE INDEX upcoming_meetings_by_event ON upcoming_meetings (tenant_id, link_id, provider_event_id);

-- Addresses, not contact rows: a person only invited so far is no contact yet.
CREATE TABLE upcoming_participants (
    tenant_id TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    meeting_key TEXT NOT NULL,
    address TEXT NOT NULL,
    name TEXT,
    organizer INTEGER NOT NULL,
    response TEXT NOT NULL CHECK (response IN ('accepted', 'tentative', 'declined', 'needs_action')),
    kind TEXT NOT NULL CHECK (kind IN ('member', 'internal', 'external')),
    member_email TEXT,
    company TEXT,
    took_part INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, link_id, meeting_key, address),
    FOREIGN KEY (tenant_id, link_id, meeting_key)
        REFERENCES upcoming_meetings(tenant_id, link_id, meeting_key) ON DELETE CASCADE
);
CREATE INDEX upcoming_participants_by_address ON upcoming_participants (tenant_id, address);
CREATE INDEX upcoming_participants_by_company ON upcoming_participants (tenant_id, company);

CREATE TABLE calendar_links (
    tenant_id TEXT NOT NULL,
    link_id INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'syncing', 'idle', 'authentication_error', 'unauthorized', 'linkage_error', 'unlinked')),
    provider_message TEXT,
    status_reason TEXT,
    cursor TEXT,
    cursor_updated_ms INTEGER,
    last_success_ms INTEGER,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, link_id),
    FOREIGN KEY (tenant_id, link_id) REFERENCES mailbox_links(tenant_id, id)
);

CREATE TRIGGER meetings_captured_immutable
BEFORE UPDATE ON meetings
BEGIN
    SELECT RAISE(ABORT, 'captured meeting is immutable');
END;

CREATE TRIGGER meetings_never_deleted
BEFORE DELETE ON meetings
BEGIN
    SELECT RAISE(ABORT, 'captured meeting is immutable: it is never deleted');
END;

CREATE TRIGGER meeting_participants_immutable
BEFORE UPDATE ON meeting_participants
BEGIN
    SELECT RAISE(ABORT, 'meeting participants are immutable');
END;

CREATE TRIGGER meeting_participants_never_deleted
BEFORE DELETE ON meeting_participants
BEGIN
    SELECT RAISE(ABORT, 'meeting participants are immutable: they are never deleted');
END;

CREATE TRIGGER meeting_sightings_immutable
BEFORE UPDATE ON meeting_sightings
BEGIN
    SELECT RAISE(ABORT, 'meeting sightings are immutable');
END;

CREATE TRIGGER meeting_sightings_never_deleted
BEFORE DELETE ON meeting_sightings
BEGIN
    SELECT RAISE(ABORT, 'meeting sightings are immutable: they are never deleted');
END;
