-- Failed user data decryptions per session: the service stops decrypting
-- for a session after a few (docs/security.md, "Decrypting user data"). Existing
-- sessions start at 0.

ALTER TABLE sessions ADD COLUMN decrypt_failures INTEGER NOT NULL DEFAULT 0;
