package breaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mplogin/mplogin/platform"
)

// The tests that build a Set run in a synctest bubble. gobreaker reads
// time.Now and cannot be given a clock, but inside a bubble time.Now is the
// bubble's fake clock: it stands still while the test runs and moves only
// when the test sleeps, so OpenFor passes exactly when a test sleeps past
// it, and nothing waits on real time.

func perr(k platform.Kind) error {
	return &platform.Error{Host: "wechat", Endpoint: "/sns/jscode2session", Kind: k, Code: "x"}
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

// expectTransition takes the next transition without waiting: OnStateChange
// runs inside the Do or State call that causes it, so the transition is on
// the channel by the time that call returns, or it did not happen.
func expectTransition(t *testing.T, ch <-chan transition, want transition) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("transition = %+v, want %+v", got, want)
		}
	default:
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

// sleepOpenFor sleeps the bubble's clock through the open period of the
// breaker called name, which opened at the current fake time: a nanosecond
// before the period ends the breaker is still open, a nanosecond after it
// it is half-open (noticed when asked, so State is asked).
func sleepOpenFor(t *testing.T, s *Set, name string, ch <-chan transition) {
	t.Helper()
	time.Sleep(s.st.OpenFor - time.Nanosecond)
	if got := s.State(name); got != Open {
		t.Fatalf("state of %q = %v a nanosecond before OpenFor ends, want open", name, got)
	}
	expectNoTransition(t, ch)
	time.Sleep(2 * time.Nanosecond)
	if got := s.State(name); got != HalfOpen {
		t.Fatalf("state of %q = %v a nanosecond after OpenFor, want half-open", name, got)
	}
	expectTransition(t, ch, transition{name, Open, HalfOpen})
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
	synctest.Test(t, func(t *testing.T) {
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
	})
}

func TestUserErrorsBreakTheFailureRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		if n.Load() != 30 {
			t.Fatalf("call ran %d times, want 30", n.Load())
		}
	})
}

func TestFailuresOpenAndFailFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
	})
}

func TestHalfOpenTrialCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := Settings{Failures: 1, OpenFor: 20 * time.Millisecond}
		ch := recorder(&st)
		s := NewSet(st)
		ctx := context.Background()
		var n atomic.Int32

		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindUnavailable)))
		expectTransition(t, ch, transition{"ep", Closed, Open})
		sleepOpenFor(t, s, "ep", ch)

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
	})
}

func TestHalfOpenTrialFailureReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := Settings{Failures: 1, OpenFor: 20 * time.Millisecond}
		ch := recorder(&st)
		s := NewSet(st)
		ctx := context.Background()
		var n atomic.Int32

		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindBusy)))
		expectTransition(t, ch, transition{"ep", Closed, Open})
		sleepOpenFor(t, s, "ep", ch)

		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindBusy)))
		expectTransition(t, ch, transition{"ep", HalfOpen, Open})
		if err := s.Do(ctx, "ep", counted(&n, nil)); !errors.Is(err, ErrOpen) {
			t.Fatalf("Do after failed trial = %v, want ErrOpen", err)
		}
		// Reopened, it refuses for a whole OpenFor again, from the failed trial.
		sleepOpenFor(t, s, "ep", ch)
	})
}

func TestHalfOpenSaturated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := Settings{Failures: 1, OpenFor: 20 * time.Millisecond, HalfOpenMax: 1}
		ch := recorder(&st)
		s := NewSet(st)
		ctx := context.Background()
		var n atomic.Int32

		_ = s.Do(ctx, "ep", counted(&n, perr(platform.KindUnavailable)))
		expectTransition(t, ch, transition{"ep", Closed, Open})
		sleepOpenFor(t, s, "ep", ch)

		started := make(chan struct{})
		release := make(chan struct{})
		// Released on every way out, so that a failed test does not leave
		// the trial blocked and the bubble deadlocked.
		releaseOnce := sync.OnceFunc(func() { close(release) })
		defer releaseOnce()
		done := make(chan error, 1)
		go func() {
			done <- s.Do(ctx, "ep", func(context.Context) error {
				close(started)
				<-release
				return nil
			})
		}()
		synctest.Wait() // the trial call is under way, blocked on release
		select {
		case <-started:
		default:
			t.Fatal("the trial call did not start")
		}

		before := n.Load()
		err := s.Do(ctx, "ep", counted(&n, nil))
		if !errors.Is(err, ErrOpen) || platform.KindOf(err) != platform.KindUnavailable {
			t.Fatalf("second trial Do = %v, want ErrOpen/KindUnavailable", err)
		}
		if n.Load() != before {
			t.Fatal("saturated half-open breaker called through")
		}

		releaseOnce()
		if err := <-done; err != nil {
			t.Fatalf("trial Do = %v", err)
		}
		expectTransition(t, ch, transition{"ep", HalfOpen, Closed})
	})
}

