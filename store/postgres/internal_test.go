package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mplogin/mplogin/internal/migrate"
	"github.com/mplogin/mplogin/store"
)

// openInternal opens a store in a schema of its own, dropped when t ends.
func openInternal(t *testing.T) *Store {
	t.Helper()
	dsn := os.Getenv("MPLOGIN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("MPLOGIN_TEST_POSTGRES is not set: set it to a PostgreSQL URL, such as " +
			"postgres://root@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL tests")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "mplogin_test_" + hex.EncodeToString(b)
	s, err := Open(t.Context(), dsn, Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.pool.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		s.Close()
	})
	return s
}

// TestQueryPlans checks that the hot and the sweeping statements find
// their rows through an index instead of scanning a table. The tables are
// empty, so sequential scans are priced out of the planner's choice: what
// is left shows whether an index can serve.
func TestQueryPlans(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	at := pgtype.Timestamptz{Time: time.Now(), Valid: true}
	h := []byte{1}
	type query struct {
		name, sql string
		args      []any
	}
	// RevokeUserSessions' variants, the cap's read above all.
	var revocations []query
	for _, r := range []struct {
		name string
		r    store.UserRevocation
	}{
		{"user", store.UserRevocation{UserID: "u"}},
		{"identity", store.UserRevocation{UserID: "u", Family: "p", AppID: "a", OpenID: "o"}},
		{"origin", store.UserRevocation{UserID: "u", Origin: "x"}},
		{"keep", store.UserRevocation{UserID: "u", Family: "p", AppID: "a", OpenID: "o", Keep: 20}},
	} {
		r.r.Now = at.Time
		count, revoke, args := userRevocationSQL(r.r)
		revocations = append(revocations, query{"revoke " + r.name, revoke, args})
		if count != "" {
			revocations = append(revocations, query{"count " + r.name, count, args})
		}
	}
	for _, q := range append([]query{
		{"upsert identity", upsertIdentitySQL, []any{"p", "a", "o", "u", h, "n", at, at}},
		{"identity", getIdentitySQL, []any{"p", "a", "o"}},
		{"user", getUserSQL, []any{"u"}},
		{"set phone", setPhoneSQL, []any{"u", h, "s", "a", at, h}},
		{"users by phone", phoneUsersSQL, []any{[][]byte{h, h}, int32(store.MaxPhoneHolders)}},
		{"create session", createSessionSQL, []any{"x", "u", "a", "p", "a", "o", h, at, h, at, at, at, at, at, int32(0), "", nil}},
		{"session by access", sessionByAccessSQL, []any{h}},
		{"session by id", sessionByIDSQL, []any{"x"}},
		{"session by refresh", sessionByRefreshSQL, []any{h}},
		{"lock refresh", lockRefreshSQL, []any{h}},
		{"rotate", rotateSQL, []any{h, "x", h, h, at, at, at, h, at}},
		{"revoke", revokeSessionSQL, []any{"x", at}},
		{"decrypt failure", addDecryptFailureSQL, []any{"x"}},
		{"reserve decrypt attempt", reserveAttemptSQL, []any{"p", "a", "o", int32(5)}},
		{"release decrypt attempt", releaseAttemptSQL, []any{"p", "a", "o"}},
		{"code", getCodeSQL, []any{h, at}},
		{"put code", putCodeSQL, codeArgs(store.ExchangedCode{Hash: h, ExpiresAt: at.Time, ReplayUntil: at.Time})},
		{"claim replay", claimReplaySQL, []any{h, at, int32(3)}},
		{"access token", getAccessTokenSQL, []any{"k"}},
		{"delete access token", deleteAccessTokenSQL, []any{"k", h}},
		{"acquire lease", acquireLeaseSQL, []any{"k", "h", at, at}},
		{"release lease", releaseLeaseSQL, []any{"k", "h"}},
		{"sweep codes", deleteCodesSQL, []any{at, deleteChunk}},
		{"sweep sessions", deleteSessionsSQL, []any{at, deleteChunk}},
		// What ON DELETE CASCADE runs for each swept session.
		{"cascade", `DELETE FROM refresh_tokens WHERE session_id = $1`, []any{"x"}},
	}, revocations...) {
		rows, err := tx.Query(ctx, "EXPLAIN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q.name, err)
		}
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan") {
			t.Errorf("%s scans a table:\n%s", q.name, text)
		}
		t.Logf("%s:\n%s", q.name, text)
	}
}

