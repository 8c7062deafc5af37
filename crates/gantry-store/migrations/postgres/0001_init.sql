-- Gantry store schema, PostgreSQL flavour (same tables and columns as migrations/sqlite).
-- Times are BIGINT microseconds since the Unix epoch (UTC) on both backends:
-- they compare exactly in SQL (leases, cursors), which variable-width text timestamps do not.
-- Text columns use the "C" collation: byte order, as SQLite sorts, whatever the database default.
-- JSON is stored as TEXT, not JSONB, so canonical JSON comes back byte for byte
-- (JSONB reorders keys).

CREATE TABLE workflows (
    name            TEXT COLLATE "C" PRIMARY KEY,
    current_version BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);

CREATE TABLE workflow_versions (
    name       TEXT COLLATE "C" NOT NULL REFERENCES workflows (name),
    version    BIGINT NOT NULL,
    yaml       TEXT COLLATE "C" NOT NULL,
    canonical  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE events (
    id              TEXT COLLATE "C" PRIMARY KEY,
    workflow        TEXT COLLATE "C" NOT NULL,
    trigger_name    TEXT COLLATE "C" NOT NULL,
    dedup_key       TEXT COLLATE "C",
    idempotency_key TEXT COLLATE "C",
    data            TEXT COLLATE "C" NOT NULL,
    received_at     BIGINT NOT NULL,
    run_id          TEXT COLLATE "C"
);
-- NULL keys are distinct, so only events that carry a key are de-duplicated.
CREATE UNIQUE INDEX events_idempotency ON events (workflow, idempotency_key);
CREATE UNIQUE INDEX events_dedup ON events (workflow, trigger_name, dedup_key);
CREATE INDEX events_without_run ON events (received_at) WHERE run_id IS NULL;

CREATE TABLE runs (
    id               TEXT COLLATE "C" PRIMARY KEY,
    workflow         TEXT COLLATE "C" NOT NULL,
    workflow_version BIGINT NOT NULL,
    parameters       TEXT COLLATE "C" NOT NULL,
    event_id         TEXT COLLATE "C" UNIQUE REFERENCES events (id),
    status           TEXT COLLATE "C" NOT NULL,
    reason           TEXT COLLATE "C",
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    ended_at         BIGINT
);
CREATE INDEX runs_newest ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow ON runs (workflow, created_at DESC, id DESC);
CREATE INDEX runs_status ON runs (status, created_at DESC, id DESC);

CREATE TABLE run_steps (
    run_id     TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step       TEXT COLLATE "C" NOT NULL,
    state      TEXT COLLATE "C" NOT NULL,
    reason     TEXT COLLATE "C",
    started_at BIGINT,
    ended_at   BIGINT,
    exit_code  BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, step)
);

CREATE TABLE run_outputs (
    run_id    TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step      TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    value     TEXT COLLATE "C" NOT NULL,
    sensitive BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, step, name)
);

CREATE TABLE log_chunks (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   TEXT COLLATE "C" NOT NULL,
    stream TEXT COLLATE "C" NOT NULL,
    seq    BIGINT NOT NULL,
    bytes  BYTEA NOT NULL,
    at     BIGINT NOT NULL
);
-- A producer that resends a chunk (at-least-once agents) does not duplicate it.
CREATE UNIQUE INDEX log_chunks_step_seq ON log_chunks (run_id, step, stream, seq);
CREATE INDEX log_chunks_run ON log_chunks (run_id, id);

CREATE TABLE jobs (
    id           TEXT COLLATE "C" PRIMARY KEY,
    run_id       TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step         TEXT COLLATE "C" NOT NULL,
    payload      TEXT COLLATE "C" NOT NULL,
    available_at BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    worker       TEXT COLLATE "C",
    lease_until  BIGINT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    completed_at BIGINT,
    result       TEXT COLLATE "C"
);
CREATE INDEX jobs_claimable ON jobs (available_at, id) WHERE completed_at IS NULL;

CREATE TABLE sealed_values (
    kind       TEXT COLLATE "C" NOT NULL,
    scope      TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    key_id     TEXT COLLATE "C" NOT NULL,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, scope, name)
);

CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    prefix       TEXT COLLATE "C" NOT NULL UNIQUE,
    hash         BYTEA NOT NULL,
    principal    TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
