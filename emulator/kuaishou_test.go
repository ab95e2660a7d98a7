package emulator_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// Kuaishou's paths.
const (
	ksPath      = "/oauth2/mp/code2session"
	ksTokenPath = "/oauth2/access_token"
)

// ksApps is a configuration with two Kuaishou apps beside testApps.
func ksApps() []emulator.App {
	return append(testApps(),
		emulator.App{Family: "kuaishou", AppID: "ks671234567890", Secret: "kssecret1"},
		emulator.App{Family: "kuaishou", AppID: "ks679876543210", Secret: "kssecret2"},
	)
}

func ksForm(appID, secret, code string) url.Values {
	return url.Values{"app_id": {appID}, "app_secret": {secret}, "js_code": {code}}
}

func (v *env) ksExchange(code string) result {
	v.t.Helper()
	return v.postForm(ksPath, ksForm("ks671234567890", "kssecret1", code))
}

// wantKuaishouSession checks a Kuaishou success and returns its fields.
func wantKuaishouSession(t *testing.T, r result) (openid, sessionKey string) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Fatalf("status %d, Content-Type %q, body %s; want 200 application/json", r.status, r.ctype, r.body)
	}
	m := r.json(t)
	if r.num(t, "result") != 1 || len(m) != 3 {
		t.Fatalf("want exactly result 1, open_id and session_key: %s", r.body)
	}
	openid, sessionKey = r.str(t, "open_id"), r.str(t, "session_key")
	wantKey(t, sessionKey, 16)
	if openid == "" {
		t.Fatalf("no open_id in %s", r.body)
	}
	return openid, sessionKey
}

// wantKuaishouError checks a Kuaishou failure as the emulator sends it.
func wantKuaishouError(t *testing.T, r result, res int64, msg string) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Errorf("status %d, Content-Type %q; want 200 application/json", r.status, r.ctype)
	}
	if got := r.num(t, "result"); got != res {
		t.Fatalf("result %d, want %d (body %s)", got, res, r.body)
	}
	if got := r.str(t, "error_msg"); !strings.Contains(got, msg) {
		t.Errorf("error_msg %q, want it to contain %q", got, msg)
	}
	if len(r.json(t)) != 2 {
		t.Errorf("want exactly result and error_msg: %s", r.body)
	}
}

