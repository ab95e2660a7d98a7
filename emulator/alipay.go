package emulator

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// alipay is Alipay's family, in App.Family and the control API's
// "platform". Alipay is an RSA-signed gateway rather than a secret-keyed
// JSON API: the app signs every request with its private key, and the
// gateway signs every answer with its own.
const alipay = "alipay"

// Which user id alipay.system.oauth.token gives an app (App.AlipayMode).
// Alipay moved new apps from the 16-digit user_id to a per-app open_id,
// and sends both while an app is being switched over.
const (
	AlipayModeUserID = "user_id"
	AlipayModeOpenID = "open_id" // the default
	AlipayModeBoth   = "both"
)

const (
	alipayPath = "/gateway.do"
	// alipayMethod is the one gateway method the emulator serves, and
	// alipayNode the name of its answer's node: the method with its dots
	// made underscores, and "_response".
	alipayMethod    = "alipay.system.oauth.token"
	alipayNode      = "alipay_system_oauth_token_response"
	alipayErrorNode = "error_response"
	// alipayContentType: the classic gateway labels its JSON as HTML.
	alipayContentType = "text/html;charset=utf-8"
	// alipayTimestamp is the layout of the request's timestamp and of
	// auth_start, in China time.
	alipayTimestamp = "2006-01-02 15:04:05"
)

// What alipay.system.oauth.token grants: an access token for 15 days, a
// refresh token for 30, as real answers give them.
const (
	alipayTokenLife   = 1296000
	alipayRefreshLife = 2592000
)

// Alipay's codes; each has one msg (alipayMsg).
const (
	alipayOK          = "10000"
	alipayUnavailable = "20000"
	alipayMissing     = "40001"
	alipayInvalid     = "40002"
	alipayConditions  = "40003"
)

// alipayMsg is the msg Alipay sends with each of its codes.
func alipayMsg(code string) string {
	switch code {
	case alipayOK:
		return "Success"
	case alipayUnavailable:
		return "Service Currently Unavailable"
	case "20001":
		return "Insufficient Token Permissions"
	case alipayMissing:
		return "Missing Required Arguments"
	case alipayInvalid:
		return "Invalid Arguments"
	case alipayConditions:
		return "Insufficient Conditions"
	case "40004":
		return "Business Failed"
	case "40005":
		return "Call Limited"
	case "40006":
		return "Insufficient Permissions"
	}
	return "Unknown Error"
}

// The sub_codes the emulator answers with.
const (
	subUnknownError        = "isp.unknow-error" // sic
	subMissingMethod       = "isv.missing-method"
	subMissingAppID        = "isv.missing-app-id"
	subMissingSignType     = "isv.missing-signature-type"
	subMissingSign         = "isv.missing-signature"
	subMissingTimestamp    = "isv.missing-timestamp"
	subMissingVersion      = "isv.missing-version"
	subMissingSignConfig   = "isv.missing-signature-config"
	subInvalidParameter    = "isv.invalid-parameter"
	subInvalidMethod       = "isv.invalid-method"
	subInvalidAppID        = "isv.invalid-app-id"
	subInvalidSignType     = "isv.invalid-signature-type"
	subInvalidSignature    = "isv.invalid-signature"
	subInvalidCharset      = "isv.invalid-charset"
	subInvalidTimestamp    = "isv.invalid-timestamp"
	subInvalidFormat       = "isv.invalid-format"
	subGrantTypeInvalid    = "isv.grant-type-invalid"
	subCodeInvalid         = "isv.code-invalid"
	subRefreshTokenInvalid = "isv.refresh-token-invalid"
)

