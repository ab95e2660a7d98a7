package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/mplogin/mplogin/internal/testutil"
)

func TestVerifyGoodTokens(t *testing.T) {
	es, rs := newES256(t), newRS256(t)
	is := newIssuer(t, es, rs)
	r := newRig(t, is, nil)
	for _, tc := range []struct {
		name string
		key  *signer
		c    map[string]any
		h    header
	}{
		{"ES256", es, claims(is.url, t0), header{}},
		{"RS256", rs, claims(is.url, t0), header{}},
		{"aud array", es, with(claims(is.url, t0), "aud", []string{"other-api", testAudience}), header{}},
		{"typ application/at+jwt", es, claims(is.url, t0), header{typ: str("application/at+jwt")}},
		{"typ in capitals", es, claims(is.url, t0), header{typ: str("AT+JWT")}},
		{"unionid", rs, with(claims(is.url, t0), "unionid", "u-1"), header{}},
		{"expired within the leeway", es, with(claims(is.url, t0), "exp", t0.Add(-20*time.Second).Unix()), header{}},
		{"iat ahead within the leeway", es, with(claims(is.url, t0), "iat", t0.Add(20*time.Second).Unix()), header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.key.sign(t, tc.c, tc.h)
			id, err := r.Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Identity{
				UserID: "0193a4f0c2e87d3e9b1a5c6d7e8f9012", App: "shop-wechat", Platform: "wechat",
				OpenID: "o-openid-1", SessionID: "sid-1", ExpiresAt: time.Unix(tc.c["exp"].(int64), 0),
			}
			if u, ok := tc.c["unionid"].(string); ok {
				want.UnionID = u
			}
			if id != want {
				t.Fatalf("identity\n got %+v\nwant %+v", id, want)
			}
			noTokensIn(t, "the log", r.log.String(), raw)
		})
	}
}

