package breaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin/platform"
)

// wait bounds every wait on real time in these tests: gobreaker reads
// time.Now and cannot be given a clock, so tests wait for an event with a
// generous limit rather than sleep a fixed time.
const wait = 5 * time.Second

func perr(k platform.Kind) error {
	return &platform.Error{Platform: "wechat", Endpoint: "/sns/jscode2session", Kind: k, Code: "x"}
}

type transition struct {
	name     string
	from, to State
}

// recorder collects OnStateChange calls on a channel.
func recorder(s *Settings) <-chan transition {
	ch := make(chan transition, 64)
	s.OnStateChange = func(name string, from, to State) {
		ch <- transition{name, from, to}
	}
	return ch
}

func expectTransition(t *testing.T, ch <-chan transition, want transition) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("transition = %+v, want %+v", got, want)
		}
	case <-time.After(wait):
		t.Fatalf("no transition, want %+v", want)
	}
}

func expectNoTransition(t *testing.T, ch <-chan transition) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected transition %+v", got)
	default:
	}
}

// waitState polls until the breaker reports want: open→half-open happens
// only when someone asks.
func waitState(t *testing.T, s *Set, name string, want State) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for s.State(name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("state of %q = %v, want %v", name, s.State(name), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// counted returns a call that returns err and counts how often it ran.
func counted(n *atomic.Int32, err error) func(context.Context) error {
	return func(context.Context) error {
		n.Add(1)
		return err
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", HalfOpen: "half-open", Open: "open", 7: "State(7)"} {
		if got := s.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(s), got, want)
		}
	}
	// The metrics gauge relies on these values.
	if Closed != 0 || HalfOpen != 1 || Open != 2 {
		t.Fatal("State values changed; mplogin_breaker_state expects 0/1/2")
	}
}

func TestClassification(t *testing.T) {
	failure := map[platform.Kind]bool{
		platform.KindBusy:        true,
		platform.KindUnavailable: true,
		platform.KindUnknown:     true,
	}
	success := map[platform.Kind]bool{
		platform.KindInvalidCode:    true,
		platform.KindCodeUsed:       true,
		platform.KindUserBlocked:    true,
		platform.KindRateLimited:    true,
		platform.KindBadCredentials: true,
		platform.KindTokenInvalid:   true,
	}
	// Every kind must be decided here, so that a new kind forces a choice.
	for k := platform.Kind(0); !strings.HasPrefix(k.String(), "Kind("); k++ {
		if !failure[k] && !success[k] {
			t.Errorf("kind %v is not classified by this test", k)
			continue
		}
		if got := IsSuccess(perr(k)); got != success[k] {
			t.Errorf("IsSuccess(%v) = %v, want %v", k, got, success[k])
		}
		if got := IsSuccess(fmt.Errorf("wrapped: %w", perr(k))); got != success[k] {
			t.Errorf("IsSuccess(wrapped %v) = %v, want %v", k, got, success[k])
		}
	}
	if !IsSuccess(nil) {
		t.Error("IsSuccess(nil) = false")
	}
	if IsSuccess(errors.New("garbage")) {
		t.Error("a non-platform error counts as success")
	}
	if IsSuccess(context.DeadlineExceeded) {
		t.Error("a deadline counts as success")
	}
}

func TestUserErrorsNeverOpen(t *testing.T) {
	st := Settings{Failures: 2, OpenFor: time.Hour}
	ch := recorder(&st)
	s := NewSet(st)
	ctx := context.Background()
	kinds := []platform.Kind{
		platform.KindInvalidCode, platform.KindCodeUsed, platform.KindUserBlocked,
		platform.KindRateLimited, platform.KindBadCredentials, platform.KindTokenInvalid,
	}
	var n atomic.Int32
	for i := range 100 {
		want := perr(kinds[i%len(kinds)])
		if err := s.Do(ctx, "ep", counted(&n, want)); err != want {
			t.Fatalf("Do = %v, want the call's own error %v", err, want)
		}
	}
	if n.Load() != 100 {
		t.Fatalf("call ran %d times, want 100", n.Load())
	}
	if got := s.State("ep"); got != Closed {
		t.Fatalf("state = %v, want closed", got)
	}
	expectNoTransition(t, ch)
}

