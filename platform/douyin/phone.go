package douyin

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/mplogin/mplogin/internal/hostcall"
	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// ErrNoPrivateKey is what PhoneNumber's error wraps when the client has no
// Config.PrivateKey: Douyin encrypts phone numbers with the app's own RSA
// key, so without it a phone code cannot be used. The code is not sent.
var ErrNoPrivateKey = errors.New("douyin: phone codes need the app's rsa_private_key")

// Phone is the user's phone number as get_phonenumber_info returns it,
// decrypted (docs/platforms/douyin.md, "Phone numbers"). It is personal
// data: its String, GoString, Format and LogValue methods print no number,
// so that a Phone logged or printed by mistake leaks nothing. Read the
// fields.
type Phone struct {
	// PhoneNumber includes the country code for foreign numbers.
	PhoneNumber string
	// PurePhoneNumber is the number without the country code.
	PurePhoneNumber string
	// CountryCode is e.g. "86".
	CountryCode string
	// WatermarkAppID is the appid the number was issued for; the parser
	// has checked that it is the client's.
	WatermarkAppID string
	// WatermarkTimestamp is when Douyin issued the answer, in Unix seconds.
	WatermarkTimestamp int64
}

// String implements fmt.Stringer without the number.
func (p Phone) String() string {
	return "douyin.Phone{CountryCode:" + p.CountryCode + " PhoneNumber:" + secret.Redacted + "}"
}

// GoString implements fmt.GoStringer without the number, for %#v.
func (p Phone) GoString() string { return p.String() }

// Format implements fmt.Formatter so that every verb (%d and %x included)
// prints String.
func (p Phone) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// LogValue implements slog.LogValuer without the number.
func (p Phone) LogValue() slog.Value {
	return slog.GroupValue(slog.String("country_code", p.CountryCode), slog.String("phone_number", secret.Redacted),
		slog.String("watermark_appid", p.WatermarkAppID))
}

// PhoneNumber trades a getPhoneNumber button code (not a tt.login code) for
// the user's phone number (POST get_phonenumber_info on Douyin's open
// platform, the token in the access-token header). Douyin answers with the
// number encrypted under the app's public key; it is decrypted with
// Config.PrivateKey, and its watermark appid must be this client's.
//
// The code is single use: it is retried only when the first attempt
// provably never reached Douyin or Douyin said it was busy. An empty or
// oversized code, or one Douyin rejects, is KindInvalidCode; a rejected
// access token is KindTokenInvalid, so that the token manager fetches a new
// one and calls again (Douyin refuses the token before it looks at the
// code). An answer the private key cannot decrypt is KindBadCredentials:
// the key does not match the public key set in Douyin's console. Without a
// private key the error wraps ErrNoPrivateKey. The number never appears in
// an error.
func (c *Client) PhoneNumber(ctx context.Context, accessToken secret.String, code string) (*Phone, error) {
	if err := hostcall.CheckCode(host, PathPhoneNumber, code); err != nil {
		return nil, err
	}
	if c.key == nil {
		return nil, &platform.Error{Host: host, Endpoint: PathPhoneNumber, Kind: platform.KindBadCredentials, Err: ErrNoPrivateKey}
	}
	if accessToken.IsZero() {
		return nil, &platform.Error{Host: host, Endpoint: PathPhoneNumber, Kind: platform.KindBadCredentials,
			Err: errors.New("access token is empty")}
	}
	body, err := json.Marshal(struct {
		Code string `json:"code"`
	}{code})
	if err != nil {
		return nil, buildError(PathPhoneNumber)
	}
	var phone *Phone
	err = c.caller.Once(ctx, func(ctx context.Context) error {
		resp, err := c.post(ctx, c.open, PathPhoneNumber, body, accessToken)
		if err != nil {
			return err
		}
		phone, err = parsePhoneNumber(resp, c.key, c.appID, accessToken.Reveal(), code)
		return err
	})
	return phone, err
}

// parsePhoneNumber reads an answer of get_phonenumber_info for the app
// appID: a JSON string in data, the base64 of RSA ciphertext under key.
// The scrub values (access token, code) are removed from Douyin's message;
// no error ever carries the plaintext or a value of its phone fields.
func parsePhoneNumber(resp *hostcall.Response, key *rsa.PrivateKey, appID string, scrub ...string) (*Phone, error) {
	env, err := decodeEnvelope(PathPhoneNumber, resp)
	if err != nil {
		return nil, err
	}
	if env.ErrNo != 0 {
		return nil, apiError(PathPhoneNumber, resp.Status, env, scrub...)
	}
	if resp.Status/100 != 2 {
		return nil, hostcall.StatusError(host, PathPhoneNumber, resp)
	}
	fail := func(kind platform.Kind, msg string) error {
		return &platform.Error{Host: host, Endpoint: PathPhoneNumber, Kind: kind, Status: resp.Status, Err: errors.New(msg)}
	}
	var data string
	if json.Unmarshal(env.Data, &data) != nil || data == "" {
		return nil, fail(platform.KindUnknown, "answer without encrypted data")
	}
	plain, err := decryptPhone(key, data)
	if err != nil {
		return nil, fail(platform.KindBadCredentials, err.Error())
	}
	return parsePhonePlaintext(plain, appID, resp.Status)
}