// TestVerifyRefusesBadTokens: each token is refused as invalid, not as
// unavailable, and neither the error nor the log repeats it.
func TestVerifyRefusesBadTokens(t *testing.T) {
	es, rs := newES256(t), newRS256(t)
	is := newIssuer(t, es, rs)
	r := newRig(t, is, nil)
	good := claims(is.url, t0)

	unpublished := newES256(t)
	impostor := &signer{alg: jose.ES256, kid: es.kid, priv: unpublished.priv} // a published kid, another key

	pubDER, err := x509.MarshalPKIXPublicKey(es.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := json.Marshal(es.public())
	if err != nil {
		t.Fatal(err)
	}
	hs := func(secret []byte) string {
		sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
			(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", es.kid))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(sg).Claims(good).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	b64 := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	handMade := func(h map[string]any, c map[string]any, sig string) string {
		return b64(h) + "." + b64(c) + "." + sig
	}
	jwe := func() string {
		enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: make([]byte, 16)},
			(&jose.EncrypterOptions{}).WithType("at+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := enc.Encrypt([]byte(`{"sub":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := obj.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(raw, ".") != 4 {
			t.Fatalf("a compact JWE has 5 parts: %q", raw)
		}
		return raw
	}
	// sigOf takes a real token's signature, for hand-made headers.
	sigOf := func(raw string) string { return raw[strings.LastIndex(raw, ".")+1:] }
	esGood := es.sign(t, good, header{})

	for _, tc := range []struct {
		name, raw, reason string
	}{
		{"unpublished key, its own kid", unpublished.sign(t, good, header{}), "unknown kid"},
		{"unpublished key, a published kid", impostor.sign(t, good, header{}), "bad signature"},
		{"alg none", handMade(map[string]any{"alg": "none", "typ": "at+jwt", "kid": es.kid}, good, ""), "alg none"},
		{"alg NONE", handMade(map[string]any{"alg": "NONE", "typ": "at+jwt", "kid": es.kid}, good, ""), "alg none"},
		{"HS256 keyed with the public key's DER", hs(pubDER), "only ES256 and RS256"},
		{"HS256 keyed with the public JWK", hs(pubJWK), "only ES256 and RS256"},
		{"ES384", handMade(map[string]any{"alg": "ES384", "typ": "at+jwt", "kid": es.kid}, good, sigOf(esGood)), "only ES256 and RS256"},
		{"ES256 header on the RSA key", handMade(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": rs.kid}, good, sigOf(esGood)), "its key is for RS256"},
		{"typ absent", es.sign(t, good, header{typ: str("")}), "not at+jwt"},
		{"typ JWT", es.sign(t, good, header{typ: str("JWT")}), "not at+jwt"},
		{"typ of an ID token", es.sign(t, good, header{typ: str("id+jwt")}), "not at+jwt"},
		{"no kid", handMade(map[string]any{"alg": "ES256", "typ": "at+jwt"}, good, sigOf(esGood)), "no kid"},
		{"crit header", handMade(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": es.kid, "crit": []string{"b64"}, "b64": false}, good, sigOf(esGood)), "extension"},
		{"payload swapped under a good signature", handMade(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": es.kid}, with(good, "sub", "someone-else"), sigOf(esGood)), "bad signature"},
		{"wrong aud", es.sign(t, with(good, "aud", "other-api"), header{}), "aud"},
		{"wrong aud array", es.sign(t, with(good, "aud", []string{"a", "b"}), header{}), "aud"},
		{"no aud", es.sign(t, with(good, "aud", nil), header{}), "aud"},
		{"wrong iss", es.sign(t, with(good, "iss", is.url+"/"), header{}), "iss"},
		{"expired", es.sign(t, with(good, "exp", t0.Add(-31*time.Second).Unix()), header{}), "expired"},
		{"iat in the future", es.sign(t, with(good, "iat", t0.Add(time.Hour).Unix()), header{}), "future"},
		{"nbf in the future", es.sign(t, with(good, "nbf", t0.Add(time.Hour).Unix()), header{}), "not valid yet"},
		{"no exp", es.sign(t, with(good, "exp", nil), header{}), "missing"},
		{"no jti", es.sign(t, with(good, "jti", nil), header{}), "missing"},
		{"no sub", rs.sign(t, with(good, "sub", nil), header{}), "missing"},
		{"exp a string", es.sign(t, with(good, "exp", "tomorrow"), header{}), "claims"},
		{"oversized", es.sign(t, with(good, "pad", strings.Repeat("x", MaxTokenSize)), header{}), "longer than"},
		{"JWE", jwe(), "JWE"},
		{"JWE header on a JWS", handMade(map[string]any{"alg": "ES256", "enc": "A128GCM", "typ": "at+jwt", "kid": es.kid}, good, sigOf(esGood)), "JWE"},
		{"empty", "", "empty"},
		{"garbage", "not a token at all", "neither"},
		{"garbage with dots", "a.b.c", "not base64url"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{nope")) + ".e30.", "not a valid JSON"},
		{"a dot too many", esGood + ".", "dots"},
		{"a refresh token", "mpr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "refresh token"},
		{"mpa_ with a bad alphabet", "mpa_AAAA+AAA/AAAA", "neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := r.Verify(context.Background(), tc.raw)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", id, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if id != (Identity{}) {
				t.Errorf("identity %+v with an error", id)
			}
			noTokensIn(t, "the error", err.Error(), tc.raw)
			noTokensIn(t, "the log", r.log.String(), tc.raw)
		})
	}
	if n := r.jwts.len(); n != 0 {
		t.Errorf("%d refused tokens cached", n)
	}
}

func TestAppsOption(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	r := newRig(t, is, func(o *Options) { o.Apps = []string{"shop-baidu"} })
	_, err := r.Verify(context.Background(), es.sign(t, claims(is.url, t0), header{}))
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "app") {
		t.Fatalf("a JWT of another app: %v", err)
	}
	opaque := "mpa_" + strings.Repeat("A", 51)
	is.activate(opaque, t0.Add(time.Hour))
	if _, err := r.Verify(context.Background(), opaque); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("an opaque token of another app: %v", err)
	}
	ok := newRig(t, is, func(o *Options) { o.Apps = []string{"shop-baidu", "shop-wechat"} })
	if _, err := ok.Verify(context.Background(), es.sign(t, claims(is.url, t0), header{})); err != nil {
		t.Fatalf("a JWT of a served app: %v", err)
	}
}

// TestUnknownKidFetchesOnce: an unknown kid fetches the JWKS again only
// when JWKSRefreshInterval has passed since the last fetch, and a burst of
// tokens with unknown kids shares that one fetch.
func TestUnknownKidFetchesOnce(t *testing.T) {
	es, other := newES256(t), newES256(t)
	is := newIssuer(t, es)
	r := newRig(t, is, func(o *Options) { o.JWKSRefreshInterval = time.Minute })
	if n := is.jwksHits.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches at start, want 1", n)
	}
	unknown := other.sign(t, claims(is.url, t0), header{})

	// Within the interval of the fetch at start: refused at once, no fetch.
	if _, err := r.Verify(context.Background(), unknown); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := is.jwksHits.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches within the interval, want 1", n)
	}

	// After it: one fetch, then refused.
	r.clock.Advance(time.Minute)
	if _, err := r.Verify(context.Background(), unknown); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid: %v", err)
	}
	if n := is.jwksHits.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	if _, err := r.Verify(context.Background(), unknown); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("unknown kid again: %v", err)
	}
	if n := is.jwksHits.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after the same kid again, want 2", n)
	}

	// A burst of 100 distinct unknown kids: at most one fetch.
	r.clock.Advance(time.Minute)
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = other.sign(t, claims(is.url, t0), header{kid: fmt.Sprintf("invented-%d", i)})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(tokens))
	for i, raw := range tokens {
		wg.Go(func() { _, errs[i] = r.Verify(context.Background(), raw) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if n := is.jwksHits.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches after a burst of 100 unknown kids, want 3", n)
	}
	if n := is.metaHits.Load(); n != 1 {
		t.Fatalf("%d metadata fetches, want 1: it is read once", n)
	}
}

// TestKeyRotation: a key that appears in the JWKS is picked up on the next
// allowed fetch, and a key that leaves it stops vouching for its tokens,
// cached or not, once the JWKS's max-age has passed.
func TestKeyRotation(t *testing.T) {
	k1, k2 := newES256(t), newRS256(t)
	is := newIssuer(t, k1)
	r := newRig(t, is, func(o *Options) { o.JWKSRefreshInterval = time.Minute })
	ctx := context.Background()

	old := k1.sign(t, claims(is.url, t0), header{})
	if _, err := r.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	is.publish(k1, k2) // next and current
	r.clock.Advance(time.Minute)
	fresh := k2.sign(t, claims(is.url, r.clock.Now()), header{})
	if _, err := r.Verify(ctx, fresh); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if n := is.jwksHits.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}

	// k1 retires. Until max-age (300 s) the verifier uses the JWKS it has.
	is.publish(k2)
	r.clock.Advance(5 * time.Minute) // the JWKS said max-age=300
	if _, err := r.Verify(ctx, old); err != nil {
		t.Fatalf("a cached token, the JWKS at its max-age: %v", err)
	}
	r.fetches.Wait() // the background fetch that check started
	if n := is.jwksHits.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches, want 3: the keys reached their max-age", n)
	}
	if _, err := r.Verify(ctx, old); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a token of a withdrawn key: %v", err)
	}
	if _, err := r.Verify(ctx, fresh); err != nil {
		t.Fatalf("a token of the current key: %v", err)
	}
}

