-- Job pools: a claimer takes jobs from one pool only (a server's own workers, or an agent's
-- pool), many at once; a worker renews all its leases with one statement.

ALTER TABLE jobs ADD COLUMN pool TEXT NOT NULL DEFAULT 'default';
DROP INDEX jobs_claimable;
CREATE INDEX jobs_claimable ON jobs (pool, available_at, id) WHERE completed_at IS NULL;
CREATE INDEX jobs_leased ON jobs (worker) WHERE completed_at IS NULL;
CREATE INDEX jobs_run ON jobs (run_id);
