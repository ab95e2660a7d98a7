package emulator_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
)

// classic fetches a token from GET /cgi-bin/token.
func (v *env) classic(appid, secret string) result {
	v.t.Helper()
	return v.get(wxTokenPath, url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}})
}

// stable fetches a token from POST /cgi-bin/stable_token.
func (v *env) stable(appid, secret string, force bool) result {
	v.t.Helper()
	return v.sendJSON(http.MethodPost, wxStablePath,
		fmt.Sprintf(`{"grant_type":"client_credential","appid":%q,"secret":%q,"force_refresh":%t}`, appid, secret, force))
}

// wantWeChatToken checks a successful token answer and returns the token
// and its expires_in.
func wantWeChatToken(t *testing.T, r result) (string, int64) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "text/plain" {
		t.Fatalf("status %d, Content-Type %q, body %s; want 200 text/plain", r.status, r.ctype, r.body)
	}
	tok, exp := r.str(t, "access_token"), r.num(t, "expires_in")
	if tok == "" || exp <= 0 {
		t.Fatalf("no token in %s", r.body)
	}
	return tok, exp
}

func TestWeChatClassicTokenOverlap(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	t1, exp := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	if exp != 7200 || !v.emu.TokenValid("wechat", "wxapp1", t1) {
		t.Fatalf("first token: expires_in %d, valid %v", exp, v.emu.TokenValid("wechat", "wxapp1", t1))
	}

	// Each fetch issues a new token; the previous one lives 5 more minutes.
	v.clock.Advance(time.Hour)
	t2, _ := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	if t2 == t1 {
		t.Fatal("a classic fetch returned the same token")
	}
	v.clock.Advance(5*time.Minute - time.Second)
	if !v.emu.TokenValid("wechat", "wxapp1", t1) || !v.emu.TokenValid("wechat", "wxapp1", t2) {
		t.Fatal("old and new must both be valid within 5 minutes of the new fetch")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("wechat", "wxapp1", t1) {
		t.Fatal("the old token is still valid 5 minutes after the new fetch")
	}
	if !v.emu.TokenValid("wechat", "wxapp1", t2) {
		t.Fatal("the new token is not valid")
	}

	// Only the one previous token overlaps: a third fetch ends the first
	// overlap's token at once.
	t3, _ := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	t4, _ := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	if v.emu.TokenValid("wechat", "wxapp1", t2) || !v.emu.TokenValid("wechat", "wxapp1", t3) || !v.emu.TokenValid("wechat", "wxapp1", t4) {
		t.Fatal("want t2 invalid, t3 in its overlap, t4 valid")
	}

	// A token ends after 7200 s.
	v.clock.Advance(7200*time.Second - time.Second)
	if !v.emu.TokenValid("wechat", "wxapp1", t4) {
		t.Fatal("token invalid before 7200 s")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("wechat", "wxapp1", t4) {
		t.Fatal("token valid after 7200 s")
	}
}

func TestWeChatStableNormalMode(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	t1, exp := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	if exp != 7200 {
		t.Fatalf("expires_in %d, want 7200", exp)
	}
	// The same token while it is valid, with what remains of its life.
	v.clock.Advance(time.Hour)
	again, exp := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	if again != t1 || exp != 3600 {
		t.Fatalf("got %s… with expires_in %d; want the same token with 3600", again[:8], exp)
	}
	// Up to 5 minutes before expiry: still the same.
	v.clock.Advance(3600*time.Second - tokenOverlap)
	again, exp = wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	if again != t1 || exp != 300 {
		t.Fatalf("at 300 s left: expires_in %d, same %v", exp, again == t1)
	}
	// Inside the last 5 minutes: renewed; the old one stays valid until its
	// own expiry, so both work during the overlap.
	v.clock.Advance(time.Second)
	t2, exp := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	if t2 == t1 || exp != 7200 {
		t.Fatalf("in the renewal window: same %v, expires_in %d; want a new token with 7200", t2 == t1, exp)
	}
	if !v.emu.TokenValid("wechat", "wxapp1", t1) || !v.emu.TokenValid("wechat", "wxapp1", t2) {
		t.Fatal("old and new must both be valid during the overlap")
	}
	if again, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false)); again != t2 {
		t.Fatal("after the renewal, normal mode must return the new token")
	}
	v.clock.Advance(tokenOverlap - 2*time.Second)
	if !v.emu.TokenValid("wechat", "wxapp1", t1) {
		t.Fatal("old token invalid before its expiry")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("wechat", "wxapp1", t1) || !v.emu.TokenValid("wechat", "wxapp1", t2) {
		t.Fatal("at its expiry the old token must stop, the new one work")
	}
}

// Whenever it is asked, normal mode answers a valid token with at least
// 300 s left.
func TestWeChatStableExpiresInAtLeast300(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	seen := map[string]bool{}
	for range 300 {
		tok, exp := wantWeChatToken(t, v.stable("wxany", "any", false))
		if exp < 300 || exp > 7200 || !v.emu.TokenValid("wechat", "wxany", tok) {
			t.Fatalf("expires_in %d, valid %v", exp, v.emu.TokenValid("wechat", "wxany", tok))
		}
		seen[tok] = true
		v.clock.Advance(97 * time.Second)
	}
	if len(seen) < 3 {
		t.Fatalf("%d tokens over 8 hours, want renewals", len(seen))
	}
}

const tokenOverlap = 5 * time.Minute

func TestWeChatStableForceRefresh(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	// 2025-03-01 12:00 UTC is 20:00 in China; the day there ends in 4 h.
	t1, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	v.clock.Advance(time.Minute)
	t2, exp := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true))
	if t2 == t1 || exp != 7200 {
		t.Fatalf("force: same %v, expires_in %d; want a new token with 7200", t2 == t1, exp)
	}
	if v.emu.TokenValid("wechat", "wxapp1", t1) {
		t.Fatal("force_refresh must invalidate the previous token at once")
	}

	// Within 30 s of the last forced refresh: answered as normal mode.
	v.clock.Advance(29 * time.Second)
	again, exp := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true))
	if again != t2 || exp != 7200-29 || !v.emu.TokenValid("wechat", "wxapp1", t2) {
		t.Fatalf("force within 30 s: same %v, expires_in %d; want the current token unchanged", again == t2, exp)
	}
	// The refused call did not restart the 30 s.
	v.clock.Advance(time.Second)
	t3, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true))
	if t3 == t2 || v.emu.TokenValid("wechat", "wxapp1", t2) {
		t.Fatal("force 30 s after the last one must refresh")
	}

	// 20 a day: two done, 18 more, then refused.
	cur := t3
	for i := 3; i <= 20; i++ {
		v.clock.Advance(30 * time.Second)
		next, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true))
		if next == cur {
			t.Fatalf("forced refresh %d refused", i)
		}
		cur = next
	}
	v.clock.Advance(time.Minute)
	if over, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true)); over != cur || !v.emu.TokenValid("wechat", "wxapp1", cur) {
		t.Fatal("the 21st forced refresh of the day must return the current token unchanged")
	}
	// Another app has its own count.
	other, _ := wantWeChatToken(t, v.stable("wxapp2", "wxsecret2", false))
	if forced, _ := wantWeChatToken(t, v.stable("wxapp2", "wxsecret2", true)); forced == other {
		t.Fatal("another app's force refresh was refused")
	}
	// A new day in China (midnight UTC+8 = 16:00 UTC) resets the count.
	v.clock.Advance(4 * time.Hour)
	if next, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true)); next == cur {
		t.Fatal("force refused on a new day")
	}
}

