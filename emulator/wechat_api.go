package emulator

import (
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// WeChat's business APIs: checksession, resetusersessionkey and
// getuserphonenumber (docs/platforms/wechat.md, "Checking a session key",
// "Resetting a session key", "Phone numbers"). Each is called with an access
// token from /cgi-bin/token or /cgi-bin/stable_token, which names the app.

// wechatOK is the body of a plain success.
var wechatOK = []byte(`{"errcode":0,"errmsg":"ok"}`)

// wechatTokenApp checks access_token as WeChat's business APIs do
// (docs/platforms/wechat.md, "Access tokens"): 41001 missing, 40001 invalid
// or not latest, 42001 expired. It returns the app the token belongs to.
func (e *Emulator) wechatTokenApp(r *http.Request) (string, reply, bool) {
	appid, st := e.checkToken(wechat, r.URL.Query().Get("access_token"))
	switch st {
	case tokenOK:
		return appid, reply{}, true
	case tokenMissing:
		return "", e.wechatError(41001), false
	case tokenExpired:
		return "", e.wechatError(42001), false
	}
	return "", e.wechatError(40001), false
}

// wechatSigned checks what checksession and resetusersessionkey share: the
// token, openid, sig_method and signature, in that order. It returns the
// user and the session key the signature was made with.
func (e *Emulator) wechatSigned(r *http.Request) (string, userRecord, reply, bool) {
	if r.Method != http.MethodGet {
		return "", userRecord{}, e.wechatError(43001), false
	}
	appid, rep, ok := e.wechatTokenApp(r)
	if !ok {
		return "", userRecord{}, rep, false
	}
	q := r.URL.Query()
	openid, sig := q.Get("openid"), q.Get("signature")
	switch {
	case openid == "":
		return "", userRecord{}, e.wechatError(41009), false
	case sig == "":
		return "", userRecord{}, e.wechatErrorMsg(87009, "signature missing"), false
	case q.Get("sig_method") != "hmac_sha256":
		return "", userRecord{}, e.wechatErrorMsg(87009, "invalid sig_method, only hmac_sha256 is supported"), false
	}
	rec, ok := e.userByOpenID(wechat, openid)
	if !ok || rec.appid != appid {
		return "", userRecord{}, e.wechatError(40003), false
	}
	if !sessionSignatureOK(rec.sessionKey, sig) {
		return "", userRecord{}, e.wechatError(87009), false
	}
	return openid, rec, reply{}, true
}

// sessionSignatureOK checks a signature made by the rule of
// docs/platforms/wechat.md, "Session-key signature": lowercase hex of
// HMAC-SHA256 keyed with the session_key string itself, over the empty
// string (a GET has no body). It compares in constant time.
func sessionSignatureOK(sessionKey, sig string) bool {
	want := userdata.SessionSignature(secret.New(sessionKey), "")
	return hmac.Equal([]byte(want), []byte(sig))
}

// wechatCheckSession serves GET /wxa/checksession
// (docs/platforms/wechat.md, "Checking a session key").
func (e *Emulator) wechatCheckSession(r *http.Request) reply {
	if _, _, rep, ok := e.wechatSigned(r); !ok {
		return rep
	}
	return reply{status: http.StatusOK, contentType: wechatContentType, body: wechatOK}
}

// wechatResetSessionKey serves GET /wxa/resetusersessionkey
// (docs/platforms/wechat.md, "Resetting a session key"): the signature is
// made with the current key, which is replaced at once by a new one.
func (e *Emulator) wechatResetSessionKey(r *http.Request) reply {
	openid, rec, rep, ok := e.wechatSigned(r)
	if !ok {
		return rep
	}
	fresh, err := e.newSessionKey(wechat)
	if err != nil {
		return e.wechatError(-1)
	}
	e.mu.Lock()
	cur, ok := e.users.get(idKey{wechat, openid})
	// The signature was checked outside the lock: if the key changed
	// meanwhile (a login, another reset), it was not made with the current
	// key, and the user's new key must not be overwritten.
	ok = ok && cur == rec
	if ok {
		rec.sessionKey = fresh
		e.rememberLocked(wechat, openid, rec)
	}
	e.mu.Unlock()
	if !ok {
		return e.wechatError(87009)
	}
	e.log.Debug("emulator: session key reset", "appid", rec.appid, "user", rec.user)
	body, _ := json.Marshal(struct {
		Errcode    int    `json:"errcode"`
		Errmsg     string `json:"errmsg"`
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
	}{0, "ok", openid, fresh})
	return reply{status: http.StatusOK, contentType: wechatContentType, body: body}
}

// wechatPhoneNumber serves POST /wxa/business/getuserphonenumber
// (docs/platforms/wechat.md, "Phone numbers"): a phone code from PhoneCode,
// single use, 5 minutes, of the token's app; anything else is 40029. With an
// openid in the body, as WeChat checks it, a good code issued to another
// user is refused with 40003 (WeChat documents the check but no errcode for
// it) and is not spent; without one, nothing is checked, as for clients
// older than the parameter.
func (e *Emulator) wechatPhoneNumber(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return e.wechatError(43002)
	}
	appid, rep, ok := e.wechatTokenApp(r)
	if !ok {
		return rep
	}
	var req struct {
		Code   string `json:"code"`
		OpenID string `json:"openid"` // optional: the user the code must belong to
	}
	data, err := io.ReadAll(r.Body) // capped by ServeHTTP
	if err != nil || json.Unmarshal(data, &req) != nil {
		return e.wechatError(47001)
	}
	if req.Code == "" {
		return e.wechatError(41008)
	}
	now := e.now()
	e.mu.Lock()
	u, st := e.claimPhoneLocked(now, wechat, appid, req.OpenID, req.Code)
	e.mu.Unlock()
	switch st {
	case phoneBadCode:
		return e.wechatError(40029)
	case phoneOtherUser:
		return e.wechatError(40003)
	}
	phone := phoneNumber(u.user)
	body, _ := json.Marshal(struct {
		Errcode   int       `json:"errcode"`
		Errmsg    string    `json:"errmsg"`
		PhoneInfo phoneInfo `json:"phone_info"`
	}{0, "ok", phoneInfo{phone, phone, phoneCountryCode, watermark{now.Unix(), appid}}})
	return reply{status: http.StatusOK, contentType: wechatContentType, body: body}
}

// phoneInfo is getuserphonenumber's phone_info. countryCode is a string,
// as WeChat's field table declares it and real answers carry it (one
// official example shows a number, which the published Go clients cannot
// decode).
type phoneInfo struct {
	PhoneNumber     string    `json:"phoneNumber"`
	PurePhoneNumber string    `json:"purePhoneNumber"`
	CountryCode     string    `json:"countryCode"`
	Watermark       watermark `json:"watermark"`
}

// watermark is WeChat's proof of origin in decrypted data and phone_info.
type watermark struct {
	Timestamp int64  `json:"timestamp"`
	AppID     string `json:"appid"`
}
