package emulator_test

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
)

const alipayGWPath = "/gateway.do"

// Alipay apps under test: one per mode, one without a key.
const (
	apUserID  = "2021000000000001"
	apOpenID  = "2021000000000002"
	apBoth    = "2021000000000003"
	apDefault = "2021000000000004"
	apNoKey   = "2021000000000005"
)

// apAESKey is the content-encryption key of apUserID and apDefault.
var apAESKey = []byte("0123456789abcdef")

// alipayKeys are the test's key pairs: the apps' and the gateway's.
type alipayKeys struct {
	app, app2, gateway *rsa.PrivateKey
}

// signKey is the private key a client of appid signs with.
func (k alipayKeys) signKey(appid string) *rsa.PrivateKey {
	if appid == apOpenID {
		return k.app2
	}
	return k.app
}

// newAlipayEnv is an emulator with testApps and the Alipay apps, signing
// with the gateway key of testdata.
func newAlipayEnv(t *testing.T, mutate func(*emulator.Config)) (*env, alipayKeys) {
	t.Helper()
	k := alipayKeys{dyKey(t, "alipay_app_key.pem"), dyKey(t, "alipay_app2_key.pem"), dyKey(t, "alipay_gateway_key.pem")}
	cfg := emulator.Config{
		Apps: append(testApps(),
			emulator.App{Family: "alipay", AppID: apUserID, AlipayPublicKey: &k.app.PublicKey, AlipayMode: emulator.AlipayModeUserID, AESKey: apAESKey},
			emulator.App{Family: "alipay", AppID: apOpenID, AlipayPublicKey: &k.app2.PublicKey, AlipayMode: emulator.AlipayModeOpenID},
			emulator.App{Family: "alipay", AppID: apBoth, AlipayPublicKey: &k.app.PublicKey, AlipayMode: emulator.AlipayModeBoth},
			emulator.App{Family: "alipay", AppID: apDefault, AlipayPublicKey: &k.app.PublicKey, AESKey: apAESKey},
			emulator.App{Family: "alipay", AppID: apNoKey},
		),
		AlipayKey: k.gateway,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	return newEnv(t, cfg), k
}

// apParams are the parameters of an oauth.token request, unsigned.
func apParams(appid, code string) url.Values {
	return url.Values{
		"app_id": {appid}, "method": {"alipay.system.oauth.token"}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {"2025-03-01 20:00:00"}, "version": {"1.0"},
		"grant_type": {"authorization_code"}, "code": {code},
	}
}

// apContent is the string a client signs, built here as Alipay's SDKs
// build it: the parameters but sign with a value, sorted, k=v joined by &.
func apContent(p url.Values) string {
	var pairs []string
	for k := range p {
		if v := p.Get(k); k != "sign" && v != "" {
			pairs = append(pairs, k+"="+v)
		}
	}
	sort.Slice(pairs, func(i, j int) bool { // by name: "=" may sort before a longer name's letters
		return strings.SplitN(pairs[i], "=", 2)[0] < strings.SplitN(pairs[j], "=", 2)[0]
	})
	return strings.Join(pairs, "&")
}

// apSign sets sign to the RSA2 signature of the parameters by key.
func apSign(t *testing.T, key *rsa.PrivateKey, p url.Values) url.Values {
	t.Helper()
	p.Del("sign")
	h := sha256.Sum256([]byte(apContent(p)))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	p.Set("sign", base64.StdEncoding.EncodeToString(sig))
	return p
}

// apAnswer is a gateway answer as a verifying client reads it.
type apAnswer struct {
	node   string         // the node beside sign
	raw    []byte         // its bytes as sent
	fields map[string]any // decoded, numbers as json.Number
	keys   []string       // its field names in order
}

func (a apAnswer) str(field string) string { s, _ := a.fields[field].(string); return s }

// apOpen checks the envelope {"<node>":…,"sign":"…"} and the signature
// over the node's exact bytes with pub, and decodes the node.
func apOpen(t *testing.T, r result, pub *rsa.PublicKey) apAnswer {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "text/html;charset=utf-8" {
		t.Errorf("status %d, Content-Type %q; want 200 text/html;charset=utf-8", r.status, r.ctype)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &top); err != nil || len(top) != 2 || top["sign"] == nil {
		t.Fatalf("want a node and a sign: %s (%v)", r.body, err)
	}
	var a apAnswer
	for k, v := range top {
		if k != "sign" {
			a.node, a.raw = k, v
		}
	}
	if want := `{"` + a.node + `":` + string(a.raw) + `,"sign":` + string(top["sign"]) + `}`; string(r.body) != want {
		t.Errorf("envelope %s: want the node, then the sign, nothing else", r.body)
	}
	var sign string
	_ = json.Unmarshal(top["sign"], &sign)
	sig, err := base64.StdEncoding.DecodeString(sign)
	h := sha256.Sum256(a.raw)
	if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) != nil {
		t.Fatalf("the sign does not verify over %s", a.raw)
	}
	dec := json.NewDecoder(bytes.NewReader(a.raw))
	dec.UseNumber()
	if err := dec.Decode(&a.fields); err != nil {
		t.Fatal(err)
	}
	dec = json.NewDecoder(bytes.NewReader(a.raw))
	dec.UseNumber()
	_, _ = dec.Token()
	for dec.More() {
		k, _ := dec.Token()
		a.keys = append(a.keys, k.(string))
		var skip any
		_ = dec.Decode(&skip)
	}
	return a
}

