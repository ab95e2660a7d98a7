package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// QQ's paths: its login path is WeChat's (wxPath).
const qqTokenPath = "/api/getToken"

// qqApps is a configuration with two QQ apps, one with a non-numeric appid,
// and a WeChat app with a numeric one, beside testApps.
func qqApps() []emulator.App {
	return append(testApps(),
		emulator.App{Family: "qq", AppID: "1101234567", Secret: "qqsecret1", Owner: "acme"},
		emulator.App{Family: "qq", AppID: "qqalpha", Secret: "qqsecret2", Owner: "acme"},
		emulator.App{Family: "wechat", AppID: "2202", Secret: "wxdigits"},
	)
}

func (v *env) qqExchange(appid, secret, code string) result {
	v.t.Helper()
	return v.get(wxPath, wxQuery(appid, secret, code))
}

func qqApp() exchanger {
	return exchanger{
		platform: "qq", appid: "1101234567",
		exchange: func(v *env, code string) result { return v.qqExchange("1101234567", "qqsecret1", code) },
		ok: func(t *testing.T, r result) (string, string) {
			openid, _, key := wantWeChatSession(t, r)
			return openid, key
		},
		refused: func(t *testing.T, r result) { wantWeChatError(t, r, 40029) },
		used:    func(t *testing.T, r result) { wantWeChatError(t, r, 40163) },
	}
}

func TestQQCode2Session(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: qqApps()})
	openid, unionid, key := wantWeChatSession(t, v.qqExchange("1101234567", "qqsecret1", v.login("qq", "1101234567", "alice")))
	if openid != v.emu.OpenID("qq", "1101234567", "alice") || unionid != v.emu.UnionID("qq", "1101234567", "alice") {
		t.Errorf("openid %q unionid %q; want OpenID's and UnionID's", openid, unionid)
	}
	if cur, ok := v.emu.SessionKey("qq", "1101234567", "alice"); !ok || cur != key {
		t.Errorf("SessionKey %q, %v; want %q", cur, ok, key)
	}
	// A QQ user is not the WeChat user of the same name, even with the same appid.
	if openid == v.emu.OpenID("wechat", "1101234567", "alice") || unionid == v.emu.UnionID("wechat", "1101234567", "alice") {
		t.Error("QQ shares ids with WeChat")
	}
	// One owner's QQ apps share the unionid.
	_, u2, _ := wantWeChatSession(t, v.qqExchange("qqalpha", "qqsecret2", v.login("qq", "qqalpha", "alice")))
	if u2 != unionid {
		t.Errorf("unionid %q in the owner's other app, want %q", u2, unionid)
	}
	// Users named blocked… are WeChat's high-risk users only.
	wantWeChatSession(t, v.qqExchange("1101234567", "qqsecret1", v.login("qq", "1101234567", "blocked-bob")))
}

func TestQQCode2SessionErrors(t *testing.T) {
	tests := []struct {
		name    string
		code    func(v *env) string
		query   func(q url.Values)
		method  string
		errcode int64
	}{
		{name: "unknown code", code: func(*env) string { return "never-minted-code" }, errcode: 40029},
		{name: "code of another QQ app", code: func(v *env) string { return v.login("qq", "qqalpha", "alice") }, errcode: 40029},
		{name: "code of WeChat", code: func(v *env) string { return v.login("wechat", "wxapp1", "alice") }, errcode: 40029},
		{name: "code used", code: func(v *env) string {
			c := v.login("qq", "1101234567", "alice")
			wantWeChatSession(v.t, v.qqExchange("1101234567", "qqsecret1", c))
			return c
		}, errcode: 40163},
		{name: "unknown appid", query: func(q url.Values) { q.Set("appid", "1109999999") }, errcode: 40013},
		{name: "wrong secret", query: func(q url.Values) { q.Set("secret", "qqsecret2") }, errcode: 40125},
		{name: "secret missing", query: func(q url.Values) { q.Del("secret") }, errcode: 41004},
		{name: "code missing", query: func(q url.Values) { q.Del("js_code") }, errcode: 41008},
		{name: "grant_type wrong", query: func(q url.Values) { q.Set("grant_type", "client_credential") }, errcode: 40002},
		{name: "POST", method: http.MethodPost, errcode: 41002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: qqApps()})
			code := v.login("qq", "1101234567", "alice")
			if tt.code != nil {
				code = tt.code(v)
			}
			q := wxQuery("1101234567", "qqsecret1", code)
			if tt.query != nil {
				tt.query(q)
			}
			method := http.MethodGet
			if tt.method != "" {
				method = tt.method
			}
			r := v.do(v.request(method, wxPath, q, nil))
			wantWeChatError(t, r, tt.errcode)
			if strings.Contains(string(r.body), code) {
				t.Errorf("the answer echoes the code: %s", r.body)
			}
		})
	}
}

