-- The keys mplogin signs JWT access tokens with (package signing): one row,
-- the whole set sealed by the caller (private keys never in clear), and the
-- version that PutSigningKeys compares before it replaces the row, so that
-- of two instances rotating at once one wins.

CREATE TABLE signing_keys (
	id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	sealed     BLOB NOT NULL,
	version    INTEGER NOT NULL,
	updated_at INTEGER
) STRICT;
