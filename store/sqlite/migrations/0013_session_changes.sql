-- What changed sessions, for the session checks answered from a sealed
-- access token without a read: such a token is vouched for only while its
-- session has no change here after it was minted, or the change installed
-- this very token (a refresh). Triggers write it, so that no write of a
-- session can forget to. seq only grows: a session's latest change is its
-- row with the highest seq, and the Store reads the changes its own
-- transaction made by seq before committing.
--
-- A change matters only while a token minted before it could still be
-- used: until the session's access token of the time expires (every
-- earlier one expired before it). A change to a session whose access token
-- has expired is not recorded at all.
CREATE TABLE session_changes (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT NOT NULL,         -- the session
	until       INTEGER NOT NULL,      -- Unix microseconds: kept until then
	-- The access token hash the session answers to after the change, when
	-- the change only gave it a new access token; NULL when the change
	-- ended the session or changed what a check answers.
	access_hash BLOB
) STRICT;
CREATE INDEX session_changes_until ON session_changes (until);

-- One row: changes are complete from since (Unix microseconds) on, for
-- tokens that live at most window microseconds (0: no Store has set one).
CREATE TABLE session_changes_kept (
	one    INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
	since  INTEGER NOT NULL,
	window INTEGER NOT NULL
) STRICT;
INSERT INTO session_changes_kept (one, since, window) VALUES (1, CAST(unixepoch('subsec') * 1000000 AS INTEGER), 0);

-- "Still in date" allows a second for clocks read apart.
CREATE TRIGGER sessions_changed AFTER UPDATE OF
	user_id, app, open_id, union_id, access_hash, access_expires_at, expires_at, revoked_at ON sessions
WHEN (NEW.user_id IS NOT OLD.user_id OR NEW.app IS NOT OLD.app OR NEW.open_id IS NOT OLD.open_id
	OR NEW.union_id IS NOT OLD.union_id OR NEW.access_hash IS NOT OLD.access_hash
	OR NEW.access_expires_at IS NOT OLD.access_expires_at OR NEW.expires_at IS NOT OLD.expires_at
	OR NEW.revoked_at IS NOT OLD.revoked_at)
	AND OLD.access_expires_at > CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 1000000
BEGIN
	INSERT INTO session_changes (id, until, access_hash) VALUES (NEW.id, OLD.access_expires_at,
		CASE WHEN NEW.revoked_at IS NULL AND NEW.user_id IS OLD.user_id AND NEW.app IS OLD.app
			AND NEW.open_id IS OLD.open_id AND NEW.union_id IS OLD.union_id
			AND NEW.expires_at IS OLD.expires_at AND OLD.revoked_at IS NULL
		THEN NEW.access_hash END);
END;

-- A deleted session whose access token is still in date (erased, or past
-- its refresh token's end before its access token's). Revoked ones were
-- recorded when revoked.
CREATE TRIGGER sessions_deleted AFTER DELETE ON sessions
WHEN OLD.revoked_at IS NULL
	AND OLD.access_expires_at > CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 1000000
	AND (OLD.expires_at IS NULL OR OLD.expires_at > CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 1000000)
BEGIN
	INSERT INTO session_changes (id, until, access_hash) VALUES (OLD.id, OLD.access_expires_at, NULL);
END;
