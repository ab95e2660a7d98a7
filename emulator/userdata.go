package emulator

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// Kinds of user data, as POST /_emulator/userdata and UserData take them.
const (
	KindUserInfo = "userinfo" // getUserInfo (WeChat, Baidu)
	KindPhone    = "phone"    // the getPhoneNumber button's encrypted data
)

// ErrNoSession is what UserData's error wraps when the user holds no
// session key for the app: the user never exchanged a code there (or was
// forgotten, see usersPerGeneration). The control API answers it with 409.
var ErrNoSession = errors.New("emulator: the user has no session key for this app; exchange a login code first")

// UserData is encrypted user data as the mini program's client API hands it
// to the mini program, which posts it to its server: encryptedData and iv,
// and for user info of WeChat, QQ and Kuaishou also rawData and its
// signature.
type UserData struct {
	EncryptedData string `json:"encrypted_data"`
	IV            string `json:"iv"`
	RawData       string `json:"raw_data,omitempty"`  // user info only, not Baidu's
	Signature     string `json:"signature,omitempty"` // sha1(raw_data + session_key), hex; with RawData
}

// UserData encrypts a user's data with the session key the user holds now
// for the app (from the latest code exchange or WeChat session-key reset),
// as wx.getUserInfo / swan.getUserInfo (kind KindUserInfo) or the
// getPhoneNumber button (kind KindPhone) would. See the package
// documentation for the plaintexts. If the user holds no session key, the
// error wraps ErrNoSession.
func (e *Emulator) UserData(platform, appid, user, kind string) (UserData, error) {
	d, cerr := e.userData(platform, appid, user, kind)
	if cerr != nil {
		return UserData{}, cerr
	}
	return d, nil
}

func (e *Emulator) userData(platform, appid, user, kind string) (UserData, *controlError) {
	p, ok := normalizePlatform(platform)
	switch {
	case !ok:
		return UserData{}, invalidRequest(unknownPlatform)
	case appid == "":
		return UserData{}, invalidRequest("appid is required")
	case user == "":
		return UserData{}, invalidRequest("user is required")
	case kind != KindUserInfo && kind != KindPhone:
		return UserData{}, invalidRequest(`kind must be "userinfo" or "phone"`)
	}
	if cerr := noPhoneAPI(p, kind); cerr != nil {
		return UserData{}, cerr
	}
	if p == alipay {
		return UserData{}, invalidRequest("Alipay's phone data is not encrypted with a session key: use AlipayPhone")
	}
	if cerr := e.knownApp(p, appid); cerr != nil {
		return UserData{}, cerr
	}
	u := userKey{p, appid, user}
	key, ok := e.sessionOf(u)
	if !ok && p == douyin {
		// A user known only by an anonymous code holds that exchange's key.
		key, ok = e.sessionOf(userKey{douyinAnon, appid, user})
	}
	if !ok {
		return UserData{}, &controlError{status: http.StatusConflict, code: "no_session", cause: ErrNoSession,
			message: "user " + strconv.Quote(user) + " has no session key for " + p + " app " + strconv.Quote(appid) + "; exchange a login code first"}
	}
	var d UserData
	var err error
	switch p {
	case wechat:
		d, err = e.wechatUserData(u, key, kind)
	case qq:
		d, err = e.qqUserData(u, key)
	case kuaishou:
		d, err = e.kuaishouUserData(u, key, kind)
	case douyin:
		d, err = e.douyinUserData(u, key, kind)
	default:
		d, err = e.baiduUserData(u, key, kind)
	}
	if err != nil {
		e.log.Error("emulator: cannot encrypt user data", "platform", p, "appid", appid, "err", err)
		return UserData{}, &controlError{status: http.StatusInternalServerError, code: "internal_error", message: "cannot encrypt: " + err.Error()}
	}
	return d, nil
}

// profile is a simulated user's public profile, derived from the user's
// name alone.
type profile struct {
	nickName         string
	gender           int // 1 male, 2 female
	city, province   string
	wechatAvatar     string
	baiduHeadImgURL  string
	country, lang    string
	phone            string
	phoneCountryCode string
}

var places = [...]struct{ city, province string }{
	{"Guangzhou", "Guangdong"}, {"Shenzhen", "Guangdong"}, {"Hangzhou", "Zhejiang"}, {"Chengdu", "Sichuan"},
	{"Beijing", "Beijing"}, {"Shanghai", "Shanghai"}, {"Wuhan", "Hubei"}, {"Nanjing", "Jiangsu"},
}