// TestUnreachableAtStart: without the issuer's keys, checks answer
// ErrUnavailable, not ErrInvalidToken, retry at most once per interval, and
// recover once the issuer answers.
func TestUnreachableAtStart(t *testing.T) {
	for _, which := range []string{"metadata", "jwks"} {
		t.Run(which, func(t *testing.T) {
			es := newES256(t)
			is := newIssuer(t, es)
			is.set(func(is *issuer) {
				if which == "metadata" {
					is.metaStatus = 503
				} else {
					is.jwksStatus = 503
				}
			})
			r := newRig(t, is, func(o *Options) { o.JWKSRefreshInterval = time.Minute })
			if !strings.Contains(r.log.String(), "starting without the issuer's keys") {
				t.Errorf("no warning at start; log:\n%s", r.log)
			}
			raw := es.sign(t, claims(is.url, t0), header{})
			hits := is.metaHits.Load() + is.jwksHits.Load()
			_, err := r.Verify(context.Background(), raw)
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify without keys: %v; want ErrUnavailable", err)
			}
			if ra := retryAfter(err); ra != time.Minute {
				t.Errorf("retry after %v, want the interval, 1m", ra)
			}
			is.set(func(is *issuer) { is.metaStatus, is.jwksStatus = 0, 0 })
			r.clock.Advance(59 * time.Second)
			if _, err = r.Verify(context.Background(), raw); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Verify within the interval: %v; want ErrUnavailable", err)
			}
			if ra := retryAfter(err); ra != time.Second {
				t.Errorf("retry after %v, want 1s", ra)
			}
			if n := is.metaHits.Load() + is.jwksHits.Load(); n != hits {
				t.Fatalf("%d fetches within the interval", n-hits)
			}
			r.clock.Advance(time.Second)
			id, err := r.Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("Verify once the issuer answers: %v", err)
			}
			if id.UserID == "" {
				t.Fatal("no user")
			}
		})
	}
}

