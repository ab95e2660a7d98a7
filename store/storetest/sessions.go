package storetest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var sessionTests = []test{
	{"RoundTrip", testSessionRoundTrip},
	{"NotFound", testSessionNotFound},
	{"ByRefresh", testSessionByRefresh},
	{"ByRefreshRotated", testSessionByRefreshRotated},
	{"ByRefreshAnyState", testSessionByRefreshAnyState},
}

var rotateTests = []test{
	{"Success", testRotateSuccess},
	{"Chain", testRotateChain},
	{"ReuseRevokesFamily", testRotateReuse},
	{"Unknown", testRotateUnknown},
	{"RefreshExpired", testRotateRefreshExpired},
	{"SessionRevoked", testRotateRevoked},
	{"SessionExpired", testRotateSessionExpired},
	{"Concurrent", testRotateConcurrent},
}

var revokeTests = []test{
	{"Revoke", testRevoke},
	{"Idempotent", testRevokeIdempotent},
	{"User", testRevokeUser},
	{"PreviousAccessToken", testRevokeByPreviousAccess},
	{"UserIdentity", testRevokeUserIdentity},
	{"UserConcurrentRefresh", testRevokeUserConcurrentRefresh},
}

var decryptFailureTests = []test{
	{"Sequence", testDecryptFailureSequence},
	{"Concurrent", testDecryptFailureConcurrent},
	{"Unknown", testDecryptFailureUnknown},
	{"CreateSession", testDecryptFailureCreate},
}

func testSessionRoundTrip(t *testing.T, s store.Store) {
	full := newSession("s1")
	full.LastUsedAt = at(hour)
	full.RevokedAt = at(2 * hour)

	// Optional times left zero must stay zero.
	sparse := newSession("s2")
	sparse.ExpiresAt = store.Session{}.ExpiresAt
	sparse.LastUsedAt = store.Session{}.LastUsedAt

	for _, want := range []store.Session{full, sparse} {
		mustCreateSession(t, s, want)
		wantEqual(t, "SessionByID("+want.ID+")", want, mustSessionByID(t, s, want.ID))
		got, err := s.SessionByAccess(t.Context(), want.AccessHash)
		if err != nil {
			t.Fatalf("SessionByAccess(%s): %v", want.ID, err)
		}
		wantEqual(t, "SessionByAccess("+want.ID+")", want, got)
	}
	got := mustSessionByID(t, s, "s2")
	if !got.ExpiresAt.IsZero() || !got.LastUsedAt.IsZero() || !got.RevokedAt.IsZero() {
		t.Fatalf("zero times came back as ExpiresAt %v, LastUsedAt %v, RevokedAt %v",
			got.ExpiresAt, got.LastUsedAt, got.RevokedAt)
	}
}

func testSessionNotFound(t *testing.T, s store.Store) {
	mustCreateSession(t, s, newSession("s1"))

	_, err := s.SessionByID(t.Context(), "s2")
	wantErr(t, "SessionByID(unknown)", err, store.ErrNotFound)
	_, err = s.SessionByAccess(t.Context(), hash("unknown"))
	wantErr(t, "SessionByAccess(unknown)", err, store.ErrNotFound)
	// A refresh hash is not an access hash.
	_, err = s.SessionByAccess(t.Context(), newSession("s1").RefreshHash)
	wantErr(t, "SessionByAccess(refresh hash)", err, store.ErrNotFound)
}

func testRotateSuccess(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)

	r := rotation(orig.RefreshHash, "1", at(hour))
	got := mustRotate(t, s, r)
	want := apply(orig, r)
	wantEqual(t, "returned session", want, got)
	wantEqual(t, "stored session", want, mustSessionByID(t, s, "s1"))

	byAccess, err := s.SessionByAccess(t.Context(), r.NewAccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess(new access): %v", err)
	}
	wantEqual(t, "session by new access hash", want, byAccess)
	_, err = s.SessionByAccess(t.Context(), orig.AccessHash)
	wantErr(t, "SessionByAccess(old access)", err, store.ErrNotFound)
}

