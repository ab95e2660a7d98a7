package postgres

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mplogin/mplogin/store"
)

// The statements. pgx prepares each on a connection the first time it runs
// there and keeps it in the connection's statement cache, so the server
// parses and plans each once per connection. Parameters carry explicit casts
// where their type would otherwise be guessed.

const (
	identityCols = `platform, app_id, open_id, union_id, user_id, session_key,
		prev_session_key, prev_key_expires_at, created_at, updated_at`
	sessionCols = `id, user_id, app, platform, app_id, open_id, access_hash,
		access_expires_at, refresh_hash, refresh_expires_at, created_at,
		expires_at, last_used_at, revoked_at, decrypt_failures, union_id,
		origin`
	codeCols = `hash, app, platform, app_id, open_id, expires_at, session_id,
		replay_until, replays`
	tokenCols = `cache_key, sealed, expires_at, refresh_at`

	// lockUnionSQL takes the transaction's advisory lock on a unionid of a
	// platform ($2, $3); $1 is unionLock. Different unionids may share a
	// hash, which only makes their logins take turns.
	lockUnionSQL = `SELECT pg_advisory_xact_lock($1::int4, hashtext($2::text || ':' || $3::text))`

	getIdentitySQL = `SELECT ` + identityCols + ` FROM identities
		WHERE platform = $1 AND app_id = $2 AND open_id = $3`
	userCols = `id, created_at, phone, phone_lookup, phone_source, phone_app, phone_updated_at,
		blocked, blocked_reason, blocked_at`
	getUserSQL  = `SELECT ` + userCols + ` FROM users WHERE id = $1`
	setPhoneSQL = `UPDATE users SET phone = $2, phone_source = $3, phone_app = $4,
		phone_updated_at = $5, phone_lookup = $6 WHERE id = $1`

	// The session and its first refresh token, in one statement. The
	// token's foreign key is checked at the end of the statement.
	createSessionSQL = `WITH s AS (
		INSERT INTO sessions (` + sessionCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
		RETURNING id
	)
	INSERT INTO refresh_tokens (hash, session_id, expires_at)
	SELECT $9, s.id, $10 FROM s`
	// loginBlockedSQL reads, for WriteLogin, the block of the user of the
	// identity the transaction has just upserted, after the session's
	// insert. FOR SHARE makes a concurrent block wait for the commit, so
	// that the block's revocation then finds the session.
	loginBlockedSQL = `SELECT blocked FROM users
		WHERE id = (SELECT user_id FROM identities WHERE platform = $1 AND app_id = $2 AND open_id = $3)
		FOR SHARE`
	// loginSessionSQL is createSessionSQL for WriteLogin: the user and the
	// unionid come from the identity the same transaction has just upserted.
	loginSessionSQL = `WITH i AS (
		SELECT user_id, coalesce(union_id, '') AS union_id FROM identities
		WHERE platform = $3::text AND app_id = $4::text AND open_id = $5::text
	), s AS (
		INSERT INTO sessions (` + sessionCols + `)
		SELECT $1::text, i.user_id, $2::text, $3::text, $4::text, $5::text, $6::bytea, $7::timestamptz,
			$8::bytea, $9::timestamptz, $10::timestamptz, $11::timestamptz, $12::timestamptz,
			$13::timestamptz, $14::integer, i.union_id, $15::text
		FROM i
		RETURNING id
	)
	INSERT INTO refresh_tokens (hash, session_id, expires_at)
	SELECT $8::bytea, s.id, $9::timestamptz FROM s`
	sessionByAccessSQL = `SELECT ` + sessionCols + ` FROM sessions WHERE access_hash = $1`
	sessionByIDSQL     = `SELECT ` + sessionCols + ` FROM sessions WHERE id = $1`
	// The current refresh token only: found by the token table's key,
	// then its session by id, which must still carry it.
	sessionByRefreshSQL = `SELECT ` + sessionCols + ` FROM sessions
		WHERE id = (SELECT session_id FROM refresh_tokens WHERE hash = $1 AND NOT spent) AND refresh_hash = $1`
	// By the current access hash, else the previous one; both by index.
	sessionForLogoutSQL = `(SELECT ` + sessionCols + ` FROM sessions WHERE access_hash = $1)
		UNION ALL
		(SELECT ` + sessionCols + ` FROM sessions WHERE prev_access_hash = $1)
		LIMIT 1`

	// rotateSQL spends the old token, records the new one and gives the
	// session its new tokens, under the locks taken by lockRefreshSQL. The
	// session keeps the token it spent and the successor ($8, NULL for
	// none) for a repeat of that token until $9.
	rotateSQL = `WITH spend AS (
		UPDATE refresh_tokens SET spent = true WHERE hash = $1
	), fresh AS (
		INSERT INTO refresh_tokens (hash, session_id, expires_at) VALUES ($4, $2, $5)
	)
	UPDATE sessions SET prev_access_hash = access_hash, -- the row as it was
		access_hash = $3, access_expires_at = $6, refresh_hash = $4,
		refresh_expires_at = $5, last_used_at = $7,
		last_spent_hash = $1, successor = $8, successor_until = $9
	WHERE id = $2
	RETURNING ` + sessionCols
	// The first revocation time stays.
	revokeSessionSQL = `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`
	// The row lock serialises concurrent increments; each reads the count
	// the one before it left.
	addDecryptFailureSQL = `UPDATE sessions SET decrypt_failures = decrypt_failures + 1
		WHERE id = $1 RETURNING decrypt_failures`

	putCodeSQL = `INSERT INTO codes (` + codeCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (hash) DO UPDATE SET app = excluded.app, platform = excluded.platform,
			app_id = excluded.app_id, open_id = excluded.open_id, expires_at = excluded.expires_at,
			session_id = excluded.session_id, replay_until = excluded.replay_until,
			replays = excluded.replays`
	getCodeSQL = `SELECT ` + codeCols + ` FROM codes WHERE hash = $1 AND expires_at > $2`
	// claimReplaySQL is ClaimReplay in one statement: the conditional
	// UPDATE decides (a concurrent one waits for the row and re-checks the
	// condition on the count the one before it left), and when it changes
	// nothing the SELECT returns the live code, refused, or no row for an
	// unknown or expired one. A NULL replay_until compares as not after $2:
	// no window.
	claimReplaySQL = `WITH upd AS (
		UPDATE codes SET replays = replays + 1
		WHERE hash = $1 AND expires_at > $2 AND replay_until > $2 AND replays < $3
		RETURNING ` + codeCols + `
	)
	SELECT true, ` + codeCols + ` FROM upd
	UNION ALL
	SELECT false, ` + codeCols + ` FROM codes
	WHERE hash = $1 AND expires_at > $2 AND NOT EXISTS (SELECT FROM upd)`

	getAccessTokenSQL = `SELECT ` + tokenCols + ` FROM access_tokens WHERE cache_key = $1`
	putAccessTokenSQL = `INSERT INTO access_tokens (` + tokenCols + `) VALUES ($1, $2, $3, $4)
		ON CONFLICT (cache_key) DO UPDATE SET sealed = excluded.sealed,
			expires_at = excluded.expires_at, refresh_at = excluded.refresh_at`
	// Compare and delete in one statement: a newer value stays.
	deleteAccessTokenSQL = `DELETE FROM access_tokens WHERE cache_key = $1 AND sealed = $2`

	// One statement decides: the row is taken if free, ended, or already
	// the caller's. Concurrent callers on one key queue on its row (or on
	// the insertion of it), and each sees the winner's row when its turn
	// comes; a caller who does not get the lease gets no row back.
	acquireLeaseSQL = `INSERT INTO leases (lease_key, holder, until) VALUES ($1, $2, $3)
		ON CONFLICT (lease_key) DO UPDATE SET holder = excluded.holder, until = excluded.until
			WHERE leases.holder = excluded.holder OR leases.until <= $4
		RETURNING true`
	releaseLeaseSQL = `DELETE FROM leases WHERE lease_key = $1 AND holder = $2`

	// Both sweeps delete at most $2 rows a statement. SKIP LOCKED: a row
	// another transaction holds (a rotation, a concurrent sweep) waits for
	// the next sweep instead of holding this one up; the lock also
	// re-checks the condition on the row's latest version, so that only
	// rows dead when deleted go. A NULL (zero) expiry is long past, as in
	// GetCode.
	deleteCodesSQL = `DELETE FROM codes WHERE hash IN (
		SELECT hash FROM codes WHERE expires_at IS NULL OR expires_at <= $1
		LIMIT $2 FOR UPDATE SKIP LOCKED)`
	// Refresh tokens go with their session (ON DELETE CASCADE).
	deleteSessionsSQL = `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions
		WHERE revoked_at <= $1 OR refresh_expires_at IS NULL OR refresh_expires_at <= $1
			OR expires_at <= $1
		LIMIT $2 FOR UPDATE SKIP LOCKED)`
)

