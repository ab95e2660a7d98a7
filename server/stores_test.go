package server_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/mplogin/mplogin/config"
)

// The service works the same on every store: PostgreSQL alone, PostgreSQL
// with sessions in Redis, SQLite with sessions in Redis.
func TestServiceOnEveryStore(t *testing.T) {
	pg, rd := os.Getenv("MPLOGIN_TEST_POSTGRES"), os.Getenv("MPLOGIN_TEST_REDIS")
	for _, c := range []struct {
		name, store, sessions string
		need                  []string
	}{
		{"postgres", pg, "", []string{pg}},
		{"postgres+redis", pg, rd, []string{pg, rd}},
		{"sqlite+redis", "", rd, []string{rd}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, n := range c.need {
				if n == "" {
					t.Skip("set MPLOGIN_TEST_POSTGRES and MPLOGIN_TEST_REDIS (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable, redis://127.0.0.1:6379/0) to run this test")
				}
			}
			r := newRigWith(t, func(cfg *config.Config) {
				if c.store != "" {
					cfg.Store = c.store
				}
				cfg.Sessions = c.sessions
			})
			user := fmt.Sprintf("store-%s-%d", c.name, os.Getpid())
			login := r.login(t, "wechat", wxAppID, "w", user)
			access, refresh := login["access_token"].(string), login["refresh_token"].(string)
			if status, v := r.call(t, "GET", "/v1/session", access, ""); status != 200 || v["active"] != true {
				t.Fatalf("check: %d %v", status, v)
			}
			status, v := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`)
			if status != 200 {
				t.Fatalf("refresh: %d %v", status, v)
			}
			// The spent refresh token, presented again, revokes the session.
			if status, _ := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`); status != 400 {
				t.Fatalf("reuse: %d", status)
			}
			if status, _ := r.call(t, "GET", "/v1/session", v["access_token"].(string), ""); status != 401 {
				t.Fatalf("check after reuse: %d, want 401", status)
			}
			// A repeated code within its lifetime: a new session, the same user.
			code, _ := r.em.Login("wechat", wxAppID, user, "")
			a, _ := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
			_, again := r.call(t, "POST", "/v1/login", "", `{"app":"w","code":"`+code+`"}`)
			if a != 200 || again["user"].(map[string]any)["id"] != login["user"].(map[string]any)["id"] {
				t.Fatalf("repeated code: %d %v", a, again)
			}
			access = again["access_token"].(string)
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
			if status, _ := r.call(t, "GET", "/readyz", "", ""); status != 200 {
				t.Fatalf("readyz: %d", status)
			}
		})
	}
}
