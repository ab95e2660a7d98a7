package platform

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HTTPConfig bounds every phase of an outbound call. Zero fields take the
// defaults of DefaultHTTPConfig.
type HTTPConfig struct {
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// Timeout bounds a whole request, body included.
	Timeout             time.Duration
	IdleConnTimeout     time.Duration
	MaxIdleConnsPerHost int
}

// DefaultHTTPConfig is what NewHTTPClient uses for zero fields.
var DefaultHTTPConfig = HTTPConfig{
	DialTimeout:           2 * time.Second,
	TLSHandshakeTimeout:   3 * time.Second,
	ResponseHeaderTimeout: 5 * time.Second,
	Timeout:               10 * time.Second,
	IdleConnTimeout:       90 * time.Second,
	MaxIdleConnsPerHost:   64,
}

// NewHTTPClient returns a client for one platform with every timeout set and
// redirects refused (a platform API never redirects; following one could
// send our query string, secret included, somewhere else).
func NewHTTPClient(c HTTPConfig) *http.Client {
	d := DefaultHTTPConfig
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	maxIdle := c.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = d.MaxIdleConnsPerHost
	}
	dialer := &net.Dialer{Timeout: pick(c.DialTimeout, d.DialTimeout), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   pick(c.TLSHandshakeTimeout, d.TLSHandshakeTimeout),
		ResponseHeaderTimeout: pick(c.ResponseHeaderTimeout, d.ResponseHeaderTimeout),
		IdleConnTimeout:       pick(c.IdleConnTimeout, d.IdleConnTimeout),
		MaxIdleConns:          maxIdle * 4,
		MaxIdleConnsPerHost:   maxIdle,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		Transport: tr,
		Timeout:   pick(c.Timeout, d.Timeout),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// DefaultMaxBody caps what is read of a platform's answer.
const DefaultMaxBody = 1 << 20

// Caller sends requests to one platform. The zero value is not usable: set
// Platform and HTTP.
type Caller struct {
	Platform string
	HTTP     *http.Client
	// MaxBody caps the answer's size; 0 means DefaultMaxBody.
	MaxBody int64
	// Backoff is the pause before the single retry; 0 means 100 ms. A
	// random jitter of up to half of it is added.
	Backoff time.Duration
}

// Response is a platform's answer: status and the whole (capped) body.
type Response struct {
	Status int
	Body   []byte
}

// Send performs the request and reads the answer. It fails with a
// *Error of KindUnavailable when there is no usable answer: transport error,
// timeout, a body over the cap, an empty body. It does not judge the status:
// the host's decoder looks at the body first, since some hosts send their
// errors with 4xx. Transport errors never carry the URL: its query holds
// secrets and codes.
func (c *Caller) Send(ctx context.Context, req *http.Request) (*Response, error) {
	endpoint := req.URL.Path
	// net/http resends an idempotent request on its own when a reused
	// connection fails after the request was written; a one-time code would
	// then reach the platform twice. It never resends a request whose body
	// cannot be rewound, so a bodiless request gets an empty one-shot body
	// (the Transport sends nothing for it).
	if req.Body == nil || req.Body == http.NoBody {
		req.Body, req.GetBody, req.ContentLength = io.NopCloser(strings.NewReader("")), nil, 0
	}
	resp, err := c.HTTP.Do(req.WithContext(ctx))
	if err != nil {
		return nil, c.fail(endpoint, 0, scrubURLError(err, endpoint))
	}
	defer resp.Body.Close()
	max := c.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, c.fail(endpoint, resp.StatusCode, fmt.Errorf("reading body: %w", scrubURLError(err, endpoint)))
	}
	if int64(len(body)) > max {
		return nil, c.fail(endpoint, resp.StatusCode, fmt.Errorf("body over %d bytes", max))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, c.fail(endpoint, resp.StatusCode, errors.New("empty body"))
	}
	return &Response{Status: resp.StatusCode, Body: body}, nil
}

