package wechat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Fixtures of the token-authenticated calls. The session key is the one of
// the signature vectors (docs/platforms/wechat.md, "Test vectors"), so the
// signature sent is that table's empty-message vector.
const (
	wxaAppID      = "wx4f4bc4dec97d474b"
	wxaToken      = "86_ACCESS_TOKEN_VALUE_wxa_pqPZs0aB"
	wxaOpenID     = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"
	wxaSessionKey = "o0q0otL8aEzpcZL/FT9WsQ=="
	wxaSignature  = "46e043c5525c2d817c44be603d30837a808a1d930d038f6fdc3e62a201fed128"
	wxaPhoneCode  = "e31968a7f94cc5ee25fafc2aef2773f0bb8c3937b22520eb8ee345274d00c144"
	wxaPhone      = "13800138000"
)

func TestSessionSignatureVectors(t *testing.T) {
	key := secret.New(wxaSessionKey)
	// docs/platforms/wechat.md, "Test vectors": the official worked example,
	// and the checksession case.
	if got := SessionSignature(key, `{"foo":"bar"}`); got != "654571f79995b2ce1e149e53c0a33dc39c0a74090db514261454e8dbe432aa0b" {
		t.Fatalf("worked example: %s", got)
	}
	if got := SessionSignature(key, ""); got != wxaSignature {
		t.Fatalf("empty message: %s", got)
	}
	// Keying with the decoded 16 bytes is the mistake the docs warn of.
	if got := SessionSignature(key, `{"foo":"bar"}`); got == "bfa6883695fed51bb7e5897ce895842574a58f8a9cc5c4343f47c515ab337b89" {
		t.Fatal("keyed with the decoded session key")
	}
}

// wxaServer serves one fixed answer and records what it was sent.
type wxaServer struct {
	URL                 string
	calls               atomic.Int32
	method, path, ctype string
	query               url.Values
	body                []byte
}

func newWxaServer(t *testing.T, status int, answer []byte) *wxaServer {
	t.Helper()
	ws := &wxaServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.calls.Add(1)
		ws.body, _ = io.ReadAll(r.Body)
		ws.method, ws.path, ws.ctype, ws.query = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.URL.Query()
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	ws.URL = srv.URL
	return ws
}

