package emulator_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
)

// unionApps: two Baidu apps of one owner, one of another, and two
// third-party authorized apps with their own authorizer tokens.
func unionApps() []emulator.App {
	return []emulator.App{
		{Family: "baidu", AppID: "bdacme1", Secret: "s1", Owner: "acme"},
		{Family: "baidu", AppID: "bdacme2", Secret: "s2", Owner: "acme"},
		{Family: "baidu", AppID: "bdother", Secret: "s3", Owner: "other"},
		{Family: "baidu", AppID: "bdtp1", ThirdPartyToken: "45.tp1", Owner: "acme"},
		{Family: "baidu", AppID: "bdtp2", ThirdPartyToken: "45.tp2"},
		{Family: "wechat", AppID: "wxacme", Secret: "wxs", Owner: "acme"},
	}
}

var unionSecrets = map[string]string{"bdacme1": "s1", "bdacme2": "s2", "bdother": "s3"}

// bdSession logs a user of a unionApps app in (the third-party apps through
// the third-party path) and returns the openid.
func (v *env) bdSession(appid, user string) string {
	v.t.Helper()
	code := v.login("baidu", appid, user)
	var r result
	switch appid {
	case "bdtp1", "bdtp2":
		r = v.get(bdTPPath, url.Values{"access_token": {"45." + appid[2:]}, "code": {code}, "grant_type": {"authorization_code"}})
	default:
		r = v.postForm(bdPath, bdForm(appid, unionSecrets[appid], code))
	}
	openid, _ := wantBaiduSession(v.t, r)
	return openid
}

func (v *env) bdToken(appid string) string {
	v.t.Helper()
	tok := v.postForm(bdTokenPath, bdTokenForm(appid, unionSecrets[appid])).str(v.t, "access_token")
	if tok == "" {
		v.t.Fatalf("no token for %s", appid)
	}
	return tok
}

// wantGateway checks the openapi gateway's token error.
func wantGateway(t *testing.T, r result, code int64) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" || r.num(t, "error_code") != code || r.str(t, "error_msg") == "" {
		t.Fatalf("got %d %q %s; want 200 with error_code %d", r.status, r.ctype, r.body, code)
	}
}

