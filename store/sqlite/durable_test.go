package sqlite

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// TestRevocationsWaitForSync: a write that revokes (a logout, a replayed
// refresh token) is answered only after the WAL has been synced, and the
// sync comes after the revocation committed; logins and plain refreshes
// never wait for one.
func TestRevocationsWaitForSync(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	synced := make(chan struct{}, 16)
	// A sync waits for the gate to close, when there is one.
	var gate atomic.Pointer[chan struct{}]
	// Set before the first write: the syncer reads it only after one.
	s.wal.sync = func() error {
		synced <- struct{}{}
		if g := gate.Load(); g != nil {
			<-*g
		}
		return s.wal.syncWAL()
	}
	noSync := func(what string) {
		t.Helper()
		select {
		case <-synced:
			t.Fatalf("%s waited for a sync of the WAL", what)
		default:
		}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sess := func(id string) store.Session {
		return store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: "o",
			AccessHash: []byte("a-" + id), RefreshHash: []byte("r-" + id),
			RefreshExpiresAt: at.Add(time.Hour), CreatedAt: at, LastUsedAt: at}
	}
	if err := s.CreateSession(ctx, sess("s1")); err != nil {
		t.Fatal(err)
	}
	noSync("CreateSession")
	login := store.LoginWrite{
		Identity: store.IdentityUpsert{Family: "p", AppID: "x", OpenID: "o2", SealedSessionKey: []byte("k"), NewUserID: "u2", Now: at},
		Code: store.ExchangedCode{Hash: []byte("c"), App: "a", Family: "p", AppID: "x", OpenID: "o2", ExpiresAt: at.Add(time.Hour),
			SessionID: "s2", ReplayUntil: at.Add(time.Minute)},
		Session: sess("s2"),
	}
	if _, err := s.WriteLogin(ctx, login); err != nil {
		t.Fatal(err)
	}
	noSync("WriteLogin")
	rot := store.Rotation{OldRefreshHash: []byte("r-s2"), NewAccessHash: []byte("a-s2'"), NewRefreshHash: []byte("r-s2'"),
		AccessExpiresAt: at.Add(time.Hour), RefreshExpiresAt: at.Add(time.Hour), Now: at}
	if _, err := s.RotateRefresh(ctx, rot); err != nil {
		t.Fatal(err)
	}
	noSync("RotateRefresh")
	// A repeat within the grace and a claimed repeat of a code revoke
	// nothing.
	g := sess("g")
	g.UserID = "ug"
	if err := s.CreateSession(ctx, g); err != nil {
		t.Fatal(err)
	}
	grot := store.Rotation{OldRefreshHash: []byte("r-g"), NewAccessHash: []byte("a-g'"), NewRefreshHash: []byte("r-g'"),
		AccessExpiresAt: at.Add(time.Hour), RefreshExpiresAt: at.Add(time.Hour), Now: at,
		Successor: []byte("sealed"), SuccessorUntil: at.Add(time.Minute)}
	if _, err := s.RotateRefresh(ctx, grot); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, grot); !errors.Is(err, store.ErrRecentlySpent) {
		t.Fatalf("repeat within the grace: %v, want ErrRecentlySpent", err)
	}
	noSync("a repeat within the grace")
	if _, err := s.ClaimReplay(ctx, []byte("c"), at, 3); err != nil {
		t.Fatal(err)
	}
	noSync("ClaimReplay")

	// revokes runs call, which must revoke session id: it must not return
	// before a sync that begins after the revocation committed.
	revokes := func(what, id string, call func() error) {
		t.Helper()
		g := make(chan struct{})
		release := sync.OnceFunc(func() { close(g) })
		gate.Store(&g)
		defer func() { gate.Store(nil); release() }() // a failed test must not leave the syncer waiting
		returned := make(chan error, 1)
		go func() { returned <- call() }()
		select {
		case <-synced:
		case err := <-returned:
			t.Fatalf("%s returned (%v) without a sync of the WAL", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no sync of the WAL within 10s", what)
		}
		if got, err := s.SessionByID(ctx, id); err != nil || got.RevokedAt.IsZero() {
			t.Errorf("%s: the WAL was synced before the revocation committed (%v, %v)", what, got.RevokedAt, err)
		}
		select {
		case err := <-returned:
			t.Fatalf("%s returned (%v) while the WAL was being synced", what, err)
		default:
		}
		release()
		if err := <-returned; err != nil && !errors.Is(err, store.ErrReused) {
			t.Fatalf("%s: %v", what, err)
		}
	}
	revokes("RevokeSession", "s1", func() error { return s.RevokeSession(ctx, "s1", at) })
	for _, id := range []string{"s3", "s4"} {
		if err := s.CreateSession(ctx, sess(id)); err != nil {
			t.Fatal(err)
		}
	}
	// The cap on an identity's sessions (Keep) ends s3, the older, and
	// does not wait for the disk: a login must not.
	if n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u", Family: "p", AppID: "x", OpenID: "o", Keep: 1, Now: at}); err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions with Keep: %d, %v; want 1 revoked", n, err)
	}
	noSync("RevokeUserSessions with Keep")
	if got, err := s.SessionByID(ctx, "s3"); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("s3 after the cap: revoked %v, %v", got.RevokedAt, err)
	}
	revokes("RevokeUserSessions", "s4", func() error {
		n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u", Now: at})
		if err == nil && n != 1 {
			return errors.New("want 1 revoked")
		}
		return err
	})
	revokes("a replayed refresh token", "s2", func() error {
		_, err := s.RotateRefresh(ctx, rot)
		if !errors.Is(err, store.ErrReused) {
			return errors.New("want ErrReused")
		}
		return err
	})
}

// TestFailedSyncFailsRevocation: when the WAL cannot be synced, the
// revocation's caller is told the store is unavailable instead of being
// told it is done.
func TestFailedSyncFailsRevocation(t *testing.T) {
	s := openInternal(t)
	ctx := t.Context()
	s.wal.sync = func() error { return errors.New("input/output error") }
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.CreateSession(ctx, store.Session{ID: "s1", UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: "o",
		AccessHash: []byte("a"), RefreshHash: []byte("r"), RefreshExpiresAt: at.Add(time.Hour), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, "s1", at); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("RevokeSession with a failing sync: %v, want ErrUnavailable", err)
	}
}
