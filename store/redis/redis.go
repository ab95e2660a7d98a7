// Package redis is a store.SessionStore on Redis 7 (go-redis/v9): sessions,
// their refresh tokens, exchanged login codes and each session's count of
// failed user data decryptions live in Redis with TTLs, while users,
// identities and the platforms' access tokens stay in the SQL store.
// Combine the two with store.Split:
//
//	sessions, err := redis.Open(ctx, "redis://127.0.0.1:6379/0", redis.Options{})
//	st := store.Split(sqlStore, sessions)
//
// # Keys
//
// Every key starts with Options.KeyPrefix (P, default "mplogin:"). Token and
// code hashes appear in lower-case hex in key names and codes, as bytes in
// sessions; nothing in Redis is a token or a code in clear, only their
// hashes (the caller hashes them).
//
//	P a:<access hash>    string: the session, encoded: "*", then the
//	                     fields id uid app pf aid oid un ah ax rh rx ca ex
//	                     lu ra df or (one per store.Session field, hashes
//	                     as bytes, times as decimal Unix microseconds, ""
//	                     for the zero time), each as <length>:<bytes>:
//	                     SessionByAccess is one GET
//	P s:<session id>     hash: a, the access hash; p, the access hash its
//	                     last rotation replaced; fx, when its refresh-token
//	                     keys expire (Unix ms); and r<refresh hash> ("")
//	                     for each of its refresh tokens, spent ones
//	                     included, so that they can be extended and
//	                     deleted together (hashes as bytes)
//	P r:<refresh hash>   string: "0" (current) or "1" (spent), then the
//	                     session ID
//	P p:<access hash>    string: the session ID, for the access hash its
//	                     last rotation replaced (SessionForLogout); as long
//	                     as the session's keys, deleted at the next rotation
//	P g:<session id>     string: the end of the last rotation's grace, the
//	                     refresh hash it spent (bytes) and its successor,
//	                     each as <length>:<bytes>, when it stored one;
//	                     until that end
//	P u:<user id>        hash: a field ("") per ID of the user's sessions,
//	                     for RevokeUserSessions; as long as the
//	                     longest-lived of them (fields whose session is
//	                     gone are dropped when read or swept)
//	P c:<code hash>      string: the code (ExpiresAt, App, Platform, AppID,
//	                     OpenID, hash in hex, SessionID, ReplayUntil,
//	                     Replays, each as <length>:<bytes>; codes written
//	                     before the last three end at the hash)
//	P dl                 sorted set: session IDs scored by the time (Unix µs)
//	                     each session stops being usable, for DeleteExpired
//	P cx                 sorted set: code hashes scored by ExpiresAt
//
// Hashes as bytes (the service's are 38) keep every field and value of the
// two hashes within Redis's hash-max-listpack-value (64 bytes), so that
// Redis stores them compactly, up to hash-max-listpack-entries fields (a
// session's hash grows by one field per refresh).
//
// Earlier versions kept a session in another form, which is still read
// until the session ends, and replaced by this one when the session is
// next written: the session hash held the session itself (the fields id …
// or above, hashes in hex, sessions written before the origin without
// or), fx, pa (the previous access hash, hex) and the last rotation's ls,
// su and sx (spent hash in hex, successor, end); the value under a: had
// no "*" and the hashes in hex (16 fields before the origin); the refresh
// hashes were a set f:<session id> of hex hashes; u:<user id> was a set
// (made a hash when next added to).
//
// The scripts build key names from the prefix instead of declaring them, so
// the store needs a single Redis (standalone, or a primary that Sentinels
// report: see Open); it is not Redis Cluster-safe.
//
// # TTLs
//
// Every key gets a TTL, so nothing outlives its use even if DeleteExpired
// never runs. A session stops being usable at its deadline D, the earliest
// of RefreshExpiresAt, ExpiresAt (when set) and RevokedAt (when set); a
// code at its ExpiresAt. The rule is
//
//	TTL = max(D − now, 0) + Options.ExpiryGrace   (at most 100 years)
//
// where now is the store's own clock (Options.Now), not the caller's times,
// and the TTL is relative (PEXPIRE/PX), so that Redis's clock plays no part.
// The grace (default one minute) covers clock skew between instances, and
// it means a key is never written with a TTL in the past: a session or code
// whose times are already past (as in the conformance suite, which uses
// fixed dates in 2025) lives for the grace. Expiry is only garbage
// collection: every read still compares the caller's times (GetCode
// returns store.ErrNotFound for ExpiresAt <= now whatever the TTL;
// RotateRefresh checks the refresh expiry, the absolute end and the
// revocation), so the semantics never depend on when Redis drops a key.
//
// The access key and the previous access key expire with the session; a
// rotation moves them to the new deadline, a revocation shortens them to
// RevokedAt + grace. A session is gone when its access key is. Its
// refresh-token keys (spent ones too, so that a replay is caught and
// revokes the session for as long as the session exists) and its hash,
// which lists them, live at least as long as the session: until ExpiresAt
// + grace when the session has an absolute end, otherwise twice the
// session's TTL, extended (all of them, once) when a rotation would make
// the session outlive them. The grace of a rotation lives until its end
// plus the grace, no longer than the session. Index keys live as long as
// their longest-lived entry.
//
// # Atomicity
//
// Each writing method is one Lua script (EVALSHA, falling back to EVAL
// after a Redis restart), so it is atomic: CreateSession refuses a taken
// ID, access hash or refresh hash; of concurrent RotateRefresh calls with
// one token exactly one wins, and a spent token revokes the session in the
// same step unless it is the one the last rotation spent and that
// rotation's successor still holds (the others get the successor);
// RevokeSession keeps the first RevokedAt and rewrites the encoded session
// under the access key, so every instance sees the revocation at once;
// AddDecryptFailure rewrites it with the count one higher; ClaimReplay
// counts a repeat of a code only while it is allowed. RevokeUserSessions
// with a Keep, called after every login, answers a user with no more
// sessions than Keep in u:<uid> by counting them alone, and otherwise
// reads each session once and writes only when more than Keep are still
// rotatable. MoveUserSessions (a merge of users) is one script over
// u:<from>; EraseUserSessions deletes the user's sessions in one script,
// then looks through every code in cx a chunk per script for those of the
// erased identities (codes have no index by identity). Commands are never
// retried by the client (a retried rotation whose first attempt ran would
// read as a replay and revoke the session).
//
// # Speed
//
// SessionByAccess, the check behind every GET /v1/session, is one GET of
// the encoded session under the access key, decoded without a copy of its
// strings. When many are in flight at once they are batched through
// go-redis's autopipeliner (see Options.NoAutoPipeline).
//
// # DeleteExpired
//
// TTLs do most of the work. DeleteExpired removes what they have not yet:
// sessions dead at now (revoked, refresh expired or past ExpiresAt) and
// codes with ExpiresAt <= now, found through the two index keys, in chunks
// of 500 per script, each checked again (exactly) before it is deleted. It
// returns how many sessions and codes it deleted itself; index entries of
// sessions and codes that had already expired are dropped uncounted, with
// what is left of such a session (its hash and refresh tokens). Those are
// what DeleteExpired is needed for in production (the service's janitor
// runs it every ten minutes): without it the index keys would keep an
// entry (about 100 bytes) per session and code, and each ended session its
// hash and refresh tokens, until they expire.
//
// # Durability
//
// Redis here may run without persistence (no RDB, no AOF). Then a Redis
// restart, or a failover to a replica that had not caught up, loses every
// session and refresh token: everybody is logged out and must log in
// again (wx.login gives a new code; identities and users are in SQL and
// are unaffected), and a login code exchanged before the restart is no
// longer recognised when it is repeated. Run Redis with AOF
// (appendonly yes) if that is not acceptable.
//
// # Errors
//
// Connection refused, timeouts, a closed store and Redis replies such as
// LOADING, READONLY, BUSY or OOM wrap store.ErrUnavailable together with
// the go-redis error; the client reconnects by itself when Redis is back
// (within about a second: go-redis backs off dialing after failures).
// A canceled context wraps context.Canceled; an expired deadline wraps
// both store.ErrUnavailable and context.DeadlineExceeded.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/mplogin/mplogin/internal/redact"
	"github.com/mplogin/mplogin/store"
)

