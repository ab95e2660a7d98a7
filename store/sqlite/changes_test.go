package sqlite

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// TestChangeLog: Unchanged vouches for a token exactly while nothing has
// changed its session since it was minted, across every kind of write that
// ends or alters a session, and across a reopening of the file.
func TestChangeLog(t *testing.T) {
	const window = time.Hour
	path := filepath.Join(t.TempDir(), "c.db")
	open := func(window time.Duration) *Store {
		t.Helper()
		s, err := Open(t.Context(), path, Options{ChangeWindow: window})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	s := open(window)
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	minted, expires := at, at.Add(window/2)
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	sess := func(id, user string) store.Session {
		x := store.Session{ID: id, UserID: user, App: "a", Family: "p", AppID: "x", OpenID: "o-" + id,
			AccessHash: hash("mpa_" + id), AccessExpiresAt: expires,
			RefreshHash: hash("mpr_" + id), RefreshExpiresAt: at.Add(24 * time.Hour),
			CreatedAt: at, LastUsedAt: at}
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	unchanged := func(s *Store, x store.Session, access []byte) bool {
		return s.Unchanged(x.ID, access, minted, expires)
	}
	kept, rotated, revoked, moved, erased, marked, failed := sess("kept", "u1"), sess("rotated", "u1"),
		sess("revoked", "u1"), sess("moved", "u2"), sess("erased", "u3"), sess("marked", "u1"), sess("failed", "u1")
	for _, x := range []store.Session{kept, rotated, revoked, moved, erased, marked, failed} {
		if !unchanged(s, x, x.AccessHash) {
			t.Fatalf("%s: a new session is not vouched for", x.ID)
		}
	}

	newAccess := hash("mpa_rotated-2")
	if _, err := s.RotateRefresh(ctx, store.Rotation{OldRefreshHash: rotated.RefreshHash, NewAccessHash: newAccess,
		AccessExpiresAt: expires, NewRefreshHash: hash("mpr_rotated-2"), RefreshExpiresAt: at.Add(24 * time.Hour), Now: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeSession(ctx, revoked.ID, at); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveUserSessions(ctx, "u9", "u2"); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUserSessions(ctx, "u3", nil); err != nil {
		t.Fatal(err)
	}
	// Marking a session that is gone changes nothing.
	if err := s.Changed(ctx, erased.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Changed(ctx, marked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDecryptFailure(ctx, failed.ID); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		for _, c := range []struct {
			name   string
			x      store.Session
			access []byte
			want   bool
		}{
			{"untouched", kept, kept.AccessHash, true},
			{"a decryption failure (no change to a check's answer)", failed, failed.AccessHash, true},
			{"the token a refresh replaced", rotated, rotated.AccessHash, false},
			{"the token a refresh installed", rotated, newAccess, true},
			{"revoked", revoked, revoked.AccessHash, false},
			{"moved to another user", moved, moved.AccessHash, false},
			{"erased", erased, erased.AccessHash, false},
			{"marked changed", marked, marked.AccessHash, false},
		} {
			if got := unchanged(s, c.x, c.access); got != c.want {
				t.Errorf("%s: %s: Unchanged = %v, want %v", when, c.name, got, c.want)
			}
		}
	}
	check(s, "after the writes")
	if s.Unchanged(kept.ID, kept.AccessHash, minted, minted.Add(window+time.Second)) {
		t.Error("vouched for a token that lives longer than the window")
	}
	if s.Unchanged(kept.ID, kept.AccessHash, s.changes.since.Add(-time.Second), expires) {
		t.Error("vouched for a token minted before the log began")
	}

	// The log is on disk: a reopened store knows the same.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(window)
	check(s, "reopened")

	// A file opened without a window keeps the log; one opened with
	// another window starts it over, vouching for no token minted before.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(0)
	if unchanged(s, kept, kept.AccessHash) {
		t.Error("a store without a window vouched")
	}
	s.Close()
	s = open(window)
	check(s, "reopened after a store without a window")
	s.Close()
	s = open(2 * window)
	t.Cleanup(func() { s.Close() })
	if !s.changes.since.After(at) {
		t.Fatalf("another window: the log begins at %v, not after the tokens were minted (%v)", s.changes.since, at)
	}
	if unchanged(s, kept, kept.AccessHash) {
		t.Error("another window: vouched for a token minted before the log began")
	}
}

// TestChangeLogPrune: the sweep deletes the changes whose tokens have all
// expired, from the table and from memory, and no others.
func TestChangeLogPrune(t *testing.T) {
	const window = time.Hour
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "p.db"), Options{ChangeWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	for _, id := range []string{"old", "new"} {
		h := sha256.Sum256([]byte(id))
		if err := s.CreateSession(ctx, store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: id,
			AccessHash: h[:], AccessExpiresAt: at.Add(time.Hour), RefreshHash: h[:], RefreshExpiresAt: at.Add(48 * time.Hour),
			CreatedAt: at, LastUsedAt: at}); err != nil {
			t.Fatal(err)
		}
		if err := s.Changed(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// As if the old one's token had expired.
	if err := s.inTx(ctx, "age", func(ctx context.Context, tx wtx) error {
		_, err := tx.ExecContext(ctx, `UPDATE session_changes SET until = until - ? WHERE id = 'old'`, 2*time.Hour.Microseconds())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := s.changes.size(); n != 2 {
		t.Fatalf("%d changes in memory, want 2", n)
	}
	if _, err := s.DeleteExpired(ctx, at); err != nil {
		t.Fatal(err)
	}
	ids := strs(t, s.read, `SELECT id FROM session_changes`)
	if len(ids) != 1 || ids[0] != "new" {
		t.Fatalf("after the sweep the table holds %v, want [new]", ids)
	}
	if n := s.changes.size(); n != 1 {
		t.Fatalf("after the sweep %d changes in memory, want 1", n)
	}
	if _, ok := s.changes.bySession[keyOf("new")]; !ok {
		t.Fatal("the sweep forgot the recent change")
	}
}

// TestChangeLogWindows: the log starts over when the window changes,
// except the first time a file is opened with one.
func TestChangeLogWindows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.db")
	sinceWith := func(window time.Duration) time.Time {
		t.Helper()
		s, err := Open(t.Context(), path, Options{ChangeWindow: window})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if window == 0 {
			return time.Time{}
		}
		return s.changes.since
	}
	sinceWith(0) // made by a command other than the service
	made := sinceWith(time.Hour)
	for _, c := range []struct {
		window time.Duration
		over   bool
	}{
		{time.Hour, false},
		{time.Minute, true},
		{time.Minute, false}, // the same
		{2 * time.Hour, true},
	} {
		got := sinceWith(c.window)
		if over := got.After(made); over != c.over {
			t.Fatalf("window %v: the log begins at %v, after the last at %v: %v, want %v", c.window, got, made, over, c.over)
		}
		made = got
	}
}

// BenchmarkChangeLogMemory reports the heap a change kept in memory takes:
// the log holds one per session changed within the window.
func BenchmarkChangeLogMemory(b *testing.B) {
	const n = 200_000
	pending := make([]pendingChange, n)
	for i := range pending {
		h := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		pending[i] = pendingChange{seq: int64(i + 1), id: fmt.Sprintf("%032x", i), hash: append(make([]byte, 6), h[:]...)}
	}
	var perChange float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := &changeLog{max: n, now: time.Now, bySession: make(map[sessionKey]change)}
		c.apply(pending)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perChange = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perChange, "B/change")
}

// TestChangeLogSkipsExpired: a change to a session whose access token has
// expired concerns no usable token, and is not kept.
func TestChangeLogSkipsExpired(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "e.db"), Options{ChangeWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	for i, end := range []time.Time{at.Add(-time.Minute), at.Add(time.Minute)} {
		id := fmt.Sprint("s", i)
		h := sha256.Sum256([]byte(id))
		if err := s.CreateSession(ctx, store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: id,
			AccessHash: h[:], AccessExpiresAt: end, RefreshHash: h[:], RefreshExpiresAt: at.Add(48 * time.Hour),
			CreatedAt: at, LastUsedAt: at}); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, id, at); err != nil {
			t.Fatal(err)
		}
		if err := s.Changed(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.changes.size(); n != 1 {
		t.Fatalf("%d changes kept, want 1: the session whose token is in date", n)
	}
	if _, ok := s.changes.bySession[keyOf("s1")]; !ok {
		t.Fatal("the change to the session whose token is in date was not kept")
	}
}

// TestChangeLogKeep: past KeepChanges, the memory side starts over and
// vouches for no token minted before; what it vouches for stays exact.
func TestChangeLogKeep(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "k.db"), Options{ChangeWindow: time.Hour, KeepChanges: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	hash := func(id string) []byte { h := sha256.Sum256([]byte(id)); return h[:] }
	create := func(id string) {
		t.Helper()
		if err := s.CreateSession(ctx, store.Session{ID: id, UserID: "u", App: "a", Family: "p", AppID: "x", OpenID: id,
			AccessHash: hash(id), AccessExpiresAt: at.Add(time.Hour), RefreshHash: hash("r" + id), RefreshExpiresAt: at.Add(48 * time.Hour),
			CreatedAt: at, LastUsedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		create(fmt.Sprint("s", i))
	}
	for i := range 4 {
		if err := s.RevokeSession(ctx, fmt.Sprint("s", i), at); err != nil {
			t.Fatal(err)
		}
		if n := s.changes.size(); n > 3 {
			t.Fatalf("%d changes in memory, want at most 3", n)
		}
	}
	if s.Unchanged("s4", hash("s4"), at, at.Add(time.Hour)) {
		t.Error("vouched for a token minted before the memory side started over")
	}
	later := s.changes.since.Add(time.Millisecond)
	create("s5")
	if !s.Unchanged("s5", hash("s5"), later, later.Add(time.Hour)) {
		t.Error("no vouching for a token minted since")
	}
	for i := range 4 {
		if s.Unchanged(fmt.Sprint("s", i), hash(fmt.Sprint("s", i)), at, at.Add(time.Hour)) {
			t.Errorf("s%d: vouched for a revoked session", i)
		}
	}
	if err := s.RevokeSession(ctx, "s5", at); err != nil {
		t.Fatal(err)
	}
	if s.Unchanged("s5", hash("s5"), later, later.Add(time.Hour)) {
		t.Error("vouched for a session revoked since the memory side started over")
	}
}
