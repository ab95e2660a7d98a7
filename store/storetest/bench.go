package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// Session returns a live session of user u1 (openid o1 of wxA) created at
// now, with the hashes of the tokens mpa_<id> and mpr_<id>: the session the
// SQL backends' own tests and benchmarks store.
func Session(id string, now time.Time) store.Session {
	return store.Session{
		ID: id, UserID: "u1", App: "main", Family: "wechat", AppID: "wxA", OpenID: "o1",
		AccessHash:       hash("mpa_" + id),
		AccessExpiresAt:  now.Add(time.Hour),
		RefreshHash:      hash("mpr_" + id),
		RefreshExpiresAt: now.Add(30 * 24 * time.Hour),
		CreatedAt:        now,
		ExpiresAt:        now.Add(90 * 24 * time.Hour),
		LastUsedAt:       now,
	}
}

// BenchWriteLogin measures the store's share of a new user's login, the
// one write package session makes of it (WriteLogin): identity,
// user, code and session, from parallel callers (the caller sets how many).
// Ids and token hashes are time-ordered and openids and code hashes random,
// as in the service, so that the indexes grow as they do under load. Each
// login is a millisecond after the previous one, from now.
func BenchWriteLogin(b *testing.B, s store.Store, now time.Time) {
	ctx := b.Context()
	key := make([]byte, 60) // about the size of a sealed 16-byte key
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			t := now.Add(time.Duration(n) * time.Millisecond)
			if _, err := s.WriteLogin(ctx, benchLogin(key, n, n, t, now)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchLogin is the n-th login of the benchmarks, at, of identity who
// (openid and unionid derived from it), with a new session of sessionAt.
// Its ids and token hashes are time-ordered, its openid and code hash
// random, as in the service; a new user's id is derived from the session's.
func benchLogin(key []byte, who, n int64, at, sessionAt time.Time) store.LoginWrite {
	open := fmt.Sprintf("%x", hash(fmt.Sprint("open", who))[:14])
	id := fmt.Sprintf("%013x%x", at.UnixMilli(), n)
	sess := Session("s"+id, sessionAt)
	sess.AccessHash = append([]byte(id[:6]), sess.AccessHash...)
	sess.RefreshHash = append([]byte(id[:6]), sess.RefreshHash...)
	sess.OpenID = open
	return store.LoginWrite{
		Identity: store.IdentityUpsert{
			Family: "wechat", AppID: "wxA", OpenID: open,
			UnionID:          fmt.Sprintf("%x", hash(fmt.Sprint("union", who))[:14]),
			SealedSessionKey: key, NewUserID: "u" + id,
			Now: at, KeyGrace: 5 * time.Minute,
		},
		Code: store.ExchangedCode{Hash: hash(fmt.Sprint("code", n)), App: "main",
			Family: "wechat", AppID: "wxA", OpenID: open, ExpiresAt: at.Add(5 * time.Minute)},
		Session: sess,
	}
}

// BenchWriteLoginReturning measures the store's share of a returning
// user's login: WriteLogin of an identity the store holds, with the cap
// of 20 sessions per identity that the service sets by default. Before the
// timer starts it logs each of users users in once; each timed login then
// picks one of them at random, so that nearly every login is within its
// cap, as in the service.
func BenchWriteLoginReturning(b *testing.B, s store.Store, users int, now time.Time) {
	ctx := b.Context()
	key := make([]byte, 60) // about the size of a sealed 16-byte key
	login := func(user, n int64, at time.Time) error {
		in := benchLogin(key, user, n, at, at)
		in.Identity.NewUserID = fmt.Sprint("u", user)
		in.Keep = 20
		_, err := s.WriteLogin(ctx, in)
		return err
	}
	var (
		seq  atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, 16)
	)
	for w := range int64(16) { // in parallel, so that the logins share commits
		wg.Go(func() {
			for u := w; u < int64(users); u += 16 {
				if err := login(u, seq.Add(1), now); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			if err := login(rand.Int64N(int64(users)), n, now.Add(time.Duration(n)*time.Millisecond)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchSessionCap measures the cap on an identity's live sessions where it
// runs apart from a login's own write (after a repeat of a login code, and
// on store.Split): RevokeUserSessions with Keep 20, from parallel
// callers, over identities (wechat, wxA, o<i>) of users u<i>, i below
// identities. The caller has stored a few live sessions of each, fewer than
// 20, so that nothing is revoked: the common case, one read and no write.
func BenchSessionCap(b *testing.B, s store.Store, identities int, now time.Time) {
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1) % int64(identities)
			revoked, err := s.RevokeUserSessions(b.Context(), store.UserRevocation{
				UserID: fmt.Sprint("u", i), Family: "wechat", AppID: "wxA", OpenID: fmt.Sprint("o", i),
				Keep: 20, Now: now,
			})
			if err != nil || revoked != 0 {
				b.Errorf("RevokeUserSessions: %d, %v; want 0 revoked", revoked, err)
				return
			}
		}
	})
}

// BenchUpsertIdentityAndCreateSession measures the write half of a first
// login made one call at a time: a new identity (and user) and its
// session, from parallel callers (the caller sets how many).
func BenchUpsertIdentityAndCreateSession(b *testing.B, s store.Store, now time.Time) {
	ctx := b.Context()
	var seq atomic.Int64
	key := make([]byte, 60) // about the size of a sealed 16-byte key
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			id, _, err := s.UpsertIdentity(ctx, store.IdentityUpsert{
				Family: "wechat", AppID: "wxA", OpenID: fmt.Sprint("o", n),
				SealedSessionKey: key, NewUserID: fmt.Sprint("u", n),
				Now: now, KeyGrace: 5 * time.Minute,
			})
			if err != nil {
				b.Error(err)
				return
			}
			sess := Session(fmt.Sprint("s", n), now)
			sess.UserID, sess.OpenID = id.UserID, id.OpenID
			if err := s.CreateSession(ctx, sess); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchSessionByAccess measures the check of an access token, the most
// frequent call, from parallel callers (the caller sets how many) over the
// sessions s0 … s<n-1> (Session), which the caller has stored.
func BenchSessionByAccess(b *testing.B, s store.Store, n int, now time.Time) {
	ctx := b.Context()
	hashes := make([][]byte, n)
	for i := range n {
		hashes[i] = Session(fmt.Sprint("s", i), now).AccessHash
	}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h := hashes[seq.Add(1)%int64(n)]
			if _, err := s.SessionByAccess(ctx, h); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BulkBatch is what a test of a bulk loader writes: users from to to-1,
// each with the WeChat identity o<i> of app wxbulk (user u<i>) and one
// session s<i> live for an hour past now, whose access and refresh hashes
// are a<i> and r<i>.
func BulkBatch(from, to int, now time.Time) ([]store.Identity, []store.Session) {
	var ids []store.Identity
	var sessions []store.Session
	for i := from; i < to; i++ {
		id := store.Identity{Family: "wechat", AppID: "wxbulk", OpenID: fmt.Sprint("o", i),
			UserID: fmt.Sprint("u", i), CreatedAt: now, UpdatedAt: now}
		ids = append(ids, id)
		sessions = append(sessions, store.Session{ID: fmt.Sprint("s", i), UserID: id.UserID, App: "app",
			Family: id.Family, AppID: id.AppID, OpenID: id.OpenID,
			AccessHash: fmt.Appendf(nil, "a%d", i), AccessExpiresAt: now.Add(time.Hour),
			RefreshHash: fmt.Appendf(nil, "r%d", i), RefreshExpiresAt: now.Add(time.Hour),
			CreatedAt: now, LastUsedAt: now})
	}
	return ids, sessions
}
