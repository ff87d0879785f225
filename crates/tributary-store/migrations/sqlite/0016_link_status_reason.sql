-- The provider's cause code for a link's last failure (Google's `error` or
-- `errors[].reason`, Microsoft's `AADSTS…` or Graph `error.code`, or the engine's own
-- `missing_label` / `incomplete_run`), kept next to `provider_message` so the console
-- and the API can show the hint for that cause rather than for the status.
ALTER TABLE mailbox_links ADD COLUMN status_reason TEXT NULL;