func TestDSNPasswords(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want []string
	}{
		{"postgres://u:pw@h/db", []string{"pw"}},
		{"postgres://u:p%40ss@h:x/db", []string{"p%40ss", "p@ss"}},
		{"postgresql://u:pw@h:99999999999/db?x=%zz", []string{"pw"}},
		{"postgres://u@h/db", nil},
		{"host=h password=secret user=u", []string{"secret"}},
		{"host=h password='se cret' user=u", []string{"se cret"}},
		{"", nil},
	} {
		got := dsnPasswords(c.dsn)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("dsnPasswords(%q) = %q, want %q", c.dsn, got, c.want)
		}
	}
}

// TestUpgradeKeepsRows: rows written before migration 0005 read back with
// no origin and, for a code, no repeats and no window; a session of
// before rotates and caps as any other.
func TestUpgradeKeepsRows(t *testing.T) {
	ctx := t.Context()
	dsn := os.Getenv("MPLOGIN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("MPLOGIN_TEST_POSTGRES is not set")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "mplogin_test_" + hex.EncodeToString(b)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	old, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migrate.Load(migrationFiles, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(ctx, old, schema, ms[:4], slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate to 0004: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := old.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		old.Close()
	})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO sessions (id, user_id, app, platform, app_id, open_id, access_hash, refresh_hash,
			refresh_expires_at, created_at)
		SELECT 's' || i, 'u', 'main', 'p', 'a', 'o', sha256(('a' || i)::bytea), sha256(('r' || i)::bytea),
			$1::timestamptz + interval '1 day', $1::timestamptz + i * interval '1 second'
		FROM generate_series(1, 3) i`,
		`INSERT INTO refresh_tokens (hash, session_id, expires_at)
		SELECT refresh_hash, id, refresh_expires_at FROM sessions WHERE created_at > $1`,
		`INSERT INTO codes (hash, app, platform, app_id, open_id, expires_at)
		VALUES ('\x0c', 'main', 'p', 'a', 'o', $1::timestamptz + interval '5 minutes')`,
	} {
		if _, err := old.Exec(ctx, q, now); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	s, err := Open(ctx, dsn, Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	sess, err := s.SessionByID(ctx, "s1")
	if err != nil || sess.Origin != "" || sess.Successor != nil {
		t.Fatalf("SessionByID = %+v, %v", sess, err)
	}
	c, err := s.GetCode(ctx, []byte{0x0c}, now)
	if err != nil || c.SessionID != "" || !c.ReplayUntil.IsZero() || c.Replays != 0 {
		t.Fatalf("GetCode = %+v, %v", c, err)
	}
	if _, err := s.ClaimReplay(ctx, []byte{0x0c}, now, 3); !errors.Is(err, store.ErrReplayRefused) {
		t.Fatalf("ClaimReplay of a code of before: %v, want ErrReplayRefused", err)
	}
	// A spent token of before has no successor: a repeat is a reuse.
	r := store.Rotation{OldRefreshHash: sess.RefreshHash, NewAccessHash: []byte{1}, NewRefreshHash: []byte{2},
		AccessExpiresAt: now.Add(time.Hour), RefreshExpiresAt: now.Add(24 * time.Hour), Now: now}
	if _, err := s.RotateRefresh(ctx, r); err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	r.NewAccessHash, r.NewRefreshHash = []byte{3}, []byte{4}
	if got, err := s.RotateRefresh(ctx, r); !errors.Is(err, store.ErrReused) || got.ID != "s1" {
		t.Fatalf("RotateRefresh(spent) = %+v, %v; want s1, ErrReused", got, err)
	}
	n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u", Family: "p", AppID: "a", OpenID: "o",
		Keep: 1, Now: now})
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions(keep 1) = %d, %v; want 1 (s2), nil", n, err)
	}
	if sess, err := s.SessionByID(ctx, "s3"); err != nil || !sess.RevokedAt.IsZero() {
		t.Fatalf("s3 = %+v, %v; want it live", sess, err)
	}
}
