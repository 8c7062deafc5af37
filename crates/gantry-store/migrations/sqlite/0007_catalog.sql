-- The software catalog: blueprints, entities, and the tombstones of deleted ones.
-- Every catalog write bumps `catalog_clock` first and stamps every row it writes with the new
-- `seq`, so "what changed after seq N" is `seq > N` on each table (see `Store::catalog_changes`).
-- The blueprint definition and the entity's team, properties, relations and sources are JSON text,
-- kept byte for byte (key order included).

CREATE TABLE catalog_clock (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO catalog_clock (id, seq) VALUES (1, 0);

CREATE TABLE blueprints (
    identifier TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    managed_by TEXT,
    seq        INTEGER NOT NULL
);
CREATE INDEX blueprints_seq ON blueprints (seq);

-- No reference to `blueprints`: the server deletes a blueprint's entities itself, in the same
-- write, and a check per row would tax bulk upserts.
CREATE TABLE entities (
    blueprint  TEXT NOT NULL,
    identifier TEXT NOT NULL,
    title      TEXT,
    team       TEXT NOT NULL,
    properties TEXT NOT NULL,
    relations  TEXT NOT NULL,
    sources    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    managed_by TEXT,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (blueprint, identifier)
);
CREATE INDEX entities_seq ON entities (seq);
CREATE INDEX entities_managed_by ON entities (managed_by) WHERE managed_by IS NOT NULL;

-- A deleted blueprint (`identifier` NULL) or entity, at the seq of its deletion.
CREATE TABLE catalog_tombstones (
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('blueprint', 'entity')),
    blueprint  TEXT NOT NULL,
    identifier TEXT
);
CREATE INDEX catalog_tombstones_seq ON catalog_tombstones (seq);
