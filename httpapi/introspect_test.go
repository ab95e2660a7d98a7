package httpapi_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/secret"
)

const (
	clientID     = "orders"
	clientSecret = "orders-client-secret-5f2a9c"
	// oddSecret needs the form encoding inside Basic: ':', '%', '+', ' '.
	oddID     = "gw.edge"
	oddSecret = "a:b%c+d e/f=g&h-0123456789"
	issuer    = "https://login.example.com"
)

func newIntrospectFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, func(c *httpapi.Config) {
		c.Clients = []httpapi.Client{{ID: clientID, Secret: secret.New(clientSecret)}, {ID: oddID, Secret: secret.New(oddSecret)}}
		c.Issuer = issuer
	})
}

func basic(id, sec string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
}

// form posts a form body to path with the Authorization header auth
// (none when empty).
func (f *fixture) form(path, auth string, v url.Values) response {
	f.t.Helper()
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return f.doHeader("POST", path, h, v.Encode())
}

func (f *fixture) introspect(tok string) response {
	f.t.Helper()
	return f.form("/v1/introspect", basic(clientID, clientSecret), url.Values{"token": {tok}})
}

// inactive fails t unless r is the inactive answer, byte for byte: it
// tells nothing else.
func inactive(t *testing.T, what string, r response) {
	t.Helper()
	if r.status != 200 || r.raw != "{\"active\":false}\n" {
		t.Fatalf("%s: %d %s, want 200 {\"active\":false}", what, r.status, r.raw)
	}
}

func TestIntrospectAccessToken(t *testing.T) {
	f := newIntrospectFixture(t)
	before := time.Now().Unix()
	for _, c := range []struct {
		app       string
		unionid   bool
		userAgent string
	}{{"shop-wechat", false, "alice"}, {"shop-wechat-open", true, "alice"}} {
		tok := f.login(c.app, f.mint("wechat", wxAppID, c.userAgent)).tokens(t)
		r := f.introspect(tok.AccessToken)
		var in struct {
			Active    bool   `json:"active"`
			TokenType string `json:"token_type"`
			Sub       string `json:"sub"`
			ClientID  string `json:"client_id"`
			Exp, Iat  int64
			Iss       string `json:"iss"`
			Sid       string `json:"sid"`
			App       string `json:"app"`
			Platform  string `json:"platform"`
			OpenID    string `json:"openid"`
			UnionID   *string
		}
		r.decode(t, &in)
		after := time.Now().Unix()
		if r.status != 200 || !in.Active || in.TokenType != "access_token" || in.Sub != tok.User.ID || in.ClientID != c.app ||
			in.App != c.app || in.Iss != issuer || in.Sid == "" || in.Platform != "wechat" || in.OpenID != tok.User.OpenID ||
			in.Iat < before || in.Iat > after || in.Exp < before+7200 || in.Exp > after+7200 {
			t.Fatalf("%s: introspect: %d %s", c.app, r.status, r.raw)
		}
		if c.unionid != (in.UnionID != nil) || c.unionid && *in.UnionID != tok.User.UnionID {
			t.Fatalf("%s: unionid in %s, want it only where exposed (%s)", c.app, r.raw, tok.User.UnionID)
		}
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("headers %v", r.header)
		}
		// A look: the session is the same, and nothing was logged as a
		// use of it.
		if s := f.do("GET", "/v1/session", tok.AccessToken, ""); s.status != 200 {
			t.Fatalf("session after introspection: %d %s", s.status, s.raw)
		}
	}
	if !strings.Contains(f.logs.String(), `"client_id":"orders"`) {
		t.Fatalf("no request line names the client:\n%s", f.logs.String())
	}
	f.scanSecrets(t)
	scanClientSecrets(t, f)
}

