package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mplogin/mplogin/internal/testutil"
)

// t0 is the tests' start time: every clock starts here, and tokens are
// minted against it.
var t0 = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

const (
	testAudience = "shop-api"
	testClientID = "shop api:1"  // a space and a colon, to check the form-encoding
	testSecret   = "s&e=c:r/t %" // and these, in the secret
)

// newClock is a settable test clock at t0.
func newClock() *testutil.Clock { return testutil.NewClock(t0) }

// signer is a signing key of the fake issuer.
type signer struct {
	alg  jose.SignatureAlgorithm
	kid  string
	priv crypto.Signer
}

func (s *signer) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: s.priv.Public(), KeyID: s.kid, Algorithm: string(s.alg), Use: "sig"}
}

func thumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	jwk := jose.JSONWebKey{Key: pub}
	b, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newES256(t testing.TB) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{alg: jose.ES256, kid: thumbprint(t, k.Public()), priv: k}
}

func newRS256(t testing.TB) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{alg: jose.RS256, kid: thumbprint(t, k.Public()), priv: k}
}

// header is what a test sets in a JWT's protected header; a nil Typ is the
// default at+jwt, and an empty one none at all.
type header struct {
	kid string
	typ *string
}

func str(s string) *string { return &s }

// sign mints a JWS over claims with s's key.
func (s *signer) sign(t testing.TB, claims any, h header) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	typ := "at+jwt"
	if h.typ != nil {
		typ = *h.typ
	}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	kid := s.kid
	if h.kid != "" {
		kid = h.kid
	}
	opts = opts.WithHeader("kid", kid)
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sg).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// claims are an mplogin access token's claims, valid at now.
func claims(iss string, now time.Time) map[string]any {
	return map[string]any{
		"iss":       iss,
		"sub":       "0193a4f0c2e87d3e9b1a5c6d7e8f9012",
		"aud":       testAudience,
		"client_id": "shop-wechat",
		"iat":       now.Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       "jti-1",
		"sid":       "sid-1",
		"app":       "shop-wechat",
		"platform":  "wechat",
		"openid":    "o-openid-1",
	}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// issuer is a fake mplogin: metadata, JWKS and introspection, over TLS.
type issuer struct {
	t   testing.TB
	srv *httptest.Server
	url string

	mu         sync.Mutex
	published  []jose.JSONWebKey
	jwksBody   []byte // when set, served instead of published
	metaStatus int
	jwksStatus int
	metaIssuer string // the issuer the metadata names, when not url
	// metaOverride replaces members of the metadata; "" removes one.
	metaOverride map[string]string
	introStatus  int
	retryAfter   string
	answers      map[string]map[string]any // introspection answers by token
	forms        []url.Values
	// introArrived and introGate, when set, hold an introspection call
	// until the test lets it go.
	introArrived chan struct{}
	introGate    chan struct{}
	auths        []string

	metaHits, jwksHits, introHits atomic.Int64
}

func newIssuer(t testing.TB, keys ...*signer) *issuer {
	t.Helper()
	is := &issuer{t: t, answers: map[string]map[string]any{}}
	for _, k := range keys {
		is.published = append(is.published, k.public())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", is.metadata)
	mux.HandleFunc("GET /jwks.json", is.jwks)
	mux.HandleFunc("POST /v1/introspect", is.introspect)
	is.srv = httptest.NewTLSServer(mux)
	is.url = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) metadata(w http.ResponseWriter, _ *http.Request) {
	is.metaHits.Add(1)
	is.mu.Lock()
	status, iss := is.metaStatus, is.metaIssuer
	is.mu.Unlock()
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	if iss == "" {
		iss = is.url
	}
	md := map[string]string{
		"issuer":                 iss,
		"jwks_uri":               is.url + "/jwks.json",
		"introspection_endpoint": is.url + "/v1/introspect",
		"revocation_endpoint":    is.url + "/v1/revoke",
		"token_endpoint":         is.url + "/v1/token",
	}
	is.mu.Lock()
	for k, v := range is.metaOverride {
		if v == "" {
			delete(md, k)
		} else {
			md[k] = v
		}
	}
	is.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(md)
}

func (is *issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	is.jwksHits.Add(1)
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.jwksStatus != 0 {
		http.Error(w, "down", is.jwksStatus)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	if is.jwksBody != nil {
		_, _ = w.Write(is.jwksBody)
		return
	}
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.published})
}

func (is *issuer) introspect(w http.ResponseWriter, r *http.Request) {
	is.introHits.Add(1)
	is.mu.Lock()
	arrived, gate := is.introArrived, is.introGate
	is.mu.Unlock()
	if gate != nil {
		arrived <- struct{}{}
		<-gate
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.forms = append(is.forms, r.PostForm)
	is.auths = append(is.auths, r.Header.Get("Authorization"))
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "content type", http.StatusBadRequest)
		return
	}
	id, secret, ok := r.BasicAuth()
	if is.introStatus != 0 {
		if is.retryAfter != "" {
			w.Header().Set("Retry-After", is.retryAfter)
		}
		http.Error(w, "down", is.introStatus)
		return
	}
	if !ok || id != url.QueryEscape(testClientID) || secret != url.QueryEscape(testSecret) {
		w.Header().Set("WWW-Authenticate", `Basic realm="mplogin"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	a, ok := is.answers[r.PostForm.Get("token")]
	if !ok {
		a = map[string]any{"active": false}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// publish sets the keys the JWKS lists.
func (is *issuer) publish(keys ...*signer) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.published = nil
	for _, k := range keys {
		is.published = append(is.published, k.public())
	}
}

func (is *issuer) set(f func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

// activate makes introspection answer for token as mplogin does for a live
// access token, expiring at exp.
func (is *issuer) activate(token string, exp time.Time) {
	is.set(func(is *issuer) {
		is.answers[token] = map[string]any{
			"active": true, "token_type": "access_token", "sub": "0193a4f0c2e87d3e9b1a5c6d7e8f9012",
			"client_id": "shop-wechat", "exp": exp.Unix(), "iat": t0.Unix(), "iss": is.url, "sid": "sid-2",
			"app": "shop-wechat", "platform": "wechat", "openid": "o-openid-2", "unionid": "u-unionid-2",
		}
	})
}

func (is *issuer) revoke(token string) {
	is.set(func(is *issuer) { delete(is.answers, token) })
}

// rig is a verifier of the fake issuer's tokens with its clock and log.
type rig struct {
	*Verifier
	is    *issuer
	clock *testutil.Clock
	log   *testutil.Buffer
}

// newRig makes a Verifier for is with the test clock and credentials; mod
// changes the options. Every token the test hands to check is added to
// tokens, and at the end the log must hold none of them.
func newRig(t testing.TB, is *issuer, mod func(*Options)) *rig {
	t.Helper()
	r, err := tryRig(t, is, mod)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func tryRig(t testing.TB, is *issuer, mod func(*Options)) (*rig, error) {
	t.Helper()
	c, lb := newClock(), &testutil.Buffer{}
	o := Options{
		Issuer: is.url, Audience: testAudience, ClientID: testClientID, ClientSecret: testSecret,
		HTTPClient: is.srv.Client(), Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&o)
	}
	v, err := New(context.Background(), o)
	if err != nil {
		return nil, err
	}
	r := &rig{Verifier: v, is: is, clock: c, log: lb}
	t.Cleanup(v.fetches.Wait)
	return r, nil
}

// noTokensIn fails when s holds any of the tokens, or a long piece of one.
func noTokensIn(t testing.TB, what, s string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		if len(tok) < 12 {
			continue
		}
		for _, piece := range []string{tok, tok[len(tok)-12:], tok[:12]} {
			if strings.Contains(s, piece) {
				t.Errorf("%s holds a token (or a piece of one): %q", what, piece)
			}
		}
	}
}
