package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// goroutineSlack is how far the service's goroutine count may stay above its
// baseline once a case is over and the test's connections are closed: the
// platform client keeps up to one idle keep-alive connection to the
// emulator per request that ran at once (two goroutines each), plus a few
// for connections still being torn down.
const goroutineSlack = 24

// recoverBound is how long a login may take to succeed again once the fault
// is gone and the breaker (open 10 s) had opened.
const recoverBound = 15 * time.Second

// loginFault is one fault on /sns/jscode2session and what a login under it
// must get.
type loginFault struct {
	name  string
	rules string // PUT /_emulator/faults body
	n     int    // logins sent at once under the fault (< 5, so the breaker stays closed)
	want  int    // status; 0 = 200 or 503, case by case
	code  string // error code when want is an error
	// minDur: the answer cannot come sooner (the latency was honoured).
	minDur time.Duration
	// mayTrip: the case may open the breaker, so the first login after it
	// may be refused until the breaker closes.
	mayTrip bool
	// sends is how often each login must reach /sns/jscode2session (0: not
	// checked): once, as a one-time code must, or twice where the
	// platform said it was busy and one retry is allowed.
	sends int
	// retry is the answer when the client sends the same codes again once
	// the fault is gone: 200 where the platform never consumed the code
	// (the fault answered in its place) or where the login had succeeded (a
	// repeat of an exchanged code gets a new session); 401 invalid_code where
	// the platform consumed the code and its answer was lost (truncated or
	// too slow), as WeChat would answer "code been used".
	retry int
}

var loginFaults = []loginFault{
	{name: "latency below the deadline", rules: `{"path":"/sns/jscode2session","latency_ms":800}`, n: 4,
		want: 200, minDur: 800 * time.Millisecond, sends: 1, retry: 200},
	{name: "latency beyond the deadline", rules: `{"path":"/sns/jscode2session","latency_ms":3500}`, n: 4,
		want: 503, code: "platform_unavailable", minDur: platformTimeout - 100*time.Millisecond, sends: 1, retry: 200},
	{name: "latency on every path beyond the deadline", rules: `{"latency_ms":3500}`, n: 2,
		want: 503, code: "platform_unavailable", minDur: platformTimeout - 100*time.Millisecond, sends: 1, retry: 200},
	{name: "connection reset", rules: `{"path":"/sns/jscode2session","drop":true}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 200},
	{name: "truncated body", rules: `{"path":"/sns/jscode2session","truncate":true}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 401},
	{name: "empty body", rules: `{"path":"/sns/jscode2session","empty":true}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 200},
	{name: "garbage HTML", rules: `{"path":"/sns/jscode2session","garbage":true}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 200},
	{name: "garbage HTML with status 502", rules: `{"path":"/sns/jscode2session","garbage":true,"status":502}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 200},
	{name: "errcode -1 busy", rules: `{"path":"/sns/jscode2session","errcode":-1}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 2, retry: 200},
	{name: "errcode 45011 rate limited", rules: `{"path":"/sns/jscode2session","errcode":45011}`, n: 4,
		want: 429, code: "rate_limited", sends: 1, retry: 200},
	{name: "status 500", rules: `{"path":"/sns/jscode2session","status":500}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 200},
	{name: "status 502", rules: `{"path":"/sns/jscode2session","status":502}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 1, retry: 200},
	{name: "status 504 with errcode -1", rules: `{"path":"/sns/jscode2session","status":504,"errcode":-1}`, n: 4,
		want: 503, code: "platform_unavailable", sends: 2, retry: 200},
	{name: "slow body within the deadline", rules: `{"path":"/sns/jscode2session","slow_body_ms":500}`, n: 4,
		want: 200, minDur: 500 * time.Millisecond, sends: 1, retry: 200},
	{name: "slow body beyond the deadline", rules: `{"path":"/sns/jscode2session","slow_body_ms":3500}`, n: 4,
		want: 503, code: "platform_unavailable", minDur: platformTimeout - 100*time.Millisecond, sends: 1, retry: 401},
	{name: "errcode 40029 invalid code", rules: `{"path":"/sns/jscode2session","errcode":40029}`, n: 4,
		want: 401, code: "invalid_code", sends: 1, retry: 200},
	{name: "errcode 40163 code used", rules: `{"path":"/sns/jscode2session","errcode":40163}`, n: 4,
		want: 401, code: "invalid_code", sends: 1, retry: 200},
	{name: "errcode 40226 user blocked", rules: `{"path":"/sns/jscode2session","errcode":40226}`, n: 4,
		want: 403, code: "user_blocked", sends: 1, retry: 200},
	{name: "errcode 40125 bad secret", rules: `{"path":"/sns/jscode2session","errcode":40125}`, n: 4,
		want: 502, code: "platform_error", sends: 1, retry: 200},
	{name: "unknown errcode", rules: `{"path":"/sns/jscode2session","errcode":98765}`, n: 4,
		want: 502, code: "platform_error", sends: 1, retry: 200},
	{name: "error_rate 0.5 mixed", rules: `[{"path":"/sns/jscode2session","garbage":true,"error_rate":0.5},` +
		`{"latency_ms":150,"error_rate":0.5}]`, n: 16, want: 0, mayTrip: true, retry: 200},
}

