package emulator_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// sig is the checksession / resetusersessionkey signature
// (docs/platforms/wechat.md, "Session-key signature").
func sig(sessionKey string) string {
	return userdata.SessionSignature(secret.New(sessionKey), "")
}

// wxSession logs a user of a testApps WeChat app in and returns the user's
// openid and session key.
func (v *env) wxSession(appid, user string) (openid, key string) {
	v.t.Helper()
	secrets := map[string]string{"wxapp1": "wxsecret1", "wxapp2": "wxsecret2"}
	openid, _, key = wantWeChatSession(v.t, v.get(wxPath, wxQuery(appid, secrets[appid], v.login("wechat", appid, user))))
	return openid, key
}

// wxToken fetches a classic access token for a testApps WeChat app.
func (v *env) wxToken(appid string) string {
	v.t.Helper()
	tok, _ := wantWeChatToken(v.t, v.classic(appid, map[string]string{"wxapp1": "wxsecret1", "wxapp2": "wxsecret2"}[appid]))
	return tok
}

func signedQuery(token, openid, signature string) url.Values {
	return url.Values{"access_token": {token}, "openid": {openid}, "signature": {signature}, "sig_method": {"hmac_sha256"}}
}

// wantWeChatOK checks a WeChat success with errcode 0 and returns the body.
func wantWeChatOK(t *testing.T, r result) map[string]any {
	t.Helper()
	if r.status != http.StatusOK || r.ctype != "text/plain" {
		t.Errorf("status %d, Content-Type %q; want 200 text/plain", r.status, r.ctype)
	}
	if r.num(t, "errcode") != 0 || r.str(t, "errmsg") != "ok" {
		t.Fatalf("want errcode 0 and errmsg ok, got %s", r.body)
	}
	return r.json(t)
}

// The signature rule against the empty-message vector of
// docs/platforms/wechat.md, "Test vectors".
func TestSessionSignatureVector(t *testing.T) {
	if got := sig("o0q0otL8aEzpcZL/FT9WsQ=="); got != "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128" {
		t.Fatalf("signature %s", got)
	}
	// The emulator accepts exactly that signature for a user holding that key.
	v := newEnv(t, emulator.Config{Apps: testApps()})
	code, err := v.emu.Login("wechat", "wxapp1", "alice", "o0q0otL8aEzpcZL/FT9WsQ==")
	if err != nil {
		t.Fatal(err)
	}
	openid, _, _ := wantWeChatSession(t, v.wxExchange(code))
	wantWeChatOK(t, v.get(wxCheckPath, signedQuery(v.wxToken("wxapp1"), openid,
		"46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128")))
}

// signedCase is one row of the tables shared by checksession and
// resetusersessionkey.
type signedCase struct {
	name    string
	setup   func(v *env, q url.Values) // changes to the request; the user alice of wxapp1 is logged in
	method  string
	errcode int64 // 0: success
}