func TestCallerCancelCountsAsNeither(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
	})
}

func TestCallerDeadlineCountsAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet(Settings{Failures: 2, OpenFor: time.Hour})
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel()
		for range 2 {
			_ = s.Do(ctx, "ep", func(ctx context.Context) error { return ctx.Err() })
		}
		if got := s.State("ep"); got != Open {
			t.Fatalf("state = %v, want open: a platform that outlasts our deadline is failing", got)
		}
	})
}

func TestNamesAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
	})
}

func TestDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
	})
}

func TestPanicCountsAsFailureAndRepanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
	})
}

// TestConcurrent runs four breakers from 16 goroutines through every state
// (with -race, it is also a data race check): each Do either runs its call
// and returns its result or refuses with ErrOpen, and each breaker's
// transitions form one chain from closed that ends in its current state.
func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const openFor = time.Millisecond
		var mu sync.Mutex
		chains := map[string][]transition{}
		s := NewSet(Settings{Failures: 3, OpenFor: openFor, OnStateChange: func(name string, from, to State) {
			mu.Lock()
			chains[name] = append(chains[name], transition{name, from, to})
			mu.Unlock()
		}})
		ctx := context.Background()
		busy := perr(platform.KindBusy)
		var ran, refused atomic.Int32
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				name := fmt.Sprintf("ep%d", g%4)
				for i := range 200 {
					// Blocks of ten calls: in even blocks four failures
					// first, enough to open; odd blocks all succeed, so a
					// trial may close the breaker again.
					var want error
					if (i/10)%2 == 0 && i%10 < 4 {
						want = busy
					}
					err := s.Do(ctx, name, func(context.Context) error { ran.Add(1); return want })
					if errors.Is(err, ErrOpen) {
						refused.Add(1)
					} else if err != want {
						t.Errorf("Do = %v, want %v or a refusal", err, want)
						return
					}
					_ = s.State(name)
					if i%10 == 9 {
						time.Sleep(2 * openFor) // past OpenFor: open breakers go half-open
					}
				}
			})
		}
		wg.Wait()
		if got := ran.Load() + refused.Load(); got != 16*200 {
			t.Fatalf("%d calls ran and %d were refused, want %d in all", ran.Load(), refused.Load(), 16*200)
		}
		opened := 0
		for g := range 4 {
			name := fmt.Sprintf("ep%d", g)
			now := s.State(name) // may itself move open to half-open
			mu.Lock()
			chain := chains[name]
			mu.Unlock()
			last := Closed
			for _, tr := range chain {
				if tr.from != last || tr.from == tr.to {
					t.Fatalf("%s: transitions %v do not chain", name, chain)
				}
				if tr.to == Open {
					opened++
				}
				last = tr.to
			}
			if now != last {
				t.Errorf("%s: state %v, but its last transition went to %v", name, now, last)
			}
		}
		if opened == 0 {
			t.Fatal("no breaker opened: the test did not exercise the states it is for")
		}
	})
}

type fakeClient struct {
	calls atomic.Int32
	login *platform.Login
	err   error
}

func (f *fakeClient) Flavor() platform.Flavor { return platform.FlavorWeChat }

func (f *fakeClient) Exchange(_ context.Context, req platform.ExchangeRequest) (*platform.Login, error) {
	f.calls.Add(1)
	if req.Code == "" {
		return nil, errors.New("no code")
	}
	return f.login, f.err
}

func TestClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet(Settings{Failures: 2, OpenFor: time.Hour})
		ctx := context.Background()
		req := platform.ExchangeRequest{Code: "c"}

		ok := &fakeClient{login: &platform.Login{OpenID: "o"}}
		c := Client(ok, s, "wechat:jscode2session")
		if c.Flavor() != "wechat" {
			t.Fatalf("Flavor() = %q", c.Flavor())
		}
		login, err := c.Exchange(ctx, req)
		if err != nil || login != ok.login {
			t.Fatalf("Exchange = %v, %v", login, err)
		}

		// A user error passes through unchanged and does not trip the breaker.
		used := &platform.Error{Host: "wechat", Endpoint: "/sns/jscode2session", Kind: platform.KindCodeUsed, Code: "40163", Message: "code been used"}
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
		if !errors.As(err, &pe) || pe.Host != "wechat" || pe.Endpoint != "wechat:jscode2session" || pe.Kind != platform.KindUnavailable {
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
	})
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
