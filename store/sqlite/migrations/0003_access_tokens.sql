-- Platform access tokens of our own apps, shared by every instance
-- (docs/security.md, "Platform access tokens"). The token is sealed by the caller: no
-- column holds it in clear. One row per cache key; a lease for the instance
-- that refreshes will be added in a later migration.

CREATE TABLE access_tokens (
	cache_key  TEXT NOT NULL PRIMARY KEY,
	sealed     BLOB NOT NULL,
	expires_at INTEGER,
	refresh_at INTEGER
) STRICT, WITHOUT ROWID;
