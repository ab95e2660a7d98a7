// Package baidu is the Baidu smart-program host: code exchange on spapi
// (oauth/jscode2sessionkey, the default), on the legacy
// nalogin/getSessionKeyByCode, with the app's own access token
// (rest/2.0/smartapp/getsessionkey), and as a third-party platform
// (rest/2.0/oauth/getsessionkeybycode); the app's access token; and the
// unionid lookups (rest/2.0/smartapp/getunionid, and unionId/get for a
// third-party platform).
//
// Baidu's errors come in several shapes (errno/error/error_description, the
// gateway's error_code/error_msg, errno/msg), sometimes with HTTP 400: the
// body is always parsed first, whatever the status.
package baidu

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

// Baidu's hosts. An Endpoint in a config stands for both.
const (
	DefaultSpapiEndpoint   = "https://spapi.baidu.com"
	DefaultOpenAPIEndpoint = "https://openapi.baidu.com"
)

// Paths of the login endpoints.
const (
	PathJSCode2SessionKey   = "/oauth/jscode2sessionkey"
	PathGetSessionKeyByCode = "/nalogin/getSessionKeyByCode"
	PathTPGetSessionKey     = "/rest/2.0/oauth/getsessionkeybycode"
)

// SessionKeyLen is the length of a decoded Baidu session key (AES-192). The
// key looks like hex but is base64.
const SessionKeyLen = 24

// Config configures a Client for one smart program.
type Config struct {
	AppKey    string // client_id
	AppSecret secret.String
	// Legacy selects nalogin/getSessionKeyByCode instead of spapi.
	Legacy bool
	// AccessToken, when set, makes Exchange use rest/2.0/smartapp/getsessionkey
	// with the app's own access token (the "24." token of FetchAccessToken)
	// instead of spapi with the secret. It is usually the token manager's
	// Source for this app, whose fetcher may be this very Client:
	// FetchAccessToken uses the secret, never AccessToken. A token Baidu
	// rejects is reported to it if it is a platform.TokenInvalidator. Not
	// with Legacy.
	AccessToken platform.TokenSource
	// Endpoint replaces both of Baidu's hosts; "" means the real ones.
	Endpoint string
	HTTP     *http.Client
}

// Client exchanges codes with spapi, the legacy endpoint or, with an
// AccessToken, getsessionkey.
type Client struct {
	appKey    string
	appSecret secret.String
	url, path string
	tokenURL  string // oauth/2.0/token, on the openapi host
	openAPI   string // the openapi host's base URL
	legacy    bool
	tokens    platform.TokenSource // nil: spapi or legacy, with the secret
	caller    *hostcall.Caller
}

var _ platform.Client = (*Client)(nil)

// New returns a Client, or an error naming what is missing.
func New(cfg Config) (*Client, error) {
	if cfg.AppKey == "" {
		return nil, errors.New("baidu: app_key is required")
	}
	if cfg.AppSecret.IsZero() {
		return nil, errors.New("baidu: app_secret is required")
	}
	if cfg.Legacy && cfg.AccessToken != nil {
		return nil, errors.New("baidu: the legacy login takes the secret, not an access token")
	}
	host, path := DefaultSpapiEndpoint, PathJSCode2SessionKey
	if cfg.Legacy {
		host, path = DefaultOpenAPIEndpoint, PathGetSessionKeyByCode
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, host)
	if err != nil {
		return nil, fmt.Errorf("baidu: %w", err)
	}
	openAPI, err := hostcall.BaseURL(cfg.Endpoint, DefaultOpenAPIEndpoint)
	if err != nil {
		return nil, fmt.Errorf("baidu: %w", err)
	}
	return &Client{appKey: cfg.AppKey, appSecret: cfg.AppSecret, url: base + path, path: path,
		tokenURL: openAPI + PathToken, openAPI: openAPI, legacy: cfg.Legacy, tokens: cfg.AccessToken,
		caller: newCaller(cfg.HTTP)}, nil
}

