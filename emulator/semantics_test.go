package emulator_test

import (
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
)

// exchanger exchanges a code for one app on one platform and reports the
// openid, or "" and the platform's refusal.
type exchanger struct {
	platform, appid string
	exchange        func(v *env, code string) result
	ok              func(t *testing.T, r result) (openid, key string)
	refused         func(t *testing.T, r result) // invalid code
	used            func(t *testing.T, r result) // code used
}

func wechatApp() exchanger {
	return exchanger{
		platform: "wechat", appid: "wxapp1",
		exchange: func(v *env, code string) result { return v.wxExchange(code) },
		ok: func(t *testing.T, r result) (string, string) {
			openid, _, key := wantWeChatSession(t, r)
			return openid, key
		},
		refused: func(t *testing.T, r result) { wantWeChatError(t, r, 40029) },
		used:    func(t *testing.T, r result) { wantWeChatError(t, r, 40163) },
	}
}

func baiduApp() exchanger {
	return exchanger{
		platform: "baidu", appid: "bdkey1",
		exchange: func(v *env, code string) result {
			return v.postForm(bdPath, bdForm("bdkey1", "bdsecret1", code))
		},
		ok: wantBaiduSession,
		refused: func(t *testing.T, r result) {
			wantBaiduError(t, r, 10010102, "invalid_grant", "Invalid authorization code")
		},
		used: func(t *testing.T, r result) {
			wantBaiduError(t, r, 10010102, "invalid_grant", "revoked")
		},
	}
}

func TestCodeExpiry(t *testing.T) {
	tests := []struct {
		name string
		app  exchanger
		life time.Duration
	}{
		{"wechat 5 minutes", wechatApp(), 5 * time.Minute},
		{"baidu 10 minutes", baiduApp(), 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			early, late := v.login(tt.app.platform, tt.app.appid, "alice"), v.login(tt.app.platform, tt.app.appid, "bob")
			v.clock.Advance(tt.life - time.Second)
			tt.app.ok(t, tt.app.exchange(v, early))
			v.clock.Advance(time.Second)
			tt.app.refused(t, tt.app.exchange(v, late))
		})
	}
}

func TestSingleUse(t *testing.T) {
	for _, app := range []exchanger{wechatApp(), baiduApp()} {
		t.Run(app.platform, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			code := v.login(app.platform, app.appid, "alice")
			app.ok(t, app.exchange(v, code))
			app.used(t, app.exchange(v, code))
			v.clock.Advance(11 * time.Minute) // past its life, a used code is just unknown
			app.refused(t, app.exchange(v, code))
		})
	}
}

func TestOpenIDs(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	restarted := emulator.New(emulator.Config{})
	for _, platform := range []string{"wechat", "baidu"} {
		t.Run(platform, func(t *testing.T) {
			a1 := v.emu.OpenID(platform, "app1", "alice")
			if a1 == "" || a1 != v.emu.OpenID(platform, "app1", "alice") {
				t.Fatalf("openid %q is not stable", a1)
			}
			if a1 != restarted.OpenID(platform, "app1", "alice") {
				t.Errorf("openid changes across a restart")
			}
			for _, other := range []string{v.emu.OpenID(platform, "app2", "alice"), v.emu.OpenID(platform, "app1", "bob")} {
				if other == a1 {
					t.Errorf("openid %q shared by another app or user", a1)
				}
			}
		})
	}
	if v.emu.OpenID("wechat", "app1", "alice") == v.emu.OpenID("baidu", "app1", "alice") {
		t.Error("WeChat and Baidu share an openid")
	}
	if v.emu.OpenID("feishu", "app1", "alice") != "" {
		t.Error("an unknown platform has openids")
	}

	// And the exchanges agree, login after login.
	for _, app := range []exchanger{wechatApp(), baiduApp()} {
		first, _ := app.ok(t, app.exchange(v, v.login(app.platform, app.appid, "carol")))
		second, _ := app.ok(t, app.exchange(v, v.login(app.platform, app.appid, "carol")))
		if first != second || first != v.emu.OpenID(app.platform, app.appid, "carol") {
			t.Errorf("%s: openids %q, %q differ between logins", app.platform, first, second)
		}
	}
}

