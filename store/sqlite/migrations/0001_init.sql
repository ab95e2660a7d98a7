-- Initial schema.
--
-- Times are INTEGER Unix microseconds, UTC; NULL is the zero time.time.Time.
-- Secrets never appear in clear: tokens and login codes are stored as their
-- SHA-256 hashes, session keys as blobs sealed by the caller.
-- STRICT makes SQLite reject a value of the wrong type instead of storing it.

CREATE TABLE users (
	id         TEXT NOT NULL PRIMARY KEY,
	created_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE identities (
	platform            TEXT NOT NULL,
	app_id              TEXT NOT NULL,
	open_id             TEXT NOT NULL,
	union_id            TEXT,    -- NULL when unknown
	user_id             TEXT NOT NULL REFERENCES users (id),
	session_key         BLOB,    -- sealed; NULL when none
	prev_session_key    BLOB,    -- sealed; NULL when none
	prev_key_expires_at INTEGER,
	created_at          INTEGER,
	updated_at          INTEGER,
	PRIMARY KEY (platform, app_id, open_id)
) STRICT, WITHOUT ROWID;

-- A new identity looks for a known unionid on its platform. Most identities
-- have none, so the index skips them.
CREATE INDEX identities_union ON identities (platform, union_id, created_at)
	WHERE union_id IS NOT NULL;

-- Sessions reference no identity or user: the store does not require the
-- caller to create them in any order, and nothing here deletes users.
CREATE TABLE sessions (
	id                 TEXT NOT NULL PRIMARY KEY,
	user_id            TEXT NOT NULL,
	app                TEXT NOT NULL,
	platform           TEXT NOT NULL,
	app_id             TEXT NOT NULL,
	open_id            TEXT NOT NULL,
	access_hash        BLOB NOT NULL UNIQUE,
	access_expires_at  INTEGER,
	refresh_hash       BLOB NOT NULL,
	refresh_expires_at INTEGER,
	created_at         INTEGER,
	expires_at         INTEGER,
	last_used_at       INTEGER,
	revoked_at         INTEGER
) STRICT;

-- DeleteExpired finds dead sessions through these three indexes (an OR of
-- indexed terms) instead of scanning the table while holding the write lock.
-- The partial ones cost nothing for the many rows where the column is NULL.
CREATE INDEX sessions_refresh_expires ON sessions (refresh_expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token a session was given. Spent ones stay until the session
-- is deleted, so that a replay is recognised and revokes the session.
CREATE TABLE refresh_tokens (
	hash       BLOB NOT NULL PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	spent      INTEGER NOT NULL DEFAULT 0,
	expires_at INTEGER
) STRICT, WITHOUT ROWID;

-- For the cascade when a session is deleted.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE codes (
	hash       BLOB NOT NULL PRIMARY KEY, -- SHA-256 of (app name, code)
	app        TEXT NOT NULL,
	platform   TEXT NOT NULL,
	app_id     TEXT NOT NULL,
	open_id    TEXT NOT NULL,
	expires_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX codes_expires ON codes (expires_at);
