package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
	"github.com/mplogin/mplogin/token"
)

// fakePlatform answers codes of the form user:<name> with a fixed identity
// and anything else with an error of the kind named in errs.
type fakePlatform struct {
	calls   atomic.Int64
	gate    chan struct{} // when set, each exchange waits for it
	entered chan struct{} // when set, told of each exchange
	unionID string
	errs    map[string]platform.Kind
	keyN    atomic.Int64
}

func (f *fakePlatform) Flavor() platform.Flavor { return platform.FlavorWeChat }

func (f *fakePlatform) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.gate != nil {
		<-f.gate
	}
	if k, ok := f.errs[req.Code]; ok {
		return nil, &platform.Error{Host: "wechat", Kind: k, Code: "x"}
	}
	n := f.keyN.Add(1)
	key := bytes.Repeat([]byte{byte(n)}, 16)
	return &platform.Login{OpenID: "openid-" + req.Code[:5], UnionID: f.unionID,
		SessionKey: secret.New(string(key))}, nil
}

func code(t *testing.T, err error) mplogin.Code {
	t.Helper()
	if err == nil {
		return ""
	}
	return mplogin.ErrorCode(err)
}

func TestLoginCheckRefreshLogout(t *testing.T) { allWritePaths(t, testLoginCheckRefreshLogout) }

