// Package postgres is the store.Store for PostgreSQL (15 or later), through
// pgx/v5 and its connection pool pgxpool.
//
// # What it stores
//
// The same logical tables as store/sqlite: users (with a sealed phone number
// and its provenance), identities, sessions (with their unionid, count of
// failed decryptions, origin, and the refresh hash their last rotation spent
// with the sealed successor a repeat of it gets back), refresh_tokens (every
// token a session was given, spent ones kept so that a replay is
// recognised), codes (with their session, repeat window and count of
// repeats), access_tokens and leases.
// Times are timestamptz, which keeps microseconds, the precision the store
// contract asks for; the zero time is NULL, and times come back in UTC.
// Token and code hashes and sealed values are bytea, stored as given: no
// column holds a secret in clear.
//
// # Atomicity
//
// Every method is one statement (PostgreSQL runs it as one transaction) or
// one short explicit transaction, at READ COMMITTED, and costs one round
// trip unless said otherwise:
//   - UpsertIdentity is one statement: an UPDATE of the identity if it
//     exists, else an INSERT … ON CONFLICT DO NOTHING of it together with its
//     new user. Of concurrent callers creating the same identity one inserts;
//     the others find the conflict (after waiting for the winner to commit),
//     get no row back and run the statement again, now updating. So exactly
//     one user is created. With a unionid, the statement runs in a
//     transaction behind an advisory lock on (platform, unionid), sent in the
//     same round trip (a pgx batch): new identities of one person in two apps
//     at once take turns, and the second joins the first's user.
//   - CreateSession inserts the session and its first refresh token in one
//     statement.
//   - RotateRefresh is one transaction that locks the session and refresh
//     token rows (SELECT … FOR UPDATE), decides in Go and writes. Concurrent
//     rotations of one token queue on the lock: the first spends the token,
//     the others find it spent. The token the last rotation spent, again
//     within that rotation's grace, gets its successor and writes nothing
//     (ErrRecentlySpent); any other replayed token revokes the session, and
//     the transaction commits before ErrReused is returned. BEGIN travels
//     with the SELECT and COMMIT with the write, so it costs two round trips.
//   - ClaimReplay is one conditional UPDATE … RETURNING: concurrent claims
//     queue on the code's row, and each re-checks the count the one before
//     left, so at most max succeed.
//   - RevokeUserSessions is one UPDATE. With Keep (the cap on an identity's
//     live sessions, checked after every login) a read of the partial index
//     sessions_identity_live comes first, and the UPDATE only runs when more
//     than Keep sessions are live: nothing is written or locked otherwise.
//   - AddDecryptFailure is UPDATE … RETURNING; DeleteAccessToken compares and
//     deletes in one DELETE; AcquireLease is INSERT … ON CONFLICT DO UPDATE …
//     WHERE (same holder or lease ended) RETURNING.
//   - DeleteExpired deletes at most 1000 rows per statement, so that a large
//     sweep never holds many locks for long; rows locked by someone else are
//     skipped until the next sweep.
//
// Deadlocks and serialization failures (SQLSTATE 40P01, 40001) roll the
// whole transaction back; the store runs it again, a few times at most.
//
// # Migrations
//
// The schema is in migrations/NNNN_name.sql, embedded in the binary and
// applied in order by Open, each recorded in schema_migrations. Open migrates
// in one transaction that first takes a transaction-level advisory lock
// (pg_advisory_xact_lock) on the schema, so that instances starting together
// apply each migration once; DDL is transactional, so a failed migration
// leaves the schema as it was. A database with a migration this binary does
// not know (written by a newer version) is refused. Options.Schema puts the
// tables in a schema of their own (created if missing) by setting the
// connections' search_path.
//
// # Failures
//
// Errors wrap store.ErrNotFound, store.ErrReused, store.ErrRecentlySpent,
// store.ErrReplayRefused, or store.ErrUnavailable
// (with the pgx error) when the server could not be reached or did not
// answer: connection refused, lost or timed out, pool closed, server
// shutting down, starting up or out of connections (SQLSTATE classes 08,
// 57P, 53), statement or lock timeouts, an expired context deadline (kept in
// the chain too). A canceled context wraps context.Canceled. A refusal, such
// as a failed authentication or a violated constraint, is not
// ErrUnavailable.
//
// The pool never hands out a connection it knows to be broken: pgxpool drops
// a connection whose query failed at the connection level, and pings one
// before reuse if it sat idle for more than a second or since another
// connection was seen to break (a server restart breaks them all). So the
// store recovers by itself when PostgreSQL comes back, without reopening. A
// read that fails because its connection broke is run again on another; a
// write is not (it may have been done), nor is anything when the server
// cannot be reached. No error message contains the DSN's password.
//
// Statements go through pgx's per-connection cache of prepared statements.
// Behind PgBouncer in transaction mode, add default_query_exec_mode=exec (or
// describe_exec) to the DSN.
//
// # Tests
//
// The tests need a PostgreSQL server and are skipped without one:
//
//	MPLOGIN_TEST_POSTGRES='postgres://root@127.0.0.1:5432/test?sslmode=disable' \
//		go test -race ./store/postgres/
//
// Each test works in a schema of its own, dropped when it ends; the role
// needs the CREATE privilege on the database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mplogin/mplogin/internal/migrate"
	"github.com/mplogin/mplogin/internal/redact"
	"github.com/mplogin/mplogin/store"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// MaxConns bounds the connection pool. Zero means the DSN's
	// pool_max_conns, or 4 × GOMAXPROCS (at least 4).
	MaxConns int
	// ConnectTimeout bounds establishing one connection (TCP, TLS, startup,
	// authentication). Zero means the DSN's connect_timeout, or 5s.
	ConnectTimeout time.Duration
	// StatementTimeout is the server's statement_timeout for every statement
	// (migrations excepted), which also bounds waiting for a row lock. Zero
	// means the DSN's statement_timeout, or 10s; negative means none.
	StatementTimeout time.Duration
	// Schema, when set, is the schema that holds the tables: Open creates it
	// if it does not exist, and every connection gets it as its only
	// search_path entry. Empty means the DSN's search_path (by default
	// "$user", public).
	Schema string
	// Logger receives notices: applied migrations, broken connections. Nil
	// discards them.
	Logger *slog.Logger
}

