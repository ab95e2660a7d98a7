package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

// Repeats of a login code, the grace of a just-spent refresh token, the
// sessions of one login and the cap on live sessions.

var replayTests = []test{
	{"Claim", testReplayClaim},
	{"Window", testReplayWindow},
	{"NoWindow", testReplayNoWindow},
	{"Unknown", testReplayUnknown},
	{"Concurrent", testReplayConcurrent},
}

var graceTests = []test{
	{"Previous", testGracePrevious},
	{"Expired", testGraceExpired},
	{"OlderGeneration", testGraceOlder},
	{"NoSuccessor", testGraceNone},
	{"Revoked", testGraceRevoked},
	{"Concurrent", testGraceConcurrent},
	{"ReuseReturnsSession", testReuseReturnsSession},
}

var originTests = []test{
	{"RoundTrip", testOriginRoundTrip},
	{"Revoke", testOriginRevoke},
}

var keepTests = []test{
	{"Newest", testKeepNewest},
	{"Ties", testKeepTies},
	{"WithinLimit", testKeepWithinLimit},
	{"WriteLogin", testKeepWriteLogin},
}

func claim(t *testing.T, s store.Store, h []byte, now time.Time, max int) (store.ExchangedCode, error) {
	t.Helper()
	return s.ClaimReplay(t.Context(), h, now, max)
}

func testReplayClaim(t *testing.T, s store.Store) {
	c := newCode("c1", at(5*time.Minute))
	mustPutCode(t, s, c)
	for i := 1; i <= 3; i++ {
		got, err := claim(t, s, c.Hash, at(time.Second), 3)
		if err != nil {
			t.Fatalf("ClaimReplay %d: %v", i, err)
		}
		want := c
		want.Replays = i
		wantEqual(t, fmt.Sprintf("code after claim %d", i), want, got)
	}
	got, err := claim(t, s, c.Hash, at(2*time.Second), 3)
	wantErr(t, "ClaimReplay past max", err, store.ErrReplayRefused)
	want := c
	want.Replays = 3
	wantEqual(t, "refused code", want, got)
	// The count is stored: GetCode sees it, and a higher max allows more.
	got, err = s.GetCode(t.Context(), c.Hash, at(3*time.Second))
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code after claims", want, got)
	if got, err := claim(t, s, c.Hash, at(3*time.Second), 4); err != nil || got.Replays != 4 {
		t.Fatalf("ClaimReplay(max 4) = %d, %v; want 4, nil", got.Replays, err)
	}
}

func testReplayWindow(t *testing.T, s store.Store) {
	c := newCode("c1", at(5*time.Minute)) // ReplayUntil at 10 s
	mustPutCode(t, s, c)
	if _, err := claim(t, s, c.Hash, at(10*time.Second-time.Microsecond), 3); err != nil {
		t.Fatalf("ClaimReplay just before the window ends: %v", err)
	}
	for _, now := range []timeOffset{{"at the window's end", 10 * time.Second}, {"after it", time.Minute}} {
		got, err := claim(t, s, c.Hash, at(now.d), 3)
		wantErr(t, "ClaimReplay "+now.name, err, store.ErrReplayRefused)
		if got.Replays != 1 || got.SessionID != c.SessionID {
			t.Fatalf("ClaimReplay %s returned %+v, want the code with 1 repeat", now.name, got)
		}
	}
	// GetCode still knows the code: it is used, not forgotten.
	if _, err := s.GetCode(t.Context(), c.Hash, at(time.Minute)); err != nil {
		t.Fatalf("GetCode after the window: %v", err)
	}
}

func testReplayNoWindow(t *testing.T, s store.Store) {
	c := newCode("c1", at(5*time.Minute))
	c.ReplayUntil = time.Time{}
	mustPutCode(t, s, c)
	_, err := claim(t, s, c.Hash, base, 3)
	wantErr(t, "ClaimReplay without a window", err, store.ErrReplayRefused)
	got, err := s.GetCode(t.Context(), c.Hash, base)
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code", c, got)
}

func testReplayUnknown(t *testing.T, s store.Store) {
	_, err := claim(t, s, hash("code:unknown"), base, 3)
	wantErr(t, "ClaimReplay(unknown)", err, store.ErrNotFound)
	c := newCode("c1", at(5*time.Second)) // expires inside its window
	mustPutCode(t, s, c)
	_, err = claim(t, s, c.Hash, at(5*time.Second), 3)
	wantErr(t, "ClaimReplay(expired)", err, store.ErrNotFound)
}

