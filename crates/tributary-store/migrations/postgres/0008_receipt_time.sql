-- An activity without a (parseable) Date header is timed by the earliest internalDate of
-- its copies (capture contract). Copies arrive mailbox by mailbox, so the first one
-- committed need not be the earliest: such an activity records that its time came from
-- a receipt, and a later copy received earlier lowers it. Rows captured before this
-- migration keep their times (0). Mirrors migrations/sqlite.
ALTER TABLE activities ADD COLUMN time_from_receipt BIGINT NOT NULL DEFAULT 0
    CHECK (time_from_receipt IN (0, 1));

-- A held copy's own receipt time (its internalDate when the message has no Date header),
-- so the activity that captures it later is timed by the earliest of all its copies.
ALTER TABLE held_sightings ADD COLUMN receipt_ms BIGINT;

-- Captured activity stays immutable but for one change: the time of a receipt-timed
-- activity may decrease. Every other UPDATE of a row (any column changed, the time
-- raised, nulled or kept, a header-timed time changed) is refused. DELETE and TRUNCATE
-- stay refused by the triggers of 0001.
CREATE FUNCTION tributary_guard_activity_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- IF treats NULL as false: a NULL time is never a permitted change.
    IF OLD.time_from_receipt = 1
       AND NEW.time_ms < OLD.time_ms
       AND (NEW.id, NEW.tenant_id, NEW.dedupe_key, NEW.thread_key, NEW.direction,
            NEW.subject, NEW.is_reply, NEW.captured_ms, NEW.time_from_receipt)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.tenant_id, OLD.dedupe_key, OLD.thread_key, OLD.direction,
            OLD.subject, OLD.is_reply, OLD.captured_ms, OLD.time_from_receipt) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% on %: captured activity is immutable: only a receipt time may be lowered',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'raise_exception';
END;
$$;

DROP TRIGGER activities_captured_immutable ON activities;
CREATE TRIGGER activities_captured_immutable
BEFORE UPDATE ON activities
FOR EACH ROW EXECUTE FUNCTION tributary_guard_activity_update();