// Statements built from the column lists with a qualifier.
var (
	// upsertIdentitySQL is UpsertIdentity in one statement, so one round
	// trip and one transaction. Its parts see the same snapshot:
	//   - upd updates the identity if it exists. The SET expressions read
	//     the row as it was: a new key ($5) that differs from a current one
	//     moves that one to prev, with its end of grace ($8).
	//   - Otherwise joined finds the user of the oldest identity of the
	//     platform carrying the unionid ($4), and ins inserts the identity
	//     with that user or the new one ($6). ON CONFLICT DO NOTHING: if a
	//     concurrent call inserted the identity after our snapshot was taken,
	//     ins waits for it to commit and inserts nothing, the statement
	//     returns no row, and the caller runs it again (it then updates).
	//   - new_user inserts the user only when ins inserted the identity and
	//     no unionid matched, so only the winner of a race creates one. The
	//     identity's foreign key is checked at the end of the statement, when
	//     the user is there.
	// $6 is NULL when the caller gave no new user ID: a needed one then
	// fails the NOT NULL of identities.user_id.
	upsertIdentitySQL = `WITH upd AS (
		UPDATE identities SET
			prev_session_key = CASE WHEN session_key <> $5::bytea THEN session_key ELSE prev_session_key END,
			prev_key_expires_at = CASE WHEN session_key <> $5::bytea THEN $8::timestamptz ELSE prev_key_expires_at END,
			session_key = coalesce($5::bytea, session_key),
			decrypt_attempts = CASE WHEN session_key IS DISTINCT FROM $5::bytea AND $5::bytea IS NOT NULL
				THEN 0 ELSE decrypt_attempts END,
			union_id = coalesce(union_id, $4::text),
			updated_at = $7::timestamptz
		WHERE platform = $1::text AND app_id = $2::text AND open_id = $3::text
		RETURNING ` + identityCols + `
	), joined AS (
		SELECT (SELECT user_id FROM identities
			WHERE platform = $1::text AND union_id = $4::text
			ORDER BY created_at, app_id COLLATE "C", open_id COLLATE "C" LIMIT 1) AS user_id
		WHERE NOT EXISTS (SELECT FROM upd)
	), ins AS (
		INSERT INTO identities (platform, app_id, open_id, union_id, user_id, session_key, created_at, updated_at)
		SELECT $1::text, $2::text, $3::text, $4::text, coalesce(joined.user_id, $6::text), $5::bytea,
			$7::timestamptz, $7::timestamptz
		FROM joined
		ON CONFLICT (platform, app_id, open_id) DO NOTHING
		RETURNING ` + identityCols + `
	), new_user AS (
		INSERT INTO users (id, created_at)
		SELECT ins.user_id, ins.created_at FROM ins, joined WHERE joined.user_id IS NULL
	)
	SELECT false, ` + identityCols + ` FROM upd
	UNION ALL
	SELECT joined.user_id IS NULL, ` + prefixed("ins.", identityCols) + ` FROM ins, joined`

	// lockRefreshSQL locks and reads the refresh token's row and its
	// session's: a rotation that waited for the locks reads the rows as the
	// transaction before it left them (READ COMMITTED re-reads a row it had
	// to wait for). Locking the session too keeps a concurrent revocation or
	// a rotation of another of its tokens out until the commit. Sessions
	// come first in the FROM list, the order in which the sweep takes them
	// (the session, then its tokens by cascade); should a deadlock happen
	// anyway, the server breaks it and the rotation runs again.
	// It also reads whether the token is the one the session's last
	// rotation spent, and that rotation's successor.
	lockRefreshSQL = `SELECT t.spent, coalesce(s.last_spent_hash = t.hash, false),
		s.successor, s.successor_until, ` + prefixed("s.", sessionCols) + `
		FROM sessions s JOIN refresh_tokens t ON t.session_id = s.id
		WHERE t.hash = $1
		FOR UPDATE`
)