// TestIdentifiersAreStable pins the derivation: the service under test stores
// these identifiers, so they must not change across restarts or versions.
func TestIdentifiersAreStable(t *testing.T) {
	emu := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "wechat", AppID: "wxapp1", Owner: "acme"},
		{Family: "baidu", AppID: "bdkey1", Owner: "acme"},
	}})
	tests := []struct{ name, got, want string }{
		{"wechat openid", emu.OpenID("wechat", "wxapp1", "alice"), "opIM45bhfPnp0D3QNza2BHVHXCL4"},
		{"wechat unionid", emu.UnionID("wechat", "wxapp1", "alice"), "obi7e-sxbvJWDM4pD7-QYPjrWcr9"},
		{"wechat unionid, default owner", emu.UnionID("wechat", "unknown", "alice"), "oXsRo_cnqelNTiIEEKOdIUYUZh-U"},
		{"baidu openid", emu.OpenID("baidu", "bdkey1", "alice"), "5UqIF3RcSJR7CIeg2W4j5Yk5cS"},
		{"baidu unionid", emu.UnionID("baidu", "bdkey1", "alice"), "S8Wgut7ZBvmmcuVzSRJlZ6q"},
		{"baidu unionid, default owner", emu.UnionID("baidu", "unknown", "alice"), "SzuCs0PuFfS5ALRs8AY4qtY"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestUnionIDs(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: []emulator.App{
		{Family: "wechat", AppID: "acme1", Owner: "acme"},
		{Family: "wechat", AppID: "acme2", Owner: "acme"},
		{Family: "wechat", AppID: "other1", Owner: "other"},
		{Family: "wechat", AppID: "default1"},
		{Family: "wechat", AppID: "default2"},
		{Family: "baidu", AppID: "bdacme1", Owner: "acme"},
		{Family: "baidu", AppID: "bdacme2", Owner: "acme"},
		{Family: "baidu", AppID: "bdother", Owner: "other"},
	}})
	unionid := func(appid string) string {
		t.Helper()
		_, u, _ := wantWeChatSession(t, v.get(wxPath, wxQuery(appid, "any", v.login("wechat", appid, "alice"))))
		if u != v.emu.UnionID("wechat", appid, "alice") {
			t.Errorf("%s: exchange gives unionid %q, UnionID says %q", appid, u, v.emu.UnionID("wechat", appid, "alice"))
		}
		return u
	}
	acme1, acme2, other, def1, def2 := unionid("acme1"), unionid("acme2"), unionid("other1"), unionid("default1"), unionid("default2")
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"one owner's apps", acme1, acme2, true},
		{"default owner's apps", def1, def2, true},
		{"different owners", acme1, other, false},
		{"an owner and the default", acme1, def1, false},
		{"baidu, one owner", v.emu.UnionID("baidu", "bdacme1", "alice"), v.emu.UnionID("baidu", "bdacme2", "alice"), true},
		{"baidu, different owners", v.emu.UnionID("baidu", "bdacme1", "alice"), v.emu.UnionID("baidu", "bdother", "alice"), false},
		{"baidu and wechat", v.emu.UnionID("baidu", "bdacme1", "alice"), acme1, false},
		{"different users", acme1, v.emu.UnionID("wechat", "acme1", "bob"), false},
	}
	for _, tt := range tests {
		if (tt.a == tt.b) != tt.same {
			t.Errorf("%s: %q and %q, want same=%v", tt.name, tt.a, tt.b, tt.same)
		}
	}
}

func TestSessionKeyRotation(t *testing.T) {
	for _, app := range []exchanger{wechatApp(), baiduApp()} {
		t.Run(app.platform, func(t *testing.T) {
			v := newEnv(t, emulator.Config{})
			if _, ok := v.emu.SessionKey(app.platform, app.appid, "alice"); ok {
				t.Fatal("a session key before any login")
			}
			_, k1 := app.ok(t, app.exchange(v, v.login(app.platform, app.appid, "alice")))
			_, k2 := app.ok(t, app.exchange(v, v.login(app.platform, app.appid, "alice")))
			if k1 == k2 {
				t.Fatal("a new exchange kept the old session key")
			}
			if cur, _ := v.emu.SessionKey(app.platform, app.appid, "alice"); cur != k2 {
				t.Errorf("SessionKey is %q, want the latest %q", cur, k2)
			}
		})
	}
}

