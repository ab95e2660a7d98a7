package userdata

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/mplogin/mplogin/secret"
)

// ErrDecrypt is the one error every decryption or verification failure
// returns: bad base64, a wrong key or iv length, a ciphertext that is empty,
// not whole blocks or over MaxCiphertext, bad padding, bad framing, a wrong
// app id or app_key, a stale watermark, or a plaintext that is not a JSON
// object. Callers cannot tell the causes apart, and must not try to.
var ErrDecrypt = errors.New("userdata: cannot decrypt or verify")

// MaxCiphertext is the largest decoded ciphertext accepted, in bytes.
// The encryptors refuse to produce anything longer.
const MaxCiphertext = 16 << 10

const (
	wechatKeyLen = 16 // AES-128
	baiduKeyLen  = 24 // AES-192
	ivLen        = aes.BlockSize

	wechatPadBlock = 16
	baiduPadBlock  = 32

	// baiduHeader is random(16) || len(4, big-endian).
	baiduRandomLen = 16
	baiduHeader    = baiduRandomLen + 4

	// maxFutureSkew is how far in the future a watermark timestamp may be
	// when WeChatOptions.MaxAge is set (client and platform clocks drift).
	maxFutureSkew = 5 * time.Minute

	// maxB64Ciphertext is the longest encryptedData string looked at: the
	// padded standard encoding of MaxCiphertext bytes. Anything longer is
	// refused before it is decoded.
	maxB64Ciphertext = (MaxCiphertext + 2) / 3 * 4
)

// WeChatOptions are the checks DecryptWeChat makes on the decrypted JSON.
type WeChatOptions struct {
	// AppID must equal watermark.appid. It is required: an empty AppID
	// makes every decryption fail.
	AppID string
	// MaxAge, when positive, is the oldest watermark.timestamp accepted;
	// a timestamp more than 5 minutes in the future is refused as well.
	// 0 = do not check the timestamp.
	MaxAge time.Duration
	// Now is the clock for MaxAge; nil = time.Now.
	Now func() time.Time

	watermark watermarkMode
}

// watermarkMode is what a host's plaintext promises about its watermark.
type watermarkMode int

const (
	watermarkRequired  watermarkMode = iota // WeChat, QQ: always there
	watermarkIfPresent                      // Douyin: on phone numbers, not known on profiles
	watermarkNone                           // Kuaishou: never
)

// DecryptWeChat decrypts a WeChat (or QQ) encryptedData: AES-128-CBC
// with key base64(sessionKey) and the client's iv, strict PKCS#7 with a
// 16-byte block. The plaintext must be a JSON object whose
// watermark.appid equals opt.AppID and, if opt.MaxAge > 0, whose
// watermark.timestamp is recent. It returns the plaintext JSON, or nil and
// ErrDecrypt.
func DecryptWeChat(sessionKey secret.String, encryptedData, iv string, opt WeChatOptions) ([]byte, error) {
	var kb [wechatKeyLen]byte
	defer clear(kb[:])
	var ivb [ivLen]byte
	if !decodeExact(kb[:], sessionKey.Reveal(), false) || !decodeExact(ivb[:], iv, true) || opt.AppID == "" {
		return nil, ErrDecrypt
	}
	buf, ok := decryptCBC(kb[:], ivb[:], encryptedData)
	if !ok {
		return nil, ErrDecrypt
	}
	plainLen, padOK := unpad(buf, wechatPadBlock)
	// The JSON and watermark checks run whether or not the padding was
	// good (on the whole buffer when it was not), so that a bad pad does
	// not answer measurably faster than bad JSON after a good pad.
	pt := buf[:plainLen:plainLen]
	if padOK&checkWatermark(pt, opt) != 1 {
		clear(buf)
		return nil, ErrDecrypt
	}
	return pt, nil
}

