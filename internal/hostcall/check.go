package hostcall

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// DecodeJSON unmarshals an answer into v; a body that is not JSON is
// KindUnavailable: the platform gave no usable answer.
func DecodeJSON(host, endpoint string, r *Response, v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return &platform.Error{Host: host, Endpoint: endpoint, Kind: platform.KindUnavailable, Status: r.Status,
			Err: fmt.Errorf("answer is not JSON: %w", err)}
	}
	return nil
}

// StatusError is the error for a well-formed answer with no known error
// fields but a non-2xx status.
func StatusError(host, endpoint string, r *Response) *platform.Error {
	return &platform.Error{Host: host, Endpoint: endpoint, Kind: platform.KindUnavailable, Status: r.Status,
		Err: fmt.Errorf("HTTP status %d", r.Status)}
}

// Scrub removes every occurrence of the given values (codes, tokens) from a
// platform message before it is kept for logs.
func Scrub(msg string, values ...string) string {
	for _, v := range values {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	return msg
}

// CheckCode refuses an empty or oversized code before any call is made.
func CheckCode(host, endpoint, code string) error {
	if code == "" || len(code) > platform.MaxCodeLen {
		return &platform.Error{Host: host, Endpoint: endpoint, Kind: platform.KindInvalidCode,
			Err: errors.New("code is empty or too long")}
	}
	return nil
}

// BaseURL validates an endpoint override and returns it without a trailing
// slash, or def when it is empty.
func BaseURL(endpoint, def string) (string, error) {
	if endpoint == "" {
		return def, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("endpoint %q is not an http(s) base URL", endpoint)
	}
	return strings.TrimRight(endpoint, "/"), nil
}

// CheckLogin refuses a success answer that lacks what a login needs: an
// openid, and a session key that is base64 of keyLen bytes (anything else
// would fail every later decryption).
func CheckLogin(host, endpoint string, status int, openID, sessionKey string, keyLen int) error {
	fail := func(err error) error {
		return &platform.Error{Host: host, Endpoint: endpoint, Kind: platform.KindUnknown, Status: status, Err: err}
	}
	if openID == "" || sessionKey == "" {
		return fail(errors.New("answer without openid or session_key"))
	}
	if k, err := base64.StdEncoding.DecodeString(sessionKey); err != nil || len(k) != keyLen {
		return fail(fmt.Errorf("session_key is not base64 of %d bytes", keyLen))
	}
	return nil
}

// CheckAccessToken turns the fields of a success answer to a token fetch
// into the token and its lifetime, refusing an answer without a token or
// without a positive expires_in.
func CheckAccessToken(host, endpoint string, status int, token string, expiresIn wire.Int) (secret.String, time.Duration, error) {
	life, ok := wire.TokenLifetime(expiresIn)
	if token == "" || !ok {
		return secret.String{}, 0, &platform.Error{Host: host, Endpoint: endpoint, Kind: platform.KindUnknown, Status: status,
			Err: errors.New("answer without access_token or a positive expires_in")}
	}
	return secret.New(token), life, nil
}
