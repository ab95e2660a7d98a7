package emulator

import (
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strconv"
)

// Baidu's unionid APIs (docs/platforms/baidu.md, "Unionids"): getunionid for
// the app itself, with the app's token from /oauth/2.0/token, and unionId/get
// for a third-party platform, with the authorizer token that
// /rest/2.0/oauth/getsessionkeybycode accepts. Both are openapi business
// paths: a refused token is the gateway's {"error_code":110|111} (same file,
// "Answers and errors"), anything else an {"errno":…} envelope with HTTP 200.

// errno values of the business envelopes: getunionid documents only 0 and
// 1 ("异常返回"); 40001 (参数错误) is a generic third-party errno
// (docs/platforms/baidu.md, "Unionids", "Error codes").
const (
	errnoUnionFailed = 1
	errnoTPParam     = 40001
)

// envelope is the shape of a Baidu openapi business answer, which differs
// per API in its fields beside errno and data.
type envelope uint8

const (
	noEnvelope      envelope = iota // not a business path: OAuth-style errors
	unionIDEnvelope                 // getunionid: errmsg, request_id, timestamp
	sessionEnvelope                 // getsessionkey: errmsg, request_id
	msgEnvelope                     // unionId/get: msg
)

// baiduEnvelope is a business answer in the path's envelope. data is left
// out when nil.
func (e *Emulator) baiduEnvelope(env envelope, errno int, msg string, data any) reply {
	var v any
	switch env {
	case unionIDEnvelope:
		v = struct {
			Errno     int    `json:"errno"`
			Errmsg    string `json:"errmsg"`
			RequestID string `json:"request_id"`
			Timestamp int64  `json:"timestamp"`
			Data      any    `json:"data,omitempty"`
		}{errno, msg, e.requestID(), e.now().Unix(), data}
	case sessionEnvelope:
		v = struct {
			Errno     int    `json:"errno"`
			Errmsg    string `json:"errmsg"`
			RequestID string `json:"request_id"`
			Data      any    `json:"data,omitempty"`
		}{errno, msg, e.requestID(), data}
	default:
		v = struct {
			Errno int    `json:"errno"`
			Msg   string `json:"msg"`
			Data  any    `json:"data,omitempty"`
		}{errno, msg, data}
	}
	body, _ := json.Marshal(v)
	return reply{status: http.StatusOK, contentType: baiduContentType, body: body}
}

// requestID imitates Baidu's request_id, a decimal number.
func (e *Emulator) requestID() string {
	var b [8]byte
	_ = e.readRand(b[:]) // zeros are as good an id as any
	return strconv.FormatUint(1_000_000_000+binary.BigEndian.Uint64(b[:])%9_000_000_000, 10)
}

// baiduUnionID serves POST /rest/2.0/smartapp/getunionid?access_token=…
// with the form field openid (docs/platforms/baidu.md, "Unionids": the app's
// own). The openid must be one the token's app gave out, to a user who
// exchanged a code.
func (e *Emulator) baiduUnionID(r *http.Request) reply {
	if rep, ok := baiduForm(r, http.StatusBadRequest); !ok {
		return rep
	}
	appid, rep, ok := e.baiduTokenApp(r)
	if !ok {
		return rep
	}
	openid := r.Form.Get("openid")
	if openid == "" {
		return e.baiduEnvelope(unionIDEnvelope, errnoUnionFailed, "openid is required", nil)
	}
	rec, ok := e.userByOpenID(baidu, openid)
	if !ok || rec.appid != appid {
		return e.baiduEnvelope(unionIDEnvelope, errnoUnionFailed, "invalid openid", nil)
	}
	return e.baiduEnvelope(unionIDEnvelope, 0, "succ", struct {
		UnionID string `json:"unionid"`
	}{unionID(baidu, e.owner(baidu, appid), rec.user)})
}

