package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// The operator's statements.
const (
	listIdentitiesSQL = `SELECT ` + identityCols + ` FROM identities WHERE user_id = $1
		ORDER BY created_at, platform COLLATE "C", app_id COLLATE "C", open_id COLLATE "C"`
	// As UpsertIdentity joins: the oldest identity carrying the unionid.
	unionUserRowSQL = `SELECT ` + userCols + ` FROM users WHERE id = (SELECT user_id FROM identities
		WHERE platform = $1 AND union_id = $2
		ORDER BY created_at, app_id COLLATE "C", open_id COLLATE "C" LIMIT 1)`
	// Through users_phone_lookup.
	phoneUsersSQL = `SELECT ` + userCols + ` FROM users WHERE phone_lookup = ANY($1::bytea[])
		ORDER BY created_at, id COLLATE "C" LIMIT $2`
	setBlockedSQL = `UPDATE users SET blocked = $2,
		blocked_reason = CASE WHEN $2 THEN $3::text END,
		blocked_at = CASE WHEN $2 THEN $4::timestamptz END
		WHERE id = $1`
	listUserSessionsSQL = `SELECT ` + sessionCols + ` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND refresh_expires_at > $2
			AND (expires_at IS NULL OR expires_at > $2)
		ORDER BY created_at DESC NULLS LAST, id COLLATE "C" DESC`
	// The users' rows locked, in a fixed order: a concurrent merge or
	// erase of the same users waits, and so does a new identity joining
	// one of them (its foreign key check shares the row).
	lockUsersSQL = `SELECT id FROM users WHERE id = ANY($1::text[]) ORDER BY id COLLATE "C" FOR UPDATE`
	// Codes carry their identity, not their user, and have no index on it:
	// the table holds only codes of the last minutes, so the scan is short.
	eraseIdentityCodesSQL = `DELETE FROM codes WHERE platform = $1 AND app_id = $2 AND open_id = $3`
	// refresh_tokens rows go with their session (ON DELETE CASCADE).
	eraseSessionsSQL   = `DELETE FROM sessions WHERE user_id = $1`
	eraseIdentitiesSQL = `DELETE FROM identities WHERE user_id = $1 RETURNING platform, app_id, open_id`
	deleteUserSQL      = `DELETE FROM users WHERE id = $1`
	moveIdentitiesSQL  = `UPDATE identities SET user_id = $1 WHERE user_id = $2`
	moveSessionsSQL    = `UPDATE sessions SET user_id = $1 WHERE user_id = $2`
	movePhoneSQL       = `UPDATE users u SET phone = f.phone, phone_lookup = f.phone_lookup, phone_source = f.phone_source,
		phone_app = f.phone_app, phone_updated_at = f.phone_updated_at
		FROM users f WHERE u.id = $1 AND f.id = $2 AND u.phone IS NULL`
)

// ListIdentities implements store.Users, through identities_user.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	var out []store.Identity
	err := s.run(ctx, "list identities", true, func() error {
		rows, err := s.pool.Query(ctx, listIdentitiesSQL, userID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Identity, error) { return scanIdentity(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FindUserByUnionID implements store.Users, through identities_union.
func (s *Store) FindUserByUnionID(ctx context.Context, family platform.Family, unionID string) (store.User, error) {
	var u store.User
	err := s.run(ctx, "find user by unionid", true, func() error {
		var err error
		u, err = scanUser(s.pool.QueryRow(ctx, unionUserRowSQL, family, unionID))
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// FindUsersByPhone implements store.Users, through users_phone_lookup.
func (s *Store) FindUsersByPhone(ctx context.Context, lookups [][]byte) ([]store.User, error) {
	if len(lookups) == 0 {
		return nil, nil
	}
	var out []store.User
	err := s.run(ctx, "find users by phone", true, func() error {
		rows, err := s.pool.Query(ctx, phoneUsersSQL, lookups, store.MaxPhoneHolders)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetBlocked implements store.Users.
func (s *Store) SetBlocked(ctx context.Context, userID string, blocked bool, reason string, now time.Time) error {
	return s.run(ctx, "set blocked", false, func() error {
		tag, err := s.pool.Exec(ctx, setBlockedSQL, userID, blocked, reason, ts(now))
		if err == nil && tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return err
	})
}

// ListUserSessions implements store.Sessions, through sessions_user.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error) {
	var out []store.Session
	err := s.run(ctx, "list user sessions", true, func() error {
		rows, err := s.pool.Query(ctx, listUserSessionsSQL, userID, ts(now))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Session, error) { return scanSession(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockUsers locks the rows of ids and returns pgx.ErrNoRows unless all
// exist.
func lockUsers(ctx context.Context, tx pgx.Tx, ids ...string) error {
	rows, err := tx.Query(ctx, lockUsersSQL, ids)
	if err != nil {
		return err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(got) != len(ids) {
		return pgx.ErrNoRows
	}
	return nil
}

// EraseUser implements store.UserAdmin in one transaction.
func (s *Store) EraseUser(ctx context.Context, userID string, _ time.Time) error {
	return s.run(ctx, "erase user", false, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := lockUsers(ctx, tx, userID); err != nil {
				return err
			}
			// The identities go first: a login holding an identity's row
			// finishes before the DELETE does, and the statements after it
			// see that login's code and session; a login that comes later
			// waits for the row and then creates a new user.
			rows, err := tx.Query(ctx, eraseIdentitiesSQL, userID)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Identity, error) {
				var id store.Identity
				return id, r.Scan(&id.Family, &id.AppID, &id.OpenID)
			})
			if err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := tx.Exec(ctx, eraseIdentityCodesSQL, id.Family, id.AppID, id.OpenID); err != nil {
					return err
				}
			}
			for _, q := range []string{eraseSessionsSQL, deleteUserSQL} {
				if _, err := tx.Exec(ctx, q, userID); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// EraseUserSessions implements store.Sessions in one transaction.
func (s *Store) EraseUserSessions(ctx context.Context, userID string, identities []store.Identity) error {
	return s.run(ctx, "erase user sessions", false, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			for _, id := range identities {
				if _, err := tx.Exec(ctx, eraseIdentityCodesSQL, id.Family, id.AppID, id.OpenID); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, eraseSessionsSQL, userID)
			return err
		})
	})
}

// MergeUsers implements store.UserAdmin in one transaction. The identities
// move before the sessions: a login of from that holds an identity's row
// finishes first, and the sessions' UPDATE, a statement later, sees its
// session; a login that comes after waits for the identity's row and then
// reads into.
func (s *Store) MergeUsers(ctx context.Context, into, from string, _ time.Time) error {
	const op = "merge users"
	if into == from {
		return fmt.Errorf("postgres: %s: %w", op, store.ErrSelfMerge)
	}
	return s.run(ctx, op, false, func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := lockUsers(ctx, tx, into, from); err != nil {
				return err
			}
			for _, q := range []string{moveIdentitiesSQL, moveSessionsSQL, movePhoneSQL} {
				if _, err := tx.Exec(ctx, q, into, from); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, deleteUserSQL, from)
			return err
		})
	})
}

// MoveUserSessions implements store.Sessions: one UPDATE.
func (s *Store) MoveUserSessions(ctx context.Context, into, from string) error {
	return s.run(ctx, "move user sessions", false, func() error {
		_, err := s.pool.Exec(ctx, moveSessionsSQL, into, from)
		return err
	})
}
