// Package alipay is the Alipay mini-program host: the my.getAuthCode
// exchange (alipay.system.oauth.token on the classic RSA2-signed gateway)
// and phone numbers from my.getPhoneNumber, which Alipay signs and
// encrypts with the app's content-encryption key
// (docs/platforms/alipay.md).
//
// Every request is signed with the app's private key, and every answer,
// errors included, must carry Alipay's signature over the exact bytes of
// its response node, checked with Alipay's public key before anything in
// it is believed. An answer that does not verify is never a login.
package alipay

import (
	"cmp"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// DefaultEndpoint is Alipay's production gateway host; the client posts
// to Endpoint + PathGateway.
const DefaultEndpoint = "https://openapi.alipay.com"

// PathGateway is the classic gateway's path, the same for every method.
const PathGateway = "/gateway.do"

// methodOAuthToken is the method that exchanges an auth code, and
// nodeOAuthToken the member of its answer that Alipay signs.
const (
	methodOAuthToken = "alipay.system.oauth.token"
	nodeOAuthToken   = "alipay_system_oauth_token_response"
)

// timestampLayout is the gateway's yyyy-MM-dd HH:mm:ss.
const timestampLayout = "2006-01-02 15:04:05"

// minKeyBits is the RSA size RSA2 (SHA256withRSA) keys have at Alipay.
const minKeyBits = 2048

// aesKeyLen is the length of a decoded content-encryption key (AES-128).
const aesKeyLen = 16

// host names Alipay in errors.
const host = string(platform.FamilyAlipay)

// Config configures a Client for one mini program.
type Config struct {
	AppID string
	// PrivateKey is the app's own key; its public half is the "app public
	// key" set in Alipay's console. It signs every request.
	PrivateKey *rsa.PrivateKey
	// AlipayPublicKey is the "Alipay public key" the console shows once
	// the app's key is set: it verifies every answer. It is not the app's
	// own public key.
	AlipayPublicKey *rsa.PublicKey
	// AESKey is base64 of the app's 16-byte content-encryption key (the
	// console's "interface content encryption" key). Optional: only
	// DecryptPhone needs it.
	AESKey secret.String
	// Endpoint is the base URL of the gateway; "" means DefaultEndpoint.
	// Point it at the emulator in development and tests.
	Endpoint string
	// HTTP is the client to use; nil means platform.NewHTTPClient with
	// defaults. Share one per platform.
	HTTP *http.Client
	// Now is the clock for request timestamps; nil means time.Now.
	// Timestamps are sent in Beijing time (UTC+8) whatever the zone.
	Now func() time.Time
}

// Client talks to Alipay for one mini program. It is safe for concurrent
// use.
type Client struct {
	appID   string
	key     *rsa.PrivateKey
	alipay  *rsa.PublicKey
	phone   cipher.Block // nil without an AES key
	url     string
	now     func() time.Time
	beijing *time.Location
	caller  *hostcall.Caller
}

var _ platform.Client = (*Client)(nil)

// New returns a Client, or an error naming what is missing or wrong (never
// a key).
func New(cfg Config) (*Client, error) {
	if cfg.AppID == "" {
		return nil, errors.New("alipay: app id is required")
	}
	if cfg.PrivateKey == nil {
		return nil, errors.New("alipay: the app's private key is required")
	}
	if err := cfg.PrivateKey.Validate(); err != nil {
		return nil, fmt.Errorf("alipay: private key: %w", err)
	}
	if n := cfg.PrivateKey.N.BitLen(); n < minKeyBits {
		return nil, fmt.Errorf("alipay: private key has %d bits; RSA2 needs at least %d", n, minKeyBits)
	}
	if cfg.AlipayPublicKey == nil {
		return nil, errors.New("alipay: the Alipay public key is required (certificate mode is not supported)")
	}
	if n := cfg.AlipayPublicKey.N.BitLen(); n < minKeyBits {
		return nil, fmt.Errorf("alipay: Alipay public key has %d bits; RSA2 needs at least %d", n, minKeyBits)
	}
	if cfg.AlipayPublicKey.Equal(cfg.PrivateKey.Public()) {
		// The commonest mix-up: every answer would fail to verify.
		return nil, errors.New("alipay: the Alipay public key is the app's own public key; use the one Alipay's console shows for the app")
	}
	var phone cipher.Block
	if !cfg.AESKey.IsZero() {
		k, err := base64.StdEncoding.DecodeString(cfg.AESKey.Reveal())
		if err == nil && len(k) == aesKeyLen {
			phone, err = aes.NewCipher(k)
		}
		clear(k)
		if phone == nil || err != nil {
			return nil, fmt.Errorf("alipay: AES key must be base64 of %d bytes", aesKeyLen)
		}
	}
	base, err := hostcall.BaseURL(cfg.Endpoint, DefaultEndpoint)
	if err != nil {
		return nil, fmt.Errorf("alipay: %w", err)
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = platform.NewHTTPClient(platform.HTTPConfig{})
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{
		appID:   cfg.AppID,
		key:     cfg.PrivateKey,
		alipay:  cfg.AlipayPublicKey,
		phone:   phone,
		url:     base + PathGateway,
		now:     now,
		beijing: time.FixedZone("CST", 8*60*60),
		caller:  &hostcall.Caller{Host: host, HTTP: hc},
	}, nil
}

// Flavor implements platform.Client.
func (c *Client) Flavor() platform.Flavor { return platform.FlavorAlipay }

// Exchange implements platform.Client: it trades the auth code from
// my.getAuthCode for the user's ids.
//
// Login.OpenID is the answer's open_id, or user_id for an app still in
// user_id mode; Login.UnionID is user_id whenever Alipay sends one, which
// is the same person across every app, so that an app moving from user_id
// to open_id keeps its users. SessionKey is zero: Alipay has none. The
// access and refresh tokens Alipay sends along are not kept.
//
// The code is sent once, and again only when the first attempt provably
// never left. An unknown, used or expired code is KindInvalidCode; an
// answer whose signature does not verify, or that carries none, is
// KindBadCredentials, whatever it says.
func (c *Client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	if err := hostcall.CheckCode(host, PathGateway, req.Code); err != nil {
		return nil, err
	}
	var out *platform.Login
	err := c.caller.Once(ctx, func(ctx context.Context) error {
		// Built per attempt: the timestamp and so the signature are
		// fresh.
		body, err := c.signedForm(map[string]string{
			"method":     methodOAuthToken,
			"grant_type": "authorization_code",
			"code":       req.Code,
		})
		if err != nil {
			return buildError(err)
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
		if err != nil {
			return buildError(errors.New("building request"))
		}
		hreq.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
		resp, err := c.caller.Send(ctx, hreq)
		if err != nil {
			return err
		}
		out, err = parseOAuthToken(resp, c.alipay, req.Code)
		return err
	})
	return out, err
}

// signedForm adds the common parameters to params, signs them all, and
// returns the form body.
func (c *Client) signedForm(params map[string]string) (string, error) {
	p := maps.Clone(params)
	p["app_id"] = c.appID
	p["format"] = "JSON"
	p["charset"] = "utf-8"
	p["sign_type"] = "RSA2"
	p["timestamp"] = c.now().In(c.beijing).Format(timestampLayout)
	p["version"] = "1.0"
	sig, err := sign(c.key, signContent(p))
	if err != nil {
		return "", err
	}
	form := url.Values{}
	for k, v := range p {
		form.Set(k, v)
	}
	form.Set("sign", sig)
	return form.Encode(), nil
}

// signContent is the gateway's string to sign: every parameter but sign,
// empty values dropped, names in byte order, name=value joined with &,
// values as they are (not URL-encoded). sign_type is included.
func signContent(params map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		if k == "sign" || v == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	return b.String()
}

// sign is RSA2: SHA256withRSA (PKCS #1 v1.5), base64.
func sign(key *rsa.PrivateKey, content string) (string, error) {
	h := sha256.Sum256([]byte(content))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		return "", fmt.Errorf("signing request: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Alipay's result codes (code) this package tells apart.
const (
	codeSuccess     = "10000"
	codeUnavailable = "20000" // service unavailable (isp.unknow-error)
	codeAuthority   = "20001" // insufficient authorization
	codeMissing     = "40001" // a required parameter is missing
	codeRateLimited = "40005" // call frequency exceeded
	codePermission  = "40006" // the app lacks the permission
)

// subInvalidCode is the sub_code of an unknown, used or expired auth
// code: Alipay does not tell them apart.
const subInvalidCode = "isv.code-invalid"

// node is the response node's fields this package reads.
type node struct {
	code, msg, subCode, subMsg string
	userID, openID             string
}

// parseOAuthToken reads an answer of alipay.system.oauth.token. The
// signature is checked over the node's exact bytes before any of its
// fields is read; code is removed from Alipay's messages (the gateway
// quotes its string to sign, code included, when our signature fails).
func parseOAuthToken(resp *hostcall.Response, pub *rsa.PublicKey, code string) (*platform.Login, error) {
	fail := func(kind platform.Kind, err error) *platform.Error {
		return &platform.Error{Host: host, Endpoint: PathGateway, Kind: kind, Status: resp.Status, Err: err}
	}
	a, err := extractSigned(resp.Body, nodeOAuthToken)
	switch {
	case errors.Is(err, errSyntax):
		return nil, fail(platform.KindUnavailable, err)
	case errors.Is(err, errNoNode) && resp.Status/100 != 2:
		return nil, hostcall.StatusError(host, PathGateway, resp)
	case errors.Is(err, errNoSign):
		// Alipay leaves an answer unsigned when it cannot tell whose key to
		// use: an unknown app id, no key set in the console.
		return nil, fail(platform.KindBadCredentials, fmt.Errorf("%w%s", err, unverifiedHint(a.content, code)))
	case err != nil:
		return nil, fail(platform.KindUnknown, err)
	}
	if err := verify(pub, a.content, a.sign); err != nil {
		// Most often the configured Alipay public key is not this app's.
		return nil, fail(platform.KindBadCredentials, fmt.Errorf("%w%s", err, unverifiedHint(a.content, code)))
	}
	n, err := readNode(a.content)
	if err != nil {
		return nil, fail(platform.KindUnknown, err)
	}
	if a.node == nodeError || (n.code != "" && n.code != codeSuccess) {
		return nil, apiError(resp.Status, n, code)
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError(host, PathGateway, resp)
	}
	if n.openID == "" && n.userID == "" {
		return nil, fail(platform.KindUnknown, errors.New("answer without open_id or user_id"))
	}
	return &platform.Login{OpenID: cmp.Or(n.openID, n.userID), UnionID: n.userID}, nil
}

// maxIDLen bounds an id; real ones are 16 (user_id) to about 44 (open_id)
// characters.
const maxIDLen = 128

// readNode reads the verified node. Its members are matched by exact name
// (encoding/json would also take "USER_ID"), a name twice is refused, and
// the fields read must be strings; the tokens are never read.
func readNode(content []byte) (*node, error) {
	members, err := objectMembers(content)
	if err != nil {
		return nil, fmt.Errorf("response node: %w", err)
	}
	var n node
	fields := map[string]*string{
		"code": &n.code, "msg": &n.msg, "sub_code": &n.subCode, "sub_msg": &n.subMsg,
		"user_id": &n.userID, "open_id": &n.openID,
	}
	for _, m := range members {
		dst, ok := fields[m.name]
		if !ok || string(m.raw) == "null" {
			continue
		}
		if json.Unmarshal(m.raw, dst) != nil {
			if m.name != "code" || !(&scanner{b: m.raw}).number() {
				return nil, fmt.Errorf("response node: %s is not a string", m.name)
			}
			// A numeric code is the same code.
			*dst = string(m.raw)
		}
	}
	if len(n.userID) > maxIDLen || len(n.openID) > maxIDLen {
		return nil, errors.New("response node: an id is too long")
	}
	return &n, nil
}

// apiError builds the error for a verified node that reports a failure,
// code removed from Alipay's messages.
func apiError(status int, n *node, code string) *platform.Error {
	msg := strings.Join(slices.DeleteFunc([]string{n.subCode, n.subMsg}, func(s string) bool { return s == "" }), ": ")
	if n.msg != "" {
		msg = strings.TrimSpace(msg + " (" + n.msg + ")")
	}
	return &platform.Error{Host: host, Endpoint: PathGateway, Kind: classify(n.code, n.subCode),
		Code: n.code, Message: hostcall.Scrub(msg, code), Status: status}
}

// classify maps Alipay's code and sub_code to a kind
// (docs/platforms/alipay.md, "Errors"). sub_code is the precise one and
// is looked at first.
func classify(code, subCode string) platform.Kind {
	switch subCode {
	case subInvalidCode:
		return platform.KindInvalidCode
	case "isv.invalid-signature", "isv.invalid-signature-type", "isv.missing-signature",
		"isv.missing-signature-type", "isv.missing-signature-config", "isv.missing-signature-key",
		"isv.invalid-app-id", "isv.missing-app-id", "isv.invalid-timestamp", "isv.missing-timestamp",
		"isv.invalid-charset", "isv.invalid-format", "isv.invalid-method", "isv.missing-method",
		"isv.missing-version", "isv.invalid-version", "isv.grant-type-invalid",
		"isv.insufficient-isv-permissions", "isv.not-support-app-auth", "aop.invalid-app-auth-token":
		// Our request or the app's setup is wrong, not the user's code.
		return platform.KindBadCredentials
	}
	switch code {
	case codeUnavailable:
		// Not KindBusy, which would send the code again: it reached
		// Alipay, and may have been spent.
		return platform.KindUnavailable
	case codeRateLimited:
		return platform.KindRateLimited
	case codeMissing, codeAuthority, codePermission:
		return platform.KindBadCredentials
	}
	return platform.KindUnknown
}

// unverifiedHint names, for logs, the code and sub_code an answer that
// could not be verified claims, when they look like Alipay's codes: they
// point at the misconfiguration, but nothing acts on them.
func unverifiedHint(content []byte, code string) string {
	if content == nil {
		return ""
	}
	n, err := readNode(content)
	if err != nil || !isToken(n.code) || !isToken(n.subCode) || (n.code == "" && n.subCode == "") {
		return ""
	}
	return hostcall.Scrub(fmt.Sprintf(" (unverified: code %q sub_code %q)", n.code, n.subCode), code)
}

// isToken reports whether s is short and made of the characters Alipay's
// codes use.
func isToken(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func buildError(err error) *platform.Error {
	return &platform.Error{Host: host, Endpoint: PathGateway, Kind: platform.KindUnknown, Err: err}
}