// The path WeChat and QQ share serves the appid's host: a configured app's,
// else QQ for an all-digit appid.
func TestQQOrWeChatByAppID(t *testing.T) {
	t.Run("configured", func(t *testing.T) {
		v := newEnv(t, emulator.Config{Apps: qqApps()})
		// A QQ app with letters in its appid is QQ's; a WeChat app with digits is WeChat's.
		wantWeChatSession(t, v.qqExchange("qqalpha", "qqsecret2", v.login("qq", "qqalpha", "alice")))
		wantWeChatSession(t, v.qqExchange("2202", "wxdigits", v.login("wechat", "2202", "alice")))
		wantWeChatError(t, v.qqExchange("2202", "wxdigits", v.login("qq", "qqalpha", "alice")), 40029)
		if _, err := v.emu.Login("qq", "2202", "alice", ""); err == nil {
			t.Error("a WeChat app's appid minted a QQ code")
		}
	})
	t.Run("any credentials", func(t *testing.T) {
		v := newEnv(t, emulator.Config{})
		code := v.login("qq", "1101234567", "alice")
		// Not WeChat's: on a wx appid the code is another platform's.
		wantWeChatError(t, v.qqExchange("1101234567", "any", v.login("wechat", "1101234567", "alice")), 40029)
		openid, _, _ := wantWeChatSession(t, v.qqExchange("1101234567", "any", code))
		if openid != v.emu.OpenID("qq", "1101234567", "alice") {
			t.Errorf("openid %q is not QQ's", openid)
		}
		wantWeChatSession(t, v.qqExchange("wx0123456789abcdef", "any", v.login("wechat", "wx0123456789abcdef", "alice")))
		// A letter makes an appid WeChat's, where a QQ code is another platform's.
		wantWeChatError(t, v.qqExchange("11012345x", "any", v.login("qq", "11012345x", "alice")), 40029)
	})
}

func TestQQCodeLifeAndSingleUse(t *testing.T) {
	app := qqApp()
	v := newEnv(t, emulator.Config{Apps: qqApps()})
	early, late := v.login("qq", app.appid, "alice"), v.login("qq", app.appid, "bob")
	v.clock.Advance(5*time.Minute - time.Second)
	app.ok(t, app.exchange(v, early))
	app.used(t, app.exchange(v, early))
	v.clock.Advance(time.Second)
	app.refused(t, app.exchange(v, late))
}

func (v *env) qqToken(appid, secret string) result {
	v.t.Helper()
	return v.get(qqTokenPath, url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}})
}

func TestQQToken(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: qqApps()})
	t1, exp := wantWeChatToken(t, v.qqToken("1101234567", "qqsecret1"))
	if exp != 7200 || !v.emu.TokenValid("qq", "1101234567", t1) {
		t.Fatalf("expires_in %d, valid %v", exp, v.emu.TokenValid("qq", "1101234567", t1))
	}
	if v.emu.TokenValid("wechat", "1101234567", t1) {
		t.Error("a QQ token is valid for WeChat")
	}
	// A WeChat business API refuses it.
	wantWeChatError(t, v.get(wxCheckPath, url.Values{"access_token": {t1}, "openid": {"o"}, "signature": {"s"}, "sig_method": {"hmac_sha256"}}), 40001)

	// Each fetch issues a new token; the previous one lives 5 more minutes.
	v.clock.Advance(time.Hour)
	t2, _ := wantWeChatToken(t, v.qqToken("1101234567", "qqsecret1"))
	if t2 == t1 {
		t.Fatal("a fetch returned the same token")
	}
	v.clock.Advance(5*time.Minute - time.Second)
	if !v.emu.TokenValid("qq", "1101234567", t1) || !v.emu.TokenValid("qq", "1101234567", t2) {
		t.Fatal("old and new must both be valid within 5 minutes of the new fetch")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("qq", "1101234567", t1) || !v.emu.TokenValid("qq", "1101234567", t2) {
		t.Fatal("the old token outlived its 5 minutes, or the new one died")
	}

	r := v.sendJSON(http.MethodPost, "/_emulator/tokens/expire", `{"platform":"qq","appid":"1101234567"}`)
	if r.status != http.StatusNoContent || v.emu.TokenValid("qq", "1101234567", t2) {
		t.Fatalf("expire: %d %s", r.status, r.body)
	}
}

