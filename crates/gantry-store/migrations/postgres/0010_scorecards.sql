-- Scorecards, initiatives and automations: their definitions, where each entity stands on each
-- scorecard, how its level moved over time, and what each automation did.
-- Definitions are kept like actions' (the JSON as given, a version every change must expect).

CREATE TABLE scorecards (
    identifier TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    managed_by TEXT
);

CREATE TABLE initiatives (
    identifier TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    managed_by TEXT
);

CREATE TABLE automations (
    identifier TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    managed_by TEXT
);

-- One row per scorecard and evaluated entity: its level, weighted score, since when it holds
-- that level, and each rule's result (JSON: [{rule, passed, since}], in rule order; the value a
-- rule sees is the entity's own, read when shown).
CREATE TABLE scorecard_entities (
    scorecard  TEXT NOT NULL,
    blueprint  TEXT NOT NULL,
    identifier TEXT NOT NULL,
    level      TEXT NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    since      BIGINT NOT NULL,
    rules      TEXT NOT NULL,
    PRIMARY KEY (scorecard, blueprint, identifier)
);

-- Every change of an entity's level on a scorecard (from NULL: first evaluated; to NULL: no
-- longer evaluated), in order.
CREATE TABLE scorecard_history (
    seq        BIGSERIAL PRIMARY KEY,
    scorecard  TEXT NOT NULL,
    blueprint  TEXT NOT NULL,
    identifier TEXT NOT NULL,
    from_level TEXT,
    to_level   TEXT,
    score      DOUBLE PRECISION,
    at         BIGINT NOT NULL
);
CREATE INDEX scorecard_history_entity ON scorecard_history (blueprint, identifier, scorecard, seq);
CREATE INDEX scorecard_history_scorecard ON scorecard_history (scorecard, seq);

-- What each automation did with each event that reached its effect.
CREATE TABLE automation_firings (
    id         TEXT PRIMARY KEY,
    automation TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status     TEXT NOT NULL,
    at         BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX automation_firings_automation ON automation_firings (automation, at, id);
CREATE INDEX automation_firings_at ON automation_firings (at, id);