// liveSQL is the condition of a session still rotatable at $2.
const liveSQL = `revoked_at IS NULL AND refresh_expires_at > $2
	AND (expires_at IS NULL OR expires_at > $2)`

// userRevocationSQL returns RevokeUserSessions' statements for r, and their
// arguments ($1 the user, $2 the time, then those of the filters r sets):
// revoke, and with r.Keep, count, which reads whether more than r.Keep
// matching sessions are live. Only the filters r sets are in the text, so
// that each variant gets its own plan, which uses every column it can of
// sessions_identity_live (with r.Keep) or sessions_user.
func userRevocationSQL(r store.UserRevocation) (count, revoke string, args []any) {
	args = []any{r.UserID, ts(trunc(r.Now))}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where := "user_id = $1"
	if r.OpenID != "" {
		where += " AND platform = " + arg(r.Family) + " AND app_id = " + arg(r.AppID) +
			" AND open_id = " + arg(r.OpenID)
	}
	if r.Origin != "" {
		o := arg(r.Origin)
		where += " AND (id = " + o + " OR origin = " + o + ")"
	}
	if r.Keep <= 0 {
		// The first revocation time stays.
		return "", `UPDATE sessions SET revoked_at = $2 WHERE ` + where + ` AND revoked_at IS NULL`, args
	}
	// Newest first, as the index has them: all but the first Keep go. The
	// UPDATE re-checks liveness on rows that changed meanwhile, so a
	// session a concurrent call revoked is neither revoked again nor
	// counted.
	k := arg(int64(r.Keep))
	count = `SELECT count(*) > ` + k + ` FROM (SELECT FROM sessions WHERE ` + where + ` AND ` + liveSQL + `
		LIMIT ` + k + ` + 1) live`
	revoke = `UPDATE sessions SET revoked_at = $2 WHERE ` + where + ` AND ` + liveSQL + ` AND id IN (
		SELECT id FROM sessions WHERE ` + where + ` AND ` + liveSQL + `
		ORDER BY created_at DESC NULLS LAST, id COLLATE "C" DESC OFFSET ` + k + `)`
	return count, revoke, args
}

