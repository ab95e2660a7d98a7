package wechat

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
)

// Any answer gives either a complete login or a *platform.Error, never a
// panic, and never lets the code through into the error.
func FuzzParseCode2Session(f *testing.F) {
	for _, s := range []string{`{"openid":"o","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`, `{"errcode":"40029","errmsg":"CODE"}`,
		`{"errcode":-1}`, ``, `null`, `[]`, `{"errcode":1e400}`, `{"openid":1}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := parseCode2Session(PathCode2Session, &hostcall.Response{Status: status, Body: body}, "CODE", false)
		if err == nil {
			if login == nil || login.OpenID == "" || login.SessionKey.IsZero() {
				t.Fatalf("success without identity: %+v", login)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a platform error: %v", err)
		}
		if strings.Contains(pe.Message, "CODE") {
			t.Fatalf("code in message: %q", pe.Message)
		}
	})
}

// Any answer to a token fetch gives either a token with a positive lifetime
// or a *platform.Error, never a panic, and never lets the secret through
// into the error.
func FuzzParseAccessToken(f *testing.F) {
	for _, s := range []string{`{"access_token":"t","expires_in":7200}`, `{"access_token":"t","expires_in":"7200"}`,
		`{"errcode":40001,"errmsg":"SECRET"}`, `{"access_token":"t","expires_in":-1}`, `{"access_token":"t","expires_in":9223372036854775807}`,
		`{"access_token":"","expires_in":1}`, ``, `null`, `[]`, `{"expires_in":1e400}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, life, err := parseAccessToken(PathStableToken, &hostcall.Response{Status: status, Body: body}, "SECRET")
		if err == nil {
			if tok.IsZero() || life <= 0 || life > wire.MaxTokenLifetime {
				t.Fatalf("success with token %v for %v", tok, life)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a platform error: %v", err)
		}
		if !tok.IsZero() || life != 0 {
			t.Fatal("a token came with an error")
		}
		if strings.Contains(pe.Message, "SECRET") || strings.Contains(pe.Code, "SECRET") {
			t.Fatalf("secret in error: %q %q", pe.Code, pe.Message)
		}
	})
}

// Any answer to checksession gives a verdict or a *platform.Error, never
// both, never a panic, and never lets the token through into the error.
// "valid" needs an explicit errcode 0.
func FuzzParseCheckSession(f *testing.F) {
	for _, s := range []string{`{"errcode":0,"errmsg":"ok"}`, `{"errcode":87009,"errmsg":"invalid signature TOKEN"}`,
		`{"errcode":"40001","errmsg":"TOKEN"}`, `{"errcode":-1}`, `{}`, ``, `null`, `[]`, `{"errcode":null}`, `{"errcode":0.0}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		valid, err := parseCheckSession(&hostcall.Response{Status: status, Body: body}, "TOKEN")
		if err == nil {
			if valid && (status/100 != 2 || !hasErrcode(body)) {
				t.Fatalf("valid from %d %q", status, body)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a platform error: %v", err)
		}
		if valid {
			t.Fatal("valid with an error")
		}
		if strings.Contains(pe.Message, "TOKEN") {
			t.Fatalf("token in message: %q", pe.Message)
		}
	})
}

// hasErrcode reports whether a JSON object has an errcode key, matched as
// encoding/json matches it (escapes decoded, case ignored).
func hasErrcode(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	for k := range m {
		if strings.EqualFold(k, "errcode") {
			return true
		}
	}
	return false
}

// Any answer to resetusersessionkey gives a usable key for the right user
// or a *platform.Error, never a panic, never the old key in the error.
func FuzzParseResetSessionKey(f *testing.F) {
	for _, s := range []string{`{"errcode":0,"openid":"o1","session_key":"HyVFkGl5F5OQWJZZaNzBBg=="}`,
		`{"openid":"o2","session_key":"HyVFkGl5F5OQWJZZaNzBBg=="}`, `{"session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}`,
		`{"errcode":87009,"errmsg":"OLDKEY"}`, `{"errcode":"-1"}`, ``, `null`, `[]`, `{"session_key":1}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		key, err := parseResetSessionKey(&hostcall.Response{Status: status, Body: body}, "o1", "OLDKEY")
		if err == nil {
			k, derr := base64.StdEncoding.DecodeString(key.Reveal())
			if derr != nil || len(k) != SessionKeyLen {
				t.Fatalf("success with an unusable key from %q", body)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a platform error: %v", err)
		}
		if !key.IsZero() {
			t.Fatal("a key came with an error")
		}
		if strings.Contains(pe.Message, "OLDKEY") {
			t.Fatalf("old key in message: %q", pe.Message)
		}
		if errors.Is(err, ErrSessionKeyInvalid) != (pe.Code == "87009") {
			t.Fatalf("ErrSessionKeyInvalid with code %q", pe.Code)
		}
	})
}

// Any answer to getuserphonenumber gives a complete number for this app or
// a *platform.Error, never a panic; an answer without an errcode never
// shows its phone fields in the error, and the code never shows.
func FuzzParsePhoneNumber(f *testing.F) {
	for _, s := range []string{
		`{"errcode":0,"errmsg":"ok","phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":86,"watermark":{"timestamp":1637744274,"appid":"wxapp"}}}`,
		`{"phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"timestamp":"1","appid":"wxother"}}}`,
		`{"phone_info":{"phoneNumber":13800138000,"purePhoneNumber":"13800138000","watermark":{"appid":"wxapp"}}}`,
		`{"phone_info":{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"13800138000x","watermark":{"appid":"wxapp"}}}`,
		`{"errcode":40029,"errmsg":"invalid code CODE"}`, `{"errcode":-1}`, ``, `null`, `[]`, `{"phone_info":[]}`,
	} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		phone, err := parsePhoneNumber(&hostcall.Response{Status: status, Body: body}, "wxapp", "CODE")
		if err == nil {
			if phone == nil || phone.PhoneNumber == "" || phone.PurePhoneNumber == "" || phone.WatermarkAppID != "wxapp" {
				t.Fatalf("incomplete success from %q", body)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a platform error: %v", err)
		}
		if phone != nil {
			t.Fatal("a phone came with an error")
		}
		if strings.Contains(pe.Message, "CODE") {
			t.Fatalf("code in message: %q", pe.Message)
		}
		// Whatever the phone fields hold, they stay out of an error that is
		// not the platform's own message.
		var raw struct {
			PhoneInfo struct {
				PhoneNumber, PurePhoneNumber any
			} `json:"phone_info"`
		}
		_ = json.Unmarshal(body, &raw)
		if pe.Message != "" || pe.Code != "" {
			return
		}
		text := fmt.Sprintf("%v %+v", err, err)
		for _, v := range []any{raw.PhoneInfo.PhoneNumber, raw.PhoneInfo.PurePhoneNumber} {
			// Numbers only: "wechat" would be found in every error, and the
			// status is printed as it is.
			s := strings.TrimPrefix(fmt.Sprint(v), "+")
			if v == nil || len(s) < 6 || strings.Trim(s, "0123456789") != "" || strings.Contains(fmt.Sprint(status), s) {
				continue
			}
			if strings.Contains(text, s) {
				t.Fatalf("phone field %q in error: %s", s, text)
			}
		}
	})
}