// Options configures Open. The zero value is usable.
type Options struct {
	// KeyPrefix starts every key. Empty means "mplogin:".
	KeyPrefix string
	// DialTimeout, ReadTimeout and WriteTimeout bound connecting and each
	// command; a call that runs into one fails with store.ErrUnavailable.
	// Zero means the URL's dial_timeout, read_timeout and write_timeout
	// parameters, or 2s, 1s and 1s when it has none.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// PoolSize is the most connections kept open. Zero means the URL's
	// pool_size, or go-redis's default (10 per GOMAXPROCS).
	PoolSize int
	// ExpiryGrace is added to every TTL (see the package comment). Zero
	// means one minute.
	ExpiryGrace time.Duration
	// Now is the clock TTLs are computed from. Nil means time.Now. The
	// methods' own time arguments decide everything else.
	Now func() time.Time
	// Logger receives notices. Nil discards them.
	//
	// go-redis also logs by itself (a pool that fails to dial, a Sentinel
	// that does not answer), through one logger for the whole process that
	// prints on stderr. Open with a Logger replaces that one: the lines go
	// to this Logger at warn level, without the URL's passwords. Being
	// process-wide, it serves every go-redis client of the process, and
	// the last store opened with a Logger is the one that receives them.
	// Open without a Logger leaves go-redis's logger as it is.
	Logger *slog.Logger

	// NoAutoPipeline sends every command on a connection of its own. By
	// default, when more than a few reads (SessionByAccess and GetCode,
	// one GET each) are in flight, the further ones go through go-redis's
	// autopipeliner (EXPERIMENTAL in go-redis), which batches the GETs of
	// concurrent callers into one write and one read: under load that
	// saves most of the system calls on both sides (2–3× the GETs per
	// second on 2 cores), while a lone caller keeps the direct path. A
	// batched read is bounded by ReadTimeout/WriteTimeout rather than by
	// the caller's context once it is queued. Either way every read checks
	// that what came back belongs to the hash asked for.
	NoAutoPipeline bool
}