func TestBaiduGetUnionID(t *testing.T) {
	tests := []struct {
		name  string
		setup func(v *env, q, form url.Values) // the user alice of bdacme1 is logged in
		send  string                           // "form" (default: POST, token in the query, openid in the body) or "get"
		errno int64                            // 0 success, 110/111 gateway, else the envelope's errno
	}{
		{name: "success"},
		{name: "success, GET", send: "get"},
		{name: "previous token", setup: func(v *env, q, form url.Values) { v.bdToken("bdacme1") }},
		{name: "openid missing", setup: func(v *env, q, form url.Values) { form.Del("openid") }, errno: 1},
		{name: "unknown openid", setup: func(v *env, q, form url.Values) { form.Set("openid", "nosuchopenid") }, errno: 1},
		{name: "user who never logged in", setup: func(v *env, q, form url.Values) {
			form.Set("openid", v.emu.OpenID("baidu", "bdacme1", "bob"))
		}, errno: 1},
		{name: "openid of another app", setup: func(v *env, q, form url.Values) { form.Set("openid", v.bdSession("bdacme2", "alice")) }, errno: 1},
		{name: "token of another app", setup: func(v *env, q, form url.Values) { q.Set("access_token", v.bdToken("bdacme2")) }, errno: 1},
		{name: "access_token missing", setup: func(v *env, q, form url.Values) { q.Del("access_token") }, errno: 110},
		{name: "unknown token", setup: func(v *env, q, form url.Values) { q.Set("access_token", "24.nope") }, errno: 110},
		{name: "authorizer token", setup: func(v *env, q, form url.Values) { q.Set("access_token", "45.tp1") }, errno: 110},
		{name: "WeChat token", setup: func(v *env, q, form url.Values) {
			tok, _ := wantWeChatToken(v.t, v.classic("wxacme", "wxs"))
			q.Set("access_token", tok)
		}, errno: 110},
		{name: "token expired", setup: func(v *env, q, form url.Values) { v.clock.Advance(30 * 24 * time.Hour) }, errno: 111},
		{name: "token superseded twice", setup: func(v *env, q, form url.Values) { v.bdToken("bdacme1"); v.bdToken("bdacme1") }, errno: 110},
		{name: "token expired by ExpireTokens", setup: func(v *env, q, form url.Values) { v.emu.ExpireTokens("baidu", "bdacme1") }, errno: 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: unionApps()})
			openid := v.bdSession("bdacme1", "alice")
			q := url.Values{"access_token": {v.bdToken("bdacme1")}}
			form := url.Values{"openid": {openid}}
			if tt.setup != nil {
				tt.setup(v, q, form)
			}
			var r result
			if tt.send == "get" {
				for k, vs := range form {
					q[k] = vs
				}
				r = v.get(bdUnionPath, q)
			} else {
				req := v.request(http.MethodPost, bdUnionPath, q, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r = v.do(req)
			}
			switch tt.errno {
			case 110, 111:
				wantGateway(t, r, tt.errno)
				return
			}
			if r.status != http.StatusOK || r.ctype != "application/json" {
				t.Fatalf("got %d %q %s", r.status, r.ctype, r.body)
			}
			if got := r.num(t, "errno"); got != tt.errno {
				t.Fatalf("errno %d, want %d: %s", got, tt.errno, r.body)
			}
			if r.str(t, "request_id") == "" || r.num(t, "timestamp") != v.clock.Now().Unix() || r.str(t, "errmsg") == "" {
				t.Errorf("envelope %s: want errmsg, request_id and timestamp", r.body)
			}
			if tt.errno != 0 {
				if _, ok := r.json(t)["data"]; ok {
					t.Errorf("an error carries data: %s", r.body)
				}
				return
			}
			var got struct {
				Errmsg string `json:"errmsg"`
				Data   struct {
					UnionID string `json:"unionid"`
				} `json:"data"`
			}
			decode(t, r.body, &got)
			if got.Errmsg != "succ" || got.Data.UnionID != v.emu.UnionID("baidu", "bdacme1", "alice") {
				t.Errorf("got %s, want succ and UnionID's %s", r.body, v.emu.UnionID("baidu", "bdacme1", "alice"))
			}
		})
	}
}

// The unionid is the user's across the apps of one owner, own or
// third-party, and differs for another owner.
func TestBaiduUnionIDAcrossApps(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: unionApps()})
	own := func(appid, user string) string {
		t.Helper()
		openid := v.bdSession(appid, user)
		r := v.postForm(bdUnionPath+"?access_token="+url.QueryEscape(v.bdToken(appid)), url.Values{"openid": {openid}})
		if r.num(t, "errno") != 0 {
			t.Fatalf("%s: %s", appid, r.body)
		}
		var got struct {
			Data struct {
				UnionID string `json:"unionid"`
			} `json:"data"`
		}
		decode(t, r.body, &got)
		return got.Data.UnionID
	}
	tp := func(appid, user string) string {
		t.Helper()
		openid := v.bdSession(appid, user)
		r := v.get(bdTPUnionPath, url.Values{"access_token": {"45." + appid[2:]}, "open_id": {openid}})
		if r.num(t, "errno") != 0 {
			t.Fatalf("%s: %s", appid, r.body)
		}
		var got struct {
			Data struct {
				UnionID string `json:"union_id"`
			} `json:"data"`
		}
		decode(t, r.body, &got)
		return got.Data.UnionID
	}
	a1, a2, o, t1, t2 := own("bdacme1", "alice"), own("bdacme2", "alice"), own("bdother", "alice"), tp("bdtp1", "alice"), tp("bdtp2", "alice")
	if v.bdSession("bdacme1", "alice") == v.bdSession("bdacme2", "alice") {
		t.Fatal("openids must differ per app")
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"two apps of one owner", a1, a2, true},
		{"own and third-party app of one owner", a1, t1, true},
		{"another owner", a1, o, false},
		{"the default owner", a1, t2, false},
		{"another user", a1, own("bdacme1", "bob"), false},
		{"UnionID helper", a1, v.emu.UnionID("baidu", "bdacme2", "alice"), true},
	}
	for _, tt := range tests {
		if (tt.a == tt.b) != tt.same || tt.a == "" {
			t.Errorf("%s: %q and %q, want same=%v", tt.name, tt.a, tt.b, tt.same)
		}
	}
}

