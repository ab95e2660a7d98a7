-- Repeats of a login code, the grace of a just-spent refresh token, and the
-- sessions of one login. Existing rows get none of them: no origin, no
-- successor (a repeat of a spent token revokes, as before), and codes
-- without a repeat window.
--
-- - sessions.origin: the session a login code's exchange made, for the
--   sessions its repeats made ('' for the first one), so that a logout ends
--   them together. Found through sessions_user; no index of its own.
-- - The last rotation's spent refresh hash, the successor it stored
--   (sealed by the caller) and until when: one per session, replaced by
--   each rotation, NULL when it stored none. No index: a repeat is found
--   through spent_refresh.
-- - codes.replays counts the repeats granted until replay_until (NULL:
--   none); codes.session_id is the session the exchange made.

ALTER TABLE sessions ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN last_spent_hash BLOB;  -- SHA-256
ALTER TABLE sessions ADD COLUMN successor BLOB;        -- sealed
ALTER TABLE sessions ADD COLUMN successor_until INTEGER;

ALTER TABLE codes ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
ALTER TABLE codes ADD COLUMN replay_until INTEGER;
ALTER TABLE codes ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;

-- The cap on an identity's live sessions is checked after every login:
-- this index holds live sessions only, newest first, with every column the
-- check and the revocation test, so that neither reads a table row nor
-- the revoked sessions that pile up for a user who logs in often.
CREATE INDEX sessions_user_live ON sessions
	(user_id, created_at DESC, id DESC, open_id, platform, app_id, origin, refresh_expires_at, expires_at)
	WHERE revoked_at IS NULL;
