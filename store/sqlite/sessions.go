package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mplogin/mplogin/store"
)

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	const op = "create session"
	if err := checkSession(sess); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.inPlainTx(ctx, op, func(ctx context.Context, tx wtx) error { return insertSession(ctx, tx, sess) })
}

func checkSession(sess store.Session) error {
	if sess.ID == "" || len(sess.AccessHash) == 0 || len(sess.RefreshHash) == 0 {
		return errors.New("empty ID, access hash or refresh hash")
	}
	return nil
}

func insertSession(ctx context.Context, tx wtx, sess store.Session) error {
	_, err := tx.insertSession.ExecContext(ctx,
		sess.ID, sess.UserID, sess.App, sess.Family, sess.AppID, sess.OpenID,
		sess.AccessHash, micros(sess.AccessExpiresAt),
		sess.RefreshHash, micros(sess.RefreshExpiresAt),
		micros(sess.CreatedAt), micros(sess.ExpiresAt),
		micros(sess.LastUsedAt), micros(sess.RevokedAt), sess.DecryptFailures, sess.UnionID,
		sess.Origin)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

// WriteLogin implements store.Store: the identity, the code, the
// session and the cap on the identity's sessions in one write of one batch,
// so a login waits for one commit. The cap's revocations are not waited for
// to be durable: a power loss that undid one would leave a session past the
// cap, not a logout undone.
func (s *Store) WriteLogin(ctx context.Context, in store.LoginWrite) (store.LoginResult, error) {
	const op = "write login"
	if err := in.Check(); err != nil {
		return store.LoginResult{}, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if s.codes != nil {
		s.codes.add(in.Code.Hash, in.Code.ExpiresAt)
	}
	var (
		res   store.LoginResult
		ended []string
	)
	// Plain: past Check above, only the database makes it fail (or a new
	// identity without NewUserID, which costs its batch a second run).
	w := &writeOp{ctx: ctx, done: make(chan error, 1), plain: true, after: func() { s.dropAllCached(ended) }}
	w.fn = func(ctx context.Context, tx wtx) error {
		ended = ended[:0] // a batch that runs again runs this again
		id, created, blocked, err := upsertIdentity(ctx, tx, in.Identity)
		if err != nil {
			return err
		}
		sess := in.Session
		sess.UserID, sess.UnionID = id.UserID, id.UnionID
		if in.Seal != nil {
			if err := in.Seal(&sess); err != nil {
				return err
			}
		}
		res = store.LoginResult{Identity: id, Created: created, Session: sess, Blocked: blocked}
		if err := putCode(ctx, tx, in.Code); err != nil {
			return err
		}
		if err := insertSession(ctx, tx, sess); err != nil {
			return err
		}
		if in.Keep <= 0 {
			return nil
		}
		args, _ := revokeUserArgs(in.CapRevocation(id))
		if over, err := overCap(ctx, tx.someRotatable, args, in.Keep); err != nil || !over {
			return err
		}
		return revokeRows(ctx, tx.revokeAllBut, args, &ended)
	}
	// res and ended are the write's until it has answered.
	if err := s.write1(ctx, op, w); err != nil {
		return store.LoginResult{}, err
	}
	res.Ended = len(ended)
	return res, nil
}

// SessionByAccess implements store.Sessions.
func (s *Store) SessionByAccess(ctx context.Context, accessHash []byte) (store.Session, error) {
	var epoch uint64
	if s.cache != nil {
		if err := s.answerable(ctx); err != nil {
			return store.Session{}, s.fail(ctx, "session by access", err)
		}
		sess, e, ok := s.cache.get(accessHash)
		if ok {
			return sess, nil
		}
		epoch = e
	}
	sess, err := scanSession(s.r.sessionByAccess.QueryRowContext(ctx, accessHash))
	if err != nil {
		return store.Session{}, s.fail(ctx, "session by access", err)
	}
	if s.cache != nil {
		s.cache.put(sess, epoch)
	}
	return sess, nil
}

// answerable is what a query would fail with before reading anything (a
// done context, a closed store), for reads answered from memory.
func (s *Store) answerable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return sql.ErrConnDone
	}
	return nil
}

// dropCached forgets a session changed by a write that has committed.
func (s *Store) dropCached(id string) {
	if s.cache != nil && id != "" {
		s.cache.drop(id)
	}
}

