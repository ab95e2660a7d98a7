package emulator_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// dyFetch posts to /api/apps/v2/token.
func (v *env) dyFetch(appid, secret string) result {
	v.t.Helper()
	return v.sendJSON(http.MethodPost, dyTokenPath,
		fmt.Sprintf(`{"appid":%q,"secret":%q,"grant_type":"client_credential"}`, appid, secret))
}

// wantDouyinToken checks a token answer and returns the token and its
// expires_in.
func wantDouyinToken(t *testing.T, r result) (string, int64) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" || r.num(t, "err_no") != 0 || r.str(t, "err_tips") != "success" {
		t.Fatalf("want a token, got %d %s", r.status, r.body)
	}
	var body struct {
		Data struct {
			AccessToken string `json:"access_token"`
			ExpiresIn   int64  `json:"expires_in"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Data.AccessToken == "" || !strings.HasPrefix(body.Data.AccessToken, "0801121") {
		t.Fatalf("no token in %s", r.body)
	}
	return body.Data.AccessToken, body.Data.ExpiresIn
}

// wantDouyinTokenError checks a token error: data is there, with an empty
// token.
func wantDouyinTokenError(t *testing.T, r result, errNo int64) {
	t.Helper()
	wantDouyinError(t, r, errNo, true)
	if d, _ := r.json(t)["data"].(map[string]any); d == nil || d["access_token"] != "" || fmt.Sprint(d["expires_in"]) != "0" {
		t.Fatalf("data in %s", r.body)
	}
}

// Each fetch issues a new token and cuts the previous one to 5 minutes of
// remaining life; the one before it stops at once.
func TestDouyinTokenCut(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	t1, exp := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	if exp != 7200 || !v.emu.TokenValid("douyin", "ttapp1", t1) || v.emu.TokenValid("wechat", "ttapp1", t1) {
		t.Fatalf("first token: expires_in %d", exp)
	}
	v.clock.Advance(time.Hour)
	t2, exp := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	if t2 == t1 || exp != 7200 {
		t.Fatalf("second fetch: same token or expires_in %d", exp)
	}
	v.clock.Advance(5*time.Minute - time.Second)
	if !v.emu.TokenValid("douyin", "ttapp1", t1) || !v.emu.TokenValid("douyin", "ttapp1", t2) {
		t.Fatal("the previous token must live 5 minutes after the new fetch")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("douyin", "ttapp1", t1) || !v.emu.TokenValid("douyin", "ttapp1", t2) {
		t.Fatal("the previous token outlived its 5 minutes")
	}
	// A token with less than 5 minutes left keeps its own expiry.
	v.clock.Advance(7200*time.Second - 5*time.Minute - 2*time.Minute)
	t3, _ := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	v.clock.Advance(2*time.Minute - time.Second)
	if !v.emu.TokenValid("douyin", "ttapp1", t2) {
		t.Fatal("t2 expired early")
	}
	v.clock.Advance(time.Second)
	if v.emu.TokenValid("douyin", "ttapp1", t2) || !v.emu.TokenValid("douyin", "ttapp1", t3) {
		t.Fatal("t2 outlived its own expiry")
	}
	// Fetches in quick succession: only the newest two work.
	t4, _ := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	t5, _ := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	if v.emu.TokenValid("douyin", "ttapp1", t3) || !v.emu.TokenValid("douyin", "ttapp1", t4) || !v.emu.TokenValid("douyin", "ttapp1", t5) {
		t.Fatal("at most the newest two tokens are valid")
	}
	// Apps have their own series; ExpireTokens ends an app's at once.
	o1, _ := wantDouyinToken(t, v.dyFetch("ttapp2", "dysecret2"))
	v.emu.ExpireTokens("douyin", "ttapp1")
	if v.emu.TokenValid("douyin", "ttapp1", t5) || !v.emu.TokenValid("douyin", "ttapp2", o1) {
		t.Fatal("ExpireTokens")
	}
}

func TestDouyinTokenErrors(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	for name, tc := range map[string]struct {
		method, body string
		errNo        int64
	}{
		"unknown appid":   {"POST", `{"appid":"ttnope","secret":"dysecret1","grant_type":"client_credential"}`, 40015},
		"wrong secret":    {"POST", `{"appid":"ttapp1","secret":"wrong","grant_type":"client_credential"}`, 40017},
		"wrong grant":     {"POST", `{"appid":"ttapp1","secret":"dysecret1","grant_type":"authorization_code"}`, 40020},
		"no grant":        {"POST", `{"appid":"ttapp1","secret":"dysecret1"}`, 40020},
		"no secret":       {"POST", `{"appid":"ttapp1","grant_type":"client_credential"}`, 40014},
		"not JSON":        {"POST", `grant_type=client_credential`, 40014},
		"GET":             {"GET", ``, 40014},
		"WeChat app's id": {"POST", `{"appid":"wxapp1","secret":"wxsecret1","grant_type":"client_credential"}`, 40015},
	} {
		t.Run(name, func(t *testing.T) {
			wantDouyinTokenError(t, v.sendJSON(tc.method, dyTokenPath, tc.body), tc.errNo)
		})
	}
}

// dyPhone posts a phone code to get_phonenumber_info with token.
func (v *env) dyPhone(token, code string) result {
	v.t.Helper()
	req := v.request(http.MethodPost, dyPhonePath, nil, strings.NewReader(fmt.Sprintf(`{"code":%q}`, code)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("access-token", token)
	}
	return v.do(req)
}

// wantDouyinOpenError checks an error of the open platform: err_no,
// err_msg, log_id and data "".
func wantDouyinOpenError(t *testing.T, r result, errNo int64) {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "application/json" {
		t.Errorf("status %d, Content-Type %q", r.status, r.ctype)
	}
	m := r.json(t)
	if r.num(t, "err_no") != errNo || r.str(t, "err_msg") == "" || !isLogID(r.str(t, "log_id")) || m["data"] != "" || len(m) != 4 {
		t.Fatalf("want err_no %d, got %s", errNo, r.body)
	}
}

// dyDecrypt opens a get_phonenumber_info answer with key, block by block,
// PKCS #1 v1.5 (crypto.Decrypter with no options).
func dyDecrypt(t *testing.T, r result, key *rsa.PrivateKey) map[string]any {
	t.Helper()
	m := r.json(t)
	if r.status != 200 || r.num(t, "err_no") != 0 || m["err_msg"] != "" || !isLogID(r.str(t, "log_id")) || len(m) != 4 {
		t.Fatalf("want a success, got %d %s", r.status, r.body)
	}
	ct, err := base64.StdEncoding.DecodeString(r.str(t, "data"))
	if err != nil || len(ct)%key.Size() != 0 {
		t.Fatalf("data %q", r.str(t, "data"))
	}
	var plain []byte
	for block := range slices.Chunk(ct, key.Size()) {
		p, err := key.Decrypt(nil, block, nil)
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, p...)
	}
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(string(plain)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("plaintext %q: %v", plain, err)
	}
	return out
}

func TestDouyinPhoneNumber(t *testing.T) {
	apps, k1, k2 := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	tok1, _ := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	tok2, _ := wantDouyinToken(t, v.dyFetch("ttapp2", "dysecret2"))

	for _, app := range []struct {
		appid, tok string
		key        *rsa.PrivateKey
		blocks     int
	}{{"ttapp1", tok1, k1, 1}, {"ttapp2", tok2, k2, 2}} {
		code, err := v.emu.DouyinPhoneCode(app.appid, "alice")
		if err != nil {
			t.Fatal(err)
		}
		r := v.dyPhone(app.tok, code)
		if ct, _ := base64.StdEncoding.DecodeString(r.str(t, "data")); len(ct) != app.blocks*app.key.Size() {
			t.Fatalf("%s: %d bytes of ciphertext, want %d blocks", app.appid, len(ct), app.blocks)
		}
		p := dyDecrypt(t, r, app.key)
		wm, _ := p["watermark"].(map[string]any)
		if p["phoneNumber"] != v.emu.PhoneNumber("alice") || p["purePhoneNumber"] != v.emu.PhoneNumber("alice") || p["countryCode"] != "86" ||
			wm["appid"] != app.appid || fmt.Sprint(wm["timestamp"]) != fmt.Sprint(v.clock.Now().Unix()) {
			t.Fatalf("%s: plaintext %v", app.appid, p)
		}
		// Single use.
		wantDouyinOpenError(t, v.dyPhone(app.tok, code), 28005187)
	}

	code, _ := v.emu.DouyinPhoneCode("ttapp1", "bob")
	wxPhone, _ := v.emu.PhoneCode("wxapp1", "bob")
	login, _ := v.dyLogin("ttapp1", "bob", false)
	for name, tc := range map[string]struct {
		tok, code string
		errNo     int64
	}{
		"no token":            {"", code, 28001003},
		"unknown token":       {"nope", code, 28001003},
		"another app's token": {tok2, code, 28005187},
		"WeChat phone code":   {tok1, wxPhone, 28005187},
		"login code":          {tok1, login, 28005187},
		"unknown code":        {tok1, "never-minted", 28005187},
		"no code":             {tok1, "", 28001007},
	} {
		t.Run(name, func(t *testing.T) { wantDouyinOpenError(t, v.dyPhone(tc.tok, tc.code), tc.errNo) })
	}
	// None of it spent bob's code; a WeChat path does not take it either.
	wxTok := v.wxToken("wxapp1")
	wantWeChatError(t, v.sendJSON(http.MethodPost, wxPhonePath+"?access_token="+wxTok, fmt.Sprintf(`{"code":%q}`, code)), 40029)
	dyDecrypt(t, v.dyPhone(tok1, code), k1)

	// Codes live 5 minutes; tokens 2 hours.
	code, _ = v.emu.DouyinPhoneCode("ttapp1", "bob")
	v.clock.Advance(5 * time.Minute)
	wantDouyinOpenError(t, v.dyPhone(tok1, code), 28005187)
	code, _ = v.emu.DouyinPhoneCode("ttapp1", "bob")
	v.clock.Advance(7200*time.Second - 5*time.Minute)
	wantDouyinOpenError(t, v.dyPhone(tok1, code), 28001008)
	r := v.do(v.request(http.MethodGet, dyPhonePath, nil, nil))
	wantDouyinOpenError(t, r, 28001007)
}

// Without the app's public key, get_phonenumber_info refuses, and the code
// stays unspent.
func TestDouyinPhoneWithoutKey(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	tok, _ := wantDouyinToken(t, v.dyFetch("ttother", "dysecret3"))
	code, _ := v.emu.DouyinPhoneCode("ttother", "alice")
	r := v.dyPhone(tok, code)
	wantDouyinOpenError(t, r, 28001007)
	if !strings.Contains(r.str(t, "err_msg"), "public key") {
		t.Errorf("err_msg %q", r.str(t, "err_msg"))
	}
}

func TestDouyinControlPhoneCode(t *testing.T) {
	apps, k1, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	r := v.sendJSON(http.MethodPost, "/_emulator/phonecode", `{"platform":"douyin","appid":"ttapp1","user":"alice"}`)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	tok, _ := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	dyDecrypt(t, v.dyPhone(tok, r.str(t, "code")), k1)
	for _, bad := range []string{
		`{"platform":"douyin","appid":"ttnope","user":"alice"}`,
		`{"platform":"baidu","appid":"bdkey1","user":"alice"}`,
		`{"platform":"douyin","appid":"ttapp1"}`,
	} {
		if r := v.sendJSON(http.MethodPost, "/_emulator/phonecode", bad); r.status != 400 {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if _, err := v.emu.DouyinPhoneCode("ttnope", "alice"); err == nil {
		t.Error("a phone code for an unknown app")
	}
}

// User data: AES-128-CBC under the user's session key, the phone with a
// watermark, the user info without one, rawData signed as WeChat's.
func TestDouyinUserData(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	if _, err := v.emu.UserData("douyin", "ttapp1", "alice", emulator.KindUserInfo); !errors.Is(err, emulator.ErrNoSession) {
		t.Fatalf("before login: %v", err)
	}
	code, _ := v.dyLogin("ttapp1", "alice", false)
	s := wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))

	r := v.sendJSON(http.MethodPost, "/_emulator/userdata", `{"platform":"douyin","appid":"ttapp1","user":"alice","kind":"phone"}`)
	var d emulator.UserData
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	plain, err := userdata.DecryptWeChat(secret.New(s.SessionKey), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "ttapp1"})
	if err != nil || !strings.Contains(string(plain), `"purePhoneNumber":"`+v.emu.PhoneNumber("alice")+`"`) || d.RawData != "" {
		t.Fatalf("phone %s: %v", plain, err)
	}

	d, err = v.emu.UserData("douyin", "ttapp1", "alice", emulator.KindUserInfo)
	if err != nil {
		t.Fatal(err)
	}
	info := aesOpen(t, s.SessionKey, d)
	var u map[string]any
	if err := json.Unmarshal(info, &u); err != nil {
		t.Fatal(err)
	}
	if _, ok := u["watermark"]; ok || u["openId"] != s.OpenID || u["unionId"] != s.UnionID || u["nickName"] != "alice" {
		t.Fatalf("user info %s", info)
	}
	h := sha1.Sum([]byte(d.RawData + s.SessionKey))
	if d.Signature != hex.EncodeToString(h[:]) || !strings.Contains(string(info), strings.Trim(d.RawData, "{}")) {
		t.Fatalf("raw_data %s, signature %s", d.RawData, d.Signature)
	}
	// A new login's key replaces the old one.
	code, _ = v.dyLogin("ttapp1", "alice", false)
	s2 := wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))
	d, _ = v.emu.UserData("douyin", "ttapp1", "alice", emulator.KindPhone)
	if _, err := userdata.DecryptWeChat(secret.New(s2.SessionKey), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "ttapp1"}); err != nil {
		t.Fatal("user data is not under the current key")
	}
}

// aesOpen decrypts user data with no check of its content.
func aesOpen(t *testing.T, sessionKey string, d emulator.UserData) []byte {
	t.Helper()
	key, _ := base64.StdEncoding.DecodeString(sessionKey)
	iv, _ := base64.StdEncoding.DecodeString(d.IV)
	ct, _ := base64.StdEncoding.DecodeString(d.EncryptedData)
	block, err := aes.NewCipher(key)
	if err != nil || len(ct)%16 != 0 || len(ct) == 0 {
		t.Fatalf("key or ciphertext: %v", err)
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(ct, ct)
	return ct[:len(ct)-int(ct[len(ct)-1])]
}

// Faults answer in each Douyin path's own envelope and spend no code.
func TestDouyinFaults(t *testing.T) {
	apps, _, _ := dyApps(t)
	v := newEnv(t, emulator.Config{Apps: apps})
	v.emu.SetFaults(
		emulator.Fault{Path: dyPath, Errcode: 40018, Times: 1},
		emulator.Fault{Path: dyTokenPath, Times: 1, Error: "busy"},
		emulator.Fault{Path: dyPhonePath, Errcode: 28001008, Times: 1},
	)
	code, _ := v.dyLogin("ttapp1", "alice", false)
	wantDouyinError(t, v.dyExchange("ttapp1", code, ""), 40018, false)
	wantDouyinSession(t, v.dyExchange("ttapp1", code, ""))

	r := v.dyFetch("ttapp1", "dysecret1")
	wantDouyinTokenError(t, r, -1)
	if r.str(t, "err_tips") != "busy" {
		t.Errorf("err_tips %q", r.str(t, "err_tips"))
	}
	tok, _ := wantDouyinToken(t, v.dyFetch("ttapp1", "dysecret1"))
	wantDouyinOpenError(t, v.dyPhone(tok, "x"), 28001008)
}