func TestNewRefusesAnotherIssuer(t *testing.T) {
	is := newIssuer(t, newES256(t))
	is.set(func(is *issuer) { is.metaIssuer = "https://evil.example" })
	_, err := tryRig(t, is, nil)
	if err == nil || !strings.Contains(err.Error(), "another issuer") {
		t.Fatalf("New with metadata of another issuer: %v", err)
	}
	// Nor when the configured issuer differs by a slash.
	is.set(func(is *issuer) { is.metaIssuer = "" })
	if _, err := tryRig(t, is, func(o *Options) { o.Issuer += "/" }); err == nil {
		t.Fatal("New accepted an issuer that differs by a trailing slash")
	}
}

func TestNewOptions(t *testing.T) {
	is := newIssuer(t, newES256(t))
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no issuer", func(o *Options) { o.Issuer = "" }, "Issuer is required"},
		{"issuer not a URL", func(o *Options) { o.Issuer = "login.example.com" }, "not an http(s) URL"},
		{"issuer with a query", func(o *Options) { o.Issuer += "?x=1" }, "not an http(s) URL"},
		{"no audience", func(o *Options) { o.Audience = "" }, "Audience is required"},
		{"id without secret", func(o *Options) { o.ClientSecret = "" }, "go together"},
		{"negative interval", func(o *Options) { o.JWKSRefreshInterval = -1 }, "negative"},
		{"negative cache", func(o *Options) { o.CacheSize = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tryRig(t, is, tc.mod)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestMetadataEndpoints: an https issuer's metadata must not point at plain
// http, and must name its endpoints.
func TestMetadataEndpoints(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, nil)
	for _, tc := range []struct{ url, want string }{
		{"", "missing"},
		{"/relative", "not an absolute"},
		{"ftp://x/keys", "not an absolute"},
		{"http://plain.example/keys", "not https"},
		{"https://ok.example/keys", ""},
	} {
		err := r.checkEndpoint(tc.url)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("checkEndpoint(%q) = %v; want %q", tc.url, err, tc.want)
		}
	}
}

// TestMetadataMembers: jwks_uri is required; without an
// introspection_endpoint JWTs still verify and opaque tokens are
// unavailable.
func TestMetadataMembers(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	is.set(func(is *issuer) { is.metaOverride = map[string]string{"introspection_endpoint": ""} })
	r := newRig(t, is, nil)
	if _, err := r.Verify(context.Background(), es.sign(t, claims(is.url, t0), header{})); err != nil {
		t.Fatalf("a JWT: %v", err)
	}
	_, err := r.Verify(context.Background(), "mpa_"+strings.Repeat("A", 51))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no introspection_endpoint") {
		t.Fatalf("an opaque token: %v", err)
	}

	for _, tc := range []struct{ member, val, want string }{
		{"jwks_uri", "", "jwks_uri: missing"},
		{"jwks_uri", "http://" + strings.TrimPrefix(is.url, "https://") + "/jwks.json", "not https"},
		{"introspection_endpoint", "/v1/introspect", "not an absolute"},
	} {
		is := newIssuer(t, es)
		is.set(func(is *issuer) { is.metaOverride = map[string]string{tc.member: tc.val} })
		r := newRig(t, is, nil)
		_, err := r.Verify(context.Background(), es.sign(t, claims(is.url, t0), header{}))
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s %q: %v; want ErrUnavailable", tc.member, tc.val, err)
		}
		if !strings.Contains(r.log.String(), tc.want) {
			t.Errorf("%s %q: the log does not say %q:\n%s", tc.member, tc.val, tc.want, r.log)
		}
	}
}

