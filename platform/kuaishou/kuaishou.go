// Package kuaishou is the Kuaishou mini-program host: code exchange
// (oauth2/mp/code2session) and the app's access token
// (oauth2/access_token), on open.kuaishou.com.
//
// Kuaishou answers {"result":1,…} on success and a result other than 1
// with "error_msg" (sometimes also "error") on failure. Which result
// means what is not documented for these endpoints: docs/platforms/kuaishou.md,
// "Result codes", says what is assumed and why.
package kuaishou

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// DefaultEndpoint is Kuaishou's API host.
const DefaultEndpoint = "https://open.kuaishou.com"

// PathCode2Session is the login endpoint.
const PathCode2Session = "/oauth2/mp/code2session"

// SessionKeyLen is the length of a decoded Kuaishou session key (AES-128).
const SessionKeyLen = 16

// Result codes: 1 is success; the others are those of Kuaishou's OAuth
// family, the only ones known (docs/platforms/kuaishou.md, "Result codes").
const (
	ResultOK             = 1
	ResultBadParameter   = 100200100 // a parameter is missing or malformed
	ResultBadCredentials = 100200101 // unknown app_id, wrong app_secret
	ResultRejected       = 100200102 // the request was refused
)

// host names Kuaishou in errors.
const host = "kuaishou"

// Config configures a Client for one Kuaishou mini program.
type Config struct {
	AppID     string
	AppSecret secret.String
	// Endpoint is the API base URL; "" means DefaultEndpoint. Point it at
	// the emulator in development and tests.
	Endpoint string
	// HTTP is the client to use; nil means platform.NewHTTPClient with
	// defaults. Share one per platform.
	HTTP *http.Client
}

// Client exchanges codes with oauth2/mp/code2session and fetches the app's
// access token.
type Client struct {
	appID     string
	appSecret secret.String
	base      string
	caller    *hostcall.Caller
}

var _ platform.Client = (*Client)(nil)

// New returns a Client, or an error naming what is missing.
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" {
		return nil, errors.New("kuaishou: app_id is required")
	}
	if cfg.AppSecret.IsZero() {
		return nil, errors.New("kuaishou: app_secret is required")
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("kuaishou: %w", err)
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = platform.NewHTTPClient(platform.HTTPConfig{})
	}
	return &Client{appID: cfg.AppID, appSecret: cfg.AppSecret, base: base, caller: &hostcall.Caller{Host: host, HTTP: hc}}, nil
}

// Flavor implements platform.Client.
func (c *Client) Flavor() platform.Flavor { return platform.FlavorKuaishou }

// Exchange implements platform.Client. The app's credentials and the code
// travel in a form body, never in the URL. Kuaishou gives no unionid to
// mini programs, so Login.UnionID is always "".
func (c *Client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := hostcall.CheckCode(host, PathCode2Session, req.Code); err != nil {
		return nil, err
	}
	form := url.Values{"app_id": {c.appID}, "app_secret": {c.appSecret.Reveal()}, "js_code": {req.Code}}.Encode()
	var out *platform.Login
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		resp, err := c.post(ctx, PathCode2Session, form)
		if err != nil {
			return err
		}
		out, err = parseCode2Session(resp, req.Code, c.appSecret.Reveal())
		return err
	})
	return out, err
}

// post sends a form to path.
func (c *Client) post(ctx context.Context, path, form string) (*hostcall.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form))
	if err != nil {
		return nil, &platform.Error{Host: host, Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.caller.Send(ctx, req)
}

// envelope is what every answer carries. Result is a pointer: an answer
// without it is no answer Kuaishou documents.
type envelope struct {
	Result   *wire.Int `json:"result"`
	ErrorMsg string    `json:"error_msg"`
	Error    string    `json:"error"`
}

type code2SessionResponse struct {
	envelope
	OpenID     string `json:"open_id"`
	SessionKey string `json:"session_key"`
}

// parseCode2Session reads an answer of code2session. The scrub values (the
// code, the secret) are removed from Kuaishou's message.
func parseCode2Session(resp *hostcall.Response, scrub ...string) (*platform.Login, error) {
	var r code2SessionResponse
	if err := hostcall.DecodeJSON(host, PathCode2Session, resp, &r); err != nil {
		return nil, err
	}
	if err := r.check(PathCode2Session, resp, true, scrub); err != nil {
		return nil, err
	}
	if err := hostcall.CheckLogin(host, PathCode2Session, resp.Status, r.OpenID, r.SessionKey, SessionKeyLen); err != nil {
		return nil, err
	}
	return &platform.Login{OpenID: r.OpenID, SessionKey: secret.New(r.SessionKey)}, nil
}

// check returns nil for a success answer (result 1 with a 2xx status) and
// the error of any other. code says whether the call carried a login code,
// which decides what an unknown result means.
func (r *envelope) check(path string, resp *hostcall.Response, code bool, scrub []string) error {
	if r.Result == nil {
		if resp.Status/100 != 2 {
			return hostcall.StatusError(host, path, resp)
		}
		return &platform.Error{Host: host, Endpoint: path, Kind: platform.KindUnknown, Status: resp.Status,
			Err: errors.New("answer without result")}
	}
	res := int64(*r.Result)
	if res == ResultOK {
		if resp.Status/100 != 2 {
			return hostcall.StatusError(host, path, resp)
		}
		return nil
	}
	msg := r.ErrorMsg
	if r.Error != "" && r.Error != msg {
		msg = strings.TrimSuffix(r.Error+": "+msg, ": ")
	}
	return &platform.Error{
		Host: host, Endpoint: path, Kind: classify(res, resp.Status, code),
		Code: strconv.FormatInt(res, 10), Message: hostcall.Scrub(msg, scrub...), Status: resp.Status,
	}
}

// classify maps a result other than 1 to its kind
// (docs/platforms/kuaishou.md, "Result codes").
//
// On a call that carries a login code, a result we do not know is taken as
// a refused code: the code is the only thing that changes from one login to
// the next, so that is what an unexplained refusal most likely concerns,
// and counting it as the platform's failure would let anyone with made-up
// codes open the circuit breaker. Credentials are still caught by their
// own result and by the token fetch, which carries nothing of the user's.
// A 5xx status with an unknown result is the platform failing either way.
func classify(result int64, status int, code bool) platform.Kind {
	switch result {
	case ResultBadParameter, ResultBadCredentials:
		return platform.KindBadCredentials
	case ResultRejected:
		if code {
			return platform.KindInvalidCode
		}
		return platform.KindBadCredentials
	}
	switch {
	case status/100 == 5:
		return platform.KindUnavailable
	case code:
		return platform.KindInvalidCode
	}
	return platform.KindUnknown
}
