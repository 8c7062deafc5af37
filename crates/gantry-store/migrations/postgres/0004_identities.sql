-- PostgreSQL flavour of migrations/sqlite/0004. Who may do what: users (a password hash, or
-- single sign-on only), teams with members and maintainers, service accounts for automation;
-- API keys name one of them as their principal (`user:<id>`, `service:<id>`, or `admin` for
-- the key made at first start). Workflows can be owned by a team.

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    email         TEXT COLLATE "C" NOT NULL UNIQUE,
    name          TEXT COLLATE "C" NOT NULL,
    role          TEXT COLLATE "C" NOT NULL,
    password_hash TEXT COLLATE "C",
    created_at    BIGINT NOT NULL,
    disabled_at   BIGINT
);

CREATE TABLE teams (
    name       TEXT COLLATE "C" PRIMARY KEY,
    title      TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE team_members (
    team       TEXT COLLATE "C" NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    maintainer BOOLEAN NOT NULL,
    PRIMARY KEY (team, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE service_accounts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    role        TEXT COLLATE "C" NOT NULL,
    team        TEXT COLLATE "C" REFERENCES teams (name) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);

ALTER TABLE workflows ADD COLUMN owner_team TEXT COLLATE "C";
CREATE INDEX api_keys_principal ON api_keys (principal);
