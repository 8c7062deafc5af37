-- Who may do what: users (a password hash, or single sign-on only), teams with members and
-- maintainers, service accounts for automation; API keys name one of them as their principal
-- (`user:<id>`, `service:<id>`, or `admin` for the key made at first start). Workflows can be
-- owned by a team.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER
);

CREATE TABLE teams (
    name       TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE team_members (
    team       TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    maintainer BOOLEAN NOT NULL,
    PRIMARY KEY (team, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE service_accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    team        TEXT REFERENCES teams (name) ON DELETE SET NULL,
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
);

ALTER TABLE workflows ADD COLUMN owner_team TEXT;
CREATE INDEX api_keys_principal ON api_keys (principal);
