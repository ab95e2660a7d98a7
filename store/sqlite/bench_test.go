package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/sqlite"
)

// BenchmarkUpsertIdentityAndCreateSession measures the write half of a first
// login: a new identity (and user) and its session, from parallel callers.
func BenchmarkUpsertIdentityAndCreateSession(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	ctx := b.Context()
	var seq atomic.Int64
	key := make([]byte, 60) // about the size of a sealed 16-byte key
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			id, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{
				Platform: "wechat", AppID: "wxA", OpenID: fmt.Sprint("o", n),
				SealedSessionKey: key, NewUserID: fmt.Sprint("u", n),
				Now: now, KeyGrace: 5 * time.Minute,
			})
			if err != nil {
				b.Error(err)
				return
			}
			sess := session(fmt.Sprint("s", n))
			sess.UserID, sess.OpenID = id.UserID, id.OpenID
			if err := s.CreateSession(ctx, sess); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSessionByAccess measures the check of an access token, the most
// frequent call, from parallel callers over 10,000 sessions.
func BenchmarkSessionByAccess(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	ctx := b.Context()
	const n = 10_000
	hashes := make([][]byte, n)
	for i := range n {
		sess := session(fmt.Sprint("s", i))
		hashes[i] = sess.AccessHash
		if err := s.CreateSession(ctx, sess); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h := hashes[seq.Add(1)%n]
			if _, err := s.SessionByAccess(ctx, h); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkWriteLogin measures what the single writer does for a first login
// (identity, user, code and session in one savepoint), from as many callers
// as the service has logins in flight, so that batches form as they do under
// load. Ids and token hashes are time-ordered and openids and code hashes
// random, as in the service.
func BenchmarkWriteLogin(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	ctx := b.Context()
	key := make([]byte, 60)
	var seq atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			t := now.Add(time.Duration(n) * time.Millisecond)
			open := fmt.Sprintf("%x", sum(fmt.Sprint("open", n))[:14])
			id := fmt.Sprintf("%013x%x", t.UnixMilli(), n)
			sess := session("s" + id)
			sess.AccessHash = append([]byte(id[:6]), sess.AccessHash...)
			sess.RefreshHash = append([]byte(id[:6]), sess.RefreshHash...)
			sess.OpenID = open
			_, _, err := s.WriteLogin(ctx, store.LoginWrite{
				Identity: store.IdentityUpsert{
					Platform: "wechat", AppID: "wxA", OpenID: open,
					UnionID:          fmt.Sprintf("%x", sum(fmt.Sprint("union", n))[:14]),
					SealedSessionKey: key, NewUserID: "u" + id,
					Now: t, KeyGrace: 5 * time.Minute,
				},
				Code: store.Code{Hash: sum(fmt.Sprint("code", n)), App: "main",
					Platform: "wechat", AppID: "wxA", OpenID: open, ExpiresAt: t.Add(5 * time.Minute)},
				Session: sess,
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
