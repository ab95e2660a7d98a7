-- Ending every session of a user (a logout of all sessions, a session key
-- reset) finds them through this index instead of scanning the table.
CREATE INDEX sessions_user ON sessions (user_id);
