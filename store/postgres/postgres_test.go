package postgres_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/postgres"
	"github.com/mplogin/mplogin/store/storetest"
)

// TestConformance runs the suite with a fresh, empty schema per subtest.
func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, dsn, postgres.Options{Schema: freshSchema(t, admin)})
	})
}

func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	return len(files)
}

func TestMigrationsIdempotent(t *testing.T) {
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	for i := range 3 {
		s := mustOpen(t, dsn, postgres.Options{Schema: schema})
		if err := s.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	want := migrationCount(t)
	if got := count(t, admin, `SELECT count(*) FROM `+table(schema, "schema_migrations")); got != want {
		t.Fatalf("schema_migrations has %d rows after three opens, want %d", got, want)
	}
	if got := count(t, admin, `SELECT max(version) FROM `+table(schema, "schema_migrations")); got != want {
		t.Fatalf("latest version %d, want %d", got, want)
	}
}

// TestMigrationsConcurrentOpen opens one new schema from several stores at
// once, as instances starting together would: every Open succeeds, and the
// schema and each migration are created once.
func TestMigrationsConcurrentOpen(t *testing.T) {
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	const n = 8
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema, MaxConns: 2})
			if err == nil {
				err = s.Ping(t.Context())
				s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	want := migrationCount(t)
	if got := count(t, admin, `SELECT count(*) FROM `+table(schema, "schema_migrations")); got != want {
		t.Fatalf("schema_migrations has %d rows, want %d", got, want)
	}
	if got := count(t, admin, `SELECT count(DISTINCT version) FROM `+table(schema, "schema_migrations")); got != want {
		t.Fatalf("schema_migrations has %d versions, want %d", got, want)
	}
}

