package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/server"
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
	em := emulator.New(emulator.Config{Apps: []emulator.App{{Family: "wechat", AppID: wxAppID, Secret: wxSecret}}})
	emSrv := httptest.NewServer(em)
	t.Cleanup(emSrv.Close)
	// An app name of its own, so that its per-app buckets in the shared
	// Redis are this test's alone.
	var b [6]byte
	_, _ = rand.Read(b[:])
	app := "skew" + hex.EncodeToString(b[:])
	start := func(now func() time.Time) string {
		cfg := config.Default()
		cfg.Store, cfg.Sessions = pg, rd
		cfg.MasterKey = bytes.Repeat([]byte{42}, 32)
		cfg.Apps = []config.App{{Name: app, Flavor: platform.FlavorWeChat, AppID: wxAppID, Secret: secret.New(wxSecret), Endpoint: emSrv.URL}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv, err := server.New(context.Background(), &cfg, server.Options{Now: now, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		api := httptest.NewServer(srv.Handler())
		t.Cleanup(func() { api.Close(); srv.Close() })
		return api.URL
	}
	ahead := start(time.Now)
	behind := start(func() time.Time { return time.Now().Add(-10 * time.Second) })

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

func callBase(t *testing.T, base, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	_ = json.Unmarshal(raw, &v)
	return resp.StatusCode, v
}