func profileOf(user string) profile {
	sum := digest("profile", user)
	pl := places[int(sum[1])%len(places)]
	return profile{
		nickName:         user,
		gender:           1 + int(sum[0]%2),
		city:             pl.city,
		province:         pl.province,
		country:          "CN",
		lang:             "zh_CN",
		wechatAvatar:     "https://thirdwx.qlogo.cn/mmopen/vi_32/" + base64.RawURLEncoding.EncodeToString(sum[8:32]) + "/132",
		baiduHeadImgURL:  "https://himg.bdimg.com/sys/portrait/item/" + hex.EncodeToString(sum[8:24]) + ".jpg",
		phone:            phoneNumber(user),
		phoneCountryCode: phoneCountryCode,
	}
}

// wechatRawData is the public user info, rawData
// (docs/platforms/wechat.md, "rawData signature").
type wechatRawData struct {
	NickName  string `json:"nickName"`
	Gender    int    `json:"gender"`
	Language  string `json:"language"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	AvatarURL string `json:"avatarUrl"`
}

// wechatUserData encrypts with AES-128-CBC under the session key
// (docs/platforms/wechat.md, "Decrypting user data"); the plaintexts follow
// the official example (same file, "Test vectors") and the older phone
// button (same file, "Phone numbers"), where countryCode is a string.
func (e *Emulator) wechatUserData(u userKey, key, kind string) (UserData, error) {
	pr := profileOf(u.user)
	wm := watermark{e.now().Unix(), u.appid}
	var plain []byte
	var d UserData
	if kind == KindPhone {
		plain, _ = json.Marshal(struct {
			PhoneNumber     string    `json:"phoneNumber"`
			PurePhoneNumber string    `json:"purePhoneNumber"`
			CountryCode     string    `json:"countryCode"`
			Watermark       watermark `json:"watermark"`
		}{pr.phone, pr.phone, pr.phoneCountryCode, wm})
	} else {
		raw := wechatRawData{pr.nickName, pr.gender, pr.lang, pr.city, pr.province, pr.country, pr.wechatAvatar}
		plain, _ = json.Marshal(struct {
			OpenID string `json:"openId"`
			wechatRawData
			UnionID   string    `json:"unionId"`
			Watermark watermark `json:"watermark"`
		}{openID(wechat, u.appid, u.user), raw, unionID(wechat, e.owner(wechat, u.appid), u.user), wm})
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

// baiduUserData encrypts with Baidu's AES-192-CBC framing, the app key as
// trailer; the plaintexts are those Baidu documents, sex a number as in the
// official vector (docs/platforms/baidu.md, "Decrypting user data").
func (e *Emulator) baiduUserData(u userKey, key, kind string) (UserData, error) {
	pr := profileOf(u.user)
	var content []byte
	if kind == KindPhone {
		content, _ = json.Marshal(struct {
			Mobile string `json:"mobile"`
		}{pr.phone})
	} else {
		content, _ = json.Marshal(struct {
			OpenID     string `json:"openid"`
			NickName   string `json:"nickname"`
			HeadImgURL string `json:"headimgurl"`
			Sex        int    `json:"sex"`
		}{openID(baidu, u.appid, u.user), pr.nickName, pr.baiduHeadImgURL, pr.gender})
	}
	var rnd [32]byte // iv, then the 16-byte random prefix
	if err := e.readRand(rnd[:]); err != nil {
		return UserData{}, err
	}
	var d UserData
	var err error
	d.EncryptedData, d.IV, err = userdata.EncryptBaidu(secret.New(key), content, u.appid, rnd[:16], rnd[16:])
	return d, err
}

// controlUserData: POST /_emulator/userdata.
func (e *Emulator) controlUserData(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Platform string `json:"platform"`
		AppID    string `json:"appid"`
		User     string `json:"user"`
		Kind     string `json:"kind"`
	}
	if cerr := readJSON(w, r, &req); cerr != nil {
		writeControlError(w, cerr)
		return
	}
	if p, _ := normalizePlatform(req.Platform); p == alipay {
		e.controlAlipayPhone(w, req.AppID, req.User, req.Kind)
		return
	}
	d, cerr := e.userData(req.Platform, req.AppID, req.User, req.Kind)
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
