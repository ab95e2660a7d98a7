package server_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/secret"
)

// Introspection, revocation and the gateway check work the same on every
// store, the refresh-token lookup without a rotation included.
func TestIntrospectOnEveryStore(t *testing.T) {
	const clientSecret = "server-test-client-secret-77"
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("orders:"+clientSecret))
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withConfig(func(cfg *config.Config) {
			c.apply(cfg)
			cfg.Issuer = "https://login.example.com"
			cfg.Clients = []config.Client{{ID: "orders", Secret: secret.New(clientSecret)}}
			cfg.Apps[0].ExposeUnionID = true
		}))
		form := func(path, auth string, v url.Values) (int, map[string]any) {
			t.Helper()
			req, _ := http.NewRequest("POST", r.api.URL+path, strings.NewReader(v.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			return resp.StatusCode, m
		}
		introspect := func(tok string) map[string]any {
			t.Helper()
			status, m := form("/v1/introspect", basicAuth, url.Values{"token": {tok}})
			if status != 200 {
				t.Fatalf("introspect: %d %v", status, m)
			}
			return m
		}
		authz := func(tok string) (int, http.Header) {
			t.Helper()
			req, _ := http.NewRequest("GET", r.api.URL+"/v1/authz/api/x", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode, resp.Header
		}
		user := fmt.Sprintf("introspect-%s-%d", c.name, os.Getpid())
		login := r.login(t, "wechat", wxAppID, "w", user)

		in := introspect(login.AccessToken)
		if in["active"] != true || in["sub"] != login.User.ID || in["iss"] != "https://login.example.com" ||
			in["client_id"] != "w" || in["platform"] != "wechat" || in["openid"] != login.User.OpenID ||
			in["unionid"] != login.User.UnionID || login.User.UnionID == "" || in["sid"] == nil {
			t.Fatalf("introspect access token: %v (login %+v)", in, login.User)
		}
		rin := introspect(login.RefreshToken)
		if rin["active"] != true || rin["token_type"] != "refresh_token" || rin["sid"] != in["sid"] {
			t.Fatalf("introspect refresh token: %v", rin)
		}
		if status, h := authz(login.AccessToken); status != 200 || h.Get("X-User-Id") != login.User.ID ||
			h.Get("X-Unionid") != login.User.UnionID || h.Get("X-Mplogin-Session") != in["sid"] {
			t.Fatalf("authz: %d %v", status, h)
		}

		// Introspected, the refresh token still refreshes; spent, it is
		// inactive, and the look does not end the session.
		status, v := r.call(t, "POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+login.RefreshToken+`"}`)
		if status != 200 {
			t.Fatalf("refresh after introspection: %d %v", status, v)
		}
		next := tokensOf(t, v)
		if m := introspect(login.RefreshToken); m["active"] != false || len(m) != 1 {
			t.Fatalf("spent refresh token: %v", m)
		}
		if status, _ := authz(next.AccessToken); status != 200 {
			t.Fatalf("authz after introspecting a spent refresh token: %d", status)
		}

		// The holder revokes with the refresh token: everything ends.
		if status, _ := form("/v1/revoke", "", url.Values{"token": {next.RefreshToken}}); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		for _, tok := range []string{next.AccessToken, next.RefreshToken} {
			if m := introspect(tok); m["active"] != false {
				t.Fatalf("after revocation: %v", m)
			}
		}
		if status, h := authz(next.AccessToken); status != 401 || h.Get("X-User-Id") != "" {
			t.Fatalf("authz after revocation: %d %v", status, h)
		}

		// A client revokes another session with its access token.
		other := r.login(t, "wechat", wxAppID, "w", user+"-2")
		if status, _ := form("/v1/revoke", basicAuth, url.Values{"token": {other.AccessToken}}); status != 200 {
			t.Fatalf("revoke by a client: %d", status)
		}
		if status, _ := authz(other.AccessToken); status != 401 {
			t.Fatalf("authz after a client's revocation: %d", status)
		}
		if status, _ := form("/v1/revoke", "", url.Values{"token": {"mpr_" + strings.Repeat("Q", 43)}}); status != 200 {
			t.Fatalf("revoke of an unknown token: %d", status)
		}
	})
}