func testRotateChain(t *testing.T, s store.Store) {
	want := newSession("s1")
	mustCreateSession(t, s, want)
	for i := range 10 {
		r := rotation(want.RefreshHash, fmt.Sprint(i+1), at(time.Duration(i+1)*hour))
		got, err := s.RotateRefresh(t.Context(), r)
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		want = apply(want, r)
		wantEqual(t, fmt.Sprintf("session after rotation %d", i+1), want, got)
	}
	wantEqual(t, "stored session", want, mustSessionByID(t, s, "s1"))
}

func testRotateReuse(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	r1 := rotation(orig.RefreshHash, "1", at(hour))
	mustRotate(t, s, r1)

	// The spent token again: reuse, and the session is revoked at once.
	_, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "2", at(2*hour)))
	wantErr(t, "RotateRefresh(spent)", err, store.ErrReused)
	want := apply(orig, r1)
	want.RevokedAt = at(2 * hour)
	wantEqual(t, "session after reuse", want, mustSessionByID(t, s, "s1"))
	got, err := s.SessionByAccess(t.Context(), r1.NewAccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess after reuse: %v", err)
	}
	wantEqual(t, "session by access after reuse", want, got)

	// The whole family is dead: the token issued by the good rotation too.
	_, err = s.RotateRefresh(t.Context(), rotation(r1.NewRefreshHash, "3", at(3*hour)))
	wantErr(t, "RotateRefresh(current token of revoked session)", err, store.ErrNotFound)

	// Replaying again still reports reuse and keeps the first revocation time.
	_, err = s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "4", at(4*hour)))
	wantErr(t, "RotateRefresh(spent, again)", err, store.ErrReused)
	wantEqual(t, "session after second reuse", want, mustSessionByID(t, s, "s1"))
}

func testRotateUnknown(t *testing.T, s store.Store) {
	mustCreateSession(t, s, newSession("s1"))
	_, err := s.RotateRefresh(t.Context(), rotation(hash("unknown"), "1", at(hour)))
	wantErr(t, "RotateRefresh(unknown)", err, store.ErrNotFound)
	// An access hash is not a refresh token.
	_, err = s.RotateRefresh(t.Context(), rotation(newSession("s1").AccessHash, "2", at(hour)))
	wantErr(t, "RotateRefresh(access hash)", err, store.ErrNotFound)
	wantEqual(t, "session", newSession("s1"), mustSessionByID(t, s, "s1"))
}

func testRotateRefreshExpired(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)

	// RefreshExpiresAt <= Now: both at and after the instant.
	for _, now := range []timeOffset{{"at expiry", 30 * day}, {"after expiry", 31 * day}} {
		_, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "x", at(now.d)))
		wantErr(t, "RotateRefresh "+now.name, err, store.ErrNotFound)
	}
	// Nothing changed: the token was not spent and still rotates before
	// its expiry.
	wantEqual(t, "session", orig, mustSessionByID(t, s, "s1"))
	mustRotate(t, s, rotation(orig.RefreshHash, "1", at(30*day-1)))
}

func testRotateRevoked(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	if err := s.RevokeSession(t.Context(), "s1", at(hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	_, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "1", at(2*hour)))
	wantErr(t, "RotateRefresh(revoked)", err, store.ErrNotFound)
	want := orig
	want.RevokedAt = at(hour)
	wantEqual(t, "session", want, mustSessionByID(t, s, "s1"))
}

func testRotateSessionExpired(t *testing.T, s store.Store) {
	orig := newSession("s1")
	orig.ExpiresAt = at(10 * day) // before the refresh token's own expiry
	mustCreateSession(t, s, orig)

	for _, now := range []timeOffset{{"at end", 10 * day}, {"after end", 11 * day}} {
		_, err := s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "x", at(now.d)))
		wantErr(t, "RotateRefresh "+now.name, err, store.ErrNotFound)
	}
	wantEqual(t, "session", orig, mustSessionByID(t, s, "s1"))
	mustRotate(t, s, rotation(orig.RefreshHash, "1", at(10*day-1)))
}

// testRotateConcurrent races callers presenting the same refresh token, as a
// client retrying in a hurry would: exactly one may win. A race shows only
// when the callers overlap, so it runs several rounds.
func testRotateConcurrent(t *testing.T, s store.Store) {
	for round := range rounds {
		rotateRace(t, s, fmt.Sprint("s", round))
	}
}

