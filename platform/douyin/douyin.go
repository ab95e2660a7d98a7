// Package douyin is the Douyin (ByteDance) mini-app host: the tt.login code
// exchange (api/apps/v2/jscode2session), the app's access token
// (api/apps/v2/token), and phone numbers from the getPhoneNumber button's
// code (api/apps/v1/get_phonenumber_info), which Douyin encrypts with the
// app's own RSA key (docs/platforms/douyin.md).
//
// Douyin answers errors with HTTP 200 and a JSON envelope {"err_no",
// "err_tips" or "err_msg", "log_id", "data"}; only err_no is ever compared.
package douyin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Douyin's API hosts: the mini-app APIs, and the open platform's, where the
// phone-number API lives.
const (
	DefaultEndpoint     = "https://developer.toutiao.com"
	DefaultOpenEndpoint = "https://open.douyin.com"
)

// Paths of the APIs this package calls.
const (
	PathCode2Session = "/api/apps/v2/jscode2session"
	PathToken        = "/api/apps/v2/token"
	PathPhoneNumber  = "/api/apps/v1/get_phonenumber_info/"
)

// SessionKeyLen is the length of a decoded Douyin session key (AES-128).
const SessionKeyLen = 16

// host names Douyin in errors.
const host = string(platform.FamilyDouyin)

// Douyin's err_no values this package tells apart
// (docs/platforms/douyin.md, "Error codes").
const (
	errBusy          = -1
	errParams        = 40014 // a required parameter is empty
	errBadAppID      = 40015
	errBadSecret     = 40017
	errBadCode       = 40018 // invalid, used or expired: Douyin does not tell them apart
	errBadAnonCode   = 40019
	errBadGrantType  = 40020
	errTokenInvalid  = 28001003
	errTokenExpired  = 28001008
	errPhoneCodeGone = 28005187 // the phone code expired
)

// Config configures a Client for one mini app.
type Config struct {
	AppID  string
	Secret secret.String
	// Endpoint is the base URL of every Douyin host; "" means the real
	// ones (DefaultEndpoint, and DefaultOpenEndpoint for phone numbers).
	// Point it at the emulator in development and tests.
	Endpoint string
	// HTTP is the client to use; nil means platform.NewHTTPClient with
	// defaults. Share one per platform.
	HTTP *http.Client
	// PrivateKey is the app's own RSA key, whose public half is set in
	// Douyin's console; PhoneNumber needs it, nothing else does.
	PrivateKey *rsa.PrivateKey
}

// Client talks to Douyin for one mini app. It is safe for concurrent use.
type Client struct {
	appID      string
	secret     secret.String
	base, open string
	key        *rsa.PrivateKey
	caller     *hostcall.Caller
}

var _ platform.Client = (*Client)(nil)

// New returns a Client, or an error naming what is missing.
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" {
		return nil, errors.New("douyin: appid is required")
	}
	if cfg.Secret.IsZero() {
		return nil, errors.New("douyin: secret is required")
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("douyin: %w", err)
	}
	open := base
	if cfg.Endpoint == "" {
		open = DefaultOpenEndpoint
	}
	if cfg.PrivateKey != nil {
		if err := cfg.PrivateKey.Validate(); err != nil {
			return nil, fmt.Errorf("douyin: private key: %w", err)
		}
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = platform.NewHTTPClient(platform.HTTPConfig{})
	}
	return &Client{appID: cfg.AppID, secret: cfg.Secret, base: base, open: open, key: cfg.PrivateKey,
		caller: &hostcall.Caller{Host: host, HTTP: hc}}, nil
}

// Flavor implements platform.Client.
func (c *Client) Flavor() platform.Flavor { return platform.FlavorDouyin }

// Exchange implements platform.Client. It sends the codes given (a login
// code, an anonymous code, or both) and needs at least one. A login code
// gives OpenID (and UnionID, when Douyin has one); an anonymous code gives
// AnonymousOpenID; either comes with the session key. A bad code and a bad
// anonymous code are both KindInvalidCode, whether unknown, used or
// expired: Douyin answers all three alike.
func (c *Client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := checkCodes(req); err != nil {
		return nil, err
	}
	body, err := json.Marshal(code2SessionRequest{AppID: c.appID, Secret: c.secret.Reveal(),
		Code: req.Code, AnonymousCode: req.AnonymousCode})
	if err != nil {
		return nil, buildError(PathCode2Session)
	}
	var out *platform.Login
	err = c.caller.Once(ctx, func(ctx context.Context) error {
		resp, err := c.post(ctx, c.base, PathCode2Session, body, secret.String{})
		if err != nil {
			return err
		}
		out, err = parseCode2Session(resp, req, c.secret.Reveal())
		return err
	})
	return out, err
}

// checkCodes refuses, before any call, a request with no code or with one
// too long to be real.
func checkCodes(req platform.ExchangeRequest) error {
	if req.Code == "" && req.AnonymousCode == "" {
		return hostcall.CheckCode(host, PathCode2Session, "")
	}
	for _, code := range [...]string{req.Code, req.AnonymousCode} {
		if len(code) > platform.MaxCodeLen {
			return hostcall.CheckCode(host, PathCode2Session, code)
		}
	}
	return nil
}