func signedCases() []signedCase {
	return []signedCase{
		{name: "success"},
		{name: "success with a stable token", setup: func(v *env, q url.Values) {
			tok, _ := wantWeChatToken(v.t, v.stable("wxapp1", "wxsecret1", false))
			q.Set("access_token", tok)
		}},
		{name: "previous token in its overlap", setup: func(v *env, q url.Values) { v.wxToken("wxapp1") }},
		{name: "wrong signature", setup: func(v *env, q url.Values) { q.Set("signature", sig("tiihtNczf5v6AKRyjwEUhQ==")) }, errcode: 87009},
		{name: "signature keyed with the decoded key", setup: func(v *env, q url.Values) {
			key, _ := v.emu.SessionKey("wechat", "wxapp1", "alice")
			raw, _ := base64.StdEncoding.DecodeString(key)
			m := hmac.New(sha256.New, raw)
			q.Set("signature", hex.EncodeToString(m.Sum(nil)))
		}, errcode: 87009},
		{name: "signature in upper case", setup: func(v *env, q url.Values) { q.Set("signature", strings.ToUpper(q.Get("signature"))) }, errcode: 87009},
		{name: "signature with the old key after a new login", setup: func(v *env, q url.Values) { v.wxSession("wxapp1", "alice") }, errcode: 87009},
		{name: "signature missing", setup: func(v *env, q url.Values) { q.Del("signature") }, errcode: 87009},
		{name: "sig_method missing", setup: func(v *env, q url.Values) { q.Del("sig_method") }, errcode: 87009},
		{name: "sig_method md5", setup: func(v *env, q url.Values) { q.Set("sig_method", "md5") }, errcode: 87009},
		{name: "access_token missing", setup: func(v *env, q url.Values) { q.Del("access_token") }, errcode: 41001},
		{name: "unknown token", setup: func(v *env, q url.Values) { q.Set("access_token", "never-issued") }, errcode: 40001},
		{name: "token expired", setup: func(v *env, q url.Values) { v.clock.Advance(7200 * time.Second) }, errcode: 42001},
		{name: "token replaced, overlap over", setup: func(v *env, q url.Values) {
			v.wxToken("wxapp1")
			v.clock.Advance(5 * time.Minute)
		}, errcode: 40001},
		{name: "token expired by ExpireTokens", setup: func(v *env, q url.Values) { v.emu.ExpireTokens("wechat", "wxapp1") }, errcode: 40001},
		{name: "Baidu token", setup: func(v *env, q url.Values) {
			q.Set("access_token", v.postForm(bdTokenPath, bdTokenForm("bdkey1", "bdsecret1")).str(v.t, "access_token"))
		}, errcode: 40001},
		{name: "token of another app", setup: func(v *env, q url.Values) { q.Set("access_token", v.wxToken("wxapp2")) }, errcode: 40003},
		{name: "openid of another app's user", setup: func(v *env, q url.Values) {
			openid, key := v.wxSession("wxapp2", "alice")
			q.Set("openid", openid)
			q.Set("signature", sig(key))
		}, errcode: 40003},
		{name: "user who never logged in", setup: func(v *env, q url.Values) {
			q.Set("openid", v.emu.OpenID("wechat", "wxapp1", "bob"))
		}, errcode: 40003},
		{name: "unknown openid", setup: func(v *env, q url.Values) { q.Set("openid", "oNoSuchUserXXXXXXXXXXXXXXXXX") }, errcode: 40003},
		{name: "openid missing", setup: func(v *env, q url.Values) { q.Del("openid") }, errcode: 41009},
		{name: "POST", method: http.MethodPost, errcode: 43001},
	}
}

func TestWeChatCheckSession(t *testing.T) {
	for _, tt := range signedCases() {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			openid, key := v.wxSession("wxapp1", "alice")
			q := signedQuery(v.wxToken("wxapp1"), openid, sig(key))
			if tt.setup != nil {
				tt.setup(v, q)
			}
			method := http.MethodGet
			if tt.method != "" {
				method = tt.method
			}
			r := v.do(v.request(method, wxCheckPath, q, nil))
			if tt.errcode != 0 {
				wantWeChatError(t, r, tt.errcode)
				return
			}
			if m := wantWeChatOK(t, r); len(m) != 2 {
				t.Errorf("checksession answers errcode and errmsg only, got %s", r.body)
			}
		})
	}
}

func TestWeChatResetSessionKey(t *testing.T) {
	for _, tt := range signedCases() {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			openid, key := v.wxSession("wxapp1", "alice")
			q := signedQuery(v.wxToken("wxapp1"), openid, sig(key))
			if tt.setup != nil {
				tt.setup(v, q)
			}
			before, _ := v.emu.SessionKey("wechat", "wxapp1", "alice")
			method := http.MethodGet
			if tt.method != "" {
				method = tt.method
			}
			r := v.do(v.request(method, wxResetPath, q, nil))
			after, _ := v.emu.SessionKey("wechat", "wxapp1", "alice")
			if tt.errcode != 0 {
				wantWeChatError(t, r, tt.errcode)
				if after != before {
					t.Error("a refused reset changed the session key")
				}
				return
			}
			m := wantWeChatOK(t, r)
			fresh := r.str(t, "session_key")
			if len(m) != 4 || r.str(t, "openid") != openid {
				t.Errorf("want errcode, errmsg, openid %s and session_key; got %s", openid, r.body)
			}
			wantKey(t, fresh, 16)
			if fresh == before || after != fresh {
				t.Fatalf("session key before %q, answered %q, SessionKey now %q: want a new current key", before, fresh, after)
			}
			// The old key is invalid at once, the new one works.
			q.Set("access_token", v.wxToken("wxapp1"))
			wantWeChatError(t, v.get(wxCheckPath, q), 87009)
			q.Set("signature", sig(fresh))
			wantWeChatOK(t, v.get(wxCheckPath, q))
		})
	}
}

