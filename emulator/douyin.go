package emulator

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// Douyin (docs/platforms/douyin.md). Anonymous users are a namespace of
// their own: an anonymous code is minted and exchanged as a login code of
// the internal platform douyinAnon, so neither kind of code passes for the
// other, and the openid of douyinAnon is the anonymous_openid.
const (
	douyin     = "douyin"
	douyinAnon = "douyin-anonymous"
)

// Douyin's paths.
const (
	douyinPathCode2Session = "/api/apps/v2/jscode2session"
	douyinPathToken        = "/api/apps/v2/token"
	douyinPathPhone        = "/api/apps/v1/get_phonenumber_info/"
)

const douyinContentType = "application/json"

// Douyin's err_no values the emulator answers with
// (docs/platforms/douyin.md, "Error codes").
const (
	douyinBusy          = -1
	douyinParams        = 40014 // a parameter is empty, or the body is not JSON
	douyinBadAppID      = 40015
	douyinBadSecret     = 40017
	douyinBadCode       = 40018
	douyinBadAnonCode   = 40019
	douyinBadGrantType  = 40020
	douyinOpenParams    = 28001007 // the open platform's "invalid parameter"
	douyinTokenInvalid  = 28001003
	douyinTokenExpired  = 28001008
	douyinPhoneCodeGone = 28005187
)

// douyinMessage is the err_tips or err_msg of each err_no.
func douyinMessage(errNo int) string {
	switch errNo {
	case 0:
		return "success"
	case douyinBusy:
		return "system error"
	case douyinParams:
		return "bad params"
	case douyinBadAppID:
		return "bad appid"
	case douyinBadSecret:
		return "bad secret"
	case douyinBadCode:
		return "bad code"
	case douyinBadAnonCode:
		return "bad anonymous_code"
	case douyinBadGrantType:
		return "grant_type is not client_credential"
	case douyinOpenParams:
		return "invalid parameter"
	case douyinTokenInvalid:
		return "access_token is invalid"
	case douyinTokenExpired:
		return "access_token has expired"
	case douyinPhoneCodeGone:
		return "code is invalid, used or expired"
	}
	return "emulated error"
}

// logID imitates Douyin's log ids: the time in China, then 20 hex digits.
func (e *Emulator) logID() string {
	var b [10]byte
	_ = e.readRand(b[:]) // zeros are as good an id as any
	return e.now().UTC().Add(8*time.Hour).Format("20060102150405") + strings.ToUpper(hex.EncodeToString(b[:]))
}

// douyinReply is an answer of the mini-app APIs: err_no, err_tips, log_id,
// and data when it is not nil.
func (e *Emulator) douyinReply(errNo int, msg string, data any) reply {
	body, _ := json.Marshal(struct {
		ErrNo   int    `json:"err_no"`
		ErrTips string `json:"err_tips"`
		LogID   string `json:"log_id"`
		Data    any    `json:"data,omitempty"`
	}{errNo, msg, e.logID(), data})
	return reply{status: http.StatusOK, contentType: douyinContentType, body: body}
}

// douyinError is a login error: no data, as Douyin sends it.
func (e *Emulator) douyinError(errNo int) reply {
	return e.douyinReply(errNo, douyinMessage(errNo), nil)
}

// douyinFaultError is a fault rule's error in the shape of the path it
// hits: -1 unless the rule gives an Errcode, its Error as the message.
func (e *Emulator) douyinFaultError(rt *route, f *Fault) reply {
	errNo := cmp.Or(f.Errcode, douyinBusy)
	msg := cmp.Or(f.Error, douyinMessage(errNo))
	switch rt {
	case e.routes[douyinPathToken]:
		return e.douyinReply(errNo, msg, douyinTokenData{})
	case e.routes[douyinPathPhone]:
		return e.douyinOpenReply(errNo, msg, "")
	}
	return e.douyinReply(errNo, msg, nil)
}

// douyinOpenID spells an openid (or anonymous_openid) as Douyin's look:
// "_000" and 32 base64url characters, 36 in all.
func douyinOpenID(sum [32]byte) string {
	return "_000" + base64.RawURLEncoding.EncodeToString(sum[:24])
}

