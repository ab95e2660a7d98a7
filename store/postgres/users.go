package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/store"
)

// UpsertIdentity implements store.Users in one statement (upsertIdentitySQL),
// run again when it lost the race to create the identity to a concurrent
// call, so that exactly one of them creates the user.
//
// With a unionid, the statement runs in a transaction that first takes an
// advisory lock on (platform, unionid), all in one round trip: calls that
// could join each other's user (two new identities of one person, in two
// apps, at once) take turns, and the second sees the first's identity and
// joins its user instead of creating another.
func (s *Store) UpsertIdentity(ctx context.Context, in store.IdentityUpsert) (store.Identity, bool, error) {
	const op = "upsert identity"
	if in.Family == "" || in.AppID == "" || in.OpenID == "" {
		return store.Identity{}, false, fmt.Errorf("postgres: %s: empty family, app ID or open ID", op)
	}
	args := upsertArgs(in)
	var (
		id      store.Identity
		created bool
	)
	err := s.run(ctx, op, false, func() error {
		var err error
		if in.UnionID == "" {
			id, err = scanIdentity(s.pool.QueryRow(ctx, upsertIdentitySQL, args...), &created)
		} else {
			id, created, err = s.upsertLocked(ctx, in.Family, in.UnionID, args)
		}
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Another call inserted the identity after this statement took
			// its snapshot: the next run finds it and updates it.
			return errRetry
		case sqlState(err) == "23502" && in.NewUserID == "": // not_null_violation
			return fmt.Errorf("empty new user ID: %w", err)
		}
		return err
	})
	if err != nil {
		return store.Identity{}, false, err
	}
	return id, created, nil
}

// WriteLogin implements store.Store: BEGIN, the unionid's lock when
// there is a unionid, the upsert, the code and the session go to the server
// in one batch, and COMMIT follows once the upsert has its row, after the
// cap's UPDATE when in.Keep asks for it (it needs the user): two round
// trips and one commit, where the separate calls take four of each.
func (s *Store) WriteLogin(ctx context.Context, in store.LoginWrite) (store.LoginResult, error) {
	const op = "write login"
	if err := in.Check(); err != nil {
		return store.LoginResult{}, fmt.Errorf("postgres: %s: %w", op, err)
	}
	var res store.LoginResult
	err := s.run(ctx, op, false, func() error {
		var err error
		res, err = s.writeLogin(ctx, in)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// As in UpsertIdentity: another call created the identity
			// after the upsert took its snapshot; the next run updates it.
			return errRetry
		case sqlState(err) == "23502" && in.Identity.NewUserID == "": // not_null_violation
			return fmt.Errorf("empty new user ID: %w", err)
		}
		return err
	})
	if err != nil {
		return store.LoginResult{}, err
	}
	return res, nil
}

func (s *Store) writeLogin(ctx context.Context, in store.LoginWrite) (store.LoginResult, error) {
	up, code, sess := in.Identity, in.Code, in.Session
	locked := up.UnionID != ""
	var b pgx.Batch
	b.Queue("BEGIN")
	if locked {
		b.Queue(lockUnionSQL, int32(unionLock), up.Family, up.UnionID)
	}
	b.Queue(upsertIdentitySQL, upsertArgs(up)...)
	b.Queue(putCodeSQL, codeArgs(code)...)
	b.Queue(loginSessionSQL, sess.ID, sess.App, up.Family, up.AppID, up.OpenID,
		sess.AccessHash, ts(sess.AccessExpiresAt), sess.RefreshHash, ts(sess.RefreshExpiresAt),
		ts(sess.CreatedAt), ts(sess.ExpiresAt), ts(sess.LastUsedAt), ts(sess.RevokedAt), int32(sess.DecryptFailures),
		text(sess.Origin))
	b.Queue(loginBlockedSQL, up.Family, up.AppID, up.OpenID)
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return store.LoginResult{}, err
	}
	defer c.Release()
	defer rollback(ctx, c) // after a failure; nothing to do after the commit
	br := c.SendBatch(ctx, &b)
	var (
		id      store.Identity
		created bool
	)
	_, err = br.Exec() // BEGIN
	if err == nil && locked {
		_, err = br.Exec()
	}
	if err == nil {
		id, err = scanIdentity(br.QueryRow(), &created)
	}
	if err == nil {
		_, err = br.Exec() // the code
	}
	if err == nil {
		var tag pgconn.CommandTag
		if tag, err = br.Exec(); err == nil && tag.RowsAffected() != 1 { // the session's refresh token
			err = fmt.Errorf("session not inserted (%d rows)", tag.RowsAffected())
		}
	}
	var blocked bool
	if err == nil {
		err = br.QueryRow().Scan(&blocked)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	sess.UserID, sess.UnionID = id.UserID, id.UnionID // as loginSessionSQL stores them
	res := store.LoginResult{Identity: id, Created: created, Session: sess, Blocked: blocked}
	if err != nil {
		return res, err
	}
	if in.Keep <= 0 {
		_, err = c.Exec(ctx, "COMMIT")
		return res, err
	}
	// The identity's row, locked by the upsert until the commit, orders
	// concurrent logins of one identity: each sees the sessions of those
	// before it.
	_, revoke, args := userRevocationSQL(in.CapRevocation(id))
	var end pgx.Batch
	end.Queue(revoke, args...)
	end.Queue("COMMIT")
	br = c.SendBatch(ctx, &end)
	tag, err := br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	res.Ended = int(tag.RowsAffected())
	return res, err
}

