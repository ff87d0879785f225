-- Fair leasing orders due jobs by how many live leases their tenant holds right now.
CREATE INDEX jobs_leased_by_tenant ON jobs (tenant_id, lease_expires_ms);
-- Fresh mail first: the lease query tells a backfill (a link that never completed a
-- sync) from an incremental sync by the link's last success.
CREATE INDEX mailbox_links_backfilled ON mailbox_links (tenant_id, id, last_success_ms);
-- Live workers, so that they share each tenant's per-project budget: every worker paces
-- at 1/(live workers) of it. A row is renewed while its worker lives; a killed worker's
-- row expires, and its share returns to the others.
-- `renewed_ms`: the last renewal. Renewals come every third of the lease, so a worker
-- two renewals late has stopped: the console says so before its leases expire.
CREATE TABLE worker_heartbeats (
    worker_id TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL,
    renewed_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