// Of concurrent resets signed with the same key, exactly one wins: the
// others were signed with a key that is no longer current.
func TestWeChatResetConcurrent(t *testing.T) {
	v := newEnv(t, emulator.Config{})
	code := v.login("wechat", "wxapp1", "alice")
	openid, _, key := wantWeChatSession(t, v.get(wxPath, wxQuery("wxapp1", "s", code)))
	tok, _ := wantWeChatToken(t, v.classic("wxapp1", "s"))
	q := signedQuery(tok, openid, sig(key))
	const n = 16
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = v.get(wxResetPath, q) })
	}
	wg.Wait()
	won := 0
	for _, r := range results {
		switch r.num(t, "errcode") {
		case 0:
			won++
			if cur, _ := v.emu.SessionKey("wechat", "wxapp1", "alice"); cur != r.str(t, "session_key") {
				t.Errorf("the winner's key %q is not the current one %q", r.str(t, "session_key"), cur)
			}
		case 87009:
		default:
			t.Errorf("unexpected answer %s", r.body)
		}
	}
	if won != 1 {
		t.Fatalf("%d resets succeeded, want 1", won)
	}
}

func TestWeChatPhoneNumber(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(v *env, code string) (token, body string) // nil: the code, wxapp1's token
		method  string
		errcode int64 // 0: success
	}{
		{name: "success"},
		{name: "just before expiry", setup: func(v *env, code string) (string, string) {
			v.clock.Advance(5*time.Minute - time.Second)
			return v.wxToken("wxapp1"), `{"code":"` + code + `"}`
		}},
		// WeChat checks an openid sent with the code against the user the
		// code was issued to; without one it checks nothing.
		{name: "with the user's openid", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"` + code + `","openid":"` + v.emu.OpenID("wechat", "wxapp1", "alice") + `"}`
		}},
		{name: "with an empty openid", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"` + code + `","openid":""}`
		}},
		{name: "with another user's openid", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"` + code + `","openid":"` + v.emu.OpenID("wechat", "wxapp1", "bob") + `"}`
		}, errcode: 40003},
		{name: "with the user's openid in another app", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"` + code + `","openid":"` + v.emu.OpenID("wechat", "wxapp2", "alice") + `"}`
		}, errcode: 40003},
		{name: "with an unknown openid", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"` + code + `","openid":"oWhatever"}`
		}, errcode: 40003},
		{name: "used code with another user's openid", setup: func(v *env, code string) (string, string) {
			tok := v.wxToken("wxapp1")
			wantWeChatOK(v.t, v.sendJSON("POST", wxPhonePath+"?access_token="+url.QueryEscape(tok), `{"code":"`+code+`"}`))
			return tok, `{"code":"` + code + `","openid":"` + v.emu.OpenID("wechat", "wxapp1", "bob") + `"}`
		}, errcode: 40029},
		{name: "code used", setup: func(v *env, code string) (string, string) {
			tok := v.wxToken("wxapp1")
			wantWeChatOK(v.t, v.sendJSON("POST", wxPhonePath+"?access_token="+url.QueryEscape(tok), `{"code":"`+code+`"}`))
			return tok, `{"code":"` + code + `"}`
		}, errcode: 40029},
		{name: "code expired", setup: func(v *env, code string) (string, string) {
			v.clock.Advance(5 * time.Minute)
			return v.wxToken("wxapp1"), `{"code":"` + code + `"}`
		}, errcode: 40029},
		{name: "code of another app", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp2"), `{"code":"` + code + `"}`
		}, errcode: 40029},
		{name: "unknown code", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}`
		}, errcode: 40029},
		{name: "a login code", setup: func(v *env, code string) (string, string) {
			return v.wxToken("wxapp1"), `{"code":"` + v.login("wechat", "wxapp1", "alice") + `"}`
		}, errcode: 40029},
		{name: "code missing", setup: func(v *env, code string) (string, string) { return v.wxToken("wxapp1"), `{}` }, errcode: 41008},
		{name: "body not JSON", setup: func(v *env, code string) (string, string) { return v.wxToken("wxapp1"), `code=` + code }, errcode: 47001},
		{name: "access_token missing", setup: func(v *env, code string) (string, string) { return "", `{"code":"` + code + `"}` }, errcode: 41001},
		{name: "unknown token", setup: func(v *env, code string) (string, string) { return "nope", `{"code":"` + code + `"}` }, errcode: 40001},
		{name: "token expired", setup: func(v *env, code string) (string, string) {
			tok := v.wxToken("wxapp1")
			v.clock.Advance(7200 * time.Second)
			return tok, `{"code":"` + v.phoneCode("wxapp1", "alice") + `"}`
		}, errcode: 42001},
		{name: "GET", method: http.MethodGet, errcode: 43002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			code := v.phoneCode("wxapp1", "alice")
			var tok, body string
			if tt.setup != nil {
				tok, body = tt.setup(v, code)
			} else {
				tok, body = v.wxToken("wxapp1"), `{"code":"`+code+`"}`
			}
			method := http.MethodPost
			if tt.method != "" {
				method = tt.method
			}
			path := wxPhonePath
			if tok != "" {
				path += "?access_token=" + url.QueryEscape(tok)
			}
			r := v.sendJSON(method, path, body)
			if tt.errcode != 0 {
				wantWeChatError(t, r, tt.errcode)
				if strings.Contains(string(r.body), code) {
					t.Errorf("the answer echoes the code: %s", r.body)
				}
				return
			}
			// Decoded as the published Go clients declare it: countryCode
			// a string, as WeChat's field table says and real answers
			// carry. A number would fail to decode here, as it does there.
			var got struct {
				Errcode   int    `json:"errcode"`
				Errmsg    string `json:"errmsg"`
				PhoneInfo struct {
					PhoneNumber     string `json:"phoneNumber"`
					PurePhoneNumber string `json:"purePhoneNumber"`
					CountryCode     string `json:"countryCode"`
					Watermark       struct {
						Timestamp int64  `json:"timestamp"`
						AppID     string `json:"appid"`
					} `json:"watermark"`
				} `json:"phone_info"`
			}
			wantWeChatOK(t, r)
			decode(t, r.body, &got)
			pi := got.PhoneInfo
			want := v.emu.PhoneNumber("alice")
			if pi.PhoneNumber != want || pi.PurePhoneNumber != want || pi.CountryCode != "86" {
				t.Errorf("phone_info %+v, want %s and the string \"86\"", pi, want)
			}
			if pi.Watermark.AppID != "wxapp1" || pi.Watermark.Timestamp != v.clock.Now().Unix() {
				t.Errorf("watermark %+v, want wxapp1 at %d", pi.Watermark, v.clock.Now().Unix())
			}
		})
	}
}

