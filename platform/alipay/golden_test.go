package alipay

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// success stands for "no error" in the tables' wantKind.
const success platform.Kind = -1

func TestGoldenOAuthToken(t *testing.T) {
	cases := []struct {
		file            string
		status          int
		wantKind        platform.Kind
		wantCode        string
		openID, unionID string
	}{
		// user_id mode: the user_id is both ids.
		{"token_user_id.json", 200, success, "", goldenUserID, goldenUserID},
		// open_id mode: no user_id, so no unionid.
		{"token_open_id.json", 200, success, "", goldenOpenID, ""},
		// The switch-over phase answers both: the open_id is the id, the
		// user_id joins the user to the one known before.
		{"token_both.json", 200, success, "", goldenOpenID, goldenUserID},
		{"token_code_10000.json", 200, success, "", goldenUserID, goldenUserID},
		{"token_escaped_slashes.json", 200, success, "", goldenUserID, goldenUserID},
		{"token_pretty.json", 200, success, "", goldenUserID, goldenUserID},
		// Certificate mode's alipay_cert_sn does not change what is signed.
		{"token_cert_sn.json", 200, success, "", goldenUserID, goldenUserID},
		{"token_sign_escaped.json", 200, success, "", goldenUserID, goldenUserID},
		{"token_and_error_response.json", 200, success, "", goldenUserID, goldenUserID},
		{"token_no_id.json", 200, platform.KindUnknown, "", "", ""},
		{"token_user_id_number.json", 200, platform.KindUnknown, "", "", ""},
		{"token_user_id_twice.json", 200, platform.KindUnknown, "", "", ""},
		{"token_upper_case_name.json", 200, platform.KindUnknown, "", "", ""},

		{"error_40002_code_invalid.json", 200, platform.KindInvalidCode, "40002", "", ""},
		{"error_40002_invalid_app_id.json", 200, platform.KindBadCredentials, "40002", "", ""},
		{"node_40002_invalid_signature.json", 200, platform.KindBadCredentials, "40002", "", ""},
		{"node_40001_missing_signature.json", 200, platform.KindBadCredentials, "40001", "", ""},
		{"error_20000.json", 200, platform.KindUnavailable, "20000", "", ""},
		{"error_40005.json", 200, platform.KindRateLimited, "40005", "", ""},
		{"error_40006.json", 200, platform.KindBadCredentials, "40006", "", ""},
		{"error_40004_unknown.json", 200, platform.KindUnknown, "40004", "", ""},
		{"error_no_code.json", 200, platform.KindUnknown, "", "", ""},
		{"node_numeric_code.json", 200, platform.KindInvalidCode, "40002", "", ""},
		// A verified error wins over the status; a verified success with a
		// 5xx is not a login.
		{"error_40002_code_invalid.json", 500, platform.KindInvalidCode, "40002", "", ""},
		{"token_user_id.json", 502, platform.KindUnavailable, "", "", ""},

		// Forgeries are the app's setup or an attack, never the user's
		// code, never a login.
		{"forged_altered.json", 200, platform.KindBadCredentials, "", "", ""},
		{"forged_app_key.json", 200, platform.KindBadCredentials, "", "", ""},
		{"forged_error_code_invalid.json", 200, platform.KindBadCredentials, "", "", ""},
		{"forged_unescaped.json", 200, platform.KindBadCredentials, "", "", ""},

		{"node_twice.json", 200, platform.KindUnknown, "", "", ""},
		{"node_twice_escaped_name.json", 200, platform.KindUnknown, "", "", ""},
		{"sign_twice.json", 200, platform.KindUnknown, "", "", ""},
		// The node's name inside a string or deeper down is not the node.
		{"name_in_string.json", 200, platform.KindInvalidCode, "40002", "", ""},
		{"name_in_nested_object.json", 200, platform.KindInvalidCode, "40002", "", ""},
		{"truncated.json", 200, platform.KindUnavailable, "", "", ""},
		{"trailing_data.json", 200, platform.KindUnavailable, "", "", ""},
		{"missing_sign.json", 200, platform.KindBadCredentials, "", "", ""},
		{"sign_not_string.json", 200, platform.KindBadCredentials, "", "", ""},
		{"sign_not_base64.json", 200, platform.KindBadCredentials, "", "", ""},
		{"no_node.json", 200, platform.KindUnknown, "", "", ""},
		{"no_node.json", 503, platform.KindUnavailable, "", "", ""},
		{"node_not_object.json", 200, platform.KindUnknown, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := serveFile(t, tc.status, tc.file)
			c := newClient(t, srv.URL)
			login, err := c.Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
			if n := s.calls.Load(); n != 1 {
				t.Fatalf("%d calls: an answer that reached us is never followed by a second send", n)
			}
			method, path, ctype, query, form := s.get()
			if method != http.MethodPost || path != PathGateway || query != "" ||
				ctype != "application/x-www-form-urlencoded;charset=utf-8" || form.Get("code") != testCode {
				t.Fatalf("sent %s %s?%s %s %v", method, path, query, ctype, form)
			}
			testutil.NoLeak(t, err, testCode, goldenAccessToken, goldenRefreshToken, testAESKey)
			if tc.wantKind == success {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if login.OpenID != tc.openID || login.UnionID != tc.unionID || !login.SessionKey.IsZero() || login.AnonymousOpenID != "" {
					t.Fatalf("login %+v", login)
				}
				return
			}
			if kind, code := kindCode(t, err); kind != tc.wantKind || code != tc.wantCode {
				t.Fatalf("got %v %q, want %v %q (%v)", kind, code, tc.wantKind, tc.wantCode, err)
			}
			if login != nil {
				t.Fatal("a login came with an error")
			}
		})
	}
}

