-- 12fa's PostgreSQL store, version 2: workers that take queued runs
-- (../../shared/research/scale-out.md, 2.2-2.4).
--
-- Each worker says how long its leases last past its last heartbeat; the
-- reaper compares that with the database's clock only.
ALTER TABLE workers ADD COLUMN lease_ms int NOT NULL DEFAULT 15000;
ALTER TABLE workers ADD COLUMN concurrency int NOT NULL DEFAULT 0;
-- The content address of what a worker needs to run a submitted run (its
-- manifest and plugins, in blobs); '' for a run started in the foreground.
ALTER TABLE runs ADD COLUMN bundle text NOT NULL DEFAULT '';
-- Takeovers, counted for `12fa status` and the tests.
ALTER TABLE runs ADD COLUMN takeovers int NOT NULL DEFAULT 0;
-- A run that becomes queued wakes a listening worker. Only on enqueue and
-- wake, never per step: NOTIFY takes a global lock at commit.
CREATE FUNCTION twelvefa_runs_notify() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_notify('twelvefa_runs', NEW.id); RETURN NEW; END $$;
CREATE TRIGGER runs_queued AFTER INSERT OR UPDATE OF state ON runs
  FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION twelvefa_runs_notify();
-- Questions a run waits for, answered from any machine.
CREATE TABLE questions (
  id text PRIMARY KEY,
  run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step text NOT NULL,
  status text NOT NULL,
  -- the inputs.Question as JSON
  body json NOT NULL,
  asked_at timestamptz NOT NULL,
  expires_at timestamptz
);
CREATE INDEX questions_run ON questions (run_id);
CREATE INDEX questions_pending ON questions (asked_at) WHERE status = 'pending';
-- The progress log of the runs (every action, the steps' log lines), as
-- each worker writes it to its .12fa/progress.jsonl, for `12fa logs` on
-- any machine.
CREATE TABLE progress (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL,
  -- the progress.Entry as JSON
  body json NOT NULL
);
CREATE INDEX progress_run ON progress (run_id, id);
