package wechat

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// Paths of the mini-program APIs called with an access token
// (docs/platforms/wechat.md, "Checking a session key",
// "Resetting a session key", "Phone numbers").
const (
	PathCheckSession    = "/wxa/checksession"
	PathResetSessionKey = "/wxa/resetusersessionkey"
	PathPhoneNumber     = "/wxa/business/getuserphonenumber"
)

// SigMethod is the only signature method checksession and
// resetusersessionkey accept (docs/platforms/wechat.md, "Session-key signature").
const SigMethod = "hmac_sha256"

// ErrCodeInvalidSignature is WeChat's errcode for a session-key signature
// that does not match the user's current session key: the key is stale,
// replaced by a newer wx.login, or was never WeChat's
// (docs/platforms/wechat.md, "Checking a session key", "Error codes").
const ErrCodeInvalidSignature = 87009

// ErrCodeInvalidOpenID is WeChat's global errcode for an openid that is not
// valid where it is used. getuserphonenumber takes an optional openid in its
// body beside the code; given one, WeChat checks that the code was issued to
// that user and refuses it otherwise
// (https://developers.weixin.qq.com/miniprogram/dev/server/API/user-info/phone-number/api_getphonenumber.html).
// The page names no errcode for that refusal, so this package and the
// emulator take 40003 for it. On that path it is KindInvalidCode, as 40029
// is, which WeChat may answer instead: either way the code is no good for
// this user.
const ErrCodeInvalidOpenID = 40003

// ErrSessionKeyInvalid is what ResetSessionKey's error wraps when WeChat
// rejects the signature (errcode 87009): the session key given is no longer
// the user's, so it cannot be reset and the user must log in again. Test
// for it with errors.Is.
//
// The error's Kind is platform.KindUnknown: the closed set has no kind for a
// stale session key, which is neither the platform's health
// (KindUnavailable, KindBusy) nor our configuration (KindBadCredentials),
// and is not a login code (KindInvalidCode). A circuit breaker should
// exclude it as a user error.
var ErrSessionKeyInvalid = errors.New("wechat: session key is invalid or expired")