// What an error keeps for logs: Alipay's sub_code and messages, the code
// removed from the gateway's echo of its string to sign.
func TestErrorMessages(t *testing.T) {
	srv, _ := serveFile(t, 200, "node_40002_invalid_signature.json")
	_, err := newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
	testutil.NoLeak(t, err, testCode)
	if s := err.Error(); !strings.Contains(s, "isv.invalid-signature") || !strings.Contains(s, "[redacted]") ||
		!strings.Contains(s, "Invalid Arguments") {
		t.Fatalf("message %q", s)
	}

	for _, tc := range []struct{ file, want string }{
		{"error_40002_code_invalid.json", "isv.code-invalid: 授权码code无效 (Invalid Arguments)"},
		{"error_40005.json", "调用频次超限 (Call Limited)"},
		{"error_no_code.json", "(Business Failed)"},
	} {
		srv, _ := serveFile(t, 200, tc.file)
		_, err := newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
		var pe *platform.Error
		if !errors.As(err, &pe) || pe.Message != tc.want {
			t.Fatalf("%s: message %q, want %q", tc.file, pe.Message, tc.want)
		}
	}

	// An unsigned answer is not believed, but what it claims is named for
	// whoever reads the logs.
	srv, _ = serveFile(t, 200, "missing_sign.json")
	_, err = newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
	if k, code := kindCode(t, err); k != platform.KindBadCredentials || code != "" ||
		!strings.Contains(err.Error(), `unverified: code "40002" sub_code "isv.invalid-app-id"`) {
		t.Fatalf("got %v", err)
	}
	// A hint that does not look like Alipay's codes is left out.
	srv, _ = serve(t, 200, []byte(`{"error_response":{"code":"40002","sub_code":"see http://evil"}}`))
	_, err = newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
	if strings.Contains(err.Error(), "evil") {
		t.Fatalf("got %v", err)
	}
}