// TestJWKSKeys: keys the verifier cannot use are skipped, one by one,
// without costing it the usable ones.
func TestJWKSKeys(t *testing.T) {
	es, rs := newES256(t), newRS256(t)
	is := newIssuer(t)
	pub := func(k *signer, mod func(m map[string]any)) json.RawMessage {
		b, err := json.Marshal(k.public())
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if mod != nil {
			mod(m)
		}
		b, err = json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	private, err := json.Marshal(jose.JSONWebKey{Key: es.priv, KeyID: "private", Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	k384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := json.Marshal(jose.JSONWebKey{Key: k384.Public(), KeyID: "p384", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	keys := []json.RawMessage{
		pub(es, func(m map[string]any) { m["kid"] = "enc"; m["use"] = "enc" }),
		pub(es, func(m map[string]any) { delete(m, "kid") }),
		pub(es, func(m map[string]any) { m["kid"] = "wrong-alg"; m["alg"] = "RS256" }),
		pub(rs, func(m map[string]any) { m["kid"] = "rsa-as-es"; m["alg"] = "ES256" }),
		private,
		p384,
		json.RawMessage(`{"kty":"oct","kid":"hmac","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`),
		json.RawMessage(`"not a key"`),
		pub(es, nil),
		pub(rs, func(m map[string]any) { delete(m, "alg"); delete(m, "use") }),
		pub(rs, func(m map[string]any) { m["kid"] = es.kid }), // a kid already listed
	}
	body, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	is.set(func(is *issuer) { is.jwksBody = body })
	r := newRig(t, is, nil)
	ks := r.keys.Load()
	if ks == nil {
		t.Fatal("no key set")
	}
	var kids []string
	for kid := range ks.keys {
		kids = append(kids, kid)
	}
	if len(kids) != 2 || ks.keys[es.kid].alg != jose.ES256 || ks.keys[rs.kid].alg != jose.RS256 {
		t.Fatalf("usable keys %v; want exactly %s (ES256) and %s (RS256)", kids, es.kid, rs.kid)
	}
	if ks.maxAge != 5*time.Minute {
		t.Errorf("max-age %v, want 5m from the answer", ks.maxAge)
	}
	for _, want := range []string{`use is \"enc\"`, "no kid", "private key material", "not on P-256", "not a JWK", "lists a kid twice", `for \"RS256\"`, `for \"ES256\"`} {
		if !strings.Contains(r.log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, r.log)
		}
	}
	for _, s := range []*signer{es, rs} {
		if _, err := r.Verify(context.Background(), s.sign(t, claims(is.url, t0), header{})); err != nil {
			t.Errorf("%s: %v", s.alg, err)
		}
	}
}

func TestMaxAge(t *testing.T) {
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"", 5 * time.Minute},
		{"public, max-age=300", 5 * time.Minute},
		{"max-age=60", time.Minute},
		{"Max-Age=\"120\"", 2 * time.Minute},
		{"max-age=1", 30 * time.Second}, // the refresh interval is the floor
		{"max-age=999999999", time.Hour},
		{"no-store", 30 * time.Second},
		{"max-age=nonsense", 5 * time.Minute},
	} {
		h := make(map[string][]string)
		if tc.cc != "" {
			h["Cache-Control"] = []string{tc.cc}
		}
		if got := maxAge(h, 30*time.Second); got != tc.want {
			t.Errorf("maxAge(%q) = %v, want %v", tc.cc, got, tc.want)
		}
	}
}

func TestIntrospection(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	r := newRig(t, is, func(o *Options) { o.IntrospectionCacheTTL = 10 * time.Second })
	ctx := context.Background()
	live := "mpa_" + strings.Repeat("L", 51)
	dead := "mpa_" + strings.Repeat("D", 51)
	is.activate(live, t0.Add(time.Hour))

	id, err := r.Verify(ctx, live)
	if err != nil {
		t.Fatalf("an active token: %v", err)
	}
	want := Identity{
		UserID: "0193a4f0c2e87d3e9b1a5c6d7e8f9012", App: "shop-wechat", Platform: "wechat",
		OpenID: "o-openid-2", UnionID: "u-unionid-2", SessionID: "sid-2", ExpiresAt: time.Unix(t0.Add(time.Hour).Unix(), 0),
	}
	if id != want {
		t.Fatalf("identity\n got %+v\nwant %+v", id, want)
	}
	is.set(func(is *issuer) {
		f := is.forms[0]
		if len(f) != 2 || f.Get("token") != live || f.Get("token_type_hint") != "access_token" {
			t.Errorf("introspection form %v", f)
		}
		// Basic of the form-encoded id and secret.
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte("shop+api%3A1:s%26e%3Dc%3Ar%2Ft+%25"))
		if is.auths[0] != want {
			t.Errorf("Authorization %q, want %q", is.auths[0], want)
		}
	})

	// Cached: a second check makes no call.
	if _, err := r.Verify(ctx, live); err != nil {
		t.Fatal(err)
	}
	if n := is.introHits.Load(); n != 1 {
		t.Fatalf("%d introspection calls for two checks, want 1", n)
	}

	// Inactive, and cached as such.
	for range 2 {
		if _, err := r.Verify(ctx, dead); !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "not active") {
			t.Fatalf("an inactive token: %v", err)
		}
	}
	if n := is.introHits.Load(); n != 2 {
		t.Fatalf("%d introspection calls, want 2", n)
	}

	// After the TTL the live token is asked about again, and is now revoked.
	is.revoke(live)
	r.clock.Advance(9 * time.Second)
	if _, err := r.Verify(ctx, live); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	r.clock.Advance(time.Second)
	if _, err := r.Verify(ctx, live); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked, after the TTL: %v", err)
	}
	if n := is.introHits.Load(); n != 3 {
		t.Fatalf("%d introspection calls, want 3", n)
	}

	// The caches hold hashes: every key is a SHA-256 of a token checked,
	// and no entry holds a token.
	r.introspects.mu.RLock()
	for k, e := range r.introspects.entries {
		if k != keyOf(live) && k != keyOf(dead) {
			t.Errorf("cache key %x is no token's hash", k)
		}
		noTokensIn(t, "a cache entry", fmt.Sprintf("%+v", e), live, dead)
	}
	r.introspects.mu.RUnlock()
	noTokensIn(t, "the log", r.log.String(), live, dead)
}

