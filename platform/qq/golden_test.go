package qq

import (
	"context"
	"errors"
	"fmt"
	"net"
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

const (
	testAppID  = "1109876543"
	testSecret = "qq-s3cr3t-app-secret-value"
	testCode   = "0a1B2c3D4e5F6g7H8i9J"
)

// cannedServer serves one fixed answer and records what it was sent.
type cannedServer struct {
	method, path, query string
	calls               atomic.Int32
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
		cs.method, cs.path, cs.query = r.Method, r.URL.Path, r.URL.RawQuery
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return cs, c
}

// success stands for "no error" in wantKind.
const success platform.Kind = -1

func TestGoldenCode2Session(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
		calls    int32
	}{
		{"code2session_ok.json", 200, success, "", 1},
		{"code2session_ok_no_unionid.json", 200, success, "", 1},
		{"code2session_ok_empty_unionid.json", 200, success, "", 1},
		{"code2session_40029.json", 200, platform.KindInvalidCode, "40029", 1},
		{"code2session_40029_string.json", 200, platform.KindInvalidCode, "40029", 1},
		{"code2session_40163.json", 200, platform.KindCodeUsed, "40163", 1},
		{"code2session_45011.json", 200, platform.KindRateLimited, "45011", 1},
		// Busy means QQ did nothing with the code: one retry.
		{"code2session_-1.json", 200, platform.KindBusy, "-1", 2},
		{"code2session_40013.json", 200, platform.KindBadCredentials, "40013", 1},
		{"code2session_40125.json", 200, platform.KindBadCredentials, "40125", 1},
		{"code2session_41008.json", 200, platform.KindBadCredentials, "41008", 1},
		{"code2session_unknown.json", 200, platform.KindUnknown, "50001", 1},
		{"code2session_bad_key.json", 200, platform.KindUnknown, "", 1},
		{"code2session_no_openid.json", 200, platform.KindUnknown, "", 1},
		// An errcode wins over the status; a success body with a 5xx does not.
		{"code2session_40029.json", 500, platform.KindInvalidCode, "40029", 1},
		{"code2session_ok.json", 502, platform.KindUnavailable, "", 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			cs, c := canned(t, tc.status, tc.file)
			login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: testCode})
			if cs.method != http.MethodGet || cs.path != PathCode2Session ||
				cs.query != "appid="+testAppID+"&grant_type=authorization_code&js_code="+testCode+"&secret="+testSecret {
				t.Fatalf("sent %s %s?%s", cs.method, cs.path, cs.query)
			}
			if n := cs.calls.Load(); n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
			if tc.wantKind == success {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if login.OpenID != "8F35A8B3E0C9D2B1A4F6E7D8C9B0A1F2" || login.SessionKey.Reveal() != "tiihtNczf5v6AKRyjwEUhQ==" {
					t.Fatalf("login %+v", login)
				}
				if wantUnion := tc.file == "code2session_ok.json"; wantUnion != (login.UnionID == "UID_5E4D3C2B1A0F9E8D7C6B5A4938271605") ||
					(!wantUnion && login.UnionID != "") {
					t.Fatalf("unionid %q", login.UnionID)
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
		calls    int32
	}{
		{"token_ok.json", 200, success, "", 1},
		{"token_ok_string.json", 200, success, "", 1},
		{"token_-1.json", 200, platform.KindBusy, "-1", 2},
		// No token is sent to getToken: 40001 is the secret.
		{"token_40001.json", 200, platform.KindBadCredentials, "40001", 1},
		{"token_40002.json", 200, platform.KindBadCredentials, "40002", 1},
		{"token_40013.json", 200, platform.KindBadCredentials, "40013", 1},
		{"token_no_expires_in.json", 200, platform.KindUnknown, "", 1},
		{"token_empty_token.json", 200, platform.KindUnknown, "", 1},
		{"token_40001.json", 500, platform.KindBadCredentials, "40001", 1},
		{"token_ok.json", 502, platform.KindUnavailable, "", 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			cs, c := canned(t, tc.status, tc.file)
			tok, life, err := c.FetchAccessToken(context.Background())
			if cs.method != http.MethodGet || cs.path != PathToken ||
				cs.query != "appid="+testAppID+"&grant_type=client_credential&secret="+testSecret {
				t.Fatalf("sent %s %s?%s", cs.method, cs.path, cs.query)
			}
			if n := cs.calls.Load(); n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
			if tc.wantKind == success {
				if err != nil || tok.Reveal() != "QQ_ACCESS_TOKEN_VALUE_3f9Kc1" || life != 7200*time.Second {
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

// checkErr asserts a *platform.Error of the kind and code, naming QQ, with
// neither the secret nor the code in any rendering of it.
func checkErr(t *testing.T, err error, kind platform.Kind, code string) {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want *platform.Error, got %v", err)
	}
	if pe.Kind != kind || pe.Code != code || pe.Host != "qq" {
		t.Fatalf("got %s kind %v code %q, want qq %v %q (%v)", pe.Host, pe.Kind, pe.Code, kind, code, err)
	}
	text := fmt.Sprintf("%v %+v %#v", err, err, err)
	for _, s := range []string{testSecret, testCode} {
		if strings.Contains(text, s) {
			t.Fatalf("%q in error: %s", s, text)
		}
	}
}

// QQ's message is kept for logs, without the code or the secret even if
// QQ echoes them.
func TestMessageScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"errcode":40029,"errmsg":"invalid code %s for secret %s"}`, r.URL.Query().Get("js_code"), r.URL.Query().Get("secret"))
	}))
	defer srv.Close()
	c, _ := New(Config{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: srv.URL})
	_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: testCode})
	checkErr(t, err, platform.KindInvalidCode, "40029")
	if !strings.Contains(err.Error(), "invalid code [redacted]") {
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
		"empty":                {200, ""},
		"whitespace":           {200, " \n"},
		"html error page":      {200, "<html><body>502 Bad Gateway</body></html>"},
		"truncated json":       {200, `{"openid":"o1","session_k`},
		"5xx plain":            {503, "service unavailable"},
		"errcode not a number": {200, `{"errcode":"abc","errmsg":"x"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, _ := New(Config{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: srv.URL})
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

// A refused connection never reached QQ: one retry, and no error shows
// the URL, whose query holds the secret and the code.
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
	c, _ := New(Config{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: addr, HTTP: hc})
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
		for _, s := range []string{testSecret, testCode, "secret=", "js_code"} {
			if strings.Contains(text, s) {
				t.Fatalf("%q in error: %s", s, text)
			}
		}
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []Config{
		{Secret: secret.New(testSecret)},
		{AppID: testAppID},
		{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: "ftp://x"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		} else if strings.Contains(err.Error(), testSecret) {
			t.Errorf("secret in %v", err)
		}
	}
	c, err := New(Config{AppID: testAppID, Secret: secret.New(testSecret)})
	if err != nil || c.base != DefaultEndpoint || c.Flavor() != platform.FlavorQQ || c.Flavor().Family() != platform.FamilyQQ {
		t.Fatalf("%+v %v", c, err)
	}
}