func rotateRace(t *testing.T, s store.Store, id string) {
	t.Helper()
	orig := newSession(id)
	mustCreateSession(t, s, orig)

	const n = 20
	rots := make([]store.Rotation, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		rots[i] = rotation(orig.RefreshHash, fmt.Sprint(id, "-c", i), at(hour))
		wg.Go(func() {
			<-start
			_, errs[i] = s.RotateRefresh(t.Context(), rots[i])
		})
	}
	close(start)
	wg.Wait()

	winner, reused := -1, false
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("callers %d and %d both rotated the same token", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrReused):
			reused = true
		case errors.Is(err, store.ErrNotFound):
		default:
			t.Fatalf("caller %d: %v, want nil, ErrReused or ErrNotFound", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no caller rotated the token")
	}

	got := mustSessionByID(t, s, id)
	want := apply(orig, rots[winner])
	if reused {
		want.RevokedAt = at(hour)
	}
	wantEqual(t, fmt.Sprintf("session (winner %d, reuse seen %v)", winner, reused), want, got)

	// The winner's token rotates only if nobody was caught reusing.
	_, err := s.RotateRefresh(t.Context(), rotation(rots[winner].NewRefreshHash, id+"-next", at(2*hour)))
	if reused {
		wantErr(t, "RotateRefresh(winner's token) after reuse", err, store.ErrNotFound)
	} else if err != nil {
		t.Fatalf("RotateRefresh(winner's token): %v", err)
	}
}

