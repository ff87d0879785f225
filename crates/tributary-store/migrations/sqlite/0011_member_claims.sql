-- A colleague who becomes a member later (a new hire linked by User Delegation Sync, an
-- alias added to a member) was captured before as an `internal` participant without a
-- member. The capture contract assumes everyone was a member from the start, so the
-- member claims those rows: participants stay immutable but for that one change,
-- `member_id` NULL -> the member and `kind` 'internal' -> 'member', on a row whose address
-- is one of that member's addresses, every other column unchanged. Anything else
-- (another member, an external row, a member removed, an address or role changed, also
-- together with a permitted claim) is refused. A WHEN that evaluates to NULL would not
-- fire the trigger, hence the null-safe IS and COALESCE. DELETE stays refused by 0001.
DROP TRIGGER participants_immutable;
CREATE TRIGGER participants_immutable
BEFORE UPDATE ON activity_participants
WHEN NOT COALESCE(
    NEW.tenant_id IS OLD.tenant_id
    AND NEW.activity_id IS OLD.activity_id
    AND NEW.address IS OLD.address
    AND NEW.role IS OLD.role
    AND NEW.contact_id IS OLD.contact_id
    AND OLD.kind = 'internal'
    AND NEW.kind = 'member'
    AND OLD.member_id IS NULL
    AND NEW.member_id IS NOT NULL
    AND EXISTS (
        SELECT 1 FROM member_addresses a
        WHERE a.tenant_id = NEW.tenant_id AND a.address = NEW.address
          AND a.member_id = NEW.member_id),
    0)
BEGIN
    SELECT RAISE(ABORT, 'activity participants are immutable: only a member may claim its internal address');
END;
