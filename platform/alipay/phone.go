package alipay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrPhone is the one error of every DecryptPhone failure, whatever the
// cause: no AES key, a payload that is not encrypted, a signature that
// does not verify, bad base64, bad padding, a plaintext that is not a
// success with a number. Callers cannot tell the causes apart, and must
// not try to. ParsePhoneResponse's errors wrap it.
var ErrPhone = errors.New("alipay: cannot verify or decrypt the phone number")

// Bounds on what is looked at: a phone answer is a few hundred bytes.
const (
	maxPhoneJSON       = 16 << 10
	maxPhoneCiphertext = 4 << 10
	maxMobileLen       = 32
)

// PhoneResponse is what my.getPhoneNumber gives the mini program
// (res.response), parsed: the base64 ciphertext, Alipay's signature over
// it, and how both were made.
type PhoneResponse struct {
	Response    string // base64 of the AES ciphertext
	Sign        string // base64 RSA2 signature over the quoted Response
	SignType    string // "RSA2" ("" is taken as RSA2)
	EncryptType string // "AES" ("" is taken as AES)
	Charset     string // "UTF-8" ("" is taken as UTF-8)
}

// ParsePhoneResponse reads the JSON string my.getPhoneNumber gives,
// {"response":…,"sign":…,"sign_type":…,"encrypt_type":…,"charset":…}.
// Its members must be strings, none given twice. It only parses: nothing
// is verified until DecryptPhone. Its errors wrap ErrPhone.
func ParsePhoneResponse(s string) (PhoneResponse, error) {
	var p PhoneResponse
	if len(s) > maxPhoneJSON {
		return p, fmt.Errorf("alipay: phone response over %d bytes: %w", maxPhoneJSON, ErrPhone)
	}
	members, err := objectMembers([]byte(s))
	if err != nil {
		return p, fmt.Errorf("alipay: phone response: %w: %w", err, ErrPhone)
	}
	fields := map[string]*string{
		"response": &p.Response, "sign": &p.Sign, "sign_type": &p.SignType,
		"encrypt_type": &p.EncryptType, "charset": &p.Charset,
	}
	for _, m := range members {
		if dst, ok := fields[m.name]; ok && json.Unmarshal(m.raw, dst) != nil {
			// An object in response is an unencrypted payload, which
			// DecryptPhone refuses anyway.
			return PhoneResponse{}, fmt.Errorf("alipay: phone response: %s is not a string: %w", m.name, ErrPhone)
		}
	}
	return p, nil
}

// DecryptPhone returns the user's mobile number from a my.getPhoneNumber
// payload. It first verifies Alipay's RSA2 signature over the ciphertext
// as a quoted JSON string ("…", quotes included) with the Alipay public
// key, and only then decrypts it: AES-128-CBC under Config.AESKey with an
// all-zero iv and PKCS #7 padding. The plaintext must be
// {"code":"10000","msg":"Success","mobile":"…"}.
//
// A payload that is not encrypted is refused: Alipay encrypts phone
// numbers, and an app must have its content-encryption key set to use
// them. Every failure is ErrPhone itself, so that no caller can learn
// why (a padding oracle needs only that).
func (c *Client) DecryptPhone(p PhoneResponse) (mobile string, err error) {
	if c.phone == nil || !p.encryptedRSA2() || !isBase64(p.Response) || len(p.Response) > base64.StdEncoding.EncodedLen(maxPhoneCiphertext) {
		return "", ErrPhone
	}
	sig, err := base64.StdEncoding.DecodeString(p.Sign)
	if err != nil || verify(c.alipay, []byte(`"`+p.Response+`"`), sig) != nil {
		return "", ErrPhone
	}
	mobile, ok := decryptMobile(c.phone, p.Response)
	if !ok {
		return "", ErrPhone
	}
	return mobile, nil
}

// encryptedRSA2 reports whether p claims the one scheme DecryptPhone
// opens: RSA2 signature, AES content, UTF-8, and a response that is not
// plaintext JSON.
func (p PhoneResponse) encryptedRSA2() bool {
	return p.Response != "" && !strings.HasPrefix(p.Response, "{") &&
		(p.SignType == "" || p.SignType == "RSA2") &&
		(p.EncryptType == "" || p.EncryptType == "AES") &&
		(p.Charset == "" || strings.EqualFold(p.Charset, "UTF-8"))
}

// isBase64 reports whether s is made of the standard base64 alphabet and
// padding only: what may be quoted in a JSON string without escapes, so
// that the signed "…" is unambiguous.
func isBase64(s string) bool {
	for _, c := range []byte(s) {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// decryptMobile decrypts response and reads the number. The padding
// verdict is not acted on at once: the plaintext is read in any case (the
// whole buffer when the padding was bad), and the verdicts are combined at
// the end, so that bad padding does not answer measurably sooner than a
// bad plaintext.
func decryptMobile(block cipher.Block, response string) (string, bool) {
	buf, n, padOK, ok := openContent(block, response)
	if !ok {
		return "", false
	}
	defer clear(buf)
	mobile, plainOK := readPhonePlaintext(buf[:n])
	if padOK&plainOK != 1 {
		return "", false
	}
	return mobile, true
}

// openContent decodes response and decrypts it in place with AES-CBC
// under block and Alipay's all-zero iv. It returns the buffer, the
// unpadded length and the padding verdict (1 good, 0 bad; the length is
// the whole buffer's then), or false for a ciphertext refused before any
// cipher call: not base64, empty, not whole blocks, too long.
func openContent(block cipher.Block, response string) (buf []byte, n, padOK int, ok bool) {
	buf, err := base64.StdEncoding.DecodeString(response)
	if err != nil || len(buf) == 0 || len(buf)%aes.BlockSize != 0 || len(buf) > maxPhoneCiphertext {
		return nil, 0, 0, false
	}
	var iv [aes.BlockSize]byte
	cipher.NewCBCDecrypter(block, iv[:]).CryptBlocks(buf, buf)
	n, padOK = unpad(buf)
	return buf, n, padOK, true
}

// unpad checks PKCS #7 padding (block 16) in constant time: the pad byte
// n must be in 1..16, and the last n bytes must all equal n. Each of the
// last 16 bytes is examined with no branch on its value. It returns the
// unpadded length and 1, or len(b) and 0. len(b) must be a positive
// multiple of 16.
func unpad(b []byte) (int, int) {
	n := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		eq := subtle.ConstantTimeByteEq(b[len(b)-i], byte(n))
		good &= 1 ^ (inPad & (1 ^ eq)) // in the pad ⇒ equal to n
	}
	return subtle.ConstantTimeSelect(good, len(b)-n, len(b)), good
}

// readPhonePlaintext reads {"code":"10000","msg":"Success","mobile":"…"}:
// code must be "10000" and mobile a non-empty string of at most
// maxMobileLen bytes with no control characters. It returns 1 for a
// usable plaintext, 0 otherwise; the number is "" then.
func readPhonePlaintext(plain []byte) (string, int) {
	members, err := objectMembers(plain)
	if err != nil {
		return "", 0
	}
	var code, mobile string
	for _, m := range members {
		var dst *string
		switch m.name {
		case "code":
			dst = &code
		case "mobile":
			dst = &mobile
		default:
			continue
		}
		if json.Unmarshal(m.raw, dst) != nil {
			return "", 0
		}
	}
	if code != codeSuccess || mobile == "" || len(mobile) > maxMobileLen || strings.ContainsFunc(mobile, isControl) {
		return "", 0
	}
	return mobile, 1
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
