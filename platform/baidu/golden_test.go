package baidu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

const testSecret = "baidu-app-secret-value"

type sent struct {
	method, path, ctype string
	form, query         url.Values
	rawBody             string
}

func canned(t *testing.T, status int, file string) (*httptest.Server, *sent) {
	t.Helper()
	body, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	s := &sent{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		s.method, s.path, s.ctype, s.rawBody = r.Method, r.URL.Path, r.Header.Get("Content-Type"), string(raw)
		s.form, _ = url.ParseQuery(string(raw))
		s.query = r.URL.Query()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, s
}

var goldenCases = []struct {
	file     string
	status   int
	wantKind platform.Kind
	wantCode string // "" = success
}{
	{"session_ok.json", 200, 0, ""},
	{"session_10010100.json", 200, platform.KindBadCredentials, "parameter is invalid/10010100"},
	{"session_invalid_grant.json", 400, platform.KindInvalidCode, "invalid_grant"},
	{"session_invalid_grant.json", 200, platform.KindInvalidCode, "invalid_grant"},
	{"session_invalid_client.json", 400, platform.KindBadCredentials, "invalid_client"},
	{"gateway_110.json", 200, platform.KindTokenInvalid, "110"},
	{"session_ok.json", 500, platform.KindUnavailable, ""},
}

func check(t *testing.T, login *platform.Login, err error, wantKind platform.Kind, wantCode string, status int) {
	t.Helper()
	if wantCode == "" && status/100 == 2 {
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if login.OpenID != "l214zFqNrEuIEnp6m7Y01sw8yj" || login.SessionKey.Reveal() != "981ce8b151c0599acf7ad1a673c6ff5e" || login.UnionID != "" {
			t.Fatalf("login %+v", login)
		}
		return
	}
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != wantKind || pe.Code != wantCode {
		t.Fatalf("kind %v code %q, want %v %q (%v)", pe.Kind, pe.Code, wantKind, wantCode, err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("secret in error: %v", err)
	}
}

func TestGoldenSpapiAndLegacy(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		for _, tc := range goldenCases {
			t.Run(fmt.Sprintf("legacy=%v/%s/%d", legacy, tc.file, tc.status), func(t *testing.T) {
				srv, s := canned(t, tc.status, tc.file)
				c, err := New(Config{AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", AppSecret: secret.New(testSecret),
					Legacy: legacy, Endpoint: srv.URL})
				if err != nil {
					t.Fatal(err)
				}
				// A code with '@' routes to an open-source host: it must arrive intact.
				login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "a1b2+c3@host/x=y&z"})
				wantPath := PathJSCode2SessionKey
				if legacy {
					wantPath = PathGetSessionKeyByCode
				}
				if s.method != http.MethodPost || s.path != wantPath || s.ctype != "application/x-www-form-urlencoded" {
					t.Fatalf("sent %s %s %s", s.method, s.path, s.ctype)
				}
				if s.form.Get("code") != "a1b2+c3@host/x=y&z" || s.form.Get("client_id") != "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7" || s.form.Get("sk") != testSecret {
					t.Fatalf("form %q", s.rawBody)
				}
				if !strings.Contains(s.rawBody, "a1b2%2Bc3%40host%2Fx%3Dy%26z") {
					t.Fatalf("code not URL-encoded: %q", s.rawBody)
				}
				check(t, login, err, tc.wantKind, tc.wantCode, tc.status)
			})
		}
	}
}

type countingSource struct {
	tok         string
	invalidated int
}

func (s *countingSource) Token(context.Context) (secret.String, error) { return secret.New(s.tok), nil }
func (s *countingSource) InvalidateToken(_ context.Context, tok secret.String) {
	if tok.Reveal() == s.tok {
		s.invalidated++
	}
}

func TestGoldenThirdParty(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := canned(t, tc.status, tc.file)
			src := &countingSource{tok: "45.authorizer-token"}
			c, err := NewTP(TPConfig{AppKey: "k", AuthorizerToken: src, Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "tp@code"})
			if s.method != http.MethodGet || s.path != PathTPGetSessionKey ||
				s.query.Get("access_token") != "45.authorizer-token" || s.query.Get("code") != "tp@code" ||
				s.query.Get("grant_type") != "authorization_code" {
				t.Fatalf("sent %s %s %v", s.method, s.path, s.query)
			}
			check(t, login, err, tc.wantKind, tc.wantCode, tc.status)
			want := 0
			if tc.wantKind == platform.KindTokenInvalid {
				want = 1
			}
			if src.invalidated != want {
				t.Fatalf("invalidated %d, want %d", src.invalidated, want)
			}
			if err != nil && strings.Contains(err.Error(), "45.authorizer-token") {
				t.Fatalf("token in error: %v", err)
			}
		})
	}
}

// A 24-byte key is what Baidu uses; a hex-looking 16-byte value is refused.
func TestSessionKeyMustBe24Bytes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"openid":"o","session_key":"tiihtNczf5v6AKRyjwEUhQ=="}`))
	}))
	defer srv.Close()
	c, _ := New(Config{AppKey: "k", AppSecret: secret.New("s"), Endpoint: srv.URL})
	_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "c"})
	if platform.KindOf(err) != platform.KindUnknown {
		t.Fatalf("got %v", err)
	}
}