func TestUserErrorsBreakTheFailureRun(t *testing.T) {
	s := NewSet(Settings{Failures: 3, OpenFor: time.Hour})
	ctx := context.Background()
	var n atomic.Int32
	for range 10 {
		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindBusy)))
		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindUnavailable)))
		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindInvalidCode)))
	}
	if got := s.State("ep"); got != Closed {
		t.Fatalf("state = %v, want closed: failures were never 3 in a row", got)
	}
}

func TestFailuresOpenAndFailFast(t *testing.T) {
	st := Settings{Failures: 3, OpenFor: time.Hour}
	ch := recorder(&st)
	s := NewSet(st)
	ctx := context.Background()
	var n atomic.Int32
	fails := []error{perr(platform.KindBusy), perr(platform.KindUnknown), errors.New("dial tcp: refused")}
	for i, want := range fails {
		if got := s.State("ep"); got != Closed {
			t.Fatalf("after %d failures state = %v, want closed", i, got)
		}
		if err := s.Do(ctx, "ep", counted(&n, want)); err != want {
			t.Fatalf("Do = %v, want %v", err, want)
		}
	}
	expectTransition(t, ch, transition{"ep", Closed, Open})
	if got := s.State("ep"); got != Open {
		t.Fatalf("state = %v, want open", got)
	}

	before := n.Load()
	for range 10 {
		err := s.Do(ctx, "ep", counted(&n, nil))
		if !errors.Is(err, ErrOpen) {
			t.Fatalf("Do = %v, want ErrOpen", err)
		}
		var pe *platform.Error
		if !errors.As(err, &pe) || pe.Kind != platform.KindUnavailable || pe.Endpoint != "ep" {
			t.Fatalf("Do = %#v, want *platform.Error KindUnavailable for ep", err)
		}
		if platform.KindOf(err) != platform.KindUnavailable {
			t.Fatalf("KindOf = %v", platform.KindOf(err))
		}
	}
	if n.Load() != before {
		t.Fatalf("open breaker called through %d times", n.Load()-before)
	}
	expectNoTransition(t, ch)
}

func TestHalfOpenTrialCloses(t *testing.T) {
	st := Settings{Failures: 1, OpenFor: 20 * time.Millisecond}
	ch := recorder(&st)
	s := NewSet(st)
	ctx := context.Background()
	var n atomic.Int32

	_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindUnavailable)))
	expectTransition(t, ch, transition{"ep", Closed, Open})

	waitState(t, s, "ep", HalfOpen)
	expectTransition(t, ch, transition{"ep", Open, HalfOpen})

	before := n.Load()
	// A user error is a success: the platform answered.
	if err := s.Do(ctx, "ep", counted(&n, perr(platform.KindCodeUsed))); platform.KindOf(err) != platform.KindCodeUsed {
		t.Fatalf("trial Do = %v", err)
	}
	if n.Load() != before+1 {
		t.Fatal("trial call did not run")
	}
	expectTransition(t, ch, transition{"ep", HalfOpen, Closed})
	if got := s.State("ep"); got != Closed {
		t.Fatalf("state = %v, want closed", got)
	}
}

func TestHalfOpenTrialFailureReopens(t *testing.T) {
	st := Settings{Failures: 1, OpenFor: 20 * time.Millisecond}
	ch := recorder(&st)
	s := NewSet(st)
	ctx := context.Background()
	var n atomic.Int32

	_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindBusy)))
	expectTransition(t, ch, transition{"ep", Closed, Open})
	waitState(t, s, "ep", HalfOpen)
	expectTransition(t, ch, transition{"ep", Open, HalfOpen})

	_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindBusy)))
	expectTransition(t, ch, transition{"ep", HalfOpen, Open})
	if err := s.Do(ctx, "ep", counted(&n, nil)); !errors.Is(err, ErrOpen) {
		t.Fatalf("Do after failed trial = %v, want ErrOpen", err)
	}
}

