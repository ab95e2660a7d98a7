// Package wechat is the WeChat mini-program host: code exchange directly
// (sns/jscode2session) and through a third-party platform
// (sns/component/jscode2session), the app's access token, and the calls
// made with an access token: checking and resetting a user's session key
// (wxa/checksession, wxa/resetusersessionkey) and fetching a phone number
// (wxa/business/getuserphonenumber).
//
// WeChat answers errors with HTTP 200 and a JSON body {"errcode","errmsg"},
// often as text/plain; errcode may be a number or a numeric string and errmsg
// carries request-id suffixes, so only errcode is ever compared.
package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// DefaultEndpoint is WeChat's API host.
const DefaultEndpoint = "https://api.weixin.qq.com"

// Paths of the login endpoints.
const (
	PathCode2Session          = "/sns/jscode2session"
	PathComponentCode2Session = "/sns/component/jscode2session"
)

// SessionKeyLen is the length of a decoded WeChat session key (AES-128).
const SessionKeyLen = 16

// Config configures a Client for one mini program.
type Config struct {
	AppID  string
	Secret secret.String
	// Endpoint is the API base URL; "" means DefaultEndpoint. Point it at
	// the emulator in development and tests.
	Endpoint string
	// HTTP is the client to use; nil means platform.NewHTTPClient with
	// defaults. Share one per platform.
	HTTP *http.Client
}

// Client exchanges codes with sns/jscode2session.
type Client struct {
	appID  string
	secret secret.String
	base   string
	caller *hostcall.Caller
}

var _ platform.Client = (*Client)(nil)

// New returns a Client, or an error naming what is missing.
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" {
		return nil, errors.New("wechat: appid is required")
	}
	if cfg.Secret.IsZero() {
		return nil, errors.New("wechat: secret is required")
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("wechat: %w", err)
	}
	return &Client{appID: cfg.AppID, secret: cfg.Secret, base: base, caller: newCaller(cfg.HTTP)}, nil
}

// Flavor implements platform.Client.
func (c *Client) Flavor() platform.Flavor { return platform.FlavorWeChat }

// Exchange implements platform.Client.
func (c *Client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := hostcall.CheckCode("wechat", PathCode2Session, req.Code); err != nil {
		return nil, err
	}
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret.Reveal()},
		"js_code":    {req.Code},
		"grant_type": {"authorization_code"},
	}
	return exchange(ctx, c.caller, c.base, PathCode2Session, q, req.Code, false)
}

// ComponentConfig configures a ComponentClient: a third-party platform
// logging in users of one mini program that authorised it.
type ComponentConfig struct {
	// AppID is the authorizer mini program's appid.
	AppID          string
	ComponentAppID string
	// ComponentToken supplies the platform's component_access_token, which
	// the platform's owner manages.
	ComponentToken platform.TokenSource
	Endpoint       string
	HTTP           *http.Client
}

// ComponentClient exchanges codes with sns/component/jscode2session.
type ComponentClient struct {
	appID, componentAppID string
	tokens                platform.TokenSource
	base                  string
	caller                *hostcall.Caller
}

var _ platform.Client = (*ComponentClient)(nil)

// NewComponent returns a ComponentClient.
func NewComponent(cfg ComponentConfig) (*ComponentClient, error) {
	switch {
	case cfg.AppID == "":
		return nil, errors.New("wechat component: appid is required")
	case cfg.ComponentAppID == "":
		return nil, errors.New("wechat component: component_appid is required")
	case cfg.ComponentToken == nil:
		return nil, errors.New("wechat component: a component token source is required")
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("wechat: %w", err)
	}
	return &ComponentClient{
		appID: cfg.AppID, componentAppID: cfg.ComponentAppID, tokens: cfg.ComponentToken,
		base: base, caller: newCaller(cfg.HTTP),
	}, nil
}

// Flavor implements platform.Client.
func (c *ComponentClient) Flavor() platform.Flavor { return platform.FlavorWeChatComponent }

