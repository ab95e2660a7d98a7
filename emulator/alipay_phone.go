package emulator

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
)

// AlipayPhone returns what my.getPhoneNumber gives an Alipay mini program
// for a simulated user, the JSON string the mini program posts to its
// server: {"response","sign","sign_type":"RSA2","encrypt_type":"AES",
// "charset":"UTF-8"}. response is the base64 of {"code":"10000",
// "msg":"Success","mobile":…} encrypted with the app's App.AESKey
// (AES-128-CBC, an all-zero iv, PKCS #7), and sign the gateway's signature
// (AlipayPublicKey) over response in its double quotes. The user need not
// have logged in. It needs Config.Apps, with the app and its AES key.
func (e *Emulator) AlipayPhone(appid, user string) (string, error) {
	b, cerr := e.alipayPhone(appid, user)
	if cerr != nil {
		return "", cerr
	}
	return string(b), nil
}

func (e *Emulator) alipayPhone(appid, user string) ([]byte, *controlError) {
	switch {
	case appid == "":
		return nil, invalidRequest("appid is required")
	case user == "":
		return nil, invalidRequest("user is required")
	}
	if cerr := e.knownApp(alipay, appid); cerr != nil {
		return nil, cerr
	}
	a, _, _ := e.app(alipay, appid)
	switch n := len(a.AESKey); {
	case n == 0: // also: no Config.Apps, so no key
		return nil, invalidRequest("Alipay encrypts phone numbers with the app's AES key, and app " + strconv.Quote(appid) +
			" has none: configure it with one")
	case n != 16:
		return nil, invalidRequest("the app's AES key has " + strconv.Itoa(n) + " bytes; Alipay's have 16")
	}
	var plain javaObject
	plain.str("code", alipayOK)
	plain.str("msg", alipayMsg(alipayOK))
	plain.str("mobile", phoneNumber(user))
	ct, err := alipayEncrypt(a.AESKey, plain.close())
	if err != nil {
		return nil, &controlError{status: http.StatusInternalServerError, code: "internal_error", message: "cannot encrypt: " + err.Error()}
	}
	response := base64.StdEncoding.EncodeToString(ct)
	// Not the gateway's Java print: the mini program hands this over as
	// it got it, and clients read it with any JSON decoder.
	b, err := json.Marshal(struct {
		Response    string `json:"response"`
		Sign        string `json:"sign"`
		SignType    string `json:"sign_type"`
		EncryptType string `json:"encrypt_type"`
		Charset     string `json:"charset"`
	}{response, e.alipaySign([]byte(`"` + response + `"`)), "RSA2", "AES", "UTF-8"})
	if err != nil { // strings only: never
		return nil, &controlError{status: http.StatusInternalServerError, code: "internal_error", message: err.Error()}
	}
	return b, nil
}

// alipayEncrypt is Alipay's content encryption: AES-CBC under key with an
// all-zero iv, PKCS #7 padding.
func alipayEncrypt(key, plain []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(plain)%aes.BlockSize
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(n)}, n)...)
	var iv [aes.BlockSize]byte
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(buf, buf)
	return buf, nil
}

// controlAlipayPhone answers POST /_emulator/userdata for platform alipay:
// the my.getPhoneNumber object itself.
func (e *Emulator) controlAlipayPhone(w http.ResponseWriter, appid, user, kind string) {
	var cerr *controlError
	switch kind {
	case KindPhone:
	case KindUserInfo:
		cerr = noPhoneAPI(alipay, kind)
	default:
		cerr = invalidRequest(`kind must be "phone" for Alipay`)
	}
	var b []byte
	if cerr == nil {
		b, cerr = e.alipayPhone(appid, user)
	}
	if cerr != nil {
		writeControlError(w, cerr)
		return
	}
	writeReply(w, reply{status: http.StatusOK, contentType: "application/json", body: append(b, '\n')})
}
