package douyin

import (
	"context"
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

func TestGoldenCode2Session(t *testing.T) {
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
	}{
		{"code2session_ok.json", 200, success, ""},
		{"code2session_ok_no_log_id.json", 200, success, ""},
		{"code2session_40018.json", 200, platform.KindInvalidCode, "40018"},
		{"code2session_40018_empty_data.json", 200, platform.KindInvalidCode, "40018"},
		{"code2session_40019.json", 200, platform.KindInvalidCode, "40019"},
		{"code2session_40015.json", 200, platform.KindBadCredentials, "40015"},
		{"code2session_40017.json", 200, platform.KindBadCredentials, "40017"},
		{"code2session_40014.json", 200, platform.KindBadCredentials, "40014"},
		{"code2session_-1.json", 200, platform.KindBusy, "-1"},
		{"code2session_unknown.json", 200, platform.KindUnknown, "41234"},
		{"code2session_no_session_key.json", 200, platform.KindUnknown, ""},
		// A login code must bring an openid.
		{"code2session_anonymous.json", 200, platform.KindUnknown, ""},
		// An err_no wins over the status; a success body with a 5xx does not.
		{"code2session_40018.json", 500, platform.KindInvalidCode, "40018"},
		{"code2session_ok.json", 502, platform.KindUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := serveFile(t, tc.status, tc.file)
			c := newClient(t, srv.URL, nil)
			login, err := c.Exchange(ctx(), platform.ExchangeRequest{Code: "AbCdEf0123456789"})
			method, path, ctype, _, body := s.get()
			if method != http.MethodPost || path != PathCode2Session || ctype != "application/json" {
				t.Fatalf("sent %s %s %s", method, path, ctype)
			}
			if body["appid"] != testAppID || body["secret"] != testSecret || body["code"] != "AbCdEf0123456789" {
				t.Fatalf("body %v", body)
			}
			if _, ok := body["anonymous_code"]; ok || len(body) != 3 {
				t.Fatalf("body %v: only the codes given are sent", body)
			}
			testutil.NoLeak(t, err, testSecret, "AbCdEf0123456789")
			if tc.wantKind == success {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if login.OpenID != "_0009LwRIl3LEIeGjQz2G2_8i2D74fYIVVi-" || login.SessionKey.Reveal() != "jsW5Ko6bDi+UeE8df6DIfw==" ||
					login.AnonymousOpenID != "" {
					t.Fatalf("login %+v", login)
				}
				if strings.Contains(tc.file, "no_log_id") != (login.UnionID == "") {
					t.Fatalf("unionid %q", login.UnionID)
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

// Anonymous logins: an anonymous code alone gives an anonymous_openid and a
// session key; with a login code, both ids.
func TestGoldenAnonymous(t *testing.T) {
	t.Run("anonymous code alone", func(t *testing.T) {
		srv, s := serveFile(t, 200, "code2session_anonymous.json")
		login, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{AnonymousCode: "anon-code-1"})
		if err != nil {
			t.Fatal(err)
		}
		if login.OpenID != "" || login.AnonymousOpenID != "_000pVqE7wY3kXb9yq2cJ0mQ4GZk1Ts7fHn-" || login.SessionKey.IsZero() || login.UnionID != "" {
			t.Fatalf("login %+v", login)
		}
		_, _, _, _, body := s.get()
		if _, ok := body["code"]; ok || body["anonymous_code"] != "anon-code-1" {
			t.Fatalf("body %v", body)
		}
	})
	t.Run("both codes", func(t *testing.T) {
		srv, s := serveFile(t, 200, "code2session_both.json")
		login, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{Code: "c1", AnonymousCode: "a1"})
		if err != nil {
			t.Fatal(err)
		}
		if login.OpenID == "" || login.AnonymousOpenID == "" || login.UnionID == "" {
			t.Fatalf("login %+v", login)
		}
		if _, _, _, _, body := s.get(); body["code"] != "c1" || body["anonymous_code"] != "a1" {
			t.Fatalf("body %v", body)
		}
	})
	t.Run("anonymous code alone, answer with an openid too", func(t *testing.T) {
		srv, _ := serveFile(t, 200, "code2session_both.json")
		login, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{AnonymousCode: "a1"})
		if err != nil || login.OpenID == "" || login.AnonymousOpenID == "" {
			t.Fatalf("%+v %v", login, err)
		}
	})
	t.Run("anonymous code alone, answer without anonymous_openid", func(t *testing.T) {
		srv, _ := serveFile(t, 200, "code2session_ok.json")
		_, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{AnonymousCode: "a1"})
		if k, _ := kindCode(t, err); k != platform.KindUnknown {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("40019 scrubs both codes", func(t *testing.T) {
		srv, _ := serve(t, 200, []byte(`{"err_no":40019,"err_tips":"bad anonymous_code a1-secretive c1-secretive","log_id":"x"}`))
		_, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{Code: "c1-secretive", AnonymousCode: "a1-secretive"})
		if k, code := kindCode(t, err); k != platform.KindInvalidCode || code != "40019" {
			t.Fatalf("got %v", err)
		}
		testutil.NoLeak(t, err, "c1-secretive", "a1-secretive")
		if !strings.Contains(err.Error(), "log_id x") {
			t.Fatalf("the log id is kept for support: %v", err)
		}
	})
}

// A request without a code or with an oversized one never leaves.
func TestExchangeRefusedBeforeAnyCall(t *testing.T) {
	srv, s := serveFile(t, 200, "code2session_ok.json")
	c := newClient(t, srv.URL, nil)
	long := strings.Repeat("x", platform.MaxCodeLen+1)
	for _, req := range []platform.ExchangeRequest{{}, {Code: long}, {AnonymousCode: long}, {Code: "ok", AnonymousCode: long}} {
		_, err := c.Exchange(ctx(), req)
		if k, _ := kindCode(t, err); k != platform.KindInvalidCode {
			t.Fatalf("%+v: got %v", req, err)
		}
	}
	if n := s.calls.Load(); n != 0 {
		t.Fatalf("%d calls", n)
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
		{"token_40017.json", 200, platform.KindBadCredentials, "40017", 1},
		{"token_40015.json", 200, platform.KindBadCredentials, "40015", 1},
		{"token_40020.json", 200, platform.KindBadCredentials, "40020", 1},
		{"token_-1.json", 200, platform.KindBusy, "-1", 2},
		{"token_empty_token.json", 200, platform.KindUnknown, "", 1},
		{"token_no_expires_in.json", 200, platform.KindUnknown, "", 1},
		{"token_40017.json", 500, platform.KindBadCredentials, "40017", 1},
		{"token_ok.json", 503, platform.KindUnavailable, "", 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := serveFile(t, tc.status, tc.file)
			tok, life, err := newClient(t, srv.URL, nil).FetchAccessToken(ctx())
			method, path, ctype, _, body := s.get()
			if method != http.MethodPost || path != PathToken || ctype != "application/json" || body["appid"] != testAppID ||
				body["secret"] != testSecret || body["grant_type"] != "client_credential" || len(body) != 3 {
				t.Fatalf("sent %s %s %s %v", method, path, ctype, body)
			}
			if n := s.calls.Load(); n != tc.calls {
				t.Fatalf("%d calls, want %d", n, tc.calls)
			}
			testutil.NoLeak(t, err, testSecret)
			if tc.wantKind == success {
				if err != nil || tok.Reveal() != testToken || life != 7200*time.Second {
					t.Fatalf("got %v for %v: %v", tok, life, err)
				}
				return
			}
			if kind, code := kindCode(t, err); kind != tc.wantKind || code != tc.wantCode {
				t.Fatalf("got %v %q, want %v %q (%v)", kind, code, tc.wantKind, tc.wantCode, err)
			}
			if !tok.IsZero() || life != 0 {
				t.Fatal("a token came with an error")
			}
		})
	}
}

// Bodies that are no answer at all: every one is KindUnavailable, never a
// panic, never a success.
func TestUnusableAnswers(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
	}{
		"whitespace":            {200, " \n"},
		"html error page":       {200, "<html><body>502 Bad Gateway</body></html>"},
		"truncated json":        {200, `{"err_no":0,"data":{"openid":"o1","session_k`},
		"5xx plain":             {503, "service unavailable"},
		"err_no not a number":   {200, `{"err_no":"abc","err_tips":"x"}`},
		"array":                 {200, `[]`},
		"err_tips not a string": {200, `{"err_no":40018,"err_tips":1}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, _ := serve(t, tc.status, []byte(tc.body))
			_, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{Code: "c1"})
			if k := platform.KindOf(err); k != platform.KindUnavailable {
				t.Fatalf("kind %v, want unavailable (%v)", k, err)
			}
		})
	}
}

// A connection that is refused never reached Douyin: one retry, and
// neither attempt's error mentions the body (secret and code).
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
		return dial(ctx, network, a)
	}
	c, err := New(Config{AppID: testAppID, Secret: secret.New(testSecret), Endpoint: addr, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	cx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Exchange(cx, platform.ExchangeRequest{Code: "code-value-123"})
	if platform.KindOf(err) != platform.KindUnavailable || dials != 2 {
		t.Fatalf("got %v after %d dials", err, dials)
	}
	testutil.NoLeak(t, err, testSecret, "code-value-123")
}

// The code sent once reached Douyin: a reset after sending is not retried.
func TestNoRetryOnceSent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	_, err := newClient(t, srv.URL, nil).Exchange(ctx(), platform.ExchangeRequest{Code: "c1"})
	if platform.KindOf(err) != platform.KindUnavailable || calls.Load() != 1 {
		t.Fatalf("got %v after %d calls", err, calls.Load())
	}
}

// Without Endpoint the mini-app APIs go to developer.toutiao.com and the
// phone API to open.douyin.com; with it, everything goes to it.
func TestEndpoints(t *testing.T) {
	c := newClient(t, "", nil)
	if c.base != DefaultEndpoint || c.open != DefaultOpenEndpoint {
		t.Fatalf("base %q open %q", c.base, c.open)
	}
	c = newClient(t, "http://127.0.0.1:9300/", nil)
	if c.base != "http://127.0.0.1:9300" || c.open != c.base {
		t.Fatalf("base %q open %q", c.base, c.open)
	}
	for _, cfg := range []Config{{Secret: secret.New("s")}, {AppID: "tt1"}, {AppID: "tt1", Secret: secret.New("s"), Endpoint: "ftp://x"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if c.Flavor() != platform.FlavorDouyin || c.Flavor().Family() != platform.FamilyDouyin {
		t.Fatalf("flavor %q", c.Flavor())
	}
}