// Classic and stable tokens are isolated: neither invalidates the other.
func TestWeChatTokenKindsIsolated(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	st, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	for range 3 {
		wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	}
	again, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	if again != st || !v.emu.TokenValid("wechat", "wxapp1", st) {
		t.Fatal("classic fetches changed the stable token")
	}
	cl, _ := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", true))
	if !v.emu.TokenValid("wechat", "wxapp1", cl) {
		t.Fatal("a forced stable refresh invalidated the classic token")
	}
}

func TestWeChatTokenErrors(t *testing.T) {
	stableBody := func(mod func(m map[string]any)) string {
		m := map[string]any{"grant_type": "client_credential", "appid": "wxapp1", "secret": "wxsecret1", "force_refresh": false}
		mod(m)
		var parts []string
		for k, val := range m {
			if s, ok := val.(string); ok {
				parts = append(parts, fmt.Sprintf("%q:%q", k, s))
			} else {
				parts = append(parts, fmt.Sprintf("%q:%v", k, val))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	classicQ := func(mod func(q url.Values)) url.Values {
		q := url.Values{"grant_type": {"client_credential"}, "appid": {"wxapp1"}, "secret": {"wxsecret1"}}
		mod(q)
		return q
	}
	tests := []struct {
		name    string
		do      func(v *env) result
		errcode int64
	}{
		{"classic unknown appid", func(v *env) result { return v.classic("wxnope", "wxsecret1") }, 40013},
		{"classic wrong secret", func(v *env) result { return v.classic("wxapp1", "wxsecret2") }, 40125},
		{"classic appid missing", func(v *env) result { return v.get(wxTokenPath, classicQ(func(q url.Values) { q.Del("appid") })) }, 41002},
		{"classic secret missing", func(v *env) result { return v.get(wxTokenPath, classicQ(func(q url.Values) { q.Del("secret") })) }, 41004},
		{"classic grant_type wrong", func(v *env) result {
			return v.get(wxTokenPath, classicQ(func(q url.Values) { q.Set("grant_type", "client_credentials") }))
		}, 40002},
		{"classic POST", func(v *env) result {
			return v.do(v.request(http.MethodPost, wxTokenPath, classicQ(func(url.Values) {}), nil))
		}, 43001},
		{"stable unknown appid", func(v *env) result { return v.stable("wxnope", "wxsecret1", false) }, 40013},
		{"stable wrong secret", func(v *env) result { return v.stable("wxapp1", "wxsecret2", false) }, 40125},
		{"stable wrong secret forced", func(v *env) result { return v.stable("wxapp1", "nope", true) }, 40125},
		{"stable appid missing", func(v *env) result {
			return v.sendJSON("POST", wxStablePath, stableBody(func(m map[string]any) { delete(m, "appid") }))
		}, 41002},
		{"stable secret missing", func(v *env) result {
			return v.sendJSON("POST", wxStablePath, stableBody(func(m map[string]any) { delete(m, "secret") }))
		}, 41004},
		{"stable grant_type wrong", func(v *env) result {
			return v.sendJSON("POST", wxStablePath, stableBody(func(m map[string]any) { m["grant_type"] = "authorization_code" }))
		}, 40002},
		{"stable malformed JSON", func(v *env) result { return v.sendJSON("POST", wxStablePath, `{"appid":`) }, 47001},
		{"stable force_refresh not a bool", func(v *env) result {
			return v.sendJSON("POST", wxStablePath, stableBody(func(m map[string]any) { m["force_refresh"] = "true" }))
		}, 47001},
		{"stable GET", func(v *env) result { return v.get(wxStablePath, classicQ(func(url.Values) {})) }, 43002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			r := tt.do(v)
			wantWeChatError(t, r, tt.errcode)
			for _, s := range []string{"wxsecret1", "wxsecret2"} {
				if strings.Contains(string(r.body), s) {
					t.Errorf("the answer echoes a secret: %s", r.body)
				}
			}
		})
	}
	// Without Config.Apps any credentials are accepted.
	v := newEnv(t, emulator.Config{})
	wantWeChatToken(t, v.classic("wxwhatever", "anything"))
	wantWeChatToken(t, v.stable("wxwhatever", "anything", false))
}

func bdTokenForm(clientID, secret string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"smartapp_snsapi_base"}}
}