func TestBaiduThirdPartyUnionID(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(v *env, q url.Values) // alice of bdtp1 is logged in
		method string
		errno  int64 // 0 success, 110 gateway, else the envelope's errno
	}{
		{name: "success"},
		{name: "success, POST", method: http.MethodPost},
		{name: "openid instead of open_id", setup: func(v *env, q url.Values) { q["openid"] = q["open_id"]; q.Del("open_id") }},
		{name: "open_id missing", setup: func(v *env, q url.Values) { q.Del("open_id") }, errno: 40001},
		{name: "unknown open_id", setup: func(v *env, q url.Values) { q.Set("open_id", "nosuchopenid") }, errno: 40001},
		{name: "open_id of another authorizer app", setup: func(v *env, q url.Values) { q.Set("open_id", v.bdSession("bdtp2", "alice")) }, errno: 40001},
		{name: "token of another authorizer app", setup: func(v *env, q url.Values) { q.Set("access_token", "45.tp2") }, errno: 40001},
		{name: "access_token missing", setup: func(v *env, q url.Values) { q.Del("access_token") }, errno: 110},
		{name: "unknown token", setup: func(v *env, q url.Values) { q.Set("access_token", "45.nope") }, errno: 110},
		{name: "the app's own token", setup: func(v *env, q url.Values) { q.Set("access_token", v.bdToken("bdacme1")) }, errno: 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: unionApps()})
			q := url.Values{"access_token": {"45.tp1"}, "open_id": {v.bdSession("bdtp1", "alice")}}
			if tt.setup != nil {
				tt.setup(v, q)
			}
			method := http.MethodGet
			if tt.method != "" {
				method = tt.method
			}
			r := v.do(v.request(method, bdTPUnionPath, q, nil))
			if tt.errno == 110 {
				wantGateway(t, r, 110)
				return
			}
			if r.status != http.StatusOK || r.ctype != "application/json" {
				t.Fatalf("got %d %q %s", r.status, r.ctype, r.body)
			}
			if got := r.num(t, "errno"); got != tt.errno || r.str(t, "msg") == "" {
				t.Fatalf("got %s, want errno %d and a msg", r.body, tt.errno)
			}
			if tt.errno != 0 {
				return
			}
			var got struct {
				Msg  string `json:"msg"`
				Data struct {
					UnionID string `json:"union_id"`
				} `json:"data"`
			}
			decode(t, r.body, &got)
			if got.Msg != "success" || got.Data.UnionID != v.emu.UnionID("baidu", "bdtp1", "alice") {
				t.Errorf("got %s, want success and UnionID's %s", r.body, v.emu.UnionID("baidu", "bdtp1", "alice"))
			}
		})
	}

	t.Run("any token without apps", func(t *testing.T) {
		v := newEnv(t, emulator.Config{})
		code := v.login("baidu", "bdany", "alice")
		openid, _ := wantBaiduSession(t, v.get(bdTPPath, url.Values{"access_token": {"45.whatever"}, "code": {code}, "grant_type": {"authorization_code"}}))
		r := v.get(bdTPUnionPath, url.Values{"access_token": {"45.anything"}, "open_id": {openid}})
		if r.num(t, "errno") != 0 || r.str(t, "msg") != "success" {
			t.Fatalf("got %s", r.body)
		}
	})
}

