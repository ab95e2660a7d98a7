package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"upsert identity", upsertIdentitySQL, []any{"p", "a", "o", "u", h, "n", at, at}},
		{"identity", getIdentitySQL, []any{"p", "a", "o"}},
		{"user", getUserSQL, []any{"u"}},
		{"set phone", setPhoneSQL, []any{"u", h, "s", "a", at}},
		{"create session", createSessionSQL, []any{"x", "u", "a", "p", "a", "o", h, at, h, at, at, at, at, at, int32(0), ""}},
		{"session by access", sessionByAccessSQL, []any{h}},
		{"session by id", sessionByIDSQL, []any{"x"}},
		{"lock refresh", lockRefreshSQL, []any{h}},
		{"rotate", rotateSQL, []any{h, "x", h, h, at, at, at}},
		{"revoke", revokeSessionSQL, []any{"x", at}},
		{"decrypt failure", addDecryptFailureSQL, []any{"x"}},
		{"reserve decrypt attempt", reserveAttemptSQL, []any{"p", "a", "o", int32(5)}},
		{"release decrypt attempt", releaseAttemptSQL, []any{"p", "a", "o"}},
		{"code", getCodeSQL, []any{h, at}},
		{"put code", putCodeSQL, []any{h, "a", "p", "a", "o", at}},
		{"access token", getAccessTokenSQL, []any{"k"}},
		{"delete access token", deleteAccessTokenSQL, []any{"k", h}},
		{"acquire lease", acquireLeaseSQL, []any{"k", "h", at, at}},
		{"release lease", releaseLeaseSQL, []any{"k", "h"}},
		{"sweep codes", deleteCodesSQL, []any{at, deleteChunk}},
		{"sweep sessions", deleteSessionsSQL, []any{at, deleteChunk}},
		// What ON DELETE CASCADE runs for each swept session.
		{"cascade", `DELETE FROM refresh_tokens WHERE session_id = $1`, []any{"x"}},
	} {
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
