-- The software catalog: blueprints, entities, and the tombstones of deleted ones.
-- Every catalog write bumps `catalog_clock` first and stamps every row it writes with the new
-- `seq`, so "what changed after seq N" is `seq > N` on each table (see `Store::catalog_changes`).
-- The clock's row lock, held until commit, serialises catalog writers across servers: seq order
-- is commit order, so a reader that has seen seq N never misses a later commit below it.
-- The blueprint definition and the entity's team, properties, relations and sources are JSON text,
-- kept byte for byte (key order included).

CREATE TABLE catalog_clock (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO catalog_clock (id, seq) VALUES (1, 0);

CREATE TABLE blueprints (
    identifier TEXT COLLATE "C" PRIMARY KEY,
    definition TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    updated_by TEXT COLLATE "C" NOT NULL,
    managed_by TEXT COLLATE "C",
    seq        BIGINT NOT NULL
);
CREATE INDEX blueprints_seq ON blueprints (seq);

-- No reference to `blueprints`: the server deletes a blueprint's entities itself, in the same
-- write, and a check per row would tax bulk upserts.
CREATE TABLE entities (
    blueprint  TEXT COLLATE "C" NOT NULL,
    identifier TEXT COLLATE "C" NOT NULL,
    title      TEXT COLLATE "C",
    team       TEXT COLLATE "C" NOT NULL,
    properties TEXT COLLATE "C" NOT NULL,
    relations  TEXT COLLATE "C" NOT NULL,
    sources    TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT COLLATE "C" NOT NULL,
    updated_by TEXT COLLATE "C" NOT NULL,
    managed_by TEXT COLLATE "C",
    seq        BIGINT NOT NULL,
    PRIMARY KEY (blueprint, identifier)
);
CREATE INDEX entities_seq ON entities (seq);
CREATE INDEX entities_managed_by ON entities (managed_by) WHERE managed_by IS NOT NULL;

-- A deleted blueprint (`identifier` NULL) or entity, at the seq of its deletion.
CREATE TABLE catalog_tombstones (
    seq        BIGINT NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL CHECK (kind IN ('blueprint', 'entity')),
    blueprint  TEXT COLLATE "C" NOT NULL,
    identifier TEXT COLLATE "C"
);
CREATE INDEX catalog_tombstones_seq ON catalog_tombstones (seq);
