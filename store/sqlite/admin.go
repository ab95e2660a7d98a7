package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// The operator's statements. They run rarely, so they are prepared on each
// call instead of at Open.
const (
	listIdentitiesSQL = `SELECT ` + identityCols + ` FROM identities
		WHERE user_id = ? ORDER BY created_at, platform, app_id, open_id`
	unionUserRowSQL = `SELECT ` + userCols + ` FROM users WHERE id = (` + unionUserSQL + `)`
	// Through users_phone_lookup, in its order: one lookup at a time.
	phoneUsersSQL = `SELECT ` + userCols + ` FROM users WHERE phone_lookup = ?
		ORDER BY created_at, id LIMIT ?`
	setBlockedSQL = `UPDATE users SET blocked = ?2,
		blocked_reason = CASE WHEN ?2 THEN ?3 END, blocked_at = CASE WHEN ?2 THEN ?4 END
		WHERE id = ?1`
	// Rotatable at ?2, through sessions_by_user.
	listUserSessionsSQL = `SELECT ` + sessionCols + ` FROM sessions INDEXED BY sessions_by_user
		WHERE user_id = ?1 AND revoked_at IS NULL
			AND refresh_expires_at > ?2 AND (expires_at IS NULL OR expires_at > ?2)
		ORDER BY created_at DESC, id DESC`
	userExistsSQL = `SELECT count(*) FROM users WHERE id = ?`
	// Codes carry their identity, not their user, and have no index on it:
	// the table holds only codes of the last minutes, so the scan is short.
	eraseCodesSQL = `DELETE FROM codes WHERE EXISTS (SELECT 1 FROM identities i
		WHERE i.user_id = ?1 AND i.platform = codes.platform AND i.app_id = codes.app_id
			AND i.open_id = codes.open_id)`
	// spent_refresh rows go with their session (ON DELETE CASCADE).
	eraseSessionsSQL   = `DELETE FROM sessions WHERE user_id = ? RETURNING id`
	eraseIdentitiesSQL = `DELETE FROM identities WHERE user_id = ?`
	deleteUserSQL      = `DELETE FROM users WHERE id = ?`
	moveIdentitiesSQL  = `UPDATE identities SET user_id = ?1 WHERE user_id = ?2`
	moveSessionsSQL    = `UPDATE sessions SET user_id = ?1 WHERE user_id = ?2 RETURNING id`
	// from's phone, when into has none.
	movePhoneSQL = `UPDATE users SET (phone, phone_lookup, phone_source, phone_app, phone_updated_at) =
		(SELECT phone, phone_lookup, phone_source, phone_app, phone_updated_at FROM users WHERE id = ?2)
		WHERE id = ?1 AND phone IS NULL`
)

// ListIdentities implements store.Users, through identities_user.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]store.Identity, error) {
	const op = "list identities"
	rows, err := s.read.QueryContext(ctx, listIdentitiesSQL, userID)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var out []store.Identity
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		out = append(out, id)
	}
	return out, s.fail(ctx, op, rows.Err())
}

// FindUserByUnionID implements store.Users, through identities_union.
func (s *Store) FindUserByUnionID(ctx context.Context, family platform.Family, unionID string) (store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, unionUserRowSQL, family, unionID))
	if err != nil {
		return store.User{}, s.fail(ctx, "find user by unionid", err)
	}
	return u, nil
}

// FindUsersByPhone implements store.Users, through users_phone_lookup:
// a query for each lookup (one for each master key), merged.
func (s *Store) FindUsersByPhone(ctx context.Context, lookups [][]byte) ([]store.User, error) {
	const op = "find users by phone"
	var out []store.User
	for _, l := range lookups {
		us, err := s.usersByPhone(ctx, l)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		out = append(out, us...)
	}
	if len(lookups) > 1 {
		slices.SortFunc(out, func(a, b store.User) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
		out = slices.CompactFunc(out, func(a, b store.User) bool { return a.ID == b.ID })
	}
	if len(out) > store.MaxPhoneHolders {
		out = out[:store.MaxPhoneHolders]
	}
	return out, nil
}

func (s *Store) usersByPhone(ctx context.Context, lookup []byte) ([]store.User, error) {
	rows, err := s.read.QueryContext(ctx, phoneUsersSQL, lookup, store.MaxPhoneHolders)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// SetBlocked implements store.Users.
func (s *Store) SetBlocked(ctx context.Context, userID string, blocked bool, reason string, now time.Time) error {
	return s.updateOne(ctx, "set blocked", func(ctx context.Context, tx wtx) (sql.Result, error) {
		return tx.ExecContext(ctx, setBlockedSQL, userID, blocked, reason, micros(now))
	})
}

// ListUserSessions implements store.Sessions, through sessions_by_user.
func (s *Store) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error) {
	const op = "list user sessions"
	rows, err := s.read.QueryContext(ctx, listUserSessionsSQL, userID, trunc(now).UnixMicro())
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		out = append(out, sess)
	}
	return out, s.fail(ctx, op, rows.Err())
}