// wantApError checks an error answer.
func wantApError(t *testing.T, a apAnswer, node, code, subCode string) {
	t.Helper()
	msgs := map[string]string{"20000": "Service Currently Unavailable", "40001": "Missing Required Arguments",
		"40002": "Invalid Arguments", "40003": "Insufficient Conditions", "40005": "Call Limited"}
	if a.node != node || a.str("code") != code || a.str("sub_code") != subCode || a.str("msg") != msgs[code] || a.str("sub_msg") == "" {
		t.Fatalf("got %s %s; want %s code %s (%s) sub_code %s", a.node, a.raw, node, code, msgs[code], subCode)
	}
	if strings.Join(a.keys, ",") != "code,msg,sub_code,sub_msg" {
		t.Errorf("fields %v", a.keys)
	}
}

// apPost posts the parameters as a form, as most SDKs do.
func (v *env) apPost(p url.Values) result {
	v.t.Helper()
	req := v.request(http.MethodPost, alipayGWPath, nil, strings.NewReader(p.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	return v.do(req)
}

// apExchange signs and posts a code exchange for appid.
func (v *env) apExchange(k alipayKeys, appid, code string) result {
	v.t.Helper()
	return v.apPost(apSign(v.t, k.signKey(appid), apParams(appid, code)))
}

// apLogin mints an auth code through the control API, as my.getAuthCode.
func (v *env) apLogin(appid, user string) string {
	v.t.Helper()
	r := v.sendJSON(http.MethodPost, "/_emulator/login", `{"platform":"alipay","appid":"`+appid+`","user":"`+user+`"}`)
	code := r.str(v.t, "code")
	if r.status != http.StatusOK || !regexp.MustCompile(`^[0-9a-f]{28}[A-Z]{2}[0-9]{2}$`).MatchString(code) {
		v.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return code
}

var (
	apTokenRE      = regexp.MustCompile(`^authusrB[0-9a-f]{29}[A-Z][0-9]{2}$`)
	apUserIDRE     = regexp.MustCompile(`^2088[0-9]{12}$`)
	apLongUserIDRE = regexp.MustCompile(`^2088[0-9]{28}$`)
	apOpenIDRE     = regexp.MustCompile(`^083[A-Za-z0-9_-]{44}$`)
)

func TestAlipayOAuthToken(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	for _, tt := range []struct {
		appid string
		keys  string
	}{
		{apUserID, "access_token,alipay_user_id,expires_in,re_expires_in,refresh_token,user_id"},
		{apOpenID, "access_token,auth_start,expires_in,re_expires_in,refresh_token,open_id"},
		{apDefault, "access_token,auth_start,expires_in,re_expires_in,refresh_token,open_id"},
		{apBoth, "access_token,alipay_user_id,auth_start,expires_in,re_expires_in,refresh_token,user_id,open_id"},
	} {
		t.Run(tt.appid, func(t *testing.T) {
			a := apOpen(t, v.apExchange(k, tt.appid, v.apLogin(tt.appid, "alice")), &k.gateway.PublicKey)
			if a.node != "alipay_system_oauth_token_response" || strings.Join(a.keys, ",") != tt.keys {
				t.Fatalf("node %s fields %v; want %s", a.node, a.keys, tt.keys)
			}
			if !apTokenRE.MatchString(a.str("access_token")) || !apTokenRE.MatchString(a.str("refresh_token")) ||
				a.str("access_token") == a.str("refresh_token") {
				t.Errorf("tokens %s", a.raw)
			}
			if a.fields["expires_in"] != json.Number("1296000") || a.fields["re_expires_in"] != json.Number("2592000") {
				t.Errorf("lifetimes %s", a.raw)
			}
			if id, ok := a.fields["user_id"]; ok {
				if id != v.emu.AlipayUserID("alice") || !apUserIDRE.MatchString(id.(string)) || id != v.emu.UnionID("alipay", tt.appid, "alice") {
					t.Errorf("user_id %v, AlipayUserID %s", id, v.emu.AlipayUserID("alice"))
				}
				if !apLongUserIDRE.MatchString(a.str("alipay_user_id")) {
					t.Errorf("alipay_user_id %q", a.str("alipay_user_id"))
				}
			}
			if id, ok := a.fields["open_id"]; ok {
				if id != v.emu.OpenID("alipay", tt.appid, "alice") || !apOpenIDRE.MatchString(id.(string)) {
					t.Errorf("open_id %v, OpenID %s", id, v.emu.OpenID("alipay", tt.appid, "alice"))
				}
				if a.str("auth_start") != "2025-03-01 20:00:00" { // the clock's 12:00 UTC, in China
					t.Errorf("auth_start %q", a.str("auth_start"))
				}
			}
		})
	}
	// user_id is the user's in every app; open_id is per app and user.
	if v.emu.AlipayUserID("alice") == v.emu.AlipayUserID("bob") {
		t.Error("two users share a user_id")
	}
	ids := map[string]bool{}
	for _, id := range []string{v.emu.OpenID("alipay", apOpenID, "alice"), v.emu.OpenID("alipay", apBoth, "alice"),
		v.emu.OpenID("alipay", apOpenID, "bob"), v.emu.OpenID("wechat", apOpenID, "alice")} {
		ids[id] = true
	}
	if len(ids) != 4 {
		t.Errorf("open_ids shared across apps, users or platforms: %v", ids)
	}
	if _, ok := v.emu.SessionKey("alipay", apOpenID, "alice"); ok {
		t.Error("an Alipay user holds a session key")
	}
	// Go's Login mints an auth code too.
	code, err := v.emu.Login("alipay", apUserID, "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if a := apOpen(t, v.apExchange(k, apUserID, code), &k.gateway.PublicKey); a.str("user_id") != v.emu.AlipayUserID("bob") {
		t.Errorf("Login's code: %s", a.raw)
	}
}

func TestAlipayOAuthTokenErrors(t *testing.T) {
	const node, errNode = "alipay_system_oauth_token_response", "error_response"
	tests := []struct {
		name    string
		code    func(v *env, k alipayKeys) string              // the code sent; a fresh one of apUserID's by default
		edit    func(p url.Values)                             // before signing
		after   func(t *testing.T, p url.Values, k alipayKeys) // after signing
		method  string
		node    string
		errCode string
		subCode string
		keeps   bool // the code is still good afterwards
	}{
		{name: "unknown code", code: func(*env, alipayKeys) string { return "4b203fe6c11548bcabd8da5bb087UE33" }, node: errNode, errCode: "40002", subCode: "isv.code-invalid"},
		{name: "used code", code: func(v *env, k alipayKeys) string {
			c := v.apLogin(apUserID, "alice")
			apOpen(v.t, v.apExchange(k, apUserID, c), &k.gateway.PublicKey)
			return c
		}, node: errNode, errCode: "40002", subCode: "isv.code-invalid"},
		{name: "another app's code", code: func(v *env, _ alipayKeys) string { return v.apLogin(apBoth, "alice") }, node: errNode, errCode: "40002", subCode: "isv.code-invalid"},
		{name: "WeChat's code", code: func(v *env, _ alipayKeys) string { return v.login("wechat", "wxapp1", "alice") }, node: errNode, errCode: "40002", subCode: "isv.code-invalid"},
		{name: "expired code", code: func(v *env, _ alipayKeys) string {
			c := v.apLogin(apUserID, "alice")
			v.clock.Advance(5 * time.Minute)
			return c
		}, node: errNode, errCode: "40002", subCode: "isv.code-invalid"},
		{name: "code missing", edit: func(p url.Values) { p.Del("code") }, node: errNode, errCode: "40002", subCode: "isv.code-invalid", keeps: true},
		{name: "grant_type missing", edit: func(p url.Values) { p.Del("grant_type") }, node: errNode, errCode: "40002", subCode: "isv.grant-type-invalid", keeps: true},
		{name: "grant_type in biz_content", edit: func(p url.Values) {
			p.Set("biz_content", `{"grant_type":"authorization_code","code":"`+p.Get("code")+`"}`)
			p.Del("grant_type")
			p.Del("code")
		}, node: errNode, errCode: "40002", subCode: "isv.grant-type-invalid", keeps: true},
		{name: "refresh_token grant", edit: func(p url.Values) { p.Set("grant_type", "refresh_token"); p.Set("refresh_token", "authusrB0") },
			node: errNode, errCode: "40002", subCode: "isv.refresh-token-invalid", keeps: true},
		{name: "another app's key", after: func(t *testing.T, p url.Values, k alipayKeys) { apSign(t, k.app2, p) }, node: node, errCode: "40002", subCode: "isv.invalid-signature", keeps: true},
		{name: "changed after signing", after: func(_ *testing.T, p url.Values, _ alipayKeys) { p.Set("timestamp", "2025-03-01 20:00:01") }, node: node, errCode: "40002", subCode: "isv.invalid-signature", keeps: true},
		{name: "sign not base64", after: func(_ *testing.T, p url.Values, _ alipayKeys) { p.Set("sign", "not base64!") }, node: node, errCode: "40002", subCode: "isv.invalid-signature", keeps: true},
		{name: "sign missing", after: func(_ *testing.T, p url.Values, _ alipayKeys) { p.Del("sign") }, node: node, errCode: "40001", subCode: "isv.missing-signature", keeps: true},
		{name: "unknown app", edit: func(p url.Values) { p.Set("app_id", "2021999999999999") }, node: node, errCode: "40002", subCode: "isv.invalid-app-id", keeps: true},
		{name: "WeChat's app", edit: func(p url.Values) { p.Set("app_id", "wxapp1") }, node: node, errCode: "40002", subCode: "isv.invalid-app-id", keeps: true},
		{name: "app without a key", edit: func(p url.Values) { p.Set("app_id", apNoKey) }, node: node, errCode: "40003", subCode: "isv.missing-signature-config", keeps: true},
		{name: "app_id missing", edit: func(p url.Values) { p.Del("app_id") }, node: node, errCode: "40001", subCode: "isv.missing-app-id", keeps: true},
		{name: "sign_type RSA", edit: func(p url.Values) { p.Set("sign_type", "RSA") }, node: node, errCode: "40002", subCode: "isv.invalid-signature-type", keeps: true},
		{name: "sign_type missing", edit: func(p url.Values) { p.Del("sign_type") }, node: node, errCode: "40001", subCode: "isv.missing-signature-type", keeps: true},
		{name: "charset GBK", edit: func(p url.Values) { p.Set("charset", "GBK") }, node: node, errCode: "40002", subCode: "isv.invalid-charset", keeps: true},
		{name: "charset missing", edit: func(p url.Values) { p.Del("charset") }, node: node, errCode: "40002", subCode: "isv.invalid-charset", keeps: true},
		{name: "timestamp malformed", edit: func(p url.Values) { p.Set("timestamp", "2025-03-01T20:00:00Z") }, node: node, errCode: "40002", subCode: "isv.invalid-timestamp", keeps: true},
		{name: "timestamp missing", edit: func(p url.Values) { p.Del("timestamp") }, node: node, errCode: "40001", subCode: "isv.missing-timestamp", keeps: true},
		{name: "version missing", edit: func(p url.Values) { p.Del("version") }, node: node, errCode: "40001", subCode: "isv.missing-version", keeps: true},
		{name: "version 2.0", edit: func(p url.Values) { p.Set("version", "2.0") }, node: node, errCode: "40002", subCode: "isv.invalid-parameter", keeps: true},
		{name: "format XML", edit: func(p url.Values) { p.Set("format", "XML") }, node: node, errCode: "40002", subCode: "isv.invalid-format", keeps: true},
		{name: "another method", edit: func(p url.Values) { p.Set("method", "alipay.user.info.share") }, node: errNode, errCode: "40002", subCode: "isv.invalid-method", keeps: true},
		{name: "method missing", edit: func(p url.Values) { p.Del("method") }, node: errNode, errCode: "40001", subCode: "isv.missing-method", keeps: true},
		{name: "PUT", method: http.MethodPut, node: errNode, errCode: "40002", subCode: "isv.invalid-parameter", keeps: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, k := newAlipayEnv(t, nil)
			code := v.apLogin(apUserID, "alice")
			if tt.code != nil {
				code = tt.code(v, k)
			}
			p := apParams(apUserID, code)
			if tt.edit != nil {
				tt.edit(p)
			}
			apSign(t, k.app, p)
			if tt.after != nil {
				tt.after(t, p, k)
			}
			var r result
			if tt.method != "" {
				req := v.request(tt.method, alipayGWPath, nil, strings.NewReader(p.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r = v.do(req)
			} else {
				r = v.apPost(p)
			}
			wantApError(t, apOpen(t, r, &k.gateway.PublicKey), tt.node, tt.errCode, tt.subCode)
			if tt.keeps {
				apOpen(t, v.apExchange(k, apUserID, code), &k.gateway.PublicKey) // not spent
			}
		})
	}
}

// The messages of the errors whose wording Alipay's samples show.
func TestAlipayErrorMessages(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	a := apOpen(t, v.apExchange(k, apUserID, "bad"), &k.gateway.PublicKey)
	if a.str("sub_msg") != "授权码code无效" || !bytes.Contains(a.raw, []byte("授权码code无效")) {
		t.Errorf("bad code: %s; want the sub_msg as UTF-8, not escaped", a.raw)
	}
	p := apSign(t, k.app, apParams(apUserID, "bad"))
	p.Set("app_id", "2021999999999999")
	if a := apOpen(t, v.apPost(p), &k.gateway.PublicKey); a.str("sub_msg") != "无效的AppID参数" {
		t.Errorf("unknown app: %s", a.raw)
	}
}

// A bad signature's answer echoes the string the gateway verified, which
// lets a developer compare it with the one signed: HTML-escaped, and in
// JSON with every "/" escaped, as Alipay prints it. The sign covers those
// escaped bytes, not a re-encoding of the decoded text.
func TestAlipayEscapedSlashes(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	p := apParams(apUserID, v.apLogin(apUserID, "alice"))
	p.Set("notify_url", "https://example.com/cb/x?a=<b>")
	apSign(t, k.app2, p) // the wrong key
	r := v.apPost(p)
	a := apOpen(t, r, &k.gateway.PublicKey)
	wantApError(t, a, "alipay_system_oauth_token_response", "40002", "isv.invalid-signature")
	want := "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：" +
		strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(apContent(p))
	if a.str("sub_msg") != want {
		t.Errorf("sub_msg %q\nwant    %q", a.str("sub_msg"), want)
	}
	if !bytes.Contains(a.raw, []byte(`notify_url=https:\/\/example.com\/cb\/x?a=&lt;b&gt;`)) ||
		bytes.Count(a.raw, []byte("/")) != bytes.Count(a.raw, []byte(`\/`)) {
		t.Errorf("slashes are not all escaped: %s", a.raw)
	}
	plain := bytes.ReplaceAll(a.raw, []byte(`\/`), []byte("/"))
	var top struct{ Sign string }
	_ = json.Unmarshal(r.body, &top)
	sig, _ := base64.StdEncoding.DecodeString(top.Sign)
	h := sha256.Sum256(plain)
	if rsa.VerifyPKCS1v15(&k.gateway.PublicKey, crypto.SHA256, h[:], sig) == nil {
		t.Error("the sign also verifies over unescaped slashes")
	}
}

// Some SDKs put every parameter in the query string with an empty body,
// or the common ones in the query and the rest in the body.
func TestAlipayParamsPlacement(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	p := apSign(t, k.app2, apParams(apOpenID, v.apLogin(apOpenID, "alice")))
	req := v.request(http.MethodPost, alipayGWPath, p, nil)
	if a := apOpen(t, v.do(req), &k.gateway.PublicKey); a.str("open_id") == "" {
		t.Errorf("POST with the query only: %s", a.raw)
	}
	p = apSign(t, k.app2, apParams(apOpenID, v.apLogin(apOpenID, "bob")))
	if a := apOpen(t, v.get(alipayGWPath, p), &k.gateway.PublicKey); a.str("open_id") != v.emu.OpenID("alipay", apOpenID, "bob") {
		t.Errorf("GET: %s", a.raw)
	}
	p = apSign(t, k.app2, apParams(apOpenID, v.apLogin(apOpenID, "carol")))
	q, body := url.Values{}, url.Values{}
	for name, vs := range p {
		if name == "grant_type" || name == "code" {
			body[name] = vs
		} else {
			q[name] = vs
		}
	}
	req = v.request(http.MethodPost, alipayGWPath, q, strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	if a := apOpen(t, v.do(req), &k.gateway.PublicKey); a.str("open_id") != v.emu.OpenID("alipay", apOpenID, "carol") {
		t.Errorf("split between query and body: %s", a.raw)
	}
}

// Without Config.Apps, any app is served in open_id mode and no signature
// is checked; the gateway signs with a key of its own, AlipayPublicKey.
func TestAlipayAnyCredentials(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	pub := v.emu.AlipayPublicKey()
	if pub == nil || pub.N.BitLen() != 2048 || !pub.Equal(v.emu.AlipayPublicKey()) {
		t.Fatal("AlipayPublicKey: want one 2048-bit key")
	}
	code, err := v.emu.Login("alipay", "2021000000000009", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	p := apParams("2021000000000009", code)
	p.Set("sign", "c2lnbmVkIGJ5IG5vYm9keQ==")
	if a := apOpen(t, v.apPost(p), pub); a.str("open_id") != v.emu.OpenID("alipay", "2021000000000009", "alice") || a.str("user_id") != "" {
		t.Errorf("%s", a.raw)
	}
	p.Del("sign")
	wantApError(t, apOpen(t, v.apPost(p), pub), "alipay_system_oauth_token_response", "40001", "isv.missing-signature")
}

func TestAlipayOpenCodes(t *testing.T) {
	v, k := newAlipayEnv(t, func(c *emulator.Config) { c.OpenCodes = true })
	if a := apOpen(t, v.apExchange(k, apBoth, "alice.1"), &k.gateway.PublicKey); a.str("user_id") != v.emu.AlipayUserID("alice") ||
		a.str("open_id") != v.emu.OpenID("alipay", apBoth, "alice") {
		t.Errorf("open code: %s", a.raw)
	}
	wantApError(t, apOpen(t, v.apExchange(k, apBoth, "alice.1"), &k.gateway.PublicKey), "error_response", "40002", "isv.code-invalid")
}

// Of concurrent exchanges of one code, exactly one gets the tokens.
func TestAlipayConcurrentExchange(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	code := v.apLogin(apUserID, "alice")
	body := apSign(t, k.app, apParams(apUserID, code)).Encode()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 6 {
		wg.Go(func() {
			resp, err := v.srv.Client().Post(v.srv.URL+alipayGWPath, "application/x-www-form-urlencoded", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, []byte(`"access_token"`)) {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d exchanges won", won)
	}
}

// apDecrypt reads a my.getPhoneNumber payload as Alipay's sample code
// does: verify the sign over the quoted ciphertext, then AES-CBC with a
// zero iv and PKCS #7.
func apDecrypt(t *testing.T, payload []byte, key []byte, pub *rsa.PublicKey) []byte {
	t.Helper()
	var p map[string]string
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	if p["sign_type"] != "RSA2" || p["encrypt_type"] != "AES" || p["charset"] != "UTF-8" || len(p) != 5 {
		t.Errorf("payload %s", payload)
	}
	if strings.HasPrefix(p["response"], "{") {
		t.Fatalf("the response is not encrypted: %s", payload)
	}
	sig, _ := base64.StdEncoding.DecodeString(p["sign"])
	h := sha256.Sum256([]byte(`"` + p["response"] + `"`))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) != nil {
		t.Fatal("the sign does not verify over the quoted response")
	}
	ct, err := base64.StdEncoding.DecodeString(p["response"])
	block, _ := aes.NewCipher(key)
	if err != nil || len(ct) == 0 || len(ct)%16 != 0 {
		t.Fatalf("response %q", p["response"])
	}
	cipher.NewCBCDecrypter(block, make([]byte, 16)).CryptBlocks(ct, ct)
	n := int(ct[len(ct)-1])
	if n < 1 || n > 16 || !bytes.Equal(ct[len(ct)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		t.Fatalf("padding of %q", ct)
	}
	return ct[:len(ct)-n]
}

func TestAlipayPhone(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	want := `{"code":"10000","msg":"Success","mobile":"` + v.emu.PhoneNumber("alice") + `"}`

	r := v.sendJSON(http.MethodPost, "/_emulator/userdata", `{"platform":"alipay","appid":"`+apUserID+`","user":"alice","kind":"phone"}`)
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Fatalf("userdata: %d %s", r.status, r.body)
	}
	if got := apDecrypt(t, r.body, apAESKey, &k.gateway.PublicKey); string(got) != want {
		t.Errorf("plaintext %s, want %s", got, want)
	}
	if !regexp.MustCompile(`^\{"response":"[^"]+","sign":"[^"]+","sign_type":"RSA2","encrypt_type":"AES","charset":"UTF-8"\}\n$`).Match(r.body) {
		t.Errorf("payload %s: want its fields in Alipay's order", r.body)
	}

	s, err := v.emu.AlipayPhone(apDefault, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := apDecrypt(t, []byte(s), apAESKey, &k.gateway.PublicKey); string(got) != want {
		t.Errorf("AlipayPhone: plaintext %s", got)
	}

	for _, tt := range []struct {
		name, body string
		error      string
	}{
		{"app without an AES key", `{"platform":"alipay","appid":"` + apOpenID + `","user":"alice","kind":"phone"}`, "invalid_request"},
		{"userinfo", `{"platform":"alipay","appid":"` + apUserID + `","user":"alice","kind":"userinfo"}`, "invalid_request"},
		{"kind missing", `{"platform":"alipay","appid":"` + apUserID + `","user":"alice"}`, "invalid_request"},
		{"unknown app", `{"platform":"alipay","appid":"2021999999999999","user":"alice","kind":"phone"}`, "unknown_app"},
		{"user missing", `{"platform":"alipay","appid":"` + apUserID + `","kind":"phone"}`, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := v.sendJSON(http.MethodPost, "/_emulator/userdata", tt.body)
			if r.status != http.StatusBadRequest || r.str(t, "error") != tt.error {
				t.Fatalf("got %d %s; want 400 %s", r.status, r.body, tt.error)
			}
		})
	}
	if _, err := v.emu.UserData("alipay", apUserID, "alice", "phone"); err == nil {
		t.Error("UserData gave Alipay phone data")
	}
	open := newEnv(t, emulator.Config{})
	if _, err := open.emu.AlipayPhone("2021000000000009", "alice"); err == nil {
		t.Error("AlipayPhone without Config.Apps: want an error, there being no AES key")
	}

	// New keeps its own copy of a key, and refuses one of the wrong size
	// when asked for a number.
	key, short := bytes.Clone(apAESKey), []byte("0123456789")
	v, k = newAlipayEnv(t, func(c *emulator.Config) {
		c.Apps = append(c.Apps, emulator.App{Family: "alipay", AppID: "2021000000000007", AESKey: key},
			emulator.App{Family: "alipay", AppID: "2021000000000008", AESKey: short})
	})
	key[0] ^= 1
	if s, err := v.emu.AlipayPhone("2021000000000007", "alice"); err != nil || string(apDecrypt(t, []byte(s), apAESKey, &k.gateway.PublicKey)) != want {
		t.Errorf("after the caller changed its slice: %v", err)
	}
	if _, err := v.emu.AlipayPhone("2021000000000008", "alice"); err == nil || !strings.Contains(err.Error(), "16") {
		t.Errorf("a 10-byte key: %v", err)
	}
}

func TestAlipayControl(t *testing.T) {
	v, _ := newAlipayEnv(t, nil)
	for _, tt := range []struct {
		name, path, body string
		error            string
	}{
		{"session_key", "/_emulator/login", `{"platform":"alipay","appid":"` + apUserID + `","user":"a","session_key":"MDEyMzQ1Njc4OWFiY2RlZg=="}`, "invalid_request"},
		{"anonymous", "/_emulator/login", `{"platform":"alipay","appid":"` + apUserID + `","user":"a","anonymous":true}`, "invalid_request"},
		{"unknown app", "/_emulator/login", `{"platform":"alipay","appid":"2021999999999999","user":"a"}`, "unknown_app"},
		{"tokens/expire", "/_emulator/tokens/expire", `{"platform":"alipay","appid":"` + apUserID + `"}`, "invalid_request"},
		{"phonecode", "/_emulator/phonecode", `{"platform":"alipay","appid":"` + apUserID + `","user":"a"}`, "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := v.sendJSON(http.MethodPost, tt.path, tt.body)
			if r.status != http.StatusBadRequest || r.str(t, "error") != tt.error {
				t.Fatalf("got %d %s; want 400 %s", r.status, r.body, tt.error)
			}
		})
	}
	v.emu.ExpireTokens("alipay", apUserID) // nothing to expire, and no WeChat token of that appid either
	if v.emu.TokenValid("alipay", apUserID, "authusrB") {
		t.Error("TokenValid accepted an Alipay token")
	}
}

// Faults on the gateway answer in its shape, signed: Errcode is the code
// (20000 for -1), Error the sub_code.
func TestAlipayFaults(t *testing.T) {
	v, k := newAlipayEnv(t, nil)
	v.emu.SetFaults(emulator.Fault{Path: alipayGWPath, Errcode: -1, Times: 1})
	code := v.apLogin(apUserID, "alice")
	wantApError(t, apOpen(t, v.apExchange(k, apUserID, code), &k.gateway.PublicKey),
		"alipay_system_oauth_token_response", "20000", "isp.unknow-error")
	apOpen(t, v.apExchange(k, apUserID, code), &k.gateway.PublicKey) // not spent

	v.emu.SetFaults(emulator.Fault{Path: alipayGWPath, Errcode: 40005, Error: "isv.app-call-limited", Status: 503, Times: 1})
	r := v.apExchange(k, apUserID, v.apLogin(apUserID, "alice"))
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", r.status)
	}
	r.status = http.StatusOK // apOpen checks the rest
	wantApError(t, apOpen(t, r, &k.gateway.PublicKey), "alipay_system_oauth_token_response", "40005", "isv.app-call-limited")
}