// Bodies that are no answer at all: every one is KindUnavailable, never a
// panic, never a success.
func TestUnusableAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
	}{
		"whitespace":      {200, " \n"},
		"html error page": {200, "<html><body>502 Bad Gateway</body></html>"},
		"5xx plain":       {503, "service unavailable"},
		"array":           {200, `[]`},
		"string":          {200, `"x"`},
		"two objects":     {200, `{}{}`},
		"bad escape":      {200, `{"error_response":{"code":"\x"},"sign":"AAAA"}`},
		"raw newline":     {200, "{\"error_response\":{\"code\":\"4\n\"},\"sign\":\"AAAA\"}"},
		"leading zero":    {200, `{"error_response":{"code":01},"sign":"AAAA"}`},
		"too deep":        {200, `{"error_response":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, _ := serve(t, tc.status, []byte(tc.body))
			_, err := newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
			if k := platform.KindOf(err); k != platform.KindUnavailable {
				t.Fatalf("kind %v, want unavailable (%v)", k, err)
			}
		})
	}
}

// A request without a code or with an oversized one never leaves.
func TestExchangeRefusedBeforeAnyCall(t *testing.T) {
	srv, s := serveFile(t, 200, "token_user_id.json")
	c := newClient(t, srv.URL)
	for _, req := range []platform.ExchangeRequest{{}, {AnonymousCode: "a"}, {Code: strings.Repeat("x", platform.MaxCodeLen+1)}} {
		_, err := c.Exchange(ctx(t), req)
		if k, _ := kindCode(t, err); k != platform.KindInvalidCode {
			t.Fatalf("%+v: got %v", req, err)
		}
	}
	if n := s.calls.Load(); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

// A connection that is refused never reached Alipay: one retry, and
// neither attempt's error mentions the code.
func TestDialFailureRetriedOnceAndScrubbed(t *testing.T) {
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
	c := newClient(t, addr, func(cfg *Config) { cfg.HTTP = hc })
	_, err := c.Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
	if platform.KindOf(err) != platform.KindUnavailable || dials.Load() != 2 {
		t.Fatalf("got %v after %d dials", err, dials.Load())
	}
	testutil.NoLeak(t, err, testCode)
}

// The code sent once reached Alipay: a reset after sending, a timeout, and
// a 20000 answer are not retried.
func TestNoRetryOnceSent(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
		if platform.KindOf(err) != platform.KindUnavailable || calls.Load() != 1 {
			t.Fatalf("got %v after %d calls", err, calls.Load())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		var calls atomic.Int32
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			<-release
		}))
		defer srv.Close()
		defer close(release)
		c := newClient(t, srv.URL, func(cfg *Config) {
			cfg.HTTP = platform.NewHTTPClient(platform.HTTPConfig{Timeout: 200 * time.Millisecond})
		})
		_, err := c.Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
		if platform.KindOf(err) != platform.KindUnavailable || calls.Load() != 1 {
			t.Fatalf("got %v after %d calls", err, calls.Load())
		}
		testutil.NoLeak(t, err, testCode)
	})
	t.Run("20000", func(t *testing.T) {
		srv, s := serveFile(t, 200, "error_20000.json")
		_, err := newClient(t, srv.URL).Exchange(ctx(t), platform.ExchangeRequest{Code: testCode})
		if platform.KindOf(err) != platform.KindUnavailable || s.calls.Load() != 1 {
			t.Fatalf("got %v after %d calls", err, s.calls.Load())
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	k := loadKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := Config{AppID: testAppID, PrivateKey: k.app, AlipayPublicKey: &k.alipay.PublicKey}
	cases := map[string]func(*Config){
		"no app id":               func(c *Config) { c.AppID = "" },
		"no private key":          func(c *Config) { c.PrivateKey = nil },
		"no alipay key":           func(c *Config) { c.AlipayPublicKey = nil },
		"small private key":       func(c *Config) { c.PrivateKey = small },
		"small alipay key":        func(c *Config) { c.AlipayPublicKey = &small.PublicKey },
		"app key as alipay key":   func(c *Config) { c.AlipayPublicKey = &k.app.PublicKey },
		"aes key not base64":      func(c *Config) { c.AESKey = secret.New("not base64!") },
		"aes key of 32 bytes":     func(c *Config) { c.AESKey = secret.New("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") },
		"endpoint not a base URL": func(c *Config) { c.Endpoint = "ftp://x" },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mod(&cfg)
			c, err := New(cfg)
			if err == nil || c != nil {
				t.Fatalf("accepted")
			}
			testutil.NoLeak(t, err, "not base64!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		})
	}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.url != DefaultEndpoint+PathGateway || c.phone != nil {
		t.Fatalf("url %q", c.url)
	}
	if c.Flavor() != platform.FlavorAlipay || c.Flavor().Family() != platform.FamilyAlipay {
		t.Fatalf("flavor %q", c.Flavor())
	}
	c = newClient(t, "http://127.0.0.1:9300/")
	if c.url != "http://127.0.0.1:9300/gateway.do" {
		t.Fatalf("url %q", c.url)
	}
}
