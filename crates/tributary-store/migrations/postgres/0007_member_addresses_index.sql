-- Listing members with their aliases joins addresses by member: without this index
-- the join scans every address per member (seconds for ten thousand members).
CREATE INDEX member_addresses_by_member ON member_addresses (tenant_id, member_id);