func golden(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noSource fails the test if a component client consults its own token
// source: these calls take the authorizer token as an argument.
type noSource struct{ t *testing.T }

func (s noSource) Token(context.Context) (secret.String, error) {
	s.t.Error("component token source consulted")
	return secret.New("component-token"), nil
}

// wxaAPI is what Client and ComponentClient share.
type wxaAPI interface {
	CheckSession(ctx context.Context, accessToken secret.String, openID string, sessionKey secret.String) (bool, error)
	ResetSessionKey(ctx context.Context, accessToken secret.String, openID string, sessionKey secret.String) (secret.String, error)
	PhoneNumber(ctx context.Context, accessToken secret.String, openID, code string) (*Phone, error)
}

// clients returns a Client and a ComponentClient for the same appid, both
// pointed at base.
func clients(t *testing.T, base string, hc *http.Client) map[string]wxaAPI {
	t.Helper()
	c, err := New(Config{AppID: wxaAppID, Secret: secret.New(testSecret), Endpoint: base, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := NewComponent(ComponentConfig{AppID: wxaAppID, ComponentAppID: "wxcomponent",
		ComponentToken: noSource{t}, Endpoint: base, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]wxaAPI{"direct": c, "component": cc}
}

// wantErr checks kind and code, and that no fixture secret or personal
// value shows in the error however it is printed.
func wantErr(t *testing.T, err error, kind platform.Kind, code string) *platform.Error {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != kind || pe.Code != code {
		t.Fatalf("got kind %v code %q, want %v %q (%v)", pe.Kind, pe.Code, kind, code, err)
	}
	noLeak(t, err)
	return pe
}

func noLeak(t *testing.T, err error) {
	t.Helper()
	text := fmt.Sprintf("%v | %+v | %#v | %s", err, err, err, err.Error())
	for _, s := range []string{wxaToken, wxaSessionKey, wxaSignature, wxaPhoneCode, wxaPhone, "HyVFkGl5F5OQWJZZaNzBBg==", testSecret} {
		if strings.Contains(text, s) {
			t.Fatalf("%q leaks into the error: %s", s, text)
		}
	}
}

// ok stands for "no error" in wantKind.
const ok platform.Kind = -1

func TestGoldenCheckSession(t *testing.T) {
	cases := []struct {
		file      string
		status    int
		wantKind  platform.Kind
		wantCode  string
		wantValid bool
		calls     int32
	}{
		{"wxa_ok.json", 200, ok, "", true, 1},
		{"wxa_87009.json", 200, ok, "", false, 1},
		{"wxa_87009.json", 500, ok, "", false, 1}, // errcode wins over the status
		// A token-authenticated path: 40001 is the token, not the secret.
		{"wxa_40001.json", 200, platform.KindTokenInvalid, "40001", false, 1},
		{"wxa_40014.json", 200, platform.KindTokenInvalid, "40014", false, 1},
		{"wxa_42001.json", 200, platform.KindTokenInvalid, "42001", false, 1},
		{"wxa_41001.json", 200, platform.KindBadCredentials, "41001", false, 1},
		{"wxa_45011_string.json", 200, platform.KindRateLimited, "45011", false, 1},
		{"token_45009.json", 200, platform.KindRateLimited, "45009", false, 1},
		{"wxa_40003.json", 200, platform.KindUnknown, "40003", false, 1},
		// Busy is retried once: the call only reads.
		{"code2session_-1.json", 200, platform.KindBusy, "-1", false, 2},
		// No errcode is no verdict: never "valid".
		{"wxa_no_errcode.json", 200, platform.KindUnknown, "", false, 1},
		{"wxa_no_errcode.json", 503, platform.KindUnavailable, "", false, 1},
		{"wxa_ok.json", 502, platform.KindUnavailable, "", false, 1},
	}
	for _, tc := range cases {
		for _, name := range []string{"direct", "component"} {
			t.Run(fmt.Sprintf("%s/%s/%d", name, tc.file, tc.status), func(t *testing.T) {
				ws := newWxaServer(t, tc.status, golden(t, tc.file))
				c := clients(t, ws.URL, nil)[name]
				valid, err := c.CheckSession(context.Background(), secret.New(wxaToken), wxaOpenID, secret.New(wxaSessionKey))
				want := url.Values{"access_token": {wxaToken}, "openid": {wxaOpenID}, "signature": {wxaSignature}, "sig_method": {"hmac_sha256"}}
				if ws.method != http.MethodGet || ws.path != PathCheckSession || ws.query.Encode() != want.Encode() || len(ws.body) != 0 {
					t.Fatalf("sent %s %s?%v %q", ws.method, ws.path, ws.query, ws.body)
				}
				if n := ws.calls.Load(); n != tc.calls {
					t.Fatalf("%d calls, want %d", n, tc.calls)
				}
				if tc.wantKind == ok {
					if err != nil || valid != tc.wantValid {
						t.Fatalf("got %v, %v; want %v", valid, err, tc.wantValid)
					}
					return
				}
				if valid {
					t.Fatal("valid with an error")
				}
				wantErr(t, err, tc.wantKind, tc.wantCode)
			})
		}
	}
}

func TestGoldenResetSessionKey(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
		invalid  bool // wraps ErrSessionKeyInvalid
	}{
		{"reset_ok.json", 200, ok, "", false},
		{"reset_ok_no_errcode.json", 200, ok, "", false},
		{"wxa_87009.json", 200, platform.KindUnknown, "87009", true},
		{"wxa_40001.json", 200, platform.KindTokenInvalid, "40001", false},
		{"wxa_42001.json", 200, platform.KindTokenInvalid, "42001", false},
		{"wxa_40014.json", 200, platform.KindTokenInvalid, "40014", false},
		{"wxa_45011_string.json", 200, platform.KindRateLimited, "45011", false},
		// Busy is not retried: the reset may have happened.
		{"code2session_-1.json", 200, platform.KindBusy, "-1", false},
		{"reset_other_openid.json", 200, platform.KindUnknown, "", false},
		{"reset_bad_key.json", 200, platform.KindUnknown, "", false},
		{"reset_no_key.json", 200, platform.KindUnknown, "", false},
		{"wxa_ok.json", 200, platform.KindUnknown, "", false},
		{"reset_ok.json", 500, platform.KindUnavailable, "", false},
	}
	for _, tc := range cases {
		for _, name := range []string{"direct", "component"} {
			t.Run(fmt.Sprintf("%s/%s/%d", name, tc.file, tc.status), func(t *testing.T) {
				ws := newWxaServer(t, tc.status, golden(t, tc.file))
				c := clients(t, ws.URL, nil)[name]
				key, err := c.ResetSessionKey(context.Background(), secret.New(wxaToken), wxaOpenID, secret.New(wxaSessionKey))
				want := url.Values{"access_token": {wxaToken}, "openid": {wxaOpenID}, "signature": {wxaSignature}, "sig_method": {"hmac_sha256"}}
				if ws.method != http.MethodGet || ws.path != PathResetSessionKey || ws.query.Encode() != want.Encode() {
					t.Fatalf("sent %s %s?%v", ws.method, ws.path, ws.query)
				}
				if n := ws.calls.Load(); n != 1 {
					t.Fatalf("%d calls, want 1", n)
				}
				if tc.wantKind == ok {
					if err != nil || key.Reveal() != "HyVFkGl5F5OQWJZZaNzBBg==" {
						t.Fatalf("got %q, %v", key.Reveal(), err)
					}
					return
				}
				if !key.IsZero() {
					t.Fatal("a key came with an error")
				}
				wantErr(t, err, tc.wantKind, tc.wantCode)
				if errors.Is(err, ErrSessionKeyInvalid) != tc.invalid {
					t.Fatalf("errors.Is(ErrSessionKeyInvalid) = %v: %v", !tc.invalid, err)
				}
			})
		}
	}
}

func TestGoldenPhoneNumber(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
		calls    int32
	}{
		{"phone_ok.json", 200, ok, "", 1},
		{"phone_ok_string_country.json", 200, ok, "", 1},
		{"phone_40029.json", 200, platform.KindInvalidCode, "40029", 1},
		{"phone_40029.json", 400, platform.KindInvalidCode, "40029", 1},
		{"code2session_40163.json", 200, platform.KindCodeUsed, "40163", 1},
		{"wxa_40001.json", 200, platform.KindTokenInvalid, "40001", 1},
		{"wxa_40014.json", 200, platform.KindTokenInvalid, "40014", 1},
		{"wxa_42001.json", 200, platform.KindTokenInvalid, "42001", 1},
		{"wxa_45011_string.json", 200, platform.KindRateLimited, "45011", 1},
		{"token_40013.json", 200, platform.KindBadCredentials, "40013", 1},
		// The openid sent is not the user the code was issued to.
		{"wxa_40003.json", 200, platform.KindInvalidCode, "40003", 1},
		// Busy proves the code was not used: one retry, as for login codes.
		{"code2session_-1.json", 200, platform.KindBusy, "-1", 2},
		{"phone_wrong_appid.json", 200, platform.KindUnknown, "", 1},
		{"phone_empty_number.json", 200, platform.KindUnknown, "", 1},
		{"wxa_ok.json", 200, platform.KindUnknown, "", 1},
		{"phone_number_not_string.json", 200, platform.KindUnavailable, "", 1},
		{"phone_ok.json", 502, platform.KindUnavailable, "", 1},
	}
	for _, tc := range cases {
		for _, name := range []string{"direct", "component"} {
			t.Run(fmt.Sprintf("%s/%s/%d", name, tc.file, tc.status), func(t *testing.T) {
				ws := newWxaServer(t, tc.status, golden(t, tc.file))
				c := clients(t, ws.URL, nil)[name]
				phone, err := c.PhoneNumber(context.Background(), secret.New(wxaToken), wxaOpenID, wxaPhoneCode)
				// The code with the session's openid, so that WeChat refuses
				// a code issued to another user.
				if want := golden(t, "phone_request.json"); !bytes.Equal(ws.body, bytes.TrimSpace(want)) {
					t.Fatalf("body %s, want %s", ws.body, want)
				}
				if ws.method != http.MethodPost || ws.path != PathPhoneNumber || ws.query.Encode() != "access_token="+wxaToken ||
					!strings.HasPrefix(ws.ctype, "application/json") {
					t.Fatalf("sent %s %s?%v (%s)", ws.method, ws.path, ws.query, ws.ctype)
				}
				if n := ws.calls.Load(); n != tc.calls {
					t.Fatalf("%d calls, want %d", n, tc.calls)
				}
				if tc.wantKind == ok {
					if err != nil {
						t.Fatal(err)
					}
					want := Phone{PhoneNumber: wxaPhone, PurePhoneNumber: wxaPhone, CountryCode: "86",
						WatermarkAppID: wxaAppID, WatermarkTimestamp: 1637744274}
					if strings.Contains(tc.file, "string_country") {
						want.PhoneNumber, want.PurePhoneNumber, want.CountryCode = "+85261234567", "61234567", "852"
					}
					if *phone != want {
						t.Fatalf("got %#v", []string{phone.PhoneNumber, phone.PurePhoneNumber, phone.CountryCode, phone.WatermarkAppID})
					}
					return
				}
				if phone != nil {
					t.Fatal("a phone came with an error")
				}
				wantErr(t, err, tc.wantKind, tc.wantCode)
			})
		}
	}
}

// Without an openid the body is the code alone, as before WeChat took one:
// nothing empty is sent for WeChat to compare.
func TestPhoneNumberWithoutOpenID(t *testing.T) {
	for name := range clients(t, "http://unused", nil) {
		ws := newWxaServer(t, 200, golden(t, "phone_ok.json"))
		c := clients(t, ws.URL, nil)[name]
		if _, err := c.PhoneNumber(context.Background(), secret.New(wxaToken), "", wxaPhoneCode); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := golden(t, "phone_request_no_openid.json"); !bytes.Equal(ws.body, bytes.TrimSpace(want)) {
			t.Fatalf("%s: body %s, want %s", name, ws.body, want)
		}
	}
	// An openid no user can have is refused before any call.
	ws := newWxaServer(t, 200, golden(t, "phone_ok.json"))
	for name, c := range clients(t, ws.URL, nil) {
		_, err := c.PhoneNumber(context.Background(), secret.New(wxaToken), strings.Repeat("o", 600), wxaPhoneCode)
		wantErr(t, err, platform.KindBadCredentials, "")
		if n := ws.calls.Load(); n != 0 {
			t.Fatalf("%s: %d calls", name, n)
		}
	}
}

// The component client checks the watermark against the authorizer's appid.
func TestComponentPhoneWatermark(t *testing.T) {
	ws := newWxaServer(t, 200, golden(t, "phone_ok.json"))
	cc, err := NewComponent(ComponentConfig{AppID: "wxauthorizer", ComponentAppID: "wxcomponent",
		ComponentToken: noSource{t}, Endpoint: ws.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cc.PhoneNumber(context.Background(), secret.New(wxaToken), wxaOpenID, wxaPhoneCode)
	wantErr(t, err, platform.KindUnknown, "")
}

// Bodies that are no answer at all: KindUnavailable for every call, never a
// panic, never a success.
func TestWxaUnusableAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
	}{
		"empty":             {200, ""},
		"whitespace":        {200, " \n"},
		"html":              {200, "<html><body>502 Bad Gateway</body></html>"},
		"truncated":         {200, `{"errcode":0,"phone_info":{"phoneNumber":"1380013`},
		"5xx plain":         {503, "service unavailable"},
		"errcode not a num": {200, `{"errcode":"abc","errmsg":"x"}`},
		"array":             {200, `[]`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=gbk")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			for cname, c := range clients(t, srv.URL, nil) {
				ctx, tok, key := context.Background(), secret.New(wxaToken), secret.New(wxaSessionKey)
				valid, err := c.CheckSession(ctx, tok, wxaOpenID, key)
				if k := platform.KindOf(err); k != platform.KindUnavailable || valid {
					t.Fatalf("%s CheckSession: %v, %v", cname, valid, err)
				}
				newKey, err := c.ResetSessionKey(ctx, tok, wxaOpenID, key)
				if k := platform.KindOf(err); k != platform.KindUnavailable || !newKey.IsZero() {
					t.Fatalf("%s ResetSessionKey: %v", cname, err)
				}
				phone, err := c.PhoneNumber(ctx, tok, wxaOpenID, wxaPhoneCode)
				if k := platform.KindOf(err); k != platform.KindUnavailable || phone != nil {
					t.Fatalf("%s PhoneNumber: %v", cname, err)
				}
				noLeak(t, err)
			}
		})
	}
}

