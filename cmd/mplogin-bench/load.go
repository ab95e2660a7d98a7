package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// openLoopBudget is the latency the open loop's workers are sized for: the
// p99 target of the logins.
const openLoopBudget = 50 * time.Millisecond

// requestTimeout bounds one request, and how long a scenario may run past
// its duration to let the requests in flight finish.
const requestTimeout = 10 * time.Second

// makeRequest returns request n of worker w, and a string a good answer's
// body must contain (nil: any 2xx answer is good).
type makeRequest func(ctx context.Context, w int, n uint64) (req *http.Request, want []byte, err error)

// loadSpec is one run of load.
type loadSpec struct {
	name     string
	workers  int
	warmup   time.Duration
	duration time.Duration
	rate     float64 // requests per second; 0 = closed loop
	make     makeRequest
	// tick, when set, is called every tickEvery during the whole run
	// (warm-up included) with the time since the measurement began.
	tick      func(since time.Duration)
	tickEvery time.Duration
	// peak, when set, is raised to every successful request's latency in
	// nanoseconds (tick may read and reset it, for a peak per interval).
	peak *atomic.Int64
}

// result is what a run measured. Latencies are of the successful requests
// that started (closed loop) or were due to start (open loop) within the
// measured window; in open loop they count from the time a request was due,
// so a service that falls behind shows it in its latencies instead of
// slowing down the load (no coordinated omission).
type result struct {
	Name        string            `json:"name"`
	Round       int               `json:"round,omitempty"`
	Mode        string            `json:"mode"` // "closed" or "open"
	Workers     int               `json:"workers"`
	TargetRate  float64           `json:"target_rate,omitempty"`
	Requests    uint64            `json:"requests"`
	Sent        uint64            `json:"sent_with_warmup"`
	Errors      uint64            `json:"errors"`
	ErrorKinds  map[string]uint64 `json:"error_kinds,omitempty"`
	Seconds     float64           `json:"seconds"`
	RPS         float64           `json:"req_per_s"` // successful requests per second
	MeanMs      float64           `json:"mean_ms"`
	P50Ms       float64           `json:"p50_ms"`
	P99Ms       float64           `json:"p99_ms"`
	P999Ms      float64           `json:"p999_ms"`
	MaxMs       float64           `json:"max_ms"`
	RatioToBare float64           `json:"ratio_to_bare,omitempty"`
	RSSAfter    int64             `json:"rss_after_bytes,omitempty"`
	// Swept is what the janitor has deleted since the service started, at
	// the scenario's end (with -expired).
	Swept int64 `json:"swept,omitempty"`
	// CPU is the CPU each process used, in cores, over the whole
	// scenario (warm-up included); "other" is the rest of the machine.
	CPU map[string]float64 `json:"cpu_cores,omitempty"`
	// Writes are the server process's writes per request over the whole
	// scenario (warm-up included, so per request of all those sent).
	Writes map[string]float64 `json:"server_writes_per_request,omitempty"`
}

// newClient returns a client for workers concurrent callers on loopback:
// keep-alive, enough idle connections for every worker, every timeout set,
// no proxy, no redirects.
func newClient(workers int) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * workers,
		MaxIdleConnsPerHost:   2 * workers,
		IdleConnTimeout:       30 * time.Second,
		TLSHandshakeTimeout:   2 * time.Second,
		ResponseHeaderTimeout: requestTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// worker is one load worker's state; nothing in it is shared.
type worker struct {
	h    *hist
	ok   uint64
	sent uint64            // every request, measured or not
	errs map[string]uint64 // allocated on the first error only
	body bytes.Buffer      // reused for every answer
	last time.Time         // of its last measured completion
}

func newWorker() *worker {
	w := &worker{h: newHist()}
	w.body.Grow(4 << 10)
	return w
}

func (w *worker) fail(kind string) {
	if w.errs == nil {
		w.errs = make(map[string]uint64)
	}
	w.errs[kind]++
}

// send sends one request and reads its answer, and reports whether it
// succeeded; a failure is counted by kind unless it is not to be measured.
func (w *worker) send(client *http.Client, req *http.Request, want []byte, measured bool) bool {
	w.sent++
	resp, err := client.Do(req)
	if err != nil {
		if measured {
			w.fail(errorKind(err))
		}
		return false
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case err != nil:
		if measured {
			w.fail("read body: " + errorKind(err))
		}
		return false
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		if measured {
			w.fail("HTTP " + strconv.Itoa(resp.StatusCode) + " " + errorCode(w.body.Bytes()))
		}
		return false
	case want != nil && !bytes.Contains(w.body.Bytes(), want):
		if measured {
			w.fail("answer lacks " + string(want))
		}
		return false
	}
	return true
}