func testRevoke(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	mustCreateSession(t, s, newSession("s2"))

	if err := s.RevokeSession(t.Context(), "s1", at(hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	// Still found, revoked: the caller decides.
	got, err := s.SessionByAccess(t.Context(), orig.AccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess(revoked): %v", err)
	}
	want := orig
	want.RevokedAt = at(hour)
	wantEqual(t, "revoked session", want, got)
	if got.Active(at(hour)) {
		t.Fatal("revoked session is Active")
	}
	_, err = s.RotateRefresh(t.Context(), rotation(orig.RefreshHash, "1", at(2*hour)))
	wantErr(t, "RotateRefresh(revoked)", err, store.ErrNotFound)

	// Other sessions are untouched.
	wantEqual(t, "other session", newSession("s2"), mustSessionByID(t, s, "s2"))
}

func testRevokeIdempotent(t *testing.T, s store.Store) {
	mustCreateSession(t, s, newSession("s1"))
	for i, now := range []timeOffset{{"first", hour}, {"second", 2 * hour}} {
		if err := s.RevokeSession(t.Context(), "s1", at(now.d)); err != nil {
			t.Fatalf("RevokeSession %d: %v", i+1, err)
		}
	}
	// The first revocation time is the one that counts.
	if got := mustSessionByID(t, s, "s1").RevokedAt; !got.Equal(at(hour)) {
		t.Fatalf("RevokedAt = %v after revoking twice, want %v", got, at(hour))
	}
	if err := s.RevokeSession(t.Context(), "unknown", at(hour)); err != nil {
		t.Fatalf("RevokeSession(unknown): %v", err)
	}
}

// testRevokeByPreviousAccess: after a rotation, SessionForLogout finds the
// session by the access token it replaced (for a logout that lost a race
// with the refresh), while SessionByAccess does not; a second rotation
// forgets the first token.
func testRevokeByPreviousAccess(t *testing.T, s store.Store) {
	ctx := t.Context()
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	mustCreateSession(t, s, newSession("s2"))
	got, err := s.SessionForLogout(ctx, orig.AccessHash)
	if err != nil || got.ID != "s1" {
		t.Fatalf("SessionForLogout(current token) = %q, %v", got.ID, err)
	}
	r := rotation(orig.RefreshHash, "1", at(hour))
	want := mustRotate(t, s, r)

	_, err = s.SessionByAccess(ctx, orig.AccessHash)
	wantErr(t, "SessionByAccess(previous token)", err, store.ErrNotFound)
	for what, h := range map[string][]byte{"previous": orig.AccessHash, "current": r.NewAccessHash} {
		got, err := s.SessionForLogout(ctx, h)
		if err != nil {
			t.Fatalf("SessionForLogout(%s token): %v", what, err)
		}
		wantEqual(t, "SessionForLogout("+what+" token)", want, got)
	}
	if err := s.RevokeSession(ctx, want.ID, at(2*hour)); err != nil {
		t.Fatal(err)
	}
	got, err = s.SessionForLogout(ctx, orig.AccessHash)
	if err != nil || !got.RevokedAt.Equal(at(2*hour)) {
		t.Fatalf("SessionForLogout(previous token) after revoking = %+v, %v", got, err)
	}
	wantEqual(t, "other session", newSession("s2"), mustSessionByID(t, s, "s2"))

	// Two rotations: only the latest replaced token is kept.
	other := newSession("s3")
	mustCreateSession(t, s, other)
	r1 := rotation(other.RefreshHash, "3a", at(hour))
	mustRotate(t, s, r1)
	mustRotate(t, s, rotation(r1.NewRefreshHash, "3b", at(2*hour)))
	_, err = s.SessionForLogout(ctx, other.AccessHash)
	wantErr(t, "SessionForLogout(token two rotations back)", err, store.ErrNotFound)
	if got, err := s.SessionForLogout(ctx, r1.NewAccessHash); err != nil || got.ID != "s3" {
		t.Fatalf("SessionForLogout(token one rotation back) = %q, %v", got.ID, err)
	}
	_, err = s.SessionForLogout(ctx, hash("unknown"))
	wantErr(t, "SessionForLogout(unknown)", err, store.ErrNotFound)
}

// userSession returns newSession(id) of user uid, of identity openID in
// app appID.
func userSession(id, uid, appID, openID string) store.Session {
	sess := newSession(id)
	sess.UserID, sess.AppID, sess.OpenID = uid, appID, openID
	return sess
}

// testRevokeUser: revoking a user's sessions ends every one of them, in any
// app and identity, a session rotated since its login included, and no other
// user's.
func testRevokeUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	s1 := userSession("s1", "u1", "wxA", "oA")
	s2 := userSession("s2", "u1", "wxB", "oB")
	s3 := userSession("s3", "u1", "wxA", "oA")
	other := userSession("s4", "u2", "wxA", "oC")
	for _, sess := range []store.Session{s1, s2, s3, other} {
		mustCreateSession(t, s, sess)
	}
	// s1 rotated: its current tokens are the rotation's.
	r := rotation(s1.RefreshHash, "1", at(hour))
	mustRotate(t, s, r)
	// s3 was logged out before: its time stays, and it is not counted.
	if err := s.RevokeSession(ctx, "s3", at(hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1", Now: at(2 * hour)})
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	if n != 2 {
		t.Fatalf("RevokeUserSessions revoked %d sessions, want 2", n)
	}
	got, err := s.SessionByAccess(ctx, r.NewAccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess(rotated token): %v", err)
	}
	if !got.RevokedAt.Equal(at(2 * hour)) {
		t.Fatalf("rotated session: RevokedAt = %v, want %v", got.RevokedAt, at(2*hour))
	}
	_, err = s.RotateRefresh(ctx, rotation(r.NewRefreshHash, "2", at(3*hour)))
	wantErr(t, "RotateRefresh(rotated session's token) after revoking the user", err, store.ErrNotFound)
	if got := mustSessionByID(t, s, "s2").RevokedAt; !got.Equal(at(2 * hour)) {
		t.Fatalf("session of the user's other app: RevokedAt = %v, want %v", got, at(2*hour))
	}
	if got := mustSessionByID(t, s, "s3").RevokedAt; !got.Equal(at(hour)) {
		t.Fatalf("session revoked before: RevokedAt = %v, want %v", got, at(hour))
	}
	wantEqual(t, "other user's session", other, mustSessionByID(t, s, "s4"))

	// Again: nothing left to revoke; a user without sessions is no error.
	for _, uid := range []string{"u1", "nobody"} {
		n, err = s.RevokeUserSessions(ctx, store.UserRevocation{UserID: uid, Now: at(3 * hour)})
		if err != nil || n != 0 {
			t.Fatalf("RevokeUserSessions(%s) again = %d, %v; want 0, nil", uid, n, err)
		}
	}
}

// testRevokeUserIdentity: restricted to an identity, only that identity's
// sessions end.
func testRevokeUserIdentity(t *testing.T, s store.Store) {
	ctx := t.Context()
	s1 := userSession("s1", "u1", "wxA", "oA")
	s2 := userSession("s2", "u1", "wxB", "oB")
	mustCreateSession(t, s, s1)
	mustCreateSession(t, s, s2)
	n, err := s.RevokeUserSessions(ctx, store.UserRevocation{UserID: "u1",
		Family: s1.Family, AppID: "wxA", OpenID: "oA", Now: at(hour)})
	if err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions(identity) = %d, %v; want 1, nil", n, err)
	}
	if got := mustSessionByID(t, s, "s1").RevokedAt; !got.Equal(at(hour)) {
		t.Fatalf("the identity's session: RevokedAt = %v, want %v", got, at(hour))
	}
	wantEqual(t, "the user's session of another identity", s2, mustSessionByID(t, s, "s2"))
}

// testRevokeUserConcurrentRefresh: revoking a user's sessions while each
// of them is refreshed in a chain ends every one of them. A rotation that
// commits before the revocation is revoked with its session; one that
// comes after fails with ErrNotFound; none leaves a live session. A race
// shows only when the callers overlap, so it runs several rounds.
func testRevokeUserConcurrentRefresh(t *testing.T, s store.Store) {
	for round := range rounds {
		revokeUserRace(t, s, fmt.Sprint("u", round))
	}
}

func revokeUserRace(t *testing.T, s store.Store, uid string) {
	t.Helper()
	ctx := t.Context()
	// steps bounds a chain that the revocation does not end.
	const sessions, steps = 4, 1000
	// After every rotation's time: a revocation is one whatever its time.
	revokedAt := at(day)
	other := userSession(uid+"-other", uid+"-x", "wxA", "oX")
	mustCreateSession(t, s, other)

	// chain is one session's refreshes, each spending the token the one
	// before it got.
	type chain struct {
		want store.Session // the session as its last successful rotation left it
		err  error         // what ended the chain early; nil when all steps rotated
		late int           // rotations that succeeded though begun after the revocation returned
		bad  error         // a success that is not one
	}
	chains := make([]chain, sessions)
	for i := range chains {
		chains[i].want = userSession(fmt.Sprintf("%s-s%d", uid, i), uid, "wxA", fmt.Sprint("o", i))
		mustCreateSession(t, s, chains[i].want)
	}
	var (
		revoked atomic.Bool // set once RevokeUserSessions has returned
		n       int
		rerr    error
		wg      sync.WaitGroup
	)
	// The revocation waits for every chain to be under way (one rotation
	// done, or the chain ended), so that it lands amid the rotations.
	start, underway := make(chan struct{}), make(chan struct{}, sessions)
	for i := range chains {
		c := &chains[i]
		wg.Go(func() {
			<-start
			signal := sync.OnceFunc(func() { underway <- struct{}{} })
			defer signal()
			for step := range steps {
				after := revoked.Load()
				r := rotation(c.want.RefreshHash, fmt.Sprintf("%s-%d", c.want.ID, step), at(time.Duration(step+1)*time.Minute))
				got, err := s.RotateRefresh(ctx, r)
				if err != nil {
					c.err = err
					return
				}
				if after {
					c.late++
				}
				c.want = apply(c.want, r)
				if got.ID != c.want.ID || !got.RevokedAt.IsZero() {
					c.bad = fmt.Errorf("rotation %d returned session %s, RevokedAt %v, with no error", step, got.ID, got.RevokedAt)
				}
				signal()
			}
		})
	}
	wg.Go(func() {
		<-start
		for range sessions {
			<-underway
		}
		n, rerr = s.RevokeUserSessions(ctx, store.UserRevocation{UserID: uid, Now: revokedAt})
		revoked.Store(true)
	})
	close(start)
	wg.Wait()

	if rerr != nil {
		t.Fatalf("RevokeUserSessions: %v", rerr)
	}
	// Rotations revoke nothing here (no token is spent twice): every
	// session was live when the revocation reached it.
	if n != sessions {
		t.Errorf("RevokeUserSessions revoked %d sessions, want %d", n, sessions)
	}
	for i, c := range chains {
		id := c.want.ID
		switch {
		case c.bad != nil:
			t.Errorf("session %s: %v", id, c.bad)
		case c.late > 0:
			t.Errorf("session %s: %d rotations begun after the revocation returned succeeded", id, c.late)
		case c.err != nil && !errors.Is(c.err, store.ErrNotFound):
			t.Errorf("session %s: a rotation failed with %v, want ErrNotFound", id, c.err)
		}
		// The last successful rotation's tokens name the session, revoked
		// at the revocation's time, and rotate no more.
		want := c.want
		want.RevokedAt = revokedAt
		got, err := s.SessionByAccess(ctx, c.want.AccessHash)
		if err != nil {
			t.Fatalf("session %s: SessionByAccess(latest access token): %v", id, err)
		}
		wantEqual(t, fmt.Sprintf("session %s (chain %d ended by %v)", id, i, c.err), want, got)
		_, err = s.RotateRefresh(ctx, rotation(c.want.RefreshHash, id+"-after", at(day+hour)))
		wantErr(t, fmt.Sprintf("session %s: RotateRefresh(latest refresh token) after the revocation", id), err, store.ErrNotFound)
	}
	wantEqual(t, "other user's session", other, mustSessionByID(t, s, other.ID))
}

func mustAddDecryptFailure(t *testing.T, s store.Store, id string) int {
	t.Helper()
	n, err := s.AddDecryptFailure(t.Context(), id)
	if err != nil {
		t.Fatalf("AddDecryptFailure(%s): %v", id, err)
	}
	return n
}

// testDecryptFailureSequence counts 1, 2, 3 on one session, leaves the
// others alone, changes nothing else, and survives a rotation and a
// revocation (only AddDecryptFailure changes the count).
func testDecryptFailureSequence(t *testing.T, s store.Store) {
	orig := newSession("s1")
	mustCreateSession(t, s, orig)
	mustCreateSession(t, s, newSession("s2"))
	for want := 1; want <= 3; want++ {
		if got := mustAddDecryptFailure(t, s, "s1"); got != want {
			t.Fatalf("AddDecryptFailure #%d = %d, want %d", want, got, want)
		}
	}
	want := orig
	want.DecryptFailures = 3
	wantEqual(t, "SessionByID", want, mustSessionByID(t, s, "s1"))
	got, err := s.SessionByAccess(t.Context(), orig.AccessHash)
	if err != nil {
		t.Fatalf("SessionByAccess: %v", err)
	}
	wantEqual(t, "SessionByAccess", want, got)
	wantEqual(t, "other session", newSession("s2"), mustSessionByID(t, s, "s2"))

	r := rotation(orig.RefreshHash, "1", at(hour))
	want = apply(want, r)
	wantEqual(t, "rotated session", want, mustRotate(t, s, r))
	if err := s.RevokeSession(t.Context(), "s1", at(2*hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	// A revoked session still counts: the caller decides what state matters.
	if got := mustAddDecryptFailure(t, s, "s1"); got != 4 {
		t.Fatalf("AddDecryptFailure after rotation and revocation = %d, want 4", got)
	}
}

// testDecryptFailureConcurrent: concurrent increments lose none, and every
// caller sees a different count.
func testDecryptFailureConcurrent(t *testing.T, s store.Store) {
	mustCreateSession(t, s, newSession("s1"))
	const n = 20
	counts := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			counts[i], errs[i] = s.AddDecryptFailure(t.Context(), "s1")
		})
	}
	close(start)
	wg.Wait()
	seen := make(map[int]bool, n)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if counts[i] < 1 || counts[i] > n || seen[counts[i]] {
			t.Fatalf("caller %d got count %d; counts %v", i, counts[i], counts)
		}
		seen[counts[i]] = true
	}
	if got := mustSessionByID(t, s, "s1").DecryptFailures; got != n {
		t.Fatalf("DecryptFailures = %d after %d concurrent increments", got, n)
	}
}

