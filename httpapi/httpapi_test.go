package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/metrics"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/memory"
)

const (
	wxAppID  = "wx0123456789abcdef"
	wxSecret = "wechat-app-secret-1c9e"
	bdAppKey = "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"
	bdSecret = "baidu-app-secret-77aa"
)

// switchStore fails the calls below with its error while one is set, and
// counts session reads.
type switchStore struct {
	store.Store
	mu    sync.Mutex
	fail  error
	reads atomic.Int64 // SessionByAccess and SessionForLogout calls
}

// set makes the store unavailable, or answer again.
func (s *switchStore) set(down bool) {
	if down {
		s.setErr(fmt.Errorf("test: %w", store.ErrUnavailable))
	} else {
		s.setErr(nil)
	}
}

func (s *switchStore) setErr(err error) { s.mu.Lock(); s.fail = err; s.mu.Unlock() }
func (s *switchStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}
func (s *switchStore) SessionByAccess(ctx context.Context, h []byte) (store.Session, error) {
	s.reads.Add(1)
	if err := s.err(); err != nil {
		return store.Session{}, err
	}
	return s.Store.SessionByAccess(ctx, h)
}
func (s *switchStore) SessionForLogout(ctx context.Context, h []byte) (store.Session, error) {
	s.reads.Add(1)
	if err := s.err(); err != nil {
		return store.Session{}, err
	}
	return s.Store.SessionForLogout(ctx, h)
}
func (s *switchStore) SessionByRefresh(ctx context.Context, h []byte) (store.Session, error) {
	if err := s.err(); err != nil {
		return store.Session{}, err
	}
	return s.Store.SessionByRefresh(ctx, h)
}
func (s *switchStore) GetCode(ctx context.Context, h []byte, now time.Time) (store.ExchangedCode, error) {
	if err := s.err(); err != nil {
		return store.ExchangedCode{}, err
	}
	return s.Store.GetCode(ctx, h, now)
}
func (s *switchStore) Ping(ctx context.Context) error {
	if err := s.err(); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

type fixture struct {
	t     *testing.T
	em    *emulator.Emulator
	emURL string
	api   *httptest.Server
	logs  *testutil.Buffer
	store *switchStore
	// every response body seen, for the secret scan
	mu        sync.Mutex
	responses []string
}

func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureWith(t, nil) }

// newFixtureWith lets edit change the handler's configuration (limits,
// metrics) before the handler is built.
func newFixtureWith(t *testing.T, edit func(*httpapi.Config)) *fixture {
	t.Helper()
	f := &fixture{t: t, logs: &testutil.Buffer{}, store: &switchStore{Store: memory.New()}}
	f.em = emulator.New(emulator.Config{Apps: []emulator.App{
		{Family: "wechat", AppID: wxAppID, Secret: wxSecret},
		{Family: "baidu", AppID: bdAppKey, Secret: bdSecret},
	}})
	emSrv := httptest.NewServer(f.em)
	t.Cleanup(emSrv.Close)
	f.emURL = emSrv.URL
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	wx, _ := wechat.New(wechat.Config{AppID: wxAppID, Secret: secret.New(wxSecret), Endpoint: emSrv.URL, HTTP: hc})
	wxBad, _ := wechat.New(wechat.Config{AppID: wxAppID, Secret: secret.New("not-the-secret"), Endpoint: emSrv.URL, HTTP: hc})
	bd, _ := baidu.New(baidu.Config{AppKey: bdAppKey, AppSecret: secret.New(bdSecret), Endpoint: emSrv.URL, HTTP: hc})
	keys, _ := keyring.New(nil, bytes.Repeat([]byte{9}, 32))
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	policy := session.DefaultPolicy
	policy.PlatformTimeout = 500 * time.Millisecond
	svc, err := session.New(session.Config{Store: f.store, Keys: keys, Policy: policy, Logger: log, Apps: []session.App{
		{Name: "shop-wechat", Family: "wechat", AppID: wxAppID, Client: wx, CodeTTL: 5 * time.Minute, UserdataMaxAge: 24 * time.Hour},
		{Name: "shop-wechat-misconfigured", Family: "wechat", AppID: wxAppID, Client: wxBad, CodeTTL: 5 * time.Minute},
		{Name: "shop-baidu", Family: "baidu", AppID: bdAppKey, Client: bd, CodeTTL: 10 * time.Minute},
		// The same mini program under another name, whose unionids
		// business clients may see.
		{Name: "shop-wechat-open", Family: "wechat", AppID: wxAppID, Client: wx, CodeTTL: 5 * time.Minute, ExposeUnionID: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Sessions: svc, Logger: log}
	if edit != nil {
		edit(&cfg)
	}
	f.api = httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(f.api.Close)
	return f
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(method, path, auth, body string) response {
	f.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if auth != "" {
		h.Set("Authorization", "Bearer "+auth)
	}
	return f.doHeader(method, path, h, body)
}

// doHeader sends exactly the headers h.
func (f *fixture) doHeader(method, path string, h http.Header, body string) response {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.api.URL+path, strings.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.body)
	}
	f.mu.Lock()
	f.responses = append(f.responses, string(raw)+" "+strings.Join(resp.Header.Values("Retry-After"), ","))
	f.mu.Unlock()
	return r
}

func (f *fixture) mint(plat, appid, user string) string {
	code, err := f.em.Login(plat, appid, user, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return code
}

func (f *fixture) login(app, code string) response {
	f.t.Helper()
	b, _ := json.Marshal(map[string]string{"app": app, "code": code})
	return f.do("POST", "/v1/login", "", string(b))
}

func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.body["error"] != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, code)
	}
	if msg, _ := r.body["message"].(string); msg == "" || len(r.body) != 2 {
		t.Fatalf("error body must be {error, message}: %s", r.raw)
	}
}