// SessionForLogout implements store.Sessions, with a read of the
// database: the cache knows only current access hashes.
func (s *Store) SessionForLogout(ctx context.Context, accessHash []byte) (store.Session, error) {
	sess, err := scanSession(s.r.sessionLogout.QueryRowContext(ctx, accessHash))
	if err != nil {
		return store.Session{}, s.fail(ctx, "session for logout", err)
	}
	return sess, nil
}

// SessionByID implements store.Sessions.
func (s *Store) SessionByID(ctx context.Context, id string) (store.Session, error) {
	sess, err := scanSession(s.r.sessionByID.QueryRowContext(ctx, id))
	if err != nil {
		return store.Session{}, s.fail(ctx, "session by id", err)
	}
	return sess, nil
}

// SessionByRefresh implements store.Sessions, with a read of the
// database: the cache is keyed by access hashes.
func (s *Store) SessionByRefresh(ctx context.Context, refreshHash []byte) (store.Session, error) {
	sess, err := scanSession(s.r.sessionRefresh.QueryRowContext(ctx, refreshHash))
	if err != nil {
		return store.Session{}, s.fail(ctx, "session by refresh", err)
	}
	return sess, nil
}

// RotateRefresh implements store.Sessions. It runs as one IMMEDIATE
// transaction on the single writer connection: of concurrent rotations of a
// token the first spends it and every later one finds it spent.
func (s *Store) RotateRefresh(ctx context.Context, r store.Rotation) (store.Session, error) {
	const op = "rotate refresh"
	if len(r.NewAccessHash) == 0 || len(r.NewRefreshHash) == 0 {
		return store.Session{}, fmt.Errorf("sqlite: %s: empty new access or refresh hash", op)
	}
	var sess store.Session
	var id string // of the session rotated or revoked
	// A replay's revocation is answered once on disk (durable.go); a
	// repeat within the grace changes nothing, so it is neither kept nor
	// synced.
	err := s.write1(ctx, op, &writeOp{ctx: ctx, done: make(chan error, 1), durable: reused,
		fn: func(ctx context.Context, tx wtx) error {
			var err error
			sess, id, err = rotate(ctx, tx, r)
			return err
		},
		after: func() { s.dropCached(id) }})
	// These two come with the session (and only from fn, so sess is set).
	if err != nil && !errors.Is(err, store.ErrReused) && !errors.Is(err, store.ErrRecentlySpent) {
		return store.Session{}, err
	}
	return sess, err
}

func rotate(ctx context.Context, tx wtx, r store.Rotation) (_ store.Session, id string, _ error) {
	now := trunc(r.Now)
	var (
		spent     bool
		successor []byte // the last rotation's, when it spent this token
		until     sql.NullInt64
	)
	sess, err := scanSession(tx.refreshSession.QueryRowContext(ctx, r.OldRefreshHash),
		&spent, &successor, &until)
	if err != nil {
		return store.Session{}, "", err // sql.ErrNoRows: unknown token
	}
	id = sess.ID
	if spent {
		if len(successor) > 0 && now.Before(fromMicros(until)) && rotatable(sess, now) {
			// A repeat of the token just spent (a client that lost the
			// answer, or concurrent refreshes): the successor, and nothing
			// changes.
			sess.Successor = successor
			return sess, id, store.ErrRecentlySpent
		}
		// A replay: revoke the session (keeping an earlier revocation time).
		if _, err := tx.revokeSession.ExecContext(ctx, micros(now), sess.ID); err != nil {
			return store.Session{}, id, fmt.Errorf("revoke session: %w", err)
		}
		if sess.RevokedAt.IsZero() {
			sess.RevokedAt = now
		}
		return sess, id, store.ErrReused
	}
	if !rotatable(sess, now) {
		return store.Session{}, id, store.ErrNotFound
	}

	if _, err := tx.spendRefresh.ExecContext(ctx, r.OldRefreshHash, sess.ID); err != nil {
		return store.Session{}, id, fmt.Errorf("spend refresh token: %w", err)
	}
	// Copies: the caller's slices must not alias what it gets back.
	sess.AccessHash = bytes.Clone(r.NewAccessHash)
	sess.AccessExpiresAt = trunc(r.AccessExpiresAt)
	sess.RefreshHash = bytes.Clone(r.NewRefreshHash)
	sess.RefreshExpiresAt = trunc(r.RefreshExpiresAt)
	sess.LastUsedAt = now
	var lastSpent, lastUntil any // NULL with no successor
	if len(r.Successor) > 0 {
		lastSpent, lastUntil = r.OldRefreshHash, micros(r.SuccessorUntil)
	}
	_, err = tx.rotateSession.ExecContext(ctx,
		sess.AccessHash, micros(sess.AccessExpiresAt),
		sess.RefreshHash, micros(sess.RefreshExpiresAt),
		micros(sess.LastUsedAt), lastSpent, blob(r.Successor), lastUntil, sess.ID)
	if err != nil {
		return store.Session{}, id, fmt.Errorf("update session: %w", err)
	}
	return sess, id, nil
}