func testDecryptFailureUnknown(t *testing.T, s store.Store) {
	mustCreateSession(t, s, newSession("s1"))
	_, err := s.AddDecryptFailure(t.Context(), "unknown")
	wantErr(t, "AddDecryptFailure(unknown)", err, store.ErrNotFound)
	wantEqual(t, "session", newSession("s1"), mustSessionByID(t, s, "s1"))
}

// testDecryptFailureCreate: a new session starts at 0, or at the count it
// is given, and counts on from there.
func testDecryptFailureCreate(t *testing.T, s store.Store) {
	mustCreateSession(t, s, newSession("s1"))
	if got := mustSessionByID(t, s, "s1").DecryptFailures; got != 0 {
		t.Fatalf("new session has DecryptFailures %d, want 0", got)
	}
	given := newSession("s2")
	given.DecryptFailures = 4
	mustCreateSession(t, s, given)
	wantEqual(t, "session created with a count", given, mustSessionByID(t, s, "s2"))
	if got := mustAddDecryptFailure(t, s, "s2"); got != 5 {
		t.Fatalf("AddDecryptFailure after 4 = %d, want 5", got)
	}
}

// testSessionByRefresh: the current refresh token finds its session, and
// the look changes nothing (it is no use of the token).
func testSessionByRefresh(t *testing.T, s store.Store) {
	want := newSession("s1")
	mustCreateSession(t, s, want)
	mustCreateSession(t, s, newSession("s2"))
	for range 2 {
		got, err := s.SessionByRefresh(t.Context(), want.RefreshHash)
		if err != nil {
			t.Fatalf("SessionByRefresh: %v", err)
		}
		wantEqual(t, "SessionByRefresh", want, got)
	}
	wantEqual(t, "SessionByID after SessionByRefresh", want, mustSessionByID(t, s, "s1"))
	// Unknown, and an access hash, find nothing.
	_, err := s.SessionByRefresh(t.Context(), hash("unknown"))
	wantErr(t, "SessionByRefresh(unknown)", err, store.ErrNotFound)
	_, err = s.SessionByRefresh(t.Context(), want.AccessHash)
	wantErr(t, "SessionByRefresh(access hash)", err, store.ErrNotFound)
	_, err = s.SessionByRefresh(t.Context(), nil)
	wantErr(t, "SessionByRefresh(nil)", err, store.ErrNotFound)
	// The token is still unspent: a rotation takes it.
	mustRotate(t, s, rotation(want.RefreshHash, "1", at(hour)))
}