func TestFlow(t *testing.T) {
	f := newFixture(t)
	r := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice"))
	if r.status != 200 || r.body["token_type"] != "Bearer" || r.body["expires_in"] != float64(7200) ||
		r.body["refresh_expires_in"] != float64(2592000) || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("login: %d %s %v\n%s", r.status, r.raw, r.header, f.logs.String())
	}
	tok := r.tokens(t)
	user := tok.User
	if !*user.Created || user.OpenID != f.em.OpenID("wechat", wxAppID, "alice") || user.UnionID == "" {
		t.Fatalf("user in %s", r.raw)
	}
	access, refresh := tok.AccessToken, tok.RefreshToken
	if !strings.HasPrefix(access, "mpa_") || !strings.HasPrefix(refresh, "mpr_") {
		t.Fatalf("tokens %q %q", access, refresh)
	}
	s := f.do("GET", "/v1/session", access, "")
	if exp, _ := s.body["expires_in"].(float64); s.status != 200 || s.body["active"] != true || s.body["app"] != "shop-wechat" || exp < 7190 || exp > 7200 {
		t.Fatalf("session: %d %s", s.status, s.raw)
	}
	var sess struct {
		User replyUser `json:"user"`
	}
	s.decode(t, &sess)
	if sess.User.ID != user.ID || sess.User.OpenID != user.OpenID {
		t.Fatalf("session user in %s", s.raw)
	}
	// Baidu gives no unionid: the field is left out.
	rb := f.login("shop-baidu", f.mint("baidu", bdAppKey, "bob"))
	if rb.status != 200 || strings.Contains(rb.raw, "unionid") {
		t.Fatalf("baidu login: %d %s", rb.status, rb.raw)
	}

	t2 := f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`)
	if t2.status != 200 || t2.body["access_token"] == access {
		t.Fatalf("refresh: %d %s", t2.status, t2.raw)
	}
	expectError(t, f.do("GET", "/v1/session", access, ""), 401, "invalid_token")
	// The just-spent refresh token again, within the grace: the same pair.
	t2b := f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`)
	if t2b.status != 200 || t2b.body["access_token"] != t2.body["access_token"] || t2b.body["refresh_token"] != t2.body["refresh_token"] {
		t.Fatalf("refresh repeated within the grace: %d %s, want the same pair as %s", t2b.status, t2b.raw, t2.raw)
	}
	t3 := f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+t2.tokens(t).RefreshToken+`"}`)
	if t3.status != 200 {
		t.Fatalf("second refresh: %d %s", t3.status, t3.raw)
	}
	newAccess := t3.tokens(t).AccessToken
	// A token two refreshes back is theft.
	expectError(t, f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`), 400, "invalid_grant")
	// Reuse revoked the family.
	expectError(t, f.do("GET", "/v1/session", newAccess, ""), 401, "invalid_token")

	r = f.login("shop-wechat", f.mint("wechat", wxAppID, "alice"))
	if tok = r.tokens(t); *tok.User.Created {
		t.Fatalf("second login created a user: %s", r.raw)
	}
	access = tok.AccessToken
	lo := f.do("POST", "/v1/logout", access, "")
	if lo.status != 204 || lo.raw != "" {
		t.Fatalf("logout: %d %q", lo.status, lo.raw)
	}
	expectError(t, f.do("GET", "/v1/session", access, ""), 401, "invalid_token")
	expectError(t, f.do("POST", "/v1/logout", access, ""), 401, "invalid_token")
	f.scanSecrets(t)
}

// Every row of the errors table (docs/api.md) that login, session, token and
// logout can produce.
func TestErrors(t *testing.T) {
	f := newFixture(t)
	good := f.login("shop-wechat", f.mint("wechat", wxAppID, "carol"))
	refresh := good.tokens(t).RefreshToken
	access := good.tokens(t).AccessToken
	calls := func() int64 {
		var n int64
		for _, c := range f.em.Stats() {
			n += c
		}
		return n
	}
	before := calls()
	noPlatform := []struct {
		name, method, path, auth, body string
		status                         int
		code                           string
	}{
		{"malformed json", "POST", "/v1/login", "", `{"app":`, 400, "invalid_request"},
		{"not an object", "POST", "/v1/login", "", `[1,2]`, 400, "invalid_request"},
		{"empty body", "POST", "/v1/login", "", ``, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/login", "", `{"app":"shop-wechat","code":"x"} {}`, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/login", "", `{"app":"shop-wechat","code":"x","extra":1}`, 400, "invalid_request"},
		{"wrong type", "POST", "/v1/login", "", `{"app":"shop-wechat","code":42}`, 400, "invalid_request"},
		{"missing code", "POST", "/v1/login", "", `{"app":"shop-wechat"}`, 400, "invalid_request"},
		{"empty code", "POST", "/v1/login", "", `{"app":"shop-wechat","code":""}`, 400, "invalid_request"},
		{"missing app", "POST", "/v1/login", "", `{"code":"x"}`, 400, "invalid_request"},
		{"huge code", "POST", "/v1/login", "", `{"app":"shop-wechat","code":"` + strings.Repeat("c", 4000) + `"}`, 400, "invalid_request"},
		{"unknown app", "POST", "/v1/login", "", `{"app":"nope","code":"x"}`, 400, "unknown_app"},
		{"oversized body", "POST", "/v1/login", "", `{"app":"shop-wechat","code":"` + strings.Repeat("c", 9000) + `"}`, 413, "request_too_large"},
		{"oversized token body", "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"` + strings.Repeat("r", 5000) + `"}`, 413, "request_too_large"},
		{"no token", "GET", "/v1/session", "", "", 401, "invalid_token"},
		{"garbage token", "GET", "/v1/session", "garbage", "", 401, "invalid_token"},
		{"unknown token", "GET", "/v1/session", "mpa_" + strings.Repeat("A", 43), "", 401, "invalid_token"},
		{"refresh token as access token", "GET", "/v1/session", refresh, "", 401, "invalid_token"},
		{"access token as refresh token", "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"` + access + `"}`, 400, "invalid_grant"},
		{"unknown refresh token", "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"mpr_` + strings.Repeat("B", 43) + `"}`, 400, "invalid_grant"},
		{"wrong grant type", "POST", "/v1/token", "", `{"grant_type":"password","refresh_token":"x"}`, 400, "invalid_request"},
		{"logout without token", "POST", "/v1/logout", "", "", 401, "invalid_token"},
		{"body on session", "GET", "/v1/session", access, `{"x":1}`, 400, "invalid_request"},
		{"unknown route", "GET", "/v2/nothing", "", "", 400, "invalid_request"},
	}
	for _, tc := range noPlatform {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(tc.method, tc.path, tc.auth, tc.body)
			expectError(t, r, tc.status, tc.code)
			if tc.code == "invalid_token" && r.header.Get("WWW-Authenticate") == "" {
				t.Fatal("no WWW-Authenticate")
			}
		})
	}
	if n := calls() - before; n != 0 {
		t.Fatalf("bad input reached the platform %d times", n)
	}

	platformCases := []struct {
		name       string
		app        string
		code       func() string
		fault      *emulator.Fault
		status     int
		errCode    string
		retryAfter bool
	}{
		{"invalid code", "shop-wechat", func() string { return "never-minted" }, nil, 401, "invalid_code", false},
		{"invalid code on baidu", "shop-baidu", func() string { return "never-minted" }, nil, 401, "invalid_code", false},
		{"code used elsewhere", "shop-wechat", func() string {
			// Exchanged straight with the platform (not through mplogin):
			// the platform answers 40163.
			c := f.mint("wechat", wxAppID, "bob")
			resp, err := http.Get(f.emURL + "/sns/jscode2session?appid=" + wxAppID + "&secret=" + wxSecret + "&js_code=" + c + "&grant_type=authorization_code")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return c
		}, nil, 401, "invalid_code", false},
		{"blocked user", "shop-wechat", func() string { return f.mint("wechat", wxAppID, "blocked-eve") }, nil, 403, "user_blocked", false},
		{"platform rate limit", "shop-wechat", func() string { return f.mint("wechat", wxAppID, "dan") },
			&emulator.Fault{Path: wechat.PathCode2Session, Errcode: 45011}, 429, "rate_limited", true},
		{"bad credentials", "shop-wechat-misconfigured", func() string { return f.mint("wechat", wxAppID, "dan") }, nil, 502, "platform_error", false},
		{"unknown platform error", "shop-wechat", func() string { return f.mint("wechat", wxAppID, "dan") },
			&emulator.Fault{Path: wechat.PathCode2Session, Errcode: 99999}, 502, "platform_error", false},
		{"platform timeout", "shop-wechat", func() string { return f.mint("wechat", wxAppID, "dan") },
			&emulator.Fault{Path: wechat.PathCode2Session, LatencyMS: 3000}, 503, "platform_unavailable", true},
		{"platform garbage", "shop-wechat", func() string { return f.mint("wechat", wxAppID, "dan") },
			&emulator.Fault{Path: wechat.PathCode2Session, Garbage: true}, 503, "platform_unavailable", true},
		{"platform busy", "shop-wechat", func() string { return f.mint("wechat", wxAppID, "dan") },
			&emulator.Fault{Path: wechat.PathCode2Session, Errcode: -1}, 503, "platform_unavailable", true},
	}
	for _, tc := range platformCases {
		t.Run(tc.name, func(t *testing.T) {
			code := tc.code()
			if tc.fault != nil {
				f.em.SetFaults(*tc.fault)
				defer f.em.ClearFaults()
			}
			start := time.Now()
			r := f.login(tc.app, code)
			expectError(t, r, tc.status, tc.errCode)
			if tc.retryAfter != (r.header.Get("Retry-After") != "") {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("took %v: the platform deadline is 500ms", time.Since(start))
			}
		})
	}

	t.Run("store unavailable", func(t *testing.T) {
		f.store.set(true)
		expectError(t, f.do("GET", "/v1/session", access, ""), 503, "store_unavailable")
		expectError(t, f.login("shop-wechat", f.mint("wechat", wxAppID, "frank")), 503, "store_unavailable")
		expectError(t, f.do("GET", "/readyz", "", ""), 503, "store_unavailable")
		if r := f.do("GET", "/healthz", "", ""); r.status != 200 {
			t.Fatalf("healthz %d", r.status)
		}
		f.store.set(false)
		if r := f.do("GET", "/readyz", "", ""); r.status != 200 {
			t.Fatalf("readyz after recovery %d", r.status)
		}
		if r := f.do("GET", "/v1/session", access, ""); r.status != 200 {
			t.Fatalf("session after recovery %d %s", r.status, r.raw)
		}
	})
	f.scanSecrets(t)
}

