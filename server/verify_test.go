package server_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/verify"
)

// A Go business backend with package verify, in front of the real
// service: an opaque access token passes through introspection with its
// user's identity, a refresh token and garbage do not, and after a logout
// the token fails at once (the introspection cache is off here).
func TestVerifyMiddlewareWithOpaqueTokens(t *testing.T) {
	const clientSecret = "orders-client-secret-0123456789"
	r := newRig(t, withOwnIssuer(), withConfig(func(c *config.Config) {
		c.Clients = []config.Client{{ID: "orders", Secret: secret.New(clientSecret)}}
	}))
	v, err := verify.New(t.Context(), verify.Options{Issuer: r.api.URL, Audience: "orders",
		ClientID: "orders", ClientSecret: clientSecret, IntrospectionCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	var got verify.Identity
	api := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got = verify.IdentityFrom(req.Context())
	}))
	call := func(token string) int {
		t.Helper()
		got = verify.Identity{}
		req := httptest.NewRequest("GET", "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		return w.Code
	}

	tok := r.login(t, "wechat", wxAppID, "w", "alice")
	if code := call(tok.AccessToken); code != 200 || got.UserID != tok.User.ID || got.OpenID != tok.User.OpenID ||
		got.App != "w" || got.Platform != "wechat" || got.SessionID == "" {
		t.Fatalf("a live token: %d, identity %+v; want 200 and user %s", code, got, tok.User.ID)
	}
	if id, err := v.Verify(t.Context(), tok.RefreshToken); !errors.Is(err, verify.ErrInvalidToken) {
		t.Fatalf("a refresh token: %+v, %v; want ErrInvalidToken", id, err)
	}
	if code := call("mpa_not-a-token"); code != 401 {
		t.Fatalf("garbage: %d, want 401", code)
	}
	if status, body := r.call(t, "POST", "/v1/logout", tok.AccessToken, ""); status != 204 {
		t.Fatalf("logout: %d %v", status, body)
	}
	if code := call(tok.AccessToken); code != 401 {
		t.Fatalf("a logged-out token: %d, want 401", code)
	}
}