func TestHalfOpenSaturated(t *testing.T) {
	st := Settings{Failures: 1, OpenFor: 20 * time.Millisecond, HalfOpenMax: 1}
	ch := recorder(&st)
	s := NewSet(st)
	ctx := context.Background()
	var n atomic.Int32

	_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindUnavailable)))
	expectTransition(t, ch, transition{"ep", Closed, Open})
	waitState(t, s, "ep", HalfOpen)
	expectTransition(t, ch, transition{"ep", Open, HalfOpen})

	started := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Do(ctx, "ep", func(context.Context) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started

	before := n.Load()
	err := s.Do(ctx, "ep", counted(&n, nil))
	if !errors.Is(err, ErrOpen) || platform.KindOf(err) != platform.KindUnavailable {
		t.Fatalf("second trial Do = %v, want ErrOpen/KindUnavailable", err)
	}
	if n.Load() != before {
		t.Fatal("saturated half-open breaker called through")
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatalf("trial Do = %v", err)
	}
	expectTransition(t, ch, transition{"ep", HalfOpen, Closed})
}

func TestCallerCancelCountsAsNeither(t *testing.T) {
	st := Settings{Failures: 2, OpenFor: time.Hour}
	ch := recorder(&st)
	s := NewSet(st)
	var n atomic.Int32

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Canceled calls do not count as failures...
	for range 10 {
		want := &platform.Error{Kind: platform.KindUnavailable, Err: context.Canceled}
		if err := s.Do(ctx, "ep", counted(&n, want)); err != want {
			t.Fatalf("Do = %v, want the call's own error", err)
		}
	}
	if got := s.State("ep"); got != Closed {
		t.Fatalf("state = %v, want closed", got)
	}
	expectNoTransition(t, ch)

	// ...nor as successes: they do not break a run of real failures.
	bg := context.Background()
	_ = s.Do(bg, "ep", counted(&n, perr(platform.KindBusy)))
	_ = s.Do(ctx, "ep", counted(&n, &platform.Error{Kind: platform.KindUnavailable, Err: context.Canceled}))
	_ = s.Do(bg, "ep", counted(&n, perr(platform.KindBusy)))
	expectTransition(t, ch, transition{"ep", Closed, Open})
}

func TestCallerDeadlineCountsAsFailure(t *testing.T) {
	s := NewSet(Settings{Failures: 2, OpenFor: time.Hour})
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	for range 2 {
		_ = s.Do(ctx, "ep", func(ctx context.Context) error { return ctx.Err() })
	}
	if got := s.State("ep"); got != Open {
		t.Fatalf("state = %v, want open: a platform that outlasts our deadline is failing", got)
	}
}

func TestNamesAreIndependent(t *testing.T) {
	st := Settings{Failures: 1, OpenFor: time.Hour}
	ch := recorder(&st)
	s := NewSet(st)
	ctx := context.Background()
	var n atomic.Int32

	_ = s.Do(ctx, "wechat:jscode2session", counted(&n, perr(platform.KindUnavailable)))
	expectTransition(t, ch, transition{"wechat:jscode2session", Closed, Open})

	if got := s.State("wechat:jscode2session"); got != Open {
		t.Fatalf("state = %v, want open", got)
	}
	if got := s.State("baidu:getsessionkey"); got != Closed {
		t.Fatalf("other state = %v, want closed", got)
	}
	if got := s.State("never-used"); got != Closed {
		t.Fatalf("unused state = %v, want closed", got)
	}
	before := n.Load()
	if err := s.Do(ctx, "baidu:getsessionkey", counted(&n, nil)); err != nil {
		t.Fatalf("other Do = %v", err)
	}
	if n.Load() != before+1 {
		t.Fatal("other breaker did not call through")
	}
}

func TestDefaults(t *testing.T) {
	s := NewSet(Settings{})
	if s.st.Failures != DefaultFailures || s.st.OpenFor != DefaultOpenFor || s.st.HalfOpenMax != DefaultHalfOpenMax {
		t.Fatalf("defaults = %+v", s.st)
	}
	ctx := context.Background()
	var n atomic.Int32
	for i := range DefaultFailures {
		if got := s.State("ep"); got != Closed {
			t.Fatalf("after %d failures state = %v", i, got)
		}
		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindBusy)))
	}
	if got := s.State("ep"); got != Open {
		t.Fatalf("after %d failures state = %v, want open", DefaultFailures, got)
	}
}

