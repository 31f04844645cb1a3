-- 0003: an append's write is the fence's UPDATE of its run's row and the
-- INSERT of its records; make both cheaper, as every durable step pays
-- for them (RATIONALE.md, "Why are a run's appends HOT updates?").
--
-- The fence already refuses records of a run whose row is missing (the
-- INSERT selects from the UPDATE's row), so the foreign key's check, one
-- lookup of the run per inserted record, buys nothing; Prune deletes a
-- run's records itself.
ALTER TABLE records DROP CONSTRAINT records_run_id_fkey;

-- No index covers a column an append changes, so that its UPDATE is a
-- heap-only tuple (HOT): no index entries, less WAL. Listing orders by
-- updated_at: an unfinished run is found through runs_unfinished (they are
-- few), a finished one through finished_at (its updated_at, set once when
-- it finishes).
ALTER TABLE runs ADD COLUMN finished_at timestamptz;
UPDATE runs SET finished_at = updated_at
  WHERE status IN ('completed', 'failed', 'rolled_back', 'rollback_failed');
DROP INDEX runs_recent;
CREATE INDEX runs_finished ON runs (finished_at DESC, id DESC) WHERE finished_at IS NOT NULL;
CREATE INDEX runs_unfinished ON runs (id) WHERE finished_at IS NULL;
-- Room in each page for a row's next versions.
ALTER TABLE runs SET (fillfactor = 70);
