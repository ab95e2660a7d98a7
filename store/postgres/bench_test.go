package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/storetest"
)

// benchParallelism is the callers per GOMAXPROCS in the benchmarks: the
// service has many requests in flight, and PostgreSQL's group commit and the
// pool are only exercised by concurrent callers.
const benchParallelism = 8

// BenchmarkUpsertIdentityAndCreateSession:
// storetest.BenchUpsertIdentityAndCreateSession.
func BenchmarkUpsertIdentityAndCreateSession(b *testing.B) {
	s, _, _ := openFresh(b)
	b.SetParallelism(benchParallelism)
	storetest.BenchUpsertIdentityAndCreateSession(b, s, now)
}

// BenchmarkWriteLogin: storetest.BenchWriteLogin, the store's share of a
// new user's login: the upsert, code and session sent in one batch, and
// one commit.
func BenchmarkWriteLogin(b *testing.B) {
	s, _, _ := openFresh(b)
	b.SetParallelism(benchParallelism)
	storetest.BenchWriteLogin(b, s, now)
}

// BenchmarkWriteLoginReturning: storetest.BenchWriteLoginReturning over
// 10,000 users, a returning user's login with the default cap of 20.
func BenchmarkWriteLoginReturning(b *testing.B) {
	s, _, _ := openFresh(b)
	b.SetParallelism(benchParallelism)
	storetest.BenchWriteLoginReturning(b, s, 10_000, now)
}

// BenchmarkSessionByAccess: storetest.BenchSessionByAccess over 10,000
// sessions.
func BenchmarkSessionByAccess(b *testing.B) {
	s, admin, schema := openFresh(b)
	ctx := b.Context()
	const n = 10_000
	// The sessions of session(fmt.Sprint("s", i)), in bulk.
	_, err := admin.Exec(ctx, `INSERT INTO `+table(schema, "sessions")+` (id, user_id, app, platform, app_id,
			open_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at, expires_at, last_used_at)
		SELECT 's' || i, 'u1', 'main', 'wechat', 'wxA', 'o1', sha256(('mpa_s' || i)::bytea), $2::timestamptz + interval '1 hour',
			sha256(('mpr_s' || i)::bytea), $2::timestamptz + interval '30 days', $2, $2::timestamptz + interval '90 days', $2
		FROM generate_series(0, $1::int - 1) i`, n, now)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ANALYZE `+table(schema, "sessions")); err != nil {
		b.Fatal(err)
	}
	if _, err := s.SessionByAccess(ctx, session(fmt.Sprint("s", n-1)).AccessHash); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(benchParallelism)
	storetest.BenchSessionByAccess(b, s, n, now)
}

// BenchmarkRotateRefresh measures a refresh, one transaction of two round
// trips, from parallel callers on distinct sessions.
func BenchmarkRotateRefresh(b *testing.B) {
	s, admin, schema := openFresh(b)
	ctx := b.Context()
	// The sessions of session(fmt.Sprint("s", i)) and their refresh tokens,
	// in bulk.
	_, err := admin.Exec(ctx, `WITH s AS (INSERT INTO `+table(schema, "sessions")+` (id, user_id, app, platform,
			app_id, open_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at, last_used_at)
		SELECT 's' || i, 'u1', 'main', 'wechat', 'wxA', 'o1', sha256(('mpa_s' || i)::bytea), $2::timestamptz + interval '1 hour',
			sha256(('mpr_s' || i)::bytea), $2::timestamptz + interval '30 days', $2, $2
		FROM generate_series(1, $1::int) i
		RETURNING id, refresh_hash, refresh_expires_at)
		INSERT INTO `+table(schema, "refresh_tokens")+` (hash, session_id, expires_at)
		SELECT refresh_hash, id, refresh_expires_at FROM s`, b.N, now)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ANALYZE `+table(schema, "sessions")+`, `+table(schema, "refresh_tokens")); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			if _, err := s.RotateRefresh(ctx, store.Rotation{
				OldRefreshHash: session(fmt.Sprint("s", n)).RefreshHash,
				NewAccessHash:  sum(fmt.Sprint("a", n)), AccessExpiresAt: now.Add(time.Hour),
				NewRefreshHash: sum(fmt.Sprint("r", n)), RefreshExpiresAt: now.Add(24 * time.Hour),
				Now: now,
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSessionCap: storetest.BenchSessionCap over 5,000 identities
// with two live sessions each.
func BenchmarkSessionCap(b *testing.B) {
	s, admin, schema := openFresh(b)
	ctx := b.Context()
	const identities = 5_000
	_, err := admin.Exec(ctx, `INSERT INTO `+table(schema, "sessions")+` (id, user_id, app, platform, app_id,
			open_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at, created_at, expires_at, last_used_at)
		SELECT 'c' || i, 'u' || (i / 2), 'main', 'wechat', 'wxA', 'o' || (i / 2), sha256(('mpa_c' || i)::bytea),
			$2::timestamptz + interval '1 hour', sha256(('mpr_c' || i)::bytea), $2::timestamptz + interval '30 days',
			$2, $2::timestamptz + interval '90 days', $2
		FROM generate_series(0, 2 * $1::int - 1) i`, identities, now)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ANALYZE `+table(schema, "sessions")); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(benchParallelism)
	storetest.BenchSessionCap(b, s, identities, now)
}