func TestGivenSessionKey(t *testing.T) {
	tests := []struct {
		name, platform, key string
		ok                  bool
	}{
		{"wechat 16 bytes", "wechat", "tiihtNczf5v6AKRyjwEUhQ==", true},
		{"baidu 24 bytes", "baidu", "1df09d0a1677dd72b8325aec59576e0c", true},
		{"wechat given 24 bytes", "wechat", "1df09d0a1677dd72b8325aec59576e0c", false},
		{"baidu given 16 bytes", "baidu", "tiihtNczf5v6AKRyjwEUhQ==", false},
		{"not base64", "wechat", "not base64!!", false},
		{"url-safe alphabet", "wechat", "tiihtNczf5v6AKRyjwEUhQ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{})
			app := wechatApp()
			if tt.platform == "baidu" {
				app = baiduApp()
			}
			code, err := v.emu.Login(tt.platform, app.appid, "alice", tt.key)
			body := `{"platform":"` + tt.platform + `","appid":"` + app.appid + `","user":"alice","session_key":"` + tt.key + `"}`
			r := v.sendJSON("POST", "/_emulator/login", body)
			if !tt.ok {
				if err == nil {
					t.Error("Login accepted the key")
				}
				if r.status != 400 || r.str(t, "error") != "invalid_request" {
					t.Errorf("control login: %d %s, want 400 invalid_request", r.status, r.body)
				}
				return
			}
			if err != nil || r.status != 200 {
				t.Fatalf("Login: %v; control login: %d %s", err, r.status, r.body)
			}
			for _, c := range []string{code, r.str(t, "code")} {
				if _, key := app.ok(t, app.exchange(v, c)); key != tt.key {
					t.Errorf("session_key %q, want the given %q", key, tt.key)
				}
			}
		})
	}
}

func TestCredentialsOnlyWithApps(t *testing.T) {
	open := newEnv(t, emulator.Config{})
	wantWeChatSession(t, open.get(wxPath, wxQuery("wxanything", "whatever", open.login("wechat", "wxanything", "alice"))))
	wantBaiduSession(t, open.postForm(bdPath, bdForm("bdanything", "whatever", open.login("baidu", "bdanything", "alice"))))

	closed := newEnv(t, emulator.Config{Apps: testApps()})
	if _, err := closed.emu.Login("wechat", "wxanything", "alice", ""); err == nil {
		t.Error("Login for an unconfigured app succeeded")
	}
	wantWeChatError(t, closed.get(wxPath, wxQuery("wxanything", "whatever", "code")), 40013)
	wantBaiduError(t, closed.postForm(bdPath, bdForm("bdanything", "whatever", "code")), 10010101, "invalid_client", "unknown client id")
	// An app without a secret accepts any.
	wantWeChatSession(t, closed.get(wxPath, wxQuery("wxauth1", "whatever", closed.login("wechat", "wxauth1", "alice"))))
}

func TestOpenCodes(t *testing.T) {
	closed := newEnv(t, emulator.Config{})
	wantWeChatError(t, closed.wxExchange("alice.1"), 40029)

	v := newEnv(t, emulator.Config{OpenCodes: true, Apps: testApps()})
	openid, _, _ := wantWeChatSession(t, v.wxExchange("alice.1"))
	if openid != v.emu.OpenID("wechat", "wxapp1", "alice") {
		t.Errorf("open code alice.1 gave openid %q, not alice's", openid)
	}
	wantWeChatError(t, v.wxExchange("alice.1"), 40163)
	wantWeChatError(t, v.get(wxPath, wxQuery("wxapp2", "wxsecret2", "alice.1")), 40163)
	wantWeChatSession(t, v.wxExchange("alice.2"))
	wantWeChatError(t, v.wxExchange(".1"), 40029)
	wantWeChatError(t, v.wxExchange("alice"), 40029)
	wantWeChatError(t, v.wxExchange("blocked.1"), 40226)

	// A Baidu code of the same spelling is another code.
	bdOpenid, _ := wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey1", "bdsecret1", "alice.1")))
	if bdOpenid != v.emu.OpenID("baidu", "bdkey1", "alice") {
		t.Errorf("Baidu open code gave openid %q, not alice's", bdOpenid)
	}
	// The third-party path names no app: the token does.
	q := url.Values{"access_token": {"45.tptoken"}, "code": {"dave.1"}, "grant_type": {"authorization_code"}}
	tpOpenid, _ := wantBaiduSession(t, v.get(bdTPPath, q))
	if tpOpenid != v.emu.OpenID("baidu", "bdtp", "dave") {
		t.Errorf("third-party open code gave openid %q, not dave's of bdtp", tpOpenid)
	}

	// Forgotten after their lifetime, when they would be refused anyway.
	v.clock.Advance(5 * time.Minute)
	wantWeChatSession(t, v.wxExchange("alice.1"))
}

