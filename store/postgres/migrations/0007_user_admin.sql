-- An operator's hand on users: a user may be blocked (why and since when),
-- and the operator lists, erases and merges a user's identities, which
-- identities_user finds without a scan of the table.

ALTER TABLE users ADD COLUMN blocked boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN blocked_reason text;      -- NULL when not blocked
ALTER TABLE users ADD COLUMN blocked_at timestamptz;   -- NULL when not blocked

CREATE INDEX identities_user ON identities (user_id);