func TestKuaishouCode2Session(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: ksApps()})
	r := v.sendJSON(http.MethodPost, "/_emulator/login", `{"platform":"kuaishou","appid":"ks671234567890","user":"alice"}`)
	openid, key := wantKuaishouSession(t, v.ksExchange(r.str(t, "code")))
	if openid != v.emu.OpenID("kuaishou", "ks671234567890", "alice") || openid == v.emu.OpenID("wechat", "ks671234567890", "alice") {
		t.Errorf("open_id %q is not Kuaishou's OpenID", openid)
	}
	if cur, ok := v.emu.SessionKey("kuaishou", "ks671234567890", "alice"); !ok || cur != key {
		t.Errorf("SessionKey %q, %v; want %q", cur, ok, key)
	}
	if u := v.emu.UnionID("kuaishou", "ks671234567890", "alice"); u != "" {
		t.Errorf("UnionID %q: Kuaishou has none", u)
	}

	// The parameters may come in the query string of a POST instead.
	req := v.request(http.MethodPost, ksPath, ksForm("ks671234567890", "kssecret1", v.login("kuaishou", "ks671234567890", "bob")), nil)
	req.Header.Set("Content-Type", "application/json")
	wantKuaishouSession(t, v.do(req))
	// Or some in each.
	q := url.Values{"app_id": {"ks671234567890"}}
	req = v.request(http.MethodPost, ksPath, q, strings.NewReader(url.Values{"app_secret": {"kssecret1"},
		"js_code": {v.login("kuaishou", "ks671234567890", "carol")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantKuaishouSession(t, v.do(req))
}

func TestKuaishouCode2SessionErrors(t *testing.T) {
	tests := []struct {
		name   string
		code   func(v *env) string
		form   func(f url.Values)
		method string
		result int64
		msg    string
	}{
		{name: "unknown code", code: func(*env) string { return "never-minted" }, result: 100200102, msg: "invalid or expired"},
		{name: "code of another app", code: func(v *env) string { return v.login("kuaishou", "ks679876543210", "alice") }, result: 100200102, msg: "invalid"},
		{name: "code of WeChat", code: func(v *env) string { return v.login("wechat", "wxapp1", "alice") }, result: 100200102, msg: "invalid"},
		{name: "code used", code: func(v *env) string {
			c := v.login("kuaishou", "ks671234567890", "alice")
			wantKuaishouSession(v.t, v.ksExchange(c))
			return c
		}, result: 100200102, msg: "used"},
		{name: "unknown app", form: func(f url.Values) { f.Set("app_id", "ks000") }, result: 100200101, msg: "app_id"},
		{name: "WeChat's app", form: func(f url.Values) { f.Set("app_id", "wxapp1"); f.Set("app_secret", "wxsecret1") }, result: 100200101, msg: "app_id"},
		{name: "wrong secret", form: func(f url.Values) { f.Set("app_secret", "kssecret2") }, result: 100200101, msg: "app_secret"},
		{name: "app_id missing", form: func(f url.Values) { f.Del("app_id") }, result: 100200100, msg: "app_id"},
		{name: "app_secret missing", form: func(f url.Values) { f.Del("app_secret") }, result: 100200100, msg: "app_secret"},
		{name: "js_code missing", form: func(f url.Values) { f.Del("js_code") }, result: 100200100, msg: "js_code"},
		{name: "GET", method: http.MethodGet, result: 100200100, msg: "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: ksApps()})
			code := v.login("kuaishou", "ks671234567890", "alice")
			if tt.code != nil {
				code = tt.code(v)
			}
			f := ksForm("ks671234567890", "kssecret1", code)
			if tt.form != nil {
				tt.form(f)
			}
			var r result
			if tt.method == http.MethodGet {
				r = v.get(ksPath, f)
			} else {
				r = v.postForm(ksPath, f)
			}
			wantKuaishouError(t, r, tt.result, tt.msg)
			if strings.Contains(string(r.body), code) || strings.Contains(string(r.body), "kssecret") {
				t.Errorf("the answer echoes the code or the secret: %s", r.body)
			}
		})
	}
}

func TestKuaishouCodeLife(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: ksApps()})
	early, late := v.login("kuaishou", "ks671234567890", "alice"), v.login("kuaishou", "ks671234567890", "bob")
	v.clock.Advance(5*time.Minute - time.Second)
	wantKuaishouSession(t, v.ksExchange(early))
	v.clock.Advance(time.Second)
	wantKuaishouError(t, v.ksExchange(late), 100200102, "invalid or expired")
	// Any credentials without Config.Apps.
	open := newEnv(t, emulator.Config{})
	wantKuaishouSession(t, open.postForm(ksPath, ksForm("ks1", "whatever", open.login("kuaishou", "ks1", "alice"))))
}

func ksTokenForm(appID, secret string) url.Values {
	return url.Values{"app_id": {appID}, "app_secret": {secret}, "grant_type": {"client_credentials"}}
}

// wantKuaishouToken checks a successful token answer and returns the token.
func wantKuaishouToken(t *testing.T, r result) string {
	t.Helper()
	if r.status != http.StatusOK || r.num(t, "result") != 1 || r.num(t, "expires_in") != 172800 || r.str(t, "token_type") != "bearer" {
		t.Fatalf("token answer %d %s", r.status, r.body)
	}
	tok := r.str(t, "access_token")
	if tok == "" {
		t.Fatalf("no token in %s", r.body)
	}
	return tok
}

func TestKuaishouToken(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: ksApps()})
	t1 := wantKuaishouToken(t, v.postForm(ksTokenPath, ksTokenForm("ks671234567890", "kssecret1")))
	if !v.emu.TokenValid("kuaishou", "ks671234567890", t1) || v.emu.TokenValid("wechat", "ks671234567890", t1) {
		t.Fatal("the token is not Kuaishou's")
	}
	// The documented example sends a GET with a query string.
	v.clock.Advance(47 * time.Hour)
	t2 := wantKuaishouToken(t, v.get(ksTokenPath, ksTokenForm("ks671234567890", "kssecret1")))
	if t2 == t1 || !v.emu.TokenValid("kuaishou", "ks671234567890", t1) || !v.emu.TokenValid("kuaishou", "ks671234567890", t2) {
		t.Fatal("a new fetch must leave the previous token valid")
	}
	v.clock.Advance(time.Hour)
	if v.emu.TokenValid("kuaishou", "ks671234567890", t1) || !v.emu.TokenValid("kuaishou", "ks671234567890", t2) {
		t.Fatal("a token must live 48 hours, no more")
	}
	r := v.sendJSON(http.MethodPost, "/_emulator/tokens/expire", `{"platform":"kuaishou","appid":"ks671234567890"}`)
	if r.status != http.StatusNoContent || v.emu.TokenValid("kuaishou", "ks671234567890", t2) {
		t.Fatalf("expire: %d %s", r.status, r.body)
	}

	for _, tt := range []struct {
		name   string
		form   url.Values
		result int64
	}{
		{"grant_type wrong", url.Values{"app_id": {"ks671234567890"}, "app_secret": {"kssecret1"}, "grant_type": {"client_credential"}}, 100200100},
		{"app_secret missing", url.Values{"app_id": {"ks671234567890"}, "grant_type": {"client_credentials"}}, 100200100},
		{"wrong secret", ksTokenForm("ks671234567890", "kssecret2"), 100200101},
		{"unknown app", ksTokenForm("ks000", "kssecret1"), 100200101},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := v.postForm(ksTokenPath, tt.form)
			wantKuaishouError(t, r, tt.result, "")
			if strings.Contains(string(r.body), "kssecret") {
				t.Errorf("the answer echoes the secret: %s", r.body)
			}
		})
	}
}