// WeChat's messages may echo what was sent; none of the token, the session
// key, its signature or the phone code reaches an error.
func TestWxaErrorsCarryNoSecrets(t *testing.T) {
	sessionEcho := strings.Join([]string{wxaToken, wxaSessionKey, wxaSignature}, " ")
	phoneEcho := strings.Join([]string{wxaToken, wxaPhoneCode}, " ")
	for _, code := range []int{40001, 42001, 40029, 45011, 87009, -1, 12345} {
		for _, status := range []int{200, 500} {
			answer := func(echo string) []byte {
				return fmt.Appendf(nil, `{"errcode":%d,"errmsg":"echo %s, rid: 1"}`, code, echo)
			}
			sessions, phones := newWxaServer(t, status, answer(sessionEcho)), newWxaServer(t, status, answer(phoneEcho))
			ctx, tok, key := context.Background(), secret.New(wxaToken), secret.New(wxaSessionKey)
			for name, c := range clients(t, sessions.URL, nil) {
				if _, err := c.CheckSession(ctx, tok, wxaOpenID, key); err != nil {
					noLeak(t, err)
				} else if code != 87009 {
					t.Fatalf("%s: %d accepted", name, code)
				}
				_, err := c.ResetSessionKey(ctx, tok, wxaOpenID, key)
				noLeak(t, err)
			}
			for _, c := range clients(t, phones.URL, nil) {
				_, err := c.PhoneNumber(ctx, tok, wxaOpenID, wxaPhoneCode)
				noLeak(t, err)
			}
		}
	}
	// A number for another app is refused without showing it.
	ws := newWxaServer(t, 200, golden(t, "phone_wrong_appid.json"))
	for _, c := range clients(t, ws.URL, nil) {
		_, err := c.PhoneNumber(context.Background(), secret.New(wxaToken), wxaOpenID, wxaPhoneCode)
		wantErr(t, err, platform.KindUnknown, "")
	}
}