// A phone code refused for another user's openid is not spent: the user it
// was issued to can still trade it.
func TestPhoneCodeOtherOpenIDNotSpent(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	code := v.phoneCode("wxapp1", "alice")
	path := wxPhonePath + "?access_token=" + url.QueryEscape(v.wxToken("wxapp1"))
	bob, alice := v.emu.OpenID("wechat", "wxapp1", "bob"), v.emu.OpenID("wechat", "wxapp1", "alice")
	wantWeChatError(t, v.sendJSON("POST", path, `{"code":"`+code+`","openid":"`+bob+`"}`), 40003)
	r := v.sendJSON("POST", path, `{"code":"`+code+`","openid":"`+alice+`"}`)
	wantWeChatOK(t, r)
	if !strings.Contains(string(r.body), `"purePhoneNumber":"`+v.emu.PhoneNumber("alice")+`"`) {
		t.Errorf("got %s, want alice's number", r.body)
	}
	wantWeChatError(t, v.sendJSON("POST", path, `{"code":"`+code+`","openid":"`+alice+`"}`), 40029)
}

// A phone code is not a login code.
func TestPhoneCodeNotALoginCode(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	wantWeChatError(t, v.wxExchange(v.phoneCode("wxapp1", "alice")), 40029)
}

func (v *env) phoneCode(appid, user string) string {
	v.t.Helper()
	code, err := v.emu.PhoneCode(appid, user)
	if err != nil {
		v.t.Fatalf("PhoneCode(%s, %s): %v", appid, user, err)
	}
	return code
}

