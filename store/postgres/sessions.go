package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mplogin/mplogin/store"
)

// CreateSession implements store.Sessions: the session and its first
// refresh token in one statement.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	const op = "create session"
	if sess.ID == "" || len(sess.AccessHash) == 0 || len(sess.RefreshHash) == 0 {
		return fmt.Errorf("postgres: %s: empty ID, access hash or refresh hash", op)
	}
	return s.run(ctx, op, false, func() error {
		_, err := s.pool.Exec(ctx, createSessionSQL,
			sess.ID, sess.UserID, sess.App, sess.Family, sess.AppID, sess.OpenID,
			sess.AccessHash, ts(sess.AccessExpiresAt),
			sess.RefreshHash, ts(sess.RefreshExpiresAt),
			ts(sess.CreatedAt), ts(sess.ExpiresAt),
			ts(sess.LastUsedAt), ts(sess.RevokedAt), int32(sess.DecryptFailures), sess.UnionID,
			text(sess.Origin))
		return err
	})
}

// SessionByAccess implements store.Sessions.
func (s *Store) SessionByAccess(ctx context.Context, accessHash []byte) (store.Session, error) {
	var sess store.Session
	err := s.run(ctx, "session by access", true, func() error {
		var err error
		sess, err = scanSession(s.pool.QueryRow(ctx, sessionByAccessSQL, accessHash))
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	return sess, nil
}

// SessionForLogout implements store.Sessions.
func (s *Store) SessionForLogout(ctx context.Context, accessHash []byte) (store.Session, error) {
	var sess store.Session
	err := s.run(ctx, "session for logout", true, func() error {
		var err error
		sess, err = scanSession(s.pool.QueryRow(ctx, sessionForLogoutSQL, accessHash))
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	return sess, nil
}

// SessionByID implements store.Sessions.
func (s *Store) SessionByID(ctx context.Context, id string) (store.Session, error) {
	var sess store.Session
	err := s.run(ctx, "session by id", true, func() error {
		var err error
		sess, err = scanSession(s.pool.QueryRow(ctx, sessionByIDSQL, id))
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	return sess, nil
}

// SessionByRefresh implements store.Sessions.
func (s *Store) SessionByRefresh(ctx context.Context, refreshHash []byte) (store.Session, error) {
	var sess store.Session
	err := s.run(ctx, "session by refresh", true, func() error {
		var err error
		sess, err = scanSession(s.pool.QueryRow(ctx, sessionByRefreshSQL, refreshHash))
		return err
	})
	if err != nil {
		return store.Session{}, err
	}
	return sess, nil
}

// RotateRefresh implements store.Sessions in one transaction: lock the
// session and the token's row (SELECT … FOR UPDATE), decide, write, commit.
// Concurrent rotations of a token queue on the lock; the first spends the
// token, and each later one finds it spent: with the first's successor
// still current, it changes nothing and returns store.ErrRecentlySpent;
// otherwise it revokes the session and commits that before returning
// store.ErrReused.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.Session, error) {
	const op = "rotate refresh"
	if len(r.NewAccessHash) == 0 || len(r.NewRefreshHash) == 0 {
		return store.Session{}, fmt.Errorf("postgres: %s: empty new access or refresh hash", op)
	}
	var sess store.Session
	err := s.run(ctx, op, false, func() error {
		var err error
		sess, err = s.rotate(ctx, r)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrReused) && !errors.Is(err, store.ErrRecentlySpent) {
		return store.Session{}, err
	}
	return sess, err
}

func (s *Store) rotate(ctx context.Context, r store.Rotation) (store.Session, error) {
	now := trunc(r.Now)
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return store.Session{}, err
	}
	// The pool closes, rather than reuses, a connection left inside a
	// transaction, should any path below fail to end it.
	defer c.Release()

	// BEGIN travels with the locking read: one round trip.
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(lockRefreshSQL, r.OldRefreshHash)
	br := c.SendBatch(ctx, &b)
	_, err = br.Exec()
	var (
		spent, last bool
		successor   []byte
		until       pgtype.Timestamptz
		cur         store.Session
	)
	if err == nil {
		cur, err = scanSession(br.QueryRow(), &spent, &last, &successor, &until)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case err == nil && spent && last && len(successor) > 0 && now.Before(fromTS(until)) && rotatable(cur, now):
		// The token the last rotation spent, again within its grace (a
		// client that lost the answer, or raced itself): that rotation's
		// successor, and nothing changes.
		rollback(ctx, c)
		cur.Successor = successor
		return cur, store.ErrRecentlySpent
	case err == nil && spent && !cur.RevokedAt.IsZero():
		// Already revoked: the first revocation time stays.
		rollback(ctx, c)
		return cur, store.ErrReused
	case err == nil && spent:
		// A replay: revoke the session, and commit that before reporting
		// the reuse. The row is locked, so it is cur with the revocation.
		if err := commitWith(ctx, c, nil, revokeSessionSQL, cur.ID, ts(now)); err != nil {
			return store.Session{}, err
		}
		cur.RevokedAt = now
		return cur, store.ErrReused
	case err == nil && !rotatable(cur, now):
		err = store.ErrNotFound
	case err == nil:
		var got store.Session
		scan := func(row pgx.Row) (err error) {
			got, err = scanSession(row)
			return err
		}
		err := commitWith(ctx, c, scan, rotateSQL, r.OldRefreshHash, cur.ID, r.NewAccessHash,
			r.NewRefreshHash, ts(r.RefreshExpiresAt), ts(r.AccessExpiresAt), ts(now),
			blob(r.Successor), ts(r.SuccessorUntil))
		if err != nil {
			return store.Session{}, err
		}
		return got, nil
	}
	// Nothing to write (unknown token: pgx.ErrNoRows), or a failure.
	rollback(ctx, c)
	return store.Session{}, err
}

// commitWith runs one statement in c's transaction and commits, in one
// round trip. When scan is not nil, the statement's one row is passed to it.
// On failure the transaction is rolled back.
func commitWith(ctx context.Context, c *pgxpool.Conn, scan func(pgx.Row) error, query string, args ...any) error {
	var b pgx.Batch
	b.Queue(query, args...)
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, &b)
	var err error
	if scan != nil {
		err = scan(br.QueryRow())
	} else {
		_, err = br.Exec()
	}
	if err == nil {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && tag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rollback(ctx, c)
	}
	return err
}

// rollback ends c's transaction, if it is still in one. Should that fail,
// the connection is closed, and the server rolls back.
func rollback(ctx context.Context, c *pgxpool.Conn) {
	if c.Conn().IsClosed() || c.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	// Even for a caller that gave up: the connection goes back to the pool.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, err := c.Exec(rctx, "ROLLBACK"); err != nil {
		_ = c.Conn().Close(rctx)
	}
}

// rotatable reports whether the session's current refresh token may be
// spent at now: not revoked, refresh token not expired, session not ended.
func rotatable(sess store.Session, now time.Time) bool {
	return sess.RevokedAt.IsZero() &&
		now.Before(sess.RefreshExpiresAt) &&
		(sess.ExpiresAt.IsZero() || now.Before(sess.ExpiresAt))
}

// RevokeSession implements store.Sessions.
func (s *Store) RevokeSession(ctx context.Context, id string, now time.Time) error {
	return s.run(ctx, "revoke session", false, func() error {
		_, err := s.pool.Exec(ctx, revokeSessionSQL, id, ts(now))
		return err
	})
}

// RevokeUserSessions implements store.Sessions: one UPDATE. With r.Keep, a
// read of the index sessions_identity_live comes first, and the UPDATE
// runs only when more than r.Keep matching sessions are live: the cap,
// checked after every login, is nearly always within its limit, and then
// costs one indexed read and no write. A retry after a lost connection
// counts only what it revoked itself.
func (s *Store) RevokeUserSessions(ctx context.Context, r store.UserRevocation) (int, error) {
	const op = "revoke user sessions"
	count, revoke, args := userRevocationSQL(r)
	if count != "" {
		var over bool
		err := s.run(ctx, op, true, func() error {
			return s.pool.QueryRow(ctx, count, args...).Scan(&over)
		})
		if err != nil || !over {
			return 0, err
		}
	}
	var n int64
	err := s.run(ctx, op, false, func() error {
		tag, err := s.pool.Exec(ctx, revoke, args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// AddDecryptFailure implements store.Sessions: one UPDATE … RETURNING.
func (s *Store) AddDecryptFailure(ctx context.Context, sessionID string) (int, error) {
	var n int32
	err := s.run(ctx, "add decrypt failure", false, func() error {
		return s.pool.QueryRow(ctx, addDecryptFailureSQL, sessionID).Scan(&n) // pgx.ErrNoRows: unknown session
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// PutCode implements store.Sessions.
func (s *Store) PutCode(ctx context.Context, c store.ExchangedCode) error {
	const op = "put code"
	if len(c.Hash) == 0 {
		return fmt.Errorf("postgres: %s: empty hash", op)
	}
	return s.run(ctx, op, false, func() error {
		_, err := s.pool.Exec(ctx, putCodeSQL, codeArgs(c)...)
		return err
	})
}

// GetCode implements store.Sessions.
func (s *Store) GetCode(ctx context.Context, hash []byte, now time.Time) (store.ExchangedCode, error) {
	var c store.ExchangedCode
	err := s.run(ctx, "get code", true, func() error {
		var err error
		c, err = scanCode(s.pool.QueryRow(ctx, getCodeSQL, hash, ts(trunc(now))))
		return err
	})
	if err != nil {
		return store.ExchangedCode{}, err
	}
	return c, nil
}

// ClaimReplay implements store.Sessions: one conditional UPDATE … RETURNING
// (claimReplaySQL).
func (s *Store) ClaimReplay(ctx context.Context, hash []byte, now time.Time, max int) (store.ExchangedCode, error) {
	var (
		c  store.ExchangedCode
		ok bool
	)
	err := s.run(ctx, "claim replay", false, func() error {
		var err error
		c, err = scanCode(s.pool.QueryRow(ctx, claimReplaySQL, hash, ts(trunc(now)), int32(min(max, 1<<30))), &ok)
		return err // pgx.ErrNoRows: unknown or expired
	})
	switch {
	case err != nil:
		return store.ExchangedCode{}, err
	case !ok:
		return c, fmt.Errorf("postgres: claim replay: %w", store.ErrReplayRefused)
	}
	return c, nil
}

// DeleteExpired implements store.Sessions: codes, then sessions (their
// refresh tokens go by ON DELETE CASCADE, uncounted), deleteChunk rows a
// statement, each its own short transaction, so that a large sweep never
// holds many row locks or one long transaction.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	t := ts(trunc(now))
	total := 0
	for _, step := range []struct{ name, sql string }{
		{"codes", deleteCodesSQL},
		{"sessions", deleteSessionsSQL},
	} {
		for {
			var n int64
			err := s.run(ctx, "delete expired "+step.name, false, func() error {
				tag, err := s.pool.Exec(ctx, step.sql, t, deleteChunk)
				n = tag.RowsAffected()
				return err
			})
			if err != nil {
				return total, err
			}
			total += int(n)
			if n < deleteChunk {
				break
			}
		}
	}
	return total, nil
}
