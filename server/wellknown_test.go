package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/server"
	"github.com/mplogin/mplogin/verify"
)

// keysRig starts the service with app "w" issuing format, at its own
// address as the issuer. format jwt is set after Validate, which refuses
// it until minting exists: what is tested here is the publishing.
func keysRig(t *testing.T, format string) (*server.Server, *httptest.Server, *testutil.Buffer) {
	t.Helper()
	api := httptest.NewUnstartedServer(nil)
	cfg := config.Default()
	cfg.Store = "sqlite:" + filepath.Join(t.TempDir(), "mplogin.db")
	cfg.MasterKey = bytes.Repeat([]byte{42}, 32)
	cfg.AccessTokens.Issuer = "http://" + api.Listener.Addr().String()
	cfg.AccessTokens.Audience = []string{"https://api.example.com"}
	cfg.Apps = []config.App{{Name: "w", Flavor: platform.FlavorWeChat, AppID: wxAppID, Secret: secret.New(wxSecret)}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Apps[0].AccessTokens.Format = format
	logs := &testutil.Buffer{}
	srv, err := server.New(t.Context(), &cfg, server.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	api.Config.Handler = srv.Handler()
	api.Start()
	t.Cleanup(func() { api.Close(); srv.Close() })
	return srv, api, logs
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return resp, b
}

func TestWellKnownWithoutJWT(t *testing.T) {
	srv, api, _ := keysRig(t, config.FormatOpaque)
	if srv.Signing() != nil {
		t.Fatal("a signing-key manager without any JWT app")
	}
	resp, b := get(t, api.URL+"/.well-known/jwks.json")
	if strings.TrimSpace(string(b)) != `{"keys":[]}` {
		t.Fatalf("JWKS %s, want an empty set", b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Fatalf("Cache-Control %q", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	_, b = get(t, api.URL+"/.well-known/oauth-authorization-server")
	var md map[string]any
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	if md["issuer"] != api.URL || md["jwks_uri"] != api.URL+"/.well-known/jwks.json" {
		t.Fatalf("metadata %s", b)
	}
}

// TestPublishedKeysVerify publishes the keys and metadata, and a token
// signed with the current key verifies with package verify, which reads
// them as any backend would.
func TestPublishedKeysVerify(t *testing.T) {
	srv, api, logs := keysRig(t, config.FormatJWT)
	resp, jwks := get(t, api.URL+"/.well-known/jwks.json")
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Fatalf("Cache-Control %q", cc)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("JWKS %s: %v; want the current and the next key", jwks, err)
	}
	_, oauth := get(t, api.URL+"/.well-known/oauth-authorization-server")
	resp, oidc := get(t, api.URL+"/.well-known/openid-configuration")
	if !bytes.Equal(oauth, oidc) {
		t.Fatalf("the two metadata documents differ:\n%s\n%s", oauth, oidc)
	}
	if resp.Header.Get("Cache-Control") != "public, max-age=300" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata headers %v", resp.Header)
	}
	var md map[string]any
	if err := json.Unmarshal(oidc, &md); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"issuer": api.URL, "jwks_uri": api.URL + "/.well-known/jwks.json", "token_endpoint": api.URL + "/v1/token",
		"introspection_endpoint": api.URL + "/v1/introspect", "revocation_endpoint": api.URL + "/v1/revoke",
	} {
		if md[k] != want {
			t.Errorf("%s = %v, want %v", k, md[k], want)
		}
	}
	for k, want := range map[string]string{
		"grant_types_supported": `["refresh_token"]`, "response_types_supported": `[]`,
		"token_endpoint_auth_methods_supported":         `["none"]`,
		"introspection_endpoint_auth_methods_supported": `["client_secret_basic","client_secret_post"]`,
		"revocation_endpoint_auth_methods_supported":    `["client_secret_basic","client_secret_post"]`,
		"access_token_signing_alg_values_supported":     `["ES256"]`,
		"id_token_signing_alg_values_supported":         `["ES256"]`,
	} {
		if got, _ := json.Marshal(md[k]); string(got) != want {
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}

	// A JWT as scope B will mint it, signed with the current key.
	now := time.Now()
	key, err := srv.Signing().Signer(now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := key.NewSigner((&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": api.URL, "sub": "u1", "aud": "https://api.example.com",
		"client_id": "w", "app": "w", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": "j1", "sid": "s1",
		"platform": "wechat", "openid": "o1"})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := jws.CompactSerialize()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := verify.New(ctx, verify.Options{Issuer: api.URL, Audience: "https://api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("a token signed with the published key: %v", err)
	}
	if id.UserID != "u1" || id.SessionID != "s1" || id.App != "w" {
		t.Fatalf("identity %+v", id)
	}
	if !strings.Contains(logs.String(), key.KID) {
		t.Fatal("the first keys were not logged by kid")
	}
}