func testLoginCheckRefreshLogout(t *testing.T, f *fixture) {
	ctx := context.Background()
	tok, err := f.svc.Login(ctx, "shop", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	if !tok.User.Created || tok.User.OpenID != "openid-alice" || tok.ExpiresIn != 2*time.Hour || tok.RefreshExpiresIn != 30*24*time.Hour {
		t.Fatalf("tokens %+v", tok)
	}
	info, err := f.svc.Check(ctx, tok.AccessToken.Reveal())
	if err != nil || info.User.ID != tok.User.ID || info.App != "shop" || info.ExpiresIn != 2*time.Hour {
		t.Fatalf("check %+v %v", info, err)
	}
	// A refresh token is no access token, and the other way round.
	if _, err := f.svc.Check(ctx, tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("refresh token as access token: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
		t.Fatalf("access token as refresh token: %v", err)
	}

	f.clock.Advance(time.Minute)
	tok2, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if tok2.User.ID != tok.User.ID || tok2.User.Created {
		t.Fatalf("refresh user %+v", tok2.User)
	}
	// Rotation replaces both tokens.
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("old access token still works: %v", err)
	}
	if _, err := f.svc.Check(ctx, tok2.AccessToken.Reveal()); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Logout(ctx, tok2.AccessToken.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Check(ctx, tok2.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("access token after logout: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, tok2.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
		t.Fatalf("refresh after logout: %v", err)
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) { allWritePaths(t, testRefreshReuseRevokesFamily) }

func testRefreshReuseRevokesFamily(t *testing.T, f *fixture) {
	ctx := context.Background()
	tok, _ := f.svc.Login(ctx, "shop", "alice.1")
	tok2, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	// Past the grace of a just-spent token.
	f.clock.Advance(session.DefaultPolicy.RefreshReuseGrace + mplogin.MaxClockSkew)
	if _, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
		t.Fatalf("spent token accepted: %v", err)
	}
	if _, err := f.svc.Check(ctx, tok2.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("family not revoked: access token works: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, tok2.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
		t.Fatalf("family not revoked: refresh works: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, _ := f.svc.Login(ctx, "shop", "alice.1")
	// Honoured for the clock skew allowed between instances past its
	// lifetime, and not a moment longer.
	f.clock.Advance(2*time.Hour + mplogin.MaxClockSkew - time.Second)
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
		t.Fatalf("at expiry: %v", err)
	}
	// Idle expiry slides: each refresh gives a refresh token of full length.
	cur := tok
	for i := 0; i < 3; i++ {
		f.clock.Advance(29 * 24 * time.Hour)
		next, err := f.svc.Refresh(ctx, cur.RefreshToken.Reveal())
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		cur = next
	}
	// 87 days in: the 90-day absolute limit caps the refresh token.
	if cur.RefreshExpiresIn > 3*24*time.Hour+time.Hour {
		t.Fatalf("refresh_expires_in %v past the absolute limit", cur.RefreshExpiresIn)
	}
	f.clock.Advance(3*24*time.Hour + time.Minute)
	if _, err := f.svc.Refresh(ctx, cur.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
		t.Fatalf("past absolute limit: %v", err)
	}
	// An idle refresh token expires.
	tok3, _ := f.svc.Login(ctx, "shop", "bobby.1")
	f.clock.Advance(30*24*time.Hour + mplogin.MaxClockSkew + time.Second)
	if _, err := f.svc.Refresh(ctx, tok3.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
		t.Fatalf("idle refresh token: %v", err)
	}
}

func TestConcurrentSameCodeSharesOneExchange(t *testing.T) {
	allWritePaths(t, testConcurrentSameCodeSharesOneExchange)
}

func testConcurrentSameCodeSharesOneExchange(t *testing.T, f *fixture) {
	f.plat.gate = make(chan struct{})
	f.plat.entered = make(chan struct{}, 100)
	const n = 20
	var wg sync.WaitGroup
	results := make([]*session.Tokens, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.svc.Login(context.Background(), "shop", "carol.1")
		}()
	}
	// Let the exchange through once it has started; callers arriving later
	// find the code already exchanged.
	<-f.plat.entered
	close(f.plat.gate)
	wg.Wait()
	if c := f.plat.calls.Load(); c != 1 {
		t.Fatalf("%d platform calls, want 1", c)
	}
	// The first caller and MaxCodeReplays repeats get sessions; the rest
	// are told the code is used.
	seen := map[string]bool{}
	var user string
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			if code(t, errs[i]) != mplogin.CodeInvalidCode {
				t.Fatalf("login %d: %v", i, errs[i])
			}
			continue
		}
		if user == "" {
			user = results[i].User.ID
		}
		if results[i].User.ID != user {
			t.Fatal("different users for one code")
		}
		// Every caller's session is stored, the one written with the
		// identity as well as those made after it.
		if info, err := f.svc.Check(context.Background(), results[i].AccessToken.Reveal()); err != nil || info.User.ID != user {
			t.Fatalf("session of login %d: %+v %v", i, info, err)
		}
		seen[results[i].AccessToken.Reveal()] = true
	}
	if len(seen) != 1+session.MaxCodeReplays {
		t.Fatalf("%d distinct sessions, want %d", len(seen), 1+session.MaxCodeReplays)
	}
}

func TestRepeatedCodeGetsSameIdentity(t *testing.T) {
	allWritePaths(t, testRepeatedCodeGetsSameIdentity)
}

func testRepeatedCodeGetsSameIdentity(t *testing.T, f *fixture) {
	ctx := context.Background()
	first, err := f.svc.Login(ctx, "shop", "dave1.x")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Second)
	again, err := f.svc.Login(ctx, "shop", "dave1.x")
	if err != nil {
		t.Fatal(err)
	}
	if f.plat.calls.Load() != 1 || again.User.ID != first.User.ID || again.User.Created || again.AccessToken.Equal(first.AccessToken) {
		t.Fatalf("repeat: calls %d, %+v", f.plat.calls.Load(), again.User)
	}
	// The same code on another app is another code.
	if _, err := f.svc.Login(ctx, "shop2", "dave1.x"); err != nil || f.plat.calls.Load() != 2 {
		t.Fatalf("other app: %v, calls %d", err, f.plat.calls.Load())
	}
	// Past the replay window (and the clock tolerance): used, and the
	// platform is not asked.
	f.clock.Advance(session.DefaultPolicy.CodeReplayWindow + mplogin.MaxClockSkew)
	if _, err := f.svc.Login(ctx, "shop", "dave1.x"); code(t, err) != mplogin.CodeInvalidCode || f.plat.calls.Load() != 2 {
		t.Fatalf("repeat past the window: %v, calls %d", err, f.plat.calls.Load())
	}
	// After the code's lifetime the platform is asked again.
	f.clock.Advance(5*time.Minute + mplogin.MaxClockSkew)
	if _, err := f.svc.Login(ctx, "shop", "dave1.x"); err != nil || f.plat.calls.Load() != 3 {
		t.Fatalf("expired code: %v, calls %d", err, f.plat.calls.Load())
	}
}

func TestUnionIDJoinsUser(t *testing.T) { allWritePaths(t, testUnionIDJoinsUser) }

func testUnionIDJoinsUser(t *testing.T, f *fixture) {
	f.plat.unionID = "union-1"
	ctx := context.Background()
	a, _ := f.svc.Login(ctx, "shop", "erin1.a")
	b, err := f.svc.Login(ctx, "shop2", "erin2.b")
	if err != nil {
		t.Fatal(err)
	}
	if a.User.ID != b.User.ID || b.User.Created || b.User.UnionID != "union-1" {
		t.Fatalf("not joined: %+v %+v", a.User, b.User)
	}
}

func TestSessionKeySealedAndRotated(t *testing.T) { allWritePaths(t, testSessionKeySealedAndRotated) }

func testSessionKeySealedAndRotated(t *testing.T, f *fixture) {
	ctx := context.Background()
	tok, _ := f.svc.Login(ctx, "shop", "frank.1")
	id, err := f.store.GetIdentity(ctx, "wechat", "wx1", tok.User.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	first := bytes.Repeat([]byte{1}, 16)
	if bytes.Contains(id.SessionKey, first) {
		t.Fatal("session key stored in clear")
	}
	pt, err := f.keys.Open(id.SessionKey, session.KeyAAD("wechat", "wx1", tok.User.OpenID))
	if err != nil || !bytes.Equal(pt, first) {
		t.Fatalf("sealed key: %v", err)
	}
	_, _ = f.svc.Login(ctx, "shop", "frank.2")
	id, _ = f.store.GetIdentity(ctx, "wechat", "wx1", tok.User.OpenID)
	prev, err := f.keys.Open(id.PrevSessionKey, session.KeyAAD("wechat", "wx1", tok.User.OpenID))
	if err != nil || !bytes.Equal(prev, first) || !id.PrevKeyExpiresAt.Equal(f.clock.Now().Add(5*time.Minute+mplogin.MaxClockSkew)) {
		t.Fatalf("previous key: %v %v", err, id.PrevKeyExpiresAt)
	}
}

func TestErrorsWithoutPlatformCall(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		app, code string
		want      mplogin.Code
	}{
		{"nope", "x.1", mplogin.CodeUnknownApp},
		{"shop", "", mplogin.CodeInvalidRequest},
		{"shop", string(bytes.Repeat([]byte("a"), 513)), mplogin.CodeInvalidRequest},
	}
	for _, tc := range cases {
		if _, err := f.svc.Login(ctx, tc.app, tc.code); code(t, err) != tc.want {
			t.Errorf("%s/%d: %v", tc.app, len(tc.code), err)
		}
	}
	for _, bad := range []string{"", "garbage", "mpa_short", "Bearer x"} {
		if _, err := f.svc.Check(ctx, bad); code(t, err) != mplogin.CodeInvalidToken {
			t.Errorf("check %q: %v", bad, err)
		}
		if _, err := f.svc.Refresh(ctx, bad); code(t, err) != mplogin.CodeInvalidGrant {
			t.Errorf("refresh %q: %v", bad, err)
		}
	}
	if f.plat.calls.Load() != 0 {
		t.Fatal("platform called")
	}
}

func TestPlatformErrorMapping(t *testing.T) {
	cases := map[platform.Kind]mplogin.Code{
		platform.KindInvalidCode:    mplogin.CodeInvalidCode,
		platform.KindCodeUsed:       mplogin.CodeInvalidCode,
		platform.KindUserBlocked:    mplogin.CodeUserBlocked,
		platform.KindRateLimited:    mplogin.CodeRateLimited,
		platform.KindBadCredentials: mplogin.CodePlatformError,
		platform.KindUnknown:        mplogin.CodePlatformError,
		platform.KindBusy:           mplogin.CodePlatformUnavailable,
		platform.KindUnavailable:    mplogin.CodePlatformUnavailable,
		platform.KindTokenInvalid:   mplogin.CodePlatformUnavailable,
	}
	f := newFixture(t)
	f.plat.errs = map[string]platform.Kind{}
	for k := range cases {
		f.plat.errs["err-"+k.String()] = k
	}
	for k, want := range cases {
		_, err := f.svc.Login(context.Background(), "shop", "err-"+k.String())
		if got := code(t, err); got != want {
			t.Errorf("%v: got %q, want %q", k, got, want)
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Errorf("%v: cause lost", k)
		}
	}
}

// A store that fails gives store_unavailable, never internal_error.
type failingStore struct{ store.Store }

func (failingStore) GetCode(context.Context, []byte, time.Time) (store.ExchangedCode, error) {
	return store.ExchangedCode{}, store.ErrUnavailable
}
func (failingStore) SessionByAccess(context.Context, []byte) (store.Session, error) {
	return store.Session{}, store.ErrUnavailable
}
func (failingStore) Ping(context.Context) error { return store.ErrUnavailable }

func TestStoreUnavailable(t *testing.T) {
	keys, _ := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
	svc, err := session.New(session.Config{Store: failingStore{memory.New()}, Keys: keys, Policy: session.DefaultPolicy,
		Apps: []session.App{{Name: "shop", Family: "wechat", AppID: "wx1", Client: &fakePlatform{}, CodeTTL: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.Login(ctx, "shop", "x.1"); code(t, err) != mplogin.CodeStoreUnavailable {
		t.Fatalf("login: %v", err)
	}
	valid := "mpa_" + string(bytes.Repeat([]byte("A"), 43))
	if _, err := svc.Check(ctx, valid); code(t, err) != mplogin.CodeStoreUnavailable {
		t.Fatalf("check: %v", err)
	}
	if err := svc.Ready(ctx); code(t, err) != mplogin.CodeStoreUnavailable {
		t.Fatalf("ready: %v", err)
	}
}

// errStore fails the calls a login, a check and a ping make with err.
type errStore struct {
	store.Store
	err error
}

func (s errStore) GetCode(context.Context, []byte, time.Time) (store.ExchangedCode, error) {
	return store.ExchangedCode{}, s.err
}
func (s errStore) SessionByAccess(context.Context, []byte) (store.Session, error) {
	return store.Session{}, s.err
}
func (s errStore) Ping(context.Context) error { return s.err }

// Only an outage (store.ErrUnavailable, or the call's context ending) is
// store_unavailable, which says "try again". Any other store error is a bug
// or a broken constraint that trying again will not fix: internal_error,
// with the store call that failed in its cause. A store that fails a ping
// is not ready, whatever the cause.
func TestStoreErrorClasses(t *testing.T) {
	valid := "mpa_" + strings.Repeat("A", 43)
	for _, tc := range []struct {
		name string
		err  error
		want mplogin.Code
	}{
		{"unavailable", fmt.Errorf("sqlite: get: %w", store.ErrUnavailable), mplogin.CodeStoreUnavailable},
		{"deadline", fmt.Errorf("postgres: query: %w", context.DeadlineExceeded), mplogin.CodeStoreUnavailable},
		{"canceled", context.Canceled, mplogin.CodeStoreUnavailable},
		{"constraint", errors.New("UNIQUE constraint failed: sessions.access_hash"), mplogin.CodeInternal},
		{"bug", errors.New("sql: Scan error on column index 3"), mplogin.CodeInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, _ := keyring.New(nil, bytes.Repeat([]byte{7}, 32))
			svc, err := session.New(session.Config{Store: errStore{memory.New(), tc.err}, Keys: keys, Policy: session.DefaultPolicy,
				Apps: []session.App{{Name: "shop", Family: "wechat", AppID: "wx1", Client: &fakePlatform{}, CodeTTL: time.Minute}}})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, c := range []struct {
				op  string
				err error
			}{
				{"get code", func() error { _, err := svc.Login(ctx, "shop", "x.1"); return err }()},
				{"session by access token", func() error { _, err := svc.Check(ctx, valid); return err }()},
			} {
				var se *session.StoreError
				if code(t, c.err) != tc.want || !errors.Is(c.err, tc.err) || !errors.As(c.err, &se) || se.Op != c.op {
					t.Errorf("%s: %v, want %s with the store call and the store's error in its cause", c.op, c.err, tc.want)
				}
			}
			if err := svc.Ready(ctx); code(t, err) != mplogin.CodeStoreUnavailable || !errors.Is(err, tc.err) {
				t.Errorf("ready: %v, want store_unavailable", err)
			}
		})
	}
}

// Session ids grow with time (fewer random index pages per login) and
// still carry 80 random bits.
func TestSessionIDsTimeOrdered(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		tok, err := f.svc.Login(ctx, "shop", "user"+string(rune('a'+i))+".x")
		if err != nil {
			t.Fatal(err)
		}
		info, err := f.svc.Check(ctx, tok.AccessToken.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, info.SessionID)
		f.clock.Advance(time.Millisecond)
	}
	for i := 1; i < len(ids); i++ {
		if len(ids[i]) != 32 || ids[i] <= ids[i-1] || ids[i][12:] == ids[i-1][12:] {
			t.Fatalf("session ids %v: want 32 hex digits, increasing, random tails", ids)
		}
	}
}

// TestIDsAreTimeOrdered checks that user and session ids begin with the
// millisecond they were made, so that they sort by creation and land at the
// end of the stores' indexes.
func TestIDsAreTimeOrdered(t *testing.T) { allWritePaths(t, testIDsAreTimeOrdered) }

func testIDsAreTimeOrdered(t *testing.T, f *fixture) {
	ctx := context.Background()
	var users, sessions []string
	for _, c := range []string{"alice.1", "bob.1"} {
		tok, err := f.svc.Login(ctx, "shop", c)
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := token.Parse(tok.AccessToken.Reveal(), token.Access)
		sess, err := f.store.SessionByAccess(ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		ms := fmt.Sprintf("%012x", f.clock.Now().UnixMilli())
		for _, id := range []string{tok.User.ID, sess.ID} {
			if len(id) != 32 || !strings.HasPrefix(id, ms) {
				t.Errorf("id %q made at %s: want 32 hex digits beginning with the millisecond %s", id, f.clock.Now(), ms)
			}
		}
		users, sessions = append(users, tok.User.ID), append(sessions, sess.ID)
		f.clock.Advance(time.Millisecond)
	}
	if users[0] >= users[1] || sessions[0] >= sessions[1] {
		t.Errorf("ids made a millisecond apart do not sort by time: users %q, sessions %q", users, sessions)
	}
}

// A logout that lost a race with a refresh: its access token was replaced,
// yet it ends the session (and LogoutAll takes it too). A session check does
// not take the replaced token, nor does a logout the token two refreshes back.
func TestLogoutByReplacedAccessToken(t *testing.T) {
	allWritePaths(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		for _, all := range []bool{false, true} {
			tok, err := f.svc.Login(ctx, "shop", fmt.Sprintf("alice.race.%v", all))
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Minute)
			next, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
				t.Fatalf("session check by the replaced token: %v", err)
			}
			if all {
				n, err := f.svc.LogoutAll(ctx, tok.AccessToken.Reveal())
				if err != nil || n != 1 {
					t.Fatalf("LogoutAll by the replaced token = %d, %v", n, err)
				}
			} else if err := f.svc.Logout(ctx, tok.AccessToken.Reveal()); err != nil {
				t.Fatalf("logout by the replaced token: %v", err)
			}
			if _, err := f.svc.Check(ctx, next.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
				t.Fatalf("the refreshed session after the logout: %v", err)
			}
			if _, err := f.svc.Refresh(ctx, next.RefreshToken.Reveal()); code(t, err) != mplogin.CodeInvalidGrant {
				t.Fatalf("refresh after the logout: %v", err)
			}
		}

		tok, err := f.svc.Login(ctx, "shop", "alice.twice")
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		t1, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		t2, err := f.svc.Refresh(ctx, t1.RefreshToken.Reveal())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.Logout(ctx, tok.AccessToken.Reveal()); code(t, err) != mplogin.CodeInvalidToken {
			t.Fatalf("logout by the token two refreshes back: %v", err)
		}
		if _, err := f.svc.Check(ctx, t2.AccessToken.Reveal()); err != nil {
			t.Fatalf("session after a refused logout: %v", err)
		}
	})
}
