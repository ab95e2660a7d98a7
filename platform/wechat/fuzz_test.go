package wechat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/wechat"
)

// Any answer gives either a complete login or a *platform.Error, never a
// panic, and never lets the code through into the error.
func FuzzParseCode2Session(f *testing.F) {
	for _, s := range []string{`{"openid":"o","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`, `{"errcode":"40029","errmsg":"CODE"}`,
		`{"errcode":-1}`, ``, `null`, `[]`, `{"errcode":1e400}`, `{"openid":1}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := wechat.ParseCode2Session(wechat.PathCode2Session, &platform.Response{Status: status, Body: body}, "CODE", false)
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
		tok, life, err := wechat.ParseAccessToken(wechat.PathStableToken, &platform.Response{Status: status, Body: body}, "SECRET")
		if err == nil {
			if tok.IsZero() || life <= 0 || life > platform.MaxTokenLifetime {
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
