-- 12fa's PostgreSQL store, version 1 (../../shared/research/scale-out.md, 2.1).
CREATE TABLE workers (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid int NOT NULL,
  version text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE runs (
  id text PRIMARY KEY,
  workflow text NOT NULL,
  manifest text NOT NULL DEFAULT '',
  -- queue state: queued | leased | parked | done
  state text NOT NULL,
  -- the run's state.RunStatus and its sum, for listing
  status text NOT NULL,
  steps int NOT NULL DEFAULT 0,
  done int NOT NULL DEFAULT 0,
  cause text NOT NULL DEFAULT '',
  error text NOT NULL DEFAULT '',
  priority int NOT NULL DEFAULT 0,
  available_at timestamptz NOT NULL DEFAULT now(),
  owner text,
  epoch bigint NOT NULL DEFAULT 0,
  claims int NOT NULL DEFAULT 0,
  last_seq bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX runs_ready ON runs (priority, available_at) WHERE state = 'queued';
CREATE INDEX runs_leased ON runs (owner) WHERE state = 'leased';
CREATE INDEX runs_recent ON runs (updated_at DESC, id DESC);
CREATE TABLE records (
  run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  seq bigint NOT NULL,
  epoch bigint NOT NULL,
  type text NOT NULL,
  step text,
  attempt int,
  -- the state.Record as one journal.jsonl line (json keeps the bytes)
  body json NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE blobs (
  sha256 text PRIMARY KEY,
  kind text NOT NULL,
  body bytea NOT NULL
);