// code2SessionRequest is jscode2session's body: only the codes given are
// sent.
type code2SessionRequest struct {
	AppID         string `json:"appid"`
	Secret        string `json:"secret"`
	Code          string `json:"code,omitempty"`
	AnonymousCode string `json:"anonymous_code,omitempty"`
}

// envelope is what every Douyin answer has. data is kept raw: its shape
// differs between success and error (an object, "", or nothing).
type envelope struct {
	ErrNo   wire.Int        `json:"err_no"`
	ErrTips string          `json:"err_tips"`
	ErrMsg  string          `json:"err_msg"`
	LogID   string          `json:"log_id"`
	Data    json.RawMessage `json:"data"`
}

// message is Douyin's text for logs: err_tips on the mini-app APIs,
// err_msg on the open platform's, with the log id Douyin's support asks
// for.
func (e *envelope) message(scrub ...string) string {
	msg := cmp.Or(e.ErrTips, e.ErrMsg)
	if e.LogID != "" {
		msg += " (log_id " + e.LogID + ")"
	}
	return hostcall.Scrub(msg, scrub...)
}

type code2SessionData struct {
	SessionKey      string `json:"session_key"`
	OpenID          string `json:"openid"`
	AnonymousOpenID string `json:"anonymous_openid"`
	UnionID         string `json:"unionid"`
}

// parseCode2Session reads an answer of jscode2session to req. A login code
// must bring an openid; an anonymous code alone must bring an
// anonymous_openid; either needs a session key that is base64 of 16 bytes.
// The codes and the scrub values (the secret) are removed from Douyin's
// message.
func parseCode2Session(resp *hostcall.Response, req platform.ExchangeRequest, scrub ...string) (*platform.Login, error) {
	env, err := decodeEnvelope(PathCode2Session, resp)
	if err != nil {
		return nil, err
	}
	if env.ErrNo != 0 {
		return nil, apiError(PathCode2Session, resp.Status, env, append(scrub, req.Code, req.AnonymousCode)...)
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError(host, PathCode2Session, resp)
	}
	var d code2SessionData
	if err := decodeData(PathCode2Session, resp.Status, env.Data, &d); err != nil {
		return nil, err
	}
	id := d.OpenID
	if req.Code == "" {
		id = d.AnonymousOpenID
	}
	if err := hostcall.CheckLogin(host, PathCode2Session, resp.Status, id, d.SessionKey, SessionKeyLen); err != nil {
		return nil, err
	}
	return &platform.Login{OpenID: d.OpenID, UnionID: d.UnionID, AnonymousOpenID: d.AnonymousOpenID,
		SessionKey: secret.New(d.SessionKey)}, nil
}

// post sends body as JSON to base+path, with the access-token header when
// tok is set.
func (c *Client) post(ctx context.Context, base, path string, body []byte, tok secret.String) (*hostcall.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, buildError(path)
	}
	req.Header.Set("Content-Type", "application/json")
	if !tok.IsZero() {
		req.Header.Set("access-token", tok.Reveal())
	}
	return c.caller.Send(ctx, req)
}

// decodeEnvelope reads an answer's envelope; a body that is not a JSON
// object is KindUnavailable.
func decodeEnvelope(path string, resp *hostcall.Response) (*envelope, error) {
	var env envelope
	if err := hostcall.DecodeJSON(host, path, resp, &env); err != nil {
		return nil, err
	}
	return &env, nil
}

// decodeData reads a success answer's data object. One that is missing or
// of another shape is KindUnknown: Douyin answered, but not what a success
// carries.
func decodeData(path string, status int, raw json.RawMessage, v any) error {
	if len(raw) == 0 || json.Unmarshal(raw, v) != nil {
		return &platform.Error{Host: host, Endpoint: path, Kind: platform.KindUnknown, Status: status,
			Err: errors.New("answer without a data object")}
	}
	return nil
}

// apiError builds the error for a Douyin err_no, the scrub values removed
// from its message.
func apiError(path string, status int, env *envelope, scrub ...string) *platform.Error {
	return &platform.Error{Host: host, Endpoint: path, Kind: classify(path, int64(env.ErrNo)),
		Code: strconv.FormatInt(int64(env.ErrNo), 10), Message: env.message(scrub...), Status: status}
}

// classify maps a Douyin err_no on path to its kind
// (docs/platforms/douyin.md, "Error codes"). Douyin documents "any other
// value: a parameter is empty" for the mini-app APIs, but every parameter
// is checked before a call, so a value not listed here is taken for one
// Douyin added since: KindUnknown.
func classify(path string, errNo int64) platform.Kind {
	switch errNo {
	case errBusy:
		return platform.KindBusy
	case errBadCode, errBadAnonCode, errPhoneCodeGone:
		return platform.KindInvalidCode
	case errBadAppID, errBadSecret, errParams, errBadGrantType:
		return platform.KindBadCredentials
	case errTokenInvalid, errTokenExpired:
		if path == PathPhoneNumber {
			return platform.KindTokenInvalid
		}
	}
	return platform.KindUnknown
}

func buildError(path string) *platform.Error {
	return &platform.Error{Host: host, Endpoint: path, Kind: platform.KindUnknown, Err: errors.New("building request")}
}
