-- Repeats of a login code, the grace of a just-spent refresh token and the
-- cap on an identity's live sessions. Existing rows need no rewrite: the
-- new columns are NULL, or 0 for codes.replays.

-- The session a login code's exchange made, for the sessions its repeats
-- make; NULL for that first session, and for every session before.
ALTER TABLE sessions ADD COLUMN origin text;
-- The last rotation's refresh hash (SHA-256) and what a repeat of it gets
-- back until successor_until: the caller's sealed successor, NULL when none.
ALTER TABLE sessions ADD COLUMN last_spent_hash bytea;
ALTER TABLE sessions ADD COLUMN successor bytea;
ALTER TABLE sessions ADD COLUMN successor_until timestamptz;

-- Capping an identity's live sessions (RevokeUserSessions with Keep, after
-- every login) counts them, newest first, in this index alone. Revoked
-- sessions leave it.
CREATE INDEX sessions_identity_live ON sessions
	(user_id, platform, app_id, open_id, created_at DESC NULLS LAST, id COLLATE "C" DESC)
	INCLUDE (refresh_expires_at, expires_at)
	WHERE revoked_at IS NULL;

ALTER TABLE codes ADD COLUMN session_id text;
ALTER TABLE codes ADD COLUMN replay_until timestamptz;
ALTER TABLE codes ADD COLUMN replays integer NOT NULL DEFAULT 0;
