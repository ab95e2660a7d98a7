package config

import (
	"strings"
	"testing"
	"time"
)

func TestAccessTokenDefaults(t *testing.T) {
	c := mustParse(t, head+wechatApp, nil)
	a := c.Apps[0]
	if c.TokenFormat(a) != FormatOpaque || c.UsesJWT() {
		t.Fatalf("format %q, want opaque", c.TokenFormat(a))
	}
	if c.JWTTTL(a) != DefaultJWTTTL || c.MaxJWTTTL() != DefaultJWTTTL {
		t.Fatalf("JWT ttl %v, want %v", c.JWTTTL(a), DefaultJWTTTL)
	}
	if c.Issuer != "http://"+DefaultListen {
		t.Fatalf("issuer %q, want http://%s", c.Issuer, DefaultListen)
	}
	if c.SigningKeyRotation != DefaultSigningKeyRotation || c.SigningAlgorithm() != AlgES256 {
		t.Fatalf("rotation %v alg %s", c.SigningKeyRotation, c.SigningAlgorithm())
	}
}

func TestAccessTokenOverrides(t *testing.T) {
	c := mustParse(t, "access_tokens: {ttl: 5m, audience: [a, b], issuer: 'http://localhost:8300'}\n"+head+wechatApp+
		"    access_tokens: {format: opaque, ttl: 20m, audience: c}\n"+baiduApp, nil)
	w, b := c.Apps[0], c.Apps[1]
	if c.JWTTTL(w) != 20*time.Minute || c.JWTTTL(b) != 5*time.Minute {
		t.Fatalf("ttls %v %v", c.JWTTTL(w), c.JWTTTL(b))
	}
	if got := c.Audience(w); len(got) != 1 || got[0] != "c" {
		t.Fatalf("audience of w %v", got)
	}
	if got := c.Audience(b); len(got) != 2 {
		t.Fatalf("audience of b %v", got)
	}
	if c.Issuer != "http://localhost:8300" {
		t.Fatalf("issuer %q", c.Issuer)
	}
}

func TestAccessTokenErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"access_tokens: {format: paseto}\n" + head + wechatApp, "access_tokens.format: must be opaque or jwt"},
		{"access_tokens: {format: jwt}\n" + head + wechatApp, "apps[0] (w): access_tokens.audience: required with format jwt"},
		{head + wechatApp + "    access_tokens: {format: jwt}\n", "apps[0] (w): access_tokens.audience: required with format jwt"},
		{head + wechatApp + "    access_tokens: {issuer: https://x.example}\n", `unknown key "issuer"`},
		{"access_tokens: {algorithm: HS256}\n" + head + wechatApp, "access_tokens.algorithm: must be ES256 or RS256"},
		{"access_tokens: {ttl: 0s}\n" + head + wechatApp, "access_tokens.ttl: must be more than 0"},
		{"access_tokens: {ttl: -1m}\n" + head + wechatApp, "access_tokens.ttl: must be more than 0"},
		{"access_tokens: {audience: ['a b']}\n" + head + wechatApp, "access_tokens.audience[0]: must be"},
		{"access_tokens: {audience: ['']}\n" + head + wechatApp, "access_tokens.audience[0]: must not be empty"},
		{"access_tokens: {issuer: http://login.example.com}\n" + head + wechatApp, "must be https (http only for 127.0.0.1 or localhost)"},
		{"access_tokens: {issuer: https://login.example.com/}\n" + head + wechatApp, "must not end with a slash"},
		{"access_tokens: {issuer: 'https://login.example.com?a=1'}\n" + head + wechatApp, "must not have a query"},
		{"access_tokens: {issuer: 'https://login.example.com#x'}\n" + head + wechatApp, "must not have a fragment"},
		{"access_tokens: {issuer: login.example.com}\n" + head + wechatApp, "must be an absolute http or https URL"},
		{"access_tokens: {issuers: x}\n" + head + wechatApp, `unknown key "issuers" (did you mean "issuer"?)`},
		{"signing_key_rotation: 23h\n" + head + wechatApp, "signing_key_rotation: must be at least 24h"},
	} {
		if got := parseErr(t, tc.src, nil); !strings.Contains(got, tc.want) {
			t.Errorf("error %q, want it to contain %q\n%s", got, tc.want, tc.src)
		}
	}
}

func TestAccessTokenJWT(t *testing.T) {
	c := mustParse(t, "access_tokens: {format: jwt, audience: [orders]}\n"+head+wechatApp+baiduApp+
		"    access_tokens: {format: opaque}\n", nil)
	w, b := c.Apps[0], c.Apps[1]
	if !c.UsesJWT() || c.TokenFormat(w) != FormatJWT || c.TokenFormat(b) != FormatOpaque || c.JWTTTL(w) != DefaultJWTTTL {
		t.Fatalf("uses jwt %v, formats %s %s, ttl %v", c.UsesJWT(), c.TokenFormat(w), c.TokenFormat(b), c.JWTTTL(w))
	}
	// The audience may come from the app alone.
	c = mustParse(t, head+wechatApp+"    access_tokens: {format: jwt, audience: [orders]}\n", nil)
	if got := c.Audience(c.Apps[0]); len(got) != 1 || got[0] != "orders" || !c.UsesJWT() {
		t.Fatalf("audience %v", got)
	}
}
