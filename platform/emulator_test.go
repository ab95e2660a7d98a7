package platform_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
)

const (
	wxAppID     = "wx0123456789abcdef"
	wxSecret    = "wechat-secret-7f3a9c"
	wxTPAppID   = "wx00000000000000tp"
	compAppID   = "wxcomponent0000001"
	compToken   = "component-token-51be"
	bdAppKey    = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	bdSecret    = "baidu-secret-0c41d2"
	bdTPAppKey  = "baidutpappkey0000000000000000001"
	bdAuthToken = "45.authorizer-token-9e2"
)

type env struct {
	em      *emulator.Emulator
	srv     *httptest.Server
	hc      *http.Client
	wx      *wechat.Client
	wxComp  *wechat.ComponentClient
	bd      *baidu.Client
	bdLeg   *baidu.Client
	bdTok   *baidu.Client // getsessionkey, with a token fetched by bd
	bdTP    *baidu.TPClient
	secrets []string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{em: emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "wechat", AppID: wxAppID, Secret: wxSecret},
		{Family: "wechat", AppID: wxTPAppID, ComponentAppID: compAppID, ThirdPartyToken: compToken},
		{Family: "baidu", AppID: bdAppKey, Secret: bdSecret},
		{Family: "baidu", AppID: bdTPAppKey, ThirdPartyToken: bdAuthToken},
	}})}
	e.srv = httptest.NewServer(e.em)
	e.hc = platform.NewHTTPClient(platform.HTTPConfig{})
	t.Cleanup(func() { e.hc.CloseIdleConnections(); e.srv.Close() })
	var err error
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.wx, err = wechat.New(wechat.Config{AppID: wxAppID, Secret: secret.New(wxSecret), Endpoint: e.srv.URL, HTTP: e.hc})
	must(err)
	e.wxComp, err = wechat.NewComponent(wechat.ComponentConfig{AppID: wxTPAppID, ComponentAppID: compAppID,
		ComponentToken: platform.StaticToken(secret.New(compToken)), Endpoint: e.srv.URL, HTTP: e.hc})
	must(err)
	e.bd, err = baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New(bdSecret), Endpoint: e.srv.URL, HTTP: e.hc})
	must(err)
	e.bdLeg, err = baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New(bdSecret), Legacy: true, Endpoint: e.srv.URL, HTTP: e.hc})
	must(err)
	e.bdTok, err = baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New(bdSecret), AccessToken: fetchedToken{e.bd},
		Endpoint: e.srv.URL, HTTP: e.hc})
	must(err)
	e.bdTP, err = baidu.NewTP(baidu.TPConfig{AppKey: bdTPAppKey, AuthorizerToken: platform.StaticToken(secret.New(bdAuthToken)),
		Endpoint: e.srv.URL, HTTP: e.hc})
	must(err)
	e.secrets = []string{wxSecret, compToken, bdSecret, bdAuthToken}
	return e
}

// fetchedToken is a token source that fetches a new app token each time.
type fetchedToken struct{ c *baidu.Client }

func (f fetchedToken) Token(ctx context.Context) (secret.String, error) {
	tok, _, err := f.c.FetchAccessToken(ctx)
	return tok, err
}

func (e *env) mint(t testing.TB, plat, appid, user string) string {
	t.Helper()
	code, err := e.em.Login(plat, appid, user, "")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// checkErr asserts the kind and platform code, and that no secret or code
// leaks into the error text.
func (e *env) checkErr(t *testing.T, err error, kind platform.Kind, code string, sent string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != kind || (code != "" && pe.Code != code) {
		t.Fatalf("got %v %q, want %v %q: %v", pe.Kind, pe.Code, kind, code, err)
	}
	text := err.Error() + fmt.Sprintf("%+v %#v", err, err)
	for _, s := range append(e.secrets, sent) {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("%q leaks into the error: %s", s, text)
		}
	}
}

func exchange(c platform.Client, code string) (*platform.Login, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Exchange(ctx, platform.ExchangeRequest{Code: code})
}

func TestClientsAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	t.Run("wechat good exchange", func(t *testing.T) {
		code := e.mint(t, "wechat", wxAppID, "alice")
		login, err := exchange(e.wx, code)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := e.em.SessionKey("wechat", wxAppID, "alice")
		if login.OpenID != e.em.OpenID("wechat", wxAppID, "alice") || login.SessionKey.Reveal() != key ||
			login.UnionID != e.em.UnionID("wechat", wxAppID, "alice") || login.UnionID == "" {
			t.Fatalf("login %+v", login)
		}
	})
	t.Run("wechat component good exchange", func(t *testing.T) {
		login, err := exchange(e.wxComp, e.mint(t, "wechat", wxTPAppID, "alice"))
		if err != nil || login.OpenID != e.em.OpenID("wechat", wxTPAppID, "alice") {
			t.Fatalf("%+v %v", login, err)
		}
	})
	for _, c := range []struct {
		name string
		c    platform.Client
		app  string
	}{{"baidu spapi", e.bd, bdAppKey}, {"baidu legacy", e.bdLeg, bdAppKey}, {"baidu access token", e.bdTok, bdAppKey},
		{"baidu third-party", e.bdTP, bdTPAppKey}} {
		t.Run(c.name+" good exchange", func(t *testing.T) {
			login, err := exchange(c.c, e.mint(t, "baidu", c.app, "bob"))
			key, _ := e.em.SessionKey("baidu", c.app, "bob")
			if err != nil || login.OpenID != e.em.OpenID("baidu", c.app, "bob") || login.SessionKey.Reveal() != key {
				t.Fatalf("%+v %v", login, err)
			}
		})
	}

	wrongSecret, _ := wechat.New(wechat.Config{AppID: wxAppID, Secret: secret.New("wrong-secret"), Endpoint: e.srv.URL, HTTP: e.hc})
	wrongAppID, _ := wechat.New(wechat.Config{AppID: "wxunknown000000000", Secret: secret.New(wxSecret), Endpoint: e.srv.URL, HTTP: e.hc})
	wrongComp, _ := wechat.NewComponent(wechat.ComponentConfig{AppID: wxTPAppID, ComponentAppID: "wxothercomponent01",
		ComponentToken: platform.StaticToken(secret.New(compToken)), Endpoint: e.srv.URL, HTTP: e.hc})
	bdWrong, _ := baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New("wrong-secret"), Endpoint: e.srv.URL, HTTP: e.hc})
	bdTPWrong, _ := baidu.NewTP(baidu.TPConfig{AppKey: bdTPAppKey, AuthorizerToken: platform.StaticToken(secret.New("45.stale")),
		Endpoint: e.srv.URL, HTTP: e.hc})
	bdTokStale, _ := baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New(bdSecret), AccessToken: platform.StaticToken(secret.New("24.stale")),
		Endpoint: e.srv.URL, HTTP: e.hc})

	cases := []struct {
		name  string
		c     platform.Client
		code  func(t *testing.T) string
		fault *emulator.Fault
		kind  platform.Kind
		pcode string
	}{
		{"wechat 40029 invalid code", e.wx, func(*testing.T) string { return "never-minted" }, nil, platform.KindInvalidCode, "40029"},
		{"wechat 40029 code of another app", e.wx, func(t *testing.T) string { return e.mint(t, "wechat", wxTPAppID, "alice") }, nil, platform.KindInvalidCode, "40029"},
		{"wechat 40163 code used", e.wx, func(t *testing.T) string {
			c := e.mint(t, "wechat", wxAppID, "alice")
			if _, err := exchange(e.wx, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, platform.KindCodeUsed, "40163"},
		{"wechat 40226 blocked user", e.wx, func(t *testing.T) string { return e.mint(t, "wechat", wxAppID, "blocked-mallory") }, nil, platform.KindUserBlocked, "40226"},
		{"wechat 45011 rate limited", e.wx, nil, &emulator.Fault{Path: wechat.PathCode2Session, Errcode: 45011}, platform.KindRateLimited, "45011"},
		{"wechat -1 busy twice", e.wx, nil, &emulator.Fault{Path: wechat.PathCode2Session, Errcode: -1}, platform.KindBusy, "-1"},
		{"wechat 40013 invalid appid", wrongAppID, func(t *testing.T) string { return e.mint(t, "wechat", wxAppID, "alice") }, nil, platform.KindBadCredentials, "40013"},
		{"wechat 40125 invalid secret", wrongSecret, func(t *testing.T) string { return e.mint(t, "wechat", wxAppID, "alice") }, nil, platform.KindBadCredentials, "40125"},
		{"wechat component 61003 not authorised", wrongComp, func(t *testing.T) string { return e.mint(t, "wechat", wxTPAppID, "alice") }, nil, platform.KindBadCredentials, "61003"},
		{"baidu invalid_grant", e.bd, func(*testing.T) string { return "never-minted" }, nil, platform.KindInvalidCode, ""},
		{"baidu invalid_grant reused", e.bd, func(t *testing.T) string {
			c := e.mint(t, "baidu", bdAppKey, "bob")
			if _, err := exchange(e.bd, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, platform.KindInvalidCode, ""},
		{"baidu legacy invalid_grant", e.bdLeg, func(*testing.T) string { return "never-minted" }, nil, platform.KindInvalidCode, ""},
		{"baidu invalid_client", bdWrong, func(t *testing.T) string { return e.mint(t, "baidu", bdAppKey, "bob") }, nil, platform.KindBadCredentials, ""},
		{"baidu errno 10010100", e.bd, nil, &emulator.Fault{Path: baidu.PathJSCode2SessionKey, Errcode: 10010100}, platform.KindBadCredentials, ""},
		{"baidu third-party token invalid", bdTPWrong, func(t *testing.T) string { return e.mint(t, "baidu", bdTPAppKey, "bob") }, nil, platform.KindTokenInvalid, "110"},
		{"baidu access token invalid", bdTokStale, func(t *testing.T) string { return e.mint(t, "baidu", bdAppKey, "bob") }, nil, platform.KindTokenInvalid, "110"},
		{"baidu access token invalid code", e.bdTok, func(*testing.T) string { return "never-minted" }, nil, platform.KindInvalidCode, "10010102"},
		{"baidu access token code used", e.bdTok, func(t *testing.T) string {
			c := e.mint(t, "baidu", bdAppKey, "bob")
			if _, err := exchange(e.bd, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, platform.KindInvalidCode, "10010102"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := "fault-target-code"
			if tc.code != nil {
				code = tc.code(t)
			}
			if tc.fault != nil {
				e.em.SetFaults(*tc.fault)
				defer e.em.ClearFaults()
			}
			_, err := exchange(tc.c, code)
			e.checkErr(t, err, tc.kind, tc.pcode, code)
		})
	}
}

// A busy answer is retried once; a second busy answer is returned.
func TestBusyRetriedOnce(t *testing.T) {
	e := newEnv(t)
	e.em.SetFaults(emulator.Fault{Path: wechat.PathCode2Session, Errcode: -1, Times: 1})
	before := e.em.Stats()[wechat.PathCode2Session]
	if _, err := exchange(e.wx, e.mint(t, "wechat", wxAppID, "alice")); err != nil {
		t.Fatalf("busy once then fine: %v", err)
	}
	if n := e.em.Stats()[wechat.PathCode2Session] - before; n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

// settled waits for background goroutines (closed connections' readers) to
// end and reports whether the count returned to base.
func settled(base int) (int, bool) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base || time.Now().After(deadline) {
			return n, n <= base
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}

// Every fault gives KindUnavailable (or busy) within the deadline, is sent
// once (never retried after it may have reached the platform), and leaves
// no goroutine behind.
func TestFaultsWithinDeadline(t *testing.T) {
	const deadline = 400 * time.Millisecond
	cases := []struct {
		name      string
		fault     emulator.Fault
		kind      platform.Kind
		wantCalls int64
	}{
		{"timeout", emulator.Fault{LatencyMS: 3000}, platform.KindUnavailable, 1},
		{"reset", emulator.Fault{Drop: true}, platform.KindUnavailable, 1},
		{"truncated", emulator.Fault{Truncate: true}, platform.KindUnavailable, 1},
		{"slow body", emulator.Fault{SlowBodyMS: 3000}, platform.KindUnavailable, 1},
		{"empty", emulator.Fault{Empty: true}, platform.KindUnavailable, 1},
		{"garbage", emulator.Fault{Garbage: true}, platform.KindUnavailable, 1},
		{"status 502", emulator.Fault{Status: 502}, platform.KindUnavailable, 1},
		{"busy", emulator.Fault{Errcode: -1}, platform.KindBusy, 2},
	}
	for _, tc := range cases {
		for _, client := range []string{"wechat", "baidu"} {
			t.Run(tc.name+"/"+client, func(t *testing.T) {
				e := newEnv(t)
				var c platform.Client = e.wx
				path, plat, app := wechat.PathCode2Session, "wechat", wxAppID
				if client == "baidu" {
					c, path, plat, app = e.bd, baidu.PathJSCode2SessionKey, "baidu", bdAppKey
				}
				code := e.mint(t, plat, app, "alice")
				f := tc.fault
				f.Path = path
				e.em.SetFaults(f)
				base := runtime.NumGoroutine()
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				_, err := c.Exchange(ctx, platform.ExchangeRequest{Code: code})
				took := time.Since(start)
				cancel()
				if tc.kind == platform.KindBusy && client == "baidu" {
					// Baidu has no documented "busy"; errno -1 is an unknown error.
					e.checkErr(t, err, platform.KindUnknown, "", code)
				} else {
					e.checkErr(t, err, tc.kind, "", code)
				}
				if took > deadline+200*time.Millisecond {
					t.Fatalf("took %v, deadline %v", took, deadline)
				}
				calls := e.em.Stats()[path]
				if client == "baidu" && tc.kind == platform.KindBusy {
					tc.wantCalls = 1
				}
				if calls != tc.wantCalls {
					t.Fatalf("%d calls, want %d", calls, tc.wantCalls)
				}
				e.hc.CloseIdleConnections()
				if n, ok := settled(base); !ok {
					t.Fatalf("goroutines: %d after, %d before", n, base)
				}
			})
		}
	}
}

// The emulator's connection refused: one retry, then unavailable, and the
// secret (in the query string) appears nowhere.
func TestRefusedConnection(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := wechat.New(wechat.Config{AppID: wxAppID, Secret: secret.New(wxSecret), Endpoint: url})
	_, err := exchange(c, "some-code")
	if platform.KindOf(err) != platform.KindUnavailable || strings.Contains(err.Error(), wxSecret) || strings.Contains(err.Error(), "some-code") {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkExchange(b *testing.B) {
	for _, name := range []string{"wechat", "baidu"} {
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			var c platform.Client = e.wx
			plat, app := "wechat", wxAppID
			if name == "baidu" {
				c, plat, app = e.bd, "baidu", bdAppKey
			}
			codes := make([]string, b.N)
			for i := range codes {
				codes[i] = e.mint(b, plat, app, fmt.Sprintf("user%d", i%100))
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Exchange(ctx, platform.ExchangeRequest{Code: codes[i]}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Go's Transport resends an idempotent request by itself when a reused
// keep-alive connection fails after the request was written. A code
// exchange must never be resent that way: the platform would see the code
// twice.
func TestNoSilentResendOnReusedConnection(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		c    platform.Client
		path string
		plat string
		app  string
	}{
		{"wechat", e.wx, wechat.PathCode2Session, "wechat", wxAppID},
		{"wechat component", e.wxComp, wechat.PathComponentCode2Session, "wechat", wxTPAppID},
		{"baidu", e.bd, baidu.PathJSCode2SessionKey, "baidu", bdAppKey},
		{"baidu access token", e.bdTok, baidu.PathGetSessionKey, "baidu", bdAppKey},
		{"baidu third-party", e.bdTP, baidu.PathTPGetSessionKey, "baidu", bdTPAppKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A first exchange leaves a kept-alive connection in the pool.
			if _, err := exchange(tc.c, e.mint(t, tc.plat, tc.app, "alice")); err != nil {
				t.Fatal(err)
			}
			e.em.SetFaults(emulator.Fault{Path: tc.path, Drop: true, Times: 1})
			defer e.em.ClearFaults()
			before := e.em.Stats()[tc.path]
			_, err := exchange(tc.c, e.mint(t, tc.plat, tc.app, "alice"))
			if n := e.em.Stats()[tc.path] - before; n != 1 {
				t.Fatalf("the code reached the platform %d times (err %v)", n, err)
			}
			if platform.KindOf(err) != platform.KindUnavailable {
				t.Fatalf("got %v", err)
			}
		})
	}
}
