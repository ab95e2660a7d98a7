package sqlite_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/sqlite"
	"github.com/mplogin/mplogin/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "mplogin.db"), sqlite.Options{})
	})
}

// The same suite with the session cache and the code filter, as the
// service opens the store: every write that changes a session must be seen
// by the next read, and every code stored must be found.
func TestConformanceCached(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "mplogin.db"), sqlite.Options{CacheSessions: 100, FilterCodes: true})
	})
}

// Reads racing with revocations never leave a revoked session in the
// cache: after every revocation has returned, every read sees it.
func TestCacheRaceWithRevoke(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "c.db"), sqlite.Options{CacheSessions: 1000})
	ctx := t.Context()
	const n = 200
	var sessions []store.Session
	for i := range n {
		sess := session(fmt.Sprint("s", i))
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, sess)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 { // readers fill the cache all the time
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.SessionByAccess(ctx, sessions[i%n].AccessHash); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for _, sess := range sessions {
		if err := s.RevokeSession(ctx, sess.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	for _, sess := range sessions {
		got, err := s.SessionByAccess(ctx, sess.AccessHash)
		if err != nil || got.RevokedAt.IsZero() {
			t.Fatalf("session %s after its revocation: revoked at %v, %v", sess.ID, got.RevokedAt, err)
		}
	}
}

func mustOpen(t testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawDB opens path with the driver directly, beside the store, to look at
// what the store wrote.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

var now = time.Date(2025, time.March, 14, 9, 26, 53, 589793000, time.UTC)

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func session(id string) store.Session { return storetest.Session(id, now) }

func TestOpenRejectsMemory(t *testing.T) {
	for _, p := range []string{"", ":memory:"} {
		if s, err := sqlite.Open(t.Context(), p, sqlite.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

// TestOpenOddPath checks that a path with URI syntax in it stays a path.
func TestOpenOddPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d&_pragma=x")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "my db.sqlite")
	s := mustOpen(t, path, sqlite.Options{})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at the given path: %v", err)
	}
}

// TestOpenRelativePath checks that a relative path is taken from the working
// directory, as a shell user means it, including odd characters.
func TestOpenRelativePath(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	for _, rel := range []string{
		"mplogin.db",
		"./dot.db",
		filepath.Join("data dir", "ünï 数据 ?#%41&x=1.db"),
		filepath.Join("..", filepath.Base(root), "up.db"),
	} {
		if dir := filepath.Dir(rel); dir != "." && dir != ".." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		s := mustOpen(t, rel, sqlite.Options{})
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("%q: Ping: %v", rel, err)
		}
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			t.Fatalf("%q: database not created relative to the working directory: %v", rel, err)
		}
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	for i := range 3 {
		s := mustOpen(t, path, sqlite.Options{})
		if err := s.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	db := rawDB(t, path)
	if got := count(t, db, `SELECT count(*) FROM schema_migrations`); got != len(files) {
		t.Fatalf("schema_migrations has %d rows after three opens, want %d", got, len(files))
	}
	if got := count(t, db, `SELECT max(version) FROM schema_migrations`); got != len(files) {
		t.Fatalf("latest version %d, want %d", got, len(files))
	}
}

// TestMigrationsConcurrentOpen opens one new file from several stores at
// once, as instances started together by mistake would: one Store at a
// time has the file (the others are refused with ErrInUse), and each
// migration applies once.
func TestMigrationsConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	opened := 0
	for range cap(errs) {
		switch err := <-errs; {
		case err == nil:
			opened++
		case !errors.Is(err, sqlite.ErrInUse):
			t.Fatalf("Open: %v", err)
		}
	}
	if opened == 0 {
		t.Fatal("every Open was refused")
	}
	files, _ := filepath.Glob("migrations/*.sql")
	if got := count(t, rawDB(t, path), `SELECT count(*) FROM schema_migrations`); got != len(files) {
		t.Fatalf("schema_migrations has %d rows, want %d", got, len(files))
	}
}

// TestMigrationAddsDecryptFailures opens a database from before migration
// 0002 that holds a session: the session gets a count of 0, which then
// increments.
func TestMigrationAddsDecryptFailures(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	s := mustOpen(t, path, sqlite.Options{})
	if err := s.CreateSession(ctx, session("s1")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Undo 0002 by hand: what a database written by the previous version
	// looks like.
	db := rawDB(t, path)
	for _, q := range []string{
		`ALTER TABLE sessions DROP COLUMN decrypt_failures`,
		`DELETE FROM schema_migrations WHERE version = 2`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s = mustOpen(t, path, sqlite.Options{})
	got, err := s.SessionByID(ctx, "s1")
	if err != nil || !sessionEqual(got, session("s1")) {
		t.Fatalf("session after the migration = %+v, %v; want %+v", got, err, session("s1"))
	}
	if n, err := s.AddDecryptFailure(ctx, "s1"); err != nil || n != 1 {
		t.Fatalf("AddDecryptFailure = %d, %v; want 1", n, err)
	}
}

func TestMigrationFromTheFuture(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	mustOpen(t, path, sqlite.Options{}).Close()
	db := rawDB(t, path)
	if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a database migrated by a newer version succeeded")
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "r.db")
	s := mustOpen(t, path, sqlite.Options{})

	id, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{
		Family: "wechat", AppID: "wxA", OpenID: "o1", UnionID: "un1",
		SealedSessionKey: []byte("k1"), NewUserID: "u1", Now: now, KeyGrace: time.Minute,
	})
	if err != nil {
		t.Fatalf("UpsertIdentity: %v", err)
	}
	if err := s.CreateSession(ctx, session("s1")); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	sess, err := s.RotateRefresh(ctx, store.Rotation{
		OldRefreshHash: session("s1").RefreshHash,
		NewAccessHash:  sum("a2"), AccessExpiresAt: now.Add(2 * time.Hour),
		NewRefreshHash: sum("r2"), RefreshExpiresAt: now.Add(40 * 24 * time.Hour),
		Now: now.Add(time.Minute),
	})
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	// The failure count survives too: a restart must not lift the cap.
	if sess.DecryptFailures, err = s.AddDecryptFailure(ctx, "s1"); err != nil || sess.DecryptFailures != 1 {
		t.Fatalf("AddDecryptFailure = %d, %v; want 1", sess.DecryptFailures, err)
	}
	code := store.ExchangedCode{Hash: sum("c1"), App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1", ExpiresAt: now.Add(time.Hour)}
	if err := s.PutCode(ctx, code); err != nil {
		t.Fatalf("PutCode: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = mustOpen(t, path, sqlite.Options{})
	gotID, err := s.GetIdentity(ctx, "wechat", "wxA", "o1")
	if err != nil || !identityEqual(gotID, id) {
		t.Fatalf("identity after reopen = %+v, %v; want %+v", gotID, err, id)
	}
	gotSess, err := s.SessionByAccess(ctx, sum("a2"))
	if err != nil || !sessionEqual(gotSess, sess) {
		t.Fatalf("session after reopen = %+v, %v; want %+v", gotSess, err, sess)
	}
	if _, err := s.GetCode(ctx, code.Hash, now); err != nil {
		t.Fatalf("GetCode after reopen: %v", err)
	}
	// Spent tokens survive too: replay detection does not reset on restart.
	_, err = s.RotateRefresh(ctx, store.Rotation{
		OldRefreshHash: session("s1").RefreshHash,
		NewAccessHash:  sum("a3"), NewRefreshHash: sum("r3"), Now: now.Add(2 * time.Minute),
	})
	if !errors.Is(err, store.ErrReused) {
		t.Fatalf("replay after reopen: %v, want ErrReused", err)
	}
}

func identityEqual(a, b store.Identity) bool {
	return a.Family == b.Family && a.AppID == b.AppID && a.OpenID == b.OpenID &&
		a.UnionID == b.UnionID && a.UserID == b.UserID &&
		bytes.Equal(a.SessionKey, b.SessionKey) && bytes.Equal(a.PrevSessionKey, b.PrevSessionKey) &&
		a.PrevKeyExpiresAt.Equal(b.PrevKeyExpiresAt) && a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}

func sessionEqual(a, b store.Session) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.App == b.App &&
		a.Family == b.Family && a.AppID == b.AppID && a.OpenID == b.OpenID &&
		bytes.Equal(a.AccessHash, b.AccessHash) && a.AccessExpiresAt.Equal(b.AccessExpiresAt) &&
		bytes.Equal(a.RefreshHash, b.RefreshHash) && a.RefreshExpiresAt.Equal(b.RefreshExpiresAt) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.LastUsedAt.Equal(b.LastUsedAt) && a.RevokedAt.Equal(b.RevokedAt) &&
		a.DecryptFailures == b.DecryptFailures
}

// TestSchemaHasNoSecrets pins every table's columns: a new column is a
// deliberate change of this list, and none of them may hold a token or a
// session key in clear.
func TestSchemaHasNoSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	mustOpen(t, path, sqlite.Options{}).Close()
	db := rawDB(t, path)

	want := map[string][]string{
		"users": {"id", "created_at", "phone", "phone_source", "phone_app", "phone_updated_at",
			"blocked", "blocked_reason", "blocked_at", "phone_lookup"},
		"identities": {"platform", "app_id", "open_id", "union_id", "user_id",
			"session_key", "prev_session_key", "prev_key_expires_at", "created_at", "updated_at",
			"decrypt_attempts"},
		"sessions": {"id", "user_id", "app", "platform", "app_id", "open_id",
			"access_hash", "access_expires_at", "refresh_hash", "refresh_expires_at",
			"created_at", "expires_at", "last_used_at", "revoked_at", "decrypt_failures", "union_id",
			"sweep_at", "prev_access_hash", "origin", "last_spent_hash", "successor", "successor_until"},
		"spent_refresh": {"hash", "session_id"},
		"codes": {"hash", "app", "platform", "app_id", "open_id", "expires_at",
			"session_id", "replay_until", "replays"},
		"access_tokens":        {"cache_key", "sealed", "expires_at", "refresh_at"},
		"schema_migrations":    {"version", "name", "applied_at"},
		"leases":               {"lease_key", "holder", "until"},
		"signing_keys":         {"id", "sealed", "version", "updated_at"},
		"session_changes":      {"seq", "id", "until", "access_hash"},
		"session_changes_kept": {"one", "since", "window"},
		"sqlite_sequence":      {"name", "seq"}, // SQLite's, for AUTOINCREMENT
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
		"session_changes.access_hash": true, // SHA-256
		"spent_refresh.hash":          true, // SHA-256
		"codes.hash":                  true, // SHA-256
		"access_tokens.sealed":        true, // sealed by the caller
		"signing_keys.sealed":         true, // sealed by the caller: private keys
		"users.phone":                 true, // sealed by the caller
		"users.phone_lookup":          true, // HMAC-SHA256 under a key of the master key
	}

	// The catalogue's view of the schema: its tables, and their columns in
	// order (pragma_table_xinfo: hidden and generated columns too).
	rows, err := db.QueryContext(t.Context(), `SELECT t.name, c.name, c.type FROM sqlite_schema t, pragma_table_xinfo(t.name) c
		WHERE t.type = 'table' ORDER BY t.name, c.cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	tables := map[string][]storetest.Column{}
	for rows.Next() {
		var table string
		var c storetest.Column
		if err := rows.Scan(&table, &c.Name, &c.Type); err != nil {
			t.Fatal(err)
		}
		tables[table] = append(tables[table], c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	storetest.CheckSchema(t, tables, storetest.SchemaRules{Tables: want, Secret: blobs, BlobType: "BLOB"})
}

// TestFileHoldsOnlyWhatItWasGiven writes a known hash and sealed key and
// finds them in the file byte for byte, and in no other encoding.
func TestFileHoldsOnlyWhatItWasGiven(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "f.db")
	s := mustOpen(t, path, sqlite.Options{})

	sealedKey := []byte("\x01sealed-session-key-fixture\x00\xfe\xff")
	accessHash := sum("mpa_fixture_access_token")
	if _, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{
		Family: "wechat", AppID: "wxA", OpenID: "o1",
		SealedSessionKey: sealedKey, NewUserID: "u1", Now: now,
	}); err != nil {
		t.Fatalf("UpsertIdentity: %v", err)
	}
	sess := session("s1")
	sess.AccessHash = accessHash
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	// Close checkpoints the WAL into the main file.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		wal, _ := os.ReadFile(path + "-wal")
		file = append(file, wal...)
	}

	for name, v := range map[string][]byte{"sealed key": sealedKey, "access hash": accessHash} {
		if !bytes.Contains(file, v) {
			t.Errorf("%s not found in the file as given", name)
		}
		for enc, e := range map[string]string{
			"hex":    hex.EncodeToString(v),
			"HEX":    strings.ToUpper(hex.EncodeToString(v)),
			"base64": base64.StdEncoding.EncodeToString(v),
		} {
			if bytes.Contains(file, []byte(e)) {
				t.Errorf("%s found in the file as %s", name, enc)
			}
		}
	}
	if bytes.Contains(file, []byte("mpa_fixture_access_token")) {
		t.Error("the access token itself is in the file")
	}
}

// TestSweepRemovesRefreshTokens looks in the table: DeleteExpired must take
// a dead session's spent refresh tokens with it.
func TestSweepRemovesRefreshTokens(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "d.db")
	s := mustOpen(t, path, sqlite.Options{})
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
	db := rawDB(t, path)
	if got := count(t, db, `SELECT count(*) FROM spent_refresh`); got != 2 {
		t.Fatalf("%d spent refresh tokens before the sweep, want 2", got)
	}
	if n, err := s.DeleteExpired(ctx, now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1, nil", n, err)
	}
	if got := count(t, db, `SELECT count(*) FROM spent_refresh WHERE session_id = 'dead'`); got != 0 {
		t.Fatalf("%d spent refresh tokens of the swept session remain", got)
	}
	if got := count(t, db, `SELECT count(*) FROM spent_refresh WHERE session_id = 'live'`); got != 1 {
		t.Fatalf("%d spent refresh tokens of the live session remain, want 1", got)
	}
}

// TestLockedIsUnavailable holds the write lock from another connection:
// writes give up after BusyTimeout with ErrUnavailable, and reads, which WAL
// lets run beside a writer, carry on.
func TestLockedIsUnavailable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "l.db")
	s := mustOpen(t, path, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
	if err := s.CreateSession(ctx, session("s1")); err != nil {
		t.Fatal(err)
	}

	db := rawDB(t, path)
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), `ROLLBACK`)

	_, err = s.RotateRefresh(ctx, store.Rotation{
		OldRefreshHash: session("s1").RefreshHash,
		NewAccessHash:  sum("a2"), NewRefreshHash: sum("r2"),
		AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(time.Hour), Now: now,
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("RotateRefresh under a foreign write lock: %v, want ErrUnavailable", err)
	}
	if !strings.HasPrefix(err.Error(), "sqlite: rotate refresh: ") {
		t.Errorf("error %q does not say where it comes from", err)
	}
	if err := s.RevokeSession(ctx, "s1", now); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("RevokeSession under a foreign write lock: %v, want ErrUnavailable", err)
	}
	if _, err := s.SessionByID(ctx, "s1"); err != nil {
		t.Fatalf("SessionByID under a foreign write lock: %v", err)
	}
}

// A sweep larger than one chunk removes every dead row, chunk by chunk,
// and keeps live ones.
func TestDeleteExpiredInChunks(t *testing.T) {
	ctx := t.Context()
	s := mustOpen(t, filepath.Join(t.TempDir(), "c.db"), sqlite.Options{})
	defer s.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const dead = 2500
	for i := 0; i < dead+10; i++ {
		exp := base.Add(-time.Minute)
		if i >= dead {
			exp = base.Add(time.Hour)
		}
		h := sha256.Sum256([]byte(fmt.Sprint(i)))
		if err := s.PutCode(ctx, store.ExchangedCode{Hash: h[:], App: "a", Family: "wechat", AppID: "wx", OpenID: "o", ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.DeleteExpired(ctx, base)
	if err != nil || n != dead {
		t.Fatalf("removed %d, %v; want %d", n, err, dead)
	}
	live := sha256.Sum256([]byte(fmt.Sprint(dead)))
	if _, err := s.GetCode(ctx, live[:], base); err != nil {
		t.Fatalf("live code gone: %v", err)
	}
}
