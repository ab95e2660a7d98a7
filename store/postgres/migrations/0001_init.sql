-- Initial schema: the tables of store/sqlite's migrations 0001 to 0004, in
-- PostgreSQL's types.
--
-- Times are timestamptz (microseconds); NULL is the zero time.Time.
-- Secrets never appear in clear: tokens and login codes are stored as their
-- SHA-256 hashes, session keys, platform access tokens and phone numbers as
-- bytea sealed by the caller.

CREATE TABLE users (
	id               text NOT NULL PRIMARY KEY,
	created_at       timestamptz,
	phone            bytea,        -- sealed; NULL when none
	phone_source     text,         -- 'platform' | 'userdata'
	phone_app        text,
	phone_updated_at timestamptz
);

CREATE TABLE identities (
	platform            text NOT NULL,
	app_id              text NOT NULL,
	open_id             text NOT NULL,
	union_id            text,        -- NULL when unknown
	user_id             text NOT NULL REFERENCES users (id),
	session_key         bytea,       -- sealed; NULL when none
	prev_session_key    bytea,       -- sealed; NULL when none
	prev_key_expires_at timestamptz,
	created_at          timestamptz,
	updated_at          timestamptz,
	PRIMARY KEY (platform, app_id, open_id)
);

-- A new identity looks for a known unionid on its platform. Most identities
-- have none, so the index skips them.
CREATE INDEX identities_union ON identities (platform, union_id)
	WHERE union_id IS NOT NULL;

-- Sessions reference no identity or user: the store does not require the
-- caller to create them in any order, and nothing here deletes users.
CREATE TABLE sessions (
	id                 text NOT NULL PRIMARY KEY,
	user_id            text NOT NULL,
	app                text NOT NULL,
	platform           text NOT NULL,
	app_id             text NOT NULL,
	open_id            text NOT NULL,
	access_hash        bytea NOT NULL UNIQUE,  -- SHA-256
	access_expires_at  timestamptz,
	refresh_hash       bytea NOT NULL,         -- SHA-256
	refresh_expires_at timestamptz,
	created_at         timestamptz,
	expires_at         timestamptz,
	last_used_at       timestamptz,
	revoked_at         timestamptz,
	decrypt_failures   integer NOT NULL DEFAULT 0,
	union_id           text NOT NULL DEFAULT ''
);

-- DeleteExpired finds dead sessions through these three indexes (a bitmap OR)
-- instead of scanning the table. The partial ones cost nothing for the many
-- rows where the column is NULL.
CREATE INDEX sessions_refresh_expires ON sessions (refresh_expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token a session was given. Spent ones stay until the session
-- is deleted, so that a replay is recognised and revokes the session.
CREATE TABLE refresh_tokens (
	hash       bytea NOT NULL PRIMARY KEY,  -- SHA-256
	session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	spent      boolean NOT NULL DEFAULT false,
	expires_at timestamptz
);

-- For the cascade when a session is deleted.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE codes (
	hash       bytea NOT NULL PRIMARY KEY,  -- SHA-256 of (app name, code)
	app        text NOT NULL,
	platform   text NOT NULL,
	app_id     text NOT NULL,
	open_id    text NOT NULL,
	expires_at timestamptz
);

CREATE INDEX codes_expires ON codes (expires_at);

-- Platform access tokens of our own apps, shared by every instance
-- (docs/security.md, "Platform access tokens"), sealed by the caller. One
-- row per key.
CREATE TABLE access_tokens (
	cache_key  text NOT NULL PRIMARY KEY,
	sealed     bytea NOT NULL,
	expires_at timestamptz,
	refresh_at timestamptz
);

-- Leases let one instance refresh a platform access token while the others
-- wait.
CREATE TABLE leases (
	lease_key text NOT NULL PRIMARY KEY,
	holder    text NOT NULL,
	until     timestamptz NOT NULL
);
