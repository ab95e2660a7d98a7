// Package hostcall is what the host packages (platform/wechat,
// platform/baidu, platform/douyin, platform/qq, platform/kuaishou,
// platform/alipay) share to call their platform: a Caller that sends one
// request, reads the answer through a cap, and sends a request again only
// when the first provably never arrived or the platform said it was busy;
// and the checks and error builders every host's parser uses, all failing
// with a *platform.Error.
//
// It is internal so that this plumbing is no part of the library's API:
// users see package platform and the hosts' clients.
package hostcall

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/mplogin/mplogin/internal/wire"
	"github.com/mplogin/mplogin/platform"
)

// DefaultMaxBody caps what is read of a platform's answer.
const DefaultMaxBody = 1 << 20

// Caller sends requests to one platform. The zero value is not usable: set
// Platform and HTTP.
type Caller struct {
	Host string
	HTTP *http.Client
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
// *platform.Error of KindUnavailable when there is no usable answer:
// transport error, timeout, a body over the cap, an empty body. It does not
// judge the status: the host's decoder looks at the body first, since some
// hosts send their errors with 4xx. Transport errors never carry the URL:
// its query holds secrets and codes.
func (c *Caller) Send(ctx context.Context, req *http.Request) (*Response, error) {
	endpoint := req.URL.Path
	max := c.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	status, body, err := wire.Do(ctx, c.HTTP, req, max)
	if err != nil {
		return nil, &platform.Error{Host: c.Host, Endpoint: endpoint, Kind: platform.KindUnavailable, Status: status, Err: err}
	}
	return &Response{Status: status, Body: body}, nil
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
	var pe *platform.Error
	if !errors.As(err, &pe) {
		return false
	}
	if pe.Kind == platform.KindBusy {
		return true
	}
	return pe.Kind == platform.KindUnavailable && notSent(pe.Err)
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
