// Package qq is the QQ mini-program host: code exchange
// (sns/jscode2session) and the app's access token (api/getToken), on
// api.q.qq.com.
//
// QQ speaks WeChat's wire format on its own host: a flat JSON answer,
// errors as {"errcode","errmsg"} with HTTP 200, errcode a number or a
// numeric string. errmsg is never compared, only errcode.
package qq

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

// DefaultEndpoint is QQ's API host.
const DefaultEndpoint = "https://api.q.qq.com"

// PathCode2Session is the login endpoint.
const PathCode2Session = "/sns/jscode2session"

// SessionKeyLen is the length of a decoded QQ session key (AES-128).
const SessionKeyLen = 16

// host names QQ in errors.
const host = "qq"

// Config configures a Client for one QQ mini program.
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

// Client exchanges codes with sns/jscode2session and fetches the app's
// access token.
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
		return nil, errors.New("qq: appid is required")
	}
	if cfg.Secret.IsZero() {
		return nil, errors.New("qq: secret is required")
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("qq: %w", err)
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = platform.NewHTTPClient(platform.HTTPConfig{})
	}
	return &Client{appID: cfg.AppID, secret: cfg.Secret, base: base, caller: &hostcall.Caller{Host: host, HTTP: hc}}, nil
}

// Flavor implements platform.Client.
func (c *Client) Flavor() platform.Flavor { return platform.FlavorQQ }

// Exchange implements platform.Client. Login.UnionID is set only when QQ
// sends one, which it does only for apps bound to a QQ Connect app.
func (c *Client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := hostcall.CheckCode(host, PathCode2Session, req.Code); err != nil {
		return nil, err
	}
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret.Reveal()},
		"js_code":    {req.Code},
		"grant_type": {"authorization_code"},
	}.Encode()
	var out *platform.Login
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathCode2Session+"?"+q, nil)
		if err != nil {
			return buildError(PathCode2Session) // its text may hold the URL, secret included
		}
		resp, err := c.caller.Send(ctx, r)
		if err != nil {
			return err
		}
		out, err = parseCode2Session(resp, req.Code, c.secret.Reveal())
		return err
	})
	return out, err
}

func buildError(path string) *platform.Error {
	return &platform.Error{Host: host, Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
}

type code2SessionResponse struct {
	OpenID     string   `json:"openid"`
	SessionKey string   `json:"session_key"`
	UnionID    string   `json:"unionid"`
	ErrCode    wire.Int `json:"errcode"`
	ErrMsg     string   `json:"errmsg"`
}

// parseCode2Session reads an answer of jscode2session. The scrub values
// (the code, the secret) are removed from QQ's message.
func parseCode2Session(resp *hostcall.Response, scrub ...string) (*platform.Login, error) {
	var r code2SessionResponse
	if err := hostcall.DecodeJSON(host, PathCode2Session, resp, &r); err != nil {
		return nil, err
	}
	if r.ErrCode != 0 {
		return nil, apiError(PathCode2Session, resp.Status, int64(r.ErrCode), hostcall.Scrub(r.ErrMsg, scrub...))
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError(host, PathCode2Session, resp)
	}
	if err := hostcall.CheckLogin(host, PathCode2Session, resp.Status, r.OpenID, r.SessionKey, SessionKeyLen); err != nil {
		return nil, err
	}
	return &platform.Login{OpenID: r.OpenID, UnionID: r.UnionID, SessionKey: secret.New(r.SessionKey)}, nil
}

func apiError(path string, status int, errcode int64, errmsg string) *platform.Error {
	return &platform.Error{
		Host: host, Endpoint: path, Kind: classify(errcode),
		Code: strconv.FormatInt(errcode, 10), Message: errmsg, Status: status,
	}
}

// classify maps a QQ errcode to its kind (docs/platforms/qq.md, "Error
// codes"). No call of this package sends an access token, so 40001 is
// always the secret.
func classify(errcode int64) platform.Kind {
	switch errcode {
	case -1:
		return platform.KindBusy
	case 40029:
		return platform.KindInvalidCode
	case 40163:
		return platform.KindCodeUsed
	case 45011:
		return platform.KindRateLimited
	case 40001, 40002, 40013, 40125, 41002, 41004, 41008:
		return platform.KindBadCredentials
	}
	return platform.KindUnknown
}