// rotatable reports whether the session's current refresh token may be
// spent at now: not revoked, refresh token not expired, session not ended.
func rotatable(sess store.Session, now time.Time) bool {
	return sess.RevokedAt.IsZero() &&
		now.Before(sess.RefreshExpiresAt) &&
		(sess.ExpiresAt.IsZero() || now.Before(sess.ExpiresAt))
}

// RevokeSession implements store.Sessions. It returns once the revocation
// is on disk (durable.go), even when the session was already revoked: an
// earlier revocation may still be on its way there.
func (s *Store) RevokeSession(ctx context.Context, id string, now time.Time) error {
	return s.write1(ctx, "revoke session", s.revokeSessionOp(ctx, id, now))
}

// revokeSessionOp is RevokeSession's write.
func (s *Store) revokeSessionOp(ctx context.Context, id string, now time.Time) *writeOp {
	return &writeOp{ctx: ctx, done: make(chan error, 1), plain: true, durable: always,
		fn: func(ctx context.Context, tx wtx) error {
			_, err := tx.revokeSession.ExecContext(ctx, micros(now), id)
			return err
		},
		after: func() { s.dropCached(id) }}
}

// RevokeUserSessions implements store.Sessions. Like RevokeSession, it
// returns once the revocations are on disk (durable.go), except with
// r.Keep: the cap ends sessions to bound what an identity holds, not
// because anyone asked, and one that a power loss brings back is ended by
// the identity's next login. A login does not wait for a disk sync.
//
// With r.Keep (the cap after a login that WriteLogin did not write), it
// first counts the matching rotatable sessions on the read pool, through
// sessions_by_user and no further than Keep + 1, and takes the writer
// only when there are more than Keep; the writer then decides again, under
// the write lock, which to revoke. A session committed after that count is
// caught by the cap of its own login.
func (s *Store) RevokeUserSessions(ctx context.Context, r store.UserRevocation) (int, error) {
	const op = "revoke user sessions"
	args, keep := revokeUserArgs(r)
	durable := always
	if keep {
		// A read on the read pool first: the cap is nearly always within
		// its limit, and then costs no write.
		over, err := overCap(ctx, s.r.someRotatable, args, r.Keep)
		if err != nil {
			return 0, s.fail(ctx, op, err)
		}
		if !over {
			return 0, nil
		}
		durable = nil // see WriteLogin
	}
	var ids []string
	err := s.write1(ctx, op, &writeOp{ctx: ctx, done: make(chan error, 1), plain: true, durable: durable,
		fn: func(ctx context.Context, tx wtx) error {
			ids = ids[:0] // a batch that runs again runs this again
			stmt := tx.revokeUser
			if keep {
				stmt = tx.revokeAllBut
			}
			return revokeRows(ctx, stmt, args, &ids)
		},
		after: func() { s.dropAllCached(ids) }})
	// ids is the write's until it has answered.
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

// revokeUserArgs are the arguments of revokeUserSessionsSQL for r, or,
// when keep, those of revokeAllButSQL.
func revokeUserArgs(r store.UserRevocation) (args []any, keep bool) {
	args = []any{micros(r.Now), r.UserID, r.OpenID, r.Family, r.AppID, r.Origin}
	if r.Keep <= 0 {
		return args, false
	}
	return append(args, trunc(r.Now).UnixMicro(), r.Keep), true
}

// overCap reports, with count (someRotatableSQL), whether there are more
// than keep of the sessions that revokeAllButSQL with args revokes all but
// keep of. Nearly every login is within its cap, and the count is cheaper
// than a revocation that finds nothing.
func overCap(ctx context.Context, count *sql.Stmt, args []any, keep int) (bool, error) {
	var n int
	over := append(args[:len(args)-1:len(args)-1], keep+1)
	if err := count.QueryRowContext(ctx, over...).Scan(&n); err != nil {
		return false, fmt.Errorf("count sessions: %w", err)
	}
	return n > keep, nil
}

// revokeRows runs a revocation that returns the ids it revoked, and
// appends them to ids.
func revokeRows(ctx context.Context, stmt *sql.Stmt, args []any, ids *[]string) error {
	rows, err := stmt.QueryContext(ctx, args...)
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

// AddDecryptFailure implements store.Sessions: the one UPDATE counts and
// returns the count.
func (s *Store) AddDecryptFailure(ctx context.Context, sessionID string) (int, error) {
	const op = "add decrypt failure"
	var (
		n     int
		found bool
	)
	// Plain: an unknown session is an answer, not a failure of the batch.
	err := s.write1(ctx, op, &writeOp{ctx: ctx, done: make(chan error, 1), plain: true,
		fn: func(ctx context.Context, tx wtx) error {
			err := tx.decryptFailure.QueryRowContext(ctx, sessionID).Scan(&n)
			found = err == nil
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		},
		after: func() { s.dropCached(sessionID) }})
	if err == nil && !found {
		err = s.fail(ctx, op, sql.ErrNoRows)
	}
	if err != nil {
		return 0, err
	}
	return n, nil
}

// PutCode implements store.Sessions.
func (s *Store) PutCode(ctx context.Context, c store.ExchangedCode) error {
	const op = "put code"
	if len(c.Hash) == 0 {
		return fmt.Errorf("sqlite: %s: empty hash", op)
	}
	if s.codes != nil {
		s.codes.add(c.Hash, c.ExpiresAt)
	}
	// Through the batcher, so that a login's code shares the commit of its
	// session and identity with the other logins in flight.
	return s.inPlainTx(ctx, op, func(ctx context.Context, tx wtx) error { return putCode(ctx, tx, c) })
}

func putCode(ctx context.Context, tx wtx, c store.ExchangedCode) error {
	_, err := tx.putCode.ExecContext(ctx, c.Hash, c.App, c.Family, c.AppID, c.OpenID,
		micros(c.ExpiresAt), c.SessionID, micros(c.ReplayUntil), c.Replays)
	if err != nil {
		return fmt.Errorf("put code: %w", err)
	}
	return nil
}

// GetCode implements store.Sessions.
func (s *Store) GetCode(ctx context.Context, hash []byte, now time.Time) (store.ExchangedCode, error) {
	const op = "get code"
	if err := s.codeUnknown(ctx, hash, now); err != nil {
		return store.ExchangedCode{}, s.fail(ctx, op, err)
	}
	c, err := scanCode(s.r.getCode.QueryRowContext(ctx, hash, trunc(now).UnixMicro()))
	if err != nil {
		return store.ExchangedCode{}, s.fail(ctx, op, err)
	}
	return c, nil
}

// codeUnknown is sql.ErrNoRows when the code filter knows hash was never
// stored (or what a query would fail with first), so that no query is
// needed; nil when a query must tell.
func (s *Store) codeUnknown(ctx context.Context, hash []byte, now time.Time) error {
	if s.codes == nil || s.codes.mayHold(hash, now) {
		return nil
	}
	if err := s.answerable(ctx); err != nil {
		return err
	}
	return sql.ErrNoRows
}

// ClaimReplay implements store.Sessions, through the writer: one UPDATE
// checks and increments; when it changes nothing, a read in the same
// transaction tells a refused code from an unknown one.
func (s *Store) ClaimReplay(ctx context.Context, hash []byte, now time.Time, max int) (store.ExchangedCode, error) {
	const op = "claim replay"
	if err := s.codeUnknown(ctx, hash, now); err != nil {
		return store.ExchangedCode{}, s.fail(ctx, op, err)
	}
	t := trunc(now).UnixMicro()
	var c store.ExchangedCode
	err := s.inTx(ctx, op, func(ctx context.Context, tx wtx) error {
		var err error
		c, err = scanCode(tx.claimReplay.QueryRowContext(ctx, hash, t, max))
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if c, err = scanCode(tx.getCode.QueryRowContext(ctx, hash, t)); err != nil {
			return err // sql.ErrNoRows: unknown or expired
		}
		return store.ErrReplayRefused
	})
	// A refused code comes with the error (and only from fn, so c is set).
	if err != nil && !errors.Is(err, store.ErrReplayRefused) {
		return store.ExchangedCode{}, err
	}
	return c, err
}

func scanCode(row scanner) (store.ExchangedCode, error) {
	var (
		c          store.ExchangedCode
		exp, until sql.NullInt64
	)
	err := row.Scan(&c.Hash, &c.App, &c.Family, &c.AppID, &c.OpenID, &exp, &c.SessionID, &until, &c.Replays)
	if err != nil {
		return store.ExchangedCode{}, err
	}
	c.ExpiresAt = fromMicros(exp)
	c.ReplayUntil = fromMicros(until)
	return c, nil
}

// loadCodes fills the code filter with the codes already stored, expired
// or not: GetCode compares expiries itself.
func (s *Store) loadCodes(ctx context.Context) error {
	rows, err := s.read.QueryContext(ctx, "SELECT hash, expires_at FROM codes WHERE expires_at IS NOT NULL")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			hash []byte
			exp  int64
		)
		if err := rows.Scan(&hash, &exp); err != nil {
			return err
		}
		s.codes.add(hash, time.UnixMicro(exp))
	}
	return rows.Err()
}