// Defaults for Options.
const (
	DefaultKeyPrefix    = "mplogin:"
	defaultDialTimeout  = 2 * time.Second
	defaultReadTimeout  = time.Second
	defaultWriteTimeout = time.Second
	defaultGrace        = time.Minute
	// maxTTL bounds every TTL: a key with a longer one would outlive
	// anything it could be used for.
	maxTTL = 100 * 365 * 24 * time.Hour
)

// Store is a store.SessionStore in Redis. It is safe for concurrent use.
type Store struct {
	c *goredis.Client
	// ap is c's autopipeliner, nil with NoAutoPipeline; reads counts the
	// GETs in flight, which decides whether they go through it.
	ap     *goredis.AutoPipeliner
	reads  atomic.Int64
	prefix string
	// Key prefixes of the keys read without a script.
	accessPrefix, codePrefix string
	graceMs, maxTTLms        string
	now                      func() time.Time
	log                      *slog.Logger

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var _ store.SessionStore = (*Store)(nil)

// Open connects to the Redis rawURL names and checks that it answers and
// is Redis 7 or later. An unreachable Redis fails with an error that wraps
// store.ErrUnavailable. Errors never contain a password: where they name
// the URL, its password and every query value are masked.
//
// rawURL is redis://[[user]:password@]host[:port][/db][?params], or
// rediss://… for TLS, parsed by go-redis's ParseURL. With a master_name
// parameter it names Sentinels instead, parsed by go-redis's
// ParseFailoverURL, and the store follows the primary they report; there
// the user information is the Sentinels' and Redis's own password is the
// password parameter:
//
//	redis://sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379&password=…
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if opts.Logger != nil {
		// Before the client exists: go-redis may log while it builds one.
		goredis.SetLogger(goredisLogger{log: opts.Logger, secrets: redact.Passwords(rawURL)})
	}
	c, err := newClient(rawURL, opts)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message would quote the whole URL
		}
		// go-redis quotes the value it could not use, which may be a
		// secret under a key it does not know: scrub them all.
		return nil, fmt.Errorf("redis: invalid URL %s: %s", redact.URL(rawURL), redact.Scrub(err.Error(), redact.Values(rawURL)))
	}

	grace := opts.ExpiryGrace
	if grace <= 0 {
		grace = defaultGrace
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	s := &Store{
		c:            c,
		prefix:       prefix,
		accessPrefix: prefix + "a:",
		codePrefix:   prefix + "c:",
		graceMs:      strconv.FormatInt(grace.Milliseconds(), 10),
		maxTTLms:     strconv.FormatInt(maxTTL.Milliseconds(), 10),
		now:          opts.Now,
		log:          opts.Logger,
	}
	if !opts.NoAutoPipeline {
		ap, err := s.c.AutoPipeline()
		if err != nil {
			_ = s.c.Close()
			return nil, fmt.Errorf("redis: autopipeline: %w", err)
		}
		s.ap = ap
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.checkServer(ctx); err != nil {
		_ = s.c.Close()
		return nil, redact.Error(fmt.Errorf("redis: open %s: %w", redact.URL(rawURL), err), redact.Passwords(rawURL))
	}
	s.log.Debug("session store connected", "redis", redact.URL(rawURL), "prefix", prefix)
	return s, nil
}

// checkServer pings Redis and checks its version: the scripts use ZADD LT,
// PEXPIRE LT and ZRANGE BYSCORE, which Redis 7 has.
func (s *Store) checkServer(ctx context.Context) error {
	const op = "ping"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	info, err := s.c.Info(ctx, "server").Result()
	if err != nil {
		return s.fail(ctx, op, err)
	}
	for line := range strings.Lines(info) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		major, _, _ := strings.Cut(v, ".")
		if n, err := strconv.Atoi(major); err == nil && n < 7 {
			return fmt.Errorf("redis: Redis %s is too old: need 7.0 or later", v)
		}
	}
	return nil
}

