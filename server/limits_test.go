package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/userdata"
)

// metricsText is the service's /metrics.
func (r *rig) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(r.api.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// logLines is the service's log so far, one map per JSON line.
func (r *rig) logLines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// A session asking WeChat again and again whether its session key is
// current is limited per session, and all sessions of an app together per
// app: the flood stops before it reaches WeChat. Plain session checks are
// not limited.
func TestVerifyRateLimited(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.Config) {
		c.Limits.Verify.Session = config.Limit{Rate: 0.0001, Burst: 3}
		c.Limits.Verify.App = config.Limit{Rate: 0.0001, Burst: 5}
	}))
	alice := r.login(t, "wechat", wxAppID, "w", "alice").AccessToken
	bob := r.login(t, "wechat", wxAppID, "w", "bob").AccessToken
	verify := func(access string) (int, map[string]any) {
		t.Helper()
		return r.call(t, "GET", "/v1/session?verify=platform", access, "")
	}
	for i := range 10 {
		status, v := verify(alice)
		switch {
		case i < 3 && (status != 200 || v["session_key_valid"] != true):
			t.Fatalf("check %d: %d %v", i, status, v)
		case i >= 3 && (status != 429 || v["error"] != "rate_limited"):
			t.Fatalf("check %d: %d %v, want 429", i, status, v)
		}
	}
	if n := r.em.Stats()["/wxa/checksession"]; n != 3 {
		t.Fatalf("%d checksession calls reached WeChat, want 3", n)
	}
	// Bob has his own session bucket, but the app's holds 2 more.
	for i, want := range []int{200, 200, 429} {
		if status, v := verify(bob); status != want {
			t.Fatalf("bob's check %d: %d %v, want %d", i, status, v, want)
		}
	}
	if status, v := r.call(t, "GET", "/v1/session", alice, ""); status != 200 {
		t.Fatalf("plain check: %d %v", status, v)
	}
	text := r.metricsText(t)
	for _, want := range []string{
		`mplogin_rate_limited_total{route="GET /v1/session",scope="session"} 7`,
		`mplogin_rate_limited_total{route="GET /v1/session",scope="app"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Rate-limit refusals are counted under the route that refused them.
func TestRateLimitedMetricNamesTheRoute(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.Config) { c.Limits.Login.IP = config.Limit{Rate: 0.0001, Burst: 1} }))
	for i, want := range []int{401, 429} {
		if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"never-minted"}`); status != want {
			t.Fatalf("login %d: %d %v, want %d", i, status, v, want)
		}
	}
	text := r.metricsText(t)
	if want := `mplogin_rate_limited_total{route="POST /v1/login",scope="ip"} 1`; !strings.Contains(text, want) {
		t.Fatalf("metrics lack %s:\n%s", want, grep(text, "mplogin_rate_limited_total"))
	}
}

// With the rate limits off, a failed decryption is still counted and logged
// under its app.
func TestDecryptFailureNamesTheAppWithoutLimits(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.Config) { c.Limits.Enabled = false }))
	access := r.login(t, "wechat", wxAppID, "w", "gus").AccessToken
	if status, v := r.call(t, "POST", "/v1/userdata/decrypt", access, `{"encrypted_data":"AAAA","iv":"AAAA"}`); status != 422 {
		t.Fatalf("decrypt: %d %v", status, v)
	}
	if text := r.metricsText(t); !strings.Contains(text, `mplogin_decrypt_failures_total{app="w"} 1`) {
		t.Fatalf("metrics: %s", grep(text, "mplogin_decrypt_failures_total"))
	}
	found := false
	for _, l := range r.logLines(t) {
		if l["msg"] == "request" && l["route"] == "POST /v1/userdata/decrypt" {
			found = true
			if l["app"] != "w" {
				t.Errorf("request line without the app: %v", l)
			}
		}
	}
	if !found {
		t.Fatal("no request line for the decryption")
	}
}

