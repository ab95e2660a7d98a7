package emulator

import (
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strconv"
)

// Baidu's unionid APIs (baidu.md §6): getunionid for the app itself, with
// the app's token from /oauth/2.0/token, and unionId/get for a third-party
// platform, with the authorizer token that /rest/2.0/oauth/getsessionkeybycode
// accepts. Both are openapi business paths: a refused token is the
// gateway's {"error_code":110|111} (baidu.md §10.1), anything else an
// {"errno":…} envelope with HTTP 200.

// errno values of the business envelopes: getunionid documents only 0 and
// 1 ("异常返回"); 40001 (参数错误) is a generic third-party errno (baidu.md §6,
// §10.4).
const (
	errnoUnionFailed = 1
	errnoTPParam     = 40001
)

// baiduEnvelope is a business answer. getunionid's carries errmsg,
// request_id and timestamp; unionId/get's only msg (baidu.md §6). data is
// left out when nil.
func (e *Emulator) baiduEnvelope(msgField string, errno int, msg string, data any) reply {
	var v any
	if msgField == "errmsg" {
		v = struct {
			Errno     int    `json:"errno"`
			Errmsg    string `json:"errmsg"`
			RequestID string `json:"request_id"`
			Timestamp int64  `json:"timestamp"`
			Data      any    `json:"data,omitempty"`
		}{errno, msg, e.requestID(), e.now().Unix(), data}
	} else {
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
// with the form field openid (baidu.md §6, own app). The openid must be
// one the token's app gave out, to a user who exchanged a code.
func (e *Emulator) baiduUnionID(r *http.Request) reply {
	if rep, ok := baiduForm(r); !ok {
		return rep
	}
	appid, st := e.checkToken(baidu, r.Form.Get("access_token"))
	switch st {
	case tokenOK:
	case tokenExpired:
		return baiduGateway(111)
	default:
		return baiduGateway(110)
	}
	openid := r.Form.Get("openid")
	if openid == "" {
		return e.baiduEnvelope("errmsg", errnoUnionFailed, "openid is required", nil)
	}
	rec, ok := e.userByOpenID(baidu, openid)
	if !ok || rec.appid != appid {
		return e.baiduEnvelope("errmsg", errnoUnionFailed, "invalid openid", nil)
	}
	return e.baiduEnvelope("errmsg", 0, "succ", struct {
		UnionID string `json:"unionid"`
	}{unionID(baidu, e.owner(baidu, appid), rec.user)})
}

// baiduThirdPartyUnionID serves GET|POST /rest/2.0/smartapp/unionId/get
// ?access_token=…&open_id=… (baidu.md §6, third party; openid is accepted
// for open_id). The token must be one the openid's app accepts on the
// third-party login path (App.ThirdPartyToken; any, without Config.Apps or
// for an app without one). A token nobody accepts is the gateway's 110; an
// authorizer token of another app, or an openid nobody logged in with, is
// errno 40001.
func (e *Emulator) baiduThirdPartyUnionID(r *http.Request) reply {
	if rep, ok := baiduForm(r); !ok {
		return rep
	}
	token := r.Form.Get("access_token")
	if token == "" {
		return baiduGateway(110)
	}
	openid := r.Form.Get("open_id")
	if openid == "" {
		openid = r.Form.Get("openid")
	}
	rec, ok := e.userByOpenID(baidu, openid)
	switch {
	case ok && e.tokenAccepted(rec.appid, token):
		return e.baiduEnvelope("msg", 0, "success", struct {
			UnionID string `json:"union_id"`
		}{unionID(baidu, e.owner(baidu, rec.appid), rec.user)})
	case ok && !e.isAuthorizerToken(token):
		// The user's app has its own token, and this is nobody's.
		return baiduGateway(110)
	case !ok && !e.thirdPartyTokenKnown(token):
		return baiduGateway(110)
	case openid == "":
		return e.baiduEnvelope("msg", errnoTPParam, "param error: open_id is required", nil)
	}
	// Unknown, or another authorizer app's user.
	return e.baiduEnvelope("msg", errnoTPParam, "param error: invalid open_id", nil)
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