// Arguments that cannot be right are refused before any call.
func TestWxaBadArguments(t *testing.T) {
	ws := newWxaServer(t, 200, golden(t, "wxa_ok.json"))
	tok, key, none := secret.New(wxaToken), secret.New(wxaSessionKey), secret.String{}
	long := strings.Repeat("x", 600)
	for name, c := range clients(t, ws.URL, nil) {
		ctx := context.Background()
		for _, args := range []struct {
			tok    secret.String
			openID string
			key    secret.String
		}{{none, wxaOpenID, key}, {tok, "", key}, {tok, long, key}, {tok, wxaOpenID, none}, {tok, wxaOpenID, secret.New(long)}} {
			_, err := c.CheckSession(ctx, args.tok, args.openID, args.key)
			wantErr(t, err, platform.KindBadCredentials, "")
			_, err = c.ResetSessionKey(ctx, args.tok, args.openID, args.key)
			wantErr(t, err, platform.KindBadCredentials, "")
		}
		for _, code := range []string{"", long} {
			_, err := c.PhoneNumber(ctx, tok, wxaOpenID, code)
			wantErr(t, err, platform.KindInvalidCode, "")
		}
		_, err := c.PhoneNumber(ctx, none, wxaOpenID, wxaPhoneCode)
		wantErr(t, err, platform.KindBadCredentials, "")
		if n := ws.calls.Load(); n != 0 {
			t.Fatalf("%s: %d calls", name, n)
		}
	}
}