// TestIntrospectionCapsAtExp: an active answer is not reused past the
// token's exp, even within the TTL.
func TestIntrospectionCapsAtExp(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, func(o *Options) { o.IntrospectionCacheTTL = time.Minute })
	tok := "mpa_" + strings.Repeat("E", 51)
	is.activate(tok, t0.Add(5*time.Second))
	if _, err := r.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	is.revoke(tok) // mplogin: no longer active once expired
	r.clock.Advance(6 * time.Second)
	if _, err := r.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after exp: %v", err)
	}
	if n := is.introHits.Load(); n != 2 {
		t.Fatalf("%d introspection calls, want 2", n)
	}
}

func TestIntrospectionConcurrentChecksShareACall(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, nil)
	tok := "mpa_" + strings.Repeat("C", 51)
	is.activate(tok, t0.Add(time.Hour))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := r.Verify(context.Background(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Each check joined the call in flight or found its answer cached.
	if n := is.introHits.Load(); n != 1 {
		t.Fatalf("%d introspection calls for 20 concurrent checks, want 1", n)
	}
}

func TestIntrospectionNoCache(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, func(o *Options) { o.IntrospectionCacheTTL = -1 })
	tok := "mpa_" + strings.Repeat("N", 51)
	is.activate(tok, t0.Add(time.Hour))
	for range 3 {
		if _, err := r.Verify(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := is.introHits.Load(); n != 3 {
		t.Fatalf("%d introspection calls for 3 checks without a cache, want 3", n)
	}
}

// TestIntrospectionFailures: what is not the token's fault is
// ErrUnavailable, and is not cached.
func TestIntrospectionFailures(t *testing.T) {
	tok := "mpa_" + strings.Repeat("F", 51)
	for _, tc := range []struct {
		name   string
		mod    func(*Options)
		setup  func(is *issuer)
		want   error
		reason string
	}{
		{"bad client credentials", func(o *Options) { o.ClientSecret = "wrong" }, nil, ErrUnavailable, "client credentials"},
		{"503", nil, func(is *issuer) { is.introStatus = 503; is.retryAfter = "7" }, ErrUnavailable, "status 503"},
		{"500", nil, func(is *issuer) { is.introStatus = 500 }, ErrUnavailable, "status 500"},
		{"another issuer", nil, func(is *issuer) { is.answers[tok]["iss"] = "https://other.example" }, ErrUnavailable, "issuer"},
		{"active without exp", nil, func(is *issuer) { delete(is.answers[tok], "exp") }, ErrUnavailable, "without sub or exp"},
		{"a refresh token", nil, func(is *issuer) { is.answers[tok]["token_type"] = "refresh_token" }, ErrInvalidToken, "not an access token"},
		{"active but expired", nil, func(is *issuer) { is.answers[tok]["exp"] = t0.Add(-time.Minute).Unix() }, ErrInvalidToken, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := newIssuer(t, newES256(t))
			r := newRig(t, is, tc.mod)
			is.activate(tok, t0.Add(time.Hour))
			if tc.setup != nil {
				is.set(tc.setup)
			}
			var err error
			for range 2 {
				_, err = r.Verify(context.Background(), tok)
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("Verify: %v; want %v saying %q", err, tc.want, tc.reason)
				}
			}
			wantCalls := int64(2)
			if tc.want == ErrInvalidToken {
				wantCalls = 1 // a verdict, cached
			}
			if n := is.introHits.Load(); n != wantCalls {
				t.Errorf("%d introspection calls for 2 checks, want %d", n, wantCalls)
			}
			if tc.name == "503" && retryAfter(err) != 7*time.Second {
				t.Errorf("retry after %v, want mplogin's 7s", retryAfter(err))
			}
			if tc.name == "bad client credentials" {
				if n := strings.Count(r.log.String(), "refused this API's introspection credentials"); n != 1 {
					t.Errorf("the refusal logged %d times, want once per interval:\n%s", n, r.log)
				}
				noTokensIn(t, "the log", r.log.String(), "wrong-secret-never-logged")
			}
			noTokensIn(t, "the error", err.Error(), tok)
			noTokensIn(t, "the log", r.log.String(), tok)
		})
	}
}

