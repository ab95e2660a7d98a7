package emulator_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
)

// Douyin paths under test.
const (
	dyPath      = "/api/apps/v2/jscode2session"
	dyTokenPath = "/api/apps/v2/token"
	dyPhonePath = "/api/apps/v1/get_phonenumber_info/"
)

// dyKey reads a PKCS #8 PEM key from testdata.
func dyKey(t *testing.T, file string) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// dyApps is testApps with three Douyin apps: two of one owner, with
// public keys of 2048 and 1024 bits, and one of another owner without a
// key.
func dyApps(t *testing.T) ([]emulator.App, *rsa.PrivateKey, *rsa.PrivateKey) {
	k1, k2 := dyKey(t, "douyin_key.pem"), dyKey(t, "douyin_key_1024.pem")
	return append(testApps(),
		emulator.App{Family: "douyin", AppID: "ttapp1", Secret: "dysecret1", Owner: "acme", RSAPublicKey: &k1.PublicKey},
		emulator.App{Family: "douyin", AppID: "ttapp2", Secret: "dysecret2", Owner: "acme", RSAPublicKey: &k2.PublicKey},
		emulator.App{Family: "douyin", AppID: "ttother", Secret: "dysecret3", Owner: "globex"},
	), k1, k2
}

var dySecrets = map[string]string{"ttapp1": "dysecret1", "ttapp2": "dysecret2", "ttother": "dysecret3"}

func (v *env) dyLogin(appid, user string, anonymous bool) (code, anon string) {
	v.t.Helper()
	code, anon, err := v.emu.LoginDouyin(appid, user, anonymous)
	if err != nil {
		v.t.Fatal(err)
	}
	return code, anon
}

// dyExchange posts to jscode2session, sending only the codes given.
func (v *env) dyExchange(appid, code, anon string) result {
	v.t.Helper()
	body := map[string]string{"appid": appid, "secret": dySecrets[appid]}
	if code != "" {
		body["code"] = code
	}
	if anon != "" {
		body["anonymous_code"] = anon
	}
	b, _ := json.Marshal(body)
	return v.sendJSON(http.MethodPost, dyPath, string(b))
}

// Douyin's shapes: log ids (China time and 20 hex digits), openids,
// unionids.
func isLogID(s string) bool  { return regexp.MustCompile(`^20\d{12}[0-9A-F]{20}$`).MatchString(s) }
func isOpenID(s string) bool { return regexp.MustCompile(`^_000[A-Za-z0-9_-]{32}$`).MatchString(s) }
func isUnionID(s string) bool {
	return regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s)
}

// wantDouyinError checks an error as Douyin's mini-app APIs send it: HTTP
// 200, an integer err_no, err_tips and log_id; data only on the token path.
func wantDouyinError(t *testing.T, r result, errNo int64, withData bool) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Errorf("status %d, Content-Type %q; want 200 application/json", r.status, r.ctype)
	}
	m := r.json(t)
	if got := r.num(t, "err_no"); got != errNo {
		t.Fatalf("err_no %d, want %d (body %s)", got, errNo, r.body)
	}
	if tips, ok := m["err_tips"].(string); !ok || tips == "" {
		t.Errorf("err_tips missing from %s", r.body)
	}
	if !isLogID(r.str(t, "log_id")) {
		t.Errorf("log_id %q", r.str(t, "log_id"))
	}
	if _, ok := m["data"]; ok != withData {
		t.Errorf("data present: %v, want %v (body %s)", ok, withData, r.body)
	}
}

// dySession is a successful exchange's data.
type dySession struct {
	SessionKey, OpenID, AnonymousOpenID, UnionID string
}