// A repeated code through mplogin gets a new session for the same user.
func TestRepeatedCode(t *testing.T) {
	f := newFixture(t)
	code := f.mint("wechat", wxAppID, "gina")
	a, b := f.login("shop-wechat", code), f.login("shop-wechat", code)
	if a.status != 200 || b.status != 200 || a.body["access_token"] == b.body["access_token"] ||
		a.tokens(t).User.ID != b.tokens(t).User.ID {
		t.Fatalf("%s\n%s", a.raw, b.raw)
	}
	if n := f.em.Stats()[wechat.PathCode2Session]; n != 1 {
		t.Fatalf("%d platform calls", n)
	}
}

// No response and no log line carries a session key, an app secret, a
// token or a login code.
func (f *fixture) scanSecrets(t *testing.T) {
	t.Helper()
	logs := f.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatal("no request log lines")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	needles := []string{wxSecret, bdSecret, "not-the-secret"}
	for _, u := range []string{"alice", "bob", "carol", "dan", "gina"} {
		for _, p := range []struct{ plat, app string }{{"wechat", wxAppID}, {"baidu", bdAppKey}} {
			if k, ok := f.em.SessionKey(p.plat, p.app, u); ok {
				needles = append(needles, k)
			}
		}
	}
	for _, resp := range f.responses {
		var v map[string]any
		_ = json.Unmarshal([]byte(strings.Fields(resp + " x")[0]), &v)
		for _, k := range []string{"access_token", "refresh_token"} {
			if s, _ := v[k].(string); s != "" {
				needles = append(needles, s)
			}
		}
	}
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Fatalf("log carries a secret or token %q", n)
		}
	}
	for _, resp := range f.responses {
		for _, n := range needles[:3] {
			if strings.Contains(resp, n) {
				t.Fatalf("response carries a secret: %s", resp)
			}
		}
		if strings.Contains(resp, "session_key") {
			t.Fatalf("response mentions session_key: %s", resp)
		}
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "mpa_") || strings.Contains(l, "mpr_") || strings.Contains(l, "js_code") {
			t.Fatalf("log line carries a token: %s", l)
		}
	}
}