func TestIntrospectRefreshToken(t *testing.T) {
	f := newIntrospectFixture(t)
	tok := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t)
	before := time.Now().Unix()
	r := f.introspect(tok.RefreshToken)
	var in map[string]any
	r.decode(t, &in)
	exp, _ := in["exp"].(float64)
	if r.status != 200 || in["active"] != true || in["token_type"] != "refresh_token" || in["sub"] != tok.User.ID ||
		in["client_id"] != "shop-wechat" || in["app"] != "shop-wechat" || in["sid"] == nil ||
		int64(exp) < before+30*24*3600-5 || int64(exp) > time.Now().Unix()+30*24*3600 {
		t.Fatalf("introspect refresh token: %d %s", r.status, r.raw)
	}
	for _, k := range []string{"openid", "unionid", "platform"} {
		if _, ok := in[k]; ok {
			t.Fatalf("refresh token answer has %q: %s", k, r.raw)
		}
	}
	// Introspection did not spend it: it refreshes; then it is spent,
	// and inactive; and that look did not end the session.
	t2 := f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+tok.RefreshToken+`"}`)
	if t2.status != 200 {
		t.Fatalf("refresh after introspection: %d %s", t2.status, t2.raw)
	}
	inactive(t, "spent refresh token", f.introspect(tok.RefreshToken))
	inactive(t, "replaced access token", f.introspect(tok.AccessToken))
	if s := f.do("GET", "/v1/session", t2.tokens(t).AccessToken, ""); s.status != 200 {
		t.Fatalf("session after introspecting its spent refresh token: %d %s", s.status, s.raw)
	}
	f.scanSecrets(t)
}

func TestIntrospectInactive(t *testing.T) {
	f := newIntrospectFixture(t)
	tok := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t)
	for _, raw := range []string{"garbage", "mpa_" + strings.Repeat("A", 43), "mpr_" + strings.Repeat("B", 51),
		"Bearer " + tok.AccessToken, tok.AccessToken + "x", "id_" + tok.AccessToken} {
		inactive(t, "token "+raw[:4], f.introspect(raw))
	}
	if lo := f.do("POST", "/v1/logout", tok.AccessToken, ""); lo.status != 204 {
		t.Fatalf("logout: %d", lo.status)
	}
	inactive(t, "revoked access token", f.introspect(tok.AccessToken))
	inactive(t, "revoked refresh token", f.introspect(tok.RefreshToken))
	f.scanSecrets(t)
}

func TestIntrospectClientAuth(t *testing.T) {
	f := newIntrospectFixture(t)
	tok := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t)
	good := url.Values{"token": {tok.AccessToken}}
	with := func(extra url.Values) url.Values {
		v := url.Values{"token": {tok.AccessToken}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	ok := []struct {
		name, auth string
		form       url.Values
	}{
		{"basic", basic(clientID, clientSecret), good},
		{"basic, lower-case scheme", strings.Replace(basic(clientID, clientSecret), "Basic", "basic", 1), good},
		{"basic, form-encoded secret", basic(oddID, oddSecret), good},
		{"basic with the same client_id in the form", basic(clientID, clientSecret), with(url.Values{"client_id": {clientID}})},
		{"form", "", with(url.Values{"client_id": {clientID}, "client_secret": {clientSecret}})},
		{"form, odd secret", "", with(url.Values{"client_id": {oddID}, "client_secret": {oddSecret}})},
		{"with a hint", basic(clientID, clientSecret), with(url.Values{"token_type_hint": {"refresh_token"}})},
		{"with an unknown parameter", basic(clientID, clientSecret), with(url.Values{"scope": {"a", "b"}})},
	}
	for _, c := range ok {
		if r := f.form("/v1/introspect", c.auth, c.form); r.status != 200 || r.body["active"] != true {
			t.Errorf("%s: %d %s", c.name, r.status, r.raw)
		}
	}
	rawBasic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	denied := []struct {
		name, auth string
		form       url.Values
	}{
		{"none", "", good},
		{"wrong secret", basic(clientID, clientSecret+"x"), good},
		{"secret of another client", basic(oddID, clientSecret), good},
		{"unknown client", basic("nobody", clientSecret), good},
		{"empty secret", basic(clientID, ""), good},
		{"not form-encoded", rawBasic(oddID + ":" + oddSecret), good},
		{"bad escape", rawBasic(clientID + ":%zz"), good},
		{"no colon", rawBasic(clientID), good},
		{"not base64", "Basic !!!", good},
		{"bearer", "Bearer " + tok.AccessToken, good},
		{"form without secret", "", with(url.Values{"client_id": {clientID}})},
		{"form, wrong secret", "", with(url.Values{"client_id": {clientID}, "client_secret": {"nope"}})},
		{"form, secret without id", "", with(url.Values{"client_secret": {clientSecret}})},
	}
	for _, c := range denied {
		r := f.form("/v1/introspect", c.auth, c.form)
		if r.status != 401 || r.body["error"] != "invalid_client" || r.header.Get("WWW-Authenticate") != `Basic realm="mplogin"` {
			t.Errorf("%s: %d %s %v, want 401 invalid_client with a Basic challenge", c.name, r.status, r.raw, r.header)
		}
	}
	for _, c := range []struct {
		name, auth string
		form       url.Values
	}{
		{"both ways", basic(clientID, clientSecret), with(url.Values{"client_id": {clientID}, "client_secret": {clientSecret}})},
		{"basic and another client_id", basic(clientID, clientSecret), with(url.Values{"client_id": {oddID}})},
		{"client_secret twice", "", with(url.Values{"client_id": {clientID}, "client_secret": {clientSecret, clientSecret}})},
	} {
		expectError(t, f.form("/v1/introspect", c.auth, c.form), 400, "invalid_request")
	}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
		"Authorization": {basic(clientID, clientSecret), basic(clientID, clientSecret)}}
	expectError(t, f.doHeader("POST", "/v1/introspect", h, good.Encode()), 400, "invalid_request")
	f.scanSecrets(t)
	scanClientSecrets(t, f)
}

