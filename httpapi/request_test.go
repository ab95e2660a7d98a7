package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/metrics"
	"github.com/mplogin/mplogin/ratelimit"
)

// allowAll is a limiter that never fires, and counts how often it was
// asked.
type allowAll struct{ asked atomic.Int64 }

func (l *allowAll) Allow(context.Context, string) (ratelimit.Decision, error) {
	l.asked.Add(1)
	return ratelimit.Decision{Allowed: true}, nil
}

func withLimits(l ratelimit.Limiter) func(*httpapi.Config) {
	return func(c *httpapi.Config) {
		rl := httpapi.RouteLimits{IP: l, Session: l, App: l}
		c.Limits = httpapi.Limits{Login: rl, Refresh: rl, Verify: rl, Decrypt: rl, Phone: rl}
	}
}

// The answer to a request does not depend on limits that did not fire: the
// token is checked first, whatever the body, then the body.
func TestAnswersDoNotDependOnLimits(t *testing.T) {
	lim := &allowAll{}
	plain, limited := newFixture(t), newFixtureWith(t, withLimits(lim))
	access := map[*fixture]string{
		plain:   plain.loginWithKey("shop-wechat", "wechat", wxAppID, "ann", wxUserKey),
		limited: limited.loginWithKey("shop-wechat", "wechat", wxAppID, "ann", wxUserKey),
	}
	cases := []struct {
		name, auth, body string
		status           int
		code             string
	}{
		{"bad token, empty body", "garbage", "", 401, "invalid_token"},
		{"bad token, bad JSON", "garbage", `{"iv":`, 401, "invalid_token"},
		{"bad token, empty object", "garbage", `{}`, 401, "invalid_token"},
		{"bad token, unknown field", "garbage", `{"x":1}`, 401, "invalid_token"},
		{"no token, empty object", "", `{}`, 401, "invalid_token"},
		{"good token, empty body", "{access}", "", 400, "invalid_request"},
		{"good token, bad JSON", "{access}", `{"iv":`, 400, "invalid_request"},
		{"good token, empty object", "{access}", `{}`, 400, "invalid_request"},
		{"good token, unknown field", "{access}", `{"x":1}`, 400, "invalid_request"},
	}
	for _, path := range []string{"/v1/userdata/decrypt", "/v1/phone"} {
		for _, tc := range cases {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				var got [2]response
				for i, f := range []*fixture{plain, limited} {
					got[i] = f.do("POST", path, strings.ReplaceAll(tc.auth, "{access}", access[f]), tc.body)
				}
				expectError(t, got[0], tc.status, tc.code)
				if got[1].status != got[0].status || got[1].raw != got[0].raw ||
					got[1].header.Get("WWW-Authenticate") != got[0].header.Get("WWW-Authenticate") {
					t.Fatalf("without limits %d %s, with limits %d %s", got[0].status, got[0].raw, got[1].status, got[1].raw)
				}
			})
		}
	}
	if lim.asked.Load() == 0 {
		t.Fatal("the limits were never asked")
	}
}

// A request reads its session once, with an app limit configured or not.
func TestOneSessionReadPerRequest(t *testing.T) {
	f := newFixtureWith(t, withLimits(&allowAll{}))
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "bea", wxUserKey)
	now := time.Now()
	phone := fmt.Sprintf(`{"phoneNumber":"13800001111","purePhoneNumber":"13800001111","countryCode":"86","watermark":{"timestamp":%d,"appid":%q}}`,
		now.Unix(), wxAppID)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"decrypt", "POST", "/v1/userdata/decrypt", jsonBody(encrypt(t, wxUserKey, userPlain(wxAppID, now))), 200},
		{"decrypt, wrong key", "POST", "/v1/userdata/decrypt", jsonBody(encrypt(t, wxOtherKey, userPlain(wxAppID, now))), 422},
		{"decrypt, bad JSON", "POST", "/v1/userdata/decrypt", `{"iv":`, 400},
		{"decrypt, missing field", "POST", "/v1/userdata/decrypt", `{"iv":"x"}`, 400},
		{"phone payload", "POST", "/v1/phone", jsonBody(encrypt(t, wxUserKey, phone)), 200},
		{"phone code without an access token", "POST", "/v1/phone", `{"code":"abc"}`, 400},
		{"phone, bad JSON", "POST", "/v1/phone", `{`, 400},
		{"session", "GET", "/v1/session", "", 200},
		{"session checked with the platform, no access token", "GET", "/v1/session?verify=platform", "", 400},
		{"logout", "POST", "/v1/logout", "", 204},
	} {
		before := f.store.reads.Load()
		r := f.do(tc.method, tc.path, access, tc.body)
		if r.status != tc.status {
			t.Fatalf("%s: %d %s, want %d", tc.name, r.status, r.raw, tc.status)
		}
		if n := f.store.reads.Load() - before; n != 1 {
			t.Errorf("%s: %d session reads, want 1", tc.name, n)
		}
	}
}