func TestOpaqueWithoutCredentials(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, func(o *Options) { o.ClientID, o.ClientSecret = "", "" })
	_, err := r.Verify(context.Background(), "mpa_"+strings.Repeat("A", 51))
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "no introspection credentials") {
		t.Fatalf("an opaque token without credentials: %v", err)
	}
	if n := is.introHits.Load(); n != 0 {
		t.Fatalf("%d introspection calls without credentials", n)
	}
	es := newES256(t)
	is.publish(es)
	r.clock.Advance(time.Minute)
	_, err = r.VerifyLive(context.Background(), es.sign(t, claims(is.url, t0), header{}))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a live check without credentials: %v; want ErrUnavailable", err)
	}
}

// TestVerifyLive: a JWT whose session mplogin no longer knows fails a live
// check, though it still verifies locally.
func TestVerifyLive(t *testing.T) {
	es := newES256(t)
	is := newIssuer(t, es)
	r := newRig(t, is, nil)
	ctx := context.Background()
	raw := es.sign(t, claims(is.url, t0), header{})
	is.activate(raw, t0.Add(10*time.Minute))
	for range 2 {
		if _, err := r.VerifyLive(ctx, raw); err != nil {
			t.Fatalf("a live JWT: %v", err)
		}
	}
	if n := is.introHits.Load(); n != 1 {
		t.Fatalf("%d introspection calls for two live checks, want 1 (cached)", n)
	}
	is.revoke(raw)
	r.clock.Advance(10 * time.Second)
	if _, err := r.VerifyLive(ctx, raw); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a revoked JWT, live check: %v", err)
	}
	if _, err := r.Verify(ctx, raw); err != nil {
		t.Fatalf("a revoked JWT, local check: %v; it stays valid until exp", err)
	}
}

