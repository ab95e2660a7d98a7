-- Fewer b-trees for each login to write. Every commit appends each page it
-- changed to the WAL, and a new session's rows went into seven b-trees: the
-- table, its id, its access hash, two sweep indexes, and the refresh token
-- with its session index. Now there are five.
--
-- - The current refresh token is found by sessions.refresh_hash; only spent
--   refresh tokens are kept apart, in spent_refresh, so that a replay is
--   still recognised and revokes its session.
-- - The sweep finds dead sessions through one index on sweep_at, the
--   earliest of the times that end a session, instead of three.

-- As before: revoked, refresh token expired (or without an expiry: dead at
-- once) or past the session's absolute end.
ALTER TABLE sessions ADD COLUMN sweep_at INTEGER GENERATED ALWAYS AS (min(
	coalesce(revoked_at, 9223372036854775807),
	coalesce(refresh_expires_at, -9223372036854775808),
	coalesce(expires_at, 9223372036854775807))) VIRTUAL;

CREATE UNIQUE INDEX sessions_refresh ON sessions (refresh_hash);
CREATE INDEX sessions_sweep ON sessions (sweep_at);
DROP INDEX sessions_refresh_expires;
DROP INDEX sessions_expires;
DROP INDEX sessions_revoked;

CREATE TABLE spent_refresh (
	hash       BLOB NOT NULL PRIMARY KEY, -- SHA-256, as the token's hash
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

INSERT INTO spent_refresh (hash, session_id)
	SELECT hash, session_id FROM refresh_tokens WHERE spent = 1;
DROP TABLE refresh_tokens;

-- For the cascade when a session is deleted.
CREATE INDEX spent_refresh_session ON spent_refresh (session_id);