func (c *Caller) fail(endpoint string, status int, err error) *Error {
	return &Error{Platform: c.Platform, Endpoint: endpoint, Kind: KindUnavailable, Status: status, Err: err}
}

// DecodeJSON unmarshals an answer into v; a body that is not JSON is
// KindUnavailable: the platform gave no usable answer.
func DecodeJSON(platformName, endpoint string, r *Response, v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return &Error{Platform: platformName, Endpoint: endpoint, Kind: KindUnavailable, Status: r.Status,
			Err: fmt.Errorf("answer is not JSON: %w", err)}
	}
	return nil
}

// StatusError is the error for a well-formed answer with no known error
// fields but a non-2xx status.
func StatusError(platformName, endpoint string, r *Response) *Error {
	return &Error{Platform: platformName, Endpoint: endpoint, Kind: KindUnavailable, Status: r.Status,
		Err: fmt.Errorf("HTTP status %d", r.Status)}
}

// Once runs attempt, and runs it a second time only when the first failed
// in a way that proves the request had no effect: the connection was never
// made, or the platform said it is busy. The retry waits a jittered backoff
// and happens only if the context leaves time for it. Use it for one-time
// codes, which must never be sent twice otherwise.
func (c *Caller) Once(ctx context.Context, attempt func(context.Context) error) error {
	err := attempt(ctx)
	if err == nil || !retryable(err) {
		return err
	}
	wait := c.Backoff
	if wait <= 0 {
		wait = 100 * time.Millisecond
	}
	wait += time.Duration(rand.Int64N(int64(wait/2) + 1))
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*wait {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return err
	case <-t.C:
	}
	return attempt(ctx)
}

func retryable(err error) bool {
	var pe *Error
	if !errors.As(err, &pe) {
		return false
	}
	if pe.Kind == KindBusy {
		return true
	}
	return pe.Kind == KindUnavailable && notSent(pe.Err)
}

// notSent reports whether err shows the request never left: a failed dial
// or name lookup. Anything later (a reset, a timeout) may have reached the
// platform.
func notSent(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// scrubURLError drops the URL from a *url.Error: its query carries secrets
// and codes. What remains is the operation, the path and the cause.
func scrubURLError(err error, endpoint string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &sendError{op: ue.Op, endpoint: endpoint, err: ue.Err}
	}
	return err
}

type sendError struct {
	op, endpoint string
	err          error
}

func (e *sendError) Error() string { return e.op + " " + e.endpoint + ": " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }
func (e *sendError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// Int is an integer that platforms send as a number or as a numeric string
// (WeChat's component login documents "errcode": "40029"). null and "" are 0.
type Int int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*n = 0
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
		if s == "" {
			*n = 0
			return nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A float such as 40029.0 is still the same code.
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("not an integer: %.40q", s)
		}
		v = int64(f)
	}
	*n = Int(v)
	return nil
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

// MaxCodeLen bounds what is sent as a login code; real codes are about 32
// bytes.
const MaxCodeLen = 512

// CheckCode refuses an empty or oversized code before any call is made.
func CheckCode(platformName, endpoint, code string) error {
	if code == "" || len(code) > MaxCodeLen {
		return &Error{Platform: platformName, Endpoint: endpoint, Kind: KindInvalidCode,
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
func CheckLogin(platformName, endpoint string, status int, openID, sessionKey string, keyLen int) error {
	fail := func(err error) error {
		return &Error{Platform: platformName, Endpoint: endpoint, Kind: KindUnknown, Status: status, Err: err}
	}
	if openID == "" || sessionKey == "" {
		return fail(errors.New("answer without openid or session_key"))
	}
	if k, err := base64.StdEncoding.DecodeString(sessionKey); err != nil || len(k) != keyLen {
		return fail(fmt.Errorf("session_key is not base64 of %d bytes", keyLen))
	}
	return nil
}
