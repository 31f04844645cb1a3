-- 0004: checkpoint records (runtime.Checkpoint as JSON), so that
-- `12fa checkpoints --store` lists every machine's. A record names the
-- host whose git repository holds its commit. Manual checkpoints have no
-- run ('').
CREATE TABLE checkpoints (
  id text PRIMARY KEY,
  run_id text NOT NULL,
  body json NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoints_run ON checkpoints (run_id);
