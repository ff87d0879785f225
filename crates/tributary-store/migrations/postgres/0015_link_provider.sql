-- Which connection (provider) a mailbox link belongs to: the engine picks the
-- provider's mail source by it. Every link made so far is a Google Workspace one.
ALTER TABLE mailbox_links ADD COLUMN provider TEXT NOT NULL DEFAULT 'google'
    CHECK (provider IN ('google', 'microsoft', 'imap'));
