package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mplogin/mplogin"
)

// Soak parameters.
const (
	soakWorkers = 16
	// soakRate is the request count the soak must reach per 2 minutes.
	soakRate   = 100000
	soakPer    = 2 * time.Minute
	soakRotate = 3 * time.Second
	soakSample = 5 * time.Second
	soakUsers  = 300 // simulated users per worker; logins mix new and returning users
)

// soakFaults is the rotation of fault rule sets: each holds for soakRotate,
// on the login path and on WeChat's session check.
var soakFaults = []struct{ name, rules string }{
	{"none", ""},
	{"latency 100ms", `[{"path":"/sns/jscode2session","latency_ms":100},{"path":"/wxa/checksession","latency_ms":100}]`},
	{"errcode -1 at 20%", `[{"path":"/sns/jscode2session","errcode":-1,"error_rate":0.2},{"path":"/wxa/checksession","errcode":-1,"error_rate":0.2}]`},
	{"drop at 5%", `[{"path":"/sns/jscode2session","drop":true,"error_rate":0.05},{"path":"/wxa/checksession","drop":true,"error_rate":0.05}]`},
	{"garbage at 5%", `[{"path":"/sns/jscode2session","garbage":true,"error_rate":0.05},{"path":"/wxa/checksession","garbage":true,"error_rate":0.05}]`},
}

// soakOp is one kind of request of the mix, its weight, and the answers it
// may get ("status" or "status code").
type soakOp struct {
	name   string
	weight int
	ok     []string
}

var soakOps = []soakOp{
	{"login", 25, []string{"200", "503 platform_unavailable"}},
	{"session", 33, []string{"200", "401 invalid_token"}},
	{"verify", 4, []string{"200", "401 invalid_token", "503 platform_unavailable"}},
	{"refresh", 12, []string{"200", "400 invalid_grant"}},
	{"logout", 5, []string{"204", "401 invalid_token"}},
	{"decrypt-bad", 16, []string{"422 decrypt_failed", "401 invalid_token"}},
	{"bad-json", 4, []string{"400 invalid_request"}},
	// A token the client should no longer use: a refreshed-away or logged
	// out access token, or a spent refresh token (whose reuse revokes its
	// whole session, so later requests on it fail too). The refresh token a
	// refresh just spent may instead get that refresh's tokens again, within
	// the grace: see staleOK.
	{"stale-token", 4, []string{"401 invalid_token", "400 invalid_grant"}},
}

// soakWorker is one closed-loop client and what it saw.
type soakWorker struct {
	id       int
	rng      *rand.Rand
	sessions []tokens
	retired  []retiredPair  // tokens replaced by a refresh or ended by a logout
	counts   map[string]int // "op status code"
	lat      []time.Duration
	opLat    map[string][]time.Duration
	bad      []string // answers outside the contract or the op's set
	nbad     int
	seq      int
}