// decryptPhone opens data: base64 (standard, or tolerantly URL-safe or
// unpadded) of one or more RSA blocks of the key's size, each PKCS #1 v1.5,
// the plaintexts joined. Douyin's samples decrypt one block; a plaintext
// longer than a block allows (a 1024-bit key) can only come in several.
//
// PKCS #1 v1.5 decryption is a padding oracle when an attacker can submit
// ciphertexts and learn whether they decrypt. Here only Douyin's answer,
// fetched over TLS, is ever decrypted, and the scheme is Douyin's choice.
func decryptPhone(key *rsa.PrivateKey, data string) ([]byte, error) {
	var ct []byte
	var err error
	for _, enc := range [...]*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if ct, err = enc.DecodeString(data); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("encrypted data is not base64")
	}
	k := key.Size()
	if len(ct) == 0 || len(ct)%k != 0 {
		return nil, fmt.Errorf("encrypted data is %d bytes, not a multiple of the key's %d", len(ct), k)
	}
	var plain []byte
	for block := range slices.Chunk(ct, k) {
		// nil options: PKCS #1 v1.5.
		p, err := key.Decrypt(nil, block, nil)
		if err != nil {
			return nil, errors.New("encrypted data does not decrypt with the private key; is its public key the one set in Douyin's console?")
		}
		plain = append(plain, p...)
	}
	return plain, nil
}

// phonePlaintext is the decrypted JSON.
type phonePlaintext struct {
	PhoneNumber     phoneString `json:"phoneNumber"`
	PurePhoneNumber phoneString `json:"purePhoneNumber"`
	CountryCode     countryCode `json:"countryCode"`
	Watermark       struct {
		AppID     string   `json:"appid"`
		Timestamp wire.Int `json:"timestamp"`
	} `json:"watermark"`
}

// parsePhonePlaintext reads the decrypted answer for the app appID. It
// needs a purePhoneNumber (a missing phoneNumber is taken to be the same)
// and a watermark appid equal to appID; otherwise it is KindUnknown.
func parsePhonePlaintext(plain []byte, appID string, status int) (*Phone, error) {
	fail := func(msg string) error {
		return &platform.Error{Host: host, Endpoint: PathPhoneNumber, Kind: platform.KindUnknown, Status: status, Err: errors.New(msg)}
	}
	var p phonePlaintext
	if err := json.Unmarshal(plain, &p); err != nil {
		// A syntax error names one character; any other decoding error may
		// quote a value, and the value may be the number.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fail("decrypted data is not JSON: " + se.Error())
		}
		return nil, fail("decrypted data has unexpected field types")
	}
	if p.PurePhoneNumber == "" {
		return nil, fail("decrypted data without purePhoneNumber")
	}
	if appID == "" || p.Watermark.AppID != appID {
		return nil, fail("watermark appid is not this app's")
	}
	num := string(p.PhoneNumber)
	if num == "" {
		num = string(p.PurePhoneNumber)
	}
	return &Phone{
		PhoneNumber:        num,
		PurePhoneNumber:    string(p.PurePhoneNumber),
		CountryCode:        string(p.CountryCode),
		WatermarkAppID:     p.Watermark.AppID,
		WatermarkTimestamp: int64(p.Watermark.Timestamp),
	}, nil
}

// phoneString is a JSON string whose decoding error never quotes the value.
type phoneString string

func (s *phoneString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("phone number is not a string")
	}
	*s = phoneString(v)
	return nil
}

// countryCode is a country code sent as a string (as documented) or a
// number; either is kept as its decimal text.
type countryCode string

func (c *countryCode) UnmarshalJSON(b []byte) error {
	t := strings.TrimSpace(string(b))
	switch {
	case t == "null":
		*c = ""
	case strings.HasPrefix(t, `"`):
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return errors.New("countryCode is not a string or an integer")
		}
		*c = countryCode(v)
	default:
		n, err := strconv.ParseUint(t, 10, 32)
		if err != nil {
			return errors.New("countryCode is not a string or an integer")
		}
		*c = countryCode(strconv.FormatUint(n, 10))
	}
	return nil
}
