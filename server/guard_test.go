package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
)

// Logins from one address beyond its burst get 429 rate_limited with
// Retry-After, before any platform call; another address is not affected.
// X-Forwarded-For counts only from a trusted proxy.
func TestLoginRateLimitPerIP(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.Config) {
		c.Limits.Login.IP = config.Limit{Rate: 0.001, Burst: 3}
		c.HTTP.TrustedProxies = nil
	}))
	post := func(xff string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", r.api.URL+"/v1/login", strings.NewReader(`{"app":"w","code":"nope"}`))
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 3 {
		// An untrusted peer cannot escape by naming other addresses.
		if resp := post("203.0.113." + string(rune('1'+i))); resp.StatusCode != 401 {
			t.Fatalf("login %d: %d, want 401 invalid_code", i, resp.StatusCode)
		}
	}
	calls := r.em.Stats()["/sns/jscode2session"]
	resp := post("198.51.100.9")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th login: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if r.em.Stats()["/sns/jscode2session"] != calls {
		t.Fatal("a limited login reached the platform")
	}
}

func TestClientIPFromTrustedProxy(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.Config) {
		c.Limits.Login.IP = config.Limit{Rate: 0.001, Burst: 1}
		// The test's requests come from 127.0.0.1: it is the proxy.
		c.HTTP.TrustedProxies = append(c.HTTP.TrustedProxies, mustPrefix(t, "127.0.0.0/8"))
	}))
	status := func(xff string) int {
		req, _ := http.NewRequest("POST", r.api.URL+"/v1/login", strings.NewReader(`{"app":"w","code":"nope"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Each client has its own bucket of 1; a spoofed left entry does not matter.
	if s := status("1.1.1.1, 203.0.113.1"); s != 401 {
		t.Fatalf("client A first: %d", s)
	}
	if s := status("9.9.9.9, 203.0.113.2"); s != 401 {
		t.Fatalf("client B first: %d", s)
	}
	if s := status("7.7.7.7, 203.0.113.1"); s != 429 {
		t.Fatalf("client A again (other spoofed entry): %d, want 429", s)
	}
	// IPv6 clients count by /64.
	if s := status("2001:db8:1:2::1"); s != 401 {
		t.Fatalf("v6 first: %d", s)
	}
	if s := status("2001:db8:1:2::ffff"); s != 429 {
		t.Fatalf("v6 same /64: %d, want 429", s)
	}
}

// /metrics serves requests by route and status, platform calls and
// breaker state, and no label carries an openid, a user id or a token.
func TestMetrics(t *testing.T) {
	r := newRig(t)
	login := r.login(t, "wechat", wxAppID, "w", "mia")
	access := login.AccessToken
	r.call(t, "GET", "/v1/session", access, "")
	r.call(t, "POST", "/v1/userdata/decrypt", access, `{"encrypted_data":"AAAA","iv":"AAAA"}`)
	resp, err := http.Get(r.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`mplogin_http_requests_total{route="POST /v1/login",status="200"} 1`,
		`mplogin_http_requests_total{route="GET /v1/session",status="200"} 1`,
		`mplogin_platform_calls_total{endpoint="login",platform="wechat",result="ok"} 1`,
		`mplogin_decrypt_failures_total{app="w"} 1`,
		`mplogin_http_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{access, login.RefreshToken, login.User.OpenID, login.User.ID} {
		if strings.Contains(text, secret) {
			t.Errorf("metrics carry %q", secret)
		}
	}
}

// A platform that keeps failing opens the login breaker: further logins get
// 503 platform_unavailable at once, without reaching it. Rejected codes (a
// user error) never open it.
func TestLoginBreaker(t *testing.T) {
	r := newRig(t)
	for range 20 {
		if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"never-minted"}`); status != 401 {
			t.Fatalf("bad code: %d %v", status, v)
		}
	}
	r.em.SetFaults(emulator.Fault{Path: "/sns/jscode2session", Garbage: true})
	for i := range 5 {
		if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"c`+string(rune('0'+i))+`"}`); status != 503 {
			t.Fatalf("garbage answer %d: %d %v", i, status, v)
		}
	}
	before := r.em.Stats()["/sns/jscode2session"]
	status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"c9"}`)
	if status != 503 || v["error"] != "platform_unavailable" {
		t.Fatalf("open breaker: %d %v", status, v)
	}
	if r.em.Stats()["/sns/jscode2session"] != before {
		t.Fatal("a login reached the platform through an open breaker")
	}
	resp, err := http.Get(r.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `mplogin_breaker_state{name="wechat:login"} 2`) {
		t.Fatalf("breaker state not in metrics:\n%s", body)
	}
}