const (
	defaultConnectTimeout   = 5 * time.Second
	defaultStatementTimeout = 10 * time.Second
)

// Store is a store.Store in a PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
	lostAt atomic.Int64 // UnixNano when a connection was last seen to break
	log    *slog.Logger
	// secrets are the DSN's password(s), scrubbed from every error message.
	secrets []string
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn, a postgres:// or postgresql:// URL
// (or a libpq key=value string), and applies the migrations it lacks. It
// fails with store.ErrUnavailable when the server cannot be reached.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	s := &Store{secrets: dsnPasswords(dsn)}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, badDSN(dsn, err)
	}
	if pw := cfg.ConnConfig.Password; pw != "" && !slices.Contains(s.secrets, pw) {
		s.secrets = append(s.secrets, pw)
	}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ms, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}

	// Logins use a few short statements each: 4 connections per core keep
	// the server busy while some wait on the network or a commit.
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = int32(min(opts.MaxConns, 1<<20))
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	if !strings.Contains(dsn, "pool_max_conn_lifetime_jitter") {
		// Connections opened together do not all expire together.
		cfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	}
	cc := cfg.ConnConfig
	switch {
	case opts.ConnectTimeout > 0:
		cc.ConnectTimeout = opts.ConnectTimeout
	case cc.ConnectTimeout <= 0:
		cc.ConnectTimeout = defaultConnectTimeout
	}
	switch _, inDSN := cc.RuntimeParams["statement_timeout"]; {
	case opts.StatementTimeout > 0:
		cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(1, opts.StatementTimeout.Milliseconds()), 10)
	case opts.StatementTimeout == 0 && !inDSN:
		cc.RuntimeParams["statement_timeout"] = strconv.FormatInt(defaultStatementTimeout.Milliseconds(), 10)
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "mplogin"
	}
	if opts.Schema != "" {
		cc.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}

	cfg.ShouldPing = s.shouldPing

	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, s.fail(ctx, "open", err)
	}
	if err := applyMigrations(ctx, s.pool, opts.Schema, ms, s.log); err != nil {
		s.pool.Close()
		return nil, s.fail(ctx, "open: migrate", err)
	}
	return s, nil
}

// Ping implements store.Store: a pooled connection must answer.
func (s *Store) Ping(ctx context.Context) error {
	return s.run(ctx, "ping", true, func() error { return s.pool.Ping(ctx) })
}

// Close implements store.Store. It waits for the calls in progress to
// return their connections. Closing twice is not an error.
func (s *Store) Close() error {
	if s.closed.CompareAndSwap(false, true) && s.pool != nil {
		s.pool.Close()
	}
	return nil
}

