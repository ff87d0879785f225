-- The immutability triggers fire whatever the session's replication role. Ordinary
-- triggers are skipped in a session with `session_replication_role = replica` (meant for
-- applying logical replication), which a superuser, or a role granted the setting, can
-- choose: until now that turned off every guard of captured activity (UPDATE, DELETE,
-- TRUNCATE of activities and activity_participants). ENABLE ALWAYS makes them fire in
-- every role.
--
-- Nothing else is needed here: PostgreSQL has no REPLACE, and an upsert (INSERT ... ON
-- CONFLICT DO UPDATE, MERGE ... UPDATE) fires the UPDATE triggers, MERGE ... DELETE the
-- DELETE triggers, and a TRUNCATE that cascades to these tables their TRUNCATE triggers.
ALTER TABLE activities ENABLE ALWAYS TRIGGER activities_captured_immutable;
ALTER TABLE activities ENABLE ALWAYS TRIGGER activities_never_deleted;
ALTER TABLE activities ENABLE ALWAYS TRIGGER activities_never_truncated;
ALTER TABLE activity_participants ENABLE ALWAYS TRIGGER participants_immutable;
ALTER TABLE activity_participants ENABLE ALWAYS TRIGGER participants_never_deleted;
ALTER TABLE activity_participants ENABLE ALWAYS TRIGGER participants_never_truncated;
