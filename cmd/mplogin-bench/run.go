package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// runBench runs the scenarios. It returns the report of what it measured,
// also when it fails part way.
func runBench(ctx context.Context, o options, progress io.Writer) (_ *report, err error) {
	rep := newReport(o)
	dir, err := os.MkdirTemp("", "mplogin-bench-")
	if err != nil {
		return rep, err
	}
	// Login codes and new users' names carry the run's own tag: a store
	// kept across runs (-data, -store) remembers the codes of earlier runs.
	run := strings.TrimPrefix(filepath.Base(dir), "mplogin-bench-")
	if o.keep {
		fmt.Fprintln(progress, "scratch directory (kept):", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(progress, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}

	var bare *child
	var bareBase string
	if slices.Contains(o.scenarios, scBare) {
		if bare, bareBase, err = startBare(ctx, dir); err != nil {
			return rep, fmt.Errorf("bare: %w", err)
		}
		defer func() {
			if serr := bare.stop(10 * time.Second); serr != nil && err == nil {
				err = serr
			}
		}()
	}
	var svc *service
	var (
		tokens tokenSource
		users  userSource
	)
	if slices.ContainsFunc(o.scenarios, func(s string) bool { return s != scBare }) || o.soak > 0 || o.populate > 0 {
		bin := o.mplogin
		if bin == "" {
			logf("building ./cmd/mplogin")
			if bin, err = buildMplogin(ctx, dir); err != nil {
				return rep, err
			}
		}
		spec := serviceSpec{dir: dir, bin: bin, logLevel: o.logLevel, profile: o.profile, trace: o.trace,
			store: o.store, sessions: o.sessions, data: o.data}
		if spec.key, err = spec.masterKey(); err != nil {
			return rep, err
		}
		if o.populate > 0 {
			spec.populated = true
			t0 := time.Now()
			p, err := populateStore(ctx, spec.storeDSN(), o.sessions, o.populate, spec.key, logf)
			if err != nil {
				return rep, fmt.Errorf("populate: %w", err)
			}
			if o.expired > 0 {
				if err := addExpired(ctx, spec.storeDSN(), p, o.expired, logf); err != nil {
					return rep, fmt.Errorf("expired sessions: %w", err)
				}
				rep.Expired = o.expired
			}
			rep.PopulateSeconds = time.Since(t0).Seconds()
			if tokens, err = populatedTokens(p, o.populate, o.skew, spec.key); err != nil {
				return rep, err
			}
			users = populatedUsers(o.populate)
		}
		svc, err = startService(ctx, spec)
		if err != nil {
			return rep, err
		}
		defer func() {
			if serr := svc.stop(); serr != nil && err == nil {
				err = serr
			}
		}()
		rep.IdleRSS = svc.idleRSS
		logf("service ready at %s (log level %s); idle RSS %s", svc.base, o.logLevel, mib(svc.idleRSS))
		if o.populate == 0 && (slices.Contains(o.scenarios, scSession) || slices.Contains(o.scenarios, scAuthz) ||
			slices.Contains(o.scenarios, scLoginReturning) || o.soak > 0) {
			logf("logging in 2 × %d pool users", o.users)
			pool, err := loginPool(ctx, svc.base, checkPool, o.users)
			if err != nil {
				return rep, err
			}
			if _, err = loginPool(ctx, svc.base, returningPool, o.users); err != nil {
				return rep, err
			}
			tokens, users = poolTokens(pool, o.workers), poolUsers(o.users, o.workers)
			rep.RSSAfterPool = svc.rss()
		}
	}

	for round := 1; round <= o.rounds; round++ {
		var bareRPS float64
		for _, name := range o.scenarios {
			spec := loadSpec{name: name, workers: o.workers, warmup: o.warmup, duration: o.duration}
			var (
				pids   map[string]int
				server int
			)
			switch name {
			case scBare:
				spec.make = sessionRequests(bareBase, func(int, uint64) string { return "mpla_bare-handler-ignores-this" }, nil)
				pids, server = map[string]int{"bare server": bare.pid(), "harness": os.Getpid()}, bare.pid()
			case scSession:
				spec.make = sessionRequests(svc.base, tokens, wantActive)
			case scAuthz:
				spec.make = authzRequests(svc.base, tokens)
			case scLoginNew:
				spec.make = loginNewRequests(svc.base, fmt.Sprint("new", round, "-", run))
			case scLoginJWT:
				spec.make = loginJWTRequests(svc.base, fmt.Sprint("jwt", round, "-", run))
			case scLoginReturning:
				spec.make = loginReturningRequests(svc.base, fmt.Sprint("ret", round, "-", run), users)
			}
			if name != scBare {
				pids, server = svc.pids(), svc.serve.pid()
				spec.rate = o.rate.resolve(bareRPS)
			}
			logf("round %d/%d, %s: %v warm-up + %v, %s", round, o.rounds, name, o.warmup, o.duration, loadMode(o.workers, spec.rate))
			res, err := measure(ctx, spec, pids, server, o.quiet, logf)
			if err != nil {
				return rep, fmt.Errorf("%s: %w", name, err)
			}
			res.Round = round
			if name == scBare {
				bareRPS = res.RPS
			} else {
				res.RSSAfter = svc.rss()
				if o.expired > 0 {
					res.Swept, err = svc.swept(ctx)
					if err != nil {
						return rep, err
					}
				}
			}
			rep.add(res)
		}
	}
	if o.soak > 0 {
		rate := o.rate.resolve(0)
		logf("RSS soak: %v of steady login+session load, %s", o.soak, loadMode(o.workers, rate))
		if err := runSoak(ctx, o, rate, svc, tokens, users, "soak-"+run, rep, logf); err != nil {
			return rep, fmt.Errorf("soak: %w", err)
		}
	}
	logf("stopping")
	if svc != nil {
		if err := svc.stop(); err != nil {
			return rep, err
		}
	}
	if bare != nil {
		if err := bare.stop(10 * time.Second); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func loadMode(workers int, rate float64) string {
	if rate > 0 {
		workers = max(workers, int(math.Ceil(rate*openLoopBudget.Seconds())))
		return fmt.Sprintf("open loop at %.0f req/s (%d workers)", rate, workers)
	}
	return fmt.Sprintf("closed loop, %d workers", workers)
}

// startBare starts the bare server and waits until it answers.
func startBare(ctx context.Context, dir string) (_ *child, base string, err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	c, err := startChild(ctx, "bare server", filepath.Join(dir, "bare.log"), self, cmdBareServer, "--listen", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			_ = c.stop(10 * time.Second)
		}
	}()
	addr, err := c.waitLine(ctx, 30*time.Second)
	if err != nil {
		return nil, "", err
	}
	base = "http://" + addr
	if err := waitReady(ctx, c, base+"/healthz", 10*time.Second); err != nil {
		return nil, "", err
	}
	return c, base, nil
}

// measure runs one scenario, after waiting for a quiet machine, and adds
// the CPU of pids and the writes of the server process to its result.
func measure(ctx context.Context, spec loadSpec, pids map[string]int, server int, quiet time.Duration, logf func(string, ...any)) (*result, error) {
	if err := waitQuiet(ctx, pids, quiet, logf); err != nil {
		return nil, err
	}
	cpu := startCPU(pids)
	io0, ioErr := readIO(server)
	res, err := run(ctx, spec)
	if err != nil {
		return nil, err
	}
	res.CPU = cpu.stop()
	if io1, err := readIO(server); err == nil && ioErr == nil {
		res.Writes = writesPer(io0, io1, res.Sent)
	}
	return res, nil
}

// runSoak runs the steady mix for o.soak, sampling the service's RSS before
// it and every 10 seconds.
func runSoak(ctx context.Context, o options, rate float64, svc *service, tokens tokenSource, users userSource, tag string, rep *report, logf func(string, ...any)) error {
	const every = 10 * time.Second
	if err := waitQuiet(ctx, svc.pids(), o.quiet, logf); err != nil {
		return err
	}
	soak := &soakResult{Seconds: o.soak.Seconds()}
	soak.Samples = append(soak.Samples, rssSample{At: 0, RSS: svc.rss(), WALBytes: svc.walSize()})
	var peak atomic.Int64
	spec := loadSpec{name: "soak", workers: o.workers, duration: o.soak, rate: rate,
		make: soakRequests(svc.base, tag, tokens, users), tickEvery: every, peak: &peak,
		tick: func(at time.Duration) {
			s := rssSample{At: at.Round(time.Second).Seconds(), RSS: svc.rss(),
				PeakMs: ms(time.Duration(peak.Swap(0))), WALBytes: svc.walSize()}
			soak.Samples = append(soak.Samples, s) // only this goroutine appends until run returns
			logf("soak %4.0fs  RSS %s  slowest %.1f ms  WAL %s", s.At, mib(s.RSS), s.PeakMs, mib(s.WALBytes))
		}}
	res, err := measure(ctx, spec, svc.pids(), svc.serve.pid(), 0, logf)
	if err != nil {
		return err
	}
	res.RSSAfter = svc.rss()
	soak.Load = res
	soak.judge()
	rep.Soak = soak
	return nil
}

// quietCPU is how much CPU the rest of the machine may use for it to count
// as quiet.
const quietCPU = 0.1

// waitQuiet waits, up to limit, until the processes other than pids have
// used less than quietCPU cores for two seconds. It only reports when the
// machine stays busy: the scenario then runs anyway, and its "other" CPU
// shows how much it was disturbed.
func waitQuiet(ctx context.Context, pids map[string]int, limit time.Duration, logf func(string, ...any)) error {
	if limit <= 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		m := startCPU(pids)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
		other := m.stop()["other"]
		if other < quietCPU {
			return nil
		}
		if time.Now().After(deadline) {
			logf("the rest of the machine still uses %.2f CPU after %v; going on", other, limit)
			return nil
		}
		logf("waiting for a quiet machine: the rest of it uses %.2f CPU", other)
	}
}
