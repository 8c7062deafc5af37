-- Triggers: a stable, unguessable id per (workflow, trigger) that webhook URLs carry, and the
-- last fire time a schedule trigger accepted; push tokens, listed by id and revocable.

CREATE TABLE triggers (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    name         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_fire_at INTEGER,
    UNIQUE (workflow, name)
);

CREATE TABLE push_tokens (
    id           TEXT PRIMARY KEY,
    workflow     TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX push_tokens_trigger ON push_tokens (workflow, trigger_name, created_at);
