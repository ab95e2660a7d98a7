package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/verify"
)

// An app with JWT access tokens, end to end: the login's JWT verifies in
// a business API (package verify, with the keys the service publishes,
// no call back), works on the service's own routes, in /v1/authz and in
// introspection; after a logout the service refuses it at once, and so
// does a route that requires liveness, while a plain local check still
// takes it until it expires, as documented.
func TestJWTEndToEnd(t *testing.T) {
	eachStore(t, testJWTEndToEnd, "sqlite", "postgres+redis")
}

func testJWTEndToEnd(t *testing.T, sc storeCase) {
	const clientSecret = "orders-client-secret-0123456789"
	r := newRig(t, withOwnIssuer(), withConfig(func(c *config.Config) {
		sc.apply(c)
		c.AccessTokens.Format = config.FormatJWT
		c.AccessTokens.Audience = []string{"orders"}
		c.Clients = []config.Client{{ID: "orders", Secret: secret.New(clientSecret)}}
	}))
	tok := r.login(t, "wechat", wxAppID, "w", "alice")
	if strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatal("the access token is not a JWT")
	}
	v, err := verify.New(t.Context(), verify.Options{Issuer: r.api.URL, Audience: "orders",
		ClientID: "orders", ClientSecret: clientSecret, IntrospectionCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), tok.AccessToken)
	if err != nil || id.UserID != tok.User.ID || id.OpenID != tok.User.OpenID || id.App != "w" || id.Platform != "wechat" || id.SessionID == "" {
		t.Fatalf("verify: %+v, %v", id, err)
	}
	// Another API's audience does not take it.
	other, err := verify.New(t.Context(), verify.Options{Issuer: r.api.URL, Audience: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(t.Context(), tok.AccessToken); !errors.Is(err, verify.ErrInvalidToken) {
		t.Fatalf("a JWT for orders at billing: %v", err)
	}

	if status, body := r.call(t, "GET", "/v1/session", tok.AccessToken, ""); status != 200 {
		t.Fatalf("GET /v1/session with the JWT: %d %v", status, body)
	}
	authzOf := func(raw string) (int, string) {
		req, _ := http.NewRequest("GET", r.api.URL+"/v1/authz", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-User-Id")
	}
	authz := func() (int, string) { return authzOf(tok.AccessToken) }
	// Forgeries: the same claims under a key never published, with alg
	// none, with another typ; each is refused by /v1/authz and by verify.
	parts := strings.Split(tok.AccessToken, ".")
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	rogue, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	resign := func(typ string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: rogue},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", h.Kid))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		jws, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+h.Kid+`"}`)) + "." + parts[1] + "."
	for name, raw := range map[string]string{"a key never published": resign("at+jwt"), "alg none": none,
		"typ JWT": resign("JWT")} {
		if status, _ := authzOf(raw); status != 401 {
			t.Errorf("authz, %s: %d, want 401", name, status)
		}
		if _, err := v.Verify(t.Context(), raw); !errors.Is(err, verify.ErrInvalidToken) {
			t.Errorf("verify, %s: %v, want ErrInvalidToken", name, err)
		}
	}
	if status, user := authz(); status != 200 || user != tok.User.ID {
		t.Fatalf("authz with the JWT: %d, user %q", status, user)
	}
	introspect := func() map[string]any {
		req, _ := http.NewRequest("POST", r.api.URL+"/v1/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("orders:"+clientSecret)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("introspect: %d %v", resp.StatusCode, err)
		}
		return m
	}
	if m := introspect(); m["active"] != true || m["sub"] != tok.User.ID || m["sid"] != id.SessionID {
		t.Fatalf("introspection of the JWT: %v", m)
	}
	if _, err := v.VerifyLive(t.Context(), tok.AccessToken); err != nil {
		t.Fatalf("VerifyLive before logout: %v", err)
	}

	if status, body := r.call(t, "POST", "/v1/logout", tok.AccessToken, ""); status != 204 {
		t.Fatalf("logout with the JWT: %d %v", status, body)
	}
	if status, _ := r.call(t, "GET", "/v1/session", tok.AccessToken, ""); status != 401 {
		t.Fatalf("GET /v1/session after logout: %d, want 401", status)
	}
	if status, _ := authz(); status != 401 {
		t.Fatalf("authz after logout: %d, want 401", status)
	}
	if m := introspect(); m["active"] != false || len(m) != 1 {
		t.Fatalf("introspection after logout: %v", m)
	}
	if _, err := v.VerifyLive(t.Context(), tok.AccessToken); !errors.Is(err, verify.ErrInvalidToken) {
		t.Fatalf("VerifyLive after logout: %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(t.Context(), tok.AccessToken); err != nil {
		t.Fatalf("a local check after logout: %v; a JWT is valid until it expires", err)
	}
}
