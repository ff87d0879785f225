-- Timelines list the activities of given participant addresses (a contact, a company's
-- contacts, a member's addresses), and the company ranking joins participants to
-- contacts by address: without this index each is a scan of every participant.
CREATE INDEX participants_by_address ON activity_participants (tenant_id, address, activity_id);

-- A company's page lists its contacts by address, and counts them: filter and order
-- from one index instead of walking every contact of the tenant in address order.
CREATE INDEX contacts_by_company_address ON contacts (tenant_id, company_id, address);

-- A member's links (its page, its label listing) without walking every link.
CREATE INDEX links_by_member ON mailbox_links (tenant_id, member_id, mailbox);