// alipaySub returns the code and the sub_msg Alipay sends with a sub_code,
// from its table of common errors and the oauth.token page; an unknown
// sub_code is a 40004 with no sub_msg of its own.
func alipaySub(subCode string) (code, subMsg string) {
	switch subCode {
	case subUnknownError:
		return alipayUnavailable, "系统繁忙"
	case subMissingMethod:
		return alipayMissing, "缺少方法名参数"
	case subMissingAppID:
		return alipayMissing, "缺少appId参数"
	case subMissingSignType:
		return alipayMissing, "缺少签名类型"
	case subMissingSign:
		return alipayMissing, "缺少签名参数"
	case subMissingTimestamp:
		return alipayMissing, "缺少时间戳参数"
	case subMissingVersion:
		return alipayMissing, "缺少版本参数"
	case subMissingSignConfig:
		return alipayConditions, "应用未配置对应签名算法的公钥或者证书"
	case subInvalidParameter:
		return alipayInvalid, "参数无效"
	case subInvalidMethod:
		return alipayInvalid, "不存在的方法名"
	case subInvalidAppID:
		return alipayInvalid, "无效的AppID参数"
	case subInvalidSignType:
		return alipayInvalid, "无效的签名类型"
	case subInvalidSignature:
		return alipayInvalid, "验签出错"
	case subInvalidCharset:
		return alipayInvalid, "字符集错误"
	case subInvalidTimestamp:
		return alipayInvalid, "非法的时间戳参数"
	case subInvalidFormat:
		return alipayInvalid, "无效的数据格式"
	case subGrantTypeInvalid:
		return alipayInvalid, "grant_type参数不正确"
	case subCodeInvalid:
		return alipayInvalid, "授权码code无效"
	case subRefreshTokenInvalid:
		return alipayInvalid, "刷新令牌refresh_token无效"
	}
	return "40004", ""
}

// checkAlipayKey keeps a configured gateway key only if it can sign: Go
// refuses keys under 1024 bits, and a broken key would sign nothing.
func (e *Emulator) checkAlipayKey(k *rsa.PrivateKey) *rsa.PrivateKey {
	if k == nil {
		return nil
	}
	if k.Size() < 128 || k.Validate() != nil {
		e.log.Error("emulator: Config.AlipayKey cannot sign (under 1024 bits, or invalid); using a generated key")
		return nil
	}
	return k
}

// checkAlipayApp warns of an Alipay app's settings the emulator cannot use
// and gives the mode its default.
func (e *Emulator) checkAlipayApp(a App) App {
	switch a.AlipayMode {
	case "":
		a.AlipayMode = AlipayModeOpenID
	case AlipayModeUserID, AlipayModeOpenID, AlipayModeBoth:
	default:
		e.log.Warn("emulator: unknown Alipay mode, using open_id", "appid", a.AppID, "mode", a.AlipayMode)
		a.AlipayMode = AlipayModeOpenID
	}
	if a.AESKey != nil && len(a.AESKey) != 16 {
		e.log.Warn("emulator: an Alipay AES key must have 16 bytes; this app will get no phone numbers", "appid", a.AppID, "bytes", len(a.AESKey))
	}
	a.AESKey = slices.Clone(a.AESKey) // the caller may reuse its slice
	return a
}

// alipaySigner is the gateway's key, generated on first use when Config
// gave none: a 2048-bit key takes tens of milliseconds, which emulators
// that never see an Alipay request should not pay.
func (e *Emulator) alipaySigner() *rsa.PrivateKey {
	e.alipayOnce.Do(func() {
		if e.alipayKey != nil {
			return
		}
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil { // crypto/rand does not fail since Go 1.24
			panic("emulator: cannot generate Alipay's gateway key: " + err.Error())
		}
		e.alipayKey = k
	})
	return e.alipayKey
}

// AlipayPublicKey returns the public key of Alipay's gateway, the one
// clients verify its answers and phone payloads with: that of
// Config.AlipayKey, or of the key the emulator generated.
func (e *Emulator) AlipayPublicKey() *rsa.PublicKey {
	return &e.alipaySigner().PublicKey
}