// TestSoak runs mixed traffic with rotating platform faults for the
// duration in MPLOGIN_SOAK:
//
//	MPLOGIN_SOAK=2m go test -count=1 -run TestSoak -timeout 10m -v ./faulttest/
//
// (-count=1: go test caches a passing run per value of MPLOGIN_SOAK, and
// would print the old figures instead of soaking again.)
func TestSoak(t *testing.T) {
	v := os.Getenv("MPLOGIN_SOAK")
	if v == "" {
		t.Skip("set MPLOGIN_SOAK to a duration (MPLOGIN_SOAK=2m go test -count=1 -run TestSoak -timeout 10m -v ./faulttest/) to run the soak")
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur <= 0 {
		t.Fatalf("MPLOGIN_SOAK=%q: want a positive duration such as 2m", v)
	}
	e := startEnv(t, envOptions{openCodes: true, conns: soakWorkers})
	e.tr.CloseIdleConnections()
	idleGoroutines := e.goroutines(t)
	idleRSS, err := e.svc.rss()
	if err != nil {
		t.Fatal(err)
	}
	warmup := min(max(dur/6, 10*time.Second), 30*time.Second)

	var (
		stop    atomic.Bool
		total   atomic.Int64
		wg      sync.WaitGroup
		workers = make([]*soakWorker, soakWorkers)
	)
	weights := 0
	for _, op := range soakOps {
		weights += op.weight
	}
	start := time.Now()
	for i := range workers {
		w := &soakWorker{id: i, rng: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))),
			counts: map[string]int{}, lat: make([]time.Duration, 0, 1<<16), opLat: map[string][]time.Duration{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				n := w.rng.IntN(weights)
				var op soakOp
				for _, op = range soakOps {
					if n < op.weight {
						break
					}
					n -= op.weight
				}
				w.run(e, op)
				total.Add(1)
			}
		}()
	}

	// Rotate the faults, and sample the service's memory and goroutines.
	type sample struct {
		at         time.Duration
		rss        int64
		heap       float64 // Go heap in use (go_memstats_heap_inuse_bytes)
		goroutines int
		requests   int64
	}
	var (
		samples   []sample
		phaseLog  []string
		warmRSS   int64
		phases    int
		monitorWG sync.WaitGroup
		monErr    error
	)
	monitorWG.Add(1)
	go func() {
		defer monitorWG.Done()
		rot := time.NewTicker(soakRotate)
		defer rot.Stop()
		smp := time.NewTicker(soakSample)
		defer smp.Stop()
		end := time.NewTimer(dur)
		defer end.Stop()
		warm := time.NewTimer(warmup)
		defer warm.Stop()
		for {
			select {
			case <-rot.C:
				phases++
				phaseLog = append(phaseLog, time.Now().UTC().Format("15:04:05.000")+" "+soakFaults[phases%len(soakFaults)].name)
				if err := e.setFaultsErr(soakFaults[phases%len(soakFaults)].rules); err != nil {
					monErr = err
					stop.Store(true)
					return
				}
			case <-smp.C:
				rss, err := e.svc.rss()
				if err != nil {
					monErr = fmt.Errorf("service gone? %v", err)
					stop.Store(true)
					return
				}
				g, _ := e.metric("go_goroutines")
				h, _ := e.metric("go_memstats_heap_inuse_bytes")
				samples = append(samples, sample{time.Since(start), rss, h, int(g), total.Load()})
			case <-warm.C:
				warmRSS, _ = e.svc.rss()
			case <-end.C:
				stop.Store(true)
				return
			}
		}
	}()
	monitorWG.Wait()
	wg.Wait()
	elapsed := time.Since(start)
	if monErr != nil {
		t.Fatal(monErr)
	}
	endRSS, err := e.svc.rss()
	if err != nil {
		t.Fatalf("service gone at the end: %v\n%s", err, e.svc.stderr)
	}

	// Merge what the workers saw.
	counts := map[string]int{}
	byStatus := map[string]int{}
	var lat []time.Duration
	var bad []string
	nbad := 0
	opLat := map[string][]time.Duration{}
	for _, w := range workers {
		for op, l := range w.opLat {
			opLat[op] = append(opLat[op], l...)
		}
		for k, n := range w.counts {
			counts[k] += n
			f := strings.Fields(k)
			byStatus[strings.Join(f[1:], " ")] += n
		}
		lat = append(lat, w.lat...)
		bad = append(bad, w.bad...)
		nbad += w.nbad
	}
	slices.Sort(lat)
	pctOf := func(lat []time.Duration, p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Microsecond)
	}
	pct := func(p float64) time.Duration { return pctOf(lat, p) }
	n := total.Load()
	t.Logf("soak: %v with %d workers, %d requests (%.0f req/s), %d fault phases of %v",
		elapsed.Round(time.Second), soakWorkers, n, float64(n)/elapsed.Seconds(), phases, soakRotate)
	t.Logf("latency: p50 %v, p99 %v, p99.9 %v, max %v", pct(0.50).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), pct(0.999).Round(time.Microsecond), lat[len(lat)-1].Round(time.Millisecond))
	var perOp []string
	for _, op := range soakOps {
		l := opLat[op.name]
		slices.Sort(l)
		if len(l) > 0 {
			perOp = append(perOp, fmt.Sprintf("\n  %-12s p50 %v, p99 %v, max %v", op.name, pctOf(l, 0.5), pctOf(l, 0.99), l[len(l)-1].Round(time.Millisecond)))
		}
	}
	t.Logf("latency by request: %s", strings.Join(perOp, ""))
	t.Logf("by status: %s", fmtCounts(byStatus))
	t.Logf("by request and status: %s", fmtCounts(counts))
	t.Logf("service RSS: idle %.1f MiB, after warm-up (%v) %.1f MiB, end %.1f MiB; goroutines idle %d",
		mib(idleRSS), warmup, mib(warmRSS), mib(endRSS), idleGoroutines)
	var series []string
	for _, s := range samples {
		series = append(series, fmt.Sprintf("%ds:%.1f/%.1fMiB/%dg/%dreq", int(s.at.Seconds()), mib(s.rss), s.heap/(1<<20), s.goroutines, s.requests))
	}
	t.Logf("samples (RSS/Go heap in use/goroutines/requests): %s", strings.Join(series, " "))
	t.Logf("5xx answers by cause (service log): %s", fmtCounts(e.svc.stderr.causes5xx()))
	changes := e.svc.stderr.breakerChanges()
	t.Logf("breaker state changes: %d", len(changes))
	if len(changes) > 0 {
		t.Logf("fault phases: %s", strings.Join(phaseLog, ", "))
	}
	for i, c := range changes {
		if i == 40 {
			t.Logf("  …")
			break
		}
		t.Logf("  %s", c)
	}

	// The verdicts.
	if nbad > 0 {
		t.Errorf("%d answers outside the contract or the request's expected set; first ones:\n%s", nbad, strings.Join(bad, "\n"))
	}
	if byStatus["500 internal_error"] > 0 {
		t.Errorf("%d answers were 500", byStatus["500 internal_error"])
	}
	want := int64(float64(soakRate) * float64(dur) / float64(soakPer))
	if n < want {
		t.Errorf("%d requests in %v; want at least %d (%d per %v)", n, dur, want, soakRate, soakPer)
	}
	if warmRSS > 0 && endRSS > 2*warmRSS {
		t.Errorf("service RSS grew from %.1f MiB after warm-up to %.1f MiB at the end: more than doubled", mib(warmRSS), mib(endRSS))
	}

	// Healthy afterwards: faults off, a login succeeds (within the breaker's
	// open period), goroutines settle.
	e.setFaults(t, "")
	recoverStart := time.Now()
	for {
		r := e.call(context.Background(), req{method: "POST", path: "/v1/login",
			body: map[string]string{"app": appShop, "code": fmt.Sprintf("final.%d", time.Now().UnixNano())}})
		if r.status == 200 {
			break
		}
		if r.status != 503 || overdue(recoverStart, recoverBound) {
			t.Fatalf("login after the soak: %s", r)
		}
		time.Sleep(100 * time.Millisecond) // polling the child until its breaker closes, bounded above
	}
	e.checkHealthy(t)
	g, ok := e.settleGoroutines(t, idleGoroutines+2*64+goroutineSlack)
	t.Logf("service goroutines after the soak, client connections closed: %d (idle before: %d)", g, idleGoroutines)
	if !ok {
		t.Errorf("service goroutines %d after the soak, %d before it", g, idleGoroutines)
	}
	e.stopAll(t)
}

