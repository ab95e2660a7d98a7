package kuaishou_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/kuaishou"
	"github.com/mplogin/mplogin/secret"
)

const (
	appID     = "ks671234567890"
	appSecret = "ks-secret-9e2a41"
)

type env struct {
	em     *emulator.Emulator
	c      *kuaishou.Client
	client func(appid, secret string) *kuaishou.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	em := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "kuaishou", AppID: appID, Secret: appSecret},
		{Family: "kuaishou", AppID: "ks679876543210", Secret: "other-secret"},
	}})
	srv := httptest.NewServer(em)
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	t.Cleanup(func() { hc.CloseIdleConnections(); srv.Close() })
	e := &env{em: em}
	e.client = func(appid, sec string) *kuaishou.Client {
		c, err := kuaishou.New(kuaishou.Config{AppID: appid, AppSecret: secret.New(sec), Endpoint: srv.URL, HTTP: hc})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	e.c = e.client(appID, appSecret)
	return e
}

func (e *env) mint(t *testing.T, appid, user string) string {
	t.Helper()
	code, err := e.em.Login("kuaishou", appid, user, "")
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func exchange(c *kuaishou.Client, code string) (*platform.Login, error) {
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
	login, err := exchange(e.c, e.mint(t, appID, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := e.em.SessionKey("kuaishou", appID, "alice")
	if login.OpenID != e.em.OpenID("kuaishou", appID, "alice") || login.SessionKey.Reveal() != key || login.UnionID != "" {
		t.Fatalf("login %+v", login)
	}

	cases := []struct {
		name  string
		c     *kuaishou.Client
		code  func(t *testing.T) string
		fault *emulator.Fault
		kind  platform.Kind
		pcode string
	}{
		{"never minted", e.c, func(*testing.T) string { return "never-minted" }, nil, platform.KindInvalidCode, "100200102"},
		{"another app's code", e.c, func(t *testing.T) string { return e.mint(t, "ks679876543210", "alice") }, nil, platform.KindInvalidCode, "100200102"},
		{"used", e.c, func(t *testing.T) string {
			c := e.mint(t, appID, "alice")
			if _, err := exchange(e.c, c); err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, platform.KindInvalidCode, "100200102"},
		{"wrong secret", e.client(appID, "wrong-secret"), nil, nil, platform.KindBadCredentials, "100200101"},
		{"unknown app", e.client("ks000000000000", appSecret), nil, nil, platform.KindBadCredentials, "100200101"},
		{"unknown result", e.c, nil, &emulator.Fault{Path: kuaishou.PathCode2Session, Errcode: 100200199}, platform.KindInvalidCode, "100200199"},
		{"unknown result, 5xx", e.c, nil, &emulator.Fault{Path: kuaishou.PathCode2Session, Errcode: 100200199, Status: 503}, platform.KindUnavailable, "100200199"},
		{"reset", e.c, nil, &emulator.Fault{Path: kuaishou.PathCode2Session, Drop: true}, platform.KindUnavailable, ""},
		{"truncated", e.c, nil, &emulator.Fault{Path: kuaishou.PathCode2Session, Truncate: true}, platform.KindUnavailable, ""},
		{"garbage", e.c, nil, &emulator.Fault{Path: kuaishou.PathCode2Session, Garbage: true}, platform.KindUnavailable, ""},
		{"status 502", e.c, nil, &emulator.Fault{Path: kuaishou.PathCode2Session, Status: 502}, platform.KindUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := e.mint(t, appID, "bob")
			if tc.code != nil {
				code = tc.code(t)
			}
			if tc.fault != nil {
				e.em.SetFaults(*tc.fault)
				defer e.em.ClearFaults()
			}
			before := e.em.Stats()[kuaishou.PathCode2Session]
			_, err := exchange(tc.c, code)
			checkErr(t, err, tc.kind, tc.pcode, code)
			// Kuaishou has no "busy": nothing that reached it is sent again.
			if n := e.em.Stats()[kuaishou.PathCode2Session] - before; n != 1 {
				t.Fatalf("%d calls, want 1", n)
			}
		})
	}
}

// A kept-alive connection that fails after the request was written is not
// resent.
func TestNoSilentResendOnReusedConnection(t *testing.T) {
	e := newEnv(t)
	if _, err := exchange(e.c, e.mint(t, appID, "alice")); err != nil {
		t.Fatal(err)
	}
	e.em.SetFaults(emulator.Fault{Path: kuaishou.PathCode2Session, Drop: true, Times: 1})
	before := e.em.Stats()[kuaishou.PathCode2Session]
	_, err := exchange(e.c, e.mint(t, appID, "alice"))
	if n := e.em.Stats()[kuaishou.PathCode2Session] - before; n != 1 || platform.KindOf(err) != platform.KindUnavailable {
		t.Fatalf("the code reached Kuaishou %d times: %v", n, err)
	}
}

func TestFetchAccessTokenAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, life, err := e.c.FetchAccessToken(ctx)
	if err != nil || life != 48*time.Hour || !e.em.TokenValid("kuaishou", appID, tok.Reveal()) {
		t.Fatalf("got %v for %v: %v", tok, life, err)
	}
	again, _, err := e.c.FetchAccessToken(ctx)
	if err != nil || again.Equal(tok) || !e.em.TokenValid("kuaishou", appID, tok.Reveal()) || !e.em.TokenValid("kuaishou", appID, again.Reveal()) {
		t.Fatalf("a second fetch gives a new token and leaves the old one valid: %v", err)
	}
	_, _, err = e.client(appID, "wrong-secret").FetchAccessToken(ctx)
	checkErr(t, err, platform.KindBadCredentials, "100200101", "wrong-secret")
	e.em.SetFaults(emulator.Fault{Path: kuaishou.PathToken, Errcode: 100200199})
	_, _, err = e.c.FetchAccessToken(ctx)
	checkErr(t, err, platform.KindUnknown, "100200199", "")
}
