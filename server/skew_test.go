package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
)

// Two instances over one PostgreSQL and one Redis, one's clock 10 s behind
// the other's: a client is served by either, whichever it reaches, and
// whichever it reached before. The instance behind used to refuse a
// client's second login (429) as soon as the lag passed 3 s: the shared
// rate-limit bucket read 100 tokens short on its clock.
func TestInstancesWithSkewedClocks(t *testing.T) {
	pg, rd := os.Getenv("MPLOGIN_TEST_POSTGRES"), os.Getenv("MPLOGIN_TEST_REDIS")
	if pg == "" || rd == "" {
		t.Skip("set MPLOGIN_TEST_POSTGRES and MPLOGIN_TEST_REDIS (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable, redis://127.0.0.1:6379/0) to run this test")
	}
	// An app name of its own, so that its per-app buckets in the shared
	// Redis are this test's alone.
	var b [6]byte
	_, _ = rand.Read(b[:])
	app := "skew" + hex.EncodeToString(b[:])
	shared := withConfig(func(c *config.Config) {
		c.Store, c.Sessions = pg, rd
		c.Apps = c.Apps[:1] // "w", the WeChat app
		c.Apps[0].Name = app
	})
	aheadRig := newRig(t, shared)
	behindRig := newRig(t, shared, withEmulatorOf(aheadRig), withNow(func() time.Time { return time.Now().Add(-10 * time.Second) }))
	em, ahead, behind := aheadRig.em, aheadRig.api.URL, behindRig.api.URL

	for _, dir := range []struct{ name, from, to string }{{"ahead to behind", ahead, behind}, {"behind to ahead", behind, ahead}} {
		t.Run(dir.name, func(t *testing.T) {
			login := func(base, user string) tokenReply {
				t.Helper()
				code, err := em.Login("wechat", wxAppID, user, "")
				if err != nil {
					t.Fatal(err)
				}
				status, v := callBase(t, base, "POST", "/v1/login", "", `{"app":"`+app+`","code":"`+code+`"}`)
				if status != 200 {
					t.Fatalf("login: %d %v", status, v)
				}
				return tokensOf(t, v)
			}
			user := "skew-" + hex.EncodeToString(b[:]) + "-" + strings.ReplaceAll(dir.name, " ", "-")
			first := login(dir.from, user)
			second := login(dir.to, user)
			if first.User.ID != second.User.ID {
				t.Fatal("two users for one person")
			}
			access, refresh := first.AccessToken, first.RefreshToken
			if status, v := callBase(t, dir.to, "GET", "/v1/session", access, ""); status != 200 {
				t.Fatalf("check: %d %v", status, v)
			}
			status, v := callBase(t, dir.to, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+refresh+`"}`)
			if status != 200 {
				t.Fatalf("refresh: %d %v", status, v)
			}
			access = tokensOf(t, v).AccessToken
			if status, v := callBase(t, dir.from, "GET", "/v1/session", access, ""); status != 200 {
				t.Fatalf("check after refresh: %d %v", status, v)
			}
			if status, v := callBase(t, dir.to, "POST", "/v1/logout", access, ""); status != 204 {
				t.Fatalf("logout: %d %v", status, v)
			}
			if status, _ := callBase(t, dir.from, "GET", "/v1/session", access, ""); status != 401 {
				t.Fatalf("check after logout: %d, want 401", status)
			}
		})
	}
}