// testSessionByRefreshRotated: a spent token finds nothing, and the look
// at a spent token does not count as its reuse.
func testSessionByRefreshRotated(t *testing.T, s store.Store) {
	old := newSession("s1")
	mustCreateSession(t, s, old)
	rot := rotation(old.RefreshHash, "1", at(hour))
	rotated := mustRotate(t, s, rot)
	_, err := s.SessionByRefresh(t.Context(), old.RefreshHash)
	wantErr(t, "SessionByRefresh(spent)", err, store.ErrNotFound)
	got, err := s.SessionByRefresh(t.Context(), rot.NewRefreshHash)
	if err != nil {
		t.Fatalf("SessionByRefresh(new): %v", err)
	}
	wantEqual(t, "SessionByRefresh(new)", rotated, got)
	if !mustSessionByID(t, s, "s1").RevokedAt.IsZero() {
		t.Fatal("a look at a spent refresh token revoked the session")
	}
}

// testSessionByRefreshAnyState: like SessionByAccess, the session comes
// back whatever its state; the caller judges it.
func testSessionByRefreshAnyState(t *testing.T, s store.Store) {
	revoked := newSession("s1")
	mustCreateSession(t, s, revoked)
	if err := s.RevokeSession(t.Context(), "s1", at(hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	got, err := s.SessionByRefresh(t.Context(), revoked.RefreshHash)
	if err != nil {
		t.Fatalf("SessionByRefresh(revoked): %v", err)
	}
	if got.ID != "s1" || got.RevokedAt.IsZero() {
		t.Fatalf("SessionByRefresh(revoked) = %s revoked at %v, want s1 revoked", got.ID, got.RevokedAt)
	}
	expired := newSession("s2")
	expired.RefreshExpiresAt = at(-hour)
	mustCreateSession(t, s, expired)
	got, err = s.SessionByRefresh(t.Context(), expired.RefreshHash)
	if err != nil {
		t.Fatalf("SessionByRefresh(expired): %v", err)
	}
	wantEqual(t, "SessionByRefresh(expired)", expired, got)
}
