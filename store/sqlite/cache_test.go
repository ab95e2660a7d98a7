package sqlite

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// TestRevokedTakesTheReadPath: the check of a revoked access token does the
// same work as the check of a token never issued, a read of the database,
// so that the answer's timing does not tell them apart; only sessions still
// usable are answered from memory. The probe: with the session query made
// to fail, whatever still answers came from memory.
func TestRevokedTakesTheReadPath(t *testing.T) {
	s := openCached(t)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	sess := func(id string) store.Session {
		return store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: "o",
			AccessHash: hash("mpa_" + id), AccessExpiresAt: at.Add(time.Hour),
			RefreshHash: hash("mpr_" + id), RefreshExpiresAt: at.Add(24 * time.Hour),
			CreatedAt: at, LastUsedAt: at}
	}
	active, loggedOut, replayed := sess("active"), sess("logged-out"), sess("replayed")
	for _, x := range []store.Session{active, loggedOut, replayed} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	// Each is checked while usable first, as a client would, so that it is
	// in the cache when it is revoked.
	for _, x := range []store.Session{active, loggedOut, replayed} {
		if _, err := s.SessionByAccess(ctx, x.AccessHash); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeSession(ctx, loggedOut.ID, at); err != nil {
		t.Fatal(err)
	}
	rot := store.Rotation{OldRefreshHash: replayed.RefreshHash, NewAccessHash: hash("mpa_2"), AccessExpiresAt: at.Add(time.Hour),
		NewRefreshHash: hash("mpr_2"), RefreshExpiresAt: at.Add(24 * time.Hour), Now: at}
	if _, err := s.RotateRefresh(ctx, rot); err != nil {
		t.Fatal(err)
	}
	rot.NewAccessHash, rot.NewRefreshHash = hash("mpa_3"), hash("mpr_3")
	if _, err := s.RotateRefresh(ctx, rot); !errors.Is(err, store.ErrReused) {
		t.Fatalf("replay: %v, want ErrReused", err)
	}
	unknown := hash("mpa_never-issued")
	// Checked again and again, as an attacker timing them would.
	for range 3 {
		for _, h := range [][]byte{hash("mpa_2"), loggedOut.AccessHash, unknown} {
			_, _ = s.SessionByAccess(ctx, h)
		}
	}

	broken, err := s.read.PrepareContext(ctx, sessionByAccessSQL)
	if err != nil {
		t.Fatal(err)
	}
	broken.Close()
	working := s.r.sessionByAccess
	s.r.sessionByAccess = broken
	defer func() { s.r.sessionByAccess = working }()

	if _, err := s.SessionByAccess(ctx, active.AccessHash); err != nil {
		t.Fatalf("a usable session was not answered from memory (%v): the probe cannot tell the paths apart", err)
	}
	if _, err := s.SessionByAccess(ctx, unknown); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unknown token: %v; want the failed query's error", err)
	}
	for name, h := range map[string][]byte{"logged out": loggedOut.AccessHash, "revoked by a replay": hash("mpa_2")} {
		if got, err := s.SessionByAccess(ctx, h); err == nil {
			t.Errorf("%s: answered from memory (revoked at %v), while an unknown token costs a read: "+
				"the timing tells a revoked token from one never issued", name, got.RevokedAt)
		}
	}
}

// TestCacheForgetsAfterCommit: a revocation whose caller gave up while it
// ran still drops the session from the cache once it commits, and not
// before: a check that reads the session between the write and its commit
// (and caches it, still valid) does not outlive the commit.
func TestCacheForgetsAfterCommit(t *testing.T) {
	s := openCached(t)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	x := store.Session{ID: "s", UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: "o",
		AccessHash: []byte("access"), AccessExpiresAt: at.Add(time.Hour),
		RefreshHash: []byte("refresh"), RefreshExpiresAt: at.Add(24 * time.Hour),
		CreatedAt: at, LastUsedAt: at}
	if err := s.CreateSession(ctx, x); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	defer cancel()
	revoke := s.revokeSessionOp(gone, x.ID, at)
	var readErr error
	// Runs after the revocation, in its batch, before the commit.
	between := &writeOp{ctx: ctx, plain: true, done: make(chan error, 1), fn: func(context.Context, wtx) error {
		cancel() // the caller of the revocation gives up
		var got store.Session
		got, readErr = s.SessionByAccess(ctx, x.AccessHash) // the read pool sees the last commit
		if readErr == nil && !got.RevokedAt.IsZero() {
			readErr = errors.New("revoked before its commit")
		}
		return nil
	}}
	s.commitBatch([]*writeOp{revoke, between})
	if err := <-between.done; err != nil {
		t.Fatal(err)
	}
	if readErr != nil {
		t.Fatalf("check before the commit: %v", readErr)
	}
	got, err := s.SessionByAccess(ctx, x.AccessHash)
	if err != nil {
		t.Fatal(err)
	}
	if got.RevokedAt.IsZero() {
		t.Fatal("after the revocation committed, the check found the session still valid")
	}
}

// openCached opens a new Store that caches up to 100 sessions.
func openCached(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "c.db"), Options{CacheSessions: 100})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
