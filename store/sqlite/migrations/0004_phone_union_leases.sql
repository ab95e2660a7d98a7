-- A session carries its identity's unionid, so that a session check is one
-- read; users carry a phone number (sealed by the caller: personal data)
-- with where it came from; leases let one instance refresh a platform
-- access token while the others wait (docs/security.md, "Platform access
-- tokens").

ALTER TABLE sessions ADD COLUMN union_id TEXT NOT NULL DEFAULT '';

ALTER TABLE users ADD COLUMN phone BLOB;            -- sealed; NULL when none
ALTER TABLE users ADD COLUMN phone_source TEXT;     -- 'platform' | 'userdata'
ALTER TABLE users ADD COLUMN phone_app TEXT;
ALTER TABLE users ADD COLUMN phone_updated_at INTEGER;

CREATE TABLE leases (
	lease_key TEXT NOT NULL PRIMARY KEY,
	holder    TEXT NOT NULL,
	until     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
