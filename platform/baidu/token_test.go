package baidu

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

func TestGoldenAppToken(t *testing.T) {
	const ok platform.Kind = -1
	cases := []struct {
		file     string
		status   int
		wantKind platform.Kind
		wantCode string
	}{
		{"token_ok.json", 200, ok, ""},
		{"token_invalid_client.json", 400, platform.KindBadCredentials, "invalid_client"},
		{"token_invalid_client.json", 401, platform.KindBadCredentials, "invalid_client"},
		{"token_unsupported_grant_type.json", 400, platform.KindBadCredentials, "unsupported_grant_type"},
		{"gateway_110.json", 200, platform.KindTokenInvalid, "110"},
		{"token_zero_expires_in.json", 200, platform.KindUnknown, ""},
		{"session_ok.json", 200, platform.KindUnknown, ""}, // no access_token
		{"token_ok.json", 503, platform.KindUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := canned(t, tc.status, tc.file)
			// Legacy or not, the token lives on the openapi host.
			c, err := New(Config{AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", AppSecret: secret.New(testSecret),
				Legacy: tc.status == 401, Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			tok, life, err := c.FetchAccessToken(context.Background())
			if s.method != "POST" || s.path != PathToken || s.ctype != "application/x-www-form-urlencoded" || len(s.query) != 0 {
				t.Fatalf("sent %s %s?%v (%s)", s.method, s.path, s.query, s.ctype)
			}
			want := url.Values{"grant_type": {"client_credentials"}, "client_id": {"y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"},
				"client_secret": {testSecret}, "scope": {"smartapp_snsapi_base"}}
			if s.form.Encode() != want.Encode() {
				t.Fatalf("form %q, want %q", s.rawBody, want.Encode())
			}
			if tc.wantKind == ok {
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				if !strings.HasPrefix(tok.Reveal(), "24.") || life != 30*24*time.Hour {
					t.Fatalf("got %q for %v", tok.Reveal(), life)
				}
				return
			}
			var pe *platform.Error
			if !errors.As(err, &pe) || pe.Kind != tc.wantKind || pe.Code != tc.wantCode {
				t.Fatalf("got %v, want %v %q", err, tc.wantKind, tc.wantCode)
			}
			if !tok.IsZero() || strings.Contains(fmt.Sprintf("%v %+v", err, err), testSecret) {
				t.Fatalf("token with an error, or secret in it: %v", err)
			}
		})
	}
}

// An error that echoes the secret does not carry it on.
func TestAppTokenErrorScrubbed(t *testing.T) {
	resp := &hostcall.Response{Status: 400, Body: []byte(`{"error":"invalid_client ` + testSecret + `","error_description":"bad secret ` + testSecret + `"}`)}
	_, _, err := parseAccessToken(PathToken, resp, testSecret)
	if platform.KindOf(err) != platform.KindUnknown || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("got %v", err)
	}
}