// newClient returns a client for rawURL: a plain one, or one that asks
// Sentinel for the primary when the URL has a master_name parameter.
func newClient(rawURL string, opts Options) (*goredis.Client, error) {
	if u, err := url.Parse(rawURL); err == nil && u.Query().Has("master_name") {
		o, err := goredis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, err
		}
		o.DialTimeout = pick(opts.DialTimeout, o.DialTimeout, defaultDialTimeout)
		o.ReadTimeout = pick(opts.ReadTimeout, o.ReadTimeout, defaultReadTimeout)
		o.WriteTimeout = pick(opts.WriteTimeout, o.WriteTimeout, defaultWriteTimeout)
		if opts.PoolSize > 0 {
			o.PoolSize = opts.PoolSize
		}
		// As below.
		o.MaxRetries = -1
		o.DialerRetries = 1
		o.ContextTimeoutEnabled = true
		o.DisableIdentity = true
		o.ReplicaOnly, o.RouteByLatency, o.RouteRandomly = false, false, false
		return goredis.NewFailoverClient(o), nil
	}
	o, err := goredis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	o.DialTimeout = pick(opts.DialTimeout, o.DialTimeout, defaultDialTimeout)
	o.ReadTimeout = pick(opts.ReadTimeout, o.ReadTimeout, defaultReadTimeout)
	o.WriteTimeout = pick(opts.WriteTimeout, o.WriteTimeout, defaultWriteTimeout)
	if opts.PoolSize > 0 {
		o.PoolSize = opts.PoolSize
	}
	// Never resend a command: a script that ran but whose reply was lost
	// would run twice (a rotation would then read as a replay).
	o.MaxRetries = -1
	// One dial attempt: an unreachable Redis fails the call at once, and
	// the next call dials again.
	o.DialerRetries = 1
	// Deadlines of the callers' contexts bound the network I/O too.
	o.ContextTimeoutEnabled = true
	// No CLIENT SETINFO / MAINT_NOTIFICATIONS round trips on each new
	// connection; Redis 7.0 knows neither.
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return goredis.NewClient(o), nil
}

