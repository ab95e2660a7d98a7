-- Whether a user is blocked, which every login reads, from an index of the
-- blocked users alone: a page or two that stay in memory. The users table
-- itself, at millions of users, cost each login a random page.
CREATE INDEX users_blocked ON users (id, blocked) WHERE blocked;
