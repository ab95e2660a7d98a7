package session_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/sqlite"
	"github.com/mplogin/mplogin/token"
)

// countingStore counts the reads of a session by access token and of
// users, and can make a read by refresh token answer as the session was
// before a change.
type countingStore struct {
	*sqlite.Store
	byAccess atomic.Int64
	users    atomic.Int64
	stale    func(store.Session) store.Session
}

func (c *countingStore) GetUser(ctx context.Context, id string) (store.User, error) {
	c.users.Add(1)
	return c.Store.GetUser(ctx, id)
}

func (c *countingStore) SessionByAccess(ctx context.Context, h []byte) (store.Session, error) {
	c.byAccess.Add(1)
	return c.Store.SessionByAccess(ctx, h)
}

func (c *countingStore) SessionByRefresh(ctx context.Context, h []byte) (store.Session, error) {
	sess, err := c.Store.SessionByRefresh(ctx, h)
	if err == nil && c.stale != nil {
		sess = c.stale(sess)
	}
	return sess, err
}

type sealedFixture struct {
	t     testing.TB
	path  string
	st    *countingStore
	svc   *session.Service
	keys  *keyring.Keyring
	clock *testutil.Clock
	plat  *fakePlatform
}

// newSealed is a Service over a SQLite store with a change log, so with
// sealed access tokens. The log begins when the store is first opened, on
// this machine's clock, so the service's clock starts there too.
func newSealed(t testing.TB) *sealedFixture {
	keys, err := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &sealedFixture{t: t, path: filepath.Join(t.TempDir(), "s.db"), keys: keys, plat: &fakePlatform{}}
	f.open()
	f.clock = testutil.NewClock(time.Now().Add(time.Second))
	f.service()
	return f
}

