package httpapi_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/userdata"
)

const (
	wxUserKey  = "AAECAwQFBgcICQoLDA0ODw==" // 16 bytes
	wxOtherKey = "EBESExQVFhcYGRobHB0eHw=="
	bdUserKey  = "1df09d0a1677dd72b8325aec59576e0c" // 24 bytes
	nickName   = "Nick-7f3a9c"                      // a plaintext value the log must not carry
)

// loginWithKey logs user in through mplogin with the emulator handing out
// key as the session key, and returns the access token.
func (f *fixture) loginWithKey(app, plat, appid, user, key string) string {
	f.t.Helper()
	code, err := f.em.Login(plat, appid, user, key)
	if err != nil {
		f.t.Fatal(err)
	}
	r := f.login(app, code)
	if r.status != 200 {
		f.t.Fatalf("login: %d %s", r.status, r.raw)
	}
	return r.tokens(f.t).AccessToken
}

func (f *fixture) decrypt(access string, in map[string]string) response {
	f.t.Helper()
	b, _ := json.Marshal(in)
	return f.do("POST", "/v1/userdata/decrypt", access, string(b))
}

func userPlain(appid string, ts time.Time) string {
	return fmt.Sprintf(`{"openId":"o1","nickName":%q,"watermark":{"timestamp":%d,"appid":%q}}`, nickName, ts.Unix(), appid)
}

func encrypt(t *testing.T, key, plain string) map[string]string {
	t.Helper()
	data, iv, err := userdata.EncryptWeChat(secret.New(key), []byte(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"encrypted_data": data, "iv": iv}
}

// rawCBC encrypts pt (whole blocks) without adding padding, to make a
// payload whose padding is wrong.
func rawCBC(t *testing.T, key string, pt []byte) map[string]string {
	t.Helper()
	k, _ := base64.StdEncoding.DecodeString(key)
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{3}, 16)
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, pt)
	return map[string]string{"encrypted_data": base64.StdEncoding.EncodeToString(ct), "iv": base64.StdEncoding.EncodeToString(iv)}
}

func with(in map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(in)+len(kv)/2)
	for k, v := range in {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func signRaw(raw, key string) string {
	sum := sha1.Sum([]byte(raw + key))
	return hex.EncodeToString(sum[:])
}

func TestDecryptSuccess(t *testing.T) {
	f := newFixture(t)
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "alice", wxUserKey)
	plain := userPlain(wxAppID, time.Now())
	in := encrypt(t, wxUserKey, plain)
	r := f.decrypt(access, in)
	if r.status != 200 || r.raw != `{"data":`+plain+"}\n" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("decrypt: %d %s", r.status, r.raw)
	}
	raw := `{"nickName":"` + nickName + `"}`
	if r := f.decrypt(access, with(in, "raw_data", raw, "signature", signRaw(raw, wxUserKey))); r.status != 200 {
		t.Fatalf("decrypt with signature: %d %s", r.status, r.raw)
	}

	// Baidu: the content comes back as data.
	bdAccess := f.loginWithKey("shop-baidu", "baidu", bdAppKey, "bob", bdUserKey)
	content := `{"openid":"o2","nickname":"` + nickName + `","sex":1}`
	data, iv, err := userdata.EncryptBaidu(secret.New(bdUserKey), []byte(content), bdAppKey, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := f.decrypt(bdAccess, map[string]string{"encrypted_data": data, "iv": iv}); r.status != 200 || r.raw != `{"data":`+content+"}\n" {
		t.Fatalf("baidu decrypt: %d %s", r.status, r.raw)
	}
	f.scanDecryptLogs(t, in, plain)
}