// errClosed is the cause of ErrUnavailable after Close.
var errClosed = errors.New("store closed")

// errRetry reports that a statement lost a race that running it again
// resolves (UpsertIdentity creating an identity another caller created
// first).
var errRetry = errors.New("lost a race; try again")

// maxAttempts bounds how often run tries a statement or transaction.
const maxAttempts = 4

// run calls fn, which runs one statement or one transaction, and returns its
// error classified by fail. It tries again, up to maxAttempts in all, when
// that is safe and likely to help: fn lost a race (errRetry); the server
// rolled the transaction back for a deadlock or a serialization failure;
// nothing reached the server (pgconn.SafeToRetry); or the connection broke
// under a read, which has no effect to repeat. After a connection breaks, the
// pool checks its other idle connections before handing them out.
func (s *Store) run(ctx context.Context, op string, read bool, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return s.fail(ctx, op, err)
	}
	if s.closed.Load() {
		return s.fail(ctx, op, errClosed)
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || ctx.Err() != nil || s.closed.Load() {
			return s.fail(ctx, op, err)
		}
		lost := !isConnectError(err) && connectionLost(err)
		if lost {
			// The server closed the connection (it restarted, or an
			// administrator ended it) or the network broke. The pool has
			// dropped it.
			s.connectionsLost(ctx, err)
		}
		retry := false
		switch {
		case attempt == maxAttempts:
		case errors.Is(err, errRetry):
			retry = true
		case isRollback(err):
			// The transactions that collided are likely to meet again if
			// they start again at once: spread them out.
			wait := time.Duration(attempt) * time.Millisecond
			t := time.NewTimer(wait + rand.N(wait))
			select {
			case <-ctx.Done():
				t.Stop()
				return s.fail(ctx, op, err)
			case <-t.C:
			}
			retry = true
		case isConnectError(err):
			// The server is down or refusing: asking again at once does
			// not help, and would double the caller's wait.
		case pgconn.SafeToRetry(err):
			retry = true
		case lost:
			// A write may have been done: not ours to repeat.
			retry = read
		}
		if !retry {
			return s.fail(ctx, op, err)
		}
	}
}

// connectionsLost records that a connection of the pool broke with err:
// the others that sat idle meanwhile may well be broken too (the server
// restarted, or the network failed), so the pool pings each before handing
// it out again (shouldPing). It logs the first break of a burst.
func (s *Store) connectionsLost(ctx context.Context, err error) {
	now := time.Now().UnixNano()
	if prev := s.lostAt.Swap(now); now-prev > int64(time.Second) {
		s.log.WarnContext(ctx, "postgres: a connection to the server broke; checking the others before reuse",
			"error", s.scrub(err))
	}
}

// shouldPing tells the pool whether to ping a connection before handing it
// out: when it sat idle for more than a second, as pgxpool does by default,
// or since before a connection was last seen to break.
func (s *Store) shouldPing(_ context.Context, p pgxpool.ShouldPingParams) bool {
	if p.IdleDuration > time.Second {
		return true
	}
	lost := s.lostAt.Load()
	return lost != 0 && p.IdleDuration > time.Duration(time.Now().UnixNano()-lost)
}

// fail wraps err with the operation and classifies it: pgx.ErrNoRows becomes
// store.ErrNotFound; anything that means the server did not answer also
// wraps store.ErrUnavailable. The context's error is kept in the chain, so
// that errors.Is(err, context.Canceled) holds for a canceled call. The DSN's
// password never appears in the message. fail(ctx, op, nil) is nil.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		err = store.ErrNotFound
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrReused),
		errors.Is(err, store.ErrRecentlySpent), errors.Is(err, store.ErrReplayRefused):
	default:
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// pgx reports a canceled statement in its own words.
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		if s.closed.Load() || unavailable(err) {
			return s.scrub(fmt.Errorf("postgres: %s: %w: %w", op, store.ErrUnavailable, err))
		}
	}
	return s.scrub(fmt.Errorf("postgres: %s: %w", op, err))
}