// TestPlatformFaults drives logins (and the calls beyond login) against
// every fault the emulator can inject on the platform paths, in one emulator
// and one service, one fault at a time.
func TestPlatformFaults(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOptions{})
	e.login(t, appShop, appidShop, "warmup")
	e.tr.CloseIdleConnections()
	base := e.goroutines(t)
	t.Logf("service goroutines after warm-up: %d", base)

	for _, fc := range loginFaults {
		t.Run(fc.name, func(t *testing.T) {
			codes := e.runLoginFault(t, fc)
			e.afterCase(t, base, !fc.mayTrip)
			e.retryCodes(t, codes, fc.retry)
		})
	}

	t.Run("platform down: sessions, refresh, decrypt and logout still work", func(t *testing.T) {
		e.platformDown(t)
		e.afterCase(t, base, true)
	})
	t.Run("phone and session check under faults", func(t *testing.T) {
		e.phoneFaults(t)
		e.afterCase(t, base, true)
	})

	e.checkHealthy(t)
	e.stopAll(t)
}

// runLoginFault sets the case's rules and sends its logins at once. It
// returns the codes it used.
func (e *env) runLoginFault(t *testing.T, fc loginFault) []string {
	codes := make([]string, fc.n)
	for i := range codes {
		codes[i] = e.mintCode(t, appidShop, fmt.Sprintf("u%d", i))
	}
	e.setFaults(t, fc.rules)
	defer e.setFaults(t, "")
	callsBefore := e.emuCalls(t, "/sns/jscode2session")
	replies := make([]reply, fc.n)
	conc := min(fc.n, 4)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				replies[i] = e.call(context.Background(), req{method: "POST", path: "/v1/login",
					body: map[string]string{"app": appShop, "code": codes[i]}})
			}
		}()
	}
	for i := range codes {
		next <- i
	}
	close(next)
	wg.Wait()

	if fc.sends > 0 {
		// Every login has answered, so every call it made has reached the
		// emulator, which counts a call as it arrives.
		if got := e.emuCalls(t, "/sns/jscode2session") - callsBefore; got != int64(fc.sends*fc.n) {
			t.Errorf("%d logins reached /sns/jscode2session %d times, want %d (%d each)", fc.n, got, fc.sends*fc.n, fc.sends)
		}
	}
	counts := map[int]int{}
	var slowest time.Duration
	for i, r := range replies {
		counts[r.status]++
		slowest = max(slowest, r.dur)
		if err := contractError(r); err != nil {
			t.Errorf("login %d: %v", i, err)
			continue
		}
		switch {
		case fc.want == 0 && r.status != 200 && !(r.status == 503 && r.code == "platform_unavailable"):
			t.Errorf("login %d: want 200 or 503 platform_unavailable, got %s", i, r)
		case fc.want != 0 && (r.status != fc.want || (fc.code != "" && r.code != fc.code)):
			t.Errorf("login %d: want %d %s, got %s", i, fc.want, fc.code, r)
		}
		checkBound(t, fmt.Sprintf("login %d", i), r, answerBound)
		if fc.minDur > 0 && r.status == fc.want && r.dur < fc.minDur {
			t.Errorf("login %d answered in %v, sooner than the fault allows (%v): %s", i, r.dur, fc.minDur, r)
		}
		if r.status == 200 {
			var tk tokens
			if err := json.Unmarshal(r.body, &tk); err != nil || tk.AccessToken == "" {
				t.Errorf("login %d: 200 without tokens: %s", i, r)
			}
		}
	}
	t.Logf("%d logins: statuses %v, slowest %v", fc.n, counts, slowest.Round(time.Millisecond))
	return codes
}

// retryCodes sends the codes of a case again, with no fault in force, and
// expects want for each.
func (e *env) retryCodes(t *testing.T, codes []string, want int) {
	t.Helper()
	if want == 0 {
		return
	}
	for i, code := range codes {
		r := e.call(context.Background(), req{method: "POST", path: "/v1/login",
			body: map[string]string{"app": appShop, "code": code}})
		if err := contractError(r); err != nil {
			t.Errorf("code %d sent again: %v", i, err)
			continue
		}
		if r.status != want || (want == 401 && r.code != "invalid_code") {
			t.Errorf("code %d sent again after the fault: want %d, got %s", i, want, r)
		}
	}
}