// wantDouyinSession checks a success and returns its data: every key
// present, strings all.
func wantDouyinSession(t *testing.T, r result) dySession {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Fatalf("status %d, Content-Type %q, body %s; want 200 application/json", r.status, r.ctype, r.body)
	}
	if r.num(t, "err_no") != 0 || r.str(t, "err_tips") != "success" || !isLogID(r.str(t, "log_id")) {
		t.Fatalf("want a success, got %s", r.body)
	}
	data, ok := r.json(t)["data"].(map[string]any)
	if !ok {
		t.Fatalf("no data in %s", r.body)
	}
	for _, k := range []string{"session_key", "openid", "anonymous_openid", "unionid", "dopenid"} {
		if _, ok := data[k].(string); !ok {
			t.Fatalf("data.%s is not a string in %s", k, r.body)
		}
	}
	if len(data) != 5 || data["dopenid"] != "" {
		t.Errorf("data %v", data)
	}
	s := dySession{data["session_key"].(string), data["openid"].(string), data["anonymous_openid"].(string), data["unionid"].(string)}
	wantKey(t, s.SessionKey, 16)
	if s.OpenID != "" && !isOpenID(s.OpenID) || s.AnonymousOpenID != "" && !isOpenID(s.AnonymousOpenID) {
		t.Errorf("ids %q %q: want _000 and 32 base64url characters", s.OpenID, s.AnonymousOpenID)
	}
	if s.UnionID != "" && !isUnionID(s.UnionID) {
		t.Errorf("unionid %q: want a UUID", s.UnionID)
	}
	return s
}

func TestDouyinExchange(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})

	code, anon := v.dyLogin("ttapp1", "alice", false)
	if code == "" || anon == "" || code == anon {
		t.Fatalf("codes %q %q", code, anon)
	}
	s := wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))
	if s.OpenID != v.emu.OpenID("douyin", "ttapp1", "alice") || s.AnonymousOpenID != "" ||
		s.UnionID != v.emu.UnionID("douyin", "ttapp1", "alice") || s.UnionID == "" {
		t.Fatalf("session %+v", s)
	}
	if key, _ := v.emu.SessionKey("douyin", "ttapp1", "alice"); key != s.SessionKey {
		t.Fatal("the user's session key is not the one answered")
	}
	// Single use.
	wantDouyinError(t, v.dyExchange("ttapp1", code, ""), 40018, false)

	// Unionids are per owner; openids per app.
	other, _ := v.dyLogin("ttapp2", "alice", false)
	s2 := wantDouyinSession(t, v.dyExchange("ttapp2", other, ""))
	if s2.UnionID != s.UnionID || s2.OpenID == s.OpenID {
		t.Fatalf("ttapp2 %+v, ttapp1 %+v", s2, s)
	}
	c3, _ := v.dyLogin("ttother", "alice", false)
	if s3 := wantDouyinSession(t, v.dyExchange("ttother", c3, "")); s3.UnionID == s.UnionID {
		t.Fatal("another owner's app shares the unionid")
	}
	if v.emu.OpenID("douyin", "ttapp1", "alice") == v.emu.OpenID("wechat", "ttapp1", "alice") {
		t.Fatal("Douyin and WeChat openids coincide")
	}
}

func TestDouyinAnonymous(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})

	code, anon := v.dyLogin("ttapp1", "bob", true)
	if code != "" || anon == "" {
		t.Fatalf("anonymous login gave %q %q", code, anon)
	}
	s := wantDouyinSession(t, v.dyExchange("ttapp1", "", anon))
	if s.OpenID != "" || s.UnionID != "" || s.AnonymousOpenID != v.emu.AnonymousOpenID("ttapp1", "bob") {
		t.Fatalf("session %+v", s)
	}
	if s.AnonymousOpenID == v.emu.OpenID("douyin", "ttapp1", "bob") || s.AnonymousOpenID == v.emu.AnonymousOpenID("ttapp2", "bob") ||
		v.emu.AnonymousOpenID("ttapp1", "bob") != s.AnonymousOpenID {
		t.Fatal("anonymous_openid must be stable per app and user, and not the openid")
	}
	wantDouyinError(t, v.dyExchange("ttapp1", "", anon), 40019, false)

	// A logged-in user's two codes together give both ids and one key.
	code, anon = v.dyLogin("ttapp1", "carol", false)
	s = wantDouyinSession(t, v.dyExchange("ttapp1", code, anon))
	if s.OpenID != v.emu.OpenID("douyin", "ttapp1", "carol") || s.AnonymousOpenID != v.emu.AnonymousOpenID("ttapp1", "carol") ||
		s.UnionID == "" {
		t.Fatalf("session %+v", s)
	}
	if key, _ := v.emu.SessionKey("douyin", "ttapp1", "carol"); key != s.SessionKey {
		t.Fatal("the user's session key is not the one answered")
	}
}

