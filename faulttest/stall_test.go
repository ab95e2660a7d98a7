package faulttest

import (
	"sync"
	"testing"
	"time"
)

// The machine these tests run on may stall (a shared VM whose host takes
// its CPUs away for a second or more). A stall delays every process alike,
// so an answer can miss a deadline bound without the service being at
// fault. stalls watches for them from this process: a goroutine that wakes
// every stallTick and records every gap of more than stallMin.
const (
	stallTick = 5 * time.Millisecond
	stallMin  = 50 * time.Millisecond
)

type stallWatch struct {
	mu     sync.Mutex
	stalls [][2]time.Time // [from, to]
}

var stalls = startStallWatch()

func startStallWatch() *stallWatch {
	w := &stallWatch{}
	go func() {
		last := time.Now()
		for {
			time.Sleep(stallTick)
			now := time.Now()
			if now.Sub(last) > stallMin {
				w.mu.Lock()
				if len(w.stalls) > 10000 {
					w.stalls = w.stalls[1:]
				}
				w.stalls = append(w.stalls, [2]time.Time{last, now})
				w.mu.Unlock()
			}
			last = now
		}
	}()
	return w
}

// during returns how long the machine stalled between from and to.
func (w *stallWatch) during(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d time.Duration
	for _, s := range w.stalls {
		a, b := s[0], s[1]
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			d += b.Sub(a) - stallTick
		}
	}
	return max(d, 0)
}

// checkBound fails the test if r took longer than bound, plus however long
// the machine was seen to stall while r was under way (logged when used).
func checkBound(t testing.TB, what string, r reply, bound time.Duration) {
	t.Helper()
	if r.dur <= bound {
		return
	}
	stalled := stalls.during(r.start, r.start.Add(r.dur))
	if r.dur <= bound+stalled {
		t.Logf("%s took %v, over %v, but the machine stalled %v meanwhile: allowed", what, r.dur.Round(time.Millisecond), bound, stalled.Round(time.Millisecond))
		return
	}
	t.Errorf("%s answered in %v, over %v (machine stalls meanwhile: %v): %s", what, r.dur.Round(time.Millisecond), bound, stalled.Round(time.Millisecond), r)
}

func TestStallWatch(t *testing.T) {
	w := &stallWatch{}
	t0 := time.Now()
	w.stalls = append(w.stalls, [2]time.Time{t0.Add(time.Second), t0.Add(3 * time.Second)})
	for _, c := range []struct {
		from, to time.Duration
		want     time.Duration
	}{
		{0, 500 * time.Millisecond, 0},
		{0, 2 * time.Second, time.Second - stallTick},
		{1500 * time.Millisecond, 2 * time.Second, 500*time.Millisecond - stallTick},
		{0, 5 * time.Second, 2*time.Second - stallTick},
	} {
		if got := w.during(t0.Add(c.from), t0.Add(c.to)); got != c.want {
			t.Errorf("during(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

// overdue reports whether more than bound has passed since start, not
// counting the machine's stalls: for polling a child process.
func overdue(start time.Time, bound time.Duration) bool {
	now := time.Now()
	return now.Sub(start) > bound+stalls.during(start, now)
}