// alipaySign signs data with the gateway's key: SHA256withRSA, PKCS #1
// v1.5, base64.
func (e *Emulator) alipaySign(data []byte) string {
	h := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(nil, e.alipaySigner(), crypto.SHA256, h[:])
	if err != nil { // checkAlipayKey let no unusable key through
		e.log.Error("emulator: cannot sign an Alipay answer", "err", err)
		return ""
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// alipayReply is a gateway answer: {"<node>":<body>,"sign":"…"}, the sign
// over body exactly as sent, HTTP 200 whatever happened.
func (e *Emulator) alipayReply(node string, body []byte) reply {
	sign := e.alipaySign(body)
	out := make([]byte, 0, len(node)+len(body)+len(sign)+16)
	out = append(out, `{"`...)
	out = append(out, node...)
	out = append(out, `":`...)
	out = append(out, body...)
	out = append(out, `,"sign":"`...)
	out = append(out, sign...)
	out = append(out, `"}`...)
	return reply{status: http.StatusOK, contentType: alipayContentType, body: out}
}

// alipayError is an error in node: code, msg, sub_code, sub_msg.
func (e *Emulator) alipayError(node, code, subCode, subMsg string) reply {
	var o javaObject
	o.str("code", code)
	o.str("msg", alipayMsg(code))
	o.str("sub_code", subCode)
	o.str("sub_msg", subMsg)
	return e.alipayReply(node, o.close())
}

// alipayFail is the error of a sub_code, with its own code and sub_msg.
func (e *Emulator) alipayFail(node, subCode string) reply {
	code, subMsg := alipaySub(subCode)
	return e.alipayError(node, code, subCode, subMsg)
}

// alipayFault is a fault rule's error, signed like any answer, in the
// method's node (the gateway's own failures go there): Errcode is the
// code, 20000 when it is 0 or -1 (the other hosts' "system error", so that
// one rule for every path gives each host's), Error the sub_code,
// isp.unknow-error by default.
func (e *Emulator) alipayFault(f *Fault) reply {
	code := alipayUnavailable
	if f.Errcode != 0 && f.Errcode != -1 {
		code = strconv.Itoa(f.Errcode)
	}
	subCode, subMsg := subUnknownError, "系统繁忙"
	if f.Error != "" {
		subCode = f.Error
		if _, subMsg = alipaySub(f.Error); subMsg == "" {
			subMsg = "emulated error"
		}
	}
	return e.alipayError(alipayNode, code, subCode, subMsg)
}

// alipayGateway serves GET|POST /gateway.do for alipay.system.oauth.token.
// The parameters may come in the form body, the query string or both, as
// SDKs send them. Checks run in this order: the method (errors in
// error_response, there being no node for an unknown method), the common
// parameters, the app and the request's signature (errors in the method's
// node, where Alipay puts a bad signature), then the grant (errors in
// error_response, as Alipay sends this method's own). Only a granted code
// is spent.
func (e *Emulator) alipayGateway(r *http.Request) reply {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return e.alipayFail(alipayErrorNode, subInvalidParameter)
	}
	if err := r.ParseForm(); err != nil { // also a body over maxPlatformBody
		return e.alipayFail(alipayErrorNode, subInvalidParameter)
	}
	p := r.Form
	switch m := p.Get("method"); {
	case m == "":
		return e.alipayFail(alipayErrorNode, subMissingMethod)
	case m != alipayMethod:
		return e.alipayFail(alipayErrorNode, subInvalidMethod)
	}
	appID := p.Get("app_id")
	if rep, ok := e.alipayCheckRequest(p, appID); !ok {
		return rep
	}
	switch p.Get("grant_type") {
	case "authorization_code":
	case "refresh_token": // refresh tokens are issued but never kept
		return e.alipayFail(alipayErrorNode, subRefreshTokenInvalid)
	default:
		return e.alipayFail(alipayErrorNode, subGrantTypeInvalid)
	}
	return e.alipayExchange(appID, p.Get("code"))
}

// alipayCheckRequest checks the common parameters, the app and the
// signature; a refusal is an error in the method's node.
func (e *Emulator) alipayCheckRequest(p url.Values, appID string) (reply, bool) {
	fail := func(subCode string) (reply, bool) { return e.alipayFail(alipayNode, subCode), false }
	if appID == "" {
		return fail(subMissingAppID)
	}
	a, known, checked := e.app(alipay, appID)
	if checked && !known {
		return fail(subInvalidAppID)
	}
	switch st := p.Get("sign_type"); {
	case st == "":
		return fail(subMissingSignType)
	case st != "RSA2": // RSA (SHA-1) is Alipay's legacy; the emulator verifies RSA2 only
		return fail(subInvalidSignType)
	}
	if p.Get("sign") == "" {
		return fail(subMissingSign)
	}
	// The emulator speaks UTF-8 only; without a charset the real gateway
	// would read the request as GBK.
	if !strings.EqualFold(p.Get("charset"), "utf-8") {
		return fail(subInvalidCharset)
	}
	// The timestamp's format only: the emulator's clock may be a test's.
	if ts := p.Get("timestamp"); ts == "" {
		return fail(subMissingTimestamp)
	} else if _, err := time.Parse(alipayTimestamp, ts); err != nil {
		return fail(subInvalidTimestamp)
	}
	switch v := p.Get("version"); {
	case v == "":
		return fail(subMissingVersion)
	case v != "1.0":
		return fail(subInvalidParameter)
	}
	if f := p.Get("format"); f != "" && !strings.EqualFold(f, "json") {
		return fail(subInvalidFormat)
	}
	if !checked {
		return reply{}, true // any credentials: no key to verify with
	}
	if a.AlipayPublicKey == nil {
		return fail(subMissingSignConfig)
	}
	content := alipaySignContent(p)
	if !alipayVerify(a.AlipayPublicKey, content, p.Get("sign")) {
		// The gateway shows the string it verified, HTML-escaped.
		code, _ := alipaySub(subInvalidSignature)
		msg := "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：" + htmlEscape(content)
		return e.alipayError(alipayNode, code, subInvalidSignature, msg), false
	}
	return reply{}, true
}

// alipaySignContent is the string a request's signature covers: every
// parameter but sign, those with an empty value left out, sorted by name
// (byte order), "name=value" joined with "&", values as they are, not
// URL-encoded. Of a parameter given twice the first value counts, the one
// the rest of the gateway reads.
func alipaySignContent(p url.Values) string {
	keys := make([]string, 0, len(p))
	for k, vs := range p {
		if k != "sign" && k != "" && len(vs) > 0 && vs[0] != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(p[k][0])
	}
	return b.String()
}

// alipayVerify checks a base64 SHA256withRSA (PKCS #1 v1.5) signature.
func alipayVerify(pub *rsa.PublicKey, content, sign string) bool {
	sig, err := base64.StdEncoding.DecodeString(sign)
	if err != nil {
		return false
	}
	h := sha256.Sum256([]byte(content))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig) == nil
}