func TestMigrationFromTheFuture(t *testing.T) {
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	mustOpen(t, dsn, postgres.Options{Schema: schema}).Close()
	_, err := admin.Exec(t.Context(), `INSERT INTO `+table(schema, "schema_migrations")+
		` (version, name) VALUES (9999, '9999_future.sql')`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
	if err == nil {
		s.Close()
		t.Fatal("Open of a database migrated by a newer version succeeded")
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("error %q does not name the unknown migration", err)
	}
}

// TestSchemaHasNoSecrets pins every table's columns: a new column is a
// deliberate change of this list, and none of them may hold a token or a
// session key in clear.
func TestSchemaHasNoSecrets(t *testing.T) {
	_, admin, schema := openFresh(t)

	want := map[string][]string{
		"users": {"id", "created_at", "phone", "phone_source", "phone_app", "phone_updated_at",
			"blocked", "blocked_reason", "blocked_at", "phone_lookup"},
		"identities": {"platform", "app_id", "open_id", "union_id", "user_id",
			"session_key", "prev_session_key", "prev_key_expires_at", "created_at", "updated_at",
			"decrypt_attempts"},
		"sessions": {"id", "user_id", "app", "platform", "app_id", "open_id",
			"access_hash", "access_expires_at", "refresh_hash", "refresh_expires_at",
			"created_at", "expires_at", "last_used_at", "revoked_at", "decrypt_failures", "union_id",
			"prev_access_hash", "origin", "last_spent_hash", "successor", "successor_until"},
		"refresh_tokens": {"hash", "session_id", "spent", "expires_at"},
		"codes": {"hash", "app", "platform", "app_id", "open_id", "expires_at",
			"session_id", "replay_until", "replays"},
		"access_tokens":     {"cache_key", "sealed", "expires_at", "refresh_at"},
		"schema_migrations": {"version", "name", "applied_at"},
		"leases":            {"lease_key", "holder", "until"},
		"signing_keys":      {"id", "sealed", "version", "updated_at"},
	}
	// The only columns that carry secret material, and what they hold.
	blobs := map[string]bool{
		"identities.session_key":      true, // sealed by the caller
		"identities.prev_session_key": true, // sealed by the caller
		"sessions.access_hash":        true, // SHA-256
		"sessions.refresh_hash":       true, // SHA-256
		"sessions.prev_access_hash":   true, // SHA-256
		"sessions.last_spent_hash":    true, // SHA-256
		"sessions.successor":          true, // sealed by the caller
		"refresh_tokens.hash":         true, // SHA-256
		"codes.hash":                  true, // SHA-256
		"access_tokens.sealed":        true, // sealed by the caller
		"signing_keys.sealed":         true, // sealed by the caller: private keys
		"users.phone":                 true, // sealed by the caller
		"users.phone_lookup":          true, // HMAC-SHA256 under a key of the master key
	}

	// The catalogue's view of the schema: its tables, and their columns in
	// order.
	rows, err := admin.Query(t.Context(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]storetest.Column{}
	for _, name := range names {
		rows, err := admin.Query(t.Context(), `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, name)
		if err != nil {
			t.Fatal(err)
		}
		if tables[name], err = pgx.CollectRows(rows, pgx.RowToStructByPos[storetest.Column]); err != nil {
			t.Fatal(err)
		}
	}
	storetest.CheckSchema(t, tables, storetest.SchemaRules{Tables: want, Secret: blobs,
		BlobType: "bytea", TimeType: "timestamp with time zone"})
}

// TestStoresWhatItWasGiven looks in the tables: hashes and sealed keys are
// stored byte for byte, never re-encoded.
func TestStoresWhatItWasGiven(t *testing.T) {
	ctx := t.Context()
	s, admin, schema := openFresh(t)
	sealedKey := []byte("\x01sealed-session-key-fixture\x00\xfe\xff")
	if _, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{
		Family: "wechat", AppID: "wxA", OpenID: "o1",
		SealedSessionKey: sealedKey, NewUserID: "u1", Now: now,
	}); err != nil {
		t.Fatalf("UpsertIdentity: %v", err)
	}
	sess := session("s1")
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	var key, access, refresh []byte
	if err := admin.QueryRow(ctx, `SELECT session_key FROM `+table(schema, "identities")).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if err := admin.QueryRow(ctx, `SELECT s.access_hash, t.hash FROM `+table(schema, "sessions")+` s JOIN `+
		table(schema, "refresh_tokens")+` t ON t.session_id = s.id`).Scan(&access, &refresh); err != nil {
		t.Fatal(err)
	}
	if string(key) != string(sealedKey) || string(access) != string(sess.AccessHash) || string(refresh) != string(sess.RefreshHash) {
		t.Fatalf("stored %x, %x, %x; want %x, %x, %x", key, access, refresh, sealedKey, sess.AccessHash, sess.RefreshHash)
	}
}

// TestSweepRemovesRefreshTokens looks in the table: DeleteExpired must take
// a dead session's refresh tokens, spent ones included, with it.
func TestSweepRemovesRefreshTokens(t *testing.T) {
	ctx := t.Context()
	s, admin, schema := openFresh(t)
	for _, id := range []string{"live", "dead"} {
		if err := s.CreateSession(ctx, session(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotateRefresh(ctx, store.Rotation{
			OldRefreshHash: session(id).RefreshHash,
			NewAccessHash:  sum("a2" + id), AccessExpiresAt: now.Add(time.Hour),
			NewRefreshHash: sum("r2" + id), RefreshExpiresAt: now.Add(24 * time.Hour),
			Now: now,
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeSession(ctx, "dead", now); err != nil {
		t.Fatal(err)
	}
	tokens := table(schema, "refresh_tokens")
	if got := count(t, admin, `SELECT count(*) FROM `+tokens); got != 4 {
		t.Fatalf("%d refresh tokens before the sweep, want 4", got)
	}
	if n, err := s.DeleteExpired(ctx, now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1, nil", n, err)
	}
	if got := count(t, admin, `SELECT count(*) FROM `+tokens+` WHERE session_id = 'dead'`); got != 0 {
		t.Fatalf("%d refresh tokens of the swept session remain", got)
	}
	if got := count(t, admin, `SELECT count(*) FROM `+tokens+` WHERE session_id = 'live'`); got != 2 {
		t.Fatalf("%d refresh tokens of the live session remain, want 2", got)
	}
}

// A sweep larger than one chunk removes every dead row, chunk by chunk,
// and keeps live ones.
func TestDeleteExpiredInChunks(t *testing.T) {
	ctx := t.Context()
	s, admin, schema := openFresh(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const deadCodes, deadSessions, live = 2500, 1200, 10
	// Rows in bulk through the admin connection; the store sweeps them.
	_, err := admin.Exec(ctx, `INSERT INTO `+table(schema, "codes")+` (hash, app, platform, app_id, open_id, expires_at)
		SELECT sha256(i::text::bytea), 'a', 'wechat', 'wx', 'o',
			CASE WHEN i < $1 THEN $2::timestamptz - interval '1 minute' ELSE $2::timestamptz + interval '1 hour' END
		FROM generate_series(0, $1::int + $3::int - 1) i`, deadCodes, base, live)
	if err != nil {
		t.Fatal(err)
	}
	for i := range deadSessions + live {
		sess := session(fmt.Sprint("s", i))
		sess.ExpiresAt = time.Time{}
		sess.RefreshExpiresAt = base.Add(-time.Minute)
		if i >= deadSessions {
			sess.RefreshExpiresAt = base.Add(time.Hour)
		}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpired(ctx, base)
	if err != nil || n != deadCodes+deadSessions {
		t.Fatalf("removed %d, %v; want %d", n, err, deadCodes+deadSessions)
	}
	liveCode := sha256.Sum256(fmt.Append(nil, deadCodes))
	if _, err := s.GetCode(ctx, liveCode[:], base); err != nil {
		t.Fatalf("live code gone: %v", err)
	}
	if got := count(t, admin, `SELECT count(*) FROM `+table(schema, "codes")); got != live {
		t.Fatalf("%d codes left, want %d", got, live)
	}
	if got := count(t, admin, `SELECT count(*) FROM `+table(schema, "refresh_tokens")); got != live {
		t.Fatalf("%d refresh tokens left, want %d", got, live)
	}
}

// withPassword returns dsn with its password set to pw.
func withPassword(t *testing.T, dsn, pw string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("%s is not a URL; cannot add a password to it", envDSN)
	}
	user := "postgres"
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, pw)
	return u.String()
}

const testPassword = "pw-Zq8vT3xK"

// wantUnavailable fails t unless err wraps store.ErrUnavailable, came within
// bound, and does not show the password.
func wantUnavailable(t *testing.T, what string, err error, took, bound time.Duration) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("%s: err = %v, want ErrUnavailable", what, err)
	}
	if took > bound {
		t.Errorf("%s took %v, want at most %v", what, took, bound)
	}
	if err != nil && strings.Contains(err.Error(), testPassword) {
		t.Errorf("%s: the error shows the password: %v", what, err)
	}
}

// TestUnreachable: a server that refuses or does not answer makes Open fail
// with ErrUnavailable, promptly, without showing the password.
func TestUnreachable(t *testing.T) {
	t.Run("Refused", func(t *testing.T) {
		for _, dsn := range []string{
			"postgres://mplogin:" + testPassword + "@127.0.0.1:1/mplogin?sslmode=disable",
			"postgresql://mplogin:" + testPassword + "@127.0.0.1:1/mplogin",
			"host=127.0.0.1 port=1 user=mplogin password=" + testPassword + " sslmode=disable",
		} {
			start := time.Now()
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err == nil {
				s.Close()
			}
			wantUnavailable(t, "Open on a closed port", err, time.Since(start), 5*time.Second)
		}
	})

	// A listener that accepts connections and never answers: the connect
	// timeout ends the wait.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c) // read whatever comes, answer nothing
		}
	}()
	defer func() {
		silent.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	dsn := "postgres://mplogin:" + testPassword + "@" + silent.Addr().String() + "/mplogin?sslmode=disable"

	t.Run("ConnectTimeout", func(t *testing.T) {
		start := time.Now()
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{ConnectTimeout: 200 * time.Millisecond})
		if err == nil {
			s.Close()
		}
		wantUnavailable(t, "Open on a silent server", err, time.Since(start), 3*time.Second)
	})
	t.Run("Deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		s, err := postgres.Open(ctx, dsn, postgres.Options{ConnectTimeout: time.Minute})
		if err == nil {
			s.Close()
		}
		wantUnavailable(t, "Open on a silent server past the deadline", err, time.Since(start), 3*time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded too", err)
		}
	})
}

// TestBadDSN: a DSN that does not parse is refused without showing its
// password.
func TestBadDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:" + testPassword + "@h:x/db",
		"postgres://u:" + testPassword + "@h/db?sslmode=bogus",
		"postgres://u:" + testPassword + "@h/db?connect_timeout=soon",
	} {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("Open: the error shows the password: %v", err)
		}
	}
}

// TestBadDSNShowsNoQueryValue: an error that quotes a DSN shows none of its
// query values (any may be a secret: sslpassword, a password under a
// mistyped key) and no password, raw or decoded; it still names the host.
func TestBadDSNShowsNoQueryValue(t *testing.T) {
	const secret = "qv-Hk29fZ/+"
	raw := url.QueryEscape(secret)
	for _, dsn := range []string{
		"postgres://u:" + testPassword + "@db.internal:x/db?x=" + raw,
		"postgres://u@db.internal/db?sslmode=bogus&sslpassword=" + raw + "&passwd=" + raw,
		"postgres://u@db.internal/db?connect_timeout=" + raw,
		"postgres://u@db.internal/db?pool_max_conns=" + raw,
		"postgresql://u:" + url.PathEscape(testPassword) + "@db.internal/db?sslmode=" + raw,
		"host=db.internal user=u sslpassword=" + raw + " sslmode=" + raw,
		"host=db.internal user=u passwd='" + secret + "' sslmode=bogus",
	} {
		s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		msg := err.Error()
		t.Logf("Open(…) = %s", msg)
		for _, v := range []string{secret, raw, testPassword, "Hk29"} {
			if strings.Contains(msg, v) {
				t.Errorf("the error shows %q: %s", v, msg)
			}
		}
		if !strings.Contains(msg, "db.internal") {
			t.Errorf("the error does not name the server: %s", msg)
		}
		var pe *pgconn.ParseConfigError
		if !errors.As(err, &pe) {
			t.Errorf("the error lost pgx's: %#v", err)
		}
	}
}

// TestRefusedIsNotUnavailable: a server that answers but refuses the
// connection (here: no such database) is a configuration error, not an
// outage.
func TestRefusedIsNotUnavailable(t *testing.T) {
	u, err := url.Parse(testDSN(t))
	if err != nil || u.Scheme == "" {
		t.Skipf("%s is not a URL", envDSN)
	}
	u.Path = "/mplogin_no_such_database"
	s, err := postgres.Open(t.Context(), u.String(), postgres.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open of a database that does not exist succeeded")
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open of a database that does not exist: %v, want an error other than ErrUnavailable", err)
	}
}

// TestClosed: after Close every call fails with ErrUnavailable at once,
// without showing the password.
func TestClosed(t *testing.T) {
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	// The test server trusts its clients, so any password will do.
	s := mustOpen(t, withPassword(t, dsn, testPassword), postgres.Options{Schema: freshSchema(t, admin)})
	if err := s.CreateSession(t.Context(), session("s1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.SessionByID(t.Context(), "s1")
	wantUnavailable(t, "SessionByID after Close", err, time.Since(start), time.Second)
	err = s.Ping(t.Context())
	wantUnavailable(t, "Ping after Close", err, time.Since(start), time.Second)
	_, err = s.RotateRefresh(t.Context(), store.Rotation{OldRefreshHash: session("s1").RefreshHash,
		NewAccessHash: sum("a"), NewRefreshHash: sum("r"), Now: now})
	wantUnavailable(t, "RotateRefresh after Close", err, time.Since(start), time.Second)
}

// TestStatementTimeout holds a session's row lock from another connection:
// writes to the session give up after the statement timeout with
// ErrUnavailable, and reads, which take no lock, carry on.
func TestStatementTimeout(t *testing.T) {
	ctx := t.Context()
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	s := mustOpen(t, dsn, postgres.Options{Schema: schema, StatementTimeout: 100 * time.Millisecond})
	if err := s.CreateSession(ctx, session("s1")); err != nil {
		t.Fatal(err)
	}
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT FROM `+table(schema, "sessions")+` WHERE id = 's1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = s.RotateRefresh(ctx, store.Rotation{
		OldRefreshHash: session("s1").RefreshHash,
		NewAccessHash:  sum("a2"), NewRefreshHash: sum("r2"),
		AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(time.Hour), Now: now,
	})
	wantUnavailable(t, "RotateRefresh under a foreign row lock", err, time.Since(start), 5*time.Second)
	if err != nil && !strings.HasPrefix(err.Error(), "postgres: rotate refresh: ") {
		t.Errorf("error %q does not say where it comes from", err)
	}
	start = time.Now()
	_, err = s.AddDecryptFailure(ctx, "s1")
	wantUnavailable(t, "AddDecryptFailure under a foreign row lock", err, time.Since(start), 5*time.Second)
	if _, err := s.SessionByID(ctx, "s1"); err != nil {
		t.Fatalf("SessionByID under a foreign row lock: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDecryptFailure(ctx, "s1"); err != nil {
		t.Fatalf("AddDecryptFailure after the lock was released: %v", err)
	}
}

// TestRecoversFromLostConnections ends the store's server connections, as
// a server restart does: calls fail at most with ErrUnavailable, and the
// store works again without being reopened.
func TestRecoversFromLostConnections(t *testing.T) {
	ctx := t.Context()
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("%s is not a URL", envDSN)
	}
	app := "mplogin_test_" + fmt.Sprint(time.Now().UnixNano())
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	var logs testutil.Buffer
	s := mustOpen(t, u.String(), postgres.Options{Schema: freshSchema(t, admin), MaxConns: 4,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := s.CreateSession(ctx, session("s1")); err != nil {
		t.Fatal(err)
	}

	// kill fills the pool with connections, then ends them all.
	kill := func() {
		t.Helper()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, err := s.SessionByID(ctx, "s1"); err != nil {
					t.Errorf("SessionByID: %v", err)
				}
			})
		}
		wg.Wait()
		if n := count(t, admin, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app); n == 0 {
			t.Fatal("no connection of the store to end")
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if count(t, admin, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the store's connections did not end")
			}
		}
	}

	// A read runs again on a new connection.
	kill()
	if _, err := s.SessionByID(ctx, "s1"); err != nil {
		t.Fatalf("SessionByID after the connections were ended: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after the connections were ended: %v", err)
	}

	// A write may fail once, as unavailable: whether it was done is unknown.
	kill()
	err = s.RevokeSession(ctx, "s1", now)
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("RevokeSession after the connections were ended: %v, want nil or ErrUnavailable", err)
	}
	if err := s.RevokeSession(ctx, "s1", now); err != nil {
		t.Fatalf("second RevokeSession after the connections were ended: %v", err)
	}
	for i := range 3 {
		sess, err := s.SessionByID(ctx, "s1")
		if err != nil || !sess.RevokedAt.Equal(now) {
			t.Fatalf("SessionByID %d = %+v, %v; want it revoked", i, sess, err)
		}
	}
	if !strings.Contains(logs.String(), "connection to the server broke") {
		t.Errorf("nothing logged about the broken connections; log:\n%s", logs.String())
	}
}

// TestReopen: what a store wrote is there for the next one, spent tokens
// included.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	s := mustOpen(t, dsn, postgres.Options{Schema: schema})
	if err := s.CreateSession(ctx, session("s1")); err != nil {
		t.Fatal(err)
	}
	rot := store.Rotation{
		OldRefreshHash: session("s1").RefreshHash,
		NewAccessHash:  sum("a2"), AccessExpiresAt: now.Add(2 * time.Hour),
		NewRefreshHash: sum("r2"), RefreshExpiresAt: now.Add(40 * 24 * time.Hour),
		Now: now.Add(time.Minute),
	}
	want, err := s.RotateRefresh(ctx, rot)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpen(t, dsn, postgres.Options{Schema: schema})
	got, err := s.SessionByAccess(ctx, sum("a2"))
	if err != nil || got.ID != want.ID || !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Fatalf("session after reopen = %+v, %v; want %+v", got, err, want)
	}
	rot.NewAccessHash, rot.NewRefreshHash = sum("a3"), sum("r3")
	if _, err := s.RotateRefresh(ctx, rot); !errors.Is(err, store.ErrReused) {
		t.Fatalf("replay after reopen: %v, want ErrReused", err)
	}
}

// TestDefaultSearchPath: without Options.Schema the tables go where the
// DSN's search_path says.
func TestDefaultSearchPath(t *testing.T) {
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	if _, err := admin.Exec(t.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		t.Skipf("%s is not a URL", envDSN)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	s := mustOpen(t, u.String(), postgres.Options{})
	if err := s.CreateSession(t.Context(), session("s1")); err != nil {
		t.Fatal(err)
	}
	if got := count(t, admin, `SELECT count(*) FROM `+table(schema, "sessions")); got != 1 {
		t.Fatalf("%d sessions in %s, want 1", got, schema)
	}
}

// TestUnionIDRace: new identities of one person in several apps, logging
// in at once, all end up with one user, as they would one after another.
func TestUnionIDRace(t *testing.T) {
	s, _, _ := openFresh(t)
	for round := range 5 {
		const n = 10
		unionID := fmt.Sprint("union-", round)
		type result struct {
			id      store.Identity
			created bool
			err     error
		}
		results := make([]result, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				id, created, err := s.UpsertIdentity(t.Context(), store.IdentityUpsert{
					Family: "wechat", AppID: fmt.Sprint("wx", i), OpenID: fmt.Sprint("o", round, "-", i),
					UnionID: unionID, NewUserID: fmt.Sprint("u", round, "-", i), Now: now,
				})
				results[i] = result{id, created, err}
			})
		}
		close(start)
		wg.Wait()
		creators := 0
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, r.err)
			}
			if r.created {
				creators++
			}
			if r.id.UserID != results[0].id.UserID {
				t.Fatalf("round %d: callers 0 and %d got users %s and %s", round, i, results[0].id.UserID, r.id.UserID)
			}
		}
		if creators != 1 {
			t.Fatalf("round %d: %d callers created a user, want 1", round, creators)
		}
	}
}
