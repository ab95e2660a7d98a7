package baidu_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/baidu"
)

func FuzzParseSession(f *testing.F) {
	for _, s := range []string{`{"openid":"o","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}`,
		`{"errno":10010100,"error":"parameter is invalid","error_description":"CODE"}`, `{"error_code":"110"}`, ``, `"x"`} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := baidu.ParseSession(baidu.PathJSCode2SessionKey, &platform.Response{Status: status, Body: body}, "CODE")
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