// A refused connection never reached WeChat: each call is tried twice, the
// reset included.
func TestWxaDialFailureRetriedOnce(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	var dials atomic.Int32
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tok, key := secret.New(wxaToken), secret.New(wxaSessionKey)
	for name, c := range clients(t, addr, hc) {
		calls := map[string]func() error{
			"check": func() error { _, err := c.CheckSession(ctx, tok, wxaOpenID, key); return err },
			"reset": func() error { _, err := c.ResetSessionKey(ctx, tok, wxaOpenID, key); return err },
			"phone": func() error { _, err := c.PhoneNumber(ctx, tok, wxaOpenID, wxaPhoneCode); return err },
		}
		for call, f := range calls {
			dials.Store(0)
			err := f()
			if platform.KindOf(err) != platform.KindUnavailable || dials.Load() != 2 {
				t.Fatalf("%s %s: %d dials, %v", name, call, dials.Load(), err)
			}
			noLeak(t, err)
			if strings.Contains(err.Error(), "access_token") || strings.Contains(err.Error(), "signature=") {
				t.Fatalf("%s %s: URL in error: %v", name, call, err)
			}
		}
	}
}

// A connection that drops once the request is sent may have reached WeChat:
// no call is sent a second time.
func TestWxaNoRetryAfterSend(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	tok, key := secret.New(wxaToken), secret.New(wxaSessionKey)
	for name, c := range clients(t, srv.URL, nil) {
		for call, f := range map[string]func() error{
			"check": func() error { _, err := c.CheckSession(ctx, tok, wxaOpenID, key); return err },
			"reset": func() error { _, err := c.ResetSessionKey(ctx, tok, wxaOpenID, key); return err },
			"phone": func() error { _, err := c.PhoneNumber(ctx, tok, wxaOpenID, wxaPhoneCode); return err },
		} {
			calls.Store(0)
			err := f()
			if platform.KindOf(err) != platform.KindUnavailable || calls.Load() != 1 {
				t.Fatalf("%s %s: %d calls, %v", name, call, calls.Load(), err)
			}
			noLeak(t, err)
		}
	}
}

// A Phone printed or logged by mistake shows no number.
func TestPhoneRedactsItself(t *testing.T) {
	p := &Phone{PhoneNumber: "+85261234567", PurePhoneNumber: "61234567", CountryCode: "852", WatermarkAppID: wxaAppID}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("bound", "phone", p, "value", *p)
	text := fmt.Sprintf("%v %+v %#v %s %d %x %q", p, *p, *p, p, *p, *p, p) + fmt.Sprint(p, *p) + buf.String()
	if strings.Contains(text, "61234567") || !strings.Contains(text, "852") {
		t.Fatalf("phone shown: %s", text)
	}
}
