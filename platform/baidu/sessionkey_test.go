package baidu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// A code exchange with the app's own access token: getsessionkey's answers
// in the shapes Baidu's documentation and SDKs show, every error one of
// Baidu's, and a rejected token reported to its source.
func TestGoldenGetSessionKey(t *testing.T) {
	for _, tc := range []struct {
		file     string
		status   int
		ok       bool
		wantKind platform.Kind
		wantCode string
		wantMsg  string
	}{
		{"getsessionkey_ok.json", 200, true, 0, "", ""},
		{"getsessionkey_ok_openid_msg.json", 200, true, 0, "", ""},
		// Baidu documents no errno for a refused code: an errno Classify does
		// not know is one.
		{"getsessionkey_errno.json", 200, false, platform.KindInvalidCode, "10010102", "Invalid authorization code"},
		{"getsessionkey_errno_msg.json", 200, false, platform.KindInvalidCode, "1", "param error"},
		{"gateway_110.json", 200, false, platform.KindTokenInvalid, "110", "Access token invalid or no longer valid"},
		{"gateway_110.json", 400, false, platform.KindTokenInvalid, "110", ""},
		{"gateway_111.json", 200, false, platform.KindTokenInvalid, "111", "Access token expired"},
		{"gateway_18.json", 200, false, platform.KindRateLimited, "18", ""},
		{"session_10010100.json", 200, false, platform.KindBadCredentials, "parameter is invalid/10010100", ""},
		{"getsessionkey_no_data.json", 200, false, platform.KindUnknown, "", ""},
		{"getsessionkey_empty_open_id.json", 200, false, platform.KindUnknown, "", ""},
		// spapi's flat answer is not getsessionkey's: no data, no login.
		{"session_ok.json", 200, false, platform.KindUnknown, "", ""},
		{"getsessionkey_ok.json", 500, false, platform.KindUnavailable, "", ""},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := canned(t, tc.status, tc.file)
			src := &countingSource{tok: bdAppToken}
			c, err := New(Config{AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", AppSecret: secret.New(testSecret),
				AccessToken: src, Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			const code = "a1b2+c3@host/x=y&z"
			login, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
			// Both in the query of a POST, as Baidu's SDKs send them; the
			// secret is not sent at all.
			if s.method != http.MethodPost || s.path != PathGetSessionKey || s.rawBody != "" || len(s.query) != 2 ||
				s.query.Get("access_token") != bdAppToken || s.query.Get("code") != code {
				t.Fatalf("sent %s %s?%v %q", s.method, s.path, s.query, s.rawBody)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if login.OpenID != bdOpenID || login.SessionKey.Reveal() != "981ce8b151c0599acf7ad1a673c6ff5e" || login.UnionID != "" {
					t.Fatalf("login %+v", login)
				}
				return
			}
			if login != nil {
				t.Fatalf("a login came with an error: %+v", login)
			}
			var pe *platform.Error
			if !errors.As(err, &pe) || pe.Kind != tc.wantKind || pe.Code != tc.wantCode || (tc.wantMsg != "" && pe.Message != tc.wantMsg) {
				t.Fatalf("got %v; want %v %q %q", err, tc.wantKind, tc.wantCode, tc.wantMsg)
			}
			want := 0
			if tc.wantKind == platform.KindTokenInvalid {
				want = 1
			}
			if src.invalidated != want {
				t.Fatalf("invalidated %d, want %d", src.invalidated, want)
			}
			if text := fmt.Sprintf("%v %+v %#v", err, err, err); strings.Contains(text, bdAppToken) || strings.Contains(text, testSecret) {
				t.Fatalf("a secret in the error: %s", text)
			}
		})
	}
}

// Baidu's messages may echo the token or the code; neither reaches an error.
func TestGetSessionKeyErrorsCarryNoSecrets(t *testing.T) {
	const code = "code-6f1e0b"
	for _, body := range []string{
		`{"error_code":110,"error_msg":"Access token invalid: TOKEN"}`,
		`{"errno":10010102,"errmsg":"bad code CODE for TOKEN","msg":"CODE"}`,
		`{"error":"invalid_grant TOKEN","error_description":"CODE"}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, strings.NewReplacer("TOKEN", bdAppToken, "CODE", code).Replace(body))
		}))
		c, _ := New(Config{AppKey: "k", AppSecret: secret.New(testSecret), Endpoint: srv.URL,
			AccessToken: platform.StaticToken(secret.New(bdAppToken))})
		_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: code})
		var pe *platform.Error
		if !errors.As(err, &pe) || strings.Contains(pe.Code+pe.Message, code) ||
			strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), bdAppToken) {
			t.Fatalf("a secret in the error, or no error: %v", err)
		}
		srv.Close()
	}
}

type failingSource struct{}

func (failingSource) Token(context.Context) (secret.String, error) {
	return secret.String{}, errors.New("token store down")
}

// Without a token there is no call, and the failure is the platform's
// unavailability, not the user's code.
func TestGetSessionKeyWithoutToken(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	defer srv.Close()
	c, _ := New(Config{AppKey: "k", AppSecret: secret.New(testSecret), Endpoint: srv.URL, AccessToken: failingSource{}})
	_, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "c"})
	if platform.KindOf(err) != platform.KindUnavailable || calls != 0 {
		t.Fatalf("%d calls, %v", calls, err)
	}
}

// Without an Endpoint, getsessionkey goes to the openapi host, not spapi.
func TestGetSessionKeyHost(t *testing.T) {
	var called string
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		called = r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"errno":0,"data":{"open_id":"o","session_key":"981ce8b151c0599acf7ad1a673c6ff5e"}}`)), Request: r}, nil
	})}
	c, err := New(Config{AppKey: "k", AppSecret: secret.New("s"), HTTP: hc, AccessToken: platform.StaticToken(secret.New("t"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exchange(context.Background(), platform.ExchangeRequest{Code: "c"}); err != nil {
		t.Fatal(err)
	}
	if want := DefaultOpenAPIEndpoint + PathGetSessionKey; called != want {
		t.Fatalf("called %s, want %s", called, want)
	}
	if c.Flavor() != "baidu" {
		t.Fatalf("Flavor() = %q", c.Flavor())
	}
}

// The legacy endpoint takes the secret; it cannot be combined with a token.
func TestGetSessionKeyNotLegacy(t *testing.T) {
	_, err := New(Config{AppKey: "k", AppSecret: secret.New("s"), Legacy: true, AccessToken: platform.StaticToken(secret.New("t"))})
	if err == nil {
		t.Fatal("New accepted Legacy with an AccessToken")
	}
}