// Flavor implements platform.Client.
func (c *Client) Flavor() platform.Flavor {
	if c.legacy {
		return platform.FlavorBaiduLegacy
	}
	return platform.FlavorBaidu
}

// Exchange implements platform.Client. The code is sent as given, URL-encoded
// in a form body (with an AccessToken, in getsessionkey's query): a code
// containing '@' routes to an open-source host and must arrive intact.
func (c *Client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if c.tokens != nil {
		return c.exchangeByToken(ctx, req.Code)
	}
	if err := hostcall.CheckCode("baidu", c.path, req.Code); err != nil {
		return nil, err
	}
	form := url.Values{"code": {req.Code}, "client_id": {c.appKey}, "sk": {c.appSecret.Reveal()}}.Encode()
	return exchange(ctx, c.caller, c.path, sessionParser(c.path, req.Code), func(ctx context.Context) (*http.Request, error) {
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(form))
		if err == nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return r, err
	})
}

// TPConfig configures a TPClient: a third-party platform logging in users of
// one smart program that authorised it.
type TPConfig struct {
	// AppKey identifies the authorised smart program (for logs and identities;
	// Baidu finds the app from the token).
	AppKey string
	// AuthorizerToken supplies the authorised program's access token (the
	// "45." token), which the platform's owner manages.
	AuthorizerToken platform.TokenSource
	Endpoint        string
	HTTP            *http.Client
}

// TPClient exchanges codes with rest/2.0/oauth/getsessionkeybycode.
type TPClient struct {
	tokens    platform.TokenSource
	base, url string
	caller    *hostcall.Caller
}

var _ platform.Client = (*TPClient)(nil)

// NewTP returns a TPClient.
func NewTP(cfg TPConfig) (*TPClient, error) {
	if cfg.AuthorizerToken == nil {
		return nil, errors.New("baidu third-party: an authorizer token source is required")
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultOpenAPIEndpoint)
	if err != nil {
		return nil, fmt.Errorf("baidu third-party: %w", err)
	}
	return &TPClient{tokens: cfg.AuthorizerToken, base: base, url: base + PathTPGetSessionKey, caller: newCaller(cfg.HTTP)}, nil
}

// Flavor implements platform.Client.
func (c *TPClient) Flavor() platform.Flavor { return platform.FlavorBaiduTP }

// Exchange implements platform.Client. A rejected token is reported to the
// token source (if it caches); the code is not sent again.
func (c *TPClient) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := hostcall.CheckCode("baidu", PathTPGetSessionKey, req.Code); err != nil {
		return nil, err
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, &platform.Error{Host: "baidu", Endpoint: PathTPGetSessionKey,
			Kind: platform.KindUnavailable, Err: fmt.Errorf("authorizer token: %w", err)}
	}
	q := url.Values{"access_token": {tok.Reveal()}, "code": {req.Code}, "grant_type": {"authorization_code"}}.Encode()
	login, err := exchange(ctx, c.caller, PathTPGetSessionKey, sessionParser(PathTPGetSessionKey, req.Code), func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, c.url+"?"+q, nil)
	})
	if platform.KindOf(err) == platform.KindTokenInvalid {
		if inv, ok := c.tokens.(platform.TokenInvalidator); ok {
			inv.InvalidateToken(ctx, tok)
		}
	}
	return login, err
}

// envelope holds every error field Baidu uses, in any of its shapes.
type envelope struct {
	Errno            wire.Int `json:"errno"`
	Error            string   `json:"error"`
	ErrorDescription string   `json:"error_description"`
	ErrorCode        wire.Int `json:"error_code"`
	ErrorMsg         string   `json:"error_msg"`
	Msg              string   `json:"msg"`
	ErrMsg           string   `json:"errmsg"`
}

// failed reports whether the envelope carries an error.
func (e *envelope) failed() bool { return e.Errno != 0 || e.Error != "" || e.ErrorCode != 0 }