func TestIntrospectRequest(t *testing.T) {
	f := newIntrospectFixture(t)
	auth := basic(clientID, clientSecret)
	send := func(ct, body string) response {
		h := http.Header{"Authorization": {auth}}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		return f.doHeader("POST", "/v1/introspect", h, body)
	}
	tok := "token=mpa_" + strings.Repeat("A", 43)
	for _, ct := range []string{"", "application/json", "text/plain", "application/x-www-form-urlencoded; charset=latin1", "multipart/form-data"} {
		expectError(t, send(ct, tok), 415, "unsupported_media_type")
	}
	if r := send("application/x-www-form-urlencoded; charset=UTF-8", tok); r.status != 200 {
		t.Fatalf("charset utf-8: %d %s", r.status, r.raw)
	}
	expectError(t, send("application/x-www-form-urlencoded", "token="+strings.Repeat("a", 5000)), 413, "request_too_large")
	expectError(t, send("application/x-www-form-urlencoded", ""), 400, "invalid_request")
	expectError(t, send("application/x-www-form-urlencoded", "token="), 400, "invalid_request")
	expectError(t, send("application/x-www-form-urlencoded", tok+"&"+tok), 400, "invalid_request")
	expectError(t, send("application/x-www-form-urlencoded", "token=%zz"), 400, "invalid_request")
	expectError(t, send("application/x-www-form-urlencoded", "token=a;b"), 400, "invalid_request")
	r := f.do("GET", "/v1/introspect", "", "")
	expectError(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	// Client authentication comes before the token: without it, a
	// missing token is not told apart.
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	expectError(t, f.doHeader("POST", "/v1/introspect", h, ""), 401, "invalid_client")
}

// A service without clients answers every introspection 401.
func TestIntrospectNoClients(t *testing.T) {
	f := newFixture(t)
	r := f.form("/v1/introspect", basic(clientID, clientSecret), url.Values{"token": {"x"}})
	expectError(t, r, 401, "invalid_client")
}

func TestIntrospectStoreDown(t *testing.T) {
	f := newIntrospectFixture(t)
	tok := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t)
	f.store.set(true)
	for _, raw := range []string{tok.AccessToken, tok.RefreshToken} {
		r := f.introspect(raw)
		expectError(t, r, 503, "store_unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		r = f.form("/v1/revoke", "", url.Values{"token": {raw}})
		expectError(t, r, 503, "store_unavailable")
	}
	f.store.set(false)
	if r := f.introspect(tok.AccessToken); r.body["active"] != true {
		t.Fatalf("after the outage: %s", r.raw)
	}
}

func TestRevoke(t *testing.T) {
	f := newIntrospectFixture(t)
	cases := []struct {
		name, auth string
		refresh    bool
	}{
		{"holder, refresh token", "", true},
		{"holder, access token", "", false},
		{"client, refresh token", basic(clientID, clientSecret), true},
		{"client, access token", basic(clientID, clientSecret), false},
	}
	for i, c := range cases {
		tok := f.login("shop-wechat", f.mint("wechat", wxAppID, "user"+string(rune('a'+i)))).tokens(t)
		raw := tok.AccessToken
		if c.refresh {
			raw = tok.RefreshToken
		}
		r := f.form("/v1/revoke", c.auth, url.Values{"token": {raw}, "token_type_hint": {"access_token"}})
		if r.status != 200 || r.raw != "" {
			t.Fatalf("%s: %d %q, want 200 and no body", c.name, r.status, r.raw)
		}
		expectError(t, f.do("GET", "/v1/session", tok.AccessToken, ""), 401, "invalid_token")
		expectError(t, f.do("POST", "/v1/token", "", `{"grant_type":"refresh_token","refresh_token":"`+tok.RefreshToken+`"}`), 400, "invalid_grant")
		inactive(t, c.name+": introspection after revocation", f.introspect(tok.RefreshToken))
		// Again: still 200.
		if r := f.form("/v1/revoke", c.auth, url.Values{"token": {raw}}); r.status != 200 || r.raw != "" {
			t.Fatalf("%s, again: %d %q", c.name, r.status, r.raw)
		}
	}
	for _, raw := range []string{"garbage", "mpa_" + strings.Repeat("A", 43), "mpr_" + strings.Repeat("A", 43)} {
		if r := f.form("/v1/revoke", "", url.Values{"token": {raw}}); r.status != 200 || r.raw != "" {
			t.Fatalf("unknown token: %d %q", r.status, r.raw)
		}
	}
	// Client credentials, when given, must be right, even for a token
	// its holder could revoke alone.
	tok := f.login("shop-wechat", f.mint("wechat", wxAppID, "zed")).tokens(t)
	r := f.form("/v1/revoke", basic(clientID, "wrong-secret-0000000"), url.Values{"token": {tok.AccessToken}})
	expectError(t, r, 401, "invalid_client")
	r = f.form("/v1/revoke", "", url.Values{"token": {tok.AccessToken}, "client_id": {clientID}, "client_secret": {"x"}})
	expectError(t, r, 401, "invalid_client")
	if s := f.do("GET", "/v1/session", tok.AccessToken, ""); s.status != 200 {
		t.Fatalf("a refused revocation ended the session: %d", s.status)
	}
	// A public client may name itself without a secret.
	r = f.form("/v1/revoke", "", url.Values{"token": {tok.RefreshToken}, "client_id": {"shop-wechat"}})
	if r.status != 200 {
		t.Fatalf("revoke with a client_id alone: %d %s", r.status, r.raw)
	}
	expectError(t, f.do("GET", "/v1/session", tok.AccessToken, ""), 401, "invalid_token")
	expectError(t, f.form("/v1/revoke", "", url.Values{}), 400, "invalid_request")
	expectError(t, f.do("POST", "/v1/revoke", "", `{"token":"x"}`), 415, "unsupported_media_type")
	f.scanSecrets(t)
	scanClientSecrets(t, f)
}

func TestAuthz(t *testing.T) {
	f := newIntrospectFixture(t)
	plain := f.login("shop-wechat", f.mint("wechat", wxAppID, "alice")).tokens(t)
	open := f.login("shop-wechat-open", f.mint("wechat", wxAppID, "alice")).tokens(t)
	for _, c := range []struct {
		method, path string
		tok          string
		app, unionid string
	}{
		{"GET", "/v1/authz", plain.AccessToken, "shop-wechat", ""},
		{"HEAD", "/v1/authz", plain.AccessToken, "shop-wechat", ""},
		{"POST", "/v1/authz", plain.AccessToken, "shop-wechat", ""},
		{"DELETE", "/v1/authz/api/orders/7?x=1", plain.AccessToken, "shop-wechat", ""},
		{"GET", "/v1/authz/", open.AccessToken, "shop-wechat-open", open.User.UnionID},
	} {
		h := http.Header{"Authorization": {"Bearer " + c.tok}, "X-User-Id": {"forged"}}
		r := f.doHeader(c.method, c.path, h, "")
		if r.status != 200 || r.raw != "" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s %s: %d %q %v", c.method, c.path, r.status, r.raw, r.header)
		}
		want := map[string]string{"X-User-Id": plain.User.ID, "X-Openid": plain.User.OpenID, "X-Unionid": c.unionid,
			"X-Mplogin-App": c.app}
		for k, v := range want {
			if got, ok := r.header[k]; !ok || len(got) != 1 || got[0] != v {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.path, k, got, v)
			}
		}
		if r.header.Get("X-Mplogin-Session") == "" {
			t.Errorf("no X-Mplogin-Session")
		}
	}
	if open.User.UnionID == "" {
		t.Fatal("the emulator gave no unionid: the exposed case proves nothing")
	}
	expectError(t, f.doHeader("GET", "/v1/authz", http.Header{}, ""), 401, "invalid_token")
	if r := f.doHeader("GET", "/v1/authz/x", http.Header{}, ""); r.header.Get("WWW-Authenticate") != `Bearer realm="mplogin"` {
		t.Fatalf("missing token: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
	}
	for _, bad := range []string{"garbage", "mpa_" + strings.Repeat("A", 43), plain.RefreshToken} {
		r := f.doHeader("GET", "/v1/authz", http.Header{"Authorization": {"Bearer " + bad}}, "")
		expectError(t, r, 401, "invalid_token")
		if r.header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` || r.header.Get("X-User-Id") != "" {
			t.Fatalf("bad token: %v", r.header)
		}
	}
	// Many requests of many users from one address: no limit refuses any.
	for range 50 {
		if r := f.doHeader("GET", "/v1/authz", http.Header{"Authorization": {"Bearer " + plain.AccessToken}}, ""); r.status != 200 {
			t.Fatalf("repeated check: %d", r.status)
		}
	}
	f.store.set(true)
	r := f.doHeader("GET", "/v1/authz", http.Header{"Authorization": {"Bearer " + plain.AccessToken}}, "")
	expectError(t, r, 503, "store_unavailable")
	if r.header.Get("Retry-After") == "" || r.header.Get("X-User-Id") != "" {
		t.Fatalf("store down: %v", r.header)
	}
	f.store.set(false)
	if lo := f.do("POST", "/v1/logout", plain.AccessToken, ""); lo.status != 204 {
		t.Fatal("logout")
	}
	expectError(t, f.doHeader("GET", "/v1/authz", http.Header{"Authorization": {"Bearer " + plain.AccessToken}}, ""), 401, "invalid_token")
	if !strings.Contains(f.logs.String(), `"route":"/v1/authz"`) {
		t.Fatal("no request line for /v1/authz")
	}
	f.scanSecrets(t)
}

// scanClientSecrets: no response and no log line carries a client
// secret, in clear or as it travels (form or Basic encoded).
func scanClientSecrets(t *testing.T, f *fixture) {
	t.Helper()
	logs := f.logs.String()
	needles := []string{clientSecret, oddSecret, url.QueryEscape(oddSecret), basic(clientID, clientSecret)[6:], basic(oddID, oddSecret)[6:]}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Fatalf("log carries a client secret %q", n)
		}
		for _, resp := range f.responses {
			if strings.Contains(resp, n) {
				t.Fatalf("response carries a client secret: %s", resp)
			}
		}
	}
}