// DecryptDouyin decrypts a Douyin encryptedData: as DecryptWeChat, but a
// plaintext without a watermark member is accepted (Douyin documents one
// on phone numbers only); one that has a watermark must pass its checks.
func DecryptDouyin(sessionKey secret.String, encryptedData, iv string, opt WeChatOptions) ([]byte, error) {
	opt.watermark = watermarkIfPresent
	return DecryptWeChat(sessionKey, encryptedData, iv, opt)
}

// DecryptKuaishou decrypts a Kuaishou encryptedData: AES-128-CBC with key
// base64(sessionKey) and the client's iv, strict PKCS#7, a JSON object
// without a watermark (Kuaishou adds none, so nothing binds the payload to
// the app beyond the session key). It returns the plaintext JSON, or nil
// and ErrDecrypt.
func DecryptKuaishou(sessionKey secret.String, encryptedData, iv string) ([]byte, error) {
	// Any non-empty AppID: DecryptWeChat refuses an empty one, and there
	// is no watermark to compare it with.
	return DecryptWeChat(sessionKey, encryptedData, iv, WeChatOptions{AppID: "-", watermark: watermarkNone})
}

// DecryptBaidu decrypts a Baidu smart-program data/encryptedData:
// AES-192-CBC with key base64(sessionKey) (24 bytes) and the client's iv,
// PKCS#7 with a 32-byte block, plaintext
// random(16) || len(4, big-endian) || content(len) || appKey. The trailer
// must equal appKey and the content must be JSON. It returns the content,
// or nil and ErrDecrypt.
func DecryptBaidu(sessionKey secret.String, encryptedData, iv, appKey string) ([]byte, error) {
	var kb [baiduKeyLen]byte
	defer clear(kb[:])
	var ivb [ivLen]byte
	if !decodeExact(kb[:], sessionKey.Reveal(), false) || !decodeExact(ivb[:], iv, true) ||
		appKey == "" || len(appKey) > MaxCiphertext {
		return nil, ErrDecrypt
	}
	buf, ok := decryptCBC(kb[:], ivb[:], encryptedData)
	// The smallest well-formed plaintext is header + appKey + 1 pad byte.
	// Both lengths are public, so this branch leaks nothing.
	if !ok || len(buf) < baiduHeader+len(appKey)+1 {
		return nil, ErrDecrypt
	}
	plainLen, padOK := unpad(buf, baiduPadBlock)
	k := len(appKey)

	// The framing is checked without branching on the plaintext: the
	// length field must be exactly plainLen - header - k (read as a full
	// 32-bit big-endian value; want < 0 never matches it).
	n := binary.BigEndian.Uint32(buf[baiduRandomLen:baiduHeader])
	want := int64(plainLen - baiduHeader - k)
	frameOK := isZero64(uint64(n) ^ uint64(want))

	// With a good frame the trailer is buf[header+n : header+n+k]; with a
	// bad one any in-range slice of the same length is compared instead
	// (and the result discarded by frameOK).
	start := subtle.ConstantTimeSelect(frameOK, baiduHeader+int(n), 0)
	keyOK := subtle.ConstantTimeCompare(buf[start:start+k], []byte(appKey))

	end := subtle.ConstantTimeSelect(frameOK, baiduHeader+int(n), baiduHeader)
	content := buf[baiduHeader:end:end]
	jsonOK := 0
	if json.Valid(content) {
		jsonOK = 1
	}
	if padOK&frameOK&keyOK&jsonOK != 1 {
		clear(buf)
		return nil, ErrDecrypt
	}
	return content, nil
}

