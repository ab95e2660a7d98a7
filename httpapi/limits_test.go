package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/ratelimit"
)

// frozen is a bucket that does not refill within a test.
func frozen(burst int) *ratelimit.Memory {
	return ratelimit.NewMemory(ratelimit.Rate{PerSecond: 0.0001, Burst: burst}, ratelimit.MemoryOptions{})
}

// behindProxy makes the test's own address (loopback) a trusted proxy, so
// that X-Forwarded-For names the client.
func behindProxy(c *httpapi.Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
}

// from sends a request as a client behind the proxy.
func (f *fixture) from(client, method, path, access, body string) response {
	f.t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {client}}
	if access != "" {
		h.Set("Authorization", "Bearer "+access)
	}
	return f.doHeader(method, path, h, body)
}

// Many /64s of one /56 are one client: a flood from them is limited by one
// per-IP bucket, and spends no more of the app's bucket than that bucket
// lets through, so a client of another prefix still gets in.
func TestIPv6FloodFromOnePrefix(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) {
		behindProxy(c)
		c.Limits.Phone = httpapi.RouteLimits{IP: frozen(2), App: frozen(5)}
	})
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "flooder", wxUserKey)
	// The fixture's app has no access token: an allowed phone code is 400,
	// a limited one 429.
	limited := 0
	for i := range 40 {
		r := f.from(fmt.Sprintf("2001:db8:0:1%02x::%x", i, i+1), "POST", "/v1/phone", access, `{"code":"abc"}`)
		switch r.status {
		case 429:
			limited++
		case 400:
		default:
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
	}
	if limited != 38 {
		t.Errorf("40 /64s of one /56: %d limited, want 38 (one bucket of 2)", limited)
	}
	other := f.loginWithKey("shop-wechat", "wechat", wxAppID, "someone", wxUserKey)
	if r := f.from("2001:db8:0:200::1", "POST", "/v1/phone", other, `{"code":"abc"}`); r.status != 400 {
		t.Fatalf("a client of another /56 after the flood: %d %s, want 400 (the app's bucket still has tokens)", r.status, r.raw)
	}
}

// A request that fails on its body does not spend the app's bucket: only
// requests that would reach the platform or a decryption do.
func TestMalformedRequestsSpendNoAppBucket(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) {
		behindProxy(c)
		c.Limits.Phone = httpapi.RouteLimits{IP: frozen(2), App: frozen(3)}
		c.Limits.Decrypt = httpapi.RouteLimits{IP: frozen(2), App: frozen(3)}
	})
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "sloppy", wxUserKey)
	for _, path := range []string{"/v1/phone", "/v1/userdata/decrypt"} {
		for i := range 10 {
			if r := f.from(fmt.Sprintf("203.0.113.%d", i+1), "POST", path, access, `{`); r.status != 400 {
				t.Fatalf("%s malformed %d: %d %s, want 400", path, i, r.status, r.raw)
			}
		}
	}
	if r := f.from("198.51.100.1", "POST", "/v1/phone", access, `{"code":"abc"}`); r.status != 400 {
		t.Fatalf("phone after malformed requests: %d %s, want 400 (not limited)", r.status, r.raw)
	}
	if r := f.from("198.51.100.1", "POST", "/v1/userdata/decrypt", access, `{"encrypted_data":"AAAA","iv":"AAAA"}`); r.status != 422 {
		t.Fatalf("decrypt after malformed requests: %d %s, want 422 (not limited)", r.status, r.raw)
	}
}

// One session cannot spend the app's bucket from many addresses: its own
// bucket refuses first.
func TestSessionLimitBeforeAppBucket(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) {
		behindProxy(c)
		c.Limits.Phone = httpapi.RouteLimits{IP: frozen(2), Session: frozen(3), App: frozen(5)}
	})
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "roamer", wxUserKey)
	limited := 0
	for i := range 20 {
		r := f.from(fmt.Sprintf("203.0.113.%d", i+1), "POST", "/v1/phone", access, `{"code":"abc"}`)
		if r.status == 429 {
			limited++
		}
	}
	if limited != 17 {
		t.Errorf("one session from 20 addresses: %d limited, want 17", limited)
	}
	other := f.loginWithKey("shop-wechat", "wechat", wxAppID, "homebody", wxUserKey)
	if r := f.from("198.51.100.1", "POST", "/v1/phone", other, `{"code":"abc"}`); r.status != 400 {
		t.Fatalf("another session: %d %s, want 400", r.status, r.raw)
	}
}

// X-Forwarded-For entries written as ip:port or [v6]:port, as some load
// balancers write them, name the client.
func TestForwardedForWithPorts(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) {
		behindProxy(c)
		c.Limits.Login = httpapi.RouteLimits{IP: frozen(1)}
	})
	for _, tc := range []struct {
		xff    string
		status int
	}{
		{"198.51.100.10:1234", 401},
		{"198.51.100.10:5678", 429}, // the same client, another port
		{"198.51.100.11:1234", 401},
		{"[2001:db8::1]:443", 401},
		{"2001:db8::2", 429}, // the same /56
		{"203.0.113.7:80, 198.51.100.12", 401},
		{"198.51.100.12:9", 429},
		{"[2001:db8:1::1]", 401},
	} {
		r := f.from(tc.xff, "POST", "/v1/login", "", `{"app":"shop-wechat","code":"never-minted"}`)
		if r.status != tc.status {
			t.Fatalf("X-Forwarded-For %q: %d %s, want %d", tc.xff, r.status, r.raw, tc.status)
		}
	}
	clients := map[string]bool{}
	for _, line := range logLines(t, f.logs.String()) {
		if line["msg"] == "request" {
			c, _ := line["client"].(string)
			clients[c] = true
		}
	}
	for _, want := range []string{"198.51.100.10", "198.51.100.11", "2001:db8::1", "2001:db8::2", "198.51.100.12", "2001:db8:1::1"} {
		if !clients[want] {
			t.Errorf("no request line with client %q; clients logged: %v", want, clients)
		}
	}
}

// X-Forwarded-For from a peer that is not a trusted proxy is ignored, and
// said so once, naming the key to set.
func TestForwardedForFromUntrustedPeerWarnsOnce(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		if r := f.from("198.51.100.10", "GET", "/healthz", "", ""); r.status != 200 {
			t.Fatalf("healthz: %d", r.status)
		}
	}
	warnings, requests := 0, 0
	for _, line := range logLines(t, f.logs.String()) {
		if line["level"] == "WARN" && strings.Contains(fmt.Sprint(line["msg"]), "http.trusted_proxies") {
			warnings++
		}
		if line["msg"] == "request" {
			requests++
			if line["client"] != "127.0.0.1" {
				t.Errorf("request line with client %v, want the peer 127.0.0.1", line["client"])
			}
		}
	}
	if warnings != 1 {
		t.Fatalf("%d warnings naming http.trusted_proxies, want 1:\n%s", warnings, f.logs.String())
	}
	// Else the check of the client above checked nothing.
	if requests != 3 {
		t.Fatalf("%d request lines, want 3:\n%s", requests, f.logs.String())
	}
}

// logLines parses a JSON log.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
