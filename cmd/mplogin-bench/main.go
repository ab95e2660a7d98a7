// Command mplogin-bench is mplogin's load harness. It builds mplogin,
// starts the emulator (with open codes) and the service (SQLite by default,
// or -store postgres://… and -sessions redis://…) as child processes, and
// measures, on this machine and over loopback, a bare net/http handler (the
// ceiling), GET /v1/session, and POST /v1/login for new and for returning
// users; optionally the service's RSS under a long steady load. It prints a
// table and PASS/FAIL against the targets, and can write JSON.
//
//	go run ./cmd/mplogin-bench [-scenarios bare,session,login-new,login-returning] [-c 64] [-d 10s]
//	                           [-warmup 2s] [-rate N|Fx] [-json FILE] [-keep] [-rss-soak 10m]
//	                           [-log-level warn] [-users 1000] [-rounds 1] [-quiet-wait 0]
//	                           [-timeout D] [-mplogin BIN] [-serve-cpuprofile FILE] [-serve-trace FILE]
//	                           [-populate N] [-data DIR] [-expired N] [-skew S]
//
// Hidden subcommands, for its own children: bare-server (the ceiling) and
// serve-profiled (the service in-process, with a CPU profile or a trace).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case cmdBareServer:
			os.Exit(bareServerMain(os.Args[2:], os.Stdout, os.Stderr))
		case cmdServeProfiled:
			os.Exit(serveProfiledMain(os.Args[2:], os.Stderr))
		}
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the harness's flags, parsed.
type options struct {
	scenarios []string // in the order they run
	workers   int
	duration  time.Duration
	warmup    time.Duration
	rate      rateFlag
	jsonPath  string
	keep      bool
	soak      time.Duration
	logLevel  string
	users     int
	timeout   time.Duration
	mplogin   string
	profile   string
	trace     string
	quiet     time.Duration
	rounds    int
	store     string   // the service's store: "" = SQLite in the scratch directory
	sessions  string   // the service's sessions: "" = in the store
	populate  int      // users written straight into the store first; 0 = none
	expired   int      // dead sessions written beside them, for the janitor to sweep
	skew      float64  // the checks' Zipf exponent over the populated users; 0 = uniform
	data      string   // kept directory for the SQLite file and the master key; "" = scratch
	args      []string // as given, for the report
}

// rateFlag is -rate: a number of requests per second, or a fraction of the
// bare handler's measured rate written with an x ("0.08x").
type rateFlag struct {
	perSec float64
	ofBare float64
}

func (r *rateFlag) String() string {
	switch {
	case r == nil:
		return ""
	case r.ofBare > 0:
		return strconv.FormatFloat(r.ofBare, 'g', -1, 64) + "x"
	case r.perSec > 0:
		return strconv.FormatFloat(r.perSec, 'g', -1, 64)
	}
	return ""
}