// afterCase: with the faults gone a login succeeds (at once, or, if the
// breaker may have opened, within recoverBound), the service is healthy,
// and its goroutines are back near the baseline.
func (e *env) afterCase(t *testing.T, base int, strict bool) {
	t.Helper()
	e.setFaults(t, "")
	start := time.Now()
	for attempt := 1; ; attempt++ {
		r := e.call(context.Background(), req{method: "POST", path: "/v1/login",
			body: map[string]string{"app": appShop, "code": e.mintCode(t, appidShop, "recover")}})
		if err := contractError(r); err != nil {
			t.Fatalf("login after the fault: %v", err)
		}
		if r.status == 200 {
			if attempt > 1 {
				t.Logf("a login succeeded again after %v (%d attempts)", time.Since(start).Round(time.Millisecond), attempt)
			}
			break
		}
		if strict || r.status != 503 || overdue(start, recoverBound) {
			t.Fatalf("login after the fault was cleared (attempt %d, %v): %s", attempt, time.Since(start), r)
		}
		time.Sleep(100 * time.Millisecond) // polling the child until its breaker closes, bounded above
	}
	e.checkHealthy(t)
	n, ok := e.settleGoroutines(t, base+goroutineSlack)
	if !ok {
		t.Errorf("service goroutines %d, baseline %d: more than %d left over", n, base, goroutineSlack)
	}
}

// platformDown: with every platform path resetting connections, logins fail
// with 503, and everything that does not need the platform still works.
func (e *env) platformDown(t *testing.T) {
	tk := e.login(t, appShop, appidShop, "downuser")
	ud := e.userData(t, appidShop, "downuser", "userinfo")
	tk2 := e.login(t, appShop, appidShop, "downuser2")
	pc := e.phoneCode(t, appidShop, "downuser2")
	e.setFaults(t, `{"drop":true}`)
	ctx := context.Background()
	expect := func(what string, r reply, status int, code string) {
		t.Helper()
		if err := contractError(r); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if r.status != status || r.code != code {
			t.Errorf("%s: want %d %s, got %s", what, status, code, r)
		}
		checkBound(t, what, r, answerBound)
	}
	for i := 0; i < 2; i++ {
		r := e.call(ctx, req{method: "POST", path: "/v1/login", body: map[string]string{"app": appShop, "code": e.mintCode(t, appidShop, "downuser")}})
		expect("login", r, 503, "platform_unavailable")
	}
	expect("session", e.call(ctx, req{method: "GET", path: "/v1/session", token: tk.AccessToken}), 200, "")
	expect("decrypt", e.call(ctx, req{method: "POST", path: "/v1/userdata/decrypt", token: tk.AccessToken, body: ud}), 200, "")
	r := e.call(ctx, req{method: "POST", path: "/v1/token", body: map[string]string{"grant_type": "refresh_token", "refresh_token": tk.RefreshToken}})
	expect("refresh", r, 200, "")
	var fresh tokens
	_ = json.Unmarshal(r.body, &fresh)
	expect("session with the refreshed token", e.call(ctx, req{method: "GET", path: "/v1/session", token: fresh.AccessToken}), 200, "")
	expect("logout", e.call(ctx, req{method: "POST", path: "/v1/logout", token: fresh.AccessToken}), 204, "")
	expect("session after logout", e.call(ctx, req{method: "GET", path: "/v1/session", token: fresh.AccessToken}), 401, "invalid_token")
	// The app's access token was never fetched: the phone code needs the
	// platform, so it is 503, not 500.
	expect("phone code", e.call(ctx, req{method: "POST", path: "/v1/phone", token: tk2.AccessToken,
		body: map[string]string{"code": pc}}), 503, "platform_unavailable")
	e.setFaults(t, "")
}