// errorCode picks the "error" member out of an error body, cheaply.
func errorCode(body []byte) string {
	const key = `"error":"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 && j < 64 {
		return string(rest[:j])
	}
	return ""
}

func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "net: " + oe.Op
	}
	return "transport error"
}

// run drives the load of spec and measures it. It returns when the
// duration is over and the requests in flight have finished, at most
// requestTimeout later, or when ctx ends.
func run(ctx context.Context, spec loadSpec) (*result, error) {
	if spec.workers < 1 || spec.duration <= 0 || spec.warmup < 0 || spec.rate < 0 {
		return nil, fmt.Errorf("%s: bad load spec", spec.name)
	}
	if spec.rate > 0 {
		// Enough workers to hold the rate with every request taking the
		// whole latency budget: the workers never hold back a service that
		// meets the target, and one that does not is seen in the latencies.
		spec.workers = max(spec.workers, int(math.Ceil(spec.rate*openLoopBudget.Seconds())))
	}
	client := newClient(spec.workers)
	defer client.CloseIdleConnections()

	start := time.Now()
	from := start.Add(spec.warmup) // measured window: [from, until)
	until := from.Add(spec.duration)
	rctx, cancel := context.WithDeadline(ctx, until.Add(requestTimeout))
	defer cancel()

	var wg sync.WaitGroup
	if spec.tick != nil {
		wg.Go(func() { ticker(rctx, until, from, spec.tickEvery, spec.tick) })
	}
	workers := make([]*worker, spec.workers)
	for i := range workers {
		workers[i] = newWorker()
	}
	var dropped uint64
	if spec.rate == 0 {
		for i, w := range workers {
			wg.Go(func() { closedLoop(rctx, client, spec.make, i, w, from, until, spec.peak) })
		}
	} else {
		// The backlog holds what is due but not yet taken by a worker: a
		// second's worth, so a service that falls behind by more than that
		// shows as dropped requests.
		due := make(chan time.Time, max(1024, int(spec.rate)))
		for i, w := range workers {
			wg.Go(func() { openLoopWorker(rctx, client, spec.make, i, w, due, from, spec.peak) })
		}
		dropped = pace(rctx, due, start, from, until, spec.rate)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &result{Name: spec.name, Mode: "closed", Workers: spec.workers}
	if spec.rate > 0 {
		res.Mode, res.TargetRate = "open", spec.rate
	}
	h := newHist()
	var last time.Time
	for _, w := range workers {
		h.merge(w.h)
		res.Requests += w.ok
		res.Sent += w.sent
		if w.last.After(last) {
			last = w.last
		}
		for k, n := range w.errs {
			if res.ErrorKinds == nil {
				res.ErrorKinds = make(map[string]uint64)
			}
			res.ErrorKinds[k] += n
			res.Errors += n
			res.Requests += n
		}
	}
	if dropped > 0 {
		if res.ErrorKinds == nil {
			res.ErrorKinds = make(map[string]uint64)
		}
		res.ErrorKinds["dropped: backlog of due requests full"] += dropped
		res.Errors += dropped
		res.Requests += dropped
	}
	// The window ends with the last completion, not before: in closed
	// loop, requests started just before until finish after it.
	window := max(last.Sub(from), spec.duration)
	res.Seconds = window.Seconds()
	ok := res.Requests - res.Errors
	res.RPS = float64(ok) / window.Seconds()
	res.MeanMs = ms(h.mean())
	res.P50Ms = ms(h.quantile(0.50))
	res.P99Ms = ms(h.quantile(0.99))
	res.P999Ms = ms(h.quantile(0.999))
	res.MaxMs = ms(h.maximum())
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// closedLoop sends one request after another until until.
func closedLoop(ctx context.Context, client *http.Client, mk makeRequest, id int, w *worker, from, until time.Time, peak *atomic.Int64) {
	for n := uint64(0); ctx.Err() == nil; n++ {
		req, want, err := mk(ctx, id, n)
		if err != nil {
			w.fail("make request: " + err.Error())
			return
		}
		t0 := time.Now()
		if !t0.Before(until) {
			return
		}
		measured := !t0.Before(from)
		ok := w.send(client, req, want, measured)
		t1 := time.Now()
		if measured && ok {
			w.h.record(t1.Sub(t0))
			w.ok++
			w.last = t1
			raise(peak, t1.Sub(t0))
		}
	}
}

// openLoopWorker sends a request for every due time it takes from due.
func openLoopWorker(ctx context.Context, client *http.Client, mk makeRequest, id int, w *worker, due <-chan time.Time, from time.Time, peak *atomic.Int64) {
	for n := uint64(0); ; n++ {
		var at time.Time
		select {
		case t, ok := <-due:
			if !ok {
				return
			}
			at = t
		case <-ctx.Done():
			return
		}
		measured := !at.Before(from)
		req, want, err := mk(ctx, id, n)
		if err != nil {
			w.fail("make request: " + err.Error())
			return
		}
		ok := w.send(client, req, want, measured)
		t1 := time.Now()
		if measured && ok {
			w.h.record(t1.Sub(at)) // from when it was due
			w.ok++
			w.last = t1
			raise(peak, t1.Sub(at))
		}
	}
}

// raise makes *p at least d, if p is set.
func raise(p *atomic.Int64, d time.Duration) {
	if p == nil {
		return
	}
	for {
		cur := p.Load()
		if int64(d) <= cur || p.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// pace puts the due time of request i, start + i/rate, into due at that
// time, until until; it returns how many due at or after from found the
// backlog full. It closes due when it is done.
func pace(ctx context.Context, due chan<- time.Time, start, from, until time.Time, rate float64) (dropped uint64) {
	defer close(due)
	interval := time.Duration(float64(time.Second) / rate)
	// A timer's resolution is about a millisecond: at higher rates each
	// wake-up releases every request that has come due since the last.
	tick := max(interval, time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := int64(0); ; {
		now := time.Now()
		for {
			at := start.Add(time.Duration(i) * interval)
			if !at.Before(until) {
				return dropped
			}
			if at.After(now) {
				break
			}
			select {
			case due <- at:
			default:
				if !at.Before(from) {
					dropped++
				}
			}
			i++
		}
		select {
		case <-ctx.Done():
			return dropped
		case <-t.C:
		}
	}
}

// ticker calls fn every every until until.
func ticker(ctx context.Context, until, from time.Time, every time.Duration, fn func(time.Duration)) {
	t := time.NewTicker(every)
	defer t.Stop()
	end := time.NewTimer(time.Until(until))
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case now := <-t.C:
			fn(now.Sub(from))
		}
	}
}
