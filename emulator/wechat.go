package emulator

import (
	"encoding/json"
	"net/http"
)

// WeChat answers JSON as text/plain, errors included, with HTTP 200
// (docs/platforms/wechat.md, "Answers and errors").
const wechatContentType = "text/plain"

// wechatMessage is the errmsg of the codes the emulator answers with or a
// fault may ask for, as WeChat's documentation of each API and its global
// return-code table give them.
func wechatMessage(errcode int) string {
	switch errcode {
	case -1:
		return "system error"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 40002:
		return "invalid grant_type"
	case 40003:
		return "invalid openid"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40029:
		return "invalid code"
	case 40066:
		return "invalid url"
	case 40125:
		return "invalid appsecret"
	case 40163:
		return "code been used"
	case 40164:
		return "invalid ip, not in whitelist"
	case 40226:
		return "code blocked"
	case 41001:
		return "access_token missing"
	case 41002:
		return "appid missing"
	case 41004:
		return "appsecret missing"
	case 41008:
		return "missing code"
	case 41009:
		return "missing openid"
	case 41021:
		return "component_access_token missing"
	case 42001:
		return "access_token expired"
	case 43001:
		return "require GET method"
	case 43002:
		return "require POST method"
	case 45009:
		return "reach max api daily quota limit"
	case 45011:
		return "api minute-quota reach limit mustslower retry next minute"
	case 47001:
		return "data format error"
	case 61003:
		return "component is not authorized by this account"
	case 87009:
		return "invalid signature"
	}
	return "emulated error"
}

// wechatError answers errcode with its usual message.
func (e *Emulator) wechatError(errcode int) reply {
	return e.wechatErrorMsg(errcode, wechatMessage(errcode))
}

// wechatErrorMsg appends a ", rid: …" suffix, as WeChat does, so that
// clients learn never to compare errmsg.
func (e *Emulator) wechatErrorMsg(errcode int, msg string) reply {
	body, _ := json.Marshal(struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
	}{errcode, msg + ", rid: " + e.rid()})
	return reply{status: http.StatusOK, contentType: wechatContentType, body: body}
}

// wechatCode2Session serves GET /sns/jscode2session
// (docs/platforms/wechat.md, "Login code exchange").
func (e *Emulator) wechatCode2Session(r *http.Request) reply {
	appid, code, bad := e.checkCode2Session(r, wechat)
	if bad != nil {
		return *bad
	}
	return e.wechatExchange(appid, code)
}

// checkCode2Session checks a GET /sns/jscode2session request for an app of
// platform (WeChat, or QQ, which copies it) as WeChat does, and returns its
// appid and code, or the answer to a bad one.
func (e *Emulator) checkCode2Session(r *http.Request, platform string) (appid, code string, bad *reply) {
	fail := func(errcode int) (string, string, *reply) {
		rep := e.wechatError(errcode)
		return "", "", &rep
	}
	if r.Method != http.MethodGet {
		return fail(41002) // what WeChat answers a POST
	}
	q := r.URL.Query()
	appid, secret, code := q.Get("appid"), q.Get("secret"), q.Get("js_code")
	switch {
	case appid == "":
		return fail(41002)
	case secret == "":
		return fail(41004)
	case code == "":
		return fail(41008)
	case q.Get("grant_type") != "authorization_code":
		return fail(40002)
	}
	if a, known, checked := e.app(platform, appid); checked {
		if !known {
			return fail(40013)
		}
		if !secretOK(a.Secret, secret) {
			return fail(40125)
		}
	}
	return appid, code, nil
}

// wechatComponentCode2Session serves GET /sns/component/jscode2session, the
// third-party platform's exchange for an authorizer app
// (docs/platforms/wechat.md, "Third-party platform login").
func (e *Emulator) wechatComponentCode2Session(r *http.Request) reply {
	if r.Method != http.MethodGet {
		return e.wechatError(41002)
	}
	q := r.URL.Query()
	appid, code := q.Get("appid"), q.Get("js_code")
	compAppID, compToken := q.Get("component_appid"), q.Get("component_access_token")
	switch {
	case appid == "":
		return e.wechatError(41002)
	case compAppID == "":
		return e.wechatErrorMsg(41002, "component_appid missing")
	case compToken == "":
		return e.wechatError(41021)
	case code == "":
		return e.wechatError(41008)
	case q.Get("grant_type") != "authorization_code":
		return e.wechatError(40002)
	}
	if a, known, checked := e.app(wechat, appid); checked {
		switch {
		case !known:
			return e.wechatError(40013)
		case !secretOK(a.ThirdPartyToken, compToken):
			return e.wechatError(40001)
		case a.ComponentAppID != "" && a.ComponentAppID != compAppID:
			return e.wechatError(61003)
		}
	}
	return e.wechatExchange(appid, code)
}

func (e *Emulator) wechatExchange(appid, code string) reply {
	g, oc := e.exchange(exchangeReq{platform: wechat, appid: appid, code: code})
	switch oc {
	case granted:
	case badCode:
		return e.wechatError(40029)
	case usedCode:
		return e.wechatError(40163)
	case blockedUser:
		return e.wechatError(40226)
	default:
		return e.wechatError(-1)
	}
	body, _ := json.Marshal(struct {
		SessionKey string `json:"session_key"`
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid"`
	}{g.sessionKey, g.openid, g.unionid})
	return reply{status: http.StatusOK, contentType: wechatContentType, body: body}
}
