package emulator

import (
	"encoding/binary"
	"fmt"
	"net/http"
)

// phoneCountryCode: every simulated user has a mainland China number. It is
// a string wherever WeChat sends it: its field table says so, real answers
// carry "86", and published clients fail to decode a number.
const phoneCountryCode = "86"

// phoneNumber is a user's phone number: "1", a digit 3 to 9, then nine
// digits, all taken from SHA-256 of the user's name. It depends on the user
// alone, so it is the same in every app and on every platform, and it stays
// the same across restarts.
func phoneNumber(user string) string {
	sum := digest("phone", user)
	return fmt.Sprintf("1%d%09d", 3+sum[0]%7, binary.BigEndian.Uint64(sum[1:9])%1_000_000_000)
}

// PhoneNumber returns the phone number of a simulated user, as WeChat's
// purePhoneNumber and Baidu's mobile give it: 11 digits, country code 86,
// derived from the user's name alone (the same for every app and platform).
func (e *Emulator) PhoneNumber(user string) string { return phoneNumber(user) }

// PhoneCode mints a code for WeChat's getuserphonenumber, as the
// getPhoneNumber button gives one to a WeChat mini program: for this user
// of this app, single use, valid 5 minutes by Config.Now. The user need not
// have logged in. With Config.Apps set, the app must be one of them.
func (e *Emulator) PhoneCode(appid, user string) (string, error) {
	code, cerr := e.phoneCode(appid, user)
	if cerr != nil {
		return "", cerr
	}
	return code, nil
}

func (e *Emulator) phoneCode(appid, user string) (string, *controlError) {
	switch {
	case appid == "":
		return "", invalidRequest("appid is required")
	case user == "":
		return "", invalidRequest("user is required")
	}
	if cerr := e.knownApp(wechat, appid); cerr != nil {
		return "", cerr
	}
	code, err := e.mint(userKey{wechat, appid, user}, "", true)
	if err != nil {
		e.log.Error("emulator: cannot mint a phone code", "err", err)
		return "", &controlError{status: http.StatusInternalServerError, code: "internal_error", message: "cannot mint a code: " + err.Error()}
	}
	return code, nil
}

// controlPhoneCode: POST /_emulator/phonecode, the getPhoneNumber button.
// WeChat and Douyin have phone codes; "platform" left out means WeChat.
func (e *Emulator) controlPhoneCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Platform string `json:"platform"`
		AppID    string `json:"appid"`
		User     string `json:"user"`
	}
	if cerr := readJSON(w, r, &req); cerr != nil {
		writeControlError(w, cerr)
		return
	}
	p, ok := normalizePlatform(req.Platform)
	if req.Platform != "" && (!ok || (p != wechat && p != douyin)) {
		writeControlError(w, invalidRequest(`phone codes are WeChat's and Douyin's: platform must be "wechat", "douyin" or left out`))
		return
	}
	phoneCode := e.phoneCode
	if p == douyin {
		phoneCode = e.douyinPhoneCode
	}
	code, cerr := phoneCode(req.AppID, req.User)
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Code string `json:"code"`
	}{code})
}
