// Package breaker keeps one circuit breaker per platform endpoint,
// so that a platform that is down or overloaded is answered at once with
// "platform unavailable" instead of tying up a request, a connection and the
// user's one-time login code for a whole timeout.
//
// Only the platform's own ill health opens a breaker. An answer that names
// the user's or the app's problem (a bad or used code, a blocked user, a
// quota, refused credentials, an expired access token) proves the platform is
// up and counts as a success; a caller that gives up counts as nothing.
//
// The breakers are github.com/sony/gobreaker/v2, which reads time.Now itself:
// v2.4.0 offers no way to inject a clock, so OpenFor is real time.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mplogin/mplogin/platform"
)

// ErrOpen is the cause of every call refused by a breaker, whether it is open
// or half-open with its trial calls already under way. Refusals are returned
// as a *platform.Error of KindUnavailable wrapping ErrOpen, so code that maps
// platform kinds to responses answers 503 platform_unavailable without
// knowing about breakers, and code that wants to tell "refused" from "tried
// and failed" (logs, metrics) uses errors.Is(err, ErrOpen).
var ErrOpen = errors.New("circuit breaker open")

// State is a breaker's state. The values match the mplogin_breaker_state
// gauge (0 closed, 1 half-open, 2 open), so int(state) can be recorded as is.
type State int