// phoneFaults: POST /v1/phone with a phone code, and GET
// /v1/session?verify=platform, under faults on the access-token fetch and on
// the business calls.
func (e *env) phoneFaults(t *testing.T) {
	ctx := context.Background()
	ph1 := e.login(t, appPhone1, appidPh1, "pa")
	ph2 := e.login(t, appPhone2, appidPh2, "pb")
	ph3 := e.login(t, appPhone3, appidPh3, "pc")
	shop := e.login(t, appShop, appidShop, "checker")

	phone := func(tk tokens, code string) reply {
		return e.call(ctx, req{method: "POST", path: "/v1/phone", token: tk.AccessToken, body: map[string]string{"code": code}})
	}
	check := func(what string, r reply, status int, code string) {
		t.Helper()
		if err := contractError(r); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		if r.status != status || r.code != code {
			t.Errorf("%s: want %d %s, got %s", what, status, code, r)
		}
		checkBound(t, what, r, answerBound)
	}
	// okPhone: with the faults gone, the phone code (not spent by a failed
	// token fetch) resolves.
	okPhone := func(what string, tk tokens, code string) {
		t.Helper()
		e.setFaults(t, "")
		r := phone(tk, code)
		check(what, r, 200, "")
		var p struct {
			PhoneNumber string `json:"phone_number"`
		}
		if r.status == 200 && (json.Unmarshal(r.body, &p) != nil || p.PhoneNumber == "") {
			t.Errorf("%s: no phone number: %s", what, r)
		}
	}

	// The first token fetch of an app fails: 503, and the phone code, never
	// sent to WeChat, still works once the platform is back.
	code := e.phoneCode(t, appidPh1, "pa")
	e.setFaults(t, `{"path":"/cgi-bin/stable_token","garbage":true}`)
	check("phone, stable_token garbage", phone(ph1, code), 503, "platform_unavailable")
	okPhone("phone after stable_token garbage", ph1, code)

	code = e.phoneCode(t, appidPh2, "pb")
	e.setFaults(t, `{"path":"/cgi-bin/stable_token","drop":true}`)
	check("phone, stable_token reset", phone(ph2, code), 503, "platform_unavailable")
	okPhone("phone after stable_token reset", ph2, code)

	code = e.phoneCode(t, appidPh3, "pc")
	e.setFaults(t, `{"path":"/cgi-bin/stable_token","latency_ms":3500}`)
	check("phone, stable_token beyond the deadline", phone(ph3, code), 503, "platform_unavailable")
	okPhone("phone after a slow stable_token", ph3, code)

	// Faults on the business call itself (the token is cached now).
	for _, fc := range []struct{ name, rules, code string }{
		{"getuserphonenumber busy", `{"path":"/wxa/business/getuserphonenumber","errcode":-1}`, "platform_unavailable"},
		{"getuserphonenumber reset", `{"path":"/wxa/business/getuserphonenumber","drop":true}`, "platform_unavailable"},
		{"getuserphonenumber garbage", `{"path":"/wxa/business/getuserphonenumber","garbage":true}`, "platform_unavailable"},
		{"getuserphonenumber empty", `{"path":"/wxa/business/getuserphonenumber","empty":true}`, "platform_unavailable"},
		{"getuserphonenumber beyond the deadline", `{"path":"/wxa/business/getuserphonenumber","latency_ms":3500}`, "platform_unavailable"},
		{"getuserphonenumber status 502", `{"path":"/wxa/business/getuserphonenumber","status":502}`, "platform_unavailable"},
	} {
		code := e.phoneCode(t, appidPh1, "pa")
		e.setFaults(t, fc.rules)
		check("phone, "+fc.name, phone(ph1, code), 503, fc.code)
		e.setFaults(t, "")
		okPhone("phone after "+fc.name, ph1, e.phoneCode(t, appidPh1, "pa"))
	}

	// WeChat rejects the access token once: mplogin fetches a new one and
	// sends the code again, once.
	code = e.phoneCode(t, appidPh1, "pa")
	e.setFaults(t, `{"path":"/wxa/business/getuserphonenumber","errcode":40001,"times":1}`)
	check("phone, access token rejected once", phone(ph1, code), 200, "")
	e.setFaults(t, "")

	// Session check with WeChat's verdict on the session key.
	verify := func() reply {
		return e.call(ctx, req{method: "GET", path: "/v1/session?verify=platform", token: shop.AccessToken})
	}
	for _, rules := range []string{
		`{"path":"/wxa/checksession","garbage":true}`,
		`{"path":"/wxa/checksession","drop":true}`,
		`{"path":"/wxa/checksession","errcode":-1}`,
		`{"path":"/wxa/checksession","latency_ms":3500}`,
	} {
		e.setFaults(t, rules)
		check("verify=platform, "+rules, verify(), 503, "platform_unavailable")
		e.setFaults(t, "")
		r := verify()
		check("verify=platform after "+rules, r, 200, "")
		var v struct {
			Valid *bool `json:"session_key_valid"`
		}
		if r.status == 200 && (json.Unmarshal(r.body, &v) != nil || v.Valid == nil || !*v.Valid) {
			t.Errorf("verify=platform: session_key_valid not true: %s", r)
		}
	}
	// The plain session check never calls the platform.
	e.setFaults(t, `{"drop":true}`)
	check("session, platform down", e.call(ctx, req{method: "GET", path: "/v1/session", token: shop.AccessToken}), 200, "")
	e.setFaults(t, "")
}