// Fault rules apply to the new paths, in each path's own error format.
func TestFaultsOnBusinessPaths(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.emu.SetFaults(
		emulator.Fault{Path: wxCheckPath, Errcode: 45011, Times: 1},
		emulator.Fault{Path: wxPhonePath, Errcode: -1, Times: 1},
		emulator.Fault{Path: bdUnionPath, Errcode: 2, Times: 1},
		emulator.Fault{Path: bdTPUnionPath, Error: "busy", Times: 1},
	)
	wantWeChatError(t, v.get(wxCheckPath, nil), 45011)
	wantWeChatError(t, v.sendJSON("POST", wxPhonePath, `{}`), -1)

	r := v.postForm(bdUnionPath, nil)
	if r.status != http.StatusOK || r.num(t, "errno") != 2 || r.str(t, "errmsg") == "" || r.str(t, "request_id") == "" {
		t.Errorf("getunionid fault: %d %s, want the envelope with errno 2", r.status, r.body)
	}
	r = v.get(bdTPUnionPath, nil)
	if r.status != http.StatusOK || r.num(t, "errno") != 1 || r.str(t, "msg") != "busy" {
		t.Errorf("unionId/get fault: %d %s, want errno 1 and msg busy", r.status, r.body)
	}
	v.emu.SetFaults(emulator.Fault{Path: bdUnionPath, Errcode: 111, Times: 1})
	wantGateway(t, v.postForm(bdUnionPath, nil), 111)

	// Spent: the real answers again.
	wantWeChatError(t, v.get(wxCheckPath, nil), 41001)
	wantGateway(t, v.postForm(bdUnionPath, nil), 110)
}

