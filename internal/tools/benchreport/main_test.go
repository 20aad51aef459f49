package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line   string
		ok     bool
		name   string
		metric string
		value  float64
	}{
		{"BenchmarkDispatch/submissions=4-2  3  123 ns/op  6.1 requests/run  5.364 runs/s", true, "BenchmarkDispatch/submissions=4", "runs/s", 5.364},
		{"BenchmarkStart/cold-16  50  7 aws-calls/start", true, "BenchmarkStart/cold", "aws-calls/start", 7},
		{"BenchmarkX/name-with-dash  1  2 late-ms", true, "BenchmarkX/name-with-dash", "late-ms", 2},
		{"BenchmarkBroken  1  x y", false, "", "", 0},
		{"BenchmarkShort 1", false, "", "", 0},
	}
	for _, tt := range tests {
		r, ok := parse(tt.line)
		if ok != tt.ok {
			t.Errorf("parse(%q) ok = %v, want %v", tt.line, ok, tt.ok)
			continue
		}
		if ok && (r.name != tt.name || r.metrics[tt.metric] != tt.value) {
			t.Errorf("parse(%q) = %+v, want %s with %s %v", tt.line, r, tt.name, tt.metric, tt.value)
		}
	}
}

func TestRun_putsThePostgreSQLReportFirst(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		"pushpool-env: Prefect 3.9.1 server at http://127.0.0.1:1/api",
		"BenchmarkDispatch/submissions=1-2  3  1 ns/op  6.1 requests/run  6 runs/s",
		"BenchmarkDispatch/submissions=4-2  3  1 ns/op  6.1 requests/run  3 runs/s",
		"PASS",
	}, "\n")
	path := filepath.Join(t.TempDir(), "bench", "results.txt")
	pg := "pushpool vs Prefect's ECS worker on PostgreSQL\nratio pushpool/worker = 5.00\n"
	if err := run(strings.NewReader(in), io.Discard, path, []byte(pg)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	for _, want := range []string{"ratio pushpool/worker = 5.00", "pushpool go test benchmarks (SQLite)", "BenchmarkDispatch/submissions=4", "throughput, 4 concurrent submissions vs 1: 0.50x"} {
		if !strings.Contains(got, want) {
			t.Errorf("results lack %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, pg) {
		t.Errorf("results do not start with the PostgreSQL report:\n%s", got)
	}
}

func TestRun_failedBenchmarkWritesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "results.txt")
	err := run(strings.NewReader("BenchmarkA-2 1 2 runs/s\n--- FAIL: BenchmarkA\n"), io.Discard, path, nil)
	if err == nil {
		t.Fatal("run = nil error, want one for a failed benchmark")
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Errorf("results file exists after a failure (%v)", statErr)
	}
}
