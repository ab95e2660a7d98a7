package baidu

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

const (
	bdAppToken  = "24.6c5e1ff107f0e8bcef8c46d3424a0e78.2592000.1485516651.282335-8574074"
	bdAuthToken = "45.authorizer-token-value-9e2"
	bdOpenID    = "l214zFqNrEuIEnp6m7Y01sw8yj"
)

// unionIDCases run against both lookups; want is the unionid, or "" for an
// error of wantKind and wantCode.
var unionIDCases = []struct {
	file     string
	status   int
	want     string
	wantKind platform.Kind
	wantCode string
}{
	{"unionid_ok.json", 200, "St6PVMkgMDeh92Uq2EWfx6H", 0, ""},
	{"tp_unionid_ok.json", 200, "Srn8jbRVFTFMRdV2KTJfmSE", 0, ""},
	{"gateway_110.json", 200, "", platform.KindTokenInvalid, "110"},
	{"gateway_111.json", 200, "", platform.KindTokenInvalid, "111"},
	{"gateway_111.json", 401, "", platform.KindTokenInvalid, "111"},
	{"gateway_18.json", 200, "", platform.KindRateLimited, "18"},
	{"unionid_errno_1.json", 200, "", platform.KindUnknown, "1"},
	{"tp_unionid_50032.json", 200, "", platform.KindBadCredentials, "50032"},
	{"tp_unionid_40001.json", 200, "", platform.KindBadCredentials, "40001"},
	{"session_invalid_client.json", 400, "", platform.KindBadCredentials, "invalid_client"},
	{"unionid_empty.json", 200, "", platform.KindUnknown, ""},
	{"unionid_no_data.json", 200, "", platform.KindUnknown, ""},
	{"session_ok.json", 200, "", platform.KindUnknown, ""},
	{"unionid_ok.json", 500, "", platform.KindUnavailable, ""},
}

func checkUnionID(t *testing.T, got string, err error, want string, kind platform.Kind, code string, secrets ...string) {
	t.Helper()
	if want != "" {
		if err != nil || got != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
		return
	}
	if got != "" {
		t.Fatalf("unionid %q with an error", got)
	}
	check(t, nil, err, kind, code, 500) // kind, code and the app secret
	text := fmt.Sprintf("%v | %+v | %#v", err, err, err)
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("%q leaks into the error: %s", s, text)
		}
	}
}

func TestGoldenUnionID(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		for _, tc := range unionIDCases {
			t.Run(fmt.Sprintf("legacy=%v/%s/%d", legacy, tc.file, tc.status), func(t *testing.T) {
				srv, s := canned(t, tc.status, tc.file)
				c, err := New(Config{AppKey: "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7", AppSecret: secret.New(testSecret),
					Legacy: legacy, Endpoint: srv.URL})
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.UnionID(context.Background(), secret.New(bdAppToken), bdOpenID)
				if s.method != http.MethodPost || s.path != PathUnionID || s.ctype != "application/x-www-form-urlencoded" ||
					s.query.Encode() != "access_token="+bdAppToken || s.rawBody != "openid="+bdOpenID {
					t.Fatalf("sent %s %s?%v (%s) %q", s.method, s.path, s.query, s.ctype, s.rawBody)
				}
				checkUnionID(t, got, err, tc.want, tc.wantKind, tc.wantCode, bdAppToken)
			})
		}
	}
}