func testReplayConcurrent(t *testing.T, s store.Store) {
	for round := range rounds {
		c := newCode(fmt.Sprint("c", round), at(5*time.Minute))
		mustPutCode(t, s, c)
		const n, limit = 20, 3
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = s.ClaimReplay(t.Context(), c.Hash, at(time.Second), limit)
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrReplayRefused):
			default:
				t.Fatalf("caller %d: %v", i, err)
			}
		}
		if won != limit {
			t.Fatalf("round %d: %d of %d concurrent claims succeeded, want %d", round, won, n, limit)
		}
	}
}

// graceRotation is rotation with a successor kept until until.
func graceRotation(old []byte, gen string, now, until time.Time) store.Rotation {
	r := rotation(old, gen, now)
	r.Successor = []byte("sealed pair " + gen)
	r.SuccessorUntil = until
	return r
}

func testGracePrevious(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := graceRotation(orig.RefreshHash, "1", at(hour), at(hour+30*time.Second))
	after := mustRotate(t, s, r1)
	want := apply(orig, r1)
	wantEqual(t, "rotated session", want, after)

	// The spent token again, within the grace, twice: the successor, and
	// nothing changes.
	for i, now := range []time.Time{at(hour + time.Second), at(hour + 30*time.Second - time.Microsecond)} {
		got, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, fmt.Sprint("x", i), now))
		wantErr(t, "RotateRefresh(previous token, within the grace)", err, store.ErrRecentlySpent)
		w := want
		w.Successor = r1.Successor
		wantEqual(t, "session returned in the grace", w, got)
		wantEqual(t, "stored session", want, mustSessionByID(t, s, "s1"))
	}
	// The successor's own refresh token still rotates.
	mustRotate(t, s, rotation(r1.NewRefreshHash, "2", at(2*hour)))
}

func testGraceExpired(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := graceRotation(orig.RefreshHash, "1", at(hour), at(hour+30*time.Second))
	mustRotate(t, s, r1)
	got, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "x", at(hour+30*time.Second)))
	wantErr(t, "RotateRefresh(previous token, at the grace's end)", err, store.ErrReused)
	if got.ID != "s1" || !got.RevokedAt.Equal(at(hour+30*time.Second)) || len(got.Successor) != 0 {
		t.Fatalf("session returned with ErrReused: %+v", got)
	}
}

func testGraceOlder(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := graceRotation(orig.RefreshHash, "1", at(hour), at(hour+time.Minute))
	mustRotate(t, s, r1)
	r2 := graceRotation(r1.NewRefreshHash, "2", at(hour+time.Second), at(hour+time.Minute))
	mustRotate(t, s, r2)
	// The previous token gets the last rotation's successor.
	got, err := s.RotateRefresh(t.Context(), rotation(r1.NewRefreshHash, "x", at(hour+2*time.Second)))
	wantErr(t, "RotateRefresh(previous token)", err, store.ErrRecentlySpent)
	if !bytes.Equal(got.Successor, r2.Successor) {
		t.Fatalf("Successor = %q, want %q", got.Successor, r2.Successor)
	}
	// Two generations back, even within a window: theft.
	_, err = s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "y", at(hour+3*time.Second)))
	wantErr(t, "RotateRefresh(token two rotations back)", err, store.ErrReused)
	if got := mustSessionByID(t, s, "s1"); !got.RevokedAt.Equal(at(hour + 3*time.Second)) {
		t.Fatalf("RevokedAt = %v, want %v", got.RevokedAt, at(hour+3*time.Second))
	}
}

func testGraceNone(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := graceRotation(orig.RefreshHash, "1", at(hour), at(hour+time.Minute))
	mustRotate(t, s, r1)
	// A rotation without a successor ends the previous one's grace.
	mustRotate(t, s, rotation(r1.NewRefreshHash, "2", at(hour+time.Second)))
	_, err := s.RotateRefresh(t.Context(), rotation(r1.NewRefreshHash, "x", at(hour+2*time.Second)))
	wantErr(t, "RotateRefresh(previous token of a rotation without successor)", err, store.ErrReused)
}

func testGraceRevoked(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := graceRotation(orig.RefreshHash, "1", at(hour), at(hour+time.Minute))
	mustRotate(t, s, r1)
	if err := s.RevokeSession(t.Context(), "s1", at(hour+time.Second)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	got, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "x", at(hour+2*time.Second)))
	wantErr(t, "RotateRefresh(previous token of a revoked session)", err, store.ErrReused)
	if !got.RevokedAt.Equal(at(hour+time.Second)) || len(got.Successor) != 0 {
		t.Fatalf("session returned: RevokedAt %v, Successor %q; want the first revocation and none", got.RevokedAt, got.Successor)
	}
}