// A panic inside a handler is a 500 internal_error with no details.
func TestPanicIsInternalError(t *testing.T) {
	logs := &testutil.Buffer{}
	h := httpapi.New(httpapi.Config{Sessions: nil, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/session", nil)
	req.Header.Set("Authorization", "Bearer mpa_"+strings.Repeat("A", 43))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 500 || strings.TrimSpace(string(raw)) != `{"error":"internal_error","message":"internal error"}` {
		t.Fatalf("%d %s", resp.StatusCode, raw)
	}
	if !strings.Contains(logs.String(), "panic") {
		t.Fatalf("the cause is not logged: %s", logs.String())
	}
}

// A store error that is no outage (a bug, a broken constraint) is a 500
// with no details and no Retry-After, since trying again will not help; the
// request's log line names the store call that failed, and it is counted
// apart from outages.
func TestStoreFailureIsInternalError(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) { c.Metrics = metrics.New(httpapi.Routes...) })
	access := f.login("shop-wechat", f.mint("wechat", wxAppID, "olga")).tokens(t).AccessToken

	f.store.setErr(errors.New("UNIQUE constraint failed: sessions.access_hash"))
	r := f.do("GET", "/v1/session", access, "")
	expectError(t, r, 500, "internal_error")
	if r.body["message"] != "internal error" || r.header.Get("Retry-After") != "" {
		t.Fatalf("%s, Retry-After %q", r.raw, r.header.Get("Retry-After"))
	}
	var line string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"status":500`) {
			line = l
		}
	}
	if !strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"error":"internal_error"`) ||
		!strings.Contains(line, "session by access token") || !strings.Contains(line, "UNIQUE constraint failed") {
		t.Fatalf("the log line lacks the store call or its error: %s", line)
	}
	expectError(t, f.login("shop-wechat", f.mint("wechat", wxAppID, "olga")), 500, "internal_error")
	// A failed ping is not ready, whatever the cause.
	expectError(t, f.do("GET", "/readyz", "", ""), 503, "store_unavailable")

	f.store.set(true)
	r = f.do("GET", "/v1/session", access, "")
	expectError(t, r, 503, "store_unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("an outage without Retry-After")
	}
	f.store.set(false)

	m := f.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`mplogin_store_internal_errors_total{op="session by access token"} 1`,
		`mplogin_store_internal_errors_total{op="get code"} 1`,
		`mplogin_store_errors_total{op="GET /v1/session"} 1`,
		`mplogin_store_errors_total{op="GET /readyz"} 1`,
	} {
		if !strings.Contains(m.raw, want+"\n") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m.raw, `mplogin_store_errors_total{op="POST /v1/login"}`) {
		t.Error("a store bug counted as an outage")
	}
	f.scanSecrets(t)
}

