package emulator

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// kuaishou is Kuaishou's family, in App.Family and the control API's
// "platform".
const kuaishou = "kuaishou"

// kuaishouTokenLife: 48 hours; a new fetch leaves the previous token valid
// (docs/platforms/kuaishou.md, "Access tokens").
const kuaishouTokenLife = 48 * time.Hour

// Kuaishou's result codes, those of its OAuth family
// (docs/platforms/kuaishou.md, "Result codes").
const (
	ksOK           = 1
	ksBadParameter = 100200100
	ksBadClient    = 100200101
	ksRejected     = 100200102
)

// kuaishouContentType: Kuaishou's answers are JSON.
const kuaishouContentType = "application/json"

// kuaishouError is a failure: a result other than 1 and error_msg, HTTP 200.
func kuaishouError(result int, msg string) reply {
	body, _ := json.Marshal(struct {
		Result   int    `json:"result"`
		ErrorMsg string `json:"error_msg"`
	}{result, msg})
	return reply{status: http.StatusOK, contentType: kuaishouContentType, body: body}
}

// kuaishouFault is a fault rule's error on a Kuaishou path: Errcode is the
// result (0 when the rule gave only Error), Error the message.
func kuaishouFault(f *Fault) reply {
	msg := f.Error
	if msg == "" {
		msg = "emulated error"
	}
	return kuaishouError(f.Errcode, msg)
}

// kuaishouParams reads a request's parameters from its form body and its
// query string alike: SDKs send either.
func kuaishouParams(r *http.Request) (url.Values, bool) {
	if err := r.ParseForm(); err != nil { // also a body over maxPlatformBody
		return nil, false
	}
	return r.Form, true
}

// kuaishouCredentials checks app_id and app_secret against the configured
// Kuaishou apps.
func (e *Emulator) kuaishouCredentials(p url.Values) (reply, bool) {
	appID, appSecret := p.Get("app_id"), p.Get("app_secret")
	switch {
	case appID == "":
		return kuaishouError(ksBadParameter, "app_id is required"), false
	case appSecret == "":
		return kuaishouError(ksBadParameter, "app_secret is required"), false
	}
	if a, known, checked := e.app(kuaishou, appID); checked && (!known || !secretOK(a.Secret, appSecret)) {
		return kuaishouError(ksBadClient, "invalid app_id or app_secret"), false
	}
	return reply{}, true
}

// kuaishouCode2Session serves POST /oauth2/mp/code2session
// (docs/platforms/kuaishou.md, "Login code exchange").
func (e *Emulator) kuaishouCode2Session(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return kuaishouError(ksBadParameter, "request method must be POST")
	}
	p, ok := kuaishouParams(r)
	if !ok {
		return kuaishouError(ksBadParameter, "malformed request body")
	}
	if rep, ok := e.kuaishouCredentials(p); !ok {
		return rep
	}
	appID, code := p.Get("app_id"), p.Get("js_code")
	if code == "" {
		return kuaishouError(ksBadParameter, "js_code is required")
	}
	g, oc := e.exchange(exchangeReq{platform: kuaishou, appid: appID, code: code})
	switch oc {
	case granted:
	case badCode:
		return kuaishouError(ksRejected, "js_code is invalid or expired")
	case usedCode:
		return kuaishouError(ksRejected, "js_code has been used")
	default:
		rep := kuaishouError(0, "internal error")
		rep.status = http.StatusInternalServerError
		return rep
	}
	body, _ := json.Marshal(struct {
		Result     int    `json:"result"`
		SessionKey string `json:"session_key"`
		OpenID     string `json:"open_id"`
	}{ksOK, g.sessionKey, g.openid})
	return reply{status: http.StatusOK, contentType: kuaishouContentType, body: body}
}

// kuaishouToken serves GET|POST /oauth2/access_token: the page says POST
// and shows a GET (docs/platforms/kuaishou.md, "Access tokens").
func (e *Emulator) kuaishouToken(r *http.Request) reply {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return kuaishouError(ksBadParameter, "request method must be POST")
	}
	p, ok := kuaishouParams(r)
	if !ok {
		return kuaishouError(ksBadParameter, "malformed request body")
	}
	if rep, ok := e.kuaishouCredentials(p); !ok {
		return rep
	}
	if p.Get("grant_type") != "client_credentials" {
		return kuaishouError(ksBadParameter, "grant_type must be client_credentials")
	}
	appID := p.Get("app_id")
	is, err := e.issueKuaishou(appID)
	if err != nil {
		rep := kuaishouError(0, "internal error")
		rep.status = http.StatusInternalServerError
		return rep
	}
	e.log.Debug("emulator: access token issued", "path", "/oauth2/access_token", "appid", appID)
	body, _ := json.Marshal(struct {
		Result      int    `json:"result"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}{ksOK, is.token, is.expiresIn, "bearer"})
	return reply{status: http.StatusOK, contentType: kuaishouContentType, body: body}
}

// issueKuaishou serves an access_token fetch: a new token each time; the
// previous one stays valid until its own expiry, older ones do not (the
// emulator keeps two per app).
func (e *Emulator) issueKuaishou(appid string) (tokenAnswer, error) {
	tok, err := e.newToken(ksAppToken)
	if err != nil {
		return tokenAnswer{}, err
	}
	now := e.now()
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	e.tokens.rotateLocked(tokenSlot{ksAppToken, appid}, tok, now, kuaishouTokenLife, -1)
	return answer(tok, kuaishouTokenLife), nil
}

// kuaishouUserData encrypts with AES-128-CBC under the session key, as
// WeChat's cipher does, but with no watermark. User info is what
// ks.getUserInfo decrypts to, gender a number, with rawData nickName and
// avatarUrl; phone data is WeChat's fields without the watermark
// (docs/platforms/kuaishou.md, "Decrypting user data" and "Phone numbers").
func (e *Emulator) kuaishouUserData(u userKey, key, kind string) (UserData, error) {
	pr := profileOf(u.user)
	var plain []byte
	var d UserData
	if kind == KindPhone {
		plain, _ = json.Marshal(struct {
			PhoneNumber     string `json:"phoneNumber"`
			PurePhoneNumber string `json:"purePhoneNumber"`
			CountryCode     string `json:"countryCode"`
		}{pr.phone, pr.phone, pr.phoneCountryCode})
	} else {
		avatar := digest("avatar", kuaishou, u.user)
		raw := struct {
			NickName  string `json:"nickName"`
			AvatarURL string `json:"avatarUrl"`
		}{pr.nickName, "https://p2.a.yximgs.com/uhead/AB/" + hex.EncodeToString(avatar[:16]) + ".jpg"}
		plain, _ = json.Marshal(struct {
			Gender    int    `json:"gender"`
			AvatarURL string `json:"avatarUrl"`
			NickName  string `json:"nickName"`
			OpenID    string `json:"openId"`
		}{pr.gender, raw.AvatarURL, raw.NickName, openID(kuaishou, u.appid, u.user)})
		rawJSON, _ := json.Marshal(raw)
		h := sha1.New()
		h.Write(rawJSON)
		h.Write([]byte(key))
		d.RawData, d.Signature = string(rawJSON), hex.EncodeToString(h.Sum(nil))
	}
	var iv [16]byte
	if err := e.readRand(iv[:]); err != nil {
		return UserData{}, err
	}
	var err error
	d.EncryptedData, d.IV, err = userdata.EncryptWeChat(secret.New(key), plain, iv[:])
	return d, err
}
