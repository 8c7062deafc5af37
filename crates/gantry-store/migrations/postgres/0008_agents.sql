-- The agents any server sharing this database has seen: who they are and when they last called.
-- Written in batches by each server (at most about once a second), so `last_seen` is a little
-- behind the last call; a row is only ever moved forward in time.
CREATE TABLE agents (
    pool      TEXT COLLATE "C" NOT NULL,
    id        TEXT COLLATE "C" NOT NULL,
    version   TEXT COLLATE "C" NOT NULL,
    hostname  TEXT COLLATE "C" NOT NULL,
    last_seen BIGINT NOT NULL,
    -- The jobs the agent said it runs (a JSON array of job ids).
    jobs      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool, id)
);
