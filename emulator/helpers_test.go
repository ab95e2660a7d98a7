package emulator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
)

// Paths under test.
const (
	wxPath     = "/sns/jscode2session"
	wxCompPath = "/sns/component/jscode2session"
	bdPath     = "/oauth/jscode2sessionkey"
	bdLegacy   = "/nalogin/getSessionKeyByCode"
	bdTPPath   = "/rest/2.0/oauth/getsessionkeybycode"

	wxTokenPath  = "/cgi-bin/token"
	wxStablePath = "/cgi-bin/stable_token"
	bdTokenPath  = "/oauth/2.0/token"

	wxCheckPath   = "/wxa/checksession"
	wxResetPath   = "/wxa/resetusersessionkey"
	wxPhonePath   = "/wxa/business/getuserphonenumber"
	bdUnionPath   = "/rest/2.0/smartapp/getunionid"
	bdTPUnionPath = "/rest/2.0/smartapp/unionId/get"
	bdSKPath      = "/rest/2.0/smartapp/getsessionkey"
)

// env is an emulator behind a real HTTP server.
type env struct {
	t     *testing.T
	emu   *emulator.Emulator
	srv   *httptest.Server
	clock *testutil.Clock
}

func newEnv(t *testing.T, cfg emulator.Config) *env {
	t.Helper()
	c := testutil.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	emu := emulator.New(cfg)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return &env{t: t, emu: emu, srv: srv, clock: c}
}

// testApps is a configuration with two WeChat apps, a component-bound
// WeChat app and two Baidu apps.
func testApps() []emulator.App {
	return []emulator.App{
		{Family: "wechat", AppID: "wxapp1", Secret: "wxsecret1"},
		{Family: "wechat", AppID: "wxapp2", Secret: "wxsecret2"},
		{Family: "wechat", AppID: "wxauth1", ComponentAppID: "wxcomp", ThirdPartyToken: "ctoken"},
		{Family: "baidu", AppID: "bdkey1", Secret: "bdsecret1"},
		{Family: "baidu", AppID: "bdkey2", Secret: "bdsecret2"},
		{Family: "baidu", AppID: "bdtp", ThirdPartyToken: "45.tptoken"},
	}
}

func (v *env) login(platform, appid, user string) string {
	v.t.Helper()
	code, err := v.emu.Login(platform, appid, user, "")
	if err != nil {
		v.t.Fatalf("Login(%s, %s, %s): %v", platform, appid, user, err)
	}
	return code
}

// result is what a client observed.
type result struct {
	status int
	ctype  string
	body   []byte
}

// json decodes the body into a map, numbers kept exact.
func (r result) json(t *testing.T) map[string]any {
	t.Helper()
	m := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (r result) num(t *testing.T, field string) int64 {
	t.Helper()
	n, ok := r.json(t)[field].(json.Number)
	if !ok {
		t.Fatalf("body %s has no number %q", r.body, field)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func (r result) str(t *testing.T, field string) string {
	t.Helper()
	s, _ := r.json(t)[field].(string)
	return s
}

func (v *env) do(req *http.Request) result {
	v.t.Helper()
	resp, err := v.srv.Client().Do(req)
	if err != nil {
		v.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatalf("%s %s: reading body: %v", req.Method, req.URL.Path, err)
	}
	return result{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: body}
}

func (v *env) request(method, path string, q url.Values, body io.Reader) *http.Request {
	v.t.Helper()
	u := v.srv.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		v.t.Fatal(err)
	}
	return req
}

func (v *env) get(path string, q url.Values) result {
	v.t.Helper()
	return v.do(v.request(http.MethodGet, path, q, nil))
}

func (v *env) postForm(path string, form url.Values) result {
	v.t.Helper()
	req := v.request(http.MethodPost, path, nil, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return v.do(req)
}

func (v *env) sendJSON(method, path, body string) result {
	v.t.Helper()
	req := v.request(method, path, nil, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return v.do(req)
}

func wxQuery(appid, secret, code string) url.Values {
	return url.Values{"appid": {appid}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
}

func bdForm(clientID, sk, code string) url.Values {
	return url.Values{"client_id": {clientID}, "sk": {sk}, "code": {code}}
}

// wxExchange exchanges a code for wxapp1 of testApps.
func (v *env) wxExchange(code string) result {
	v.t.Helper()
	return v.get(wxPath, wxQuery("wxapp1", "wxsecret1", code))
}

// wantWeChatError checks a WeChat error as WeChat sends it.
func wantWeChatError(t *testing.T, r result, errcode int64) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "text/plain" {
		t.Errorf("status %d, Content-Type %q; want 200 text/plain", r.status, r.ctype)
	}
	if got := r.num(t, "errcode"); got != errcode {
		t.Fatalf("errcode %d, want %d (body %s)", got, errcode, r.body)
	}
	if msg := r.str(t, "errmsg"); !strings.Contains(msg, ", rid: ") {
		t.Errorf("errmsg %q has no rid suffix", msg)
	}
}

// wantWeChatSession checks a WeChat success and returns its fields.
func wantWeChatSession(t *testing.T, r result) (openid, unionid, sessionKey string) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "text/plain" {
		t.Errorf("status %d, Content-Type %q; want 200 text/plain", r.status, r.ctype)
	}
	m := r.json(t)
	if _, ok := m["errcode"]; ok {
		t.Fatalf("want a session, got %s", r.body)
	}
	openid, unionid, sessionKey = r.str(t, "openid"), r.str(t, "unionid"), r.str(t, "session_key")
	wantKey(t, sessionKey, 16)
	if len(openid) != 28 || openid[0] != 'o' || len(unionid) != 28 {
		t.Errorf("openid %q, unionid %q: want 28 characters starting with o", openid, unionid)
	}
	return openid, unionid, sessionKey
}

// wantBaiduError checks an error of Baidu's login exchanges. It comes with
// HTTP 200: Baidu's own SDK reads errno and error only from a 2xx answer.
func wantBaiduError(t *testing.T, r result, errno int64, name, desc string) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Errorf("status %d, Content-Type %q; want 200 application/json", r.status, r.ctype)
	}
	if got := r.num(t, "errno"); got != errno {
		t.Errorf("errno %d, want %d (body %s)", got, errno, r.body)
	}
	if got := r.str(t, "error"); got != name {
		t.Errorf("error %q, want %q", got, name)
	}
	if got := r.str(t, "error_description"); !strings.Contains(got, desc) {
		t.Errorf("error_description %q, want it to contain %q", got, desc)
	}
}

// wantBaiduSession checks a Baidu success and returns its fields.
func wantBaiduSession(t *testing.T, r result) (openid, sessionKey string) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Fatalf("status %d, Content-Type %q, body %s; want 200 application/json", r.status, r.ctype, r.body)
	}
	m := r.json(t)
	if _, ok := m["unionid"]; ok {
		t.Errorf("Baidu's exchange carries no unionid: %s", r.body)
	}
	openid, sessionKey = r.str(t, "openid"), r.str(t, "session_key")
	wantKey(t, sessionKey, 24)
	if len(openid) != 26 || strings.Trim(openid, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != "" {
		t.Errorf("openid %q: want 26 alphanumerics", openid)
	}
	return openid, sessionKey
}

func wantKey(t *testing.T, key string, n int) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != n || len(key) != base64.StdEncoding.EncodedLen(n) {
		t.Errorf("session_key %q: want standard base64 of %d bytes", key, n)
	}
}