// apiError builds the error for a failed envelope.
func (e *envelope) apiError(path string, status int, scrub ...string) *platform.Error {
	pe := &platform.Error{Host: "baidu", Endpoint: path, Kind: e.classify(), Status: status}
	switch {
	case e.Error != "":
		pe.Code, pe.Message = e.Error, e.ErrorDescription
		if e.Errno != 0 {
			pe.Code += "/" + strconv.FormatInt(int64(e.Errno), 10)
		}
	case e.ErrorCode != 0:
		pe.Code, pe.Message = strconv.FormatInt(int64(e.ErrorCode), 10), e.ErrorMsg
	default:
		pe.Code, pe.Message = strconv.FormatInt(int64(e.Errno), 10), firstOf(e.Msg, e.ErrMsg, e.ErrorDescription)
	}
	// Baidu's error strings are free text too: scrub both.
	pe.Code, pe.Message = hostcall.Scrub(pe.Code, scrub...), hostcall.Scrub(pe.Message, scrub...)
	return pe
}

// classify maps Baidu's error signals to a kind
// (docs/platforms/baidu.md, "Error codes").
func (e *envelope) classify() platform.Kind {
	switch e.Error {
	case "invalid_grant":
		return platform.KindInvalidCode
	case "invalid_client", "invalid_request", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
		return platform.KindBadCredentials
	}
	switch e.ErrorCode {
	case 110, 111:
		return platform.KindTokenInvalid
	case 17, 18:
		// Baidu open API's daily and per-second request limits.
		return platform.KindRateLimited
	}
	switch e.Errno {
	case 10010100, // spapi: parameter is invalid
		40001, // third-party APIs: 参数错误, parameter error
		50032: // third-party APIs: 没有授权关系, the app has not authorised the platform
		return platform.KindBadCredentials
	}
	return platform.KindUnknown
}

type sessionResponse struct {
	envelope
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
}

// exchange sends a code exchange, retried only as hostcall.Caller.Once
// allows, and reads the answer with parse.
func exchange(ctx context.Context, caller *hostcall.Caller, path string, parse func(*hostcall.Response) (*platform.Login, error),
	newReq func(context.Context) (*http.Request, error)) (*platform.Login, error) {
	var out *platform.Login
	err := caller.Once(ctx, func(ctx context.Context) error {
		req, err := newReq(ctx)
		if err != nil {
			// Its text may hold the URL, and the URL the token.
			return &platform.Error{Host: "baidu", Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
		}
		resp, err := caller.Send(ctx, req)
		if err != nil {
			return err
		}
		out, err = parse(resp)
		return err
	})
	return out, err
}

// sessionParser reads the flat answer of spapi, the legacy endpoint and the
// third-party exchange.
func sessionParser(path, code string) func(*hostcall.Response) (*platform.Login, error) {
	return func(resp *hostcall.Response) (*platform.Login, error) { return parseSession(path, resp, code) }
}

// parseSession reads an answer of any of the three code exchanges. code is
// scrubbed from the platform's message.
func parseSession(path string, resp *hostcall.Response, code string) (*platform.Login, error) {
	var r sessionResponse
	if err := hostcall.DecodeJSON("baidu", path, resp, &r); err != nil {
		return nil, err
	}
	if r.failed() {
		return nil, r.apiError(path, resp.Status, code)
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError("baidu", path, resp)
	}
	if err := hostcall.CheckLogin("baidu", path, resp.Status, r.OpenID, r.SessionKey, SessionKeyLen); err != nil {
		return nil, err
	}
	return &platform.Login{OpenID: r.OpenID, SessionKey: secret.New(r.SessionKey)}, nil
}

func newCaller(c *http.Client) *hostcall.Caller {
	if c == nil {
		c = platform.NewHTTPClient(platform.HTTPConfig{})
	}
	return &hostcall.Caller{Host: "baidu", HTTP: c}
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
