package main

import (
	"math/bits"
	"sync/atomic"
)

// Histogram buckets follow HDR's layout: values below subCount are exact; above,
// each power of two is split into subCount/2 linear buckets, so a bucket's width
// is at most 1/64 of its value (1.6 %).
const (
	subBits  = 7
	subCount = 1 << subBits // 128
	maxShift = 40           // values up to 2^47 ns (39 h) are recorded exactly enough
	nBuckets = subCount + maxShift*subCount/2
)

// histogram counts latencies in nanoseconds. Record is safe for concurrent use.
type histogram struct {
	counts [nBuckets]atomic.Uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // v>>shift is in [64, 127]
	if shift > maxShift {
		return nBuckets - 1
	}
	return subCount + (shift-1)*subCount/2 + int(v>>shift) - subCount/2
}

// lowOf returns the smallest value that falls in bucket i.
func lowOf(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	j := i - subCount
	shift := j/(subCount/2) + 1
	return uint64(j%(subCount/2)+subCount/2) << shift
}

// highOf returns the largest value that falls in bucket i.
func highOf(i int) uint64 {
	if i == nBuckets-1 {
		return ^uint64(0)
	}
	return lowOf(i+1) - 1
}

func (h *histogram) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.counts[bucketOf(uint64(ns))].Add(1)
}

func (h *histogram) total() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// quantile returns the upper bound of the bucket holding quantile q (0 < q ≤ 1),
// so the reported value is never below the true one; 0 when empty.
func (h *histogram) quantile(q float64) uint64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return highOf(i)
		}
	}
	return highOf(nBuckets - 1)
}

// maxValue returns the upper bound of the highest non-empty bucket.
func (h *histogram) maxValue() uint64 {
	for i := nBuckets - 1; i >= 0; i-- {
		if h.counts[i].Load() != 0 {
			return highOf(i)
		}
	}
	return 0
}
