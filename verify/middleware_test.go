package verify

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// whoami is a handler that answers with the identity it was given.
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_ = json.NewEncoder(w).Encode(IdentityFrom(r.Context()))
})

type answer struct {
	status            int
	challenge, retry  string
	errCode, userID   string
	contentType, body string
}

func serve(t *testing.T, h http.Handler, auth ...string) answer {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/orders", nil)
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	a := answer{
		status: rec.Code, challenge: rec.Header().Get("WWW-Authenticate"), retry: rec.Header().Get("Retry-After"),
		contentType: rec.Header().Get("Content-Type"), body: rec.Body.String(),
	}
	var body struct {
		Error  string `json:"error"`
		UserID string `json:"UserID"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("the answer is not JSON: %q", rec.Body.String())
	}
	a.errCode, a.userID = body.Error, body.UserID
	return a
}

func TestMiddleware(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	r := newRig(t, is, nil)
	good := es.sign(t, claims(is.url, t0), header{})
	expired := es.sign(t, with(claims(is.url, t0), "exp", t0.Add(-time.Hour).Unix()), header{})
	h := r.Middleware(whoami)

	for _, tc := range []struct {
		name      string
		auth      []string
		status    int
		challenge string
		errCode   string
	}{
		{"good", []string{"Bearer " + good}, 200, "", ""},
		{"scheme in any case", []string{"bEARER " + good}, 200, "", ""},
		{"spaces around the token", []string{"Bearer   " + good + " "}, 200, "", ""},
		{"no Authorization", nil, 401, "Bearer", "unauthorized"},
		{"another scheme", []string{"Basic dXNlcjpwYXNz"}, 401, "Bearer", "unauthorized"},
		{"Bearer alone", []string{"Bearer"}, 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"Bearer and a space", []string{"Bearer "}, 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"scheme glued to the token", []string{"Bearer" + good}, 401, "Bearer", "unauthorized"},
		{"expired", []string{"Bearer " + expired}, 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"garbage", []string{"Bearer nonsense"}, 401, `Bearer error="invalid_token"`, "invalid_token"},
		{"two Authorization headers", []string{"Bearer " + good, "Bearer " + good}, 400, `Bearer error="invalid_request"`, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := serve(t, h, tc.auth...)
			if a.status != tc.status || a.challenge != tc.challenge || a.errCode != tc.errCode {
				t.Fatalf("got %d %q %q; want %d %q %q", a.status, a.challenge, a.errCode, tc.status, tc.challenge, tc.errCode)
			}
			if tc.status == 200 {
				if a.userID != "0193a4f0c2e87d3e9b1a5c6d7e8f9012" {
					t.Fatalf("the handler saw user %q", a.userID)
				}
				return
			}
			if a.contentType != "application/json" || a.retry != "" {
				t.Errorf("Content-Type %q, Retry-After %q", a.contentType, a.retry)
			}
			noTokensIn(t, "the answer", a.body, good, expired)
		})
	}
	noTokensIn(t, "the log", r.log.String(), good, expired)
}

// TestMiddlewareUnavailable: no keys yet is 503 with Retry-After, never
// 401, and the handler is not called.
func TestMiddlewareUnavailable(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	is.set(func(is *issuer) { is.jwksStatus = 503 })
	r := newRig(t, is, func(o *Options) { o.JWKSRefreshInterval = time.Minute })
	r.clock.Advance(20 * time.Second)
	a := serve(t, r.Middleware(whoami), "Bearer "+es.sign(t, claims(is.url, t0), header{}))
	if a.status != 503 || a.retry != "40" || a.errCode != "temporarily_unavailable" || a.challenge != "" {
		t.Fatalf("got %d, Retry-After %q, error %q, challenge %q; want 503, 40, temporarily_unavailable, none", a.status, a.retry, a.errCode, a.challenge)
	}
	if !strings.Contains(r.log.String(), "answering 503") {
		t.Errorf("the 503 is not logged:\n%s", r.log)
	}

	// Introspection's own Retry-After passes through.
	tok := "mpa_" + strings.Repeat("R", 51)
	is.set(func(is *issuer) { is.introStatus, is.retryAfter = 503, "7" })
	if a := serve(t, r.Middleware(whoami), "Bearer "+tok); a.status != 503 || a.retry != "7" {
		t.Fatalf("introspection down: %d, Retry-After %q; want 503, 7", a.status, a.retry)
	}
}

// TestMiddlewareRequireLive: on a RequireLive route a revoked JWT fails at
// once (after the introspection cache), while other routes accept it
// until its exp.
func TestMiddlewareRequireLive(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	r := newRig(t, is, nil)
	raw := es.sign(t, claims(is.url, t0), header{})
	is.activate(raw, t0.Add(10*time.Minute))
	plain, live := r.Middleware(whoami), r.Middleware(whoami, RequireLive())

	if a := serve(t, live, "Bearer "+raw); a.status != 200 {
		t.Fatalf("a live JWT on a live route: %d", a.status)
	}
	is.revoke(raw) // a logout
	r.clock.Advance(10 * time.Second)
	if a := serve(t, live, "Bearer "+raw); a.status != 401 || a.challenge != `Bearer error="invalid_token"` {
		t.Fatalf("a revoked JWT on a live route: %d %q", a.status, a.challenge)
	}
	if a := serve(t, plain, "Bearer "+raw); a.status != 200 {
		t.Fatalf("a revoked JWT on a plain route: %d; it stays valid until exp", a.status)
	}
	if n := is.introHits.Load(); n != 2 {
		t.Fatalf("%d introspection calls, want 2: plain routes make none", n)
	}
}

func TestRequireLiveWithoutCredentialsPanics(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, func(o *Options) { o.ClientID, o.ClientSecret = "", "" })
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "ClientID") {
			t.Fatalf("recovered %v; want a panic naming ClientID", p)
		}
	}()
	r.Middleware(whoami, RequireLive())
}
