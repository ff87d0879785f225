-- Why a mailbox link is at its provider when another connected provider also lists a
-- mailbox for the member (a migration under way): kept apart from `status_reason`,
-- which describes the last failure and is cleared by a success.
ALTER TABLE mailbox_links ADD COLUMN provider_reason TEXT NULL;
