-- A colleague who becomes a member later (a new hire linked by User Delegation Sync, an
-- alias added to a member) was captured before as an `internal` participant without a
-- member. The capture contract assumes everyone was a member from the start, so the
-- member claims those rows: participants stay immutable but for that one change,
-- `member_id` NULL -> the member and `kind` 'internal' -> 'member', on a row whose address
-- is one of that member's addresses, every other column unchanged. Anything else
-- (another member, an external row, a member removed, an address or role changed, also
-- together with a permitted claim) is refused. Mirrors migrations/sqlite.
CREATE FUNCTION tributary_guard_participant_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- IF treats NULL as false: a NULL comparison is never a permitted change.
    IF OLD.kind = 'internal'
       AND NEW.kind = 'member'
       AND OLD.member_id IS NULL
       AND NEW.member_id IS NOT NULL
       AND (NEW.tenant_id, NEW.activity_id, NEW.address, NEW.role, NEW.contact_id)
           IS NOT DISTINCT FROM
           (OLD.tenant_id, OLD.activity_id, OLD.address, OLD.role, OLD.contact_id)
       AND EXISTS (
           SELECT 1 FROM member_addresses a
           WHERE a.tenant_id = NEW.tenant_id AND a.address = NEW.address
             AND a.member_id = NEW.member_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on %: activity participants are immutable: only a member may claim its internal address',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'raise_exception';
END;
$$;

-- 0001 refused UPDATE and DELETE with one trigger: DELETE keeps the plain refusal,
-- UPDATE gets the guard. TRUNCATE stays refused by participants_never_truncated.
DROP TRIGGER participants_immutable ON activity_participants;
CREATE TRIGGER participants_never_deleted
BEFORE DELETE ON activity_participants
FOR EACH ROW EXECUTE FUNCTION tributary_refuse_change();
CREATE TRIGGER participants_immutable
BEFORE UPDATE ON activity_participants
FOR EACH ROW EXECUTE FUNCTION tributary_guard_participant_update();