// decryptCBC decodes encryptedData and decrypts it in place. It refuses, before
// any cipher call, a ciphertext that is not valid base64, empty, not whole
// AES blocks or over MaxCiphertext. (Baidu's 32-byte pad block is a
// matter for unpad: its ciphertexts are still whole 16-byte AES blocks.)
func decryptCBC(key, iv []byte, encryptedData string) ([]byte, bool) {
	if len(encryptedData) == 0 || len(encryptedData) > maxB64Ciphertext {
		return nil, false
	}
	enc := pickEncoding(encryptedData)
	encryptedData = fixSpaces(encryptedData)
	buf := make([]byte, enc.DecodedLen(len(encryptedData)))
	n, err := enc.Decode(buf, []byte(encryptedData))
	if err != nil || n == 0 || n%aes.BlockSize != 0 || n > MaxCiphertext {
		return nil, false
	}
	buf = buf[:n]
	block, err := aes.NewCipher(key)
	if err != nil || len(iv) != block.BlockSize() {
		return nil, false
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, buf)
	return buf, true
}

// unpad checks PKCS#7 padding with block size bs (16 or 32) in constant
// time: the pad byte n must be in 1..bs (and at most len(b)), and the last n
// bytes must all equal n. Every one of the last min(bs, len(b)) bytes is
// examined, with no branch on their values. It returns the unpadded length
// and 1, or len(b) and 0. len(b) must be at least 1.
func unpad(b []byte, bs int) (int, int) {
	n := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) &
		subtle.ConstantTimeLessOrEq(n, bs) &
		subtle.ConstantTimeLessOrEq(n, len(b))
	m := min(bs, len(b)) // public: depends on lengths only
	for i := 1; i <= m; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		eq := subtle.ConstantTimeByteEq(b[len(b)-i], byte(n))
		good &= 1 ^ (inPad & (1 ^ eq)) // in the pad ⇒ equal to n
	}
	return subtle.ConstantTimeSelect(good, len(b)-n, len(b)), good
}

// isZero64 returns 1 if x == 0 and 0 otherwise, without branching.
func isZero64(x uint64) int {
	return int(((x | -x) >> 63) ^ 1)
}

// equalHashed compares a and b in constant time without leaking their
// lengths: both are hashed first.
func equalHashed(a, b []byte) int {
	ha := sha256.Sum256(a)
	hb := sha256.Sum256(b)
	return subtle.ConstantTimeCompare(ha[:], hb[:])
}

// pickEncoding is standard base64, with padding; without it (a length that
// is not a multiple of 4, not counting the CR and LF the decoder skips) the
// unpadded variant.
func pickEncoding(s string) *base64.Encoding {
	n := len(s)
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		n -= strings.Count(s, "\r") + strings.Count(s, "\n")
	}
	if n%4 != 0 {
		return base64.RawStdEncoding
	}
	return base64.StdEncoding
}

// fixSpaces undoes a form or query decoder that turned '+' into ' '.
func fixSpaces(s string) string {
	if strings.IndexByte(s, ' ') < 0 {
		return s
	}
	return strings.ReplaceAll(s, " ", "+")
}

// decodeExact decodes s into dst and reports whether it decoded to exactly
// len(dst) bytes. With spaces it first turns ' ' back into '+'.
func decodeExact(dst []byte, s string, spaces bool) bool {
	if spaces {
		s = fixSpaces(s)
	}
	enc := pickEncoding(s)
	// A string that cannot fit is refused before decoding (a decoded
	// length over len(dst)+2 would only be garbage or padding slack).
	if len(s) == 0 || enc.DecodedLen(len(s)) > len(dst)+2 {
		return false
	}
	var tmp [baiduKeyLen + 2]byte
	n, err := enc.Decode(tmp[:], []byte(s))
	ok := err == nil && n == len(dst)
	if ok {
		copy(dst, tmp[:n])
	}
	clear(tmp[:])
	return ok
}

// VerifyRawData reports whether signature is sha1(rawData + sessionKey) in
// hex (either case), compared in constant time. An empty session key never
// verifies: anyone could compute that signature.
func VerifyRawData(sessionKey secret.String, rawData, signature string) bool {
	if sessionKey.IsZero() || len(signature) != 2*sha1.Size {
		return false
	}
	var got [sha1.Size]byte
	if _, err := hex.Decode(got[:], []byte(signature)); err != nil {
		return false
	}
	h := sha1.New()
	h.Write([]byte(rawData))
	h.Write([]byte(sessionKey.Reveal()))
	var sum [sha1.Size]byte
	return hmac.Equal(h.Sum(sum[:0]), got[:])
}

