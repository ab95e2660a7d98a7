package faulttest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// badInput is one malformed or hostile request and the contract's answer.
// In auth and body, placeholders are filled in per case:
//
//	{access}    the access token of a fresh session of app "shop"
//	{refresh}   the refresh token of a fresh session
//	{spent}     a refresh token two generations back (past the grace
//	            that the immediately previous one gets)
//	{revoked}   the access token of a session that logged out
//	{baidu}     the access token of a fresh Baidu session
//	{code}      a fresh login code of "shop"
//	{blocked}   a fresh login code of a user WeChat blocks
//	{phonecode} a fresh phone code of the {access} user
type badInput struct {
	name         string
	method, path string
	auth         string // the whole Authorization header; "" none
	ctype        string // Content-Type; "" = application/json when there is a body
	body         string
	want         int    // 0: any answer the contract allows, never 500
	code         string // the error code, with want
}

func big(n int) string { return strings.Repeat("a", n) }

var badInputs = []badInput{
	// POST /v1/login: the body.
	{"login: malformed JSON", "POST", "/v1/login", "", "", `{"app":"shop","code":`, 400, "invalid_request"},
	{"login: not JSON", "POST", "/v1/login", "", "", `app=shop&code=abc`, 400, "invalid_request"},
	{"login: form content type", "POST", "/v1/login", "", "application/x-www-form-urlencoded", `app=shop&code=abc`, 415, "unsupported_media_type"},
	{"login: empty body", "POST", "/v1/login", "", "application/json", ``, 400, "invalid_request"},
	{"login: whitespace body", "POST", "/v1/login", "", "", " \n\t ", 400, "invalid_request"},
	{"login: JSON array", "POST", "/v1/login", "", "", `[{"app":"shop","code":"x"}]`, 400, "invalid_request"},
	{"login: JSON string", "POST", "/v1/login", "", "", `"shop"`, 400, "invalid_request"},
	{"login: JSON null", "POST", "/v1/login", "", "", `null`, 400, "invalid_request"},
	{"login: unknown field", "POST", "/v1/login", "", "", `{"app":"shop","code":"{code}","admin":true}`, 400, "invalid_request"},
	{"login: trailing object", "POST", "/v1/login", "", "", `{"app":"shop","code":"{code}"}{}`, 400, "invalid_request"},
	{"login: trailing garbage", "POST", "/v1/login", "", "", `{"app":"shop","code":"{code}"} x`, 400, "invalid_request"},
	{"login: app is a number", "POST", "/v1/login", "", "", `{"app":1,"code":"{code}"}`, 400, "invalid_request"},
	{"login: app is an array", "POST", "/v1/login", "", "", `{"app":["shop"],"code":"{code}"}`, 400, "invalid_request"},
	{"login: code is a number", "POST", "/v1/login", "", "", `{"app":"shop","code":12345}`, 400, "invalid_request"},
	{"login: code is an object", "POST", "/v1/login", "", "", `{"app":"shop","code":{"a":1}}`, 400, "invalid_request"},
	{"login: code is a huge number", "POST", "/v1/login", "", "", `{"app":"shop","code":1e999}`, 400, "invalid_request"},
	{"login: code is true", "POST", "/v1/login", "", "", `{"app":"shop","code":true}`, 400, "invalid_request"},
	{"login: app missing", "POST", "/v1/login", "", "", `{"code":"{code}"}`, 400, "invalid_request"},
	{"login: code missing", "POST", "/v1/login", "", "", `{"app":"shop"}`, 400, "invalid_request"},
	{"login: app null", "POST", "/v1/login", "", "", `{"app":null,"code":"{code}"}`, 400, "invalid_request"},
	{"login: app empty", "POST", "/v1/login", "", "", `{"app":"","code":"{code}"}`, 400, "invalid_request"},
	{"login: code empty", "POST", "/v1/login", "", "", `{"app":"shop","code":""}`, 400, "invalid_request"},
	{"login: code 513 bytes", "POST", "/v1/login", "", "", `{"app":"shop","code":"` + big(513) + `"}`, 400, "invalid_request"},
	{"login: code 8000 bytes", "POST", "/v1/login", "", "", `{"app":"shop","code":"` + big(8000) + `"}`, 400, "invalid_request"},
	{"login: nested 4000 deep", "POST", "/v1/login", "", "", `{"app":` + strings.Repeat("[", 4000) + strings.Repeat("]", 4000) + `}`, 400, "invalid_request"},
	{"login: body 8 KiB + 1", "POST", "/v1/login", "", "", `{"app":"shop","code":"` + big(8<<10+1-len(`{"app":"shop","code":""}`)) + `"}`, 413, "request_too_large"},
	{"login: body 1 MiB", "POST", "/v1/login", "", "", `{"app":"shop","code":"` + big(1<<20) + `"}`, 413, "request_too_large"},
	{"login: unknown app", "POST", "/v1/login", "", "", `{"app":"no-such-app","code":"{code}"}`, 400, "unknown_app"},
	{"login: app with NUL", "POST", "/v1/login", "", "", `{"app":"shop\u0000","code":"{code}"}`, 400, "unknown_app"},
	{"login: app 5000 bytes", "POST", "/v1/login", "", "", `{"app":"` + big(5000) + `","code":"{code}"}`, 400, "unknown_app"},
	{"login: app in another case", "POST", "/v1/login", "", "", `{"app":"SHOP","code":"{code}"}`, 400, "unknown_app"},
	{"login: code never issued", "POST", "/v1/login", "", "", `{"app":"shop","code":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}`, 401, "invalid_code"},
	{"login: code with query injection", "POST", "/v1/login", "", "", `{"app":"shop","code":"x&appid=wx0123456789abcdef&secret=s&js_code=y"}`, 401, "invalid_code"},
	{"login: code with NUL and newline", "POST", "/v1/login", "", "", `{"app":"shop","code":"a\u0000b\r\nc"}`, 401, "invalid_code"},
	{"login: code with invalid UTF-8", "POST", "/v1/login", "", "", "{\"app\":\"shop\",\"code\":\"\xff\xfe\xfd\"}", 401, "invalid_code"},
	{"login: blocked user", "POST", "/v1/login", "", "", `{"app":"shop","code":"{blocked}"}`, 403, "user_blocked"},

	// Bearer tokens.
	{"session: no Authorization", "GET", "/v1/session", "", "", ``, 401, "invalid_token"},
	{"session: Bearer alone", "GET", "/v1/session", "Bearer", "", ``, 401, "invalid_token"},
	{"session: Bearer and spaces", "GET", "/v1/session", "Bearer    ", "", ``, 401, "invalid_token"},
	{"session: garbage token", "GET", "/v1/session", "Bearer garbage", "", ``, 401, "invalid_token"},
	{"session: prefix only", "GET", "/v1/session", "Bearer mpa_", "", ``, 401, "invalid_token"},
	{"session: well-formed, never issued", "GET", "/v1/session", "Bearer mpa_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", ``, 401, "invalid_token"},
	{"session: well-formed with a time, never issued", "GET", "/v1/session", "Bearer mpa_" + strings.Repeat("A", 51), "", ``, 401, "invalid_token"},
	{"session: punctuation", "GET", "/v1/session", "Bearer mpa_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "", ``, 401, "invalid_token"},
	{"session: 8000-byte token", "GET", "/v1/session", "Bearer mpa_" + big(8000), "", ``, 401, "invalid_token"},
	{"session: Basic credentials", "GET", "/v1/session", "Basic dXNlcjpwYXNz", "", ``, 401, "invalid_token"},
	{"session: token twice", "GET", "/v1/session", "Bearer {access} {access}", "", ``, 401, "invalid_token"},
	{"session: refresh token as access token", "GET", "/v1/session", "Bearer {refresh}", "", ``, 401, "invalid_token"},
	{"session: revoked token", "GET", "/v1/session", "Bearer {revoked}", "", ``, 401, "invalid_token"},
	{"session: a body", "GET", "/v1/session", "Bearer {access}", "", `{"x":1}`, 400, "invalid_request"},
	{"session: a 2 KiB body", "GET", "/v1/session", "Bearer {access}", "", big(2 << 10), 413, "request_too_large"},
	{"session: verify=bogus", "GET", "/v1/session?verify=bogus", "Bearer {access}", "", ``, 400, "invalid_request"},
	{"session: verify twice", "GET", "/v1/session?verify=platform&verify=platform", "Bearer {access}", "", ``, 400, "invalid_request"},

	// POST /v1/token.
	{"token: grant_type missing", "POST", "/v1/token", "", "", `{"refresh_token":"{refresh}"}`, 400, "invalid_request"},
	{"token: grant_type password", "POST", "/v1/token", "", "", `{"grant_type":"password","refresh_token":"{refresh}"}`, 400, "invalid_request"},
	{"token: refresh_token missing", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token"}`, 400, "invalid_request"},
	{"token: refresh_token a number", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":42}`, 400, "invalid_request"},
	{"token: unknown field", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":"{refresh}","scope":"all"}`, 400, "invalid_request"},
	{"token: garbage refresh token", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":"garbage"}`, 400, "invalid_grant"},
	{"token: well-formed, never issued", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":"mpr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, 400, "invalid_grant"},
	{"token: access token as refresh token", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":"{access}"}`, 400, "invalid_grant"},
	{"token: spent refresh token", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":"{spent}"}`, 400, "invalid_grant"},
	{"token: body 4 KiB + 1", "POST", "/v1/token", "", "", `{"grant_type":"refresh_token","refresh_token":"` + big(4<<10) + `"}`, 413, "request_too_large"},

	// POST /v1/logout.
	{"logout: no Authorization", "POST", "/v1/logout", "", "", ``, 401, "invalid_token"},
	{"logout: garbage token", "POST", "/v1/logout", "Bearer mpa_xyz", "", ``, 401, "invalid_token"},
	{"logout: refresh token", "POST", "/v1/logout", "Bearer {refresh}", "", ``, 401, "invalid_token"},
	{"logout: revoked token", "POST", "/v1/logout", "Bearer {revoked}", "", ``, 401, "invalid_token"},
	{"logout: an unknown key", "POST", "/v1/logout", "Bearer {access}", "", `{"everything":true}`, 400, "invalid_request"},
	{"logout: all not a boolean", "POST", "/v1/logout", "Bearer {access}", "", `{"all":"yes"}`, 400, "invalid_request"},
	{"logout: all twice", "POST", "/v1/logout", "Bearer {access}", "", `{"all":false,"all":true}`, 400, "invalid_request"},
	{"logout: a body not JSON", "POST", "/v1/logout", "Bearer {access}", "text/plain", `all`, 415, "unsupported_media_type"},

	// POST /v1/userdata/decrypt.
	{"decrypt: no Authorization", "POST", "/v1/userdata/decrypt", "", "", `{"encrypted_data":"AAAA","iv":"AAAA"}`, 401, "invalid_token"},
	{"decrypt: refresh token", "POST", "/v1/userdata/decrypt", "Bearer {refresh}", "", `{"encrypted_data":"AAAA","iv":"AAAA"}`, 401, "invalid_token"},
	{"decrypt: bad base64", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"!!!not base64!!!","iv":"###"}`, 422, "decrypt_failed"},
	{"decrypt: short iv", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAA="}`, 422, "decrypt_failed"},
	{"decrypt: ciphertext not whole blocks", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"AAAAAAAAAAAAAAAAAAAA","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 422, "decrypt_failed"},
	{"decrypt: random blocks", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 422, "decrypt_failed"},
	{"decrypt: bad signature", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA==","raw_data":"{}","signature":"x"}`, 422, "decrypt_failed"},
	{"decrypt: 60 KiB ciphertext", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"` + strings.Repeat("A", 60<<10) + `","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 422, "decrypt_failed"},
	{"decrypt: raw_data without signature", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"AAAA","iv":"AAAA","raw_data":"{}"}`, 400, "invalid_request"},
	{"decrypt: iv missing", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"AAAA"}`, 400, "invalid_request"},
	{"decrypt: encrypted_data a number", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":1,"iv":"AAAA"}`, 400, "invalid_request"},
	{"decrypt: unknown field", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"AAAA","iv":"AAAA","session_key":"AAAA"}`, 400, "invalid_request"},
	{"decrypt: body 64 KiB + 1", "POST", "/v1/userdata/decrypt", "Bearer {access}", "", `{"encrypted_data":"` + big(64<<10) + `","iv":"AAAA"}`, 413, "request_too_large"},

	// POST /v1/phone.
	{"phone: no Authorization", "POST", "/v1/phone", "", "", `{"code":"{phonecode}"}`, 401, "invalid_token"},
	{"phone: neither code nor payload", "POST", "/v1/phone", "Bearer {access}", "", `{}`, 400, "invalid_request"},
	{"phone: code and payload", "POST", "/v1/phone", "Bearer {access}", "", `{"code":"{phonecode}","encrypted_data":"AAAA","iv":"AAAA"}`, 400, "invalid_request"},
	{"phone: code 600 bytes", "POST", "/v1/phone", "Bearer {access}", "", `{"code":"` + big(600) + `"}`, 400, "invalid_request"},
	{"phone: code a number", "POST", "/v1/phone", "Bearer {access}", "", `{"code":7}`, 400, "invalid_request"},
	{"phone: code never issued", "POST", "/v1/phone", "Bearer {access}", "", `{"code":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}`, 401, "invalid_code"},
	{"phone: code for a Baidu app", "POST", "/v1/phone", "Bearer {baidu}", "", `{"code":"abc"}`, 400, "invalid_request"},
	{"phone: bad payload", "POST", "/v1/phone", "Bearer {access}", "", `{"encrypted_data":"AAAAAAAAAAAAAAAAAAAAAA==","iv":"AAAAAAAAAAAAAAAAAAAAAA=="}`, 422, "decrypt_failed"},
	{"phone: body 64 KiB + 1", "POST", "/v1/phone", "Bearer {access}", "", `{"encrypted_data":"` + big(64<<10) + `","iv":"AAAA"}`, 413, "request_too_large"},

	// Anything else: some contract answer, never a 500.
	{"unknown route", "GET", "/v1/nope", "", "", ``, 0, ""},
	{"wrong method on login", "GET", "/v1/login", "", "", ``, 405, "method_not_allowed"},
	{"wrong method on session", "DELETE", "/v1/session", "Bearer {access}", "", ``, 405, "method_not_allowed"},
	{"path traversal", "GET", "/v1/../../etc/passwd", "", "", ``, 0, ""},
	{"login: duplicate keys", "POST", "/v1/login", "", "", `{"app":"shop","app":"other","code":"{code}"}`, 400, "invalid_request"},
	{"login: key in another case", "POST", "/v1/login", "", "", `{"APP":"shop","code":"{code}"}`, 400, "invalid_request"},
}

// TestBadInput sends each bad input to the real binary and expects the
// contract's error, and a healthy service afterwards.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envOptions{})
	e.login(t, appShop, appidShop, "warmup")
	e.tr.CloseIdleConnections()
	base := e.goroutines(t)
	ctx := context.Background()

	for _, bc := range badInputs {
		t.Run(bc.name, func(t *testing.T) {
			fill := func(s string) string {
				var user string
				rep := func(ph string, f func() string) {
					if strings.Contains(s, ph) {
						s = strings.ReplaceAll(s, ph, f())
					}
				}
				rep("{access}", func() string {
					user = "bi-" + strings.ReplaceAll(bc.name, " ", "-")
					return e.login(t, appShop, appidShop, user).AccessToken
				})
				rep("{refresh}", func() string { return e.login(t, appShop, appidShop, "bi-refresh").RefreshToken })
				rep("{spent}", func() string {
					tk := e.login(t, appShop, appidShop, "bi-spent")
					refresh := tk.RefreshToken
					for range 2 {
						var next tokens
						r := e.call(ctx, req{method: "POST", path: "/v1/token",
							body: map[string]string{"grant_type": "refresh_token", "refresh_token": refresh}})
						if r.status != 200 || json.Unmarshal(r.body, &next) != nil {
							t.Fatalf("refresh: %s", r)
						}
						refresh = next.RefreshToken
					}
					return tk.RefreshToken
				})
				rep("{revoked}", func() string {
					tk := e.login(t, appShop, appidShop, "bi-revoked")
					if r := e.call(ctx, req{method: "POST", path: "/v1/logout", token: tk.AccessToken}); r.status != 204 {
						t.Fatalf("logout: %s", r)
					}
					return tk.AccessToken
				})
				rep("{baidu}", func() string { return e.login(t, appBaidu, appkeyBd, "bi-baidu").AccessToken })
				rep("{code}", func() string { return e.mintCode(t, appidShop, "bi-code") })
				rep("{blocked}", func() string { return e.mintCode(t, appidShop, "blocked-bob") })
				rep("{phonecode}", func() string {
					if user == "" {
						user = "bi-phone"
					}
					return e.phoneCode(t, appidShop, user)
				})
				return s
			}
			auth := fill(bc.auth)
			body := fill(bc.body)
			r := e.callRaw(ctx, bc.method, bc.path, auth, bc.ctype, body)
			if err := contractError(r); err != nil {
				t.Fatal(err)
			}
			if bc.want != 0 && (r.status != bc.want || r.code != bc.code) {
				t.Fatalf("want %d %s, got %s", bc.want, bc.code, r)
			}
			if bc.want == 0 {
				if r.status < 400 {
					t.Fatalf("want an error, got %s", r)
				}
				t.Logf("answer: %s", r)
			}
			if r.code == "invalid_token" && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 invalid_token without WWW-Authenticate: Bearer")
			}
			checkBound(t, "the answer", r, answerBound)
		})
	}

	e.checkHealthy(t)
	if n, ok := e.settleGoroutines(t, base+goroutineSlack); !ok {
		t.Errorf("service goroutines %d, baseline %d", n, base)
	}
	// The service still works.
	tk := e.login(t, appShop, appidShop, "after")
	if r := e.call(ctx, req{method: "GET", path: "/v1/session", token: tk.AccessToken}); r.status != 200 {
		t.Errorf("session after the bad input: %s", r)
	}
	e.stopAll(t)
}

// callRaw sends a request exactly as given: auth is the whole
// Authorization header, body is sent as is.
func (e *env) callRaw(ctx context.Context, method, path, auth, ctype, body string) reply {
	r := req{method: method, path: path, auth: auth, ctype: ctype}
	if body != "" {
		r.body = body
	}
	return e.call(ctx, r)
}
