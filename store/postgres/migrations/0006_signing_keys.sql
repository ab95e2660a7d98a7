-- The keys mplogin signs JWT access tokens with (package signing): one row,
-- the whole set sealed by the caller (private keys never in clear), and the
-- version that PutSigningKeys compares before it replaces the row, so that
-- of two instances rotating at once one wins.

CREATE TABLE signing_keys (
	id         integer NOT NULL PRIMARY KEY CHECK (id = 1),
	sealed     bytea NOT NULL,
	version    bigint NOT NULL,
	updated_at timestamptz
);
