package storetest

import (
	"testing"
	"time"

	"github.com/mplogin/mplogin/store"
)

var codeTests = []test{
	{"RoundTrip", testCodeRoundTrip},
	{"Expired", testCodeExpired},
	{"Replace", testCodeReplace},
}

var deleteTests = []test{
	{"Sweep", testDeleteExpired},
}

func newCode(name string, expires time.Time) store.ExchangedCode {
	return store.ExchangedCode{
		Hash:      hash("code:" + name),
		App:       "main",
		Family:    "wechat",
		AppID:     "wxA",
		OpenID:    "o-" + name,
		ExpiresAt: expires,
		SessionID: "s-" + name,
		// A window inside the lifetime, of codes that live 5 minutes or
		// more from base.
		ReplayUntil: at(10 * time.Second),
	}
}

func mustPutCode(t *testing.T, s store.Store, c store.ExchangedCode) {
	t.Helper()
	if err := s.PutCode(t.Context(), c); err != nil {
		t.Fatalf("PutCode: %v", err)
	}
}

func testCodeRoundTrip(t *testing.T, s store.Store) {
	want := newCode("c1", at(5*time.Minute))
	mustPutCode(t, s, want)
	got, err := s.GetCode(t.Context(), want.Hash, base)
	if err != nil {
		t.Fatalf("GetCode: %v", err)
	}
	wantEqual(t, "code", want, got)
}

func testCodeExpired(t *testing.T, s store.Store) {
	c := newCode("c1", at(5*time.Minute))
	mustPutCode(t, s, c)
	for _, now := range []timeOffset{{"at expiry", 5 * time.Minute}, {"after expiry", hour}} {
		_, err := s.GetCode(t.Context(), c.Hash, at(now.d))
		wantErr(t, "GetCode "+now.name, err, store.ErrNotFound)
	}
	_, err := s.GetCode(t.Context(), hash("code:unknown"), base)
	wantErr(t, "GetCode(unknown)", err, store.ErrNotFound)
	// Still there before its expiry.
	if _, err := s.GetCode(t.Context(), c.Hash, at(5*time.Minute-1)); err != nil {
		t.Fatalf("GetCode before expiry: %v", err)
	}
}

func testCodeReplace(t *testing.T, s store.Store) {
	first := newCode("c1", at(5*time.Minute))
	mustPutCode(t, s, first)

	second := first
	second.OpenID = "o-other"
	second.ExpiresAt = at(10 * time.Minute)
	mustPutCode(t, s, second)
	got, err := s.GetCode(t.Context(), first.Hash, at(7*time.Minute))
	if err != nil {
		t.Fatalf("GetCode after replace: %v", err)
	}
	wantEqual(t, "replaced code", second, got)

	// Replacing can also shorten the lifetime.
	third := first
	third.ExpiresAt = at(time.Minute)
	mustPutCode(t, s, third)
	_, err = s.GetCode(t.Context(), first.Hash, at(2*time.Minute))
	wantErr(t, "GetCode after shortening replace", err, store.ErrNotFound)
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := at(10 * day)

	codeLive := newCode("live", now.Add(time.Minute))
	codeDead := newCode("dead", now.Add(-time.Minute))
	codeEdge := newCode("edge", now) // ExpiresAt <= now is expired
	for _, c := range []store.ExchangedCode{codeLive, codeDead, codeEdge} {
		mustPutCode(t, s, c)
	}

	// Live sessions; "live" has a spent token that must stay known.
	live := newSession("live")
	mustCreateSession(t, s, live)
	liveRot := rotation(live.RefreshHash, "live-1", at(hour))
	live = mustRotate(t, s, liveRot)
	noEnd := newSession("no-end")
	noEnd.ExpiresAt = time.Time{}
	mustCreateSession(t, s, noEnd)

	// Dead sessions.
	revoked := newSession("revoked")
	mustCreateSession(t, s, revoked)
	mustRotate(t, s, rotation(revoked.RefreshHash, "revoked-1", at(hour)))
	if err := s.RevokeSession(ctx, "revoked", at(2*hour)); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	refreshDead := newSession("refresh-dead")
	refreshDead.RefreshExpiresAt = now.Add(-hour)
	refreshEdge := newSession("refresh-edge")
	refreshEdge.RefreshExpiresAt = now
	ended := newSession("ended")
	ended.ExpiresAt = now.Add(-hour)
	for _, sess := range []store.Session{refreshDead, refreshEdge, ended} {
		mustCreateSession(t, s, sess)
	}

	n, err := s.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	if want := 2 + 4; n != want {
		t.Fatalf("DeleteExpired removed %d, want %d (2 codes, 4 sessions)", n, want)
	}

	// What was live is intact.
	if got, err := s.GetCode(ctx, codeLive.Hash, now); err != nil {
		t.Fatalf("GetCode(live): %v", err)
	} else {
		wantEqual(t, "live code", codeLive, got)
	}
	wantEqual(t, "live session", live, mustSessionByID(t, s, "live"))
	wantEqual(t, "session without end", noEnd, mustSessionByID(t, s, "no-end"))

	// What was dead is gone, with its tokens.
	for _, c := range []store.ExchangedCode{codeDead, codeEdge} {
		// Asked at an earlier time, so that only deletion explains ErrNotFound.
		_, err := s.GetCode(ctx, c.Hash, base)
		wantErr(t, "GetCode("+c.OpenID+") after sweep", err, store.ErrNotFound)
	}
	for _, sess := range []store.Session{revoked, refreshDead, refreshEdge, ended} {
		_, err := s.SessionByID(ctx, sess.ID)
		wantErr(t, "SessionByID("+sess.ID+") after sweep", err, store.ErrNotFound)
		_, err = s.SessionByAccess(ctx, sess.AccessHash)
		wantErr(t, "SessionByAccess("+sess.ID+") after sweep", err, store.ErrNotFound)
	}
	// The revoked session's spent token would report reuse if it were
	// still known.
	_, err = s.RotateRefresh(ctx, rotation(revoked.RefreshHash, "revoked-2", now))
	wantErr(t, "RotateRefresh(spent token of swept session)", err, store.ErrNotFound)

	if n, err := s.DeleteExpired(ctx, now); err != nil || n != 0 {
		t.Fatalf("second DeleteExpired = %d, %v; want 0, nil", n, err)
	}

	// Tokens of live sessions still work, and a spent one is still caught.
	mustRotate(t, s, rotation(noEnd.RefreshHash, "no-end-1", now))
	_, err = s.RotateRefresh(ctx, rotation(liveRot.OldRefreshHash, "live-2", now))
	wantErr(t, "RotateRefresh(spent token of live session)", err, store.ErrReused)
}