const (
	// Closed: calls go through; consecutive platform failures are counted.
	Closed State = iota
	// HalfOpen: OpenFor has passed; up to HalfOpenMax trial calls go through
	// and decide whether to close again or reopen.
	HalfOpen
	// Open: calls are refused at once with ErrOpen.
	Open
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Defaults for zero Settings fields.
const (
	DefaultFailures    = 5
	DefaultOpenFor     = 10 * time.Second
	DefaultHalfOpenMax = 1
)

// Settings configure every breaker of a Set. Zero fields take the defaults.
type Settings struct {
	// Failures is how many consecutive platform failures open a breaker.
	// Consecutive rather than a ratio: login traffic per endpoint can be thin,
	// and a run of timeouts is the signal that matters. Default 5.
	Failures uint32
	// OpenFor is how long an open breaker refuses calls before letting a
	// trial through. Default 10s.
	OpenFor time.Duration
	// HalfOpenMax is how many trial calls a half-open breaker lets through at
	// once; that many consecutive successes close it, one failure reopens
	// it. Default 1.
	HalfOpenMax uint32
	// OnStateChange, if set, is told of every transition, so the caller can
	// log it and set the mplogin_breaker_state gauge.
	//
	// It runs synchronously while the breaker's lock is held (that is how
	// gobreaker calls it): it must be quick and must not call back into the
	// Set for the same name, or it deadlocks. Note that open→half-open is
	// noticed lazily, on the next Do or State for that name.
	OnStateChange func(name string, from, to State)
}

// Set holds the breakers of many endpoints, keyed by name and created on
// first use. It is safe for concurrent use.
//
// Names must come from a closed set written in code ("wechat:jscode2session"),
// never from a request: every distinct name keeps a breaker forever.
type Set struct {
	st Settings

	mu sync.RWMutex
	cb map[string]*gobreaker.CircuitBreaker[struct{}]
}

// NewSet returns an empty Set whose breakers all use s.
func NewSet(s Settings) *Set {
	if s.Failures == 0 {
		s.Failures = DefaultFailures
	}
	if s.OpenFor <= 0 {
		s.OpenFor = DefaultOpenFor
	}
	if s.HalfOpenMax == 0 {
		s.HalfOpenMax = DefaultHalfOpenMax
	}
	return &Set{st: s, cb: make(map[string]*gobreaker.CircuitBreaker[struct{}])}
}

// Do runs call through the breaker called name.
//
// When the breaker refuses, call is not run and the error is a
// *platform.Error of KindUnavailable wrapping ErrOpen, with Endpoint set to
// name. Otherwise Do returns call's error unchanged, so its platform kind,
// code and message reach the caller intact.
func (s *Set) Do(ctx context.Context, name string, call func(ctx context.Context) error) error {
	return s.do(ctx, "", name, call)
}

// do is Do with the host to name in a refusal.
func (s *Set) do(ctx context.Context, host, name string, call func(ctx context.Context) error) error {
	ran := false
	_, err := s.breaker(name).Execute(func() (struct{}, error) {
		ran = true
		err := call(ctx)
		if err != nil && errors.Is(ctx.Err(), context.Canceled) {
			// The caller went away (the client hung up); the failure says
			// nothing about the platform. A deadline, in contrast, stays a
			// failure: the platform did not answer within our budget, and a
			// slow platform is what the breaker is for.
			return struct{}{}, excluded{err}
		}
		return struct{}{}, err
	})
	if ex, ok := err.(excluded); ok {
		return ex.err
	}
	if !ran && err != nil {
		// Only gobreaker's own refusals reach here: ErrOpenState or
		// ErrTooManyRequests.
		cause := ErrOpen
		if errors.Is(err, gobreaker.ErrTooManyRequests) {
			cause = fmt.Errorf("%w: half-open, trial calls under way", ErrOpen)
		}
		return &platform.Error{
			Host:     host,
			Endpoint: name,
			Kind:     platform.KindUnavailable,
			Err:      cause,
		}
	}
	return err
}

// State returns the state of the breaker called name; Closed for a name never
// used. Asking may itself move an open breaker whose OpenFor has passed to
// half-open (and fire OnStateChange).
func (s *Set) State(name string) State {
	s.mu.RLock()
	cb := s.cb[name]
	s.mu.RUnlock()
	if cb == nil {
		return Closed
	}
	return fromGobreaker(cb.State())
}

// breaker returns the breaker called name, creating it on first use.
func (s *Set) breaker(name string) *gobreaker.CircuitBreaker[struct{}] {
	s.mu.RLock()
	cb := s.cb[name]
	s.mu.RUnlock()
	if cb != nil {
		return cb
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cb := s.cb[name]; cb != nil {
		return cb
	}
	failures := s.st.Failures
	gs := gobreaker.Settings{
		Name:        name,
		MaxRequests: s.st.HalfOpenMax,
		// Interval 0: closed-state counts are never reset on a timer; a
		// success resets the consecutive-failure run anyway.
		Timeout: s.st.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= failures
		},
		IsSuccessful: IsSuccess,
		IsExcluded: func(err error) bool {
			_, ok := err.(excluded)
			return ok
		},
	}
	if f := s.st.OnStateChange; f != nil {
		gs.OnStateChange = func(name string, from, to gobreaker.State) {
			f(name, fromGobreaker(from), fromGobreaker(to))
		}
	}
	cb = gobreaker.NewCircuitBreaker[struct{}](gs)
	s.cb[name] = cb
	return cb
}

// IsSuccess reports whether a call's result shows the platform healthy, as
// the breakers count it. nil does, and so does any answer about the user or
// the app: KindInvalidCode, KindCodeUsed, KindUserBlocked, KindRateLimited (a
// quota of this user or app), KindBadCredentials and KindTokenInvalid (our
// own configuration or token). Only KindBusy, KindUnavailable (no usable
// answer, timeouts included) and KindUnknown (an answer we cannot read, or an
// error that is not a platform error at all) count as failures.
func IsSuccess(err error) bool {
	if err == nil {
		return true
	}
	switch platform.KindOf(err) {
	case platform.KindBusy, platform.KindUnavailable, platform.KindUnknown:
		return false
	}
	return true
}

// excluded marks, inside Execute, a failure that must count neither way; Do
// unwraps it before returning.
type excluded struct{ err error }

func (e excluded) Error() string { return e.err.Error() }
func (e excluded) Unwrap() error { return e.err }

func fromGobreaker(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return HalfOpen
	case gobreaker.StateOpen:
		return Open
	}
	return Closed
}

// Client wraps c so that every Exchange goes through the breaker called name
// in set. Refusals are *platform.Error{Host: the family of c.Flavor(), Endpoint:
// name, Kind: KindUnavailable} wrapping ErrOpen; every other result is c's,
// unchanged.
func Client(c platform.Client, set *Set, name string) platform.Client {
	return &client{c: c, set: set, name: name}
}

type client struct {
	c    platform.Client
	set  *Set
	name string
}

func (w *client) Flavor() platform.Flavor { return w.c.Flavor() }

func (w *client) Exchange(ctx context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	var login *platform.Login
	err := w.set.do(ctx, string(w.c.Flavor().Family()), w.name, func(ctx context.Context) error {
		var err error
		login, err = w.c.Exchange(ctx, req)
		return err
	})
	return login, err
}
