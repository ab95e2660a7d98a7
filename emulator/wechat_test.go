package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/emulator"
)

func TestWeChatCode2SessionErrors(t *testing.T) {
	tests := []struct {
		name    string
		code    func(v *env) string // the code to exchange
		query   func(q url.Values)  // changes to the request
		method  string
		errcode int64
	}{
		{name: "unknown code", code: func(*env) string { return "081aBcDe1zPqrs0XyZ1fGh2e2a0aBcDT" }, errcode: 40029},
		{name: "code of another app", code: func(v *env) string { return v.login("wechat", "wxapp2", "alice") }, errcode: 40029},
		{name: "code of another platform", code: func(v *env) string { return v.login("baidu", "bdkey1", "alice") }, errcode: 40029},
		{name: "code used", code: func(v *env) string {
			c := v.login("wechat", "wxapp1", "alice")
			wantWeChatSession(v.t, v.wxExchange(c))
			return c
		}, errcode: 40163},
		{name: "blocked user", code: func(v *env) string { return v.login("wechat", "wxapp1", "blocked-bob") }, errcode: 40226},
		{name: "unknown appid", query: func(q url.Values) { q.Set("appid", "wxnope") }, errcode: 40013},
		{name: "wrong secret", query: func(q url.Values) { q.Set("secret", "wxsecret2") }, errcode: 40125},
		{name: "secret of a prefix", query: func(q url.Values) { q.Set("secret", "wxsecret") }, errcode: 40125},
		{name: "appid missing", query: func(q url.Values) { q.Del("appid") }, errcode: 41002},
		{name: "POST", method: http.MethodPost, errcode: 41002},
		{name: "secret missing", query: func(q url.Values) { q.Del("secret") }, errcode: 41004},
		{name: "code missing", query: func(q url.Values) { q.Del("js_code") }, errcode: 41008},
		{name: "code under the wrong key", query: func(q url.Values) { q["code"] = q["js_code"]; q.Del("js_code") }, errcode: 41008},
		{name: "grant_type wrong", query: func(q url.Values) { q.Set("grant_type", "client_credential") }, errcode: 40002},
		{name: "grant_type missing", query: func(q url.Values) { q.Del("grant_type") }, errcode: 40002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			code := v.login("wechat", "wxapp1", "alice")
			if tt.code != nil {
				code = tt.code(v)
			}
			q := wxQuery("wxapp1", "wxsecret1", code)
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

func TestWeChatCode2Session(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	code := v.login("wechat", "wxapp1", "alice")
	openid, unionid, key := wantWeChatSession(t, v.wxExchange(code))
	if want := v.emu.OpenID("wechat", "wxapp1", "alice"); openid != want {
		t.Errorf("openid %q, OpenID says %q", openid, want)
	}
	if want := v.emu.UnionID("wechat", "wxapp1", "alice"); unionid != want {
		t.Errorf("unionid %q, UnionID says %q", unionid, want)
	}
	if cur, ok := v.emu.SessionKey("wechat", "wxapp1", "alice"); !ok || cur != key {
		t.Errorf("SessionKey = %q, %v; want the exchanged %q", cur, ok, key)
	}
}

func TestWeChatBlockedCodeNotConsumed(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	code := v.login("wechat", "wxapp1", "blocked")
	for range 2 {
		wantWeChatError(t, v.wxExchange(code), 40226)
	}
}

func TestWeChatComponent(t *testing.T) {
	compQuery := func(appid, code string) url.Values {
		return url.Values{"appid": {appid}, "js_code": {code}, "grant_type": {"authorization_code"},
			"component_appid": {"wxcomp"}, "component_access_token": {"ctoken"}}
	}
	tests := []struct {
		name    string
		code    func(v *env) string
		query   func(q url.Values)
		errcode int64 // 0: success
	}{
		{name: "success"},
		{name: "component_access_token missing", query: func(q url.Values) { q.Del("component_access_token") }, errcode: 41021},
		{name: "wrong token", query: func(q url.Values) { q.Set("component_access_token", "ctoken2") }, errcode: 40001},
		{name: "another component", query: func(q url.Values) { q.Set("component_appid", "wxcomp2") }, errcode: 61003},
		{name: "component_appid missing", query: func(q url.Values) { q.Del("component_appid") }, errcode: 41002},
		{name: "appid missing", query: func(q url.Values) { q.Del("appid") }, errcode: 41002},
		{name: "code missing", query: func(q url.Values) { q.Del("js_code") }, errcode: 41008},
		{name: "unknown appid", query: func(q url.Values) { q.Set("appid", "wxnope") }, errcode: 40013},
		{name: "unknown code", code: func(*env) string { return "nosuchcode" }, errcode: 40029},
		{name: "code of another app", code: func(v *env) string { return v.login("wechat", "wxapp1", "alice") }, errcode: 40029},
		{name: "code used", code: func(v *env) string {
			c := v.login("wechat", "wxauth1", "alice")
			wantWeChatSession(v.t, v.get(wxCompPath, compQuery("wxauth1", c)))
			return c
		}, errcode: 40163},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			code := v.login("wechat", "wxauth1", "alice")
			if tt.code != nil {
				code = tt.code(v)
			}
			q := compQuery("wxauth1", code)
			if tt.query != nil {
				tt.query(q)
			}
			r := v.get(wxCompPath, q)
			if tt.errcode != 0 {
				wantWeChatError(t, r, tt.errcode)
				return
			}
			openid, unionid, _ := wantWeChatSession(t, r)
			if openid != v.emu.OpenID("wechat", "wxauth1", "alice") || unionid != v.emu.UnionID("wechat", "wxauth1", "alice") {
				t.Errorf("openid %q, unionid %q do not match OpenID/UnionID", openid, unionid)
			}
		})
	}

	t.Run("any token without apps", func(t *testing.T) {
		v := newEnv(t, emulator.Config{})
		q := compQuery("wxanything", v.login("wechat", "wxanything", "alice"))
		q.Set("component_access_token", "whatever")
		wantWeChatSession(t, v.get(wxCompPath, q))
	})
}
