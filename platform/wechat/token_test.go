package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// tokenServer serves one fixed answer and records what it was sent.
type tokenServer struct {
	method, path, ctype, query string
	body                       []byte
	calls                      atomic.Int32
}

func newTokenServer(t *testing.T, status int, file string) (*tokenServer, *Client) {
	t.Helper()
	answer, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.calls.Add(1)
		ts.body, _ = io.ReadAll(r.Body)
		ts.method, ts.path, ts.ctype, ts.query = r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.URL.RawQuery
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write(answer)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{AppID: "wx4f4bc4dec97d474b", Secret: secret.New(testSecret), Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return ts, c
}

// success stands for "no error" in wantKind.
const success platform.Kind = -1

var tokenCases = []struct {
	file     string
	status   int
	wantKind platform.Kind
	wantCode string
	calls    int32
}{
	{"token_ok.json", 200, success, "", 1},
	{"token_ok_string.json", 200, success, "", 1},
	// On a token fetch 40001 is the secret, not a token: misconfiguration.
	{"token_40001.json", 200, platform.KindBadCredentials, "40001", 1},
	{"token_40013.json", 200, platform.KindBadCredentials, "40013", 1},
	{"code2session_40125.json", 200, platform.KindBadCredentials, "40125", 1},
	{"token_40164.json", 200, platform.KindBadCredentials, "40164", 1},
	{"token_45009.json", 200, platform.KindRateLimited, "45009", 1},
	// Busy is retried once: the call only reads.
	{"code2session_-1.json", 200, platform.KindBusy, "-1", 2},
	{"token_no_expires_in.json", 200, platform.KindUnknown, "", 1},
	{"token_empty_token.json", 200, platform.KindUnknown, "", 1},
	{"token_ok.json", 502, platform.KindUnavailable, "", 1},
	{"token_40001.json", 500, platform.KindBadCredentials, "40001", 1},
}

func TestGoldenStableToken(t *testing.T) {
	for _, tc := range tokenCases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			ts, c := newTokenServer(t, tc.status, tc.file)
			tok, life, err := c.FetchAccessToken(context.Background())
			if ts.method != http.MethodPost || ts.path != PathStableToken || ts.query != "" ||
				!strings.HasPrefix(ts.ctype, "application/json") {
				t.Fatalf("sent %s %s?%s (%s)", ts.method, ts.path, ts.query, ts.ctype)
			}
			// Exactly these fields, force_refresh spelt out as false.
			var sent map[string]any
			if err := json.Unmarshal(ts.body, &sent); err != nil {
				t.Fatalf("body %q: %v", ts.body, err)
			}
			want := map[string]any{"grant_type": "client_credential", "appid": "wx4f4bc4dec97d474b", "secret": testSecret, "force_refresh": false}
			if fmt.Sprint(sent) != fmt.Sprint(want) {
				t.Fatalf("body %v, want %v", sent, want)
			}
			checkToken(t, tc.wantKind, tc.wantCode, tok, life, err)
			if n := ts.calls.Load(); n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
		})
	}
}

func TestGoldenClassicToken(t *testing.T) {
	for _, tc := range tokenCases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			ts, c := newTokenServer(t, tc.status, tc.file)
			tok, life, err := c.FetchClassicAccessToken(context.Background())
			if ts.method != http.MethodGet || ts.path != PathToken ||
				ts.query != "appid=wx4f4bc4dec97d474b&grant_type=client_credential&secret="+testSecret {
				t.Fatalf("sent %s %s?%s", ts.method, ts.path, ts.query)
			}
			checkToken(t, tc.wantKind, tc.wantCode, tok, life, err)
		})
	}
}

func checkToken(t *testing.T, kind platform.Kind, code string, tok secret.String, life time.Duration, err error) {
	t.Helper()
	if kind == success {
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		if tok.Reveal() != "86_ACCESS_TOKEN_VALUE_pqPZs0aB" || life != 7200*time.Second {
			t.Fatalf("got %q for %v", tok.Reveal(), life)
		}
		return
	}
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != kind || pe.Code != code {
		t.Fatalf("got kind %v code %q, want %v %q (%v)", pe.Kind, pe.Code, kind, code, err)
	}
	if !tok.IsZero() || life != 0 {
		t.Fatal("a token came with an error")
	}
	if text := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(text, testSecret) {
		t.Fatalf("secret in error: %s", text)
	}
}

// A connection refused is retried once and never shows the secret, which
// the classic fetch carries in its URL.
func TestTokenRefusedConnection(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c, _ := New(Config{AppID: "wx1", Secret: secret.New(testSecret), Endpoint: base})
	for name, fetch := range map[string]func(context.Context) (secret.String, time.Duration, error){
		"stable": c.FetchAccessToken, "classic": c.FetchClassicAccessToken,
	} {
		_, _, err := fetch(context.Background())
		if platform.KindOf(err) != platform.KindUnavailable || strings.Contains(fmt.Sprintf("%v %+v", err, err), testSecret) {
			t.Fatalf("%s: got %v", name, err)
		}
	}
}
