package kuaishou

import (
	"bytes"
	"encoding/json"
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
// A success needs result 1.
func FuzzParseCode2Session(f *testing.F) {
	for _, s := range []string{`{"result":1,"open_id":"o","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`,
		`{"result":"100200102","error_msg":"CODE"}`, `{"result":7,"error":"SECRET","error_msg":"CODE"}`, `{"result":null}`, ``, `null`, `[]`,
		`{"result":1e400}`, `{"result":1,"open_id":1}`, `{"result":1.0,"open_id":"o","session_key":"dGlpaA=="}`} {
		f.Add(200, []byte(s))
	}
	addGolden(f, "code2session_*.json")
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := parseCode2Session(&hostcall.Response{Status: status, Body: body}, "CODE", "SECRET")
		if err == nil {
			if login == nil || login.OpenID == "" || login.SessionKey.IsZero() || login.UnionID != "" {
				t.Fatalf("success without identity: %+v", login)
			}
			if !resultIsOne(body) {
				t.Fatalf("success from %q", body)
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
	for _, s := range []string{`{"result":1,"access_token":"t","expires_in":172800,"token_type":"bearer"}`,
		`{"result":"1","access_token":"t","expires_in":"172800"}`, `{"result":100200101,"error_msg":"SECRET"}`,
		`{"result":1,"access_token":"t","expires_in":-1}`, `{"result":1,"access_token":"t","expires_in":9223372036854775807}`,
		`{"result":1,"access_token":"","expires_in":1}`, `{"access_token":"t","expires_in":1}`, ``, `null`, `[]`, `{"expires_in":1e400}`} {
		f.Add(200, []byte(s))
	}
	addGolden(f, "token_*.json")
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, life, err := parseAccessToken(&hostcall.Response{Status: status, Body: body}, "SECRET")
		if err == nil {
			if tok.IsZero() || life <= 0 || life > wire.MaxTokenLifetime || !resultIsOne(body) {
				t.Fatalf("success with token %v for %v from %q", tok, life, body)
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

// resultIsOne reports whether a body is a JSON object holding result 1,
// read apart from the parser: a number or numeric string, the key matched
// as encoding/json matches it (case ignored, the last of duplicates).
func resultIsOne(body []byte) bool {
	if !json.Valid(body) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, _ := dec.Token(); t != json.Delim('{') {
		return false
	}
	var v wire.Int
	found := false
	for dec.More() {
		key, _ := dec.Token()
		var raw json.RawMessage
		if dec.Decode(&raw) != nil {
			return false
		}
		if k, _ := key.(string); strings.EqualFold(k, "result") {
			var n wire.Int
			found = n.UnmarshalJSON(raw) == nil
			v = n
		}
	}
	return found && v == 1
}