func (r *rateFlag) Set(s string) error {
	*r = rateFlag{}
	if f, ok := strings.CutSuffix(s, "x"); ok {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 10 {
			return errors.New("want a fraction of the bare rate such as 0.08x")
		}
		r.ofBare = v
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1e6 {
		return errors.New("want requests per second (0 < N <= 1e6) or a fraction of the bare rate such as 0.08x")
	}
	r.perSec = v
	return nil
}

// resolve returns the open-loop rate, given the bare handler's rate in
// this round (0 if not measured); 0 means closed loop.
func (r rateFlag) resolve(bareRPS float64) float64 {
	if r.ofBare > 0 {
		return r.ofBare * bareRPS
	}
	return r.perSec
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("mplogin-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.IntVar(&o.workers, "c", 64, "concurrent workers (closed loop); in open loop, at least this many, and enough to hold -rate at 50 ms a request")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "measured duration of each scenario")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up before each scenario, not measured")
	fs.Var(&o.rate, "rate", "open loop: send N requests per second, or Fx times the bare handler's measured rate (needs scenario bare), in every scenario but bare")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch directory (config, database, logs)")
	fs.DurationVar(&o.soak, "rss-soak", 0, "after the scenarios, run a steady login+session load this long, sampling the service's RSS every 10s")
	fs.StringVar(&o.logLevel, "log-level", "warn", "the service's log.level: debug, info, warn or error")
	fs.IntVar(&o.users, "users", 1000, "users in each of the two pools logged in first: one for session checks, one for the returning users' logins")
	fs.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (0: computed from the durations)")
	fs.StringVar(&o.mplogin, "mplogin", "", "use this mplogin binary instead of building ./cmd/mplogin")
	fs.StringVar(&o.profile, "serve-cpuprofile", "", "run the service in-process in a child of the harness (same server package) and write its CPU profile here")
	fs.StringVar(&o.trace, "serve-trace", "", "like -serve-cpuprofile, with an execution trace (go tool trace)")
	fs.IntVar(&o.rounds, "rounds", 1, "run the scenarios this many times in turn; verdicts use the median ratio to bare of the same round")
	fs.DurationVar(&o.quiet, "quiet-wait", 0, "before each scenario, wait up to this long for the rest of the machine to use less than 0.1 CPU (a shared machine)")
	fs.StringVar(&o.store, "store", "", "the service's store (postgres://…); default SQLite in the scratch directory")
	fs.StringVar(&o.sessions, "sessions", "", "the service's session store (redis://…); default none (sessions in the store)")
	fs.IntVar(&o.populate, "populate", 0, "before the scenarios, make sure the store holds N users, each with a live session, written straight into it; the session checks then pick among the even ones at random and the returning logins among the odd ones, instead of logging in -users pools")
	fs.IntVar(&o.expired, "expired", 0, "with -populate, also write N sessions of populated users that have already ended, which the service's janitor deletes from its start while the scenarios run; each scenario reports how many it has deleted (SQLite or PostgreSQL store, not -sessions)")
	fs.Float64Var(&o.skew, "skew", 0, "with -populate, the session checks pick their users by a Zipf law of this exponent (more than 1: the k-th most active user is checked in proportion to k^-S), as a few users of a real app make most of its requests; 0 picks uniformly")
	fs.StringVar(&o.data, "data", "", "keep the SQLite file (without -store) and the master key in this directory, and reuse them in later runs")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for s := range strings.SplitSeq(*scen, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case !slices.Contains(allScenarios, s):
			return o, fmt.Errorf("-scenarios: unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		case !slices.Contains(o.scenarios, s):
			o.scenarios = append(o.scenarios, s)
		}
	}
	// bare first: the others are compared with it.
	slices.SortFunc(o.scenarios, func(a, b string) int {
		return slices.Index(allScenarios, a) - slices.Index(allScenarios, b)
	})
	switch {
	case len(o.scenarios) == 0 && o.soak == 0:
		return o, errors.New("-scenarios: nothing to run")
	case o.workers < 1 || o.workers > 4096:
		return o, errors.New("-c: want 1 to 4096 workers")
	case o.duration <= 0:
		return o, errors.New("-d: want a positive duration")
	case o.warmup < 0:
		return o, errors.New("-warmup: want zero or more")
	case o.soak < 0:
		return o, errors.New("-rss-soak: want zero or more")
	case o.users < 1:
		return o, errors.New("-users: want at least 1")
	case o.populate < 0 || o.populate == 1 || o.populate > 100_000_000:
		return o, errors.New("-populate: want 0, or 2 to 100000000 users (half for the session checks, half for the returning logins)")
	case o.expired < 0 || o.expired > 100_000_000:
		return o, errors.New("-expired: want 0 to 100000000 sessions")
	case o.skew != 0 && (o.skew <= 1 || o.skew > 10 || o.populate == 0):
		return o, errors.New("-skew: want an exponent above 1 and at most 10, with -populate")
	case o.expired > 0 && o.populate == 0:
		return o, errors.New("-expired: needs -populate (the dead sessions belong to populated users)")
	case o.expired > 0 && o.sessions != "":
		return o, errors.New("-expired: sessions in Redis expire by themselves; without -sessions, the store's janitor deletes them")
	case o.rounds < 1 || o.rounds > 100:
		return o, errors.New("-rounds: want 1 to 100")
	case o.quiet < 0:
		return o, errors.New("-quiet-wait: want zero or more")
	case o.timeout < 0:
		return o, errors.New("-timeout: want zero or more")
	case o.rate.ofBare > 0 && !slices.Contains(o.scenarios, scBare):
		return o, errors.New("-rate " + o.rate.String() + ": a fraction of the bare rate needs the bare scenario")
	}
	switch o.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return o, fmt.Errorf("-log-level: unknown level %q", o.logLevel)
	}
	if o.timeout == 0 {
		per := o.warmup + o.duration + requestTimeout + 15*time.Second // start, stop, pool
		runs := time.Duration(o.rounds*len(o.scenarios) + 1)
		o.timeout = 3*time.Minute + runs*(per+o.quiet) + o.soak + o.soak/10 +
			time.Duration(o.populate+o.expired)*time.Millisecond // well below the slowest store's rate
	}
	return o, nil
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "mplogin-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	rep, err := runBench(ctx, o, stdout)
	if rep != nil && (len(rep.Results) > 0 || rep.Soak != nil) {
		rep.finish()
		rep.print(stdout)
		if o.jsonPath != "" {
			if jerr := rep.writeJSON(o.jsonPath); jerr != nil {
				fmt.Fprintln(stderr, "mplogin-bench:", jerr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "mplogin-bench:", err)
		return 1
	}
	if rep != nil && rep.errors() > 0 {
		fmt.Fprintln(stderr, "mplogin-bench: some requests failed; see the errors above")
		return 1
	}
	return 0
}