// Exchange implements platform.Client. When WeChat rejects the component
// token, the token source is told (if it caches) and the error is returned:
// the code is not sent a second time.
func (c *ComponentClient) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := hostcall.CheckCode("wechat", PathComponentCode2Session, req.Code); err != nil {
		return nil, err
	}
	tok, err := c.tokens.Token(ctx)
	if err != nil {
		return nil, &platform.Error{Host: "wechat", Endpoint: PathComponentCode2Session,
			Kind: platform.KindUnavailable, Err: fmt.Errorf("component token: %w", err)}
	}
	q := url.Values{
		"appid":                  {c.appID},
		"js_code":                {req.Code},
		"grant_type":             {"authorization_code"},
		"component_appid":        {c.componentAppID},
		"component_access_token": {tok.Reveal()},
	}
	login, err := exchange(ctx, c.caller, c.base, PathComponentCode2Session, q, req.Code, true)
	if platform.KindOf(err) == platform.KindTokenInvalid {
		if inv, ok := c.tokens.(platform.TokenInvalidator); ok {
			inv.InvalidateToken(ctx, tok)
		}
	}
	return login, err
}

type code2SessionResponse struct {
	OpenID     string   `json:"openid"`
	SessionKey string   `json:"session_key"`
	UnionID    string   `json:"unionid"`
	ErrCode    wire.Int `json:"errcode"`
	ErrMsg     string   `json:"errmsg"`
}

func exchange(ctx context.Context, caller *hostcall.Caller, base, path string, q url.Values, code string, tokenAuth bool) (*platform.Login, error) {
	var out *platform.Login
	err := caller.Once(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
		if err != nil {
			return &platform.Error{Host: "wechat", Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
		}
		resp, err := caller.Send(ctx, req)
		if err != nil {
			return err
		}
		out, err = parseCode2Session(path, resp, code, tokenAuth)
		return err
	})
	return out, err
}

// parseCode2Session reads an answer of jscode2session or its component
// variant. code is scrubbed from the platform's message.
func parseCode2Session(path string, resp *hostcall.Response, code string, tokenAuth bool) (*platform.Login, error) {
	var r code2SessionResponse
	if err := decode(path, resp, &r); err != nil {
		return nil, err
	}
	if r.ErrCode != 0 {
		return nil, apiError(path, resp.Status, int64(r.ErrCode), hostcall.Scrub(r.ErrMsg, code), tokenAuth)
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError("wechat", path, resp)
	}
	if err := hostcall.CheckLogin("wechat", path, resp.Status, r.OpenID, r.SessionKey, SessionKeyLen); err != nil {
		return nil, err
	}
	return &platform.Login{OpenID: r.OpenID, UnionID: r.UnionID, SessionKey: secret.New(r.SessionKey)}, nil
}

func decode(path string, resp *hostcall.Response, v any) error {
	return hostcall.DecodeJSON("wechat", path, resp, v)
}

// apiError builds the error for a WeChat errcode. tokenAuth says whether the
// call was authenticated by an access token (then 40001 means the token is
// bad, not the secret).
func apiError(path string, status int, errcode int64, errmsg string, tokenAuth bool) *platform.Error {
	return &platform.Error{
		Host: "wechat", Endpoint: path, Kind: classify(errcode, tokenAuth),
		Code: strconv.FormatInt(errcode, 10), Message: errmsg, Status: status,
	}
}

// classify maps a WeChat errcode to its kind
// (docs/platforms/wechat.md, "Error codes").
func classify(errcode int64, tokenAuth bool) platform.Kind {
	switch errcode {
	case 0:
		return platform.KindUnknown
	case -1:
		return platform.KindBusy
	case 40029:
		return platform.KindInvalidCode
	case 40163:
		return platform.KindCodeUsed
	case 40226:
		return platform.KindUserBlocked
	case 45011, 45009:
		return platform.KindRateLimited
	case 40014, 42001:
		return platform.KindTokenInvalid
	case 40001:
		if tokenAuth {
			return platform.KindTokenInvalid
		}
		return platform.KindBadCredentials
	case 40002, 40013, 40125, 40164, 40243, 41001, 41002, 41004, 41008, 41021, 61003,
		89501, 89503, 89506, 89507:
		return platform.KindBadCredentials
	}
	return platform.KindUnknown
}

func newCaller(c *http.Client) *hostcall.Caller {
	if c == nil {
		c = platform.NewHTTPClient(platform.HTTPConfig{})
	}
	return &hostcall.Caller{Host: "wechat", HTTP: c}
}
