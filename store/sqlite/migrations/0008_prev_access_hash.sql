-- The access token a session's last rotation replaced, so that a logout
-- that lost a race with a refresh still finds its session (only a logout;
-- a session check does not). NULL until the first rotation; the index
-- skips those rows, so a login writes no more b-trees than before.
ALTER TABLE sessions ADD COLUMN prev_access_hash BLOB;
CREATE UNIQUE INDEX sessions_prev_access ON sessions (prev_access_hash)
	WHERE prev_access_hash IS NOT NULL;
