-- Self-service actions: their definitions, their runs, and the log lines of each run.
-- A definition is the action's JSON, kept byte for byte. A run is a JSON document the server
-- owns (inputs, sealed secret inputs, approvals, links, summary, linked entities); the columns
-- beside it are what lists filter and sort on, and the version every update must expect.

CREATE TABLE actions (
    identifier TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    managed_by TEXT
);

CREATE TABLE action_runs (
    id                TEXT PRIMARY KEY,
    action            TEXT NOT NULL,
    entity_blueprint  TEXT,
    entity_identifier TEXT,
    requested_by      TEXT NOT NULL,
    status            TEXT NOT NULL,
    workflow_run      TEXT,
    deadline_at       BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    version           BIGINT NOT NULL,
    doc               TEXT NOT NULL
);
CREATE INDEX action_runs_created ON action_runs (created_at, id);
CREATE INDEX action_runs_action ON action_runs (action, created_at, id);
CREATE INDEX action_runs_entity ON action_runs (entity_blueprint, entity_identifier, created_at, id);
CREATE INDEX action_runs_requested_by ON action_runs (requested_by, created_at, id);
CREATE INDEX action_runs_status ON action_runs (status, created_at, id);
CREATE UNIQUE INDEX action_runs_workflow_run ON action_runs (workflow_run)
    WHERE workflow_run IS NOT NULL;

CREATE TABLE action_run_logs (
    run_id TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    at     BIGINT NOT NULL,
    line   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