// SessionSignature is WeChat's user login-state signature
// (docs/platforms/wechat.md, "Session-key signature"):
// the lowercase hex of HMAC-SHA256 keyed with the bytes of the session_key
// string as WeChat issued it (its base64 text, not the decoded 16 bytes)
// over payload. checksession and resetusersessionkey sign the empty
// payload. The result proves knowledge of the session key: treat it as a
// credential.
func SessionSignature(sessionKey secret.String, payload string) string {
	m := hmac.New(sha256.New, []byte(sessionKey.Reveal()))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// Phone is the user's phone number as WeChat's getuserphonenumber returns it
// (docs/platforms/wechat.md, "Phone numbers"). It is personal data: its
// String, GoString, Format and LogValue methods print no number, so that a
// Phone logged or printed by mistake leaks nothing (docs/security.md, "Logs
// and answers"). Read the fields.
type Phone struct {
	// PhoneNumber includes the country code for foreign numbers.
	PhoneNumber string
	// PurePhoneNumber is the number without the country code.
	PurePhoneNumber string
	// CountryCode is e.g. "86" (WeChat sends a number or a string).
	CountryCode string
	// WatermarkAppID is the appid the number was issued for; the parser
	// has checked that it is the client's.
	WatermarkAppID string
	// WatermarkTimestamp is when WeChat issued the answer, in Unix seconds.
	WatermarkTimestamp int64
}

// String implements fmt.Stringer without the number.
func (p Phone) String() string {
	return "wechat.Phone{CountryCode:" + p.CountryCode + " PhoneNumber:" + secret.Redacted + "}"
}

// GoString implements fmt.GoStringer without the number, for %#v.
func (p Phone) GoString() string { return p.String() }

// Format implements fmt.Formatter so that every verb (%d and %x included)
// prints String.
func (p Phone) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// LogValue implements slog.LogValuer without the number.
func (p Phone) LogValue() slog.Value {
	return slog.GroupValue(slog.String("country_code", p.CountryCode), slog.String("phone_number", secret.Redacted),
		slog.String("watermark_appid", p.WatermarkAppID))
}

// CheckSession asks WeChat whether sessionKey is still the user's current
// session key (GET wxa/checksession; docs/platforms/wechat.md,
// "Checking a session key"). It sends
// SessionSignature(sessionKey, "") with sig_method hmac_sha256, never the
// key itself.
//
// It returns (true, nil) when the key is valid and (false, nil) when WeChat
// says the signature does not match (87009): the key expired or was
// replaced by a newer login. Any other failure is a *platform.Error; a
// rejected access token (40001, 40014, 42001) is KindTokenInvalid, so that
// the token manager refreshes it and calls again. The call only reads: it is
// retried once after a failed dial or a busy answer (-1).
func (c *Client) CheckSession(ctx context.Context, accessToken secret.String, openID string, sessionKey secret.String) (bool, error) {
	return c.wxa().checkSession(ctx, accessToken, openID, sessionKey)
}

// ResetSessionKey makes WeChat replace the user's session key and returns
// the new one (GET wxa/resetusersessionkey; docs/platforms/wechat.md,
// "Resetting a session key"). The old key
// stops working at once; the new one keeps the old one's expiry. sessionKey
// is the current key, which signs the request as for CheckSession.
//
// The new key is checked to be base64 of 16 bytes. When WeChat rejects the
// signature (87009) the error wraps ErrSessionKeyInvalid. A rejected access
// token is KindTokenInvalid. The call changes state, so it is never sent
// twice: only a dial that failed, which proves nothing was sent, is retried;
// a busy answer is not.
func (c *Client) ResetSessionKey(ctx context.Context, accessToken secret.String, openID string, sessionKey secret.String) (secret.String, error) {
	return c.wxa().resetSessionKey(ctx, accessToken, openID, sessionKey)
}

// PhoneNumber trades a getPhoneNumber button code (not a wx.login code) for
// the user's phone number (POST wxa/business/getuserphonenumber;
// docs/platforms/wechat.md, "Phone numbers"). The answer's watermark appid
// must be this client's appid.
//
// openID is the user the caller holds a session for. It is sent with the
// code, and WeChat then refuses a code issued to another user, so that a
// code obtained from someone else cannot bind their number to this user
// (ErrCodeInvalidOpenID). Pass it whenever it is known; "" sends the code
// alone, unchecked.
//
// The code is single use: like a login code it is retried only when the
// first attempt provably never reached WeChat or WeChat said it was busy.
// An empty or oversized code, one WeChat rejects as invalid, expired or used
// (40029), or one of another user (40003) is KindInvalidCode; a rejected access token is KindTokenInvalid. The number
// never appears in an error.
func (c *Client) PhoneNumber(ctx context.Context, accessToken secret.String, openID, code string) (*Phone, error) {
	return c.wxa().phoneNumber(ctx, accessToken, openID, code)
}

// CheckSession is Client.CheckSession for a user of the authorizer mini
// program; accessToken is its authorizer_access_token.
func (c *ComponentClient) CheckSession(ctx context.Context, accessToken secret.String, openID string, sessionKey secret.String) (bool, error) {
	return c.wxa().checkSession(ctx, accessToken, openID, sessionKey)
}

// ResetSessionKey is Client.ResetSessionKey for a user of the authorizer mini
// program; accessToken is its authorizer_access_token.
func (c *ComponentClient) ResetSessionKey(ctx context.Context, accessToken secret.String, openID string, sessionKey secret.String) (secret.String, error) {
	return c.wxa().resetSessionKey(ctx, accessToken, openID, sessionKey)
}

// PhoneNumber is Client.PhoneNumber for a user of the authorizer mini
// program; accessToken is its authorizer_access_token (WeChat takes the
// same body, openid included, from a third-party platform), and the
// watermark must carry the authorizer's appid.
func (c *ComponentClient) PhoneNumber(ctx context.Context, accessToken secret.String, openID, code string) (*Phone, error) {
	return c.wxa().phoneNumber(ctx, accessToken, openID, code)
}

// wxa is what the token-authenticated calls need of either client.
type wxa struct {
	appID, base string
	caller      *hostcall.Caller
}

func (c *Client) wxa() wxa          { return wxa{appID: c.appID, base: c.base, caller: c.caller} }
func (c *ComponentClient) wxa() wxa { return wxa{appID: c.appID, base: c.base, caller: c.caller} }

func (a wxa) checkSession(ctx context.Context, tok secret.String, openID string, key secret.String) (bool, error) {
	if err := checkSessionArgs(PathCheckSession, tok, openID, key); err != nil {
		return false, err
	}
	sig := SessionSignature(key, "")
	u := a.sessionURL(PathCheckSession, tok, openID, sig)
	var valid bool
	err := a.do(ctx, PathCheckSession, true, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}, func(resp *hostcall.Response) (err error) {
		valid, err = parseCheckSession(resp, tok.Reveal(), key.Reveal(), sig)
		return err
	})
	return valid, err
}

