package main

import (
	"slices"
	"testing"
	"time"
)

// TestMedian: the median round by throughput (the lower middle one for an
// even count), carrying every round's throughput in the order they ran.
func TestMedian(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1733375000, 0)
	round := func(secs float64, note string) burstResult {
		return burstResult{span: burstSpan{runs: 300, recorded: 300, firstClaim: t0, lastRecord: t0.Add(time.Duration(secs * float64(time.Second)))}, notes: []string{note}}
	}
	tests := []struct {
		name       string
		rounds     []burstResult
		wantNote   string
		wantRounds []float64
	}{
		{"one", []burstResult{round(10, "a")}, "a", []float64{30}},
		{"three", []burstResult{round(10, "a"), round(5, "b"), round(6, "c")}, "c", []float64{30, 60, 50}},
		{"four", []burstResult{round(10, "a"), round(5, "b"), round(6, "c"), round(4, "d")}, "c", []float64{30, 60, 50, 75}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := median(tt.rounds)
			if m.notes[0] != tt.wantNote || !slices.Equal(m.rounds, tt.wantRounds) {
				t.Errorf("median = round %q with rounds %v; want round %q with %v", m.notes[0], m.rounds, tt.wantNote, tt.wantRounds)
			}
		})
	}
}
