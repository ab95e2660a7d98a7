package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one run measured.
type report struct {
	Command  string   `json:"command"`
	Tree     string   `json:"tree"` // the commit, and how many files differ from it
	Machine  machine  `json:"machine"`
	Workers  int      `json:"workers"`
	Warmup   string   `json:"warmup"`
	Duration string   `json:"duration"`
	Rate     string   `json:"rate_flag,omitempty"` // -rate as given
	Rounds   int      `json:"rounds"`
	Medians  []median `json:"medians,omitempty"` // with several rounds
	LogLevel string   `json:"log_level"`
	Store    string   `json:"store"`              // "sqlite" or "postgres"
	Sessions string   `json:"sessions,omitempty"` // "redis" when sessions live there
	Users    int      `json:"pool_users"`
	// Populated, with -populate, is how many users the checks and the
	// returning logins pick from, and PopulateSeconds how long making
	// sure the store held them took (short when it did already).
	Populated       int         `json:"populated_users,omitempty"`
	PopulateSeconds float64     `json:"populate_seconds,omitempty"`
	Expired         int         `json:"expired_sessions,omitempty"`
	Results         []*result   `json:"results"`
	IdleRSS         int64       `json:"idle_rss_bytes,omitempty"`
	RSSAfterPool    int64       `json:"rss_after_pool_login_bytes,omitempty"`
	Soak            *soakResult `json:"soak,omitempty"`
	Verdicts        []verdict   `json:"verdicts"`
}

type machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUModel   string `json:"cpu_model"`
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	MemTotal   string `json:"mem_total"`
}

type verdict struct {
	Target   string `json:"target"`
	Verdict  string `json:"verdict"` // PASS, FAIL or n/a
	Measured string `json:"measured"`
}

type rssSample struct {
	At  float64 `json:"at_s"` // seconds since the soak began
	RSS int64   `json:"rss_bytes"`
	// The slowest request of the interval that ends here, and the size of
	// the SQLite write-ahead log.
	PeakMs   float64 `json:"peak_ms"`
	WALBytes int64   `json:"wal_bytes"`
}

type soakResult struct {
	Seconds float64     `json:"seconds"`
	Samples []rssSample `json:"samples"`
	First   int64       `json:"first_bytes"`
	Last    int64       `json:"last_bytes"`
	Max     int64       `json:"max_bytes"`
	// SlopeMiBPerMin is the least-squares slope of the second half.
	SlopeMiBPerMin float64 `json:"slope_mib_per_min"`
	Grew           bool    `json:"grew"`
	Judgement      string  `json:"judgement"`
	Load           *result `json:"load"`
}

func newReport(o options) *report {
	r := &report{
		Command: commandLine(o.args), Machine: thisMachine(), Tree: tree(),
		Workers: o.workers, Warmup: o.warmup.String(), Duration: o.duration.String(),
		Rate: o.rate.String(), Rounds: o.rounds, LogLevel: o.logLevel, Users: o.users,
		Populated: o.populate, Store: "sqlite",
	}
	if o.store != "" {
		r.Store = "postgres"
	}
	if o.sessions != "" {
		r.Sessions = "redis"
	}
	return r
}

func (r *report) add(res *result) { r.Results = append(r.Results, res) }

// bareOf returns the bare handler's result of res's round.
func (r *report) bareOf(res *result) *result {
	for _, b := range r.Results {
		if b.Name == scBare && b.Round == res.Round {
			return b
		}
	}
	return nil
}

// all returns the results of one scenario, one per round.
func (r *report) all(name string) []*result {
	var out []*result
	for _, res := range r.Results {
		if res.Name == name {
			out = append(out, res)
		}
	}
	return out
}

