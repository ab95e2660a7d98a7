package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestFlightSharesOneCall: callers that come while the first one's call
// runs get its result, and fn runs once; a caller after it runs fn again.
func TestFlightSharesOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f codeFlight
		var calls atomic.Int32
		gate := make(chan struct{})
		want := &codeResult{created: true}
		fn := func() (*codeResult, error) {
			calls.Add(1)
			<-gate
			return want, nil
		}
		const n = 10
		got := make([]*codeResult, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var left bool
				var err error
				got[i], left, err = f.do(context.Background(), "k", fn)
				if left || err != nil {
					t.Errorf("caller %d: left %v, err %v", i, left, err)
				}
			})
		}
		synctest.Wait() // one caller in fn, the others waiting for it
		close(gate)
		wg.Wait()
		if c := calls.Load(); c != 1 {
			t.Fatalf("fn ran %d times for concurrent callers, want 1", c)
		}
		for i, r := range got {
			if r != want {
				t.Errorf("caller %d got %p, want the shared %p", i, r, want)
			}
		}
		if _, _, err := f.do(context.Background(), "k", func() (*codeResult, error) { calls.Add(1); return want, nil }); err != nil || calls.Load() != 2 {
			t.Fatalf("a caller after the call: err %v, fn ran %d times in all, want 2", err, calls.Load())
		}
	})
}

// TestFlightCallersLeave: a waiting caller whose context ends leaves at
// once; the first caller runs fn to its end whatever its own context.
func TestFlightCallersLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f codeFlight
		gate := make(chan struct{})
		want := &codeResult{}
		firstCtx, cancelFirst := context.WithCancel(context.Background())
		waitCtx, cancelWait := context.WithCancel(context.Background())
		type out struct {
			res  *codeResult
			left bool
			err  error
		}
		first, waiter := make(chan out, 1), make(chan out, 1)
		go func() {
			r, l, err := f.do(firstCtx, "k", func() (*codeResult, error) { <-gate; return want, nil })
			first <- out{r, l, err}
		}()
		synctest.Wait()
		go func() {
			r, l, err := f.do(waitCtx, "k", func() (*codeResult, error) { t.Error("a second fn ran"); return nil, nil })
			waiter <- out{r, l, err}
		}()
		synctest.Wait()
		cancelWait()
		cancelFirst()
		if o := <-waiter; !o.left || o.res != nil || o.err != nil {
			t.Fatalf("waiting caller after its context ended: %+v, want left", o)
		}
		synctest.Wait()
		select {
		case o := <-first:
			t.Fatalf("the first caller returned before its fn: %+v", o)
		default:
		}
		close(gate)
		if o := <-first; o.left || o.res != want || o.err != nil {
			t.Fatalf("first caller: %+v, want its fn's result", o)
		}
	})
}

// TestFlightPanic: a panic in fn goes on in the first caller; the waiting
// callers get an error, and the key is free again.
func TestFlightPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f codeFlight
		gate := make(chan struct{})
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			f.do(context.Background(), "k", func() (*codeResult, error) { <-gate; panic("boom") })
		}()
		synctest.Wait()
		errc := make(chan error, 1)
		go func() {
			_, _, err := f.do(context.Background(), "k", nil)
			errc <- err
		}()
		synctest.Wait()
		close(gate)
		if p := <-panicked; p != "boom" {
			t.Fatalf("first caller recovered %v, want the panic", p)
		}
		if err := <-errc; !errors.Is(err, errFlightPanicked) {
			t.Fatalf("waiting caller got %v, want errFlightPanicked", err)
		}
		want := &codeResult{}
		if r, _, err := f.do(context.Background(), "k", func() (*codeResult, error) { return want, nil }); r != want || err != nil {
			t.Fatalf("after the panic: %p, %v; want a new call", r, err)
		}
	})
}