// open opens the store, closing the one open before: a restart.
func (f *sealedFixture) open() {
	if f.st != nil {
		if err := f.st.Close(); err != nil {
			f.t.Fatal(err)
		}
	}
	st, err := sqlite.Open(f.t.Context(), f.path, sqlite.Options{ChangeWindow: 3 * time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { st.Close() })
	f.st = &countingStore{Store: st}
}

func (f *sealedFixture) service() {
	svc, err := session.New(session.Config{Store: f.st, Changes: f.st.Store, Keys: f.keys, Policy: session.DefaultPolicy,
		Now: f.clock.Now, Apps: []session.App{{Name: "shop", Family: "wechat", AppID: "wx1", Client: f.plat, CodeTTL: 5 * time.Minute}}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.svc = svc
}

// check checks tok and returns the answer and whether it read the store.
func (f *sealedFixture) check(tok string) (*session.Info, bool, error) {
	before := f.st.byAccess.Load()
	info, err := f.svc.Check(f.t.Context(), tok)
	return info, f.st.byAccess.Load() != before, err
}

// login logs in with code, whose user has the unionid "union-" and the
// code's first five characters.
func (f *sealedFixture) login(code string) *session.Tokens {
	f.plat.unionID = "union-" + code[:5]
	tok, err := f.svc.Login(f.t.Context(), "shop", code)
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *sealedFixture) mustAnswer(tok string, read bool, want session.User) {
	f.t.Helper()
	info, didRead, err := f.check(tok)
	if err != nil {
		f.t.Fatalf("Check: %v", err)
	}
	if didRead != read {
		f.t.Errorf("Check read the store: %v, want %v", didRead, read)
	}
	if info.User.ID != want.ID || info.User.OpenID != want.OpenID || info.User.UnionID != want.UnionID || info.App != "shop" {
		f.t.Errorf("Check answered %+v, want %+v of app shop", info.User, want)
	}
	if info.ExpiresIn <= 0 || info.ExpiresIn > session.DefaultPolicy.AccessTTL {
		f.t.Errorf("Check: expires in %v", info.ExpiresIn)
	}
}

func (f *sealedFixture) mustRefuse(tok, why string) {
	f.t.Helper()
	if _, _, err := f.check(tok); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
		f.t.Errorf("%s: Check = %v, want invalid_token", why, err)
	}
}

func TestSealedTokens(t *testing.T) {
	f := newSealed(t)
	ctx := t.Context()
	a := f.login("aaaaa-code")
	access := a.AccessToken.Reveal()
	payload, _, ok := token.Unseal(f.keys, access)
	if !ok {
		t.Fatalf("the access token %q is not sealed", access)
	}
	for _, clear := range []string{a.User.ID, a.User.OpenID, "union-aaaaa"} {
		if strings.Contains(access, clear) {
			t.Fatalf("the access token shows %q", clear)
		}
	}
	user := session.User{ID: a.User.ID, OpenID: a.User.OpenID, UnionID: "union-aaaaa"}
	f.mustAnswer(access, false, user)

	// The same answer from the store, as introspection sees it too.
	in, err := f.svc.IntrospectAccess(ctx, access)
	if err != nil || !in.Active || in.User.ID != user.ID || in.SessionID == "" || in.Family != "wechat" || in.IssuedAt.IsZero() {
		t.Fatalf("IntrospectAccess = %+v, %v", in, err)
	}

	// A refresh: the old token ends, the new one is answered from itself.
	r, err := f.svc.Refresh(ctx, a.RefreshToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	f.mustRefuse(access, "the token a refresh replaced")
	f.mustAnswer(r.AccessToken.Reveal(), false, user)

	// A logout ends it at once.
	if err := f.svc.Logout(ctx, r.AccessToken.Reveal()); err != nil {
		t.Fatal(err)
	}
	f.mustRefuse(r.AccessToken.Reveal(), "logged out")

	// Changed in any way, refused or read: tampered, another key, expired.
	b := f.login("bbbbb-code")
	bt := b.AccessToken.Reveal()
	f.mustRefuse(bt[:20]+flipChar(bt[20])+bt[21:], "tampered")
	other, err := keyring.New(nil, bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := token.NewSealed(other, f.clock.Now(), payload)
	if err != nil {
		t.Fatal(err)
	}
	f.mustRefuse(forged, "sealed with another key")

	// Admin: a block ends the user's sessions; a merge moves them, and the
	// check then reads the store for the new user.
	c := f.login("ccccc-code")
	d := f.login("ddddd-code")
	f.mustAnswer(c.AccessToken.Reveal(), false, session.User{ID: c.User.ID, OpenID: c.User.OpenID, UnionID: "union-ccccc"})
	if _, err := f.svc.BlockUser(ctx, c.User.ID, "test"); err != nil {
		t.Fatal(err)
	}
	f.mustRefuse(c.AccessToken.Reveal(), "blocked")
	if err := f.svc.MergeUsers(ctx, b.User.ID, d.User.ID); err != nil {
		t.Fatal(err)
	}
	f.mustAnswer(d.AccessToken.Reveal(), true, session.User{ID: b.User.ID, OpenID: d.User.OpenID, UnionID: "union-ddddd"})
	e := f.login("eeeee-code")
	if err := f.svc.EraseUser(ctx, e.User.ID); err != nil {
		t.Fatal(err)
	}
	f.mustRefuse(e.AccessToken.Reveal(), "erased")

	// A new process over the same file knows all of it.
	g := f.login("ggggg-code")
	f.open()
	f.service()
	f.mustRefuse(access, "the token a refresh replaced, after a restart")
	f.mustRefuse(r.AccessToken.Reveal(), "logged out, after a restart")
	f.mustRefuse(e.AccessToken.Reveal(), "erased, after a restart")
	f.mustAnswer(g.AccessToken.Reveal(), false, session.User{ID: g.User.ID, OpenID: g.User.OpenID, UnionID: "union-ggggg"})

	// Past its end, refused without a read.
	f.clock.Advance(session.DefaultPolicy.AccessTTL + mplogin.MaxClockSkew + time.Second)
	if _, read, err := f.check(g.AccessToken.Reveal()); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken || read {
		t.Errorf("expired: Check = %v (read %v), want invalid_token without a read", err, read)
	}
}

// TestSealedRefreshRace: a session that changes between the refresh's read
// of it and its rotation gets a token the store does not vouch for, so
// its check reads the session as it is.
func TestSealedRefreshRace(t *testing.T) {
	f := newSealed(t)
	a := f.login("aaaaa-code")
	f.st.stale = func(s store.Session) store.Session { s.UserID = "someone-before"; return s }
	r, err := f.svc.Refresh(t.Context(), a.RefreshToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	f.mustAnswer(r.AccessToken.Reveal(), true, session.User{ID: a.User.ID, OpenID: a.User.OpenID, UnionID: "union-aaaaa"})
}

// Without a change log, access tokens stay opaque.
func TestOpaqueWithoutChangeLog(t *testing.T) {
	f := newFixture(t)
	tok, err := f.svc.Login(t.Context(), "shop", "aaaaa-code")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := token.Unseal(f.keys, tok.AccessToken.Reveal()); ok || len(tok.AccessToken.Reveal()) != len(token.Access)+51 {
		t.Fatalf("%q: not an opaque token", tok.AccessToken.Reveal())
	}
}

func flipChar(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestLoginReadsNoUser: a login learns its user's block from its write,
// and still refuses a blocked user.
func TestLoginReadsNoUser(t *testing.T) {
	f := newSealed(t)
	a := f.login("aaaaa-code1")
	f.login("aaaaa-code2")
	if n := f.st.users.Load(); n != 0 {
		t.Fatalf("two logins read the user %d times, want 0", n)
	}
	if _, err := f.svc.BlockUser(t.Context(), a.User.ID, "test"); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Login(t.Context(), "shop", "aaaaa-code3")
	if code(t, err) != mplogin.CodeUserBlocked {
		t.Fatalf("login of a blocked user: %v, want user_blocked", err)
	}
}
