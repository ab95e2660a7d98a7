package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Statements are prepared once at Open: the login path runs them thousands
// of times a second, and SQLite's parse and plan cost would otherwise be paid
// on every call.

const (
	identityCols = `platform, app_id, open_id, union_id, user_id, session_key,
		prev_session_key, prev_key_expires_at, created_at, updated_at`
	sessionCols = `id, user_id, app, platform, app_id, open_id, access_hash,
		access_expires_at, refresh_hash, refresh_expires_at, created_at,
		expires_at, last_used_at, revoked_at, decrypt_failures, union_id, origin`
	codeCols = `hash, app, platform, app_id, open_id, expires_at, session_id,
		replay_until, replays`
	tokenCols = `cache_key, sealed, expires_at, refresh_at`

	getIdentitySQL = `SELECT ` + identityCols + ` FROM identities
		WHERE platform = ? AND app_id = ? AND open_id = ?`
	// The oldest identity carrying the unionid decides, should several users
	// carry it (an identity may record it after its user was created).
	unionUserSQL = `SELECT user_id FROM identities
		WHERE platform = ? AND union_id = ?
		ORDER BY created_at, app_id, open_id LIMIT 1`
	insertUserSQL = `INSERT INTO users (id, created_at) VALUES (?, ?)`
	userCols      = `id, created_at, phone, phone_lookup, phone_source, phone_app,
		phone_updated_at, blocked, blocked_reason, blocked_at`
	getUserSQL  = `SELECT ` + userCols + ` FROM users WHERE id = ?`
	setPhoneSQL = `UPDATE users SET phone = ?, phone_lookup = ?, phone_source = ?, phone_app = ?,
		phone_updated_at = ? WHERE id = ?`
	insertIdentitySQL = `INSERT INTO identities (` + identityCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// An identity's update in one statement, which returns the row as
	// updated and its user's block. A new session key (?1, NULL for none)
	// keeps the one it replaces for the grace period (until ?2) and resets
	// the decryption attempts. The right-hand sides read the row as it was.
	// The unionid is not among the columns set, even to itself: SQLite
	// rewrites an index entry of every column a SET names, changed or not,
	// and identities_union would cost a login one more random page written.
	// setUnionIDSQL records it, the one time it is new.
	updateIdentitySQL = `UPDATE identities
		SET prev_session_key = CASE WHEN ?1 IS NOT NULL AND session_key IS NOT NULL AND session_key <> ?1
				THEN session_key ELSE prev_session_key END,
			prev_key_expires_at = CASE WHEN ?1 IS NOT NULL AND session_key IS NOT NULL AND session_key <> ?1
				THEN ?2 ELSE prev_key_expires_at END,
			decrypt_attempts = CASE WHEN ?1 IS NOT NULL AND session_key IS NOT ?1
				THEN 0 ELSE decrypt_attempts END,
			session_key = coalesce(?1, session_key),
			updated_at = ?3
		WHERE platform = ?4 AND app_id = ?5 AND open_id = ?6
		RETURNING ` + identityCols + `,
			EXISTS (` + blockedUserSQL + `identities.user_id)`
	// The unionid is recorded only where none is.
	setUnionIDSQL = `UPDATE identities SET union_id = ?
		WHERE platform = ? AND app_id = ? AND open_id = ? AND union_id IS NULL`
	// Whether a user is blocked, through the index of blocked users.
	blockedUserSQL = `SELECT 1 FROM users INDEXED BY users_blocked WHERE blocked AND id = `
	userBlockedSQL = `SELECT EXISTS (` + blockedUserSQL + `?)`

	insertSessionSQL = `INSERT INTO sessions (` + sessionCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sessionByAccessSQL = `SELECT ` + sessionCols + ` FROM sessions WHERE access_hash = ?`
	sessionByIDSQL     = `SELECT ` + sessionCols + ` FROM sessions WHERE id = ?`
	// The current refresh token only, by its unique index.
	sessionByRefreshSQL = `SELECT ` + sessionCols + ` FROM sessions WHERE refresh_hash = ?`
	// By the current access hash, else the previous one; both by index.
	sessionForLogoutSQL = `SELECT ` + sessionCols + ` FROM sessions WHERE access_hash = ?1
		UNION ALL
		SELECT ` + sessionCols + ` FROM sessions WHERE prev_access_hash = ?1
		LIMIT 1`
	// The current refresh token is the session's; a spent one is in
	// spent_refresh, and comes with the last rotation's successor when that
	// rotation spent it. Both lookups are by index; at most one row comes
	// back.
	refreshSessionSQL = `SELECT 0, NULL, NULL, ` + sessionCols + ` FROM sessions WHERE refresh_hash = ?1
		UNION ALL
		SELECT 1, CASE WHEN last_spent_hash = ?1 THEN successor END, successor_until, ` + sessionCols + `
			FROM sessions WHERE id = (SELECT session_id FROM spent_refresh WHERE hash = ?1)`
	spendRefreshSQL = `INSERT INTO spent_refresh (hash, session_id) VALUES (?, ?)`
	// The access hash replaced becomes the previous one (the right-hand
	// side reads the row as it was). The successor replaces the previous
	// rotation's; all three are NULL when there is none.
	rotateSessionSQL = `UPDATE sessions
		SET prev_access_hash = access_hash, access_hash = ?, access_expires_at = ?, refresh_hash = ?,
			refresh_expires_at = ?, last_used_at = ?, last_spent_hash = ?, successor = ?,
			successor_until = ?
		WHERE id = ?`
	// The first revocation time stays.
	revokeSessionSQL = `UPDATE sessions SET revoked_at = ?
		WHERE id = ? AND revoked_at IS NULL`
	// Every live session of a user, or of one identity of the user when
	// ?3 (the open ID) is not empty, or of one login when ?6 (the origin)
	// is not empty; through sessions_by_user.
	revokeUserSessionsSQL = `UPDATE sessions SET revoked_at = ?1
		WHERE user_id = ?2 AND revoked_at IS NULL
			AND (?3 = '' OR (open_id = ?3 AND platform = ?4 AND app_id = ?5))
			AND (?6 = '' OR id = ?6 OR origin = ?6)
		RETURNING id`
	// The sessions of revokeUserSessionsSQL still rotatable at ?7; ?1 is
	// not used, so that the read and the write below share their numbers.
	// sessions_by_user holds every column this reads, a user's live
	// sessions first: the revoked ones that follow are never visited.
	rotatableOfUserSQL = `SELECT id FROM sessions INDEXED BY sessions_by_user
		WHERE user_id = ?2 AND revoked_at IS NULL
			AND refresh_expires_at > ?7 AND (expires_at IS NULL OR expires_at > ?7)
			AND (?3 = '' OR (open_id = ?3 AND platform = ?4 AND app_id = ?5))
			AND (?6 = '' OR id = ?6 OR origin = ?6)`
	// How many of them, counting no further than ?8 (Keep + 1): the read
	// that tells whether the cap is exceeded, before the revocation below,
	// which costs a temporary b-tree for its IN list. One row, so that the
	// count costs no step per session.
	someRotatableSQL = `SELECT count(*) FROM (` + rotatableOfUserSQL + ` LIMIT ?8)`
	// Revokes all but the ?8 newest of them, in the index's order.
	revokeAllButSQL = `UPDATE sessions SET revoked_at = ?1
		WHERE id IN (` + rotatableOfUserSQL + ` ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?8)
		RETURNING id`
	// One statement: SQLite runs it under the write lock, so concurrent
	// increments cannot read the same old value.
	addDecryptFailureSQL = `UPDATE sessions SET decrypt_failures = decrypt_failures + 1
		WHERE id = ? RETURNING decrypt_failures`

	putCodeSQL = `INSERT INTO codes (` + codeCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (hash) DO UPDATE SET app = excluded.app,
			platform = excluded.platform, app_id = excluded.app_id,
			open_id = excluded.open_id, expires_at = excluded.expires_at,
			session_id = excluded.session_id, replay_until = excluded.replay_until,
			replays = excluded.replays`
	getCodeSQL = `SELECT ` + codeCols + ` FROM codes WHERE hash = ? AND expires_at > ?`
	// The check and the increment in one statement, under the write lock:
	// of concurrent claims at most ?3 - replays succeed. A NULL
	// replay_until (no window) compares false.
	claimReplaySQL = `UPDATE codes SET replays = replays + 1
		WHERE hash = ?1 AND expires_at > ?2 AND replay_until > ?2 AND replays < ?3
		RETURNING ` + codeCols

	getAccessTokenSQL = `SELECT ` + tokenCols + ` FROM access_tokens WHERE cache_key = ?`
	putAccessTokenSQL = `INSERT INTO access_tokens (` + tokenCols + `) VALUES (?, ?, ?, ?)
		ON CONFLICT (cache_key) DO UPDATE SET sealed = excluded.sealed,
			expires_at = excluded.expires_at, refresh_at = excluded.refresh_at`
	// Compare and delete in one statement: a newer value stays.
	deleteAccessTokenSQL = `DELETE FROM access_tokens WHERE cache_key = ? AND sealed = ?`

	// One statement under the write lock: the row is taken if free, ended,
	// or already the caller's; otherwise nothing changes and no row returns.
	acquireLeaseSQL = `INSERT INTO leases (lease_key, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (lease_key) DO UPDATE SET holder = excluded.holder, until = excluded.until
			WHERE leases.holder = excluded.holder OR leases.until <= ?
		RETURNING holder`
	releaseLeaseSQL = `DELETE FROM leases WHERE lease_key = ? AND holder = ?`

	// A NULL (zero) expiry is long past, as in GetCode.
	// Both deletes take at most deleteChunk rows, so that the sweep holds
	// the single writer only briefly and logins interleave with it.
	deleteCodesSQL = `DELETE FROM codes WHERE hash IN (
		SELECT hash FROM codes WHERE expires_at IS NULL OR expires_at <= ? LIMIT ?)`
	// Spent refresh tokens go with their session (ON DELETE CASCADE).
	// sweep_at is indexed, so SQLite looks up dead rows instead of scanning.
	deleteSessionsSQL = `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions WHERE sweep_at <= ? LIMIT ?)`
)

// readStmts run on the read pool.
type readStmts struct {
	getIdentity     *sql.Stmt
	getUser         *sql.Stmt
	sessionByAccess *sql.Stmt
	sessionByID     *sql.Stmt
	sessionLogout   *sql.Stmt
	sessionRefresh  *sql.Stmt
	getCode         *sql.Stmt
	getAccessToken  *sql.Stmt
	someRotatable   *sql.Stmt
}

// writeStmts are prepared on the writer's connection, which the batcher
// holds from Open to Close: they run only inside its transaction, through
// the wtx a write is given (batch.go).
type writeStmts struct {
	unionUser      *sql.Stmt
	insertUser     *sql.Stmt
	insertIdentity *sql.Stmt
	updateIdentity *sql.Stmt
	setUnionID     *sql.Stmt
	userBlocked    *sql.Stmt

	insertSession  *sql.Stmt
	refreshSession *sql.Stmt
	spendRefresh   *sql.Stmt
	rotateSession  *sql.Stmt
	revokeSession  *sql.Stmt
	revokeUser     *sql.Stmt
	revokeAllBut   *sql.Stmt
	someRotatable  *sql.Stmt
	decryptFailure *sql.Stmt

	putCode        *sql.Stmt
	getCode        *sql.Stmt
	claimReplay    *sql.Stmt
	deleteCodes    *sql.Stmt
	deleteSessions *sql.Stmt

	putAccessToken    *sql.Stmt
	deleteAccessToken *sql.Stmt
	acquireLease      *sql.Stmt
	releaseLease      *sql.Stmt
	setPhone          *sql.Stmt

	// The batch's transaction, and around each write of a batch that
	// needs one, a savepoint (batch.go).
	begin      *sql.Stmt
	commit     *sql.Stmt
	rollback   *sql.Stmt
	savepoint  *sql.Stmt
	rollbackTo *sql.Stmt
	release    *sql.Stmt
}

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func (s *Store) prepare(ctx context.Context) error {
	// The writer's one connection, held until Close: with statements
	// prepared on it, a write runs neither a pool's bookkeeping nor, since
	// a Conn has no transaction of database/sql's to watch, a goroutine
	// per query (batch.go).
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	s.tx.conn = conn
	prep := func(db preparer, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, query)
		if err != nil {
			err = fmt.Errorf("prepare %.40q…: %w", query, err)
			return nil
		}
		s.stmts = append(s.stmts, st)
		return st
	}
	s.r = readStmts{
		getIdentity:     prep(s.read, getIdentitySQL),
		getUser:         prep(s.read, getUserSQL),
		sessionByAccess: prep(s.read, sessionByAccessSQL),
		sessionByID:     prep(s.read, sessionByIDSQL),
		sessionLogout:   prep(s.read, sessionForLogoutSQL),
		sessionRefresh:  prep(s.read, sessionByRefreshSQL),
		getCode:         prep(s.read, getCodeSQL),
		getAccessToken:  prep(s.read, getAccessTokenSQL),
		someRotatable:   prep(s.read, someRotatableSQL),
	}
	s.tx.writeStmts = &writeStmts{
		unionUser:      prep(conn, unionUserSQL),
		insertUser:     prep(conn, insertUserSQL),
		insertIdentity: prep(conn, insertIdentitySQL),
		updateIdentity: prep(conn, updateIdentitySQL),
		setUnionID:     prep(conn, setUnionIDSQL),
		userBlocked:    prep(conn, userBlockedSQL),
		insertSession:  prep(conn, insertSessionSQL),
		refreshSession: prep(conn, refreshSessionSQL),
		spendRefresh:   prep(conn, spendRefreshSQL),
		rotateSession:  prep(conn, rotateSessionSQL),
		revokeSession:  prep(conn, revokeSessionSQL),
		revokeUser:     prep(conn, revokeUserSessionsSQL),
		revokeAllBut:   prep(conn, revokeAllButSQL),
		someRotatable:  prep(conn, someRotatableSQL),
		decryptFailure: prep(conn, addDecryptFailureSQL),
		putCode:        prep(conn, putCodeSQL),
		getCode:        prep(conn, getCodeSQL),
		claimReplay:    prep(conn, claimReplaySQL),
		deleteCodes:    prep(conn, deleteCodesSQL),
		deleteSessions: prep(conn, deleteSessionsSQL),

		putAccessToken:    prep(conn, putAccessTokenSQL),
		deleteAccessToken: prep(conn, deleteAccessTokenSQL),
		acquireLease:      prep(conn, acquireLeaseSQL),
		releaseLease:      prep(conn, releaseLeaseSQL),
		setPhone:          prep(conn, setPhoneSQL),

		// IMMEDIATE: the write lock from the transaction's first read, so
		// that another process cannot write between a read and its write.
		begin:      prep(conn, "BEGIN IMMEDIATE"),
		commit:     prep(conn, "COMMIT"),
		rollback:   prep(conn, "ROLLBACK"),
		savepoint:  prep(conn, "SAVEPOINT op"),
		rollbackTo: prep(conn, "ROLLBACK TO op"),
		release:    prep(conn, "RELEASE op"),
	}
	return err
}

// rowQuerier is a *sql.DB or a *sql.Conn.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// querier is a *sql.Tx or a wtx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// micros encodes t for a time column: Unix microseconds, NULL for zero.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros decodes a time column.
func fromMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// trunc returns t as it reads back from the database, so that what a write
// returns equals what a later read returns.
func trunc(t time.Time) time.Time {
	return fromMicros(sql.NullInt64{Int64: t.UnixMicro(), Valid: !t.IsZero()})
}

// blob encodes a byte column: empty means none and is stored as NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// none normalises a scanned byte column: empty reads as nil.
func none(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