// errors counts the failed requests of every scenario.
func (r *report) errors() uint64 {
	var n uint64
	for _, res := range r.Results {
		n += res.Errors
	}
	if r.Soak != nil && r.Soak.Load != nil {
		n += r.Soak.Load.Errors
	}
	return n
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *report) print(w io.Writer) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "mplogin load benchmark")
	fmt.Fprintln(w, "command: ", r.Command)
	fmt.Fprintln(w, "tree:    ", r.Tree)
	m := r.Machine
	fmt.Fprintf(w, "machine:  %s/%s, %s, nproc %d, GOMAXPROCS %d, %s, kernel %s, memory %s\n",
		m.OS, m.Arch, m.CPUModel, m.NumCPU, m.GOMAXPROCS, m.GoVersion, m.Kernel, m.MemTotal)
	fmt.Fprintf(w, "load:     %d workers, warm-up %s, %s per scenario, %d round(s), loopback; load generator on the same machine\n",
		r.Workers, r.Warmup, r.Duration, r.Rounds)
	where := map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[r.Store]
	if r.Sessions != "" {
		where += ", sessions in Redis (PostgreSQL and Redis run on this machine and count as other CPU)"
	}
	users := fmt.Sprintf("2 × %d pool users", r.Users)
	if r.Populated > 0 {
		users = fmt.Sprintf("%d populated users, picked at random", r.Populated)
	}
	fmt.Fprintf(w, "service:  mplogin serve on %s, log level %s; emulator mplogin emulate --open-codes (no added latency); %s\n",
		where, r.LogLevel, users)
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tround\tmode\trequests\terrors\treq/s\tp50\tp99\tp99.9\tmax\tx bare\tRSS after\tother CPU\t")
	rows := slices.Clone(r.Results)
	if r.Soak != nil && r.Soak.Load != nil {
		rows = append(rows, r.Soak.Load)
	}
	for _, res := range rows {
		mode := res.Mode
		if res.Mode == "open" {
			mode = fmt.Sprintf("open@%.0f/s,%dw", res.TargetRate, res.Workers)
		}
		ratio, rss := "-", "-"
		if res.RatioToBare > 0 {
			ratio = fmt.Sprintf("%.3f", res.RatioToBare)
		}
		if res.RSSAfter > 0 {
			rss = mib(res.RSSAfter)
		}
		other := fmt.Sprintf("%.2f", res.CPU["other"])
		if res.CPU["other"] >= quietCPU {
			other += " (!)"
		}
		round := "-"
		if res.Round > 0 {
			round = fmt.Sprint(res.Round)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", res.Name, round, mode, res.Requests, res.Errors,
			res.RPS, fmtMs(res.P50Ms), fmtMs(res.P99Ms), fmtMs(res.P999Ms), fmtMs(res.MaxMs), ratio, rss, other)
	}
	tw.Flush()
	fmt.Fprintf(w, "(other CPU: cores used by the rest of the machine during the scenario; (!) = %.1f or more, the numbers are disturbed)\n", quietCPU)
	if len(r.Medians) > 0 {
		fmt.Fprintf(w, "\nmedians over the undisturbed rounds (all rounds if none was):\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\trounds\treq/s\tp50\tp99\tx bare\t")
		for _, m := range r.Medians {
			ratio := "-"
			if m.RatioToBare > 0 {
				ratio = fmt.Sprintf("%.3f", m.RatioToBare)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t\n", m.Name, m.Rounds, m.RPS, fmtMs(m.P50Ms), fmtMs(m.P99Ms), ratio)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nCPU used, in cores of %d, over each scenario with its warm-up (other = the rest of the machine):\n", r.Machine.NumCPU)
	for _, res := range rows {
		fmt.Fprintf(w, "  %-16s %2s", res.Name, roundLabel(res))
		for _, k := range slices.Sorted(maps.Keys(res.CPU)) {
			fmt.Fprintf(w, "  %s %.2f", k, res.CPU[k])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "\nwrites of the server process per request (write(2) bytes incl. sockets, write calls, bytes to the block device):")
	for _, res := range rows {
		if res.Writes != nil {
			fmt.Fprintf(w, "  %-16s %2s  %8.0f B  %5.1f calls  %8.0f B to disk\n", res.Name, roundLabel(res),
				res.Writes["write_call_bytes"], res.Writes["write_calls"], res.Writes["block_write_bytes"])
		}
	}
	for _, res := range rows {
		for _, k := range slices.Sorted(maps.Keys(res.ErrorKinds)) {
			fmt.Fprintf(w, "  %s errors: %d x %s\n", res.Name, res.ErrorKinds[k], k)
		}
	}
	if r.Populated > 0 {
		fmt.Fprintf(w, "\npopulated users: %d (made sure of in %.1f s)\n", r.Populated, r.PopulateSeconds)
	}
	if r.Expired > 0 {
		fmt.Fprintf(w, "\ndead sessions written for the janitor: %d; deleted by the end of each scenario:\n", r.Expired)
		for _, res := range rows {
			if res.Name != scBare {
				fmt.Fprintf(w, "  %-16s round %d  %d\n", res.Name, res.Round, res.Swept)
			}
		}
	}
	if r.IdleRSS > 0 {
		fmt.Fprintf(w, "\nRSS of mplogin serve: idle %s", mib(r.IdleRSS))
		if r.RSSAfterPool > 0 {
			fmt.Fprintf(w, ", after logging in 2 × %d pool users %s", r.Users, mib(r.RSSAfterPool))
		}
		fmt.Fprintln(w)
	}
	if s := r.Soak; s != nil {
		fmt.Fprintf(w, "\nRSS soak, %v (every 10 s): time, RSS MiB, slowest request of the interval ms, WAL MiB\n", time.Duration(s.Seconds*float64(time.Second)))
		for i, x := range s.Samples {
			fmt.Fprintf(w, "  %5.0fs %5.1f %6.1f %5.1f", x.At, float64(x.RSS)/(1<<20), x.PeakMs, float64(x.WALBytes)/(1<<20))
			if i%4 == 3 || i == len(s.Samples)-1 {
				fmt.Fprintln(w)
			}
		}
		fmt.Fprintf(w, "  (MiB) %s; grew: %v\n", s.Judgement, s.Grew)
	}
	fmt.Fprintln(w, "\ntargets:")
	for _, v := range r.Verdicts {
		fmt.Fprintf(w, "  %-4s  %s: %s\n", v.Verdict, v.Target, v.Measured)
	}
}

func roundLabel(res *result) string {
	if res.Round == 0 {
		return ""
	}
	return fmt.Sprint(res.Round)
}

func fmtMs(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// commandLine is the command as it would be typed: go run
// ./cmd/mplogin-bench … when the go command built the harness.
func commandLine(args []string) string {
	prog := os.Args[0]
	if strings.Contains(prog, "go-build") {
		prog = "go run ./cmd/mplogin-bench"
	}
	var b strings.Builder
	b.WriteString(prog)
	for _, a := range args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
		} else {
			b.WriteString(a)
		}
	}
	return b.String()
}

func thisMachine() machine {
	m := machine{OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// tree describes the source tree measured: its commit and how many files
// differ from it, read without taking git's optional locks (nothing in the
// repository is written).
func tree() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "? (not a git checkout)"
	}
	out, err := exec.Command("git", "--no-optional-locks", "status", "--porcelain").Output()
	if err != nil {
		return strings.TrimSpace(string(head))
	}
	n := len(strings.Split(strings.TrimSpace(string(out)), "\n"))
	if strings.TrimSpace(string(out)) == "" {
		n = 0
	}
	return fmt.Sprintf("%s + %d changed or new files", strings.TrimSpace(string(head)), n)
}