// DeleteExpired implements store.Sessions, in one transaction.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	t := trunc(now).UnixMicro()
	total := 0
	// Codes, then sessions (their spent refresh tokens go by ON DELETE
	// CASCADE, uncounted), a chunk per transaction: one transaction over
	// hundreds of thousands of rows would stall every login behind the
	// single writer.
	// Dead rows sit at random pages, so a chunk costs about as much as the
	// logins that wrote them; after each one the sweep rests as long as the
	// chunk took, leaving the writer at least half its time for logins.
	for _, step := range []struct {
		name string
		stmt func(wtx) *sql.Stmt
	}{
		{"codes", func(tx wtx) *sql.Stmt { return tx.deleteCodes }},
		{"sessions", func(tx wtx) *sql.Stmt { return tx.deleteSessions }},
	} {
		for {
			began := time.Now()
			var after func()
			if s.cache != nil && step.name == "sessions" {
				after = s.cache.dropAll
			}
			n, err := s.affected(ctx, "delete expired "+step.name, after, func(ctx context.Context, tx wtx) (sql.Result, error) {
				return step.stmt(tx).ExecContext(ctx, t, deleteChunk)
			})
			if err != nil {
				return total, err
			}
			total += int(n)
			if n < deleteChunk {
				break
			}
			if err := rest(ctx, time.Since(began)); err != nil {
				return total, s.fail(ctx, "delete expired "+step.name, err)
			}
		}
	}
	n, err := s.pruneChanges(ctx)
	if err != nil {
		return total, err
	}
	s.log.Debug("sqlite: pruned session changes", "changes", n)
	return total, nil
}

