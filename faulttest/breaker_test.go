package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// The breaker of WeChat logins, as /metrics names it.
const loginBreaker = `mplogin_breaker_state{name="wechat:login"}`

// Breaker settings of the service (breaker.DefaultFailures, DefaultOpenFor).
const (
	breakerFailures = 5
	breakerOpenFor  = 10 * time.Second
)

// TestBreaker: user errors from the platform do not open the login breaker;
// five platform failures in a row do; while it is open, logins are answered
// 503 with Retry-After at once, without calling the platform; once the
// platform is back, logins succeed again after the breaker's open period.
func TestBreaker(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOptions{})
	e.login(t, appShop, appidShop, "warmup")
	e.tr.CloseIdleConnections()
	base := e.goroutines(t)
	ctx := context.Background()
	login := func(user string) reply {
		return e.call(ctx, req{method: "POST", path: "/v1/login",
			body: map[string]string{"app": appShop, "code": e.mintCode(t, appidShop, user)}})
	}
	// The gauge appears with the breaker's first change of state.
	seen := false
	state := func() float64 {
		t.Helper()
		v, err := e.metric(loginBreaker)
		if err != nil && !seen {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		seen = true
		return v
	}
	expect := func(what string, r reply, status int, code string) {
		t.Helper()
		if err := contractError(r); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if r.status != status || r.code != code {
			t.Fatalf("%s: want %d %s, got %s", what, status, code, r)
		}
	}

	// Many user errors in a row: the platform is up, the breaker stays closed.
	for _, rule := range []string{
		`{"path":"/sns/jscode2session","errcode":40029}`, // invalid code
		`{"path":"/sns/jscode2session","errcode":45011}`, // rate limited
		`{"path":"/sns/jscode2session","errcode":40226}`, // user blocked
	} {
		e.setFaults(t, rule)
		for i := 0; i < 2*breakerFailures; i++ {
			if r := login("userr"); r.status != 401 && r.status != 429 && r.status != 403 {
				t.Fatalf("%s: %s", rule, r)
			}
		}
	}
	e.setFaults(t, "")
	if s := state(); s != 0 {
		t.Fatalf("breaker state %v after user errors only, want 0 (closed)", s)
	}
	r := login("alice")
	expect("login after user errors", r, 200, "")
	var tk tokens
	if err := json.Unmarshal(r.body, &tk); err != nil {
		t.Fatal(err)
	}

	// Platform failures in a row open it.
	e.setFaults(t, `{"path":"/sns/jscode2session","status":500}`)
	var last reply
	for i := 0; i < breakerFailures; i++ {
		last = login("alice")
		expect(fmt.Sprintf("failing login %d", i+1), last, 503, "platform_unavailable")
	}
	seen = true
	if s := state(); s != 2 {
		t.Fatalf("breaker state %v after %d platform failures, want 2 (open)", s, breakerFailures)
	}
	// It opened while the last failing login was under way, so no login
	// may succeed within breakerOpenFor of that login's start.
	opened := last.start

	// Open: refused at once, the platform is not called even though it is
	// healthy again.
	e.setFaults(t, "")
	before := e.emuCalls(t, "/sns/jscode2session")
	for i := 0; i < 5; i++ {
		r := login("alice")
		expect("login with the breaker open", r, 503, "platform_unavailable")
		checkBound(t, "a refusal of the open breaker (it answers at once)", r, time.Second)
	}
	if after := e.emuCalls(t, "/sns/jscode2session"); after != before {
		t.Errorf("the platform was called %d times while the breaker was open", after-before)
	}
	// What needs no platform is unaffected.
	expect("session with the breaker open", e.call(ctx, req{method: "GET", path: "/v1/session", token: tk.AccessToken}), 200, "")
	expect("refresh with the breaker open", e.call(ctx, req{method: "POST", path: "/v1/token",
		body: map[string]string{"grant_type": "refresh_token", "refresh_token": tk.RefreshToken}}), 200, "")
	e.checkHealthy(t)

	// Recovery: poll until a login succeeds, within the open period and a
	// bound.
	start := time.Now()
	for attempt := 1; ; attempt++ {
		r := login("alice")
		if err := contractError(r); err != nil {
			t.Fatal(err)
		}
		if r.status == 200 {
			since := time.Since(opened)
			t.Logf("a login succeeded again %v after the breaker opened (%d attempts)", since.Round(time.Millisecond), attempt)
			if since < breakerOpenFor {
				t.Errorf("a login got through %v after the breaker opened; it stays open %v", since, breakerOpenFor)
			}
			break
		}
		if r.status != 503 || overdue(start, recoverBound) {
			t.Fatalf("no successful login within %v of clearing the fault: %s", recoverBound, r)
		}
		time.Sleep(100 * time.Millisecond) // polling the child until its breaker closes, bounded above
	}
	if s := state(); s != 0 {
		t.Errorf("breaker state %v after a successful trial, want 0 (closed)", s)
	}
	e.checkHealthy(t)
	if n, ok := e.settleGoroutines(t, base+goroutineSlack); !ok {
		t.Errorf("service goroutines %d, baseline %d", n, base)
	}
	e.stopAll(t)
}

// emuCalls is the emulator's count of calls to a platform path.
func (e *env) emuCalls(t testing.TB, path string) int64 {
	t.Helper()
	b, err := e.emuCall(http.MethodGet, "/_emulator/stats", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Calls map[string]int64 `json:"calls"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st.Calls[path]
}