func (a wxa) resetSessionKey(ctx context.Context, tok secret.String, openID string, key secret.String) (secret.String, error) {
	if err := checkSessionArgs(PathResetSessionKey, tok, openID, key); err != nil {
		return secret.String{}, err
	}
	sig := SessionSignature(key, "")
	u := a.sessionURL(PathResetSessionKey, tok, openID, sig)
	var fresh secret.String
	err := a.do(ctx, PathResetSessionKey, false, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}, func(resp *hostcall.Response) (err error) {
		fresh, err = parseResetSessionKey(resp, openID, tok.Reveal(), key.Reveal(), sig)
		return err
	})
	return fresh, err
}

func (a wxa) phoneNumber(ctx context.Context, tok secret.String, openID, code string) (*Phone, error) {
	if err := hostcall.CheckCode("wechat", PathPhoneNumber, code); err != nil {
		return nil, err
	}
	switch {
	case tok.IsZero():
		return nil, missing(PathPhoneNumber, "access token")
	case len(openID) > maxArgLen:
		return nil, missing(PathPhoneNumber, "openid")
	}
	body, err := json.Marshal(struct {
		Code   string `json:"code"`
		OpenID string `json:"openid,omitempty"`
	}{code, openID})
	if err != nil {
		return nil, buildError(PathPhoneNumber)
	}
	u := a.base + PathPhoneNumber + "?" + url.Values{"access_token": {tok.Reveal()}}.Encode()
	var phone *Phone
	err = a.do(ctx, PathPhoneNumber, true, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}, func(resp *hostcall.Response) (err error) {
		phone, err = parsePhoneNumber(resp, a.appID, tok.Reveal(), code)
		return err
	})
	return phone, err
}

func (a wxa) sessionURL(path string, tok secret.String, openID, sig string) string {
	return a.base + path + "?" + url.Values{
		"access_token": {tok.Reveal()},
		"openid":       {openID},
		"signature":    {sig},
		"sig_method":   {SigMethod},
	}.Encode()
}

// errNoRetry stops hostcall.Caller.Once from retrying a busy answer.
var errNoRetry = errors.New("no retry")

// do sends one request through hostcall.Caller.Once. With busyRetry false,
// a busy answer is not retried either: only a dial that failed is, for a
// call that must not reach WeChat twice.
func (a wxa) do(ctx context.Context, path string, busyRetry bool, newReq func(context.Context) (*http.Request, error), parse func(*hostcall.Response) error) error {
	var busy error
	err := a.caller.Once(ctx, func(ctx context.Context) error {
		req, err := newReq(ctx)
		if err != nil {
			return buildError(path) // its text may hold the URL, token included
		}
		resp, err := a.caller.Send(ctx, req)
		if err != nil {
			return err
		}
		err = parse(resp)
		if !busyRetry && platform.KindOf(err) == platform.KindBusy {
			busy = err
			return errNoRetry
		}
		return err
	})
	if err == errNoRetry {
		return busy
	}
	return err
}

// maxArgLen bounds an openid or session key before any call is made; real
// ones are 28 and 24 bytes.
const maxArgLen = 512

