package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of ds:
// the smallest value with at least p% of the values at or below it. It
// returns 0 for no values.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// spread summarises durations: count, p50, p95 and max.
type spread struct {
	n             int
	p50, p95, max time.Duration
}

// summarize returns the spread of ds.
func summarize(ds []time.Duration) spread {
	if len(ds) == 0 {
		return spread{}
	}
	return spread{n: len(ds), p50: percentile(ds, 50), p95: percentile(ds, 95), max: slices.Max(ds)}
}

// rate is n events over d, per second; 0 when d is not positive.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
