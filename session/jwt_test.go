package session_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/signing"
)

const jwtIssuer = "https://login.example.com"

// jwtFixture is a service whose app "shop" issues JWTs (10 minutes, for
// API "orders") and "open" does too, with its unionids in them; "plain"
// keeps opaque tokens. The keys live in the fixture's store.
func jwtFixture(t testing.TB) (*fixture, *signing.Manager) {
	t.Helper()
	var keys *signing.Manager
	f := newFixture(t,
		withApps(func(f *fixture) []session.App {
			jwt := &session.AppJWT{TTL: 10 * time.Minute, Audience: []string{"orders"}}
			return []session.App{
				{Name: "shop", Family: "wechat", AppID: "wx1", Client: f.plat, CodeTTL: 5 * time.Minute, JWT: jwt},
				{Name: "open", Family: "wechat", AppID: "wx2", Client: f.plat, CodeTTL: 5 * time.Minute, JWT: jwt, ExposeUnionID: true},
				{Name: "plain", Family: "wechat", AppID: "wx3", Client: f.plat, CodeTTL: 5 * time.Minute},
			}
		}),
		withJWT(func(f *fixture) *session.JWTConfig {
			var err error
			keys, err = signing.New(signing.Config{Store: f.store, Keys: f.keys, MaxTokenTTL: 10 * time.Minute, Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			if err := keys.Refresh(t.Context()); err != nil {
				t.Fatal(err)
			}
			return &session.JWTConfig{Keys: keys, Issuer: jwtIssuer}
		}))
	f.plat.unionID = "union-1" // before any login reads it
	return f, keys
}

// jwtParts decodes a JWT's header and claims without checking it.
func jwtParts(t *testing.T, raw string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func TestJWTAccessTokens(t *testing.T) {
	f, keys := jwtFixture(t)
	ctx := t.Context()
	minted := f.clock.Now()
	tok, err := f.svc.Login(ctx, "shop", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresIn != 10*time.Minute || !strings.HasPrefix(tok.RefreshToken.Reveal(), "mpr_") {
		t.Fatalf("expires in %v, refresh %.4s…", tok.ExpiresIn, tok.RefreshToken.Reveal())
	}
	header, claims := jwtParts(t, tok.AccessToken.Reveal())
	signer, err := keys.Signer(minted)
	if err != nil {
		t.Fatal(err)
	}
	if header["typ"] != "at+jwt" || header["alg"] != "ES256" || header["kid"] != signer.KID {
		t.Fatalf("header %v, want typ at+jwt, ES256, kid %s", header, signer.KID)
	}
	info, err := f.svc.Check(ctx, tok.AccessToken.Reveal())
	if err != nil {
		t.Fatalf("Check of the JWT: %v", err)
	}
	want := map[string]any{"iss": jwtIssuer, "sub": tok.User.ID, "aud": "orders", "client_id": "shop", "app": "shop",
		"sid": info.SessionID, "platform": "wechat", "openid": "openid-alice",
		"iat": float64(minted.Unix()), "exp": float64(minted.Add(10 * time.Minute).Unix())}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %q", jti)
	}
	if _, ok := claims["unionid"]; ok {
		t.Error("a unionid in the JWT of an app that does not expose it")
	}
	if info.User.ID != tok.User.ID || info.App != "shop" {
		t.Fatalf("Check = %+v", info)
	}

	// The app that exposes unionids has them in its JWTs.
	open, err := f.svc.Login(ctx, "open", "bob.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, c := jwtParts(t, open.AccessToken.Reveal()); c["unionid"] != "union-1" {
		t.Fatalf("unionid claim %v", c["unionid"])
	}
	// An app without JWTs keeps opaque tokens.
	plain, err := f.svc.Login(ctx, "plain", "carol.1")
	if err != nil || !strings.HasPrefix(plain.AccessToken.Reveal(), "mpa_") {
		t.Fatalf("opaque app: %v", err)
	}

	// A refresh mints another JWT of the same session.
	f.clock.Advance(time.Minute)
	next, err := f.svc.Refresh(ctx, tok.RefreshToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	if next.AccessToken.Reveal() == tok.AccessToken.Reveal() {
		t.Fatal("the refresh returned the same JWT")
	}
	if _, c := jwtParts(t, next.AccessToken.Reveal()); c["sid"] != info.SessionID {
		t.Fatalf("the refreshed JWT names session %v, want %s", c["sid"], info.SessionID)
	}

	// A JWT passes until its exp (and the leeway), not after.
	f.clock.Advance(9*time.Minute + mplogin.MaxClockSkew - time.Second)
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); err != nil {
		t.Fatalf("a JWT within its lifetime and the leeway: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	if _, err := f.svc.Check(ctx, tok.AccessToken.Reveal()); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
		t.Fatalf("an expired JWT: %v, want invalid_token", err)
	}

	// A logout with the JWT ends the session: its other JWTs fail at once
	// on the service's own routes.
	if err := f.svc.Logout(ctx, next.AccessToken.Reveal()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Check(ctx, next.AccessToken.Reveal()); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
		t.Fatalf("a JWT after logout: %v, want invalid_token", err)
	}
}

// Tokens that are not this service's JWTs are refused, each with
// invalid_token: another key, alg none, HMAC, another typ, another iss, a
// JWT of a session that does not exist, a JWT of an opaque app.
func TestJWTForgeries(t *testing.T) {
	f, keys := jwtFixture(t)
	ctx := t.Context()
	tok, err := f.svc.Login(ctx, "shop", "alice.1")
	if err != nil {
		t.Fatal(err)
	}
	_, claims := jwtParts(t, tok.AccessToken.Reveal())
	signer, err := keys.Signer(f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	sign := func(key any, alg jose.SignatureAlgorithm, kid, typ string, change func(map[string]any)) string {
		t.Helper()
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		if change != nil {
			change(c)
		}
		opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), kid)
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := f.svc.Login(ctx, "plain", "bob.1")
	if err != nil {
		t.Fatal(err)
	}
	plainInfo, err := f.svc.Check(ctx, plain.AccessToken.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	claimsJSON, _ := json.Marshal(claims)
	for name, raw := range map[string]string{
		"a key never published": sign(other, jose.ES256, signer.KID, "at+jwt", nil),
		"alg none":              b64([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+signer.KID+`"}`)) + "." + b64(claimsJSON) + ".",
		"HMAC with the kid":     sign([]byte("0123456789abcdef0123456789abcdef"), jose.HS256, signer.KID, "at+jwt", nil),
		"a tampered payload":    strings.Split(tok.AccessToken.Reveal(), ".")[0] + "." + b64([]byte(strings.Replace(string(claimsJSON), `"shop"`, `"open"`, 1))) + "." + strings.Split(tok.AccessToken.Reveal(), ".")[2],
		"garbage with two dots": "a.b.c",
		"an oversized token":    strings.Repeat("a", session.MaxJWTSize) + ".b.c",
	} {
		if _, err := f.svc.Check(ctx, raw); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
			t.Errorf("%s: %v, want invalid_token", name, err)
		}
	}
	// Signed with the real key, but not a token of this service as it stands.
	var realTyped func(typ string, change func(map[string]any)) string
	genuine := func(change func(map[string]any)) string { return realTyped("at+jwt", change) }
	realTyped = func(typ string, change func(map[string]any)) string {
		t.Helper()
		opts := &jose.SignerOptions{}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := signer.NewSigner(opts)
		if err != nil {
			t.Fatal(err)
		}
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	// The control: the real key and the real claims pass.
	if _, err := f.svc.Check(ctx, genuine(func(map[string]any) {})); err != nil {
		t.Fatalf("the real key with the real claims: %v", err)
	}
	for _, typ := range []string{"JWT", "", "application/jwt"} {
		if _, err := f.svc.Check(ctx, realTyped(typ, func(map[string]any) {})); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
			t.Errorf("typ %q: %v, want invalid_token", typ, err)
		}
	}
	for name, change := range map[string]func(map[string]any){
		"another issuer":           func(c map[string]any) { c["iss"] = "https://evil.example" },
		"a session that is absent": func(c map[string]any) { c["sid"] = "no-such-session" },
		"an opaque app's session":  func(c map[string]any) { c["sid"], c["app"], c["sub"] = plainInfo.SessionID, "plain", plain.User.ID },
		"another user":             func(c map[string]any) { c["sub"] = "someone-else" },
		"another audience":         func(c map[string]any) { c["aud"] = "billing" },
		"no exp":                   func(c map[string]any) { delete(c, "exp") },
		"issued in the future":     func(c map[string]any) { c["iat"] = float64(f.clock.Now().Add(time.Hour).Unix()) },
	} {
		if _, err := f.svc.Check(ctx, genuine(change)); mplogin.ErrorCode(err) != mplogin.CodeInvalidToken {
			t.Errorf("%s: %v, want invalid_token", name, err)
		}
	}
}
