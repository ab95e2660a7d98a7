-- A keyed hash of each user's phone number, so that a user is found by
-- their number (an operator's search, linking one person's accounts)
-- without the number in clear.

ALTER TABLE users ADD COLUMN phone_lookup bytea;  -- NULL when no number, or one recorded before

CREATE INDEX users_phone_lookup ON users (phone_lookup) WHERE phone_lookup IS NOT NULL;