func TestBaiduAppToken(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	r := v.postForm(bdTokenPath, bdTokenForm("bdkey1", "bdsecret1"))
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Fatalf("got %d %q %s", r.status, r.ctype, r.body)
	}
	t1 := r.str(t, "access_token")
	if !strings.HasPrefix(t1, "24.") || !strings.Contains(t1, ".2592000.") || r.num(t, "expires_in") != 2592000 ||
		r.str(t, "scope") != "smartapp_snsapi_base" || r.str(t, "refresh_token") == "" {
		t.Fatalf("answer %s", r.body)
	}
	if !v.emu.TokenValid("baidu", "bdkey1", t1) || v.emu.TokenValid("baidu", "bdkey2", t1) || v.emu.TokenValid("wechat", "bdkey1", t1) {
		t.Fatal("the token must be valid for its app only")
	}

	// GET with the query works as well; each fetch is a new token, the
	// previous one stays valid until its own expiry, older ones do not.
	v.clock.Advance(24 * time.Hour)
	t2 := v.get(bdTokenPath, bdTokenForm("bdkey1", "bdsecret1")).str(t, "access_token")
	t3 := v.postForm(bdTokenPath, bdTokenForm("bdkey1", "bdsecret1")).str(t, "access_token")
	if t2 == "" || t2 == t1 || t3 == t2 {
		t.Fatal("each fetch must issue a new token")
	}
	if v.emu.TokenValid("baidu", "bdkey1", t1) || !v.emu.TokenValid("baidu", "bdkey1", t2) || !v.emu.TokenValid("baidu", "bdkey1", t3) {
		t.Fatal("want t1 invalid, t2 and t3 valid")
	}
	v.clock.Advance(30*24*time.Hour - time.Second)
	if !v.emu.TokenValid("baidu", "bdkey1", t3) {
		t.Fatal("invalid before 30 days")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("baidu", "bdkey1", t3) {
		t.Fatal("valid after 30 days")
	}
}