func TestIdentityContext(t *testing.T) {
	if id := IdentityFrom(context.Background()); id != (Identity{}) {
		t.Fatalf("IdentityFrom(bare context) = %+v", id)
	}
	want := Identity{UserID: "u", App: "a", ExpiresAt: t0}
	if got := IdentityFrom(NewContext(context.Background(), want)); got != want {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestOptionsHideTheSecret(t *testing.T) {
	o := Options{Issuer: "https://login.example.com", Audience: "a", ClientID: "id", ClientSecret: "hunter2-secret"}
	var lb testutil.Buffer
	slog.New(slog.NewJSONHandler(&lb, nil)).Info("config", "options", o)
	slog.New(slog.NewTextHandler(&lb, nil)).Info("config", "options", o)
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprintf("%s", o), lb.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("the secret shows: %s", s)
		}
		if !strings.Contains(s, "login.example.com") {
			t.Errorf("the issuer does not show: %s", s)
		}
	}
}

func TestCache(t *testing.T) {
	c := newCache[int](3)
	k := func(i int) tokenKey { return keyOf(fmt.Sprint(i)) }
	until := t0.Add(time.Minute)
	for i := range 5 {
		c.put(k(i), i, until)
	}
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries in a cache of 3", n)
	}
	for i := range 5 {
		v, ok := c.get(k(i), t0)
		if want := i >= 2; ok != want || ok && v != i {
			t.Errorf("get(%d) = %d, %v", i, v, ok)
		}
	}
	// Updating a key takes no new slot: 2 stays and is the next to go.
	c.put(k(3), 33, until)
	c.put(k(5), 5, until)
	if _, ok := c.get(k(2), t0); ok {
		t.Error("the oldest key survived")
	}
	if v, _ := c.get(k(3), t0); v != 33 {
		t.Errorf("updated entry %d", v)
	}
	if _, ok := c.get(k(4), until); ok {
		t.Error("an entry served at its end")
	}
}

func TestClassify(t *testing.T) {
	for raw, want := range map[string]tokenKind{
		"a.b.c":                                 jwtToken,
		"mpa_" + strings.Repeat("A", 51):        opaqueToken,
		"mpa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_": opaqueToken,
	} {
		if got, err := classify(raw); err != nil || got != want {
			t.Errorf("classify(%q) = %v, %v", raw, got, err)
		}
	}
	for _, raw := range []string{"", "mpa_", "mpa_a.b", "mpr_x", "Bearer x", strings.Repeat("a", MaxTokenSize+1), "a.b.c.d.e", "a.b.c.d"} {
		if _, err := classify(raw); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("classify(%.20q) = %v", raw, err)
		}
	}
}

// TestContextEnds: a caller that gives up gets ErrUnavailable, and does not
// fail the call it shared with another.
func TestContextEnds(t *testing.T) {
	is := newIssuer(t, newES256(t))
	r := newRig(t, is, nil)
	tok := "mpa_" + strings.Repeat("X", 51)
	is.activate(tok, t0.Add(time.Hour))
	arrived, gate := make(chan struct{}), make(chan struct{})
	is.set(func(is *issuer) { is.introArrived, is.introGate = arrived, gate })

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error)
	go func() {
		_, err := r.Verify(ctx, tok)
		first <- err
	}()
	<-arrived // the call is in flight, held by the issuer
	cancel()
	if err := <-first; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled check: %v", err)
	}
	second := make(chan error)
	go func() {
		_, err := r.Verify(context.Background(), tok)
		second <- err
	}()
	close(gate)
	if err := <-second; err != nil {
		t.Fatalf("the check that joined the call: %v", err)
	}
	if n := is.introHits.Load(); n != 1 {
		t.Fatalf("%d introspection calls, want 1", n)
	}
}