// upsertArgs are upsertIdentitySQL's parameters.
func upsertArgs(in store.IdentityUpsert) []any {
	return []any{in.Family, in.AppID, in.OpenID, text(in.UnionID), blob(in.SealedSessionKey),
		text(in.NewUserID), ts(trunc(in.Now)), ts(trunc(in.Now.Add(in.KeyGrace)))}
}

// upsertLocked runs upsertIdentitySQL with args under the advisory lock of
// (platform, unionID): BEGIN, the lock, the statement and COMMIT go in one
// batch. The lock is the transaction's, so the commit releases it. The
// statement runs once the lock is held, with a snapshot taken then, so it
// sees what the previous holder committed. It returns pgx.ErrNoRows when
// the statement lost the race to create the identity.
func (s *Store) upsertLocked(ctx context.Context, family platform.Family, unionID string, args []any) (store.Identity, bool, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return store.Identity{}, false, err
	}
	defer c.Release()
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(lockUnionSQL, int32(unionLock), family, unionID)
	b.Queue(upsertIdentitySQL, args...)
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, &b)
	var (
		id      store.Identity
		created bool
	)
	_, err = br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		id, err = scanIdentity(br.QueryRow(), &created)
	}
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		// The statement succeeded (with or without its row): commit.
		if _, cerr := br.Exec(); cerr != nil {
			err = cerr
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	rollback(ctx, c) // after a failure; nothing to do after the commit
	return id, created, err
}

// GetIdentity implements store.Users.
func (s *Store) GetIdentity(ctx context.Context, family platform.Family, appID, openID string) (store.Identity, error) {
	var id store.Identity
	err := s.run(ctx, "get identity", true, func() error {
		var err error
		id, err = scanIdentity(s.pool.QueryRow(ctx, getIdentitySQL, family, appID, openID))
		return err
	})
	if err != nil {
		return store.Identity{}, err
	}
	return id, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	err := s.run(ctx, "get user", true, func() error {
		var err error
		u, err = scanUser(s.pool.QueryRow(ctx, getUserSQL, id))
		return err
	})
	if err != nil {
		return store.User{}, err
	}
	return u, nil
}

// scanUser reads a row of userCols.
func scanUser(row pgx.Row) (store.User, error) {
	var (
		u                             store.User
		created, phoneAt, blockedAt   pgtype.Timestamptz
		phoneSrc, phoneApp, blockedBy pgtype.Text
	)
	err := row.Scan(&u.ID, &created, &u.Phone.Sealed, &u.Phone.Lookup, &phoneSrc, &phoneApp, &phoneAt,
		&u.Blocked, &blockedBy, &blockedAt)
	if err != nil {
		return store.User{}, err
	}
	u.CreatedAt = fromTS(created)
	u.Phone.Sealed, u.Phone.Lookup = none(u.Phone.Sealed), none(u.Phone.Lookup)
	u.Phone.Source, u.Phone.App = phoneSrc.String, phoneApp.String
	u.Phone.UpdatedAt = fromTS(phoneAt)
	u.BlockedReason, u.BlockedAt = blockedBy.String, fromTS(blockedAt)
	return u, nil
}

// SetPhone implements store.Users.
func (s *Store) SetPhone(ctx context.Context, userID string, p store.Phone) error {
	const op = "set phone"
	if len(p.Sealed) == 0 {
		return fmt.Errorf("postgres: %s: empty sealed number", op)
	}
	return s.run(ctx, op, false, func() error {
		tag, err := s.pool.Exec(ctx, setPhoneSQL, userID, p.Sealed, p.Source, p.App, ts(p.UpdatedAt), none(p.Lookup))
		if err == nil && tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return err
	})
}

// reserveAttemptSQL is ReserveDecryptAttempt in one statement: the
// conditional UPDATE decides (a concurrent one waits for the row and
// re-checks the condition), and when it changes nothing the SELECT reads
// the count, or nothing for an unknown identity.
const reserveAttemptSQL = `WITH upd AS (
		UPDATE identities SET decrypt_attempts = decrypt_attempts + 1
		WHERE platform = $1 AND app_id = $2 AND open_id = $3 AND decrypt_attempts < $4
		RETURNING decrypt_attempts
	)
	SELECT true, decrypt_attempts FROM upd
	UNION ALL
	SELECT false, decrypt_attempts FROM identities
	WHERE platform = $1 AND app_id = $2 AND open_id = $3 AND NOT EXISTS (SELECT FROM upd)`

// ReserveDecryptAttempt implements store.Users: one conditional
// UPDATE … RETURNING.
func (s *Store) ReserveDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string, max int) (int, bool, error) {
	var (
		ok bool
		n  int32
	)
	err := s.run(ctx, "reserve decrypt attempt", false, func() error {
		return s.pool.QueryRow(ctx, reserveAttemptSQL, family, appID, openID, int32(max)).Scan(&ok, &n) // pgx.ErrNoRows: unknown identity
	})
	if err != nil {
		return 0, false, err
	}
	return int(n), ok, nil
}

const releaseAttemptSQL = `UPDATE identities SET decrypt_attempts = greatest(decrypt_attempts - 1, 0)
	WHERE platform = $1 AND app_id = $2 AND open_id = $3`

// ReleaseDecryptAttempt implements store.Users: one UPDATE.
func (s *Store) ReleaseDecryptAttempt(ctx context.Context, family platform.Family, appID, openID string) error {
	return s.run(ctx, "release decrypt attempt", false, func() error {
		tag, err := s.pool.Exec(ctx, releaseAttemptSQL, family, appID, openID)
		if err == nil && tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return err
	})
}
