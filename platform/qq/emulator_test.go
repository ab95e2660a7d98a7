package qq_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/qq"
	"github.com/mplogin/mplogin/secret"
)

const (
	appID     = "1101234567"
	appSecret = "qq-secret-51be0c"
)

type env struct {
	em *emulator.Emulator
	hc *http.Client
	c  *qq.Client
	// client makes a client for other credentials.
	client func(appid, secret string) *qq.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	em := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "qq", AppID: appID, Secret: appSecret},
		{Family: "wechat", AppID: "wx0123456789abcdef", Secret: "wx-secret"},
	}})
	srv := httptest.NewServer(em)
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	t.Cleanup(func() { hc.CloseIdleConnections(); srv.Close() })
	e := &env{em: em, hc: hc}
	e.client = func(appid, sec string) *qq.Client {
		c, err := qq.New(qq.Config{AppID: appid, Secret: secret.New(sec), Endpoint: srv.URL, HTTP: hc})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.c = e.client(appID, appSecret)
	return e
}

func (e *env) mint(t *testing.T, plat, appid, user string) string {
	t.Helper()
	code, err := e.em.Login(plat, appid, user, "")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func exchange(c *qq.Client, code string) (*platform.Login, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Exchange(ctx, platform.ExchangeRequest{Code: code})
}

// checkErr asserts kind and code, and that neither the secret nor the code
// shows in the error.
func checkErr(t *testing.T, err error, kind platform.Kind, code, sent string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != kind || (code != "" && pe.Code != code) {
		t.Fatalf("got %v %q, want %v %q: %v", pe.Kind, pe.Code, kind, code, err)
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, s := range []string{appSecret, sent} {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("%q leaks into the error: %s", s, text)
		}
	}
}

func TestExchangeAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	login, err := exchange(e.c, e.mint(t, "qq", appID, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := e.em.SessionKey("qq", appID, "alice")
	if login.OpenID != e.em.OpenID("qq", appID, "alice") || login.SessionKey.Reveal() != key ||
		login.UnionID == "" || login.UnionID != e.em.UnionID("qq", appID, "alice") {
		t.Fatalf("login %+v", login)
	}

	cases := []struct {
		name  string
		c     *qq.Client
		code  func(t *testing.T) string
		fault *emulator.Fault
		kind  platform.Kind
		pcode string
		calls int64
	}{
		{"never minted", e.c, func(*testing.T) string { return "never-minted" }, nil, platform.KindInvalidCode, "40029", 1},
		{"WeChat's code", e.c, func(t *testing.T) string { return e.mint(t, "wechat", "wx0123456789abcdef", "alice") }, nil, platform.KindInvalidCode, "40029", 1},
		{"used", e.c, func(t *testing.T) string {
			c := e.mint(t, "qq", appID, "alice")
			if _, err := exchange(e.c, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, platform.KindCodeUsed, "40163", 1},
		{"wrong secret", e.client(appID, "wrong-secret"), func(t *testing.T) string { return e.mint(t, "qq", appID, "alice") }, nil, platform.KindBadCredentials, "40125", 1},
		{"unknown appid", e.client("1109999999", appSecret), func(t *testing.T) string { return e.mint(t, "qq", appID, "alice") }, nil, platform.KindBadCredentials, "40013", 1},
		{"rate limited", e.c, nil, &emulator.Fault{Path: qq.PathCode2Session, Errcode: 45011}, platform.KindRateLimited, "45011", 1},
		{"busy twice", e.c, nil, &emulator.Fault{Path: qq.PathCode2Session, Errcode: -1}, platform.KindBusy, "-1", 2},
		{"reset", e.c, nil, &emulator.Fault{Path: qq.PathCode2Session, Drop: true}, platform.KindUnavailable, "", 1},
		{"truncated", e.c, nil, &emulator.Fault{Path: qq.PathCode2Session, Truncate: true}, platform.KindUnavailable, "", 1},
		{"garbage", e.c, nil, &emulator.Fault{Path: qq.PathCode2Session, Garbage: true}, platform.KindUnavailable, "", 1},
		{"status 502", e.c, nil, &emulator.Fault{Path: qq.PathCode2Session, Status: 502}, platform.KindUnavailable, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := e.mint(t, "qq", appID, "bob")
			if tc.code != nil {
				code = tc.code(t)
			}
			if tc.fault != nil {
				e.em.SetFaults(*tc.fault)
				defer e.em.ClearFaults()
			}
			before := e.em.Stats()[qq.PathCode2Session]
			_, err := exchange(tc.c, code)
			checkErr(t, err, tc.kind, tc.pcode, code)
			if n := e.em.Stats()[qq.PathCode2Session] - before; n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
		})
	}
}

// A busy answer is retried once; the code was not spent by it.
func TestBusyRetriedOnce(t *testing.T) {
	e := newEnv(t)
	e.em.SetFaults(emulator.Fault{Path: qq.PathCode2Session, Errcode: -1, Times: 1})
	if _, err := exchange(e.c, e.mint(t, "qq", appID, "alice")); err != nil {
		t.Fatalf("busy once then fine: %v", err)
	}
	if n := e.em.Stats()[qq.PathCode2Session]; n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

// A kept-alive connection that fails after the request was written must
// not make Go's Transport resend the code by itself.
func TestNoSilentResendOnReusedConnection(t *testing.T) {
	e := newEnv(t)
	if _, err := exchange(e.c, e.mint(t, "qq", appID, "alice")); err != nil {
		t.Fatal(err)
	}
	e.em.SetFaults(emulator.Fault{Path: qq.PathCode2Session, Drop: true, Times: 1})
	before := e.em.Stats()[qq.PathCode2Session]
	_, err := exchange(e.c, e.mint(t, "qq", appID, "alice"))
	if n := e.em.Stats()[qq.PathCode2Session] - before; n != 1 || platform.KindOf(err) != platform.KindUnavailable {
		t.Fatalf("the code reached QQ %d times: %v", n, err)
	}
}

func TestFetchAccessTokenAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, life, err := e.c.FetchAccessToken(ctx)
	if err != nil || life != 7200*time.Second || !e.em.TokenValid("qq", appID, tok.Reveal()) {
		t.Fatalf("got %v for %v: %v", tok, life, err)
	}
	again, _, err := e.c.FetchAccessToken(ctx)
	if err != nil || again.Equal(tok) || !e.em.TokenValid("qq", appID, tok.Reveal()) {
		t.Fatalf("a second fetch gives a new token and leaves the old one its overlap: %v", err)
	}
	_, _, err = e.client(appID, "wrong-secret").FetchAccessToken(ctx)
	checkErr(t, err, platform.KindBadCredentials, "40001", "wrong-secret")
	_, _, err = e.client("1109999999", appSecret).FetchAccessToken(ctx)
	checkErr(t, err, platform.KindBadCredentials, "40013", "")

	e.em.SetFaults(emulator.Fault{Path: qq.PathToken, Errcode: -1, Times: 1})
	if _, _, err := e.c.FetchAccessToken(ctx); err != nil {
		t.Fatalf("busy once then fine: %v", err)
	}
}
