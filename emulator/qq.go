package emulator

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// qq is QQ's family, in App.Family and the control API's "platform".
const qq = "qq"

// qqTokenLife: a QQ access token lives 7200 s; the previous one is cut to
// tokenOverlap by each fetch (docs/platforms/qq.md, "Access tokens").
const qqTokenLife = 7200 * time.Second

// snsCode2Session serves GET /sns/jscode2session, the path WeChat and QQ
// share, for whichever of the two the appid belongs to (isQQApp).
func (e *Emulator) snsCode2Session(r *http.Request) reply {
	if e.isQQApp(r.URL.Query().Get("appid")) {
		return e.qqCode2Session(r)
	}
	return e.wechatCode2Session(r)
}

// isQQApp tells QQ's appids from WeChat's on the path both hosts serve: an
// app configured as QQ's is QQ's, one configured as WeChat's is WeChat's,
// and any other is QQ's when it is all digits, as QQ's appids are (WeChat's
// start with "wx").
func (e *Emulator) isQQApp(appid string) bool {
	if _, known, checked := e.app(qq, appid); known {
		return true
	} else if checked {
		if _, wx, _ := e.app(wechat, appid); wx {
			return false
		}
	}
	if appid == "" {
		return false
	}
	for i := range len(appid) {
		if appid[i] < '0' || appid[i] > '9' {
			return false
		}
	}
	return true
}

// qqCode2Session is jscode2session for a QQ app: WeChat's checks, errors
// and answer, against QQ's apps, codes and users
// (docs/platforms/qq.md, "Login code exchange").
func (e *Emulator) qqCode2Session(r *http.Request) reply {
	appid, code, bad := e.checkCode2Session(r, qq)
	if bad != nil {
		return *bad
	}
	g, oc := e.exchange(exchangeReq{platform: qq, appid: appid, code: code})
	switch oc {
	case granted:
	case badCode:
		return e.wechatError(40029)
	case usedCode:
		return e.wechatError(40163)
	default:
		return e.wechatError(-1)
	}
	// The unionid comes with every exchange, as WeChat's does here; real QQ
	// sends one only for apps bound to a QQ Connect app.
	body, _ := json.Marshal(struct {
		SessionKey string `json:"session_key"`
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid"`
	}{g.sessionKey, g.openid, g.unionid})
	return reply{status: http.StatusOK, contentType: wechatContentType, body: body}
}

// qqToken serves GET /api/getToken with the errors QQ documents for it:
// 40002 for another grant_type, 40013 for a missing or unknown appid, 40001
// for a missing or wrong secret (docs/platforms/qq.md, "Access tokens").
func (e *Emulator) qqToken(r *http.Request) reply {
	if r.Method != http.MethodGet {
		return e.wechatError(43001)
	}
	q := r.URL.Query()
	appid, secret := q.Get("appid"), q.Get("secret")
	switch {
	case q.Get("grant_type") != "client_credential":
		return e.wechatError(40002)
	case appid == "":
		return e.wechatError(40013)
	case secret == "":
		return e.wechatError(40001)
	}
	if a, known, checked := e.app(qq, appid); checked {
		if !known {
			return e.wechatError(40013)
		}
		if !secretOK(a.Secret, secret) {
			return e.wechatError(40001)
		}
	}
	is, err := e.issueQQ(appid)
	if err != nil {
		return e.wechatError(-1)
	}
	e.log.Debug("emulator: access token issued", "path", "/api/getToken", "appid", appid)
	return wechatTokenReply(is)
}

// issueQQ serves a getToken fetch: always a new token; the previous one
// stays valid 5 more minutes, the one before it not at all.
func (e *Emulator) issueQQ(appid string) (tokenAnswer, error) {
	tok, err := e.newToken(qqAppToken)
	if err != nil {
		return tokenAnswer{}, err
	}
	now := e.now()
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	e.tokens.rotateLocked(tokenSlot{qqAppToken, appid}, tok, now, qqTokenLife, tokenOverlap)
	return answer(tok, qqTokenLife), nil
}

// noPhoneAPI refuses phone data for QQ, which has no phone-number API,
// and user info for Alipay, which has no encrypted user info.
func noPhoneAPI(platform, kind string) *controlError {
	if platform == qq && kind == KindPhone {
		return invalidRequest("QQ has no phone-number API: kind must be \"userinfo\"")
	}
	if platform == alipay && kind == KindUserInfo {
		return invalidRequest("Alipay has no encrypted user info: kind must be \"phone\"")
	}
	return nil
}

// qqUserData encrypts user info exactly as WeChat's (wechatUserData), with
// QQ's ids and a QQ avatar URL (docs/platforms/qq.md, "Decrypting user
// data").
func (e *Emulator) qqUserData(u userKey, key string) (UserData, error) {
	pr := profileOf(u.user)
	avatar := digest("avatar", qq, u.user)
	raw := wechatRawData{pr.nickName, pr.gender, pr.lang, pr.city, pr.province, pr.country,
		"https://thirdqq.qlogo.cn/qqapp/" + u.appid + "/" + hex.EncodeToString(avatar[:16]) + "/100"}
	plain, _ := json.Marshal(struct {
		OpenID string `json:"openId"`
		wechatRawData
		UnionID   string    `json:"unionId"`
		Watermark watermark `json:"watermark"`
	}{openID(qq, u.appid, u.user), raw, unionID(qq, e.owner(qq, u.appid), u.user), watermark{e.now().Unix(), u.appid}})
	rawJSON, _ := json.Marshal(raw)
	h := sha1.New()
	h.Write(rawJSON)
	h.Write([]byte(key))
	d := UserData{RawData: string(rawJSON), Signature: hex.EncodeToString(h.Sum(nil))}
	var iv [16]byte
	if err := e.readRand(iv[:]); err != nil {
		return UserData{}, err
	}
	var err error
	d.EncryptedData, d.IV, err = userdata.EncryptWeChat(secret.New(key), plain, iv[:])
	return d, err
}
