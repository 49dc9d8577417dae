package main

import (
	"math/rand/v2"
	"testing"
)

func TestBucketBounds(t *testing.T) {
	vals := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1e6, 1e9, 1 << 46}
	for range 10000 {
		vals = append(vals, rand.Uint64N(1<<46))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if lo, hi := lowOf(i), highOf(i); v < lo || v > hi {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if lo := lowOf(i); v >= subCount && float64(highOf(i)-lo+1) > float64(lo)/63 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/64 of its value", i, lo, highOf(i))
		}
	}
	for i := 1; i < nBuckets; i++ {
		if lowOf(i) != highOf(i-1)+1 {
			t.Fatalf("bucket %d does not start where %d ends", i, i-1)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h histogram
	for v := int64(1); v <= 1000; v++ {
		h.record(v * 1000)
	}
	tests := []struct {
		name string
		q    float64
		want uint64
	}{
		{"p50", 0.5, 500_000},
		{"p99", 0.99, 990_000},
		{"max", 1, 1_000_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := h.quantile(tc.q)
			if got < tc.want || float64(got) > float64(tc.want)*1.02 {
				t.Fatalf("quantile(%v) = %d, want %d within 2%%", tc.q, got, tc.want)
			}
		})
	}
}
