package kuaishou

import (
	"context"
	"errors"
	"fmt"
	"io"
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

const (
	testAppID  = "ks671234567890123456"
	testSecret = "ks-s3cr3t-app-secret-value"
	testCode   = "ZmFrZS1rcy1sb2dpbi1jb2Rl"
)

// cannedServer serves one fixed answer and records what it was sent.
type cannedServer struct {
	method, path, query, ctype string
	form                       url.Values
	calls                      atomic.Int32
}

func canned(t *testing.T, status int, file string) (*cannedServer, *Client) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	cs := &cannedServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		cs.form, _ = url.ParseQuery(string(b))
		cs.method, cs.path, cs.query, cs.ctype = r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{AppID: testAppID, AppSecret: secret.New(testSecret), Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs, c
}

// sent checks that a form POST without a query reached path.
func (cs *cannedServer) sent(t *testing.T, path string, want url.Values) {
	t.Helper()
	if cs.method != http.MethodPost || cs.path != path || cs.query != "" || cs.ctype != "application/x-www-form-urlencoded" {
		t.Fatalf("sent %s %s?%s (%s)", cs.method, cs.path, cs.query, cs.ctype)
	}
	if cs.form.Encode() != want.Encode() {
		t.Fatalf("form %v, want %v", cs.form, want)
	}
}

// success stands for "no error" in wantKind.
const success platform.Kind = -1

func TestGoldenCode2Session(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
	}{
		{"code2session_ok.json", 200, success, ""},
		{"code2session_ok_string.json", 200, success, ""},
		{"code2session_100200100.json", 200, platform.KindBadCredentials, "100200100"},
		{"code2session_100200101.json", 200, platform.KindBadCredentials, "100200101"},
		{"code2session_100200102.json", 200, platform.KindInvalidCode, "100200102"},
		// A result nobody documents, on a call with a code: the code.
		{"code2session_unknown.json", 200, platform.KindInvalidCode, "100200199"},
		{"code2session_0.json", 200, platform.KindInvalidCode, "0"},
		// The same with a 5xx: the platform failing, not the user.
		{"code2session_unknown.json", 503, platform.KindUnavailable, "100200199"},
		// Known results win over the status.
		{"code2session_100200101.json", 400, platform.KindBadCredentials, "100200101"},
		{"code2session_ok.json", 502, platform.KindUnavailable, ""},
		{"code2session_no_result.json", 200, platform.KindUnknown, ""},
		{"code2session_no_result.json", 500, platform.KindUnavailable, ""},
		{"code2session_bad_key.json", 200, platform.KindUnknown, ""},
		{"code2session_openid_spelt_wechat.json", 200, platform.KindUnknown, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			cs, c := canned(t, tc.status, tc.file)
			login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: testCode})
			cs.sent(t, PathCode2Session, url.Values{"app_id": {testAppID}, "app_secret": {testSecret}, "js_code": {testCode}})
			// Nothing is retried: Kuaishou documents no "busy".
			if n := cs.calls.Load(); n != 1 {
				t.Fatalf("%d calls", n)
			}
			if tc.wantKind == success {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if login.OpenID != "f195e2bc2d31b4e7a8c6d0f3e9b12a47" || login.SessionKey.Reveal() != "tiihtNczf5v6AKRyjwEUhQ==" || login.UnionID != "" {
					t.Fatalf("login %+v", login)
				}
				return
			}
			checkErr(t, err, tc.wantKind, tc.wantCode)
			if login != nil {
				t.Fatal("a login came with an error")
			}
		})
	}
}

func TestGoldenToken(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
	}{
		{"token_ok.json", 200, success, ""},
		{"token_ok_string.json", 200, success, ""},
		{"token_100200100.json", 200, platform.KindBadCredentials, "100200100"},
		{"token_100200101.json", 200, platform.KindBadCredentials, "100200101"},
		// No code in a token fetch: a refusal is about the app.
		{"token_100200102.json", 200, platform.KindBadCredentials, "100200102"},
		{"token_unknown.json", 200, platform.KindUnknown, "100200199"},
		{"token_unknown.json", 500, platform.KindUnavailable, "100200199"},
		{"token_no_expires_in.json", 200, platform.KindUnknown, ""},
		{"token_empty_token.json", 200, platform.KindUnknown, ""},
		{"token_no_result.json", 200, platform.KindUnknown, ""},
		{"token_ok.json", 502, platform.KindUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			cs, c := canned(t, tc.status, tc.file)
			tok, life, err := c.FetchAccessToken(context.Background())
			cs.sent(t, PathToken, url.Values{"app_id": {testAppID}, "app_secret": {testSecret}, "grant_type": {"client_credentials"}})
			if tc.wantKind == success {
				if err != nil || tok.Reveal() != "ChFvYXV0aC5hY2Nlc3NUb2tlbhJQ9x1kS" || life != 48*time.Hour {
					t.Fatalf("got %q for %v: %v", tok.Reveal(), life, err)
				}
				return
			}
			checkErr(t, err, tc.wantKind, tc.wantCode)
			if !tok.IsZero() || life != 0 {
				t.Fatal("a token came with an error")
			}
		})
	}
}

