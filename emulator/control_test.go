package emulator_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/emulator"
)

func TestControlLogin(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	r := v.sendJSON("POST", "/_emulator/login", `{"platform":"wechat","appid":"wxapp1","user":"alice"}`)
	if r.status != 200 || r.ctype != "application/json" {
		t.Fatalf("got %d %q %s", r.status, r.ctype, r.body)
	}
	code := r.str(t, "code")
	if len(code) < 16 || strings.ContainsAny(code, "+/=%&?#. ") {
		t.Errorf("code %q: want a long, URL-safe string", code)
	}
	wantWeChatSession(t, v.wxExchange(code))

	r = v.sendJSON("POST", "/_emulator/login", `{"platform":"baidu","appid":"bdkey1","user":"alice"}`)
	wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey1", "bdsecret1", r.str(t, "code"))))
}

func TestControlErrors(t *testing.T) {
	big := `{"platform":"wechat","appid":"wxapp1","user":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		error                    string
	}{
		{"unknown field", "POST", "/_emulator/login", `{"platform":"wechat","appid":"wxapp1","user":"a","usr":"b"}`, 400, "invalid_request"},
		{"oversized body", "POST", "/_emulator/login", big, 413, "request_too_large"},
		{"trailing data", "POST", "/_emulator/login", `{"platform":"wechat","appid":"wxapp1","user":"a"} {}`, 400, "invalid_request"},
		{"empty body", "POST", "/_emulator/login", ``, 400, "invalid_request"},
		{"malformed", "POST", "/_emulator/login", `{"platform":`, 400, "invalid_request"},
		{"wrong type", "POST", "/_emulator/login", `{"platform":"wechat","appid":1,"user":"a"}`, 400, "invalid_request"},
		{"unknown platform", "POST", "/_emulator/login", `{"platform":"feishu","appid":"x","user":"a"}`, 400, "invalid_request"},
		{"user missing", "POST", "/_emulator/login", `{"platform":"wechat","appid":"wxapp1"}`, 400, "invalid_request"},
		{"appid missing", "POST", "/_emulator/login", `{"platform":"wechat","user":"a"}`, 400, "invalid_request"},
		{"unknown app", "POST", "/_emulator/login", `{"platform":"wechat","appid":"wxnope","user":"a"}`, 400, "unknown_app"},
		{"app of another platform", "POST", "/_emulator/login", `{"platform":"baidu","appid":"wxapp1","user":"a"}`, 400, "unknown_app"},
		{"login with GET", "GET", "/_emulator/login", ``, 405, "method_not_allowed"},
		{"fault unknown field", "PUT", "/_emulator/faults", `{"errcode":-1,"eror_rate":0.5}`, 400, "invalid_request"},
		{"fault unknown path", "PUT", "/_emulator/faults", `{"path":"/sns/jscode2sesion","errcode":-1}`, 400, "invalid_request"},
		{"fault on control path", "PUT", "/_emulator/faults", `{"path":"/_emulator/login","errcode":-1}`, 400, "invalid_request"},
		{"fault rate over 1", "PUT", "/_emulator/faults", `{"errcode":-1,"error_rate":1.5}`, 400, "invalid_request"},
		{"fault negative latency", "PUT", "/_emulator/faults", `{"latency_ms":-5}`, 400, "invalid_request"},
		{"fault with no effect", "PUT", "/_emulator/faults", `{"path":"/sns/jscode2session","times":2}`, 400, "invalid_request"},
		{"fault two effects", "PUT", "/_emulator/faults", `{"drop":true,"empty":true}`, 400, "invalid_request"},
		{"fault status out of range", "PUT", "/_emulator/faults", `{"status":42}`, 400, "invalid_request"},
		{"fault string latency", "PUT", "/_emulator/faults", `{"latency_ms":"50"}`, 400, "invalid_request"},
		{"fault array with a bad rule", "PUT", "/_emulator/faults", `[{"errcode":-1},{"errcode":-1,"bogus":1}]`, 400, "invalid_request"},
		{"fault oversized", "PUT", "/_emulator/faults", `[` + strings.Repeat(`{"errcode":-1},`, 5000) + `{"errcode":-1}]`, 413, "request_too_large"},
		{"faults POST", "POST", "/_emulator/faults", `{}`, 405, "method_not_allowed"},
		{"stats POST", "POST", "/_emulator/stats", ``, 405, "method_not_allowed"},
		{"userdata before any login", "POST", "/_emulator/userdata", `{"platform":"wechat","appid":"wxapp1","user":"a","kind":"phone"}`, 409, "no_session"},
		{"userdata unknown kind", "POST", "/_emulator/userdata", `{"platform":"wechat","appid":"wxapp1","user":"a","kind":"email"}`, 400, "invalid_request"},
		{"userdata kind missing", "POST", "/_emulator/userdata", `{"platform":"baidu","appid":"bdkey1","user":"a"}`, 400, "invalid_request"},
		{"userdata unknown platform", "POST", "/_emulator/userdata", `{"platform":"feishu","appid":"x","user":"a","kind":"phone"}`, 400, "invalid_request"},
		{"userdata unknown app", "POST", "/_emulator/userdata", `{"platform":"wechat","appid":"wxnope","user":"a","kind":"phone"}`, 400, "unknown_app"},
		{"userdata user missing", "POST", "/_emulator/userdata", `{"platform":"wechat","appid":"wxapp1","kind":"phone"}`, 400, "invalid_request"},
		{"userdata unknown field", "POST", "/_emulator/userdata", `{"platform":"wechat","appid":"wxapp1","user":"a","kind":"phone","x":1}`, 400, "invalid_request"},
		{"userdata GET", "GET", "/_emulator/userdata", ``, 405, "method_not_allowed"},
		{"phonecode unknown app", "POST", "/_emulator/phonecode", `{"appid":"wxnope","user":"a"}`, 400, "unknown_app"},
		{"phonecode Baidu app", "POST", "/_emulator/phonecode", `{"appid":"bdkey1","user":"a"}`, 400, "unknown_app"},
		{"phonecode platform baidu", "POST", "/_emulator/phonecode", `{"platform":"baidu","appid":"bdkey1","user":"a"}`, 400, "invalid_request"},
		{"phonecode user missing", "POST", "/_emulator/phonecode", `{"appid":"wxapp1"}`, 400, "invalid_request"},
		{"phonecode appid missing", "POST", "/_emulator/phonecode", `{"user":"a"}`, 400, "invalid_request"},
		{"phonecode unknown field", "POST", "/_emulator/phonecode", `{"appid":"wxapp1","user":"a","kind":"phone"}`, 400, "invalid_request"},
		{"phonecode GET", "GET", "/_emulator/phonecode", ``, 405, "method_not_allowed"},
		{"unknown control path", "GET", "/_emulator/nothing", ``, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			r := v.sendJSON(tt.method, tt.path, tt.body)
			if r.status != tt.status || r.ctype != "application/json" {
				t.Fatalf("got %d %q %s; want %d application/json", r.status, r.ctype, r.body, tt.status)
			}
			if got := r.str(t, "error"); got != tt.error || r.str(t, "message") == "" {
				t.Errorf("body %s; want error %q and a message", r.body, tt.error)
			}
			// A refused fault rule changes nothing.
			if tt.path == "/_emulator/faults" {
				wantWeChatSession(t, v.wxExchange(v.login("wechat", "wxapp1", "alice")))
			}
		})
	}
}

func TestControlFaults(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	for _, body := range []string{
		`{"path":"/sns/jscode2session","errcode":-1,"times":3}`,
		`[{"path":"/oauth/jscode2sessionkey","error":"invalid_grant"},{"latency_ms":1}]`,
	} {
		if r := v.sendJSON("PUT", "/_emulator/faults", body); r.status != http.StatusNoContent {
			t.Fatalf("PUT %s: %d %s", body, r.status, r.body)
		}
	}
	wantWeChatError(t, v.wxExchange("c"), -1)
	wantBaiduError(t, v.postForm(bdPath, bdForm("k", "s", "c")), 10010102, "invalid_grant", "revoked")

	r := v.get("/_emulator/faults", nil)
	for _, want := range []string{`"path":"/sns/jscode2session","errcode":-1,"times":2`, `"latency_ms":1`, `"error":"invalid_grant"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("GET /_emulator/faults = %s, want it to contain %s", r.body, want)
		}
	}

	if r := v.sendJSON("DELETE", "/_emulator/faults", ""); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	wantWeChatSession(t, v.wxExchange(v.login("wechat", "wxapp1", "alice")))
}