func TestQQTokenErrors(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: qqApps()})
	for _, tt := range []struct {
		name    string
		q       url.Values
		method  string
		errcode int64
	}{
		{"grant_type wrong", url.Values{"grant_type": {"client_credentials"}, "appid": {"1101234567"}, "secret": {"qqsecret1"}}, "", 40002},
		{"appid missing", url.Values{"grant_type": {"client_credential"}, "secret": {"qqsecret1"}}, "", 40013},
		{"unknown appid", url.Values{"grant_type": {"client_credential"}, "appid": {"1109"}, "secret": {"qqsecret1"}}, "", 40013},
		{"WeChat's appid", url.Values{"grant_type": {"client_credential"}, "appid": {"wxapp1"}, "secret": {"wxsecret1"}}, "", 40013},
		{"secret missing", url.Values{"grant_type": {"client_credential"}, "appid": {"1101234567"}}, "", 40001},
		{"wrong secret", url.Values{"grant_type": {"client_credential"}, "appid": {"1101234567"}, "secret": {"nope"}}, "", 40001},
		{"POST", url.Values{"grant_type": {"client_credential"}, "appid": {"1101234567"}, "secret": {"qqsecret1"}}, http.MethodPost, 43001},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.method != "" {
				method = tt.method
			}
			r := v.do(v.request(method, qqTokenPath, tt.q, nil))
			wantWeChatError(t, r, tt.errcode)
			if strings.Contains(string(r.body), "qqsecret1") {
				t.Errorf("the answer echoes the secret: %s", r.body)
			}
		})
	}
}

func TestQQUserData(t *testing.T) {
	for name, via := range map[string]userDataVia{"control": viaControl, "go": viaGo} {
		t.Run(name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: qqApps()})
			r := v.sendJSON(http.MethodPost, "/_emulator/login", `{"platform":"qq","appid":"1101234567","user":"alice"}`)
			wantWeChatSession(t, v.qqExchange("1101234567", "qqsecret1", r.str(t, "code")))
			key, _ := v.emu.SessionKey("qq", "1101234567", "alice")
			v.clock.Advance(time.Minute)

			d := via(v, "qq", "1101234567", "alice", "userinfo")
			plain, err := userdata.DecryptWeChat(secret.New(key), d.EncryptedData, d.IV,
				userdata.WeChatOptions{AppID: "1101234567", MaxAge: time.Minute, Now: v.clock.Now})
			if err != nil {
				t.Fatalf("DecryptWeChat: %v", err)
			}
			var info map[string]any
			decode(t, plain, &info)
			if info["openId"] != v.emu.OpenID("qq", "1101234567", "alice") || info["unionId"] != v.emu.UnionID("qq", "1101234567", "alice") ||
				info["nickName"] != "alice" {
				t.Errorf("user info %s", plain)
			}
			if !userdata.VerifyRawData(secret.New(key), d.RawData, d.Signature) {
				t.Errorf("rawData %s does not verify", d.RawData)
			}
			var raw map[string]any
			decode(t, []byte(d.RawData), &raw)
			if len(raw) != 7 || raw["avatarUrl"] != info["avatarUrl"] || !strings.HasPrefix(raw["avatarUrl"].(string), "https://thirdqq.qlogo.cn/") {
				t.Errorf("rawData %s", d.RawData)
			}
		})
	}
}

func TestQQUserDataRefused(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: qqApps()})
	wantWeChatSession(t, v.qqExchange("1101234567", "qqsecret1", v.login("qq", "1101234567", "alice")))
	for _, tt := range []struct {
		name, body string
		status     int
		error      string
	}{
		{"no phone API", `{"platform":"qq","appid":"1101234567","user":"alice","kind":"phone"}`, 400, "invalid_request"},
		{"WeChat's app", `{"platform":"qq","appid":"wxapp1","user":"alice","kind":"userinfo"}`, 400, "unknown_app"},
		{"no session", `{"platform":"qq","appid":"qqalpha","user":"alice","kind":"userinfo"}`, 409, "no_session"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := v.sendJSON(http.MethodPost, "/_emulator/userdata", tt.body)
			if r.status != tt.status || r.str(t, "error") != tt.error {
				t.Fatalf("got %d %s; want %d %s", r.status, r.body, tt.status, tt.error)
			}
		})
	}
}

// Faults on QQ's paths answer in WeChat's format, and the shared login
// path's rule applies to both hosts.
func TestQQFaults(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: qqApps()})
	v.emu.SetFaults(emulator.Fault{Path: qqTokenPath, Errcode: -1, Times: 1}, emulator.Fault{Path: wxPath, Errcode: 45011, Times: 1})
	wantWeChatError(t, v.qqToken("1101234567", "qqsecret1"), -1)
	wantWeChatToken(t, v.qqToken("1101234567", "qqsecret1"))
	code := v.login("qq", "1101234567", "alice")
	wantWeChatError(t, v.qqExchange("1101234567", "qqsecret1", code), 45011)
	wantWeChatSession(t, v.qqExchange("1101234567", "qqsecret1", code)) // the fault did not spend it
	if n := v.emu.Stats()[qqTokenPath]; n != 2 {
		t.Errorf("%d calls to %s, want 2", n, qqTokenPath)
	}
}