func TestPanicCountsAsFailureAndRepanics(t *testing.T) {
	s := NewSet(Settings{Failures: 1, OpenFor: time.Hour})
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_ = s.Do(context.Background(), "ep", func(context.Context) error { panic("boom") })
	}()
	if got := s.State("ep"); got != Open {
		t.Fatalf("state = %v, want open", got)
	}
}

func TestConcurrent(t *testing.T) {
	s := NewSet(Settings{Failures: 3, OpenFor: time.Millisecond})
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			name := fmt.Sprintf("ep%d", g%4)
			for i := range 200 {
				var err error
				if i%3 == 0 {
					err = perr(platform.KindBusy)
				}
				_ = s.Do(ctx, name, func(context.Context) error { return err })
				_ = s.State(name)
			}
		})
	}
	wg.Wait()
}

type fakeClient struct {
	calls atomic.Int32
	login *platform.Login
	err   error
}

func (f *fakeClient) Platform() string { return "wechat" }

func (f *fakeClient) Exchange(_ context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	f.calls.Add(1)
	if req.Code == "" {
		return nil, errors.New("no code")
	}
	return f.login, f.err
}

func TestClient(t *testing.T) {
	s := NewSet(Settings{Failures: 2, OpenFor: time.Hour})
	ctx := context.Background()
	req := platform.ExchangeRequest{Code: "c"}

	ok := &fakeClient{login: &platform.Login{OpenID: "o"}}
	c := Client(ok, s, "wechat:jscode2session")
	if c.Platform() != "wechat" {
		t.Fatalf("Platform() = %q", c.Platform())
	}
	login, err := c.Exchange(ctx, req)
	if err != nil || login != ok.login {
		t.Fatalf("Exchange = %v, %v", login, err)
	}

	// A user error passes through unchanged and does not trip the breaker.
	used := &platform.Error{Platform: "wechat", Endpoint: "/sns/jscode2session", Kind: platform.KindCodeUsed, Code: "40163", Message: "code been used"}
	bad := &fakeClient{err: used}
	cb := Client(bad, s, "wechat:jscode2session")
	for range 5 {
		if _, err := cb.Exchange(ctx, req); err != used {
			t.Fatalf("Exchange error = %v, want the platform's own", err)
		}
	}

	// Platform failures open it; then the wrapped client is not called.
	down := &fakeClient{err: perr(platform.KindUnavailable)}
	cd := Client(down, s, "wechat:jscode2session")
	for range 2 {
		if _, err := cd.Exchange(ctx, req); err != down.err {
			t.Fatalf("Exchange error = %v, want %v", err, down.err)
		}
	}
	before := down.calls.Load()
	login, err = cd.Exchange(ctx, req)
	if login != nil || !errors.Is(err, ErrOpen) {
		t.Fatalf("Exchange = %v, %v; want nil, ErrOpen", login, err)
	}
	var pe *platform.Error
	if !errors.As(err, &pe) || pe.Platform != "wechat" || pe.Endpoint != "wechat:jscode2session" || pe.Kind != platform.KindUnavailable {
		t.Fatalf("refusal = %#v", err)
	}
	if down.calls.Load() != before {
		t.Fatal("open breaker called the platform")
	}
	// The breaker is per name, not per wrapper: the healthy wrapper on the
	// same name is refused too.
	if _, err := c.Exchange(ctx, req); !errors.Is(err, ErrOpen) {
		t.Fatalf("Exchange on same name = %v, want ErrOpen", err)
	}
}

func BenchmarkDoClosed(b *testing.B) {
	s := NewSet(Settings{})
	ctx := context.Background()
	call := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Do(ctx, "wechat:jscode2session", call)
	}
}

func BenchmarkDoOpen(b *testing.B) {
	s := NewSet(Settings{Failures: 1, OpenFor: time.Hour})
	ctx := context.Background()
	_ = s.Do(ctx, "ep", func(context.Context) error { return perr(platform.KindBusy) })
	call := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Do(ctx, "ep", call)
	}
}