// Neither kind of code passes for the other, nor for another app's or
// platform's; a request one of whose codes is refused spends neither.
func TestDouyinBadCodes(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	code, anon := v.dyLogin("ttapp1", "alice", false)
	wx := v.login("wechat", "wxapp1", "alice")
	phone, err := v.emu.DouyinPhoneCode("ttapp1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	other, otherAnon := v.dyLogin("ttapp2", "alice", false)
	for name, tc := range map[string]struct {
		code, anon string
		errNo      int64
	}{
		"unknown code":                {"never-minted", "", 40018},
		"anonymous code as a code":    {anon, "", 40018},
		"WeChat code":                 {wx, "", 40018},
		"phone code":                  {phone, "", 40018},
		"another app's code":          {other, "", 40018},
		"code as an anonymous code":   {"", code, 40019},
		"another app's anonymous":     {"", otherAnon, 40019},
		"good code, bad anonymous":    {code, "never-minted", 40019},
		"bad code, good anonymous":    {"never-minted", anon, 40018},
		"unknown anonymous code only": {"", "never-minted", 40019},
	} {
		t.Run(name, func(t *testing.T) {
			wantDouyinError(t, v.dyExchange("ttapp1", tc.code, tc.anon), tc.errNo, false)
		})
	}
	// Nothing above spent alice's codes.
	wantDouyinSession(t, v.dyExchange("ttapp1", code, anon))

	// Codes live 5 minutes.
	code, anon = v.dyLogin("ttapp1", "alice", false)
	v.clock.Advance(5*time.Minute - time.Second)
	wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))
	v.clock.Advance(time.Second)
	wantDouyinError(t, v.dyExchange("ttapp1", "", anon), 40019, false)
}

func TestDouyinCredentialErrors(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	code, _ := v.dyLogin("ttapp1", "alice", false)
	for name, tc := range map[string]struct {
		method, body string
		errNo        int64
	}{
		"unknown appid":  {"POST", `{"appid":"ttnope","secret":"dysecret1","code":"` + code + `"}`, 40015},
		"wrong secret":   {"POST", `{"appid":"ttapp1","secret":"wrong","code":"` + code + `"}`, 40017},
		"another secret": {"POST", `{"appid":"ttapp1","secret":"dysecret2","code":"` + code + `"}`, 40017},
		"no secret":      {"POST", `{"appid":"ttapp1","code":"` + code + `"}`, 40014},
		"no appid":       {"POST", `{"secret":"dysecret1","code":"` + code + `"}`, 40014},
		"no code":        {"POST", `{"appid":"ttapp1","secret":"dysecret1"}`, 40014},
		"not JSON":       {"POST", `appid=ttapp1`, 40014},
		"GET":            {"GET", ``, 40014},
	} {
		t.Run(name, func(t *testing.T) {
			wantDouyinError(t, v.sendJSON(tc.method, dyPath, tc.body), tc.errNo, false)
		})
	}
	// None of it spent the code.
	wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))
}