// getsessionkey exchanges a code with the app's own access token instead of
// its secret; its answers are the openapi envelope, with open_id.
func TestBaiduGetSessionKey(t *testing.T) {
	tests := []struct {
		name  string
		setup func(v *env, q url.Values) // q holds a token of bdacme1 and a code of alice for bdacme1
		send  string                     // "query" (default: POST, parameters in the query), "get" or "form" (POST, form body)
		errno int64                      // 0 success, 110/111 gateway, else the envelope's errno
		msg   string                     // part of errmsg, for an envelope error
	}{
		{name: "success"},
		{name: "success, GET", send: "get"},
		{name: "success, form body", send: "form"},
		{name: "previous token", setup: func(v *env, q url.Values) { v.bdToken("bdacme1") }},
		{name: "access_token missing", setup: func(v *env, q url.Values) { q.Del("access_token") }, errno: 110},
		{name: "unknown token", setup: func(v *env, q url.Values) { q.Set("access_token", "24.nope") }, errno: 110},
		{name: "authorizer token", setup: func(v *env, q url.Values) { q.Set("access_token", "45.tp1") }, errno: 110},
		{name: "WeChat token", setup: func(v *env, q url.Values) {
			tok, _ := wantWeChatToken(v.t, v.classic("wxacme", "wxs"))
			q.Set("access_token", tok)
		}, errno: 110},
		// The gateway judges the token before the code, which has expired too.
		{name: "token expired", setup: func(v *env, q url.Values) { v.clock.Advance(30 * 24 * time.Hour) }, errno: 111},
		{name: "token expired by ExpireTokens", setup: func(v *env, q url.Values) { v.emu.ExpireTokens("baidu", "bdacme1") }, errno: 110},
		{name: "code missing", setup: func(v *env, q url.Values) { q.Del("code") }, errno: 10010100, msg: "code"},
		{name: "unknown code", setup: func(v *env, q url.Values) { q.Set("code", "0123456789abcdef0123456789abcdef") },
			errno: 10010102, msg: "Invalid authorization code"},
		{name: "code expired", setup: func(v *env, q url.Values) { v.clock.Advance(10 * time.Minute) },
			errno: 10010102, msg: "Invalid authorization code"},
		{name: "code of another app", setup: func(v *env, q url.Values) { q.Set("code", v.login("baidu", "bdacme2", "alice")) },
			errno: 10010102, msg: "Invalid authorization code"},
		{name: "token of another app", setup: func(v *env, q url.Values) { q.Set("access_token", v.bdToken("bdacme2")) },
			errno: 10010102, msg: "Invalid authorization code"},
		{name: "code used", setup: func(v *env, q url.Values) {
			wantBaiduSession(v.t, v.postForm(bdPath, bdForm("bdacme1", "s1", q.Get("code"))))
		}, errno: 10010102, msg: "revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: unionApps()})
			q := url.Values{"access_token": {v.bdToken("bdacme1")}, "code": {v.login("baidu", "bdacme1", "alice")}}
			if tt.setup != nil {
				tt.setup(v, q)
			}
			var r result
			switch tt.send {
			case "get":
				r = v.get(bdSKPath, q)
			case "form":
				r = v.postForm(bdSKPath, q)
			default:
				r = v.do(v.request(http.MethodPost, bdSKPath, q, nil))
			}
			switch tt.errno {
			case 110, 111:
				wantGateway(t, r, tt.errno)
				return
			}
			if r.status != http.StatusOK || r.ctype != "application/json" {
				t.Fatalf("got %d %q %s", r.status, r.ctype, r.body)
			}
			if got := r.num(t, "errno"); got != tt.errno {
				t.Fatalf("errno %d, want %d: %s", got, tt.errno, r.body)
			}
			if r.str(t, "request_id") == "" {
				t.Errorf("envelope %s: want a request_id", r.body)
			}
			if tt.errno != 0 {
				if msg := r.str(t, "errmsg"); !strings.Contains(msg, tt.msg) {
					t.Errorf("errmsg %q, want it to contain %q", msg, tt.msg)
				}
				if _, ok := r.json(t)["data"]; ok {
					t.Errorf("an error carries data: %s", r.body)
				}
				if c := q.Get("code"); c != "" && strings.Contains(string(r.body), c) {
					t.Errorf("the answer echoes the code: %s", r.body)
				}
				return
			}
			var got struct {
				Errmsg string         `json:"errmsg"`
				Data   map[string]any `json:"data"`
			}
			decode(t, r.body, &got)
			key, _ := v.emu.SessionKey("baidu", "bdacme1", "alice")
			if got.Errmsg != "succ" || len(got.Data) != 2 || got.Data["open_id"] != v.emu.OpenID("baidu", "bdacme1", "alice") ||
				got.Data["session_key"] != key {
				t.Fatalf("got %s; want succ, data.open_id %s and the session key alice holds now", r.body, v.emu.OpenID("baidu", "bdacme1", "alice"))
			}
			wantKey(t, key, 24)
		})
	}

	t.Run("a refused token does not consume the code", func(t *testing.T) {
		v := newEnv(t, emulator.Config{Apps: unionApps()})
		code := v.login("baidu", "bdacme1", "alice")
		wantGateway(t, v.postForm(bdSKPath, url.Values{"access_token": {"24.nope"}, "code": {code}}), 110)
		r := v.postForm(bdSKPath, url.Values{"access_token": {v.bdToken("bdacme1")}, "code": {code}})
		if r.num(t, "errno") != 0 {
			t.Fatalf("got %s", r.body)
		}
		// Spent now, on every exchange path of the app.
		wantBaiduError(t, v.postForm(bdPath, bdForm("bdacme1", "s1", code)), 10010102, "invalid_grant", "revoked")
	})

	t.Run("stats and faults", func(t *testing.T) {
		v := newEnv(t, emulator.Config{})
		v.emu.SetFaults(emulator.Fault{Path: bdSKPath, Errcode: 2, Times: 1})
		r := v.postForm(bdSKPath, nil)
		if r.status != http.StatusOK || r.num(t, "errno") != 2 || r.str(t, "errmsg") == "" || r.str(t, "request_id") == "" {
			t.Errorf("fault: %d %s, want the envelope with errno 2", r.status, r.body)
		}
		wantGateway(t, v.postForm(bdSKPath, nil), 110)
		if n := v.emu.Stats()[bdSKPath]; n != 2 {
			t.Errorf("stats: %d calls, want 2", n)
		}
	})
}
