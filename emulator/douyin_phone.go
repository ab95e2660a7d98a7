package emulator

import (
	"cmp"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
)

// douyinOpenReply is an answer of Douyin's open platform
// (get_phonenumber_info): err_no, err_msg, log_id and data, a string, ""
// on errors.
func (e *Emulator) douyinOpenReply(errNo int, msg, data string) reply {
	body, _ := json.Marshal(struct {
		ErrNo  int    `json:"err_no"`
		ErrMsg string `json:"err_msg"`
		LogID  string `json:"log_id"`
		Data   string `json:"data"`
	}{errNo, msg, e.logID(), data})
	return reply{status: http.StatusOK, contentType: douyinContentType, body: body}
}

func (e *Emulator) douyinOpenError(errNo int, msg string) reply {
	return e.douyinOpenReply(errNo, cmp.Or(msg, douyinMessage(errNo)), "")
}

// DouyinPhoneCode mints a code for Douyin's get_phonenumber_info, as the
// getPhoneNumber button gives one to a Douyin mini app: for this user of
// this app, single use, valid 5 minutes by Config.Now. The user need not
// have logged in. The answer is encrypted with the app's
// App.RSAPublicKey; with Config.Apps set, the app must be one of them.
func (e *Emulator) DouyinPhoneCode(appid, user string) (string, error) {
	code, cerr := e.douyinPhoneCode(appid, user)
	if cerr != nil {
		return "", cerr
	}
	return code, nil
}

func (e *Emulator) douyinPhoneCode(appid, user string) (string, *controlError) {
	switch {
	case appid == "":
		return "", invalidRequest("appid is required")
	case user == "":
		return "", invalidRequest("user is required")
	}
	if cerr := e.knownApp(douyin, appid); cerr != nil {
		return "", cerr
	}
	code, err := e.mint(userKey{douyin, appid, user}, "", true)
	if err != nil {
		e.log.Error("emulator: cannot mint a phone code", "err", err)
		return "", &controlError{status: http.StatusInternalServerError, code: "internal_error", message: "cannot mint a code: " + err.Error()}
	}
	return code, nil
}

// douyinPhoneNumber serves POST /api/apps/v1/get_phonenumber_info/
// (docs/platforms/douyin.md, "Phone numbers"): the access-token header, a
// token of /api/apps/v2/token, names the app; a phone code of that app,
// single use, 5 minutes, gives the user's number encrypted with the app's
// RSA public key. Douyin documents no errors but the token's and the
// expired code's, so the emulator answers any refused code with the
// latter, and anything malformed with the open platform's "invalid
// parameter". A refused request does not spend the code.
func (e *Emulator) douyinPhoneNumber(r *http.Request) reply {
	if r.Method != http.MethodPost {
		return e.douyinOpenError(douyinOpenParams, "")
	}
	appid, st := e.checkToken(douyin, r.Header.Get("access-token"))
	switch st {
	case tokenOK:
	case tokenExpired:
		return e.douyinOpenError(douyinTokenExpired, "")
	default:
		return e.douyinOpenError(douyinTokenInvalid, "")
	}
	var req struct {
		Code string `json:"code"`
	}
	data, err := io.ReadAll(r.Body) // capped by ServeHTTP
	if err != nil || json.Unmarshal(data, &req) != nil || req.Code == "" {
		return e.douyinOpenError(douyinOpenParams, "")
	}
	a, _, _ := e.app(douyin, appid)
	if a.RSAPublicKey == nil {
		return e.douyinOpenError(douyinOpenParams, "the app has no public key set for phone numbers")
	}
	now := e.now()
	e.mu.Lock()
	u, claim := e.claimPhoneLocked(now, douyin, appid, "", req.Code)
	e.mu.Unlock()
	if claim != phoneGranted {
		return e.douyinOpenError(douyinPhoneCodeGone, "")
	}
	phone := phoneNumber(u.user)
	plain, _ := json.Marshal(struct {
		PhoneNumber     string          `json:"phoneNumber"`
		PurePhoneNumber string          `json:"purePhoneNumber"`
		CountryCode     string          `json:"countryCode"`
		Watermark       douyinWatermark `json:"watermark"`
	}{phone, phone, phoneCountryCode, douyinWatermark{appid, now.Unix()}})
	ct, err := e.rsaEncrypt(a.RSAPublicKey, plain)
	if err != nil {
		e.log.Error("emulator: cannot encrypt a phone number", "appid", appid, "err", err)
		return e.douyinOpenError(douyinBusy, "")
	}
	return e.douyinOpenReply(0, "", base64.StdEncoding.EncodeToString(ct))
}

// rsaEncrypt encrypts msg under pub with PKCS #1 v1.5 (type 2) padding, in
// as many blocks as it needs (at most the key's size less 11 bytes each),
// the ciphertexts joined. It is written out, not taken from crypto/rsa,
// whose encryptor is deprecated and ignores the emulator's Config.Rand.
func (e *Emulator) rsaEncrypt(pub *rsa.PublicKey, msg []byte) ([]byte, error) {
	k := pub.Size()
	if k < 64 || pub.E < 3 {
		return nil, errors.New("public key too small")
	}
	var out []byte
	for len(msg) > 0 {
		n := min(len(msg), k-11)
		em := make([]byte, k)
		em[1] = 2
		if err := e.nonzeroRand(em[2 : k-n-1]); err != nil {
			return nil, err
		}
		copy(em[k-n:], msg[:n])
		c := new(big.Int).Exp(new(big.Int).SetBytes(em), big.NewInt(int64(pub.E)), pub.N)
		out = append(out, c.FillBytes(make([]byte, k))...)
		msg = msg[n:]
	}
	return out, nil
}

// nonzeroRand fills b with random bytes other than zero.
func (e *Emulator) nonzeroRand(b []byte) error {
	if err := e.readRand(b); err != nil {
		return err
	}
	var one [1]byte
	for i := range b {
		for tries := 0; b[i] == 0; tries++ {
			if tries == 64 {
				return errors.New("random source yields only zeros")
			}
			if err := e.readRand(one[:]); err != nil {
				return err
			}
			b[i] = one[0]
		}
	}
	return nil
}