// htmlEscape escapes what the gateway escapes in the string it echoes.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// alipayExchange redeems an auth code and answers with the tokens and the
// user's id(s) in the app's mode.
func (e *Emulator) alipayExchange(appID, code string) reply {
	if code == "" {
		return e.alipayFail(alipayErrorNode, subCodeInvalid)
	}
	// The tokens are made before the code is claimed, so that a failing
	// random source does not spend it.
	access, err := e.alipayToken()
	if err != nil {
		return e.alipayFail(alipayNode, subUnknownError)
	}
	refresh, err := e.alipayToken()
	if err != nil {
		return e.alipayFail(alipayNode, subUnknownError)
	}
	x := exchangeReq{platform: alipay, appid: appID, code: code}
	open := e.openCandidate(x)
	now := e.now()
	e.mu.Lock()
	u, openid, _, oc := e.claimLocked(now, x, open)
	e.mu.Unlock()
	if e.log.Enabled(context.Background(), slog.LevelDebug) {
		e.log.Debug("emulator: code exchange", "platform", alipay, "appid", appID, "user", u.user, "outcome", oc.String())
	}
	if oc != granted {
		return e.alipayFail(alipayErrorNode, subCodeInvalid)
	}
	a, _, _ := e.app(alipay, appID)
	mode := a.AlipayMode
	if mode == "" {
		mode = AlipayModeOpenID // no Config.Apps
	}
	// Fields in the order real answers carry them: the user_id answer's
	// alphabetical, open_id after refresh_token.
	var o javaObject
	o.str("access_token", access)
	if mode != AlipayModeOpenID {
		o.str("alipay_user_id", alipayLongUserID(u.user))
	}
	if mode != AlipayModeUserID {
		o.str("auth_start", now.UTC().Add(8*time.Hour).Format(alipayTimestamp)) // China time
	}
	o.num("expires_in", alipayTokenLife)
	o.num("re_expires_in", alipayRefreshLife)
	o.str("refresh_token", refresh)
	if mode != AlipayModeOpenID {
		o.str("user_id", alipayUserID(u.user))
	}
	if mode != AlipayModeUserID {
		o.str("open_id", openid)
	}
	return e.alipayReply(alipayNode, o.close())
}