// Every cause of failure gives the same status, headers that matter and
// body, byte for byte.
func TestDecryptFailuresAreIdentical(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	good := encrypt(t, wxUserKey, userPlain(wxAppID, now))
	goodData, _ := base64.StdEncoding.DecodeString(good["encrypted_data"])
	// Whole blocks ending in a 0x00 "pad" byte: valid JSON up to there, bad
	// padding.
	badPad := []byte(userPlain(wxAppID, now))
	badPad = append(badPad, bytes.Repeat([]byte{' '}, 16-len(badPad)%16)...)
	badPad[len(badPad)-1] = 0
	raw := `{"nickName":"x"}`

	causes := []struct {
		name string
		in   map[string]string
	}{
		{"bad base64", with(good, "encrypted_data", "!!not base64!!")},
		{"bad iv", with(good, "iv", "AQ==")},
		{"wrong key", encrypt(t, wxOtherKey, userPlain(wxAppID, now))},
		{"wrong appid", encrypt(t, wxUserKey, userPlain("wx1111111111111111", now))},
		{"truncated", with(good, "encrypted_data", base64.StdEncoding.EncodeToString(goodData[:len(goodData)-16]))},
		{"ragged", with(good, "encrypted_data", base64.StdEncoding.EncodeToString(goodData[:len(goodData)-3]))},
		{"bad padding", rawCBC(t, wxUserKey, badPad)},
		{"not json", encrypt(t, wxUserKey, "hello, not json")},
		{"stale", encrypt(t, wxUserKey, userPlain(wxAppID, now.Add(-48*time.Hour)))},
		{"bad signature", with(good, "raw_data", raw, "signature", signRaw(raw, wxOtherKey))},
		{"oversized ciphertext", with(good, "encrypted_data", strings.Repeat("A", 40<<10))},
	}
	var first response
	check := func(name string, r response) {
		t.Helper()
		expectError(t, r, 422, "decrypt_failed")
		if first.raw == "" {
			first = r
			return
		}
		if r.raw != first.raw || r.header.Get("Content-Length") != first.header.Get("Content-Length") ||
			r.header.Get("Content-Type") != first.header.Get("Content-Type") {
			t.Fatalf("%s: %q (length %s), differs from %q (length %s)", name, r.raw,
				r.header.Get("Content-Length"), first.raw, first.header.Get("Content-Length"))
		}
		for _, h := range []string{"Retry-After", "WWW-Authenticate"} {
			if r.header.Get(h) != "" {
				t.Fatalf("%s: %s %q", name, h, r.header.Get(h))
			}
		}
	}
	for i, c := range causes {
		// A session of its own each, so that the lock below plays no part.
		access := f.loginWithKey("shop-wechat", "wechat", wxAppID, fmt.Sprint("user", i), wxUserKey)
		check(c.name, f.decrypt(access, c.in))
	}
	if want := fmt.Sprint(len(first.raw)); first.header.Get("Content-Length") != want {
		t.Fatalf("Content-Length %s for a body of %s bytes", first.header.Get("Content-Length"), want)
	}

	// Baidu: a wrong app key, and a signature Baidu does not have.
	bdAccess := f.loginWithKey("shop-baidu", "baidu", bdAppKey, "bob", bdUserKey)
	data, iv, err := userdata.EncryptBaidu(secret.New(bdUserKey), []byte(`{"a":1}`), "another-app-key", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	check("baidu wrong app key", f.decrypt(bdAccess, map[string]string{"encrypted_data": data, "iv": iv}))
	data, iv, _ = userdata.EncryptBaidu(secret.New(bdUserKey), []byte(`{"a":1}`), bdAppKey, nil, nil)
	check("baidu with a signature", f.decrypt(bdAccess, map[string]string{"encrypted_data": data, "iv": iv, "raw_data": "{}", "signature": signRaw("{}", bdUserKey)}))

	// Five failures lock the session: a valid payload then fails alike.
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "mallory", wxUserKey)
	wrong := encrypt(t, wxOtherKey, userPlain(wxAppID, now))
	for i := range session.MaxDecryptFailures {
		check(fmt.Sprint("failure ", i+1), f.decrypt(access, wrong))
	}
	valid := encrypt(t, wxUserKey, userPlain(wxAppID, now))
	check("locked", f.decrypt(access, valid))
	// Another session of the same user still decrypts.
	other := f.loginWithKey("shop-wechat", "wechat", wxAppID, "mallory", wxUserKey)
	if r := f.decrypt(other, valid); r.status != 200 {
		t.Fatalf("another session: %d %s", r.status, r.raw)
	}
	f.scanDecryptLogs(t, good, userPlain(wxAppID, now))
	for _, c := range causes {
		for _, k := range []string{"encrypted_data", "iv"} {
			if v := c.in[k]; len(v) >= 8 && strings.Contains(f.logs.String(), v) {
				t.Fatalf("%s: the log carries its %s", c.name, k)
			}
		}
	}
}