// An unknown path answers in the error shape of the platform it looks like,
// so that a client pointed at a wrong path reads an error it knows rather
// than Go's text 404.
func TestUnknownPath(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	before := v.emu.Stats()
	// WeChat, and anything that is not Baidu's or the control API's:
	// 40066 "invalid url", with HTTP 200 like every WeChat error.
	for _, p := range []string{"/", "/sns/jscode2session/", "/sns/nothing", "/cgi-bin/nothing", "/wxa/nothing",
		"/wxa/business/getuserphonenumber/x", "/datacube/getweanalysisappiddailysummarytrend"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := v.do(v.request(method, p, nil, nil))
			wantWeChatError(t, r, 40066)
			if msg := r.str(t, "errmsg"); !strings.HasPrefix(msg, "invalid url, rid: ") {
				t.Errorf("%s %s: errmsg %q", method, p, msg)
			}
		}
	}
	// Baidu's hosts: the openapi gateway's error_code 3, "Unsupported
	// openapi method", with HTTP 200 like its other gateway errors.
	for _, p := range []string{"/oauth/nothing", "/oauth/2.0/authorize", "/nalogin/nothing", "/rest/2.0/smartapp/nothing",
		"/rest/2.0/smartapp/getsessionkey/"} {
		r := v.postForm(p, nil)
		if r.status != http.StatusOK || r.ctype != "application/json" || r.num(t, "error_code") != 3 ||
			r.str(t, "error_msg") != "Unsupported openapi method" {
			t.Errorf("%s: %d %q %s; want 200 with error_code 3", p, r.status, r.ctype, r.body)
		}
	}
	// The control API: its own {"error","message"} with 404.
	for _, p := range []string{"/_emulator", "/_emulator/", "/_emulator/nothing"} {
		r := v.get(p, nil)
		if r.status != http.StatusNotFound || r.ctype != "application/json" || r.str(t, "error") != "not_found" || r.str(t, "message") == "" {
			t.Errorf("%s: %d %q %s; want 404 with error not_found", p, r.status, r.ctype, r.body)
		}
	}
	if after := v.emu.Stats(); !maps.Equal(after, before) {
		t.Errorf("stats changed by unknown paths: %v, then %v", before, after)
	}
}
