// Command benchreport reads `go test -bench` output on standard input,
// echoes it, and writes a results file: the PostgreSQL side-by-side report
// of internal/tools/pgbench when -pg names one, the Terraform provider
// report of internal/tools/providerbench when -provider names one, the
// artifact table of internal/tools/fnbuild when -fn names one, then when and where the
// go test figures were measured, every benchmark's metrics, and the ratios
// between variants that ran side by side in the same run (absolute figures
// depend on the machine and on the Prefect server's SQLite database;
// ratios travel better). It prints the file it wrote at the end.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	out := flag.String("o", "bench/results.txt", "results file to write")
	pg := flag.String("pg", "", "report of internal/tools/pgbench to put first in the results file")
	provider := flag.String("provider", "", "report of internal/tools/providerbench to put after it")
	fn := flag.String("fn", "", "artifact table of internal/tools/fnbuild to put after them")
	flag.Parse()
	var first []byte
	for _, f := range []struct{ path, what string }{
		{*pg, "the PostgreSQL report"}, {*provider, "the provider report"}, {*fn, "the artifact table"},
	} {
		if f.path == "" {
			continue
		}
		data, err := os.ReadFile(f.path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s: %v\n", f.what, err)
			os.Exit(1)
		}
		if len(first) > 0 {
			first = append(first, "\n"+strings.Repeat("-", 78)+"\n\n"...)
		}
		first = append(first, data...)
	}
	if err := run(os.Stdin, os.Stdout, *out, first); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// result is one benchmark line: its name without the -GOMAXPROCS suffix and
// its metrics by unit.
type result struct {
	name    string
	metrics map[string]float64
}

// ratio compares one metric of two benchmarks of the same run.
type ratio struct {
	what        string
	metric      string
	numerator   string
	denominator string
}

// ratios are the side-by-side comparisons the report states.
func ratios() []ratio {
	return []ratio{
		{"throughput, 4 concurrent submissions vs 1", "runs/s", "BenchmarkDispatch/submissions=4", "BenchmarkDispatch/submissions=1"},
		{"throughput, 16 concurrent submissions vs 1", "runs/s", "BenchmarkDispatch/submissions=16", "BenchmarkDispatch/submissions=1"},
		{"server retries per run, 16 concurrent vs 1", "retries/run", "BenchmarkDispatch/submissions=16", "BenchmarkDispatch/submissions=1"},
		{"ECS AWS calls per submission, new dispatcher each time vs one warm dispatcher", "aws-calls/submit", "BenchmarkSubmit/cold", "BenchmarkSubmit/warm"},
		{"ECS submissions per second on moto, warm vs new dispatcher each time", "submits/s", "BenchmarkSubmit/warm", "BenchmarkSubmit/cold"},
		{"Lateness of a run due between 10 s ticks (Lambda handler, moto SQS), ticks only vs delayed SQS wake-up", "late-ms", "BenchmarkDueToClaim/ticks-only", "BenchmarkDueToClaim/wake-up"},
	}
}

// run echoes in, parses its benchmark lines and writes path: first (a
// pgbench report, may be empty), then the go test table; then it prints
// what it wrote.
func run(in io.Reader, echo io.Writer, path string, first []byte) error {
	var (
		results []result
		env     []string
		failed  bool
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		switch {
		case strings.HasPrefix(line, "Benchmark"):
			if r, ok := parse(line); ok {
				results = append(results, r)
			}
		case strings.HasPrefix(line, "pushpool-env:"), strings.HasPrefix(line, "cpu:"), strings.HasPrefix(line, "goos:"), strings.HasPrefix(line, "goarch:"):
			if e := strings.TrimSpace(strings.TrimPrefix(line, "pushpool-env:")); !slices.Contains(env, e) {
				env = append(env, e)
			}
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "--- FAIL"):
			failed = true
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if failed {
		return fmt.Errorf("a benchmark failed; %s was not written", path)
	}
	if len(results) == 0 {
		return fmt.Errorf("no benchmark results on the input; %s was not written", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	if len(first) > 0 {
		b.Write(first)
		if !strings.HasSuffix(string(first), "\n") {
			b.WriteString("\n")
		}
		b.WriteString("\n" + strings.Repeat("-", 78) + "\n\n")
	}
	if err := write(&b, results, env); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(echo, "\n%s\nwrote %s\n", b.String(), path)
	return nil
}

// parse reads "BenchmarkX/y-2  3  123 ns/op  6.1 requests/run ...".
func parse(line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return result{}, false
	}
	name := f[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	r := result{name: name, metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return result{}, false
		}
		r.metrics[f[i+1]] = v
	}
	return r, true
}

func write(w io.Writer, results []result, env []string) error {
	fmt.Fprintf(w, "pushpool go test benchmarks (SQLite), %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "%s, %d CPUs; %s\n", runtime.Version(), runtime.NumCPU(), strings.Join(env, "; "))
	fmt.Fprintln(w, "BenchmarkDispatch: against a real Prefect server (SQLite) with a no-op backend (make bench no longer runs BenchmarkDueToSubmit: the PostgreSQL lateness table measures the real processes). BenchmarkSubmit: the ECS backend against moto (registrations/submit counts task definition revisions registered; the content-hash tag makes it 0 after the first). BenchmarkDueToClaim: the Lambda handler on moto (ECS, SQS) with 1 s lookahead; late-ms is the mean due → claim time. Produced by `make bench`.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range results {
		units := make([]string, 0, len(r.metrics))
		for u := range r.metrics {
			if u != "ns/op" { // includes setup outside the timer's reach; the custom metrics are the figures
				units = append(units, u)
			}
		}
		sort.Strings(units)
		parts := make([]string, len(units))
		for i, u := range units {
			parts[i] = fmt.Sprintf("%s %s", strconv.FormatFloat(r.metrics[u], 'g', 4, 64), u)
		}
		fmt.Fprintf(tw, "%s\t%s\n", r.name, strings.Join(parts, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	byName := map[string]result{}
	for _, r := range results {
		byName[r.name] = r
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios (same run, side by side):")
	for _, q := range ratios() {
		num, ok1 := byName[q.numerator].metrics[q.metric]
		den, ok2 := byName[q.denominator].metrics[q.metric]
		switch {
		case !ok1 || !ok2:
			fmt.Fprintf(w, "  %s: not measured in this run\n", q.what)
		case den == 0:
			fmt.Fprintf(w, "  %s: %s is 0 in the denominator\n", q.what, q.metric)
		default:
			fmt.Fprintf(w, "  %s: %.2fx (%s %g vs %g)\n", q.what, num/den, q.metric, num, den)
		}
	}
	return nil
}
