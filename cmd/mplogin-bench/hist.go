package main

import (
	"math"
	"math/bits"
	"time"
)

// A log-linear latency histogram in the manner of HdrHistogram: values below
// 2^subBits nanoseconds have a bucket each; above that, every power of two
// is cut into 2^subBits equal buckets, so that a bucket is never wider than
// 1/2^subBits (0.8%) of the values in it. All buckets are allocated up
// front: recording never allocates, and the memory is fixed whatever the
// load.
const (
	subBits    = 7
	subCount   = 1 << subBits
	maxLatency = time.Hour // larger values are counted in the last bucket
)

// numBuckets is the index of maxLatency's bucket, plus one.
var numBuckets = bucketOf(uint64(maxLatency)) + 1

// hist is not safe for concurrent use: give each worker its own and merge.
type hist struct {
	counts []uint64
	total  uint64
	sum    uint64 // nanoseconds; overflows after 584 years of summed latency
	min    uint64
	max    uint64
}

func newHist() *hist {
	return &hist{counts: make([]uint64, numBuckets), min: math.MaxUint64}
}

// bucketOf returns the index of the bucket holding v.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [subCount, 2*subCount)
	return shift*subCount + int(v>>shift)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := i/subCount - 1
	m := uint64(i - shift*subCount)
	return m << shift, (m+1)<<shift - 1
}

// record adds one latency. Negative durations count as zero.
func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	i := bucketOf(min(v, uint64(maxLatency)))
	h.counts[i]++
	h.total++
	h.sum += v
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// count is the number of recorded values.
func (h *hist) count() uint64 { return h.total }

// mean is the exact mean of the recorded values.
func (h *hist) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / h.total)
}

// maximum is the exact largest recorded value.
func (h *hist) maximum() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.max)
}

// quantile returns the value at or below which the fraction q of the
// recorded values fall (q in [0, 1]): the largest value of the bucket that
// holds the value of rank ceil(q*n), so it errs high by at most one bucket
// width, and never above the exact maximum nor below the exact minimum.
func (h *hist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i == len(h.counts)-1 {
				return time.Duration(h.max) // the overflow bucket
			}
			_, hi := bucketRange(i)
			return time.Duration(min(max(hi, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
