package main

import (
	"io"
	"slices"
	"testing"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-scenarios", "login-new,bare,session,bare", "-rate", "0.08x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bare", "session", "login-new"}; !slices.Equal(o.scenarios, want) {
		t.Errorf("scenarios = %v, want %v (bare first, no repeats)", o.scenarios, want)
	}
	if got := o.rate.resolve(50_000); got != 4000 {
		t.Errorf("0.08x of 50000 = %v", got)
	}
	if o.timeout <= o.duration {
		t.Errorf("timeout %v not computed", o.timeout)
	}
	for _, bad := range [][]string{
		{"-scenarios", "nope"},
		{"-scenarios", "session", "-rate", "0.08x"}, // a fraction of bare needs bare
		{"-rate", "-1"},
		{"-c", "0"},
		{"-log-level", "loud"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", bad)
		}
	}
}

func TestSoakJudge(t *testing.T) {
	series := func(f func(i int) int64) *soakResult {
		s := &soakResult{}
		for i := range 60 {
			s.Samples = append(s.Samples, rssSample{At: float64(10 * i), RSS: f(i)})
		}
		s.judge()
		return s
	}
	const mb = 1 << 20
	if s := series(func(i int) int64 { return 40*mb + int64(i%3)*mb/2 }); s.Grew {
		t.Errorf("a flat series grew: %s", s.Judgement)
	}
	if s := series(func(i int) int64 { return 40*mb + int64(i)*mb/4 }); !s.Grew {
		t.Errorf("15 MiB over the soak did not grow: %s", s.Judgement)
	}
	if s := series(func(i int) int64 { return int64(min(i, 10)) * 4 * mb }); s.Grew {
		t.Errorf("warm-up then flat grew: %s", s.Judgement)
	}
}

func TestCleanRounds(t *testing.T) {
	res := func(name string, round int, other float64) *result {
		return &result{Name: name, Round: round, Mode: "closed", RPS: 1, CPU: map[string]float64{"other": other}}
	}
	r := &report{Rounds: 2, Results: []*result{
		res(scBare, 1, 0.5), res(scSession, 1, 0), // bare disturbed
		res(scBare, 2, 0), res(scSession, 2, 0),
	}}
	if got := r.clean(r.all(scSession)); len(got) != 1 || got[0].Round != 2 {
		t.Errorf("clean = %v, want round 2 only", got)
	}
}
