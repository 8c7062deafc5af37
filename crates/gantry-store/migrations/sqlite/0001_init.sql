-- Gantry store schema, SQLite flavour.
-- Times are INTEGER microseconds since the Unix epoch (UTC) on both backends:
-- they compare exactly in SQL (leases, cursors), which variable-width text timestamps do not.
-- JSON is stored as TEXT so canonical JSON comes back byte for byte (key order included).

CREATE TABLE workflows (
    name            TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);

CREATE TABLE workflow_versions (
    name       TEXT NOT NULL REFERENCES workflows (name),
    version    INTEGER NOT NULL,
    yaml       TEXT NOT NULL,
    canonical  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    workflow        TEXT NOT NULL,
    trigger_name    TEXT NOT NULL,
    dedup_key       TEXT,
    idempotency_key TEXT,
    data            TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    run_id          TEXT
);
-- NULL keys are distinct, so only events that carry a key are de-duplicated.
CREATE UNIQUE INDEX events_idempotency ON events (workflow, idempotency_key);
CREATE UNIQUE INDEX events_dedup ON events (workflow, trigger_name, dedup_key);
CREATE INDEX events_without_run ON events (received_at) WHERE run_id IS NULL;

CREATE TABLE runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    workflow_version INTEGER NOT NULL,
    parameters       TEXT NOT NULL,
    event_id         TEXT UNIQUE REFERENCES events (id),
    status           TEXT NOT NULL,
    reason           TEXT,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    ended_at         INTEGER
);
CREATE INDEX runs_newest ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow ON runs (workflow, created_at DESC, id DESC);
CREATE INDEX runs_status ON runs (status, created_at DESC, id DESC);

CREATE TABLE run_steps (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step       TEXT NOT NULL,
    state      TEXT NOT NULL,
    reason     TEXT,
    started_at INTEGER,
    ended_at   INTEGER,
    exit_code  INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE run_outputs (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step      TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    sensitive BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, step, name)
);

CREATE TABLE log_chunks (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    at     INTEGER NOT NULL
);
-- A producer that resends a chunk (at-least-once agents) does not duplicate it.
CREATE UNIQUE INDEX log_chunks_step_seq ON log_chunks (run_id, step, stream, seq);
CREATE INDEX log_chunks_run ON log_chunks (run_id, id);

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    available_at INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    worker       TEXT,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    completed_at INTEGER,
    result       TEXT
);
CREATE INDEX jobs_claimable ON jobs (available_at, id) WHERE completed_at IS NULL;

CREATE TABLE sealed_values (
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (kind, scope, name)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    prefix       TEXT NOT NULL UNIQUE,
    hash         BLOB NOT NULL,
    principal    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