// unavailable reports whether err means the server could not be reached or
// did not answer in time, or could not serve for contention (a race still
// lost, a deadlock still met after every attempt), as opposed to refusing
// the request. A canceled context is the caller's decision, not the server's
// failure.
func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errClosed) || errors.Is(err, errRetry) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "57P"),      // shutting down, cannot connect now, …
			strings.HasPrefix(pe.Code, "53"),       // insufficient resources: too many connections, disk full
			strings.HasPrefix(pe.Code, "58"),       // system error: I/O
			pe.Code == "57014",                     // query_canceled: statement_timeout
			pe.Code == "55P03",                     // lock_not_available: lock_timeout
			pe.Code == "25006",                     // read_only_sql_transaction: a standby after a failover
			pe.Code == "40001", pe.Code == "40P01": // still failing after retries
			return true
		}
		return false
	}
	return isConnectError(err) || connectionLost(err) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}

// isConnectError reports whether err is a failure to establish a connection.
func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// connectionLost reports whether err means the connection broke: the
// server closed it (terminated, shutting down) or the network failed.
func connectionLost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P")
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed)
}

// isRollback reports whether the server rolled the transaction back for a
// deadlock or a serialization failure, after which running it again is the
// documented remedy.
func isRollback(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// sqlState returns err's SQLSTATE, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// scrub returns err, or an error that reads the same with the DSN's
// password masked and wraps the same chain.
func (s *Store) scrub(err error) error {
	msg := err.Error()
	masked := msg
	for _, pw := range s.secrets {
		masked = strings.ReplaceAll(masked, pw, "xxxxx")
	}
	if masked == msg {
		return err
	}
	return &scrubbed{msg: masked, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

var (
	// A URL's user info, when url.Parse cannot make sense of the URL.
	urlPassword = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*?:([^@/]*)@`)
	// password=… in a key=value string, quoted or not.
	kvPassword = regexp.MustCompile(`(?:^|\s)password\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S+))`)
)

// badDSN is the error for a DSN that pgx could not parse. pgx quotes the
// DSN with only its passwords masked, and often the value it rejected;
// any value may be a secret (sslpassword, a password under a mistyped
// key), so this quotes the DSN with every value masked but the server's
// address, user and database, and scrubs every value from pgx's reason.
func badDSN(dsn string, err error) error {
	reason := err.Error()
	if rest, ok := strings.CutPrefix(reason, "cannot parse `"); ok {
		// The last "`: " ends the quoted DSN, whatever the DSN holds.
		if i := strings.LastIndex(rest, "`: "); i >= 0 {
			reason = rest[i+len("`: "):]
		} else {
			reason = "malformed"
		}
	}
	shown, values := redact.URL(dsn), redact.Values(dsn)
	if !strings.Contains(dsn, "://") {
		shown, values = redactKeyValues(dsn)
	}
	values = append(values, dsnPasswords(dsn)...)
	return &scrubbed{msg: "postgres: open: cannot parse " + shown + ": " + redact.Scrub(reason, values), err: err}
}

// shownKeys are the key=value settings whose values a redacted DSN shows:
// where the server is, and as whom and into what the connection logs in.
var shownKeys = []string{"host", "hostaddr", "port", "user", "dbname"}

// kvSetting is one key=value setting of a libpq DSN, quoted or not.
var kvSetting = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// redactKeyValues returns a key=value DSN with the values masked but those
// of shownKeys, and the masked values, quoted and unquoted.
func redactKeyValues(dsn string) (string, []string) {
	var values []string
	shown := kvSetting.ReplaceAllStringFunc(dsn, func(kv string) string {
		m := kvSetting.FindStringSubmatch(kv)
		if slices.Contains(shownKeys, m[1]) {
			return kv
		}
		values = append(values, m[3])
		if unquoted, ok := strings.CutPrefix(m[3], "'"); ok {
			values = append(values, strings.TrimSuffix(unquoted, "'"))
		}
		return m[1] + m[2] + redact.Mask
	})
	return shown, values
}

// dsnPasswords returns the password written in dsn, as written and
// decoded, or nothing, on a best-effort basis: it is only used to keep the
// password out of error messages, even when dsn is too malformed to parse.
func dsnPasswords(dsn string) []string {
	var pws []string
	add := func(pw string) {
		if pw != "" && !slices.Contains(pws, pw) {
			pws = append(pws, pw)
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		add(pw)
	}
	if m := urlPassword.FindStringSubmatch(dsn); m != nil {
		add(m[1])
		if pw, err := url.PathUnescape(m[1]); err == nil {
			add(pw)
		}
	}
	if m := kvPassword.FindStringSubmatch(dsn); m != nil {
		add(m[1] + m[2])
	}
	return pws
}
