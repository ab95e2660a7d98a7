package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	var next uint64
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if hi < lo {
			t.Fatalf("bucket %d is [%d, %d]", i, lo, hi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d], but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= subCount && float64(hi-lo+1) > float64(lo)/subCount {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/%d of its values", i, lo, hi, subCount)
		}
		next = hi + 1
	}
	if _, hi := bucketRange(numBuckets - 1); hi < uint64(maxLatency) {
		t.Fatalf("last bucket ends at %d, below maxLatency", hi)
	}
}

func TestQuantilesUniform(t *testing.T) {
	h := newHist()
	// 1 µs … 10 ms, once each.
	for us := 1; us <= 10_000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0, time.Microsecond},
		{0.5, 5 * time.Millisecond},
		{0.9, 9 * time.Millisecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{1, 10 * time.Millisecond},
	} {
		got := h.quantile(tc.q)
		if got < tc.want || float64(got-tc.want) > float64(tc.want)/subCount {
			t.Errorf("quantile(%v) = %v, want %v (+%.1f%%)", tc.q, got, tc.want, 100.0/subCount)
		}
	}
	if got := h.count(); got != 10_000 {
		t.Errorf("count = %d", got)
	}
	if got, want := h.mean(), 5000500*time.Nanosecond; got != want {
		t.Errorf("mean = %v, want %v", got, want)
	}
	if got := h.maximum(); got != 10*time.Millisecond {
		t.Errorf("max = %v", got)
	}
}

// TestQuantilesAgainstSort compares with the exact quantiles of a
// long-tailed random sample, merged from several histograms.
func TestQuantilesAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	h := newHist()
	for range 4 {
		part := newHist()
		for range 50_000 {
			d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
			if r.IntN(1000) == 0 {
				d *= 50 // a tail
			}
			part.record(d)
			all = append(all, d)
		}
		h.merge(part)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		exact := all[int(math.Ceil(q*float64(len(all))))-1]
		got := h.quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/subCount+1 {
			t.Errorf("quantile(%v) = %v, exact %v", q, got, exact)
		}
	}
	if h.maximum() != all[len(all)-1] {
		t.Errorf("max = %v, want %v", h.maximum(), all[len(all)-1])
	}
}

func TestQuantileEdges(t *testing.T) {
	h := newHist()
	if h.quantile(0.99) != 0 || h.mean() != 0 || h.maximum() != 0 {
		t.Fatal("an empty histogram must report zeros")
	}
	h.record(-time.Second)  // clamped to 0
	h.record(3 * time.Hour) // beyond maxLatency: last bucket, exact max
	h.record(123 * time.Nanosecond)
	if got := h.quantile(1); got != 3*time.Hour {
		t.Errorf("quantile(1) = %v, want the exact max", got)
	}
	if got := h.quantile(0.5); got != 123*time.Nanosecond {
		t.Errorf("quantile(0.5) = %v, want 123ns (exact below %d)", got, subCount)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	h := newHist()
	if n := testing.AllocsPerRun(1000, func() { h.record(1234567 * time.Nanosecond) }); n != 0 {
		t.Fatalf("record allocates %v times", n)
	}
}
