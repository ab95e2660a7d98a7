// Package wire is the part of calling a JSON service over HTTP that knows
// nothing of platform errors: one request whose answer is read through a
// size cap, with errors that never quote the URL, and the integers such
// services send as numbers or strings.
//
// It sits below package platform so that both platform.URLTokenSource and
// the hosts' caller (internal/hostcall) use it; hostcall imports platform,
// so platform cannot import hostcall.
package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Do performs req with hc and reads at most max bytes of the answer. It
// fails when there is no usable answer: transport error, timeout, a body over
// max, an empty body; status is then the answer's, or 0 when none came. It
// does not judge the status: some hosts send their errors with 4xx, so the
// body is looked at first. Errors never carry the URL: its query holds
// secrets and codes.
func Do(ctx context.Context, hc *http.Client, req *http.Request, max int64) (status int, body []byte, err error) {
	endpoint := req.URL.Path
	// net/http resends an idempotent request on its own when a reused
	// connection fails after the request was written; a one-time code would
	// then reach the platform twice. It never resends a request whose body
	// cannot be rewound, so a bodiless request gets an empty one-shot body
	// (the Transport sends nothing for it).
	if req.Body == nil || req.Body == http.NoBody {
		req.Body, req.GetBody, req.ContentLength = io.NopCloser(strings.NewReader("")), nil, 0
	}
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, scrubURLError(err, endpoint)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading body: %w", scrubURLError(err, endpoint))
	}
	if int64(len(body)) > max {
		return resp.StatusCode, nil, fmt.Errorf("body over %d bytes", max)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return resp.StatusCode, nil, errors.New("empty body")
	}
	return resp.StatusCode, body, nil
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

// MaxTokenLifetime caps the lifetime read from an expires_in. Real tokens
// live 2 hours (WeChat) to 30 days (Baidu); a larger number is taken as this
// much, which keeps the arithmetic from overflowing and only makes us
// refresh sooner than needed.
const MaxTokenLifetime = 366 * 24 * time.Hour

// TokenLifetime converts an expires_in in seconds, capped at
// MaxTokenLifetime; false when it is not positive.
func TokenLifetime(expiresIn Int) (time.Duration, bool) {
	if expiresIn <= 0 {
		return 0, false
	}
	if expiresIn >= Int(MaxTokenLifetime/time.Second) {
		return MaxTokenLifetime, true
	}
	return time.Duration(expiresIn) * time.Second, true
}