// A thief who refreshed first with a stolen refresh token holds the session
// the victim's tokens no longer reach; the victim's logout of all sessions,
// from a new login, ends it (access and refresh token), and no other user's
// session. Without "all", a logout ends only its own session.
func TestLogoutAllEndsThiefsSession(t *testing.T) {
	f := newFixture(t)
	victim := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice"))
	stolen := victim.tokens(t).RefreshToken
	thief := f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+stolen+`"}`)
	if thief.status != 200 {
		t.Fatalf("thief's refresh: %d %s", thief.status, thief.raw)
	}
	thiefAccess, thiefRefresh := thief.tokens(t).AccessToken, thief.tokens(t).RefreshToken
	bob := f.login("shop-wechat", f.mint("wechat", wxAppID, "bob")).tokens(t).AccessToken

	// Logouts of one session leave the thief's alone.
	for _, body := range []string{"", `{"all":false}`, " \n"} {
		access := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t).AccessToken
		if r := f.do("POST", "/v1/logout", access, body); r.status != 204 {
			t.Fatalf("logout with body %q: %d %s", body, r.status, r.raw)
		}
		expectError(t, f.do("GET", "/v1/session", access, ""), 401, "invalid_token")
		if r := f.do("GET", "/v1/session", thiefAccess, ""); r.status != 200 {
			t.Fatalf("thief's session after a logout with body %q: %d %s", body, r.status, r.raw)
		}
	}

	again := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t).AccessToken
	expectError(t, f.do("POST", "/v1/logout", again, `{"all":true,"everything":true}`), 400, "invalid_request")
	expectError(t, f.do("POST", "/v1/logout", again, `{"all":1}`), 400, "invalid_request")
	expectError(t, f.doHeader("POST", "/v1/logout", http.Header{"Authorization": {"Bearer " + again}}, `{"all":true}`),
		415, "unsupported_media_type")
	if r := f.do("POST", "/v1/logout", again, `{"all":true}`); r.status != 204 || r.raw != "" {
		t.Fatalf("logout of all sessions: %d %q", r.status, r.raw)
	}
	expectError(t, f.do("GET", "/v1/session", again, ""), 401, "invalid_token")
	expectError(t, f.do("GET", "/v1/session", thiefAccess, ""), 401, "invalid_token")
	expectError(t, f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+thiefRefresh+`"}`), 400, "invalid_grant")
	if r := f.do("GET", "/v1/session", bob, ""); r.status != 200 {
		t.Fatalf("another user's session after the logout of all: %d %s", r.status, r.raw)
	}
}

// A logout that lost a race with a refresh still ends the session: the
// access token the refresh replaced logs out (204), though it no longer
// passes a session check.
func TestLogoutAfterRefreshRace(t *testing.T) {
	f := newFixture(t)
	login := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice"))
	old := login.tokens(t).AccessToken
	r := f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+login.tokens(t).RefreshToken+`"}`)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.raw)
	}
	expectError(t, f.do("GET", "/v1/session", old, ""), 401, "invalid_token")
	if lo := f.do("POST", "/v1/logout", old, ""); lo.status != 204 {
		t.Fatalf("logout by the replaced access token: %d %s", lo.status, lo.raw)
	}
	expectError(t, f.do("GET", "/v1/session", r.tokens(t).AccessToken, ""), 401, "invalid_token")
	expectError(t, f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+r.tokens(t).RefreshToken+`"}`), 400, "invalid_grant")
	expectError(t, f.do("POST", "/v1/logout", old, ""), 401, "invalid_token")
}
