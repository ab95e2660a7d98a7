-- Tries of an identity's current session key at decrypting user data
-- (ReserveDecryptAttempt): capped per session key rather than per session,
-- so that neither concurrency nor a replayed login code gives more. Set back
-- to 0 when a login brings a new key. Existing identities start at 0.

ALTER TABLE identities ADD COLUMN decrypt_attempts INTEGER NOT NULL DEFAULT 0;