func TestBaiduAppTokenErrors(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(f url.Values)
		method string
		status int
		error  string
	}{
		{"unknown client", func(f url.Values) { f.Set("client_id", "bdnope") }, "", 400, "invalid_client"},
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "bdsecret2") }, "", 400, "invalid_client"},
		{"secret missing", func(f url.Values) { f.Del("client_secret") }, "", 400, "invalid_request"},
		{"client missing", func(f url.Values) { f.Del("client_id") }, "", 400, "invalid_request"},
		{"grant_type wrong", func(f url.Values) { f.Set("grant_type", "client_credential") }, "", 400, "unsupported_grant_type"},
		{"scope missing", func(f url.Values) { f.Del("scope") }, "", 400, "invalid_scope"},
		{"scope other", func(f url.Values) { f.Set("scope", "smartapp_snsapi_userinfo") }, "", 400, "invalid_scope"},
		{"PUT", func(url.Values) {}, http.MethodPut, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			f := bdTokenForm("bdkey1", "bdsecret1")
			tt.mod(f)
			var r result
			if tt.method != "" {
				r = v.do(v.request(tt.method, bdTokenPath, f, nil))
			} else {
				r = v.postForm(bdTokenPath, f)
			}
			if r.status != tt.status {
				t.Fatalf("status %d, body %s; want %d", r.status, r.body, tt.status)
			}
			if tt.error == "" {
				return
			}
			m := r.json(t)
			if m["error"] != tt.error || m["error_description"] == "" {
				t.Errorf("body %s; want error %q", r.body, tt.error)
			}
			if _, ok := m["errno"]; ok {
				t.Errorf("OAuth errors carry no errno: %s", r.body)
			}
			if strings.Contains(string(r.body), "bdsecret") {
				t.Errorf("the answer echoes a secret: %s", r.body)
			}
		})
	}
}

func TestExpireTokens(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	st, _ := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	cl, _ := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1"))
	cl2, _ := wantWeChatToken(t, v.classic("wxapp1", "wxsecret1")) // cl in its overlap
	other, _ := wantWeChatToken(t, v.stable("wxapp2", "wxsecret2", false))
	bd := v.postForm(bdTokenPath, bdTokenForm("bdkey1", "bdsecret1")).str(t, "access_token")

	v.emu.ExpireTokens("wechat", "wxapp1")
	for _, tok := range []string{st, cl, cl2} {
		if v.emu.TokenValid("wechat", "wxapp1", tok) {
			t.Fatal("a token survived ExpireTokens")
		}
	}
	if !v.emu.TokenValid("wechat", "wxapp2", other) || !v.emu.TokenValid("baidu", "bdkey1", bd) {
		t.Fatal("ExpireTokens touched another app")
	}
	// Normal mode now issues a new token.
	st2, exp := wantWeChatToken(t, v.stable("wxapp1", "wxsecret1", false))
	if st2 == st || exp != 7200 || !v.emu.TokenValid("wechat", "wxapp1", st2) {
		t.Fatal("stable_token after ExpireTokens must issue a new token")
	}

	// The control endpoint does the same.
	if r := v.sendJSON("POST", "/_emulator/tokens/expire", `{"platform":"baidu","appid":"bdkey1"}`); r.status != http.StatusNoContent {
		t.Fatalf("POST /_emulator/tokens/expire: %d %s", r.status, r.body)
	}
	if v.emu.TokenValid("baidu", "bdkey1", bd) {
		t.Fatal("the Baidu token survived /_emulator/tokens/expire")
	}
	for _, tt := range []struct {
		name, method, body string
		status             int
		error              string
	}{
		{"unknown platform", "POST", `{"platform":"feishu","appid":"x"}`, 400, "invalid_request"},
		{"appid missing", "POST", `{"platform":"wechat"}`, 400, "invalid_request"},
		{"unknown app", "POST", `{"platform":"wechat","appid":"wxnope"}`, 400, "unknown_app"},
		{"unknown field", "POST", `{"platform":"wechat","appid":"wxapp1","user":"a"}`, 400, "invalid_request"},
		{"GET", "GET", ``, 405, "method_not_allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := v.sendJSON(tt.method, "/_emulator/tokens/expire", tt.body)
			if r.status != tt.status || r.str(t, "error") != tt.error {
				t.Fatalf("got %d %s; want %d %s", r.status, r.body, tt.status, tt.error)
			}
		})
	}
	if !v.emu.TokenValid("wechat", "wxapp1", st2) {
		t.Fatal("a refused control request expired tokens")
	}
}

func TestTokenValidRefusesStrangers(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	tok, _ := wantWeChatToken(t, v.stable("wxA", "s", false))
	for _, c := range []struct{ platform, appid, token string }{
		{"wechat", "wxB", tok}, {"baidu", "wxA", tok}, {"douyin", "wxA", tok},
		{"wechat", "wxA", ""}, {"wechat", "wxA", tok[:len(tok)-1]}, {"wechat", "wxA", "never-issued"},
	} {
		if v.emu.TokenValid(c.platform, c.appid, c.token) {
			t.Errorf("TokenValid(%q, %q, %.10q…) = true", c.platform, c.appid, c.token)
		}
	}
	if !v.emu.TokenValid("wechat-component", "wxA", tok) {
		t.Error("platform aliases are accepted elsewhere; here too")
	}
}
