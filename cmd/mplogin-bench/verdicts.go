package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The targets: on SQLite, and with sessions in Redis or the store on
// PostgreSQL.
const (
	targetSessionRatio      = 0.5
	targetSessionRatioRedis = 0.4
	targetLoginRatio        = 0.08
	targetLoginRatioPG      = 0.06
	targetLoginP99          = 50 * time.Millisecond
	targetIdleRSS           = 40 << 20 // 40 MiB
	targetSoak              = 10 * time.Minute
	// growthSlack* is how much higher the RSS at the end of a soak may be
	// than in its second quarter (the larger of the two) without counting
	// as growth: GC pacing and allocator noise move RSS by about this much.
	growthSlackFrac = 0.05
	growthSlackAbs  = 2 << 20
)

// median summarises a scenario over its rounds.
type median struct {
	Name        string  `json:"name"`
	Rounds      int     `json:"rounds"`
	RPS         float64 `json:"req_per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	RatioToBare float64 `json:"ratio_to_bare,omitempty"`
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

func field(rs []*result, f func(*result) float64) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		out = append(out, f(r))
	}
	return out
}

// finish computes the ratios to the bare handler of the same round, the
// medians over the rounds, and the verdicts.
func (r *report) finish() {
	for _, res := range r.Results {
		if b := r.bareOf(res); b != nil && b != res && b.RPS > 0 {
			res.RatioToBare = res.RPS / b.RPS
		}
	}
	r.Medians = nil
	if r.Rounds > 1 {
		for _, name := range allScenarios {
			rs := r.clean(r.all(name))
			if len(rs) == 0 {
				continue
			}
			r.Medians = append(r.Medians, median{Name: name, Rounds: len(rs),
				RPS:         medianOf(field(rs, func(x *result) float64 { return x.RPS })),
				P50Ms:       medianOf(field(rs, func(x *result) float64 { return x.P50Ms })),
				P99Ms:       medianOf(field(rs, func(x *result) float64 { return x.P99Ms })),
				RatioToBare: medianOf(field(rs, func(x *result) float64 { return x.RatioToBare })),
			})
		}
	}
	r.Verdicts = nil
	add := func(target, v, measured string) {
		r.Verdicts = append(r.Verdicts, verdict{Target: target, Verdict: v, Measured: measured})
	}
	ratio := func(name, target string, want float64) {
		all := r.all(name)
		if len(all) == 0 {
			return
		}
		if r.bareOf(all[0]) == nil || all[0].Mode != "closed" {
			add(target, "n/a", "needs the bare and "+name+" scenarios in closed loop in one run")
			return
		}
		rs := r.clean(all)
		ratios := field(rs, func(x *result) float64 { return x.RatioToBare })
		m := medianOf(ratios)
		var errs uint64
		var each []string
		for _, x := range rs {
			errs += x.Errors
			each = append(each, fmt.Sprintf("%.3f (%.0f / %.0f)", x.RatioToBare, x.RPS, r.bareOf(x).RPS))
		}
		var measured string
		if len(rs) > 1 {
			measured = fmt.Sprintf("median %.3fx of %d rounds: %s req/s; %d errors", m, len(rs), strings.Join(each, ", "), errs)
		} else {
			measured = fmt.Sprintf("%.3fx (%.0f vs %.0f req/s), %d errors", m, rs[0].RPS, r.bareOf(rs[0]).RPS, errs)
		}
		if len(rs) < len(all) {
			measured += fmt.Sprintf(" (%d disturbed round(s) left out)", len(all)-len(rs))
		} else if r.disturbed(rs) {
			measured += " (disturbed: the rest of the machine used CPU during it; see other CPU)"
		}
		add(target, passIf(m >= want && errs == 0), measured)
	}
	sessionTarget, loginTarget := targetSessionRatio, targetLoginRatio
	if r.Sessions == "redis" {
		sessionTarget = targetSessionRatioRedis
	}
	if r.Store == "postgres" {
		loginTarget = targetLoginRatioPG
	}
	where := r.Store
	if r.Sessions != "" {
		where += ", sessions in " + r.Sessions
	}
	ratio(scSession, fmt.Sprintf("GET /v1/session (%s) >= %gx bare req/s", where, sessionTarget), sessionTarget)
	ratio(scAuthz, fmt.Sprintf("GET /v1/authz (%s) >= %gx bare req/s", where, sessionTarget), sessionTarget)
	ratio(scLoginNew, fmt.Sprintf("POST /v1/login (%s), new users >= %gx bare req/s", where, loginTarget), loginTarget)
	ratio(scLoginReturning, fmt.Sprintf("POST /v1/login (%s), returning users >= %gx bare req/s", where, loginTarget), loginTarget)
	for _, name := range []string{scLoginNew, scLoginReturning} {
		rs := r.all(name)
		if len(rs) == 0 {
			continue
		}
		target := fmt.Sprintf("POST /v1/login (%s) p99 < %v at %gx bare req/s", name, targetLoginP99, targetLoginRatio)
		if rs[0].Mode != "open" {
			add(target, "n/a", "closed loop; run with -scenarios bare,"+name+" -rate 0.08x")
			continue
		}
		ok := true
		var each []string
		for _, res := range rs {
			achieved := res.RPS / res.TargetRate
			ok = ok && res.P99Ms < ms(targetLoginP99) && achieved >= 0.97 && res.Errors == 0
			m := fmt.Sprintf("p99 %.2f ms at %.0f req/s (target %.0f, achieved %.1f%%, %d errors",
				res.P99Ms, res.RPS, res.TargetRate, 100*achieved, res.Errors)
			if b := r.bareOf(res); b != nil {
				ok = ok && res.TargetRate >= targetLoginRatio*b.RPS*0.999
				m += fmt.Sprintf(", rate %.3fx bare)", res.TargetRate/b.RPS)
			} else {
				m += "; bare not measured in this run: compare the rate with 0.08x bare yourself)"
			}
			each = append(each, m)
		}
		add(target, passIf(ok), strings.Join(each, "; "))
	}
	if r.IdleRSS > 0 {
		add(fmt.Sprintf("idle RSS of mplogin serve < %s", mib(targetIdleRSS)), passIf(r.IdleRSS < targetIdleRSS), mib(r.IdleRSS))
	}
	target := fmt.Sprintf("no RSS growth over %v of steady load", targetSoak)
	switch s := r.Soak; {
	case s == nil:
		add(target, "n/a", "run with -rss-soak 10m")
	default:
		v := passIf(!s.Grew && s.Load.Errors == 0)
		if d := time.Duration(s.Seconds * float64(time.Second)); d < targetSoak && v == "PASS" {
			v = "PASS (partial: " + d.String() + " soak, not " + targetSoak.String() + ")"
		}
		add(target, v, s.Judgement)
	}
	add("every request answered 2xx with the expected body", passIf(r.errors() == 0), fmt.Sprintf("%d errors", r.errors()))
}

// quiet reports whether the rest of the machine left a scenario alone.
func quiet(res *result) bool { return res != nil && res.CPU["other"] < quietCPU }

// clean returns the results whose round was undisturbed (the result and its
// round's bare handler alike), or all of them if none was.
func (r *report) clean(rs []*result) []*result {
	var out []*result
	for _, x := range rs {
		if quiet(x) && (x.Name == scBare || r.bareOf(x) == nil || quiet(r.bareOf(x))) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return rs
	}
	return out
}

// disturbed reports whether any of rs, or its bare handler, was disturbed.
func (r *report) disturbed(rs []*result) bool {
	for _, x := range rs {
		if !quiet(x) || (r.bareOf(x) != nil && !quiet(r.bareOf(x))) {
			return true
		}
	}
	return false
}

func passIf(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// judge decides whether the RSS grew during the soak: the largest sample
// of the last quarter against the largest of the second quarter (the first
// quarter is warm-up: caches, connection pools and the GC's goal settle).
func (s *soakResult) judge() {
	n := len(s.Samples)
	if n == 0 {
		s.Judgement = "no samples"
		return
	}
	s.First, s.Last = s.Samples[0].RSS, s.Samples[n-1].RSS
	for _, x := range s.Samples {
		s.Max = max(s.Max, x.RSS)
	}
	if n < 8 {
		s.Judgement = fmt.Sprintf("too few samples (%d) to judge; first %s, last %s, max %s", n, mib(s.First), mib(s.Last), mib(s.Max))
		s.Grew = true
		return
	}
	peak := func(xs []rssSample) int64 {
		var m int64
		for _, x := range xs {
			m = max(m, x.RSS)
		}
		return m
	}
	ref := peak(s.Samples[n/4 : n/2])
	end := peak(s.Samples[3*n/4:])
	slack := max(int64(float64(ref)*growthSlackFrac), growthSlackAbs)
	s.Grew = end > ref+slack
	s.SlopeMiBPerMin = slope(s.Samples[n/2:]) / (1 << 20) * 60
	s.Judgement = fmt.Sprintf("first %s (before load), last %s, max %s; peak of last quarter %s vs second quarter %s (slack %s); second-half slope %+.2f MiB/min",
		mib(s.First), mib(s.Last), mib(s.Max), mib(end), mib(ref), mib(slack), s.SlopeMiBPerMin)
}

// slope is the least-squares slope of RSS over time, in bytes per second.
func slope(xs []rssSample) float64 {
	var sx, sy, sxx, sxy float64
	for _, x := range xs {
		t, y := x.At, float64(x.RSS)
		sx, sy, sxx, sxy = sx+t, sy+y, sxx+t*t, sxy+t*y
	}
	n := float64(len(xs))
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
