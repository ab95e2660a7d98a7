package baidu

import (
	"errors"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
)

func FuzzParseSession(f *testing.F) {
	for _, s := range []string{`{"openid":"o","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}`,
		`{"errno":10010100,"error":"parameter is invalid","error_description":"CODE"}`, `{"error_code":"110"}`, ``, `"x"`} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := parseSession(PathJSCode2SessionKey, &hostcall.Response{Status: status, Body: body}, "CODE")
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

// Any answer to a token fetch gives a token with a positive lifetime or a
// *platform.Error, never a panic, and never the secret in the error.
func FuzzParseAccessToken(f *testing.F) {
	for _, s := range []string{`{"access_token":"24.x","expires_in":2592000}`, `{"error":"invalid_client","error_description":"SECRET"}`,
		`{"error_code":110}`, `{"access_token":"24.x","expires_in":"0"}`, `{"access_token":"24.x","expires_in":1e30}`, ``, `"x"`} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		tok, life, err := parseAccessToken(PathToken, &hostcall.Response{Status: status, Body: body}, "SECRET")
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

// Any answer to a unionid lookup gives a non-empty unionid or a
// *platform.Error, never a panic, and never the token in the error.
func FuzzParseUnionID(f *testing.F) {
	for _, s := range []string{`{"errno":0,"errmsg":"succ","data":{"unionid":"St6PVMkgMDeh92Uq2EWfx6H"}}`,
		`{"errno":0,"msg":"success","data":{"union_id":"Srn8jbRVFTFMRdV2KTJfmSE"}}`, `{"errno":1,"errmsg":"TOKEN","data":[]}`,
		`{"error_code":110,"error_msg":"TOKEN"}`, `{"errno":"50032","data":""}`, `{"data":{"unionid":1}}`, `{"data":null}`,
		``, `"x"`, `null`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, path := range []string{PathUnionID, PathTPUnionID} {
			id, err := parseUnionID(path, &hostcall.Response{Status: status, Body: body}, "TOKEN")
			if err == nil {
				if id == "" {
					t.Fatal("success without unionid")
				}
				continue
			}
			var pe *platform.Error
			if !errors.As(err, &pe) {
				t.Fatalf("not a platform error: %v", err)
			}
			if id != "" {
				t.Fatal("a unionid came with an error")
			}
			if strings.Contains(pe.Message, "TOKEN") || strings.Contains(pe.Code, "TOKEN") {
				t.Fatalf("token in error: %q %q", pe.Code, pe.Message)
			}
		}
	})
}

// Any answer to getsessionkey gives a login with an openid and a session key,
// or a *platform.Error, never a panic, and never the code or the token in
// the error.
func FuzzParseGetSessionKey(f *testing.F) {
	for _, s := range []string{
		`{"errno":0,"errmsg":"succ","request_id":"2321772211","data":{"open_id":"o","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}}`,
		`{"errno":0,"msg":"success","data":{"openid":"o","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}}`,
		`{"errno":10010102,"errmsg":"CODE","request_id":"1"}`, `{"errno":"1","msg":"TOKEN","data":[]}`,
		`{"error_code":110,"error_msg":"TOKEN"}`, `{"data":{"open_id":1}}`, `{"data":null}`, `{"data":""}`,
		``, `"x"`, `null`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		login, err := parseGetSessionKey(PathGetSessionKey, &hostcall.Response{Status: status, Body: body}, "CODE", "TOKEN")
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
		for _, s := range []string{"CODE", "TOKEN"} {
			if strings.Contains(pe.Message, s) || strings.Contains(pe.Code, s) {
				t.Fatalf("%s in error: %q %q", s, pe.Code, pe.Message)
			}
		}
	})
}