// Every request line names the client; the security events (a refresh
// token replayed, the decrypt failure cap reached, a logout) carry the
// request's id and client and, where the session is known, its app, user
// and session ids, so that they can be traced to one session and one
// client.
func TestLogsCarryClientAndIDs(t *testing.T) {
	r := newRig(t)
	const key, wrongKey = "AAECAwQFBgcICQoLDA0ODw==", "EBESExQVFhcYGRobHB0eHw=="
	code, err := r.em.Login("wechat", wxAppID, "hal", key)
	if err != nil {
		t.Fatal(err)
	}
	status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
	if status != 200 {
		t.Fatal(status, v)
	}
	login := tokensOf(t, v)
	user, refresh := login.User.ID, login.RefreshToken
	send := func(id, method, path, auth, body string) int {
		t.Helper()
		status, _ := callWith(t, r.api.URL, method, path, auth, body, http.Header{"X-Request-Id": {id}})
		return status
	}
	grant := `{"grant_type":"refresh_token","refresh_token":"` + refresh + `"}`
	status, v = r.call(t, "POST", "/v1/token", "", grant)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, v)
	}
	// Rotated once more, the first token is two generations back: past the
	// grace, presenting it is a replay.
	if s := send("rotate", "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+tokensOf(t, v).RefreshToken+`"}`); s != 200 {
		t.Fatalf("second refresh: %d", s)
	}
	if s := send("replay", "POST", "/v1/token", "", grant); s != 400 {
		t.Fatalf("replay: %d", s)
	}
	// A new session for the decryptions and the logout.
	code, _ = r.em.Login("wechat", wxAppID, "hal", key)
	_, v = r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
	access := tokensOf(t, v).AccessToken
	plain := `{"openId":"o","watermark":{"timestamp":` + fmt.Sprint(time.Now().Unix()) + `,"appid":"` + wxAppID + `"}}`
	data, iv, err := userdata.EncryptWeChat(secret.New(wrongKey), []byte(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range session.MaxDecryptFailures {
		if s := send(fmt.Sprintf("bad-%d", i), "POST", "/v1/userdata/decrypt", access, `{"encrypted_data":"`+data+`","iv":"`+iv+`"}`); s != 422 {
			t.Fatalf("decrypt %d: %d", i, s)
		}
	}
	if s := send("bye", "POST", "/v1/logout", access, ""); s != 204 {
		t.Fatalf("logout: %d", s)
	}

	lines := r.logLines(t)
	byMsg := map[string]map[string]any{}
	requests := 0
	for _, l := range lines {
		msg, _ := l["msg"].(string)
		if msg == "request" {
			requests++
			if l["client"] != "127.0.0.1" {
				t.Errorf("request line without the client: %v", l)
			}
			continue
		}
		byMsg[msg] = l
	}
	if requests == 0 {
		t.Error("no request lines: their client went unchecked")
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, want := range []struct {
		msg, requestID string
	}{
		{"refresh token reused: session revoked", "replay"},
		{"decrypt failure cap reached: the session decrypts nothing more", fmt.Sprintf("bad-%d", session.MaxDecryptFailures-1)},
		{"logout", "bye"},
	} {
		l, ok := byMsg[want.msg]
		if !ok {
			t.Errorf("no %q line", want.msg)
			continue
		}
		if l["request_id"] != want.requestID || l["client"] != "127.0.0.1" {
			t.Errorf("%q: request_id %v, client %v; want %s, 127.0.0.1", want.msg, l["request_id"], l["client"], want.requestID)
		}
		sess, _ := l["session"].(string)
		if l["app"] != "w" || l["user"] != user || !hexID.MatchString(sess) {
			t.Errorf("%q: app %v, user %v, session %v; want w, %s and a session id", want.msg, l["app"], l["user"], l["session"], user)
		}
	}
	if a, b := byMsg["logout"]["session"], byMsg["decrypt failure cap reached: the session decrypts nothing more"]["session"]; a != b {
		t.Errorf("the cap and the logout of one session name sessions %v and %v", b, a)
	}
}

// grep returns the lines of text that contain s.
func grep(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
