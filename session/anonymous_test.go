package session_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
)

const ttAppID = "tt07e3715e98c9aac0"

// douyinPlatform answers as Douyin: a code "alice.N" is openid
// "openid-alice", an anonymous code "dev.N" is anonymous openid
// "anon-dev"; both together give both.
type douyinPlatform struct{ key string }

func (douyinPlatform) Flavor() platform.Flavor { return platform.FlavorDouyin }

func (p douyinPlatform) Exchange(_ context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	l := &platform.Login{SessionKey: secret.New(p.key)}
	if req.Code != "" {
		user, _, _ := strings.Cut(req.Code, ".")
		l.OpenID = "openid-" + user
	}
	if req.AnonymousCode != "" {
		dev, _, _ := strings.Cut(req.AnonymousCode, ".")
		l.AnonymousOpenID = "anon-" + dev
	}
	return l, nil
}

func douyinApps(f *fixture) []session.App {
	return append(shopApps(f), session.App{Name: "tt", Family: "douyin", AppID: ttAppID,
		Client: douyinPlatform{key: wxKey1}, CodeTTL: 5 * time.Minute})
}

func (f *fixture) loginWith(t *testing.T, req session.LoginRequest) *session.Tokens {
	t.Helper()
	tok, err := f.svc.LoginWith(context.Background(), "tt", req)
	if err != nil {
		t.Fatalf("LoginWith(%+v): %v", req, err)
	}
	return tok
}

func TestAnonymousLogin(t *testing.T) {
	allWritePaths(t, testAnonymousLogin, withApps(douyinApps))
}

// testAnonymousLogin: a device logs in anonymously, then its user logs in
// to Douyin: the anonymous user becomes that user, with the same id, and
// its session keeps working.
func testAnonymousLogin(t *testing.T, f *fixture) {
	ctx := context.Background()
	anon := f.loginWith(t, session.LoginRequest{AnonymousCode: "dev1.1"})
	u := anon.User
	if !u.Anonymous || !u.Created || u.OpenID != session.AnonymousPrefix+"anon-dev1" || u.PreviousUserID != "" {
		t.Fatalf("anonymous login: %+v", u)
	}
	info, err := f.svc.Check(ctx, anon.AccessToken.Reveal())
	if err != nil || !info.User.Anonymous || info.User.ID != u.ID {
		t.Fatalf("Check of the anonymous session = %+v, %v", info, err)
	}
	// The platform session key opens the user's data as usual.
	plain := `{"nickName":"Ann","avatarUrl":"https://x/y.png"}`
	if out, err := f.svc.Decrypt(ctx, anon.AccessToken.Reveal(), encWX(t, wxKey1, plain)); err != nil || string(out) != plain {
		t.Fatalf("decrypt on the anonymous session: %q, %v", out, err)
	}

	up := f.loginWith(t, session.LoginRequest{Code: "alice.1", AnonymousCode: "dev1.2"})
	if up.User.ID != u.ID || up.User.PreviousUserID != u.ID || up.User.Anonymous || up.User.Created || up.User.OpenID != "openid-alice" {
		t.Fatalf("upgrade: %+v; want user %s, previous %s, not anonymous, not created", up.User, u.ID, u.ID)
	}
	me, err := f.svc.Me(ctx, anon.AccessToken.Reveal())
	if err != nil || me.ID != u.ID || len(me.Identities) != 2 {
		t.Fatalf("the anonymous session after the upgrade: %+v, %v; want %s with two identities", me, err, u.ID)
	}
	// Later logins of either kind are the one user, and upgrade nothing.
	again := f.loginWith(t, session.LoginRequest{Code: "alice.2", AnonymousCode: "dev1.3"})
	if again.User.ID != u.ID || again.User.PreviousUserID != "" {
		t.Fatalf("a second upgrade: %+v", again.User)
	}
	if a := f.loginWith(t, session.LoginRequest{AnonymousCode: "dev1.4"}); a.User.ID != u.ID || a.User.Created {
		t.Fatalf("the device's next anonymous login: %+v", a.User)
	}
	if !strings.Contains(f.logs.String(), "anonymous user upgraded") {
		t.Error("the upgrade was not logged")
	}
}

func TestAnonymousJoinsExistingUser(t *testing.T) {
	allWritePaths(t, testAnonymousJoinsExistingUser, withApps(douyinApps))
}

// testAnonymousJoinsExistingUser: an anonymous user of a device whose
// owner already has a user joins that user; the answer names the
// anonymous user's id, which is gone, and its session moved.
func testAnonymousJoinsExistingUser(t *testing.T, f *fixture) {
	ctx := context.Background()
	bob := f.loginWith(t, session.LoginRequest{Code: "bob.1"})
	anon := f.loginWith(t, session.LoginRequest{AnonymousCode: "dev2.1"})
	if anon.User.ID == bob.User.ID {
		t.Fatal("the anonymous user is bob already")
	}
	up := f.loginWith(t, session.LoginRequest{Code: "bob.2", AnonymousCode: "dev2.2"})
	if up.User.ID != bob.User.ID || up.User.PreviousUserID != anon.User.ID || up.User.Created {
		t.Fatalf("upgrade: %+v; want user %s, previous %s", up.User, bob.User.ID, anon.User.ID)
	}
	if _, err := f.svc.User(ctx, anon.User.ID); code(t, err) != mplogin.CodeNotFound {
		t.Fatalf("the anonymous user after the upgrade: %v, want not_found", err)
	}
	info, err := f.svc.Check(ctx, anon.AccessToken.Reveal())
	if err != nil || info.User.ID != bob.User.ID {
		t.Fatalf("the anonymous session after the upgrade: %+v, %v; want bob's", info, err)
	}
}

func TestAnonymousCodeRefused(t *testing.T) {
	f := newFixture(t, withApps(douyinApps))
	ctx := context.Background()
	for _, tt := range []struct {
		app string
		req session.LoginRequest
	}{
		{"shop", session.LoginRequest{Code: "a.1", AnonymousCode: "d.1"}},
		{"shop", session.LoginRequest{AnonymousCode: "d.1"}},
		{"tt", session.LoginRequest{}},
		{"tt", session.LoginRequest{AnonymousCode: strings.Repeat("a", session.MaxCodeLen+1)}},
	} {
		if _, err := f.svc.LoginWith(ctx, tt.app, tt.req); code(t, err) != mplogin.CodeInvalidRequest {
			t.Errorf("LoginWith(%s, code %d bytes, anonymous %d bytes) = %v, want invalid_request", tt.app, len(tt.req.Code), len(tt.req.AnonymousCode), err)
		}
	}
}
