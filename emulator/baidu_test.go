package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/emulator"
)

func TestBaiduCode2SessionKey(t *testing.T) {
	tests := []struct {
		name  string
		code  func(v *env) string
		form  func(f url.Values)
		send  string // "form" (default), "query" (POST, parameters in the query), "get"
		errno int64  // 0: success
		error string
		desc  string
	}{
		{name: "success"},
		{name: "success, parameters in the query", send: "query"},
		{name: "success, GET", send: "get"},
		{name: "client_id missing", form: func(f url.Values) { f.Del("client_id") },
			errno: 10010100, error: "parameter is invalid", desc: "Field validation for 'ClientID' failed on the 'required' tag"},
		{name: "sk missing", form: func(f url.Values) { f.Del("sk") },
			errno: 10010100, error: "parameter is invalid", desc: "'Sk'"},
		{name: "code missing", form: func(f url.Values) { f.Del("code") },
			errno: 10010100, error: "parameter is invalid", desc: "'Code'"},
		{name: "unknown client_id", form: func(f url.Values) { f.Set("client_id", "bdnope") },
			errno: 10010101, error: "invalid_client", desc: "unknown client id"},
		{name: "wrong sk", form: func(f url.Values) { f.Set("sk", "bdsecret2") },
			errno: 10010101, error: "invalid_client", desc: "unknown client id"},
		{name: "unknown code", code: func(*env) string { return "0123456789abcdef0123456789abcdef" },
			errno: 10010102, error: "invalid_grant", desc: "Invalid authorization code"},
		{name: "code of another app", code: func(v *env) string { return v.login("baidu", "bdkey2", "alice") },
			errno: 10010102, error: "invalid_grant", desc: "Invalid authorization code"},
		{name: "code of another platform", code: func(v *env) string { return v.login("wechat", "wxapp1", "alice") },
			errno: 10010102, error: "invalid_grant", desc: "Invalid authorization code"},
		{name: "code used", code: func(v *env) string {
			c := v.login("baidu", "bdkey1", "alice")
			wantBaiduSession(v.t, v.postForm(bdPath, bdForm("bdkey1", "bdsecret1", c)))
			return c
		}, errno: 10010102, error: "invalid_grant", desc: "The provided authorization grant is revoked"},
	}
	for _, path := range []string{bdPath, bdLegacy} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				v := newEnv(t, emulator.Config{Apps: testApps()})
				code := v.login("baidu", "bdkey1", "alice")
				if tt.code != nil {
					code = tt.code(v)
				}
				f := bdForm("bdkey1", "bdsecret1", code)
				if tt.form != nil {
					tt.form(f)
				}
				var r result
				switch tt.send {
				case "query":
					r = v.do(v.request(http.MethodPost, path, f, nil))
				case "get":
					r = v.get(path, f)
				default:
					r = v.postForm(path, f)
				}
				if tt.errno != 0 {
					wantBaiduError(t, r, tt.errno, tt.error, tt.desc)
					if strings.Contains(string(r.body), code) {
						t.Errorf("the answer echoes the code: %s", r.body)
					}
					return
				}
				openid, key := wantBaiduSession(t, r)
				if want := v.emu.OpenID("baidu", "bdkey1", "alice"); openid != want {
					t.Errorf("openid %q, OpenID says %q", openid, want)
				}
				if cur, ok := v.emu.SessionKey("baidu", "bdkey1", "alice"); !ok || cur != key {
					t.Errorf("SessionKey = %q, %v; want the exchanged %q", cur, ok, key)
				}
			})
		}
	}
}

func TestBaiduMissingParametersListed(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	r := v.postForm(bdPath, url.Values{})
	wantBaiduError(t, r, 10010100, "parameter is invalid", "ClientID")
	for _, field := range []string{"'Code'", "'ClientID'", "'Sk'"} {
		if !strings.Contains(r.str(t, "error_description"), field) {
			t.Errorf("description %q does not name %s", r.str(t, "error_description"), field)
		}
	}
}

