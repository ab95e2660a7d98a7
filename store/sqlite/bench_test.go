package sqlite_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/sqlite"
	"github.com/mplogin/mplogin/store/storetest"
)

// BenchmarkUpsertIdentityAndCreateSession:
// storetest.BenchUpsertIdentityAndCreateSession.
func BenchmarkUpsertIdentityAndCreateSession(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	storetest.BenchUpsertIdentityAndCreateSession(b, s, now)
}

// BenchmarkSessionByAccess: storetest.BenchSessionByAccess over 10,000
// sessions.
func BenchmarkSessionByAccess(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	const n = 10_000
	for i := range n {
		if err := s.CreateSession(b.Context(), session(fmt.Sprint("s", i))); err != nil {
			b.Fatal(err)
		}
	}
	storetest.BenchSessionByAccess(b, s, n, now)
}

// writeLoginParallelism is the callers per GOMAXPROCS of the login
// benchmarks.
const writeLoginParallelism = 16

// BenchmarkWriteLogin: storetest.BenchWriteLogin, what the single writer
// does for a first login (identity, user, code and session in one
// savepoint), from as many callers as the service has logins in flight, so
// that batches form as they do under load.
func BenchmarkWriteLogin(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	b.SetParallelism(writeLoginParallelism)
	storetest.BenchWriteLogin(b, s, now)
}

// BenchmarkWriteLoginReturning: storetest.BenchWriteLoginReturning over
// 10,000 users, from as many callers as BenchmarkWriteLogin.
func BenchmarkWriteLoginReturning(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	b.SetParallelism(writeLoginParallelism)
	storetest.BenchWriteLoginReturning(b, s, 10_000, now)
}

// BenchmarkRevokeSession measures a logout's write, each revoking a
// session of its own: from one caller, which waits for each in turn, and
// from many, whose revocations share commits (and syncs).
func BenchmarkRevokeSession(b *testing.B) {
	for _, par := range []int{0, 8} {
		b.Run(fmt.Sprintf("callers=%d", max(1, par*runtime.GOMAXPROCS(0))), func(b *testing.B) {
			s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
			ctx := b.Context()
			createSessions(b, s, "s", b.N)
			var seq atomic.Int64
			revoke := func() bool {
				if err := s.RevokeSession(ctx, fmt.Sprint("s", seq.Add(1)-1), now); err != nil {
					b.Error(err)
					return false
				}
				return true
			}
			b.ReportAllocs()
			b.ResetTimer()
			if par == 0 {
				for range b.N {
					if !revoke() {
						return
					}
				}
				return
			}
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !revoke() {
						return
					}
				}
			})
		})
	}
}

// BenchmarkWriteLoginBesideRevokes is BenchmarkWriteLogin with one caller
// revoking sessions all the while: a revocation's wait for the disk must
// not hold up the logins committed beside it.
func BenchmarkWriteLoginBesideRevokes(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	ctx := b.Context()
	const n = 20_000
	createSessions(b, s, "r", n)
	stop := make(chan struct{})
	revoked := make(chan int)
	go func() {
		i := 0
		defer func() { revoked <- i }()
		for ; i < n; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.RevokeSession(ctx, fmt.Sprint("r", i), now); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	b.SetParallelism(writeLoginParallelism)
	storetest.BenchWriteLogin(b, s, now)
	close(stop)
	b.ReportMetric(float64(<-revoked)/b.Elapsed().Seconds(), "revokes/s")
}

// createSessions stores sessions prefix0 … prefix<n-1>, from parallel
// callers so that they share commits.
func createSessions(b *testing.B, s *sqlite.Store, prefix string, n int) {
	b.Helper()
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := seq.Add(1) - 1; i < int64(n); i = seq.Add(1) - 1 {
				if err := s.CreateSession(b.Context(), session(fmt.Sprint(prefix, i))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkSessionCap: storetest.BenchSessionCap over 5,000 identities
// with two live sessions each.
func BenchmarkSessionCap(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	ctx := b.Context()
	const identities = 5_000
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := seq.Add(1) - 1; i < 2*identities; i = seq.Add(1) - 1 {
				sess := session(fmt.Sprint("c", i))
				sess.UserID, sess.OpenID = fmt.Sprint("u", i/2), fmt.Sprint("o", i/2)
				if err := s.CreateSession(ctx, sess); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	storetest.BenchSessionCap(b, s, identities, now)
}

// BenchmarkWriteLoginAtCap: a returning login's write that ends the
// identity's oldest session at the cap, whose access token is in date,
// without and with the log of session changes (which records that end).
func BenchmarkWriteLoginAtCap(b *testing.B) {
	for _, window := range []time.Duration{0, 3 * time.Hour} {
		b.Run(fmt.Sprintf("changelog=%v", window > 0), func(b *testing.B) {
			s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{ChangeWindow: window})
			ctx := b.Context()
			const identities, keep = 64, 2
			var seq atomic.Int64
			login := func() error {
				n := seq.Add(1)
				t := time.Now()
				open := fmt.Sprint("o", n%identities)
				sess := storetest.Session(fmt.Sprintf("s%013x%x", t.UnixMilli(), n), t)
				sess.OpenID, sess.AccessExpiresAt = open, t.Add(time.Hour)
				_, err := s.WriteLogin(ctx, store.LoginWrite{
					Identity: store.IdentityUpsert{Family: "wechat", AppID: "wxA", OpenID: open,
						NewUserID: fmt.Sprint("u", n%identities), Now: t},
					Code: store.ExchangedCode{Hash: []byte(fmt.Sprint("code", n)), App: "main",
						Family: "wechat", AppID: "wxA", OpenID: open, ExpiresAt: t.Add(5 * time.Minute)},
					Session: sess, Keep: keep,
				})
				return err
			}
			for range identities * keep {
				if err := login(); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(writeLoginParallelism)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := login(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
