package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			line: "4242 (python3.11) S 4200 4242 4200 0 -1 4194560 9331 0 0 0 250 37 12 1 20 0 9 0 123 456 789",
			want: procStat{pid: 4242, ppid: 4200, cpu: 3 * time.Second},
		},
		{
			name: "command with spaces and parentheses",
			line: "77 (prefect (worker) x) R 1 77 77 0 -1 0 0 0 0 0 100 0 0 0 20 0",
			want: procStat{pid: 77, ppid: 1, cpu: time.Second},
		},
		{name: "truncated", line: "77 (x) R 1 77", wantErr: true},
		{name: "no command", line: "77 R 1", wantErr: true},
		{name: "bad number", line: "77 (x) R 1 77 77 0 -1 0 0 0 0 0 ten 0 0 0 20 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProcStat error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("parseProcStat = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTreeCPU(t *testing.T) {
	t.Parallel()
	stats := []procStat{
		{pid: 1, ppid: 0, cpu: 100 * time.Second},
		{pid: 10, ppid: 1, cpu: 2 * time.Second},  // root
		{pid: 11, ppid: 10, cpu: 3 * time.Second}, // child
		{pid: 12, ppid: 11, cpu: 4 * time.Second}, // grandchild
		{pid: 20, ppid: 1, cpu: 50 * time.Second}, // unrelated
	}
	if got := treeCPU(10, stats); got != 9*time.Second {
		t.Errorf("treeCPU(10) = %v, want 9s", got)
	}
	if got := treeCPU(99, stats); got != 0 {
		t.Errorf("treeCPU of a vanished process = %v, want 0", got)
	}
}

func TestProcessTreeCPU_self(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := processTreeCPU(os.Getpid()); err != nil {
		t.Errorf("processTreeCPU(self): %v", err)
	}
}

func TestParseTimelines(t *testing.T) {
	t.Parallel()
	out := strings.Join([]string{
		"0b9b5c4e-2f0a-4c43-9d7b-3a1d2c0e4f11|1733375000.250000|1733375001.5|1733375002.000001|PENDING|Pending",
		"1c9b5c4e-2f0a-4c43-9d7b-3a1d2c0e4f11|1733375000|||SCHEDULED|Scheduled",
		"",
	}, "\n")
	runs, err := parseTimelines(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 {
		t.Fatalf("got %d runs, want 2", len(runs))
	}
	if got, want := runs[0].claimed.Sub(runs[0].due), 1250*time.Millisecond; got != want {
		t.Errorf("claim - due = %v, want %v", got, want)
	}
	if got, want := runs[0].recorded.Sub(runs[0].claimed), 500001*time.Microsecond; got != want {
		t.Errorf("recorded - claimed = %v, want %v", got, want)
	}
	if !runs[1].claimed.IsZero() || !runs[1].recorded.IsZero() || runs[1].stateType != "SCHEDULED" {
		t.Errorf("unclaimed run = %+v, want no claim or recording", runs[1])
	}
	s := span(runs)
	if s.runs != 2 || s.claimed != 1 || s.recorded != 1 || s.states["PENDING/Pending"] != 1 {
		t.Errorf("span = %+v", s)
	}
	for _, bad := range []string{"a|b|c", "x|1|abc||S|s", "x|NaN|||S|s"} {
		if _, err := parseTimelines(bad); err == nil {
			t.Errorf("parseTimelines(%q) = nil error, want one", bad)
		}
	}
}

func TestBurstSpanThroughput(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1733375000, 0)
	runs := []runTimes{
		{claimed: t0, recorded: t0.Add(time.Second)},
		{claimed: t0.Add(time.Second), recorded: t0.Add(4 * time.Second)},
		{claimed: t0.Add(2 * time.Second)}, // never recorded
	}
	s := span(runs)
	if got := s.throughput(); got != 0.5 {
		t.Errorf("throughput = %v, want 2 recorded runs over 4 s = 0.5", got)
	}
	if got := (burstSpan{}).throughput(); got != 0 {
		t.Errorf("throughput of nothing = %v, want 0", got)
	}
}

func TestMachineLines(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1733375000, 0)
	burst := func(name string, secs float64, prefect int64, rss int64) burstResult {
		return burstResult{name: name, span: burstSpan{runs: 300, recorded: 300, firstClaim: t0, lastRecord: t0.Add(time.Duration(secs * float64(time.Second)))},
			prefect: tally{"POST /flow_runs/{id}/set_state": prefect}, peakRSS: rss}
	}
	variant := func(b burstResult, v ceilingVariant) burstResult { b.variant = v; return b }
	full := report{
		ceiling: []burstResult{burst("ceiling, 1 concurrent", 6, 600, 0), burst("ceiling, 4 concurrent", 5, 600, 0),
			// Faster than the plain ceiling here, to show each ratio takes
			// its own variant's best.
			variant(burst("ceiling + labels, 4 concurrent", 4, 900, 0), ceilingVariant{conc: 4, labels: true}),
			variant(burst("ceiling + read + labels, 4 concurrent", 10, 900, 0), ceilingVariant{conc: 4, labels: true, read: true})},
		contenders: []burstResult{burst(nameWorker, 100, 2200, 500<<20), burst(nameServe, 20, 930, 55<<20+300<<10),
			burst(nameServeNoLabels, 12, 630, 50<<20)},
		reconcile: &reconcileResult{runs: 1000, single: passCost{aws: tally{"ecs:DescribeTasks": 10}}},
	}
	tests := []struct {
		name string
		rep  report
		want []string
	}{
		{"everything measured", full, []string{
			"ratio pushpool/ceiling = 0.25",
			"ratio pushpool/worker = 5.00",
			"prefect requests/run = 3.1",
			"reconcile aws calls/pass (1000 running) = 10",
			"serve peak rss MiB = 55",
			"ratio pushpool/ceiling + read + labels = 0.50",
			"ratio pushpool no run labels/ceiling = 0.42",
		}},
		{"nothing measured", report{}, []string{
			"ratio pushpool/ceiling = n/a",
			"ratio pushpool/worker = n/a",
			"prefect requests/run = n/a",
			"reconcile aws calls/pass (1000 running) = n/a",
			"serve peak rss MiB = n/a",
			"ratio pushpool/ceiling + read + labels = n/a",
			"ratio pushpool no run labels/ceiling = n/a",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rep.machineLines()
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("machineLines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
