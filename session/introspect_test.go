package session_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/token"
)

// introspectFixture is a service whose app "open" exposes unionids and
// whose app "shop" does not; the platform gives every user a unionid.
func introspectFixture(t *testing.T, path writePath) *fixture {
	t.Helper()
	f := newFixture(t, writes(path), withApps(func(f *fixture) []session.App {
		return []session.App{{Name: "shop", Family: "wechat", AppID: "wx1", Client: f.plat, CodeTTL: 5 * time.Minute},
			{Name: "open", Family: "wechat", AppID: "wx2", Client: f.plat, CodeTTL: 5 * time.Minute, ExposeUnionID: true}}
	}))
	f.plat.unionID = "union-1" // before any login reads it
	return f
}

func eachIntrospectPath(t *testing.T, test func(*testing.T, *fixture)) {
	t.Run("one store", func(t *testing.T) { test(t, introspectFixture(t, oneStore)) })
	t.Run("split store", func(t *testing.T) { test(t, introspectFixture(t, splitStore)) })
}

func mustIntrospect(t *testing.T, f *fixture, tok string) session.Introspection {
	t.Helper()
	in, err := f.svc.Introspect(t.Context(), tok)
	if err != nil {
		t.Fatalf("Introspect: %v", err)
	}
	return in
}

func TestIntrospectAccessToken(t *testing.T) { eachIntrospectPath(t, testIntrospectAccessToken) }