// alipayToken makes an access or refresh token in Alipay's look:
// "authusrB", 29 hex digits, a capital letter and two digits, 40 in all.
// The emulator keeps none: no API it serves takes them.
func (e *Emulator) alipayToken() (string, error) {
	var b [17]byte
	if err := e.readRand(b[:]); err != nil {
		return "", err
	}
	h := hex.EncodeToString(b[:15])
	return fmt.Sprintf("authusrB%s%c%02d", h[:29], 'A'+b[15]%26, b[16]%100), nil
}

// alipayCode makes an auth code in Alipay's look: 28 hex digits, two
// capital letters and two digits, 32 in all.
func (e *Emulator) alipayCode() (string, error) {
	var b [17]byte
	if err := e.readRand(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%c%c%02d", hex.EncodeToString(b[:14]), 'A'+b[14]%26, 'A'+b[15]%26, b[16]%100), nil
}

// alipayUserID is a user's user_id: "2088" and 12 digits. Alipay gives a
// user one user_id in every app, whoever owns it, so it depends on the
// user alone.
func alipayUserID(user string) string {
	sum := digest("alipay-user-id", user)
	return fmt.Sprintf("2088%012d", binary.BigEndian.Uint64(sum[:8])%1_000_000_000_000)
}

// alipayLongUserID is the older 32-digit alipay_user_id of user_id-mode
// answers: "2088" and 28 digits.
func alipayLongUserID(user string) string {
	sum := digest("alipay-long-user-id", user)
	const e14 = 100_000_000_000_000
	return fmt.Sprintf("2088%014d%014d", binary.BigEndian.Uint64(sum[:8])%e14, binary.BigEndian.Uint64(sum[8:16])%e14)
}

// alipayOpenID spells an open_id as real ones look: "083" and 44 base64url
// characters, 47 in all; sum and tail are two hashes of (app, user).
func alipayOpenID(sum, tail [32]byte) string {
	var b [33]byte
	copy(b[:], sum[:])
	b[32] = tail[0]
	return "083" + base64.RawURLEncoding.EncodeToString(b[:])
}

// AlipayUserID returns the user_id Alipay gives a simulated user: 16
// digits starting 2088, the same in every app, sent by apps in the
// user_id and both modes. It is what UnionID gives for Alipay.
func (e *Emulator) AlipayUserID(user string) string { return alipayUserID(user) }

// javaObject writes a JSON object as Alipay's Java gateway prints it:
// fields in the order written, non-ASCII text as UTF-8, and "/" escaped as
// "\/". The gateway signs these exact bytes, so they are built here rather
// than by encoding/json.
type javaObject struct{ b []byte }

func (o *javaObject) key(k string) {
	if o.b == nil {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = appendJavaString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *javaObject) str(k, v string) {
	o.key(k)
	o.b = appendJavaString(o.b, v)
}

func (o *javaObject) num(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *javaObject) close() []byte {
	if o.b == nil {
		return []byte("{}")
	}
	return append(o.b, '}')
}

// appendJavaString appends s as a JSON string, escaping quotes,
// backslashes, slashes and control characters; invalid UTF-8 becomes
// U+FFFD.
func appendJavaString(b []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '/':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		default:
			if c < 0x20 {
				b = fmt.Appendf(b, `\u%04x`, c)
			} else {
				b = append(b, c) // bytes of multi-byte UTF-8 are all >= 0x80
			}
		}
	}
	return append(b, '"')
}