// EraseUser implements store.UserAdmin in one transaction: the codes of
// the user's identities, the user's sessions with their spent refresh
// tokens, the identities, the user. Like a revocation, it is answered once
// on disk (durable.go): an erasure that a power loss undid would bring
// back both the data and the sessions.
func (s *Store) EraseUser(ctx context.Context, userID string, _ time.Time) error {
	return s.writeSessions(ctx, "erase user", always, func(ctx context.Context, tx wtx, ids *[]string) error {
		if err := mustUser(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, eraseCodesSQL, userID); err != nil {
			return fmt.Errorf("codes: %w", err)
		}
		if err := idsOf(ctx, tx, ids, eraseSessionsSQL, userID); err != nil {
			return fmt.Errorf("sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, eraseIdentitiesSQL, userID); err != nil {
			return fmt.Errorf("identities: %w", err)
		}
		_, err := tx.ExecContext(ctx, deleteUserSQL, userID)
		return err
	})
}

// EraseUserSessions implements store.Sessions: the sessions of userID, and
// the codes of identities, in one transaction, answered once on disk as
// EraseUser is.
func (s *Store) EraseUserSessions(ctx context.Context, userID string, identities []store.Identity) error {
	return s.writeSessions(ctx, "erase user sessions", always, func(ctx context.Context, tx wtx, ids *[]string) error {
		for _, id := range identities {
			_, err := tx.ExecContext(ctx, `DELETE FROM codes WHERE platform = ? AND app_id = ? AND open_id = ?`,
				id.Family, id.AppID, id.OpenID)
			if err != nil {
				return fmt.Errorf("codes: %w", err)
			}
		}
		return idsOf(ctx, tx, ids, eraseSessionsSQL, userID)
	})
}

// MergeUsers implements store.UserAdmin in one transaction. On the single
// writer it is serialised with every login, so a login of either user
// lands wholly before or wholly after it.
func (s *Store) MergeUsers(ctx context.Context, into, from string, _ time.Time) error {
	const op = "merge users"
	if into == from {
		return fmt.Errorf("sqlite: %s: %w", op, store.ErrSelfMerge)
	}
	return s.writeSessions(ctx, op, nil, func(ctx context.Context, tx wtx, ids *[]string) error {
		for _, u := range []string{into, from} {
			if err := mustUser(ctx, tx, u); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, moveIdentitiesSQL, into, from); err != nil {
			return fmt.Errorf("identities: %w", err)
		}
		if err := idsOf(ctx, tx, ids, moveSessionsSQL, into, from); err != nil {
			return fmt.Errorf("sessions: %w", err)
		}
		if _, err := tx.ExecContext(ctx, movePhoneSQL, into, from); err != nil {
			return fmt.Errorf("phone: %w", err)
		}
		_, err := tx.ExecContext(ctx, deleteUserSQL, from)
		return err
	})
}

// MoveUserSessions implements store.Sessions.
func (s *Store) MoveUserSessions(ctx context.Context, into, from string) error {
	return s.writeSessions(ctx, "move user sessions", nil, func(ctx context.Context, tx wtx, ids *[]string) error {
		return idsOf(ctx, tx, ids, moveSessionsSQL, into, from)
	})
}

// writeSessions is inTx for a write that changes the sessions whose ids fn
// collects: the cache forgets them once the write commits. With durable
// set, the write is answered as writeOp.durable says.
func (s *Store) writeSessions(ctx context.Context, op string, durable func(error) bool, fn func(context.Context, wtx, *[]string) error) error {
	var ids []string
	return s.write1(ctx, op, &writeOp{ctx: ctx, done: make(chan error, 1), durable: durable,
		fn: func(ctx context.Context, tx wtx) error {
			ids = ids[:0] // a batch that runs again runs this again
			return fn(ctx, tx, &ids)
		},
		after: func() { s.dropAllCached(ids) }})
}

// mustUser returns sql.ErrNoRows when there is no user id.
func mustUser(ctx context.Context, tx wtx, id string) error {
	var n int
	if err := tx.QueryRowContext(ctx, userExistsSQL, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

// idsOf runs query, which returns the ids of the sessions it changed, and
// appends them to ids.
func idsOf(ctx context.Context, tx wtx, ids *[]string, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		*ids = append(*ids, id)
	}
	return rows.Err()
}

// dropAllCached forgets the sessions ids, changed or deleted by a write.
func (s *Store) dropAllCached(ids []string) {
	for _, id := range ids {
		s.dropCached(id)
	}
}