func checkSessionArgs(path string, tok secret.String, openID string, key secret.String) error {
	switch {
	case tok.IsZero():
		return missing(path, "access token")
	case openID == "" || len(openID) > maxArgLen:
		return missing(path, "openid")
	case key.IsZero() || len(key.Reveal()) > maxArgLen:
		return missing(path, "session key")
	}
	return nil
}

// missing is the error for an argument that is empty or oversized: a bug on
// our side, refused before any call, of the kind WeChat gives a missing
// parameter (41001 and the like): KindBadCredentials.
func missing(path, what string) *platform.Error {
	return &platform.Error{Host: "wechat", Endpoint: path, Kind: platform.KindBadCredentials,
		Err: errors.New(what + " is empty or too long")}
}

type checkSessionResponse struct {
	// A pointer: an answer without errcode (even "null" or "{}") must not
	// pass for "valid".
	ErrCode *wire.Int `json:"errcode"`
	ErrMsg  string    `json:"errmsg"`
}

// parseCheckSession reads an answer of wxa/checksession: true for errcode 0
// with a 2xx status, false for 87009 (the session key is not the user's
// current one), a *platform.Error otherwise. Unlike a login answer, this one
// must carry its errcode: an answer without one is KindUnknown, never
// "valid". The scrub values (access token, session key, signature) are
// removed from the platform's message.
func parseCheckSession(resp *hostcall.Response, scrub ...string) (bool, error) {
	var r checkSessionResponse
	if err := decode(PathCheckSession, resp, &r); err != nil {
		return false, err
	}
	if r.ErrCode == nil {
		if resp.Status/100 != 2 {
			return false, hostcall.StatusError("wechat", PathCheckSession, resp)
		}
		return false, &platform.Error{Host: "wechat", Endpoint: PathCheckSession, Kind: platform.KindUnknown,
			Status: resp.Status, Err: errors.New("answer without errcode")}
	}
	switch code := int64(*r.ErrCode); code {
	case 0:
	case ErrCodeInvalidSignature:
		return false, nil
	default:
		return false, apiError(PathCheckSession, resp.Status, code, hostcall.Scrub(r.ErrMsg, scrub...), true)
	}
	if resp.Status/100 != 2 {
		return false, hostcall.StatusError("wechat", PathCheckSession, resp)
	}
	return true, nil
}

type resetSessionKeyResponse struct {
	OpenID     string   `json:"openid"`
	SessionKey string   `json:"session_key"`
	ErrCode    wire.Int `json:"errcode"`
	ErrMsg     string   `json:"errmsg"`
}

// parseResetSessionKey reads an answer of wxa/resetusersessionkey for the
// user openID. Success needs a new session_key that is base64 of 16 bytes,
// and an openid, when the answer has one, equal to openID. 87009 is an
// error wrapping ErrSessionKeyInvalid. The scrub values (access token, old
// session key, signature) are removed from the platform's message; the new
// key never appears in an error.
func parseResetSessionKey(resp *hostcall.Response, openID string, scrub ...string) (secret.String, error) {
	var r resetSessionKeyResponse
	if err := decode(PathResetSessionKey, resp, &r); err != nil {
		return secret.String{}, err
	}
	if r.ErrCode != 0 {
		pe := apiError(PathResetSessionKey, resp.Status, int64(r.ErrCode), hostcall.Scrub(r.ErrMsg, scrub...), true)
		if r.ErrCode == ErrCodeInvalidSignature {
			pe.Err = ErrSessionKeyInvalid
		}
		return secret.String{}, pe
	}
	if resp.Status/100 != 2 {
		return secret.String{}, hostcall.StatusError("wechat", PathResetSessionKey, resp)
	}
	if r.OpenID != "" && r.OpenID != openID {
		return secret.String{}, &platform.Error{Host: "wechat", Endpoint: PathResetSessionKey, Kind: platform.KindUnknown,
			Status: resp.Status, Err: errors.New("answer is for another openid")}
	}
	if err := hostcall.CheckLogin("wechat", PathResetSessionKey, resp.Status, openID, r.SessionKey, SessionKeyLen); err != nil {
		return secret.String{}, err
	}
	return secret.New(r.SessionKey), nil
}

