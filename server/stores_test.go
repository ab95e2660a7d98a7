package server_test

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/session"
)

// The service works the same on every store: SQLite, PostgreSQL alone,
// PostgreSQL with sessions in Redis, SQLite with sessions in Redis.
func TestServiceOnEveryStore(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withConfig(func(cfg *config.Config) {
			c.apply(cfg)
			cfg.Policy.MaxSessionsPerIdentity = 4
		}))
		user := fmt.Sprintf("store-%s-%d", c.name, os.Getpid())
		login := r.login(t, "wechat", wxAppID, "w", user)
		access, refresh := login.AccessToken, login.RefreshToken
		if status, v := r.call(t, "GET", "/v1/session", access, ""); status != 200 || v["active"] != true {
			t.Fatalf("check: %d %v", status, v)
		}
		var v map[string]any
		for i, tok := 0, refresh; i < 2; i++ {
			var status int
			status, v = r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+tok+`"}`)
			if status != 200 {
				t.Fatalf("refresh %d: %d %v", i, status, v)
			}
			tok = tokensOf(t, v).RefreshToken
		}
		// A refresh token two generations back, presented again, revokes
		// the session (the one just before it would get a grace).
		if status, _ := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`); status != 400 {
			t.Fatalf("reuse: %d", status)
		}
		if status, _ := r.call(t, "GET", "/v1/session", tokensOf(t, v).AccessToken, ""); status != 401 {
			t.Fatalf("check after reuse: %d, want 401", status)
		}
		// The immediately previous refresh token, within the grace: the
		// very pair it got the first time.
		next := r.login(t, "wechat", wxAppID, "w", user).RefreshToken
		_, rotated := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+next+`"}`)
		status, same := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+next+`"}`)
		if status != 200 || same["access_token"] != rotated["access_token"] || same["refresh_token"] != rotated["refresh_token"] {
			t.Fatalf("refresh within the grace: %d, want the pair of the first", status)
		}

		// A repeated code within its window: a new session, the same
		// user, MaxCodeReplays times; then invalid_code.
		code, _ := r.em.Login("wechat", wxAppID, user, "")
		status, first := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
		if status != 200 {
			t.Fatalf("login: %d %v", status, first)
		}
		var again map[string]any
		for i := range session.MaxCodeReplays {
			status, again = r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
			if status != 200 || tokensOf(t, again).User.ID != login.User.ID {
				t.Fatalf("repeat %d: %d %v", i, status, again)
			}
		}
		if status, v := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`); status != 401 || v["error"] != "invalid_code" {
			t.Fatalf("repeat past the limit: %d %v", status, v)
		}
		// Five sessions live now (the refreshed one and four of the
		// code); max_sessions_per_identity 4 ended the oldest, the
		// refreshed one. The code's first still lives.
		if status, _ := r.call(t, "GET", "/v1/session", tokensOf(t, rotated).AccessToken, ""); status != 401 {
			t.Fatalf("oldest session past the cap: %d, want 401", status)
		}
		if status, _ := r.call(t, "GET", "/v1/session", tokensOf(t, first).AccessToken, ""); status != 200 {
			t.Fatalf("code's first session: %d", status)
		}
		access = tokensOf(t, again).AccessToken
		pc, _ := r.em.PhoneCode(wxAppID, user)
		if status, v := r.call(t, "POST", "/v1/phone", access, `{"code":"`+pc+`"}`); status != 200 || v["phone_number"] != r.em.PhoneNumber(user) {
			t.Fatalf("phone: %d %v", status, v)
		}
		if status, _ := r.call(t, "POST", "/v1/logout", access, ""); status != 204 {
			t.Fatalf("logout: %d", status)
		}
		if status, _ := r.call(t, "GET", "/v1/session", access, ""); status != 401 {
			t.Fatalf("check after logout: %d", status)
		}
		// Every session born of one code ends together.
		if status, _ := r.call(t, "GET", "/v1/session", tokensOf(t, first).AccessToken, ""); status != 401 {
			t.Fatalf("the code's first session after the logout of a repeat: %d, want 401", status)
		}
		if status, _ := r.call(t, "GET", "/readyz", "", ""); status != 200 {
			t.Fatalf("readyz: %d", status)
		}
	})
}

// storeCase is one of the stores the service runs on.
type storeCase struct {
	name, store, sessions string
	need                  []string // the servers it needs, "" when not configured
}

// applyForPhones is apply for a test of phone numbers, with no limit on
// POST /v1/phone: with sessions in Redis, the per-address bucket is shared
// by every test of the package, all from 127.0.0.1, and the tests that
// prove numbers on every store would drain it.
func (c storeCase) applyForPhones(cfg *config.Config) {
	c.apply(cfg)
	cfg.Limits.Phone = config.RouteLimit{}
}

// apply puts c's stores in cfg; SQLite is the rig's own.
func (c storeCase) apply(cfg *config.Config) {
	if c.store != "" {
		cfg.Store = c.store
	}
	cfg.Sessions = c.sessions
}

// eachStore runs test on SQLite, PostgreSQL, PostgreSQL with sessions in
// Redis and SQLite with sessions in Redis, or on those named in only; a
// case whose server is not configured skips with a message.
func eachStore(t *testing.T, test func(t *testing.T, c storeCase), only ...string) {
	pg, rd := os.Getenv("MPLOGIN_TEST_POSTGRES"), os.Getenv("MPLOGIN_TEST_REDIS")
	for _, c := range []storeCase{
		{"sqlite", "", "", nil},
		{"postgres", pg, "", []string{pg}},
		{"postgres+redis", pg, rd, []string{pg, rd}},
		{"sqlite+redis", "", rd, []string{rd}},
	} {
		if len(only) > 0 && !slices.Contains(only, c.name) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for _, n := range c.need {
				if n == "" {
					t.Skip("set MPLOGIN_TEST_POSTGRES and MPLOGIN_TEST_REDIS (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable, redis://127.0.0.1:6379/0) to run this test")
				}
			}
			test(t, c)
		})
	}
}