func TestDecryptRequestErrors(t *testing.T) {
	f := newFixture(t)
	access := f.loginWithKey("shop-wechat", "wechat", wxAppID, "carol", wxUserKey)
	good := encrypt(t, wxUserKey, userPlain(wxAppID, time.Now()))
	body := func(in map[string]string) string { b, _ := json.Marshal(in); return string(b) }
	cases := []struct {
		name, auth, body string
		status           int
		code             string
	}{
		{"missing encrypted_data", access, body(map[string]string{"iv": good["iv"]}), 400, "invalid_request"},
		{"missing iv", access, body(map[string]string{"encrypted_data": good["encrypted_data"]}), 400, "invalid_request"},
		{"empty iv", access, body(with(good, "iv", "")), 400, "invalid_request"},
		{"null iv", access, `{"encrypted_data":"` + good["encrypted_data"] + `","iv":null}`, 400, "invalid_request"},
		{"raw_data without signature", access, body(with(good, "raw_data", "{}")), 400, "invalid_request"},
		{"signature without raw_data", access, body(with(good, "signature", signRaw("{}", wxUserKey))), 400, "invalid_request"},
		{"unknown field", access, body(with(good, "extra", "1")), 400, "invalid_request"},
		{"wrong type", access, `{"encrypted_data":1,"iv":"x"}`, 400, "invalid_request"},
		{"trailing data", access, body(good) + "{}", 400, "invalid_request"},
		{"empty body", access, "", 400, "invalid_request"},
		{"over 64 KiB", access, `{"encrypted_data":"` + strings.Repeat("A", httpapi.DecryptBodyLimit) + `","iv":"x"}`, 413, "request_too_large"},
		{"no token", "", body(good), 401, "invalid_token"},
		{"garbage token", "garbage", body(good), 401, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, f.do("POST", "/v1/userdata/decrypt", tc.auth, tc.body), tc.status, tc.code)
		})
	}
	if r := f.do("GET", "/v1/userdata/decrypt", access, ""); r.status == 200 {
		t.Fatalf("GET answered %d", r.status)
	}
	// None of that was a decrypt failure: the session still decrypts after
	// more than five of them.
	if r := f.decrypt(access, good); r.status != 200 {
		t.Fatalf("decrypt after request errors: %d %s", r.status, r.raw)
	}
	f.scanDecryptLogs(t, good, "")
}

// scanDecryptLogs fails t if the log carries the payload, its iv, the
// plaintext's values or a session key, or misses the failure events.
func (f *fixture) scanDecryptLogs(t *testing.T, in map[string]string, plain string) {
	t.Helper()
	f.scanSecrets(t)
	logs := f.logs.String()
	needles := []string{in["encrypted_data"], in["iv"], nickName, wxUserKey, wxOtherKey, bdUserKey}
	if plain != "" {
		needles = append(needles, plain)
	}
	for _, n := range needles {
		if strings.Contains(logs, n) {
			t.Fatalf("log carries %q", n)
		}
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"route":"POST /v1/userdata/decrypt"`) && strings.Contains(l, `"cause"`) &&
			strings.Contains(l, "decrypt_failed") {
			t.Fatalf("a decrypt failure logged a cause: %s", l)
		}
	}
}
