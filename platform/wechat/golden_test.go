package wechat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

const testSecret = "s3cr3t-app-secret-value"

// canned serves one fixed answer and records the query it was sent.
func canned(t *testing.T, status int, contentType, file string) (*httptest.Server, *http.Request) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var seen http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = *r.Clone(context.Background())
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestGoldenCode2Session(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind // KindUnknown with wantCode "" means success
		wantCode string
	}{
		{"code2session_ok.json", 200, 0, ""},
		{"code2session_ok_no_errcode.json", 200, 0, ""},
		{"code2session_40029.json", 200, platform.KindInvalidCode, "40029"},
		{"code2session_40163.json", 200, platform.KindCodeUsed, "40163"},
		{"code2session_40226.json", 200, platform.KindUserBlocked, "40226"},
		{"code2session_45011.json", 200, platform.KindRateLimited, "45011"},
		{"code2session_-1.json", 200, platform.KindBusy, "-1"},
		{"code2session_40013.json", 200, platform.KindBadCredentials, "40013"},
		{"code2session_40125.json", 200, platform.KindBadCredentials, "40125"},
		{"code2session_41002.json", 200, platform.KindBadCredentials, "41002"},
		// An errcode wins over the status; a success body with a 5xx does not.
		{"code2session_40029.json", 500, platform.KindInvalidCode, "40029"},
		{"code2session_ok.json", 502, platform.KindUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, seen := canned(t, tc.status, "text/plain", tc.file)
			c, err := New(Config{AppID: "wx4f4bc4dec97d474b", Secret: secret.New(testSecret), Endpoint: srv.URL,
				HTTP: platform.NewHTTPClient(platform.HTTPConfig{})})
			if err != nil {
				t.Fatal(err)
			}
			login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "061abcDEF"})
			if seen.URL.Path != PathCode2Session || seen.Method != http.MethodGet {
				t.Fatalf("sent %s %s", seen.Method, seen.URL.Path)
			}
			q := seen.URL.Query()
			if q.Get("appid") != "wx4f4bc4dec97d474b" || q.Get("secret") != testSecret || q.Get("js_code") != "061abcDEF" || q.Get("grant_type") != "authorization_code" {
				t.Fatalf("query %v", q)
			}
			if tc.wantKind == 0 && tc.wantCode == "" {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if login.OpenID != "oGZUI0egBJY1zhBYw2KhdUfwVJJE" || login.SessionKey.Reveal() != "tiihtNczf5v6AKRyjwEUhQ==" {
					t.Fatalf("login %+v", login)
				}
				if strings.Contains(tc.file, "no_errcode") != (login.UnionID == "") {
					t.Fatalf("unionid %q", login.UnionID)
				}
				return
			}
			var pe *platform.Error
			if !errors.As(err, &pe) {
				t.Fatalf("want *platform.Error, got %v", err)
			}
			if pe.Kind != tc.wantKind || pe.Code != tc.wantCode {
				t.Fatalf("got kind %v code %q, want %v %q (%v)", pe.Kind, pe.Code, tc.wantKind, tc.wantCode, err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("secret in error: %v", err)
			}
		})
	}
}

// staticSource counts invalidations.
type staticSource struct {
	tok         string
	invalidated int
}

func (s *staticSource) Token(context.Context) (secret.String, error) { return secret.New(s.tok), nil }
func (s *staticSource) InvalidateToken(_ context.Context, tok secret.String) {
	if tok.Reveal() == s.tok {
		s.invalidated++
	}
}

func TestGoldenComponent(t *testing.T) {
	cases := []struct {
		file            string
		wantKind        platform.Kind
		wantCode        string
		wantInvalidated int
	}{
		{"code2session_ok.json", 0, "", 0},
		{"component_40029_string.json", platform.KindInvalidCode, "40029", 0},
		{"component_61003.json", platform.KindBadCredentials, "61003", 0},
		{"component_41021.json", platform.KindBadCredentials, "41021", 0},
		{"component_42001.json", platform.KindTokenInvalid, "42001", 1},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			srv, seen := canned(t, 200, "text/plain", tc.file)
			src := &staticSource{tok: "component-token-value"}
			c, err := NewComponent(ComponentConfig{AppID: "wxauthorizer", ComponentAppID: "wxcomponent",
				ComponentToken: src, Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exchange(context.Background(), platform.ExchangeRequest{Code: "081code"})
			q := seen.URL.Query()
			if seen.URL.Path != PathComponentCode2Session || q.Get("appid") != "wxauthorizer" ||
				q.Get("component_appid") != "wxcomponent" || q.Get("component_access_token") != "component-token-value" ||
				q.Get("js_code") != "081code" || q.Get("grant_type") != "authorization_code" || q.Has("secret") {
				t.Fatalf("sent %s?%v", seen.URL.Path, q)
			}
			if tc.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if k := platform.KindOf(err); k != tc.wantKind {
				t.Fatalf("kind %v, want %v (%v)", k, tc.wantKind, err)
			}
			if src.invalidated != tc.wantInvalidated {
				t.Fatalf("invalidated %d times, want %d", src.invalidated, tc.wantInvalidated)
			}
			if strings.Contains(err.Error(), "component-token-value") {
				t.Fatalf("token in error: %v", err)
			}
		})
	}
}

// Bodies that are no answer at all: every one is KindUnavailable, never a
// panic, never a success.
func TestUnusableAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		ctype  string
		body   string
	}{
		"empty with gbk html":  {200, "text/html; charset=gbk", ""},
		"whitespace":           {200, "text/plain", " \n"},
		"html error page":      {200, "text/html", "<html><body>502 Bad Gateway</body></html>"},
		"truncated json":       {200, "text/plain", `{"openid":"o1","session_k`},
		"5xx plain":            {503, "text/plain", "service unavailable"},
		"errcode not a number": {200, "text/plain", `{"errcode":"abc","errmsg":"x"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, _ := New(Config{AppID: "wx1", Secret: secret.New(testSecret), Endpoint: srv.URL})
			_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "c1"})
			if k := platform.KindOf(err); k != platform.KindUnavailable {
				t.Fatalf("kind %v, want unavailable (%v)", k, err)
			}
		})
	}
}

func TestOversizedBodyIsCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"errmsg":"`))
		_, _ = w.Write([]byte(strings.Repeat("a", 2<<20)))
		_, _ = w.Write([]byte(`"}`))
	}))
	defer srv.Close()
	c, _ := New(Config{AppID: "wx1", Secret: secret.New(testSecret), Endpoint: srv.URL})
	_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "c1"})
	if k := platform.KindOf(err); k != platform.KindUnavailable || !strings.Contains(err.Error(), "body over") {
		t.Fatalf("got %v", err)
	}
}

// A connection that is refused never reached WeChat: one retry, and neither
// attempt's error mentions the URL (its query holds the secret and code).
func TestDialFailureRetriedOnceAndScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	dials := 0
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials++
		return dial(ctx, network, a) // refused: the server is closed
	}
	c, _ := New(Config{AppID: "wx1", Secret: secret.New(testSecret), Endpoint: addr, HTTP: hc})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Exchange(ctx, platform.ExchangeRequest{Code: "code-value-123"})
	if platform.KindOf(err) != platform.KindUnavailable {
		t.Fatalf("got %v", err)
	}
	if dials != 2 {
		t.Fatalf("dialled %d times, want 2", dials)
	}
	for _, s := range []string{testSecret, "code-value-123", "secret=", "js_code"} {
		if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v", err), s) {
			t.Fatalf("%q in error: %v", s, err)
		}
	}
}
