package douyin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
)

// seedFiles adds the golden answers whose names start with prefix.
func seedFiles(f *testing.F, prefix string) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			b, err := os.ReadFile("testdata/" + e.Name())
			if err != nil {
				f.Fatal(err)
			}
			f.Add(200, b)
		}
	}
}

// Any answer gives either a complete login or a *platform.Error, never a
// panic, and never lets a code or the secret through into the error. A
// login code's answer needs an openid; an anonymous code's alone, an
// anonymous_openid.
func FuzzParseCode2Session(f *testing.F) {
	seedFiles(f, "code2session_")
	for _, s := range []string{`{"err_no":40018,"err_tips":"bad code CODE ANON SECRET"}`, `{"err_no":"-1"}`, ``, `null`, `[]`,
		`{"err_no":1e400}`, `{"data":{"openid":1}}`, `{"data":"x"}`, `{"err_no":0,"data":{"openid":"o","session_key":"jsW5Ko6bDi+UeE8df6DIfw=="}}`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, req := range []platform.ExchangeRequest{{Code: "CODE"}, {AnonymousCode: "ANON"}, {Code: "CODE", AnonymousCode: "ANON"}} {
			login, err := parseCode2Session(&hostcall.Response{Status: status, Body: body}, req, "SECRET")
			if err == nil {
				id := login.OpenID
				if req.Code == "" {
					id = login.AnonymousOpenID
				}
				k, kerr := base64.StdEncoding.DecodeString(login.SessionKey.Reveal())
				if id == "" || kerr != nil || len(k) != SessionKeyLen {
					t.Fatalf("success without identity for %+v: %+v", req, login)
				}
				continue
			}
			var pe *platform.Error
			if !errors.As(err, &pe) {
				t.Fatalf("not a platform error: %v", err)
			}
			if login != nil {
				t.Fatal("a login came with an error")
			}
			for _, s := range []string{req.Code, req.AnonymousCode, "SECRET"} {
				if s != "" && strings.Contains(pe.Message, s) {
					t.Fatalf("%s in message: %q", s, pe.Message)
				}
			}
		}
	})
}

// Any answer to a token fetch gives either a token with a positive lifetime
// or a *platform.Error, never a panic, and never lets the secret through
// into the error.
func FuzzParseAccessToken(f *testing.F) {
	seedFiles(f, "token_")
	for _, s := range []string{`{"err_no":0,"data":{"access_token":"t","expires_in":"7200"}}`, `{"err_no":40017,"err_tips":"SECRET"}`,
		`{"data":{"access_token":"t","expires_in":-1}}`, `{"data":{"access_token":"t","expires_in":9223372036854775807}}`,
		``, `null`, `[]`, `{"data":{"expires_in":1e400}}`, `{"data":[]}`} {
		f.Add(200, []byte(s))
	}
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

// Any answer to get_phonenumber_info gives a number of this app or a
// *platform.Error, never a panic; the token and code never show in the
// error.
func FuzzParsePhoneNumber(f *testing.F) {
	key := loadKey(f, "app_key.pem")
	seedFiles(f, "phone_")
	f.Add(200, phoneAnswer(encrypt(f, &key.PublicKey, plaintext(testAppID))))
	f.Add(200, phoneAnswer(encrypt(f, &key.PublicKey, plaintext("ttother"))))
	for _, s := range []string{`{"err_no":28001008,"err_msg":"TOKEN CODE"}`, `{"err_no":0,"data":{}}`, `{"data":1}`, ``, `null`} {
		f.Add(200, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		phone, err := parsePhoneNumber(&hostcall.Response{Status: status, Body: body}, key, testAppID, "TOKEN", "CODE")
		if err == nil {
			if phone == nil || phone.PurePhoneNumber == "" || phone.PhoneNumber == "" || phone.WatermarkAppID != testAppID {
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
		if strings.Contains(pe.Message, "TOKEN") || strings.Contains(pe.Message, "CODE") {
			t.Fatalf("token or code in message: %q", pe.Message)
		}
	})
}

// Any decrypted plaintext gives a complete number of this app or a
// *platform.Error that shows none of its phone fields.
func FuzzParsePhonePlaintext(f *testing.F) {
	for _, s := range []string{string(plaintext(testAppID)), string(plaintext("ttother")),
		`{"purePhoneNumber":"13800138000","watermark":{"appid":"` + testAppID + `"}}`,
		`{"phoneNumber":13800138000,"purePhoneNumber":"13800138000","watermark":{"appid":"` + testAppID + `"}}`,
		`{"purePhoneNumber":"13800138000","countryCode":"13800138000x","watermark":{"appid":"` + testAppID + `"}}`,
		`{"purePhoneNumber":"13800138000","watermark":{"appid":"` + testAppID + `","timestamp":"13800138000x"}}`,
		``, `null`, `[]`, `{"watermark":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		phone, err := parsePhonePlaintext(plain, testAppID, 200)
		if err == nil {
			if phone == nil || phone.PurePhoneNumber == "" || phone.PhoneNumber == "" || phone.WatermarkAppID != testAppID {
				t.Fatalf("incomplete success from %q", plain)
			}
			return
		}
		var pe *platform.Error
		if !errors.As(err, &pe) {
			t.Fatalf("not a platform error: %v", err)
		}
		var raw struct {
			PhoneNumber, PurePhoneNumber any
		}
		_ = json.Unmarshal(plain, &raw)
		text := fmt.Sprintf("%v %+v", err, err)
		for _, v := range []any{raw.PhoneNumber, raw.PurePhoneNumber} {
			// Numbers only: short strings such as "douyin" are in every
			// error.
			s := strings.TrimPrefix(fmt.Sprint(v), "+")
			if v == nil || len(s) < 6 || strings.Trim(s, "0123456789") != "" {
				continue
			}
			if strings.Contains(text, s) {
				t.Fatalf("phone field %q in error: %s", s, text)
			}
		}
	})
}
