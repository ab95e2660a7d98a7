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
