package qq

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
)

// Any answer gives either a complete login or a *platform.Error, never a
// panic, and never lets the code or the secret through into the error.
func FuzzParseCode2Session(f *testing.F) {
	for _, s := range []string{`{"openid":"o","session_key":"tiihtNczf5v6AKRyjwEUhQ==","unionid":"u"}`,
		`{"errcode":"40029","errmsg":"CODE"}`, `{"errcode":45011,"errmsg":"SECRET"}`, `{"errcode":-1}`, ``, `null`, `[]`,
		`{"errcode":1e400}`, `{"openid":1}`, `{"openid":"o","session_key":"dGlpaA=="}`} {
		f.Add(200, []byte(s))
	}
	addGolden(f, "code2session_*.json")
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := parseCode2Session(&hostcall.Response{Status: status, Body: body}, "CODE", "SECRET")
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
		if login != nil {
			t.Fatal("a login came with an error")
		}
		if strings.Contains(pe.Message, "CODE") || strings.Contains(pe.Message, "SECRET") {
			t.Fatalf("code or secret in message: %q", pe.Message)
		}
	})
}

// Any answer to a token fetch gives either a token with a positive lifetime
// or a *platform.Error, never a panic, and never lets the secret through.
func FuzzParseAccessToken(f *testing.F) {
	for _, s := range []string{`{"access_token":"t","expires_in":7200}`, `{"access_token":"t","expires_in":"7200"}`,
		`{"errcode":40001,"errmsg":"SECRET"}`, `{"access_token":"t","expires_in":-1}`, `{"access_token":"t","expires_in":9223372036854775807}`,
		`{"access_token":"","expires_in":1}`, ``, `null`, `[]`, `{"expires_in":1e400}`} {
		f.Add(200, []byte(s))
	}
	addGolden(f, "token_*.json")
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, life, err := parseAccessToken(&hostcall.Response{Status: status, Body: body}, "SECRET")
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

// addGolden seeds the corpus with the golden answers.
func addGolden(f *testing.F, pattern string) {
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden files %s: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(200, b)
	}
}