// douyinUnionID spells a unionid as Douyin's look: a UUID (version 5).
func douyinUnionID(sum [32]byte) string {
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// AnonymousOpenID returns the anonymous_openid a Douyin user of an app gets
// for an anonymous code: stable per app and user, and not the user's
// openid. It does not need the user to have logged in.
func (e *Emulator) AnonymousOpenID(appid, user string) string {
	return openID(douyinAnon, appid, user)
}

// LoginDouyin mints what tt.login gives a Douyin mini app: for a logged-in
// user a login code and an anonymous code; with anonymous, only an
// anonymous code (code is ""). Both are single use and live 5 minutes by
// Config.Now; exchanging them gives a fresh session key. With Config.Apps
// set, the app must be one of them.
func (e *Emulator) LoginDouyin(appid, user string, anonymous bool) (code, anonymousCode string, err error) {
	code, anonymousCode, cerr := e.loginDouyin(appid, user, "", anonymous)
	if cerr != nil {
		return "", "", cerr
	}
	return code, anonymousCode, nil
}

// loginDouyin mints the codes; sessionKey, when given, is what their
// exchange returns.
func (e *Emulator) loginDouyin(appid, user, sessionKey string, anonymous bool) (string, string, *controlError) {
	switch {
	case appid == "":
		return "", "", invalidRequest("appid is required")
	case user == "":
		return "", "", invalidRequest("user is required")
	}
	if cerr := e.knownApp(douyin, appid); cerr != nil {
		return "", "", cerr
	}
	if sessionKey != "" {
		if err := checkSessionKey(douyin, sessionKey); err != nil {
			return "", "", invalidRequest(err.Error())
		}
	}
	fail := func(err error) (string, string, *controlError) {
		e.log.Error("emulator: cannot mint a code", "err", err)
		return "", "", &controlError{status: 500, code: "internal_error", message: "cannot mint a code: " + err.Error()}
	}
	anon, err := e.mint(userKey{douyinAnon, appid, user}, sessionKey, false)
	if err != nil {
		return fail(err)
	}
	if anonymous {
		return "", anon, nil
	}
	code, err := e.mint(userKey{douyin, appid, user}, sessionKey, false)
	if err != nil {
		return fail(err)
	}
	return code, anon, nil
}

// controlLoginDouyin answers POST /_emulator/login for platform douyin.
func (e *Emulator) controlLoginDouyin(w http.ResponseWriter, appid, user, sessionKey string, anonymous bool) {
	code, anon, cerr := e.loginDouyin(appid, user, sessionKey, anonymous)
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Code          string `json:"code,omitempty"`
		AnonymousCode string `json:"anonymous_code"`
		Anonymous     bool   `json:"anonymous,omitempty"`
	}{code, anon, anonymous})
}

// douyinCode2Session serves POST /api/apps/v2/jscode2session
// (docs/platforms/douyin.md, "Login code exchange").
func (e *Emulator) douyinCode2Session(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return e.douyinError(douyinParams)
	}
	var req struct {
		AppID         string `json:"appid"`
		Secret        string `json:"secret"`
		Code          string `json:"code"`
		AnonymousCode string `json:"anonymous_code"`
	}
	data, err := io.ReadAll(r.Body) // capped by ServeHTTP
	if err != nil || json.Unmarshal(data, &req) != nil {
		return e.douyinError(douyinParams)
	}
	if req.AppID == "" || req.Secret == "" || (req.Code == "" && req.AnonymousCode == "") {
		return e.douyinError(douyinParams)
	}
	if a, known, checked := e.app(douyin, req.AppID); checked {
		if !known {
			return e.douyinError(douyinBadAppID)
		}
		if !secretOK(a.Secret, req.Secret) {
			return e.douyinError(douyinBadSecret)
		}
	}
	return e.douyinExchange(req.AppID, req.Code, req.AnonymousCode)
}