// unionLock is the first key of the advisory locks UpsertIdentity takes on
// unionids (see migrationLock).
const unionLock = 0x6d70756e // "mpun"

// deleteChunk bounds the rows one DeleteExpired statement removes.
const deleteChunk = 1000

// prefixed returns the comma-separated column list cols with each name
// prefixed by p.
func prefixed(p, cols string) string {
	names := strings.FieldsFunc(cols, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	return p + strings.Join(names, ", "+p)
}

// ts encodes t for a timestamptz column: NULL for the zero time.
func ts(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// fromTS decodes a timestamptz column, in UTC.
func fromTS(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// trunc returns t as the database keeps it: whole microseconds (rounded
// down, as pgx encodes it), UTC; the zero time stays zero.
func trunc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// blob encodes a bytea column: empty means none and is stored as NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// none normalises a scanned bytea column: empty reads as nil.
func none(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// text encodes a nullable text column: "" is NULL.
func text(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// scanIdentity scans identityCols, after the destinations in first.
func scanIdentity(row pgx.Row, first ...any) (store.Identity, error) {
	var (
		id                        store.Identity
		union                     pgtype.Text
		prevExp, created, updated pgtype.Timestamptz
	)
	dest := append(first, &id.Family, &id.AppID, &id.OpenID, &union, &id.UserID,
		&id.SessionKey, &id.PrevSessionKey, &prevExp, &created, &updated)
	if err := row.Scan(dest...); err != nil {
		return store.Identity{}, err
	}
	id.UnionID = union.String
	id.SessionKey = none(id.SessionKey)
	id.PrevSessionKey = none(id.PrevSessionKey)
	id.PrevKeyExpiresAt = fromTS(prevExp)
	id.CreatedAt = fromTS(created)
	id.UpdatedAt = fromTS(updated)
	return id, nil
}

// scanSession scans sessionCols, after the destinations in first.
func scanSession(row pgx.Row, first ...any) (store.Session, error) {
	var (
		s                              store.Session
		accessExp, refreshExp, created pgtype.Timestamptz
		expires, lastUsed, revoked     pgtype.Timestamptz
		failures                       int32
		origin                         pgtype.Text
	)
	dest := append(first,
		&s.ID, &s.UserID, &s.App, &s.Family, &s.AppID, &s.OpenID,
		&s.AccessHash, &accessExp, &s.RefreshHash, &refreshExp,
		&created, &expires, &lastUsed, &revoked, &failures, &s.UnionID, &origin)
	if err := row.Scan(dest...); err != nil {
		return store.Session{}, err
	}
	s.AccessHash = none(s.AccessHash)
	s.RefreshHash = none(s.RefreshHash)
	s.AccessExpiresAt = fromTS(accessExp)
	s.RefreshExpiresAt = fromTS(refreshExp)
	s.CreatedAt = fromTS(created)
	s.ExpiresAt = fromTS(expires)
	s.LastUsedAt = fromTS(lastUsed)
	s.RevokedAt = fromTS(revoked)
	s.DecryptFailures = int(failures)
	s.Origin = origin.String
	return s, nil
}

// scanCode scans codeCols, after the destinations in first.
func scanCode(row pgx.Row, first ...any) (store.ExchangedCode, error) {
	var (
		c                store.ExchangedCode
		exp, replayUntil pgtype.Timestamptz
		sessionID        pgtype.Text
		replays          int32
	)
	dest := append(first, &c.Hash, &c.App, &c.Family, &c.AppID, &c.OpenID, &exp,
		&sessionID, &replayUntil, &replays)
	if err := row.Scan(dest...); err != nil {
		return store.ExchangedCode{}, err
	}
	c.ExpiresAt = fromTS(exp)
	c.SessionID = sessionID.String
	c.ReplayUntil = fromTS(replayUntil)
	c.Replays = int(replays)
	return c, nil
}

// codeArgs are putCodeSQL's parameters.
func codeArgs(c store.ExchangedCode) []any {
	return []any{c.Hash, c.App, c.Family, c.AppID, c.OpenID, ts(c.ExpiresAt),
		text(c.SessionID), ts(c.ReplayUntil), int32(c.Replays)}
}
