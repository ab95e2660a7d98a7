package postgres_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/postgres"
	"github.com/mplogin/mplogin/store/storetest"
)

// envDSN names the environment variable with the test server's URL.
const envDSN = "MPLOGIN_TEST_POSTGRES"

// testDSN returns the test server's URL, or skips t when there is none.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		t.Skip(envDSN + " is not set: set it to a PostgreSQL URL whose role may create schemas, such as " +
			"postgres://root@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL tests")
	}
	return dsn
}

// adminPool returns a pool on the test database, beside the stores, to
// create and drop schemas and look at what the stores wrote.
func adminPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	cfg.MaxConns = 2
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// freshSchema returns the name of a schema that does not exist yet, and
// drops it when t ends, after the stores opened on it are closed (cleanups
// registered later run first).
func freshSchema(t testing.TB, admin *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "mplogin_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return name
}

func mustOpen(t testing.TB, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openFresh opens a store in a schema of its own.
func openFresh(t testing.TB) (*postgres.Store, *pgxpool.Pool, string) {
	t.Helper()
	dsn := testDSN(t)
	admin := adminPool(t, dsn)
	schema := freshSchema(t, admin)
	return mustOpen(t, dsn, postgres.Options{Schema: schema}), admin, schema
}

// table returns the qualified, quoted name of table in schema.
func table(schema, name string) string { return pgx.Identifier{schema, name}.Sanitize() }

func count(t testing.TB, db *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
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