// testGraceConcurrent: of concurrent refreshes with the same token, one
// rotates and the others get its successor; the session lives on.
func testGraceConcurrent(t *testing.T, s store.Store) {
	for round := range rounds {
		id := fmt.Sprint("s", round)
		orig := newSession(id)
		mustCreateSession(t, s, orig)
		const n = 20
		rots := make([]store.Rotation, n)
		res := make([]store.Session, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			rots[i] = graceRotation(orig.RefreshHash, fmt.Sprint(id, "-c", i), at(hour), at(hour+30*time.Second))
			wg.Go(func() {
				<-start
				res[i], errs[i] = s.RotateRefresh(t.Context(), rots[i])
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("callers %d and %d both rotated", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no caller rotated the token")
		}
		for i, err := range errs {
			if i == winner {
				continue
			}
			if !errors.Is(err, store.ErrRecentlySpent) {
				t.Fatalf("caller %d: %v, want ErrRecentlySpent", i, err)
			}
			if !bytes.Equal(res[i].Successor, rots[winner].Successor) {
				t.Fatalf("caller %d got successor %q, want the winner's %q", i, res[i].Successor, rots[winner].Successor)
			}
		}
		wantEqual(t, "session", apply(orig, rots[winner]), mustSessionByID(t, s, id))
	}
}

func testReuseReturnsSession(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := rotation(orig.RefreshHash, "1", at(hour))
	mustRotate(t, s, r1)
	got, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "2", at(2*hour)))
	wantErr(t, "RotateRefresh(spent)", err, store.ErrReused)
	want := apply(orig, r1)
	want.RevokedAt = at(2 * hour)
	wantEqual(t, "session returned with ErrReused", want, got)
}

func testOriginRoundTrip(t *testing.T, s store.Store) {
	sess := newSession("s2")
	sess.Origin = "s1"
	mustCreateSession(t, s, sess)
	wantEqual(t, "session by ID", sess, mustSessionByID(t, s, "s2"))
	got, err := s.SessionByAccess(t.Context(), sess.AccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess: %v", err)
	}
	wantEqual(t, "session by access", sess, got)
	r := rotation(sess.RefreshHash, "1", at(hour))
	wantEqual(t, "rotated session", apply(sess, r), mustRotate(t, s, r))
}

// testOriginRevoke: the sessions of one login end together, and no others.
func testOriginRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := userSession("s1", "u1", "wxA", "oA")
	rep1 := userSession("s2", "u1", "wxA", "oA")
	rep1.Origin = "s1"
	rep2 := userSession("s3", "u1", "wxA", "oA")
	rep2.Origin = "s1"
	other := userSession("s4", "u1", "wxA", "oA") // another login of the user
	for _, sess := range []store.Session{first, rep1, rep2, other} {
		mustCreateSession(t, s, sess)
	}
	r := rotation(rep1.RefreshHash, "1", at(hour))
	mustRotate(t, s, r)

	n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1", Origin: "s1", Now: at(2 * hour)})
	if err != nil || n != 3 {
		t.Fatalf("RevokeUserSessions(origin) = %d, %v; want 3, nil", n, err)
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		if got := mustSessionByID(t, s, id).RevokedAt; !got.Equal(at(2 * hour)) {
			t.Fatalf("%s: RevokedAt = %v, want %v", id, got, at(2*hour))
		}
	}
	wantEqual(t, "another login's session", other, mustSessionByID(t, s, "s4"))
	_, err = s.RotateRefresh(ctx, rotation(r.NewRefreshHash, "2", at(3*hour)))
	wantErr(t, "RotateRefresh after the origin's revocation", err, store.ErrNotFound)

	// Revoking from a repeat's own origin ID works the same, and a revoked
	// session is not counted again.
	n, err = s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1", Origin: "s1", Now: at(3 * hour)})
	if err != nil || n != 0 {
		t.Fatalf("RevokeUserSessions(origin) again = %d, %v; want 0, nil", n, err)
	}
}

// keepSession is userSession(id, "u1", "wxA", "oA") created at base+d.
func keepSession(id string, d time.Duration) store.Session {
	sess := userSession(id, "u1", "wxA", "oA")
	sess.CreatedAt, sess.LastUsedAt = at(d), at(d)
	return sess
}