// baiduThirdPartyUnionID serves GET|POST /rest/2.0/smartapp/unionId/get
// ?access_token=…&open_id=… (docs/platforms/baidu.md, "Unionids": third
// party; openid is accepted for open_id). The token must be one the
// openid's app accepts on the third-party login path (App.ThirdPartyToken;
// any, without Config.Apps or for an app without one). A token nobody
// accepts is the gateway's 110; an authorizer token of another app, or an
// openid nobody logged in with, is errno 40001.
func (e *Emulator) baiduThirdPartyUnionID(r *http.Request) reply {
	if rep, ok := baiduForm(r, http.StatusBadRequest); !ok {
		return rep
	}
	token := r.Form.Get("access_token")
	if token == "" {
		return baiduGateway(gatewayTokenInvalid)
	}
	openid := r.Form.Get("open_id")
	if openid == "" {
		openid = r.Form.Get("openid")
	}
	rec, ok := e.userByOpenID(baidu, openid)
	switch {
	case ok && e.tokenAccepted(rec.appid, token):
		return e.baiduEnvelope(msgEnvelope, 0, "success", struct {
			UnionID string `json:"union_id"`
		}{unionID(baidu, e.owner(baidu, rec.appid), rec.user)})
	case ok && !e.isAuthorizerToken(token):
		// The user's app has its own token, and this is nobody's.
		return baiduGateway(gatewayTokenInvalid)
	case !ok && !e.thirdPartyTokenKnown(token):
		return baiduGateway(gatewayTokenInvalid)
	case openid == "":
		return e.baiduEnvelope(msgEnvelope, errnoTPParam, "param error: open_id is required", nil)
	}
	// Unknown, or another authorizer app's user.
	return e.baiduEnvelope(msgEnvelope, errnoTPParam, "param error: invalid open_id", nil)
}

// baiduTokenApp checks the app's own access token as the openapi gateway
// does before any API sees the request: 111 for one past its expiry, 110
// for one missing, unknown, replaced or of another kind. It returns the app
// the token belongs to.
func (e *Emulator) baiduTokenApp(r *http.Request) (string, reply, bool) {
	appid, st := e.checkToken(baidu, r.Form.Get("access_token"))
	switch st {
	case tokenOK:
		return appid, reply{}, true
	case tokenExpired:
		return "", baiduGateway(gatewayTokenExpired), false
	}
	return "", baiduGateway(gatewayTokenInvalid), false
}

// baiduTokenSessionKey serves GET|POST /rest/2.0/smartapp/getsessionkey
// ?access_token=…&code=… (form fields accepted too): the code exchange of
// an app that presents its own access token, from /oauth/2.0/token, instead
// of its secret. The token names the app, and the code must be one of that
// app's. Success is {"errno":0,"errmsg":"succ","request_id":…,"data":
// {"open_id":…,"session_key":…}}, open_id spelt with an underscore, unlike
// every other exchange. Baidu documents no errno for a refused code: the
// emulator answers those of its spapi errors, 10010100 for a missing code
// and 10010102 for a bad or used one, with the same descriptions as errmsg.
func (e *Emulator) baiduTokenSessionKey(r *http.Request) reply {
	if rep, ok := baiduForm(r, http.StatusOK); !ok {
		return rep
	}
	appid, rep, ok := e.baiduTokenApp(r)
	if !ok {
		return rep // the code is not looked at, so not spent
	}
	code := r.Form.Get("code")
	if code == "" {
		return e.baiduEnvelope(sessionEnvelope, errnoParam, "parameter is invalid: code is required", nil)
	}
	g, oc := e.exchange(exchangeReq{platform: baidu, appid: appid, code: code})
	switch oc {
	case granted:
	case badCode:
		return e.baiduEnvelope(sessionEnvelope, errnoGrant, descBadCode, nil)
	case usedCode:
		return e.baiduEnvelope(sessionEnvelope, errnoGrant, descUsedCode, nil)
	default:
		return baiduError(http.StatusInternalServerError, 0, "server_error", "internal error")
	}
	return e.baiduEnvelope(sessionEnvelope, 0, "succ", struct {
		OpenID     string `json:"open_id"`
		SessionKey string `json:"session_key"`
	}{g.openid, g.sessionKey})
}

// isAuthorizerToken reports whether token is some Baidu app's configured
// ThirdPartyToken.
func (e *Emulator) isAuthorizerToken(token string) bool {
	for _, a := range e.tokenApps {
		if secretOK(a.ThirdPartyToken, token) {
			return true
		}
	}
	return false
}

// thirdPartyTokenKnown reports whether some Baidu app accepts token as its
// authorizer token (an app without a ThirdPartyToken accepts any); without
// Config.Apps every token is.
func (e *Emulator) thirdPartyTokenKnown(token string) bool {
	if e.apps == nil {
		return true
	}
	for k, a := range e.apps {
		if k.platform == baidu && secretOK(a.ThirdPartyToken, token) {
			return true
		}
	}
	return false
}
