-- The agents any server sharing this database has seen: who they are and when they last called.
-- Written in batches by each server (at most about once a second), so `last_seen` is a little
-- behind the last call; a row is only ever moved forward in time.
CREATE TABLE agents (
    pool      TEXT NOT NULL,
    id        TEXT NOT NULL,
    version   TEXT NOT NULL,
    hostname  TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    -- The jobs the agent said it runs (a JSON array of job ids).
    jobs      TEXT NOT NULL,
    PRIMARY KEY (pool, id)
);
