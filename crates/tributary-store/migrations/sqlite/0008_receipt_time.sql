-- An activity without a (parseable) Date header is timed by the earliest internalDate of
-- its copies (capture contract). Copies arrive mailbox by mailbox, so the first one
-- committed need not be the earliest: such an activity records that its time came from
-- a receipt, and a later copy received earlier lowers it. Rows captured before this
-- migration keep their times (0).
ALTER TABLE activities ADD COLUMN time_from_receipt INTEGER NOT NULL DEFAULT 0
    CHECK (time_from_receipt IN (0, 1));

-- A held copy's own receipt time (its internalDate when the message has no Date header),
-- so the activity that captures it later is timed by the earliest of all its copies.
ALTER TABLE held_sightings ADD COLUMN receipt_ms INTEGER;

-- Captured activity stays immutable but for one change: the time of a receipt-timed
-- activity may decrease. Every other UPDATE of a row (any column changed, the time
-- raised, nulled or kept, a header-timed time changed) is refused. A WHEN that
-- evaluates to NULL would not fire the trigger, hence the null-safe IS and COALESCE.
DROP TRIGGER activities_captured_immutable;
CREATE TRIGGER activities_captured_immutable
BEFORE UPDATE ON activities
WHEN NOT COALESCE(
    NEW.id IS OLD.id
    AND NEW.tenant_id IS OLD.tenant_id
    AND NEW.dedupe_key IS OLD.dedupe_key
    AND NEW.thread_key IS OLD.thread_key
    AND NEW.direction IS OLD.direction
    AND NEW.subject IS OLD.subject
    AND NEW.is_reply IS OLD.is_reply
    AND NEW.captured_ms IS OLD.captured_ms
    AND NEW.time_from_receipt IS OLD.time_from_receipt
    AND OLD.time_from_receipt = 1
    AND typeof(NEW.time_ms) = 'integer'
    AND typeof(OLD.time_ms) = 'integer'
    AND NEW.time_ms < OLD.time_ms,
    0)
BEGIN
    SELECT RAISE(ABORT, 'captured activity is immutable: only a receipt time may be lowered');
END;