// The session key given at login is what the exchange answers.
func TestDouyinGivenSessionKey(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	r := v.sendJSON(http.MethodPost, "/_emulator/login",
		`{"platform":"douyin","appid":"tt1","user":"alice","session_key":"jsW5Ko6bDi+UeE8df6DIfw=="}`)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	body := fmt.Sprintf(`{"appid":"tt1","secret":"any","code":%q,"anonymous_code":%q}`, r.str(t, "code"), r.str(t, "anonymous_code"))
	if s := wantDouyinSession(t, v.sendJSON(http.MethodPost, dyPath, body)); s.SessionKey != "jsW5Ko6bDi+UeE8df6DIfw==" {
		t.Fatalf("session key %q", s.SessionKey)
	}
}

// With open codes, a code and an anonymous code of "<user>.<anything>" are
// each accepted once.
func TestDouyinOpenCodes(t *testing.T) {
	v := newEnv(t, emulator.Config{OpenCodes: true})
	body := `{"appid":"tt1","secret":"s","code":"dave.1","anonymous_code":"dave.2"}`
	s := wantDouyinSession(t, v.sendJSON(http.MethodPost, dyPath, body))
	if s.OpenID != v.emu.OpenID("douyin", "tt1", "dave") || s.AnonymousOpenID != v.emu.AnonymousOpenID("tt1", "dave") {
		t.Fatalf("session %+v", s)
	}
	wantDouyinError(t, v.sendJSON(http.MethodPost, dyPath, body), 40018, false)
	// A refused anonymous code gives the open code back.
	wantDouyinError(t, v.sendJSON(http.MethodPost, dyPath, `{"appid":"tt1","secret":"s","code":"erin.1","anonymous_code":"dave.2"}`), 40019, false)
	wantDouyinSession(t, v.sendJSON(http.MethodPost, dyPath, `{"appid":"tt1","secret":"s","code":"erin.1"}`))
}

func TestDouyinControlLogin(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	r := v.sendJSON(http.MethodPost, "/_emulator/login", `{"platform":"douyin","appid":"ttapp1","user":"alice"}`)
	m := r.json(t)
	if r.status != 200 || len(m) != 2 || r.str(t, "code") == "" || r.str(t, "anonymous_code") == "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	r = v.sendJSON(http.MethodPost, "/_emulator/login", `{"platform":"douyin","appid":"ttapp1","user":"alice","anonymous":true}`)
	m = r.json(t)
	if r.status != 200 || len(m) != 2 || m["anonymous"] != true || r.str(t, "anonymous_code") == "" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	s := wantDouyinSession(t, v.dyExchange("ttapp1", "", r.str(t, "anonymous_code")))
	if s.AnonymousOpenID != v.emu.AnonymousOpenID("ttapp1", "alice") {
		t.Fatalf("session %+v", s)
	}
	for _, bad := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"platform":"wechat","appid":"wxapp1","user":"alice","anonymous":true}`, 400, "invalid_request"},
		{`{"platform":"douyin","appid":"ttnope","user":"alice"}`, 400, "unknown_app"},
		{`{"platform":"douyin","appid":"ttapp1"}`, 400, "invalid_request"},
		{`{"platform":"douyin","appid":"ttapp1","user":"a","session_key":"c2hvcnQ="}`, 400, "invalid_request"},
	} {
		r := v.sendJSON(http.MethodPost, "/_emulator/login", bad.body)
		if r.status != bad.status || r.str(t, "error") != bad.code {
			t.Errorf("%s: %d %s", bad.body, r.status, r.body)
		}
	}
	// Go's Login mints a Douyin login code, which exchanges alone.
	code, err := v.emu.Login("douyin", "ttapp1", "frank", "")
	if err != nil {
		t.Fatal(err)
	}
	wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))
}

func TestDouyinStats(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	v.dyExchange("tt1", "x", "")
	st := v.emu.Stats()
	if st[dyPath] != 1 || !strings.Contains(fmt.Sprint(st), dyTokenPath) || !strings.Contains(fmt.Sprint(st), dyPhonePath) {
		t.Fatalf("stats %v", st)
	}
}