func TestCodeWithAt(t *testing.T) {
	v := newEnv(t, emulator.Config{OpenCodes: true})
	const code = "alice.x@host"
	openid, _, _ := wantWeChatSession(t, v.wxExchange(code))
	if openid != v.emu.OpenID("wechat", "wxapp1", "alice") {
		t.Errorf("openid %q is not alice's", openid)
	}
	wantWeChatError(t, v.wxExchange(code), 40163)
	wantWeChatSession(t, v.wxExchange("alice.x")) // the part before @ is another code
	wantWeChatSession(t, v.wxExchange("alice.x@other"))

	wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey1", "s", code)))
	wantBaiduError(t, v.postForm(bdPath, bdForm("bdkey1", "s", code)), 10010102, "invalid_grant", "revoked")
	wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey1", "s", "alice.x@host2+plus")))
	wantBaiduError(t, v.postForm(bdPath, bdForm("bdkey1", "s", "alice.x@host2+plus")), 10010102, "invalid_grant", "revoked")
}

// TestConcurrentExchange: of many concurrent exchanges of one code, exactly
// one wins, on both platforms.
func TestConcurrentExchange(t *testing.T) {
	v := newEnv(t, emulator.Config{OpenCodes: true, Rand: &seqReader{}})
	codes := []struct {
		app  exchanger
		code string
	}{
		{wechatApp(), v.login("wechat", "wxapp1", "alice")},
		{baiduApp(), v.login("baidu", "bdkey1", "alice")},
		{wechatApp(), "bob.concurrent"},
	}
	for _, c := range codes {
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if r := c.app.exchange(v, c.code); r.status == 200 && r.json(t)["openid"] != nil {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Errorf("%s code exchanged %d times, want once", c.app.platform, n)
		}
	}
}

// TestCallerRandSerialised: a caller's Rand need not be safe for concurrent
// use; the emulator reads it under a lock, or -race reports seqReader.
func TestCallerRandSerialised(t *testing.T) {
	emu := emulator.New(emulator.Config{Rand: &seqReader{}})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if _, err := emu.Login("wechat", "wxapp1", "alice", ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// seqReader is a deterministic random source that is not safe for
// concurrent use: SHA-256 in counter mode.
type seqReader struct {
	n   uint64
	buf []byte
}

func (r *seqReader) Read(b []byte) (int, error) {
	for i := range b {
		if len(r.buf) == 0 {
			r.n++
			sum := sha256.Sum256(binary.BigEndian.AppendUint64(nil, r.n))
			r.buf = sum[:]
		}
		b[i], r.buf = r.buf[0], r.buf[1:]
	}
	return len(b), nil
}

func TestAppPlatformAliases(t *testing.T) {
	emu := emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "wechat-component", AppID: "wxauth"},
		{Family: "baidu-tp", AppID: "bdtp"},
		{Family: "baidu-legacy", AppID: "bdlegacy"},
		{Family: "feishu", AppID: "dy"}, // skipped
	}})
	for _, a := range [][2]string{{"wechat", "wxauth"}, {"baidu", "bdtp"}, {"baidu", "bdlegacy"}} {
		if _, err := emu.Login(a[0], a[1], "alice", ""); err != nil {
			t.Errorf("Login(%s, %s): %v", a[0], a[1], err)
		}
	}
	if _, err := emu.Login("feishu", "dy", "alice", ""); err == nil {
		t.Error("an app of an unknown platform was accepted")
	}
}

// TestLogsNoSecrets: the debug log tells what happened without the code,
// the secret or the session key.
func TestLogsNoSecrets(t *testing.T) {
	var buf testutil.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := newEnv(t, emulator.Config{Apps: testApps(), Logger: logger})
	code := v.login("wechat", "wxapp1", "alice")
	_, _, key := wantWeChatSession(t, v.wxExchange(code))
	wantWeChatError(t, v.wxExchange(code), 40163)
	out := buf.String()
	if !strings.Contains(out, "code exchange") || !strings.Contains(out, "outcome=granted") || !strings.Contains(out, `outcome="code used"`) {
		t.Errorf("log lacks the exchanges:\n%s", out)
	}
	for _, secret := range []string{code, key, "wxsecret1"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}