// douyinExchange redeems a login code, an anonymous code, or both. Both
// are checked and spent under one lock: a request one of whose codes is
// refused spends neither.
func (e *Emulator) douyinExchange(appid, code, anon string) reply {
	key, err := e.newSessionKey(douyin)
	if err != nil {
		return e.douyinError(douyinBusy)
	}
	xc := exchangeReq{platform: douyin, appid: appid, code: code}
	xa := exchangeReq{platform: douyinAnon, appid: appid, code: anon}
	var oc, oa openCode
	if code != "" {
		oc = e.openCandidate(xc)
	}
	if anon != "" {
		oa = e.openCandidate(xa)
	}
	var (
		u, ua            userKey
		openid, anonID   string
		given, givenAnon string
		out              = granted
		errNo            int
	)
	now := e.now()
	e.mu.Lock()
	if code != "" {
		if u, openid, given, out = e.claimLocked(now, xc, oc); out != granted {
			errNo = douyinBadCode
		}
	}
	if anon != "" && out == granted {
		if ua, anonID, givenAnon, out = e.claimLocked(now, xa, oa); out != granted {
			errNo = douyinBadAnonCode
			if code != "" {
				e.unclaimLocked(xc)
			}
		}
	}
	if out == granted {
		key = cmp.Or(given, givenAnon, key)
		if code != "" {
			e.rememberLocked(douyin, openid, userRecord{appid: u.appid, user: u.user, sessionKey: key})
		}
		if anon != "" {
			e.rememberLocked(douyinAnon, anonID, userRecord{appid: ua.appid, user: ua.user, sessionKey: key})
		}
	}
	e.mu.Unlock()
	if e.log.Enabled(context.Background(), slog.LevelDebug) {
		e.log.Debug("emulator: code exchange", "platform", douyin, "appid", appid, "user", cmp.Or(u.user, ua.user),
			"anonymous", code == "", "outcome", out.String())
	}
	if out != granted {
		return e.douyinError(errNo)
	}
	var unionid string
	if code != "" {
		unionid = unionID(douyin, e.owner(douyin, appid), u.user)
	}
	return e.douyinReply(0, douyinMessage(0), struct {
		SessionKey      string `json:"session_key"`
		OpenID          string `json:"openid"`
		AnonymousOpenID string `json:"anonymous_openid"`
		UnionID         string `json:"unionid"`
		DOpenID         string `json:"dopenid"`
	}{key, openid, anonID, unionid, ""})
}

// unclaimLocked gives back a code claimLocked granted: a refused request
// must not spend it.
func (e *Emulator) unclaimLocked(x exchangeReq) {
	if m, ok := e.codes.minted.get(x.code); ok {
		m.used = false
		return
	}
	k := e.codes.openKey(x.platform, x.code)
	delete(e.codes.open.cur, k)
	delete(e.codes.open.prev, k)
}

// douyinProfile is the public part of a Douyin user's info, its rawData.
type douyinProfile struct {
	NickName  string `json:"nickName"`
	AvatarURL string `json:"avatarUrl"`
	Gender    int    `json:"gender"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	Language  string `json:"language"`
}

// douyinUserData encrypts as WeChat does, AES-128-CBC under the session key
// (docs/platforms/douyin.md, "Decrypting user data"). The phone plaintext
// has a watermark; the user info has none, as Douyin documents none.
func (e *Emulator) douyinUserData(u userKey, key, kind string) (UserData, error) {
	pr := profileOf(u.user)
	var plain []byte
	var d UserData
	if kind == KindPhone {
		plain, _ = json.Marshal(struct {
			PhoneNumber     string          `json:"phoneNumber"`
			PurePhoneNumber string          `json:"purePhoneNumber"`
			CountryCode     string          `json:"countryCode"`
			Watermark       douyinWatermark `json:"watermark"`
		}{pr.phone, pr.phone, pr.phoneCountryCode, douyinWatermark{u.appid, e.now().Unix()}})
	} else {
		sum := digest("douyin-avatar", u.user)
		raw := douyinProfile{pr.nickName, "https://p3.douyinpic.com/aweme/100x100/" + hex.EncodeToString(sum[:16]) + ".jpeg",
			pr.gender, pr.city, pr.province, pr.country, pr.lang}
		plain, _ = json.Marshal(struct {
			OpenID string `json:"openId"`
			douyinProfile
			UnionID string `json:"unionId"`
		}{openID(douyin, u.appid, u.user), raw, unionID(douyin, e.owner(douyin, u.appid), u.user)})
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

// douyinWatermark is Douyin's proof of origin, appid first.
type douyinWatermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"`
}
