package session

import (
	"context"
	"errors"
	"sync"
)

// codeFlight lets the concurrent logins with one code share one exchange,
// as singleflight does, but the first caller runs the exchange on its own
// goroutine rather than on a new one. The exchange goes deep (HTTP client,
// JSON, the store), and a new goroutine grows its stack by copying, on
// every login: 4% of the service's CPU at 2,000 logins a second.
//
// The first caller runs the exchange to its end whatever its context: once
// a one-time code is on its way to the platform, its answer must be kept,
// or the code is lost for everyone sharing it. PlatformTimeout bounds that.
// The others wait for it, or for their own context.
type codeFlight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{} // closed when res and err are set
	res  *codeResult
	err  error
}

// errFlightPanicked is what the waiting callers get when the exchange
// panicked on the first caller's goroutine (where the panic goes on).
var errFlightPanicked = errors.New("session: the shared login panicked")

// do runs fn once for key and the callers that come while it runs. left
// reports that ctx ended before the first caller's fn did; res and err are
// then nil.
func (f *codeFlight) do(ctx context.Context, key string, fn func() (*codeResult, error)) (res *codeResult, left bool, err error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.res, false, c.err
		case <-ctx.Done():
			return nil, true, nil
		}
	}
	if f.calls == nil {
		f.calls = make(map[string]*flightCall)
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	finished := false
	defer func() {
		if !finished {
			c.res, c.err = nil, errFlightPanicked
		}
		f.mu.Lock()
		delete(f.calls, key)
		f.mu.Unlock()
		close(c.done)
	}()
	c.res, c.err = fn()
	finished = true
	return c.res, false, c.err
}