// openKuaishou decrypts as Kuaishou documents: AES-128-CBC, PKCS#5, no
// framing and no watermark.
func openKuaishou(t *testing.T, key string, d emulator.UserData) []byte {
	t.Helper()
	k, _ := base64.StdEncoding.DecodeString(key)
	iv, _ := base64.StdEncoding.DecodeString(d.IV)
	ct, _ := base64.StdEncoding.DecodeString(d.EncryptedData)
	block, err := aes.NewCipher(k)
	if err != nil || len(iv) != 16 || len(ct) == 0 || len(ct)%16 != 0 {
		t.Fatalf("key %d bytes, iv %d, ciphertext %d: %v", len(k), len(iv), len(ct), err)
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(ct, ct)
	p := int(ct[len(ct)-1])
	if p < 1 || p > 16 {
		t.Fatalf("padding %d", p)
	}
	return ct[:len(ct)-p]
}

func TestKuaishouUserData(t *testing.T) {
	for name, via := range map[string]userDataVia{"control": viaControl, "go": viaGo} {
		t.Run(name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: ksApps()})
			_, key := wantKuaishouSession(t, v.ksExchange(v.login("kuaishou", "ks671234567890", "alice")))

			d := via(v, "kuaishou", "ks671234567890", "alice", "userinfo")
			plain := openKuaishou(t, key, d)
			var info map[string]any
			decode(t, plain, &info)
			if len(info) != 4 || info["openId"] != v.emu.OpenID("kuaishou", "ks671234567890", "alice") || info["nickName"] != "alice" ||
				(info["gender"] != 1.0 && info["gender"] != 2.0) || !strings.HasPrefix(info["avatarUrl"].(string), "https://") {
				t.Errorf("user info %s", plain)
			}
			if !userdata.VerifyRawData(secret.New(key), d.RawData, d.Signature) {
				t.Errorf("rawData %s does not verify", d.RawData)
			}
			var raw map[string]any
			decode(t, []byte(d.RawData), &raw)
			if len(raw) != 2 || raw["nickName"] != "alice" || raw["avatarUrl"] != info["avatarUrl"] {
				t.Errorf("rawData %s", d.RawData)
			}

			d = via(v, "kuaishou", "ks671234567890", "alice", "phone")
			if d.RawData != "" || d.Signature != "" {
				t.Errorf("phone data carries rawData %q / signature %q", d.RawData, d.Signature)
			}
			var phone map[string]any
			decode(t, openKuaishou(t, key, d), &phone)
			n := v.emu.PhoneNumber("alice")
			if len(phone) != 3 || phone["phoneNumber"] != n || phone["purePhoneNumber"] != n || phone["countryCode"] != "86" {
				t.Errorf("phone %v", phone)
			}
		})
	}
}

// Faults on Kuaishou's paths answer in its format: Errcode is the result.
func TestKuaishouFaults(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: ksApps()})
	v.emu.SetFaults(emulator.Fault{Path: ksPath, Errcode: 100200199, Error: "busy", Times: 1},
		emulator.Fault{Path: ksTokenPath, Error: "down", Status: 503, Times: 1})
	code := v.login("kuaishou", "ks671234567890", "alice")
	wantKuaishouError(t, v.ksExchange(code), 100200199, "busy")
	wantKuaishouSession(t, v.ksExchange(code)) // the fault did not spend it
	r := v.postForm(ksTokenPath, ksTokenForm("ks671234567890", "kssecret1"))
	if r.status != 503 || r.num(t, "result") != 0 || r.str(t, "error_msg") != "down" {
		t.Fatalf("token fault: %d %s", r.status, r.body)
	}
}
