package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
)

type fetchFunc func(context.Context) (secret.String, time.Duration, error)

func fetch(f fetchFunc) (secret.String, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f(ctx)
}

func TestTokenFetchersAgainstEmulator(t *testing.T) {
	e := newEnv(t)
	t.Run("wechat stable", func(t *testing.T) {
		tok, life, err := fetch(e.wx.FetchAccessToken)
		if err != nil || life != 7200*time.Second || !e.em.TokenValid("wechat", wxAppID, tok.Reveal()) {
			t.Fatalf("got %v for %v: %v", tok, life, err)
		}
		// Normal mode: the same token again, with what is left of it.
		again, _, err := fetch(e.wx.FetchAccessToken)
		if err != nil || !again.Equal(tok) {
			t.Fatalf("second fetch: %v", err)
		}
	})
	t.Run("wechat classic", func(t *testing.T) {
		tok, life, err := fetch(e.wx.FetchClassicAccessToken)
		if err != nil || life != 7200*time.Second || !e.em.TokenValid("wechat", wxAppID, tok.Reveal()) {
			t.Fatalf("got %v for %v: %v", tok, life, err)
		}
		again, _, _ := fetch(e.wx.FetchClassicAccessToken)
		if again.Equal(tok) {
			t.Fatal("classic fetches return a new token each time")
		}
	})
	t.Run("baidu", func(t *testing.T) {
		for _, c := range []*baidu.Client{e.bd, e.bdLeg} {
			tok, life, err := fetch(c.FetchAccessToken)
			if err != nil || life != 30*24*time.Hour || !strings.HasPrefix(tok.Reveal(), "24.") ||
				!e.em.TokenValid("baidu", bdAppKey, tok.Reveal()) {
				t.Fatalf("got %v for %v: %v", tok, life, err)
			}
		}
	})

	wrongSecret, _ := wechat.New(wechat.Config{AppID: wxAppID, Secret: secret.New("wrong-secret"), Endpoint: e.srv.URL, HTTP: e.hc})
	wrongAppID, _ := wechat.New(wechat.Config{AppID: "wxunknown000000000", Secret: secret.New(wxSecret), Endpoint: e.srv.URL, HTTP: e.hc})
	bdWrong, _ := baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New("wrong-secret"), Endpoint: e.srv.URL, HTTP: e.hc})
	for _, tc := range []struct {
		name  string
		f     fetchFunc
		kind  platform.Kind
		pcode string
	}{
		{"wechat stable wrong secret", wrongSecret.FetchAccessToken, platform.KindBadCredentials, "40125"},
		{"wechat classic wrong secret", wrongSecret.FetchClassicAccessToken, platform.KindBadCredentials, "40125"},
		{"wechat stable unknown appid", wrongAppID.FetchAccessToken, platform.KindBadCredentials, "40013"},
		{"baidu wrong secret", bdWrong.FetchAccessToken, platform.KindBadCredentials, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := fetch(tc.f)
			e.checkErr(t, err, tc.kind, tc.pcode, "wrong-secret")
		})
	}
}

// Every fault gives the right kind within the caller's deadline; busy and
// nothing else is retried, once.
func TestTokenFetchFaults(t *testing.T) {
	const deadline = 400 * time.Millisecond
	cases := []struct {
		name  string
		fault emulator.Fault
		kind  platform.Kind
		calls int64
	}{
		{"timeout", emulator.Fault{LatencyMS: 3000}, platform.KindUnavailable, 1},
		{"reset", emulator.Fault{Drop: true}, platform.KindUnavailable, 1},
		{"truncated", emulator.Fault{Truncate: true}, platform.KindUnavailable, 1},
		{"empty", emulator.Fault{Empty: true}, platform.KindUnavailable, 1},
		{"garbage", emulator.Fault{Garbage: true}, platform.KindUnavailable, 1},
		{"status 502", emulator.Fault{Status: 502}, platform.KindUnavailable, 1},
		{"busy", emulator.Fault{Errcode: -1}, platform.KindBusy, 2},
		{"quota", emulator.Fault{Errcode: 45009}, platform.KindRateLimited, 1},
	}
	for _, tc := range cases {
		for _, client := range []string{"wechat stable", "wechat classic", "baidu"} {
			t.Run(tc.name+"/"+client, func(t *testing.T) {
				e := newEnv(t)
				f, path := fetchFunc(e.wx.FetchAccessToken), wechat.PathStableToken
				switch client {
				case "wechat classic":
					f, path = e.wx.FetchClassicAccessToken, wechat.PathToken
				case "baidu":
					f, path = e.bd.FetchAccessToken, baidu.PathToken
				}
				fault := tc.fault
				fault.Path = path
				e.em.SetFaults(fault)
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				start := time.Now()
				tok, _, err := f(ctx)
				if took := time.Since(start); took > deadline+200*time.Millisecond {
					t.Fatalf("took %v, deadline %v", took, deadline)
				}
				kind, calls := tc.kind, tc.calls
				if client == "baidu" && tc.fault.Errcode != 0 {
					// Baidu has neither WeChat's busy nor its quota codes.
					kind, calls = platform.KindUnknown, 1
				}
				if !tok.IsZero() {
					t.Fatal("a token came with an error")
				}
				e.checkErr(t, err, kind, "", "")
				if n := e.em.Stats()[path]; n != calls {
					t.Fatalf("%d calls, want %d", n, calls)
				}
			})
		}
	}
}

// A busy answer once, then the token: the read is retried.
func TestTokenFetchBusyOnce(t *testing.T) {
	e := newEnv(t)
	e.em.SetFaults(emulator.Fault{Path: wechat.PathStableToken, Errcode: -1, Times: 1})
	if _, _, err := fetch(e.wx.FetchAccessToken); err != nil {
		t.Fatalf("busy once then fine: %v", err)
	}
	if n := e.em.Stats()[wechat.PathStableToken]; n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}
