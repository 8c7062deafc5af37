-- Triggers: a stable, unguessable id per (workflow, trigger) that webhook URLs carry, and the
-- last fire time a schedule trigger accepted; push tokens, listed by id and revocable.

CREATE TABLE triggers (
    id           TEXT COLLATE "C" PRIMARY KEY,
    workflow     TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    last_fire_at BIGINT,
    UNIQUE (workflow, name)
);

CREATE TABLE push_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    workflow     TEXT COLLATE "C" NOT NULL,
    trigger_name TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX push_tokens_trigger ON push_tokens (workflow, trigger_name, created_at);