// checkErr asserts a *platform.Error of the kind and code, naming
// Kuaishou, with neither the secret nor the code in any rendering of it.
func checkErr(t *testing.T, err error, kind platform.Kind, code string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != kind || pe.Code != code || pe.Host != "kuaishou" {
		t.Fatalf("got %s kind %v code %q, want kuaishou %v %q (%v)", pe.Host, pe.Kind, pe.Code, kind, code, err)
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, s := range []string{testSecret, testCode} {
		if strings.Contains(text, s) {
			t.Fatalf("%q in error: %s", s, text)
		}
	}
}

// Both of Kuaishou's message fields are kept for logs, without the code or
// the secret even if Kuaishou echoes them.
func TestMessageScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		fmt.Fprintf(w, `{"result":100200102,"error":"invalid_grant","error_msg":"bad js_code %s with secret %s"}`,
			r.PostForm.Get("js_code"), r.PostForm.Get("app_secret"))
	}))
	defer srv.Close()
	c, _ := New(Config{AppID: testAppID, AppSecret: secret.New(testSecret), Endpoint: srv.URL})
	_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: testCode})
	checkErr(t, err, platform.KindInvalidCode, "100200102")
	if !strings.Contains(err.Error(), "invalid_grant: bad js_code [redacted] with secret [redacted]") {
		t.Fatalf("message lost: %v", err)
	}
}

// Bodies that are no answer at all: every one is KindUnavailable, never a
// panic, never a success.
func TestUnusableAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
	}{
		"empty":               {200, ""},
		"whitespace":          {200, " \n"},
		"html error page":     {200, "<html><body>502 Bad Gateway</body></html>"},
		"truncated json":      {200, `{"result":1,"open_id":"o1","session_k`},
		"5xx plain":           {503, "service unavailable"},
		"result not a number": {200, `{"result":"one"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, _ := New(Config{AppID: testAppID, AppSecret: secret.New(testSecret), Endpoint: srv.URL})
			_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: testCode})
			if k := platform.KindOf(err); k != platform.KindUnavailable {
				t.Fatalf("kind %v, want unavailable (%v)", k, err)
			}
			_, _, err = c.FetchAccessToken(context.Background())
			if k := platform.KindOf(err); k != platform.KindUnavailable {
				t.Fatalf("token: kind %v, want unavailable (%v)", k, err)
			}
		})
	}
}

// A code that cannot be real is refused before any call.
func TestCodeCheckedFirst(t *testing.T) {
	cs, c := canned(t, 200, "code2session_ok.json")
	for _, code := range []string{"", strings.Repeat("c", platform.MaxCodeLen+1)} {
		_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
		if platform.KindOf(err) != platform.KindInvalidCode {
			t.Fatalf("code of %d bytes: %v", len(code), err)
		}
	}
	if n := cs.calls.Load(); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

// A refused connection never reached Kuaishou: one retry, and no error
// shows the secret or the code.
func TestRefusedConnection(t *testing.T) {
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
	c, _ := New(Config{AppID: testAppID, AppSecret: secret.New(testSecret), Endpoint: addr, HTTP: hc})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Exchange(ctx, platform.ExchangeRequest{Code: testCode})
	if platform.KindOf(err) != platform.KindUnavailable || dials.Load() != 2 {
		t.Fatalf("dialled %d times: %v", dials.Load(), err)
	}
	_, _, terr := c.FetchAccessToken(ctx)
	if platform.KindOf(terr) != platform.KindUnavailable {
		t.Fatalf("token: %v", terr)
	}
	for _, e := range []error{err, terr} {
		text := fmt.Sprintf("%v %+v", e, e)
		for _, s := range []string{testSecret, testCode} {
			if strings.Contains(text, s) {
				t.Fatalf("%q in error: %s", s, text)
			}
		}
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []Config{
		{AppSecret: secret.New(testSecret)},
		{AppID: testAppID},
		{AppID: testAppID, AppSecret: secret.New(testSecret), Endpoint: "http://x/?q=1"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("secret in %v", err)
		}
	}
	c, err := New(Config{AppID: testAppID, AppSecret: secret.New(testSecret)})
	if err != nil || c.base != DefaultEndpoint || c.Flavor() != platform.FlavorKuaishou || c.Flavor().Family() != platform.FamilyKuaishou {
		t.Fatalf("%+v %v", c, err)
	}
}
