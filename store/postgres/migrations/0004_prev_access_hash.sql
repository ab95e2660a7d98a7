-- The access token a session's last rotation replaced, so that a logout
-- that lost a race with a refresh still finds its session (only a logout;
-- a session check does not). NULL until the first rotation.
ALTER TABLE sessions ADD COLUMN prev_access_hash bytea;  -- SHA-256
CREATE UNIQUE INDEX sessions_prev_access ON sessions (prev_access_hash)
	WHERE prev_access_hash IS NOT NULL;