// SessionSignature returns the lowercase hex HMAC-SHA256 of message keyed
// with the session_key string's own bytes (not its base64 decoding), as
// WeChat's checksession (message "") and resetusersessionkey expect. It
// signs outgoing requests; to check a signature a client sent, compare with
// hmac.Equal, never with ==.
func SessionSignature(sessionKey secret.String, message string) string {
	m := hmac.New(sha256.New, []byte(sessionKey.Reveal()))
	m.Write([]byte(message))
	return hex.EncodeToString(m.Sum(nil))
}

// EncryptWeChat is the inverse of DecryptWeChat's cipher layer: it pads
// plaintext with PKCS#7/16 and encrypts it with AES-128-CBC under
// base64(sessionKey). iv nil means a random one. It does not add or check a
// watermark; DecryptWeChat accepts the result only if plaintext carries one.
func EncryptWeChat(sessionKey secret.String, plaintext []byte, iv []byte) (encryptedData, ivB64 string, err error) {
	var kb [wechatKeyLen]byte
	defer clear(kb[:])
	if !decodeExact(kb[:], sessionKey.Reveal(), false) {
		return "", "", errors.New("userdata: session key must be base64 of 16 bytes")
	}
	return encryptCBC(kb[:], iv, plaintext, wechatPadBlock)
}

// EncryptBaidu is the inverse of DecryptBaidu: it frames
// random16 || len(content) || content || appKey, pads with PKCS#7/32 and
// encrypts with AES-192-CBC under base64(sessionKey). Nil iv or random16
// means random bytes.
func EncryptBaidu(sessionKey secret.String, content []byte, appKey string, iv []byte, random16 []byte) (encryptedData, ivB64 string, err error) {
	var kb [baiduKeyLen]byte
	defer clear(kb[:])
	if !decodeExact(kb[:], sessionKey.Reveal(), false) {
		return "", "", errors.New("userdata: session key must be base64 of 24 bytes")
	}
	if appKey == "" {
		return "", "", errors.New("userdata: empty app key")
	}
	if random16 == nil {
		random16 = make([]byte, baiduRandomLen)
		_, _ = rand.Read(random16)
	} else if len(random16) != baiduRandomLen {
		return "", "", errors.New("userdata: random prefix must be 16 bytes")
	}
	if len(content)+len(appKey) > MaxCiphertext {
		return "", "", errors.New("userdata: plaintext over MaxCiphertext")
	}
	pt := make([]byte, 0, baiduHeader+len(content)+len(appKey)+baiduPadBlock)
	pt = append(pt, random16...)
	pt = binary.BigEndian.AppendUint32(pt, uint32(len(content)))
	pt = append(pt, content...)
	pt = append(pt, appKey...)
	return encryptCBC(kb[:], iv, pt, baiduPadBlock)
}

// encryptCBC pads pt to a multiple of bs with PKCS#7 and encrypts it.
func encryptCBC(key, iv, pt []byte, bs int) (string, string, error) {
	if iv == nil {
		iv = make([]byte, ivLen)
		_, _ = rand.Read(iv)
	} else if len(iv) != ivLen {
		return "", "", errors.New("userdata: iv must be 16 bytes")
	}
	p := bs - len(pt)%bs
	if len(pt)+p > MaxCiphertext {
		return "", "", errors.New("userdata: ciphertext would exceed MaxCiphertext")
	}
	buf := make([]byte, len(pt)+p)
	copy(buf, pt)
	for i := len(pt); i < len(buf); i++ {
		buf[i] = byte(p)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", errors.New("userdata: bad key")
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), base64.StdEncoding.EncodeToString(iv), nil
}