func TestControlPhoneCode(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	for _, body := range []string{`{"appid":"wxapp1","user":"bob"}`, `{"platform":"wechat","appid":"wxapp1","user":"bob"}`} {
		r := v.sendJSON("POST", "/_emulator/phonecode", body)
		if r.status != http.StatusOK || r.ctype != "application/json" {
			t.Fatalf("%s: %d %q %s", body, r.status, r.ctype, r.body)
		}
		code := r.str(t, "code")
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(code) {
			t.Errorf("code %q: want 64 hex digits", code)
		}
		r = v.sendJSON("POST", wxPhonePath+"?access_token="+url.QueryEscape(v.wxToken("wxapp1")), `{"code":"`+code+`"}`)
		wantWeChatOK(t, r)
		if !strings.Contains(string(r.body), `"purePhoneNumber":"`+v.emu.PhoneNumber("bob")+`"`) {
			t.Errorf("got %s, want bob's number", r.body)
		}
	}
	if _, err := v.emu.PhoneCode("wxnope", "bob"); err == nil {
		t.Error("PhoneCode for an unconfigured app succeeded")
	}
}

func TestPhoneNumber(t *testing.T) {
	emu := emulator.New(emulator.Config{})
	re := regexp.MustCompile(`^1[3-9][0-9]{9}$`)
	seen := map[string]bool{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "", "a very long user name with spaces"} {
		n := emu.PhoneNumber(u)
		if !re.MatchString(n) {
			t.Errorf("PhoneNumber(%q) = %q, want an 11-digit mainland number", u, n)
		}
		if n != emulator.New(emulator.Config{}).PhoneNumber(u) {
			t.Errorf("PhoneNumber(%q) differs between emulators", u)
		}
		seen[n] = true
	}
	if len(seen) != 6 {
		t.Errorf("numbers collide: %v", seen)
	}
	// Pinned, so that a change of the rule is deliberate.
	if got := emu.PhoneNumber("alice"); got != pinnedAlicePhone {
		t.Errorf("PhoneNumber(alice) = %s, want %s", got, pinnedAlicePhone)
	}
}

const pinnedAlicePhone = "16863340097"

// The business APIs and the control API log without keys, codes or
// signatures.
func TestBusinessLogsNoSecrets(t *testing.T) {
	var buf testutil.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := newEnv(t, emulator.Config{Apps: testApps(), Logger: logger})
	openid, k1 := v.wxSession("wxapp1", "alice")
	tok := v.wxToken("wxapp1")
	r := v.get(wxResetPath, signedQuery(tok, openid, sig(k1)))
	wantWeChatOK(t, r)
	k2 := r.str(t, "session_key")
	d := viaControl(v, "wechat", "wxapp1", "alice", "userinfo")
	code := v.phoneCode("wxapp1", "alice")
	wantWeChatOK(t, v.sendJSON("POST", wxPhonePath+"?access_token="+url.QueryEscape(tok), `{"code":"`+code+`"}`))
	out := buf.String()
	if !strings.Contains(out, "session key reset") {
		t.Errorf("log lacks the reset:\n%s", out)
	}
	for _, s := range []string{k1, k2, sig(k1), tok, code, d.EncryptedData, d.Signature} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
}