// run sends one request of kind op and records the answer.
func (w *soakWorker) run(e *env, op soakOp) {
	if op.name == "stale-token" && len(w.retired) == 0 {
		op = soakOps[1] // session
	}
	if len(w.sessions) == 0 && op.name != "login" && op.name != "bad-json" && op.name != "stale-token" {
		op = soakOps[0]
	}
	pick := -1
	var (
		tk    tokens
		stale *retiredPair
	)
	switch op.name {
	case "login", "bad-json":
	case "stale-token":
		old := w.retired[w.rng.IntN(len(w.retired))]
		tk = old.tokens
		stale = &old
	default:
		pick = w.rng.IntN(len(w.sessions))
		tk = w.sessions[pick]
	}
	var r req
	switch op.name {
	case "login":
		w.seq++
		r = req{method: "POST", path: "/v1/login", body: map[string]string{"app": appShop,
			"code": fmt.Sprintf("w%d-u%d.%d", w.id, w.rng.IntN(soakUsers), w.seq)}}
	case "session":
		r = req{method: "GET", path: "/v1/session", token: tk.AccessToken}
	case "verify":
		r = req{method: "GET", path: "/v1/session?verify=platform", token: tk.AccessToken}
	case "refresh":
		r = req{method: "POST", path: "/v1/token", body: map[string]string{"grant_type": "refresh_token", "refresh_token": tk.RefreshToken}}
	case "logout":
		r = req{method: "POST", path: "/v1/logout", token: tk.AccessToken}
	case "decrypt-bad":
		junk := make([]byte, 16*(1+w.rng.IntN(4)))
		for i := range junk {
			junk[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[w.rng.IntN(64)]
		}
		iv := "AAAAAAAAAAAAAAAAAAAAAA=="
		if w.rng.IntN(4) == 0 {
			iv = "not-base64!"
		}
		r = req{method: "POST", path: "/v1/userdata/decrypt", token: tk.AccessToken,
			body: map[string]string{"encrypted_data": string(junk), "iv": iv}}
	case "bad-json":
		r = req{method: "POST", path: "/v1/login", body: `{"app":"shop","code":`}
	case "stale-token":
		if w.rng.IntN(2) == 0 {
			r = req{method: "GET", path: "/v1/session", token: tk.AccessToken}
		} else {
			r = req{method: "POST", path: "/v1/token", body: map[string]string{"grant_type": "refresh_token", "refresh_token": tk.RefreshToken}}
		}
	}
	rep := e.call(context.Background(), r)
	w.lat = append(w.lat, rep.dur)
	w.opLat[op.name] = append(w.opLat[op.name], rep.dur)
	key := "transport-error"
	if rep.err == nil {
		key = fmt.Sprint(rep.status)
		if rep.code != "" {
			key += " " + rep.code
		}
	}
	w.counts[op.name+" "+key]++
	if err := contractError(rep); err != nil {
		w.fail(op.name + ": " + err.Error())
	} else if stale != nil && r.path == "/v1/token" && key == "200" {
		if err := stale.graceOK(rep); err != nil {
			w.fail("stale-token: " + err.Error())
		}
	} else if !slices.Contains(op.ok, key) {
		w.fail(fmt.Sprintf("%s: not one of %q: %s", op.name, op.ok, rep))
	}

	// Keep the pool of sessions current.
	switch {
	case op.name == "login" && rep.status == 200, op.name == "refresh" && rep.status == 200:
		var fresh tokens
		if json.Unmarshal(rep.body, &fresh) != nil || fresh.AccessToken == "" {
			w.fail(op.name + ": 200 without tokens: " + rep.String())
			return
		}
		if pick >= 0 {
			w.retire(retiredPair{tokens: w.sessions[pick], successor: fresh, at: time.Now()})
			w.sessions[pick] = fresh
		} else if len(w.sessions) < 64 {
			w.sessions = append(w.sessions, fresh)
		} else {
			w.sessions[w.rng.IntN(len(w.sessions))] = fresh
		}
	case op.name == "logout", op.name == "refresh" && rep.status != 200:
		w.retire(retiredPair{tokens: w.sessions[pick], at: time.Now()})
		w.sessions = slices.Delete(w.sessions, pick, pick+1)
	}
}

// retire keeps a token pair the client must no longer use, for the
// stale-token requests.
func (w *soakWorker) retire(tk retiredPair) {
	if len(w.retired) < 64 {
		w.retired = append(w.retired, tk)
	} else {
		w.retired[w.rng.IntN(len(w.retired))] = tk
	}
}

func (w *soakWorker) fail(s string) {
	w.nbad++
	if len(w.bad) < 10 {
		w.bad = append(w.bad, s)
	}
}

// setFaultsErr is setFaults for goroutines other than the test's.
func (e *env) setFaultsErr(rules string) error {
	if _, err := e.emuCall("DELETE", "/_emulator/faults", nil); err != nil {
		return err
	}
	if rules == "" {
		return nil
	}
	_, err := e.emuCall("PUT", "/_emulator/faults", json.RawMessage(rules))
	return err
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-40s %9d", k, m[k])
	}
	return b.String()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// retiredPair is a token pair the client must no longer use, and, when a
// refresh replaced it, the pair that refresh gave.
type retiredPair struct {
	tokens
	successor tokens // empty: ended by a logout or a failed refresh
	at        time.Time
}

// soakGrace is how long after its refresh a spent refresh token may still
// get that refresh's tokens: the service's default refresh_reuse_grace and
// the clock skew it tolerates on top.
const soakGrace = 30*time.Second + mplogin.MaxClockSkew

// graceOK checks a 200 to a spent refresh token presented again: only the
// token a refresh spent, within the grace, and only with the very pair that
// refresh gave.
func (p retiredPair) graceOK(rep reply) error {
	if p.successor.RefreshToken == "" {
		return fmt.Errorf("200 to a refresh token of a logged-out session: %s", rep)
	}
	if since := time.Since(p.at); since > soakGrace {
		return fmt.Errorf("200 to a refresh token spent %v ago, past the grace", since.Round(time.Second))
	}
	var got tokens
	if json.Unmarshal(rep.body, &got) != nil || got != p.successor {
		return errors.New("200 to a just-spent refresh token, but not with the pair its refresh gave")
	}
	return nil
}