// A known route asked with another method is 405 with the route's methods
// in Allow; GET routes answer HEAD too, as Go's mux serves them. Unknown
// routes stay invalid_request.
func TestMethodNotAllowed(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) { c.Metrics = metrics.New(httpapi.Routes...) })
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/v1/login", "POST"},
		{"HEAD", "/v1/login", "POST"},
		{"PUT", "/v1/login", "POST"},
		{"POST", "/v1/session", "GET, HEAD"},
		{"DELETE", "/v1/session", "GET, HEAD"},
		{"GET", "/v1/token", "POST"},
		{"DELETE", "/v1/logout", "POST"},
		{"GET", "/v1/userdata/decrypt", "POST"},
		{"PATCH", "/v1/phone", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"OPTIONS", "/readyz", "GET, HEAD"},
		{"POST", "/metrics", "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := f.do(tc.method, tc.path, "", "")
			if r.status != 405 || r.header.Get("Allow") != tc.allow {
				t.Fatalf("%d, Allow %q: %s; want 405, Allow %q", r.status, r.header.Get("Allow"), r.raw, tc.allow)
			}
			if tc.method != "HEAD" {
				expectError(t, r, 405, "method_not_allowed")
			}
		})
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/healthz", 200}, {"/readyz", 200}, {"/v1/session", 401}, {"/metrics", 200}} {
		if r := f.do("HEAD", tc.path, "", ""); r.status != tc.status || r.raw != "" || r.header.Get("Allow") != "" {
			t.Errorf("HEAD %s: %d %q, Allow %q; want %d as GET, no body", tc.path, r.status, r.raw, r.header.Get("Allow"), tc.status)
		}
	}
	for _, m := range []string{"GET", "POST", "DELETE"} {
		r := f.do(m, "/v1/nothing", "", "")
		expectError(t, r, 400, "invalid_request")
		if r.header.Get("Allow") != "" {
			t.Errorf("%s on an unknown route: Allow %q", m, r.header.Get("Allow"))
		}
	}
}

// With /metrics moved to a listener of its own, the API answers it 404
// not_found, whatever the method, and still counts its own requests.
func TestMetricsElsewhere(t *testing.T) {
	m := metrics.New(httpapi.Routes...)
	f := newFixtureWith(t, func(c *httpapi.Config) { c.Metrics, c.MetricsElsewhere = m, true })
	for _, method := range []string{"GET", "HEAD", "POST"} {
		r := f.do(method, "/metrics", "", "")
		if method == "HEAD" {
			if r.status != 404 {
				t.Errorf("HEAD /metrics: %d", r.status)
			}
			continue
		}
		expectError(t, r, 404, "not_found")
		if r.header.Get("Allow") != "" || strings.Contains(r.raw, "mplogin_") {
			t.Errorf("%s /metrics: Allow %q, %s", method, r.header.Get("Allow"), r.raw)
		}
	}
	if r := f.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, `mplogin_http_requests_total{route="GET /healthz",status="200"} 1`) {
		t.Errorf("the moved metrics lack the API's requests:\n%s", body)
	}
}