func testIntrospectAccessToken(t *testing.T, f *fixture) {
	login := f.clock.Now()
	tok, err := f.svc.Login(t.Context(), "shop", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	before, err := f.store.SessionByID(t.Context(), mustSessionID(t, f, tok.AccessToken.Reveal()))
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	in := mustIntrospect(t, f, tok.AccessToken.Reveal())
	want := session.Introspection{Active: true, TokenType: session.TypeAccessToken, SessionID: before.ID, App: "shop",
		Family: "wechat", User: session.User{ID: tok.User.ID, OpenID: "openid-alice"},
		IssuedAt: login, ExpiresAt: login.Add(2 * time.Hour)}
	if in != want {
		t.Fatalf("Introspect = %+v\nwant %+v", in, want)
	}
	// A look, not a use: the session is as it was.
	after, err := f.store.SessionByID(t.Context(), before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !after.LastUsedAt.Equal(before.LastUsedAt) || !after.AccessExpiresAt.Equal(before.AccessExpiresAt) ||
		!after.RefreshExpiresAt.Equal(before.RefreshExpiresAt) {
		t.Fatalf("introspection changed the session: %+v, was %+v", after, before)
	}
	// IntrospectAccess takes access tokens only.
	if in, err := f.svc.IntrospectAccess(t.Context(), tok.RefreshToken.Reveal()); err != nil || in.Active {
		t.Fatalf("IntrospectAccess(refresh token) = %+v, %v; want inactive", in, err)
	}
}

func mustSessionID(t *testing.T, f *fixture, access string) string {
	t.Helper()
	info, err := f.svc.Check(t.Context(), access)
	if err != nil {
		t.Fatal(err)
	}
	return info.SessionID
}

func TestIntrospectUnionID(t *testing.T) { eachIntrospectPath(t, testIntrospectUnionID) }

func testIntrospectUnionID(t *testing.T, f *fixture) {
	for _, c := range []struct {
		app, want string
	}{{"shop", ""}, {"open", "union-1"}} {
		tok, err := f.svc.Login(t.Context(), c.app, "alice."+c.app)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []string{tok.AccessToken.Reveal(), tok.RefreshToken.Reveal()} {
			if in := mustIntrospect(t, f, raw); !in.Active || in.User.UnionID != c.want {
				t.Errorf("app %s: unionid %q, want %q", c.app, in.User.UnionID, c.want)
			}
		}
	}
}

func TestIntrospectRefreshToken(t *testing.T) { eachIntrospectPath(t, testIntrospectRefreshToken) }

func testIntrospectRefreshToken(t *testing.T, f *fixture) {
	login := f.clock.Now()
	tok, err := f.svc.Login(t.Context(), "shop", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Hour) // past the access token, within the refresh token
	in := mustIntrospect(t, f, tok.RefreshToken.Reveal())
	if !in.Active || in.TokenType != session.TypeRefreshToken || in.User.ID != tok.User.ID || in.App != "shop" ||
		in.SessionID == "" || !in.IssuedAt.Equal(login) || !in.ExpiresAt.Equal(login.Add(30*24*time.Hour)) {
		t.Fatalf("Introspect(refresh) = %+v", in)
	}
	if in := mustIntrospect(t, f, tok.AccessToken.Reveal()); in.Active {
		t.Fatalf("expired access token active: %+v", in)
	}
	// Introspection spent nothing: the token still refreshes, once.
	next, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal())
	if err != nil {
		t.Fatalf("refresh after introspection: %v", err)
	}
	// The spent token is inactive, and a look at it is no reuse: the
	// session lives on (a refresh would have ended it, past the grace).
	f.clock.Advance(time.Hour)
	if in := mustIntrospect(t, f, tok.RefreshToken.Reveal()); in.Active {
		t.Fatalf("spent refresh token active: %+v", in)
	}
	if err := f.svc.Revoke(t.Context(), tok.RefreshToken.Reveal()); err != nil {
		t.Fatalf("Revoke(spent): %v", err)
	}
	if in := mustIntrospect(t, f, next.AccessToken.Reveal()); !in.Active {
		t.Fatal("a look at a spent refresh token ended the session")
	}
	// The absolute end caps the refresh token's.
	f.clock.Advance(89 * 24 * time.Hour)
	if in := mustIntrospect(t, f, next.RefreshToken.Reveal()); in.Active {
		t.Fatalf("refresh token past the session's end active: %+v", in)
	}
}

func TestIntrospectInactive(t *testing.T) { eachIntrospectPath(t, testIntrospectInactive) }

func testIntrospectInactive(t *testing.T, f *fixture) {
	tok, err := f.svc.Login(t.Context(), "shop", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	unknownA, _, _ := token.New(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), token.Access, f.clock.Now())
	unknownR, _, _ := token.New(bytes.NewReader(bytes.Repeat([]byte{1}, 64)), token.Refresh, f.clock.Now())
	for _, raw := range []string{"", "garbage", "mpa_", "Bearer " + tok.AccessToken.Reveal(), unknownA, unknownR,
		tok.AccessToken.Reveal() + "x", "mpx_" + tok.AccessToken.Reveal()[4:]} {
		if in := mustIntrospect(t, f, raw); in != (session.Introspection{}) {
			t.Errorf("Introspect(%.12q…) = %+v, want the zero answer", raw, in)
		}
	}
	if err := f.svc.Logout(t.Context(), tok.AccessToken.Reveal()); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{tok.AccessToken.Reveal(), tok.RefreshToken.Reveal()} {
		if in := mustIntrospect(t, f, raw); in != (session.Introspection{}) {
			t.Errorf("revoked token: %+v, want the zero answer", in)
		}
	}
}

func TestRevoke(t *testing.T) { eachIntrospectPath(t, testRevoke) }

func testRevoke(t *testing.T, f *fixture) {
	for _, kind := range []string{"access", "refresh"} {
		tok, err := f.svc.Login(t.Context(), "shop", "alice."+kind)
		if err != nil {
			t.Fatal(err)
		}
		// A repeat of the login code: a session of the same login, which
		// ends with it.
		repeat, err := f.svc.Login(t.Context(), "shop", "alice."+kind)
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.AccessToken.Reveal()
		if kind == "refresh" {
			raw = tok.RefreshToken.Reveal()
		}
		if err := f.svc.Revoke(t.Context(), raw); err != nil {
			t.Fatalf("Revoke(%s): %v", kind, err)
		}
		for _, a := range []string{tok.AccessToken.Reveal(), repeat.AccessToken.Reveal()} {
			if _, err := f.svc.Check(t.Context(), a); code(t, err) != mplogin.CodeInvalidToken {
				t.Fatalf("after Revoke(%s): check %v", kind, err)
			}
		}
		if _, err := f.svc.Refresh(t.Context(), tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
			t.Fatalf("after Revoke(%s): refresh %v", kind, err)
		}
		// Again, and anything else: nothing to end, no error.
		for _, r := range []string{raw, "", "garbage", "mpr_x"} {
			if err := f.svc.Revoke(t.Context(), r); err != nil {
				t.Fatalf("Revoke(%.8q…) again: %v", r, err)
			}
		}
	}
}

// refreshFailingStore fails every session read by a token.
type refreshFailingStore struct{ store.Store }

func (refreshFailingStore) SessionByAccess(context.Context, []byte) (store.Session, error) {
	return store.Session{}, store.ErrUnavailable
}
func (refreshFailingStore) SessionForLogout(context.Context, []byte) (store.Session, error) {
	return store.Session{}, store.ErrUnavailable
}
func (refreshFailingStore) SessionByRefresh(context.Context, []byte) (store.Session, error) {
	return store.Session{}, store.ErrUnavailable
}

func TestIntrospectStoreUnavailable(t *testing.T) {
	keys, _ := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
	svc, err := session.New(session.Config{Store: refreshFailingStore{memory.New()}, Keys: keys, Policy: session.DefaultPolicy,
		Apps: []session.App{{Name: "shop", Family: "wechat", AppID: "wx1", Client: &fakePlatform{}, CodeTTL: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"mpa_" + string(bytes.Repeat([]byte("A"), 43)), "mpr_" + string(bytes.Repeat([]byte("A"), 43))} {
		if _, err := svc.Introspect(t.Context(), raw); code(t, err) != mplogin.CodeStoreUnavailable {
			t.Errorf("Introspect(%.4s…): %v, want store_unavailable", raw, err)
		}
		if err := svc.Revoke(t.Context(), raw); code(t, err) != mplogin.CodeStoreUnavailable {
			t.Errorf("Revoke(%.4s…): %v, want store_unavailable", raw, err)
		}
	}
}