func TestGoldenTPUnionID(t *testing.T) {
	for _, tc := range unionIDCases {
		t.Run(fmt.Sprintf("%s/%d", tc.file, tc.status), func(t *testing.T) {
			srv, s := canned(t, tc.status, tc.file)
			src := &countingSource{tok: "45.exchange-token"}
			c, err := NewTP(TPConfig{AppKey: "k", AuthorizerToken: src, Endpoint: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.UnionID(context.Background(), secret.New(bdAuthToken), bdOpenID)
			if s.method != http.MethodGet || s.path != PathTPUnionID || s.rawBody != "" ||
				s.query.Get("access_token") != bdAuthToken || s.query.Get("open_id") != bdOpenID || len(s.query) != 2 {
				t.Fatalf("sent %s %s?%v %q", s.method, s.path, s.query, s.rawBody)
			}
			checkUnionID(t, got, err, tc.want, tc.wantKind, tc.wantCode, bdAuthToken)
			// The token is the caller's: the source is neither used nor told.
			if src.invalidated != 0 {
				t.Fatal("token source invalidated")
			}
		})
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Without an Endpoint both lookups go to the openapi host, even for a
// client whose code exchange uses spapi.
func TestUnionIDHost(t *testing.T) {
	var hosts []string
	hc := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		hosts = append(hosts, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path)
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{"errno":0,"data":{"unionid":"u"}}`)), Request: r}, nil
	})}
	c, _ := New(Config{AppKey: "k", AppSecret: secret.New("s"), HTTP: hc})
	tp, _ := NewTP(TPConfig{AuthorizerToken: platform.StaticToken(secret.New("t")), HTTP: hc})
	if _, err := c.UnionID(context.Background(), secret.New("t"), "o"); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.UnionID(context.Background(), secret.New("t"), "o"); err != nil {
		t.Fatal(err)
	}
	want := []string{DefaultOpenAPIEndpoint + PathUnionID, DefaultOpenAPIEndpoint + PathTPUnionID}
	if fmt.Sprint(hosts) != fmt.Sprint(want) {
		t.Fatalf("called %v, want %v", hosts, want)
	}
}

func TestUnionIDUnusableAnswers(t *testing.T) {
	for name, tc := range map[string]struct {
		status int
		body   string
	}{
		"empty":      {200, ""},
		"whitespace": {200, "\r\n"},
		"html":       {502, "<html>Bad Gateway</html>"},
		"truncated":  {200, `{"errno":0,"data":{"unionid":"St6PV`},
		"errno text": {200, `{"errno":"x","data":{"unionid":"u"}}`},
		"5xx plain":  {503, "busy"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, _ := New(Config{AppKey: "k", AppSecret: secret.New(testSecret), Endpoint: srv.URL})
			tp, _ := NewTP(TPConfig{AuthorizerToken: platform.StaticToken(secret.New("t")), Endpoint: srv.URL})
			for _, lookup := range []func(context.Context, secret.String, string) (string, error){c.UnionID, tp.UnionID} {
				id, err := lookup(context.Background(), secret.New(bdAppToken), bdOpenID)
				if platform.KindOf(err) != platform.KindUnavailable || id != "" {
					t.Fatalf("got %q, %v", id, err)
				}
			}
		})
	}
}

// Baidu's messages may echo the token; it never reaches an error.
func TestUnionIDErrorsCarryNoToken(t *testing.T) {
	for _, body := range []string{
		`{"error_code":110,"error_msg":"Access token invalid: TOKEN"}`,
		`{"errno":1,"errmsg":"bad token TOKEN","msg":"TOKEN"}`,
		`{"error":"invalid_request TOKEN","error_description":"TOKEN"}`,
	} {
		for _, tok := range []string{bdAppToken, bdAuthToken} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, strings.ReplaceAll(body, "TOKEN", tok))
			}))
			c, _ := New(Config{AppKey: "k", AppSecret: secret.New(testSecret), Endpoint: srv.URL})
			tp, _ := NewTP(TPConfig{AuthorizerToken: platform.StaticToken(secret.New("t")), Endpoint: srv.URL})
			for _, lookup := range []func(context.Context, secret.String, string) (string, error){c.UnionID, tp.UnionID} {
				_, err := lookup(context.Background(), secret.New(tok), bdOpenID)
				if err == nil || strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), tok) {
					t.Fatalf("token in error, or no error: %v", err)
				}
			}
			srv.Close()
		}
	}
}

func TestUnionIDBadArguments(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c, _ := New(Config{AppKey: "k", AppSecret: secret.New(testSecret), Endpoint: srv.URL})
	tp, _ := NewTP(TPConfig{AuthorizerToken: platform.StaticToken(secret.New("t")), Endpoint: srv.URL})
	for _, lookup := range []func(context.Context, secret.String, string) (string, error){c.UnionID, tp.UnionID} {
		for _, args := range []struct {
			tok    secret.String
			openID string
		}{{secret.String{}, bdOpenID}, {secret.New(bdAppToken), ""}, {secret.New(bdAppToken), strings.Repeat("o", 600)}} {
			_, err := lookup(context.Background(), args.tok, args.openID)
			if platform.KindOf(err) != platform.KindBadCredentials {
				t.Fatalf("got %v", err)
			}
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("%d calls", calls.Load())
	}
}

// The lookups only read: a refused connection is tried once more, and the
// error shows no URL (its query holds the token).
func TestUnionIDDialRetry(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	var dials atomic.Int32
	hc := platform.NewHTTPClient(platform.HTTPConfig{})
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, a)
	}
	c, _ := New(Config{AppKey: "k", AppSecret: secret.New(testSecret), Endpoint: base, HTTP: hc})
	tp, _ := NewTP(TPConfig{AuthorizerToken: platform.StaticToken(secret.New("t")), Endpoint: base, HTTP: hc})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, lookup := range []func(context.Context, secret.String, string) (string, error){c.UnionID, tp.UnionID} {
		dials.Store(0)
		_, err := lookup(ctx, secret.New(bdAppToken), bdOpenID)
		if platform.KindOf(err) != platform.KindUnavailable || dials.Load() != 2 {
			t.Fatalf("%d dials, %v", dials.Load(), err)
		}
		if text := fmt.Sprintf("%v %+v", err, err); strings.Contains(text, bdAppToken) || strings.Contains(text, "access_token") {
			t.Fatalf("URL in error: %s", text)
		}
	}
}