func pick(given, fromURL, def time.Duration) time.Duration {
	switch {
	case given > 0:
		return given
	case fromURL > 0:
		return fromURL
	}
	return def
}

// goredisLogger is go-redis's logger (see Options.Logger).
type goredisLogger struct {
	log     *slog.Logger
	secrets []string // the URL's passwords, scrubbed should go-redis ever quote one
}

func (l goredisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis: go-redis", "detail", redact.Scrub(fmt.Sprintf(format, v...), l.secrets))
}

// Ping implements store.SessionStore.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.begin(ctx, op); err != nil {
		return err
	}
	return s.fail(ctx, op, s.c.Ping(ctx).Err())
}

// Close implements store.SessionStore. Calls after Close fail with
// store.ErrUnavailable; closing twice is not an error. The data stays in
// Redis.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if err := s.c.Close(); err != nil {
			s.closeErr = fmt.Errorf("redis: close: %w", err)
		}
	})
	return s.closeErr
}

// begin fails a call before it sends anything when ctx is done or the store
// is closed.
func (s *Store) begin(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return s.fail(ctx, op, err)
	}
	if s.closed.Load() {
		return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, goredis.ErrClosed)
	}
	return nil
}

// fail wraps err with op and classifies it (see the package comment).
// fail(ctx, op, nil) is nil.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrReused):
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	if cerr := ctx.Err(); cerr != nil {
		if !errors.Is(err, cerr) {
			// go-redis reports an interrupted read in its own words.
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
		}
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	if s.closed.Load() || unavailable(err) {
		return fmt.Errorf("redis: %s: %w: %w", op, store.ErrUnavailable, err)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// unavailable reports whether err means Redis did not answer, or answered
// that it cannot serve now, as opposed to refusing the request.
func unavailable(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		// Not a reply: dial, I/O, timeout, pool timeout, closed client.
		return true
	}
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN",
		"CLUSTERDOWN", "OOM", "NOREPLICAS", "MISCONF", "ERR max number of clients"} {
		if strings.HasPrefix(re.Error(), p) {
			return true
		}
	}
	return false
}

func notFound(op string) error { return fmt.Errorf("redis: %s: %w", op, store.ErrNotFound) }

// get GETs key. Once more than batchFrom GETs are in flight, the
// further ones go through the autopipeliner: batching pays under load, and
// a lone caller skips its goroutine hand-offs.
func (s *Store) get(ctx context.Context, key string) (string, error) {
	if s.ap == nil {
		return s.c.Get(ctx, key).Result()
	}
	defer s.reads.Add(-1)
	if s.reads.Add(1) > batchFrom {
		return s.ap.Get(ctx, key).Result()
	}
	return s.c.Get(ctx, key).Result()
}

// batchFrom is how many GETs in flight go unbatched. Measured on 2 cores:
// below it batching only adds hand-offs, above it batching wins (2–3× the
// GETs per second at 32 callers per core).
const batchFrom = 4

// run runs script with the arguments every script takes first, then args.
func (s *Store) run(ctx context.Context, script *goredis.Script, args ...any) *goredis.Cmd {
	all := make([]any, 0, 4+len(args))
	all = append(all, s.prefix, strconv.FormatInt(s.now().UnixMilli(), 10), s.graceMs, s.maxTTLms)
	all = append(all, args...)
	return script.Run(ctx, s.c, nil, all...)
}

// Scripter is the store's connection pool, for other users of the same
// Redis (the service's shared rate limits): one pool, one set of timeouts.
// It is closed with the store.
func (s *Store) Scripter() goredis.Scripter { return s.c }