func testKeepNewest(t *testing.T, s store.Store) {
	ctx := t.Context()
	sessions := []store.Session{
		keepSession("a", 1*time.Minute),
		keepSession("b", 2*time.Minute),
		keepSession("c", 3*time.Minute), // revoked below: not counted
		keepSession("d", 4*time.Minute),
		keepSession("e", 5*time.Minute),
		keepSession("f", 6*time.Minute),
	}
	dead := keepSession("g", 7*time.Minute) // refresh expired: not counted
	dead.RefreshExpiresAt = at(time.Hour)
	other := userSession("h", "u1", "wxB", "oB") // another identity
	other.CreatedAt = at(time.Minute)
	for _, sess := range append(sessions, dead, other) {
		mustCreateSession(t, s, sess)
	}
	if err := s.RevokeSession(ctx, "c", at(time.Hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	// Rotating does not make a session newer: creation time counts.
	mustRotate(t, s, rotation(sessions[0].RefreshHash, "a1", at(90*time.Minute)))

	now := at(2 * time.Hour)
	n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1", Family: "wechat", AppID: "wxA", OpenID: "oA", Keep: 2, Now: now})
	if err != nil || n != 3 {
		t.Fatalf("RevokeUserSessions(keep 2) = %d, %v; want 3 (a, b, d), nil", n, err)
	}
	for id, want := range map[string]time.Time{"a": now, "b": now, "c": at(time.Hour), "d": now, "e": {}, "f": {}, "g": {}, "h": {}} {
		if got := mustSessionByID(t, s, id).RevokedAt; !got.Equal(want) {
			t.Fatalf("%s: RevokedAt = %v, want %v", id, got, want)
		}
	}
}

func testKeepTies(t *testing.T, s store.Store) {
	for _, id := range []string{"s1", "s3", "s2"} {
		mustCreateSession(t, s, keepSession(id, time.Minute))
	}
	n, err := s.RevokeUserSessions(t.Context(), store.UserRevocation{UserID: "u1", Family: "wechat", AppID: "wxA", OpenID: "oA", Keep: 2, Now: at(time.Hour)})
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions(keep 2) = %d, %v; want 1, nil", n, err)
	}
	if got := mustSessionByID(t, s, "s1").RevokedAt; !got.Equal(at(time.Hour)) {
		t.Fatalf("of sessions created together the lowest ID ends first: s1 RevokedAt = %v", got)
	}
}

func testKeepWithinLimit(t *testing.T, s store.Store) {
	for i := range 3 {
		mustCreateSession(t, s, keepSession(fmt.Sprint("s", i), time.Duration(i)*time.Minute))
	}
	for _, keep := range []int{3, 20} {
		n, err := s.RevokeUserSessions(t.Context(), store.UserRevocation{UserID: "u1", Family: "wechat", AppID: "wxA", OpenID: "oA", Keep: keep, Now: at(time.Hour)})
		if err != nil || n != 0 {
			t.Fatalf("RevokeUserSessions(keep %d) = %d, %v; want 0, nil", keep, n, err)
		}
	}
	for i := range 3 {
		if got := mustSessionByID(t, s, fmt.Sprint("s", i)).RevokedAt; !got.IsZero() {
			t.Fatalf("s%d revoked", i)
		}
	}
}

// WriteLogin with Keep caps the identity's live sessions as the login is
// written, the new session counted.
func testKeepWriteLogin(t *testing.T, s store.Store) {
	other := userSession("h", "u1", "wxB", "oB") // the user's other identity
	mustCreateSession(t, s, other)
	for i, want := range []int{0, 0, 1, 1} {
		in := loginWrite("wxA", "oA", "", "u1", fmt.Sprint("s", i))
		in.Session.CreatedAt, in.Session.LastUsedAt = at(time.Duration(i)*time.Minute), at(time.Duration(i)*time.Minute)
		in.Keep = 2
		res, err := s.WriteLogin(t.Context(), in)
		if err != nil || res.Ended != want || res.Identity.UserID != "u1" {
			t.Fatalf("login %d: WriteLogin(keep 2) = %+v, %v; want user u1, %d ended", i, res, err, want)
		}
	}
	for id, want := range map[string]time.Time{"s0": at(2 * time.Minute), "s1": at(3 * time.Minute), "s2": {}, "s3": {}, "h": {}} {
		if got := mustSessionByID(t, s, id).RevokedAt; !got.Equal(want) {
			t.Fatalf("%s: RevokedAt = %v, want %v", id, got, want)
		}
	}
	// Read by its token too, which a cache may have answered before.
	got, err := s.SessionByAccess(t.Context(), loginWrite("wxA", "oA", "", "u1", "s0").Session.AccessHash)
	if err != nil || !got.RevokedAt.Equal(at(2*time.Minute)) {
		t.Fatalf("SessionByAccess of a session past the cap: RevokedAt %v, %v; want %v", got.RevokedAt, err, at(2*time.Minute))
	}
}