type phoneResponse struct {
	ErrCode   wire.Int `json:"errcode"`
	ErrMsg    string   `json:"errmsg"`
	PhoneInfo *struct {
		PhoneNumber     phoneString `json:"phoneNumber"`
		PurePhoneNumber phoneString `json:"purePhoneNumber"`
		CountryCode     countryCode `json:"countryCode"`
		Watermark       struct {
			Timestamp wire.Int `json:"timestamp"`
			AppID     string   `json:"appid"`
		} `json:"watermark"`
	} `json:"phone_info"`
}

// parsePhoneNumber reads an answer of wxa/business/getuserphonenumber for
// the app appID. Success needs a 2xx status, phone_info with a phoneNumber
// and a purePhoneNumber, and a watermark appid equal to appID (otherwise
// KindUnknown: the number was issued to another app). An invalid, expired or
// used code (40029) and a code of another user than the openid sent
// (ErrCodeInvalidOpenID) are KindInvalidCode. The scrub values (access
// token, code) are removed from the platform's message, and no error ever
// carries a value of the answer's phone fields.
func parsePhoneNumber(resp *hostcall.Response, appID string, scrub ...string) (*Phone, error) {
	var r phoneResponse
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		// A syntax error names one character; any other decoding error may
		// quote a value, and the value may be the number.
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			err = errors.New("unexpected field types")
		}
		return nil, &platform.Error{Host: "wechat", Endpoint: PathPhoneNumber, Kind: platform.KindUnavailable,
			Status: resp.Status, Err: fmt.Errorf("answer is not JSON: %w", err)}
	}
	if r.ErrCode != 0 {
		pe := apiError(PathPhoneNumber, resp.Status, int64(r.ErrCode), hostcall.Scrub(r.ErrMsg, scrub...), true)
		if r.ErrCode == ErrCodeInvalidOpenID {
			// Here it is the code that does not fit the user: a user
			// error, like 40029, not our configuration.
			pe.Kind = platform.KindInvalidCode
		}
		return nil, pe
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError("wechat", PathPhoneNumber, resp)
	}
	fail := func(msg string) error {
		return &platform.Error{Host: "wechat", Endpoint: PathPhoneNumber, Kind: platform.KindUnknown,
			Status: resp.Status, Err: errors.New(msg)}
	}
	info := r.PhoneInfo
	if info == nil || info.PhoneNumber == "" || info.PurePhoneNumber == "" {
		return nil, fail("answer without phone_info.phoneNumber or purePhoneNumber")
	}
	if appID == "" || info.Watermark.AppID != appID {
		return nil, fail("watermark appid is not this app's")
	}
	return &Phone{
		PhoneNumber:        string(info.PhoneNumber),
		PurePhoneNumber:    string(info.PurePhoneNumber),
		CountryCode:        string(info.CountryCode),
		WatermarkAppID:     info.Watermark.AppID,
		WatermarkTimestamp: int64(info.Watermark.Timestamp),
	}, nil
}

// phoneString is a JSON string whose decoding error never quotes the value.
type phoneString string

func (s *phoneString) UnmarshalJSON(b []byte) error {
	var v string
	if string(b) == "null" {
		*s = ""
		return nil
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("phone number is not a string")
	}
	*s = phoneString(v)
	return nil
}

// countryCode is a country code that WeChat documents as a string but sends
// as a number in its own example (docs/platforms/wechat.md, "Phone numbers"):
// either is accepted, as its
// decimal text.
type countryCode string

func (c *countryCode) UnmarshalJSON(b []byte) error {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "null":
		*c = ""
	case strings.HasPrefix(t, `"`):
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return errors.New("countryCode is not a string or an integer")
		}
		*c = countryCode(v)
	default:
		n, err := strconv.ParseUint(t, 10, 32)
		if err != nil {
			return errors.New("countryCode is not a string or an integer")
		}
		*c = countryCode(strconv.FormatUint(n, 10))
	}
	return nil
}