// deleteChunk bounds the rows one DeleteExpired transaction removes: a
// batch holding a chunk takes a few milliseconds longer for its logins.
const deleteChunk = 200

// rest waits for d, or until ctx ends.
func rest(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scanSession scans sessionCols, after the destinations in first.
func scanSession(row scanner, first ...any) (store.Session, error) {
	var (
		s                              store.Session
		accessExp, refreshExp, created sql.NullInt64
		expires, lastUsed, revoked     sql.NullInt64
	)
	dest := append(first,
		&s.ID, &s.UserID, &s.App, &s.Family, &s.AppID, &s.OpenID,
		&s.AccessHash, &accessExp, &s.RefreshHash, &refreshExp,
		&created, &expires, &lastUsed, &revoked, &s.DecryptFailures, &s.UnionID, &s.Origin)
	if err := row.Scan(dest...); err != nil {
		return store.Session{}, err
	}
	s.AccessHash = none(s.AccessHash)
	s.RefreshHash = none(s.RefreshHash)
	s.AccessExpiresAt = fromMicros(accessExp)
	s.RefreshExpiresAt = fromMicros(refreshExp)
	s.CreatedAt = fromMicros(created)
	s.ExpiresAt = fromMicros(expires)
	s.LastUsedAt = fromMicros(lastUsed)
	s.RevokedAt = fromMicros(revoked)
	return s, nil
}