func TestBaiduThirdParty(t *testing.T) {
	tpQuery := func(token, code string) url.Values {
		return url.Values{"access_token": {token}, "code": {code}, "grant_type": {"authorization_code"}}
	}
	tests := []struct {
		name  string
		code  func(v *env) string
		query func(q url.Values)
		errno int64 // 0: success, 110: gateway error
		error string
		desc  string
	}{
		{name: "success"},
		{name: "access_token missing", query: func(q url.Values) { q.Del("access_token") },
			errno: 10010100, error: "invalid_request", desc: "access_token"},
		{name: "code missing", query: func(q url.Values) { q.Del("code") },
			errno: 10010100, error: "invalid_request", desc: "code"},
		{name: "grant_type wrong", query: func(q url.Values) { q.Set("grant_type", "client_credentials") },
			errno: 10010100, error: "unsupported_grant_type", desc: "not supported"},
		{name: "wrong token", query: func(q url.Values) { q.Set("access_token", "45.other") }, errno: 110},
		{name: "unknown code", code: func(*env) string { return "nosuchcode" },
			errno: 10010102, error: "invalid_grant", desc: "Invalid authorization code"},
		{name: "code of another platform", code: func(v *env) string { return v.login("wechat", "wxapp1", "alice") },
			errno: 10010102, error: "invalid_grant", desc: "Invalid authorization code"},
		{name: "code used", code: func(v *env) string {
			c := v.login("baidu", "bdtp", "alice")
			wantBaiduSession(v.t, v.get(bdTPPath, tpQuery("45.tptoken", c)))
			return c
		}, errno: 10010102, error: "invalid_grant", desc: "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			code := v.login("baidu", "bdtp", "alice")
			if tt.code != nil {
				code = tt.code(v)
			}
			q := tpQuery("45.tptoken", code)
			if tt.query != nil {
				tt.query(q)
			}
			r := v.get(bdTPPath, q)
			switch tt.errno {
			case 0:
				openid, _ := wantBaiduSession(t, r)
				if want := v.emu.OpenID("baidu", "bdtp", "alice"); openid != want {
					t.Errorf("openid %q, OpenID says %q", openid, want)
				}
			case 110:
				if r.status != http.StatusOK || r.num(t, "error_code") != 110 ||
					r.str(t, "error_msg") != "Access token invalid or no longer valid" {
					t.Errorf("got %d %s; want the gateway's 200 error_code 110", r.status, r.body)
				}
			default:
				wantBaiduError(t, r, tt.errno, tt.error, tt.desc)
			}
		})
	}

	t.Run("wrong token does not consume the code", func(t *testing.T) {
		v := newEnv(t, emulator.Config{Apps: testApps()})
		code := v.login("baidu", "bdtp", "alice")
		if r := v.get(bdTPPath, tpQuery("45.other", code)); r.num(t, "error_code") != 110 {
			t.Fatalf("got %s, want error_code 110", r.body)
		}
		wantBaiduSession(t, v.get(bdTPPath, tpQuery("45.tptoken", code)))
	})
}

// Baidu's own SDK reads errno, error and error_description only from a 2xx
// answer, so the login exchanges answer their errors with HTTP 200, fault
// rules included; /oauth/2.0/token keeps OAuth's 400.
func TestBaiduErrorStatus(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	for _, path := range []string{bdPath, bdLegacy} {
		wantBaiduError(t, v.postForm(path, bdForm("bdkey1", "bdsecret1", "nosuchcode")), 10010102, "invalid_grant", "Invalid authorization code")
		wantBaiduError(t, v.postForm(path, bdForm("bdkey1", "wrong", "nosuchcode")), 10010101, "invalid_client", "unknown client id")
	}
	tp := url.Values{"access_token": {"45.tptoken"}, "code": {"nosuchcode"}, "grant_type": {"authorization_code"}}
	wantBaiduError(t, v.get(bdTPPath, tp), 10010102, "invalid_grant", "Invalid authorization code")

	wantOAuth400 := func(r result, name string) {
		t.Helper()
		if r.status != http.StatusBadRequest || r.ctype != "application/json" || r.str(t, "error") != name {
			t.Errorf("token endpoint: %d %q %s; want 400 with error %s", r.status, r.ctype, r.body, name)
		}
	}
	wantOAuth400(v.postForm(bdTokenPath, bdTokenForm("bdkey1", "wrong")), "invalid_client")

	v.emu.SetFaults(
		emulator.Fault{Path: bdTokenPath, Error: "invalid_client", Times: 1},
		emulator.Fault{Path: bdTPPath, Errcode: 10010102, Times: 1},
		emulator.Fault{Path: bdLegacy, Error: "invalid_grant", Times: 1},
	)
	wantOAuth400(v.postForm(bdTokenPath, bdTokenForm("bdkey1", "bdsecret1")), "invalid_client")
	wantBaiduError(t, v.get(bdTPPath, tp), 10010102, "invalid_grant", "")
	wantBaiduError(t, v.postForm(bdLegacy, bdForm("bdkey1", "bdsecret1", "c")), 10010102, "invalid_grant", "revoked")
}
