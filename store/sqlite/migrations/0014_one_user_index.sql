-- One index of a user's sessions instead of two. sessions_user (every
-- session, by user) and sessions_user_live (the live ones, with the columns
-- the cap reads) were both written at every login, each on a page of its
-- own picked by the user: with millions of users, two random pages. This
-- one holds every session, live ones first within a user (a NULL
-- revoked_at sorts first), newest first, with the same columns: the cap and
-- the operator's listing read it as they read sessions_user_live, and
-- everything else that goes by user reads its first column.
CREATE INDEX sessions_by_user ON sessions
	(user_id, revoked_at, created_at DESC, id DESC, open_id, platform, app_id, origin,
		refresh_expires_at, expires_at);
DROP INDEX sessions_user_live;
DROP INDEX sessions_user;