// The handler of a listener of /metrics alone serves GET /metrics and
// nothing else, its errors in the API's shape.
func TestNewMetrics(t *testing.T) {
	m := metrics.New(httpapi.Routes...)
	m.Request("GET /healthz", 200, time.Millisecond)
	h := httpapi.NewMetrics(m, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/metrics", 200, "", ""},
		{"HEAD", "/metrics", 200, "", ""},
		{"POST", "/metrics", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/healthz", 404, "not_found", ""},
		{"GET", "/v1/session", 404, "not_found", ""},
		{"GET", "/metrics/x", 404, "not_found", ""},
		{"GET", "/", 404, "not_found", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		body := rec.Body.String()
		if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d, Allow %q: %.200s", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), body)
			continue
		}
		switch {
		case tc.status == 200 && tc.method == "GET":
			if !strings.Contains(body, `mplogin_http_requests_total{route="GET /healthz",status="200"} 1`) {
				t.Errorf("GET /metrics lacks mplogin's metrics:\n%s", body)
			}
		case tc.code != "":
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v["error"] != tc.code || v["message"] == "" {
				t.Errorf("%s %s: %s, %v", tc.method, tc.path, body, err)
			}
		}
	}
}

// A body is one reading only: a key is taken exactly as spelled, once.
func TestStrictJSON(t *testing.T) {
	f := newFixture(t)
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "cal", wxUserKey)
	calls := f.em.Stats()
	for _, tc := range []struct{ name, path, body string }{
		{"duplicate app", "/v1/login", `{"app":"shop-wechat","app":"shop-baidu","code":"x"}`},
		{"duplicate code", "/v1/login", `{"app":"shop-wechat","code":"x","code":"y"}`},
		{"duplicate, the second null", "/v1/login", `{"app":"shop-wechat","code":"x","app":null}`},
		{"duplicate, escaped", "/v1/login", `{"app":"shop-wechat","code":"x","\u0061pp":"shop-baidu"}`},
		{"duplicate in another case", "/v1/login", `{"app":"shop-wechat","App":"shop-baidu","code":"x"}`},
		{"key in upper case", "/v1/login", `{"APP":"shop-wechat","code":"x"}`},
		{"key in title case", "/v1/login", `{"app":"shop-wechat","Code":"x"}`},
		{"key with the Kelvin sign", "/v1/token", "{\"grant_type\":\"refresh_token\",\"refresh_to\u212aen\":\"x\"}"},
		{"duplicate refresh token", "/v1/token", `{"grant_type":"refresh_token","refresh_token":"a","refresh_token":"b"}`},
		{"duplicate iv", "/v1/userdata/decrypt", `{"encrypted_data":"AAAA","iv":"AAAA","iv":"BBBB"}`},
		{"nested duplicate", "/v1/userdata/decrypt", `{"encrypted_data":{"a":1,"a":2},"iv":"AAAA"}`},
		{"duplicate phone code", "/v1/phone", `{"code":"a","code":"b"}`},
		{"phone key in upper case", "/v1/phone", `{"CODE":"a"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, f.do("POST", tc.path, access, tc.body), 400, "invalid_request")
		})
	}
	for p, n := range f.em.Stats() {
		if calls[p] != n {
			t.Fatalf("a refused body reached the platform (%s)", p)
		}
	}
	// Exact keys still work.
	if r := f.login("shop-wechat", f.mint("wechat", wxAppID, "cal")); r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.raw)
	}
}

// Routes that take a JSON body take it as application/json only; routes
// without a body do not look.
func TestContentType(t *testing.T) {
	f := newFixture(t)
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "dee", wxUserKey)
	header := func(ct ...string) http.Header {
		h := http.Header{"Authorization": {"Bearer " + access}}
		if len(ct) > 0 {
			h["Content-Type"] = ct
		}
		return h
	}
	login := func(h http.Header) response {
		return f.doHeader("POST", "/v1/login", h, `{"app":"shop-wechat","code":"`+f.mint("wechat", wxAppID, "dee")+`"}`)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON; Charset=UTF-8", `application/json;charset="utf-8"`} {
		if r := login(header(ct)); r.status != 200 {
			t.Errorf("Content-Type %q: %d %s", ct, r.status, r.raw)
		}
	}
	bad := [][]string{nil, {""}, {"text/plain"}, {"application/x-www-form-urlencoded"}, {"application/jsonx"},
		{"application/json-patch+json"}, {"application/json; charset=iso-8859-1"}, {"application/json; charset"}, {"json"}}
	for _, ct := range bad {
		expectError(t, login(header(ct...)), 415, "unsupported_media_type")
	}
	expectError(t, login(header("application/json", "text/plain")), 400, "invalid_request")
	for _, path := range []string{"/v1/token", "/v1/userdata/decrypt", "/v1/phone"} {
		expectError(t, f.doHeader("POST", path, header("text/plain"), `{}`), 415, "unsupported_media_type")
		expectError(t, f.doHeader("POST", path, header(), `{}`), 415, "unsupported_media_type")
	}
	// A bad token is 401 whatever the body and its type.
	h := header("text/plain")
	h.Set("Authorization", "Bearer garbage")
	expectError(t, f.doHeader("POST", "/v1/userdata/decrypt", h, `{}`), 401, "invalid_token")
	if r := f.doHeader("GET", "/v1/session", header("text/plain"), ""); r.status != 200 {
		t.Fatalf("session with text/plain: %d %s", r.status, r.raw)
	}
	if r := f.doHeader("GET", "/healthz", http.Header{}, ""); r.status != 200 {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
	if r := f.doHeader("POST", "/v1/logout", header(), ""); r.status != 204 {
		t.Fatalf("logout without Content-Type: %d %s", r.status, r.raw)
	}
}

// Two Authorization headers are refused, whichever comes first: servers and
// proxies disagree on which one counts.
func TestTwoAuthorizationHeaders(t *testing.T) {
	f := newFixture(t)
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "eve", wxUserKey)
	good := encrypt(t, wxUserKey, userPlain(wxAppID, time.Now()))
	body := jsonBody(good)
	for _, auth := range [][]string{
		{"Bearer " + access, "Bearer garbage"},
		{"Bearer garbage", "Bearer " + access},
		{"Bearer " + access, "Bearer " + access},
	} {
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/v1/session", ""}, {"POST", "/v1/logout", ""},
			{"POST", "/v1/userdata/decrypt", body}, {"POST", "/v1/phone", `{"code":"abc"}`},
		} {
			h := http.Header{"Authorization": auth, "Content-Type": {"application/json"}}
			expectError(t, f.doHeader(rt.method, rt.path, h, rt.body), 400, "invalid_request")
		}
	}
	// The logouts above did nothing.
	if r := f.do("GET", "/v1/session", access, ""); r.status != 200 {
		t.Fatalf("session: %d %s", r.status, r.raw)
	}
}

func jsonBody(in map[string]string) string { b, _ := json.Marshal(in); return string(b) }
